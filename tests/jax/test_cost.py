"""The cost model against the compiled firmware: flash within 2 %, arena exact, and the
per-layer instruction cache reused across models whose requantization constants differ."""
from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np
import pytest

from sparse_engine import compiler, profiles
from tinyformer_jax.search.costing import CandidateCost
from tinyformer_jax.search.space import Candidate, slots

from conftest import record

pytest.importorskip("jax2onnx")

MODEL = ml_collections.ConfigDict(dict(
    stem=8, modules=(("mbv2", 8), ("downsample", 16), ("transformer",), ("pool",), ("mbv2", 16)),
    mbv2=((2, 3), (3, 5)), transformer=((16, 1, 1), (24, 2, 1)), head_dim=8, mlp_ratio=2,
    downsample_expand=2, head=32, classes=10))
SEARCH = ml_collections.ConfigDict(dict(sparsity_levels=(0.0, 0.5, 0.75), block_sizes=(1, 4, 8)))
# per unit (blocks, then head + classifier) one sparsity / block index, given to each of its layer genes
CAND = Candidate((1, 1, 1, 1, 0), *(tuple(int(g) for g in np.repeat(unit, slots(MODEL)))
                                    for unit in ((1, 2, 0, 0, 2, 1), (1, 2, 0, 0, 0, 1))))


def _compiled(onnx_path, out):
    return compiler.compile_model(onnx_path, out, "cortex-m7", profiles.get("stm32f746"),
                                  progress=lambda m: None).report


@pytest.mark.slow
def test_cost_model_matches_the_compiled_firmware(tmp_path):
    cc = CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost")
    est = cc(CAND)
    assert est.sparse_layers > 0 and est.instructions > 0
    rep = _compiled(cc.export(CAND, tmp_path / "cand.onnx"), tmp_path / "engine")
    fw = rep["mcu"]
    assert est.arena_bytes == rep["totals"]["arena_bytes"]
    assert est.const_bytes == rep["totals"]["weight_bytes"]
    assert abs(est.flash_bytes - fw["flash_bytes"]) <= 0.02 * fw["flash_bytes"]
    assert abs(est.sram_bytes - fw["sram_bytes"]) <= 0.02 * fw["sram_bytes"]
    assert est.instructions == pytest.approx(fw["instructions"], rel=1e-3)
    # data-dependent layers (LayerNorm, softmax rows) were measured on another model's activations
    same = [a == b for a, b in zip(est.layer_instructions, fw["layer_instructions"])]
    assert sum(same) >= 0.9 * len(same)
    assert all(abs(a - b) <= 0.01 * b for a, b in zip(est.layer_instructions, fw["layer_instructions"]))
    record("cost model vs firmware", dict(flash=[est.flash_bytes, fw["flash_bytes"]],
                                          sram=[est.sram_bytes, fw["sram_bytes"]],
                                          instructions=[est.instructions, fw["instructions"]], builds=cc.engine.builds))

    # other random weights: other requantization constants, the same layers -> counts from the cache
    again = CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost")
    assert again.costs[CAND.key]["flash_bytes"] == est.flash_bytes  # the candidate cache persisted
    g = again.graph(CAND, seed=1)
    known = len(again.engine.layers)
    est2 = again.engine.estimate(g)
    # at most the final firmware is new (random weights can round a few more blocks to zero)
    assert again.engine.builds <= 1 and len(again.engine.layers) - known <= 2
    rep2 = _compiled(again.export(CAND, tmp_path / "cand1.onnx", seed=1), tmp_path / "engine1")
    assert est2.arena_bytes == rep2["totals"]["arena_bytes"]
    assert abs(est2.flash_bytes - rep2["mcu"]["flash_bytes"]) <= 0.02 * rep2["mcu"]["flash_bytes"]
    assert est2.instructions == pytest.approx(rep2["mcu"]["instructions"], rel=1e-3)
    record("cost model from its cache, other weights", dict(builds=again.engine.builds,
                                                           new_layers=len(again.engine.layers) - known,
        flash=[est2.flash_bytes, rep2["mcu"]["flash_bytes"]], instructions=[est2.instructions,
                                                                          rep2["mcu"]["instructions"]]))


def test_cost_model_matches_the_firmware_with_2x2_patches(tmp_path):
    """A transformer candidate with 2x2 patches (4 sequences) and its transformer pruned to 75 %
    in blocks of 8, attention projections included: costed and deployed alike, the attention's
    projections coded block-sparse inside the fused op."""
    model = MODEL.copy_and_resolve_references()
    model.transformer = ((16, 1, 1), (24, 2, 1, 2))
    cand = Candidate(CAND.path, *(tuple(int(g) for g in np.repeat(unit, slots(model)))
                                  for unit in ((1, 2, 2, 0, 2, 1), (1, 2, 2, 0, 0, 1))))
    cc = CandidateCost(model, SEARCH, "stm32f746", tmp_path / "cost")
    est = cc(cand)
    rep = _compiled(cc.export(cand, tmp_path / "cand.onnx"), tmp_path / "engine")
    (block,) = rep["attention"]
    assert (block["groups"], block["seq"]) == (4, 64)
    (coded,) = [s for s in rep["sparse_layers"] if s["index"] == block["index"]]
    b = coded["chosen_block"]  # blocks of 8 are pruned, so 4 or 2 (two or four zero blocks each) may measure faster
    assert b in (2, 4, 8) and coded["chosen_bytes"] < 0.5 * coded["dense_bytes"]
    assert coded["candidates"][str(b)]["instructions"] < coded["dense_instructions"]
    fw = rep["mcu"]
    assert est.arena_bytes == rep["totals"]["arena_bytes"]
    assert abs(est.flash_bytes - fw["flash_bytes"]) <= 0.02 * fw["flash_bytes"]
    assert est.instructions == pytest.approx(fw["instructions"], rel=1e-3)
    record("2x2-patch candidate, transformer 75 % in blocks of 8 (attention coded sparse)", dict(
        attention_block=b, attention_weight_bytes=[coded["dense_bytes"], coded["chosen_bytes"]],
        attention_instructions=[coded["dense_instructions"], coded["candidates"][str(b)]["instructions"]],
        flash=[est.flash_bytes, fw["flash_bytes"]], instructions=[est.instructions, fw["instructions"]]))


