"""The packages' structure: no import cycle inside either package, sparse_engine never imports
the JAX half, and every kernel a binding can name exists in the C family files."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from sparse_engine import bindings, codegen
from sparse_engine.bindings import common

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: str) -> set[str]:
    """Every module of `package` that `path` imports, at any depth (TYPE_CHECKING and function
    bodies too): `from . import x` counts as the submodule x where one exists."""
    me = module_name(path)
    base = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                mod = f"{parent}.{node.module}" if node.module else parent
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if n.split(".")[0] == package:
                found.add(n)
    return found


def graph(package: str) -> dict[str, set[str]]:
    files = {module_name(p): p for p in (ROOT / package).rglob("*.py")}
    edges = {}
    for mod, path in files.items():
        deps = set()
        for n in imports(path, package):
            while n and n not in files:  # a name inside a module: the module itself
                n = n.rpartition(".")[0]
            if n and n != mod and not mod.startswith(n + "."):  # a package's __init__ above us is not a cycle
                deps.add(n)
        edges[mod] = deps
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (c := visit(m)):
            return c
    return None


@pytest.mark.parametrize("package", ["sparse_engine", "tinyformer_jax"])
def test_no_import_cycle(package):
    edges = graph(package)
    assert len(edges) > 10
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_engine_never_imports_the_jax_half():
    for path in (ROOT / "sparse_engine").rglob("*.py"):
        assert not imports(path, "tinyformer_jax"), path
        src = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(jax|flax|optax)\b", src, re.M), path


def test_supported_ops_are_the_lowering_table():
    from sparse_engine import frontend, lowering

    assert frontend.SUPPORTED == set(lowering.LOWER)


def c_functions() -> tuple[set[str], set[str]]:
    """Kernel functions declared in the family headers, and those defined in the family files."""
    declared, defined = set(), set()
    for h in codegen.kernel_headers():
        declared |= set(re.findall(r"^(?:void|int8_t \*)\s*(se_\w+)\(", h.read_text(), re.M))
    for f in codegen.KERNEL_DIR.glob("*.c"):
        defined |= set(re.findall(r"^(?:void|int8_t \*)\s*(se_\w+)\(", f.read_text(), re.M))
    return declared, defined


def test_every_family_file_is_in_one_unit_and_every_declared_kernel_defined():
    in_units = [f for unit in codegen.UNITS for f in codegen.unit_files(unit)]
    assert sorted(in_units) == sorted(p.name for p in codegen.KERNEL_DIR.glob("*.c"))
    declared, defined = c_functions()
    assert declared == defined and len(declared) > 20


def test_every_kernel_a_binding_names_is_declared():
    """The kernel names the bindings give for every variant exist in the C headers."""
    from sparse_engine.bindings import conv, depthwise, fc, matmul, pool, softmax, sparse_conv, sparse_fc

    declared, _ = c_functions()
    names = {fc.kernel(d) for d in (0, 1)} | {conv.kernel(d) for d in (0, 1)}
    dw = dict(dilation=(1, 1), stride=(1, 1), acc_bound=1000)
    names |= {depthwise.kernel(dict(dw, depth_mult=m, weights=np.zeros((1, k, k, 8))), d, 16, 16)
              for m in (1, 2) for d in (0, 1) for k in (3, 5)}
    names |= {sparse_fc.kernel(b, d) for b in (1, 2, 4, 8, 3) for d in (0, 1)}
    names |= {sparse_conv.kernel(dict(dilation=(1, 1)), c, d) for c in (4, 3) for d in (0, 1)}
    names |= {matmul.kernel(a, b, d) for a in (1, 2) for b in (1, 2) for d in (0, 1)}
    names |= {pool.kernel(k, dict(requant=r, act_min=-128, act_max=127), c, d) for k in ("avgpool", "maxpool")
              for r in (0, 1) for c in (4, 6) for d in (0, 1)}
    names |= {softmax.kernel(dict(tflite=True), 10, d) for d in (0, 1)}
    assert len(names) == 18
    assert names <= declared
    assert {f.__name__.rpartition(".")[2] for f in bindings.FAMILIES} >= {"fc", "conv", "attention", "lut"}
    assert softmax.STRUCT in (codegen.KERNEL_DIR / "se_softmax.h").read_text()


def test_pair_len_matches_the_c_macro():
    macro = re.search(r"#define SE_PAIR_LEN\(k\) (.+?)\s*/\*", (codegen.KERNEL_DIR / "se_dsp.h").read_text())
    assert macro, "SE_PAIR_LEN not found in se_dsp.h"
    for k in range(0, 300, 7):
        assert eval(macro.group(1).replace("(k)", f"({k})")) == common.pair_len(k)


def test_engine_tests_need_no_jax():
    """tests/engine runs with the engine's extras alone: none of its files (or conftest) imports JAX."""
    files = [*(ROOT / "tests" / "engine").glob("*.py"), ROOT / "tests" / "conftest.py"]
    assert len(files) > 10
    for path in files:
        src = path.read_text()
        assert not imports(path, "tinyformer_jax"), path
        assert not re.search(r"^\s*(import|from)\s+(jax|flax|optax|_train_tiny)\b", src, re.M), path
