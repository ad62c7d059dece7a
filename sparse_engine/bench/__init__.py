"""Benchmarks of SparseEngine kernels on the Cortex-M7 in QEMU (`python -m sparse_engine.bench ...`)."""
