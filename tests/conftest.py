"""Shared fixtures: quantized single-op models (cached per session) and a compile helper."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sparse_engine import codegen, planner, profiles, toolchain, verify, zoo  # noqa: E402

# the kernels' objects, compiled once for the whole session (all xdist workers and the CLI's
# subprocesses): keyed by compiler, flags and source bytes, so an edited kernel is compiled again
os.environ.setdefault(toolchain.OBJECT_CACHE_ENV, str(ROOT / "build" / "test-objects"))
# XLA executables, likewise shared by every test process (the same training steps are compiled
# again in many tests and subprocesses): JAX's persistent compilation cache, set before JAX loads
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / "build" / "jax-cache"))
# every executable, also the many small eager ones (a model's initializers: 8.1 s -> 1.0 s for the
# smoke supernet when cached); JAX's default keeps only those that took over a second to compile
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# tests run a few steps of many models, so XLA's compile time dominates them: LLVM at -O1 instead
# of XLA's default -O3 (docs/decisions.md D4; -O0 turned the smoke pruning loss to NaN). Every
# assertion compares runs under the same flags; users' runs keep XLA's default.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=1".strip()
from sparse_engine.bindings import sparse_fc  # noqa: E402
from sparse_engine.bindings.common import requant_table  # noqa: E402
from sparse_engine.compiler import compile_model  # noqa: E402

M7 = profiles.get("stm32f746")


def run_processes(script: Path, args: list[list[str]], env: dict, timeout: float = 600) -> list[tuple[int, str, str]]:
    """Start `script` once per argument list, with a free localhost port as the first argument of
    each (a jax.distributed coordinator), and return each one's (status, stdout, stderr)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, str(script), str(port), *a], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for a in args]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        results.append((p.returncode, out, err))
    return results


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


def quantized(case: dict, directory: Path, name: str, seed: int = 0) -> Path:
    """QDQ model for a zoo case; calibration mean shifted by case['mean'] to vary zero points."""
    path = directory / f"{name}.onnx"
    if not path.exists():
        zoo.quantize_qdq(zoo.single_op(case, seed), path, seed=seed, mean=case.get("mean", 0.0))
    return path


def compile_verified(model: Path, out: Path, n_random: int = 6, input_file: Path | None = None) -> dict:
    return compile_model(model, out, "cortex-m7", M7, verify_ladder=True, n_random=n_random,
                         input_file=input_file, progress=lambda *_: None).report


def run_cli(model, out, env_extra: dict | None = None, target: str = "cortex-m7", args: tuple = (),
            cwd: Path = ROOT, popen: bool = False):
    """`python -m sparse_engine compile MODEL --out OUT --target T --quiet ARGS` in `cwd`: the
    finished process, or with `popen` the running one."""
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, "-m", "sparse_engine", "compile", str(model), "--out", str(out), "--target", target,
           "--quiet", *map(str, args)]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)


def assert_clean_failure(proc, out: Path, *needles: str, out_existed: bool = False) -> str:
    """A non-zero exit with exactly one `error:` line holding every needle, no temporary folder or
    lock beside `out`, and `out` absent (unless `out_existed`). Returns the line."""
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert out_existed or not out.exists()
    assert not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir())
    return lines[0]


def edit_initializer(m, name: str, fn) -> None:
    """Replace initializer `name` of model `m` by fn(its array), in the same dtype."""
    from onnx import numpy_helper

    t = next(t for t in m.graph.initializer if t.name == name)
    old = numpy_helper.to_array(t)
    t.CopyFrom(numpy_helper.from_array(np.asarray(fn(old)).astype(old.dtype), name))


def edit_attribute(m, op_type: str, name: str, value) -> None:
    """Set attribute `name` of every `op_type` node of `m` to `value`."""
    import onnx

    for n in m.graph.node:
        if n.op_type == op_type:
            kept = [a for a in n.attribute if a.name != name]
            del n.attribute[:]
            n.attribute.extend([*kept, onnx.helper.make_attribute(name, value)])


