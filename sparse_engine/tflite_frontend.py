"""TFLite frontend: an int8 `.tflite` flatbuffer -> integer IR, already in memory layout (NHWC).

TFLite's layouts are the IR's (NHWC feature maps, OHWI conv weights, 1HWC depthwise weights), so
no layout pass runs and `model_run` takes and returns TFLite's NHWC tensors. The flatbuffer is
read with the `tflite` schema package. Each operator's integer parameters are computed with the
same `lowering` helpers the ONNX frontend uses, from TFLite's own scales, zero points and int32
biases, so the bits are TFLite's reference kernels' (docs/tflite.md lists the rounding per op).
An operator is named in errors by its index and the tensor it writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import lowering, qmath
from .errors import EngineError, node_error
from .ir import Graph, Op, Tensor
from .qmath import clamp_int8, mbqm

MAGIC = b"TFL3"  # the flatbuffer file identifier, bytes 4..8
INT8, INT32, FLOAT32 = 9, 2, 0  # tflite.TensorType values used here
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8",
              10: "float64", 17: "int4"}
SAME, VALID = 0, 1  # tflite.Padding


def is_tflite(path: Path) -> bool:
    """A TFLite flatbuffer: the suffix, or the identifier 'TFL3' at byte 4."""
    if path.suffix.lower() == ".tflite":
        return True
    if not path.is_file():  # never open a FIFO or device to sniff it
        return False
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == MAGIC
    except OSError:
        return False


@dataclass
class OpRef:
    """An operator as errors name it (the `node` that lowering's helpers report)."""

    name: str
    op_type: str


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: int
    scale: np.ndarray  # float64, empty when unquantized
    zero_point: np.ndarray  # int64
    axis: int
    data: np.ndarray | None  # raw bytes viewed as the tensor type, for constants
    dynamic: bool


def load(path: str | Path) -> bytes:
    """The file's bytes, checked to be a readable TFLite model (one line naming what is wrong)."""
    path = Path(path)
    if path.is_dir():
        raise EngineError(f"{path}: is a folder, not a TFLite file")
    if not path.exists():
        raise EngineError(f"{path}: no such file")
    if not path.is_file():
        raise EngineError(f"{path}: not a regular file (a FIFO, socket or device); give a .tflite file")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != MAGIC:
        raise EngineError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier; empty or truncated file?)")
    return buf


class _Reader:
    def __init__(self, buf: bytes, where: str):
        import tflite

        self.tfl, self.buf, self.where = tflite, buf, where
        try:
            self.model = tflite.Model.GetRootAs(buf, 0)
            if self.model.SubgraphsLength() < 1:
                raise EngineError(f"{where}: the TFLite model has no subgraph")
            self.sg = self.model.Subgraphs(0)
            self.codes = [self._opcode(i) for i in range(self.model.OperatorCodesLength())]
            self.tensors = [self._tensor(i) for i in range(self.sg.TensorsLength())]
        except EngineError:
            raise
        except Exception as exc:  # flatbuffers reads past the end of a truncated buffer
            raise EngineError(f"{where}: cannot parse as TFLite (truncated or corrupt flatbuffer: "
                              f"{type(exc).__name__})") from None
        if self.model.SubgraphsLength() > 1:
            raise EngineError(f"{where}: the model has {self.model.SubgraphsLength()} subgraphs (control flow); "
                              "only single-subgraph models are supported")

    def _opcode(self, i: int) -> str:
        code = self.model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == self.tfl.BuiltinOperator.CUSTOM:
            return f"CUSTOM:{(code.CustomCode() or b'?').decode(errors='replace')}"
        return self.tfl.utils.BUILTIN_OPCODE2NAME.get(builtin, f"builtin {builtin}")

    def _tensor(self, i: int) -> TensorInfo:
        t = self.sg.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        sig = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
        q = t.Quantization()
        scale = q.ScaleAsNumpy().astype(np.float64) if q is not None and q.ScaleLength() else np.zeros(0)
        zp = q.ZeroPointAsNumpy().astype(np.int64) if q is not None and q.ZeroPointLength() else np.zeros(0, np.int64)
        axis = int(q.QuantizedDimension()) if q is not None else 0
        data = None
        b = self.model.Buffers(t.Buffer()) if t.Buffer() > 0 else None
        if b is not None:
            raw = None
            if b.DataLength():
                raw = b.DataAsNumpy().tobytes()
            elif b.Offset() > 1:  # large models keep buffers after the flatbuffer
                raw = self.buf[b.Offset():b.Offset() + b.Size()]
            if raw is not None:
                dt = {INT8: np.int8, INT32: np.int32, FLOAT32: np.float32, 3: np.uint8, 4: np.int64,
                      7: np.int16}.get(t.Type())
                if dt is not None:
                    n = int(np.prod(shape, dtype=np.int64))
                    if len(raw) != n * np.dtype(dt).itemsize:
                        raise EngineError(f"{self.where}: constant '{t.Name().decode()}' holds {len(raw)} B, its "
                                          f"shape {list(shape)} needs {n * np.dtype(dt).itemsize} B")
                    data = np.frombuffer(raw, dt).reshape(shape)
        return TensorInfo(i, t.Name().decode(errors="replace"), shape, t.Type(), scale, zp, axis, data,
                          any(d <= 0 for d in shape) or any(d < 0 for d in sig[1:]))  # batch -1: run at 1

    def options(self, op, cls_name: str):
        table = op.BuiltinOptions()
        if table is None:
            return None
        opts = getattr(self.tfl, cls_name)()
        opts.Init(table.Bytes, table.Pos)
        return opts


