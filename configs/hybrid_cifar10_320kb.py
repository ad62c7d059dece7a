"""Fixed CNN + transformer hybrid on CIFAR-10 for the STM32F746 (1 MB flash, 320 KB SRAM).

    .venv/bin/python launch/run_hybrid.py --config=configs/hybrid_cifar10_320kb.py:cpu --workdir=build/main
    .venv/bin/python launch/run_hybrid.py --config=configs/hybrid_cifar10_320kb.py --workdir=runs/hybrid

Result, cpu preset (the README main job: 1.5 epochs float + 0.25 epoch QAT on 2 CPU cores, about
13 min; CIFAR-10 JPEG copy, 10,000 test images): float 54.42 %, fake-quant 54.87 %, int8
(SparseEngine simulator) 54.79 %, onnxruntime 54.70 %; flash 266,296 B, SRAM 88,600 B, 34,355,044
Cortex-M7 instructions per inference (benchmarks/hybrid_cifar10_cpu.json).
Full preset (200 epochs float + 10 QAT, a GPU): not run yet.
"""
from __future__ import annotations

import ml_collections


def get_config(preset: str = "full") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict(dict(dir="", limit_train=0, check_sizes=True))
    c.model = ml_collections.ConfigDict(dict(
        stem=16,
        # ("ir", expansion, out channels, stride[, depthwise kernel; 3]) | ("conv", out channels, kernel, stride)
        # | ("pool", "avg" | "max") (2x2, stride 2)
        # | ("vit", embedding dim, heads, layers, MLP ratio[, head dim (default dim / heads)[, patch; 1]])
        blocks=(("ir", 1, 16, 1), ("ir", 4, 24, 2), ("ir", 4, 24, 1), ("ir", 4, 32, 2), ("ir", 4, 32, 1),
                ("vit", 64, 4, 2, 2), ("ir", 4, 64, 2), ("ir", 4, 64, 1)),
        head=256, classes=10))
    c.train = ml_collections.ConfigDict(dict(
        epochs=200.0, steps=0, batch_size=128, lr=2e-3, weight_decay=0.05, warmup_steps=1000,
        label_smoothing=0.1, augment=True, log_every=100, ckpt_every=500))
    c.qat = ml_collections.ConfigDict(dict(
        epochs=10.0, steps=0, batch_size=128, lr=2e-4, weight_decay=0.0, warmup_steps=100,
        label_smoothing=0.1, augment=True, log_every=100, ckpt_every=500, calib_batches=16))
    c.deploy = ml_collections.ConfigDict(dict(profile="stm32f746", verify_images=8, calib_images=64, workers=2))
    if preset == "cpu":  # the README's main job: about 9 minutes of training on 2 cores
        c.train.update(epochs=1.5, warmup_steps=200, log_every=50, ckpt_every=100)
        c.qat.update(epochs=0.25, warmup_steps=20, log_every=25, ckpt_every=50)
    elif preset != "full":
        raise ValueError(f"config preset {preset!r}: choose full or cpu")
    return c
