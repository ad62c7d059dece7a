"""Write the bundled example: the zoo's hybrid CNN+attention model as QDQ int8 ONNX, plus inputs.

Inputs for --verify are CIFAR-10 test images from ../shared/data/cifar10 when Pillow and the
data are there (normalized to mean 0, std 1 per channel), random normal images otherwise.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sparse_engine import zoo  # noqa: E402

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "test.npz"


def cifar_images(n: int) -> np.ndarray | None:
    try:
        from PIL import Image
    except ImportError:
        return None
    if not CIFAR.exists():
        return None
    d = np.load(CIFAR)
    jpeg, off = d["jpeg"], d["offsets"]
    x = np.stack([np.asarray(Image.open(io.BytesIO(jpeg[off[i]:off[i + 1]].tobytes())).convert("RGB"))
                  for i in range(n)]).astype(np.float32) / 255.0
    x = (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))
    return x.transpose(0, 3, 1, 2)[:, None]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=32)
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    images = cifar_images(args.images)
    source = "CIFAR-10 test images" if images is not None else "random normal images"
    if images is None:
        images = np.random.default_rng(1).normal(size=(args.images, 1, 3, 32, 32)).astype(np.float32)
    zoo.quantize_qdq(zoo.hybrid(), out, calibration=images[:16])
    np.save(out.parent / "inputs.npy", images.astype(np.float32))
    print(f"wrote {out} and {len(images)} {source} to {out.parent / 'inputs.npy'}", file=sys.stderr)


if __name__ == "__main__":
    main()
