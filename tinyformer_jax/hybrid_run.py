"""The fixed-hybrid run: data -> float training -> BatchNorm folding, calibration, QAT ->
QDQ export -> SparseEngine compile --verify -> int8 accuracy on the whole test set -> summary.

Every stage resumes: training stages from their newest checkpoint (a finished stage only
restores), the rest is recomputed from the QAT checkpoint.
"""
from __future__ import annotations

import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from flax import nnx

from . import report
from .data import cifar10
from .files import write_json, write_npy
from .models.hybrid import Hybrid
from .stages import deploy_and_simulate, prepare, quantize, say
from .train.loop import fit, predict


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
                   instructions_per_inference=mcu["instructions"], cycles_estimate=mcu.get("cycles"),
                   latency_ms_estimate=rep["totals"]["latency_ms_estimate"], ladder=rep["verification"],
                   profile=cfg.deploy.profile, test_images=len(data.test.labels),
                   train_images=len(data.train.labels), data=data.source,
                   seconds=round(time.perf_counter() - t0, 1), onnx=str(onnx_path), engine=str(workdir / "engine"))
    write_summary(figures, workdir)
    return figures


def write_summary(figures: dict, workdir: Path) -> None:
    """summary.json, summary.md and the same lines on stdout."""
    lines = report.hybrid_summary_lines(figures)
    write_json(workdir / "summary.json", figures, indent=2)
    (workdir / "summary.md").write_text("# TinyFormer-JAX hybrid on CIFAR-10\n\n```\n" + "\n".join(lines) + "\n```\n")
    say("\n".join(["", "== summary " + "=" * 60, *lines]))
