"""Dense convolution (not depthwise): se_conv2d_s8 (portable, any geometry) and se_conv2d_s8_dsp
(any geometry: each output pixel's patch widened into scratch, two pixels at a time). Inputs whose
channels are not a multiple of 4 are staged as int8 rows of K rounded up to 4 (padded with the
zero point) and their DSP weights padded with zeros to the same length, so that the dot product
has no k % 4 tail (dsp_k)."""
from __future__ import annotations

import numpy as np

from ..ir import Op, Tensor
from .common import ArrayFn, Call, Emit, pair_len, rq_table, table_replaces

STRUCT = "se_conv_params_t"


def rows_fit(p: dict) -> bool:
    """se_conv2d_rows_s8_dsp: channels a multiple of 4, no dilation, at most 8 kernel rows, more
    than one tap (a strided 1x1 conv reads each input once: measured slower through rows, MLPerf
    IC's 1x1 stride-2 convs 2.52 -> 3.09 and 1.66 -> 2.02 est. cycles per MAC)."""
    w = p["weights"]
    return (w.shape[3] % 4 == 0 and tuple(p["dilation"]) == (1, 1) and w.shape[1] <= 8
            and w.shape[1] * w.shape[2] > 1)


def kernel(dsp: bool, p: dict | None = None) -> str:
    if not dsp:
        return "se_conv2d_s8"
    return "se_conv2d_rows_s8_dsp" if p is not None and rows_fit(p) else "se_conv2d_s8_dsp"


def rows_scratch(p: dict, out_w: int) -> int:
    """int16 scratch of se_conv2d_rows_s8_dsp: k_h widened rows of (out_w - 1) * stride + k_w pixels."""
    w = p["weights"]
    return w.shape[1] * ((out_w - 1) * p["stride"][1] + w.shape[2]) * w.shape[3]


def claims(op: Op, dsp: bool) -> bool:
    return op.kind == "conv2d" and not op.params["depthwise"]


def fields(p: dict, A: ArrayFn, x: Tensor, out: Tensor, weights: str) -> dict:
    """se_conv_params_t of a conv layer, depthwise or not, in its portable form (no table, no scratch)."""
    w = p["weights"]
    return dict(batch=x.shape[0], in_h=x.shape[1], in_w=x.shape[2], in_c=x.shape[3], out_h=out.shape[1],
                out_w=out.shape[2], out_c=out.shape[3], k_h=w.shape[1], k_w=w.shape[2],
                stride_h=p["stride"][0], stride_w=p["stride"][1], pad_top=p["pad"][0],
                pad_left=p["pad"][1], dil_h=p["dilation"][0], dil_w=p["dilation"][1],
                depth_mult=p["depth_mult"], in_zp=p["in_zp"], out_zp=p["out_zp"], act_min=p["act_min"],
                act_max=p["act_max"], weights=weights, bias=A(p["bias"], np.int32, "bias"),
                mult=A(p["mult"], np.int32, "mult"), shift=A(p["shift"], np.int32, "shift"),
                rq="0", scratch="0", weights16="0", hold_rows=0, ring="0", block_c=0,
                sweep_cols=0)


def with_table(f: dict, p: dict, A: ArrayFn) -> dict:
    """A DSP conv's fields: scratch and the requantization table, which then replaces mult/shift."""
    f.update(scratch="scratch", rq=rq_table(p, A, True))
    return table_replaces(f)


def dsp_k(p: dict) -> int:
    """The DSP kernel's row length: K = kh * kw * C, rounded up to 4 when C % 4 != 0 (the same rule
    as se_conv2d_s8_dsp's kp)."""
    w = p["weights"]
    k = w.shape[1] * w.shape[2] * w.shape[3]
    return k if w.shape[3] % 4 == 0 else (k + 3) & ~3


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p = op.params
    x, out = em.g.tensors[op.inputs[0]], em.g.tensors[op.outputs[0]]
    w = p["weights"]
    f = fields(p, A, x, out, A(w, np.int8, "weights"))
    if not em.dsp:
        return Call(kernel(False), STRUCT, f)
    if rows_fit(p):
        return Call(kernel(True, p), STRUCT, with_table(f, p, A), rows_scratch(p, out.shape[2]))
    kk, kp = w.shape[1] * w.shape[2] * w.shape[3], dsp_k(p)
    if kp != kk:
        rows = np.zeros((w.shape[0], kp), np.int8)
        rows[:, :kk] = w.reshape(w.shape[0], kk)
        f["weights"] = A(rows, np.int8, "weights_k4")
    scratch = pair_len(kp) + (0 if kp == kk and x.shape[3] % 4 == 0 else kp // 2)
    return Call(kernel(True), STRUCT, with_table(f, p, A), scratch)
