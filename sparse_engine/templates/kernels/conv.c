#include "kernels.h"

#include <string.h>

#include "se_math.h"

void se_conv2d_s8(const se_conv_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                for (int32_t oc = 0; oc < p->out_c; oc++) {
                    int32_t acc = p->bias[oc];
                    for (int32_t ky = 0; ky < p->k_h; ky++) {
                        int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                        if (iy < 0 || iy >= p->in_h) continue;
                        for (int32_t kx = 0; kx < p->k_w; kx++) {
                            int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                            if (ix < 0 || ix >= p->in_w) continue;
                            const int8_t *px = img + (iy * p->in_w + ix) * p->in_c;
                            const int8_t *w = p->weights + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                            for (int32_t ic = 0; ic < p->in_c; ic++) acc += (px[ic] - p->in_zp) * w[ic];
                        }
                    }
                    *out++ = se_clamp(se_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_zp, p->act_min, p->act_max);
                }
            }
        }
    }
}

