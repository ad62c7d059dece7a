/* Block-sparse FC and conv over blockwise run-length coded weights (sparse_engine/sparse.py):
 * per output channel counts[n] stored blocks of `block` values, each after skips[i] zero blocks
 * (a skip of 255 stores a zero block as filler). Same bits as the dense kernels on the decoded weights.
 *
 * se_fc_sparse_s8:            any block size.
 * se_fc_sparse_s8_dsp:        block % 4 == 0; scratch SE_PAIR_LEN(in_k) + 4 * out_n int16.
 * se_fc_sparse_narrow_s8_dsp: block 1 or 2; scratch 2 * ceil(tile * in_k / 2) + 2 * tile * out_n
 *                             int16, tile = 4 rows (fewer when the layer has fewer).
 * se_conv_sparse_s8:          any kxk geometry and block size.
 * se_conv_sparse_s8_dsp:      in_c % 4 == 0, dilation 1 along x; hdr = {bias, count} per channel;
 *                             scratch ((out_w - 1) * stride_w + k_w) * k_h * in_c + 4 * out_c int16. */
#ifndef SPARSE_ENGINE_SE_SPARSE_H
#define SPARSE_ENGINE_SE_SPARSE_H

#include <stdint.h>

#include "se_conv.h"

typedef struct {
    int32_t rows, in_k, out_n, block, in_zp, out_zp, act_min, act_max;
    int32_t single_round; /* as se_fc_params_t */
    const uint16_t *counts;
    const uint8_t *skips;
    const int8_t *values;
    const int32_t *bias, *mult, *shift, *rq;
    int16_t *scratch;
} se_sparse_fc_params_t;

/* kxk conv: the conv geometry, quantization and scratch in `conv` (conv.weights unused), the
 * coding of W[O, kw*kh*C] in column order (kx, ky, c). */
typedef struct {
    se_conv_params_t conv;
    int32_t block;
    const uint16_t *counts;
    const uint8_t *skips;
    const int8_t *values;
    const int32_t *hdr; /* DSP kernel: per output channel {bias, count} */
} se_sparse_conv_params_t;

typedef void (*se_sparse_fc_fn)(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);

void se_fc_sparse_s8(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);
void se_fc_sparse_s8_dsp(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);
void se_fc_sparse_narrow_s8_dsp(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);
void se_conv_sparse_s8(const se_sparse_conv_params_t *p, const int8_t *in, int8_t *out);
void se_conv_sparse_s8_dsp(const se_sparse_conv_params_t *p, const int8_t *in, int8_t *out);

#endif
