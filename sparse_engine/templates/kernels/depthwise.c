#include "kernels.h"
#include "se_math.h"

/* In place (p->hold_rows > 0, stride 1, batch 1): output row oy goes to ring slot oy % hold_rows;
 * once row oy is done, row oy + 1 - hold_rows (= oy - pad_top) is no longer read and is copied out. */
int8_t *se_dw_row_begin(const se_conv_params_t *p, int8_t *out, int32_t oy) {
    int32_t row = p->out_w * p->out_c;
    return p->hold_rows ? p->ring + (oy % p->hold_rows) * row : out + oy * row;
}

void se_dw_row_end(const se_conv_params_t *p, int8_t *out, int32_t oy) {
    int32_t row = p->out_w * p->out_c, first = oy + 1 - p->hold_rows, last = first;
    if (!p->hold_rows) return;
    if (oy == p->out_h - 1) last = oy;  /* the end: every held row */
    for (int32_t r = first < 0 ? 0 : first; r <= last; r++)
        memcpy(out + r * row, p->ring + (r % p->hold_rows) * row, (size_t)row);
}

void se_depthwise_conv2d_s8(const se_conv_params_t *p, const int8_t *in, int8_t *out_base) {
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *dst = out_base + b * p->out_h * p->out_w * p->out_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            int8_t *out = se_dw_row_begin(p, dst, oy);
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                for (int32_t oc = 0; oc < p->out_c; oc++) {
                    int32_t ic = oc / p->depth_mult;
                    int32_t acc = p->bias[oc];
                    for (int32_t ky = 0; ky < p->k_h; ky++) {
                        int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                        if (iy < 0 || iy >= p->in_h) continue;
                        for (int32_t kx = 0; kx < p->k_w; kx++) {
                            int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                            if (ix < 0 || ix >= p->in_w) continue;
                            acc += (img[(iy * p->in_w + ix) * p->in_c + ic] - p->in_zp) *
                                   p->weights[(ky * p->k_w + kx) * p->out_c + oc];
                        }
                    }
                    *out++ = se_clamp(se_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_zp, p->act_min, p->act_max);
                }
            }
            se_dw_row_end(p, dst, oy);
        }
    }
}

