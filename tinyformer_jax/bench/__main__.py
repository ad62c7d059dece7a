"""`python -m tinyformer_jax.bench fwsa|candidates|train_step ...` (see --help of each)."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import ml_collections

from ..errors import TinyFormerError
from ..files import write_json


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
    write_json(out, results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyformer_jax.bench")
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fwsa", help="FWSA against the unfused attention on a trained P = E block (CIFAR-10)")
    f.add_argument("--config", default="configs/fwsa_cifar10_320kb.py:cpu", help="config file[:preset]")
    f.add_argument("--workdir", default="runs/fwsa", help="checkpoints, export, C library (resumable)")
    f.add_argument("--data_dir", default=None, help="CIFAR-10 folder (else the config's, else ../shared/data/cifar10)")
    f.add_argument("--out", default="benchmarks/fwsa_trained.json", help="JSON results file")
    c = sub.add_parser("candidates", help="supernet candidates evaluated per second: vmap, lax.map, loop, sharded")
    c.add_argument("--config", default="configs/supernet_cifar10.py:cpu", help="config file[:preset]")
    c.add_argument("--candidates", type=int, default=16, help="paths per call (a multiple of the devices)")
    c.add_argument("--images", type=int, default=256, help="test images per path")
    c.add_argument("--calib", type=int, default=128, help="BatchNorm recalibration images per path")
    c.add_argument("--repeats", type=int, default=3, help="timed calls per method")
    c.add_argument("--cpu-devices", type=int, default=8,
                   help="emulated CPU devices for the sharded form (0: the real devices, e.g. on a GPU)")
    c.add_argument("--masked", action="store_true",
                   help="each path with its own weight masks (SparseNAS scoring of pruned candidates)")
    c.add_argument("--out", default=None,
                   help="JSON results file (default benchmarks/candidates[_masked]_<platform>.json)")
    t = sub.add_parser("train_step", help="supernet training images per second per convolution form")
    t.add_argument("--config", default="configs/supernet_cifar10.py", help="config file[:preset]")
    t.add_argument("--batch", type=int, default=0, help="images per step (0: the config's train.batch_size)")
    t.add_argument("--steps", type=int, default=5, help="timed steps per form")
    t.add_argument("--out", default=None, help="JSON results file (default benchmarks/train_step_<platform>.json)")
    args = ap.parse_args(argv)
    if args.command == "candidates" and args.cpu_devices:  # before JAX starts
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.cpu_devices}").strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from sparse_engine.errors import EngineError

    from . import candidates, fwsa, train_step
    try:
        if args.command == "fwsa":
            mod, results = fwsa, fwsa.run(load_config(args.config), Path(args.workdir), args.data_dir)
        elif args.command == "train_step":
            cfg = load_config(args.config)
            mod, results = train_step, train_step.run(cfg, args.batch or int(cfg.train.batch_size), args.steps,
                                                      progress=lambda m: print(m, file=sys.stderr, flush=True))
            args.out = args.out or f"benchmarks/train_step_{results['platform']}.json"
        else:
            mod = candidates
            results = candidates.run(load_config(args.config), args.candidates, args.images, args.calib,
                                     args.repeats, progress=lambda m: print(m, file=sys.stderr, flush=True),
                                     masked=args.masked)
            args.out = args.out or (f"benchmarks/candidates{'_masked' if args.masked else ''}_"
                                    f"{results['platform']}.json")
    except (TinyFormerError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results = dict(command="python -m tinyformer_jax.bench " + " ".join(sys.argv[1:] if argv is None else argv),
                   machine=f"{os.cpu_count()} CPU cores", **results)
    print(mod.table(results))
    save(results, Path(args.out))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
