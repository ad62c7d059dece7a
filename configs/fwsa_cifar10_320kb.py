"""A small hybrid whose attention heads are as wide as the embedding (P = E, where fused-weight
self-attention pays), trained on CIFAR-10 to measure FWSA on a trained block:

    .venv/bin/python -m tinyformer_jax.bench fwsa --config=configs/fwsa_cifar10_320kb.py:cpu \\
        --workdir=runs/fwsa --out=benchmarks/fwsa_trained.json

Result (cpu preset, 3 epochs float + 0.25 QAT on 2 CPU cores, about 20 min; benchmarks/fwsa_trained.json):
float 60.63 %, fake-quant 60.55 %, int8 unfused 60.38 %, int8 FWSA 60.38 % (top-1 agreement
0.9923); attention parameters 8,416 -> 6,304 (-25.1 %), instructions 2,468,976 -> 2,145,172.
"""
from __future__ import annotations

import ml_collections

from configs.hybrid_cifar10_320kb import get_config as hybrid_config


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
    c = hybrid_config("full" if preset == "full" else "cpu")
    c.model = ml_collections.ConfigDict(dict(
        stem=16,
        # 8 x 8 = 64 tokens of E = 32, two heads of P = 32
        blocks=(("ir", 1, 16, 1), ("ir", 4, 24, 2), ("ir", 4, 32, 2), ("vit", 32, 2, 1, 2, 32), ("ir", 4, 48, 2)),
        head=128, classes=10))
    if preset == "cpu":
        c.train.update(epochs=3.0)
    return c
