"""Block sparsity of int8 weights and its blockwise run-length coding.

A layer's weights are viewed as W[N, K]: N output channels, K inputs (FC: the input features;
conv OHWI [O, kh, kw, C]: K = kw * kh * C in *column order* (kx, ky, c), C innermost). A block is
`b` consecutive values along K inside one tap, so `b` must divide the input channels C; a block is
kept if any of its values is nonzero. Column order lets the DSP conv kernel address block j of an
output pixel as column_base + j * b in its widened buffer of input columns (kernels_dsp.c,
se_conv_sparse_s8_dsp); for 1x1 convs it is the memory order.

Byte layout of one encoded layer (`BlockRLE`), three arrays the C kernels read as they are:
- `counts`: uint16[N], the number of stored blocks of each output channel (0: all zero).
- `skips`:  uint8[total], per stored block in channel order, the number of zero blocks between
  the end of the previous stored block of the same channel (or the channel's start) and this
  one: the block index is j_i = j_(i-1) + 1 + skip_i, with j_(-1) = -1.
- `values`: int8[total * b], the stored blocks' values, block after block.
A gap of more than 255 zero blocks stores an all-zero filler block at skip 255, so a skip always
fits one byte and the kernels need no escape code. Storage = 2N + total * (b + 1) bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EngineError

BLOCK_SIZES = (1, 2, 4, 8, 16)
MAX_SKIP = 255


@dataclass(frozen=True)
class BlockRLE:
    """One layer's weights in blockwise run-length coding (layout in the module docstring)."""

    block: int
    n: int
    k: int
    counts: np.ndarray  # uint16[n]
    skips: np.ndarray  # uint8[total]
    values: np.ndarray  # int8[total * block]

    @property
    def blocks(self) -> int:
        """Stored blocks, fillers included."""
        return len(self.skips)

    @property
    def nbytes(self) -> int:
        return self.counts.nbytes + self.skips.nbytes + self.values.nbytes


@dataclass(frozen=True)
class ProjectionCodings:
    """The block-sparse projections of one attention op, one block size: name (q, k, v, o) ->
    the coding of its W[N, K], and for the per-head ones (q, k, v) the stored blocks before each
    head's first output channel (the kernel runs a head's slice of the coding as a coding of its
    own). Projections left out stay dense."""

    block: int
    parts: dict[str, BlockRLE]
    head_starts: dict[str, np.ndarray]  # int32[heads] per coded q, k, v

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.parts.values()) + sum(a.nbytes for a in self.head_starts.values())


def head_starts(enc: BlockRLE, heads: int) -> np.ndarray:
    """Stored blocks before output channel h * N / heads, for every head h (int32[heads])."""
    before = np.concatenate([[0], np.cumsum(enc.counts, dtype=np.int64)])
    return before[np.arange(heads) * (enc.n // heads)].astype(np.int32)


def as_matrix(w: np.ndarray) -> np.ndarray:
    """Weights as the coded W[N, K]: FC [N, K] as they are, conv OHWI [O, kh, kw, C] in column
    order [O, kw, kh, C]."""
    w = np.asarray(w)
    if w.ndim == 4:
        w = w.transpose(0, 2, 1, 3)
    return w.reshape(w.shape[0], -1)


def from_matrix(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `as_matrix`: W[N, K] back to the layer's weight shape."""
    if len(shape) == 4:
        o, kh, kw, c = shape
        return m.reshape(o, kw, kh, c).transpose(0, 2, 1, 3)
    return m.reshape(shape)


def check_block(block: int, channels: int, layer: str) -> None:
    """A block must lie inside one tap: `block` in BLOCK_SIZES and dividing the input channels."""
    if block not in BLOCK_SIZES:
        raise EngineError(f"layer '{layer}': block size {block} is not one of {', '.join(map(str, BLOCK_SIZES))}")
    if channels % block:
        raise EngineError(f"layer '{layer}': block size {block} does not divide its {channels} input channels")


def block_mask(w: np.ndarray, block: int) -> np.ndarray:
    """kept[n, j]: block j of output channel n has a nonzero value. `w` is W[N, K], block | K."""
    n, k = w.shape
    return np.any(w.reshape(n, k // block, block) != 0, axis=2)


def block_sparsity(w: np.ndarray, block: int) -> float:
    """Share of all-zero blocks of W[N, K]."""
    return float(1.0 - block_mask(w, block).mean())


def encode(w: np.ndarray, block: int, channels: int, layer: str = "?") -> BlockRLE:
    """Blockwise run-length coding of W[N, K] (int8) with blocks of `block` along `channels`."""
    w = np.asarray(w)
    if w.dtype != np.int8 or w.ndim != 2:
        raise EngineError(f"layer '{layer}': sparse coding needs int8 weights W[N, K], got {w.dtype} {w.shape}")
    check_block(block, channels, layer)
    n, k = w.shape
    if k % channels:
        raise EngineError(f"layer '{layer}': {k} weights per output channel are not whole taps of {channels}")
    kept = block_mask(w, block)
    counts, skips, starts = [], [], []
    for row in kept:
        prev = -1
        stored = 0
        for j in np.flatnonzero(row):
            while j - prev - 1 > MAX_SKIP:  # filler: an all-zero block at skip 255
                prev += MAX_SKIP + 1
                skips.append(MAX_SKIP)
                starts.append(-1)
                stored += 1
            skips.append(j - prev - 1)
            starts.append(j)
            prev = j
            stored += 1
        if stored > np.iinfo(np.uint16).max:
            raise EngineError(f"layer '{layer}': {stored} blocks in one output channel exceed the 16-bit count")
        counts.append(stored)
    blocks = w.reshape(n, k // block, block)
    rows = np.repeat(np.arange(n), counts)
    values = np.zeros((len(starts), block), np.int8)
    real = np.asarray(starts, np.int64) >= 0
    values[real] = blocks[rows[real], np.asarray(starts, np.int64)[real]]
    return BlockRLE(block, n, k, np.asarray(counts, np.uint16), np.asarray(skips, np.uint8), values.reshape(-1))


def decode(enc: BlockRLE) -> np.ndarray:
    """W[N, K] back from its coding: the inverse of `encode`."""
    w = np.zeros((enc.n, enc.k // enc.block, enc.block), np.int8)
    vals = enc.values.reshape(-1, enc.block)
    i = 0
    for r, count in enumerate(enc.counts):
        j = -1
        for _ in range(int(count)):
            j += 1 + int(enc.skips[i])
            if j >= w.shape[1]:
                raise EngineError(f"sparse coding: output channel {r} runs past its {w.shape[1]} blocks")
            w[r, j] = vals[i]
            i += 1
    if i != enc.blocks:
        raise EngineError(f"sparse coding: counts cover {i} blocks, {enc.blocks} stored")
    return w.reshape(enc.n, enc.k)
