"""A small CNN + transformer hybrid whose attention heads are as wide as the embedding (P = E, the
EEGFormer form where fused-weight self-attention pays), trained on CIFAR-10 to measure FWSA's
accuracy on a *trained* block (issue 6):

    .venv/bin/python -m tinyformer_jax.bench fwsa --config=configs/fwsa_cifar10_320kb.py:cpu \\
        --workdir=runs/fwsa --out=benchmarks/fwsa_trained.json

Results (cpu preset: 3 epochs float + 0.25 QAT on 2 CPU cores, 20 min with the benchmark;
CIFAR-10 test set, 10,000 images; benchmarks/fwsa_trained.json):
  float 60.63 %, fake-quant 60.55 %, int8 attention unfused 60.38 %, int8 FWSA 60.38 %
  (top-1 agreement 0.9923, logits 0.29 steps apart on average, 2 at most);
  attention S=64 E=32 P=32 H=2: parameters 8,416 -> 6,304 (-25.1 %), Cortex-M7 instructions
  2,468,976 -> 2,145,172; whole model flash 110,292 B, SRAM 88,508 B, 21,888,156 instructions.
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
