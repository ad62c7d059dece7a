"""TFLite rounding primitives against an exact big-integer reference."""
from __future__ import annotations

import math

import numpy as np

from sparse_engine import qmath


def ref_srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return int(math.trunc((ab + nudge) / (1 << 31))) if abs(ab) < 2**52 else \
        (abs(ab + nudge) // (1 << 31)) * (1 if ab + nudge >= 0 else -1)


def ref_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def test_srdhm_and_rdbpot_match_reference():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.integers(-(2**31), 2**31, 2000), [-(2**31), 2**31 - 1, 0, -1, 1]])
    b = np.concatenate([rng.integers(-(2**31), 2**31, 2000), [-(2**31), 2**31 - 1, 0, -1, 1]])
    got = qmath.srdhm(a, b)
    assert [int(v) for v in got] == [ref_srdhm(int(x), int(y)) for x, y in zip(a, b)]
    e = rng.integers(0, 32, a.size)
    got = qmath.rdbpot(a, e)
    assert [int(v) for v in got] == [ref_rdbpot(int(x), int(k)) for x, k in zip(a, e)]


def test_rdbpot_rounds_half_away_from_zero():
    assert list(qmath.rdbpot(np.array([5, -5, 6, -6, 7, -7]), 1)) == [3, -3, 3, -3, 4, -4]


def test_quantize_multiplier_represents_the_real_value():
    for real in [1e-6, 0.0003, 0.25, 0.5, 0.999999, 1.0, 3.7, -0.42, 1234.5]:
        q, shift = qmath.quantize_multiplier(real)
        assert 2**30 <= abs(q) < 2**31
        assert abs(q * 2.0 ** (shift - 31) - real) <= abs(real) * 2**-30
    assert qmath.quantize_multiplier(0.0) == (0, 0)


def test_mbqm_close_to_float():
    rng = np.random.default_rng(1)
    x = rng.integers(-(2**20), 2**20, 5000)
    for real in [0.00123, 0.37, 0.9, 2.5]:
        q, s = qmath.quantize_multiplier(real)
        assert np.max(np.abs(qmath.mbqm(x, q, s) - x * real)) <= 1.0


def test_isqrt_exact():
    vals = np.array([0, 1, 2, 3, 4, 15, 16, 17, 2**31 - 1, 2**40, 2**62 - 1])
    assert [int(v) for v in qmath.isqrt(vals)] == [math.isqrt(int(v)) for v in vals]
