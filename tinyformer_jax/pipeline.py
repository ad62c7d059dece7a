"""The first end-to-end run: data -> float training -> BatchNorm folding, calibration, QAT ->
QDQ export -> SparseEngine compile --verify -> int8 accuracy on the whole test set -> summary.

Every stage resumes: training stages from their newest checkpoint (a finished stage only
restores), the rest is recomputed from the QAT checkpoint.
"""
from __future__ import annotations

import sys
import time
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
from .files import write_json, write_npy
from .models.hybrid import Hybrid
from .models.layers import set_mode
from .quant.calibrate import calibrate
from .quant.fold import fold_batchnorm
from .train.checkpoint import Checkpoints
from .train.loop import StageResult, classification_loss, fit, predict


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


def train_and_quantize(cfg: ml_collections.ConfigDict, data: cifar10.Cifar10, workdir: Path,
                       progress: bool = True) -> tuple[nnx.Module, dict]:
    """Float training then QAT; returns the QAT model (mode `quant`) and the stage figures."""
    model = Hybrid(cfg.model, rngs=nnx.Rngs(cfg.seed))
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    say(f"model: {n_params:,} parameters; {jax.device_count()} device(s): {jax.devices()[0].platform}")
    fl = fit(model, data.train, data.test, cfg.train, workdir, "float", cfg.seed, progress=progress)
    qat, q = quantize(model, cfg, data.train, data.test, workdir, progress)
    figures = dict(parameters=int(n_params), float_accuracy=fl.test_accuracy, float_steps=fl.steps,
                   float_images_per_second=fl.images_per_second, fake_quant_accuracy=q.test_accuracy,
                   qat_steps=q.steps, qat_images_per_second=q.images_per_second,
                   resumed_from={"float": fl.resumed_from, "qat": q.resumed_from})
    return qat, figures


def run(cfg: ml_collections.ConfigDict, workdir: str | Path, data_dir: str | None = None,
        progress: bool = True) -> dict:
    from . import deploy

    t0 = time.perf_counter()
    workdir, data = prepare(cfg, workdir, data_dir)
    qat, figures = train_and_quantize(cfg, data, workdir, progress)

    onnx_path, x_test, rep, sim = deploy_and_simulate(qat, cfg, workdir, data.test.images, data.train.images, progress)
    fq_logits = predict(qat, data.test.images)
    ort_logits = deploy.onnxruntime_logits(onnx_path, x_test)
    figures["onnxruntime_accuracy"] = float(np.mean(ort_logits.argmax(-1) == data.test.labels))
    figures["onnxruntime_vs_fake_quant"] = dict(
        top1_agreement=float(np.mean(ort_logits.argmax(-1) == fq_logits.argmax(-1))),
        max_abs_logit_difference=float(np.max(np.abs(ort_logits - fq_logits))))

    figures["int8_logits"] = str(write_npy(workdir / "int8_logits.npy", sim))  # the deployed model's, every test image
    figures["int8_simulator_accuracy"] = float(np.mean(sim.argmax(-1) == data.test.labels))
    figures["int8_vs_fake_quant_top1_agreement"] = float(np.mean(sim.argmax(-1) == fq_logits.argmax(-1)))
    figures["int8_minus_fake_quant_points"] = 100 * (figures["int8_simulator_accuracy"] -
                                                     figures["fake_quant_accuracy"])
    mcu = rep["mcu"]
    figures.update(flash_bytes=mcu["flash_bytes"], sram_bytes=mcu["sram_bytes"],
                   instructions_per_inference=mcu["instructions"], ladder=rep["verification"],
                   profile=cfg.deploy.profile, test_images=len(data.test.labels),
                   train_images=len(data.train.labels), data=data.source,
                   seconds=round(time.perf_counter() - t0, 1), onnx=str(onnx_path), engine=str(workdir / "engine"))
    write_summary(figures, workdir)
    return figures


def rung_line(r: dict) -> str:
    if "exact" in r:
        return f"{r['rung']} {'bit-exact' if r['exact'] else 'DIFFERS'}"
    if r["rung"] == "onnxruntime":
        return (f"onnxruntime {100 * r['share_differing']:.1f} % of elements differ, largest {r['max_abs_diff']}, "
                f"top-1 agreement {r.get('top1_agreement', 1.0):.3f}")
    return f"{r['rung']} on {r.get('inputs', '?')} inputs"


def summary_lines(f: dict) -> list[str]:
    n = f"{f['test_images']:,}"
    agree = f["onnxruntime_vs_fake_quant"]
    rows = [
        (f"float accuracy (JAX, {n} test images)", f"{100 * f['float_accuracy']:.2f} %"),
        ("fake-quant accuracy (JAX QAT model)", f"{100 * f['fake_quant_accuracy']:.2f} %"),
        (f"int8 accuracy, SparseEngine simulator ({n} images)", f"{100 * f['int8_simulator_accuracy']:.2f} %"
         f"   ({f['int8_minus_fake_quant_points']:+.2f} points vs fake-quant, top-1 agreement "
         f"{f.get('int8_vs_fake_quant_top1_agreement', float('nan')):.4f})"),
        (f"int8 accuracy, onnxruntime ({n} images)", f"{100 * f['onnxruntime_accuracy']:.2f} %"),
        ("onnxruntime vs JAX fake-quant", f"top-1 agreement {agree['top1_agreement']:.4f}, largest logit "
                                          f"difference {agree['max_abs_logit_difference']:.4f}"),
        ("flash (linked firmware)", f"{f['flash_bytes']:,} B   ({f['profile']})"),
        ("SRAM (.data + .bss + stack high-water mark)", f"{f['sram_bytes']:,} B"),
        ("Cortex-M7 instructions per inference (exact)", f"{f['instructions_per_inference']:,}"),
    ]
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows] + ["verification ladder: " + "; ".join(rung_line(r) for r in f["ladder"])]


def write_summary(figures: dict, workdir: Path) -> None:
    write_json(workdir / "summary.json", figures, indent=2)
    (workdir / "summary.md").write_text("# TinyFormer-JAX hybrid on CIFAR-10\n\n```\n" +
                                        "\n".join(summary_lines(figures)) + "\n```\n")
    say("\n".join(["", "== summary " + "=" * 60, *summary_lines(figures)]))
