"""Supernet training speed per convolution form (models/layers.py CONV_FORMS): the sandwich step
of train/supernet.py (largest, smallest and random paths, distillation) on the config's supernet
with random images, so that a machine's first run of the lease recipe says which form and how
many epochs fit its time. Each form compiles in its first step (reported apart), then `steps`
timed steps. Both start from the same weights, so their first losses differ by float rounding only."""
from __future__ import annotations

import time

import jax
import ml_collections
import numpy as np
from flax import nnx

from ..models import layers
from ..models.supernet import Supernet, num_candidates
from ..train.loop import make_train_step, optimizer
from ..train.supernet import sample_paths, sandwich_loss


def _one_form(cfg: ml_collections.ConfigDict, batch: int, steps: int) -> dict:
    model = Supernet(cfg.model, rngs=nnx.Rngs(0))
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optimizer(cfg.train, steps + 1)
    opt = tx.init(params)
    step = make_train_step(graphdef, tx, cfg.train.label_smoothing, True, sandwich_loss)
    rng = np.random.default_rng(0)
    images = jax.numpy.asarray(rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8))
    labels = jax.numpy.asarray(rng.integers(0, 10, batch).astype(np.int32))
    counts = num_candidates(cfg.model)
    paths = [jax.numpy.asarray(sample_paths(counts, 0, s, int(cfg.train.random_paths))) for s in range(steps + 1)]
    t0 = time.perf_counter()
    params, rest, opt, loss, _ = step(params, rest, opt, images, labels, jax.random.key(0), paths[0])
    first_loss = float(loss)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        params, rest, opt, loss, _ = step(params, rest, opt, images, labels, jax.random.key(s), paths[s])
    float(loss)  # waits for the last step
    dt = (time.perf_counter() - t0) / steps
    return dict(images_per_second=batch / dt, seconds_per_step=dt, first_step_seconds=first, first_loss=first_loss)


def run(cfg: ml_collections.ConfigDict, batch: int, steps: int, progress=print) -> dict:
    before = layers._CONV_FORM
    rows = []
    try:
        for form in layers.CONV_FORMS:
            progress(f"train_step: {form} ({batch} images x {2 + int(cfg.train.random_paths)} paths per step, "
                     f"{steps} timed steps)")
            layers.set_conv_form(form)
            rows.append(dict(form=form, **_one_form(cfg, batch, steps)))
    finally:
        layers.set_conv_form(before)
    base = rows[0]
    for r in rows:
        r["speedup_vs_unrolled"] = r["images_per_second"] / base["images_per_second"]
        r["first_loss_diff_vs_unrolled"] = abs(r["first_loss"] - base["first_loss"])
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(Supernet(cfg.model, rngs=nnx.Rngs(0)), nnx.Param)))
    return dict(what="supernet sandwich training step per convolution form (images per second)",
                device=jax.devices()[0].device_kind, platform=jax.devices()[0].platform, batch=batch,
                paths_per_step=2 + int(cfg.train.random_paths), timed_steps=steps, supernet_parameters=int(n_params),
                config_modules=[list(m) for m in cfg.model.modules], rows=rows)


def table(r: dict) -> str:
    lines = [f"supernet training, batch {r['batch']} x {r['paths_per_step']} paths, {r['supernet_parameters']:,} "
             f"parameters, on {r['platform']} ({r['device']})",
             f"{'form':<9} {'images/s':>9} {'s/step':>8} {'x unrolled':>10} {'compile s':>10} {'loss diff':>9}"]
    for row in r["rows"]:
        lines.append(f"{row['form']:<9} {row['images_per_second']:9.1f} {row['seconds_per_step']:8.3f} "
                     f"{row['speedup_vs_unrolled']:10.2f} {row['first_step_seconds']:10.1f} "
                     f"{row['first_loss_diff_vs_unrolled']:9.1e}")
    return "\n".join(lines)
