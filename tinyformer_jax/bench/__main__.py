"""`python -m tinyformer_jax.bench fwsa --config=FILE[:preset] --workdir=DIR [--out JSON] [--data_dir DIR]`."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

import ml_collections

from sparse_engine.errors import EngineError

from ..errors import TinyFormerError
from . import fwsa


def load_config(spec: str) -> ml_collections.ConfigDict:
    """`path.py[:preset]` -> the file's get_config(preset)."""
    path, _, preset = spec.partition(":")
    if not Path(path).is_file():
        raise TinyFormerError(f"--config {path}: no such file")
    sys.path.insert(0, str(Path(path).resolve().parents[1]))
    mod_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.get_config(preset) if preset else mod.get_config()


def save(results: dict, out: Path) -> None:
    """Write the JSON whole or not at all."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str) + "\n")
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyformer_jax.bench")
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fwsa", help="FWSA against the unfused attention on a trained P = E block (CIFAR-10)")
    f.add_argument("--config", default="configs/fwsa_cifar10_320kb.py:cpu", help="config file[:preset]")
    f.add_argument("--workdir", default="runs/fwsa", help="checkpoints, export, C library (resumable)")
    f.add_argument("--data_dir", default=None, help="CIFAR-10 folder (else the config's, else ../shared/data/cifar10)")
    f.add_argument("--out", default="benchmarks/fwsa_trained.json", help="JSON results file")
    args = ap.parse_args(argv)
    try:
        results = fwsa.run(load_config(args.config), Path(args.workdir), args.data_dir)
    except (TinyFormerError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(fwsa.table(results))
    save(results, Path(args.out))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
