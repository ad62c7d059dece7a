"""Static memory plan: every intermediate tensor gets an arena offset from its lifetime.

Lifetimes are [index of the producing op, index of the last consuming op]. In place: an
elementwise or row-wise op (INPLACE) writes its output over an input of the same shape whose
lifetime ends at that op; the kernels read index i (or its whole row) before they write it. A
stride-1 depthwise conv does too, holding a few output rows in scratch (inplace_depthwise).
Such chains share one buffer whose lifetime is the union. Buffers are then placed at the
lowest 8-byte aligned offset that overlaps no placed buffer alive at the same time, in several
orders (largest first, longest-lived first, earliest first, largest size x duration first); the
order with the lowest peak wins. The model input and output live in the caller's buffers,
constants in flash.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .attention import set_tile
from .ir import Graph

ALIGN = 8


INPLACE = {"add", "mul", "lut", "affine", "softmax", "layernorm", "copy", "conv2d"}


def inplace_depthwise(op, g: Graph) -> bool:
    """A depthwise conv can overwrite its input when each output row lands on the input row of the
    same index: stride 1, no dilation, one image, same shape; the kernel holds pad_top + 1 output
    rows in scratch until the input rows below them are read (se_dw_row_begin / se_dw_row_end)."""
    p = op.params
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    return (bool(p.get("depthwise")) and p.get("depth_mult") == 1 and tuple(p["stride"]) == (1, 1)
            and tuple(p["dilation"]) == (1, 1) and x.shape == y.shape and x.shape[0] == 1
            and p.get("sparse") is None)


@dataclass
class Plan:
    offsets: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]
    sizes: dict[str, int]
    peak: int
    aliases: dict[str, str] = field(default_factory=dict)  # output -> the input it overwrites in place

    def buffer(self, name: str) -> str:
        return root_buffer(self.aliases, name)

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of tensors alive together whose bytes overlap (must be empty); an in-place
        output and the input it overwrites are one buffer, not a pair."""
        bad = []
        names = list(self.offsets)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if self.buffer(a) == self.buffer(b):
                    continue
                la, lb = self.lifetimes[a], self.lifetimes[b]
                if la[0] <= lb[1] and lb[0] <= la[1]:
                    oa, ob = self.offsets[a], self.offsets[b]
                    if oa < ob + self.sizes[b] and ob < oa + self.sizes[a]:
                        bad.append((a, b))
        return bad


def root_buffer(aliases: dict[str, str], name: str) -> str:
    """The tensor whose bytes `name` ends up in, following in-place aliases."""
    while name in aliases:
        name = aliases[name]
    return name


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


ORDERS = {
    "size": lambda sizes, life: lambda k: (-sizes[k], life[k][0], k),
    "duration": lambda sizes, life: lambda k: (-(life[k][1] - life[k][0]), -sizes[k], k),
    "start": lambda sizes, life: lambda k: (life[k][0], -sizes[k], k),
    "area": lambda sizes, life: lambda k: (-sizes[k] * (life[k][1] - life[k][0] + 1), k),
}


def first_fit(sizes: dict[str, int], life: dict[str, tuple[int, int]], order: list[str]) -> tuple[dict[str, int], int]:
    """Each buffer in `order` at the lowest aligned offset clear of the placed buffers it lives with."""
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


def place(sizes: dict[str, int], life: dict[str, tuple[int, int]]) -> tuple[dict[str, int], int]:
    """The lowest peak of first fit over the ORDERS."""
    best: tuple[dict[str, int], int] | None = None
    for key in ORDERS.values():
        offsets, peak = first_fit(sizes, life, sorted(sizes, key=key(sizes, life)))
        if best is None or peak < best[1]:
            best = (offsets, peak)
    return best if best is not None else ({}, 0)


def inplace_aliases(g: Graph, life: dict[str, tuple[int, int]], depthwise: bool = True) -> dict[str, str]:
    """output -> input for ops that may overwrite an input dying at them (same shape; for a copy that
    moves no element, same size)."""
    aliases: dict[str, str] = {}
    taken: set[str] = set()
    for i, op in enumerate(g.ops):
        out = op.outputs[0]
        if op.kind not in INPLACE or out not in life:
            continue
        plain = op.kind == "copy" and tuple(op.params["perm"]) == tuple(range(len(op.params["perm"])))
        if op.kind == "copy" and not plain:
            continue
        if op.kind == "conv2d" and not (depthwise and inplace_depthwise(op, g)):
            continue
        for name in op.inputs:  # a copy that moves no element only renames its bytes: any shape
            if (name in life and life[name][1] == i and name not in taken
                    and (g.tensors[name].shape == g.tensors[out].shape
                         or plain and g.tensors[name].size == g.tensors[out].size)):
                aliases[out] = name
                taken.add(name)
                break
    return aliases


def plan(g: Graph, inplace: bool = True) -> Plan:
    """In-place depthwise convs are kept only when they lower the peak by more than the largest
    ring they add to the scratch buffer."""
    life = lifetimes(g)
    if not inplace:
        return _plan(g, life, {})
    with_dw = inplace_aliases(g, life)
    without = inplace_aliases(g, life, depthwise=False)
    if with_dw == without:
        return _plan(g, life, with_dw)
    a, b = _plan(g, life, with_dw), _plan(g, life, without)
    producers = {op.outputs[0]: op for op in g.ops}
    ring = max((dw_ring_bytes(producers[o], g) for o in set(with_dw) - set(without)
                if producers[o].kind == "conv2d"), default=0)
    return a if b.peak - a.peak > ring else b


def dw_ring_bytes(op, g: Graph) -> int:
    """Scratch bytes an in-place depthwise conv holds back: pad_top + 1 output rows (NHWC)."""
    _, _, w, c = g.tensors[op.outputs[0]].shape
    return (op.params["pad"][0] + 1) * w * c


def _plan(g: Graph, life: dict[str, tuple[int, int]], aliases: dict[str, str]) -> Plan:
    sizes = {k: g.tensors[k].size for k in life}
    root = {k: root_buffer(aliases, k) for k in life}
    buf_life: dict[str, tuple[int, int]] = {}
    buf_size: dict[str, int] = {}
    for k, r in root.items():
        lo, hi = buf_life.get(r, life[k])
        buf_life[r] = (min(lo, life[k][0]), max(hi, life[k][1]))
        buf_size[r] = max(buf_size.get(r, 0), sizes[k])
    buf_off, peak = place(buf_size, buf_life)
    return Plan({k: buf_off[root[k]] for k in life}, life, sizes, peak, aliases)


def tile_candidates(seq: int) -> list[int]:
    """Query-row tiles tried for an attention op: S, then the powers of two below it."""
    return [seq] + [1 << b for b in range(seq.bit_length() - 1, -1, -1) if (1 << b) < seq]


def plan_with_tiles(g: Graph) -> Plan:
    """Choose each attention op's query-row tile (attention.py, DFT), then plan: per op, the
    largest tile among those giving the lowest whole-model peak (a larger tile means fewer kernel
    calls; a smaller one only pays where the attention's workspace sets the peak)."""
    for op in g.ops:
        if op.kind != "attention":
            continue
        peaks = {}
        for t in tile_candidates(op.params["seq"]):
            set_tile(g, op, t)
            peaks[t] = plan(g).peak
        low = min(peaks.values())
        set_tile(g, op, max(t for t, pk in peaks.items() if pk == low))
        op.params["tile_peaks"] = peaks
    return plan(g)
