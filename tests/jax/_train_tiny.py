"""Helper run in a subprocess by tests/test_train.py: trains a tiny hybrid on synthetic
CIFAR-shaped data with `fit` and saves the final parameters.

    python tests/jax/_train_tiny.py WORKDIR STEPS [DEVICES]

$TIME_LIMIT (seconds) limits the run as launch's --time_limit does (exit status 75 when it stops);
$LOG_EVERY sets the steps per metrics row (default 1).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from tinyformer_jax import time_limit  # noqa: E402
from tinyformer_jax.data.cifar10 import Split  # noqa: E402
from tinyformer_jax.models.hybrid import Hybrid  # noqa: E402
from tinyformer_jax.train.loop import fit  # noqa: E402

MODEL = ml_collections.ConfigDict(dict(stem=8, blocks=(("ir", 2, 8, 2), ("vit", 16, 2, 1, 2)), head=32, classes=10))


def synthetic(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    images[..., 0] = (labels[:, None, None] * 25).astype(np.uint8)  # learnable signal
    return Split(images, labels)


def train_cfg(steps: int, log_every: int = 1) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(epochs=1.0, steps=steps, batch_size=16, lr=3e-3, weight_decay=0.01,
                                          warmup_steps=2, label_smoothing=0.1, augment=True, log_every=log_every,
                                          ckpt_every=2))


def main() -> None:
    workdir, steps = Path(sys.argv[1]), int(sys.argv[2])
    devices = jax.devices()[:int(sys.argv[3])] if len(sys.argv) > 3 else None
    model = Hybrid(MODEL, rngs=nnx.Rngs(0))
    time_limit.start(float(os.environ.get("TIME_LIMIT", 0)))
    try:
        res = fit(model, synthetic(96, 1), synthetic(32, 2), train_cfg(steps, int(os.environ.get("LOG_EVERY", 1))), workdir, "float", seed=3,
                  devices=devices, progress=False)
    except time_limit.TimeLimitReached as exc:
        print(f"stopped: {exc}")
        sys.exit(75)
    leaves = jax.tree.leaves(nnx.state(model))
    np.savez(workdir / "final.npz", *[np.asarray(x) for x in leaves])
    ndev = len(devices) if devices is not None else jax.device_count()
    print(f"done steps={res.steps} resumed_from={res.resumed_from} devices={ndev} test_accuracy={res.test_accuracy}")


if __name__ == "__main__":
    main()
