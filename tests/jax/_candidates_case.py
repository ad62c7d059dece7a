"""The supernet, paths and images shared by tests/test_candidates.py and its subprocesses."""
from __future__ import annotations

import numpy as np


def case():
    from _train_tiny import synthetic
    from flax import nnx
    from test_supernet import CFG

    from tinyformer_jax.models.supernet import Supernet, num_candidates

    model = Supernet(CFG.model, rngs=nnx.Rngs(0))
    counts = num_candidates(CFG.model)
    paths = np.random.default_rng(0).integers(0, counts, size=(4, len(counts))).astype(np.int32)
    data = synthetic(48, 2)
    return model, paths, data.images[:16], data.images[16:]
