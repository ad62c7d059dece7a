"""Frontend: a standard QDQ int8 ONNX model -> integer IR in ONNX's logical layout.

Every float op must sit between DequantizeLinear inputs (or constant initializers) and a
QuantizeLinear on its output, as onnxruntime's `quantize_static` writes it. An optional
Relu/Clip between the op and its QuantizeLinear is fused as an output clamp. The integer
parameters of each op (requantization multipliers, tables) are computed here, once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from . import lowering
from .lowering import SCALE_RULE, attr, scale_ok
from .errors import EngineError, first_line, node_error
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
    if path.is_dir():
        raise EngineError(f"{path}: is a folder, not an ONNX file")
    if path.exists() and not path.is_file():
        raise EngineError(f"{path}: not a regular file (a FIFO, socket or device); give an ONNX file")
    if not path.exists():
        raise EngineError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise EngineError(f"{path}: cannot parse as ONNX (truncated or not a model file): "
                          f"{type(exc).__name__}") from None
    _load_external_data(model, path)
    if not model.graph.node:
        raise EngineError(f"{path}: the ONNX graph has no nodes (truncated or empty file)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise EngineError(f"{path}: ONNX checker rejects the model: {first_line(exc)}") from None
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read the tensors a model keeps in external files (beside `path`), naming the file that is
    missing or too short instead of failing inside onnx."""
    from onnx import external_data_helper as ext

    g = model.graph
    tensors = [t for t in [*g.initializer, *(a.t for n in g.node for a in n.attribute if a.HasField("t"))]
               if ext.uses_external_data(t)]
    for t in tensors:
        info = ext.ExternalDataInfo(t)
        where = (path.parent / info.location).resolve()
        if not where.is_relative_to(path.parent.resolve()) or not where.is_file():
            raise EngineError(f"{path}: tensor '{t.name}' is stored in the external file '{info.location}', "
                              f"which is missing (looked in {path.parent})")
        need, have = (info.offset or 0) + (info.length or 0), where.stat().st_size
        if info.length and have < need:
            raise EngineError(f"{path}: external file '{info.location}' holds {have:,} B, "
                              f"tensor '{t.name}' needs {need:,} B (truncated?)")
    if tensors:
        try:
            ext.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:
            raise EngineError(f"{path}: cannot read its external data ({type(exc).__name__}: "
                              f"{first_line(exc)})") from None


def _array(t: onnx.TensorProto, name: str) -> np.ndarray:
    """An initializer's or Constant's values; one line when its data does not fit its shape or type."""
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:
        raise EngineError(f"constant '{name}' of shape {list(t.dims)}: its data cannot be read "
                          f"({type(exc).__name__}: {first_line(exc)})") from None


class _Importer:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.inits = {i.name: _array(i, i.name) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                value = attr(n, "value")
                if value is None:
                    raise node_error(n.name, n.op_type, "only a tensor 'value' is supported")
                self.inits[n.output[0]] = _array(value, n.output[0])
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
            raise EngineError(f"ONNX shape inference failed: {first_line(exc)}") from None
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
            raise node_error(node.name, node.op_type, f"activations must be quantized per tensor: scale "
                             f"'{node.input[1]}' has {scale.size} values, zero point "
                             f"'{node.input[2] if len(node.input) > 2 else ''}' {zp.size}")
        if zp.dtype != np.int8:
            raise node_error(node.name, node.op_type,
                             f"activations must be int8 (zero point is {zp.dtype}); quantize with "
                             "activation_type=QInt8")
        s = float(scale.reshape(()))
        if not scale_ok(s).all():
            raise node_error(node.name, node.op_type,
                             f"scale '{node.input[1]}' ({s:.3g}) of '{node.input[0]}' is not {SCALE_RULE}")
        return s, int(zp.reshape(()))

    def _const_qparams(self, n: onnx.NodeProto) -> ConstQ:
        """A DequantizeLinear of an initializer, its scales and zero points checked: one of each per
        tensor, or one per channel along `axis`; every scale SCALE_RULE."""
        q = self.inits[n.input[0]]
        scale = self.inits.get(n.input[1])
        if scale is None:
            raise node_error(n.name, n.op_type, "scale and zero point must be initializers")
        zp = self.inits.get(n.input[2]) if len(n.input) > 2 and n.input[2] else np.zeros(scale.shape, q.dtype)
        if zp is None:
            raise node_error(n.name, n.op_type, "scale and zero point must be initializers")
        if q.dtype.kind not in "iu" or scale.dtype.kind != "f" or zp.dtype != q.dtype:
            raise node_error(n.name, n.op_type, f"'{n.input[0]}' is {q.dtype} with a {scale.dtype} scale and a "
                             f"{zp.dtype} zero point; give integer values, a float scale and a zero point of "
                             "their type")
        axis = None
        if scale.size == 1:
            if zp.size != 1:
                raise node_error(n.name, n.op_type, f"'{n.input[0]}' has one scale but {zp.size} zero points")
        else:
            axis = int(attr(n, "axis", 1))
            axis = axis + q.ndim if axis < 0 else axis
            if not 0 <= axis < q.ndim or scale.size != q.shape[axis] or zp.shape != scale.shape:
                raise node_error(n.name, n.op_type,
                                 f"'{n.input[0]}' of shape {list(q.shape)} has {scale.size} scales and {zp.size} "
                                 f"zero points along axis {attr(n, 'axis', 1)}; per-channel quantization needs one "
                                 "per channel")
        ok = scale_ok(scale)
        if not ok.all():
            bad = scale.reshape(-1)[~ok][0]
            raise node_error(n.name, n.op_type, f"scale '{n.input[1]}' ({bad:.3g}) of '{n.input[0]}' is not {SCALE_RULE}")
        if axis is None:
            return ConstQ(q, scale.astype(np.float64).reshape(()), zp.astype(np.int64).reshape(()), None)
        return ConstQ(q, scale.astype(np.float64).reshape(-1), zp.astype(np.int64).reshape(-1), axis)

