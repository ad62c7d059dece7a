"""Issue 32: the output folder is never lost, never shared, never half-written; bad flags and
inputs end in one `error:` line (docs/decisions.md D23)."""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, quantized, run_cli

from sparse_engine import cli, outdir, toolchain
from sparse_engine.errors import EngineError

CONV = dict(op="conv", shape=(1, 3, 8, 8), cout=4)


@pytest.fixture
def model(tmp_path) -> Path:
    return quantized(CONV, tmp_path, "conv")


def test_model_folder_is_not_replaced(tmp_path):
    folder = tmp_path / "dir"
    folder.mkdir()
    m = quantized(CONV, folder, "m")
    (folder / "notes.txt").write_text("keep")
    proc = run_cli(m, folder, target="host")
    assert_clean_failure(proc, folder, "holds", "m.onnx", out_existed=True)
    assert (folder / "notes.txt").read_text() == "keep" and m.exists()


@pytest.mark.parametrize("out", [".", "", ".."])
def test_working_folder_and_above_are_refused(tmp_path, model, out):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("keep")
    proc = run_cli(model, out, target="host", cwd=work)
    assert proc.returncode == 1 and "working folder" in proc.stderr, proc.stderr
    assert (work / "notes.txt").read_text() == "keep" and model.exists()


def test_input_inside_out_is_refused(tmp_path, model):
    out = tmp_path / "out"
    out.mkdir()
    np.save(out / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    proc = run_cli(model, out, target="host", args=("--verify", "--input", out / "x.npy"))
    assert_clean_failure(proc, out, "x.npy", "reads", out_existed=True)
    assert (out / "x.npy").exists()


def test_only_empty_or_marked_folders_are_replaced(tmp_path, model):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert_clean_failure(run_cli(model, out, target="host"), out, "not empty", outdir.MARKER, out_existed=True)
    (out / "mine.txt").unlink()
    assert run_cli(model, out, target="host").returncode == 0  # empty: accepted
    assert (out / outdir.MARKER).exists() and (out / "model.c").exists()
    (out / "model.c").write_text("old")
    assert run_cli(model, out, target="host").returncode == 0  # written by SparseEngine: replaced
    assert (out / "model.c").read_text() != "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.float.onnx", "conv.onnx", "out"]


def test_out_that_is_a_file_fails_before_the_compile(tmp_path, model):
    (tmp_path / "f").write_text("x")
    assert_clean_failure(run_cli(model, tmp_path / "f"), tmp_path / "f", "is a file", out_existed=True)
    proc = run_cli(model, tmp_path / "f" / "out")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "f is a file" in proc.stderr, proc.stderr
    assert (tmp_path / "f").read_text() == "x"


def test_output_folder_mode_follows_the_umask(tmp_path, model):
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert run_cli(model, out, target="host").returncode == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755


def test_a_second_compile_into_a_locked_folder_fails_with_one_line(tmp_path, model):
    out = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        proc = run_cli(model, out, target="host")
    assert proc.returncode == 1 and "another compile is writing it" in proc.stderr, proc.stderr
    assert not out.exists()


def test_stale_temporary_folders_are_removed(tmp_path, model):
    (tmp_path / ".out.tmp-dead1234").mkdir()
    (tmp_path / ".out.tmp-dead1234" / "model.c").write_text("half")
    assert run_cli(model, tmp_path / "out", target="host").returncode == 0
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())


