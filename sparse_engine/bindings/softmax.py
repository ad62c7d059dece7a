"""Softmax over the last axis (simulator.softmax_rows): se_softmax_s8 (portable) and
se_softmax_s8_dsp (exp table at most 2^16, row sums within 32 bits, no left shift); with TFLite's
output quantization (params["tflite"]) se_softmax_tflite_s8 on every core."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from .common import ArrayFn, Call, Emit, c_int

STRUCT = "se_softmax_params_t"


def dsp_fits(p: dict, n: int) -> bool:
    if p.get("tflite"):
        return False
    top = int(np.max(p["exp_table"]))
    return top <= 1 << 16 and n * top < 2**31 and int(p["shift"]) <= 0


def kernel(p: dict, n: int, dsp: bool) -> str:
    if p.get("tflite"):
        return "se_softmax_tflite_s8"
    return "se_softmax_s8_dsp" if dsp and dsp_fits(p, n) else "se_softmax_s8"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind == "softmax"


def code_path(p: dict) -> tuple:
    if p.get("tflite"):
        return (("tflite", True),)
    return (("exp_top", int(np.max(p["exp_table"])) <= 1 << 16),) if "exp_table" in p else ()


def call(p: dict, A: ArrayFn, rows: int, n: int, dsp: bool) -> Call:
    right = max(-int(p["shift"]), 0)
    fields = dict(rows=rows, n=n, mult=c_int(p["mult"]), shift=p["shift"], out_zp=p["out_zp"],
                  right=right, rnd=(1 << right) >> 1, exp_table=A(p["exp_table"], np.int32, "exp_table"),
                  sum_table=A(p["sum_table"], np.int32, "sum_table") if p.get("tflite") else "0")
    return Call(kernel(p, n, dsp), STRUCT, fields)


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    out = em.g.tensors[op.outputs[0]]
    n = out.shape[-1]
    return call(op.params, A, out.size // n, n, em.dsp)
