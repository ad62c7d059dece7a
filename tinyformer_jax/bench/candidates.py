"""Candidates evaluated per second: the four forms of train/candidates.py on the config's supernet
(random weights and random images: the throughput does not depend on them). Each form first
runs once to compile (its time is reported apart), then `repeats` timed calls. With `masked`
every path also gets its own weight masks, as SparseNAS scores pruned candidates."""
from __future__ import annotations

import time

import jax
import ml_collections
import numpy as np
from flax import nnx

from ..models.supernet import Supernet, num_candidates
from ..train import candidates


def run(cfg: ml_collections.ConfigDict, n_candidates: int, n_images: int, n_calib: int, repeats: int,
        progress=print, masked: bool = False) -> dict:
    model = Supernet(cfg.model, rngs=nnx.Rngs(0))
    counts = num_candidates(cfg.model)
    rng = np.random.default_rng(0)
    paths = rng.integers(0, counts, size=(n_candidates, len(counts))).astype(np.int32)
    images = rng.integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)
    calib = rng.integers(0, 256, size=(n_calib, 32, 32, 3), dtype=np.uint8)
    weights = [(k, v[...].shape) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param)) if v[...].ndim >= 2]
    masks = [{k: (rng.random(shape) < 0.5).astype(np.float32) for k, shape in weights}
             for _ in range(n_candidates)] if masked else None
    rows, ref = [], None
    for method in candidates.METHODS:
        progress(f"candidates: {method} ({n_candidates} {'masked ' if masked else ''}paths, {n_images} images, "
                 f"{jax.device_count()} devices)")
        t0 = time.perf_counter()
        out = candidates.evaluator(model, paths, calib, method, masks=masks)(images)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(repeats):
            out = candidates.evaluator(model, paths, calib, method, masks=masks)(images)
        dt = (time.perf_counter() - t0) / repeats
        ref = out if ref is None else ref
        rows.append(dict(method=method, candidates_per_second=n_candidates / dt, seconds_per_call=dt,
                         first_call_seconds=first, max_abs_diff_vs_vmap=float(np.abs(out - ref).max())))
    loop = next(r for r in rows if r["method"] == "loop")["candidates_per_second"]
    for r in rows:
        r["speedup_vs_loop"] = r["candidates_per_second"] / loop
    what = "supernet candidates evaluated per second (BN recalibration + logits per path)"
    return dict(what=what.replace("per path", "per path, each path with its own weight masks") if masked else what,
                masked=masked,
                device=jax.devices()[0].device_kind, platform=jax.devices()[0].platform,
                devices=jax.device_count(), candidates=n_candidates, images_per_candidate=n_images,
                calibration_images=n_calib, repeats=repeats, supernet_modules=len(counts),
                config_modules=[list(m) for m in cfg.model.modules], rows=rows)


def table(r: dict) -> str:
    lines = [f"{r['candidates']} {'masked ' if r['masked'] else ''}candidates x {r['images_per_candidate']} images on {r['devices']} "
             f"{r['platform']} device(s) ({r['device']})",
             f"{'method':<8} {'cand/s':>9} {'x loop':>7} {'compile s':>10} {'max diff':>9}"]
    for row in r["rows"]:
        lines.append(f"{row['method']:<8} {row['candidates_per_second']:9.2f} {row['speedup_vs_loop']:7.2f} "
                     f"{row['first_call_seconds']:10.1f} {row['max_abs_diff_vs_vmap']:9.1e}")
    return "\n".join(lines)
