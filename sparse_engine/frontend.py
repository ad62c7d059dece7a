"""Frontend: a standard QDQ int8 ONNX model -> integer IR in ONNX's logical layout.

Every float op must sit between DequantizeLinear inputs (or constant initializers) and a
QuantizeLinear on its output, as onnxruntime's `quantize_static` writes it. An optional
Relu/Clip between the op and its QuantizeLinear is fused as an output clamp. The integer
parameters of each op (requantization multipliers, tables) are computed here, once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from . import lowering
from .lowering import attr
from .errors import EngineError, node_error
from .ir import Graph, Op, Tensor

SUPPORTED = frozenset(lowering.LOWER)  # the op types with a lowering function
FUSABLE_ACTIVATIONS = {"Relu", "Clip"}


@dataclass
class ConstQ:
    """A DequantizeLinear of an initializer: integer values with scale(s) and zero point(s)."""

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None  # None when per-tensor

    def real(self) -> np.ndarray:
        if self.axis is None:
            return (self.q.astype(np.float64) - self.zero_point) * self.scale
        shape = [1] * self.q.ndim
        shape[self.axis] = -1
        return (self.q.astype(np.float64) - self.zero_point.reshape(shape)) * self.scale.reshape(shape)


def load(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX file, turning every way it can be unreadable into one clear error."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise EngineError(f"{path}: cannot parse as ONNX (truncated or not a model file): "
                          f"{type(exc).__name__}") from None
    if not model.graph.node:
        raise EngineError(f"{path}: the ONNX graph has no nodes (truncated or empty file)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"{path}: ONNX checker rejects the model: {first}") from None
    return model


class _Importer:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                self.inits[n.output[0]] = numpy_helper.to_array(attr(n, "value"))
        self.nodes = [n for n in g.node if n.op_type != "Constant"]
        for i, n in enumerate(self.nodes):
            if not n.name:
                n.name = f"{n.op_type}_{i}"
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for x in n.input:
                self.consumers.setdefault(x, []).append(n)
        self.graph = Graph(tensors={}, ops=[], input="", output="")
        self.const_dq: dict[str, ConstQ] = {}
        self.deq: dict[str, str] = {}  # float name (DQ output) -> int8 tensor name
        self.qout: dict[str, str] = {}  # float name -> int8 tensor name of its QuantizeLinear
        self.alias: dict[str, str] = {}  # output of a duplicate QuantizeLinear -> the kept tensor
        self.shapes = self._infer_shapes()

    # ---- shapes -------------------------------------------------------------------------
    def _infer_shapes(self) -> dict[str, tuple[int, ...]]:
        g = self.model.graph
        real_inputs = [i for i in g.input if i.name not in self.inits]
        if len(real_inputs) != 1 or len(g.output) != 1:
            raise EngineError(f"model has {len(real_inputs)} inputs and {len(g.output)} outputs; "
                              "model_run takes exactly one input and one output")
        inp = real_inputs[0]
        dims = inp.type.tensor_type.shape.dim
        if not dims or any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            shown = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in dims]
            raise EngineError(f"input '{inp.name}' has a dynamic shape {shown}; "
                              "export it with a fixed shape (every dimension a positive integer)")
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, strict_mode=True)
        except Exception as exc:
            raise EngineError(f"ONNX shape inference failed: {str(exc).strip().splitlines()[0]}") from None
        shapes: dict[str, tuple[int, ...]] = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
            tt = vi.type.tensor_type
            if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
                shapes[vi.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
        for k, v in self.inits.items():
            shapes[k] = tuple(v.shape)
        return shapes

    def shape(self, name: str, node: onnx.NodeProto) -> tuple[int, ...]:
        if name not in self.shapes:
            raise node_error(node.name, node.op_type, f"tensor '{name}' has no static shape")
        return self.shapes[name]

    # ---- Q/DQ bookkeeping ----------------------------------------------------------------
    def _scalar_qparams(self, node: onnx.NodeProto) -> tuple[float, int]:
        scale = self.inits.get(node.input[1])
        if scale is None:
            raise node_error(node.name, node.op_type, "scale must be a constant initializer")
        if len(node.input) > 2 and node.input[2]:
            zp = self.inits.get(node.input[2])
            if zp is None:
                raise node_error(node.name, node.op_type, "zero point must be a constant initializer")
        else:
            zp = np.zeros((), np.uint8)
        if scale.size != 1 or zp.size != 1:
            raise node_error(node.name, node.op_type, "activations must be quantized per tensor")
        if zp.dtype != np.int8:
            raise node_error(node.name, node.op_type,
                             f"activations must be int8 (zero point is {zp.dtype}); quantize with "
                             "activation_type=QInt8")
        s = float(scale.reshape(()))
        if not (s > 0 and math.isfinite(s)):
            raise node_error(node.name, node.op_type, f"scale {s} is not a positive finite number")
        return s, int(zp.reshape(()))

    def scan_qdq(self) -> None:
        for n in self.nodes:
            if n.op_type == "DequantizeLinear" and n.input[0] in self.inits:
                q = self.inits[n.input[0]]
                scale = self.inits.get(n.input[1])
                zp = self.inits.get(n.input[2]) if len(n.input) > 2 and n.input[2] else np.zeros_like(scale, dtype=q.dtype)
                if scale is None or zp is None:
                    raise node_error(n.name, n.op_type, "scale and zero point must be initializers")
                axis = None
                if scale.size > 1:
                    axis = int(attr(n, "axis", 1))
                    axis = axis + q.ndim if axis < 0 else axis
                self.const_dq[n.output[0]] = ConstQ(q, scale.astype(np.float64).reshape(-1) if axis is not None
                                                    else scale.astype(np.float64).reshape(()),
                                                    zp.astype(np.int64).reshape(-1) if axis is not None
                                                    else zp.astype(np.int64).reshape(()), axis)
        for n in self.nodes:
            if n.op_type == "QuantizeLinear":
                s, zp = self._scalar_qparams(n)
                src = n.input[0]
                if src in self.qout:
                    prev = self.graph.tensors[self.qout[src]]
                    if (prev.scale, prev.zero_point) != (s, zp):
                        raise node_error(n.name, n.op_type,
                                         f"tensor '{src}' is quantized twice with different parameters")
                    self.alias[n.output[0]] = prev.name
                    continue
                self.graph.add_tensor(Tensor(n.output[0], self.shape(src, n), s, zp))
                self.qout[src] = n.output[0]
        for n in self.nodes:
            if n.op_type == "DequantizeLinear" and n.input[0] not in self.inits:
                src = self.alias.get(n.input[0], n.input[0])
                if src not in self.graph.tensors:
                    raise node_error(n.name, n.op_type, f"input '{n.input[0]}' is not produced by a QuantizeLinear")
                s, zp = self._scalar_qparams(n)
                t = self.graph.tensors[src]
                if (s, zp) != (t.scale, t.zero_point):
                    raise node_error(n.name, n.op_type, "dequantizes with parameters other than its QuantizeLinear")
                self.deq[n.output[0]] = src

    # ---- operand access for compute nodes --------------------------------------------------
    def act(self, name: str, node: onnx.NodeProto) -> Tensor:
        if name in self.deq:
            return self.graph.tensors[self.deq[name]]
        if name in self.const_dq:
            return self.const_tensor(name, node)
        raise node_error(node.name, node.op_type,
                         f"input '{name}' is float: it does not come through a DequantizeLinear")

    def const_tensor(self, name: str, node: onnx.NodeProto) -> Tensor:
        """An int8 constant operand (e.g. the other side of an Add) as an IR tensor."""
        if name in self.graph.tensors:
            return self.graph.tensors[name]
        if name in self.const_dq:
            c = self.const_dq[name]
            if c.axis is None and c.q.dtype == np.int8:
                return self.graph.add_tensor(Tensor(name, tuple(c.q.shape), float(c.scale), int(c.zero_point),
                                                    c.q.astype(np.int8)))
            real = c.real()
        elif name in self.inits and self.inits[name].dtype.kind == "f":
            real = self.inits[name].astype(np.float64)
        else:
            raise node_error(node.name, node.op_type, f"constant '{name}' is neither int8 nor float")
        amax = float(np.max(np.abs(real))) if real.size else 0.0
        scale = amax / 127.0 if amax > 0 else 1.0
        q = np.clip(np.rint(real / scale), -127, 127).astype(np.int8)
        return self.graph.add_tensor(Tensor(name, tuple(real.shape), scale, 0, q))

    def weights(self, name: str, node: onnx.NodeProto, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric int8 weights and one scale per output channel (broadcast if per tensor)."""
        c = self.const_dq.get(name)
        if c is None:
            raise node_error(node.name, node.op_type,
                             f"weight '{name}' is not a quantized constant (DequantizeLinear of an initializer)")
        if c.q.dtype != np.int8:
            raise node_error(node.name, node.op_type, f"weight '{name}' must be int8, found {c.q.dtype}")
        if np.any(c.zero_point != 0):
            raise node_error(node.name, node.op_type, f"weight '{name}' must be symmetric (zero point 0)")
        nchan = c.q.shape[channel_axis]
        if c.axis is None:
            scales = np.full(nchan, float(c.scale))
        elif c.axis == channel_axis:
            scales = c.scale.astype(np.float64)
        else:
            raise node_error(node.name, node.op_type,
                             f"weight '{name}' is quantized along axis {c.axis}; only per-output-channel "
                             f"(axis {channel_axis}) or per-tensor scales can be requantized in integer")
        return c.q, scales

    def bias(self, name: str | None, node: onnx.NodeProto, acc_scales: np.ndarray) -> np.ndarray:
        """int32 bias in the accumulator scale (input scale x weight scale)."""
        n = len(acc_scales)
        if not name:
            return np.zeros(n, np.int32)
        c = self.const_dq.get(name)
        if c is not None and c.q.dtype == np.int32:
            cs = np.broadcast_to(c.scale, (n,)) if c.q.size == n else None
            if cs is not None and np.allclose(cs, acc_scales, rtol=1e-6, atol=0) and np.all(c.zero_point == 0):
                return c.q.reshape(n).astype(np.int32)
            real = c.real()
        elif c is not None:
            real = c.real()
        elif name in self.inits:
            real = self.inits[name].astype(np.float64)
        else:
            raise node_error(node.name, node.op_type, f"bias '{name}' is not a constant")
        real = np.broadcast_to(real.reshape(-1), (n,))
        q = np.rint(real / acc_scales)
        if np.any(np.abs(q) > 2**31 - 1):
            raise node_error(node.name, node.op_type, "bias does not fit int32 at scale input x weight")
        return q.astype(np.int32)

    def float_const(self, name: str, node: onnx.NodeProto) -> np.ndarray:
        if name in self.const_dq:
            return self.const_dq[name].real()
        if name in self.inits:
            return self.inits[name].astype(np.float64)
        raise node_error(node.name, node.op_type, f"'{name}' must be a constant")

    def output(self, node: onnx.NodeProto) -> tuple[Tensor, tuple[int, int] | None, list[onnx.NodeProto]]:
        """The int8 tensor a compute node writes, the clamp of a fused Relu/Clip, and the fused nodes."""
        f = node.output[0]
        cons = self.consumers.get(f, [])
        clamp = None
        fused: list[onnx.NodeProto] = []
        if len(cons) == 1 and cons[0].op_type in FUSABLE_ACTIVATIONS and f not in self.qout:
            act = cons[0]
            fused.append(act)
            f = act.output[0]
            clamp = ("relu", None) if act.op_type == "Relu" else ("clip", act)
        if f not in self.qout:
            raise node_error(node.name, node.op_type,
                             f"output '{f}' is not followed by a QuantizeLinear (float op outside QDQ)")
        out = self.graph.tensors[self.qout[f]]
        lo, hi = -128, 127
        if clamp is not None:
            kind, act = clamp
            if kind == "relu":
                lo = max(lo, out.zero_point)
            else:
                cmin = attr(act, "min") if self.opset < 11 else None
                cmax = attr(act, "max") if self.opset < 11 else None
                if self.opset >= 11:
                    cmin = float(self.float_const(act.input[1], act)) if len(act.input) > 1 and act.input[1] else None
                    cmax = float(self.float_const(act.input[2], act)) if len(act.input) > 2 and act.input[2] else None
                if cmin is not None:
                    lo = max(lo, int(np.clip(np.rint(cmin / out.scale) + out.zero_point, -128, 127)))
                if cmax is not None:
                    hi = min(hi, int(np.clip(np.rint(cmax / out.scale) + out.zero_point, -128, 127)))
        return out, (lo, hi), fused

    # ---- main loop ---------------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.model.graph
        if not any(n.op_type == "QuantizeLinear" for n in self.nodes):
            raise EngineError("the model has no QuantizeLinear nodes: it is a float model. Quantize it to "
                              "QDQ int8 first (e.g. onnxruntime.quantization.quantize_static, "
                              "quant_format=QDQ, activation_type=QInt8, weight_type=QInt8)")
        self.scan_qdq()
        inp = [i for i in g.input if i.name not in self.inits][0].name
        if inp not in self.qout:
            raise EngineError(f"input '{inp}' is not quantized by a QuantizeLinear")
        self.graph.input = self.qout[inp]
        fused_names: set[str] = set()
        for node in self.nodes:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") or node.name in fused_names:
                continue
            if node.op_type not in SUPPORTED:
                raise node_error(node.name, node.op_type, "unsupported op type")
            for extra in node.output[1:]:
                if extra and self.consumers.get(extra):
                    raise node_error(node.name, node.op_type, f"optional output '{extra}' is used; not supported")
            out, clamp, fused = self.output(node)
            fused_names.update(n.name for n in fused)
            lowering.lower(self, node, out, clamp)
        out_name = g.output[0].name
        if out_name in self.deq:
            self.graph.output = self.deq[out_name]
        elif out_name in self.graph.tensors:
            self.graph.output = out_name
        else:
            raise EngineError(f"output '{out_name}' is float: it must come from a QuantizeLinear "
                              "(optionally followed by DequantizeLinear)")
        if self.graph.output == self.graph.input:
            raise EngineError("the model computes nothing: its output is its input")
        return self.graph


def import_model(model: onnx.ModelProto) -> Graph:
    """QDQ ONNX -> integer IR (logical layout)."""
    return _Importer(model).run()

