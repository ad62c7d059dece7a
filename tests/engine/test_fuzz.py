"""Property-based fuzzing of `python -m sparse_engine compile`: random mutations of valid QDQ models
(initializer values and shapes, attributes, op types, wiring, input shapes, bytes), of the inputs
and of the flags. Whatever the case, the compiler either exits 0 with a verified output, or gives
exactly one `error:` line (never an internal error), leaves the earlier output folder as it was,
and leaves nothing behind in the folder or the temp location.

CI runs a fixed, bounded set (FUZZ_EXAMPLES, default 200 cases, about 20 s); set
SPARSE_ENGINE_FUZZ_EXAMPLES=N for a longer hunt of random cases (docs/commands.md)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import quantized
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from sparse_engine import cli, outdir

FUZZ_EXAMPLES = int(os.environ.get("SPARSE_ENGINE_FUZZ_EXAMPLES", "200"))
HUNT = "SPARSE_ENGINE_FUZZ_EXAMPLES" in os.environ  # a hunt draws new cases each run (--hypothesis-seed=N)

BASES = {
    "conv": dict(op="conv", shape=(1, 3, 6, 6), cout=4, relu=True),
    "gemm": dict(op="gemm", shape=(1, 16), n=8),
    "layernorm": dict(op="layernorm", shape=(1, 4, 8)),
    "mul": dict(op="mul", shape=(1, 2, 4, 4)),
    "avgpool": dict(op="avgpool", shape=(1, 4, 6, 6), k=3, stride=2, pad=1),
    "softmax": dict(op="softmax", shape=(1, 3, 10)),
}
SPECIAL_FLOATS = [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e30, 1e-30, 1e-45, 3.0, 1e5]
SPECIAL_INTS = [0, -1, 1, 2, 3, 7, 100, -128, 127, 2**31 - 1]
OP_TYPES = ["Sin", "Relu", "Conv", "Gemm", "MatMul", "Softmax", "Clip", "Identity", "Add", "LayerNormalization"]


class Models(dict):
    """The quantized base models' bytes by name (a short repr for hypothesis' reports)."""

    def __repr__(self) -> str:
        return f"Models({', '.join(self)})"


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> Models:
    d = tmp_path_factory.mktemp("fuzz-bases")
    return Models({k: quantized(case, d, k).read_bytes() for k, case in BASES.items()})


@pytest.fixture(scope="module")
def earlier_output(tmp_path_factory, bases) -> Path:
    """A folder an earlier compile wrote: every failing case must leave its copy as it was."""
    d = tmp_path_factory.mktemp("fuzz-earlier")
    (d / "m.onnx").write_bytes(bases["gemm"])
    assert cli.main(["compile", str(d / "m.onnx"), "--out", str(d / "out"), "--target", "host", "--quiet"]) == 0
    return d / "out"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _mutate_model(data: st.DataObject, m: onnx.ModelProto) -> str:
    """Apply one drawn mutation to `m`; returns its description (hypothesis prints it on failure)."""
    g = m.graph
    kind = data.draw(st.sampled_from(["initializer", "element", "reshape", "dtype", "attribute", "op_type",
                                      "rewire", "delete", "input_shape"]))
    if kind in ("initializer", "element", "reshape", "dtype"):
        t = data.draw(st.sampled_from(list(g.initializer)))
        a = numpy_helper.to_array(t).copy()
        if kind == "initializer":
            v = data.draw(st.sampled_from(SPECIAL_FLOATS if a.dtype.kind == "f" else SPECIAL_INTS))
            with np.errstate(all="ignore"):
                a = np.full_like(a, v) if a.dtype.kind == "f" else np.full(a.shape, np.clip(v, *_irange(a)), a.dtype)
        elif kind == "element":
            i = data.draw(st.integers(0, max(a.size - 1, 0)))
            v = data.draw(st.sampled_from(SPECIAL_FLOATS if a.dtype.kind == "f" else SPECIAL_INTS))
            with np.errstate(all="ignore"):
                if a.size:
                    a.reshape(-1)[i] = v if a.dtype.kind == "f" else np.clip(v, *_irange(a))
        elif kind == "reshape":
            a = a.reshape(-1)[: max(a.size - data.draw(st.integers(1, 3)), 0)]
        else:
            a = a.astype(data.draw(st.sampled_from([np.float32, np.int32, np.uint8, np.int8, np.int64])))
        t.CopyFrom(numpy_helper.from_array(a, t.name))
        return f"{kind} {t.name} -> {a.dtype}{list(a.shape)} {a.reshape(-1)[:3]}"
    nodes = list(g.node)
    n = data.draw(st.sampled_from(nodes))
    if kind == "attribute" and n.attribute:
        at = data.draw(st.sampled_from(list(n.attribute)))
        if at.type == onnx.AttributeProto.FLOAT:
            at.f = data.draw(st.sampled_from(SPECIAL_FLOATS))
        elif at.type == onnx.AttributeProto.INT:
            at.i = data.draw(st.sampled_from(SPECIAL_INTS))
        elif at.type == onnx.AttributeProto.INTS and at.ints:
            j = data.draw(st.integers(0, len(at.ints) - 1))
            at.ints[j] = data.draw(st.sampled_from(SPECIAL_INTS))
        return f"attribute {n.name}.{at.name} -> {onnx.helper.get_attribute_value(at)}"
    if kind == "op_type":
        n.op_type = data.draw(st.sampled_from(OP_TYPES))
        return f"op_type {n.name} -> {n.op_type}"
    if kind == "rewire" and n.input:
        names = sorted({x for k in nodes for x in (*k.input, *k.output) if x} | {i.name for i in g.initializer})
        j = data.draw(st.integers(0, len(n.input) - 1))
        n.input[j] = data.draw(st.sampled_from(names))
        return f"rewire {n.name}.input[{j}] -> {n.input[j]}"
    if kind == "delete":
        g.node.remove(n)
        return f"delete {n.name}"
    dims = g.input[0].type.tensor_type.shape.dim
    j = data.draw(st.integers(0, len(dims) - 1))
    v = data.draw(st.sampled_from([0, 1, 2, 5, "batch"]))
    if isinstance(v, str):
        dims[j].dim_param = v
    else:
        dims[j].dim_value = v
    return f"input dim {j} -> {v}"


def _kind(err: list[str]) -> str:
    """The kind of an error line, for the statistics: its words up to the first quote or digit."""
    words = []
    for w in (err[0].split()[1:6] if err else []):
        if any(c in w for c in "'/0123456789"):
            break
        words.append(w)
    return " ".join(words) or "?"


def _irange(a: np.ndarray) -> tuple[int, int]:
    info = np.iinfo(a.dtype)
    return int(info.min), int(info.max)


def _inputs(data: st.DataObject, folder: Path, shape: list[int]) -> list[str]:
    """--input drawn among good and bad files (or none)."""
    kind = data.draw(st.sampled_from(["none", "none", "float", "int8", "batch", "shape", "nan", "int32", "npz",
                                      "missing", "empty", "folder"]))
    path = folder / "x.npy"
    rng = np.random.default_rng(0)
    if kind == "none":
        return []
    if kind == "float":
        np.save(path, rng.normal(size=shape).astype(np.float32))
    elif kind == "int8":
        np.save(path, rng.integers(-128, 128, size=shape).astype(np.int8))
    elif kind == "batch":
        np.save(path, rng.normal(size=[3, *shape[1:]]).astype(np.float32))
    elif kind == "shape":
        np.save(path, rng.normal(size=[*shape, 2]).astype(np.float32))
    elif kind == "nan":
        np.save(path, np.full(shape, np.nan, np.float32))
    elif kind == "int32":
        np.save(path, np.zeros(shape, np.int32))
    elif kind == "npz":
        path = folder / "x.npz"
        np.savez(path, x=np.zeros(shape, np.float32))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path = folder / "inputs"
        path.mkdir()
    return ["--input", str(path)]


FLAGS = {  # flag: (good values, bad values)
    "--kernels": (["dsp", "portable"], ["simd"]), "--sparse": (["speed", "size", "off"], []),
    "--attention": (["fused", "unfused"], []), "--fwsa": (["auto", "on", "off"], []),
    "--random-inputs": (["0", "1", "3"], ["-1", "x", "100000"]), "--seed": (["0", "7"], ["-1"]),
    "--max-ref-diff": (["0", "2", "16", "off"], ["300", "-2"]),
}


def _flags(data: st.DataObject) -> list[str]:
    """Flags drawn at random, a bad value about one time in ten."""
    flags = ["--target", data.draw(st.sampled_from(["host"] * 8 + ["cortex-m7"] * 2))]
    for flag, (good, bad) in FLAGS.items():
        if data.draw(st.booleans()):
            bad_one = bad and data.draw(st.integers(0, 9)) == 7  # not 0: hypothesis favours the ends
            flags += [flag, data.draw(st.sampled_from(bad if bad_one else good))]
    if data.draw(st.booleans()):
        flags.append("--verify")
    return flags


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=not HUNT, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_mutation_verifies_or_fails_with_one_line(data, bases, earlier_output, tmp_path_factory, capsys,
                                                      monkeypatch):
    case = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    temp = case / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # the traceback file of an internal error lands here
    base = data.draw(st.sampled_from(sorted(bases)))
    m = onnx.load_from_string(bases[base])
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    mutations = [_mutate_model(data, m) for _ in range(data.draw(st.integers(0, 2)))]
    raw = m.SerializeToString()
    if data.draw(st.integers(0, 9)) == 0:  # damaged bytes
        cut = data.draw(st.integers(0, len(raw)))
        raw = raw[:cut] + bytes([data.draw(st.integers(0, 255))]) + raw[cut + 1:]
        mutations.append(f"byte {cut}")
    model = case / "model.onnx"
    model.write_bytes(raw)
    out = case / "out"
    shutil.copytree(earlier_output, out)
    before = _snapshot(out)
    argv = ["compile", str(model), "--out", str(out), "--quiet", *_flags(data), *_inputs(data, case, shape)]
    note = f"{base} {mutations} {' '.join(argv[4:])}"
    capsys.readouterr()
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse: a bad flag value
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    event("compiled" if rc == 0 else f"error: {_kind(err)}")
    if os.environ.get("SPARSE_ENGINE_FUZZ_LOG"):  # every case and its outcome, for a hunt's summary
        with open(os.environ["SPARSE_ENGINE_FUZZ_LOG"], "a") as f:
            f.write(json.dumps(dict(case=note, rc=rc, stderr=err)) + "\n")
    if rc == 0:
        rep = json.loads((out / "report.json").read_text())
        assert (out / outdir.MARKER).exists() and (out / "model.c").exists(), note
        for r in rep["verification"] or []:
            assert r.get("exact", True) and r.get("passed") is not False, (note, r)
    else:
        assert len(err) == 1 and err[0].startswith("error: "), (note, err)
        assert "internal error" not in err[0], (note, err[0])
        assert _snapshot(out) == before, note
    assert sorted(p.name for p in case.iterdir() if p.name.startswith(".")) == [], note
    assert not list(temp.iterdir()), note
    shutil.rmtree(case)
