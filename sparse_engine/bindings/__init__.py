"""Kernel bindings: one module per kernel family, each the one place that knows when its portable
and DSP variants fit, which C function and struct they are, and how their fields and scratch are
computed. Codegen, the cost model, the sparse choice and the tests ask these modules; nothing
else names a kernel. A new kernel variant is one binding module (or a branch in one) plus one C
family file under templates/kernels/.

`bind(em, op, A)` gives an op's Call: the first family in FAMILIES that claims it.
"""
from __future__ import annotations

from ..ir import Op
from . import (attention, binary, conv, copy, depthwise, fc, lut, matmul, norm, pool, softmax, sparse_conv,
               sparse_fc)
from .common import ArrayFn, Call, Emit, code_path as _requant_path

# order matters where two families take one op kind: a coded layer before its dense form, the
# DSP's FC-over-pixels before the conv kernel
FAMILIES = (sparse_fc, sparse_conv, fc, depthwise, conv, attention, matmul, binary, pool, copy, softmax, norm, lut)


def bind(em: Emit, op: Op, A: ArrayFn) -> Call:
    for family in FAMILIES:
        if family.claims(op, em.dsp):
            return family.emit(em, op, A)
    raise AssertionError(f"no kernel binding for IR op kind {op.kind}")


def code_path(p: dict) -> tuple:
    """The branches the generated C takes from a layer's requantization values (not from its
    shapes): part of the cost model's layer signature."""
    return _requant_path(p) + softmax.code_path(p) + binary.code_path(p)


__all__ = ["FAMILIES", "Call", "bind", "code_path"]
