"""Elementwise Add and Mul with NumPy broadcasting over up to 6 axes: se_add_s8 / se_mul_s8
(portable) and se_add_s8_dsp (no broadcasting, and every SRDHM provably one SMMULR: add_dsp_fits;
scratch: its two 256-entry int32 term tables)."""
from __future__ import annotations

import numpy as np

from ..ir import Op, contiguous_strides
from ..qmath import mbqm
from .common import ArrayFn, Call, Emit, c_int, dims6

STRUCT = "se_binary_params_t"
ADD_DSP_SCRATCH = 1024  # int16 elements: se_add_s8_dsp's two 256-entry int32 term tables
ADD_FIELDS = ("left_shift", "a_mult", "a_shift", "b_mult", "b_shift", "out_mult", "out_shift")
MUL_FIELDS = ("mult", "shift")


def broadcast_strides(shape, out_shape) -> list[int]:
    """Element strides of `shape` read as `out_shape` under NumPy broadcasting (0 on broadcast axes)."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(shape, out_shape, contiguous_strides(shape))]


def add_dsp_fits(p: dict, a_shape, b_shape, out_shape) -> bool:
    """se_add_s8_dsp's preconditions, under which every SRDHM of the Add is one SMMULR of the doubled
    operand: no broadcasting; the output's multiplier >= 0 (an input's may be negative: Sub); the
    inputs' terms shift right only and their doubled operands (x - zp) << (left_shift + 1) fit
    int32; every sum of two terms, shifted left by the
    output's left shift + 1, fits int32 (the terms exact: the simulator's arithmetic over all 256
    values of each input)."""
    if tuple(a_shape) != tuple(out_shape) or tuple(b_shape) != tuple(out_shape):
        return False
    x = np.arange(-128, 128, dtype=np.int64)
    for o in "ab":
        widest = int(np.max(np.abs(x - p[f"{o}_zp"])))
        if p[f"{o}_shift"] > 0 or widest << (p["left_shift"] + 1) >= 2**31:
            return False
    if p["out_mult"] < 0:
        return False
    top = sum(int(np.max(np.abs(mbqm((x - p[f"{o}_zp"]) << p["left_shift"], p[f"{o}_mult"], p[f"{o}_shift"]))))
              for o in "ab")
    return top << (max(int(p["out_shift"]), 0) + 1) < 2**31


def kernel(kind: str, p: dict, a_shape, b_shape, out_shape, dsp: bool) -> str:
    if kind == "add" and dsp and add_dsp_fits(p, a_shape, b_shape, out_shape):
        return "se_add_s8_dsp"
    return f"se_{kind}_s8"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind in ("add", "mul")


def code_path(p: dict) -> tuple:
    """se_add_s8_dsp skips the rounding of right shift 0."""
    if "a_shift" in p and "b_shift" in p:
        return (("add_right0", int(p["a_shift"] == 0) + int(p["b_shift"] == 0), int(p["out_shift"] >= 0)),)
    return ()


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p, g = op.params, em.g
    a, b, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    shape = out.shape
    fields = dict(out_shape=dims6(shape, 1), a_strides=dims6(broadcast_strides(a.shape, shape), 0),
                  b_strides=dims6(broadcast_strides(b.shape, shape), 0), a_zp=p["a_zp"],
                  b_zp=p["b_zp"], out_zp=p["out_zp"], act_min=p["act_min"], act_max=p["act_max"])
    fields.update({f: c_int(p[f]) for f in (ADD_FIELDS if op.kind == "add" else MUL_FIELDS)})
    fn = kernel(op.kind, p, a.shape, b.shape, shape, em.dsp)
    scratch = 0
    if fn == "se_add_s8_dsp":
        scratch = ADD_DSP_SCRATCH
        fields.update(scratch="scratch")
    args = f"{em.ptr(a.name)}, {em.ptr(b.name)}, {em.ptr(out.name)}"
    return Call(fn, STRUCT, fields, scratch, args)
