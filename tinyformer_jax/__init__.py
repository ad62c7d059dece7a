"""TinyFormer-JAX: Flax NNX supernet, SuperNAS/SparseNAS, training, pruning, QAT and QDQ export.

Empty until the first end-to-end issue lands; it will call `sparse_engine`, never the reverse.
"""
