/* Portable int8 kernels: TFLite's integer arithmetic (double-rounding requantization) and the
 * documented integer algorithms of simulator.py. No allocation, no floating point. */
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

void se_fc_s8(const se_fc_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * p->in_k;
        for (int32_t n = 0; n < p->out_n; n++) {
            const int8_t *w = p->weights + n * p->in_k;
            int32_t acc = p->bias[n];
            for (int32_t k = 0; k < p->in_k; k++) acc += (x[k] - p->in_zp) * w[k];
            *out++ = se_clamp(se_mbqm(acc, p->mult[n], p->shift[n]) + p->out_zp, p->act_min, p->act_max);
        }
    }
}

/* Walks each output channel's stored blocks; skipped blocks are zero weights and add nothing. */
void se_fc_sparse_s8(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t b = p->block;
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * p->in_k;
        const uint8_t *skip = p->skips;
        const int8_t *v = p->values;
        for (int32_t n = 0; n < p->out_n; n++) {
            int32_t acc = p->bias[n];
            const int8_t *xp = x;
            for (int32_t i = 0; i < p->counts[n]; i++, xp += b) {
                xp += *skip++ * b;
                for (int32_t t = 0; t < b; t++) acc += (xp[t] - p->in_zp) * *v++;
            }
            *out++ = se_clamp(se_mbqm(acc, p->mult[n], p->shift[n]) + p->out_zp, p->act_min, p->act_max);
        }
    }
}

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

void se_matmul_s8(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    for (int32_t t = 0; t < p->batch; t++) {
        const int8_t *A = a + p->a_offsets[t];
        const int8_t *B = b + p->b_offsets[t];
        for (int32_t i = 0; i < p->m; i++) {
            for (int32_t j = 0; j < p->n; j++) {
                int32_t acc = 0;
                for (int32_t k = 0; k < p->k; k++)
                    acc += (A[i * p->a_rs + k * p->a_cs] - p->a_zp) * (B[k * p->b_ks + j * p->b_ns] - p->b_zp);
                *out++ = se_clamp(se_mbqm(acc, p->mult, p->shift) + p->out_zp, p->act_min, p->act_max);
            }
        }
    }
}

/* Broadcasting walk shared by Add and Mul: visits the output in order with both input offsets. */
#define SE_BROADCAST_LOOP(p, BODY)                                                                  \
    do {                                                                                            \
        const int32_t *S = (p)->out_shape, *sa = (p)->a_strides, *sb = (p)->b_strides;              \
        int32_t o = 0;                                                                              \
        for (int32_t i0 = 0; i0 < S[0]; i0++)                                                       \
        for (int32_t i1 = 0; i1 < S[1]; i1++)                                                       \
        for (int32_t i2 = 0; i2 < S[2]; i2++)                                                       \
        for (int32_t i3 = 0; i3 < S[3]; i3++)                                                       \
        for (int32_t i4 = 0; i4 < S[4]; i4++)                                                       \
        for (int32_t i5 = 0; i5 < S[5]; i5++) {                                                     \
            int32_t ia = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3] + i4 * sa[4] + i5 * sa[5]; \
            int32_t ib = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3] + i4 * sb[4] + i5 * sb[5]; \
            BODY;                                                                                   \
            o++;                                                                                    \
        }                                                                                           \
    } while (0)

void se_add_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    SE_BROADCAST_LOOP(p, {
        int32_t va = se_mbqm((a[ia] - p->a_zp) * (1 << p->left_shift), p->a_mult, p->a_shift);
        int32_t vb = se_mbqm((b[ib] - p->b_zp) * (1 << p->left_shift), p->b_mult, p->b_shift);
        out[o] = se_clamp(se_mbqm(va + vb, p->out_mult, p->out_shift) + p->out_zp, p->act_min, p->act_max);
    });
}

void se_mul_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    SE_BROADCAST_LOOP(p, {
        int32_t prod = (a[ia] - p->a_zp) * (b[ib] - p->b_zp);
        out[o] = se_clamp(se_mbqm(prod, p->mult, p->shift) + p->out_zp, p->act_min, p->act_max);
    });
}

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
                            else acc += *v - p->in_zp;
                        }
                    }
                    int32_t res;
                    if (is_max) {
                        res = p->requant ? se_mbqm(acc - p->in_zp, p->mult, p->shift) + p->out_zp : acc;
                    } else {
                        res = se_mbqm(acc, p->count_mult[idx], p->count_shift[idx]) + p->out_zp;
                    }
                    *out++ = se_clamp(res, -128, 127);
                }
            }
        }
    }
}

void se_avgpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out) { se_pool(p, in, out, 0); }

void se_maxpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out) { se_pool(p, in, out, 1); }