def _children_in(folder: Path) -> list[list[str]]:
    """The argument lists of running processes (other than this one) that mention `folder`."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            argv = (p / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(str(folder) in a for a in argv):
            found.append(argv)
    return found


@pytest.mark.slow(seconds=60)
def test_kill_9_never_leaves_the_output_missing_or_half_written(tmp_path):
    """kill -9 at moments from the import to the install: the folder is the old output or the new
    one, whole; no tool outlives the compiler; the next compile leaves nothing beside it."""
    old_model = quantized(dict(op="conv", shape=(1, 3, 8, 8), cout=6), tmp_path, "old")
    new_model = quantized(CONV, tmp_path, "new")
    out = tmp_path / "out"
    assert run_cli(old_model, out).returncode == 0
    old_c = (out / "model.c").read_text()
    t0 = time.monotonic()
    assert run_cli(new_model, tmp_path / "probe").returncode == 0
    whole = time.monotonic() - t0
    shutil.rmtree(tmp_path / "probe")
    outcomes = set()
    for share in (0.05, 0.3, 0.6, 0.85, 0.97, 1.1):
        proc = run_cli(new_model, out, popen=True)
        time.sleep(whole * share)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)
        assert _children_in(tmp_path) == []
        assert (out / outdir.MARKER).exists() and (out / "report.md").exists() and (out / "model.h").exists()
        outcomes.add("old" if (out / "model.c").read_text() == old_c else "new")
        if outcomes == {"new"}:  # back to the old output, so that later kills can tell the two apart
            assert run_cli(old_model, out).returncode == 0
    assert "old" in outcomes
    assert run_cli(new_model, out).returncode == 0
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())


def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "f").write_text("a")
    (b / "f").write_text("b")
    assert outdir._exchange(a, b)
    assert (a / "f").read_text() == "b" and (b / "f").read_text() == "a"


def test_install_without_exchange_recovers_a_kill_between_renames(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with outdir.writing(out, []) as tmp:
        (tmp / "model.c").write_text("1")
        outdir.install(tmp, out)
    monkeypatch.setattr(outdir, "_exchange", lambda a, b: False)
    with outdir.writing(out, []) as tmp:
        (tmp / "model.c").write_text("2")
        outdir.install(tmp, out)
    assert (out / "model.c").read_text() == "2"
    out.rename(tmp_path / ".out.old")  # as a kill between the two renames leaves it
    with outdir.writing(out, []):
        assert (out / "model.c").read_text() == "2"  # put back before anything else
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())


@pytest.mark.parametrize("flags, needle", [
    (("--seed", "-1"), "--seed: -1 is outside"),
    (("--random-inputs", "100000000"), "--random-inputs: 100000000 is outside"),
    (("--random-inputs", "-5"), "--random-inputs: -5 is outside"),
    (("--random-inputs", "x"), "'x' is not an integer"),
    (("--random-inputs", "0", "--verify"), "needs at least one input"),
])
def test_bad_flags_give_one_line(tmp_path, model, flags, needle):
    assert_clean_failure(run_cli(model, tmp_path / "out", target="host", args=flags), tmp_path / "out", needle)


@pytest.mark.parametrize("name, array, needle", [
    ("x.npz", None, ".npz archive"),
    ("nan.npy", np.full((1, 3, 8, 8), np.nan, np.float32), "NaN or infinite"),
    ("inf.npy", np.full((2, 3, 8, 8), np.inf, np.float32), "NaN or infinite"),
    ("nhwc.npy", np.zeros((1, 8, 8, 3), np.float32), "shape (1, 8, 8, 3)"),
    ("half.npy", np.zeros((96,), np.float32), "shape (96,)"),
])
def test_bad_inputs_give_one_line(tmp_path, model, name, array, needle):
    path = tmp_path / name
    if array is None:
        np.savez(path, x=np.zeros((1, 3, 8, 8), np.float32))
    else:
        np.save(path, array)
    proc = run_cli(model, tmp_path / "out", target="host", args=("--verify", "--input", path))
    assert_clean_failure(proc, tmp_path / "out", needle)


def test_batches_of_the_input_shape_are_accepted(tmp_path, model):
    np.save(tmp_path / "x.npy", np.zeros((3, 3, 8, 8), np.float32))
    assert run_cli(model, tmp_path / "out", target="host", args=("--verify", "--input", tmp_path / "x.npy")
                   ).returncode == 0


def test_qemu_that_writes_nothing_is_one_line(tmp_path, model):
    proc = run_cli(model, tmp_path / "out", {"SPARSE_ENGINE_QEMU": "true"})
    assert_clean_failure(proc, tmp_path / "out", "exited 0 but wrote 0 output bytes")


def test_tool_time_out_is_an_engine_error():
    with pytest.raises(EngineError, match="sleep ran past its time-out of 0 s"):
        toolchain._exec(["sleep", "5"], "test", 0.2)


def test_unexpected_exception_is_one_line_and_a_saved_traceback(tmp_path, model, monkeypatch, capsys):
    def broken(*a, **k):
        raise ZeroDivisionError("boom")
    monkeypatch.setattr(cli, "compile_model", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert cli.main(["compile", str(model), "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: internal error (ZeroDivisionError: boom); traceback saved to ")
    saved = Path(line.split("saved to ")[1].split(";")[0])
    assert "ZeroDivisionError" in saved.read_text() and "broken" in saved.read_text()


def test_toolchain_children_die_with_the_compiler(tmp_path):
    """setpriv --pdeathsig: a tool started by a process that is killed -9 is killed with it."""
    marker = tmp_path / "sleeper"
    script = (f"import sys; sys.path.insert(0, {str(Path(toolchain.__file__).parents[1])!r}); "
              f"from sparse_engine import toolchain; toolchain._exec(['sh', '-c', 'sleep 30; echo', {str(marker)!r}], 't', 60)")
    parent = subprocess.Popen([os.sys.executable, "-c", script])
    def shells() -> list:
        return [a for a in _children_in(marker) if a[0] == "sh"]
    for _ in range(200):
        if shells():
            break
        time.sleep(0.05)
    assert shells()
    parent.kill()
    parent.wait()
    time.sleep(0.3)
    assert shells() == []
