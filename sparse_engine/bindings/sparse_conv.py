"""Block-sparse kxk convolution over a BlockRLE coding of W[O, kw*kh*C] in column order:
se_conv_sparse_s8 (portable) and se_conv_sparse_s8_dsp (C % 4 == 0 and dilation 1 along x, any
block size: the input columns of an output row widened into scratch, two pixels at a time, bias
and count of a channel read with one LDRD from `hdr`)."""
from __future__ import annotations

import numpy as np

from ..ir import Op
from .common import ArrayFn, Call, Emit, is_pointwise
from .conv import fields as conv_fields
from .conv import with_table

STRUCT = "se_sparse_conv_params_t"


def dsp_fits(p: dict, in_c: int) -> bool:
    return in_c % 4 == 0 and p["dilation"][1] == 1


def kernel(p: dict, in_c: int, dsp: bool) -> str:
    return "se_conv_sparse_s8_dsp" if dsp and dsp_fits(p, in_c) else "se_conv_sparse_s8"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind == "conv2d" and op.params.get("sparse") is not None and not is_pointwise(op)


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p, enc = op.params, op.params["sparse"]
    x, out = em.g.tensors[op.inputs[0]], em.g.tensors[op.outputs[0]]
    conv = conv_fields(p, A, x, out, "0")
    kh, kw = p["weights"].shape[1], p["weights"].shape[2]
    fn = kernel(p, x.shape[3], em.dsp)
    dsp = em.dsp and dsp_fits(p, x.shape[3])
    scratch = 0
    if dsp:
        ncol = (out.shape[2] - 1) * p["stride"][1] + kw
        scratch = ncol * kh * x.shape[3] + 4 * out.shape[3]  # widened input columns + two pixels' accumulators
        with_table(conv, p, A)
    fields = {f"conv.{f}": v for f, v in conv.items()}
    fields.update(block=enc.block, counts=A(enc.counts, np.uint16, "counts"), skips=A(enc.skips, np.uint8, "skips"),
                  values=A(enc.values, np.int8, "values"), hdr="0")
    if dsp:  # the kernel reads bias and count of a channel with one LDRD
        hdr = np.stack([np.asarray(p["bias"], np.int64), enc.counts.astype(np.int64)], axis=1)
        fields.update({"conv.bias": "0", "counts": "0", "hdr": A(hdr, np.int32, "hdr")})
    return Call(fn, STRUCT, fields, scratch)
