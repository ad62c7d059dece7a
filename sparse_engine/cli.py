"""`python -m sparse_engine compile MODEL.onnx --out DIR [--target host|cortex-m7] [--verify]`."""
from __future__ import annotations

import argparse
import sys

from . import profiles
from .compiler import TARGETS, compile_model
from .errors import EngineError
from .report import markdown


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sparse_engine", description="QDQ int8 ONNX -> verified C for MCUs")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile a QDQ ONNX model to a C library and a report")
    c.add_argument("model", help="QDQ int8 ONNX file")
    c.add_argument("--out", required=True, help="output folder (replaced only on success)")
    c.add_argument("--target", default="cortex-m7", choices=TARGETS)
    c.add_argument("--profile", default=profiles.DEFAULT, choices=sorted(profiles.PROFILES))
    c.add_argument("--verify", action="store_true", help="run the verification ladder")
    c.add_argument("--input", default=None, help=".npy inputs for --verify (float: quantized; or int8)")
    c.add_argument("--random-inputs", type=int, default=8, help="random int8 inputs for --verify")
    c.add_argument("--kernels", default="dsp", choices=("dsp", "portable"),
                   help="dsp: Cortex-M DSP kernels where a layer has one (default); portable: plain C only")
    c.add_argument("--sparse", default="speed", choices=("speed", "size", "off"),
                   help="layers with block-sparse weights: keep the coding measured fastest (speed, default) or "
                        "smallest (size) among those faster than dense; off: all dense")
    c.add_argument("--attention", default="fused", choices=("fused", "unfused"),
                   help="fused (default): recognized multi-head attention runs as one depth-first tiled layer; "
                        "unfused: as the graph's separate layers (the whole score map in memory)")
    c.add_argument("--fwsa", default="auto", choices=("auto", "on", "off"),
                   help="fused-weight self-attention: fold W_Q W_K^T per head where it saves parameters or "
                        "MACs (auto, default), always (on) or never (off); calibrated on --calibration, else on "
                        "the --verify inputs")
    c.add_argument("--calibration", default=None,
                   help=".npy inputs (float: quantized; or int8) that calibrate FWSA's fused scores; give real "
                        "samples for a trained model (default: the --verify inputs, random unless --input)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--quiet", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log = (lambda *_: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    try:
        rep = compile_model(args.model, args.out, args.target, profiles.get(args.profile), args.verify,
                            args.input, args.random_inputs, args.seed, progress=log, kernels=args.kernels,
                            sparse=args.sparse, fuse=args.attention == "fused", fwsa=args.fwsa,
                            calibration_file=args.calibration).report
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(markdown(rep))
    return 0
