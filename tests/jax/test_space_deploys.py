"""Every candidate of every choice module of the full search space deploys: the GPU run's
chosen model can be any path, so each candidate is exported (random weights, a random pruning
pattern from the search's levels and block sizes), compiled and run bit-exactly on the host and
the Cortex-M7 in QEMU. Path i takes candidate min(i, n - 1) of every module."""
from __future__ import annotations

import numpy as np
import pytest

from configs.tinyformer_cifar10_320kb import get_config
from sparse_engine import compiler, profiles
from tinyformer_jax.models.supernet import num_candidates, standalone_config
from tinyformer_jax.search.costing import CandidateCost
from tinyformer_jax.search.space import random_genes

from conftest import record

pytest.importorskip("jax2onnx")

CFG = get_config("full")
N = num_candidates(CFG.model)


@pytest.mark.slow
@pytest.mark.parametrize("i", range(int(N.max())))
def test_every_candidate_of_the_full_space_deploys_bit_exactly(tmp_path, i):
    path = tuple(min(i, int(n) - 1) for n in N)
    cand = random_genes(path, np.random.default_rng(i), CFG.model, CFG.search)
    onnx = CandidateCost(CFG.model, CFG.search, "stm32f746", tmp_path / "cost").export(cand, tmp_path / "c.onnx")
    rep = compiler.compile_model(onnx, tmp_path / "c", "cortex-m7", profiles.get("stm32f746"), verify_ladder=True,
                                 n_random=2, progress=lambda m: None).report
    exact = {r["rung"]: r.get("exact") for r in rep["verification"]}
    assert exact["cortex-m7 in QEMU"] and exact["cortex-m7 in QEMU, portable kernels"]
    assert [r for r in exact if r.startswith("host C")] and all(
        v for r, v in exact.items() if r.startswith("host C"))
    kinds = {layer["kind"] for layer in rep["layers"]}
    blocks = standalone_config(CFG.model, path).blocks
    assert ("attention" in kinds) == any(b[0] == "vit" for b in blocks)
    assert {f"{b[1]}pool" for b in blocks if b[0] == "pool"} <= kinds
    record(f"full-space path {list(path)} (random weights, pruned)",
           dict(flash=rep["mcu"]["flash_bytes"], sram=rep["mcu"]["sram_bytes"],
                instructions=rep["mcu"]["instructions"],
                sparse_layers=sum(1 for s in rep["sparse_layers"] if s["chosen_block"])))
