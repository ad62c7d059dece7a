"""Done-when 3 and 5: the MobileNetV2-style CNN with one attention block, quantized by
quantize_static, compiles, fits 1 MB / 320 KB, passes the ladder; generated C is warning-free
under -Wall -Wextra -Werror and clean under ASan+UBSan (the host rung builds exactly so)."""
from __future__ import annotations

import numpy as np
from conftest import compile_verified, quantized, record

from sparse_engine import toolchain, zoo


def test_hybrid_compiles_fits_and_passes_ladder(tmp_path):
    model = zoo.quantize_qdq(zoo.hybrid(), tmp_path / "hybrid_qdq.onnx")
    inputs = np.random.default_rng(5).normal(0, 1, size=(4, 1, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "inputs.npy", inputs)
    rep = compile_verified(model, tmp_path / "out", input_file=tmp_path / "inputs.npy")
    rungs = {r["rung"]: r for r in rep["verification"]}
    assert rungs["simulator"]["inputs"] == 10
    assert rungs["host C (ASan+UBSan)"]["exact"] and rungs["cortex-m7 in QEMU"]["exact"]
    t = rep["totals"]
    assert t["flash_bytes"] <= 1024 * 1024 and t["sram_bytes"] <= 320 * 1024
    kinds = {layer["kind"] for layer in rep["layers"]}
    assert {"conv2d", "attention", "layernorm", "lut", "add", "concat", "fc", "avgpool"} <= kinds
    assert len(rep["mcu"]["layer_instructions"]) == len(rep["layers"])
    assert all(n > 0 for n in rep["mcu"]["layer_instructions"])
    # per-layer counts add up to the whole-inference count, up to one mark call per layer
    assert abs(sum(rep["mcu"]["layer_instructions"]) - t["instructions"]) < 40 * len(rep["layers"])
    ort = rungs["onnxruntime"]
    record("hybrid", dict(flash=t["flash_bytes"], sram=t["sram_bytes"], arena=t["arena_bytes"],
                          instructions=t["instructions"], ort_share_differing=round(ort["share_differing"], 4),
                          ort_max_abs_diff=ort["max_abs_diff"], top1_agreement=ort["top1_agreement"]))
    assert ort["top1_agreement"] >= 0.8


def test_generated_c_is_warning_free_and_sanitizer_clean(tmp_path, models_dir):
    model = quantized(dict(op="conv", shape=(1, 4, 6, 6), cout=4), models_dir, "warn_conv")
    compile_verified(model, tmp_path / "lib")
    assert {"-Wall", "-Wextra", "-Werror"} <= set(toolchain.HOST_CFLAGS)
    exe = toolchain.build_host(tmp_path / "lib", tmp_path / "b", sanitize=True)
    out = toolchain.run_host(exe, np.zeros((2, 144), np.int8), 144)
    assert out.shape == (2, 144)
