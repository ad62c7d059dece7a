"""SparseNAS and the full pipeline: limits honoured or a clear error, resumable search
state, Pareto front, and the smoke pipeline end to end (search -> deploy -> bit-exact -> report)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from sparse_engine.cost import Cost
from tinyformer_jax import time_limit
from tinyformer_jax.errors import TinyFormerError
from tinyformer_jax.search.evolution import Search, pareto
from tinyformer_jax.search.space import Candidate, crossover, mutate, n_genes, random_candidate

ROOT = Path(__file__).resolve().parents[2]
MODEL = ml_collections.ConfigDict(dict(
    stem=8, modules=(("mbv2", 8), ("downsample", 16), ("transformer",), ("pool",), ("mbv2", 16)),
    mbv2=((2, 3), (3, 5)), transformer=((16, 1, 1), (24, 2, 1)), head_dim=8, mlp_ratio=2,
    downsample_expand=2, head=32, classes=10))


def _search_cfg(**kw) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict(dict(population=6, generations=3, parents=3, crossover=0.5, mutation_prob=0.3,
                                       max_tries_factor=10, sparsity_levels=(0.0, 0.5, 0.75), block_sizes=(1, 4, 8),
                                       flash_bytes=0, sram_bytes=0, max_instructions=0, seed=1))
    c.update(kw)
    return c


class FakeCost:
    """Costs that grow with the path and shrink with sparsity (a stand-in for CandidateCost)."""

    def __init__(self):
        self.full_calls = 0

    def __call__(self, c: Candidate, memory_only: bool = False) -> Cost:
        size = 20_000 * (1 + sum(c.path)) * (1.0 - 0.2 * np.mean(c.sparsity))
        if not memory_only:
            self.full_calls += 1
        return Cost(flash_bytes=int(size), sram_bytes=int(size // 2), arena_bytes=int(size // 3), const_bytes=int(size),
                    instructions=None if memory_only else int(size * 100), macs=int(size * 10), layers=10,
                    sparse_layers=0)


class FakeScore:
    """Accuracy that grows with the path and falls with sparsity; records each call's batch."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, cands: list[Candidate]) -> list[float]:
        self.calls.append([c.key for c in cands])
        return [0.1 + 0.1 * sum(c.path) - 0.05 * sum(c.sparsity) / len(c.sparsity) for c in cands]


def test_genes_stay_in_the_space():
    cfg, rng = _search_cfg(), np.random.default_rng(0)
    counts = [2, 2, 2, 2, 2]
    for _ in range(50):
        a, b = random_candidate(rng, MODEL, cfg), random_candidate(rng, MODEL, cfg)
        for c in (a, mutate(a, rng, MODEL, cfg), crossover(a, b, rng)):
            assert all(0 <= p < n for p, n in zip(c.path, counts)) and len(c.sparsity) == n_genes(MODEL)
            assert all(0 <= s < 3 for s in c.sparsity) and all(0 <= s < 3 for s in c.block)
            assert Candidate.from_key(c.key) == c


