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


# ---- TFLite's int8 softmax (reference_ops::Softmax, gemmlowp fixed point) ---------------------
SOFTMAX_DIFF_BITS = 5  # input differences in Q5.26
SOFTMAX_ACCUM_BITS = 12  # the sum of exponentials in Q12.19


def _sat_shift_left(x: np.ndarray, e: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent `e`."""
    x = np.asarray(x, dtype=np.int64)
    return np.clip(x << e, INT32_MIN, INT32_MAX)


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """gemmlowp's exp of a Q5.26 value a <= 0, as a Q0.31 raw value."""
    a = np.asarray(a, dtype=np.int64)
    frac = 31 - SOFTMAX_DIFF_BITS
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter
    x = _sat_shift_left(a_mod, SOFTMAX_DIFF_BITS) + (1 << 28)  # Rescale<0>, then + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(srdhm(x4_over_4 + x3, 715827883) + x2, 1)
    result = 1895147668 + srdhm(1895147668, x + poly)
    remainder = a_mod - a
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
                           (3, 720401), (4, 242)):
        if SOFTMAX_DIFF_BITS > exponent:
            bit = (remainder >> (frac + exponent)) & 1
            result = np.where(bit != 0, srdhm(result, mult), result)
    return np.where(a == 0, INT32_MAX, result)


def softmax_input_scaling(beta_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling and CalculateInputRadius: (multiplier, left shift, diff_min) for
    input differences scaled by beta * s_in into Q5.26."""
    real = min(beta_scale * (1 << (31 - SOFTMAX_DIFF_BITS)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    radius = math.floor(((1 << SOFTMAX_DIFF_BITS) - 1) * (1 << (31 - SOFTMAX_DIFF_BITS)) / (1 << shift))
    return mult, shift, -radius


def one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp's 1 / (1 + a) for a in [0, 1) in Q0.31 (Newton-Raphson), the result in Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    t = a + INT32_MAX + np.where(a + INT32_MAX >= 0, 1, -1)
    half = np.where(t >= 0, t // 2, -((-t) // 2))  # RoundingHalfSum(a, One): C's truncating division
    x = wrap32(1515870810 + srdhm(half, -1010580540))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half, x))
        x = wrap32(x + _sat_shift_left(srdhm(x, one_minus), 2))
    return _sat_shift_left(x, 1)


def reciprocal(total: np.ndarray, integer_bits: int = SOFTMAX_ACCUM_BITS) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal of a positive Q(integer_bits) sum: (scale in Q0.31, bits over unit)."""
    total = np.asarray(total, dtype=np.int64)
    headroom = 32 - np.frexp(total.astype(np.float64))[1]  # leading zeros of a positive int32
    shifted = ((total << headroom) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x(shifted), integer_bits - headroom


# ---- TFLite's int8 hard-swish (reference_ops::HardSwish, 16-bit fixed point) ------------------
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul of int16 values."""
    ab = np.asarray(a, dtype=np.int64) * b
    res = _trunc_div_pow2(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 15)
    return np.where((np.asarray(a) == INT16_MIN) & (b == INT16_MIN), INT16_MAX, res)


def _sat_shift16(x: np.ndarray, e: int) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.int64) << e, INT16_MIN, INT16_MAX)


def _q16(real: np.float32) -> tuple[int, int]:
    """QuantizeMultiplier, then the Q31 multiplier rounded to Q15 (DownScaleInt32ToInt16Multiplier)."""
    q, e = quantize_multiplier(float(real))
    return (INT16_MAX if q >= INT32_MAX - (1 << 15) else (q + (1 << 15)) >> 16), e


def hard_swish_params(in_scale: float, out_scale: float) -> tuple[int, int, int, int]:
    """(output multiplier Q15, its exponent, reluish multiplier Q15, its exponent), from float32
    scales as TFLite's Prepare computes them; the output exponent must be <= 0."""
    hires = np.float32(1.0 / 128.0) * np.float32(in_scale)
    out_m, out_e = _q16(hires / np.float32(out_scale))
    rel_m, rel_e = _q16(hires / (np.float32(3.0) / np.float32(32768.0)))
    return out_m, out_e, rel_m, rel_e


def hard_swish(q: np.ndarray, in_zp: int, out_zp: int, params: tuple[int, int, int, int]) -> np.ndarray:
    """TFLite's int8 x * relu6(x + 3) / 6 in 16-bit fixed point, clamped to int8."""
    out_m, out_e, rel_m, rel_e = params
    hires = (np.asarray(q, dtype=np.int64) - in_zp) * 128
    on_out_scale = _srdhm16(hires, out_m)
    reluish = _sat_shift16(hires, rel_e - 1) if rel_e > 0 else hires
    reluish = _srdhm16(reluish, rel_m)
    if rel_e > 0:
        reluish = _sat_shift16(reluish, 1)
    elif rel_e < 0:
        reluish = rdbpot(reluish, -rel_e)
    reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1] in Q15
    prod = reluish * on_out_scale  # SaturatingDoublingHighMul: truncated, never both INT16_MIN here
    out = rdbpot(_trunc_div_pow2(prod, 15), -out_e) + out_zp
    return clamp_int8(((out + (1 << 15)) & 0xFFFF) - (1 << 15))
