"""Batched candidate evaluation. Every form (vmap, lax.map, loop, sharded over 8
emulated CPU devices, and sharded over 2 jax.distributed processes) gives each path's logits
after its own BatchNorm recalibration, as the sequential reference does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import with_xla_flags

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]


def _reference(model, paths, calib, images):
    from tinyformer_jax.train.supernet import path_logits, recalibrate_bn

    out = []
    for p in paths:
        recalibrate_bn(model, p, calib)
        out.append(path_logits(model, p, images))
    return np.stack(out)


@pytest.fixture(scope="session")
def case_and_ref():
    from _candidates_case import case

    model, paths, calib, images = case()
    return (model, paths, calib, images), _reference(model, paths, calib, images)


@pytest.mark.parametrize("method", ["vmap", "map", "loop", "shard"])
def test_every_form_equals_the_sequential_reference(case_and_ref, method):
    from tinyformer_jax.train import candidates

    (model, paths, calib, images), ref = case_and_ref
    got = candidates.logits(model, paths, calib, images, method)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert not np.allclose(ref[0], ref[1], atol=1e-3)  # the paths differ


@pytest.mark.parametrize("method", ["vmap", "map", "loop", "shard"])
def test_masked_paths_equal_the_reference_with_zeroed_weights(case_and_ref, method):
    """Per-path weight masks (SparseNAS candidates): each path's logits equal the sequential
    reference on a copy of the supernet whose weights were multiplied by that path's masks."""
    from flax import nnx

    from tinyformer_jax.train import candidates

    (model, paths, calib, images), _ = case_and_ref
    rng = np.random.default_rng(1)
    weights = [(k, v) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param)) if v[...].ndim >= 2]
    masks = [{k: (rng.random(v[...].shape) < 0.5).astype(np.float32) for k, v in weights} for _ in paths]
    got = candidates.evaluator(model, paths, calib, method, masks=masks)(images)
    for i, (p, mk) in enumerate(zip(paths, masks)):
        pruned = nnx.clone(model)
        nnx.update(pruned, nnx.from_flat_state([(k, v.replace(v[...] * mk[k])) for k, v in
                                                nnx.to_flat_state(nnx.state(pruned, nnx.Param)) if k in mk]))
        np.testing.assert_allclose(got[i], _reference(pruned, p[None], calib, images)[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(got, candidates.logits(model, paths, calib, images, method), atol=1e-3)


def test_loop_form_compiles_once_for_masks_of_different_weights(case_and_ref):
    """SparseNAS scores candidates one by one, each masking other weights of a supernet restored
    from a checkpoint (arrays committed to a device): the loop form's recalibration and logits
    compile once for all of them, not once per candidate."""
    import jax
    from flax import nnx

    from tinyformer_jax.train import candidates

    (model, paths, calib, images), _ = case_and_ref
    restored = nnx.clone(model)
    for _, v in nnx.to_flat_state(nnx.state(restored)):
        v[...] = jax.device_put(v[...], jax.devices()[0])
    weights = [(k, v[...].shape) for k, v in nnx.to_flat_state(nnx.state(restored, nnx.Param)) if v[...].ndim >= 2]
    compiled = []
    candidates._compiled.cache_clear()  # fresh jitted functions, whatever ran before

    def listen(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration" and "_one" in kw.get("fun_name", ""):
            compiled.append(kw["fun_name"])
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        for i, p in enumerate(paths):  # candidate i masks every (i+1)-th weight: different key sets
            masks = {k: np.ones(shape, np.float32) for k, shape in weights[i::i + 1]}
            candidates.evaluator(restored, p[None], calib, "loop", masks=[masks])(images)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert sorted(compiled) == ["jit(_logits_one)", "jit(_recalibrate_one)"]


def test_bad_method_is_one_clear_error(case_and_ref):
    from tinyformer_jax.errors import TinyFormerError
    from tinyformer_jax.train import candidates

    (model, paths, calib, images), _ = case_and_ref
    with pytest.raises(TinyFormerError, match="pmap"):
        candidates.logits(model, paths, calib, images, "pmap")


@pytest.mark.slow
def test_sharded_over_8_emulated_devices_and_accuracy_per_path(tmp_path):
    """A fresh process with 8 emulated CPU devices: 8 paths, one per device, equal the loop; the
    accuracy per path over test chunks (labels = path 0's predictions, so path 0 scores 1.0)."""
    code = (
        "import sys; sys.path[:0] = [%r, %r]\n"
        "import numpy as np, jax\n"
        "from _candidates_case import case\n"
        "from tinyformer_jax.train import candidates\n"
        "from tinyformer_jax.data.cifar10 import Split\n"
        "model, paths, calib, images = case()\n"
        "assert jax.device_count() == 8\n"
        "paths8 = np.concatenate([paths, paths[::-1]])\n"
        "got = candidates.logits(model, paths8, calib, images, 'shard')\n"
        "ref = candidates.logits(model, paths8, calib, images, 'loop')\n"
        "np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)\n"
        "labels = ref[0].argmax(-1)\n"
        "acc = candidates.evaluate(model, paths8, calib, Split(images, labels), 'shard', batch=16)\n"
        "assert acc[0] == 1.0 and acc.shape == (8,) and ((0 <= acc) & (acc <= 1)).all(), acc\n"
        "print('ok', acc)\n" % (str(ROOT), str(ROOT / "tests" / "jax")))
    env = dict(with_xla_flags(os.environ, "--xla_force_host_platform_device_count=8"), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_with_jax_distributed_equal_one_process(case_and_ref, tmp_path):
    """Done-when 3: 2 processes on localhost (jax.distributed, one CPU device each) evaluate the
    paths sharded over both; the gathered logits equal the single-process ones."""
    from conftest import run_processes

    _, ref = case_and_ref
    out = tmp_path / "logits.npy"
    env = dict(with_xla_flags(os.environ, "--xla_force_host_platform_device_count=1"), JAX_PLATFORMS="cpu")
    runs = run_processes(ROOT / "tests" / "jax" / "_distributed_eval.py", [[str(i), "2", str(out)] for i in range(2)],
                         env)
    assert all(status == 0 for status, _, _ in runs), [err[-2000:] for _, _, err in runs]
    np.testing.assert_allclose(np.load(out), ref, rtol=1e-5, atol=1e-5)
