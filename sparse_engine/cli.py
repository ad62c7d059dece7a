"""`python -m sparse_engine compile MODEL.onnx --out DIR [--target host|cortex-m7] [--verify]`."""
from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path

from . import profiles, verify
from .compiler import TARGETS, compile_model
from .errors import EngineError, first_line
from .report import markdown


MAX_RANDOM_INPUTS = 10_000


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one `error:` line (exit 2), without the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def _int_in(lo: int, hi: int):
    """An argparse type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value
    return parse


def _gate(text: str) -> int | None:
    """--max-ref-diff: steps 0..255, or off."""
    if text.strip().lower() in ("off", "none"):
        return None
    return _int_in(0, 255)(text)


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m sparse_engine", description="QDQ int8 ONNX -> verified C for MCUs")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser("compile", help="compile a QDQ ONNX model to a C library and a report")
    c.add_argument("model", help="QDQ int8 ONNX file")
    c.add_argument("--out", required=True,
                   help="output folder: new, empty, or written by an earlier compile; replaced only on success")
    c.add_argument("--target", default="cortex-m7", choices=TARGETS)
    c.add_argument("--profile", default=profiles.DEFAULT, choices=sorted(profiles.PROFILES))
    c.add_argument("--verify", action="store_true", help="run the verification ladder")
    c.add_argument("--input", default=None,
                   help=".npy inputs for --verify (float: quantized; or int8), shaped as the model input or a "
                        "batch of it")
    c.add_argument("--random-inputs", type=_int_in(0, MAX_RANDOM_INPUTS), default=8,
                   help=f"random int8 inputs for --verify (0..{MAX_RANDOM_INPUTS}, default 8)")
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
    c.add_argument("--max-ref-diff", type=_gate, default=verify.DEFAULT_MAX_REF_DIFF, metavar="N|off",
                   help="--verify fails when onnxruntime's output differs from the simulator's by more than N "
                        f"steps (default {verify.DEFAULT_MAX_REF_DIFF}); off: report the difference only")
    c.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=0, help="seed of the random inputs")
    c.add_argument("--quiet", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Exit 0 on success; 1 with one `error:` line for bad input; 2 for a bad flag or an internal
    error (one line naming a saved traceback); 130 when interrupted."""
    args = parser().parse_args(argv)
    log = (lambda *_: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    try:
        rep = compile_model(args.model, args.out, args.target, profiles.get(args.profile), args.verify,
                            args.input, args.random_inputs, args.seed, progress=log, kernels=args.kernels,
                            sparse=args.sparse, fuse=args.attention == "fused", fwsa=args.fwsa,
                            calibration_file=args.calibration, max_ref_diff=args.max_ref_diff).report
    except EngineError as exc:
        one_line = str(exc).replace("\n", " | ")  # whatever a tool said
        print(f"error: {one_line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; the output folder was left as it was", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the user sees one line, the traceback goes to a file
        print(f"error: internal error ({type(exc).__name__}: {first_line(exc)}); traceback saved to "
              f"{_save_traceback()}; please report it", file=sys.stderr)
        return 2
    if not args.quiet:
        print(markdown(rep))
    return 0


def _save_traceback() -> Path:
    """The current exception's traceback in a new file under the temp folder."""
    fd, name = tempfile.mkstemp(prefix="sparse_engine-traceback-", suffix=".txt")
    with open(fd, "w") as f:
        traceback.print_exc(file=f)
    return Path(name)
