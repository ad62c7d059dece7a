#include "se_dsp.h"

/* Max pooling four channels at a time: one word of the window's pixel per tap, SSUB8 + SEL
 * (se_max8) keep the bytewise maximum. Needs channels % 4 == 0 and no requantization (the
 * output keeps the input's scale); a window wholly in the padding gives -128, as the portable
 * kernel's clamp does. The window is clipped to the image once per output pixel. */
void se_maxpool_s8_dsp(const se_pool_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t c = p->channels, row = p->in_w * c;
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * row;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + p->k_h > p->in_h ? p->in_h - y0 : p->k_h;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + p->k_w > p->in_w ? p->in_w - x0 : p->k_w;
                const int8_t *win = img + (y0 + ky0) * row + (x0 + kx0) * c;
                for (int32_t ch = 0; ch < c; ch += 4, out += 4) {
                    uint32_t m = 0x80808080u;
                    const int8_t *r = win + ch;
                    for (int32_t ky = ky0; ky < ky1; ky++, r += row) {
                        const int8_t *v = r;
                        for (int32_t kx = kx0; kx < kx1; kx++, v += c) m = se_max8(m, se_ld32(v));
                    }
                    se_st32(out, m);
                }
            }
        }
    }
}
