"""CIFAR-10 from the official python batches or from the JPEG copy in ../shared/data/cifar10.

Accepted under the data directory (checked in this order):
  * `train.npz` + `test.npz`: the JPEG copy (see its README), decoded with Pillow;
  * `cifar-10-batches-py/` or the batch files themselves (`data_batch_1..5`, `test_batch`);
  * `cifar-10-python.tar.gz`.
Images come back as uint8 NHWC, labels as int32, in the canonical order.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TinyFormerError

ENV_VAR = "TINYFORMER_DATA"
DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
BATCHES = (*TRAIN_BATCHES, "test_batch")
SIZES = {"train": 50_000, "test": 10_000}
HELP = ("put cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html), its extracted "
        "cifar-10-batches-py/ folder, or train.npz + test.npz of the JPEG copy there, or point "
        f"--data_dir / ${ENV_VAR} at such a folder")


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, 32, 32, 3]
    labels: np.ndarray  # int32 [N]


@dataclass(frozen=True)
class Cifar10:
    train: Split
    test: Split
    source: str


def resolve_dir(data_dir: str | os.PathLike | None) -> Path:
    """The flag if given, else $TINYFORMER_DATA, else ../shared/data/cifar10 beside the clone."""
    for candidate in (data_dir, os.environ.get(ENV_VAR)):
        if candidate:
            return Path(candidate).expanduser()
    return DEFAULT_DIR


def load(data_dir: str | os.PathLike | None = None, limit_train: int | None = None,
         expected: dict[str, int] | None = SIZES) -> Cifar10:
    """Both splits, checked: 32x32x3 uint8, labels 0..9, the expected counts (None: any count,
    for test fixtures). `limit_train` keeps the first N training images (smoke runs)."""
    root = resolve_dir(data_dir)
    if not root.exists():
        raise TinyFormerError(f"CIFAR-10 not found: {root} does not exist; {HELP}")
    if (root / "train.npz").exists() or (root / "test.npz").exists():
        # only the kept images are decoded (decoding all 50,000 JPEGs takes about 10 s)
        (train, n_train), (test, n_test) = _npz_split(root / "train.npz", limit_train), _npz_split(root / "test.npz")
        source = f"{root} (JPEG copy)"
    else:
        batches = _python_batches(root)
        train = _concat([batches[b] for b in TRAIN_BATCHES])
        test, source = batches["test_batch"], f"{root} (python batches)"
        n_train, n_test = len(train.labels), len(test.labels)
        if limit_train:
            train = Split(train.images[:limit_train], train.labels[:limit_train])
    _check(train, "train", root, expected, n_train)
    _check(test, "test", root, expected, n_test)
    return Cifar10(train, test, source)


def _check(split: Split, name: str, root: Path, expected: dict[str, int] | None, total: int) -> None:
    """`split` as kept; `total`: the images the file holds (counted before `limit_train`)."""
    x, y = split.images, split.labels
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3) or x.dtype != np.uint8 or len(x) != len(y):
        raise TinyFormerError(f"{root}: {name} split is corrupt: images {x.shape} {x.dtype}, {len(y)} labels")
    if expected and total != expected[name]:
        raise TinyFormerError(f"{root}: {name} split has {total:,} images, expected {expected[name]:,}; {HELP}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise TinyFormerError(f"{root}: {name} labels outside 0..9 (corrupt file)")


def _concat(parts: list[Split]) -> Split:
    return Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))


def _npz_split(path: Path, limit: int | None = None) -> tuple[Split, int]:
    """The first `limit` images (all if None) decoded, and how many the file holds."""
    from PIL import Image

    if not path.exists():
        raise TinyFormerError(f"{path} is missing (the JPEG copy needs train.npz and test.npz); {HELP}")
    try:
        with np.load(path, allow_pickle=False) as d:
            jpeg, off, y = d["jpeg"], d["offsets"], d["y"]
        keep = len(y) if not limit else min(limit, len(y))
        images = np.stack([np.asarray(Image.open(io.BytesIO(jpeg[off[i]:off[i + 1]].tobytes())).convert("RGB"))
                           for i in range(keep)])
    except Exception as exc:  # zip, key, JPEG or shape errors: all mean a corrupt file
        raise TinyFormerError(f"{path}: cannot read the JPEG copy ({type(exc).__name__}: {exc}); {HELP}") from None
    return Split(images, y[:keep].astype(np.int32)), len(y)


def _python_batches(root: Path) -> dict[str, Split]:
    """The six pickled batches from a folder (or its cifar-10-batches-py/) or from the tarball."""
    for folder in (root / "cifar-10-batches-py", root):
        if (folder / "test_batch").exists():
            return {name: _decode_batch(folder / name, (folder / name).read_bytes() if (folder / name).exists()
                                        else None) for name in BATCHES}
    tar_path = root / "cifar-10-python.tar.gz" if root.is_dir() else root
    if not tar_path.is_file():
        raise TinyFormerError(f"CIFAR-10 not found in {root}; {HELP}")
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            blobs = {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers()
                     if m.isfile() and Path(m.name).name in BATCHES}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TinyFormerError(f"{tar_path}: corrupt or truncated archive ({exc}); {HELP}") from None
    return {name: _decode_batch(tar_path / name, blobs.get(name)) for name in BATCHES}


def _decode_batch(path: Path, blob: bytes | None) -> Split:
    if blob is None:
        raise TinyFormerError(f"{path} is missing; {HELP}")
    try:
        d = pickle.loads(blob, encoding="bytes")
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int32)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except Exception as exc:
        raise TinyFormerError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    return Split(np.ascontiguousarray(images), labels)