def test_search_honours_limits_resumes_and_returns_a_pareto_front(tmp_path):
    cost, score = FakeCost(), FakeScore()
    s = Search(MODEL, _search_cfg(generations=2, flash_bytes=70_000), "stm32f746", cost, score, tmp_path)
    s.run()
    assert s.generation == 2 and json.loads((tmp_path / "state.json").read_text())["generation"] == 2
    # a generation's new fitting candidates are scored together, each once
    assert len(score.calls) == 2 and len(score.calls[0]) == 6
    keys = [k for call in score.calls for k in call]
    assert len(keys) == len(set(keys)) == sum(r["fits"] for r in s.archive.values())
    seen = len(s.archive)
    resumed = Search(MODEL, _search_cfg(generations=3, flash_bytes=70_000), "stm32f746", cost, score, tmp_path)
    assert resumed.generation == 2 and len(resumed.archive) == seen
    out = resumed.run()
    other = MODEL.copy_and_resolve_references()
    other.modules = MODEL.modules[:-1]
    with pytest.raises(TinyFormerError, match=r"state.json: written for another search space .* use a new --workdir"):
        Search(other, _search_cfg(), "stm32f746", cost, score, tmp_path)
    assert resumed.generation == 3 and len(resumed.archive) >= seen
    assert out["best"]["flash_bytes"] <= 70_000
    assert all(r["flash_bytes"] <= 70_000 for r in resumed.archive.values() if r["fits"])
    assert any(not r["fits"] for r in resumed.archive.values())  # over-limit ones were seen and rejected
    assert all(r["accuracy"] is None for r in resumed.archive.values() if not r["fits"])
    front = out["pareto"]
    fit = [r for r in resumed.archive.values() if r["fits"]]
    assert out["best"] in front and front == pareto(fit)
    for r in front:  # nobody dominates a front member
        assert not any(o["accuracy"] >= r["accuracy"] and o["flash_bytes"] <= r["flash_bytes"]
                       and o["instructions"] <= r["instructions"] and o is not r and
                       (o["accuracy"], o["flash_bytes"], o["instructions"]) !=
                       (r["accuracy"], r["flash_bytes"], r["instructions"]) for o in fit)


def test_search_stopped_by_its_time_limit_resumes_to_the_same_result(tmp_path):
    """A time limit that has always passed: every rerun saves after one new candidate (or a
    generation) and stops; together they end with the uninterrupted run's state, byte for byte."""
    cfg = _search_cfg(generations=2, flash_bytes=70_000)
    whole = Search(MODEL, cfg, "stm32f746", FakeCost(), FakeScore(), tmp_path / "whole").run()
    cost, score, stops, messages = FakeCost(), FakeScore(), 0, set()
    try:
        while True:
            time_limit.start(1e-9)
            try:
                parts = Search(MODEL, cfg, "stm32f746", cost, score, tmp_path / "parts").run()
                break
            except time_limit.TimeLimitReached as exc:
                stops += 1
                messages.add(str(exc).split(" after ")[0])
            assert stops < 500, "no progress between reruns"
    finally:
        time_limit.start(None)
    archive = json.loads((tmp_path / "parts" / "state.json").read_text())["archive"]
    assert stops >= len(archive)  # one stop per new candidate at least, plus generation ends
    assert {"time limit reached: search saved in generation 1", "time limit reached: search saved in generation 2",
            "time limit reached: search saved"} <= messages
    assert (tmp_path / "parts" / "state.json").read_bytes() == (tmp_path / "whole" / "state.json").read_bytes()
    assert parts == whole


class BiggerCost(FakeCost):
    """FakeCost after a kernel change: every candidate 20 % larger."""

    def __call__(self, c: Candidate, memory_only: bool = False) -> Cost:
        old = super().__call__(c, memory_only)
        grow = lambda v: None if v is None else int(v * 1.2)  # noqa: E731
        return Cost(**{k: grow(v) if k.endswith(("bytes", "instructions")) else v for k, v in old.__dict__.items()})


def test_search_resumed_with_other_kernels_costs_its_archive_again(tmp_path):
    """A state saved under one cost key and resumed under another: every archived candidate gets the
    new figures (fits decided again, accuracies kept for those that still fit, a parent that no longer
    fits leaves the population); resumed under the same key, or finished (the later stages were
    built from its result), nothing is costed again."""
    cfg = _search_cfg(generations=1, flash_bytes=70_000)
    s = Search(MODEL, cfg, "stm32f746", FakeCost(), FakeScore(), tmp_path, cost_key="a")
    result = s.run()
    before = {k: dict(r) for k, r in s.archive.items()}
    same = FakeCost()
    Search(MODEL, cfg, "stm32f746", same, FakeScore(), tmp_path, cost_key="a")
    finished = Search(MODEL, cfg, "stm32f746", BiggerCost(), FakeScore(), tmp_path, cost_key="b")
    assert same.full_calls == finished.cost.full_calls == 0 and finished.run() == result
    bigger = BiggerCost()
    r = Search(MODEL, _search_cfg(generations=2, flash_bytes=70_000), "stm32f746", bigger, FakeScore(), tmp_path,
               cost_key="b")
    assert json.loads((tmp_path / "state.json").read_text())["cost_key"] == "b"
    assert set(r.archive) == set(before)
    for k, row in r.archive.items():
        want = bigger(Candidate.from_key(k), memory_only=not row["fits"])
        assert (row["flash_bytes"], row["sram_bytes"]) == (want.flash_bytes, want.sram_bytes)
        assert row["fits"] == (want.flash_bytes <= 70_000)
        assert row["accuracy"] == (before[k]["accuracy"] if row["fits"] else None)
    dropped = [k for k, row in before.items() if row["fits"] and not r.archive[k]["fits"]]
    assert dropped and all(r.archive[c.key]["fits"] for c in r.population)
    assert r.run()["best"]["flash_bytes"] <= 70_000


