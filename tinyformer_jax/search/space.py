"""SparseNAS candidates: a supernet path plus, per prunable layer, a sparsity level and a block size.

The genome has a fixed length for every path: unit u (model block u, the last = head +
classifier) owns as many layer genes as the largest of its module's choices has prunable layers;
a path whose choice has fewer layers leaves the rest unused. A candidate is stored as indices into
the config's lists (search.sparsity_levels, search.block_sizes), so it is plain JSON and mutation /
crossover stay inside the space.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import ml_collections
import numpy as np
from flax import nnx

from ..models.hybrid import Hybrid
from ..models.supernet import num_candidates, standalone_config
from ..prune.blocks import positions, prunable


@dataclass(frozen=True)
class Candidate:
    path: tuple[int, ...]
    sparsity: tuple[int, ...]  # index into search.sparsity_levels, one per layer gene
    block: tuple[int, ...]  # index into search.block_sizes, one per layer gene

    @property
    def key(self) -> str:
        return json.dumps([self.path, self.sparsity, self.block], separators=(",", ":"))

    @property
    def genes(self) -> tuple[int, int]:
        """(path length, layer genes): what a search space fixes."""
        return len(self.path), len(self.sparsity)

    @classmethod
    def from_key(cls, key: str) -> "Candidate":
        p, s, b = json.loads(key)
        return cls(tuple(p), tuple(s), tuple(b))

    def layer_levels(self, model: ml_collections.ConfigDict, search: ml_collections.ConfigDict,
                     unit_of: dict[tuple, int]) -> dict[tuple, tuple[float, int]]:
        """{weight key: (sparsity, block size)} of the path's prunable layers (`unit_of`: prunable
        of the path's standalone Hybrid)."""
        start = np.concatenate([[0], np.cumsum(slots(model))])
        out = {}
        for k, (u, j) in positions(unit_of).items():
            g = int(start[u]) + j
            out[k] = (float(search.sparsity_levels[self.sparsity[g]]), int(search.block_sizes[self.block[g]]))
        return out


@functools.lru_cache(maxsize=16)
def _slots(model_json: str) -> tuple[int, ...]:
    model = ml_collections.ConfigDict(json.loads(model_json))
    counts = num_candidates(model)
    n = np.zeros(len(model.modules) + 1, int)
    for j in range(int(counts.max())):
        path = np.minimum(j, counts - 1)
        abstract = nnx.eval_shape(lambda: Hybrid(standalone_config(model, path), rngs=nnx.Rngs(0)))
        per_unit = np.bincount([u for u, _ in positions(prunable(abstract)).values()], minlength=len(n))
        n = np.maximum(n, per_unit)
    return tuple(int(v) for v in n)


def slots(model: ml_collections.ConfigDict) -> tuple[int, ...]:
    """Layer genes per unit: the most prunable layers any choice of the unit's module has."""
    return _slots(model.to_json())


def n_genes(model: ml_collections.ConfigDict) -> int:
    return sum(slots(model))


def random_genes(path: tuple[int, ...], rng: np.random.Generator, model: ml_collections.ConfigDict,
                 search: ml_collections.ConfigDict) -> Candidate:
    """The given path with every layer's sparsity level and block size drawn uniformly."""
    n = n_genes(model)
    return Candidate(tuple(path),
                     tuple(int(v) for v in rng.integers(0, len(search.sparsity_levels), n)),
                     tuple(int(v) for v in rng.integers(0, len(search.block_sizes), n)))


def random_candidate(rng: np.random.Generator, model: ml_collections.ConfigDict,
                     search: ml_collections.ConfigDict) -> Candidate:
    path = tuple(int(v) for v in rng.integers(0, num_candidates(model)))
    return random_genes(path, rng, model, search)


def mutate(c: Candidate, rng: np.random.Generator, model: ml_collections.ConfigDict,
           search: ml_collections.ConfigDict) -> Candidate:
    """Every gene redrawn with probability search.mutation_prob."""
    fresh = random_candidate(rng, model, search)

    def mix(old, new):
        return tuple(n if rng.random() < search.mutation_prob else o for o, n in zip(old, new))
    return Candidate(mix(c.path, fresh.path), mix(c.sparsity, fresh.sparsity), mix(c.block, fresh.block))


def crossover(a: Candidate, b: Candidate, rng: np.random.Generator) -> Candidate:
    """Each gene from either parent (uniform crossover); a layer's sparsity and block go together."""
    pick = lambda x, y, take: tuple(u if t else v for u, v, t in zip(x, y, take))  # noqa: E731
    tp = rng.random(len(a.path)) < 0.5
    tu = rng.random(len(a.sparsity)) < 0.5
    return Candidate(pick(a.path, b.path, tp), pick(a.sparsity, b.sparsity, tu), pick(a.block, b.block, tu))
