"""Many supernet paths evaluated per compiled call, each after its own BatchNorm recalibration.

Per path p: BatchNorm statistics = the batch statistics of p on the calibration images (a
forward in train mode with momentum 0), computed once; then logits of test images in eval mode
with them. Four forms of the same computation, one function (`evaluator`):
  vmap   jax.vmap over the K paths: one call, the K networks batched
  map    jax.lax.map over the K paths: one call, the paths one after another
  loop   a Python loop, one compiled call per path (the baseline)
  shard  vmap with the paths split over all devices (jax.sharding mesh axis "cand", the model
         replicated); over several processes when jax.distributed is initialized
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ..data.augment import normalize
from ..data.cifar10 import Split
from ..errors import TinyFormerError
from ..models.supernet import Supernet
from .supernet import recalibrating

METHODS = ("vmap", "map", "loop", "shard")


def _split(model: Supernet):
    """(train graph with BatchNorm momentum 0, eval graph, BatchNorm statistics, the rest)."""
    with recalibrating(model):
        gd_train, stats, rest = nnx.split(model, nnx.BatchStat, ...)
    gd_eval, _, _ = nnx.split(model, nnx.BatchStat, ...)
    return gd_train, gd_eval, stats, rest


def _recalibrate_one(gd_train, stats, rest, path, calib):
    """This path's BatchNorm statistics: one train-mode forward on the calibration batch."""
    stats = jax.tree.map(jnp.copy, stats)  # values of this trace (lax.map's body closes over the caller's)
    m = nnx.merge(gd_train, stats, rest)
    m(calib, path)
    return nnx.state(m, nnx.BatchStat)


def _logits_one(gd_eval, stats, rest, path, x):
    return nnx.merge(gd_eval, stats, rest)(x, path)


@functools.lru_cache(maxsize=8)
def _compiled(gd_train, gd_eval, method: str):
    """(recalibrate, logits) for all paths in one call each (one path per call for `loop`)."""
    recal = functools.partial(_recalibrate_one, gd_train)
    one = functools.partial(_logits_one, gd_eval)
    if method in ("vmap", "shard"):
        return (jax.jit(jax.vmap(recal, in_axes=(None, None, 0, None))),
                jax.jit(jax.vmap(one, in_axes=(0, None, 0, None))))
    if method == "map":
        return (jax.jit(lambda st, rest, paths, c: jax.lax.map(lambda p: recal(st, rest, p, c), paths)),
                jax.jit(lambda sts, rest, paths, x: jax.lax.map(lambda sp: one(sp[0], rest, sp[1], x), (sts, paths))))
    return jax.jit(recal), jax.jit(one)


def _put(tree, sharding: NamedSharding):
    """Global arrays from host values every process holds alike (works across jax.distributed processes)."""
    def one(a):
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
    return jax.tree.map(one, tree)


def candidate_mesh(devices: list | None = None) -> Mesh:
    return Mesh(np.asarray(jax.devices() if devices is None else devices), ("cand",))


def evaluator(model: Supernet, paths: np.ndarray, calib_images: np.ndarray, method: str = "map",
              mesh: Mesh | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Recalibrate every path's BatchNorm on `calib_images` (one batch) once; returns a function
    giving the [K, N, classes] logits of all paths for uint8 NHWC images."""
    if method not in METHODS:
        raise TinyFormerError(f"candidate evaluation method {method!r}: choose one of {', '.join(METHODS)}")
    gd_train, gd_eval, stats, rest = _split(model)
    recal, one = _compiled(gd_train, gd_eval, method)
    paths = jnp.asarray(paths, jnp.int32)
    calib = normalize(calib_images)
    if method == "loop":
        per_path = [(p, recal(stats, rest, p, calib)) for p in paths]
        return lambda images: np.stack([np.asarray(one(st, rest, p, normalize(images))) for p, st in per_path])
    if method == "shard":
        mesh = mesh or candidate_mesh()
        if len(paths) % mesh.devices.size:
            raise TinyFormerError(f"{len(paths)} candidates do not split over {mesh.devices.size} devices")
        rep = NamedSharding(mesh, P())
        stats, rest, calib = _put((stats, rest, calib), rep)
        paths = _put(paths, NamedSharding(mesh, P("cand")))
        path_stats = recal(stats, rest, paths, calib)

        def sharded(images: np.ndarray) -> np.ndarray:
            out = one(path_stats, rest, paths, _put(normalize(images), rep))
            return np.asarray(multihost_utils.process_allgather(out, tiled=True) if jax.process_count() > 1 else out)
        return sharded
    path_stats = recal(stats, rest, paths, calib)
    return lambda images: np.asarray(one(path_stats, rest, paths, normalize(images)))


def logits(model: Supernet, paths: np.ndarray, calib_images: np.ndarray, images: np.ndarray,
           method: str = "map", mesh: Mesh | None = None) -> np.ndarray:
    """[K, N, classes] logits of every path for uint8 NHWC `images`, each path's BatchNorm
    recalibrated on `calib_images` (one batch)."""
    return evaluator(model, paths, calib_images, method, mesh)(images)


def evaluate(model: Supernet, paths: np.ndarray, calib_images: np.ndarray, test: Split, method: str = "map",
             batch: int = 1000) -> np.ndarray:
    """Test accuracy of every path (BatchNorm recalibrated once per path), `batch` test images per call."""
    run = evaluator(model, paths, calib_images, method)
    correct = np.zeros(len(paths))
    for i in range(0, len(test.labels), batch):
        correct += (run(test.images[i:i + batch]).argmax(-1) == test.labels[i:i + batch][None]).sum(-1)
    return correct / len(test.labels)


def masked_accuracy(model: Supernet, path, masks: dict[tuple, np.ndarray], calib_images: np.ndarray, test: Split,
                    batch: int = 1000) -> float:
    """Accuracy of one path with its weights times `masks` ({supernet variable key: 0/1 array of
    its shape}), BatchNorm recalibrated for the masked network; the weights are data, so one
    compiled function (the loop form) serves every path and mask."""
    gd_train, gd_eval, stats, rest = _split(model)
    recal, one = _compiled(gd_train, gd_eval, "loop")
    rest = nnx.from_flat_state([(k, v.replace(v[...] * masks[k]) if k in masks else v)
                                for k, v in nnx.to_flat_state(rest)])
    p = jnp.asarray(path, jnp.int32)
    st = recal(stats, rest, p, normalize(calib_images))
    correct = 0
    for i in range(0, len(test.labels), batch):
        out = np.asarray(one(st, rest, p, normalize(test.images[i:i + batch])))
        correct += int((out.argmax(-1) == test.labels[i:i + batch]).sum())
    return correct / len(test.labels)
