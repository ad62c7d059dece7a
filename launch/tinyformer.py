"""The whole TinyFormer pipeline: SuperNAS, supernet, SparseNAS, pruning, QAT, deploy, report (resumable).

    .venv/bin/python launch/tinyformer.py --config=configs/tinyformer_cifar10_320kb.py[:smoke] --workdir=DIR
"""
from absl import flags
from common import launch

from tinyformer_jax.tinyformer_run import STAGES, run

STOP_AFTER = flags.DEFINE_enum("stop_after", None, STAGES, "stop after this stage (e.g. search on one machine, "
                               "train on another: the workdir carries everything)")

if __name__ == "__main__":
    launch(run, "configs/tinyformer_<dataset>_<budget>.py[:preset]",
           "every stage's output, summary.json, report/report.md (resumable)",
           options=lambda: dict(stop_after=STOP_AFTER.value))
