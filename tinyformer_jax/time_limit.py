"""A wall-clock limit for one run (launch flag --time_limit): training stages and the search check
it at their save points and stop there with everything saved, so rerunning the same command
resumes. Meant for job queues with a time limit and for machines lent in fixed-length commands."""
from __future__ import annotations

import time
from typing import NoReturn

_deadline: float | None = None


class TimeLimitReached(Exception):
    """The run stopped at a save point because its time limit passed; a rerun resumes."""


def start(seconds: float | None) -> None:
    """Limit the run to `seconds` from now (None or <= 0: no limit)."""
    global _deadline
    _deadline = time.monotonic() + seconds if seconds and seconds > 0 else None


def limited() -> bool:
    """Whether this run has a limit (every process of a run gets the same flags)."""
    return _deadline is not None


def expired() -> bool:
    return _deadline is not None and time.monotonic() >= _deadline


def stop(where: str) -> NoReturn:
    """Raise TimeLimitReached naming `where` (what was saved): the caller found expired() true."""
    raise TimeLimitReached(f"time limit reached: {where}; rerun the same command to resume")
