"""Done-when 1 and 2: every op, several shapes/strides/paddings/zero points:
simulator == host C (ASan/UBSan) == Cortex-M7 in QEMU bit for bit, and onnxruntime within 1."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import compile_verified, quantized, record

from sparse_engine import verify

CASES = {
    "conv3x3_pad1": dict(op="conv", shape=(1, 8, 10, 10), cout=16),
    "conv3x3_stride2": dict(op="conv", shape=(1, 4, 11, 9), cout=8, stride=2, mean=0.7),
    "conv5x5_pad0_nobias": dict(op="conv", shape=(1, 3, 12, 12), cout=6, k=5, pad=0, bias=False),
    "conv_dilated": dict(op="conv", shape=(1, 4, 9, 9), cout=4, dilation=2),
    "conv_relu": dict(op="conv", shape=(1, 6, 8, 8), cout=8, relu=True, mean=-0.5),
    "pointwise": dict(op="conv", shape=(1, 16, 6, 6), cout=24, k=1),
    "depthwise3x3": dict(op="depthwise", shape=(1, 12, 9, 9)),
    "depthwise3x3_stride2": dict(op="depthwise", shape=(1, 8, 10, 10), stride=2, mean=1.0),
    "depthwise5x5": dict(op="depthwise", shape=(1, 6, 8, 8), k=5),
    "depthwise_mult2": dict(op="depthwise", shape=(1, 4, 7, 7), mult=2),
    "gemm_transB": dict(op="gemm", shape=(1, 48), n=20),
    "gemm_noTransB": dict(op="gemm", shape=(3, 17), n=9, transB=0, mean=0.5),
    "matmul_weights_3d": dict(op="matmul_w", shape=(1, 12, 32), n=24),
    "matmul_qkT_4d": dict(op="matmul_aa", shape=(1, 2, 16, 8)),
    "matmul_2d": dict(op="matmul_aa", shape=(10, 6), mean=0.4),
    "add_activations": dict(op="add", shape=(1, 4, 6, 6)),
    "add_const_broadcast": dict(op="add", shape=(1, 5, 7), other=(7,), mean=-0.3),
    "sub_activations": dict(op="sub", shape=(1, 4, 6, 6)),
    "sub_const_broadcast": dict(op="sub", shape=(1, 5, 7), other=(7,), mean=0.3),
    "mul_activations": dict(op="mul", shape=(2, 3, 5)),
    "mul_const_channel": dict(op="mul", shape=(1, 8, 4, 4), other=(8, 1, 1)),
    "relu": dict(op="relu", shape=(1, 3, 5, 5), mean=0.2),
    "clip_relu6": dict(op="clip", shape=(1, 40), lo=0.0, hi=6.0, mean=1.0),
    "avgpool_2x2": dict(op="avgpool", shape=(1, 6, 8, 8), k=2, stride=2),
    "avgpool_3x3_pad_excluded": dict(op="avgpool", shape=(1, 5, 7, 7), k=3, stride=1, pad=1, mean=0.6),
    "avgpool_3x3_pad_included": dict(op="avgpool", shape=(1, 5, 7, 7), k=3, stride=2, pad=1, include_pad=1),
    "global_avgpool": dict(op="gap", shape=(1, 16, 8, 8)),
    "maxpool_2x2": dict(op="maxpool", shape=(1, 6, 8, 8), k=2, stride=2),
    "maxpool_3x3_pad1_stride2": dict(op="maxpool", shape=(1, 4, 9, 9), k=3, stride=2, pad=1, mean=-0.4),
    "reshape_4d_to_3d": dict(op="reshape", shape=(1, 8, 4, 4), to=[1, 8, 16]),
    "flatten": dict(op="flatten", shape=(1, 4, 3, 3)),
    "transpose_4d": dict(op="transpose", shape=(1, 6, 4, 5), perm=[0, 2, 3, 1]),
    "transpose_3d": dict(op="transpose", shape=(2, 5, 7), perm=[2, 0, 1]),
    "concat_channels": dict(op="concat", shape=(1, 3, 4, 4), axis=1),
    "concat_last": dict(op="concat", shape=(2, 3, 5), axis=-1),
    "softmax_rows": dict(op="softmax", shape=(1, 2, 8, 16)),
    "softmax_wide": dict(op="softmax", shape=(4, 64), mean=2.0),
    "layernorm": dict(op="layernorm", shape=(1, 12, 32)),
    "layernorm_offset": dict(op="layernorm", shape=(3, 24), mean=3.0),
    "gelu": dict(op="gelu", shape=(1, 64)),
    "sigmoid": dict(op="sigmoid", shape=(2, 4, 6), mean=-1.0),
    "batchnorm_after_conv": dict(op="batchnorm", shape=(1, 4, 6, 6), cout=8),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_bit_exact_and_close_to_onnxruntime(name, models_dir, tmp_path):
    case = CASES[name]
    model = quantized(case, models_dir, name)
    rep = compile_verified(model, tmp_path / "out")
    rungs = {r["rung"]: r for r in rep["verification"]}
    assert rungs["host C (ASan+UBSan)"]["exact"], rungs
    assert rungs["cortex-m7 in QEMU"]["exact"], rungs
    ort = rungs["onnxruntime"]
    record(f"ops/{name}", dict(share_differing=round(ort["share_differing"], 4), max_abs_diff=ort["max_abs_diff"],
                               instructions=rep["totals"]["instructions"]))
    assert ort["max_abs_diff"] <= 1, ort
    assert (tmp_path / "out" / "model.c").exists() and (tmp_path / "out" / "report.md").exists()


def test_onnxruntime_rung_runs_the_qdq_graph_as_written(models_dir):
    """The onnxruntime rung equals ONNX's own reference evaluator on the QDQ graph (float ops
    between Dequantize and Quantize) within one step, whatever the host CPU: onnxruntime's fused
    integer conv saturates on AVX2 hosts without VNNI (73 steps off here before D22)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from sparse_engine.compiler import build_graph
    from sparse_engine.qmath import quantize

    path = quantized(CASES["pointwise"], models_dir, "pointwise")
    g = build_graph(onnx.load(path))
    x = verify.load_inputs(g, None, 6, 0)  # the full int8 range, as the ladder feeds it
    tin, tout = g.tensors[g.input], g.tensors[g.output]
    ref = ReferenceEvaluator(str(path))
    want = np.stack([quantize(ref.run(None, {"x": ((r.astype(np.float32) - tin.zero_point) * np.float32(tin.scale))
                                             .reshape(tin.shape)})[0], tout.scale, tout.zero_point).reshape(-1)
                     for r in x])
    got = verify.onnxruntime_outputs(path, g, x)
    assert np.abs(got.astype(np.int64) - want).max() <= 1
