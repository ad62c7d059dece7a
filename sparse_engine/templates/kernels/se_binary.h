/* Elementwise Add and Mul with NumPy broadcasting over up to SE_MAX_DIMS axes (binary.c,
 * binary_dsp.c). Add is TFLite's: both inputs shifted left by left_shift, rescaled to a common
 * scale, summed, rescaled to the output; Mul: one multiplier on the product.
 *
 * se_add_s8, se_mul_s8: any broadcast (strides 0 on broadcast axes).
 * se_add_s8_dsp:        no broadcasting and every SRDHM provably one SMMULR
 *                       (bindings/binary.py add_dsp_fits); scratch 1024 int16 (two int32 term tables). */
#ifndef SPARSE_ENGINE_SE_BINARY_H
#define SPARSE_ENGINE_SE_BINARY_H

#include <stdint.h>

typedef struct {
    int32_t out_shape[SE_MAX_DIMS], a_strides[SE_MAX_DIMS], b_strides[SE_MAX_DIMS];
    int32_t a_zp, b_zp, out_zp, act_min, act_max;
    int32_t left_shift, a_mult, a_shift, b_mult, b_shift, out_mult, out_shift; /* add */
    int32_t mult, shift;                                                     /* mul */
    int16_t *scratch; /* se_add_s8_dsp: room for its two 256-entry int32 term tables */
} se_binary_params_t;

void se_add_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void se_add_s8_dsp(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void se_mul_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);

#endif