def _round_away(x: np.ndarray | float) -> np.ndarray:
    """TfLiteRound (std::round): half away from zero, exact (x - trunc(x) has no rounding error,
    where floor(|x| + 0.5) rounds 0.49999997f up)."""
    x = np.asarray(x)
    t = np.trunc(x)
    return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0)


def _quantized(v: float, scale: float, zp: int) -> int:
    """A real bound quantized as TFLite's activation ranges are: in float32, half away from zero."""
    return zp + int(_round_away(np.float32(v) / np.float32(scale)))


def activation_range(code: int, scale: float, zp: int, ref: OpRef) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for int8 (bounds quantized in float32)."""
    def q(v: float) -> int:
        return _quantized(v, scale, zp)

    if code == 0:
        return -128, 127
    if code == 1:  # RELU
        return max(-128, q(0.0)), 127
    if code == 2:  # RELU_N1_TO_1
        return max(-128, q(-1.0)), min(127, q(1.0))
    if code == 3:  # RELU6
        return max(-128, q(0.0)), min(127, q(6.0))
    raise node_error(ref.name, ref.op_type, f"fused activation {code} (TANH/SIGN_BIT) is not supported")


def same_pads(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int], padding: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) as TFLite's ComputePaddingHeightWidth: SAME puts the odd pixel last."""
    if padding == VALID:
        return 0, 0, 0, 0
    pads = []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        out = (n + s - 1) // s
        pads.append(max((out - 1) * s + (k - 1) * d + 1 - n, 0))
    return pads[0] // 2, pads[1] // 2, pads[0] - pads[0] // 2, pads[1] - pads[1] // 2


