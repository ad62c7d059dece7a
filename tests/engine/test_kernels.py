"""DSP kernels equal the portable ones and the simulator. Shapes that hit every path of the
*_dsp.c files (k % 4 tails, odd rows and columns, channel tails, strides, dilation, strided
MatMul views) are bit-exact with the simulator on the host (emulated DSP instructions,
ASan/UBSan) and in QEMU (real ones), and so is the portable build; the linker keeps only the
kernels a model calls."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import compile_verified, exact_on_host_and_qemu, force_requant_branches, quantized, record

from sparse_engine.bench.kernels import kernel_code
from sparse_engine.bindings.binary import add_dsp_fits
from sparse_engine.bindings.common import fast_requant
from sparse_engine.bindings.softmax import dsp_fits as softmax_dsp_fits
from sparse_engine.compiler import build_graph

CASES = {
    "conv_k_tail_odd_pixels": dict(op="conv", shape=(1, 3, 7, 5), cout=7),            # K=27, 35 pixels, 7 outputs
    "conv_stride2_dilated": dict(op="conv", shape=(1, 8, 11, 10), cout=6, stride=2, dilation=2, mean=0.5),
    "pointwise_odd_rows": dict(op="conv", shape=(1, 12, 3, 5), cout=9, k=1),
    "conv_rows_odd_width_odd_cout": dict(op="conv", shape=(1, 8, 7, 9), cout=7),
    "conv_rows_5x5_stride2": dict(op="conv", shape=(1, 4, 11, 10), cout=6, k=5, stride=2, mean=0.3),
    "conv_rows_relu": dict(op="conv", shape=(1, 12, 6, 6), cout=8, relu=True, mean=-0.2),
    "depthwise_channel_tail": dict(op="depthwise", shape=(1, 10, 6, 7), mean=-0.7),
    "depthwise3x3_rows_channel_tail": dict(op="depthwise", shape=(1, 10, 5, 13), mean=-0.3),
    "depthwise3x3_rows_stride2_odd": dict(op="depthwise", shape=(1, 6, 7, 33), stride=2, mean=0.4),
    "depthwise3x3_one_column": dict(op="depthwise", shape=(1, 12, 5, 1)),
    "depthwise3x3_cols_channel_tail": dict(op="depthwise", shape=(1, 10, 25, 5), mean=0.2),
    "depthwise3x3_cols_stride2_odd": dict(op="depthwise", shape=(1, 8, 35, 6), stride=2, mean=-0.5),
    "depthwise5x5_stride2": dict(op="depthwise", shape=(1, 8, 9, 9), k=5, stride=2),
    "depthwise5x5_channel_tail": dict(op="depthwise", shape=(1, 7, 8, 8), k=5, mean=0.3),
    "fc_one_row_tail": dict(op="gemm", shape=(1, 37), n=11, mean=0.8),
    "fc_odd_rows": dict(op="gemm", shape=(5, 20), n=6),
    "matmul_odd_all": dict(op="matmul_aa", shape=(7, 5), mean=0.3),
    "matmul_heads_views": dict(op="matmul_aa", shape=(1, 3, 9, 6)),
    "softmax_row_tail": dict(op="softmax", shape=(2, 3, 7), mean=0.4),
    "add_same_shape": dict(op="add", shape=(1, 6, 5, 7), mean=-0.4),
    "maxpool_3x3_pad_stride2": dict(op="maxpool", shape=(1, 8, 9, 9), k=3, stride=2, pad=1, mean=-0.4),
    "maxpool_2x2_odd_map": dict(op="maxpool", shape=(1, 12, 7, 9), k=2, stride=2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dsp_and_portable_bit_exact(name, models_dir, tmp_path):
    rep = compile_verified(quantized(CASES[name], models_dir, f"k_{name}"), tmp_path / "out")
    rungs = {r["rung"]: r for r in rep["verification"]}
    for rung in ("host C (ASan+UBSan)", "cortex-m7 in QEMU", "cortex-m7 in QEMU, portable kernels"):
        assert rungs[rung]["exact"], (rung, rungs[rung])
    dsp = [r for r in rep["layers"] if r["kernel"].endswith("_dsp")]
    assert dsp, [r["kernel"] for r in rep["layers"]]
    for r in dsp:
        assert r["instructions"] < r["portable_instructions"], r
    record(f"dsp {name}", {r["kernel"]: [r["instructions"], r["portable_instructions"]] for r in dsp})


def test_only_called_kernels_are_linked(models_dir, tmp_path):
    compile_verified(quantized(dict(op="conv", shape=(1, 8, 10, 10), cout=8), models_dir, "k_link_conv"),
                     tmp_path / "out")
    code = kernel_code(tmp_path / "out" / "build" / "cortex-m7" / "firmware.elf")
    assert "se_conv2d_rows_s8_dsp" in code
    unused = [s for s in code if any(k in s for k in ("softmax", "matmul", "layernorm", "depthwise", "se_fc",
                                                        "se_add", "se_mul", "pool", "concat"))]
    assert not unused, unused
    assert "se_conv2d_s8" not in code and "se_conv2d_s8_dsp" not in code  # nor the portable or general conv


@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("k,kernel", [(3, "se_depthwise3x3_s8_dsp"), (5, "se_depthwise_conv2d_s8_dsp")])
def test_depthwise_requant_branches(models_dir, tmp_path, left, k, kernel):
    """The rarer requantization branches, forced in the IR (the simulator reads the same params):
    a channel with right shift 0 and clamp bounds narrower than int8 (table path, SSAT not
    applicable), or a channel shifting left (no table: shifts decoded at run time)."""
    g = build_graph(quantized(dict(op="depthwise", shape=(1, 8, 4, 12), k=k), models_dir, f"k_dw_rq{k}"))
    (op,) = [o for o in g.ops if o.kind == "conv2d"]
    p = op.params
    table = force_requant_branches(p, left)
    assert fast_requant(p) and (table is None if left else (table[:, 1] == 0).sum() == 2)
    _, ref, _ = exact_on_host_and_qemu(g, tmp_path / "dw", kernel)
    assert (ref == -100).any() and (ref == 90).any()


def test_softmax_dsp_one_hot_rows(models_dir, tmp_path):
    """A row whose sum is exactly 2^16 (every other exp is 0) gives recip = 2^30, the row that
    se_softmax_s8_dsp requantizes the general way; forced by an exp table that is 0 past d = 0."""
    g = build_graph(quantized(dict(op="softmax", shape=(6, 9)), models_dir, "k_sm_onehot"))
    (op,) = [o for o in g.ops if o.kind == "softmax"]
    table = np.zeros_like(op.params["exp_table"])
    table[0], table[1] = 1 << 16, 3
    op.params["exp_table"] = table
    inputs, _, _ = exact_on_host_and_qemu(g, tmp_path, "se_softmax_s8_dsp")
    x = inputs.reshape(-1, 9).astype(np.int64)
    sums = table[x.max(axis=1, keepdims=True) - x].sum(axis=1)
    assert (sums == 1 << 16).any() and (sums > 1 << 16).any(), sums  # both paths ran
    assert not softmax_dsp_fits(op.params, 1 << 15)


@pytest.mark.parametrize("narrow", [False, True])
def test_add_dsp_branches(models_dir, tmp_path, narrow):
    """se_add_s8_dsp's table path with the output shifting left (right shift 0: no rounding term,
    tables shifted by 2) and, when `narrow`, clamp bounds narrower than int8 (no SSAT); forced in
    the IR, which the simulator reads too."""
    g = build_graph(quantized(dict(op="add", shape=(1, 5, 6, 6), mean=0.2), models_dir, "k_add_rq"))
    (op,) = [o for o in g.ops if o.kind == "add"]
    p = op.params
    assert 0 in (p["a_shift"], p["b_shift"])  # the larger scale's term has no rounding divide
    p["out_mult"], p["out_shift"] = p["out_mult"] >> (-p["out_shift"] - 1), 1  # the same scale x 4
    if narrow:
        p["act_min"], p["act_max"] = -100, 90
    assert add_dsp_fits(p, (1, 6, 6, 5), (1, 6, 6, 5), (1, 6, 6, 5))
    _, ref, _ = exact_on_host_and_qemu(g, tmp_path, "se_add_s8_dsp")
    lo, hi = (-100, 90) if narrow else (-128, 127)
    assert (ref == lo).any() and (ref == hi).any() and ((ref > lo) & (ref < hi)).any()


def test_add_dsp_preconditions():
    """Broadcasting, a left-shifting input term, or an output left shift that would overflow the
    doubled sum send an Add to the portable kernel."""
    p = dict(a_zp=-3, b_zp=10, left_shift=20, a_mult=1 << 30, a_shift=0, b_mult=1518500250, b_shift=-1,
             out_mult=1 << 30, out_shift=1)
    s = (1, 4, 4, 8)
    assert add_dsp_fits(p, s, s, s)
    assert not add_dsp_fits(p, s, (1, 1, 1, 8), s)
    assert not add_dsp_fits({**p, "b_shift": 1}, s, s, s)
    assert add_dsp_fits({**p, "out_shift": 3}, s, s, s) and not add_dsp_fits({**p, "out_shift": 4}, s, s, s)
    assert not add_dsp_fits({**p, "left_shift": 23}, s, s, s)
