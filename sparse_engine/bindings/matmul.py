"""Activation x activation MatMul over strided operand views (passes.operand_view): se_matmul_s8
(portable, any strides) and se_matmul_s8_dsp (B contiguous along k, or A along k: widened pairs)."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from ..passes import operand_view
from .common import ArrayFn, Call, Emit, c_int, pair_len, rq_table

STRUCT = "se_matmul_params_t"


def dsp_fits(a_cs: int, b_ks: int) -> bool:
    return b_ks == 1 or a_cs == 1


def kernel(a_cs: int, b_ks: int, dsp: bool) -> str:
    return "se_matmul_s8_dsp" if dsp and dsp_fits(a_cs, b_ks) else "se_matmul_s8"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind == "matmul"


def call(p: dict, A: ArrayFn, m: int, k: int, n: int, a_rs: int, a_cs: int, b_ks: int, b_ns: int,
         a_off: list[int], b_off: list[int], dsp: bool) -> Call:
    """One struct for `len(a_off)` matrices of [m, k] x [k, n] (scalar mult/shift: the table
    holds one entry and does not replace them)."""
    fn = kernel(a_cs, b_ks, dsp)
    dsp = dsp and dsp_fits(a_cs, b_ks)
    fields = dict(batch=len(a_off), m=m, k=k, n=n, a_zp=p["a_zp"], b_zp=p["b_zp"], out_zp=p["out_zp"],
                  mult=c_int(p["mult"]), shift=p["shift"], act_min=p["act_min"], act_max=p["act_max"],
                  a_rs=a_rs, a_cs=a_cs, b_ks=b_ks, b_ns=b_ns,
                  a_offsets=A(a_off, np.int32, "a_offsets"), b_offsets=A(b_off, np.int32, "b_offsets"),
                  rq=rq_table(p, A, dsp), scratch="scratch" if dsp else "0")
    return Call(fn, STRUCT, fields, pair_len(k) if dsp else 0)


def batch_offsets(view: dict, batch_shape: tuple[int, ...]) -> list[int]:
    """Start of every matrix of a strided operand view, broadcast over the output's batch axes."""
    vb, strides = view["shape"][:-2], view["strides"][:-2]
    vb = (1,) * (len(batch_shape) - len(vb)) + tuple(vb)
    strides = (0,) * (len(batch_shape) - len(strides)) + tuple(strides)
    offs = []
    for idx in (np.ndindex(*batch_shape) if batch_shape else [()]):
        offs.append(view["offset"] + sum(0 if d == 1 else i * s for i, d, s in zip(idx, vb, strides)))
    return offs


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    g = em.g
    out = g.tensors[op.outputs[0]]
    va, vb = operand_view(g, op, 0), operand_view(g, op, 1)
    a_off, b_off = (batch_offsets(v, tuple(out.shape[:-2])) for v in (va, vb))
    c = call(op.params, A, va["shape"][-2], va["shape"][-1], vb["shape"][-1], *va["strides"][-2:],
             *vb["strides"][-2:], a_off, b_off, em.dsp)
    c.args = f"{em.ptr(op.inputs[0])}, {em.ptr(op.inputs[1])}, {em.ptr(out.name)}"
    return c
