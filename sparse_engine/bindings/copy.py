"""Data movement: se_copy_s8 (a permuted, strided copy over up to 6 axes, optionally
requantized; plain memcpy when nothing moves) and se_concat_s8 (inputs joined along one axis,
each requantized to the output's scale where it differs). Portable C only."""
from __future__ import annotations

import numpy as np

from ..ir import Op, contiguous_strides
from .common import ArrayFn, Call, Emit, c_int, dims6


def claims(op: Op, dsp: bool) -> bool:
    return op.kind in ("copy", "concat")


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p, g = op.params, em.g
    ins = [g.tensors[n] for n in op.inputs]
    out = g.tensors[op.outputs[0]]
    if op.kind == "copy":
        x, perm = ins[0], p["perm"]
        strides = contiguous_strides(x.shape)
        plain = tuple(perm) == tuple(range(len(perm))) and not p["requant"]
        fields = dict(shape=dims6([x.shape[q] for q in perm], 1), in_strides=dims6([strides[q] for q in perm], 0),
                      size=out.size, plain=int(plain), requant=int(p["requant"]), mult=c_int(p["mult"]),
                      shift=p["shift"], in_zp=p["in_zp"], out_zp=p["out_zp"])
        return Call("se_copy_s8", "se_copy_params_t", fields)
    ax = p["axis"]
    fields = dict(n_inputs=len(ins), outer=int(np.prod(out.shape[:ax], dtype=np.int64)),
                  out_inner=int(np.prod(out.shape[ax:], dtype=np.int64)), out_zp=p["out_zp"],
                  inner=A([int(np.prod(t.shape[ax:], dtype=np.int64)) for t in ins], np.int32, "inner"),
                  requant=A([int(r) for r in p["requant"]], np.int32, "requant"),
                  mult=A(p["mult"], np.int32, "mult"), shift=A(p["shift"], np.int32, "shift"),
                  in_zp=A(p["in_zp"], np.int32, "in_zp"))
    args = "(const int8_t *const[]){" + ", ".join(em.ptr(n) for n in op.inputs) + "}, " + em.ptr(out.name)
    return Call("se_concat_s8", "se_concat_params_t", fields, 0, args)
