"""TFLite integer arithmetic in NumPy: the rounding every kernel must reproduce bit for bit.

All functions take and return int64 arrays holding int32 values, so intermediate
products never overflow NumPy; results are wrapped or saturated exactly as the C does.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ~= q * 2**(shift - 31), q an int32 with |q| in [2^30, 2^31).

    Negative reals give a negative q (used by LayerNorm/BatchNorm with negative gamma).
    """
    if real == 0.0 or not math.isfinite(real):
        if not math.isfinite(real):
            raise ValueError(f"non-finite requantization multiplier {real}")
        return 0, 0
    sign = -1 if real < 0 else 1
    mant, shift = math.frexp(abs(real))
    q = int(math.floor(mant * (1 << 31) + 0.5))
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return sign * INT32_MAX, 30
    return sign * q, shift


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (what `(int32_t)(uint32_t)` does)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _trunc_div_pow2(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division by 2**bits (rounds toward zero)."""
    q = np.abs(x) >> bits
    return np.where(x < 0, -q, q)


def srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul of int32 values."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    res = _trunc_div_pow2(ab + nudge, 31)
    return np.where(overflow, INT32_MAX, res)


def rdbpot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def mbqm(x: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier (TFLite double rounding); left shift wraps like the C."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap32(np.asarray(x, dtype=np.int64) << left)
    return rdbpot(srdhm(shifted, mult), right)


def mbqm_single(x: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """TFLite's single-rounding requantization (what LiteRT's reference FullyConnected computes):
    (x * mult + 2^(30 - shift)) >> (31 - shift) in 64 bits, rounding half up once. Needs mult >= 0
    and shift <= 30; `lowering.multipliers` keeps x * 2^shift within int32."""
    total = 31 - np.asarray(shift, dtype=np.int64)
    prod = np.asarray(x, dtype=np.int64) * np.asarray(mult, dtype=np.int64)
    # x * mult fits int64 (|x| < 2^31, mult < 2^31), and so does the rounding term
    return (prod + (np.int64(1) << (total - 1))) >> total


def round_div(acc: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """acc / count rounded half away from zero, as TFLite's reference average pool computes it
    (C's truncating division of acc +- count / 2); count > 0."""
    acc = np.asarray(acc, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    q = (np.abs(acc) + count // 2) // count
    return np.where(acc < 0, -q, q)


def clamp_int8(x: np.ndarray, lo: int = -128, hi: int = 127) -> np.ndarray:
    return np.clip(x, lo, hi).astype(np.int8)


def round_half_even(x: np.ndarray) -> np.ndarray:
    """Round as ONNX QuantizeLinear does (ties to even)."""
    return np.rint(x)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """ONNX QuantizeLinear to int8."""
    return clamp_int8(round_half_even(np.asarray(x, dtype=np.float64) / scale) + zero_point)


def dequantize(q: np.ndarray, scale: float | np.ndarray, zero_point: int | np.ndarray) -> np.ndarray:
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale


def isqrt(x: np.ndarray) -> np.ndarray:
    """floor(sqrt(x)) for non-negative integers, exact (the C's bitwise algorithm gives the same)."""
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros_like(x)
    for idx, v in np.ndenumerate(x):
        out[idx] = math.isqrt(int(v))
    return out