def test_auto_scoring_form_is_lax_map_on_cpu():
    from tinyformer_jax.train.candidates import resolve_method

    assert [resolve_method(m) for m in ("auto", "vmap", "loop")] == ["map", "vmap", "loop"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["vmap", "map", "shard"])
def test_batched_masked_scores_equal_one_candidate_at_a_time(method, monkeypatch):
    """SparseNAS scores: 5 candidates in batches of 3 (the last padded) in a batched form equal
    the loop form one by one; pruning changes the scores."""
    from flax import nnx

    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]
    from _train_tiny import synthetic

    from tinyformer_jax.models.supernet import Supernet
    from tinyformer_jax.search.scoring import score
    from tinyformer_jax.train.candidates import evaluate

    supernet = Supernet(MODEL, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(4)
    cands = [random_candidate(rng, MODEL, _search_cfg()) for _ in range(5)]
    dense = [Candidate(c.path, (0,) * len(c.sparsity), c.block) for c in cands]
    data = synthetic(96, 3)
    calib, val = data.images[:32], type(data)(data.images[32:], data.labels[32:])
    val = type(data)(val.images, _labels(supernet, dense[0].path, calib, val.images))
    one = score(supernet, MODEL, cands, _search_cfg(score_method="loop", score_batch=1), calib, val)
    many = score(supernet, MODEL, cands, _search_cfg(score_method=method, score_batch=3), calib, val)
    assert len(many) == 5
    np.testing.assert_allclose(many, one, atol=1e-9)
    # 7 test images per call for 3 candidates: the 64 images in chunks of 2, the same scores
    from tinyformer_jax.search import scoring

    batches = []
    monkeypatch.setattr(scoring, "evaluate", lambda *a, **kw: batches.append(kw["batch"]) or evaluate(*a, **kw))
    chunked = score(supernet, MODEL, cands, _search_cfg(score_method=method, score_batch=3,
                                                        score_images_per_call=7), calib, val)
    assert batches == [2, 2]
    np.testing.assert_allclose(chunked, one, atol=1e-9)
    unpruned = score(supernet, MODEL, dense, _search_cfg(score_method=method, score_batch=3), calib, val)
    assert unpruned[0] == 1.0  # the labels are dense path 0's predictions
    assert any(abs(a - b) > 0 for a, b in zip(one, unpruned))


def _labels(supernet, path, calib, images) -> np.ndarray:
    from tinyformer_jax.train.candidates import logits

    return logits(supernet, np.asarray([path]), calib, images, "loop")[0].argmax(-1).astype(np.int32)


def test_impossible_budget_is_a_clear_error_not_a_model(tmp_path):
    pytest.importorskip("jax2onnx")
    from tinyformer_jax.search.costing import CandidateCost

    cfg = _search_cfg(population=2, max_tries_factor=3, sram_bytes=32 * 1024)
    cost = CandidateCost(MODEL, cfg, "stm32f746", tmp_path / "cost")
    s = Search(MODEL, cfg, "stm32f746", cost, lambda cs: pytest.fail("scored an over-budget candidate"),
               tmp_path / "search")
    with pytest.raises(TinyFormerError, match=r"no candidate fits stm32f746 with .*SRAM <= 32,768 B"):
        s.run()
    assert cost.engine.builds == 0  # rejected on memory alone, nothing built


@pytest.mark.slow(seconds=600)
def test_smoke_pipeline_end_to_end(tmp_path):
    """Done-when 1: search, prune, QAT, export, compile, bit-exact on the Cortex-M7 in QEMU, report;
    the chosen model fits its budget; the cost model's arena is the firmware's. The first run goes
    in parts (time limit, --stop_after). Then resume: a rerun after the QAT stage was lost keeps
    the earlier stages' files and gives the same model."""
    pytest.importorskip("jax2onnx")
    from tinyformer_jax.data.cifar10 import resolve_dir

    try:
        resolve_dir(None)
    except TinyFormerError:
        pytest.skip("CIFAR-10 not found")
    work = tmp_path / "run"

    def launch(*flags: str, status: int = 0) -> str:
        proc = subprocess.run([sys.executable, str(ROOT / "launch" / "tinyformer.py"),
                               "--config=" + str(ROOT / "configs" / "tinyformer_cifar10_320kb.py") + ":smoke",
                               f"--workdir={work}", *flags], capture_output=True, text=True, cwd=ROOT, timeout=3000)
        assert proc.returncode == status, proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    # in parts, as on machines lent in short commands: the time limit stops supernet training at its
    # first step (status 75), --stop_after ends the run after the supernet, then the rest
    out = launch("--stop_after=supernet", "--time_limit=1e-9", status=75)
    assert "stopped: time limit reached: supernet saved at step 1/6; rerun the same command to resume" in out
    out = launch("--stop_after=supernet")
    assert "stopped after supernet (--stop_after)" in out and not (work / "search").exists()
    launch()
    f = json.loads((work / "summary.json").read_text())
    assert f["fits"] and f["flash_bytes"] <= f["budget"]["flash_bytes"] and f["sram_bytes"] <= f["budget"]["sram_bytes"]
    exact = [r for r in f["ladder"] if "exact" in r]
    assert len(exact) >= 3 and all(r["exact"] for r in exact)
    assert f["arena_bytes"] == f["predicted"]["arena_bytes"]
    assert abs(f["flash_bytes"] - f["predicted"]["flash_bytes"]) <= 0.02 * f["flash_bytes"]
    report = Path(f["report"])
    text = report.read_text()
    for png in ("pareto.png", "candidates_memory.png", "layers.png", "sparsity.png"):
        assert (report.parent / png).stat().st_size > 1000 and png in text
    assert "| 1 | inverted residual: expand x" in text and "MobileViT: embedding " in text  # the blocks in words
    assert max(f["chosen"]["sparsity_achieved"]) > 0 or max(f["chosen"]["sparsity_target"]) == 0
    assert len(f["chosen"]["layers"]) == len(f["chosen"]["sparsity_target"]) == len(f["chosen"]["block_sizes"])

    # stopped after pruning (QAT, summary and report gone): the rerun redoes only what is missing
    kept = ["supernas.json", "supernet/metrics.jsonl", "search/state.json",
            f"cost/space{f['supernas']['chosen']}/costs.json",
            "prune0/metrics.jsonl", "prune1/metrics.jsonl"]
    before = {name: (work / name).read_bytes() for name in kept}
    for name in ("qat", "report"):
        shutil.rmtree(work / name)
    (work / "summary.json").unlink()
    launch()
    assert {name: (work / name).read_bytes() for name in kept} == before
    again = json.loads((work / "summary.json").read_text())
    assert (work / "qat" / "metrics.jsonl").exists() and Path(again["report"]).exists()
    for k in ("chosen", "int8_accuracy", "flash_bytes", "sram_bytes", "instructions"):
        assert again[k] == f[k], k
    from conftest import record
    record("tinyformer smoke pipeline", dict(int8=f["int8_accuracy"], flash=f["flash_bytes"], sram=f["sram_bytes"],
                                             instructions=f["instructions"], cycles=f.get("cycles_estimate"),
                                             predicted=f["predicted"], seconds=f["seconds"]))
