/* Convolution, dense (conv.c, conv_dsp.c) and depthwise (depthwise.c, depthwise_dsp.c).
 * Weights OHWI (depthwise 1HWC), per-output-channel mult/shift, int32 bias at s_in * s_w.
 * Rounding: TFLite's MultiplyByQuantizedMultiplier (SRDHM, then rounding right shift).
 *
 * se_conv2d_s8:              any stride, padding, dilation.
 * se_conv2d_s8_dsp:          any geometry; scratch SE_PAIR_LEN(K) int16, K = kh*kw*C; when
 *                            C % 4 != 0, K is rounded up to 4 (weights padded with zeros,
 *                            bindings/conv.py dsp_k) and K / 2 more hold the int8 staging row.
 * se_conv2d_rows_s8_dsp:     C % 4 == 0, no dilation, k_h <= 8; scratch k_h rows of
 *                            ((out_w - 1) * stride_w + k_w) * C int16 (bindings/conv.py rows_scratch).
 * se_depthwise_conv2d_s8:    any depth multiplier.
 * se_depthwise_conv2d_s8_dsp: depth_mult == 1; weights16 widened offline
 *                            (bindings/depthwise.py dsp_weights); scratch 2 * C int16.
 * se_depthwise3x3_s8_dsp:    3x3, stride 1 or 2 (both axes), no dilation, depth_mult == 1,
 *                            output rows (or columns: sweep_cols) long enough
 *                            (bindings/depthwise.py rows_sweep); weights16
 *                            as doubled (w0,w1),(w1,w2) per channel and row (rows_weights);
 *                            scratch 3 * block_c * wp + 2 * out_w int16 (rows_scratch); in place
 *                            without held rows.
 * Depthwise kernels run in place (out == in) when hold_rows > 0: stride 1, batch 1, output rows
 * wait in `ring` (hold_rows rows) until no later output row reads the input row they overwrite. */
#ifndef SPARSE_ENGINE_SE_CONV_H
#define SPARSE_ENGINE_SE_CONV_H

#include <stdint.h>

typedef struct {
    int32_t batch, in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, depth_mult;
    int32_t in_zp, out_zp, act_min, act_max;
    const int8_t *weights;
    const int16_t *weights16; /* depthwise DSP kernel: weights widened offline */
    const int32_t *bias, *mult, *shift;
    const int32_t *rq;
    int16_t *scratch;
    /* depthwise in place (out == in): output rows wait in `ring` (hold_rows rows) until no later
     * output row reads the input row they overwrite; 0 = out is a separate buffer */
    int32_t hold_rows;
    int8_t *ring;
    int32_t block_c;    /* se_depthwise3x3_s8_dsp: channels per pass over the rows */
    int32_t sweep_cols; /* se_depthwise3x3_s8_dsp: sweep along columns (weights transposed) */
} se_conv_params_t;

void se_conv2d_s8(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_conv2d_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_conv2d_rows_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_depthwise_conv2d_s8(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_depthwise_conv2d_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_depthwise3x3_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out);
/* the in-place ring: where output row oy is written, and its copy-out once it is safe */
int8_t *se_dw_row_begin(const se_conv_params_t *p, int8_t *out, int32_t oy);
void se_dw_row_end(const se_conv_params_t *p, int8_t *out, int32_t oy);

#endif
