"""QAT model -> jax2onnx -> cleanup -> our QDQ insertion: a standard QDQ model that passes the
full ONNX checker, that onnxruntime runs like the JAX fake-quant model, and that SparseEngine
compiles and runs bit-exactly on the Cortex-M7."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]


def _export(model_cfg, directory: Path):
    import jax
    from _train_tiny import synthetic
    from flax import nnx

    from tinyformer_jax.models.hybrid import Hybrid
    from tinyformer_jax.quant.calibrate import calibrate
    from tinyformer_jax.quant.fold import fold_batchnorm
    from tinyformer_jax.export.onnx_export import export_qdq
    from tinyformer_jax.train.loop import predict
    from tinyformer_jax.data.augment import normalize

    data = synthetic(64, 5)
    m = Hybrid(model_cfg, rngs=nnx.Rngs(0))
    m.train()
    m(normalize(data.images[:32]))
    qat = fold_batchnorm(m)
    calibrate(qat, data.images, batches=4, batch_size=16, seed=0)
    path = export_qdq(qat, directory / "tiny_qdq.onnx")
    x = np.asarray(jax.jit(normalize)(data.images[:24]))
    return path, x, predict(qat, data.images[:24])


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    from _train_tiny import MODEL

    return _export(MODEL, tmp_path_factory.mktemp("export"))


def test_export_is_standard_qdq_and_matches_fake_quant(exported):
    from sparse_engine import verify

    path, x, fq = exported
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["Identity"] == 0 and ops["ReduceMean"] == 0 and ops["Einsum"] == 0
    assert ops["QuantizeLinear"] >= 20 and ops["LayerNormalization"] == 2 and ops["Softmax"] == 1
    weights = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
               and any(i.name == n.input[0] for i in model.graph.initializer)]
    inits = {i.name: i for i in model.graph.initializer}
    assert all(inits[n.input[0]].data_type in (onnx.TensorProto.INT8, onnx.TensorProto.INT32) for n in weights)
    sess = verify.onnxruntime_session(path)
    got = np.concatenate([sess.run(None, {"image": x[i:i + 1]})[0] for i in range(len(x))])
    out_q = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == "logits")
    step = float(onnx.numpy_helper.to_array(inits[out_q.input[1]]))
    # same quantization points and scales: only float rounding inside ops differs (a few output steps)
    assert np.max(np.abs(got - fq)) <= 4 * step + 1e-6
    assert np.mean(got.argmax(1) == fq.argmax(1)) >= 0.9


def test_export_compiles_and_runs_bit_exactly_on_cortex_m7(exported, tmp_path):
    from sparse_engine import profiles
    from sparse_engine.compiler import compile_model

    path, x, _ = exported
    np.save(tmp_path / "x.npy", x[:2])
    rep = compile_model(path, tmp_path / "c", "cortex-m7", profiles.get("stm32f746"), verify_ladder=True,
                        n_random=1, input_file=tmp_path / "x.npy", progress=lambda *_: None).report
    exact = [r for r in rep["verification"] if "exact" in r]
    assert len(exact) == 3 and all(r["exact"] for r in exact)
    ort_rung = next(r for r in rep["verification"] if r["rung"] == "onnxruntime")
    assert ort_rung["max_abs_diff"] <= 4
    kinds = Counter(layer["kind"] for layer in rep["layers"])
    # the exported attention (2-D tokens, Gemm projections) is recognized as one fused layer
    assert kinds["layernorm"] == 2 and kinds["attention"] == 1 and kinds["softmax"] == 0 and kinds["matmul"] == 0


def test_wide_heads_export_with_fwsa_deploy_simulation_equals_the_firmware(tmp_path):
    """Heads as wide as the embedding (P = E): FWSA is chosen, calibrated on real inputs, and
    the graph compile returns (the int8 accuracy's model) gives the firmware's bits."""
    from _train_tiny import MODEL

    from sparse_engine import profiles, toolchain
    from sparse_engine.qmath import quantize
    from tinyformer_jax import deploy

    cfg = MODEL.copy_and_resolve_references()
    cfg.blocks = tuple(b + (b[1],) if b[0] == "vit" else b for b in cfg.blocks)  # head dim = embedding dim
    path, x, _ = _export(cfg, tmp_path)
    compiled = deploy.compile_verified(path, tmp_path / "c", "stm32f746", x[:2], calibration=x[8:],
                                       progress=lambda *_: None)
    rep = compiled.report
    (block,) = rep["attention"]
    assert block["fwsa"] and block["head_dim"] == block["dim"] == 16 and block["heads"] == 2
    assert block["params_fwsa"] < block["params_unfused"]
    assert all(r["exact"] for r in rep["verification"] if "exact" in r)
    g = compiled.graph
    assert any(op.kind == "attention" and op.params["fwsa"] is not None for op in g.ops)
    sim = deploy.simulate(g, x[:4], workers=1)
    t = g.tensors[g.input]
    m7 = profiles.get("stm32f746")
    mcu = toolchain.run_qemu(toolchain.build_mcu(tmp_path / "c", tmp_path / "m7", m7), m7,
                             quantize(x[:4].reshape(4, -1), t.scale, t.zero_point), sim.shape[1])
    np.testing.assert_array_equal(mcu.outputs, sim)


def test_patch_2_block_deploys_as_one_attention_over_four_sequences(tmp_path):
    """A MobileViT block with 2x2 patches (16x16 map: 4 sequences of 64 tokens): the export keeps
    onnxruntime at the fake-quant model's outputs, SparseEngine fuses it into one attention op of
    4 sequences (FWSA, head dim = embedding dim), and the ladder is bit-exact."""
    from sparse_engine import verify
    from _train_tiny import MODEL

    from conftest import record
    from tinyformer_jax import deploy

    cfg = MODEL.copy_and_resolve_references()
    cfg.blocks = tuple(b + (b[1], 2) if b[0] == "vit" else b for b in cfg.blocks)
    path, x, fq = _export(cfg, tmp_path)
    sess = verify.onnxruntime_session(path)
    got = np.concatenate([sess.run(None, {"image": x[i:i + 1]})[0] for i in range(len(x))])
    assert np.mean(got.argmax(1) == fq.argmax(1)) >= 0.9
    rep = deploy.compile_verified(path, tmp_path / "c", "stm32f746", x[:2], calibration=x[8:],
                                  progress=lambda *_: None).report
    (block,) = rep["attention"]
    assert (block["groups"], block["seq"], block["heads"], block["fwsa"]) == (4, 64, 2, True)
    assert all(r["exact"] for r in rep["verification"] if "exact" in r)
    record("patch 2 hybrid", dict(instructions=rep["totals"]["instructions"], attention=block.get("instructions"),
                                  arena=rep["totals"]["arena_bytes"], flash=rep["totals"]["flash_bytes"]))
