"""Training: resume after a kill, or after a stop at the time limit, equals an uninterrupted run; a
data-parallel step on 8 emulated
CPU devices equals the 1-device step; BatchNorm folding keeps the function."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import with_xla_flags

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "tests" / "jax" / "_train_tiny.py"
STEPS = 40


def _env(devices: int = 1) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu")
    env = with_xla_flags(env, f"--xla_force_host_platform_device_count={devices}")
    return env


def _run(workdir: Path, steps: int, devices: int = 1, use: int | None = None, status: int = 0,
         env: dict | None = None) -> str:
    cmd = [sys.executable, str(HELPER), str(workdir), str(steps)] + ([str(use)] if use else [])
    out = subprocess.run(cmd, env=_env(devices) | (env or {}), capture_output=True, text=True, timeout=600)
    assert out.returncode == status, out.stderr[-3000:]
    return out.stdout


def _metrics(workdir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (workdir / "float" / "metrics.jsonl").read_text().splitlines()]


def _without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "images_per_second"} for r in rows]


def _checkpoint_steps(workdir: Path) -> list[int]:
    d = workdir / "float" / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _run(whole, STEPS)
    proc = subprocess.Popen([sys.executable, str(HELPER), str(killed), str(STEPS)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and not any(s >= 6 for s in _checkpoint_steps(killed)):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = _checkpoint_steps(killed)
    assert at_kill and max(at_kill) < STEPS, f"the run finished before the kill: {at_kill}"
    out = _run(killed, STEPS)
    resumed_from = int(out.split("resumed_from=")[1].split()[0])
    assert 0 < resumed_from < STEPS
    a, b = (_without_timing(_metrics(w)) for w in (whole, killed))
    assert [r["step"] for r in b] == [r["step"] for r in a], "one metrics row per step after the resume"
    assert a == b
    assert a[-1]["step"] == STEPS and "test_accuracy" in a[-1]
    fa, fb = np.load(whole / "final.npz"), np.load(killed / "final.npz")
    for k in fa.files:
        np.testing.assert_array_equal(fa[k], fb[k])


@pytest.mark.slow
def test_time_limit_stops_at_a_checkpoint_and_the_rerun_resumes_exactly(tmp_path):
    """A limit that has passed before the first step: each run trains one step, saves it and stops
    with status 75; the stages together equal the uninterrupted run (checkpoints every 2 steps), the
    metrics row that spans a stop included (its running sums travel in the checkpoint)."""
    steps, whole, parts, rows = 2, tmp_path / "whole", tmp_path / "parts", dict(LOG_EVERY="2")
    _run(whole, steps, env=rows)
    for k in range(1, steps):
        out = _run(parts, steps, status=75, env=dict(TIME_LIMIT="1e-9") | rows)
        assert f"stopped: time limit reached: float saved at step {k}/{steps}; rerun the same command" in out
        assert max(_checkpoint_steps(parts)) == k
    assert f"resumed_from={steps - 1}" in _run(parts, steps, env=dict(TIME_LIMIT="1e-9") | rows)
    a, b = (_without_timing(_metrics(w)) for w in (whole, parts))
    assert a == b and a[-1]["step"] == steps and "train_accuracy" in a[0]
    fa, fb = np.load(whole / "final.npz"), np.load(parts / "final.npz")
    for k in fa.files:
        np.testing.assert_array_equal(fa[k], fb[k])


def _two_processes(workdir: Path, steps: int, status: int, env: dict | None = None) -> list[str]:
    from conftest import run_processes

    runs = run_processes(ROOT / "tests" / "jax" / "_train_distributed.py", [[str(i), "2", str(workdir), str(steps)]
                                                                    for i in range(2)], _env(1) | (env or {}))
    assert all(code == status for code, _, _ in runs), [err[-3000:] for _, _, err in runs]
    return [out for _, out, _ in runs]


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_two_devices_and_stop_together(tmp_path):
    """Multi-host training on localhost: 2 jax.distributed processes (one CPU device each) train
    data-parallel exactly as one process with 2 devices does; a time limit stops both at the same
    step (the first process decides), and both resume from the checkpoint they wrote together."""
    steps, one, two = 2, tmp_path / "one", tmp_path / "two"
    _run(one, steps, devices=2, use=2)
    outs = _two_processes(two, steps, 75, dict(TIME_LIMIT="1e-9"))
    assert all("time limit reached: float saved at step 1/2" in o for o in outs), outs
    assert _checkpoint_steps(two) == [1]
    outs = _two_processes(two, steps, 0)
    assert "resumed_from=1" in outs[0] and "devices=2" in outs[0]
    a, b = (_without_timing(_metrics(w)) for w in (one, two))
    assert a == b, "one metrics row per step, written by the first process"
    fa, fb = np.load(one / "final.npz"), np.load(two / "final.npz")
    for k in fa.files:
        np.testing.assert_array_equal(fa[k], fb[k])


@pytest.mark.slow
def test_eight_device_step_equals_one_device(tmp_path):
    assert "devices=8" in _run(tmp_path / "eight", 1, devices=8, use=8)
    assert "devices=1" in _run(tmp_path / "one", 1, devices=8, use=1)
    fa, fb = np.load(tmp_path / "eight" / "final.npz"), np.load(tmp_path / "one" / "final.npz")
    assert len(fa.files) == len(fb.files) > 10
    for k in fa.files:
        np.testing.assert_allclose(fa[k], fb[k], rtol=2e-5, atol=2e-6)
    la, lb = _metrics(tmp_path / "eight")[0], _metrics(tmp_path / "one")[0]
    assert la["loss"] == pytest.approx(lb["loss"], rel=1e-5)


def test_batchnorm_folding_keeps_the_function():
    import jax
    from flax import nnx

    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]
    from _train_tiny import MODEL

    from tinyformer_jax.models.hybrid import Hybrid
    from tinyformer_jax.quant.fold import export_copy, fold_batchnorm

    m = Hybrid(MODEL, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (8, 3, 32, 32))
    m.train()
    m(x)  # moves the running statistics away from (0, 1)
    m.eval()
    f = fold_batchnorm(m)
    assert all(c.bn is None for _, c in nnx.iter_graph(f) if hasattr(c, "bn"))
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(m(x)), rtol=1e-4, atol=1e-4)
    e = export_copy(f)  # attention scale folded into W_Q, grouped depthwise conv, 2-D tokens
    np.testing.assert_allclose(np.asarray(e(x[:1])), np.asarray(f(x[:1])), rtol=1e-4, atol=1e-4)
