#include "se_dsp.h"

/* Wide row r of the receptive field of output pixel (oy, ox), in the OHWI weight order (ky, kx, c);
 * padding contributes zero. Channel counts that are not a multiple of 4 go through the int8
 * staging row, so that 4-value chunks run across taps as they do in the weights. */
static int32_t se_patch(const se_conv_params_t *p, const int8_t *img, int32_t oy, int32_t ox, uint32_t *dst,
                        int32_t pitch, int16_t *tail, int8_t *stage) {
    const int32_t c = p->in_c, off = -p->in_zp;
    const int direct = (c & 3) == 0;
    const int32_t ix0 = ox * p->stride_w - p->pad_left, span = p->k_w * c;
    const int rows_whole = p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w;
    int32_t sum = 0;
    int8_t *st = stage;
    for (int32_t ky = 0; ky < p->k_h; ky++) {
        int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
        if (!direct && rows_whole && iy >= 0 && iy < p->in_h) {
            /* the kernel row's taps are one run of k_w * C bytes: word copies, no call */
            const int8_t *src = img + (iy * p->in_w + ix0) * c;
            int32_t j = 0;
            for (; j + 4 <= span; j += 4) se_st32(st + j, se_ld32(src + j));
            for (; j < span; j++) st[j] = src[j];
            st += span;
            continue;
        }
        for (int32_t kx = 0; kx < p->k_w; kx++) {
            int32_t ix = ix0 + kx * p->dil_w;
            int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
            const int8_t *px = img + (iy * p->in_w + ix) * c;
            if (direct) {
                if (inside) {
                    sum += se_widen(px, 1, c, off, dst, pitch, tail);
                } else {
                    for (int32_t j = 0; j < (c >> 2); j++) dst[j * pitch] = dst[j * pitch + 1] = 0;
                }
                dst += (c >> 2) * pitch;
            } else {
                if (inside) memcpy(st, px, (size_t)c);
                else memset(st, p->in_zp, (size_t)c);
                st += c;
            }
        }
    }
    if (direct) return sum;
    const int32_t k = p->k_h * p->k_w * c, kp = (k + 3) & ~3;
    for (int32_t j = k; j < kp; j++) stage[j] = (int8_t)p->in_zp; /* widens to 0 */
    return se_widen(stage, 1, kp, off, dst, pitch, tail);
}

void se_conv2d_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out) {
    /* row length: K, rounded up to 4 when the channels are staged (bindings/conv.py dsp_k) */
    const int32_t k0 = p->k_h * p->k_w * p->in_c, k = (p->in_c & 3) ? (k0 + 3) & ~3 : k0;
    const int32_t n = p->out_c, pixels = p->out_h * p->out_w;
    const se_req_t r = {p->bias, p->mult, p->shift, p->rq, 1, p->out_zp, p->act_min, p->act_max,
                         se_rq_fast(p->rq, p->out_c, p->act_min, p->act_max)};
    uint32_t *wide = (uint32_t *)(void *)p->scratch;
    int16_t *tails = p->scratch + 8 * (k >> 2);
    int8_t *stage = (int8_t *)(p->scratch + SE_PAIR_LEN(k));
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *o = out + b * pixels * n;
        for (int32_t q = 0; q < pixels; q += 2) {
            int32_t pair = q + 1 < pixels, pitch = pair ? 4 : 2;
            int32_t sum[2] = {se_patch(p, img, q / p->out_w, q % p->out_w, wide, pitch, tails, stage), 0};
            if (pair) sum[1] = se_patch(p, img, (q + 1) / p->out_w, (q + 1) % p->out_w, wide + 2, pitch, tails + 3, stage);
            se_dot(wide, tails, sum, p->weights, k, n, k, 0, &r, o + q * n, pair ? o + (q + 1) * n : 0, 1);
        }
    }
}

