#include "kernels.h"
#include "se_math.h"

void se_softmax_s8(const se_softmax_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * p->n;
        int32_t mx = -128;
        for (int32_t i = 0; i < p->n; i++) mx = x[i] > mx ? x[i] : mx;
        int64_t sum = 0;
        for (int32_t i = 0; i < p->n; i++) sum += p->exp_table[mx - x[i]];
        int64_t recip = (1LL << 46) / sum;
        for (int32_t i = 0; i < p->n; i++) {
            int32_t y = (int32_t)(((int64_t)p->exp_table[mx - x[i]] * recip) >> 16);
            *out++ = se_clamp(se_mbqm(y, p->mult, p->shift) + p->out_zp, -128, 127);
        }
    }
}


/* gemmlowp's SaturatingRoundingMultiplyByPOT for exponent e > 0: x << e, saturated. */
static int32_t se_sat_shl(int32_t x, int32_t e) {
    const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    return x > threshold ? INT32_MAX : (x < -threshold ? INT32_MIN : (int32_t)((uint32_t)x << e));
}

/* gemmlowp's one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a), a in [0, 1) in Q0.31; Newton-Raphson
 * in Q2.29 (qmath.one_over_one_plus_x). */
static int32_t se_one_over_one_plus_x(int32_t a) {
    const int64_t s = (int64_t)a + INT32_MAX;
    const int32_t half = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    int32_t x = (int32_t)(1515870810u + (uint32_t)se_srdhm(half, -1010580540));
    for (int32_t i = 0; i < 3; i++) {
        const int32_t one_minus = (int32_t)((1u << 29) - (uint32_t)se_srdhm(half, x));
        x = (int32_t)((uint32_t)x + (uint32_t)se_sat_shl(se_srdhm(x, one_minus), 2));
    }
    return se_sat_shl(x, 1);
}

void se_softmax_tflite_s8(const se_softmax_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * p->n;
        int32_t mx = -128, sum = 0;
        for (int32_t i = 0; i < p->n; i++) mx = x[i] > mx ? x[i] : mx;
        for (int32_t i = 0; i < p->n; i++) sum += p->sum_table[mx - x[i]];
        const int32_t headroom = __builtin_clz((uint32_t)sum); /* sum >= 2^19: the row maximum adds 2^19 */
        const int32_t scale = se_one_over_one_plus_x((int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
        const int32_t right = 12 - headroom + 23;
        for (int32_t i = 0; i < p->n; i++)
            *out++ = se_clamp(se_rdbpot(se_srdhm(scale, p->exp_table[mx - x[i]]), right) - 128, -128, 127);
    }
}
