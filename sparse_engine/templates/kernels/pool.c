#include "kernels.h"
#include "se_math.h"

/* The window of one output pixel is clipped to the image once; channels run innermost, each over
 * the clipped window. Padding adds nothing; `count` is the taps inside the image. */
static void se_pool(const se_pool_params_t *p, const int8_t *in, int8_t *out, int is_max) {
    const int32_t c = p->channels, row = p->in_w * c;
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * row;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + p->k_h > p->in_h ? p->in_h - y0 : p->k_h;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + p->k_w > p->in_w ? p->in_w - x0 : p->k_w;
                const int32_t count = ky1 > ky0 && kx1 > kx0 ? (ky1 - ky0) * (kx1 - kx0) : 0;
                const int8_t *win = img + (y0 + ky0) * row + (x0 + kx0) * c;
                const int32_t idx = p->fixed_count ? 0 : count;
                for (int32_t ch = 0; ch < c; ch++) {
                    int32_t acc = is_max ? -129 : 0;
                    const int8_t *r = win + ch;
                    for (int32_t ky = ky0; ky < ky1; ky++, r += row) {
                        const int8_t *v = r;
                        for (int32_t kx = kx0; kx < kx1; kx++, v += c) {
                            if (is_max) acc = *v > acc ? *v : acc;
                            else acc += *v - p->in_zp; /* in_zp is 0 when p->divide: the raw sum */
                        }
                    }
                    int32_t res;
                    if (is_max) {
                        res = p->requant ? se_mbqm(acc - p->in_zp, p->mult, p->shift) + p->out_zp : acc;
                    } else if (p->divide) { /* TFLite: half away from zero; a window in the padding: 0 */
                        res = count ? (acc > 0 ? acc + count / 2 : acc - count / 2) / count : 0;
                    } else {
                        res = se_mbqm(acc, p->count_mult[idx], p->count_shift[idx]) + p->out_zp;
                    }
                    *out++ = se_clamp(res, p->act_min, p->act_max);
                }
            }
        }
    }
}

void se_avgpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out) { se_pool(p, in, out, 0); }

void se_maxpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out) { se_pool(p, in, out, 1); }

