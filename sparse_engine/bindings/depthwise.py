"""Depthwise convolution: se_depthwise_conv2d_s8 (portable, any depth multiplier),
se_depthwise3x3_s8_dsp (3x3, stride 1 or 2, no dilation, multiplier 1: row-stationary, input rows
widened once into int16 rows per channel) and se_depthwise_conv2d_s8_dsp (any other multiplier-1
geometry; weights widened offline to int16 in SXTB16 pair order, scratch 2 * C). The portable and
the general DSP kernel run in place (output over its input) with a ring of held rows when the
planner aliases them (planner.inplace_depthwise, dw_ring_bytes); the 3x3 kernel needs no ring: it
widens every channel of each input row before writing the output rows over it."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from ..planner import dw_ring_bytes
from .common import ArrayFn, Call, Emit
from .conv import STRUCT, fields, with_table


def dsp_fits(p: dict) -> bool:
    return p["depth_mult"] == 1


# Shortest output lines (by stride) for which se_depthwise3x3_s8_dsp beats the general kernel: its
# setup per channel and output line (about 90 estimated cycles) needs enough outputs to pay off.
# Measured on MLPerf Tiny's VWW and KWS layers (est. cycles per MAC, rows / general kernel):
# stride 1 at widths 48, 24, 12, 6, 5, 3: 2.34/4.69, 2.68/3.93, 3.38/3.88, 4.82/3.94, 5.12/4.11,
# 7.77/4.03; stride 2 at output widths 24, 12, 6, 3: 3.56/4.16, 4.34/3.94, 5.93/3.90, 9.34/4.01.
ROWS_MIN_WIDTH = {1: 12, 2: 16}


def rows_sweep(p: dict, out_h: int, out_w: int) -> str | None:
    """How se_depthwise3x3_s8_dsp runs a layer whose output is out_h x out_w: "rows" (along image
    rows), "cols" (along columns, for maps too narrow but tall enough) or None (it does not fit:
    3x3, equal strides of 1 or 2, no dilation, multiplier 1, accumulators that may be doubled
    (|2 acc| < 2^31), lines of ROWS_MIN_WIDTH or more)."""
    s = p["stride"][0]
    if not (dsp_fits(p) and tuple(p["weights"].shape[1:3]) == (3, 3) and tuple(p["dilation"]) == (1, 1)
            and p["stride"][1] == s and s in ROWS_MIN_WIDTH and int(p["acc_bound"]) < 2**30):
        return None
    if out_w >= ROWS_MIN_WIDTH[s]:
        return "rows"
    return "cols" if out_h >= ROWS_MIN_WIDTH[s] else None


def kernel(p: dict, dsp: bool, out_h: int = 0, out_w: int = 0) -> str:
    """The kernel of a depthwise layer whose output is out_h x out_w."""
    if not (dsp and dsp_fits(p)):
        return "se_depthwise_conv2d_s8"
    return "se_depthwise3x3_s8_dsp" if rows_sweep(p, out_h, out_w) else "se_depthwise_conv2d_s8_dsp"


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


def rows_weights(w: np.ndarray, cols: bool = False) -> np.ndarray:
    """3x3 depthwise weights [1, 3, 3, C] as int16 for se_depthwise3x3_s8_dsp, doubled (the kernel
    accumulates 2 acc, which SMMULR takes as it is): per channel and kernel line the pairs
    (w0, w1), (w1, w2), 12 halfwords per channel; kernel lines are columns when it sweeps columns."""
    k = w[0].astype(np.int16)  # [3 (ky), 3 (kx), C]
    r = 2 * (k.transpose(2, 1, 0) if cols else k.transpose(2, 0, 1))  # [C, line, tap]
    return r[:, :, [0, 1, 1, 2]].reshape(-1)


ROWS_BLOCK = 4  # channels per pass of se_depthwise3x3_s8_dsp over the rows (one SXTAB16 group)


def rows_scratch(out_len: int, stride: int, block_c: int) -> int:
    """int16 scratch of se_depthwise3x3_s8_dsp: a ring of 3 widened rows of block_c channels, each
    wp columns (every column a pair of outputs reads, even so that rows stay word aligned; the
    same formula as se_dw_rows_wp), then one output row of int32 accumulators."""
    wp = (stride * (out_len - 1) + 4 + 1) & ~1
    return 3 * block_c * wp + 2 * out_len


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p = op.params
    x, out = em.g.tensors[op.inputs[0]], em.g.tensors[op.outputs[0]]
    w = p["weights"]
    f = fields(p, A, x, out, A(w, np.int8, "weights"))
    in_place = em.plan.aliases.get(out.name) == x.name
    sweep = rows_sweep(p, out.shape[1], out.shape[2]) if em.dsp else None
    if sweep:
        block, cols = x.shape[3] if in_place else min(ROWS_BLOCK, x.shape[3]), sweep == "cols"
        f.update(weights="0", weights16=A(rows_weights(w, cols), np.int16, "weights16"), block_c=block,
                 sweep_cols=int(cols))
        with_table(f, p, A)
        return Call("se_depthwise3x3_s8_dsp", STRUCT, f, rows_scratch(out.shape[1 if cols else 2], p["stride"][1],
                                                                      block))
    fn, scratch = kernel(p, em.dsp), 0
    if em.dsp and dsp_fits(p):
        scratch = 2 * x.shape[3]
        f.update(weights="0", weights16=A(dsp_weights(w), np.int16, "weights16"))
        with_table(f, p, A)
    if in_place:  # in place: rows wait in a ring after the scratch
        f.update(hold_rows=p["pad"][0] + 1, ring=f"(int8_t *)(void *)(scratch + {scratch})")
        scratch += -(-dw_ring_bytes(op, em.g) // 2)
    return Call(fn, STRUCT, f, scratch)
