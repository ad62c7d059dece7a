"""Small int8 TFLite models for the frontend tests, written with LiteRT's flatbuffer schema (its
object API), with seeded random weights: no converter (tensorflow) needed, and LiteRT runs them
as it runs a converter's output. One operator per model, or a short chain."""
from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as s

ACT = {None: 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
PAD = {"same": 0, "valid": 1}


@dataclass
class Builder:
    """Tensors and operators of one subgraph; `build()` returns the .tflite bytes."""

    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=lambda: [s.BufferT()])
    ops: list = field(default_factory=list)
    codes: list = field(default_factory=list)

    def tensor(self, name: str, shape, dtype: int = 9, scale=None, zp=None, data: np.ndarray | None = None,
               axis: int = 0) -> int:
        t = s.TensorT()
        t.name, t.shape, t.type = name.encode(), np.array(shape, np.int32), dtype
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(scale, np.float32))
            q.zeroPoint = np.atleast_1d(np.asarray(zp if zp is not None else 0, np.int64))
            q.quantizedDimension = axis
            t.quantization = q
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def act(self, name: str, shape, scale: float, zp: int) -> int:
        return self.tensor(name, shape, 9, scale, zp)

    def weights(self, name: str, shape, axis: int, per_channel: bool = True) -> tuple[int, np.ndarray]:
        w = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        n = shape[axis] if per_channel else 1
        ws = self.rng.uniform(0.002, 0.02, size=n).astype(np.float32)
        return self.tensor(name, shape, 9, ws, np.zeros(n, np.int64), w, axis), ws

    def bias(self, name: str, n: int, acc_scale: np.ndarray) -> int:
        b = self.rng.integers(-3000, 3000, size=n).astype(np.int32)
        sc = np.atleast_1d(np.asarray(acc_scale, np.float32))  # one scale per tensor, or per channel
        return self.tensor(name, (n,), 2, sc, np.zeros(sc.size, np.int64), b)

    def const_i32(self, name: str, values) -> int:
        v = np.asarray(values, np.int32)
        return self.tensor(name, v.shape, 2, data=v)

    def op(self, code: int, inputs, outputs, opt_type: int = 0, opt=None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = opt_type, opt
        self.ops.append(o)

    def build(self, inp: int, out: int) -> bytes:
        sg = s.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs = self.tensors, self.ops, [inp], [out]
        m = s.ModelT()
        m.version, m.subgraphs, m.buffers, m.description = 3, [sg], self.buffers, b"tests"
        codes = []
        for c in self.codes:
            oc = s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = c, min(c, 127), 1
            codes.append(oc)
        m.operatorCodes = codes
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _out_scale(in_scale: float, w_scale: float, k: int) -> float:
    """An output scale that keeps typical accumulators inside int8 without saturating most."""
    return float(in_scale * w_scale * 64 * np.sqrt(k) / 12)


def _conv_layer(b: Builder, x: int, shape, cout: int, k: int, stride: int, padding: str, dilation: int, act,
                depthwise: bool, mult: int, per_channel: bool, y_zp: int) -> int:
    """A CONV_2D or DEPTHWISE_CONV_2D (k x k, random weights and bias) reading activation x of
    `shape` at scale 0.05; returns its output tensor."""
    n, h, w, c = shape
    cout = c * mult if depthwise else cout
    wshape = (1, k, k, cout) if depthwise else (cout, k, k, c)
    wi, ws = b.weights("w", wshape, 3 if depthwise else 0, per_channel)
    bi = b.bias("b", cout, 0.05 * ws)
    eff = (k - 1) * dilation + 1
    oh = -(-h // stride) if padding == "same" else (h - eff) // stride + 1
    ow = -(-w // stride) if padding == "same" else (w - eff) // stride + 1
    y = b.act("y", (n, oh, ow, cout), _out_scale(0.05, float(ws.mean()), k * k * (1 if depthwise else c)), y_zp)
    if depthwise:
        o = s.DepthwiseConv2DOptionsT()
        o.depthMultiplier = mult
        b.op(s.BuiltinOperator.DEPTHWISE_CONV_2D, [x, wi, bi], [y], s.BuiltinOptions.DepthwiseConv2DOptions, o)
    else:
        o = s.Conv2DOptionsT()
        b.op(s.BuiltinOperator.CONV_2D, [x, wi, bi], [y], s.BuiltinOptions.Conv2DOptions, o)
    o.padding, o.strideH, o.strideW = PAD[padding], stride, stride
    o.dilationHFactor = o.dilationWFactor = dilation
    o.fusedActivationFunction = ACT[act]
    return y


def conv(shape=(1, 9, 9, 4), cout=8, k=3, stride=1, padding="same", dilation=1, act=None, zp=-5,
         depthwise=False, mult=1, per_channel=True, seed=0) -> bytes:
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", shape, 0.05, zp)
    y = _conv_layer(b, x, shape, cout, k, stride, padding, dilation, act, depthwise, mult, per_channel, 3)
    return b.build(x, y)


def fully_connected(rows=1, k=48, n=20, act=None, zp=7, bias=True, seed=0) -> bytes:
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", (rows, k), 0.04, zp)
    wi, ws = b.weights("w", (n, k), 0, per_channel=False)
    ins = [x, wi, b.bias("b", n, 0.04 * ws) if bias else -1]
    y = b.act("y", (rows, n), _out_scale(0.04, float(ws[0]), k), -10)
    o = s.FullyConnectedOptionsT()
    o.fusedActivationFunction = ACT[act]
    b.op(s.BuiltinOperator.FULLY_CONNECTED, ins, [y], s.BuiltinOptions.FullyConnectedOptions, o)
    return b.build(x, y)


def pool(kind="avg", shape=(1, 8, 8, 6), k=2, stride=2, padding="valid", act=None, zp=-20, seed=0) -> bytes:
    b = Builder(np.random.default_rng(seed))
    n, h, w, c = shape
    x = b.act("x", shape, 0.03, zp)
    oh = -(-h // stride) if padding == "same" else (h - k) // stride + 1
    ow = -(-w // stride) if padding == "same" else (w - k) // stride + 1
    y = b.act("y", (n, oh, ow, c), 0.03, zp)  # TFLite's int8 pools keep the input's quantization
    o = s.Pool2DOptionsT()
    o.padding, o.strideH, o.strideW, o.filterHeight, o.filterWidth = PAD[padding], stride, stride, k, k
    o.fusedActivationFunction = ACT[act]
    code = s.BuiltinOperator.AVERAGE_POOL_2D if kind == "avg" else s.BuiltinOperator.MAX_POOL_2D
    b.op(code, [x], [y], s.BuiltinOptions.Pool2DOptions, o)
    return b.build(x, y)


BINARY = {"add": (s.BuiltinOperator.ADD, s.BuiltinOptions.AddOptions, s.AddOptionsT),
          "sub": (s.BuiltinOperator.SUB, s.BuiltinOptions.SubOptions, s.SubOptionsT),
          "mul": (s.BuiltinOperator.MUL, s.BuiltinOptions.MulOptions, s.MulOptionsT)}


def binary(kind="add", shape=(1, 5, 5, 8), other=None, act=None, r_scale=0.05, seed=0) -> bytes:
    """ADD, SUB or MUL of the input and a second operand: an activation computed from it (RELU,
    requantized to `r_scale`) or, with `other`, an int8 constant of that (broadcast) shape."""
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", shape, 0.05, 4)
    if other is None:
        r = b.act("r", shape, r_scale, 4)
        b.op(s.BuiltinOperator.RELU, [x], [r])
    else:
        r = b.tensor("c", other, 9, 0.02, -3, b.rng.integers(-128, 128, size=other).astype(np.int8))
    y = b.act("y", shape, 0.01 if kind == "mul" else 0.07, -6)
    code, opt_type, opt_cls = BINARY[kind]
    o = opt_cls()
    o.fusedActivationFunction = ACT[act]
    b.op(code, [x, r], [y], opt_type, o)
    return b.build(x, y)


def unary(kind: str, shape=(1, 4, 4, 16), seed=0) -> bytes:
    """SOFTMAX, LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, QUANTIZE (a requantization) or MEAN over H,
    W, with the output quantization TFLite requires of each."""
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", shape, 0.06, -2)
    out_q = {"softmax": (1 / 256, -128), "logistic": (1 / 256, -128), "tanh": (1 / 128, 0),
             "relu": (0.03, -128), "relu6": (0.025, -128), "hard_swish": (0.02, -40), "quantize": (0.09, 11), "mean": (0.02, 5)}[kind]
    oshape = (shape[0], 1, 1, shape[3]) if kind == "mean" else shape
    y = b.act("y", oshape, *out_q)
    if kind == "softmax":
        o = s.SoftmaxOptionsT()
        o.beta = 1.0
        b.op(s.BuiltinOperator.SOFTMAX, [x], [y], s.BuiltinOptions.SoftmaxOptions, o)
    elif kind == "mean":
        o = s.ReducerOptionsT()
        o.keepDims = True
        b.op(s.BuiltinOperator.MEAN, [x, b.const_i32("axes", [1, 2])], [y], s.BuiltinOptions.ReducerOptions, o)
    else:
        b.op(getattr(s.BuiltinOperator, kind.upper()), [x], [y])
    return b.build(x, y)


def reshape_chain(shape=(1, 4, 4, 6), seed=0) -> bytes:
    """CONV_2D -> RESHAPE to [1, 96] -> FULLY_CONNECTED -> SOFTMAX: a small classifier."""
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", shape, 0.05, 0)
    wi, ws = b.weights("w", (6, 3, 3, shape[3]), 0)
    c = b.act("c", shape[:3] + (6,), _out_scale(0.05, float(ws.mean()), 9 * shape[3]), -128)
    o = s.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW, o.fusedActivationFunction = 0, 1, 1, 1
    b.op(s.BuiltinOperator.CONV_2D, [x, wi, b.bias("cb", 6, 0.05 * ws)], [c], s.BuiltinOptions.Conv2DOptions, o)
    sc = float(b.tensors[c].quantization.scale[0])
    k = int(np.prod(shape[1:3])) * 6
    r = b.tensor("r", (1, k), 9, sc, -128)
    ro = s.ReshapeOptionsT()
    ro.newShape = [1, k]
    b.op(s.BuiltinOperator.RESHAPE, [c, b.const_i32("shape", [1, k])], [r], s.BuiltinOptions.ReshapeOptions, ro)
    fi, fs = b.weights("fw", (10, k), 0, per_channel=False)
    f = b.act("f", (1, 10), _out_scale(sc, float(fs[0]), k), 0)
    fo = s.FullyConnectedOptionsT()
    b.op(s.BuiltinOperator.FULLY_CONNECTED, [r, fi, b.bias("fb", 10, sc * fs)], [f],
         s.BuiltinOptions.FullyConnectedOptions, fo)
    y = b.act("y", (1, 10), 1 / 256, -128)
    so = s.SoftmaxOptionsT()
    so.beta = 1.0
    b.op(s.BuiltinOperator.SOFTMAX, [f], [y], s.BuiltinOptions.SoftmaxOptions, so)
    return b.build(x, y)


def pad_conv(shape=(1, 7, 8, 4), pads=((1, 2), (0, 1)), padding="valid", stride=2, depthwise=False,
             v2=False, seed=0) -> bytes:
    """PAD (or PADV2 with the zero point as value) of H and W, then a 3x3 convolution: Keras's
    ZeroPadding2D in front of a strided VALID convolution."""
    b = Builder(np.random.default_rng(seed))
    n, h, w, c = shape
    x = b.act("x", shape, 0.05, -9)
    ph, pw = h + sum(pads[0]), w + sum(pads[1])
    p = b.act("p", (n, ph, pw, c), 0.05, -9)
    ins = [x, b.const_i32("pads", [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])]
    if v2:
        ins.append(b.tensor("value", (1,), 9, 0.05, -9, np.array([-9], np.int8)))
    b.op(s.BuiltinOperator.PADV2 if v2 else s.BuiltinOperator.PAD, ins, [p])
    y = _conv_layer(b, p, (n, ph, pw, c), 6, 3, stride, padding, 1, None, depthwise, 1, True, 2)
    return b.build(x, y)


def batch_matmul(a_shape=(2, 6, 16), b_shape=(2, 6, 16), adj_x=False, adj_y=True, const=False, seed=0) -> bytes:
    """BATCH_MATMUL of the input and RELU(input) requantized (attention's Q.K^T when adj_y), or of
    the input and an int8 constant of `b_shape`."""
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", a_shape, 0.05, 3)
    if const:
        r = b.tensor("c", b_shape, 9, 0.03, -2, b.rng.integers(-128, 128, size=b_shape).astype(np.int8))
    else:
        r = b.act("r", a_shape, 0.04, -7)
        b.op(s.BuiltinOperator.RELU, [x], [r])
    m = a_shape[-1] if adj_x else a_shape[-2]
    k = a_shape[-2] if adj_x else a_shape[-1]
    nn = b_shape[-2] if adj_y else b_shape[-1]
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    y = b.act("y", tuple(batch) + (m, nn), 0.05 * 0.04 * 64 * np.sqrt(k) / 12, 5)
    o = s.BatchMatMulOptionsT()
    o.adjX, o.adjY = adj_x, adj_y
    b.op(s.BuiltinOperator.BATCH_MATMUL, [x, r], [y], s.BuiltinOptions.BatchMatMulOptions, o)
    return b.build(x, y)


def layout_chain(seed=0) -> bytes:
    """SQUEEZE [1, 1, 6, 8] -> [1, 6, 8], TRANSPOSE to [1, 8, 6], RELU (a requantization)."""
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", (1, 1, 6, 8), 0.05, 2)
    q = b.act("q", (1, 6, 8), 0.05, 2)
    o = s.SqueezeOptionsT()
    o.squeezeDims = [1]
    b.op(s.BuiltinOperator.SQUEEZE, [x], [q], s.BuiltinOptions.SqueezeOptions, o)
    t = b.act("t", (1, 8, 6), 0.05, 2)
    b.op(s.BuiltinOperator.TRANSPOSE, [q, b.const_i32("perm", [0, 2, 1])], [t])
    y = b.act("y", (1, 8, 6), 0.03, -128)
    b.op(s.BuiltinOperator.RELU, [t], [y])
    return b.build(x, y)


def concat(axis=3, seed=0) -> bytes:
    """CONCATENATION of the input and RELU(input): TFLite's int8 concatenation needs one
    quantization on every input and the output."""
    b = Builder(np.random.default_rng(seed))
    shape = (1, 4, 5, 6)
    x = b.act("x", shape, 0.05, 2)
    r = b.act("r", shape, 0.05, 2)
    b.op(s.BuiltinOperator.RELU, [x], [r])
    oshape = list(shape)
    oshape[axis] *= 2
    y = b.act("y", oshape, 0.05, 2)
    o = s.ConcatenationOptionsT()
    o.axis = axis
    b.op(s.BuiltinOperator.CONCATENATION, [x, r], [y], s.BuiltinOptions.ConcatenationOptions, o)
    return b.build(x, y)


def dequantize_quantize(shape=(1, 4, 4, 16), out_q=(0.1, 7), seed=0) -> bytes:
    """DEQUANTIZE to float32 and QUANTIZE back at another scale (0.1 = twice the input's: exact
    halves to round)."""
    b = Builder(np.random.default_rng(seed))
    x = b.act("x", shape, 0.05, -3)
    f = b.tensor("f", shape, 0)
    b.op(s.BuiltinOperator.DEQUANTIZE, [x], [f])
    y = b.act("y", shape, *out_q)
    b.op(s.BuiltinOperator.QUANTIZE, [f], [y])
    return b.build(x, y)
