"""Detection of block sparsity in imported weights, the per-layer dense/sparse choice by
measured instructions, and done-when 2: a block-pruned hybrid model compiled with mixed dense and
sparse layers through the whole ladder, against the same model dense."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import compile_verified, quantized, record

from sparse_engine import sparse, sparsity, zoo
from sparse_engine.cli import main as cli_main
from sparse_engine.compiler import build_graph


def _layer(codings: dict[int, int], dense: int | None, measured: dict[int, int]) -> sparsity.LayerSparsity:
    """A LayerSparsity with fake codings of the given byte sizes and measured instructions."""
    ls = sparsity.LayerSparsity(0, "l", 1000, {b: 0.9 for b in codings})
    for b, nbytes in codings.items():
        vals = np.zeros(nbytes - 2, np.int8)  # counts (one uint16) + values: nbytes in all
        ls.codings[b] = sparse.BlockRLE(b, 1, b, np.zeros(1, np.uint16), np.zeros(0, np.uint8), vals)
    ls.dense_instructions, ls.instructions = dense, dict(measured)
    return ls


def test_choice_never_keeps_a_coding_slower_than_dense():
    ls = _layer({4: 300, 8: 200}, dense=1000, measured={4: 1000, 8: 1200})
    sparsity.choose([ls], "speed")
    assert ls.chosen is None  # equal or slower: dense stays
    sparsity.choose([ls], "size")
    assert ls.chosen is None


@pytest.mark.parametrize("objective, chosen", [("speed", 4), ("size", 16), ("off", None)])
def test_choice_objectives(objective, chosen):
    ls = _layer({4: 300, 8: 250, 16: 200}, dense=1000, measured={4: 500, 8: 600, 16: 900})
    sparsity.choose([ls], objective)
    assert ls.chosen == chosen


def test_no_measurement_means_dense():
    ls = _layer({4: 300}, dense=None, measured={})
    sparsity.choose([ls], "speed")
    assert ls.chosen is None


def test_detection_finds_block_sparsity_per_block_size(models_dir):
    """A pointwise conv with 24 input channels pruned in blocks of 8: every block size dividing 24
    sees the sparsity (b = 16 does not divide 24 and is not tried); a dense layer has no candidate."""
    g = build_graph(quantized(dict(op="conv", shape=(1, 24, 6, 6), cout=16, k=1), models_dir, "det_pw"))
    (op,) = [o for o in g.ops if o.kind == "conv2d"]
    assert sparsity.detect(g)[0].codings == {}  # dense weights: nothing to code
    m = sparse.as_matrix(op.params["weights"]).copy()
    kept = np.random.default_rng(1).random((16, 3)) < 0.2
    m = (m.reshape(16, 3, 8) * kept[:, :, None]).reshape(16, 24).astype(np.int8)
    op.params["weights"] = sparse.from_matrix(m, op.params["weights"].shape)
    (ls,) = sparsity.detect(g)
    assert set(ls.sparsity) == {1, 2, 4, 8}
    assert ls.sparsity[8] == pytest.approx(1 - kept.mean())
    assert ls.sparsity[1] >= ls.sparsity[4] >= ls.sparsity[8]
    assert set(ls.codings) == {1, 2, 4, 8}
    assert all(c.nbytes < m.nbytes for c in ls.codings.values())


def test_pruning_zeroes_the_smallest_blocks():
    m = zoo.prune_blocks(zoo.hybrid(), 0.75, 8)
    from onnx import numpy_helper
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    pruned = 0
    for node in m.graph.node:
        if node.op_type == "Conv" and node.input[1] in inits:
            w = inits[node.input[1]]
            if w.shape[1] % 8 or w.shape[1] == 1:
                continue
            blocks = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1, 8)
            zero = np.all(blocks == 0, axis=2)
            assert zero.mean() == pytest.approx(0.75, abs=0.01)
            norms = np.abs(blocks).sum(axis=2)
            assert norms[~zero].min() >= norms[zero].max()  # the smallest blocks went
            pruned += 1
    assert pruned >= 5


def test_pruned_hybrid_mixed_dense_and_sparse(tmp_path):
    """Done-when 2: the hybrid model of the SparseEngine tests, block-pruned (90 %, blocks of 8)
    before quantization, compiles with mixed dense/sparse layers, passes the ladder, and its
    report shows flash and instructions against the same model dense."""
    model = zoo.quantize_qdq(zoo.prune_blocks(zoo.hybrid(), 0.9, 8), tmp_path / "hybrid_pruned.onnx")
    rep = compile_verified(model, tmp_path / "out", n_random=3)
    assert all(r["exact"] for r in rep["verification"] if "exact" in r)
    t = rep["totals"]
    sparse_rows = [r for r in rep["layers"] if r.get("sparse_block")]
    dense_rows = [r for r in rep["layers"] if r["kind"] in ("conv2d", "fc") and not r.get("sparse_block")]
    assert len(sparse_rows) >= 10 and dense_rows  # mixed: depthwise convs and the 3-channel stem stay dense
    for r in sparse_rows:
        assert r["instructions"] < r["dense_instructions"], r["name"]
        assert "sparse" in r["kernel"] or r["kind"] == "attention"  # its projections run the sparse FC
    assert any(r["kind"] == "attention" for r in sparse_rows)  # FWSA: V and O coded, the fused matrix dense
    for s in rep["sparse_layers"]:  # no candidate measured slower than dense was kept
        if s["chosen_block"]:
            best = min(c["instructions"] for c in s["candidates"].values())
            assert rep["layers"][s["index"]]["instructions"] == best  # exact counts: the same in the final build
            assert s["chosen_bytes"] < s["dense_bytes"]
    assert t["instructions"] < t["dense_instructions"] and t["flash_bytes"] < t["dense_flash_bytes"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Sparse coding" in md and "the same model dense" in md
    record("pruned hybrid 90 % b=8", dict(instructions=t["instructions"], dense_instructions=t["dense_instructions"],
                                          flash=t["flash_bytes"], dense_flash=t["dense_flash_bytes"],
                                          sparse_layers=len(sparse_rows)))


def test_sparse_off_keeps_every_layer_dense(tmp_path, capsys):
    model = zoo.quantize_qdq(zoo.prune_blocks(zoo.single_op(dict(op="gemm", shape=(2, 64), n=32)), 0.9, 8),
                             tmp_path / "fc_pruned.onnx")
    assert cli_main(["compile", str(model), "--out", str(tmp_path / "off"), "--sparse", "off", "--quiet"]) == 0
    assert cli_main(["compile", str(model), "--out", str(tmp_path / "on"), "--quiet"]) == 0
    import json
    off = json.loads((tmp_path / "off" / "report.json").read_text())
    on = json.loads((tmp_path / "on" / "report.json").read_text())
    fc_off = [r for r in off["layers"] if r["kind"] == "fc"][0]
    fc_on = [r for r in on["layers"] if r["kind"] == "fc"][0]
    assert fc_off["kernel"] == "se_fc_s8_dsp" and not fc_off.get("sparse_block")
    assert fc_on["kernel"] == "se_fc_sparse_s8_dsp" and fc_on["sparse_block"] in (4, 8)
    assert on["totals"]["weight_bytes"] < off["totals"]["weight_bytes"]


def test_bench_prune_matrix_drops_exactly_the_smallest_blocks():
    from sparse_engine.bench.sparse import prune_matrix
    m = np.random.default_rng(2).integers(-128, 128, size=(8, 64)).astype(np.int8)
    p = prune_matrix(m, 4, 0.75)
    zero = np.all(p.reshape(8, 16, 4) == 0, axis=2)
    assert zero.sum() == 96
    norms = np.abs(m.reshape(8, 16, 4).astype(np.int64)).sum(axis=2)
    assert norms[~zero].min() >= norms[zero].max()
    np.testing.assert_array_equal(p.reshape(8, 16, 4)[~zero], m.reshape(8, 16, 4)[~zero])


def test_bench_sparse_case(tmp_path, monkeypatch):
    """The benchmark's per-case run on a small FC: bit-exact variants, speedups from the measured counts."""
    from sparse_engine.bench import sparse as bench
    monkeypatch.setattr(bench, "SPARSITIES", (0.75, 0.9))
    monkeypatch.setattr(bench, "BLOCKS", (4, 16))
    res = bench.run_case("fc 2x128 -> 64", dict(op="gemm", shape=(2, 128), n=64), 100_000, "made up", tmp_path,
                         progress=lambda *_: None)
    assert res["bit_exact"] and len(res["rows"]) == 4
    for r in res["rows"]:
        assert r["kernel"] == "se_fc_sparse_s8_dsp"
        assert r["speedup_vs_dense"] == round(res["dense_instructions"] / r["instructions"], 3)
        if res["dense_cycles_estimate"]:  # the cycle estimate ran (llvm-mca and unicorn present)
            assert r["cycle_speedup_vs_dense"] == round(res["dense_cycles_estimate"] / r["cycles_estimate"], 3)
    r90 = {r["block"]: r for r in res["rows"] if r["sparsity"] == 0.9}
    assert r90[16]["instructions"] < res["dense_instructions"] and r90[16]["weight_bytes"] < 0.15 * 128 * 64
    assert res["meets_storage_target"]
