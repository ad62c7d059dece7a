"""Done-when 4: each bad input gives one clear line on stderr, a non-zero exit, and no output."""
from __future__ import annotations

import numpy as np
import onnx
from conftest import assert_clean_failure, quantized, run_cli

from sparse_engine import zoo


def test_float_model(tmp_path):
    path = tmp_path / "float.onnx"
    onnx.save(zoo.single_op(dict(op="conv", shape=(1, 3, 8, 8), cout=4)), str(path))
    proc = run_cli(path, tmp_path / "out")
    assert_clean_failure(proc, tmp_path / "out", "float model", "quantize_static")


def test_unsupported_op(tmp_path):
    b = zoo._Builder(0)
    y = b.op("Add", [b.op("Sin", [b.op("Add", ["x", b.const(np.array(0.5))])]), b.const(np.array(0.5))])
    path = zoo.quantize_qdq(b.model((1, 16), y), tmp_path / "sin.onnx")
    proc = run_cli(path, tmp_path / "out")
    assert_clean_failure(proc, tmp_path / "out", "(Sin)", "unsupported op type")


def test_dynamic_input_shape(tmp_path):
    path = quantized(dict(op="gemm", shape=(1, 8), n=4), tmp_path, "gemm")
    m = onnx.load(str(path))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    dyn = tmp_path / "dynamic.onnx"
    onnx.save(m, str(dyn))
    proc = run_cli(dyn, tmp_path / "out")
    assert_clean_failure(proc, tmp_path / "out", "dynamic shape", "'x'")


def test_truncated_file(tmp_path):
    path = quantized(dict(op="conv", shape=(1, 3, 8, 8), cout=4), tmp_path, "conv")
    data = path.read_bytes()
    cut = tmp_path / "truncated.onnx"
    cut.write_bytes(data[: len(data) // 2])
    proc = run_cli(cut, tmp_path / "out")
    assert_clean_failure(proc, tmp_path / "out", "truncated.onnx")


def test_over_flash_budget(tmp_path):
    path = zoo.quantize_qdq(zoo.single_op(dict(op="gemm", shape=(1, 1024), n=1100)), tmp_path / "big.onnx", n_calib=2)
    proc = run_cli(path, tmp_path / "out")
    assert_clean_failure(proc, tmp_path / "out", "over the flash budget", "stm32f746")


def test_over_sram_budget(tmp_path):
    path = zoo.quantize_qdq(zoo.single_op(dict(op="conv", shape=(1, 3, 96, 96), cout=40)), tmp_path / "wide.onnx",
                            n_calib=2)
    proc = run_cli(path, tmp_path / "out")
    assert_clean_failure(proc, tmp_path / "out", "over the SRAM budget", "stm32f746")


def test_missing_cross_toolchain(tmp_path):
    path = quantized(dict(op="conv", shape=(1, 3, 8, 8), cout=4), tmp_path, "conv")
    proc = run_cli(path, tmp_path / "out", {"SPARSE_ENGINE_ARM_PREFIX": "/nonexistent/arm-none-eabi-"})
    assert_clean_failure(proc, tmp_path / "out", "arm-none-eabi-gcc not found", "gcc-arm-none-eabi")


def test_existing_output_survives_a_failed_compile(tmp_path):
    good = quantized(dict(op="conv", shape=(1, 3, 8, 8), cout=4), tmp_path, "conv")
    out = tmp_path / "out"
    assert run_cli(good, out, target="host").returncode == 0
    before = (out / "model.c").read_text()
    proc = run_cli(good, out, {"SPARSE_ENGINE_ARM_PREFIX": "/nonexistent/x-"})
    assert proc.returncode != 0
    assert (out / "model.c").read_text() == before


def test_uint8_activations_rejected(tmp_path):
    path = zoo.quantize_qdq(zoo.single_op(dict(op="conv", shape=(1, 3, 6, 6), cout=4)), tmp_path / "u8.onnx",
                            n_calib=2, activation_type="QUInt8")
    proc = run_cli(path, tmp_path / "out")
    assert_clean_failure(proc, tmp_path / "out", "int8", "QInt8")
