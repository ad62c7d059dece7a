#include "se_dsp.h"

/* Activations x activations. When B's values run contiguously along k (B stored transposed, as
 * for Q.K^T), pairs of A rows are widened and B's rows are the int8 side; otherwise A's rows must
 * be contiguous along k, pairs of B columns are widened and A's rows are the int8 side. */
void se_matmul_s8_dsp(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    const int32_t m = p->m, k = p->k, n = p->n;
    const se_req_t r = {0, &p->mult, &p->shift, p->rq, 0, p->out_zp, p->act_min, p->act_max,
                         se_rq_fast(p->rq, 1, p->act_min, p->act_max)};
    for (int32_t t = 0; t < p->batch; t++) {
        const int8_t *A = a + p->a_offsets[t], *B = b + p->b_offsets[t];
        int8_t *O = out + t * m * n;
        if (p->b_ks == 1) {
            for (int32_t i = 0; i < m; i += 2) {
                const int8_t *a1 = i + 1 < m ? A + (i + 1) * p->a_rs : 0;
                se_wide_t w = se_wide_rows(p->scratch, A + i * p->a_rs, a1, p->a_cs, k, -p->a_zp);
                se_dot(w.wide, w.tails, w.sum, B, p->b_ns, n, k, -p->b_zp, &r, O + i * n, a1 ? O + (i + 1) * n : 0, 1);
            }
        } else {
            for (int32_t j = 0; j < n; j += 2) {
                const int8_t *b1 = j + 1 < n ? B + (j + 1) * p->b_ns : 0;
                se_wide_t w = se_wide_rows(p->scratch, B + j * p->b_ns, b1, p->b_ks, k, -p->b_zp);
                se_dot(w.wide, w.tails, w.sum, A, p->a_rs, m, k, -p->a_zp, &r, O + j, b1 ? O + j + 1 : 0, n);
            }
        }
    }
}

