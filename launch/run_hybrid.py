"""Train -> QAT -> QDQ export -> SparseEngine compile --verify -> report, for one config.

    .venv/bin/python launch/run_hybrid.py --config=configs/hybrid_cifar10_320kb.py[:cpu] --workdir=DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparse_engine.errors import EngineError  # noqa: E402
from tinyformer_jax.errors import TinyFormerError  # noqa: E402
from tinyformer_jax.pipeline import run  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/<model>_<dataset>_<budget>.py[:preset]")
_WORKDIR = flags.DEFINE_string("workdir", None, "checkpoints, metrics, export, C library, summary")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "CIFAR-10 folder (else $TINYFORMER_DATA, else ../shared/data/cifar10)")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax and jax2onnx log every save / conversion at INFO
    try:
        run(_CONFIG.value, _WORKDIR.value, _DATA_DIR.value)
    except (TinyFormerError, EngineError) as exc:  # bad data / config / model: one line, no traceback
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    app.run(main)
