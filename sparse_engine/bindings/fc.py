"""Dense fully connected: se_fc_s8 (portable), se_fc_s8_dsp (any shape; also 1x1 stride-1 convs,
read as an FC over the pixels). The DSP kernel widens two input rows into scratch (pair_len)."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from .common import ArrayFn, Call, Emit, is_pointwise, pair_len, per_channel_requant

STRUCT = "se_fc_params_t"


def kernel(dsp: bool) -> str:
    return "se_fc_s8_dsp" if dsp else "se_fc_s8"


def claims(op: Op, dsp: bool) -> bool:
    """FC layers, and on the DSP the 1x1 convs (portable: the conv kernel runs them)."""
    return op.kind == "fc" or (dsp and is_pointwise(op))


def call(p: dict, A: ArrayFn, rows: int, dsp: bool, weights: np.ndarray | None = None) -> Call:
    """An FC of `rows` rows (0: the attention kernel sets rows per call) over weights [N, K]
    (`weights`: another view of the same [N, ..., K] values, a 1x1 conv's OHWI)."""
    w = p["weights"] if weights is None else weights
    n, kk = w.shape[0], w.shape[-1]
    fields = dict(rows=rows, in_k=kk, out_n=n, in_zp=p["in_zp"], out_zp=p["out_zp"], act_min=p["act_min"],
                  act_max=p["act_max"], single_round=int(bool(p.get("single_round"))),
                  weights=A(w, np.int8, "weights"), bias=A(p["bias"], np.int32, "bias"),
                  **per_channel_requant(p, A, dsp), scratch="scratch" if dsp else "0")
    return Call(kernel(dsp), STRUCT, fields, pair_len(kk) if dsp else 0)


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    x = em.g.tensors[op.inputs[0]]
    kk = op.params["weights"].shape[-1]
    return call(op.params, A, x.size // kk, em.dsp)
