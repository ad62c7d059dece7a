"""Scaled-LayerNorm (simulator.py): the int32 pre-scale bound holds on the worst int8 rows, the
error against float64 LayerNorm stays within one output step, and host C and QEMU equal the
simulator on rows that reach the bound."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import exact_on_host_and_qemu, quantized, record
from onnx import numpy_helper

from sparse_engine import lowering, qmath, simulator
from sparse_engine.compiler import build_graph

ROW_LENGTHS = [1, 2, 3, 7, 16, 31, 64, 100, 128, 255, 256, 384, 768, 1024, 2048]


def _worst_rows(n: int) -> np.ndarray:
    """Rows of x = q - zi with the largest spread: half at each end of the int8 range (odd n: the
    middle one at either end), the same rotated, and one value apart from all the others."""
    half = np.where(np.arange(n) < n // 2, -128, 127)
    lone = np.full(n, -128)
    lone[0] = 127
    return np.stack([half, half[::-1], np.where(np.arange(n) < (n + 1) // 2, -128, 127), np.roll(half, 1), lone])


def _sumsq(rows: np.ndarray, k0: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the pre-scale shift the kernel picks and the variance sum at it."""
    x = rows.astype(np.int64)
    d = x.shape[-1] * x - x.sum(axis=-1, keepdims=True)
    k = simulator.layernorm_shift(d, k0, limit)
    d = simulator.rshift_round(d, k)
    return k[:, 0], (d * d).sum(axis=-1)


@pytest.mark.parametrize("n", ROW_LENGTHS)
@pytest.mark.parametrize("eps_units", [0.0, 1e-5 / 0.02**2, 1e9])
def test_prescale_keeps_the_variance_sum_in_int32(n, eps_units):
    k0, eps0, limit = lowering.layernorm_prescale(n, eps_units)
    assert eps0 < 2**30 and n * limit**2 + eps0 < 2**31 <= n * (limit + 1) ** 2 + eps0  # limit is the largest
    assert k0 == 0 or round(eps_units * n**3 / 4 ** (k0 - 1)) >= 2**30
    rng = np.random.default_rng(n)
    narrow = rng.integers(-2, 3, size=(64, n))
    rows = np.concatenate([_worst_rows(n), rng.integers(-128, 128, size=(64, n)), narrow])
    k, sumsq = _sumsq(rows, k0, limit)
    assert sumsq.max() + eps0 < 2**31
    x = rows.astype(np.int64)
    big = np.abs(n * x - x.sum(axis=-1, keepdims=True)).max(axis=-1)
    shifted_less = simulator.rshift_round(big, np.maximum(k - 1, 0))
    assert np.all((k == k0) | (shifted_less > limit))  # the smallest shift that fits
    assert np.all(k[big <= limit] == k0)  # rows that fit are not rounded: all narrow ones up to n = 256
    assert n > 256 or eps_units > 1 or np.all(k[-len(narrow):] == 0)


def _float_layernorm(model_path, x: np.ndarray) -> np.ndarray:
    """float64 LayerNorm with the QDQ model's gamma and beta (onnxruntime stores them quantized)."""
    model = onnx.load(str(model_path))
    consts = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in consts:
            consts[n.output[0]] = (consts[n.input[0]] - consts[n.input[2]]) * consts[n.input[1]]
    (node,) = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    mean = x.mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-5) * consts[node.input[1]] + consts[node.input[2]]


def _rows(n: int, count: int, scale: float, zp: int, seed: int) -> np.ndarray:
    """int8 rows: calibration-like ones with spreads from 1/16 to 2 standard deviations, constant
    rows, and the worst-case rows."""
    rng = np.random.default_rng(seed)
    spread = rng.choice([1 / 16, 1 / 4, 1.0, 2.0], size=(count, 1))
    rows = qmath.quantize(rng.normal(rng.normal(0, 0.5, size=(count, 1)), spread, size=(count, n)), scale, zp)
    const = np.full((3, n), zp + np.array([[0], [5], [40]]))
    return np.concatenate([rows, np.clip(const, -128, 127), _worst_rows(n)]).astype(np.int8)


