#include "kernels.h"
#include "se_math.h"

static uint32_t se_isqrt32(uint32_t x) {
    uint32_t res = 0, bit = 1UL << 30;
    while (bit > x) bit >>= 2;
    while (bit != 0) {
        if (x >= res + bit) {
            x -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

/* LayerNorm's and BatchNorm's output stage: t = MBQM(v) in Q8, zp + round((t + b) / 256). se_mbqm_floor
 * is exact for their signed multipliers too (|mult| < 2^31); t + b + 128 can pass 2^31, so it is
 * summed in 64 bits, and its >> 8 fits int32. */
static inline __attribute__((always_inline)) int8_t se_affine_out(int32_t v, int32_t mult, int32_t shift,
                                                                  int32_t bias_q8, int32_t zp) {
    return se_clamp((int32_t)(((int64_t)se_mbqm_floor(v, mult, shift) + bias_q8 + 128) >> 8) + zp, -128, 127);
}

static inline int32_t se_rshift_round(int32_t v, int32_t k) {
    return k ? (v + (1L << (k - 1))) >> k : v;
}

/* Scaled-LayerNorm (simulator.py): int32 only; the per-row pre-scale keeps the sum below 2^31.
 * d_i = round((n (x_i - zp) - sum) / 2^k) is computed as (n x_i + c) >> k, c holding the rounding
 * term, -n zp and -sum. */
void se_layernorm_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t n = p->n, nzp = p->n * p->in_zp, zp = p->out_zp;
    const int32_t *mult = p->mult, *shift = p->shift, *bias = p->bias_q8;
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * n;
        int32_t sum = 0, lo = x[0], hi = x[0];
        for (int32_t i = 0; i < n; i++) {
            const int32_t v = x[i];
            sum += v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        sum -= nzp;
        int32_t dlo = sum - n * lo + nzp, dhi = n * hi - nzp - sum;
        int32_t big = dlo > dhi ? dlo : dhi, k = p->prescale;
        while (se_rshift_round(big, k) > p->limit) k++;
        int32_t j = 2 * (k - p->prescale);
        uint32_t q = j < 31 ? (uint32_t)se_rshift_round(p->eps_term, j) : 0;
        const int32_t c = (k ? (int32_t)(1L << (k - 1)) : 0) - nzp - sum;
        for (int32_t i = 0; i < n; i++) {
            const int32_t d = (n * x[i] + c) >> k;
            q += (uint32_t)(d * d);
        }
        if (q == 0) q = 1;
        int32_t m = (__builtin_clz(q) - 1) >> 1;
        int32_t inv = (int32_t)((1UL << 30) / se_isqrt32(q << (2 * m)));
        for (int32_t i = 0; i < n; i++) {
            const int32_t d = (n * x[i] + c) >> k;
            *out++ = se_affine_out((int32_t)((uint32_t)d << m) * inv, mult[i], shift[i], bias[i], zp);
        }
    }
}

void se_affine_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t n = p->n, in_zp = p->in_zp, zp = p->out_zp;
    const int32_t *mult = p->mult, *shift = p->shift, *bias = p->bias_q8;
    for (int32_t r = 0; r < p->rows; r++)
        for (int32_t c = 0; c < n; c++) *out++ = se_affine_out(*in++ - in_zp, mult[c], shift[c], bias[c], zp);
}

