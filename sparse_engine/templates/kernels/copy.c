#include "kernels.h"
#include "se_math.h"

void se_copy_s8(const se_copy_params_t *p, const int8_t *in, int8_t *out) {
    if (p->plain) {
        if (out != in) memcpy(out, in, (size_t)p->size); /* in place: nothing to move */
        return;
    }
    const int32_t *S = p->shape, *st = p->in_strides;
    int32_t o = 0;
    for (int32_t i0 = 0; i0 < S[0]; i0++)
    for (int32_t i1 = 0; i1 < S[1]; i1++)
    for (int32_t i2 = 0; i2 < S[2]; i2++)
    for (int32_t i3 = 0; i3 < S[3]; i3++)
    for (int32_t i4 = 0; i4 < S[4]; i4++)
    for (int32_t i5 = 0; i5 < S[5]; i5++) {
        int32_t v = in[i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3] + i4 * st[4] + i5 * st[5]];
        out[o++] = p->requant ? se_clamp(se_mbqm(v - p->in_zp, p->mult, p->shift) + p->out_zp, -128, 127) : (int8_t)v;
    }
}

void se_concat_s8(const se_concat_params_t *p, const int8_t *const *ins, int8_t *out) {
    int32_t col = 0;
    for (int32_t t = 0; t < p->n_inputs; t++) {
        const int8_t *src = ins[t];
        int32_t inner = p->inner[t];
        for (int32_t r = 0; r < p->outer; r++) {
            int8_t *dst = out + r * p->out_inner + col;
            const int8_t *s = src + r * inner;
            if (!p->requant[t]) {
                memcpy(dst, s, (size_t)inner);
            } else {
                for (int32_t i = 0; i < inner; i++)
                    dst[i] = se_clamp(se_mbqm(s[i] - p->in_zp[t], p->mult[t], p->shift[t]) + p->out_zp, -128, 127);
            }
        }
        col += inner;
    }
}

