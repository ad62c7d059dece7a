"""The whole TinyFormer pipeline: SuperNAS, supernet, SparseNAS, pruning, QAT, deploy, report (resumable).

    .venv/bin/python launch/tinyformer.py --config=configs/tinyformer_cifar10_320kb.py[:smoke] --workdir=DIR
"""
from common import launch

from tinyformer_jax.tinyformer_run import run

if __name__ == "__main__":
    launch(run, "configs/tinyformer_<dataset>_<budget>.py[:preset]",
           "every stage's output, summary.json, report/report.md (resumable)")
