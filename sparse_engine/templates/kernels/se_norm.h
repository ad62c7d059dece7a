/* Normalization and tables (norm.c, lut.c), portable only; rows of n along the last axis.
 * se_layernorm_s8: TinyFormer's scaled integer LayerNorm (pre-scale so the variance fits int32,
 * integer square root; simulator.py). se_affine_s8: per-channel y = x * mult + bias (a standalone
 * BatchNorm). Both end in the Q8 output stage of simulator.py. se_lut_s8: out[i] = table[in[i] + 128],
 * any elementwise int8 -> int8 function; in place allowed. */
#ifndef SPARSE_ENGINE_SE_NORM_H
#define SPARSE_ENGINE_SE_NORM_H

#include <stdint.h>

typedef struct {
    int32_t rows, n, in_zp, out_zp;
    int32_t prescale, eps_term, limit; /* LayerNorm: k0, E0 and L (simulator.py) */
    const int32_t *mult, *shift, *bias_q8;
} se_norm_params_t;

typedef struct {
    int32_t size;
    const int8_t *table;
} se_lut_params_t;

void se_layernorm_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out);
void se_affine_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out);
void se_lut_s8(const se_lut_params_t *p, const int8_t *in, int8_t *out);

#endif
