"""Graph passes after the layout pass.

`merge_identity_copies`: a chain of copies that moves no element becomes one copy that the
planner runs in place.

`absorb_copies`: a MatMul of two activations often reads its operands through Reshape and
Transpose copies (attention heads, K transposed). When the copies only re-index memory, the
operand is a strided view of the tensor before them: the MatMul reads that view directly
(element strides per axis, stored in its params) and the copies disappear when nothing else
reads them. The simulator and both C kernels read the same view.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Op, contiguous_strides

VIEW_KEYS = ("a_view", "b_view")


def contiguous_view(shape: tuple[int, ...]) -> dict:
    return dict(shape=tuple(int(d) for d in shape), strides=tuple(contiguous_strides(shape)), offset=0)


def view_indices(view: dict) -> np.ndarray:
    """Flat source index of every element of a strided view."""
    idx = np.full(view["shape"], view["offset"], np.int64)
    for axis, (n, s) in enumerate(zip(view["shape"], view["strides"])):
        shape = [1] * len(view["shape"])
        shape[axis] = n
        idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(shape)
    return idx


def _as_view(idx: np.ndarray) -> dict | None:
    """The strided view equal to an index array, or None when the indices are not affine."""
    offset = int(idx.flat[0]) if idx.size else 0
    strides = []
    for axis, n in enumerate(idx.shape):
        step = [0] * idx.ndim
        step[axis] = 1 if n > 1 else 0
        strides.append(int(idx[tuple(step)]) - offset if n > 1 else 0)
    view = dict(shape=tuple(int(d) for d in idx.shape), strides=tuple(strides), offset=offset)
    return view if np.array_equal(view_indices(view), idx) else None


def _producers(g: Graph) -> dict[str, Op]:
    return {o: op for op in g.ops for o in op.outputs}


def _copy_chain(g: Graph, name: str, producers: dict[str, Op]) -> tuple[str, np.ndarray] | None:
    """Follow re-indexing copies back from `name`: (source tensor, index of each element in it)."""
    chain = []
    while name in producers and producers[name].kind == "copy" and not producers[name].params["requant"]:
        chain.append(producers[name])
        name = chain[-1].inputs[0]
    if not chain:
        return None
    src = g.tensors[name]
    idx = np.arange(src.size, dtype=np.int64).reshape(src.shape)
    for op in reversed(chain):
        idx = np.transpose(idx, op.params["perm"]).reshape(g.tensors[op.outputs[0]].shape)
    return name, idx


def _drop_dead_ops(g: Graph) -> int:
    removed = 0
    while True:
        used = {i for op in g.ops for i in op.inputs} | {g.output}
        dead = [op for op in g.ops if not any(o in used for o in op.outputs)]
        if not dead:
            return removed
        g.ops = [op for op in g.ops if op not in dead]
        for op in dead:
            for o in op.outputs:
                g.tensors.pop(o, None)
        removed += len(dead)


def absorb_copies(g: Graph) -> Graph:
    """MatMul operands read through re-indexing copies become strided views of the copies' source."""
    producers = _producers(g)
    absorbed = 0
    for op in g.ops:
        if op.kind != "matmul":
            continue
        for slot, key in enumerate(VIEW_KEYS):
            found = _copy_chain(g, op.inputs[slot], producers)
            if found is None:
                continue
            src, idx = found
            view = _as_view(idx)
            if view is None:
                continue
            op.inputs[slot] = src
            op.params[key] = view
            absorbed += 1
    removed = _drop_dead_ops(g)
    if absorbed:
        g.notes.append(f"{absorbed} MatMul operand(s) read as strided views; {removed} copy layer(s) removed")
    return g


def merge_identity_copies(g: Graph) -> Graph:
    """A chain of re-indexing copies that, taken together, leaves every element where it was (the
    tokens' Reshape + Transpose of a MobileViT block in NHWC, and their inverse with the layout
    copy after it) becomes one copy without permutation, which the planner runs in place; the
    copies inside the chain disappear when nothing else reads them."""
    producers = _producers(g)
    merged = 0
    for op in g.ops:
        if op.kind != "copy" or op.params["requant"]:
            continue
        src, idx = _copy_chain(g, op.outputs[0], producers)  # op itself is a copy: never None
        if src == op.inputs[0] or not np.array_equal(idx.reshape(-1), np.arange(idx.size)):
            continue
        op.inputs = [src]
        op.params["perm"] = tuple(range(len(g.tensors[src].shape)))
        merged += 1
    removed = _drop_dead_ops(g)
    if merged:
        g.notes.append(f"{merged} chain(s) of copies that move no element merged into one in-place copy; "
                       f"{removed} copy layer(s) removed")
    return g


def operand_view(g: Graph, op: Op, slot: int) -> dict:
    """The view through which `op` reads input `slot` (contiguous unless a copy was absorbed)."""
    return op.params.get(VIEW_KEYS[slot]) or contiguous_view(g.tensors[op.inputs[slot]].shape)
