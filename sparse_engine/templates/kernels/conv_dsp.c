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


/* Dense conv, C % 4 == 0, no dilation, over widened image rows: each input row is widened once
 * (zero point subtracted, padding pixels as 0) into a ring of k_h rows, wpx = (out_w - 1) *
 * stride_w + k_w pixels each (bindings/conv.py rows_scratch); a kernel row of two adjacent output
 * pixels is then a run of k_w * C values in place, which se_mac_2x2_rows reads directly instead
 * of a patch copy per pixel (the general kernel widens every input value k_h * k_w times). */
void se_conv2d_rows_s8_dsp(const se_conv_params_t *params, const int8_t *in, int8_t *out) {
    const se_conv_params_t local = *params, *p = &local;
    const int32_t c = p->in_c, kh = p->k_h, k = kh * p->k_w * c, run = p->k_w * c, n = p->out_c;
    const int32_t wpx = (p->out_w - 1) * p->stride_w + p->k_w, line = wpx * c / 2; /* words per ring row */
    const int32_t step = p->stride_w * c / 2, off = -p->in_zp;
    const se_req_t r = {p->bias, p->mult, p->shift, p->rq, 1, p->out_zp, p->act_min, p->act_max,
                         se_rq_fast(p->rq, n, p->act_min, p->act_max)};
    uint32_t *ring = (uint32_t *)(void *)p->scratch;
    int16_t no_tail[3];
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * c;
        int8_t *o = out + b * p->out_h * p->out_w * n;
        int32_t held[8] = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const uint32_t *rows[8];
            for (int32_t ky = 0; ky < kh; ky++) {
                const int32_t y = oy * p->stride_h - p->pad_top + ky, slot = (oy * p->stride_h + ky) % kh;
                uint32_t *dst = ring + slot * line;
                if (held[slot] != y) {
                    held[slot] = y;
                    const int32_t x0 = -p->pad_left, lo = x0 < 0 ? -x0 : 0;
                    int32_t hi = p->in_w - x0;
                    hi = hi > wpx ? wpx : hi;
                    if (y < 0 || y >= p->in_h || hi <= lo) {
                        memset(dst, 0, (size_t)line * 4);
                    } else {
                        memset(dst, 0, (size_t)lo * c * 2);
                        se_widen(img + (y * p->in_w + x0 + lo) * c, 1, (hi - lo) * c, off, dst + lo * c / 2, 2, no_tail);
                        memset(dst + hi * c / 2, 0, (size_t)(wpx - hi) * c * 2);
                    }
                }
                rows[ky] = dst;
            }
            for (int32_t ox = 0; ox < p->out_w; ox += 2) {
                const int32_t pair = ox + 1 < p->out_w, at = ox * step;
                int8_t *o0 = o + (oy * p->out_w + ox) * n, *o1 = o0 + n;
                int32_t m = 0;
                for (; m + 1 < n; m += 2) {
                    const int8_t *s0 = p->weights + m * k, *s1 = s0 + k;
                    const int32_t b0 = se_bias(&r, m), b1 = se_bias(&r, m + 1);
                    int32_t acc[4] = {b0, b1, b0, b1};
                    se_mac_2x2_rows(acc, rows, at, pair ? step : 0, s0, s1, run >> 2, kh);
                    if (r.fast) {
                        se_req_cols(&r, m, acc[0], acc[1], acc[2], acc[3], o0 + m, pair ? o1 + m : 0, 1, 0);
                    } else {
                        o0[m] = se_req(&r, acc[0], m, 0);
                        o0[m + 1] = se_req(&r, acc[1], m + 1, 0);
                        if (pair) {
                            o1[m] = se_req(&r, acc[2], m, 0);
                            o1[m + 1] = se_req(&r, acc[3], m + 1, 0);
                        }
                    }
                }
                for (; m < n; m++) {
                    for (int32_t q = 0; q <= pair; q++) {
                        int32_t acc = se_bias(&r, m);
                        for (int32_t ky = 0; ky < kh; ky++)
                            acc = se_mac_1x1(acc, rows[ky] + at + q * step, 2, p->weights + m * k + ky * run, run >> 2);
                        (q ? o1 : o0)[m] = se_req(&r, acc, m, 0);
                    }
                }
            }
        }
    }
}
