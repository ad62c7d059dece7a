"""Many supernet paths evaluated per compiled call, each after its own BatchNorm recalibration.

Per path p: BatchNorm statistics = the batch statistics of p on the calibration images (a
forward in train mode with momentum 0), computed once; then logits of test images in eval mode
with them. Each path may come with its own weight masks (SparseNAS: a pruned candidate); the
masked weights are then data with a leading path axis like the paths. Four forms of the same
computation, one function (`evaluator`):
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
from ..models.supernet import Supernet, dispatching
from .supernet import recalibrating

METHODS = ("vmap", "map", "loop", "shard")


def resolve_method(method: str) -> str:
    """`auto`: lax.map on CPU (measured fastest there, masked or not: benchmarks/candidates*_cpu.json;
    at full scale 35.1 vs 44.5 s per candidate and 2.7 vs 7.0 GB, WORKSPACE), vmap on an accelerator;
    any other name unchanged."""
    if method != "auto":
        return method
    return "map" if jax.default_backend() == "cpu" else "vmap"


def _split(model: Supernet, method: str):
    """(train graph with BatchNorm momentum 0, eval graph, BatchNorm statistics, the rest); the
    graphs dispatch by masks where the paths are vmapped, else by switch (models/supernet.py)."""
    with dispatching(model, "mask" if method in ("vmap", "shard") else "switch"):
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
def _compiled(gd_train, gd_eval, method: str, per_path_weights: bool = False):
    """(recalibrate, logits) for all paths in one call each (one path per call for `loop`); with
    `per_path_weights` the weights (`rest`) carry the path axis too."""
    recal = functools.partial(_recalibrate_one, gd_train)
    one = functools.partial(_logits_one, gd_eval)
    w = 0 if per_path_weights else None
    if method in ("vmap", "shard"):
        return (jax.jit(jax.vmap(recal, in_axes=(None, w, 0, None))),
                jax.jit(jax.vmap(one, in_axes=(0, w, 0, None))))
    if method == "map" and per_path_weights:
        return (jax.jit(lambda st, rests, paths, c: jax.lax.map(lambda rp: recal(st, rp[0], rp[1], c), (rests, paths))),
                jax.jit(lambda sts, rests, paths, x: jax.lax.map(lambda a: one(a[0], a[1], a[2], x),
                                                                 (sts, rests, paths))))
    if method == "map":
        return (jax.jit(lambda st, rest, paths, c: jax.lax.map(lambda p: recal(st, rest, p, c), paths)),
                jax.jit(lambda sts, rest, paths, x: jax.lax.map(lambda sp: one(sp[0], rest, sp[1], x), (sts, paths))))
    return jax.jit(recal), jax.jit(one)


def _masked(rest, masks: dict[tuple, np.ndarray]):
    """`rest` with the weights in `masks` ({variable key: 0/1 array of its shape}) multiplied by them.
    The product is a JAX array placed like the weight, so every candidate's `rest` has one jit
    signature whichever weights it masks (a NumPy product beside a restored checkpoint's committed
    arrays recompiled the loop form's two functions per candidate: 4.4 s each in the smoke search)."""
    return nnx.from_flat_state([(k, v.replace(v[...] * jnp.asarray(masks[k], v[...].dtype)) if k in masks else v)
                                for k, v in nnx.to_flat_state(rest)])


def _put(tree, sharding: NamedSharding):
    """Global arrays from host values every process holds alike (works across jax.distributed processes)."""
    def one(a):
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
    return jax.tree.map(one, tree)


def candidate_mesh(devices: list | None = None) -> Mesh:
    return Mesh(np.asarray(jax.devices() if devices is None else devices), ("cand",))


def evaluator(model: Supernet, paths: np.ndarray, calib_images: np.ndarray, method: str = "map",
              mesh: Mesh | None = None, masks: list[dict[tuple, np.ndarray]] | None = None
              ) -> Callable[[np.ndarray], np.ndarray]:
    """Recalibrate every path's BatchNorm on `calib_images` (one batch) once; returns a function
    giving the [K, N, classes] logits of all paths for uint8 NHWC images. `masks`: one dict per
    path ({supernet variable key: 0/1 array of its shape}) multiplying that path's weights."""
    method = resolve_method(method)
    if method not in METHODS:
        raise TinyFormerError(f"candidate evaluation method {method!r}: choose one of auto, {', '.join(METHODS)}")
    if masks is not None and len(masks) != len(paths):
        raise TinyFormerError(f"{len(masks)} mask sets for {len(paths)} candidates")
    gd_train, gd_eval, stats, rest = _split(model, method)
    recal, one = _compiled(gd_train, gd_eval, method, masks is not None)
    paths = jnp.asarray(paths, jnp.int32)
    calib = normalize(calib_images)
    rests = [rest] * len(paths) if masks is None else [_masked(rest, m) for m in masks]
    if method == "loop":
        per_path = [(p, r, recal(stats, r, p, calib)) for p, r in zip(paths, rests)]
        return lambda images: np.stack([np.asarray(one(st, r, p, normalize(images))) for p, r, st in per_path])
    if masks is not None:
        rest = jax.tree.map(lambda *a: np.stack(a), *rests)
    if method == "shard":
        mesh = mesh or candidate_mesh()
        if len(paths) % mesh.devices.size:
            raise TinyFormerError(f"{len(paths)} candidates do not split over {mesh.devices.size} devices")
        rep = NamedSharding(mesh, P())
        stats, calib = _put((stats, calib), rep)
        rest = _put(rest, rep if masks is None else NamedSharding(mesh, P("cand")))
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
             batch: int = 1000, masks: list[dict[tuple, np.ndarray]] | None = None,
             mesh: Mesh | None = None) -> np.ndarray:
    """Test accuracy of every path (BatchNorm recalibrated once per path, with that path's
    `masks` when given), `batch` test images per call."""
    run = evaluator(model, paths, calib_images, method, mesh, masks)
    correct = np.zeros(len(paths))
    for i in range(0, len(test.labels), batch):
        correct += (run(test.images[i:i + batch]).argmax(-1) == test.labels[i:i + batch][None]).sum(-1)
    return correct / len(test.labels)
