"""Single-path supernet training and per-path evaluation.

Each step trains a sandwich of paths on one batch: the largest (cross-entropy with the labels),
the smallest and `random_paths` random ones (in-place distillation: cross-entropy against the
largest path's softmax, which gets no gradient from them); one optimizer update for the sum.
Paths are drawn from (seed, step) only, so a resumed run samples what an uninterrupted one does.
Before a path is evaluated, its BatchNorm statistics are recomputed on training images: the
running statistics mix every path trained (batched over paths in train/candidates.py).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from ..data.augment import normalize
from ..data.cifar10 import Split
from ..models.supernet import Supernet, num_candidates
from .loop import StageResult, fit


def sandwich_paths(counts: np.ndarray, rng: np.random.Generator, n_random: int) -> np.ndarray:
    """[2 + n_random, modules] int32: the largest path, the smallest, then uniform random ones."""
    rand = rng.integers(0, counts, size=(n_random, len(counts)))
    return np.concatenate([(counts - 1)[None], np.zeros((1, len(counts)), np.int64), rand]).astype(np.int32)


def sample_paths(counts: np.ndarray, seed: int, step: int, n_random: int) -> np.ndarray:
    """The sandwich of training step `step`, drawn from (seed, step) only."""
    return sandwich_paths(counts, np.random.default_rng([seed, step]), n_random)


def sandwich_loss(model: Supernet, x: jax.Array, labels: jax.Array, label_smoothing: float,
                  paths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Largest path on the labels plus every other path distilled from the largest's softmax."""
    big = model(x, paths[0])
    targets = optax.smooth_labels(jax.nn.one_hot(labels, big.shape[-1]), label_smoothing)
    loss = optax.softmax_cross_entropy(big, targets).mean()
    teacher = jax.nn.softmax(jax.lax.stop_gradient(big))
    for i in range(1, paths.shape[0]):
        loss = loss + optax.softmax_cross_entropy(model(x, paths[i]), teacher).mean()
    return loss, big


def train_supernet(model: Supernet, cfg: ml_collections.ConfigDict, train: Split, test: Split, workdir: Path,
                   seed: int, devices: list | None = None, progress: bool = True) -> StageResult:
    """Sandwich-rule training (cfg.train plus cfg.train.random_paths); checkpoints and resume as
    `loop.fit`. The epoch test accuracy it logs is the largest path's with running statistics."""
    counts = num_candidates(cfg.model)
    n_random = int(cfg.train.random_paths)
    return fit(model, train, test, cfg.train, workdir, "supernet", seed, devices, progress, loss=sandwich_loss,
               extra=lambda step: sample_paths(counts, seed, step, n_random))


@nnx.jit
def _forward(model: Supernet, x: jax.Array, path: jax.Array) -> jax.Array:
    """One compiled function per mode (train / eval) for every path: the path is data."""
    return model(x, path)


@contextmanager
def recalibrating(model: Supernet):
    """Train mode with every BatchNorm's momentum 0 (one forward sets the running statistics to
    that batch's statistics); eval mode and the momenta back on exit."""
    bns = [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.BatchNorm)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model.train()
    try:
        yield model
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
        model.eval()


def recalibrate_bn(model: Supernet, path, images: np.ndarray) -> None:
    """Set every BatchNorm's running statistics to the batch statistics of `path` on `images`
    (uint8 NHWC training images, one batch), in place: the sequential reference of
    train/candidates.py."""
    with recalibrating(model):
        _forward(model, normalize(images), jnp.asarray(path, jnp.int32))


def path_logits(model: Supernet, path, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """Logits of one path in eval mode (call recalibrate_bn first)."""
    model.eval()
    p = jnp.asarray(path, jnp.int32)
    return np.concatenate([np.asarray(_forward(model, normalize(images[i:i + batch]), p))
                           for i in range(0, len(images), batch)])
