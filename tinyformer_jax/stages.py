"""The stages that the fixed-hybrid run (hybrid_run) and the TinyFormer run (tinyformer_run) share:
the run's workdir and data, BatchNorm folding + calibration + QAT, and deployment (QDQ export,
SparseEngine compile --verify, the deployed graph simulated over the test set)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import jax
import ml_collections
import numpy as np
from flax import nnx
from tqdm import tqdm

from .data import cifar10
from .data.augment import normalize
from .export.onnx_export import export_qdq
from .models.layers import set_mode
from .quant.calibrate import calibrate
from .quant.fold import fold_batchnorm
from .train.checkpoint import Checkpoints
from .train.loop import StageResult, classification_loss, fit


def say(msg: str) -> None:
    """One progress line on stdout, flushed (the launch scripts' output)."""
    print(msg, flush=True)


def float_inputs(images: np.ndarray) -> np.ndarray:
    """The exported model's input: normalized float32 NCHW."""
    return np.asarray(jax.jit(normalize)(images))


def prepare(cfg: ml_collections.ConfigDict, workdir: str | Path, data_dir: str | None) -> tuple[Path, cifar10.Cifar10]:
    """The workdir (created) and the data set of a run: --data_dir, else the config's, else the default."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = cifar10.load(data_dir or cfg.data.dir or None, limit_train=cfg.data.limit_train or None,
                        expected=cifar10.SIZES if cfg.data.get("check_sizes", True) else None)
    say(f"data: {data.source}: {len(data.train.labels):,} train / {len(data.test.labels):,} test images")
    return workdir, data


def quantize(model: nnx.Module, cfg: ml_collections.ConfigDict, train: cifar10.Split, test: cifar10.Split,
             workdir: Path, progress: bool = True, loss: Callable = classification_loss,
             extra: Callable = lambda step: None) -> tuple[nnx.Module, StageResult]:
    """BatchNorm folded into a copy, its ranges calibrated (or restored with the QAT checkpoint),
    then the QAT stage (`loss` and `extra` as in loop.fit); returns the QAT model (mode `quant`)."""
    qat = fold_batchnorm(model)
    if Checkpoints(workdir / "qat" / "checkpoints", every=1).latest() is None:
        calibrate(qat, train.images, cfg.qat.calib_batches, cfg.qat.batch_size, cfg.seed)
    else:  # the ranges come with the checkpoint
        set_mode(qat, "quant")
    return qat, fit(qat, train, test, cfg.qat, workdir, "qat", cfg.seed + 1, progress=progress, loss=loss, extra=extra)


def deploy_and_simulate(qat: nnx.Module, cfg: ml_collections.ConfigDict, workdir: Path, test_images: np.ndarray,
                        calib_images: np.ndarray, progress: bool = True) -> tuple[Path, np.ndarray, dict, np.ndarray]:
    """QDQ export, SparseEngine compile --verify into workdir/engine (FWSA calibrated on the first
    cfg.deploy.calib_images of `calib_images`), and the deployed graph's int8 simulator outputs for
    every test image. Returns (ONNX path, float test inputs, compile report, simulator outputs)."""
    from . import deploy

    onnx_path = export_qdq(qat, workdir / "export" / "model_qdq.onnx")
    say(f"export: {onnx_path}")
    x_test = float_inputs(test_images)
    x_calib = float_inputs(calib_images[:cfg.deploy.calib_images])
    compiled = deploy.compile_verified(onnx_path, workdir / "engine", cfg.deploy.profile,
                                       x_test[:cfg.deploy.verify_images], x_calib, progress=say)
    rep = compiled.report
    bar = tqdm(total=len(x_test), desc="int8 simulator", unit="img", disable=not progress, file=sys.stderr,
               mininterval=2.0)
    sim = deploy.simulate(compiled.graph, x_test, workers=cfg.deploy.workers, progress=bar.update)
    bar.close()
    return onnx_path, x_test, rep, sim
