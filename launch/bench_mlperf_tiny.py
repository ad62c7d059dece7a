"""MLPerf Tiny's four int8 models: compile from .tflite, verify four ways against LiteRT's
reference kernels, IC's CIFAR-10 top-1 against LiteRT's; figures to benchmarks/mlperf_tiny.json.

    .venv/bin/python launch/bench_mlperf_tiny.py [--models_dir=../shared/data/mlperf_tiny] [--n_inputs=100]
"""
import sys
from pathlib import Path

from absl import app, flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyformer_jax.mlperf_tiny import run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = flags.DEFINE_string("models_dir", str(ROOT.parent / "shared" / "data" / "mlperf_tiny"),
                                 "folder with the four *_int8.tflite files")
DATA_DIR = flags.DEFINE_string("data_dir", None, "CIFAR-10 folder (else $TINYFORMER_DATA, else ../shared/data/cifar10)")
OUT = flags.DEFINE_string("out", str(ROOT / "benchmarks" / "mlperf_tiny.json"), "where the figures go")
N_INPUTS = flags.DEFINE_integer("n_inputs", 100, "inputs per model through the whole ladder")


def main(_) -> None:
    run(MODELS_DIR.value, DATA_DIR.value, OUT.value, N_INPUTS.value)


if __name__ == "__main__":
    app.run(main)
