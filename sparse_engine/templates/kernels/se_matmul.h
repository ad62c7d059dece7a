/* Activation x activation MatMul (matmul.c, matmul_dsp.c), one per-tensor multiplier:
 * out[t][i][j] = requant(sum_k (A[a_off[t] + i*a_rs + k*a_cs] - a_zp) * (B[b_off[t] + k*b_ks + j*b_ns] - b_zp));
 * the strides let a transposing copy in front of either operand be absorbed.
 *
 * se_matmul_s8:     any strides.
 * se_matmul_s8_dsp: b_ks == 1 or a_cs == 1; scratch SE_PAIR_LEN(k) int16. */
#ifndef SPARSE_ENGINE_SE_MATMUL_H
#define SPARSE_ENGINE_SE_MATMUL_H

#include <stdint.h>

typedef struct {
    int32_t batch, m, k, n, a_zp, b_zp, out_zp, mult, shift, act_min, act_max;
    int32_t a_rs, a_cs, b_ks, b_ns;
    const int32_t *a_offsets, *b_offsets, *rq;
    int16_t *scratch;
} se_matmul_params_t;

typedef void (*se_matmul_fn)(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);

void se_matmul_s8(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void se_matmul_s8_dsp(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);

#endif
