"""MLPerf Tiny's four trained int8 models through SparseEngine, from their .tflite files: each
compiled for the Cortex-M7 with the verification ladder (simulator, host C, QEMU DSP and portable,
LiteRT's reference kernels) on `n_inputs` inputs (real CIFAR-10 test images for IC, random int8
for the others), and IC's top-1 over the whole CIFAR-10 test set, image by image against LiteRT.
Figures go to a JSON file (benchmarks/mlperf_tiny.json)."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from sparse_engine import compiler, verify
from sparse_engine.bench.models import MLPERF, PUBLISHED_CYCLES, cycles_per_mac
from tinyformer_jax.data import cifar10


def cifar_int8(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC pixels -> the IC model's int8 input (scale 1, zero point -128: pixel - 128)."""
    return (images.astype(np.int16) - 128).astype(np.int8)


def ic_accuracy(model: Path, test: cifar10.Split) -> dict:
    """Top-1 of our simulator and of LiteRT's reference kernels over the CIFAR-10 test split, and
    on how many images their outputs differ."""
    x = cifar_int8(test.images)
    g = compiler.build_graph(model)
    t0 = time.perf_counter()
    ours = verify.simulate(g, x)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = verify.litert_outputs(model, g, x)
    t_lite = time.perf_counter() - t0
    return dict(images=len(x), top1_simulator=float((ours.argmax(1) == test.labels).mean()),
                top1_litert=float((theirs.argmax(1) == test.labels).mean()),
                images_with_any_difference=int((ours != theirs).any(axis=1).sum()),
                simulator_seconds=round(t_ours, 1), litert_seconds=round(t_lite, 1))


def run(models_dir: str, data_dir: str | None, out_json: str, n_inputs: int = 100, progress=print) -> dict:
    results = {}
    test = cifar10.load(data_dir).test
    for name in MLPERF:
        path = Path(models_dir) / f"{name}_int8.tflite"
        inputs = cifar_int8(test.images[:n_inputs]) if name == "ic_resnet8" else None
        progress(f"{name}: compile for the Cortex-M7 with --verify on {n_inputs} inputs")
        with tempfile.TemporaryDirectory() as tmp:
            rep = compiler.compile_model(path, Path(tmp) / "out", verify_ladder=True, input_file=inputs,
                                         n_random=0 if inputs is not None else n_inputs,
                                         progress=lambda m: progress(f"  {m}")).report
        mcu = rep["mcu"]
        results[name] = dict(
            ladder={r["rung"]: r["differing"] for r in rep["verification"][1:]}, inputs=rep["verification"][0]["inputs"],
            flash_bytes=mcu["flash_bytes"], sram_bytes=mcu["sram_bytes"], instructions=mcu["instructions"],
            cycles_estimate=mcu.get("cycles"), cycles_note=mcu.get("cycles_note"), macs=rep["totals"]["macs"], cycles_per_mac=cycles_per_mac(rep),
            published_cycles={k: v[name] for k, v in PUBLISHED_CYCLES.items()},
            sparse_layers=sum(1 for s in rep["sparse_layers"] if s["chosen_block"]),
            dense_instructions=mcu.get("dense_instructions"), dense_flash_bytes=mcu.get("dense_flash_bytes"))
        progress(f"  {json.dumps(results[name])}")
    progress("ic_resnet8: top-1 over the CIFAR-10 test set, simulator and LiteRT")
    results["ic_resnet8"]["cifar10_test"] = ic_accuracy(Path(models_dir) / "ic_resnet8_int8.tflite", test)
    progress(f"  {json.dumps(results['ic_resnet8']['cifar10_test'])}")
    Path(out_json).write_text(json.dumps(results, indent=1) + "\n")
    return results
