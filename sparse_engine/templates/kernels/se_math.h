/* Integer primitives shared by the portable and the Cortex-M DSP kernels.
 * TFLite's requantization (saturating rounding doubling high multiply, rounding divide by a power
 * of two) and, for the DSP kernels, the SIMD instructions they use: real instructions on a core
 * with the DSP extension, and C that computes the same bits everywhere else (host tests). */
#ifndef SPARSE_ENGINE_SE_MATH_H
#define SPARSE_ENGINE_SE_MATH_H

#include <stdint.h>
#include <string.h>

static inline int32_t se_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

static inline int32_t se_rdbpot(int32_t x, int32_t exponent) {
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t se_mbqm(int32_t x, int32_t mult, int32_t shift) {
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    return se_rdbpot(se_srdhm((int32_t)((uint32_t)x << left), mult), right);
}

/* se_mbqm for a multiplier other than INT32_MIN, which no quantized multiplier is (|m| < 2^31).
 * Then SRDHM cannot saturate and TFLite's nudge-and-truncate equals floor((x*m + 2^30) / 2^31)
 * for either sign of x*m: one 64-bit multiply-accumulate and a shift. */
static inline int32_t se_mbqm_floor(int32_t x, int32_t mult, int32_t shift) {
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    int64_t ab = (int64_t)(int32_t)((uint32_t)x << left) * mult + (1LL << 30);
    int32_t v = (int32_t)(ab >> 31);
    int32_t mask = (int32_t)((1u << right) - 1u);
    int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)v >> 31);
    return (v >> right) + ((v & mask) > threshold);
}

/* TFLite's single-rounding requantization, which LiteRT's reference FullyConnected computes:
 * (x * mult + 2^(30 - shift)) >> (31 - shift) in 64 bits (mult >= 0, shift <= 30). */
static inline int32_t se_mbqm_single(int32_t x, int32_t mult, int32_t shift) {
    const int32_t total = 31 - shift;
    return (int32_t)(((int64_t)x * mult + (1LL << (total - 1))) >> total);
}

/* The requantization of an FC layer: single rounding (`single`, TFLite's FullyConnected) or
 * se_mbqm's double rounding (a 1x1 conv run by an FC kernel). */
static inline int32_t se_requant(int32_t x, int32_t mult, int32_t shift, int32_t single) {
    return single ? se_mbqm_single(x, mult, shift) : se_mbqm(x, mult, shift);
}

/* v clamped to [lo, hi]; needs lo <= hi (the importer makes a Clip with min > max lo = hi). */
static inline int8_t se_clamp(int32_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Unaligned 32-bit load and store (LDR/STR on ARMv7-M, which allows unaligned word access). */
static inline uint32_t se_ld32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline void se_st32(void *p, uint32_t v) { memcpy(p, &v, 4); }

/* Halfword pair (lo, hi) with each lane sign-extended and wrapped to 16 bits. */
static inline uint32_t se_pair(int32_t lo, int32_t hi) { return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16); }

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* SXTAB16 off, x: the even bytes of x sign-extended into halfwords, plus the halfwords of off. */
static inline uint32_t se_sxtab16(uint32_t off, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(off), "r"(x));
    return r;
}
/* The same for the odd bytes (x rotated right by 8). */
static inline uint32_t se_sxtab16_ror8(uint32_t off, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(off), "r"(x));
    return r;
}
static inline uint32_t se_sxtb16(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t se_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* SMLAD: acc + x.lo*y.lo + x.hi*y.hi (wrapping). */
static inline int32_t se_smlad(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}
/* SMMULR: (a*b + 2^31) >> 32. */
static inline int32_t se_smmulr(int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* SMMUL: (a*b) >> 32 (rounded down). */
static inline int32_t se_smmul(int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmul %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline int32_t se_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}
static inline int32_t se_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}
static inline int32_t se_smlabt(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlabt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}
static inline int32_t se_smlatb(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}
/* Halfword pairs as (lo, hi): PKHBT a, b, LSL #16 gives (a.lo, b.lo); PKHTB a, b, ASR #16 (b.hi, a.hi). */
static inline uint32_t se_pkhbt16(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t se_pkhtb16(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* CLZ: leading zero bits, 32 for 0. */
static inline int32_t se_clz(uint32_t x) {
    int32_t r;
    __asm__("clz %0, %1" : "=r"(r) : "r"(x));
    return r;
}
/* SSAT #8: v clamped to [-128, 127]. */
static inline int32_t se_ssat8(int32_t v) {
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
}
/* USUB8: four bytewise differences a - b, each wrapped to 8 bits. */
static inline uint32_t se_usub8(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("usub8 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}
/* SSUB8 then SEL: the bytewise signed maximum of a and b. */
static inline uint32_t se_max8(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}
#else
static inline int32_t se_lo16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x & 0xFFFFu); }
static inline int32_t se_hi16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x >> 16); }
static inline uint32_t se_sxtab16(uint32_t off, uint32_t x) {
    return se_pair(se_lo16(off) + (int8_t)(x & 0xFFu), se_hi16(off) + (int8_t)((x >> 16) & 0xFFu));
}
static inline uint32_t se_sxtab16_ror8(uint32_t off, uint32_t x) { return se_sxtab16(off, (x >> 8) | (x << 24)); }
static inline uint32_t se_sxtb16(uint32_t x) { return se_sxtab16(0, x); }
static inline uint32_t se_sxtb16_ror8(uint32_t x) { return se_sxtab16_ror8(0, x); }
static inline int32_t se_smlad(uint32_t x, uint32_t y, int32_t acc) {
    uint32_t r = (uint32_t)acc + (uint32_t)(se_lo16(x) * se_lo16(y)) + (uint32_t)(se_hi16(x) * se_hi16(y));
    return (int32_t)r;
}
static inline int32_t se_smmulr(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
}
static inline int32_t se_smmul(int32_t a, int32_t b) { return (int32_t)(((int64_t)a * b) >> 32); }
static inline int32_t se_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(se_lo16(x) * se_lo16(y)));
}
static inline int32_t se_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(se_hi16(x) * se_hi16(y)));
}
static inline int32_t se_smlabt(uint32_t x, uint32_t y, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(se_lo16(x) * se_hi16(y)));
}
static inline int32_t se_smlatb(uint32_t x, uint32_t y, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(se_hi16(x) * se_lo16(y)));
}
static inline uint32_t se_pkhbt16(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }
static inline uint32_t se_pkhtb16(uint32_t a, uint32_t b) { return (a & 0xFFFF0000u) | (b >> 16); }
static inline int32_t se_clz(uint32_t x) { return x ? __builtin_clz(x) : 32; }
static inline int32_t se_ssat8(int32_t v) { return v < -128 ? -128 : (v > 127 ? 127 : v); }
static inline uint32_t se_usub8(uint32_t a, uint32_t b) {
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) r |= (((a >> i) - (b >> i)) & 0xFFu) << i;
    return r;
}
static inline uint32_t se_max8(uint32_t a, uint32_t b) {
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        int8_t x = (int8_t)(a >> i), y = (int8_t)(b >> i);
        r |= (uint32_t)(uint8_t)(x >= y ? x : y) << i;
    }
    return r;
}
#endif

#endif
