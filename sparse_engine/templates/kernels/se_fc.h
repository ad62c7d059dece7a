/* Dense fully connected (fc.c, fc_dsp.c): out[r][n] = requant(bias[n] + sum_k (in[r][k] - in_zp) * W[n][k]),
 * W [out_n, in_k] int8 row-major, per-channel mult/shift; also a 1x1 stride-1 conv over the pixels.
 * Rounding: single_round 1 is TFLite's FullyConnected (se_mbqm_single: one rounding, as LiteRT's
 * reference kernel); 0 is the conv's MultiplyByQuantizedMultiplier (SRDHM, then a rounding right
 * shift), for 1x1 convs the DSP FC kernel runs.
 *
 * se_fc_s8:     any shape.
 * se_fc_s8_dsp: any shape; scratch SE_PAIR_LEN(in_k) int16 (two widened input rows). */
#ifndef SPARSE_ENGINE_SE_FC_H
#define SPARSE_ENGINE_SE_FC_H

#include <stdint.h>

typedef struct {
    int32_t rows, in_k, out_n, in_zp, out_zp, act_min, act_max;
    int32_t single_round; /* 1: TFLite FullyConnected's single rounding; 0: se_mbqm (1x1 convs) */
    const int8_t *weights;
    const int32_t *bias, *mult, *shift, *rq;
    int16_t *scratch;
} se_fc_params_t;

typedef void (*se_fc_fn)(const se_fc_params_t *p, const int8_t *in, int8_t *out);

void se_fc_s8(const se_fc_params_t *p, const int8_t *in, int8_t *out);
void se_fc_s8_dsp(const se_fc_params_t *p, const int8_t *in, int8_t *out);

#endif
