"""FWSA on a trained attention block: train the P = E hybrid of configs/fwsa_cifar10_320kb.py
(train, QAT, export, compile --verify with FWSA chosen by `auto`), then run the int8 model over
the whole test set in SparseEngine's simulator with the attention fused without FWSA, and compare
it and the deployed model (with FWSA: the pipeline's own int8 outputs, not simulated again) with
the float and fake-quant accuracies."""
from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np

from .. import deploy, hybrid_run, stages
from ..data import cifar10
from ..errors import TinyFormerError


def run(cfg: ml_collections.ConfigDict, workdir: Path, data_dir: str | None = None, progress: bool = True) -> dict:
    figures = hybrid_run.run(cfg, workdir, data_dir, progress)
    rep = json.loads((Path(figures["engine"]) / "report.json").read_text())
    if not rep["attention"] or not all(b["fwsa"] for b in rep["attention"]):
        raise TinyFormerError(f"{figures['onnx']}: FWSA was not chosen for every attention block; "
                              "the config must give heads as wide as the embedding (P = E)")
    data = cifar10.load(data_dir or cfg.data.dir or None, limit_train=cfg.data.limit_train or None)
    x_test = stages.float_inputs(data.test.images)
    x_calib = stages.float_inputs(data.train.images[:cfg.deploy.calib_images])
    # the pipeline simulated the deployed graph (FWSA by `auto`, on everywhere as checked) on the same
    # calibration images: its outputs are the "on" form
    outs = dict(on=np.load(figures["int8_logits"]).astype(np.int64))
    g = deploy.deployed_graph(Path(figures["onnx"]), x_calib, fwsa="off")
    outs["off"] = deploy.simulate(g, x_test, workers=cfg.deploy.workers).astype(np.int64)
    labels = data.test.labels
    acc = {k: float(np.mean(v.argmax(-1) == labels)) for k, v in outs.items()}
    diff = np.abs(outs["on"] - outs["off"])
    return dict(
        what="FWSA against the unfused attention on a trained P = E block (issue 6 target)",
        config=cfg.to_dict(), test_images=len(labels),
        float_accuracy=figures["float_accuracy"], fake_quant_accuracy=figures["fake_quant_accuracy"],
        int8_unfused_accuracy=acc["off"], int8_fwsa_accuracy=acc["on"],
        fwsa_minus_unfused_points=100 * (acc["on"] - acc["off"]),
        unfused_minus_fake_quant_points=100 * (acc["off"] - figures["fake_quant_accuracy"]),
        fwsa_vs_unfused=dict(top1_agreement=float(np.mean(outs["on"].argmax(-1) == outs["off"].argmax(-1))),
                             mean_abs_logit_steps=float(diff.mean()), max_abs_logit_steps=int(diff.max())),
        attention=[{k: b[k] for k in ("name", "heads", "seq", "groups", "dim", "head_dim", "params_unfused",
                                      "params_fwsa", "macs_unfused", "macs_fwsa", "instructions", "other_instructions",
                                      "tile")}
                   for b in rep["attention"]],
        flash_bytes=figures["flash_bytes"], sram_bytes=figures["sram_bytes"],
        instructions_per_inference=figures["instructions_per_inference"],
        ladder=figures["ladder"], seconds=figures["seconds"])


def table(r: dict) -> str:
    rows = [("float", r["float_accuracy"]), ("fake-quant (QAT)", r["fake_quant_accuracy"]),
            ("int8, attention unfused", r["int8_unfused_accuracy"]), ("int8, FWSA", r["int8_fwsa_accuracy"])]
    lines = [f"{k:<26} {100 * v:6.2f} %" for k, v in rows]
    a = r["fwsa_vs_unfused"]
    lines.append(f"FWSA vs unfused int8: top-1 agreement {a['top1_agreement']:.4f}, logits differ by "
                 f"{a['mean_abs_logit_steps']:.3f} steps on average (largest {a['max_abs_logit_steps']})")
    for b in r["attention"]:
        saved = 1 - b["params_fwsa"] / b["params_unfused"]
        lines.append(f"{b['name']}: S={b['seq']} E={b['dim']} P={b['head_dim']} H={b['heads']}: parameters "
                     f"{b['params_unfused']:,} -> {b['params_fwsa']:,} ({-100 * saved:+.1f} %), instructions "
                     f"{b['other_instructions']:,} -> {b['instructions']:,}")
    return "\n".join(lines)
