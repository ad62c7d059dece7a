/* Data movement (copy.c), portable only. se_copy_s8: out in order = in read through a permuted
 * view of up to SE_MAX_DIMS axes (memcpy when `plain`), optionally requantized; in place allowed
 * when plain. se_concat_s8: n_inputs joined along one axis, each requantized where its scale differs. */
#ifndef SPARSE_ENGINE_SE_COPY_H
#define SPARSE_ENGINE_SE_COPY_H

#include <stdint.h>

typedef struct {
    int32_t shape[SE_MAX_DIMS], in_strides[SE_MAX_DIMS];
    int32_t size, plain, requant, mult, shift, in_zp, out_zp;
} se_copy_params_t;

typedef struct {
    int32_t n_inputs, outer, out_inner, out_zp;
    const int32_t *inner, *requant, *mult, *shift, *in_zp;
} se_concat_params_t;

void se_copy_s8(const se_copy_params_t *p, const int8_t *in, int8_t *out);
void se_concat_s8(const se_concat_params_t *p, const int8_t *const *ins, int8_t *out);

#endif
