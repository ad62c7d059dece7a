"""Fused multi-head self-attention (attention.py): se_attention_s8, depth-first over query-row
tiles. Its struct holds the sub-layers' structs and kernels, each bound by its own family
(fc / sparse_fc for the projections, matmul for scores and context, softmax), and the workspace
offsets of attention.workspace; scratch is the largest of the sub-layers'."""
from __future__ import annotations

import numpy as np

from ..attention import workspace
from ..ir import Op
from . import fc, matmul, softmax, sparse_fc
from .common import ArrayFn, Call, Emit

STRUCT = "se_attention_params_t"


def claims(op: Op, dsp: bool) -> bool:
    return op.kind == "attention"


def emit(em: Emit, op: Op, A: ArrayFn) -> Call:
    p = op.params
    seq, pd, tile, fused = p["seq"], p["head_dim"], p["tile"], p["k"] is None
    q_n = p["q"]["weights"].shape[0] // p["heads"]
    ws = workspace(p, tile)
    off = ws["offsets"]
    fields = dict(heads=p["heads"], seq=seq, groups=p["groups"], dim=p["dim"], head_dim=pd, out_dim=p["out_dim"],
                  q_n=q_n, tile=tile, fused=int(fused), ctx_stride=ws["ctx_stride"], ctx_off=off["ctx"],
                  k_off=off["k"], v_off=off["v"], q_off=off["q"], s_off=off["s"], c_off=off["c"], o_off=off["o"])
    scratch = 0
    coded = p["sparse"].parts if p.get("sparse") is not None else {}
    per_call = dict(q=q_n, k=pd, v=pd, o=p["out_dim"])
    for name in ("q", "k", "v", "o"):
        sp = p[name]
        fields[f"fc_{name}"] = fields[f"sfc_{name}"] = "0"
        if sp is None:
            continue
        An = lambda v, dt, what, name=name: A(v, dt, f"{name}_{what}")  # noqa: E731
        if name in coded:
            sub = sparse_fc.call(sp, An, 0, em.dsp, coded[name], per_call[name])
            fields.update({f"s{name}.{k}": v for k, v in sub.fields.items()})
            fields[f"sfc_{name}"] = sub.fn
            if name in p["sparse"].head_starts:  # q, k, v: per head; o: one call
                fields[f"{name}_first"] = An(p["sparse"].head_starts[name], np.int32, "head_starts")
        else:
            sub = fc.call(sp, An, 0, em.dsp)
            fields.update({f"{name}.{k}": v for k, v in sub.fields.items()})
            fields[f"fc_{name}"] = sub.fn
        scratch = max(scratch, sub.scratch)
    mm = [("scores", p["scores"], q_n, seq, q_n, 1, 1, p["dim"] if fused else pd),
          ("ctx", p["ctx"], seq, pd, seq, 1, pd, 1)]
    for name, mp, k, n, a_rs, a_cs, b_ks, b_ns in mm:
        sub = matmul.call(mp, lambda v, dt, what, name=name: A(v, dt, f"{name}_{what}"), tile, k, n,
                          a_rs, a_cs, b_ks, b_ns, [0], [0], em.dsp)
        fields.update({f"{name}.{k2}": v for k2, v in sub.fields.items()})
        fields[f"mm_{name}"] = sub.fn
        scratch = max(scratch, sub.scratch)
    sub = softmax.call(p["softmax"], A, tile, seq, em.dsp)
    fields.update({f"softmax.{k}": v for k, v in sub.fields.items()})
    fields["sm"] = sub.fn
    args = f"{em.ptr(op.inputs[0])}, {em.ptr(op.outputs[0])}, {em.ptr(op.outputs[1])}"
    return Call("se_attention_s8", STRUCT, fields, scratch, args)
