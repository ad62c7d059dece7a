"""The whole TinyFormer pipeline: SuperNAS, supernet, SparseNAS, pruning, QAT, deploy, report (resumable).

    .venv/bin/python launch/tinyformer.py --config=configs/tinyformer_cifar10_320kb.py[:smoke] --workdir=DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyformer_jax.errors import TinyFormerError  # noqa: E402
from tinyformer_jax.tinyformer_run import run  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/tinyformer_<dataset>_<budget>.py[:preset]")
_WORKDIR = flags.DEFINE_string("workdir", None, "every stage's output, summary.json, report/report.md (resumable)")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "CIFAR-10 folder (else $TINYFORMER_DATA, else ../shared/data/cifar10)")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "call jax.distributed.initialize() first (one process per "
                                 "host, e.g. on a cloud TPU pod slice: see launch/README.md)")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    if _DISTRIBUTED.value:
        import jax

        jax.distributed.initialize()  # coordinator and process ids from the TPU / cluster environment
    try:
        run(_CONFIG.value, _WORKDIR.value, _DATA_DIR.value)
    except TinyFormerError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    app.run(main)