void se_copy_s8(const se_copy_params_t *p, const int8_t *in, int8_t *out) {
    if (p->plain) {
        if (out != in) memcpy(out, in, (size_t)p->size); /* in place: nothing to move */
        return;
    }
    const int32_t *S = p->shape, *st = p->in_strides;
    int32_t o = 0;
    for (int32_t i0 = 0; i0 < S[0]; i0++)
    for (int32_t i1 = 0; i1 < S[1]; i1++)
    for (int32_t i2 = 0; i2 < S[2]; i2++)
    for (int32_t i3 = 0; i3 < S[3]; i3++)
    for (int32_t i4 = 0; i4 < S[4]; i4++)
    for (int32_t i5 = 0; i5 < S[5]; i5++) {
        int32_t v = in[i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3] + i4 * st[4] + i5 * st[5]];
        out[o++] = p->requant ? se_clamp(se_mbqm(v - p->in_zp, p->mult, p->shift) + p->out_zp, -128, 127) : (int8_t)v;
    }
}

void se_concat_s8(const se_concat_params_t *p, const int8_t *const *ins, int8_t *out) {
    int32_t col = 0;
    for (int32_t t = 0; t < p->n_inputs; t++) {
        const int8_t *src = ins[t];
        int32_t inner = p->inner[t];
        for (int32_t r = 0; r < p->outer; r++) {
            int8_t *dst = out + r * p->out_inner + col;
            const int8_t *s = src + r * inner;
            if (!p->requant[t]) {
                memcpy(dst, s, (size_t)inner);
            } else {
                for (int32_t i = 0; i < inner; i++)
                    dst[i] = se_clamp(se_mbqm(s[i] - p->in_zp[t], p->mult[t], p->shift[t]) + p->out_zp, -128, 127);
            }
        }
        col += inner;
    }
}

void se_softmax_s8(const se_softmax_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * p->n;
        int32_t mx = -128;
        for (int32_t i = 0; i < p->n; i++) mx = x[i] > mx ? x[i] : mx;
        int64_t sum = 0;
        for (int32_t i = 0; i < p->n; i++) sum += p->exp_table[mx - x[i]];
        int64_t recip = (1LL << 46) / sum;
        for (int32_t i = 0; i < p->n; i++) {
            int32_t y = (int32_t)(((int64_t)p->exp_table[mx - x[i]] * recip) >> 16);
            *out++ = se_clamp(se_mbqm(y, p->mult, p->shift) + p->out_zp, -128, 127);
        }
    }
}

static uint32_t se_isqrt32(uint32_t x) {
    uint32_t res = 0, bit = 1UL << 30;
    while (bit > x) bit >>= 2;
    while (bit != 0) {
        if (x >= res + bit) {
            x -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

/* LayerNorm's and BatchNorm's output stage: t = MBQM(v) in Q8, zp + round((t + b) / 256). se_mbqm_floor
 * is exact for their signed multipliers too (|mult| < 2^31); t + b + 128 can pass 2^31, so it is
 * summed in 64 bits, and its >> 8 fits int32. */
static inline __attribute__((always_inline)) int8_t se_affine_out(int32_t v, int32_t mult, int32_t shift,
                                                                  int32_t bias_q8, int32_t zp) {
    return se_clamp((int32_t)(((int64_t)se_mbqm_floor(v, mult, shift) + bias_q8 + 128) >> 8) + zp, -128, 127);
}

static inline int32_t se_rshift_round(int32_t v, int32_t k) {
    return k ? (v + (1L << (k - 1))) >> k : v;
}

/* Scaled-LayerNorm (simulator.py): int32 only; the per-row pre-scale keeps the sum below 2^31.
 * d_i = round((n (x_i - zp) - sum) / 2^k) is computed as (n x_i + c) >> k, c holding the rounding
 * term, -n zp and -sum. */
void se_layernorm_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t n = p->n, nzp = p->n * p->in_zp, zp = p->out_zp;
    const int32_t *mult = p->mult, *shift = p->shift, *bias = p->bias_q8;
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + r * n;
        int32_t sum = 0, lo = x[0], hi = x[0];
        for (int32_t i = 0; i < n; i++) {
            const int32_t v = x[i];
            sum += v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        sum -= nzp;
        int32_t dlo = sum - n * lo + nzp, dhi = n * hi - nzp - sum;
        int32_t big = dlo > dhi ? dlo : dhi, k = p->prescale;
        while (se_rshift_round(big, k) > p->limit) k++;
        int32_t j = 2 * (k - p->prescale);
        uint32_t q = j < 31 ? (uint32_t)se_rshift_round(p->eps_term, j) : 0;
        const int32_t c = (k ? (int32_t)(1L << (k - 1)) : 0) - nzp - sum;
        for (int32_t i = 0; i < n; i++) {
            const int32_t d = (n * x[i] + c) >> k;
            q += (uint32_t)(d * d);
        }
        if (q == 0) q = 1;
        int32_t m = (__builtin_clz(q) - 1) >> 1;
        int32_t inv = (int32_t)((1UL << 30) / se_isqrt32(q << (2 * m)));
        for (int32_t i = 0; i < n; i++) {
            const int32_t d = (n * x[i] + c) >> k;
            *out++ = se_affine_out((int32_t)((uint32_t)d << m) * inv, mult[i], shift[i], bias[i], zp);
        }
    }
}

void se_affine_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t n = p->n, in_zp = p->in_zp, zp = p->out_zp;
    const int32_t *mult = p->mult, *shift = p->shift, *bias = p->bias_q8;
    for (int32_t r = 0; r < p->rows; r++)
        for (int32_t c = 0; c < n; c++) *out++ = se_affine_out(*in++ - in_zp, mult[c], shift[c], bias[c], zp);
}

void se_lut_s8(const se_lut_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t i = 0; i < p->size; i++) out[i] = p->table[in[i] + 128];
}

