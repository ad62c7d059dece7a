"""Pack a run's workdir for the trip back from a lent machine: a tar of everything except older
checkpoints (only each stage's newest is kept) and TensorBoard files, cut into parts small enough
for the machine's file limit. Rejoin with `cat workdir.tar.* > .devkit/workdir.tar`.

    python scripts/pack_workdir.py WORKDIR OUT_DIR [--part-mib 15]
"""
from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path


def newest_checkpoints(workdir: Path) -> set[Path]:
    """The step folders to leave out: all but the newest under every `checkpoints` folder."""
    skip = set()
    for ck in workdir.rglob("checkpoints"):
        steps = sorted((p for p in ck.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
        skip.update(steps[:-1])
    return skip


def pack(workdir: Path, out: Path, part_bytes: int) -> list[Path]:
    """Write OUT/workdir.tar.00, .01, ... (members relative to the workdir); returns the parts."""
    skip = newest_checkpoints(workdir)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(workdir, arcname=".", filter=lambda ti: None if (
            workdir / ti.name in skip or ti.name.startswith("./tensorboard")) else ti)
    data = buf.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("workdir.tar.*"):
        old.unlink()
    parts = []
    for i in range(0, max(len(data), 1), part_bytes):
        p = out / f"workdir.tar.{i // part_bytes:02d}"
        p.write_bytes(data[i:i + part_bytes])
        parts.append(p)
    return parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--part-mib", type=float, default=15.0)
    a = ap.parse_args()
    if not a.workdir.is_dir():
        raise SystemExit(f"pack_workdir: {a.workdir} is not a folder")
    parts = pack(a.workdir, a.out, int(a.part_mib * 2**20))
    print(f"pack_workdir: {a.workdir} -> {len(parts)} part(s), {sum(p.stat().st_size for p in parts) / 2**20:.1f} MiB "
          f"in {a.out}")


if __name__ == "__main__":
    main()
