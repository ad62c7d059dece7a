"""Activation range calibration: every ActQuant averages the per-batch min / max of its input
over a few training batches (no augmentation), then the ranges are frozen (mode `quant`)."""
from __future__ import annotations

import numpy as np
from flax import nnx

from ..data.augment import normalize
from ..models.layers import set_mode


def calibrate(model: nnx.Module, images: np.ndarray, batches: int, batch_size: int, seed: int) -> None:
    model.eval()
    set_mode(model, "calibrate")

    @nnx.jit
    def observe(m, x):
        m(normalize(x))

    rng = np.random.default_rng([seed, 7])
    for _ in range(batches):
        observe(model, images[rng.choice(len(images), batch_size, replace=False)])
    set_mode(model, "quant")
