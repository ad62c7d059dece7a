#include "se_dsp.h"

/* Add of two tensors of the output's shape (codegen.add_dsp_fits). An input's term
 * RDBPOT(SRDHM((x - zp) << left_shift, mult), right) depends on one byte: both terms go to 256-entry
 * tables in the scratch (se_srdhm_rdiv), already shifted left by the output's left shift + 1. The
 * generator proved every doubled SRDHM operand within int32. Per element, the output's rounding
 * divide is se_srdhm_rdiv's without its branch: the sign term is masked off when right is 0. */
static inline __attribute__((always_inline)) void se_add_loop(const int32_t *ta, const int32_t *tb, const int8_t *a,
                                                               const int8_t *b, int8_t *out, int32_t n,
                                                               const se_binary_params_t *p, int32_t full) {
    const int32_t right = p->out_shift > 0 ? 0 : -p->out_shift, rnd = right ? 1 << (right - 1) : 0;
    const int32_t neg = right ? -1 : 0, mult = p->out_mult, zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    for (int32_t i = 0; i < n; i++) {
        int32_t v = se_smmulr(ta[a[i]] + tb[b[i]], mult);
        v = ((v + rnd + ((v >> 31) & neg)) >> right) + zp;
        if (full) {
            out[i] = (int8_t)se_ssat8(v);
        } else {
            v = v < lo ? lo : v;
            out[i] = (int8_t)(v > hi ? hi : v);
        }
    }
}

void se_add_s8_dsp(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    int32_t *ta = (int32_t *)(void *)p->scratch + 128, *tb = ta + 256;
    const int32_t up = (p->out_shift > 0 ? p->out_shift : 0) + 1, s = p->left_shift + 1;
    const int32_t ar = -p->a_shift, br = -p->b_shift, arnd = ar ? 1 << (ar - 1) : 0, brnd = br ? 1 << (br - 1) : 0;
    for (int32_t x = -128; x < 128; x++) {
        const int32_t va = se_srdhm_rdiv((int32_t)((uint32_t)(x - p->a_zp) << s), p->a_mult, arnd, ar);
        const int32_t vb = se_srdhm_rdiv((int32_t)((uint32_t)(x - p->b_zp) << s), p->b_mult, brnd, br);
        ta[x] = (int32_t)((uint32_t)va << up);
        tb[x] = (int32_t)((uint32_t)vb << up);
    }
    int32_t n = 1;
    for (int32_t d = 0; d < SE_MAX_DIMS; d++) n *= p->out_shape[d];
    if (p->act_min == -128 && p->act_max == 127) {
        se_add_loop(ta, tb, a, b, out, n, p, 1);
    } else {
        se_add_loop(ta, tb, a, b, out, n, p, 0);
    }
}

