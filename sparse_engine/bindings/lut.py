"""Elementwise int8 -> int8 functions as a 256-entry table (GELU, sigmoid, tanh, HardSwish,
LeakyRelu, a standalone Relu/Clip): se_lut_s8, portable C only."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from .common import ArrayFn, Call, Emit


def claims(op: Op, dsp: bool) -> bool:
    return op.kind == "lut"


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    out = em.g.tensors[op.outputs[0]]
    return Call("se_lut_s8", "se_lut_params_t", dict(size=out.size, table=A(op.params["table"], np.int8, "table")))
