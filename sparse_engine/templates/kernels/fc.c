#include "kernels.h"
#include "se_math.h"

void se_fc_s8(const se_fc_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * p->in_k;
        for (int32_t n = 0; n < p->out_n; n++) {
            const int8_t *w = p->weights + n * p->in_k;
            int32_t acc = p->bias[n];
            for (int32_t k = 0; k < p->in_k; k++) acc += (x[k] - p->in_zp) * w[k];
            *out++ = se_clamp(se_requant(acc, p->mult[n], p->shift[n], p->single_round) + p->out_zp, p->act_min, p->act_max);
        }
    }
}

