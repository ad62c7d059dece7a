"""NumPy integer reference: the definition of every kernel's output, bit for bit.

Each function takes the op, its int8 input arrays (memory layout, see `layout.py`) and the
output tensor, and returns the int8 output. Where TFLite defines the op, the arithmetic is
TFLite's int8 reference arithmetic (`qmath`). The others:

Softmax (rows over the last axis). d = max(row) - x in 0..255; e = T[d] with
T[d] = round(2^16 exp(-d s_in)); sum = sum(e) (>= 2^16); r = floor(2^46 / sum) (<= 2^30);
y = (e r) >> 16, the probability in Q30; q = zo + MBQM(y, 2^-30 / s_out). One int64
division per row, one 32x32->64 multiply per element.

LayerNorm (Scaled-LayerNorm, rows over the last axis of length N; int32 arithmetic only).
x_i = q_i - zi; S = sum x_i; d_i = N x_i - S = N (x_i - mean); M = max |d_i| (from the row's
min and max). Power-of-two pre-scale, per row: d'_i = (d_i + 2^(k-1)) >> k with k >= k0 the
smallest shift for which (M + 2^(k-1)) >> k <= L; L and k0 come from `lowering.layernorm_prescale`
so that N L^2 + E0 < 2^31, hence Q = sum d'^2 + E fits int32 for every row, with
E = round(E0 / 4^(k - k0)) (0 from a shift of 31 on), E0 = round(eps N^3 / (s_in^2 4^k0)).
Narrow rows keep k = k0 (usually 0: exact); one shift fixed for the worst row would round them
coarsely (tests/engine/test_layernorm.py measured 0.096 mean output steps off at N = 384). Q ~ N^3
(var + eps) / 4^k (Q = 1 where it is 0) is normalized by an even shift 2m, the largest with
Q 4^m < 2^31 (m from a count of leading zeros), so r = isqrt(Q 4^m) (bitwise, 32-bit) has 15-16
significant bits; n'_i = (d'_i 2^m) floor(2^30 / r) is the normalized value divided by sqrt(N)
in Q30 (|d'_i| 2^m <= r, so |n'_i| <= 2^30). The output stage is the affine one below with gain
gamma_i sqrt(N).

Affine output stage (LayerNorm, BatchNorm). t = MBQM(v, gain_i / s_out * 2^(8 - frac)), the
scaled value in Q8; q = zo + ((t + round(beta_i / s_out * 2^8) + 128) >> 8).

Average pool: where input and output share their quantization (always in TFLite), TFLite's
reference: the raw sum over the taps inside the image divided by their count, rounded half away
from zero. Otherwise zo + MBQM(sum(x - zi), s_in / (s_out count)), one rounding.

Fully connected: TFLite's single rounding (qmath.mbqm_single), which LiteRT's reference
FullyConnected computes; conv and depthwise keep MultiplyByQuantizedMultiplier's double rounding,
as LiteRT's reference CONV_2D and DEPTHWISE_CONV_2D do (MatMul too, as LiteRT's BATCH_MATMUL).

Elementwise functions (Gelu, Sigmoid, Tanh, standalone Relu/Clip...): a 256-entry table
computed in float64 with one round-half-to-even, as QuantizeLinear rounds.

Many inputs: `run_batch` stacks them on the leading axis and calls the same functions, where
`batchable` shows that no op moves or joins along that axis; otherwise it loops over `run`.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ir import Graph, Op, Tensor
from .qmath import clamp_int8, isqrt, mbqm, mbqm_single, rdbpot, reciprocal, round_div, srdhm
from .passes import VIEW_KEYS, view_indices


def _i64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def conv2d(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    x = _i64(xs[0]) - p["in_zp"]
    n, h, w, c = x.shape
    top, left, bottom, right = p["pad"]
    xp = np.zeros((n, h + top + bottom, w + left + right, c), np.int64)
    xp[:, top:top + h, left:left + w, :] = x
    wt = _i64(p["weights"])
    _, kh, kw, _ = wt.shape
    _, oh, ow, oc = out.shape
    sh, sw = p["stride"]
    dh, dw = p["dilation"]
    acc = np.zeros((n, oh, ow, oc), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw, :]
            if p["depthwise"]:
                acc += np.repeat(patch, p["depth_mult"], axis=3) * wt[0, i, j, :]
            else:  # float64 BLAS: exact, every partial sum is within acc_bound < 2^31 < 2^53
                acc += (patch.astype(np.float64) @ wt[:, i, j, :].T.astype(np.float64)).astype(np.int64)
    acc += _i64(p["bias"])
    return clamp_int8(mbqm(acc, p["mult"], p["shift"]) + p["out_zp"], p["act_min"], p["act_max"])


def fc_rows(p: dict, x: np.ndarray) -> np.ndarray:
    """Fully connected over the rows of x [..., K] with FC params p."""
    acc = (_i64(x) - p["in_zp"]) @ _i64(p["weights"]).T + _i64(p["bias"])
    requant = mbqm_single if p.get("single_round") else mbqm
    return clamp_int8(requant(acc, p["mult"], p["shift"]) + p["out_zp"], p["act_min"], p["act_max"])


def fc(op: Op, xs, out: Tensor) -> np.ndarray:
    return fc_rows(op.params, xs[0].reshape(-1, op.params["weights"].shape[1])).reshape(out.shape)


def matmul(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    a, b = (x.reshape(-1)[view_indices(p[key])] if key in p else x for x, key in zip(xs, VIEW_KEYS))
    return matmul_int(p, a, b).reshape(out.shape)


def matmul_int(p: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    acc = np.matmul(_i64(a) - p["a_zp"], _i64(b) - p["b_zp"])
    return clamp_int8(mbqm(acc, p["mult"], p["shift"]) + p["out_zp"], p["act_min"], p["act_max"])


def add(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    a = mbqm((_i64(xs[0]) - p["a_zp"]) << p["left_shift"], p["a_mult"], p["a_shift"])
    b = mbqm((_i64(xs[1]) - p["b_zp"]) << p["left_shift"], p["b_mult"], p["b_shift"])
    res = mbqm(a + b, p["out_mult"], p["out_shift"]) + p["out_zp"]
    return clamp_int8(np.broadcast_to(res, out.shape), p["act_min"], p["act_max"])


def mul(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    prod = (_i64(xs[0]) - p["a_zp"]) * (_i64(xs[1]) - p["b_zp"])
    res = mbqm(prod, p["mult"], p["shift"]) + p["out_zp"]
    return clamp_int8(np.broadcast_to(res, out.shape), p["act_min"], p["act_max"])


def _windows(op: Op, x: np.ndarray, out: Tensor, fill: int):
    """Yield (i, j, window slice of the padded input, valid mask) over the kernel positions."""
    p = op.params
    n, h, w, c = x.shape
    top, left, bottom, right = p["pad"]
    xp = np.full((n, h + top + bottom, w + left + right, c), fill, np.int64)
    xp[:, top:top + h, left:left + w, :] = x
    valid = np.zeros((1, h + top + bottom, w + left + right, 1), np.int64)
    valid[:, top:top + h, left:left + w, :] = 1
    kh, kw = p["kernel"]
    sh, sw = p["stride"]
    _, oh, ow, _ = out.shape
    for i in range(kh):
        for j in range(kw):
            sl = (slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw), slice(None))
            yield xp[sl], valid[sl]


def avgpool(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    x = _i64(xs[0]) - (0 if p["divide"] else p["in_zp"])
    acc = np.zeros(out.shape, np.int64)
    count = np.zeros((1,) + out.shape[1:3] + (1,), np.int64)
    for win, valid in _windows(op, x, out, 0):
        acc += win
        count += valid
    if p["divide"]:  # TFLite: raw sum / taps inside the image, half away from zero (0 when none)
        return clamp_int8(round_div(acc, np.maximum(count, 1)), p["act_min"], p["act_max"])
    idx = np.zeros_like(count) if p["fixed_count"] else count
    mult = _i64(p["count_mult"])[idx]
    shift = _i64(p["count_shift"])[idx]
    return clamp_int8(mbqm(acc, mult, shift) + p["out_zp"], p["act_min"], p["act_max"])


def maxpool(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    m = np.full(out.shape, -(1 << 20), np.int64)
    for win, _ in _windows(op, _i64(xs[0]), out, -(1 << 20)):
        m = np.maximum(m, win)
    return clamp_int8(_requant(p, m), p["act_min"], p["act_max"])


def _requant(p: dict, x: np.ndarray) -> np.ndarray:
    if not p["requant"]:
        return x.astype(np.int8)
    return clamp_int8(mbqm(_i64(x) - p["in_zp"], p["mult"], p["shift"]) + p["out_zp"])


def copy(op: Op, xs, out: Tensor) -> np.ndarray:
    return _requant(op.params, np.transpose(xs[0], op.params["perm"]).reshape(out.shape))


def concat(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    parts = [_requant(dict(requant=r, mult=m, shift=s, in_zp=z, out_zp=p["out_zp"]), x)
             for x, r, m, s, z in zip(xs, p["requant"], p["mult"], p["shift"], p["in_zp"])]
    return np.concatenate(parts, axis=p["axis"])


def softmax(op: Op, xs, out: Tensor) -> np.ndarray:
    return softmax_rows(op.params, xs[0])


def softmax_rows(p: dict, x: np.ndarray) -> np.ndarray:
    x = _i64(x)
    if p.get("tflite"):  # TFLite's reference: Q0.31 exps, their Q12 sum, its reciprocal
        d = x.max(axis=-1, keepdims=True) - x
        e = _i64(p["exp_table"])[d]
        scale, bits = reciprocal(_i64(p["sum_table"])[d].sum(axis=-1, keepdims=True))
        return clamp_int8(rdbpot(srdhm(scale, e), bits + 23) - 128)
    e = _i64(p["exp_table"])[x.max(axis=-1, keepdims=True) - x]
    r = (np.int64(1) << 46) // e.sum(axis=-1, keepdims=True)
    y = (e * r) >> 16
    return clamp_int8(mbqm(y, p["mult"], p["shift"]) + p["out_zp"])


def _affine_out(p: dict, v: np.ndarray) -> np.ndarray:
    t = mbqm(v, p["mult"], p["shift"])
    return clamp_int8(p["out_zp"] + ((t + _i64(p["bias_q8"]) + 128) >> 8))


def rshift_round(v: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(v + 2^(k-1)) >> k, elementwise k >= 0."""
    return (v + np.where(k > 0, np.left_shift(1, np.maximum(k - 1, 0)), 0)) >> k


