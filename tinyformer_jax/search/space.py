"""SparseNAS candidates: a supernet path plus, per pruning unit, a sparsity level and a block size.

A candidate is stored as indices into the config's lists (search.sparsity_levels,
search.block_sizes), so it is plain JSON and mutation / crossover stay inside the space.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import ml_collections
import numpy as np

from ..models.supernet import num_candidates
from ..prune.blocks import units


@dataclass(frozen=True)
class Candidate:
    path: tuple[int, ...]
    sparsity: tuple[int, ...]  # index into search.sparsity_levels, one per unit
    block: tuple[int, ...]  # index into search.block_sizes, one per unit

    @property
    def key(self) -> str:
        return json.dumps([self.path, self.sparsity, self.block], separators=(",", ":"))

    @classmethod
    def from_key(cls, key: str) -> "Candidate":
        p, s, b = json.loads(key)
        return cls(tuple(p), tuple(s), tuple(b))

    def levels(self, search: ml_collections.ConfigDict) -> tuple[list[float], list[int]]:
        """(sparsity per unit, block size per unit) as values."""
        return ([float(search.sparsity_levels[i]) for i in self.sparsity],
                [int(search.block_sizes[i]) for i in self.block])


def n_units(model: ml_collections.ConfigDict) -> int:
    return units(len(model.modules))


def random_candidate(rng: np.random.Generator, model: ml_collections.ConfigDict,
                     search: ml_collections.ConfigDict) -> Candidate:
    n = n_units(model)
    return Candidate(tuple(int(v) for v in rng.integers(0, num_candidates(model))),
                     tuple(int(v) for v in rng.integers(0, len(search.sparsity_levels), n)),
                     tuple(int(v) for v in rng.integers(0, len(search.block_sizes), n)))


def mutate(c: Candidate, rng: np.random.Generator, model: ml_collections.ConfigDict,
           search: ml_collections.ConfigDict) -> Candidate:
    """Every gene redrawn with probability search.mutation_prob."""
    fresh = random_candidate(rng, model, search)

    def mix(old, new):
        return tuple(n if rng.random() < search.mutation_prob else o for o, n in zip(old, new))
    return Candidate(mix(c.path, fresh.path), mix(c.sparsity, fresh.sparsity), mix(c.block, fresh.block))


def crossover(a: Candidate, b: Candidate, rng: np.random.Generator) -> Candidate:
    """Each gene from either parent (uniform crossover); a module's sparsity and block go together."""
    pick = lambda x, y, take: tuple(u if t else v for u, v, t in zip(x, y, take))  # noqa: E731
    tp = rng.random(len(a.path)) < 0.5
    tu = rng.random(len(a.sparsity)) < 0.5
    return Candidate(pick(a.path, b.path, tp), pick(a.sparsity, b.sparsity, tu), pick(a.block, b.block, tu))
