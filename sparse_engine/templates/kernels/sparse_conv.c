#include "kernels.h"
#include "se_math.h"

/* Block j of an output channel (column order) is tap t = j / (C / b): kx = t / k_h, ky = t % k_h,
 * channels (j % (C / b)) * b onward; taps outside the image add nothing. */
void se_conv_sparse_s8(const se_sparse_conv_params_t *sp, const int8_t *in, int8_t *out) {
    const se_conv_params_t *p = &sp->conv;
    const int32_t b = sp->block, per_tap = p->in_c / b;
    for (int32_t bt = 0; bt < p->batch; bt++) {
        const int8_t *img = in + bt * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const uint8_t *skip = sp->skips;
                const int8_t *v = sp->values;
                for (int32_t oc = 0; oc < p->out_c; oc++) {
                    int32_t acc = p->bias[oc], j = -1;
                    for (int32_t i = 0; i < sp->counts[oc]; i++, v += b) {
                        j += 1 + *skip++;
                        const int32_t t = j / per_tap, kx = t / p->k_h, ky = t % p->k_h;
                        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) continue;
                        const int8_t *px = img + (iy * p->in_w + ix) * p->in_c + (j % per_tap) * b;
                        for (int32_t q = 0; q < b; q++) acc += (px[q] - p->in_zp) * v[q];
                    }
                    *out++ = se_clamp(se_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_zp, p->act_min, p->act_max);
                }
            }
        }
    }
}

