"""Block-sparse fully connected (and 1x1 stride-1 conv) over a BlockRLE coding (sparse.py):
se_fc_sparse_s8 (portable, any block), se_fc_sparse_s8_dsp (blocks of 4m: SXTB16 unpacks the
kept blocks, two widened rows a pass) and se_fc_sparse_narrow_s8_dsp (blocks of 1 and 2: up to
4 channel-major int16 rows, SMLABB/SMLATB per kept weight)."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from ..sparse import BlockRLE
from .common import ArrayFn, Call, Emit, is_pointwise, pair_len, per_channel_requant

STRUCT = "se_sparse_fc_params_t"
NARROW_BLOCKS = (1, 2)  # block sizes of se_fc_sparse_narrow_s8_dsp


def dsp_fits(block: int) -> bool:
    return block % 4 == 0 or block in NARROW_BLOCKS


def kernel(block: int, dsp: bool) -> str:
    """The kernel of a layer (or attention projection) coded in blocks of `block`."""
    if not (dsp and dsp_fits(block)):
        return "se_fc_sparse_s8"
    return "se_fc_sparse_narrow_s8_dsp" if block in NARROW_BLOCKS else "se_fc_sparse_s8_dsp"


def claims(op: Op, dsp: bool) -> bool:
    return (op.kind == "fc" or is_pointwise(op)) and op.params.get("sparse") is not None


def narrow_tile(rows: int) -> int:
    """Rows of one pass of the narrow kernel (se_nb_tile); rows 0: set per call, up to 4."""
    return 4 if rows == 0 or rows >= 4 else (2 if rows >= 2 else 1)


def call(p: dict, A: ArrayFn, rows: int, dsp: bool, enc: BlockRLE | None = None, out_n: int | None = None) -> Call:
    """A coded FC over `rows` rows (`enc`, default p["sparse"]). `out_n`: the output channels of
    one call when a caller runs slices (attention heads); it sizes the accumulator rows."""
    enc = p["sparse"] if enc is None else enc
    fn = kernel(enc.block, dsp)
    dsp = dsp and dsp_fits(enc.block)
    fields = dict(rows=rows, in_k=enc.k, out_n=enc.n, block=enc.block, in_zp=p["in_zp"], out_zp=p["out_zp"],
                  act_min=p["act_min"], act_max=p["act_max"], single_round=int(bool(p.get("single_round"))),
                  counts=A(enc.counts, np.uint16, "counts"),
                  skips=A(enc.skips, np.uint8, "skips"), values=A(enc.values, np.int8, "values"),
                  bias=A(p["bias"], np.int32, "bias"), **per_channel_requant(p, A, dsp),
                  scratch="scratch" if dsp else "0")
    n = out_n or enc.n
    if not dsp:
        scratch = 0
    elif enc.block in NARROW_BLOCKS:  # channel-major rows + as many rows of int32 accumulators
        tile = narrow_tile(rows)
        scratch = (tile * enc.k + 1) // 2 * 2 + 2 * tile * n
    else:
        scratch = pair_len(enc.k) + 4 * n  # a pair of widened rows + two rows of accumulators
    return Call(fn, STRUCT, fields, scratch)


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    enc = op.params["sparse"]
    return call(op.params, A, em.g.tensors[op.inputs[0]].size // enc.k, em.dsp)
