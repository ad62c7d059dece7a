"""Blockwise run-length coding of block-sparse int8 weights (sparse_engine.sparse), and
the sparse FC kernels (portable and DSP) bit-exact with dense execution of the same zeroed weights."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import exact_on_host_and_qemu, force_requant_branches, quantized, sparse_fc_kernel

from sparse_engine import sparse
from sparse_engine.compiler import build_graph
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
    # OHWI 3x3 with C = 8: a block of 8 is one tap, coded in column order (kx, ky); a zero tap
    # (ky=1, kx=2) is one skipped block, the 8th in column order
    w = np.ones((2, 3, 3, 8), np.int8)
    w[0, 1, 2] = 0
    m = sparse.as_matrix(w)
    enc = sparse.encode(m, 8, channels=8)
    assert list(enc.counts) == [8, 9] and list(enc.skips[:8]) == [0, 0, 0, 0, 0, 0, 0, 1]
    np.testing.assert_array_equal(sparse.from_matrix(sparse.decode(enc), w.shape), w)


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
    """The storage target: at 75 % block sparsity, at most 0.35x the dense int8 bytes."""
    w = pruned(256, 256, block, 0.25, seed=3)
    enc = sparse.encode(w, block, channels=256)
    assert enc.nbytes <= 0.35 * w.size, (block, enc.nbytes / w.size)


def sparse_layer(case: dict, models_dir, name: str, block: int, keep: float, seed: int = 0):
    """A quantized single FC / pointwise model whose int8 weights are block-pruned in the IR
    (keep: share of blocks kept) and carry their coding; the simulator runs them dense."""
    g = build_graph(quantized(case, models_dir, name))
    (op,) = [o for o in g.ops if o.kind in ("fc", "conv2d")]
    w = op.params["weights"]
    m = sparse.as_matrix(w)
    kept = np.random.default_rng(seed).random((m.shape[0], m.shape[1] // block)) < keep
    m = (m.reshape(m.shape[0], -1, block) * kept[:, :, None]).reshape(m.shape).astype(np.int8)
    op.params["weights"] = sparse.from_matrix(m, w.shape)
    op.params["sparse"] = sparse.encode(m, block, w.shape[-1], op.name)
    return g, op


FC_CASES = {
    "fc_one_row": dict(op="gemm", shape=(1, 64), n=24),
    "fc_odd_rows": dict(op="gemm", shape=(5, 32), n=7, mean=0.6),
    "pointwise": dict(op="conv", shape=(1, 16, 5, 3), cout=12, k=1),
}


@pytest.mark.parametrize("kernels", ["dsp", "portable"])
@pytest.mark.parametrize("block", sparse.BLOCK_SIZES)
@pytest.mark.parametrize("name", sorted(FC_CASES))
def test_sparse_fc_bit_exact(name, block, kernels, models_dir, tmp_path):
    g, op = sparse_layer(FC_CASES[name], models_dir, f"sp_{name}", block, keep=0.3, seed=block)
    exact_on_host_and_qemu(g, tmp_path, sparse_fc_kernel(block, kernels), kernels)


@pytest.mark.parametrize("keep", [0.0, "one"])
def test_sparse_fc_all_zero_and_single_block(keep, models_dir, tmp_path):
    g, op = sparse_layer(FC_CASES["fc_odd_rows"], models_dir, "sp_fc_odd_rows", 8, keep=0.0)
    if keep == "one":
        w = op.params["weights"].copy()
        w[3, 16:24] = np.arange(1, 9, dtype=np.int8)
        op.params["weights"] = w
        op.params["sparse"] = sparse.encode(w, 8, w.shape[-1], op.name)
    assert op.params["sparse"].blocks == (1 if keep == "one" else 0)
    _, ref, _ = exact_on_host_and_qemu(g, tmp_path, "se_fc_sparse_s8_dsp")
    out = ref.reshape(-1, 7)
    if keep == "one":
        assert len(np.unique(out[:, 3])) > 1  # the one block reaches the output
    else:
        assert (out == out[0]).all()  # bias only, whatever the input


@pytest.mark.parametrize("block", [4, 1])
def test_sparse_fc_gaps_over_255_blocks(block, models_dir, tmp_path):
    """K = 1200: 300 blocks of 4 (1200 of 1) per row, so a row with only its last 4 values kept
    needs fillers."""
    g, op = sparse_layer(dict(op="gemm", shape=(2, 1200), n=5), models_dir, "sp_fc_long", block, keep=0.0)
    w = op.params["weights"].copy()
    w[1, -4:] = [5, -3, 2, 1]
    w[4, :4] = [1, 1, 1, 1]
    op.params["weights"] = w
    op.params["sparse"] = sparse.encode(w, block, 1200, op.name)
    fillers = [255, 43, 0] if block == 4 else [255] * 4 + [1196 - 4 * 256, 0, 0, 0] + [0] * 4
    assert list(op.params["sparse"].skips) == fillers
    exact_on_host_and_qemu(g, tmp_path, sparse_fc_kernel(block))


@pytest.mark.parametrize("block", [1, 2])
def test_sparse_fc_narrow_blocks_tails_and_requant(block, models_dir, tmp_path):
    """The blocks-of-1-or-2 DSP kernel where its fast paths end: K = 38 (a 2-value tail after the
    4-channel widening), 7 rows (a tile of 4, a pair and a single row), and the rarer requantization
    branches (block 1: a channel shifting left, so no table; block 2: the table without SSAT)."""
    g, op = sparse_layer(dict(op="gemm", shape=(7, 38), n=9, mean=0.4), models_dir, f"sp_fc_tail{block}", block,
                         keep=0.4, seed=block)
    table = force_requant_branches(op.params, left=block == 1)
    assert table is None if block == 1 else (table[:, 1] == 0).sum() == 2
    _, ref, _ = exact_on_host_and_qemu(g, tmp_path, "se_fc_sparse_narrow_s8_dsp")
    assert (ref == -100).any() and (ref == 90).any()


CONV_CASES = {
    "conv3x3_pad": dict(op="conv", shape=(1, 16, 7, 6), cout=10, k=3, pad=1),
    "conv3x3_stride2_odd": dict(op="conv", shape=(1, 8, 9, 7), cout=5, k=3, stride=2, pad=1, mean=0.7),
    "conv5x3_dilated": dict(op="conv", shape=(1, 8, 9, 9), cout=6, k=(5, 3), dilation=(1, 2), pad=2),
    "conv1x1_stride2": dict(op="conv", shape=(1, 16, 6, 6), cout=8, k=1, stride=2),
}


@pytest.mark.parametrize("kernels", ["dsp", "portable"])
@pytest.mark.parametrize("block", sparse.BLOCK_SIZES)
@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_sparse_conv_bit_exact(name, block, kernels, models_dir, tmp_path):
    case = CONV_CASES[name]
    if case["shape"][1] % block:
        pytest.skip("block does not divide the channels (rejected: test_bad_block_size_is_rejected)")
    g, op = sparse_layer(case, models_dir, f"sp_{name}", block, keep=0.3, seed=block)
    dsp = kernels == "dsp" and case["shape"][1] % 4 == 0 and op.params["dilation"][1] == 1
    exact_on_host_and_qemu(g, tmp_path, "se_conv_sparse_s8_dsp" if dsp else "se_conv_sparse_s8", kernels)


@pytest.mark.parametrize("left", [False, True])
def test_sparse_conv_requant_branches(left, models_dir, tmp_path):
    """The sparse DSP conv's rarer requantization branches, forced in the IR: a channel with right
    shift 0 and clamp bounds narrower than int8 (pair table loop without SSAT), or a channel
    shifting left (no table: every output through se_req). Odd output width: the single-pixel path."""
    g, op = sparse_layer(dict(op="conv", shape=(1, 8, 5, 5), cout=6, k=3, pad=1), models_dir, "sp_conv_rq", 4,
                         keep=0.5)
    table = force_requant_branches(op.params, left)
    assert table is None if left else (table[:, 1] == 0).sum() == 2
    _, ref, _ = exact_on_host_and_qemu(g, tmp_path, "se_conv_sparse_s8_dsp")
    assert (ref == -100).any() and (ref == 90).any()


@pytest.mark.parametrize("keep", [0.0, "one"])
def test_sparse_conv_all_zero_and_single_block(keep, models_dir, tmp_path):
    """The DSP conv with no stored block at all (bias only) and with exactly one (one channel, one tap)."""
    g, op = sparse_layer(CONV_CASES["conv3x3_pad"], models_dir, "sp_conv3x3_pad", 8, keep=0.0)
    if keep == "one":
        w = op.params["weights"].copy()
        w[4, 2, 0, 8:16] = np.arange(1, 9, dtype=np.int8) * 9  # ky=2, kx=0, channels 8..15
        op.params["weights"] = w
        op.params["sparse"] = sparse.encode(sparse.as_matrix(w), 8, w.shape[-1], op.name)
    assert op.params["sparse"].blocks == (1 if keep == "one" else 0)
    _, ref, _ = exact_on_host_and_qemu(g, tmp_path, "se_conv_sparse_s8_dsp")
    out = ref.reshape(ref.shape[0], 10, -1)  # NCHW, as onnxruntime
    if keep == "one":
        assert len(np.unique(out[:, 4])) > 1
        assert all(len(np.unique(out[:, c])) == 1 for c in range(10) if c != 4)
    else:
        assert all(len(np.unique(out[:, c])) == 1 for c in range(10))
