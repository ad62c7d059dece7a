/* Average and max pooling (pool.c, pool_dsp.c). Average: with `divide` TFLite's reference (the
 * raw window sum divided by the taps inside the image, rounded half away from zero; in_zp is
 * then 0), else the window sum times the multiplier of its element count (count_mult/count_shift
 * per count, or one fixed count), as simulator.py documents; max: optionally requantized to
 * another output scale. Both end clamped to [act_min, act_max] (a fused ReLU).
 *
 * se_avgpool_s8, se_maxpool_s8: any geometry.
 * se_maxpool_s8_dsp:            channels % 4 == 0, requant == 0 and no clamp (bindings/pool.py dsp_fits);
 *                               no scratch. */
#ifndef SPARSE_ENGINE_SE_POOL_H
#define SPARSE_ENGINE_SE_POOL_H

#include <stdint.h>

typedef struct {
    int32_t batch, in_h, in_w, channels, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t in_zp, out_zp, fixed_count, divide, requant, mult, shift, act_min, act_max;
    const int32_t *count_mult, *count_shift;
} se_pool_params_t;

void se_avgpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out);
void se_maxpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out);
void se_maxpool_s8_dsp(const se_pool_params_t *p, const int8_t *in, int8_t *out);

#endif
