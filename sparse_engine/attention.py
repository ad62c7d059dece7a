"""Multi-head self-attention as one IR op: recognition, fused-weight self-attention (FWSA) and the
depth-first tiled (DFT) working memory.

Recognition (`fuse`) finds, after the layout and view passes, the chain an exported attention
block becomes: three FC projections of one token matrix X [S, E] (Q, K, V), Q·Kᵀ per head read
through strided head views, softmax, ·V, copies merging the heads into [S, H·P], and the output
FC. The chain becomes one `attention` op whose params keep every sub-op's integer parameters
unchanged, so the fused op computes the same bits as the chain (tests/engine/test_attention.py).
X may hold `groups` sequences of S rows one after the other (a MobileViT block with p x p
patches: p^2 sequences), the MatMuls then batch over (sequence, head); each sequence attends
within itself, and the kernel runs the single-sequence steps below once per sequence.

DFT: the kernel loops over heads, and per head over tiles of `tile` query rows: the Q rows of
the tile, their T×S scores, softmax in place, ·V_h, and the tile's context rows into the merged
context. Only K_h and V_h of one head and one tile's rows are held, never the S×S map; the
output projection then runs over row tiles in place over the context (`workspace`). Every step
is row-wise, so any tile size gives the same bits; the planner picks it (planner.choose_tiles).

FWSA: per head, scores q_i·k_j = (Wk_hᵀ(Wq_h x_i + bq_h))·x_j + q_i·bk_h. The last term is a
constant of row i, which softmax ignores, so the scores are T_i·x_j with T = X A_hᵀ + c_h,
A_h = Wk_hᵀ Wq_h (E×E) and c_h = Wk_hᵀ bq_h: one E×E matrix replaces the two P×E ones. A_h is
quantized per output channel (symmetric int8); T and the fused scores get int8 (scale, zero point)
calibrated on the attention's input over calibration inputs (the float min/max, as onnxruntime's
MinMax calibration), and the softmax table is rebuilt for the new score scale. The op's q,
scores and softmax params are then the fused ones (q has E outputs per head), k is None, and
params["fwsa"] keeps the calibrated scales. It pays in parameters when E < 2P and in MACs when
E(E + S) < P(2E + S).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EngineError
from .ir import Graph, Op, Tensor
from .lowering import multipliers, softmax_params
from .passes import _copy_chain, _producers, operand_view, view_indices

FWSA_MODES = ("auto", "on", "off")
ALIGN = 8


def _consumers(g: Graph) -> dict[str, list[Op]]:
    out: dict[str, list[Op]] = {}
    for op in g.ops:
        for i in op.inputs:
            out.setdefault(i, []).append(op)
    return out


def _head_indices(groups: int, heads: int, rows: int, cols: int, width: int, transposed: bool = False) -> np.ndarray:
    """Flat index in a [groups * rows, width] matrix of element (g, h, r, c): sequence g's rows,
    split into `heads` blocks of `cols` columns ([g, h, c, r] when transposed)."""
    g = np.arange(groups).reshape(-1, 1, 1, 1)
    h = np.arange(heads).reshape(1, -1, 1, 1)
    r = np.arange(rows).reshape(1, 1, -1, 1)
    c = np.arange(cols).reshape(1, 1, 1, -1)
    idx = (g * rows + r) * width + h * cols + c
    return idx.transpose(0, 1, 3, 2) if transposed else idx


def _view_is(g: Graph, op: Op, slot: int, expected: np.ndarray) -> bool:
    view = operand_view(g, op, slot)
    got = view_indices(view)
    return got.size == expected.size and np.array_equal(got.reshape(-1), expected.reshape(-1))


@dataclass
class Match:
    ops: list[Op]  # every op of the chain, in graph order
    q: Op
    k: Op
    v: Op
    scores: Op
    softmax: Op
    ctx: Op
    out: Op
    heads: int
    seq: int  # rows of one sequence
    head_dim: int
    groups: int  # sequences, one after the other in X's rows (MobileViT patches)


def _match(g: Graph, sm: Op, producers: dict[str, Op], consumers: dict[str, list[Op]]) -> Match | None:
    m1 = producers.get(sm.inputs[0])
    users = consumers.get(sm.outputs[0], [])
    if m1 is None or m1.kind != "matmul" or len(consumers.get(m1.outputs[0], [])) != 1 or len(users) != 1:
        return None
    m2 = users[0]
    if m2.kind != "matmul" or m2.inputs[0] != sm.outputs[0] or "a_view" in m2.params:
        return None
    fq, fk, fv = (producers.get(n) for n in (m1.inputs[0], m1.inputs[1], m2.inputs[1]))
    if any(f is None or f.kind != "fc" or f.params.get("sparse") is not None for f in (fq, fk, fv)):
        return None
    x = fq.inputs[0]
    if fk.inputs[0] != x or fv.inputs[0] != x or len({fq.name, fk.name, fv.name}) != 3:
        return None
    if [len(consumers.get(f.outputs[0], [])) for f in (fq, fk, fv)] != [1, 1, 1]:
        return None
    xs = g.tensors[x].shape
    rows = int(np.prod(xs[:-1], dtype=np.int64))
    sc = g.tensors[m1.outputs[0]].shape
    seq = sc[-1]
    if sc[-2] != seq or rows % seq:
        return None
    groups = rows // seq  # the scores' batch axes are (sequence, head), sequence outermost
    batch = int(np.prod(sc[:-2], dtype=np.int64))
    width = fq.params["weights"].shape[0]
    if batch % groups or fk.params["weights"].shape[0] != width or fv.params["weights"].shape[0] != width:
        return None
    heads = batch // groups
    if width % heads:
        return None
    p = width // heads
    if not (_view_is(g, m1, 0, _head_indices(groups, heads, seq, p, width))
            and _view_is(g, m1, 1, _head_indices(groups, heads, seq, p, width, transposed=True))
            and _view_is(g, m2, 1, _head_indices(groups, heads, seq, p, width))):
        return None
    # the context reaches the output FC through re-indexing copies that merge the heads
    chain_ops, name = [], m2.outputs[0]
    while True:
        users = consumers.get(name, [])
        if len(users) != 1:
            return None
        nxt = users[0]
        if nxt.kind == "fc":
            break
        if nxt.kind != "copy" or nxt.params["requant"]:
            return None
        chain_ops.append(nxt)
        name = nxt.outputs[0]
    fo = nxt
    if fo.params.get("sparse") is not None or fo.params["weights"].shape[1] != width:
        return None
    found = _copy_chain(g, fo.inputs[0], producers) if chain_ops else (m2.outputs[0], None)
    if found is None or found[0] != m2.outputs[0]:
        return None
    # element (g*S + s, h*P + c) of the FC input must be context (g, h, s, c)
    merged = np.arange(groups * heads * seq * p).reshape(groups, heads, seq, p).transpose(0, 2, 1, 3).reshape(-1)
    if found[1] is not None and not np.array_equal(found[1].reshape(-1), merged):
        return None
    if found[1] is None and heads != 1:
        return None
    ops = [fq, fk, fv, m1, sm, m2, *chain_ops, fo]
    return Match(sorted(ops, key=g.ops.index), fq, fk, fv, m1, sm, m2, fo, heads, seq, p, groups)


def _fc_part(op: Op) -> dict:
    keep = ("weights", "bias", "mult", "shift", "in_zp", "out_zp", "act_min", "act_max", "acc_bound", "w_scale",
            "single_round")
    return {k: op.params[k] for k in keep}


def _mm_part(op: Op) -> dict:
    return {k: v for k, v in op.params.items() if k not in ("a_view", "b_view")}


def costs(heads: int, seq: int, dim: int, p: int, out_dim: int, groups: int = 1) -> dict:
    """Weights + biases and MACs of the attention over `groups` sequences of `seq` rows, unfused
    and with FWSA."""
    hp, rows, pairs = heads * p, groups * seq, groups * heads * seq * seq
    common_params = (dim * hp + hp) + (hp * out_dim + out_dim)  # V and output projection
    common_macs = rows * dim * hp + pairs * p + rows * hp * out_dim
    return dict(params_unfused=common_params + 2 * (dim * hp + hp),
                params_fwsa=common_params + heads * (dim * dim + dim),
                macs_unfused=common_macs + 2 * rows * dim * hp + pairs * p,
                macs_fwsa=common_macs + heads * rows * dim * dim + pairs * dim)


def fwsa_pays(c: dict) -> bool:
    """Fewer parameters or fewer MACs, and more of neither."""
    pu, pf, mu, mf = c["params_unfused"], c["params_fwsa"], c["macs_unfused"], c["macs_fwsa"]
    return (pf < pu or mf < mu) and pf <= pu and mf <= mu


def _asym(lo: float, hi: float) -> tuple[float, int]:
    """int8 (scale, zero point) covering [min(lo, 0), max(hi, 0)], as MinMax calibration does."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    return scale, int(np.clip(np.rint(-128 - lo / scale), -128, 127))


