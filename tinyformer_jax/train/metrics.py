"""Metrics as JSON lines (one file per stage) and TensorBoard event files."""
from __future__ import annotations

import json
from pathlib import Path

from ..files import write_text


class MetricsWriter:
    """Appends rows {"step": ..., ...}; on resume, rows after the restored step are dropped first
    so a rerun after a kill leaves one row per step. Disabled: writes nothing (the processes of a
    multi-process run other than the first)."""

    def __init__(self, path: Path, tensorboard_dir: Path | None, resume_step: int, enabled: bool = True):
        self.path, self.enabled, self.tb = path, enabled, None
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            rows = [ln for ln in path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in rows if json.loads(ln).get("step", 0) <= resume_step]
            write_text(path, "".join(ln + "\n" for ln in kept))
        if tensorboard_dir is not None:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(tensorboard_dir), purge_step=resume_step + 1 if resume_step else None)

    def write(self, step: int, **values: float) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), **{k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in values.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(k, float(v), int(step))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()


def read(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