def layernorm_shift(d: np.ndarray, k0: int, limit: int) -> np.ndarray:
    """Per-row pre-scale k: the smallest k >= k0 with max |d_i| rounded down by k within `limit`."""
    big = np.abs(d).max(axis=-1, keepdims=True)
    k = np.full(big.shape, k0, dtype=np.int64)
    while np.any(over := rshift_round(big, k) > limit):
        k += over
    return k


def layernorm(op: Op, xs, out: Tensor) -> np.ndarray:
    p = op.params
    x = _i64(xs[0]) - p["in_zp"]
    n = x.shape[-1]
    d = n * x - x.sum(axis=-1, keepdims=True)
    k = layernorm_shift(d, p["prescale"], p["limit"])
    d = rshift_round(d, k)
    j = 2 * (k - p["prescale"])
    eps = np.where(j < 31, rshift_round(np.int64(p["eps_term"]), np.minimum(j, 30)), 0)
    q = (d * d).sum(axis=-1, keepdims=True) + eps
    assert q.max(initial=0) < 2**31, "LayerNorm pre-scale bound broken"
    q = np.maximum(q, 1)
    m = (31 - np.frexp(q.astype(np.float64))[1]) // 2  # frexp's exponent is the bit length
    r = isqrt(q << (2 * m))
    nq = (d << m) * ((1 << 30) // r)
    return _affine_out(p, nq)


def affine(op: Op, xs, out: Tensor) -> np.ndarray:
    return _affine_out(op.params, _i64(xs[0]) - op.params["in_zp"])


def attention(op: Op, xs, out: Tensor) -> np.ndarray:
    """Multi-head self-attention (attention.py): the unfused chain's arithmetic, or FWSA's."""
    p = op.params
    x = xs[0].reshape(p["groups"], p["seq"], p["dim"])
    return np.concatenate([_attention_sequence(p, s) for s in x]).reshape(out.shape)


def _attention_sequence(p: dict, x: np.ndarray) -> np.ndarray:
    """One sequence [S, E] -> its output rows [S, out_dim]."""
    heads, seq, pd = p["heads"], p["seq"], p["head_dim"]
    v = fc_rows(p["v"], x)
    q = fc_rows(p["q"], x)
    k = None if p["k"] is None else fc_rows(p["k"], x)  # FWSA: no K projection, the keys are X
    qn = q.shape[1] // heads
    ctx = np.zeros((seq, heads * pd), np.int8)
    for h in range(heads):
        keys = x if k is None else k[:, h * pd:(h + 1) * pd]
        scores = matmul_int(p["scores"], q[:, h * qn:(h + 1) * qn], keys.T)
        probs = softmax_rows(p["softmax"], scores)
        ctx[:, h * pd:(h + 1) * pd] = matmul_int(p["ctx"], probs, v[:, h * pd:(h + 1) * pd])
    return fc_rows(p["o"], ctx)


def lut(op: Op, xs, out: Tensor) -> np.ndarray:
    return op.params["table"][_i64(xs[0]) + 128]


KERNELS = dict(conv2d=conv2d, fc=fc, matmul=matmul, add=add, mul=mul, avgpool=avgpool, maxpool=maxpool,
               copy=copy, concat=concat, softmax=softmax, layernorm=layernorm, affine=affine, lut=lut,
               attention=attention)


def _execute(g: Graph, x: np.ndarray, batch: int | None) -> dict[str, np.ndarray]:
    """Every tensor of g for input x shaped as the graph input, or (`batch`) for that many inputs
    stacked on the leading axis, each op's output shape widened to match."""
    env: dict[str, np.ndarray] = {g.input: x}
    for t in g.tensors.values():
        if t.is_const:
            env[t.name] = t.data
    for op in g.ops:
        out = g.tensors[op.outputs[0]]
        if batch is not None:
            out = replace(out, shape=(batch,) + out.shape[1:])
        res = KERNELS[op.kind](op, [env[i] for i in op.inputs], out)
        assert res.shape == out.shape and res.dtype == np.int8, (op.name, res.shape, out.shape, res.dtype)
        env[out.name] = res
    return env


def run(g: Graph, x: np.ndarray, trace: dict | None = None) -> np.ndarray:
    """Run the graph on one int8 input (ONNX layout); `trace` collects every tensor if given."""
    env = _execute(g, np.asarray(x, dtype=np.int8).reshape(g.tensors[g.input].shape), None)
    if trace is not None:
        trace.update(env)
    return env[g.output]


# Kinds whose function above reads the batch from its input's leading axis and works row by row
# (or window by window) below it: a batch stacked on that axis runs through them unchanged.
BATCHED_KINDS = {"conv2d", "fc", "add", "mul", "avgpool", "maxpool", "copy", "concat", "softmax", "layernorm",
                 "affine", "lut"}


def batchable(g: Graph) -> bool:
    """Whether a batch of inputs can run through g at once: every activation has a leading axis
    of 1 that no op moves or joins along, and every op's kind is in BATCHED_KINDS."""
    if any(not t.is_const and (not t.shape or t.shape[0] != 1) for t in g.tensors.values()):
        return False
    for op in g.ops:
        if (op.kind not in BATCHED_KINDS or (op.kind == "copy" and op.params["perm"][0] != 0)
                or (op.kind == "concat" and op.params["axis"] == 0)):
            return False
    return True


def batch_size(g: Graph) -> int:
    """Inputs per run_batch call: about 2^17 elements in the largest activation. Larger batches
    leave the cache and ran slower than one input at a time (MLPerf Tiny IC, VWW); at this size
    IC, KWS and VWW ran 10-25 % faster than looped, the small AD model 2.4x."""
    largest = max((t.size for t in g.tensors.values() if not t.is_const), default=1)
    return int(np.clip((1 << 17) // max(largest, 1), 1, 64))


def run_batch(g: Graph, xs: np.ndarray) -> np.ndarray:
    """The outputs of g for a batch of int8 inputs, one flattened row each: stacked on the leading
    axis through the same op functions where `batchable(g)`, otherwise one input at a time."""
    xs = np.asarray(xs, dtype=np.int8)
    if not batchable(g):
        return np.stack([run(g, x).reshape(-1) for x in xs])
    b = len(xs)
    return _execute(g, xs.reshape((b,) + g.tensors[g.input].shape[1:]), b)[g.output].reshape(b, -1)