def fused_acc_bound(dim: int, bias: np.ndarray, x_name: str) -> int:
    """Worst-case |accumulator| of the fused projection T = X A^T + c over E = `dim` inputs;
    refuses a fold that int32 cannot hold (the bias is held to 2^30, so only E >= 33,156)."""
    bound = dim * 255 * 127 + int(np.max(np.abs(np.asarray(bias, np.int64))))
    if bound >= 2**31:
        raise EngineError(f"attention on '{x_name}': FWSA's fused projection (E = {dim}) may overflow its int32 "
                          "accumulator; compile with --fwsa off")
    return bound


def fold_fwsa(p: dict, x: Tensor, calib: np.ndarray) -> dict:
    """The FWSA parameters of a fused attention: fused per-head projection `t` (an FC of E*H
    outputs, head h's rows h*E..), fused `scores` matmul and `softmax` params, and the calibrated
    scales. `calib`: int8 samples of X, [N, S, E]."""
    heads, seq, dim, pd = p["heads"], p["seq"], p["dim"], p["head_dim"]
    q, k = p["q"], p["k"]
    sx, zx = x.scale, x.zero_point
    wq = q["weights"].astype(np.float64) * np.asarray(q["w_scale"])[:, None]
    wk = k["weights"].astype(np.float64) * np.asarray(k["w_scale"])[:, None]
    bq = q["bias"].astype(np.float64) * sx * np.asarray(q["w_scale"])
    a = np.concatenate([wk[h * pd:(h + 1) * pd].T @ wq[h * pd:(h + 1) * pd] for h in range(heads)])  # [H*E, E]
    c = np.concatenate([wk[h * pd:(h + 1) * pd].T @ bq[h * pd:(h + 1) * pd] for h in range(heads)])
    # a row of A can vanish while its bias does not (pruned W_Q rows under a kept W_K column): its
    # scale is then set by the bias, held to 2^30 so the accumulator cannot overflow
    s_a = np.maximum(np.maximum(np.abs(a).max(axis=1) / 127.0, np.abs(c) / (sx * 2.0**30)), 1e-30)
    wa = np.clip(np.rint(a / s_a[:, None]), -127, 127).astype(np.int8)
    bias = np.clip(np.rint(c / (sx * s_a)), -(2**31 - 1), 2**31 - 1).astype(np.int32)
    xf = sx * (calib.reshape(-1, seq, dim).astype(np.float64) - zx)
    t = xf @ (wa.astype(np.float64) * s_a[:, None]).T + bias * sx * s_a  # [N, S, H*E]
    s_t, z_t = _asym(float(t.min()), float(t.max()))
    tq = np.clip(np.rint(t / s_t) + z_t, -128, 127)
    td = s_t * (tq - z_t)
    sc = np.stack([td[..., h * dim:(h + 1) * dim] @ xf.transpose(0, 2, 1) for h in range(heads)])
    s_s, z_s = _asym(float(sc.min()), float(sc.max()))
    mult, shift = multipliers(sx * s_a / s_t)
    bound = fused_acc_bound(dim, bias, x.name)
    t_fc = dict(weights=wa, bias=bias, mult=mult, shift=shift, in_zp=zx, out_zp=z_t, act_min=-128, act_max=127,
                acc_bound=bound, single_round=True, w_scale=tuple(float(v) for v in s_a))
    m, s = multipliers([s_t * sx / s_s])
    scores = dict(a_zp=z_t, b_zp=zx, out_zp=z_s, mult=int(m[0]), shift=int(s[0]), act_min=-128, act_max=127,
                  acc_bound=dim * 255 * 255)
    probs = Tensor("probs", (1,), p["softmax_out_scale"], p["softmax"]["out_zp"])
    return dict(t=t_fc, scores=scores, softmax=softmax_params(s_s, probs, n=seq), t_scale=s_t, score_scale=s_s)


