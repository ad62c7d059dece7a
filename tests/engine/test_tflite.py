"""TFLite frontend: every op against LiteRT's reference kernels (the ground truth of TFLite int8
semantics): the simulator's every tensor equal to LiteRT's, and for every case the whole ladder
(host C, Cortex-M7 DSP and portable in QEMU, LiteRT) bit-exact; MLPerf Tiny's trained models;
one-line errors for what the frontend cannot run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
import tflite_models as tm  # noqa: E402
import tflite_to_qdq  # noqa: E402
from conftest import ROOT  # noqa: E402

from sparse_engine import compiler, simulator, verify  # noqa: E402
from sparse_engine.compiler import compile_model  # noqa: E402

MLPERF = ROOT.parent / "shared" / "data" / "mlperf_tiny"

CASES = {
    "conv3x3_same": lambda: tm.conv(),
    "conv3x3_valid_stride2_relu": lambda: tm.conv(shape=(1, 11, 9, 3), cout=6, stride=2, padding="valid",
                                                  act="relu", zp=-128),
    "conv5x5_same_stride2_relu6": lambda: tm.conv(shape=(1, 10, 10, 4), cout=5, k=5, stride=2, act="relu6", zp=30),
    "conv_dilated": lambda: tm.conv(shape=(1, 9, 9, 4), cout=4, dilation=2, seed=1),
    "conv1x1_per_tensor": lambda: tm.conv(shape=(1, 6, 6, 16), cout=24, k=1, per_channel=False),
    "depthwise3x3_same": lambda: tm.conv(shape=(1, 9, 9, 12), depthwise=True),
    "depthwise3x3_stride2_relu": lambda: tm.conv(shape=(1, 10, 10, 8), depthwise=True, stride=2, act="relu"),
    "depthwise_mult2_valid": lambda: tm.conv(shape=(1, 7, 7, 4), depthwise=True, mult=2, padding="valid"),
    "fc": lambda: tm.fully_connected(),
    "fc_rows_relu_nobias": lambda: tm.fully_connected(rows=3, k=17, n=9, act="relu", bias=False),
    "fc_relu_n1_to_1": lambda: tm.fully_connected(k=64, n=30, act="relu_n1_to_1"),
    "avgpool_2x2": lambda: tm.pool("avg"),
    "avgpool_3x3_same": lambda: tm.pool("avg", shape=(1, 7, 7, 5), k=3, stride=1, padding="same"),
    "avgpool_global_5x5": lambda: tm.pool("avg", shape=(1, 5, 5, 8), k=5, stride=1),
    "avgpool_relu": lambda: tm.pool("avg", shape=(1, 6, 6, 4), k=3, stride=3, act="relu", zp=10),
    "maxpool_3x3_same_stride2": lambda: tm.pool("max", shape=(1, 9, 9, 4), k=3, stride=2, padding="same"),
    "add_activations": lambda: tm.binary("add"),
    "add_const_broadcast_relu": lambda: tm.binary("add", other=(8,), act="relu"),
    "sub_activations": lambda: tm.binary("sub", r_scale=0.08),
    "sub_const_broadcast_relu6": lambda: tm.binary("sub", other=(1, 1, 8), act="relu6"),
    "mul_activations": lambda: tm.binary("mul"),
    "mul_const_channel": lambda: tm.binary("mul", other=(1, 1, 1, 8)),
    "softmax": lambda: tm.unary("softmax"),
    "softmax_wide": lambda: tm.unary("softmax", shape=(1, 300)),
    "logistic": lambda: tm.unary("logistic"),
    "tanh": lambda: tm.unary("tanh"),
    "relu": lambda: tm.unary("relu"),
    "relu6": lambda: tm.unary("relu6"),
    "hard_swish": lambda: tm.unary("hard_swish"),
    "quantize_requant": lambda: tm.unary("quantize"),
    "dequantize_quantize_halves": lambda: tm.dequantize_quantize(),
    "dequantize_quantize": lambda: tm.dequantize_quantize(out_q=(0.0371, -50)),
    "mean_hw": lambda: tm.unary("mean", shape=(1, 5, 7, 6)),
    "conv_reshape_fc_softmax": lambda: tm.reshape_chain(),
    "pad_conv_valid_stride2": lambda: tm.pad_conv(),
    "pad_wider_than_the_kernel_same": lambda: tm.pad_conv(pads=((3, 1), (0, 4)), padding="same", stride=1),
    "padv2_depthwise_same": lambda: tm.pad_conv(pads=((2, 0), (1, 1)), padding="same", stride=1, depthwise=True,
                                                v2=True),
    "batch_matmul_adj_y": lambda: tm.batch_matmul(),
    "batch_matmul_adj_x_const_broadcast": lambda: tm.batch_matmul(a_shape=(2, 16, 6), b_shape=(16, 5), adj_x=True,
                                                                  adj_y=False, const=True),
    "squeeze_transpose": lambda: tm.layout_chain(),
    "concat_channels": lambda: tm.concat(3),
    "concat_rows": lambda: tm.concat(1),
}


def _model(name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(CASES[name]())
    return path


def litert_trace(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor LiteRT's reference kernels computed for input x, by name."""
    it = verify.litert_interpreter(path, keep_tensors=True)
    it.set_tensor(it.get_input_details()[0]["index"], x.reshape(it.get_input_details()[0]["shape"]))
    it.invoke()
    return {t["name"]: it.get_tensor(t["index"]) for t in it.get_tensor_details() if t["dtype"] == np.int8}


