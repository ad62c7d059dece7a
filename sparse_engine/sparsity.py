"""Block sparsity in imported weights, and the per-layer choice between dense and sparse coding.

Detection: for every FC / pointwise / kxk conv layer (not depthwise) and every block size b in
sparse.BLOCK_SIZES that divides its input channels, the share of all-zero blocks of its int8
weights (blocks along the input channels, sparse.as_matrix). A (layer, b) is a *candidate* when
that share is at least MIN_SPARSITY and its coding is smaller than the dense int8 weights.
An attention op is one layer whose projections (Q, K, V, O; with FWSA the fused one in Q's
place) are each coded with b where that projection alone meets the same two conditions
(sparse.ProjectionCodings); the layer is a candidate when at least one is.

Choice: the compiler measures every candidate on the Cortex-M (one firmware per block size, every
candidate layer coded with it, QEMU -icount: per-layer instruction counts are exact and do not
depend on the other layers) and `choose` keeps, per layer, the dense kernel unless a coding
runs in strictly fewer instructions: so no layer ever runs slower than dense, by measurement.
Among the codings that are faster, objective "speed" takes the fewest instructions (then the
fewest bytes), "size" the fewest bytes (then the fewest instructions).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import sparse
from .ir import Graph, Op

MIN_SPARSITY = 0.25  # below it no coding measured faster than the dense kernels (benchmarks/sparse.json)
OBJECTIVES = ("speed", "size", "off")


@dataclass
class LayerSparsity:
    """What detection found for one layer, and what the choice made of it."""

    index: int
    name: str
    dense_bytes: int
    sparsity: dict[int, float]  # block size -> share of all-zero blocks
    codings: dict[int, sparse.BlockRLE | sparse.ProjectionCodings] = field(default_factory=dict)  # candidates
    dense_instructions: int | None = None
    instructions: dict[int, int] = field(default_factory=dict)  # block size -> measured
    chosen: int | None = None  # block size, None: dense

    def weight_bytes(self, b: int | None) -> int:
        """The layer's weight bytes with coding b (None: dense); an attention's projections left
        out of the coding count dense, so every block size compares with the others and dense."""
        if not b:
            return self.dense_bytes
        c = self.codings[b]
        parts = getattr(c, "parts", None)
        return c.nbytes if parts is None else c.nbytes + self.dense_bytes - sum(e.n * e.k for e in parts.values())

    def smallest(self) -> sparse.BlockRLE | sparse.ProjectionCodings:
        """The most compact coding (the budget check before the choice is measured)."""
        return self.codings[min(self.codings, key=self.weight_bytes)]

    def summary(self) -> dict:
        """JSON form for the report."""
        return dict(index=self.index, name=self.name, dense_bytes=self.dense_bytes,
                    sparsity={str(b): round(s, 4) for b, s in self.sparsity.items()},
                    candidates={str(b): dict(bytes=self.weight_bytes(b), instructions=self.instructions.get(b))
                                for b in self.codings},
                    dense_instructions=self.dense_instructions, chosen_block=self.chosen,
                    chosen_bytes=self.weight_bytes(self.chosen))


PROJECTIONS = ("q", "k", "v", "o")  # an attention op's FC sub-layers; q, k and v run per head


def codable(op: Op) -> bool:
    """Layers with a sparse kernel: FC and non-depthwise conv with int8 weights, and attention."""
    w = op.params.get("weights")
    return op.kind == "attention" or ((op.kind == "fc" or (op.kind == "conv2d" and not op.params.get("depthwise")))
                                      and isinstance(w, np.ndarray) and w.dtype == np.int8)


def _coding(m: np.ndarray, b: int, channels: int, name: str) -> sparse.BlockRLE | None:
    """The coding of W[N, K] with blocks of b when it is a candidate (module docstring), else None."""
    if sparse.block_sparsity(m, b) < MIN_SPARSITY:
        return None
    enc = sparse.encode(m, b, channels, name)
    return enc if enc.nbytes < m.nbytes else None


def _attention(i: int, op: Op) -> LayerSparsity:
    """Detection for an attention op: per block size, the projections that are candidates alone."""
    p = op.params
    ws = {n: p[n]["weights"] for n in PROJECTIONS if p[n] is not None}
    ls = LayerSparsity(i, op.name, sum(int(w.nbytes) for w in ws.values()), {})
    for b in sparse.BLOCK_SIZES:
        if any(w.shape[1] % b for w in ws.values()):
            continue
        kept = [sparse.block_mask(w, b) for w in ws.values()]
        ls.sparsity[b] = float(1.0 - sum(int(k.sum()) for k in kept) / sum(k.size for k in kept))
        parts = {n: e for n, w in ws.items() if (e := _coding(w, b, w.shape[1], f"{op.name}.{n}")) is not None}
        if parts:
            ls.codings[b] = projection_codings(p, b, parts)
    return ls


def projection_codings(p: dict, block: int, parts: dict[str, sparse.BlockRLE] | None = None
                       ) -> sparse.ProjectionCodings:
    """An attention op's codings with blocks of `block` (params `p`): `parts`, or else every
    projection coded whatever its sparsity (benchmarks), with the heads' first stored blocks."""
    if parts is None:
        parts = {n: sparse.encode(p[n]["weights"], block, p[n]["weights"].shape[1], n)
                 for n in PROJECTIONS if p[n] is not None}
    starts = {n: sparse.head_starts(e, p["heads"]) for n, e in parts.items() if n != "o"}
    return sparse.ProjectionCodings(block, parts, starts)


def detect(g: Graph) -> list[LayerSparsity]:
    """Block sparsity of every codable layer; candidates where it reaches MIN_SPARSITY."""
    found = []
    for i, op in enumerate(g.ops):
        if not codable(op):
            continue
        if op.kind == "attention":
            found.append(_attention(i, op))
            continue
        w = op.params["weights"]
        m, channels = sparse.as_matrix(w), w.shape[-1]
        ls = LayerSparsity(i, op.name, int(w.nbytes), {})
        for b in sparse.BLOCK_SIZES:
            if channels % b:
                continue
            ls.sparsity[b] = sparse.block_sparsity(m, b)
            if (enc := _coding(m, b, channels, op.name)) is not None:
                ls.codings[b] = enc
        found.append(ls)
    return found


def apply(g: Graph, layers: list[LayerSparsity], block: int | None = None) -> None:
    """Set every layer's coding: `block` where it is a candidate (None: each layer's choice);
    layers without one run dense."""
    for ls in layers:
        b = ls.chosen if block is None else block
        g.ops[ls.index].params["sparse"] = ls.codings.get(b) if b else None


def choose(layers: list[LayerSparsity], objective: str = "speed") -> None:
    """Per layer, the coding to keep from the measured instructions (module docstring)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    for ls in layers:
        ls.chosen = None
        if objective == "off" or ls.dense_instructions is None:
            continue
        faster = [b for b in ls.codings if ls.instructions.get(b, ls.dense_instructions) < ls.dense_instructions]
        if not faster:
            continue
        if objective == "speed":
            ls.chosen = min(faster, key=lambda b: (ls.instructions[b], ls.weight_bytes(b)))
        else:
            ls.chosen = min(faster, key=lambda b: (ls.weight_bytes(b), ls.instructions[b]))


def blocks_to_measure(layers: list[LayerSparsity]) -> list[int]:
    """The block sizes with at least one candidate layer: one measurement firmware each."""
    return sorted({b for ls in layers for b in ls.codings})
