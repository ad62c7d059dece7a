"""The supernet trains a few steps on CPU, and a sampled path's logits equal
those of the same architecture built alone (`Hybrid`) with the shared weights copied in."""
from __future__ import annotations

import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]

CFG = ml_collections.ConfigDict(dict(
    seed=0,
    model=dict(stem=8, modules=(("mbv2", 8), ("downsample", 16), ("mbv2", 16), ("transformer",), ("pool",),
                                ("downsample", 24)),
               mbv2=((2, 3), (3, 3), (3, 5)), transformer=((8, 1, 1), (16, 1, 1, 2), (16, 2, 2)),  # 1: patch 2
               head_dim=8, mlp_ratio=2, downsample_expand=2, head=32, classes=10),
    train=dict(epochs=1.0, steps=3, batch_size=16, lr=3e-3, weight_decay=0.01, warmup_steps=1, label_smoothing=0.1,
               augment=True, log_every=1, ckpt_every=3, random_paths=2)))
# fewer modules, compiled faster: for the tests that train or differentiate the whole supernet but
# do not compare paths (a 5x5 depthwise choice, the downsample as the second module)
SMALL = CFG.copy_and_resolve_references()
SMALL.model.update(modules=(("mbv2", 8), ("downsample", 16), ("transformer",), ("pool",)),
                   mbv2=((2, 3), (3, 5)), transformer=((8, 1, 1), (16, 1, 1)))


@pytest.fixture(scope="session")
def perturbed(tmp_path_factory):
    """A supernet whose every parameter is moved off its initial value by random noise (as
    training would, but without compiling a training step: 120 s per test process), so that a
    weight the path or the copy forgets cannot match by an equal initializer (BatchNorm's ones and
    zeros); and 64 synthetic images."""
    import jax
    from _train_tiny import synthetic
    from flax import nnx

    from tinyformer_jax.models.supernet import Supernet

    model = Supernet(CFG.model, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        w = np.asarray(v[...])
        v[...] = jax.numpy.asarray(w + rng.normal(0.0, 0.1 * (np.std(w) or 1.0), w.shape).astype(w.dtype))
    return model, synthetic(64, 3)


@pytest.mark.slow(seconds=70)
def test_training_updates_every_candidates_weights(tmp_path):
    from _train_tiny import synthetic
    from flax import nnx

    from tinyformer_jax.models.supernet import Supernet
    from tinyformer_jax.train.supernet import train_supernet

    model = Supernet(SMALL.model, rngs=nnx.Rngs(0))
    before = {k: np.asarray(v[...]) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    res = train_supernet(model, SMALL, synthetic(64, 3), synthetic(32, 4), tmp_path, 0, progress=False)
    assert res.steps == 3
    after = {k: np.asarray(v[...]) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    # the sandwich covers the largest and smallest path each step: both downsample branches and
    # both ends of every masked tensor get gradients
    moved = [k for k in before if not np.array_equal(before[k], after[k])]
    assert any("conv" in map(str, k) for k in moved) and any("ir" in map(str, k) for k in moved)
    assert len(moved) >= 0.9 * len(before)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["smallest", "largest", "patch2", "random0", "random1", "random2"])
def test_path_equals_standalone_model_with_copied_weights(perturbed, which):
    from flax import nnx

    from tinyformer_jax.data.augment import normalize
    from tinyformer_jax.models.hybrid import Hybrid
    from tinyformer_jax.models.supernet import copy_shared, num_candidates, standalone_config
    from tinyformer_jax.train.supernet import path_logits, recalibrate_bn

    model, data = perturbed
    counts = num_candidates(CFG.model)
    rng = np.random.default_rng(int(which[-1]) if which.startswith("random") else 0)
    patch2 = np.where(np.arange(len(counts)) == 3, 1, counts - 1)  # the transformer with 2x2 patches
    path = dict(smallest=counts * 0, largest=counts - 1, patch2=patch2).get(which, rng.integers(0, counts))
    recalibrate_bn(model, path, data.images[:32])
    got = path_logits(model, path, data.images[32:])
    alone = Hybrid(standalone_config(CFG.model, path), rngs=nnx.Rngs(99))
    copy_shared(model, path, alone)
    alone.eval()
    want = np.asarray(alone(normalize(data.images[32:])))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(want).max() > 1e-2  # not trivially zero
    # and the standalone model is really the smaller one: its parameters are a strict subset
    n_alone = sum(v[...].size for _, v in nnx.to_flat_state(nnx.state(alone, nnx.Param)))
    n_super = sum(v[...].size for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param)))
    assert n_alone < n_super
    other = np.where(path == counts - 1, 0, path + 1)  # every module changed
    recalibrate_bn(model, other, data.images[:32])
    assert not np.allclose(path_logits(model, other, data.images[32:]), got, atol=1e-4)


