"""What the importer refuses (one line naming the node and tensor) and what it defines: scales and
multipliers the integer kernels can represent, LayerNorm epsilon, Clip with min > max, the
onnxruntime gate of --verify, messages that name the real cause (docs/decisions.md D24-D26)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import (M7, assert_clean_failure, edit_attribute, edit_initializer, insert_after, quantized,
                      run_cli)
from onnx import numpy_helper

from sparse_engine import codegen, compiler, lowering, planner, toolchain, verify
from sparse_engine.errors import EngineError

CONV = dict(op="conv", shape=(1, 3, 8, 8), cout=4)
CONV_NO_BIAS = dict(op="conv", shape=(1, 3, 8, 8), cout=4, bias=False)
GEMM = dict(op="gemm", shape=(1, 16), n=8)
LAYERNORM = dict(op="layernorm", shape=(1, 6, 16))


def _mutated(case: dict, tmp_path: Path, edit) -> Path:
    """The quantized model of `case` with `edit(model)` applied, saved beside it."""
    m = onnx.load(str(quantized(case, tmp_path, "base")))
    edit(m)
    path = tmp_path / "mutated.onnx"
    onnx.save(m, str(path))
    return path


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _fused_clip(lo: float, hi: float):
    """An edit: Clip(lo, hi) between the Conv and its QuantizeLinear (fused as the conv's clamp)."""
    def edit(m: onnx.ModelProto) -> None:
        conv = next(n for n in m.graph.node if n.op_type == "Conv")
        m.graph.initializer.extend([numpy_helper.from_array(np.array(lo, np.float32), "clip_lo"),
                                    numpy_helper.from_array(np.array(hi, np.float32), "clip_hi")])
        insert_after(m, conv, "Clip", ["clip_lo", "clip_hi"], "clip")
    return edit


def test_fused_clip_with_min_above_max_gives_max_in_every_implementation(tmp_path):
    path = _mutated(CONV, tmp_path, _fused_clip(0.5, -0.25))
    proc = run_cli(path, tmp_path / "out", args=("--verify",))
    assert proc.returncode == 0, proc.stderr
    rep = _report(tmp_path / "out")
    rungs = {r["rung"]: r for r in rep["verification"]}
    assert rungs["cortex-m7 in QEMU"]["exact"] and rungs["cortex-m7 in QEMU, portable kernels"]["exact"]
    assert rungs["host C (ASan+UBSan)"]["exact"]
    assert rungs["onnxruntime"]["max_abs_diff"] == 0  # onnxruntime: min(max(x, 0.5), -0.25) = -0.25
    assert any("min > max" in n for n in rep["notes"])


def test_fused_clip_with_min_above_max_clamps_to_the_upper_bound(tmp_path):
    g = compiler.build_graph(_mutated(CONV, tmp_path, _fused_clip(0.5, -0.25)))
    out = g.tensors[g.output]
    y = verify.simulate(g, verify.load_inputs(g, None, 3, 0))
    assert (y == int(np.rint(-0.25 / out.scale) + out.zero_point)).all()


@pytest.mark.parametrize("eps", [-1e-3, 0.0, float("nan")])
def test_layernorm_epsilon_must_be_positive(tmp_path, eps):
    path = _mutated(LAYERNORM, tmp_path, lambda m: edit_attribute(m, "LayerNormalization", "epsilon", eps))
    assert_clean_failure(run_cli(path, tmp_path / "out", target="host"), tmp_path / "out",
                         "(LayerNormalization)", "epsilon", "positive")


def test_layernorm_with_a_tiny_epsilon_is_exact_on_constant_rows(tmp_path):
    """eps so small it rounds to 0 in the integer variance: a constant row normalizes to 0 (beta),
    as in float, on the host and on the Cortex-M (a negative term once hard-faulted there)."""
    path = _mutated(LAYERNORM, tmp_path, lambda m: edit_attribute(m, "LayerNormalization", "epsilon", 1e-30))
    x = np.zeros((3, 1, 6, 16), np.float32)
    x[1], x[2, :, :, :8] = 0.7, 0.3
    np.save(tmp_path / "rows.npy", x)
    proc = run_cli(path, tmp_path / "out", args=("--verify", "--input", tmp_path / "rows.npy", "--random-inputs", 1))
    assert proc.returncode == 0, proc.stderr
    ladder = _report(tmp_path / "out")["verification"]
    assert all(r.get("exact", True) for r in ladder) and ladder[-1]["max_abs_diff"] <= 1


def test_layernorm_bias_beyond_the_output_stage_is_one_line(tmp_path):
    """Found by the fuzz test: beta dequantized with zero point 2^31 - 1 was clipped in the integer
    output stage and came out 255 steps from onnxruntime (caught then only by the gate)."""
    path = _mutated(LAYERNORM, tmp_path, lambda m: edit_initializer(m, "c2_quantized_zero_point",
                                                                     lambda z: np.full_like(z, 2**31 - 1)))
    assert_clean_failure(run_cli(path, tmp_path / "out", target="host"), tmp_path / "out",
                         "(LayerNormalization)", "bias of channel", "output stage")


def _weight_scale(value):
    return lambda m: edit_initializer(m, "w1_scale", lambda s: np.full_like(s, value))


@pytest.mark.parametrize("case, edit, needles", [
    # a weight scale the multiplier cannot follow: the bias and the output cannot be represented
    (CONV, _weight_scale(1e30), ["(Conv)", "bias", "output scale is too small"]),
    (CONV_NO_BIAS, _weight_scale(1e30), ["(Conv)", "multiplier", "too large"]),
    (CONV, _weight_scale(np.inf), ["(DequantizeLinear)", "w1_quantized", "positive, finite"]),
    (CONV, _weight_scale(np.nan), ["(DequantizeLinear)", "w1_quantized", "positive, finite"]),
    (CONV, _weight_scale(0.0), ["(DequantizeLinear)", "w1_quantized", "positive, finite"]),
    (CONV, _weight_scale(-0.01), ["(DequantizeLinear)", "w1_quantized", "positive, finite"]),
    (CONV, lambda m: edit_initializer(m, "w1_scale", lambda s: s[:3]), ["w1_quantized", "3 scales", "per channel"]),
    (CONV, lambda m: edit_initializer(m, "x_scale", lambda s: np.full_like(s, 1e30)), ["(Conv)", "output steps"]),
    (CONV, lambda m: edit_initializer(m, "x_scale", lambda s: np.full_like(s, 1e-40)), ["x_scale", "positive"]),
    (GEMM, lambda m: edit_attribute(m, "Gemm", "alpha", float("nan")), ["(Gemm)", "alpha nan"]),
    (GEMM, lambda m: edit_attribute(m, "Gemm", "alpha", 0.0), ["(Gemm)", "alpha non-zero"]),
])
def test_scales_and_multipliers_that_cannot_be_represented_are_one_line(tmp_path, case, edit, needles):
    path = _mutated(case, tmp_path, edit)
    assert_clean_failure(run_cli(path, tmp_path / "out", target="host"), tmp_path / "out", *needles)


def _truncate_raw(name: str):
    def edit(m):
        t = next(t for t in m.graph.initializer if t.name == name)
        t.raw_data = t.raw_data[:-1]
    return edit


def _rewire(node: str, index: int, to: str):
    def edit(m):
        next(n for n in m.graph.node if n.name == node).input[index] = to
    return edit


def _input_dim(axis: int, value: int):
    def edit(m):
        m.graph.input[0].type.tensor_type.shape.dim[axis].dim_value = value
    return edit


@pytest.mark.parametrize("case, edit, needles", [  # each once an internal error, found by test_fuzz.py
    (CONV, lambda m: edit_initializer(m, "x_zero_point", lambda z: z.reshape(-1)[:0]), ["x_zero_point", "per tensor"]),
    (LAYERNORM, lambda m: edit_initializer(m, "c1_quantized", lambda g: g[:-1]), ["holds 15 values, not 16"]),
    (CONV, _input_dim(1, 1), ["(Conv)", "input has 1 channels"]),
    (CONV, _truncate_raw("w1_scale"), ["'w1_scale'", "cannot be read"]),
    (CONV, lambda m: edit_initializer(m, "w1_zero_point", lambda z: z[:1]), ["w1_quantized", "zero points"]),
    (CONV, _rewire("w1_DequantizeLinear", 0, "w1_zero_point"), ["(Conv)", "rank-4 weight"]),
])
def test_malformed_graphs_are_one_line(tmp_path, case, edit, needles):
    path = _mutated(case, tmp_path, edit)
    assert_clean_failure(run_cli(path, tmp_path / "out", target="host"), tmp_path / "out", *needles)


def test_a_model_onnxruntime_refuses_is_one_line(tmp_path):
    """An int32 initializer wired straight into a Conv's bias: onnx's checker passes it,
    onnxruntime (the reference rung) refuses to load it."""
    path = _mutated(CONV, tmp_path, _rewire("conv3", 2, "b2_quantized"))
    assert_clean_failure(run_cli(path, tmp_path / "out", target="host", args=("--verify",)), tmp_path / "out",
                         "onnxruntime (the reference rung) cannot load the model")


def test_multiplier_rule_follows_the_bound():
    """A multiplier is refused exactly when its left shift could wrap the layer's largest value."""
    class Node:
        name, op_type = "n", "Mul"
    assert lowering.multipliers([255.0], Node(), 255 * 255)[1][0] == 8  # 65,025 << 8 < 2^31
    with pytest.raises(EngineError, match="too large"):
        lowering.multipliers([40000.0], Node(), 255 * 255)  # << 16 wraps
    with pytest.raises(EngineError, match="not finite"):
        lowering.multipliers([np.nan], Node(), 1)
    assert lowering.multipliers([1e-12], Node(), 2**30)[0][0] == 0  # too small: flushed to 0 as TFLite does


def test_onnxruntime_gate_fails_the_compile_when_exceeded(tmp_path):
    """The ln model on constant rows differs from onnxruntime by 1 step in 4 elements."""
    x = np.zeros((2, 1, 6, 16), np.float32)
    x[1] = 0.7
    np.save(tmp_path / "rows.npy", x)
    model = quantized(LAYERNORM, tmp_path, "ln")
    args = ("--verify", "--input", tmp_path / "rows.npy")
    line = assert_clean_failure(run_cli(model, tmp_path / "strict", target="host", args=(*args, "--max-ref-diff", 0)),
                                tmp_path / "strict", "onnxruntime", "--max-ref-diff 0")
    assert "up to 1 steps" in line
    for gate, passed in (("1", True), ("off", None)):
        out = tmp_path / f"gate-{gate}"
        proc = run_cli(model, out, target="host", args=(*args, "--max-ref-diff", gate))
        assert proc.returncode == 0, proc.stderr
        rung = _report(out)["verification"][-1]
        assert rung["gate_max_abs_diff"] == (None if gate == "off" else 1) and rung["passed"] is passed
        assert ("passed" if passed else "reported only") in (out / "report.md").read_text()


def test_onnxruntime_gate_is_on_by_default(tmp_path, monkeypatch):
    real = verify.onnxruntime_outputs

    def far(*a):
        y = real(*a).astype(np.int16)
        y[0, 0] = y[0, 0] + (verify.DEFAULT_MAX_REF_DIFF + 1) * (1 if y[0, 0] < 0 else -1)
        return y.astype(np.int8)
    monkeypatch.setattr(verify, "onnxruntime_outputs", far)
    with pytest.raises(EngineError, match=f"over the gate --max-ref-diff {verify.DEFAULT_MAX_REF_DIFF}"):
        compiler.compile_model(quantized(GEMM, tmp_path, "gemm"), tmp_path / "out", "host", verify_ladder=True,
                               n_random=2, progress=lambda *_: None)
    assert not (tmp_path / "out").exists()


def test_a_folder_or_fifo_as_the_model_is_named_so(tmp_path):
    assert_clean_failure(run_cli(tmp_path, tmp_path / "out", target="host"), tmp_path / "out", "is a folder")
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    assert_clean_failure(run_cli(fifo, tmp_path / "out", target="host"), tmp_path / "out", "not a regular file")


def test_missing_external_data_names_the_file(tmp_path):
    m = onnx.load(str(quantized(CONV, tmp_path, "conv")))
    ext = tmp_path / "ext"
    ext.mkdir()
    onnx.save(m, str(ext / "m.onnx"), save_as_external_data=True, location="m.weights", size_threshold=0)
    assert run_cli(ext / "m.onnx", tmp_path / "ok", target="host").returncode == 0
    data = (ext / "m.weights").read_bytes()
    (ext / "m.weights").write_bytes(data[:10])
    assert_clean_failure(run_cli(ext / "m.onnx", tmp_path / "out", target="host"), tmp_path / "out",
                         "'m.weights'", "truncated")
    (ext / "m.weights").unlink()
    assert_clean_failure(run_cli(ext / "m.onnx", tmp_path / "out", target="host"), tmp_path / "out",
                         "'m.weights'", "missing")


def test_build_errors_do_not_quote_the_removed_build_folder(tmp_path):
    cc = tmp_path / "cc"
    cc.write_text('#!/bin/sh\necho "cc1: fatal error: $*" >&2\nexit 1\n')
    cc.chmod(0o755)
    out = tmp_path / "out"
    objects = tmp_path / "objects"
    env = {"SPARSE_ENGINE_CC": str(cc), toolchain.OBJECT_CACHE_ENV: str(objects)}
    line = assert_clean_failure(run_cli(quantized(CONV, tmp_path, "conv"), out, env, target="host"), out,
                                "failed (exit 1)", "<build folder, removed>/")
    assert f".{out.name}.tmp-" not in line
    assert not list(objects.glob("*"))  # no half-made object left in the cache


def _negative_epsilon(monkeypatch):
    """Make the next imported LayerNorm's integer epsilon negative: a constant row then divides by
    zero in se_layernorm_s8, which the Cortex-M7 build turns into an undefined-instruction fault."""
    real = lowering.layernorm_prescale
    monkeypatch.setattr(lowering, "layernorm_prescale", lambda n, e: (lambda k, _, lim: (k, -1000, lim))(*real(n, e)))


def test_cortex_m_fault_names_the_layer(tmp_path, monkeypatch):
    _negative_epsilon(monkeypatch)
    rows = np.full((1, 1, 6, 16), 0.5, np.float32)
    with pytest.raises(toolchain.McuFault) as info:
        compiler.compile_model(quantized(LAYERNORM, tmp_path, "ln"), tmp_path / "out", "cortex-m7", M7,
                               input_file=rows, n_random=0, progress=lambda *_: None)
    msg = str(info.value)
    assert "on input 0 in layer 0 'layernormalization3' (LayerNormalization)" in msg and "se_layernorm_s8" in msg
    assert not (tmp_path / "out").exists()


def test_cortex_m_fault_on_a_later_input_is_located(tmp_path, monkeypatch):
    _negative_epsilon(monkeypatch)
    g = compiler.build_graph(quantized(LAYERNORM, tmp_path, "ln"))
    size = g.tensors[g.input].size
    inputs = np.concatenate([np.random.default_rng(0).integers(-128, 128, (2, size)), np.full((1, size), 5)])
    codegen.generate(g, planner.plan(g), tmp_path / "lib", "dsp")
    build = toolchain.build_mcu(tmp_path / "lib", tmp_path / "m7", M7)
    with pytest.raises(toolchain.McuFault) as info:
        toolchain.run_qemu(build, M7, inputs.astype(np.int8), g.tensors[g.output].size, layer_names=g.layer_names())
    assert (info.value.input_index, info.value.layer) == (2, 0)
    assert "undefined instruction" in str(info.value)


@pytest.mark.parametrize("script, needle", [
    ('echo "TOTAL many"; exit 0', "cannot read its counts from the line 'TOTAL many'"),
    ('echo "FAULT pc=?? cfsr=1"; exit 3', "failed (exit 3)"),
    ('echo "FAULT pc=1024 cfsr=33554432"; exit 3', "division by zero"),
])
def test_a_qemu_that_prints_garbage_is_one_line(tmp_path, script, needle):
    qemu = tmp_path / "qemu"
    qemu.write_text(f"#!/bin/sh\n{script}\n")
    qemu.chmod(0o755)
    proc = run_cli(quantized(CONV, tmp_path, "conv"), tmp_path / "out", {"SPARSE_ENGINE_QEMU": str(qemu)})
    assert_clean_failure(proc, tmp_path / "out", needle)
