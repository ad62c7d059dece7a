#include "kernels.h"
#include "se_math.h"

/* Walks each output channel's stored blocks; skipped blocks are zero weights and add nothing. */
void se_fc_sparse_s8(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t b = p->block;
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * p->in_k;
        const uint8_t *skip = p->skips;
        const int8_t *v = p->values;
        for (int32_t n = 0; n < p->out_n; n++) {
            int32_t acc = p->bias[n];
            const int8_t *xp = x;
            for (int32_t i = 0; i < p->counts[n]; i++, xp += b) {
                xp += *skip++ * b;
                for (int32_t t = 0; t < b; t++) acc += (xp[t] - p->in_zp) * *v++;
            }
            *out++ = se_clamp(se_requant(acc, p->mult[n], p->shift[n], p->single_round) + p->out_zp, p->act_min, p->act_max);
        }
    }
}

