#include "kernels.h"
#include "se_math.h"

void se_matmul_s8(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    for (int32_t t = 0; t < p->batch; t++) {
        const int8_t *A = a + p->a_offsets[t];
        const int8_t *B = b + p->b_offsets[t];
        for (int32_t i = 0; i < p->m; i++) {
            for (int32_t j = 0; j < p->n; j++) {
                int32_t acc = 0;
                for (int32_t k = 0; k < p->k; k++)
                    acc += (A[i * p->a_rs + k * p->a_cs] - p->a_zp) * (B[k * p->b_ks + j * p->b_ns] - p->b_zp);
                *out++ = se_clamp(se_mbqm(acc, p->mult, p->shift) + p->out_zp, p->act_min, p->act_max);
            }
        }
    }
}

