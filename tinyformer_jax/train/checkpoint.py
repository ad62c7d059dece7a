"""Orbax checkpoints of (params, other state, optimizer state) per training stage.

Saves are synchronous and atomic (orbax writes a temporary folder and renames it), so a
kill leaves either the previous checkpoint or the new one, never half of one."""
from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


class Checkpoints:
    def __init__(self, directory: Path, every: int, keep: int = 2):
        directory.mkdir(parents=True, exist_ok=True)
        self.every = every
        self.mgr = ocp.CheckpointManager(
            directory.resolve(),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False),
            item_handlers=ocp.StandardCheckpointHandler())  # so that a new process reads item_metadata

    def latest(self) -> int | None:
        return self.mgr.latest_step()

    def save(self, step: int, state: dict, force: bool = False) -> None:
        if force or step % self.every == 0:
            if self.mgr.latest_step() != step:
                self.mgr.save(step, args=ocp.args.StandardSave(state))
                self.mgr.wait_until_finished()

    def restore(self, step: int, like: dict) -> dict:
        """The checkpoint in the structure of `like`; keys of `like` the checkpoint lacks (written by
        an older version) are left out of the result."""
        saved = set(self.mgr.item_metadata(step).keys())
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, {k: v for k, v in like.items() if k in saved})
        return self.mgr.restore(step, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self.mgr.close()
