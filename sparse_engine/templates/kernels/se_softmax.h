/* Softmax over rows of n (softmax.c, softmax_dsp.c): exp(x - max) from a Q16 table, the row sum,
 * a reciprocal, one requantization (simulator.py softmax_rows).
 *
 * se_softmax_s8:     any row.
 * se_softmax_s8_dsp: table entries <= 2^16, n * 2^16 < 2^31, shift <= 0 (bindings/softmax.py dsp_fits).
 * se_softmax_tflite_s8: output scale 1/256, zero point -128, n < 512: TFLite's reference algorithm
 *                   (gemmlowp fixed point: exp in Q0.31 from exp_table, sum in Q12 from sum_table,
 *                   Newton-Raphson reciprocal), on every core. */
#ifndef SPARSE_ENGINE_SE_SOFTMAX_H
#define SPARSE_ENGINE_SE_SOFTMAX_H

#include <stdint.h>

typedef struct {
    int32_t rows, n, mult, shift, out_zp;
    int32_t right, rnd; /* DSP kernel: -shift and its rounding term 2^(right - 1) or 0 */
    const int32_t *exp_table;
    const int32_t *sum_table; /* se_softmax_tflite_s8: each exp's Q12 share of the row sum */
} se_softmax_params_t;

typedef void (*se_softmax_fn)(const se_softmax_params_t *p, const int8_t *in, int8_t *out);

void se_softmax_s8(const se_softmax_params_t *p, const int8_t *in, int8_t *out);
void se_softmax_tflite_s8(const se_softmax_params_t *p, const int8_t *in, int8_t *out);
void se_softmax_s8_dsp(const se_softmax_params_t *p, const int8_t *in, int8_t *out);

#endif
