#include "kernels.h"
#include "se_math.h"

void se_lut_s8(const se_lut_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t i = 0; i < p->size; i++) out[i] = p->table[in[i] + 128];
}

