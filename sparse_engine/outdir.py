"""The output folder of a compile: which folders may be replaced, one writer at a time, and an
atomic swap of the finished folder for the old one (docs/decisions.md D23).

A compile writes into a temporary folder beside `--out` (`.NAME.tmp-XXXXXXXX`) while it holds
the lock `.NAME.lock`; the finished folder carries MARKER and is exchanged with the old one in a
single rename, so a kill at any moment leaves either the old output or the new one. Temporary
folders left by a killed compile are removed by the next compile into the same folder."""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import EngineError

MARKER = ".sparse_engine_output"
REMOVED = "<build folder, removed>"  # stands for the temporary folder in error messages


def check(out_dir: Path, sources: list[Path]) -> None:
    """Refuse an output folder that a compile must not replace: a file, the working folder or one
    above it, a folder holding the model or an input, a non-empty folder SparseEngine did not write."""
    out_dir = out_dir.resolve()
    for p in [out_dir, *out_dir.parents]:
        if p.exists() and not p.is_dir():
            raise EngineError(f"--out {out_dir}: {p} is a file, not a folder")
    cwd = Path.cwd().resolve()
    if out_dir == cwd or out_dir in cwd.parents:
        raise EngineError(f"--out {out_dir}: is the working folder or holds it; give a folder of its own")
    for s in sources:
        if s.resolve().is_relative_to(out_dir):
            raise EngineError(f"--out {out_dir}: holds {s}, which the compile reads; give another folder")
    if out_dir.is_dir() and not (out_dir / MARKER).exists() and any(out_dir.iterdir()):
        raise EngineError(f"--out {out_dir}: not empty and not written by SparseEngine (no {MARKER}); "
                          "give an empty or new folder")


@contextlib.contextmanager
def writing(out_dir: Path, sources: list[Path]) -> Iterator[Path]:
    """Hold the lock of `out_dir` and yield a fresh temporary folder beside it (removed on exit,
    whatever happens); `install` it to replace `out_dir`."""
    out_dir = out_dir.resolve()
    check(out_dir, sources)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"--out {out_dir}: cannot create {out_dir.parent} ({exc.strerror})") from None
    with _locked(out_dir.parent / f".{out_dir.name}.lock", out_dir):
        check(out_dir, sources)  # again: another compile may have written it while this one waited
        _recover(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        try:
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o777 & ~umask)  # as a plain mkdir would: mkdtemp makes it 0700
            yield tmp
        except EngineError as exc:  # its message must not send the user to a folder removed below
            exc.args = (str(exc).replace(str(tmp), REMOVED),)
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def install(tmp: Path, out_dir: Path) -> None:
    """Mark `tmp` as SparseEngine's and put it in place of `out_dir` in one step; the old folder
    is removed afterwards."""
    out_dir = out_dir.resolve()
    (tmp / MARKER).write_text("written by sparse_engine compile; a later compile may replace this folder\n")
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    if _exchange(tmp, out_dir):
        shutil.rmtree(tmp)  # now the old output
        return
    # no RENAME_EXCHANGE (not Linux, or a filesystem without it): two renames; `_recover` puts a
    # folder killed between them back in place
    old = out_dir.parent / f".{out_dir.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old)


def _recover(out_dir: Path) -> None:
    """Under the lock: remove what a killed compile left beside `out_dir`."""
    old = out_dir.parent / f".{out_dir.name}.old"
    if old.is_dir() and not out_dir.exists():
        old.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path, out_dir: Path) -> Iterator[None]:
    """An exclusive flock on `path`, which is removed on release. Fails at once with one line
    if another compile holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EngineError(f"--out {out_dir}: another compile is writing it (lock {path}); "
                              "wait for it or choose another folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed it just before releasing: lock the new file
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically with Linux's renameat2(RENAME_EXCHANGE); False where the
    system or filesystem has no such call."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))
