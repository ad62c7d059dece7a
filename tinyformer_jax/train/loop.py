"""One training stage (float or QAT): optax AdamW with warmup + cosine decay, label smoothing,
on-device crop/flip augmentation, data-parallel over all devices (of every jax.distributed
process: each places the same global batch, the first writes metrics), orbax checkpoints
every `ckpt_every` steps and at the end, metrics per `log_every` steps and per epoch.

Data order and augmentation depend only on (seed, step), so a resumed run repeats exactly the
steps an uninterrupted one takes.
"""
from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from .. import time_limit
from ..data.augment import normalize, random_crop_flip
from ..data.cifar10 import Split
from ..errors import TinyFormerError
from . import sharding
from .checkpoint import Checkpoints
from .metrics import MetricsWriter


@dataclass
class StageResult:
    steps: int
    resumed_from: int | None
    test_accuracy: float
    images_per_second: float | None


def steps_per_epoch(n_train: int, batch: int) -> int:
    return max(n_train // batch, 1)


def optimizer(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
    warmup = min(int(cfg.warmup_steps), max(total_steps - 1, 0))
    sched = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, max(warmup, 1), max(total_steps, 2),
                                               end_value=cfg.lr * cfg.get("final_lr_ratio", 0.01))
    return optax.chain(optax.clip_by_global_norm(cfg.get("clip_norm", 5.0)),
                       optax.adamw(sched, weight_decay=cfg.weight_decay))


@functools.lru_cache(maxsize=1)
def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(seed: int, step: int, n: int, batch: int) -> np.ndarray:
    """The images of `step`: epoch-wise permutations drawn from (seed, epoch)."""
    epoch, i = divmod(step, steps_per_epoch(n, batch))
    return _epoch_permutation(seed, epoch, n)[i * batch:(i + 1) * batch]


def classification_loss(model: nnx.Module, x: jax.Array, labels: jax.Array, label_smoothing: float,
                        extra) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy with smoothed labels; returns (loss, logits). `extra` is unused here."""
    logits = model(x)
    targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean(), logits


def make_train_step(graphdef, tx: optax.GradientTransformation, label_smoothing: float, augment: bool,
                    loss: Callable = classification_loss):
    def step(params, rest, opt_state, images, labels, key, extra):
        model = nnx.merge(graphdef, params, rest)

        def loss_fn(m):
            x = normalize(images)
            if augment:
                x = random_crop_flip(key, x)
            return loss(m, x, labels, label_smoothing, extra)

        (loss_value, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        acc = jnp.mean(jnp.argmax(logits, -1) == labels)
        return params, nnx.state(model, nnx.Not(nnx.Param)), opt_state, loss_value, acc

    return jax.jit(step, donate_argnums=(0, 1, 2))


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, state, images):
    """Compiled once per model structure (graphdef), not per call of predict."""
    return nnx.merge(graphdef, state)(normalize(images))


def predict(model: nnx.Module, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """Logits for uint8 NHWC images, in eval mode (BatchNorm running statistics)."""
    model.eval()
    graphdef, state = nnx.split(model)
    out = []
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        out.append(np.asarray(_forward(graphdef, state, chunk))[:batch - pad])
    return np.concatenate(out)


def accuracy(model: nnx.Module, split: Split) -> float:
    return float(np.mean(predict(model, split.images).argmax(-1) == split.labels))


def _all_stop() -> bool:
    """Whether every process stops at this step: the first process's time limit decides for all
    (processes that stopped at different steps would wait for each other forever). Without a
    limit, no collective is added to the step."""
    if jax.process_count() == 1 or not time_limit.limited():
        return time_limit.expired()
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(time_limit.expired())))


def fit(model: nnx.Module, train: Split, test: Split, cfg: ml_collections.ConfigDict, workdir: Path, stage: str,
        seed: int, devices: list | None = None, progress: bool = True, loss: Callable = classification_loss,
        extra: Callable[[int], np.ndarray | None] = lambda step: None) -> StageResult:
    """Train `model` in place for cfg.epochs (or cfg.steps if set) and return the stage's figures.
    Resumes from the newest checkpoint in workdir/<stage>/checkpoints; a finished stage only
    restores. `loss(model, x, labels, label_smoothing, extra(step))` -> (loss, logits); `extra`
    gives per-step data that depends only on the step (the supernet's sampled paths); the same
    object returned again (a stage's constant pruning masks) is placed on the devices once.
    Past the run's time limit (time_limit.py) it saves a checkpoint after the current step and stops."""
    mesh = sharding.data_mesh(devices)
    ndev = mesh.devices.size
    if cfg.batch_size % ndev:
        raise TinyFormerError(f"config {stage}.batch_size={cfg.batch_size} is not a multiple of the "
                              f"{ndev} devices")
    spe = steps_per_epoch(len(train.labels), cfg.batch_size)
    total = int(cfg.get("steps") or 0) or int(round(cfg.epochs * spe))
    tx = optimizer(cfg, total)
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = tx.init(params)
    params, rest, opt_state = sharding.put_replicated((params, rest, opt_state), mesh)
    ckpt = Checkpoints(workdir / stage / "checkpoints", every=int(cfg.ckpt_every))
    start = ckpt.latest() or 0
    resumed = start or None
    sums = np.zeros(3)  # loss, train accuracy and steps since the last metrics row (saved: a row may span a stop)
    if start:
        restored = ckpt.restore(start, dict(params=params, rest=rest, opt=opt_state, sums=sums))
        params, rest, opt_state = restored["params"], restored["rest"], restored["opt"]
        sums = restored.get("sums", sums)
    primary = jax.process_index() == 0  # the one process of several that writes metrics and progress
    log = MetricsWriter(workdir / stage / "metrics.jsonl", workdir / "tensorboard" / stage, start, enabled=primary)
    step_fn = make_train_step(graphdef, tx, cfg.label_smoothing, cfg.get("augment", True), loss)
    key = jax.random.key(seed)
    bar = tqdm(total=total, initial=start, desc=stage, unit="step", disable=not (progress and primary),
               file=sys.stderr, mininterval=2.0, dynamic_ncols=True)
    t0, imgs, rate, test_acc = time.perf_counter(), 0, None, None
    loss_sum, acc_sum, n_sum = float(sums[0]), float(sums[1]), int(sums[2])
    placed: tuple = (None, None)  # (extra's last host value, its device copy)
    for step in range(start, total):
        idx = batch_indices(seed, step, len(train.labels), cfg.batch_size)
        xb, yb = sharding.put_batch((train.images[idx], train.labels[idx]), mesh)
        ex_host = extra(step)
        if ex_host is not placed[0]:  # the same object again (e.g. a stage's pruning masks): already on the devices
            placed = (ex_host, None if ex_host is None else sharding.put_replicated(ex_host, mesh))
        ex = placed[1]
        params, rest, opt_state, loss_v, acc = step_fn(params, rest, opt_state, xb, yb,
                                                       jax.random.fold_in(key, step), ex)
        loss_sum, acc_sum, n_sum, imgs = loss_sum + float(loss_v), acc_sum + float(acc), n_sum + 1, imgs + len(idx)
        done = step + 1
        rate = imgs / max(time.perf_counter() - t0, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss_v):.3f}", img_s=f"{rate:,.0f}", refresh=False)
        if done % cfg.log_every == 0 or done == total:
            log.write(done, epoch=done / spe, loss=loss_sum / n_sum, train_accuracy=acc_sum / n_sum,
                      images_per_second=rate)
            loss_sum, acc_sum, n_sum = 0.0, 0.0, 0
        if done % spe == 0 or done == total:
            nnx.update(model, params, rest)
            test_acc = accuracy(model, test)
            model.train()
            log.write(done, epoch=done / spe, test_accuracy=test_acc)
            if primary:
                bar.write(f"{stage}: epoch {done / spe:.2f} step {done}/{total} test accuracy {test_acc:.4f}")
        stop = done < total and _all_stop()
        ckpt.save(done, dict(params=params, rest=rest, opt=opt_state, sums=np.array([loss_sum, acc_sum, n_sum])),
                  force=done == total or stop)
        if stop:
            bar.close()
            log.close()
            ckpt.close()
            time_limit.stop(f"{stage} saved at step {done}/{total}")
    bar.close()
    nnx.update(model, params, rest)
    if test_acc is None:  # a finished stage that only restored: the loop did not evaluate
        test_acc = accuracy(model, test)
    log.close()
    ckpt.close()
    return StageResult(total, resumed, test_acc, rate)
