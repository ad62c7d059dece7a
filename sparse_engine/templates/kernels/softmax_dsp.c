#include "se_dsp.h"

/* Softmax, the algorithm of se_softmax_s8 with four bytes per word: SSUB8/SEL for the row
 * maximum, USUB8 for the four table indices max - x. The generator picks this kernel when the
 * exp table is at most 2^16 and n * 2^16 < 2^31 (the row sum fits 32 bits) and the output shift
 * has no left part; then y = e * recip >> 16 <= 2^30 and y < 2^30 unless recip = 2^30, so SRDHM
 * is SMMULR of 2y, and y >= 0 makes the rounding shift (v + rnd) >> right. */
void se_softmax_s8_dsp(const se_softmax_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t n = p->n, n4 = n & ~3;
    const int32_t *tab = p->exp_table;
    for (int32_t r = 0; r < p->rows; r++, in += n) {
        uint32_t m4 = 0x80808080u;
        for (int32_t i = 0; i < n4; i += 4) m4 = se_max8(se_ld32(in + i), m4);
        int32_t mx = -128;
        for (int32_t i = 0; i < 32; i += 8) mx = (int8_t)(m4 >> i) > mx ? (int8_t)(m4 >> i) : mx;
        for (int32_t i = n4; i < n; i++) mx = in[i] > mx ? in[i] : mx;
        const uint32_t mxx = (uint8_t)mx * 0x01010101u;
        uint32_t sum = 0;
        for (int32_t i = 0; i < n4; i += 4) {
            uint32_t d = se_usub8(mxx, se_ld32(in + i));
            sum += (uint32_t)(tab[d & 0xFFu] + tab[(d >> 8) & 0xFFu] + tab[(d >> 16) & 0xFFu] + tab[d >> 24]);
        }
        for (int32_t i = n4; i < n; i++) sum += (uint32_t)tab[mx - in[i]];
        const uint32_t recip = (uint32_t)((1ULL << 46) / sum);
        if (recip >= (1u << 30)) { /* y may reach 2^30: the general requantization */
            for (int32_t i = 0; i < n; i++) {
                int32_t y = (int32_t)(((uint64_t)(uint32_t)tab[mx - in[i]] * recip) >> 16);
                *out++ = se_clamp(se_mbqm(y, p->mult, p->shift) + p->out_zp, -128, 127);
            }
            continue;
        }
        const int32_t mult = p->mult, rnd = p->rnd, right = p->right, zp = p->out_zp;
#define SE_SM_OUT(IDX)                                                                       \
    do {                                                                                     \
        uint32_t y_ = (uint32_t)(((uint64_t)(uint32_t)tab[IDX] * recip) >> 16);              \
        *out++ = (int8_t)se_ssat8(((se_smmulr((int32_t)(y_ << 1), mult) + rnd) >> right) + zp); \
    } while (0)
        for (int32_t i = 0; i < n4; i += 4) {
            uint32_t d = se_usub8(mxx, se_ld32(in + i));
            SE_SM_OUT(d & 0xFFu);
            SE_SM_OUT((d >> 8) & 0xFFu);
            SE_SM_OUT((d >> 16) & 0xFFu);
            SE_SM_OUT(d >> 24);
        }
        for (int32_t i = n4; i < n; i++) SE_SM_OUT(mx - in[i]);
#undef SE_SM_OUT
    }
}

