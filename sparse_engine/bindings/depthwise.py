"""Depthwise convolution: se_depthwise_conv2d_s8 (portable, any depth multiplier) and
se_depthwise_conv2d_s8_dsp (depth multiplier 1; weights widened offline to int16 in SXTB16 pair
order, scratch 2 * C). Either runs in place (output over its input) with a ring of held rows
when the planner aliases them (planner.inplace_depthwise, dw_ring_bytes)."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from ..planner import dw_ring_bytes
from .common import ArrayFn, Call, Emit
from .conv import STRUCT, fields, with_table


def dsp_fits(p: dict) -> bool:
    return p["depth_mult"] == 1


def kernel(p: dict, dsp: bool) -> str:
    return "se_depthwise_conv2d_s8_dsp" if dsp and dsp_fits(p) else "se_depthwise_conv2d_s8"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind == "conv2d" and op.params["depthwise"]


def dsp_weights(w: np.ndarray) -> np.ndarray:
    """Depthwise weights [1, kh, kw, C] widened to int16 in the order of se_depthwise_conv2d_s8_dsp:
    per group of four channels and per tap (w0, w2, w1, w3) (SXTB16's halfword pairs), then the
    C % 4 tail channels tap by tap. Twice the int8 bytes, two fewer instructions per tap."""
    taps = w.reshape(-1, w.shape[-1]).astype(np.int16)
    c = taps.shape[1]
    g = c // 4
    head = taps[:, :4 * g].reshape(len(taps), g, 4)[:, :, [0, 2, 1, 3]].transpose(1, 0, 2)
    return np.concatenate([head.reshape(-1), taps[:, 4 * g:].reshape(-1)])


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p = op.params
    x, out = em.g.tensors[op.inputs[0]], em.g.tensors[op.outputs[0]]
    w = p["weights"]
    f = fields(p, A, x, out, A(w, np.int8, "weights"))
    fn, scratch = kernel(p, em.dsp), 0
    if em.dsp and dsp_fits(p):
        scratch = 2 * x.shape[3]
        f.update(weights="0", weights16=A(dsp_weights(w), np.int16, "weights16"))
        with_table(f, p, A)
    if em.plan.aliases.get(out.name) == x.name:  # in place: rows wait in a ring after the scratch
        f.update(hold_rows=p["pad"][0] + 1, ring=f"(int8_t *)(void *)(scratch + {scratch})")
        scratch += -(-dw_ring_bytes(op, em.g) // 2)
    return Call(fn, STRUCT, f, scratch)