@pytest.mark.parametrize("dispatch", ["mask", "switch"])
@pytest.mark.parametrize("which", ["largest", "patch2", "smallest", "random3"])
def test_recalibrated_path_equals_standalone_recalibrated_alone(perturbed, dispatch, which):
    """BatchNorm recalibration of a path sets exactly the statistics the standalone model gets
    from the same batch, in both dispatch forms (the patch sizes share the MobileViT block's
    BatchNorms: a patch-1 path must not keep the patch-2 pass's statistics)."""
    import jax.numpy as jnp
    from flax import nnx

    from tinyformer_jax.data.augment import normalize
    from tinyformer_jax.models.hybrid import Hybrid
    from tinyformer_jax.models.supernet import copy_shared, dispatching, num_candidates, standalone_config
    from tinyformer_jax.train.supernet import path_logits, recalibrate_bn, recalibrating

    model, data = perturbed
    counts = num_candidates(CFG.model)
    patch2 = np.where(np.arange(len(counts)) == 3, 1, counts - 1)
    path = dict(smallest=counts * 0, largest=counts - 1, patch2=patch2).get(
        which, np.random.default_rng(3).integers(0, counts))
    calib, images = data.images[:32], data.images[32:]
    alone = Hybrid(standalone_config(CFG.model, path), rngs=nnx.Rngs(99))
    copy_shared(model, path, alone)
    with recalibrating(alone):
        alone(normalize(calib))
    want = np.asarray(alone(normalize(images)))
    with dispatching(model, dispatch):
        recalibrate_bn(model, np.where(path == 0, counts - 1, 0), calib)  # stale statistics first
        recalibrate_bn(model, path, calib)
        got = path_logits(model, path, images)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert [m.dispatch for _, m in nnx.iter_graph(model) if hasattr(m, "dispatch")] == ["mask"] * len(counts)
    assert jnp.abs(want).max() > 1e-2


def test_one_compiled_function_serves_every_path(perturbed):
    """The path is data: tracing happens once for all paths."""
    import jax.numpy as jnp
    from flax import nnx

    from tinyformer_jax.data.augment import normalize
    from tinyformer_jax.models.supernet import num_candidates

    model, data = perturbed
    traces = []

    @nnx.jit
    def forward(m, x, path):
        traces.append(1)
        return m(x, path)

    counts = num_candidates(CFG.model)
    rng = np.random.default_rng(5)
    x = normalize(data.images[:8])
    outs = [np.asarray(forward(model, x, jnp.asarray(rng.integers(0, counts), jnp.int32))) for _ in range(5)]
    assert len(traces) == 1 and len({o.tobytes() for o in outs}) > 1


def test_sampling_is_reproducible_and_sandwiched():
    from tinyformer_jax.models.supernet import num_candidates
    from tinyformer_jax.train.supernet import sample_paths

    counts = num_candidates(CFG.model)
    a, b = sample_paths(counts, 0, 7, 3), sample_paths(counts, 0, 7, 3)
    np.testing.assert_array_equal(a, b)
    assert (a[0] == counts - 1).all() and (a[1] == 0).all() and a.shape == (5, len(counts))
    assert not np.array_equal(sample_paths(counts, 0, 8, 3), a)
    assert (a >= 0).all() and (a < counts).all()


def test_bad_path_and_config_are_one_clear_error():
    from flax import nnx

    from tinyformer_jax.errors import TinyFormerError
    from tinyformer_jax.models.supernet import Supernet, standalone_config

    with pytest.raises(TinyFormerError, match="path"):
        standalone_config(CFG.model, [0, 0, 9, 0, 0, 0])
    bad = CFG.model.copy_and_resolve_references()
    bad.modules = (("conv", 8),)
    with pytest.raises(TinyFormerError, match="choice module 'conv'"):
        Supernet(bad, rngs=nnx.Rngs(0))


@pytest.mark.slow(seconds=40)
def test_run_trains_evaluates_paths_and_resumes(tmp_path):
    from test_data import _write_batches

    from tinyformer_jax.supernet_run import run

    _write_batches(tmp_path / "data" / "cifar-10-batches-py")
    cfg = SMALL.copy_and_resolve_references()
    cfg.data = dict(dir="", limit_train=0, check_sizes=False)
    cfg.train.update(batch_size=8, steps=2, ckpt_every=2)
    cfg.eval = dict(random_paths=2, calib_images=8, seed=1, method="map")
    f = run(cfg, tmp_path / "w", str(tmp_path / "data"), progress=False)
    assert [p["name"] for p in f["paths"]] == ["largest", "smallest", "random 0", "random 1"]
    assert all(0.0 <= p["test_accuracy"] <= 1.0 for p in f["paths"]) and f["steps"] == 2
    assert f["paths"][1]["blocks"][1] == ["conv", 16, 3, 2]  # the smallest path's downsample is the plain conv
    again = run(cfg, tmp_path / "w", str(tmp_path / "data"), progress=False)
    assert again["resumed_from"] == 2 and [p["test_accuracy"] for p in again["paths"]] == \
        [p["test_accuracy"] for p in f["paths"]]