def assert_trace_matches(path: Path, inputs: np.ndarray) -> int:
    """Every int8 tensor the simulator computes equals LiteRT's; returns the tensors compared."""
    g = compiler.build_graph(path)
    compared = 0
    for x in inputs:
        ours: dict = {}
        simulator.run(g, x, ours)
        theirs = litert_trace(path, x)
        checked = set()
        for op in g.ops:
            name = op.outputs[0]
            if name not in theirs:  # a helper tensor of ours (an operand's transposed copy)
                continue
            diff = ours[name].reshape(-1).astype(int) != theirs[name].reshape(-1).astype(int)
            assert not diff.any(), f"{op.onnx_op} '{name}': {int(diff.sum())} of {diff.size} elements differ"
            checked.add(op.name)
            compared += 1
        assert checked == {op.name for op in g.ops}, "an operator's output was not compared"
    return compared


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_equals_litert_reference(name, tmp_path):
    path = _model(name, tmp_path)
    g = compiler.build_graph(path)
    x = np.random.default_rng(1).integers(-128, 128, size=(24, g.tensors[g.input].size)).astype(np.int8)
    assert assert_trace_matches(path, x[:4]) >= 4
    ours = verify.simulate(g, x)
    theirs = verify.litert_outputs(path, g, x)
    assert ours.shape == theirs.shape and (ours == theirs).all()
    assert len(np.unique(ours)) > 2, "the case saturates: it would not test the rounding"


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_bit_exact_on_every_rung(name, tmp_path):
    rep = compile_model(_model(name, tmp_path), tmp_path / "out", verify_ladder=True, n_random=16,
                        progress=lambda *_: None).report
    rungs = {r["rung"]: r for r in rep["verification"]}
    assert {"host C (ASan+UBSan)", "cortex-m7 in QEMU", "cortex-m7 in QEMU, portable kernels",
            "LiteRT reference kernels"} <= set(rungs)
    for r in rep["verification"][1:]:
        assert r["exact"] and r["differing"] == 0, r


def test_batched_simulation_equals_one_input_at_a_time(tmp_path):
    """simulator.run_batch stacks inputs on the leading axis where every op allows it and loops
    elsewhere; either way each output equals simulator.run's."""
    paths = [_model(name, tmp_path) for name in sorted(CASES)]
    paths += sorted(MLPERF.glob("*.tflite")) if MLPERF.exists() else []
    stacked = 0
    for path in paths:
        g = compiler.build_graph(path)
        x = np.random.default_rng(4).integers(-128, 128, size=(5, g.tensors[g.input].size)).astype(np.int8)
        one = np.stack([simulator.run(g, xi).reshape(-1) for xi in x])
        assert (simulator.run_batch(g, x) == one).all(), path.name
        stacked += simulator.batchable(g)
    assert 0 < stacked < len(paths)  # both branches ran (BATCH_MATMUL's strided views loop)


def test_input_is_nhwc_without_a_layout_copy(tmp_path):
    g = compiler.build_graph(_model("conv3x3_same", tmp_path))
    assert g.tensors[g.input].shape == (1, 9, 9, 4)
    assert [op.kind for op in g.ops] == ["conv2d"]


@pytest.mark.skipif(not MLPERF.exists(), reason="../shared/data/mlperf_tiny is not beside the clone")
@pytest.mark.parametrize("model", ["ad_autoencoder", "ic_resnet8", "kws_dscnn", "vww_mobilenetv1"])
def test_mlperf_tiny_every_tensor_equals_litert(model):
    path = MLPERF / f"{model}_int8.tflite"
    g = compiler.build_graph(path)
    x = np.random.default_rng(2).integers(-128, 128, size=(3, g.tensors[g.input].size)).astype(np.int8)
    assert assert_trace_matches(path, x) == 3 * len(g.ops)


@pytest.mark.skipif(not MLPERF.exists(), reason="../shared/data/mlperf_tiny is not beside the clone")
def test_mlperf_tiny_kws_ladder(tmp_path):
    rep = compile_model(MLPERF / "kws_dscnn_int8.tflite", tmp_path / "out", verify_ladder=True, n_random=4,
                        progress=lambda *_: None).report
    assert all(r["exact"] for r in rep["verification"][1:]), rep["verification"]
    assert rep["verification"][-1]["rung"] == "LiteRT reference kernels"


