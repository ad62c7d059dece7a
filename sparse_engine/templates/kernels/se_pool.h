/* Average and max pooling (pool.c, pool_dsp.c). Average: the window sum times the multiplier
 * of its element count (count_mult/count_shift per count, or one fixed count), as
 * simulator.py documents; max: optionally requantized to another output scale.
 *
 * se_avgpool_s8, se_maxpool_s8: any geometry.
 * se_maxpool_s8_dsp:            channels % 4 == 0 and requant == 0 (bindings/pool.py dsp_fits);
 *                               no scratch. */
#ifndef SPARSE_ENGINE_SE_POOL_H
#define SPARSE_ENGINE_SE_POOL_H

#include <stdint.h>

typedef struct {
    int32_t batch, in_h, in_w, channels, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t in_zp, out_zp, fixed_count, requant, mult, shift;
    const int32_t *count_mult, *count_shift;
} se_pool_params_t;

void se_avgpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out);
void se_maxpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out);
void se_maxpool_s8_dsp(const se_pool_params_t *p, const int8_t *in, int8_t *out);

#endif