/* FC params of head h's slice of `n` output channels over `rows` input rows. */
static se_fc_params_t se_head_fc(const se_fc_params_t *p, int32_t h, int32_t n, int32_t rows) {
    se_fc_params_t r = *p;
    r.rows = rows;
    r.out_n = n;
    r.weights += h * n * p->in_k;
    if (r.bias) r.bias += h * n;
    if (r.mult) r.mult += h * n;
    if (r.shift) r.shift += h * n;
    if (r.rq) r.rq += 2 * h * n;
    return r;
}

/* Head h's projection (`n` output channels over `rows` input rows): block-sparse when `fs` is set,
 * the head's slice of the coding starting at its stored block first[h] (first NULL: head 0 only). */
static void se_attention_fc(const se_fc_params_t *d, se_fc_fn fd, const se_sparse_fc_params_t *s,
                            se_sparse_fc_fn fs, const int32_t *first, int32_t h, int32_t n, int32_t rows,
                            const int8_t *in, int8_t *out) {
    if (!fs) {
        const se_fc_params_t r = se_head_fc(d, h, n, rows);
        fd(&r, in, out);
        return;
    }
    se_sparse_fc_params_t r = *s;
    const int32_t f = first ? first[h] : 0;
    r.rows = rows;
    r.out_n = n;
    r.counts += h * n;
    r.skips += f;
    r.values += f * r.block;
    if (r.bias) r.bias += h * n;
    if (r.mult) r.mult += h * n;
    if (r.shift) r.shift += h * n;
    if (r.rq) r.rq += 2 * h * n;
    fs(&r, in, out);
}

static void se_attention_sequence(const se_attention_params_t *p, const int8_t *in, int8_t *out, int8_t *work) {
    const int32_t S = p->seq, E = p->dim, P = p->head_dim, T = p->tile, cs = p->ctx_stride;
    int8_t *ctx = p->ctx_off < 0 ? out : work + p->ctx_off;
    int8_t *kh = work + p->k_off, *vh = work + p->v_off, *qt = work + p->q_off;
    int8_t *st = work + p->s_off, *ct = work + p->c_off, *ot = work + p->o_off;
    for (int32_t h = 0; h < p->heads; h++) {
        se_attention_fc(&p->v, p->fc_v, &p->sv, p->sfc_v, p->v_first, h, P, S, in, vh);
        if (!p->fused) se_attention_fc(&p->k, p->fc_k, &p->sk, p->sfc_k, p->k_first, h, P, S, in, kh);
        for (int32_t i0 = 0; i0 < S; i0 += T) {
            const int32_t t = S - i0 < T ? S - i0 : T;
            se_attention_fc(&p->q, p->fc_q, &p->sq, p->sfc_q, p->q_first, h, p->q_n, t, in + i0 * E, qt);
            se_matmul_params_t m = p->scores;
            m.m = t;
            p->mm_scores(&m, qt, p->fused ? in : kh, st);
            se_softmax_params_t sm = p->softmax;
            sm.rows = t;
            p->sm(&sm, st, st);
            m = p->ctx;
            m.m = t;
            p->mm_ctx(&m, st, vh, ct);
            for (int32_t r = 0; r < t; r++) memcpy(ctx + (i0 + r) * cs + h * P, ct + r * P, (size_t)P);
        }
    }
    const int32_t hp = p->heads * P;
    for (int32_t i0 = 0; i0 < S; i0 += T) {
        const int32_t t = S - i0 < T ? S - i0 : T;
        for (int32_t r = 0; r < t; r++) memcpy(ot + r * hp, ctx + (i0 + r) * cs, (size_t)hp);
        se_attention_fc(&p->o, p->fc_o, &p->so, p->sfc_o, 0, 0, p->out_dim, t, ot, out + i0 * p->out_dim);
    }
}

void se_attention_s8(const se_attention_params_t *p, const int8_t *in, int8_t *out, int8_t *work) {
    for (int32_t g = 0; g < p->groups; g++)
        se_attention_sequence(p, in + g * p->seq * p->dim, out + g * p->seq * p->out_dim, work);
}
