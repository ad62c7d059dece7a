"""CIFAR-10 loading from every accepted layout, and one clear error for missing or corrupt data."""
from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest

from tinyformer_jax.data import augment, cifar10
from tinyformer_jax.errors import TinyFormerError

PER_BATCH = 4


def _batch(seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (PER_BATCH, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, PER_BATCH)
    blob = pickle.dumps({b"data": images.transpose(0, 3, 1, 2).reshape(PER_BATCH, -1),
                         b"labels": labels.tolist()})
    return blob, images, labels


def _write_batches(folder) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True)
    train = []
    for i, name in enumerate(cifar10.BATCHES):
        blob, images, labels = _batch(i)
        (folder / name).write_bytes(blob)
        train.append((images, labels))
    return np.concatenate([t[0] for t in train[:5]]), train[5][0]


def test_python_batches_folder_and_tarball_agree(tmp_path):
    train_x, test_x = _write_batches(tmp_path / "cifar-10-batches-py")
    d = cifar10.load(tmp_path, expected=None)
    np.testing.assert_array_equal(d.train.images, train_x)  # CHW rows -> NHWC
    np.testing.assert_array_equal(d.test.images, test_x)
    tar_dir = tmp_path / "tar"
    tar_dir.mkdir()
    with tarfile.open(tar_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    t = cifar10.load(tar_dir, expected=None)
    np.testing.assert_array_equal(t.train.images, d.train.images)
    np.testing.assert_array_equal(t.train.labels, d.train.labels)


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    _write_batches(tmp_path / "cifar-10-batches-py")
    monkeypatch.setenv(cifar10.ENV_VAR, str(tmp_path))
    assert cifar10.resolve_dir(None) == tmp_path
    assert cifar10.resolve_dir(tmp_path / "flag") == tmp_path / "flag"  # the flag wins
    assert len(cifar10.load(None, expected=None).test.labels) == PER_BATCH


def test_missing_and_corrupt_data_are_one_clear_error(tmp_path):
    with pytest.raises(TinyFormerError, match="does not exist.*cifar-10-python.tar.gz"):
        cifar10.load(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TinyFormerError, match="not found in .*empty.*--data_dir"):
        cifar10.load(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(TinyFormerError, match="corrupt or truncated archive"):
        cifar10.load(bad)
    folder = tmp_path / "ok" / "cifar-10-batches-py"
    _write_batches(folder)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(TinyFormerError, match="data_batch_3: not a CIFAR-10 python batch"):
        cifar10.load(tmp_path / "ok", expected=None)
    (folder / "data_batch_3").unlink()
    with pytest.raises(TinyFormerError, match="data_batch_3 is missing"):
        cifar10.load(tmp_path / "ok", expected=None)
    with pytest.raises(TinyFormerError, match="test_batch: not a CIFAR-10|has 20 images, expected 50,000|missing"):
        cifar10.load(tmp_path / "ok")
    npz = tmp_path / "npz"
    npz.mkdir()
    (npz / "train.npz").write_bytes(b"PK garbage")
    with pytest.raises(TinyFormerError, match="train.npz: cannot read the JPEG copy"):
        cifar10.load(npz)


def test_wrong_image_count_is_rejected(tmp_path):
    _write_batches(tmp_path / "cifar-10-batches-py")
    with pytest.raises(TinyFormerError, match="train split has 20 images, expected 50,000"):
        cifar10.load(tmp_path)


def _write_jpeg_copy(path, n: int, seed: int) -> np.ndarray:
    """An npz in the JPEG-copy layout (jpeg bytes, offsets, y); returns the decoded images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    blobs, decoded = [], []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
        decoded.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    np.savez(path, jpeg=np.concatenate(blobs), offsets=np.cumsum([0] + [len(b) for b in blobs]),
             y=rng.integers(0, 10, n).astype(np.uint8))
    return np.stack(decoded)


def test_jpeg_copy_decodes_only_the_kept_images_and_counts_the_whole_file(tmp_path, monkeypatch):
    train = _write_jpeg_copy(tmp_path / "train.npz", 7, 0)
    test = _write_jpeg_copy(tmp_path / "test.npz", 3, 1)
    d = cifar10.load(tmp_path, limit_train=2, expected=None)
    np.testing.assert_array_equal(d.train.images, train[:2])
    np.testing.assert_array_equal(d.test.images, test)
    assert len(d.train.labels) == 2
    from PIL import Image

    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **kw: opened.append(1) or real_open(*a, **kw))
    cifar10.load(tmp_path, limit_train=2, expected=None)
    assert len(opened) == 2 + 3  # the 5 other training images stay compressed
    with pytest.raises(TinyFormerError, match="train split has 7 images, expected 50,000"):
        cifar10.load(tmp_path, limit_train=2)  # the count is the file's, not the kept part's


def test_augmentation_crops_and_flips_on_device():
    import jax

    x = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)
    n = np.asarray(augment.normalize(x))
    assert n.shape == (2, 3, 32, 32)
    outs = [np.asarray(augment.random_crop_flip(jax.random.key(k), n)) for k in range(8)]
    assert all(o.shape == n.shape for o in outs)
    assert any(not np.array_equal(o, n) for o in outs)
    for o in outs:  # every output is a shifted (maybe flipped) copy: its centre appears in the padded input
        c = o[0, 0, 8:24, 8:24]
        p = np.pad(n[0, 0], 4)
        found = any(np.array_equal(c, p[i + 8:i + 24, j + 8:j + 24]) or np.array_equal(c[:, ::-1], p[i + 8:i + 24, j + 8:j + 24])
                    for i in range(9) for j in range(9))
        assert found
