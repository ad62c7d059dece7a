"""`python -m sparse_engine.bench kernels|sparse|attention|models [--out benchmarks/NAME.json] [--case TEXT]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EngineError
from . import attention, kernels, models, sparse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sparse_engine.bench")
    sub = ap.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernels", help="dense int8 kernels against measured CMSIS-NN figures (bench/kernels.py)")
    k.add_argument("--out", default="benchmarks/kernels.json", help="JSON results file")
    k.add_argument("--work", default="build/bench", help="folder for models and builds")
    k.add_argument("--case", action="append", help="run only these cases (repeatable)")
    s = sub.add_parser("sparse", help="sparse kernels at 50-95 %% block sparsity, blocks of 1-16, vs dense and CMSIS-NN")
    s.add_argument("--out", default="benchmarks/sparse.json", help="JSON results file")
    s.add_argument("--work", default="build/bench-sparse", help="folder for models and builds")
    s.add_argument("--case", action="append", help="run only these cases (repeatable)")
    a = sub.add_parser("attention", help="attention layer: naive vs FWSA vs DFT vs both (memory, parameters, "
                                         "instructions)")
    a.add_argument("--out", default="benchmarks/attention.json", help="JSON results file")
    a.add_argument("--work", default="build/bench-attention", help="folder for models and builds")
    a.add_argument("--case", action="append", help="run only cases whose name contains this (repeatable)")
    m = sub.add_parser("models", help="whole models: MLPerf Tiny's four, the main job's hybrid, an EEGFormer-shaped "
                                      "transformer (flash, SRAM, instructions, est. cycles vs published engines)")
    m.add_argument("--out", default="benchmarks/models.json", help="JSON results file")
    m.add_argument("--work", default="build/bench-models", help="folder for models and builds")
    m.add_argument("--case", action="append", help="run only models whose name contains this (repeatable)")
    m.add_argument("--mlperf-dir", default=None,
                   help="folder with MLPerf Tiny's *_int8.tflite (default $MLPERF_TINY_DIR, else "
                        "../shared/data/mlperf_tiny)")
    args = ap.parse_args(argv)
    mod = dict(kernels=kernels, sparse=sparse, attention=attention, models=models)[args.command]
    extra = {"mlperf_dir": Path(args.mlperf_dir)} if getattr(args, "mlperf_dir", None) else {}
    try:
        results = mod.run(Path(args.work), args.case, progress=lambda m: print(m, file=sys.stderr, flush=True),
                          **extra)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(mod.table(results))
    kernels.save(results, Path(args.out))
    print(f"\nwritten {args.out}")
    return 0 if all(r["bit_exact"] for r in results["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
