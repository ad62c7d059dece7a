#include "se_dsp.h"

void se_fc_s8_dsp(const se_fc_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t k = p->in_k, n = p->out_n;
    const se_req_t r = {p->bias, p->mult, p->shift, p->rq, 1, p->out_zp, p->act_min, p->act_max,
                         se_rq_fast(p->rq, n, p->act_min, p->act_max)};
    int32_t row = 0;
    for (; row < p->rows; row += 2) {
        const int8_t *x1 = row + 1 < p->rows ? in + (row + 1) * k : 0;
        se_wide_t w = se_wide_rows(p->scratch, in + row * k, x1, 1, k, -p->in_zp);
        (p->single_round ? se_dot_single : se_dot)(w.wide, w.tails, w.sum, p->weights, k, n, k, 0, &r, out + row * n,
                                                   x1 ? out + (row + 1) * n : 0, 1);
    }
}

