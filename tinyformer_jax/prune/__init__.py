"""Blockwise pruning (SparseEngine block geometry, gradual schedule)."""