def test_parallel_measurement_builds_equal_one_at_a_time(tmp_path):
    """The measurement firmwares built 4 at a time give the cache and estimate one at a time gives."""
    from sparse_engine.cost import CostModel

    g = CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost").graph(CAND)
    one, four = (CostModel(profiles.get("stm32f746"), workers=w) for w in (1, 4))
    assert one.estimate(g) == four.estimate(g)
    assert one.builds == four.builds > 2 and one.layers == four.layers and one.kernel_sets == four.kernel_sets


def test_shared_kernel_objects_give_the_same_firmware(tmp_path):
    """Builds that reuse the compiled kernels (toolchain.build_mcu's object cache) link the same
    ELF, byte for byte, as a build that compiles everything; the second one compiles no kernel."""
    from sparse_engine import codegen, planner, toolchain

    g = CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost").graph(CAND)
    codegen.generate(g, planner.plan_with_tiles(g), tmp_path / "lib", "dsp")
    m7, objects = profiles.get("stm32f746"), tmp_path / "objects"
    plain = toolchain.build_mcu(tmp_path / "lib", tmp_path / "plain", m7)
    first = toolchain.build_mcu(tmp_path / "lib", tmp_path / "first", m7, objects)
    stamps = {p.name: p.stat().st_mtime_ns for p in objects.iterdir()}
    second = toolchain.build_mcu(tmp_path / "lib", tmp_path / "second", m7, objects)
    assert sorted(n.split("-")[0] for n in stamps) == ["kernels", "kernels_dsp", "startup"]
    assert {p.name: p.stat().st_mtime_ns for p in objects.iterdir()} == stamps
    assert plain.elf.read_bytes() == first.elf.read_bytes() == second.elf.read_bytes()
    assert plain.flash_bytes == second.flash_bytes and plain.static_ram_bytes == second.static_ram_bytes


def test_memory_only_builds_nothing(tmp_path):
    misses = CandidateCost.graph.cache_info().misses  # the cache is the class's, shared by instances
    cc = CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost")
    est = cc(CAND, memory_only=True)
    assert cc.engine.builds == 0 and est.instructions is None and est.arena_bytes > 0
    assert CAND.key not in cc.costs
    # the search's next question, the same candidate's instructions, reuses the exported graph
    exports = lambda: CandidateCost.graph.cache_info().misses - misses  # noqa: E731
    assert exports() == 1 and cc.graph(CAND) is cc.graph(CAND) and exports() == 1
    other = dataclasses.replace(CAND, path=(0, 1, 1, 1, 0))
    assert cc.graph(other) is not cc.graph(CAND) and exports() == 3
    tiny = dataclasses.replace(profiles.get("stm32f746"), sram_bytes=32 * 1024)
    assert est.fits(profiles.get("stm32f746")) and not est.fits(tiny)


def test_caches_from_other_kernels_are_measured_again(tmp_path):
    """The engine's layer cache and the candidate cache carry the key of the C they were measured
    with (kernels, templates, harness, profile): a cache under another key is dropped, not reused."""
    import json

    from sparse_engine.cost import CostModel, sources_key

    m7 = profiles.get("stm32f746")
    assert sources_key(m7, "dsp") != sources_key(m7, "portable")
    assert sources_key(m7, "dsp") != sources_key(profiles.get("stm32l476"), "dsp")
    file = tmp_path / "engine_cache.json"
    first = CostModel(m7, file)
    first.layers["a-layer"] = 1234
    first._save()
    assert CostModel(m7, file).layers == {"a-layer": 1234}
    d = json.loads(file.read_text())
    file.write_text(json.dumps({**d, "sources": "other kernels"}))
    said = []
    assert CostModel(m7, file, progress=said.append).layers == {} and "measuring again" in said[0]

    cc = CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost")
    (tmp_path / "cost" / "costs.json").write_text(json.dumps(dict(sources=cc.engine.sources, costs={"k": {}})))
    assert CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost").costs == {"k": {}}
    (tmp_path / "cost" / "costs.json").write_text(json.dumps(dict(sources="old", costs={"k": {}})))
    assert CandidateCost(MODEL, SEARCH, "stm32f746", tmp_path / "cost").costs == {}