@pytest.mark.skipif(not MLPERF.exists(), reason="../shared/data/mlperf_tiny is not beside the clone")
@pytest.mark.parametrize("model", ["ad_autoencoder", "ic_resnet8", "kws_dscnn", "vww_mobilenetv1"])
def test_mlperf_tiny_qdq_onnx_twin_computes_the_same_bits(model, tmp_path):
    """The model converted to QDQ ONNX (NCHW, as quantize_static writes it) goes through the ONNX
    frontend and layout pass to the same integer graph: every tensor equal to the .tflite path's."""
    import onnx

    path = MLPERF / f"{model}_int8.tflite"
    twin = tmp_path / f"{model}.onnx"
    onnx.save(tflite_to_qdq.convert(path), str(twin))
    gt, go = compiler.build_graph(path), compiler.build_graph(twin)
    shape = gt.tensors[gt.input].shape
    x = np.random.default_rng(3).integers(-128, 128, size=(16, *shape[1:])).astype(np.int8)
    x_nchw = np.transpose(x, (0, 3, 1, 2)) if len(shape) == 4 else x
    assert go.tensors[go.input].shape[1:] == x_nchw.shape[1:]
    for i in range(3):
        ours, twins = {}, {}
        simulator.run(gt, x[i].reshape(-1), ours)
        simulator.run(go, x_nchw[i].reshape(-1), twins)
        for op in gt.ops:
            name = op.outputs[0]
            assert (ours[name].reshape(-1) == twins[name].reshape(-1)).all(), f"'{name}' differs"
    a = verify.simulate(gt, x.reshape(16, -1))
    assert (a == verify.simulate(go, x_nchw.reshape(16, -1))).all()
    assert len(np.unique(a)) > 2


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparse_engine", "compile", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def _one_line_error(res: subprocess.CompletedProcess, *words: str) -> str:
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("[")]  # not progress
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def _refused(tmp_path: Path, b: tm.Builder, x: int, y: int, *words: str) -> str:
    """The model b builds (input x, output y) is refused by the CLI with one line holding `words`."""
    path = tmp_path / "model.tflite"
    path.write_bytes(b.build(x, y))
    return _one_line_error(_cli(path, "--out", tmp_path / "o"), *words)


def test_truncated_tflite_is_one_line(tmp_path):
    data = tm.conv()
    for n, cut in enumerate((3, 40, len(data) // 2)):
        bad = tmp_path / f"cut{n}.tflite"
        bad.write_bytes(data[:cut])
        _one_line_error(_cli(bad, "--out", tmp_path / "o", "--target", "host"), str(bad))
    assert not (tmp_path / "o").exists()


def test_float_model_is_one_line(tmp_path):
    b = tm.Builder()
    x = b.tensor("x", (1, 8), 0)
    y = b.tensor("y", (1, 8), 0)
    b.op(tm.s.BuiltinOperator.RELU, [x], [y])
    _refused(tmp_path, b, x, y, "float model")


def test_unsupported_op_is_one_line(tmp_path):
    b = tm.Builder()
    x = b.act("x", (1, 8), 0.1, 0)
    y = b.act("y", (1, 8), 0.1, 0)
    b.op(tm.s.BuiltinOperator.SQRT, [x], [y])
    _refused(tmp_path, b, x, y, "'#0 y' (SQRT)", "unsupported op type")


def test_per_channel_weights_on_the_wrong_axis_are_one_line(tmp_path):
    data = tm.conv()
    path = tmp_path / "axis.tflite"
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(data, 0)
    m.subgraphs[0].tensors[1].quantization.quantizedDimension = 3  # 8 scales along the 4 input channels
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    _one_line_error(_cli(path, "--out", tmp_path / "o"), "weight 'w'", "axis 3")


def test_pad_that_does_not_fold_into_a_convolution_is_one_line(tmp_path):
    b = tm.Builder()
    x = b.act("x", (1, 4, 4, 2), 0.1, 0)
    p = b.act("p", (1, 6, 6, 2), 0.1, 0)
    b.op(tm.s.BuiltinOperator.PAD, [x, b.const_i32("pads", [[0, 0], [1, 1], [1, 1], [0, 0]])], [p])
    y = b.act("y", (1, 6, 6, 2), 0.1, 0)
    b.op(tm.s.BuiltinOperator.RELU, [p], [y])
    _refused(tmp_path, b, x, y, "'#0 p' (PAD)", "CONV_2D")


def test_dequantize_feeding_float_ops_is_one_line(tmp_path):
    b = tm.Builder()
    x = b.act("x", (1, 8), 0.1, 0)
    f = b.tensor("f", (1, 8), 0)
    b.op(tm.s.BuiltinOperator.DEQUANTIZE, [x], [f])
    g = b.tensor("g", (1, 8), 0)
    b.op(tm.s.BuiltinOperator.RELU, [f], [g])
    y = b.act("y", (1, 8), 0.1, 0)
    b.op(tm.s.BuiltinOperator.QUANTIZE, [g], [y])
    _refused(tmp_path, b, x, y, "'#0 f' (DEQUANTIZE)", "float ops")
