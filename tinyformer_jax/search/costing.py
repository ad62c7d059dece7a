"""Exact MCU cost of a SparseNAS candidate without training: the path's network with random
weights and the candidate's block masks (a stand-in pattern fixed by each layer's shape, sparsity
and block size) is exported to QDQ ONNX as the trained model will be, then SparseEngine's cost
model (sparse_engine/cost.py) gives flash, SRAM and instructions. Costs are cached per candidate
in the workdir (JSON), the engine's measurements in its own cache file."""
from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from sparse_engine import compiler, cost as engine_cost, profiles, verify

from ..export.onnx_export import export_qdq
from ..files import write_json
from ..models.hybrid import Hybrid
from ..models.layers import set_mode
from ..models.supernet import standalone_config
from ..prune.blocks import apply_masks, model_masks, prunable
from ..quant.fold import fold_batchnorm
from .space import Candidate


def random_model(model_cfg: ml_collections.ConfigDict, seed: int = 0) -> Hybrid:
    """A Hybrid with NumPy-drawn weights (no per-shape JAX compiles), BatchNorm folded, every
    activation range [-4, 4]: what export needs, with the trained model's shapes and layers."""
    abstract = nnx.eval_shape(lambda: Hybrid(model_cfg, rngs=nnx.Rngs(0)))
    gd, state = nnx.split(abstract)
    rng = np.random.default_rng(seed)
    flat = []
    for key, var in nnx.to_flat_state(state):
        shape, dtype = var.get_raw_value().shape, var.get_raw_value().dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            value = jax.random.key(0)
        elif key[-1] == "range":
            value = jnp.array([-4.0, 4.0, 1.0], jnp.float32)
        elif key[-1] in ("var", "scale"):
            value = jnp.ones(shape, dtype)
        elif key[-1] == "w" and len(shape) >= 2:
            fan = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            value = jnp.asarray(rng.normal(size=shape) / np.sqrt(fan), dtype)
        else:
            value = jnp.asarray(rng.normal(size=shape) * 0.1, dtype) if jnp.issubdtype(dtype, jnp.floating) \
                else jnp.zeros(shape, dtype)
        flat.append((key, var.replace(value)))
    model = nnx.merge(gd, nnx.from_flat_state(flat))
    model.eval()
    folded = fold_batchnorm(model)
    set_mode(folded, "quant")
    return folded


class CandidateCost:
    """cost(candidate) -> sparse_engine.cost.Cost, cached in `workdir`/costs.json."""

    def __init__(self, search_model: ml_collections.ConfigDict, search: ml_collections.ConfigDict,
                 profile: str, workdir: Path, progress=None):
        self.model_cfg, self.search = search_model, search
        self.profile = profiles.get(profile)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.engine = engine_cost.CostModel(self.profile, self.workdir / "engine_cache.json", progress=progress,
                                            workers=int(search.get("build_workers", 0)))
        self.file = self.workdir / "costs.json"
        saved = json.loads(self.file.read_text()) if self.file.exists() else {}
        # figures measured with other kernels (engine_cost.sources_key) are measured again
        self.costs: dict[str, dict] = saved.get("costs", {}) if saved.get("sources") == self.engine.sources else {}

    @property
    def sources(self) -> str:
        """Key of the C the figures are measured with (engine_cost.sources_key)."""
        return self.engine.sources

    @functools.lru_cache(maxsize=4)
    def _model(self, path: tuple[int, ...]) -> Hybrid:
        return random_model(standalone_config(self.model_cfg, path))

    def export(self, c: Candidate, onnx_path: Path, seed: int = 0) -> Path:
        """The candidate as a QDQ model: random weights (`seed`), the stand-in block masks."""
        model = nnx.clone(self._model(c.path)) if seed == 0 else random_model(
            standalone_config(self.model_cfg, c.path), seed)
        apply_masks(model, model_masks(model, c.layer_levels(self.model_cfg, self.search, prunable(model)),
                                       scores="random"))
        return export_qdq(model, onnx_path)

    # the last candidate's graph is kept: the search costs a candidate's memory, then its instructions
    # (not to be changed by the caller; the engine's estimate copies it)
    @functools.lru_cache(maxsize=1)
    def graph(self, c: Candidate, seed: int = 0):
        """The candidate's imported IR graph, attention fused as the compiler fuses it by default."""
        with tempfile.TemporaryDirectory(prefix="tf-cost-") as tmp:
            g = compiler.build_graph(self.export(c, Path(tmp) / "candidate.onnx", seed))
        return compiler.fuse_attention(g, "auto", verify.load_inputs(g, None, 8, 0))

    def __call__(self, c: Candidate, memory_only: bool = False) -> engine_cost.Cost:
        """Memory-only estimates are never cached as final figures; full ones are."""
        hit = self.costs.get(c.key)
        if hit is not None:
            return engine_cost.Cost(**hit)
        cost = self.engine.estimate(self.graph(c), memory_only=memory_only)
        if not memory_only:
            self.costs[c.key] = cost.to_json()
            write_json(self.file, dict(sources=self.engine.sources, costs=self.costs), indent=None)
        return cost