@pytest.mark.parametrize("n", [16, 96, 384])
def test_error_against_float_layernorm(n, models_dir):
    """Simulator output against float64 LayerNorm of the dequantized input, requantized: at most
    one output step, over rows of every spread."""
    case = dict(op="layernorm", shape=(8, n))
    model = quantized(case, models_dir, f"ln_err_{n}")
    g = build_graph(model)
    (op,) = [o for o in g.ops if o.kind == "layernorm"]
    x_t, y_t = g.tensors[g.input], g.tensors[g.output]
    rows = _rows(n, 8 * 24, x_t.scale, x_t.zero_point, n)
    got = np.concatenate([simulator.run(g, r).reshape(-1, n) for r in rows.reshape(-1, 8 * n)])
    want = qmath.quantize(_float_layernorm(model, qmath.dequantize(rows, x_t.scale, x_t.zero_point)),
                          y_t.scale, y_t.zero_point)
    err = np.abs(got.astype(np.int64) - want)
    k, _ = _sumsq(rows.astype(np.int64) - x_t.zero_point, op.params["prescale"], op.params["limit"])
    record(f"layernorm/error_n{n}", dict(rows_prescaled=round(float((k > 0).mean()), 3), max_abs_diff=int(err.max()),
                                         mean_abs_diff=round(float(err.mean()), 4)))
    assert err.max() <= 1 and err.mean() < 0.05, (err.max(), err.mean())


@pytest.mark.parametrize("n", [32, 384])
def test_c_equals_simulator_on_worst_rows(n, models_dir, tmp_path):
    """Host C (ASan+UBSan) and the Cortex-M7 in QEMU on rows that reach the pre-scale bound."""
    g = build_graph(quantized(dict(op="layernorm", shape=(4, n)), models_dir, f"ln_c_{n}"))
    (op,) = [o for o in g.ops if o.kind == "layernorm"]
    t = g.tensors[g.input]
    rows = _rows(n, 8, t.scale, t.zero_point, 1)
    k, _ = _sumsq(rows.astype(np.int64) - t.zero_point, op.params["prescale"], op.params["limit"])
    assert k.min() == 0 and (k.max() > 0) == (n > 64)  # n = 384: rows with and without a pre-scale
    exact_on_host_and_qemu(g, tmp_path, "se_layernorm_s8", inputs=rows.reshape(-1, 4 * n))


def test_negative_gamma_bit_exact_on_host_and_qemu(models_dir, tmp_path):
    """The output stage computes MBQM as floor((x m + 2^30) / 2^31) (se_mbqm_floor): exact for
    negative multipliers too, which a negative gamma gives. Half the channels' multipliers are
    negated (the simulator reads the same params); also the identity itself on extreme values."""
    a = np.array([-(2**31), -(2**31) + 1, -(2**30), -1, 0, 1, 2**30, 2**31 - 1], np.int64)
    b = np.array([-(2**31) + 1, -(2**30) - 1, -(2**30), 2**30, 2**31 - 1], np.int64)
    aa, bb = np.meshgrid(a, b)
    rng = np.random.default_rng(0)
    ra, rb = rng.integers(-(2**31), 2**31, 10_000), rng.integers(-(2**31) + 1, 2**31, 10_000)
    for x, m in ((aa.ravel(), bb.ravel()), (ra, rb)):
        np.testing.assert_array_equal(qmath.srdhm(x, m), (x * m + 2**30) >> 31)
    n = 48
    g = build_graph(quantized(dict(op="layernorm", shape=(4, n)), models_dir, "ln_neg"))
    (op,) = [o for o in g.ops if o.kind == "layernorm"]
    assert np.all(op.params["mult"] > 0)
    op.params["mult"] = np.where(np.arange(n) % 2 == 0, -op.params["mult"], op.params["mult"]).astype(np.int32)
    t = g.tensors[g.input]
    rows = _rows(n, 8, t.scale, t.zero_point, 2)[:12]
    exact_on_host_and_qemu(g, tmp_path, "se_layernorm_s8", inputs=rows.reshape(-1, 4 * n))
