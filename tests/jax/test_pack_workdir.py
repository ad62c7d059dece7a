"""scripts/pack_workdir.py: a workdir packed into parts for a lent machine's file limit comes back
whole after rejoining, less older checkpoints and TensorBoard files."""
from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_parts_rejoin_to_the_workdir_with_only_the_newest_checkpoints(tmp_path):
    work, out, back = tmp_path / "work", tmp_path / "out", tmp_path / "back"
    files = {"supernas.json": b"{}", "supernet/metrics.jsonl": b"row\n" * 1000,
             "supernet/checkpoints/500/params": bytes(range(256)) * 300,
             "supernet/checkpoints/1000/params": bytes(range(255, -1, -1)) * 300,
             "prune0/checkpoints/20/params": b"p" * 5000, "search/state.json": b"{\"generation\": 3}",
             "tensorboard/supernet/events": b"e" * 100}
    for name, data in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    (out).mkdir()
    (out / "workdir.tar.07").write_bytes(b"stale part of an earlier pack")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "pack_workdir.py"), str(work), str(out),
                           "--part-mib", str(40_000 / 2**20)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    parts = sorted(out.glob("workdir.tar.*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 40_000 for p in parts)
    assert [p.name for p in parts] == [f"workdir.tar.{i:02d}" for i in range(len(parts))]  # the stale .07 is gone
    (tmp_path / "joined.tar").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "joined.tar") as tar:
        tar.extractall(back, filter="data")
    got = {str(p.relative_to(back)): p.read_bytes() for p in back.rglob("*") if p.is_file()}
    assert got == {k: v for k, v in files.items() if "checkpoints/500" not in k and "tensorboard" not in k}


def test_a_missing_workdir_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "pack_workdir.py"), str(tmp_path / "nope"),
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip() == f"pack_workdir: {tmp_path / 'nope'} is not a folder"
