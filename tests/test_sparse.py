"""Issue 5: blockwise run-length coding of block-sparse int8 weights (sparse_engine.sparse)."""
from __future__ import annotations

import numpy as np
import pytest

from sparse_engine import sparse
from sparse_engine.errors import EngineError


def pruned(n: int, k: int, block: int, keep: float, seed: int = 0) -> np.ndarray:
    """Random int8 W[n, k] with a share `keep` of its blocks kept (nonzero values inside)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 128, size=(n, k)).astype(np.int8) * rng.choice(np.array([-1, 1], np.int8), size=(n, k))
    mask = rng.random((n, k // block)) < keep
    return (w.reshape(n, k // block, block) * mask[:, :, None]).reshape(n, k).astype(np.int8)


@pytest.mark.parametrize("block", sparse.BLOCK_SIZES)
@pytest.mark.parametrize("keep", [0.03, 0.25, 0.5, 1.0])
def test_round_trip(block, keep):
    w = pruned(37, 48 * block, block, keep, seed=block)
    enc = sparse.encode(w, block, channels=16 * block)
    np.testing.assert_array_equal(sparse.decode(enc), w)
    kept = sparse.block_mask(w, block)
    assert enc.blocks == kept.sum() and list(enc.counts) == list(kept.sum(axis=1))
    assert enc.nbytes == 2 * 37 + enc.blocks * (block + 1)
    assert sparse.block_sparsity(w, block) == pytest.approx(1 - kept.mean())


def test_long_gaps_use_filler_blocks():
    w = np.zeros((3, 1000), np.int8)
    w[0, 999] = 5          # gap of 999 blocks: fillers at 255, 511, 767
    w[1, 256] = -7         # gap of exactly 256: one filler
    w[2, 255] = 1          # gap of 255: fits the byte
    enc = sparse.encode(w, 1, channels=1000)
    assert list(enc.counts) == [4, 2, 1]
    assert list(enc.skips) == [255, 255, 255, 231, 255, 0, 255]
    np.testing.assert_array_equal(sparse.decode(enc), w)


def test_all_zero_layer_and_single_block():
    zero = sparse.encode(np.zeros((4, 32), np.int8), 8, channels=32)
    assert zero.blocks == 0 and list(zero.counts) == [0, 0, 0, 0] and zero.nbytes == 8
    np.testing.assert_array_equal(sparse.decode(zero), np.zeros((4, 32), np.int8))
    one = np.zeros((4, 32), np.int8)
    one[2, 17] = -128
    enc = sparse.encode(one, 8, channels=32)
    assert list(enc.counts) == [0, 0, 1, 0] and list(enc.skips) == [2]
    np.testing.assert_array_equal(sparse.decode(enc), one)


def test_conv_blocks_stay_inside_a_tap():
    # OHWI 3x3 with C = 8: a block of 8 is one tap; a zero tap is one skipped block
    w = np.ones((2, 3, 3, 8), np.int8)
    w[0, 1, 2] = 0
    enc = sparse.encode(sparse.as_matrix(w), 8, channels=8)
    assert list(enc.counts) == [8, 9] and list(enc.skips[:8]) == [0, 0, 0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("block, channels, msg", [(4, 6, "does not divide its 6 input channels"),
                                                  (3, 9, "not one of 1, 2, 4, 8, 16")])
def test_bad_block_size_is_rejected(block, channels, msg):
    with pytest.raises(EngineError, match=msg):
        sparse.encode(np.ones((2, 36), np.int8), block, channels=channels, layer="conv7")


def test_corrupt_coding_is_rejected():
    enc = sparse.encode(pruned(4, 64, 4, 0.5), 4, channels=64)
    bad = sparse.BlockRLE(enc.block, enc.n, enc.k, enc.counts, np.full_like(enc.skips, 200), enc.values)
    with pytest.raises(EngineError, match="runs past"):
        sparse.decode(bad)


@pytest.mark.parametrize("block", [4, 8, 16])
def test_storage_at_75_percent(block):
    """Issue 5's storage target: at 75 % block sparsity, at most 0.35x the dense int8 bytes."""
    w = pruned(256, 256, block, 0.25, seed=3)
    enc = sparse.encode(w, block, channels=256)
    assert enc.nbytes <= 0.35 * w.size, (block, enc.nbytes / w.size)