def insert_after(m, node, op_type: str, extra_inputs: list[str], name: str) -> None:
    """Put a new `op_type` node between `node`'s first output and its consumers."""
    import onnx

    raw = f"{name}_input"
    out = node.output[0]
    node.output[0] = raw
    nodes = list(m.graph.node)
    m.graph.node.insert(nodes.index(node) + 1, onnx.helper.make_node(op_type, [raw, *extra_inputs], [out], name=name))


def exact_on_host_and_qemu(g, tmp_path: Path, kernel: str, kernels: str = "dsp",
                           inputs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """Compile an IR graph (its params may be edited by the test: the simulator reads the same)
    with `kernel` among the layers; host C and QEMU must equal the simulator on `inputs` (default:
    4 random ones). Returns the inputs, the simulator's outputs and the per-layer Cortex-M7 instructions."""
    inputs = verify.load_inputs(g, None, 4, 0) if inputs is None else inputs
    ref = verify.simulate(g, inputs)
    lib = tmp_path / "lib"
    assert kernel in codegen.generate(g, planner.plan(g), lib, kernels)
    host = toolchain.run_host(toolchain.build_host(lib, tmp_path / "host"), inputs, ref[0].size)
    mcu = toolchain.run_qemu(toolchain.build_mcu(lib, tmp_path / "m7", M7), M7, inputs, ref[0].size)
    np.testing.assert_array_equal(host, ref)
    np.testing.assert_array_equal(mcu.outputs, ref)
    return inputs, ref, mcu.layer_instructions


def sparse_fc_kernel(block: int, kernels: str = "dsp") -> str:
    """The kernel codegen gives a block-sparse FC / pointwise layer (or an attention projection)."""
    return sparse_fc.kernel(block, kernels == "dsp")


def force_requant_branches(p: dict, left: bool):
    """Edit a layer's params so the rarer requantization branches run: channel 0 with right shift 0
    (or a left shift: then no table), channel 5 at shift 0 with the largest multiplier, and clamp
    bounds narrower than int8. Returns bindings.common.requant_table of the result."""
    p["shift"], p["mult"] = np.asarray(p["shift"]).copy(), np.asarray(p["mult"]).copy()
    p["shift"][[0, 5]] = [1 if left else 0, 0]
    p["mult"][[0, 5]] = [1 << 30, (1 << 31) - 1]
    p["act_min"], p["act_max"] = -100, 90
    return requant_table(p["mult"], p["shift"])


MEASUREMENTS = ROOT / "build" / "test-measurements.jsonl"


def record(name: str, payload: dict) -> None:
    """Keep a measured figure; the terminal summary prints them all (also under pytest-xdist)."""
    MEASUREMENTS.parent.mkdir(exist_ok=True)
    with MEASUREMENTS.open("a") as f:
        f.write(json.dumps(dict(name=name, **payload)) + "\n")


def pytest_collection_modifyitems(items):
    """The slow tests first, longest first (`@pytest.mark.slow(seconds=N)` estimates, 60 when not
    given; unmarked tests last), so that a long test does not start last on a worker."""
    def order(item) -> float:
        mark = item.get_closest_marker("slow")
        return 1.0 if mark is None else -float(mark.kwargs.get("seconds", 60))
    items.sort(key=order)


def with_xla_flags(env: dict, flags: str) -> dict:
    """`env` with `flags` added to the XLA_FLAGS it already has."""
    return dict(env, XLA_FLAGS=f"{env.get('XLA_FLAGS', '')} {flags}".strip())


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):
        MEASUREMENTS.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    if MEASUREMENTS.exists():
        terminalreporter.section("measured figures")
        for line in sorted(MEASUREMENTS.read_text().splitlines()):
            terminalreporter.write_line(line)
