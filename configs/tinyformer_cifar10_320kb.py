"""TinyFormer on CIFAR-10 for the STM32F746 (1 MB flash, 320 KB SRAM): SuperNAS, supernet
training, SparseNAS, gradual block pruning with distillation, QAT, deployment, report.

    .venv/bin/python launch/tinyformer.py --config=configs/tinyformer_cifar10_320kb.py:smoke --workdir=DIR
    .venv/bin/python launch/tinyformer.py --config=configs/tinyformer_cifar10_320kb.py --workdir=DIR

Limits: search.flash_bytes / search.sram_bytes (0: the profile's), search.max_instructions (0: none).
Result, smoke preset (CI: a few training steps and a small search, about 4 min on 2 cores): the
model deploys bit-exact; it is not trained to accuracy (about 6 % int8).
Full preset: not run with the full budget yet (no GPU lent so far). A full-shape rehearsal with 2
steps per stage deployed bit-exact at flash 600,964 B (predicted 598,412), SRAM 285,696 B,
98,299,050 instructions (docs/decisions.md D34).
"""
from __future__ import annotations

import ml_collections

from configs.supernet_cifar10 import get_config as supernet_config


def _widened(first: int, second: int, third: int, dims: tuple[int, int, int], head: int) -> dict:
    """A SuperNAS space: the supernet's layout with other widths (stage widths, transformer dims, head)."""
    return {"stem": first, "head": head,
            "modules": (("mbv2", first), ("downsample", second), ("mbv2", second), ("downsample", third),
                        ("mbv2", third), ("transformer",), ("pool",), ("mbv2", 2 * third), ("mbv2", 2 * third)),
            "transformer": ((dims[0], 2, 1), (dims[1], 4, 2), (dims[2], 4, 2, 2), (dims[2], 4, 2))}


def get_config(preset: str = "full") -> ml_collections.ConfigDict:
    if preset not in ("full", "smoke"):
        raise ValueError(f"config preset {preset!r}: choose full or smoke")
    base = supernet_config("full")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = base.data
    c.model = base.model
    c.supernas = ml_collections.ConfigDict(dict(
        # overrides of model per candidate space; samples per space; spaces below min_fit_rate are not chosen
        spaces=({}, {"stem": 24, "head": 384}, _widened(24, 40, 48, (48, 64, 96), 384),
                _widened(32, 48, 64, (64, 96, 128), 512)),
        samples=40, min_fit_rate=0.5, seed=3))
    c.supernet = base.train
    c.search = ml_collections.ConfigDict(dict(
        population=32, generations=20, parents=8, crossover=0.5, mutation_prob=0.15, max_tries_factor=20,
        sparsity_levels=(0.0, 0.3, 0.5, 0.7, 0.85), block_sizes=(1, 4, 8, 16),
        flash_bytes=0, sram_bytes=0, max_instructions=0, val_images=5000, calib_images=512, seed=1,
        # candidates scored per compiled call and the form (train/candidates.py); auto: lax.map on CPU
        # (measured fastest there, benchmarks/candidates_masked_cpu.json), vmap on a GPU (not measured yet).
        # score_images_per_call bounds memory: 16 candidates x 1000 images of the widest space needed
        # 41 GiB of XLA temporaries (CPU memory_analysis); 2000 images per call need about 5 GiB
        score_method="auto", score_batch=16, score_images_per_call=2000,
        build_workers=0))  # cost-model firmwares built at once (0: one per CPU core)
    c.prune = ml_collections.ConfigDict(dict(rounds=4, distill=0.5, train=ml_collections.ConfigDict(dict(
        epochs=10.0, steps=0, batch_size=128, lr=5e-4, weight_decay=0.01, warmup_steps=100, label_smoothing=0.1,
        augment=True, log_every=100, ckpt_every=500))))
    c.qat = ml_collections.ConfigDict(dict(
        epochs=5.0, steps=0, batch_size=128, lr=1e-4, weight_decay=0.0, warmup_steps=100, label_smoothing=0.1,
        augment=True, log_every=100, ckpt_every=500, calib_batches=8))
    # test_images: the first N test images give the fake-quant and the int8 accuracy (0: all 10,000)
    c.deploy = ml_collections.ConfigDict(dict(profile="stm32f746", verify_images=8, calib_images=64, workers=2,
                                              test_images=0))
    if preset == "smoke":
        c.data.limit_train = 3000
        c.data.check_sizes = False
        c.model.update(modules=(("mbv2", 16), ("downsample", 24), ("mbv2", 24), ("transformer",), ("pool",),
                                ("mbv2", 32)),
                       mbv2=((2, 3), (4, 5)), transformer=((16, 1, 1), (32, 2, 1)), head=96)
        c.supernas.update(spaces=({}, {"stem": 8}), samples=3)
        c.supernet.update(epochs=0.0, steps=6, batch_size=32, warmup_steps=2, log_every=3, ckpt_every=6,
                          random_paths=1)
        c.search.update(population=4, generations=2, parents=2, max_tries_factor=6, val_images=256,
                        calib_images=64, sparsity_levels=(0.0, 0.5, 0.75), block_sizes=(4, 8), score_method="loop",
                        score_batch=4)
        c.prune.update(rounds=2)
        c.prune.train.update(epochs=0.0, steps=4, batch_size=32, warmup_steps=1, log_every=2, ckpt_every=4)
        c.qat.update(epochs=0.0, steps=4, batch_size=32, warmup_steps=1, log_every=2, ckpt_every=4, calib_batches=2)
        c.deploy.update(verify_images=4, calib_images=16, test_images=500)
    return c
