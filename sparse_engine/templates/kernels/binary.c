#include "kernels.h"
#include "se_math.h"

/* Broadcasting walk shared by Add and Mul: visits the output in order with both input offsets. */
#define SE_BROADCAST_LOOP(p, BODY)                                                                  \
    do {                                                                                            \
        const int32_t *S = (p)->out_shape, *sa = (p)->a_strides, *sb = (p)->b_strides;              \
        int32_t o = 0;                                                                              \
        for (int32_t i0 = 0; i0 < S[0]; i0++)                                                       \
        for (int32_t i1 = 0; i1 < S[1]; i1++)                                                       \
        for (int32_t i2 = 0; i2 < S[2]; i2++)                                                       \
        for (int32_t i3 = 0; i3 < S[3]; i3++)                                                       \
        for (int32_t i4 = 0; i4 < S[4]; i4++)                                                       \
        for (int32_t i5 = 0; i5 < S[5]; i5++) {                                                     \
            int32_t ia = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3] + i4 * sa[4] + i5 * sa[5]; \
            int32_t ib = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3] + i4 * sb[4] + i5 * sb[5]; \
            BODY;                                                                                   \
            o++;                                                                                    \
        }                                                                                           \
    } while (0)

void se_add_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    SE_BROADCAST_LOOP(p, {
        int32_t va = se_mbqm((a[ia] - p->a_zp) * (1 << p->left_shift), p->a_mult, p->a_shift);
        int32_t vb = se_mbqm((b[ib] - p->b_zp) * (1 << p->left_shift), p->b_mult, p->b_shift);
        out[o] = se_clamp(se_mbqm(va + vb, p->out_mult, p->out_shift) + p->out_zp, p->act_min, p->act_max);
    });
}

void se_mul_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    SE_BROADCAST_LOOP(p, {
        int32_t prod = (a[ia] - p->a_zp) * (b[ib] - p->b_zp);
        out[o] = se_clamp(se_mbqm(prod, p->mult, p->shift) + p->out_zp, p->act_min, p->act_max);
    });
}

