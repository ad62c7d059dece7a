"""Average and max pooling: se_avgpool_s8 (per-count multipliers, or one fixed count) and
se_maxpool_s8 (optionally requantized to another scale), portable; se_maxpool_s8_dsp (channels
% 4 == 0 and no requantization: four channels per word, SSUB8 + SEL)."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from .common import ArrayFn, Call, Emit, c_int

STRUCT = "se_pool_params_t"


def dsp_fits(kind: str, p: dict, channels: int) -> bool:
    return (kind == "maxpool" and not p["requant"] and channels % 4 == 0
            and (p["act_min"], p["act_max"]) == (-128, 127))


def kernel(kind: str, p: dict, channels: int, dsp: bool) -> str:
    return f"se_{kind}_s8_dsp" if dsp and dsp_fits(kind, p, channels) else f"se_{kind}_s8"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind in ("avgpool", "maxpool")


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p = op.params
    x, out = em.g.tensors[op.inputs[0]], em.g.tensors[op.outputs[0]]
    fields = dict(batch=x.shape[0], in_h=x.shape[1], in_w=x.shape[2], channels=x.shape[3],
                  out_h=out.shape[1], out_w=out.shape[2], k_h=p["kernel"][0], k_w=p["kernel"][1],
                  stride_h=p["stride"][0], stride_w=p["stride"][1], pad_top=p["pad"][0], pad_left=p["pad"][1],
                  in_zp=0 if p.get("divide") else p["in_zp"], out_zp=p["out_zp"], act_min=p["act_min"],
                  act_max=p["act_max"])
    if op.kind == "avgpool":
        fields.update(fixed_count=int(p["fixed_count"]), divide=int(p["divide"]), requant=0, mult=0, shift=0,
                      count_mult=A(p["count_mult"], np.int32, "count_mult"),
                      count_shift=A(p["count_shift"], np.int32, "count_shift"))
    else:
        fields.update(fixed_count=0, divide=0, requant=int(p["requant"]), mult=c_int(p["mult"]), shift=p["shift"],
                      count_mult="0", count_shift="0")
    return Call(kernel(op.kind, p, x.shape[3], em.dsp), STRUCT, fields)
