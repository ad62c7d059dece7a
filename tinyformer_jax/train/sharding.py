"""Data parallelism over all devices (those of every jax.distributed process too): the batch is
split along its first axis, parameters and optimizer state are replicated; jit inserts the
gradient all-reduce. Every process passes the same global batch; each keeps its own devices' part."""
from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def data_mesh(devices: list | None = None) -> Mesh:
    devices = jax.devices() if devices is None else devices
    return Mesh(devices, ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def put_replicated(tree, mesh: Mesh):
    return jax.device_put(tree, replicated(mesh))


def put_batch(arrays, mesh: Mesh):
    return jax.device_put(arrays, batch_sharded(mesh))
