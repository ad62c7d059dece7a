"""Block pruning: masks in SparseEngine's block geometry, per-layer genes of SparseNAS."""
from __future__ import annotations

import itertools

import ml_collections
import numpy as np
import pytest
from flax import nnx

from sparse_engine import sparse
from tinyformer_jax.models.hybrid import Hybrid
from tinyformer_jax.models.supernet import num_candidates, standalone_config
from tinyformer_jax.prune import blocks
from tinyformer_jax.search.space import Candidate, n_genes, slots

MODEL = ml_collections.ConfigDict(dict(
    stem=8, modules=(("mbv2", 8), ("downsample", 16), ("transformer",), ("pool",), ("mbv2", 16)),
    mbv2=((2, 3), (3, 5)), transformer=((16, 1, 1), (24, 2, 1)), head_dim=8, mlp_ratio=2,
    downsample_expand=2, head=32, classes=10))
SEARCH = ml_collections.ConfigDict(dict(sparsity_levels=(0.0, 0.5, 0.75), block_sizes=(1, 4, 8)))


def _engine_layout(w: np.ndarray) -> np.ndarray:
    """W[N, K] as SparseEngine stores it: conv OIHW -> [O, kh*kw*I] (channels innermost), Linear [in, out] -> [out, in]."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1) if w.ndim == 4 else w.T


@pytest.mark.parametrize("shape", [(8, 16, 3, 3), (12, 32, 1, 1), (32, 24)])
@pytest.mark.parametrize("block", [1, 4, 8])
def test_masked_blocks_are_the_engines_skipped_blocks(shape, block):
    """floor(s * blocks) whole blocks zeroed, as the engine's block view counts them, and the
    zeroed ones are those of the smallest L2 norm."""
    rng = np.random.default_rng(block)
    w = rng.normal(size=shape).astype(np.float32)
    m = blocks.block_mask(w, 0.6, block)
    engine = _engine_layout(w * m)
    b = blocks.fit_block(block, shape[1] if len(shape) == 4 else shape[0])
    n_blocks = engine.size // b
    assert sparse.block_sparsity(engine, b) == pytest.approx(np.floor(0.6 * n_blocks) / n_blocks)
    norms = np.sqrt((_engine_layout(w).reshape(shape[0] if len(shape) == 4 else shape[1], -1, b) ** 2).sum(-1))
    kept = sparse.block_mask(engine, b)
    assert norms[~kept].max() <= norms[kept].min()
    assert set(np.unique(m)) <= {0.0, 1.0}
    np.testing.assert_array_equal(blocks.block_mask(w, 0.6, block, "random"), blocks.block_mask(w * 3, 0.6, block,
                                                                                                 "random"))


def test_layer_genes_cover_every_prunable_layer_of_every_path():
    """Each unit owns as many genes as its largest choice has prunable layers; every path's
    layers read distinct genes of their own unit, so each layer gets its own sparsity and block."""
    per_unit = np.asarray(slots(MODEL))
    start = np.concatenate([[0], np.cumsum(per_unit)])
    assert n_genes(MODEL) == per_unit.sum() and per_unit[3] == 0  # the pool module has nothing to prune
    reached = np.zeros_like(per_unit)
    genes = n_genes(MODEL)
    c = Candidate((0,) * len(MODEL.modules), tuple(g % 3 for g in range(genes)), tuple((g // 3) % 3
                                                                                       for g in range(genes)))
    for path in itertools.product(*[range(n) for n in num_candidates(MODEL)]):
        model = nnx.eval_shape(lambda: Hybrid(standalone_config(MODEL, path), rngs=nnx.Rngs(0)))
        unit_of = blocks.prunable(model)
        pos = blocks.positions(unit_of)
        level = Candidate(tuple(path), c.sparsity, c.block).layer_levels(MODEL, SEARCH, unit_of)
        assert list(level) == list(unit_of)
        gene = {k: int(start[u]) + j for k, (u, j) in pos.items()}
        assert len(set(gene.values())) == len(gene) and all(start[u] <= gene[k] < start[u + 1]
                                                            for k, (u, _) in pos.items())
        for k, (s, b) in level.items():
            assert (s, b) == (SEARCH.sparsity_levels[c.sparsity[gene[k]]], SEARCH.block_sizes[c.block[gene[k]]])
        reached = np.maximum(reached, np.bincount([u for u, _ in pos.values()], minlength=len(per_unit)))
    np.testing.assert_array_equal(reached, per_unit)


def test_schedule_and_achieved():
    assert blocks.schedule(0, 4, 0.8) == 0.0 and blocks.schedule(4, 4, 0.8) == pytest.approx(0.8)
    steps = [blocks.schedule(r, 4, 0.8) for r in range(5)]
    assert all(a < b for a, b in zip(steps, steps[1:]))
    assert steps[1] - steps[0] > steps[4] - steps[3]  # cubic: prune fast early, slowly late
    mk = {("a",): np.array([[0.0, 1.0], [0.0, 0.0]])}
    assert blocks.achieved(mk, [("a",), ("b",)]) == [0.75, 0.0]
