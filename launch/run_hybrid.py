"""Train -> QAT -> QDQ export -> SparseEngine compile --verify -> report, for one config.

    .venv/bin/python launch/run_hybrid.py --config=configs/hybrid_cifar10_320kb.py[:cpu] --workdir=DIR
"""
from common import launch

from tinyformer_jax.hybrid_run import run

if __name__ == "__main__":
    launch(run, "configs/<model>_<dataset>_<budget>.py[:preset]", "checkpoints, metrics, export, C library, summary")
