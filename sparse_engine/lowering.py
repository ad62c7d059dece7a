"""One function per ONNX op type: build the IR op and compute its integer parameters.

Conventions (docs/architecture.md, the integer contract): conv weights OHWI, depthwise weights 1HWC,
per-output-channel (mult, shift) from `qmath.quantize_multiplier`, int32 bias at scale
s_in*s_w. Ops TFLite lacks document their integer algorithm in the simulator.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from . import qmath
from .errors import node_error
from .ir import Graph, Op, Tensor

if TYPE_CHECKING:
    import onnx


class Importer(Protocol):
    """What a lowering function asks of the frontend's importer (frontend._Importer implements it;
    lowering never imports the frontend)."""

    graph: Graph
    opset: int
    const_dq: dict  # initializer name -> frontend.ConstQ

    def act(self, name: str, node: "onnx.NodeProto") -> Tensor: ...

    def weights(self, name: str, node: "onnx.NodeProto", channel_axis: int,
                ndim: int) -> tuple[np.ndarray, np.ndarray]: ...

    def bias(self, name: str | None, node: "onnx.NodeProto", acc_scales: np.ndarray,
             out_scale: float) -> np.ndarray: ...

    def float_const(self, name: str, node: "onnx.NodeProto", size: int | None = None,
                    allow_inf: bool = False) -> np.ndarray: ...

    def clip_bounds(self, node: "onnx.NodeProto") -> tuple[float, float]: ...

LN_FRAC_BITS = 30  # normalized value n' in Q30 (LayerNorm)
LN_RANGE = 255  # largest spread of x_i = q_i - zi within one int8 row
AFFINE_OUT_BITS = 8  # LayerNorm / BatchNorm output stage keeps 8 fractional bits before the final rounding
SOFTMAX_EXP_BITS = 16  # exp table in Q16


SCALE_RULE = "a positive, finite, normal float32 number"


def scale_ok(scales) -> np.ndarray:
    """Per element: a quantization scale the integer kernels can work with (SCALE_RULE: positive,
    finite and not below float32's smallest normal number). Both frontends check every scale."""
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    return np.isfinite(s) & (s >= np.finfo(np.float32).tiny)


def attr(node: "onnx.NodeProto", name: str, default=None):
    """An ONNX node attribute's value, or `default` when absent."""
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def multipliers(reals: np.ndarray, node: "onnx.NodeProto | None" = None,
                bound: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Q31 multipliers and shifts of `reals` (qmath.quantize_multiplier). With `node`, a real that
    is not finite, or so large that its left shift could wrap int32 values up to `bound` (the
    largest |value| the layer requantizes), rejects the layer: the C would wrap where the float
    model saturates (or shift out of range), so no rounding rule could make it agree."""
    reals = np.asarray(reals, dtype=np.float64).reshape(-1)
    if node is not None:
        bad = ~np.isfinite(reals)
        if bad.any():
            raise node_error(node.name, node.op_type, f"requantization multiplier {reals[bad][0]} is not finite "
                             "(a scale or attribute of this node is NaN, infinite or 0)")
    pairs = [qmath.quantize_multiplier(float(r)) for r in reals]
    if node is not None and bound is not None:
        for r, (_, shift) in zip(reals, pairs):
            if abs(r) >= 2.0**30 or int(bound) << max(shift, 0) >= 2**31:
                raise node_error(node.name, node.op_type,
                                 f"requantization multiplier {abs(r):.3g} is too large: values up to {int(bound):,} "
                                 f"would overflow int32 when scaled by it; the output scale is too small for the "
                                 "input and weight scales")
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def _check_acc(node, k: int, wmax: int, bias: np.ndarray) -> int:
    """Prove the int32 accumulator cannot overflow: K * 255 * max|w| + max|bias| < 2^31."""
    bound = int(k) * 255 * int(wmax) + (int(np.max(np.abs(bias.astype(np.int64)))) if bias.size else 0)
    if bound >= 2**31:
        raise node_error(node.name, node.op_type,
                         f"int32 accumulator may overflow (bound {bound} >= 2^31); split the reduction")
    return bound


def _add_op(imp: Importer, kind: str, node, inputs: list[str], out: Tensor, params: dict, macs: int = 0) -> Op:
    op = Op(kind, node.name, node.op_type, inputs, [out.name], params, macs)
    imp.graph.ops.append(op)
    return op


def conv(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    if len(x.shape) != 4:
        raise node_error(node.name, node.op_type, f"only 2-D convolution is supported (input rank {len(x.shape)})")
    wq, ws = imp.weights(node.input[1], node, 0, 4)
    cout, cin_g, kh, kw = wq.shape
    cin = x.shape[1]
    group = int(attr(node, "group", 1))
    strides = list(attr(node, "strides", [1, 1]))
    dil = list(attr(node, "dilations", [1, 1]))
    pads = list(attr(node, "pads", [0, 0, 0, 0]))
    auto_pad = attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    ih, iw = x.shape[2], x.shape[3]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in ((ih, kh, strides[0], dil[0]), (iw, kw, strides[1], dil[1])):
            total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    if group < 1 or cin != cin_g * group:
        raise node_error(node.name, node.op_type, f"the weight reads {cin_g} input channels per group in {group} "
                         f"group(s), but the input has {cin} channels")
    depthwise = group > 1
    if group == 1:
        w = np.transpose(wq, (0, 2, 3, 1)).copy()  # OIHW -> OHWI
        kred = cin * kh * kw
    elif group == cin and cin_g == 1 and cout % cin == 0:
        w = np.transpose(wq, (1, 2, 3, 0)).copy()  # (C*m)1HW -> 1HW(C*m)
        kred = kh * kw
    else:
        raise node_error(node.name, node.op_type,
                         f"grouped convolution with group={group} (neither 1 nor depthwise) is not supported")
    acc_scales = x.scale * ws
    bias = imp.bias(node.input[2] if len(node.input) > 2 else None, node, acc_scales, out.scale)
    params = conv_params(node, x, out, w, ws, bias, kred, strides, pads, dil, depthwise,
                         cout // cin if depthwise else 1, clamp)
    oh, ow = out.shape[2], out.shape[3]
    _add_op(imp, "conv2d", node, [x.name], out, params, macs=out.shape[0] * oh * ow * cout * kred)


def conv_params(node, x: Tensor, out: Tensor, w: np.ndarray, ws: np.ndarray, bias: np.ndarray, kred: int, stride,
                pad, dilation, depthwise: bool, depth_mult: int, clamp) -> dict:
    """A conv2d op's params: weights OHWI (depthwise 1HWC), int32 bias at s_in * s_w, per-channel
    multipliers; `pad` (top, left, bottom, right); `node` names the layer in errors (any object
    with .name and .op_type)."""
    bound = _check_acc(node, kred, int(np.max(np.abs(w.astype(np.int32)))) if w.size else 0, bias)
    mult, shift = multipliers(x.scale * ws / out.scale, node, bound)
    return dict(weights=w, bias=bias, mult=mult, shift=shift, stride=(int(stride[0]), int(stride[1])),
                pad=tuple(int(v) for v in pad), dilation=(int(dilation[0]), int(dilation[1])), depthwise=depthwise,
                depth_mult=depth_mult, in_zp=x.zero_point, out_zp=out.zero_point,
                act_min=clamp[0], act_max=clamp[1], acc_bound=bound)


def _fc(imp, node, x: Tensor, w_nk: np.ndarray, ws: np.ndarray, bias_name, out, clamp, alpha: float = 1.0,
        beta: float = 1.0):
    n, k = w_nk.shape
    if x.shape[-1] != k:
        raise node_error(node.name, node.op_type, f"inner dimensions differ: {x.shape[-1]} vs {k}")
    acc_scales = x.scale * ws
    bias = imp.bias(bias_name, node, acc_scales / beta, out.scale / abs(beta)) if beta else np.zeros(n, np.int32)
    params = fc_params(node, x, w_nk, ws, bias, out, clamp, alpha)
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    _add_op(imp, "fc", node, [x.name], out, params, macs=rows * n * k)


def fc_params(node, x: Tensor, w_nk: np.ndarray, ws: np.ndarray, bias: np.ndarray, out: Tensor, clamp,
              alpha: float = 1.0) -> dict:
    """An fc op's params: weights [N, K], int32 bias at s_in * s_w (scaled by 1/alpha here),
    per-channel multipliers; `node` names the layer in errors."""
    n, k = w_nk.shape
    acc_scales = x.scale * ws
    bound = _check_acc(node, k, int(np.max(np.abs(w_nk.astype(np.int32)))) if w_nk.size else 0, bias)
    mult, shift = multipliers(alpha * acc_scales / out.scale, node, bound)
    if alpha != 1.0:  # bias was quantized at s_in*s_w; alpha scales the whole accumulator
        bias = np.rint(bias / alpha).astype(np.int32)
    # w_scale: the real value of one accumulator step is s_in * w_scale[n] (FWSA folds from it)
    # single_round: TFLite FullyConnected's requantization (qmath.mbqm_single), as LiteRT computes it
    params = dict(weights=np.ascontiguousarray(w_nk), bias=bias, mult=mult, shift=shift, in_zp=x.zero_point,
                  out_zp=out.zero_point, act_min=clamp[0], act_max=clamp[1], acc_bound=bound, single_round=True,
                  w_scale=tuple(float(v) for v in alpha * np.broadcast_to(ws, (n,))))
    return params


def gemm(imp, node, out, clamp):
    if int(attr(node, "transA", 0)):
        raise node_error(node.name, node.op_type, "transA=1 is not supported")
    x = imp.act(node.input[0], node)
    trans_b = int(attr(node, "transB", 0))
    wq, ws = imp.weights(node.input[1], node, 0 if trans_b else 1, 2)
    w = wq if trans_b else wq.T
    alpha, beta = float(attr(node, "alpha", 1.0)), float(attr(node, "beta", 1.0))
    if not (math.isfinite(alpha) and math.isfinite(beta) and alpha != 0):
        raise node_error(node.name, node.op_type, f"alpha {alpha} and beta {beta} must be finite, alpha non-zero")
    _fc(imp, node, x, w, ws, node.input[2] if len(node.input) > 2 else None, out, clamp, alpha, beta)


def matmul(imp, node, out, clamp):
    a_name, b_name = node.input[0], node.input[1]
    if b_name in imp.const_dq and a_name not in imp.const_dq and imp.const_dq[b_name].q.ndim == 2:
        x = imp.act(a_name, node)
        wq, ws = imp.weights(b_name, node, 1, 2)
        _fc(imp, node, x, wq.T, ws, None, out, clamp)
        return
    a = imp.act(a_name, node)
    b = imp.act(b_name, node)
    params, macs = matmul_params(node, a, b, out, clamp)
    _add_op(imp, "matmul", node, [a.name, b.name], out, params, macs=macs)


def matmul_params(node, a: Tensor, b: Tensor, out: Tensor, clamp) -> tuple[dict, int]:
    """A MatMul of two int8 activations (TFLite's BatchMatMul arithmetic): params and MACs."""
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise node_error(node.name, node.op_type, "1-D MatMul operands are not supported")
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if b.shape[-2] != k:
        raise node_error(node.name, node.op_type, f"inner dimensions differ: {k} vs {b.shape[-2]}")
    bound = k * 255 * 255
    if bound >= 2**31:
        raise node_error(node.name, node.op_type, f"int32 accumulator may overflow (K={k})")
    mult, shift = multipliers([a.scale * b.scale / out.scale], node, bound)
    batch = int(np.prod(out.shape[:-2], dtype=np.int64))
    params = dict(a_zp=a.zero_point, b_zp=b.zero_point, out_zp=out.zero_point, mult=int(mult[0]),
                  shift=int(shift[0]), act_min=clamp[0], act_max=clamp[1], acc_bound=bound)
    return params, batch * m * n * k


def add(imp, node, out, clamp):
    a = imp.act(node.input[0], node)
    b = imp.act(node.input[1], node)
    _add_op(imp, "add", node, [a.name, b.name], out, add_params(node, a, b, out, clamp, node.op_type == "Sub"))


def add_params(node, a: Tensor, b: Tensor, out: Tensor, clamp, subtract: bool = False) -> dict:
    """TFLite's int8 Add: both inputs to a common scale with a left shift of 20, then the output.
    `subtract`: TFLite's Sub, the same arithmetic with the second input's multiplier negated."""
    left_shift = 20
    twice_max = 2.0 * max(a.scale, b.scale)
    ma, sa = multipliers([a.scale / twice_max], node, 255 << left_shift)
    mb, sb = multipliers([b.scale / twice_max], node, 255 << left_shift)
    # each side scaled by at most 1/2, so their sum stays within 255 << left_shift (+ rounding)
    mo, so = multipliers([twice_max / ((1 << left_shift) * out.scale)], node, (255 << left_shift) + 2)
    return dict(a_zp=a.zero_point, b_zp=b.zero_point, out_zp=out.zero_point, left_shift=left_shift,
                a_mult=int(ma[0]), a_shift=int(sa[0]), b_mult=-int(mb[0]) if subtract else int(mb[0]), b_shift=int(sb[0]),
                out_mult=int(mo[0]), out_shift=int(so[0]), act_min=clamp[0], act_max=clamp[1])


def mul(imp, node, out, clamp):
    a = imp.act(node.input[0], node)
    b = imp.act(node.input[1], node)
    _add_op(imp, "mul", node, [a.name, b.name], out, mul_params(node, a, b, out, clamp))


def mul_params(node, a: Tensor, b: Tensor, out: Tensor, clamp) -> dict:
    """TFLite's int8 Mul: one multiplier s_a s_b / s_out."""
    m, s = multipliers([a.scale * b.scale / out.scale], node, 255 * 255)
    return dict(a_zp=a.zero_point, b_zp=b.zero_point, out_zp=out.zero_point, mult=int(m[0]), shift=int(s[0]),
                act_min=clamp[0], act_max=clamp[1])


def requant_params(x: Tensor, out: Tensor, node) -> dict:
    """Parameters of a plain int8 -> int8 rescale; identity when the quantization is shared."""
    if (x.scale, x.zero_point) == (out.scale, out.zero_point):
        return dict(requant=False, mult=0, shift=0, in_zp=x.zero_point, out_zp=out.zero_point)
    m, s = multipliers([x.scale / out.scale], node, 255)
    return dict(requant=True, mult=int(m[0]), shift=int(s[0]), in_zp=x.zero_point, out_zp=out.zero_point)


def _pool_geometry(node):
    k = list(attr(node, "kernel_shape"))
    if len(k) != 2:
        raise node_error(node.name, node.op_type, "only 2-D pooling is supported")
    if int(attr(node, "ceil_mode", 0)):
        raise node_error(node.name, node.op_type, "ceil_mode=1 is not supported")
    if list(attr(node, "dilations", [1, 1])) != [1, 1]:
        raise node_error(node.name, node.op_type, "dilated pooling is not supported")
    auto_pad = attr(node, "auto_pad", b"NOTSET")
    if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) not in ("NOTSET", "VALID"):
        raise node_error(node.name, node.op_type, "auto_pad SAME is not supported for pooling; give pads")
    return (int(k[0]), int(k[1])), tuple(int(s) for s in attr(node, "strides", [1, 1])), \
        tuple(int(p) for p in attr(node, "pads", [0, 0, 0, 0]))


def avg_params(x: Tensor, out: Tensor, kernel, stride, pad, include_pad: bool, node, clamp) -> dict:
    """Where input and output share (scale, zero point) and padding is not counted, TFLite's
    average (`divide`): the raw int8 sum over the taps inside the image, divided by their count,
    rounded half away from zero (qmath.round_div). Otherwise zo + MBQM(sum(x - zi), s_in /
    (s_out * count)), one rounding, count from a table: with padding excluded the count varies near
    the border, so the table holds counts 0..kh*kw; otherwise the single entry for kh*kw.
    """
    area = kernel[0] * kernel[1]
    fixed = include_pad or not any(pad)
    divide = (x.scale, x.zero_point) == (out.scale, out.zero_point) and not (include_pad and any(pad))
    counts = [area] if fixed else list(range(area + 1))
    m, s = multipliers([x.scale / (out.scale * c) if c else 0.0 for c in counts], node, 255 * area)
    return dict(kernel=kernel, stride=stride, pad=pad, fixed_count=fixed, count_mult=m, count_shift=s,
                divide=divide, in_zp=x.zero_point, out_zp=out.zero_point, acc_bound=255 * area,
                act_min=clamp[0], act_max=clamp[1])


def avgpool(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    kernel, stride, pad = _pool_geometry(node)
    params = avg_params(x, out, kernel, stride, pad, bool(attr(node, "count_include_pad", 0)), node, clamp)
    _add_op(imp, "avgpool", node, [x.name], out, params)


def global_avgpool(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    if len(x.shape) != 4:
        raise node_error(node.name, node.op_type, "only 4-D inputs are supported")
    if x.shape[2] * x.shape[3] * 255 >= 2**31:
        raise node_error(node.name, node.op_type, "window too large for the int32 sum")
    params = avg_params(x, out, (x.shape[2], x.shape[3]), (1, 1), (0, 0, 0, 0), True, node, clamp)
    _add_op(imp, "avgpool", node, [x.name], out, params)


def maxpool(imp, node, out, clamp):
    if len(node.output) > 1 and node.output[1]:
        raise node_error(node.name, node.op_type, "the Indices output is not supported")
    x = imp.act(node.input[0], node)
    kernel, stride, pad = _pool_geometry(node)
    params = dict(kernel=kernel, stride=stride, pad=pad, act_min=clamp[0], act_max=clamp[1],
                  **requant_params(x, out, node))
    _add_op(imp, "maxpool", node, [x.name], out, params)


def reshape(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    params = dict(perm=tuple(range(len(x.shape))), **requant_params(x, out, node))
    _add_op(imp, "copy", node, [x.name], out, params)


def transpose(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    perm = attr(node, "perm", None)
    perm = tuple(int(p) for p in perm) if perm is not None else tuple(reversed(range(len(x.shape))))
    params = dict(perm=perm, **requant_params(x, out, node))
    _add_op(imp, "copy", node, [x.name], out, params)


def concat(imp, node, out, clamp):
    xs = [imp.act(i, node) for i in node.input]
    axis = int(attr(node, "axis"))
    axis = axis + len(out.shape) if axis < 0 else axis
    reqs = [requant_params(x, out, node) for x in xs]
    params = dict(axis=axis, requant=[r["requant"] for r in reqs], mult=[r["mult"] for r in reqs],
                  shift=[r["shift"] for r in reqs], in_zp=[x.zero_point for x in xs], out_zp=out.zero_point)
    _add_op(imp, "concat", node, [x.name for x in xs], out, params)


def softmax(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    axis = int(attr(node, "axis", -1 if imp.opset >= 13 else 1))
    axis = axis + len(x.shape) if axis < 0 else axis
    if axis != len(x.shape) - 1:
        raise node_error(node.name, node.op_type, f"softmax over axis {axis} (not the last) is not supported")
    _add_op(imp, "softmax", node, [x.name], out, softmax_params(x.scale, out, node, x.shape[-1]))


TFLITE_SOFTMAX_OUT = (1.0 / 256, -128)  # the only int8 output quantization TFLite's Softmax has
TFLITE_SOFTMAX_MAX_ROW = 512  # row sums below 2^28 (each exp adds at most 2^19)


def softmax_params(in_scale: float, out: Tensor, node=None, n: int = 0) -> dict:
    """Where the output is TFLite's (scale 1/256, zero point -128): TFLite's reference algorithm
    (`tflite`: exp of each difference from the row maximum in Q0.31 and its Q12 share of the sum,
    as tables; qmath.reciprocal per row). Otherwise ours: an exp table in Q16 for input steps of
    `in_scale`, and the Q30 -> output requantization (of probabilities up to 2^30; checked against
    `node` when given). `in_scale` includes TFLite's beta."""
    if (out.scale, out.zero_point) == TFLITE_SOFTMAX_OUT:
        if n >= TFLITE_SOFTMAX_MAX_ROW:  # the output shift 35 - clz(sum) must stay below 32
            raise node_error(node.name, node.op_type, f"rows of {n} values; TFLite's int8 softmax (output scale "
                             f"1/256) is defined for rows of fewer than {TFLITE_SOFTMAX_MAX_ROW}")
        mult, shift, diff_min = qmath.softmax_input_scaling(in_scale)
        diff = -np.arange(256, dtype=np.int64)
        scaled = qmath.srdhm(diff << shift, mult)
        exp = np.where(diff >= diff_min, qmath.exp_on_negative_values(scaled), 0)
        return dict(tflite=True, exp_table=exp.astype(np.int32),
                    sum_table=qmath.rdbpot(exp, qmath.SOFTMAX_ACCUM_BITS).astype(np.int32), mult=0, shift=0,
                    out_zp=out.zero_point)
    d = np.arange(256, dtype=np.float64)
    table = np.rint(np.exp(-d * in_scale) * (1 << SOFTMAX_EXP_BITS)).astype(np.int32)
    m, s = multipliers([2.0 ** -30 / out.scale], node, 1 << 30)
    return dict(exp_table=table, mult=int(m[0]), shift=int(s[0]), out_zp=out.zero_point)


def _affine_out_stage(scale_real: np.ndarray, bias_real: np.ndarray, out: Tensor, frac_bits: int,
                      vmax: int, node) -> dict:
    """Output stage shared by LayerNorm and BatchNorm: t = MBQM(v, m_c) in Q8; q = zo + round((t + b_c)/256).

    |v| <= vmax; the check keeps MBQM's left shift from wrapping (t stays below 2^30).
    """
    reals = scale_real * 2.0 ** (AFFINE_OUT_BITS - frac_bits) / out.scale
    if not (np.isfinite(reals).all() and np.isfinite(bias_real).all()):
        raise node_error(node.name, node.op_type, "scale, bias, mean or variance holds NaN or infinite values")
    if np.any(np.abs(reals) * vmax >= 2.0**30):
        raise node_error(node.name, node.op_type, "output scale too small for the integer output stage "
                         f"(gain {float(np.max(np.abs(reals))):.3g} per LSB)")
    m, s = multipliers(reals, node)
    bq = np.rint(bias_real / out.scale * 2 ** AFFINE_OUT_BITS)
    if np.any(np.abs(bq) > 2**30):  # t + b must not wrap int32 (|t| < 2^30); clipping would change the output
        c = int(np.abs(bq).argmax())
        raise node_error(node.name, node.op_type, f"bias of channel {c} is {bias_real[c] / out.scale:.3g} output "
                         f"steps, beyond the +-{2 ** (30 - AFFINE_OUT_BITS):,} the integer output stage holds")
    bq = bq.astype(np.int32)
    return dict(mult=m, shift=s, bias_q8=bq, out_zp=out.zero_point)


def layernorm_prescale(n: int, eps_units: float) -> tuple[int, int, int]:
    """Constants of Scaled-LayerNorm's per-row power-of-two pre-scale (simulator.py).

    eps_units is epsilon in input steps squared. Returns (k0, eps0, limit): the smallest shift k0
    for which eps0 = round(eps_units n^3 / 4^k0) < 2^30, and the largest |d'_i| for which
    n limit^2 + eps0 < 2^31, so that any row whose pre-scaled values stay within `limit` has its
    variance sum in int32.
    """
    k0 = 0
    while round(eps_units * n**3 / 4.0**k0) >= 2**30:
        k0 += 1
    eps0 = int(round(eps_units * n**3 / 4.0**k0))
    return k0, eps0, math.isqrt((2**31 - 1 - eps0) // n)


def layernorm(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    axis = int(attr(node, "axis", -1))
    axis = axis + len(x.shape) if axis < 0 else axis
    if axis != len(x.shape) - 1:
        raise node_error(node.name, node.op_type, "LayerNormalization over more than the last axis is not supported")
    n = x.shape[-1]
    gamma = imp.float_const(node.input[1], node, n)
    beta = imp.float_const(node.input[2], node, n) if len(node.input) > 2 and node.input[2] else np.zeros(n)
    eps = float(attr(node, "epsilon", 1e-5))
    if not (eps > 0 and math.isfinite(eps)):  # 0: a constant row is 0/0 in float; < 0: sqrt of a negative
        raise node_error(node.name, node.op_type, f"epsilon {eps} must be a positive finite number")
    if n * LN_RANGE >= 2**29:
        raise node_error(node.name, node.op_type, f"row length {n} too long for the int32 LayerNorm")
    k0, eps0, limit = layernorm_prescale(n, eps / x.scale**2)
    params = dict(in_zp=x.zero_point, prescale=k0, eps_term=eps0, limit=limit,
                  **_affine_out_stage(gamma * math.sqrt(n), beta, out, LN_FRAC_BITS, 1 << LN_FRAC_BITS, node))
    _add_op(imp, "layernorm", node, [x.name], out, params)


def batchnorm(imp, node, out, clamp):
    x = imp.act(node.input[0], node)
    scale, b, mean, var = (imp.float_const(i, node, x.shape[1]) for i in node.input[1:5])
    eps = float(attr(node, "epsilon", 1e-5))
    if not np.all(var + eps > 0):  # also catches NaN
        raise node_error(node.name, node.op_type, f"variance + epsilon ({eps}) must be positive in every channel")
    a = scale / np.sqrt(var + eps)
    params = dict(in_zp=x.zero_point, **_affine_out_stage(a * x.scale, b - mean * a, out, 0, 255, node))
    _add_op(imp, "affine", node, [x.name], out, params)


def _gelu(v, node):
    if (attr(node, "approximate", b"none") in (b"tanh", "tanh")):
        return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    from math import erf
    return 0.5 * v * (1 + np.vectorize(erf)(v / math.sqrt(2)))


LUT_FUNCS: dict[str, Callable] = {
    "Gelu": _gelu,
    "Sigmoid": lambda v, n: 1 / (1 + np.exp(-v)),
    "Tanh": lambda v, n: np.tanh(v),
    "Relu": lambda v, n: np.maximum(v, 0),
    "LeakyRelu": lambda v, n: np.where(v >= 0, v, v * float(attr(n, "alpha", 0.01))),
    "HardSigmoid": lambda v, n: np.clip(float(attr(n, "alpha", 0.2)) * v + float(attr(n, "beta", 0.5)), 0, 1),
    "HardSwish": lambda v, n: v * np.clip(v / 6 + 0.5, 0, 1),
}


def lut(imp, node, out, clamp):
    """Elementwise int8 -> int8 function as a 256-entry table: exact float math, one rounding."""
    x = imp.act(node.input[0], node)
    q = np.arange(-128, 128)
    v = (q - x.zero_point) * x.scale
    if node.op_type == "Clip":
        y = np.clip(v, *imp.clip_bounds(node))
    else:
        y = LUT_FUNCS[node.op_type](v, node)
    table = np.clip(np.rint(y / out.scale) + out.zero_point, clamp[0], clamp[1]).astype(np.int8)
    _add_op(imp, "lut", node, [x.name], out, dict(table=table))


LOWER = {
    "Conv": conv, "Gemm": gemm, "MatMul": matmul, "Add": add, "Sub": add, "Mul": mul, "AveragePool": avgpool,
    "GlobalAveragePool": global_avgpool, "MaxPool": maxpool, "Reshape": reshape, "Flatten": reshape,
    "Squeeze": reshape, "Unsqueeze": reshape, "Identity": reshape, "Transpose": transpose, "Concat": concat,
    "Softmax": softmax, "LayerNormalization": layernorm, "BatchNormalization": batchnorm, "Clip": lut,
    **{k: lut for k in LUT_FUNCS},
}


def lower(imp: Importer, node: "onnx.NodeProto", out: Tensor, clamp: tuple[int, int]) -> None:
    LOWER[node.op_type](imp, node, out, clamp)
