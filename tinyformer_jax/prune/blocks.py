"""Blockwise pruning masks in SparseEngine's block geometry, and the gradual schedule.

A block is `b` consecutive *input* channels of one output channel at one kernel tap: the unit
SparseEngine's run-length coding stores or skips (sparse_engine/sparse.py), so a mask made here
becomes exactly that many skipped blocks in the firmware. Conv weights are OIHW (blocks along I),
Linear weights [in, out] (blocks along in).

Prunable: every non-depthwise conv except the stem (3 input channels), and every Linear, the
attention's Q, K, V and O included (SparseEngine codes them block-sparse inside its fused
attention op, one block size per attention; with FWSA the fused W_Q·W_Kᵀ is dense). Layers are
grouped into *units* (unit i = model block i, the last unit = head conv + classifier) and numbered
within their unit, so SparseNAS can give every layer its own gene. Each layer has one sparsity and
one block size (the largest of sparse.BLOCK_SIZES up to the asked one that divides its input
channels).
"""
from __future__ import annotations

import hashlib

import numpy as np
from flax import nnx

from sparse_engine.sparse import BLOCK_SIZES

from ..models.layers import Conv, Linear


def prunable(model: nnx.Module) -> dict[tuple, int]:
    """{weight key: unit} of the prunable layers of a Hybrid (keys as in nnx.state)."""
    n_blocks = len(model.blocks)
    out = {}
    for path, m in nnx.iter_graph(model):
        if (isinstance(m, Conv) and not m.depthwise and path[:1] != ("stem",)) or isinstance(m, Linear):
            out[(*path, "w")] = int(path[1]) if path[0] == "blocks" else n_blocks
    return out


def units(n_blocks: int) -> int:
    return n_blocks + 1


def positions(unit_of: dict[tuple, int]) -> dict[tuple, tuple[int, int]]:
    """{weight key: (unit, index of the layer within its unit)} in `prunable`'s order."""
    seen: dict[int, int] = {}
    out = {}
    for k, u in unit_of.items():
        out[k] = (u, seen.get(u, 0))
        seen[u] = out[k][1] + 1
    return out


def fit_block(block: int, channels: int) -> int:
    """The largest block size <= `block` that divides the input channels."""
    return max(b for b in BLOCK_SIZES if b <= max(block, 1) and channels % b == 0)


def _blocks_view(w: np.ndarray, b: int) -> np.ndarray:
    """[..., blocks, b] view with the input-channel axis split (conv OIHW: axis 1; linear: axis 0)."""
    if w.ndim == 4:
        o, i, kh, kw = w.shape
        return w.reshape(o, i // b, b, kh, kw).transpose(0, 1, 3, 4, 2)
    i, o = w.shape
    return w.reshape(i // b, b, o).transpose(0, 2, 1)


def block_mask(w: np.ndarray, sparsity: float, block: int, scores: str = "magnitude") -> np.ndarray:
    """0/1 mask of `w`'s shape zeroing the floor(sparsity * blocks) blocks of lowest L2 norm
    (`scores="magnitude"`) or of a pseudo-random score fixed by the shape and block size
    (`"random"`: the cost model's stand-in pattern for weights not trained yet)."""
    w = np.asarray(w, np.float32)
    b = fit_block(block, w.shape[1] if w.ndim == 4 else w.shape[0])
    view = _blocks_view(w, b)
    if scores == "magnitude":
        s = np.sqrt((view ** 2).sum(-1))
    else:
        seed = int.from_bytes(hashlib.sha1(repr((w.shape, b)).encode()).digest()[:8], "little")
        s = np.random.default_rng(seed).random(view.shape[:-1])
    n_zero = int(np.floor(sparsity * s.size))
    keep = np.ones(s.size, np.float32)
    keep[np.argsort(s, axis=None, kind="stable")[:n_zero]] = 0.0
    keep = np.broadcast_to(keep.reshape(s.shape)[..., None], view.shape)
    if w.ndim == 4:
        o, i, kh, kw = w.shape
        return np.ascontiguousarray(keep.transpose(0, 1, 4, 2, 3).reshape(o, i, kh, kw))
    i, o = w.shape
    return np.ascontiguousarray(keep.transpose(0, 2, 1).reshape(i, o))


def masks(weights: dict[tuple, np.ndarray], level: dict[tuple, tuple[float, int]],
          scores: str = "magnitude") -> dict[tuple, np.ndarray]:
    """Masks of the weights in `level` ({key: (sparsity, block size)}); layers at 0 are skipped."""
    return {k: block_mask(weights[k], float(s), int(b), scores) for k, (s, b) in level.items() if float(s) > 0}


def model_masks(model: nnx.Module, level: dict[tuple, tuple[float, int]],
                scores: str = "magnitude") -> dict[tuple, np.ndarray]:
    """`masks` of a Hybrid from its current weights."""
    flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    return masks({k: np.asarray(flat[k][...]) for k in level}, level, scores)


def apply_masks(model: nnx.Module, mk: dict[tuple, np.ndarray]) -> None:
    """Zero the masked weights in place."""
    flat = []
    for key, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        if key in mk:
            flat.append((key, var.replace(var[...] * mk[key])))
    nnx.update(model, nnx.from_flat_state(flat))


def schedule(step: int, total: int, final: float, start: float = 0.0) -> float:
    """Gradual pruning (Zhu & Gupta 2017): share of `final` reached at `step` of `total`, cubic,
    0 at step 0 and `final` from the last round on."""
    t = min(max(step / max(total, 1), 0.0), 1.0)
    return start + (final - start) * (1.0 - (1.0 - t) ** 3)


def achieved(mk: dict[tuple, np.ndarray], keys) -> list[float]:
    """Share of masked weights of each layer in `keys` (0 for a layer without a mask)."""
    return [float(1.0 - mk[k].mean()) if k in mk else 0.0 for k in keys]
