"""Weight-sharing supernet on CIFAR-10: the SuperNAS / SparseNAS search space.

    .venv/bin/python launch/train_supernet.py --config=configs/supernet_cifar10.py:cpu --workdir=runs/supernet

Choice modules (tinyformer_jax/models/supernet.py): downsample (3x3 conv | inverted residual,
stride 2), MobileNetV2 (expansion x depthwise kernel), transformer (embedding dim, heads, layers,
patch size; MobileViT block) and pooling (2x2 average | max).
Result: not trained on a GPU yet; the cpu preset is a smoke run. Throughput on 2 CPU cores:
benchmarks/candidates_cpu.json (loop 0.99 paths/s, lax.map 1.37x) and
benchmarks/train_step_cpu.json (8.6 s per step of batch 128 x 4 paths).
"""
from __future__ import annotations

import ml_collections


def get_config(preset: str = "full") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict(dict(dir="", limit_train=0, check_sizes=True))
    c.model = ml_collections.ConfigDict(dict(
        stem=16,
        modules=(("mbv2", 16), ("downsample", 24), ("mbv2", 24), ("downsample", 32), ("mbv2", 32),
                 ("transformer",), ("pool",), ("mbv2", 64), ("mbv2", 64)),
        mbv2=((3, 3), (4, 3), (6, 5)),              # (expansion, depthwise kernel), smallest first
        # (embedding dim, heads, layers[, patch]); smallest first, the largest last (the sandwich
        # rule's teacher). Patch 2 at the 8x8 map: 4 sequences of 16 tokens, a quarter of the scores
        transformer=((32, 2, 1), (48, 2, 2), (64, 4, 2, 2), (64, 4, 2)),
        head_dim=16, mlp_ratio=2, downsample_expand=4, head=256, classes=10))
    c.train = ml_collections.ConfigDict(dict(
        epochs=100.0, steps=0, batch_size=128, lr=2e-3, weight_decay=0.05, warmup_steps=1000,
        label_smoothing=0.1, augment=True, log_every=100, ckpt_every=500, random_paths=2))
    # method: how paths are batched (train/candidates.py: vmap | map | loop | shard)
    c.eval = ml_collections.ConfigDict(dict(random_paths=10, calib_images=1024, seed=1, method="map"))
    if preset == "cpu":  # a smoke run on 2 cores
        c.train.update(epochs=0.1, warmup_steps=20, log_every=10, ckpt_every=20)
        c.eval.update(random_paths=2, calib_images=256)
    elif preset != "full":
        raise ValueError(f"config preset {preset!r}: choose full or cpu")
    return c
