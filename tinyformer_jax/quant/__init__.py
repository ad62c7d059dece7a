"""Fake quantization that follows SparseEngine's integer contract, and BatchNorm folding."""
