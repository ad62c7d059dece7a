"""Many supernet paths evaluated per compiled call, each after its own BatchNorm recalibration.

Per path p: BatchNorm statistics = the batch statistics of p on the calibration images (a
forward in train mode with momentum 0), then logits of the test images in eval mode with them.
Four forms of the same computation, one function (`evaluate`):
  vmap   jax.vmap over the K paths: one call, the K networks batched
  map    jax.lax.map over the K paths: one call, the paths one after another
  loop   a Python loop, one compiled call per path (the baseline)
  shard  vmap with the paths split over all devices (jax.sharding mesh axis "cand", the model
         replicated); over several processes when jax.distributed is initialized
"""
from __future__ import annotations

import functools

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

METHODS = ("vmap", "map", "loop", "shard")


def _graphdefs(model: Supernet):
    """(train graph with BatchNorm momentum 0, eval graph, state): the two halves of one path."""
    bns = [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.BatchNorm)]
    saved = [bn.momentum for bn in bns]
    try:
        for bn in bns:
            bn.momentum = 0.0
        model.train()
        gd_train, state = nnx.split(model)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
    model.eval()
    gd_eval, _ = nnx.split(model)
    return gd_train, gd_eval, state


def _one_path(gd_train, gd_eval, state, path, calib, x):
    state = jax.tree.map(jnp.copy, state)  # values of this trace (lax.map's body closes over the caller's)
    m = nnx.merge(gd_train, state)
    m(calib, path)  # momentum 0: running statistics := this path's batch statistics
    return nnx.merge(gd_eval, nnx.state(m))(x, path)


@functools.lru_cache(maxsize=8)
def _compiled(gd_train, gd_eval, method: str):
    one = functools.partial(_one_path, gd_train, gd_eval)
    if method in ("vmap", "shard"):
        return jax.jit(jax.vmap(one, in_axes=(None, 0, None, None)))
    if method == "map":
        return jax.jit(lambda state, paths, calib, x: jax.lax.map(lambda p: one(state, p, calib, x), paths))
    return jax.jit(one)


def _put(tree, sharding: NamedSharding):
    """Global arrays from host values every process holds alike (works across jax.distributed processes)."""
    def one(a):
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
    return jax.tree.map(one, tree)


def candidate_mesh(devices: list | None = None) -> Mesh:
    return Mesh(np.asarray(jax.devices() if devices is None else devices), ("cand",))


def logits(model: Supernet, paths: np.ndarray, calib_images: np.ndarray, images: np.ndarray,
           method: str = "map", mesh: Mesh | None = None) -> np.ndarray:
    """[K, N, classes] logits of every path for uint8 NHWC `images`, each path's BatchNorm
    recalibrated on `calib_images` (one batch)."""
    if method not in METHODS:
        raise TinyFormerError(f"candidate evaluation method {method!r}: choose one of {', '.join(METHODS)}")
    gd_train, gd_eval, state = _graphdefs(model)
    fn = _compiled(gd_train, gd_eval, method)
    paths = jnp.asarray(paths, jnp.int32)
    calib, x = normalize(calib_images), normalize(images)
    if method == "loop":
        return np.stack([np.asarray(fn(state, p, calib, x)) for p in paths])
    if method == "shard":
        mesh = mesh or candidate_mesh()
        if len(paths) % mesh.devices.size:
            raise TinyFormerError(f"{len(paths)} candidates do not split over {mesh.devices.size} devices")
        state, calib, x = _put((state, calib, x), NamedSharding(mesh, P()))
        out = fn(state, _put(paths, NamedSharding(mesh, P("cand"))), calib, x)
        return np.asarray(multihost_utils.process_allgather(out, tiled=True) if jax.process_count() > 1 else out)
    return np.asarray(fn(state, paths, calib, x))


def evaluate(model: Supernet, paths: np.ndarray, calib_images: np.ndarray, test: Split, method: str = "map",
             batch: int = 1000) -> np.ndarray:
    """Test accuracy of every path (after its BatchNorm recalibration), `batch` test images per call."""
    correct = np.zeros(len(paths))
    for i in range(0, len(test.labels), batch):
        out = logits(model, paths, calib_images, test.images[i:i + batch], method)
        correct += (out.argmax(-1) == test.labels[i:i + batch][None]).sum(-1)
    return correct / len(test.labels)
