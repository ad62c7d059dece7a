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

