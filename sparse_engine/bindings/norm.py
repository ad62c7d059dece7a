"""LayerNorm (TinyFormer's scaled integer LayerNorm) and the per-channel affine stage of a
standalone BatchNorm: se_layernorm_s8 / se_affine_s8, portable C only (simulator.py documents
both algorithms)."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from .common import ArrayFn, Call, Emit

STRUCT = "se_norm_params_t"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind in ("layernorm", "affine")


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p = op.params
    out = em.g.tensors[op.outputs[0]]
    n = out.shape[-1]
    fields = dict(rows=out.size // n, n=n, in_zp=p["in_zp"], out_zp=p["out_zp"],
                  prescale=int(p.get("prescale", 0)), eps_term=int(p.get("eps_term", 0)),
                  limit=int(p.get("limit", 0)),
                  mult=A(p["mult"], np.int32, "mult"), shift=A(p["shift"], np.int32, "shift"),
                  bias_q8=A(p["bias_q8"], np.int32, "bias_q8"))
    return Call(f"se_{op.kind}_s8", STRUCT, fields)
