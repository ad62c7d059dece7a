"""Supernet training run: train with the sandwich rule, then evaluate the largest, the smallest
and `eval.random_paths` random paths after BatchNorm recalibration; summary.json in the workdir."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from flax import nnx

from .files import write_json
from .models.supernet import Supernet, num_candidates, standalone_config
from .stages import prepare
from .train import candidates
from .train.supernet import sandwich_paths, train_supernet


def eval_paths(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Largest, smallest, then random paths drawn from cfg.eval.seed (reproducible)."""
    return sandwich_paths(num_candidates(cfg.model), np.random.default_rng(cfg.eval.seed), cfg.eval.random_paths)


def run(cfg: ml_collections.ConfigDict, workdir: str | Path, data_dir: str | None = None,
        progress: bool = True) -> dict:
    t0 = time.perf_counter()
    workdir, data = prepare(cfg, workdir, data_dir)
    model = Supernet(cfg.model, rngs=nnx.Rngs(cfg.seed))
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    res = train_supernet(model, cfg, data.train, data.test, workdir, cfg.seed, progress=progress)
    paths = eval_paths(cfg)
    calib = data.train.images[np.random.default_rng(cfg.eval.seed).permutation(len(data.train.labels))
                              [:cfg.eval.calib_images]]
    accs = candidates.evaluate(model, paths, calib, data.test, cfg.eval.method)
    names = ["largest", "smallest"] + [f"random {i}" for i in range(len(paths) - 2)]
    rows = [dict(name=n, path=p.tolist(), blocks=[list(b) for b in standalone_config(cfg.model, p).blocks],
                 test_accuracy=a) for n, p, a in zip(names, paths, accs)]
    figures = dict(supernet_parameters=int(n_params), steps=res.steps, resumed_from=res.resumed_from,
                   images_per_second=res.images_per_second, test_images=len(data.test.labels), paths=rows,
                   seconds=round(time.perf_counter() - t0, 1), device=jax.devices()[0].platform,
                   devices=jax.device_count())
    write_json(workdir / "summary.json", figures)
    for f in figures["paths"]:
        print(f"{f['name']:<10} {100 * f['test_accuracy']:6.2f} %  path {f['path']}", file=sys.stderr)
    return figures