def test_patch_unfold_groups_one_position_per_sequence_and_folds_back():
    import jax.numpy as jnp
    from flax import nnx

    from tinyformer_jax.models.hybrid import MobileViTBlock

    blk = MobileViTBlock(4, 3, 1, 1, 2, patch=2, rngs=nnx.Rngs(0))
    y = jnp.arange(2 * 3 * 4 * 6, dtype=jnp.float32).reshape(2, 3, 4, 6)
    t = blk._unfold(y, 2)
    assert t.shape == (8, 6, 3)
    for b, pi, pj, hh, ww, e in [(0, 0, 0, 0, 0, 0), (1, 1, 0, 1, 2, 2), (0, 0, 1, 1, 1, 1), (1, 1, 1, 0, 2, 0)]:
        assert t[b * 4 + pi * 2 + pj, hh * 3 + ww, e] == y[b, e, hh * 2 + pi, ww * 2 + pj]
    np.testing.assert_array_equal(blk._fold(t, y.shape, 2), y)


@pytest.mark.slow
def test_conv_forms_compute_the_same_supernet():
    """--conv_form: unrolled (shifted multiply-adds, einsum) and lax (conv_general_dilated) give the
    same logits and gradients for a path with 5x5 depthwise kernels; lax traces the depthwise and
    1x1 convolutions to lax.conv too (unrolled only the full 3x3 ones)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from tinyformer_jax.models import layers
    from tinyformer_jax.models.supernet import Supernet, num_candidates

    model = Supernet(SMALL.model, rngs=nnx.Rngs(0))
    model.eval()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 32, 32)), jnp.float32)
    path = jnp.asarray(num_candidates(SMALL.model) - 1, jnp.int32)

    def loss(m):
        return jnp.sum(m(x, path) ** 2)

    out = {}
    try:
        for form in layers.CONV_FORMS:
            layers.set_conv_form(form)
            graphdef, state = nnx.split(model)
            jaxpr = str(jax.make_jaxpr(lambda st, x: nnx.merge(graphdef, st)(x, path))(state, x))
            fwd = jax.jit(lambda st: nnx.merge(graphdef, st)(x, path))  # traced anew per form
            grad = jax.jit(lambda st: nnx.grad(loss)(nnx.merge(graphdef, st)))
            out[form] = (np.asarray(fwd(state)), grad(state), jaxpr.count("conv_general_dilated"))
    finally:
        layers.set_conv_form("unrolled")
    (y_u, g_u, conv_u), (y_l, g_l, conv_l) = out["unrolled"], out["lax"]
    assert conv_l > conv_u
    np.testing.assert_allclose(y_l, y_u, rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves(g_u), jax.tree.leaves(g_l)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-3, atol=1e-3)
    with pytest.raises(Exception, match="--conv_form=cudnn: choose one of unrolled, lax"):
        layers.set_conv_form("cudnn")


@pytest.mark.slow(seconds=60)
def test_bench_train_step_measures_both_forms(tmp_path):
    from tinyformer_jax.bench.__main__ import main
    from tinyformer_jax.models import layers

    cfg = tmp_path / "tiny.py"
    cfg.write_text("import ml_collections\n\n\ndef get_config():\n"
                   f"    return ml_collections.ConfigDict({SMALL.to_dict()!r})\n")
    assert main(["train_step", "--config", str(cfg), "--batch", "4", "--steps", "1",
                 "--out", str(tmp_path / "ts.json")]) == 0
    import json

    r = json.loads((tmp_path / "ts.json").read_text())
    assert [row["form"] for row in r["rows"]] == ["unrolled", "lax"] and r["paths_per_step"] == 4
    assert all(row["images_per_second"] > 0 and np.isfinite(row["first_loss"]) for row in r["rows"])
    assert r["rows"][1]["first_loss_diff_vs_unrolled"] < 1e-3 * abs(r["rows"][0]["first_loss"])
    assert layers._CONV_FORM == "unrolled"  # the bench leaves the form as it found it


def test_blocks_described_with_their_feature_maps():
    from tinyformer_jax.models.hybrid import describe_blocks

    rows = describe_blocks((("ir", 4, 24, 2, 5), ("vit", 32, 2, 2, 2, 0, 2), ("pool", "max"), ("conv", 48, 3, 2)), 16)
    assert rows == [
        ("inverted residual: expand x4, 5x5 depthwise, stride 2, 24 channels", "16x16x24"),
        ("MobileViT: embedding 32, 2 heads of 16, 2 layer(s), MLP x2, 2x2 patches: 4 sequences of 64 tokens",
         "16x16x24"),
        ("2x2 max pooling", "8x8x24"),
        ("conv 3x3, stride 2, 48 channels", "4x4x48")]