class _Importer:
    def __init__(self, buf: bytes, where: str):
        self.r = _Reader(buf, where)
        self.where = where
        self.graph = Graph(tensors={}, ops=[], input="", output="")
        self.names: dict[int, str] = {}
        self.consumers: dict[int, list[int]] = {}
        self.dequantized: dict[int, int] = {}  # a DEQUANTIZE's float output -> its int8 input
        self.folded_pads: dict[int, tuple[int, tuple[int, int, int, int]]] = {}  # PAD out -> (in, pads)
        for i in range(self.r.sg.OperatorsLength()):
            op = self.r.sg.Operators(i)
            for j in range(op.InputsLength()):
                self.consumers.setdefault(op.Inputs(j), []).append(i)

    # ---- tensors ---------------------------------------------------------------------------
    def info(self, index: int) -> TensorInfo:
        return self.r.tensors[index]

    def _name(self, t: TensorInfo) -> str:
        if t.index not in self.names:
            used = set(self.names.values())
            self.names[t.index] = t.name if t.name and t.name not in used else f"{t.name or 'tensor'}#{t.index}"
        return self.names[t.index]

    def act(self, index: int, ref: OpRef) -> Tensor:
        """The int8 activation (or int8 constant operand) tensor `index`, per-tensor quantized."""
        t = self.info(index)
        name = self._name(t)
        if name in self.graph.tensors:
            return self.graph.tensors[name]
        if t.dtype != INT8:
            raise node_error(ref.name, ref.op_type, f"tensor '{t.name}' is {TYPE_NAMES.get(t.dtype, t.dtype)}; only "
                             "int8 activations are supported (a float or hybrid-quantized model?)")
        if t.dynamic:
            raise node_error(ref.name, ref.op_type, f"tensor '{t.name}' has a dynamic shape; convert with a fixed "
                             "input shape")
        if t.scale.size != 1 or t.zero_point.size != 1:
            raise node_error(ref.name, ref.op_type, f"activation '{t.name}' has {t.scale.size} scales; activations "
                             "must be quantized per tensor")
        s = float(t.scale[0])
        if not lowering.scale_ok(s).all():
            raise node_error(ref.name, ref.op_type, f"scale {s:.3g} of '{t.name}' is not {lowering.SCALE_RULE}")
        data = None if t.data is None else t.data.astype(np.int8).copy()
        return self.graph.add_tensor(Tensor(name, t.shape, s, int(t.zero_point[0]), data))

    def weights(self, index: int, ref: OpRef, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric int8 constant weights and one scale per channel along `axis`."""
        t = self.info(index)
        if t.data is None:
            raise node_error(ref.name, ref.op_type, f"weight '{t.name}' is not a constant")
        if t.dtype != INT8:
            raise node_error(ref.name, ref.op_type, f"weight '{t.name}' is {TYPE_NAMES.get(t.dtype, t.dtype)}; "
                             "only int8 weights are supported")
        if t.scale.size == 0:
            raise node_error(ref.name, ref.op_type, f"weight '{t.name}' has no quantization scale")
        if np.any(t.zero_point != 0):
            raise node_error(ref.name, ref.op_type, f"weight '{t.name}' must be symmetric (zero point 0)")
        n = t.shape[axis]
        if t.scale.size == 1:
            scales = np.full(n, float(t.scale[0]))
        elif t.scale.size == n and t.axis == axis:
            scales = t.scale.astype(np.float64)
        else:
            raise node_error(ref.name, ref.op_type, f"weight '{t.name}' has {t.scale.size} scales along axis {t.axis}; "
                             f"give one per tensor or one per output channel (axis {axis}, {n} channels)")
        if not lowering.scale_ok(scales).all():
            raise node_error(ref.name, ref.op_type, f"weight '{t.name}' has a scale that is not {lowering.SCALE_RULE}")
        return t.data.astype(np.int8), scales

    def bias(self, index: int, ref: OpRef, n: int, acc_scales: np.ndarray) -> np.ndarray:
        """TFLite's int32 bias (at scale s_in * s_w, which TFLite requires), or zeros when absent."""
        if index < 0:
            return np.zeros(n, np.int32)
        t = self.info(index)
        if t.data is None or t.dtype != INT32 or t.data.size != n:
            raise node_error(ref.name, ref.op_type, f"bias '{t.name}' must be a constant int32 vector of {n} values")
        if t.scale.size and not np.allclose(np.broadcast_to(t.scale, (n,)), acc_scales, rtol=1e-3, atol=0):
            raise node_error(ref.name, ref.op_type, f"bias '{t.name}' is not at scale input x weight")
        return t.data.reshape(n).astype(np.int32)

    def out(self, op, ref: OpRef) -> Tensor:
        return self.act(op.Outputs(0), ref)

    def add_op(self, kind: str, ref: OpRef, inputs: list[Tensor], out: Tensor, params: dict, macs: int = 0) -> None:
        self.graph.ops.append(Op(kind, ref.name, ref.op_type, [t.name for t in inputs], [out.name], params, macs))

    def reader_ops(self, index: int) -> list:
        """The operators that read tensor `index` (as (TFLite op name, operator) pairs)."""
        ops = (self.r.sg.Operators(i) for i in self.consumers.get(index, []))
        return [(self.r.codes[op.OpcodeIndex()], op) for op in ops]

    def const_vector(self, index: int, ref: OpRef) -> list[int]:
        t = self.info(index)
        if t.data is None:
            raise node_error(ref.name, ref.op_type, f"'{t.name}' must be a constant")
        return [int(v) for v in t.data.reshape(-1)]

    # ---- main loop ---------------------------------------------------------------------------
    def run(self) -> Graph:
        sg = self.r.sg
        if sg.InputsLength() != 1 or sg.OutputsLength() != 1:
            raise EngineError(f"{self.where}: the model has {sg.InputsLength()} inputs and {sg.OutputsLength()} "
                              "outputs; model_run takes exactly one input and one output")
        graph_in, graph_out = sg.Inputs(0), sg.Outputs(0)
        boundary: dict[int, int] = {}  # a float input's QUANTIZE output / a float output's DEQUANTIZE input
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            kind = self.r.codes[op.OpcodeIndex()]
            if kind == "QUANTIZE" and op.Inputs(0) == graph_in and self.info(graph_in).dtype == FLOAT32:
                graph_in = op.Outputs(0)
                boundary[i] = graph_in
            elif kind == "DEQUANTIZE" and op.Outputs(0) == graph_out:
                graph_out = op.Inputs(0)
                boundary[i] = graph_out
        if self.info(graph_in).dtype == FLOAT32:
            raise EngineError(f"{self.where}: a float model (input '{self.info(graph_in).name}' is float32 and not "
                              "quantized); convert with full int8 quantization (TFLiteConverter, "
                              "optimizations=DEFAULT, a representative dataset, int8 ops)")
        ref = OpRef(f"input {self.info(graph_in).name}", "input")
        self.graph.input = self.act(graph_in, ref).name
        for i in range(sg.OperatorsLength()):
            if i in boundary:
                continue
            op = sg.Operators(i)
            kind = self.r.codes[op.OpcodeIndex()]
            ref = OpRef(f"#{i} {self.info(op.Outputs(0)).name}" if op.OutputsLength() else f"#{i}", kind)
            lower = LOWER.get(kind)
            if lower is None:
                raise node_error(ref.name, kind, "unsupported op type")
            lower(self, op, ref)
        self.graph.output = self.act(graph_out, OpRef(f"output {self.info(graph_out).name}", "output")).name
        if self.graph.output == self.graph.input:
            raise EngineError("the model computes nothing: its output is its input")
        return self.graph


# ---- one function per operator -------------------------------------------------------------
def _conv(imp: _Importer, op, ref: OpRef, depthwise: bool) -> None:
    src, folded = imp.folded_pads.get(op.Inputs(0), (op.Inputs(0), (0, 0, 0, 0)))
    padded = imp.info(op.Inputs(0)).shape  # the shape this conv sees, a folded PAD's output
    x = imp.act(src, ref)
    out = imp.out(op, ref)
    if len(x.shape) != 4:
        raise node_error(ref.name, ref.op_type, f"input rank {len(x.shape)}; only 2-D convolution is supported")
    o = imp.r.options(op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
    w, ws = imp.weights(op.Inputs(1), ref, 3 if depthwise else 0)
    stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    kh, kw = w.shape[1], w.shape[2]
    cin, cout = x.shape[3], out.shape[3]
    if depthwise:
        if w.shape[3] != cout or cout % cin:
            raise node_error(ref.name, ref.op_type, f"weight {list(w.shape)} does not fit {cin} -> {cout} channels")
        kred = kh * kw
    else:
        if w.shape[3] != cin:
            raise node_error(ref.name, ref.op_type, f"the weight reads {w.shape[3]} input channels, the input has {cin} "
                             "(grouped convolution is not supported)")
        kred = cin * kh * kw
    pad = same_pads(padded[1:3], (kh, kw), stride, dil, o.Padding())
    pad = tuple(a + b for a, b in zip(pad, folded))
    bias = imp.bias(op.Inputs(2) if op.InputsLength() > 2 else -1, ref, cout, x.scale * ws)
    clamp = activation_range(o.FusedActivationFunction(), out.scale, out.zero_point, ref)
    params = lowering.conv_params(ref, x, out, w, ws, bias, kred, stride, pad, dil, depthwise,
                                  cout // cin if depthwise else 1, clamp)
    imp.add_op("conv2d", ref, [x], out, params, macs=out.shape[0] * out.shape[1] * out.shape[2] * cout * kred)


def conv2d(imp, op, ref):
    _conv(imp, op, ref, False)


def depthwise_conv2d(imp, op, ref):
    _conv(imp, op, ref, True)


def fully_connected(imp, op, ref):
    x = imp.act(op.Inputs(0), ref)
    out = imp.out(op, ref)
    o = imp.r.options(op, "FullyConnectedOptions")
    if o is not None and o.WeightsFormat() != 0:
        raise node_error(ref.name, ref.op_type, "shuffled weights are not supported")
    w, ws = imp.weights(op.Inputs(1), ref, 0)
    n, k = w.shape
    if x.size % k:
        raise node_error(ref.name, ref.op_type, f"input of {x.size} values is not rows of {k}")
    bias = imp.bias(op.Inputs(2) if op.InputsLength() > 2 else -1, ref, n, x.scale * ws)
    clamp = activation_range(o.FusedActivationFunction() if o is not None else 0, out.scale, out.zero_point, ref)
    params = lowering.fc_params(ref, x, w, ws, bias, out, clamp)
    imp.add_op("fc", ref, [x], out, params, macs=x.size // k * n * k)


def _binary(imp, op, ref, options: str):
    a, b = imp.act(op.Inputs(0), ref), imp.act(op.Inputs(1), ref)
    out = imp.out(op, ref)
    o = imp.r.options(op, options)
    clamp = activation_range(o.FusedActivationFunction() if o is not None else 0, out.scale, out.zero_point, ref)
    try:
        np.broadcast_shapes(a.shape, b.shape, out.shape)
    except ValueError:
        raise node_error(ref.name, ref.op_type, f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    return a, b, out, clamp


def add(imp, op, ref):
    a, b, out, clamp = _binary(imp, op, ref, "AddOptions")
    imp.add_op("add", ref, [a, b], out, lowering.add_params(ref, a, b, out, clamp))


def sub(imp, op, ref):
    a, b, out, clamp = _binary(imp, op, ref, "SubOptions")
    imp.add_op("add", ref, [a, b], out, lowering.add_params(ref, a, b, out, clamp, subtract=True))


def mul(imp, op, ref):
    a, b, out, clamp = _binary(imp, op, ref, "MulOptions")
    imp.add_op("mul", ref, [a, b], out, lowering.mul_params(ref, a, b, out, clamp))


def _pool(imp, op, ref, kind: str):
    x = imp.act(op.Inputs(0), ref)
    out = imp.out(op, ref)
    o = imp.r.options(op, "Pool2DOptions")
    kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
    pad = same_pads(x.shape[1:3], kernel, stride, (1, 1), o.Padding())
    clamp = activation_range(o.FusedActivationFunction(), out.scale, out.zero_point, ref)
    if kind == "avgpool":
        params = lowering.avg_params(x, out, kernel, stride, pad, False, ref, clamp)
    else:
        params = dict(kernel=kernel, stride=stride, pad=pad, act_min=clamp[0], act_max=clamp[1],
                      **lowering.requant_params(x, out, ref))
    imp.add_op(kind, ref, [x], out, params)


def average_pool(imp, op, ref):
    _pool(imp, op, ref, "avgpool")


def max_pool(imp, op, ref):
    _pool(imp, op, ref, "maxpool")


def mean(imp, op, ref):
    """MEAN over the spatial axes of an NHWC tensor, as a whole-image average pool."""
    x = imp.act(op.Inputs(0), ref)
    out = imp.out(op, ref)
    axes = sorted(a % len(x.shape) for a in imp.const_vector(op.Inputs(1), ref))
    if len(x.shape) != 4 or axes != [1, 2]:
        raise node_error(ref.name, ref.op_type, f"MEAN over axes {axes} of a rank-{len(x.shape)} tensor; only the "
                         "spatial axes [1, 2] of NHWC are supported")
    if out.shape != (x.shape[0], 1, 1, x.shape[3]):
        raise node_error(ref.name, ref.op_type, "MEAN without keep_dims is not supported")
    kernel = (x.shape[1], x.shape[2])
    params = lowering.avg_params(x, out, kernel, (1, 1), (0, 0, 0, 0), True, ref, (-128, 127))
    imp.add_op("avgpool", ref, [x], out, params)


def reshape(imp, op, ref):
    """RESHAPE, SQUEEZE and EXPAND_DIMS: memory order and the int8 bits are kept (TFLite copies
    them whatever the output's quantization says); QUANTIZE int8 -> int8 requantizes. A copy
    that the planner runs in place."""
    x = imp.act(op.Inputs(0), ref)
    out = imp.out(op, ref)
    if out.size != x.size:
        raise node_error(ref.name, ref.op_type, f"{x.size} values in, {out.size} out")
    _copy(imp, ref, x, out, tuple(range(len(x.shape))), ref.op_type == "QUANTIZE")


def _copy(imp, ref, x: Tensor, out: Tensor, perm: tuple[int, ...], requant: bool) -> None:
    req = (lowering.requant_params(x, out, ref) if requant
           else dict(requant=False, mult=0, shift=0, in_zp=x.zero_point, out_zp=out.zero_point))
    imp.add_op("copy", ref, [x], out, dict(perm=perm, **req))


def pad(imp, op, ref):
    """PAD / PADV2 of H and W in front of a convolution: folded into the convolution's padding,
    which pads with the input's zero point, as TFLite's int8 PAD does (and PADV2 must)."""
    t_out = imp.info(op.Outputs(0))
    x = imp.act(op.Inputs(0), ref)
    readers = imp.reader_ops(op.Outputs(0))
    conv_reader = (len(readers) == 1 and op.Outputs(0) != imp.r.sg.Outputs(0)
                   and readers[0][0] in ("CONV_2D", "DEPTHWISE_CONV_2D") and readers[0][1].Inputs(0) == op.Outputs(0))
    if not conv_reader:
        raise node_error(ref.name, ref.op_type, "only a PAD read by one CONV_2D / DEPTHWISE_CONV_2D is supported "
                         "(it is folded into the convolution's padding)")
    pads = np.array(imp.const_vector(op.Inputs(1), ref)).reshape(-1, 2)
    if len(x.shape) != 4 or pads.shape[0] != 4 or pads[0].any() or pads[3].any() or (pads < 0).any():
        raise node_error(ref.name, ref.op_type, f"pads {pads.tolist()}: only non-negative padding of H and W of an "
                         "NHWC tensor is supported")
    if (t_out.scale.size != 1 or float(t_out.scale[0]) != x.scale or t_out.zero_point.size != 1
            or int(t_out.zero_point[0]) != x.zero_point):
        raise node_error(ref.name, ref.op_type, "input and output quantization differ")
    if op.InputsLength() > 2 and op.Inputs(2) >= 0 and imp.const_vector(op.Inputs(2), ref) != [x.zero_point]:
        raise node_error(ref.name, ref.op_type, f"pad value {imp.const_vector(op.Inputs(2), ref)} is not the zero "
                         f"point {x.zero_point}; only zero padding folds into a convolution")
    if t_out.shape != tuple(d + int(a) + int(b) for d, (a, b) in zip(x.shape, pads)):
        raise node_error(ref.name, ref.op_type, f"output shape {list(t_out.shape)} does not match the pads")
    imp.folded_pads[op.Outputs(0)] = (op.Inputs(0), (int(pads[1, 0]), int(pads[2, 0]), int(pads[1, 1]),
                                                     int(pads[2, 1])))


def _swap_last(imp, ref, x: Tensor) -> Tensor:
    """x with its last two axes swapped: a transposed constant, or a copy the planner absorbs
    into the MatMul's operand view."""
    perm = tuple(range(len(x.shape) - 2)) + (len(x.shape) - 1, len(x.shape) - 2)
    shape = tuple(x.shape[p] for p in perm)
    data = None if x.data is None else np.ascontiguousarray(np.transpose(x.data, perm))
    t = imp.graph.add_tensor(Tensor(f"{x.name}/adjoint", shape, x.scale, x.zero_point, data))
    if data is None:
        _copy(imp, ref, x, t, perm, False)
    return t


def batch_matmul(imp, op, ref):
    """BATCH_MATMUL of int8 operands (activations or constants), batch axes broadcast; adj_x /
    adj_y transpose an operand's last two axes."""
    a, b = imp.act(op.Inputs(0), ref), imp.act(op.Inputs(1), ref)
    out = imp.out(op, ref)
    o = imp.r.options(op, "BatchMatMulOptions")
    if o is not None and o.AdjX():
        a = _swap_last(imp, ref, a)
    if o is not None and o.AdjY():
        b = _swap_last(imp, ref, b)
    params, macs = lowering.matmul_params(ref, a, b, out, (-128, 127))
    imp.add_op("matmul", ref, [a, b], out, params, macs=macs)


def transpose(imp, op, ref):
    x = imp.act(op.Inputs(0), ref)
    out = imp.out(op, ref)
    perm = tuple(p % len(x.shape) for p in imp.const_vector(op.Inputs(1), ref))
    _copy(imp, ref, x, out, perm, False)


def concatenation(imp, op, ref):
    xs = [imp.act(op.Inputs(j), ref) for j in range(op.InputsLength())]
    out = imp.out(op, ref)
    o = imp.r.options(op, "ConcatenationOptions")
    if o.FusedActivationFunction() != 0:
        raise node_error(ref.name, ref.op_type, "a fused activation on CONCATENATION is not supported")
    axis = o.Axis() % len(out.shape)
    reqs = [lowering.requant_params(x, out, ref) for x in xs]
    params = dict(axis=axis, requant=[r["requant"] for r in reqs], mult=[r["mult"] for r in reqs],
                  shift=[r["shift"] for r in reqs], in_zp=[x.zero_point for x in xs], out_zp=out.zero_point)
    imp.add_op("concat", ref, xs, out, params)


def softmax(imp, op, ref):
    x = imp.act(op.Inputs(0), ref)
    out = imp.out(op, ref)
    beta = imp.r.options(op, "SoftmaxOptions").Beta()
    imp.add_op("softmax", ref, [x], out, lowering.softmax_params(x.scale * beta, out, ref, x.shape[-1]))


def _table(imp, op, ref, values, src: int | None = None) -> None:
    """An elementwise op as a 256-entry table of what TFLite computes for each int8 input (of
    tensor `src`, by default the op's input)."""
    x = imp.act(op.Inputs(0) if src is None else src, ref)
    out = imp.out(op, ref)
    q = np.arange(-128, 128, dtype=np.int64)
    imp.add_op("lut", ref, [x], out, dict(table=clamp_int8(values(q, x, out))))


def _float_table(fn):
    """TFLite's LUTPopulate: dequantize, fn, requantize in float32, rounded half away from zero."""
    def values(q, x, out):
        v = np.float32(x.scale) * (q - x.zero_point).astype(np.float32)
        y = fn(v.astype(np.float32)).astype(np.float32)
        return _round_away(y / np.float32(out.scale)).astype(np.int64) + out.zero_point
    return values


def _relu_table(lo: float | None, hi: float | None):
    """TFLite's int8 ReluX: requantize to the output scale, then clamp to the quantized bounds."""
    def values(q, x, out):
        m, s = lowering.multipliers([x.scale / out.scale])
        y = mbqm(q - x.zero_point, int(m[0]), int(s[0])) + out.zero_point
        qlo = -128 if lo is None else max(-128, _quantized(lo, out.scale, out.zero_point))
        qhi = 127 if hi is None else min(127, _quantized(hi, out.scale, out.zero_point))
        return np.clip(y, qlo, qhi)
    return values


def logistic(imp, op, ref):
    _table(imp, op, ref, _float_table(lambda v: 1 / (1 + np.exp(-v))))


def tanh(imp, op, ref):
    _table(imp, op, ref, _float_table(np.tanh))


def hard_swish(imp, op, ref):
    x, out = imp.act(op.Inputs(0), ref), imp.out(op, ref)
    params = qmath.hard_swish_params(x.scale, out.scale)
    if params[1] > 0:
        raise node_error(ref.name, ref.op_type, f"output scale {out.scale:.3g} is below input scale / 128 "
                         f"({x.scale / 128:.3g}); TFLite rejects this HARD_SWISH too")
    _table(imp, op, ref, lambda q, x, out: qmath.hard_swish(q, x.zero_point, out.zero_point, params))


def relu(imp, op, ref):
    _table(imp, op, ref, _relu_table(0.0, None))


def relu6(imp, op, ref):
    _table(imp, op, ref, _relu_table(0.0, 6.0))


def relu_n1_to_1(imp, op, ref):
    _table(imp, op, ref, _relu_table(-1.0, 1.0))


def dequantize(imp, op, ref):
    """DEQUANTIZE inside the model: only where QUANTIZE ops alone read its float output (a float
    round trip, each pair one table); float ops are not run."""
    readers = imp.reader_ops(op.Outputs(0))
    if (imp.info(op.Inputs(0)).dtype != INT8 or not readers or op.Outputs(0) == imp.r.sg.Outputs(0)
            or any(kind != "QUANTIZE" for kind, _ in readers)):
        raise node_error(ref.name, ref.op_type, "DEQUANTIZE inside the model feeds float ops; only int8 ops run "
                         "(a DEQUANTIZE -> QUANTIZE pair is supported)")
    imp.dequantized[op.Outputs(0)] = op.Inputs(0)


def quantize(imp, op, ref):
    src = op.Inputs(0)
    if src in imp.dequantized:  # int8 -> float32 -> int8: LUTPopulate's arithmetic with f = identity
        # (checked against LiteRT: dividing by a float32 reciprocal or in double, or rounding half
        # to even, differs)
        _table(imp, op, ref, _float_table(lambda v: v), src=imp.dequantized[src])
        return
    if imp.info(src).dtype != INT8:
        raise node_error(ref.name, ref.op_type, "QUANTIZE inside the model reads a float tensor; only int8 -> int8 "
                         "(a requantization) and DEQUANTIZE -> QUANTIZE are supported")
    reshape(imp, op, ref)


LOWER = {
    "CONV_2D": conv2d, "DEPTHWISE_CONV_2D": depthwise_conv2d, "FULLY_CONNECTED": fully_connected, "ADD": add,
    "SUB": sub, "MUL": mul, "AVERAGE_POOL_2D": average_pool, "MAX_POOL_2D": max_pool, "MEAN": mean, "RESHAPE": reshape,
    "SQUEEZE": reshape, "EXPAND_DIMS": reshape, "TRANSPOSE": transpose, "CONCATENATION": concatenation,
    "SOFTMAX": softmax, "LOGISTIC": logistic, "TANH": tanh, "RELU": relu, "RELU6": relu6,
    "RELU_N1_TO_1": relu_n1_to_1, "QUANTIZE": quantize, "HARD_SWISH": hard_swish,
    "DEQUANTIZE": dequantize, "PAD": pad, "PADV2": pad, "BATCH_MATMUL": batch_matmul,
}


def import_model(path: str | Path) -> Graph:
    """A .tflite file -> integer IR in memory layout (NHWC), every op's integer params computed."""
    return _Importer(load(path), str(path)).run()
