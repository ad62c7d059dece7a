"""Static memory plan: every intermediate tensor gets an arena offset from its lifetime.

Lifetimes are [index of the producing op, index of the last consuming op]. Tensors are placed
largest first at the lowest 8-byte aligned offset that overlaps no placed tensor alive at the
same time. The model input and output live in the caller's buffers, constants in flash.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph

ALIGN = 8


@dataclass
class Plan:
    offsets: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]
    sizes: dict[str, int]
    peak: int

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of tensors alive together whose bytes overlap (must be empty)."""
        bad = []
        names = list(self.offsets)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                la, lb = self.lifetimes[a], self.lifetimes[b]
                if la[0] <= lb[1] and lb[0] <= la[1]:
                    oa, ob = self.offsets[a], self.offsets[b]
                    if oa < ob + self.sizes[b] and ob < oa + self.sizes[a]:
                        bad.append((a, b))
        return bad


def lifetimes(g: Graph) -> dict[str, tuple[int, int]]:
    life: dict[str, list[int]] = {}
    for i, op in enumerate(g.ops):
        for o in op.outputs:
            life.setdefault(o, [i, i])
        for t in op.inputs:
            if t in life:
                life[t][1] = i
    skip = {g.input, g.output}
    return {k: (v[0], v[1]) for k, v in life.items() if k not in skip and not g.tensors[k].is_const}


def place(sizes: dict[str, int], life: dict[str, tuple[int, int]]) -> tuple[dict[str, int], int]:
    """Greedy by size, first fit, over lifetimes."""
    order = sorted(sizes, key=lambda k: (-sizes[k], life[k][0], k))
    placed: list[tuple[int, int, tuple[int, int]]] = []
    offsets: dict[str, int] = {}
    for name in order:
        size, lt = sizes[name], life[name]
        conflicts = sorted((o, o + s) for o, s, l in placed if l[0] <= lt[1] and lt[0] <= l[1])
        offset = 0
        for lo, hi in conflicts:
            if offset + size <= lo:
                break
            offset = max(offset, -(-hi // ALIGN) * ALIGN)
        offsets[name] = offset
        placed.append((offset, size, lt))
    peak = max((offsets[k] + sizes[k] for k in offsets), default=0)
    return offsets, -(-peak // ALIGN) * ALIGN


def plan(g: Graph) -> Plan:
    life = lifetimes(g)
    sizes = {k: g.tensors[k].size for k in life}
    offsets, peak = place(sizes, life)
    return Plan(offsets, life, sizes, peak)