    def scan_qdq(self) -> None:
        for n in self.nodes:
            if n.op_type == "DequantizeLinear" and n.input[0] in self.inits:
                self.const_dq[n.output[0]] = self._const_qparams(n)
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
        if not np.isfinite(real).all():
            raise node_error(node.name, node.op_type, f"constant '{name}' holds NaN or infinite values")
        amax = float(np.max(np.abs(real))) if real.size else 0.0
        scale = amax / 127.0 if amax > 0 else 1.0
        q = np.clip(np.rint(real / scale), -127, 127).astype(np.int8)
        return self.graph.add_tensor(Tensor(name, tuple(real.shape), scale, 0, q))

    def weights(self, name: str, node: onnx.NodeProto, channel_axis: int, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric int8 weights of rank `ndim` and one scale per output channel (broadcast if per tensor)."""
        c = self.const_dq.get(name)
        if c is None:
            raise node_error(node.name, node.op_type,
                             f"weight '{name}' is not a quantized constant (DequantizeLinear of an initializer)")
        if c.q.ndim != ndim:
            raise node_error(node.name, node.op_type, f"weight '{name}' has shape {list(c.q.shape)}; "
                             f"{node.op_type} needs a rank-{ndim} weight")
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

    def bias(self, name: str | None, node: onnx.NodeProto, acc_scales: np.ndarray, out_scale: float) -> np.ndarray:
        """int32 bias in the accumulator scale (input scale x weight scale). A bias given at another
        scale (or in float) is rounded to it, and refused if that moves it by half an output step
        (`out_scale`) or more: the float model would add what the integer one cannot."""
        n = len(acc_scales)
        if not name:
            return np.zeros(n, np.int32)
        c = self.const_dq.get(name)
        if c is not None and c.q.dtype == np.int32 and c.q.size == n and np.all(c.zero_point == 0):
            if np.allclose(np.broadcast_to(c.scale, (n,)), acc_scales, rtol=1e-6, atol=0):
                return c.q.reshape(n).astype(np.int32)
        real = self.float_const(name, node, size=n)
        q = np.rint(real / acc_scales)
        if np.any(np.abs(q) > 2**31 - 1):
            raise node_error(node.name, node.op_type, "bias does not fit int32 at scale input x weight")
        err = np.abs(q * acc_scales - real) / out_scale
        if err.max(initial=0) >= 0.5:
            c = int(err.argmax())
            step = abs(acc_scales[c]) / out_scale
            why = (f"; one accumulator step is {step:.3g} output steps: the output scale is too small for the "
                   "input and weight scales" if step > 1 else "")
            raise node_error(node.name, node.op_type,
                             f"bias '{name}' cannot be held at the accumulator scale (input x weight scale "
                             f"{abs(acc_scales[c]):.3g} in channel {c}): rounding moves it by {err[c]:.1f} output "
                             f"steps{why}")
        return q.astype(np.int32)

    def float_const(self, name: str, node: onnx.NodeProto, size: int | None = None,
                    allow_inf: bool = False) -> np.ndarray:
        """A constant operand's real values (dequantized if quantized); with `size`, a vector of
        that many (one value is repeated). NaN, and infinities unless `allow_inf`, are refused."""
        if name in self.const_dq:
            v = self.const_dq[name].real()
        elif name in self.inits and self.inits[name].dtype.kind in "fiub":
            v = self.inits[name].astype(np.float64)
        else:
            raise node_error(node.name, node.op_type, f"'{name}' must be a numeric constant")
        if size is not None:
            if v.size not in (1, size):
                raise node_error(node.name, node.op_type, f"constant '{name}' holds {v.size} values, not {size}")
            v = np.broadcast_to(v.reshape(-1), (size,))
        if np.isnan(v).any() or not (allow_inf or np.isfinite(v).all()):
            raise node_error(node.name, node.op_type, f"constant '{name}' holds NaN or infinite values")
        return v

    def clip_bounds(self, node: onnx.NodeProto) -> tuple[float, float]:
        """A Clip's (min, max): attributes before opset 11, optional inputs after; -inf / inf where absent."""
        if self.opset < 11:
            return float(attr(node, "min", -np.inf)), float(attr(node, "max", np.inf))
        lo, hi = (float(self.float_const(node.input[i], node, 1, allow_inf=True)[0])
                  if len(node.input) > i and node.input[i] else inf for i, inf in ((1, -np.inf), (2, np.inf)))
        return lo, hi

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
                cmin, cmax = self.clip_bounds(act)
                # an absent bound is infinite and clips to the int8 end
                lo = max(lo, int(np.clip(np.rint(cmin / out.scale) + out.zero_point, -128, 127)))
                hi = min(hi, int(np.clip(np.rint(cmax / out.scale) + out.zero_point, -128, 127)))
                if lo > hi:  # ONNX Clip is min(max(x, lo), hi): every output is the upper bound
                    lo = hi
                    self.graph.notes.append(f"node '{act.name}' (Clip): min > max, so every output is max "
                                            "(ONNX semantics)")
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

