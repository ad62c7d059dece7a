"""Train the weight-sharing supernet and evaluate sampled paths after BatchNorm recalibration.

    .venv/bin/python launch/train_supernet.py --config=configs/supernet_cifar10.py[:cpu] --workdir=DIR
"""
from common import launch

from tinyformer_jax.supernet_run import run

if __name__ == "__main__":
    launch(run, "configs/supernet_<dataset>.py[:preset]", "checkpoints, metrics, summary.json (resumable)")