def workspace(p: dict, tile: int) -> dict:
    """Byte offsets of the kernel's buffers in its arena workspace for `tile` query rows, and the
    total. ctx: the merged context [S, H*P] (in the output buffer, row stride out_dim, when
    out_dim >= H*P; else here); per head: K_h (not with FWSA), V_h, the tile's Q (or T) rows, its
    scores, its context rows; the output projection's row tile reuses the per-head space."""
    heads, seq, dim, pd, od = p["heads"], p["seq"], p["dim"], p["head_dim"], p["out_dim"]
    fused = p.get("fwsa") is not None
    hp = heads * pd
    up = lambda n: -(-n // ALIGN) * ALIGN  # noqa: E731
    off = {}
    ctx_in_out = od >= hp
    off["ctx"] = -1 if ctx_in_out else 0
    pos = 0 if ctx_in_out else up(seq * hp)
    head0 = pos
    for name, size in (("k", 0 if fused else seq * pd), ("v", seq * pd), ("q", tile * (dim if fused else pd)),
                       ("s", tile * seq), ("c", tile * pd)):
        off[name] = pos
        pos += up(size)
    off["o"] = head0
    total = max(pos, head0 + up(tile * hp))
    return dict(offsets=off, bytes=total, ctx_stride=od if ctx_in_out else hp)


def materialized_bytes(p: dict) -> int:
    """Working bytes of the unfused chain if every intermediate were live at once at the peak
    step (Q, K, V and all heads' scores of every sequence): the form DFT avoids (for reports)."""
    return p["groups"] * (3 * p["seq"] * p["heads"] * p["head_dim"] + p["heads"] * p["seq"] * p["seq"])


def seq_text(seq: int, groups: int) -> str:
    """A block's sequence length for tables: "S", or "S x G" for G sequences of S rows."""
    return f"{seq} x {groups}" if groups > 1 else f"{seq}"


def set_tile(g: Graph, op: Op, tile: int) -> None:
    op.params["tile"] = int(tile)
    g.tensors[op.outputs[1]].shape = (workspace(op.params, tile)["bytes"],)


def apply_fwsa(p: dict, x: Tensor, calib: np.ndarray) -> None:
    """An unfused attention op's params -> FWSA: the fused projection, scores and softmax replace
    the unfused ones, and there is no K projection."""
    f = fold_fwsa(p, x, calib)
    p.update(q=f.pop("t"), k=None, scores=f.pop("scores"), softmax=f.pop("softmax"), fwsa=f)


def fuse(g: Graph, fwsa: str = "auto", calib_trace=None, invert: bool = False) -> Graph:
    """Replace every recognized attention chain by one `attention` op (tile = S until the planner
    chooses). FWSA per block by `fwsa` (auto: where fwsa_pays), each choice flipped with `invert`
    (the report's other form); its calibration needs the int8 values of each block's input X,
    from `calib_trace(names) -> {name: [N, ...]}`."""
    if fwsa not in FWSA_MODES:
        raise ValueError(f"fwsa must be one of {FWSA_MODES}")
    producers, consumers = _producers(g), _consumers(g)
    matches = [m for m in (_match(g, op, producers, consumers) for op in g.ops if op.kind == "softmax") if m]
    if not matches:
        return g
    cs = [costs(m.heads, m.seq, g.tensors[m.q.inputs[0]].shape[-1], m.head_dim, m.out.params["weights"].shape[0],
                m.groups) for m in matches]
    want = [(fwsa == "on" or (fwsa == "auto" and fwsa_pays(c))) != invert for c in cs]
    traces = calib_trace([m.q.inputs[0] for m, w in zip(matches, want) if w]) if any(want) else {}
    for m, c, use in zip(matches, cs, want):
        x = g.tensors[m.q.inputs[0]]
        out = g.tensors[m.out.outputs[0]]
        name = f"attention_{m.softmax.name}"
        params = dict(heads=m.heads, seq=m.seq, groups=m.groups, dim=x.shape[-1], head_dim=m.head_dim,
                      out_dim=m.out.params["weights"].shape[0],
                      q=_fc_part(m.q), k=_fc_part(m.k), v=_fc_part(m.v), o=_fc_part(m.out),
                      scores=_mm_part(m.scores), softmax=dict(m.softmax.params), ctx=_mm_part(m.ctx),
                      softmax_out_scale=g.tensors[m.softmax.outputs[0]].scale,
                      costs=c, fwsa=None, sources=[o.name for o in m.ops], tile=m.seq)
        if use:
            apply_fwsa(params, x, traces[x.name])
        work = g.add_tensor(Tensor(f"{name}.work", (0,)))
        fused = Op("attention", name, "MultiHeadAttention", [x.name], [out.name, work.name], params,
                   macs=sum(o.macs for o in m.ops))
        if use:
            fused.macs += c["macs_fwsa"] - c["macs_unfused"]
        set_tile(g, fused, m.seq)
        pos = g.ops.index(m.out)
        g.ops[pos] = fused
        for o in m.ops:
            if o is not m.out:
                g.ops.remove(o)
                for t in o.outputs:
                    g.tensors.pop(t, None)
        g.notes.append(f"{name}: multi-head self-attention recognized ({len(m.ops)} layers -> 1; H={m.heads}, "
                       f"S={seq_text(m.seq, m.groups)}, E={x.shape[-1]}, P={m.head_dim}); FWSA {'on' if use else 'off'}")
    return g


def summary(g: Graph, index: int, op: Op) -> dict:
    """One attention block for the report: shape, FWSA choice, costs both ways, tile and memory."""
    p = op.params
    return dict(index=index, name=op.name, heads=p["heads"], seq=p["seq"], groups=p["groups"], dim=p["dim"],
                head_dim=p["head_dim"],
                out_dim=p["out_dim"], fwsa=p["fwsa"] is not None, fwsa_pays=fwsa_pays(p["costs"]), **p["costs"],
                tile=p["tile"], tile_peaks={str(k): v for k, v in p.get("tile_peaks", {}).items()},
                workspace_bytes=g.tensors[op.outputs[1]].size, materialized_bytes=materialized_bytes(p),
                sources=p["sources"])
