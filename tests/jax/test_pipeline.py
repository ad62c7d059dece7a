"""The whole first end-to-end run on a tiny synthetic CIFAR-10 folder: train, QAT, export,
compile --verify (bit-exact on the host and the Cortex-M7), int8 accuracy, summary; and the
launch script's one-line error for a missing data set."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparse_engine import cycles

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]


def tiny_config():
    from _train_tiny import MODEL

    from configs.hybrid_cifar10_320kb import get_config

    c = get_config("cpu")
    c.data.check_sizes = False
    c.model = MODEL
    c.train.update(steps=4, batch_size=8, ckpt_every=2, log_every=2, warmup_steps=1)
    c.qat.update(steps=2, batch_size=8, ckpt_every=2, log_every=1, warmup_steps=1, calib_batches=2)
    c.deploy.update(verify_images=1, workers=1)
    return c


@pytest.mark.slow
def test_pipeline_end_to_end_on_tiny_data(tmp_path):
    from test_data import _write_batches

    from tinyformer_jax.hybrid_run import run

    _write_batches(tmp_path / "data" / "cifar-10-batches-py")
    f = run(tiny_config(), tmp_path / "work", str(tmp_path / "data"), progress=False)
    assert f["test_images"] == 4 and f["train_images"] == 20
    assert all(r["exact"] for r in f["ladder"] if "exact" in r) and len(f["ladder"]) == 5
    assert f["flash_bytes"] > 0 and f["sram_bytes"] > 0 and f["instructions_per_inference"] > 100_000
    for key in ("float_accuracy", "fake_quant_accuracy", "int8_simulator_accuracy", "onnxruntime_accuracy"):
        assert 0.0 <= f[key] <= 1.0
    saved = json.loads((tmp_path / "work" / "summary.json").read_text())
    assert saved["instructions_per_inference"] == f["instructions_per_inference"]
    logits = np.load(f["int8_logits"])  # the int8 simulator's outputs behind int8_simulator_accuracy
    assert logits.shape == (4, 10) and np.issubdtype(logits.dtype, np.integer)
    assert np.abs(logits).max() <= 128 and not list((tmp_path / "work").glob(".*.tmp"))
    assert "int8 accuracy, SparseEngine simulator" in (tmp_path / "work" / "summary.md").read_text()
    if cycles.unavailable() is None:  # the firmware's estimated cycles reach the summary
        assert f["cycles_estimate"] > 0.2 * f["instructions_per_inference"]
        assert f"{f['cycles_estimate']:,}" in (tmp_path / "work" / "summary.md").read_text()
    assert (tmp_path / "work" / "engine" / "model.c").exists()
    assert list((tmp_path / "work" / "tensorboard" / "float").glob("events.out.tfevents.*"))
    again = run(tiny_config(), tmp_path / "work", str(tmp_path / "data"), progress=False)
    assert again["resumed_from"] == {"float": 4, "qat": 2}  # finished stages only restore
    assert again["fake_quant_accuracy"] == f["fake_quant_accuracy"]


@pytest.mark.parametrize("script,config", [("run_hybrid.py", "hybrid_cifar10_320kb.py"),
                                           ("train_supernet.py", "supernet_cifar10.py")])
def test_launch_reports_missing_data_in_one_line(tmp_path, script, config):
    out = subprocess.run([sys.executable, str(ROOT / "launch" / script), f"--config={ROOT / 'configs' / config}:cpu",
                          f"--workdir={tmp_path / 'w'}", f"--data_dir={tmp_path / 'none'}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CIFAR-10 not found:") and str(tmp_path / "none") in last


def test_bad_model_config_is_one_clear_error():
    import ml_collections
    from flax import nnx

    from tinyformer_jax.errors import TinyFormerError
    from tinyformer_jax.models.hybrid import Hybrid

    cfg = ml_collections.ConfigDict(dict(stem=8, blocks=(("vit", 30, 4, 1, 2),), head=16, classes=10))
    with pytest.raises(TinyFormerError, match="vit embedding dim 30 is not a multiple of heads 4"):
        Hybrid(cfg, rngs=nnx.Rngs(0))
    cfg.blocks = (("se", 1, 8, 1),)
    with pytest.raises(TinyFormerError, match="unknown block kind 'se'"):
        Hybrid(cfg, rngs=nnx.Rngs(0))
