"""Block sparsity in imported weights, and the per-layer choice between dense and sparse coding.

Detection: for every FC / pointwise / kxk conv layer (not depthwise) and every block size b in
sparse.BLOCK_SIZES that divides its input channels, the share of all-zero blocks of its int8
weights (blocks along the input channels, sparse.as_matrix). A (layer, b) is a *candidate* when
that share is at least MIN_SPARSITY and its coding is smaller than the dense int8 weights.

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
    codings: dict[int, sparse.BlockRLE] = field(default_factory=dict)  # the candidates
    dense_instructions: int | None = None
    instructions: dict[int, int] = field(default_factory=dict)  # block size -> measured
    chosen: int | None = None  # block size, None: dense

    def summary(self) -> dict:
        """JSON form for the report."""
        return dict(index=self.index, name=self.name, dense_bytes=self.dense_bytes,
                    sparsity={str(b): round(s, 4) for b, s in self.sparsity.items()},
                    candidates={str(b): dict(bytes=c.nbytes, instructions=self.instructions.get(b))
                                for b, c in self.codings.items()},
                    dense_instructions=self.dense_instructions, chosen_block=self.chosen,
                    chosen_bytes=self.codings[self.chosen].nbytes if self.chosen else self.dense_bytes)


def codable(op: Op) -> bool:
    """Layers with a sparse kernel: FC and non-depthwise conv with int8 weights."""
    w = op.params.get("weights")
    return (op.kind == "fc" or (op.kind == "conv2d" and not op.params.get("depthwise"))) \
        and isinstance(w, np.ndarray) and w.dtype == np.int8


def detect(g: Graph) -> list[LayerSparsity]:
    """Block sparsity of every codable layer; candidates where it reaches MIN_SPARSITY."""
    found = []
    for i, op in enumerate(g.ops):
        if not codable(op):
            continue
        w = op.params["weights"]
        m, channels = sparse.as_matrix(w), w.shape[-1]
        ls = LayerSparsity(i, op.name, int(w.nbytes), {})
        for b in sparse.BLOCK_SIZES:
            if channels % b:
                continue
            ls.sparsity[b] = sparse.block_sparsity(m, b)
            if ls.sparsity[b] >= MIN_SPARSITY:
                enc = sparse.encode(m, b, channels, op.name)
                if enc.nbytes < w.nbytes:
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
            ls.chosen = min(faster, key=lambda b: (ls.instructions[b], ls.codings[b].nbytes))
        else:
            ls.chosen = min(faster, key=lambda b: (ls.codings[b].nbytes, ls.instructions[b]))


def blocks_to_measure(layers: list[LayerSparsity]) -> list[int]:
    """The block sizes with at least one candidate layer: one measurement firmware each."""
    return sorted({b for ls in layers for b in ls.codings})
