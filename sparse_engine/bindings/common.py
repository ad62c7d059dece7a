"""What every kernel binding shares: the call record, C spellings and the requantization fields.

A binding turns one IR op into one C call: the kernel function, its parameter struct and every
field of it (Python computes each value; the templates print them), and the int16 scratch the
kernel needs. `Emit` is what a binding may ask of the code generator: the graph, the memory plan,
the kernel set, a constant array (deduplicated by content) and a tensor's C pointer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..ir import Graph, Op
from ..planner import Plan

ArrayFn = Callable[[object, object, str], str]  # (values, dtype, what) -> C identifier of a const array


class Emit(Protocol):
    g: Graph
    plan: Plan
    dsp: bool

    def ptr(self, name: str) -> str: ...


@dataclass
class Call:
    """One layer's C call: `fn(&L<i>, args)` with the struct `struct` initialized from `fields`."""

    fn: str
    struct: str
    fields: dict = field(default_factory=dict)
    scratch: int = 0  # int16 elements of the shared scratch buffer
    args: str | None = None  # None: (input, output)


def c_int(v: int) -> str:
    """An int32 as C source (INT32_MIN has no literal)."""
    v = int(v)
    return "(-2147483647 - 1)" if v == -(2**31) else str(v)


def dims6(values, fill: int) -> str:
    vals = [fill] * (6 - len(values)) + [int(v) for v in values]
    return "{" + ", ".join(str(v) for v in vals) + "}"


def pair_len(k: int) -> int:
    """int16 elements of a pair of widened rows in the DSP kernels (SE_PAIR_LEN in se_dsp.h;
    tests/engine/test_bindings.py checks that both agree)."""
    return 8 * (k // 4) + 8


def fast_requant(p: dict) -> int:
    """1 when |acc| * 2^(left shift + 1) < 2^31 is proven, so the DSP kernels may use SMMULR."""
    left = int(np.max(np.clip(np.asarray(p["shift"]), 0, None)))
    return int(int(p["acc_bound"]) << (left + 1) < 2**31)


def requant_table(mult, shift) -> np.ndarray | None:
    """Per channel {mult, 2^(right - 1) or 0}: the DSP kernels' form of TFLite's multiplier and
    (right) shift, in the same 8 bytes; the kernel gets `right` back with CLZ. None when a channel
    shifts left (the kernels then decode multiplier and shift at run time)."""
    shift = np.atleast_1d(np.asarray(shift, np.int64))
    if np.any(shift > 0):
        return None
    rnd = np.left_shift(np.int64(1), -shift) >> 1
    return np.stack([np.atleast_1d(np.asarray(mult, np.int64)), rnd], axis=1)


def rq_table(p: dict, A: ArrayFn, dsp: bool) -> str:
    """The requantization table of a DSP layer whose accumulators allow SMMULR, else NULL."""
    table = requant_table(p["mult"], p["shift"]) if dsp and fast_requant(p) else None
    return "0" if table is None else A(table, np.int32, "rq")


def table_replaces(f: dict) -> dict:
    """Where a layer's fields have a requantization table it replaces mult and shift, which are
    then NULL (their arrays are still written; --gc-sections drops them)."""
    if f["rq"] != "0":
        f.update(mult="0", shift="0")
    return f


def per_channel_requant(p: dict, A: ArrayFn, dsp: bool) -> dict:
    """mult, shift and rq fields of a per-channel layer (table_replaces applied)."""
    return table_replaces(dict(mult=A(p["mult"], np.int32, "mult"), shift=A(p["shift"], np.int32, "shift"),
                               rq=rq_table(p, A, dsp)))


def code_path(p: dict) -> tuple:
    """The requantization branches shared by every per-channel kernel (the cost model's signature)."""
    out = ()
    if "acc_bound" in p and "shift" in p:
        out += (("fast_requant", fast_requant(p)),)
    if "mult" in p and "shift" in p:
        out += (("left_shift", bool(np.any(np.asarray(p["shift"]) > 0))),)
    return out


def is_pointwise(op: Op) -> bool:
    p = op.params
    return (op.kind == "conv2d" and not p["depthwise"] and p["weights"].shape[1:3] == (1, 1)
            and tuple(p["stride"]) == (1, 1) and not any(p["pad"]))
