"""Files written whole or not at all: a temporary sibling renamed over the target, so a run
killed mid-write leaves the previous version (resume reads these files)."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _replace(path: str | Path, write: Callable[[Path], None]) -> Path:
    """`write` fills a temporary sibling of `path`, which then replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return _replace(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, obj, indent: int | None = 1) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, default=str) + "\n")


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, np.save would append ".npy" to it
            np.save(f, array)
    return _replace(path, save)
