#include "se_dsp.h"

/* Sparse kxk conv, blocks of 4m values, C % 4 == 0, dilation 1 along x (codegen sends the rest to
 * the portable kernel). For each output row the input columns it reads are widened once into
 * scratch: column cx (input x = cx - pad_left) holds k_h rows of C values, zero outside the image.
 * With the weights coded in column order (kx, ky, c), block j of output pixel ox lies at
 * column ox * stride_w, plus j * b values: the skip walk of the sparse FC, without im2col. Pixels go
 * in pairs (a second pointer, stride_w columns on), each unpacked weight word serving both. */
static inline __attribute__((always_inline)) void se_columns(const se_conv_params_t *p, const int8_t *img,
                                                             int32_t oy, int32_t ncol, uint32_t *dst, int natural) {
    const int32_t c = p->in_c, words = c >> 1, pitch = p->k_h * words;
    const uint32_t off2 = se_pair(-p->in_zp, -p->in_zp);
    const int32_t x0 = p->pad_left, x1 = p->pad_left + p->in_w < ncol ? p->pad_left + p->in_w : ncol;
    for (int32_t ky = 0; ky < p->k_h; ky++, dst += words) {
        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
        const int inside = iy >= 0 && iy < p->in_h;
        for (int32_t cx = 0; cx < ncol; cx++) {
            if (!inside || cx < x0 || cx >= x1) memset(dst + cx * pitch, 0, (size_t)words * 4);
        }
        if (!inside) continue;
        const int8_t *x = img + iy * p->in_w * c;
        uint32_t *o = dst + x0 * pitch;
        for (int32_t cx = x0; cx < x1; cx++, o += pitch - words) {
            for (int32_t q = 0; q < words; q += 2, x += 4, o += 2) {
                const uint32_t w = se_ld32(x), e = se_sxtab16(off2, w), d = se_sxtab16_ror8(off2, w);
                if (natural) { /* (x0,x1),(x2,x3): blocks of 1 and 2 values */
                    o[0] = (e & 0xFFFFu) | (d << 16);
                    o[1] = (e >> 16) | (d & 0xFFFF0000u);
                } else {
                    o[0] = e;
                    o[1] = d;
                }
            }
        }
    }
}

/* Pixel pairs: hdr = per output channel {bias, count} (codegen: one stream instead of two); the
 * whole channel loop is one asm block writing the accumulator pairs acc[2n], acc[2n + 1]; the
 * base pointers of the two pixels come from memory (`pix`) so that the loop fits the registers. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define SE_SPC_CHUNK                                 \
    SE_SP_CHUNK1                                     \
    "ldrd %[x0], %[x1], [%[wq]], #8\n\t"             \
    "smlad %[a1], %[x0], %[e], %[a1]\n\t"            \
    "smlad %[a1], %[x1], %[w], %[a1]\n\t"
/* Blocks of 1 and 2 read columns widened in natural order: one value (LDRSH, MLA) or one
 * halfword pair (LDR, SMLAD with the SXTB16-unpacked weight pair) per pixel. */
#define SE_SPC_B1                                    \
    "ldrsb %[w], [%[v]], #1\n\t"                     \
    "ldrsh %[x0], [%[wp]], #2\n\t"                   \
    "ldrsh %[x1], [%[wq]], #2\n\t"                   \
    "mla %[a0], %[w], %[x0], %[a0]\n\t"              \
    "mla %[a1], %[w], %[x1], %[a1]\n\t"
#define SE_SPC_B2                                    \
    "ldrsb %[w], [%[v]], #1\n\t"                     \
    "ldrsb %[e], [%[v]], #1\n\t"                     \
    "ldr %[x0], [%[wp]], #4\n\t"                     \
    "ldr %[x1], [%[wq]], #4\n\t"                     \
    "pkhbt %[w], %[w], %[e], lsl #16\n\t"            \
    "smlad %[a0], %[x0], %[w], %[a0]\n\t"            \
    "smlad %[a1], %[x1], %[w], %[a1]\n\t"
/* LOG2SB: log2 of the bytes of widened values per block (2 b) */
#define SE_SPC_CHANNELS(LOG2SB, CHUNKS)                                                           \
    __asm__ volatile("1:\n\t"                                                                     \
                     "ldrd %[a0], %[cnt], [%[hdr]], #8\n\t"                                       \
                     "mov %[a1], %[a0]\n\t"                                                       \
                     "cmp %[cnt], #0\n\t"                                                         \
                     "beq 3f\n\t"                                                                 \
                     "ldrd %[wp], %[wq], %[pix]\n\t"                                              \
                     "2:\n\t"                                                                     \
                     "ldrb %[e], [%[sk]], #1\n\t"                                                 \
                     "add %[wp], %[wp], %[e], lsl #" LOG2SB "\n\t"                                \
                     "add %[wq], %[wq], %[e], lsl #" LOG2SB "\n\t"                                \
                     CHUNKS                                                                       \
                     "subs %[cnt], %[cnt], #1\n\t"                                                \
                     "bne 2b\n\t"                                                                 \
                     "3:\n\t"                                                                     \
                     "strd %[a0], %[a1], [%[acc]], #8\n\t"                                        \
                     "ldr %[e], %[end]\n\t"                                                       \
                     "cmp %[hdr], %[e]\n\t"                                                       \
                     "bne 1b\n\t"                                                                 \
                     : [hdr] "+&r"(hdr), [sk] "+&r"(sk), [v] "+&r"(v), [acc] "+&r"(acc), [a0] "=&r"(a0_),     \
                       [a1] "=&r"(a1_), [cnt] "=&r"(cnt_), [wp] "=&r"(wp_), [wq] "=&r"(wq_),      \
                       [w] "=&r"(w_), [e] "=&r"(e_), [x0] "=&r"(x0_), [x1] "=&r"(x1_)             \
                     : [pix] "m"(pix), [end] "m"(end)                                             \
                     : "cc", "memory")
static void se_spc_pairs(const se_sparse_conv_params_t *sp, const uint32_t *w0, const uint32_t *w1, int32_t *acc,
                         int32_t block) {
    const int32_t *hdr = sp->hdr, *end = sp->hdr + 2 * sp->conv.out_c;
    const uint8_t *sk = sp->skips;
    const int8_t *v = sp->values;
    const uint64_t pix = (uint32_t)w0 | (uint64_t)(uint32_t)w1 << 32;
    uint32_t a0_, a1_, cnt_, wp_, wq_, w_, e_, x0_, x1_;
    if (block == 1) SE_SPC_CHANNELS("1", SE_SPC_B1);
    else if (block == 2) SE_SPC_CHANNELS("2", SE_SPC_B2);
    else if (block == 4) SE_SPC_CHANNELS("3", SE_SPC_CHUNK);
    else if (block == 8) SE_SPC_CHANNELS("4", SE_X2(SE_SPC_CHUNK));
    else SE_SPC_CHANNELS("5", SE_X4(SE_SPC_CHUNK));
}

/* Requantize the accumulator pairs of n channels into two pixels' outputs o[0..n) and o[n..2n):
 * one table fetch per channel for both. */
#define SE_RQP_LOOP(CLAMP0, CLAMP1)                                \
    "1:\n\t"                                                       \
    "ldrd %[a0], %[a1], [%[acc]], #8\n\t"                          \
    "ldrd %[m], %[rnd], [%[rq]], #8\n\t"                           \
    "lsl %[a0], %[a0], #1\n\t"                                     \
    "lsl %[a1], %[a1], #1\n\t"                                     \
    "smmulr %[a0], %[a0], %[m]\n\t"                                \
    "smmulr %[a1], %[a1], %[m]\n\t"                                \
    "clz %[rs], %[rnd]\n\t"                                        \
    "rsbs %[rs], %[rs], #32\n\t"                                   \
    "beq 2f\n\t"                                                   \
    "add %[m], %[rnd], %[a0]\n\t"                                  \
    "sub %[m], %[m], %[a0], lsr #31\n\t"                           \
    "asr %[a0], %[m], %[rs]\n\t"                                   \
    "add %[m], %[rnd], %[a1]\n\t"                                  \
    "sub %[m], %[m], %[a1], lsr #31\n\t"                           \
    "asr %[a1], %[m], %[rs]\n\t"                                   \
    "2:\n\t"                                                       \
    "add %[a0], %[a0], %[zp]\n\t"                                  \
    "add %[a1], %[a1], %[zp]\n\t"                                  \
    CLAMP0 CLAMP1                                                  \
    "strb %[a1], [%[o], %[n]]\n\t"                                 \
    "strb %[a0], [%[o]], #1\n\t"                                   \
    "subs %[cnt], %[cnt], #1\n\t"                                  \
    "bne 1b\n\t"
#define SE_RQP_OPERANDS                                                                                 \
    : [acc] "+&r"(acc), [rq] "+&r"(rq), [o] "+&r"(o), [cnt] "+&r"(cnt), [a0] "=&r"(a0), [a1] "=&r"(a1),     \
      [m] "=&r"(m), [rnd] "=&r"(rnd), [rs] "=&r"(rs)                                                    \
    : [n] "r"(n), [zp] "r"(zp), [lo] "r"(lo), [hi] "r"(hi)                                              \
    : "cc", "memory"
#define SE_RQP_CLAMP(R) "cmp %[" R "], %[lo]\n\tit lt\n\tmovlt %[" R "], %[lo]\n\t" \
                        "cmp %[" R "], %[hi]\n\tit gt\n\tmovgt %[" R "], %[hi]\n\t"
static void se_requant_pairs(const int32_t *acc, int32_t n, const int32_t *rq, int32_t zp, int32_t lo, int32_t hi,
                             int8_t *o) {
    int32_t cnt = n, a0, a1, m, rnd, rs;
    if (lo == -128 && hi == 127) {
        __asm__ volatile(SE_RQP_LOOP("ssat %[a0], #8, %[a0]\n\t", "ssat %[a1], #8, %[a1]\n\t") SE_RQP_OPERANDS);
    } else {
        __asm__ volatile(SE_RQP_LOOP(SE_RQP_CLAMP("a0"), SE_RQP_CLAMP("a1")) SE_RQP_OPERANDS);
    }
}
#else
static void se_spc_pairs(const se_sparse_conv_params_t *sp, const uint32_t *w0, const uint32_t *w1, int32_t *acc,
                         int32_t block) {
    const int32_t *hdr = sp->hdr, cpb = block >> 2;
    const uint8_t *sk = sp->skips;
    const int8_t *v = sp->values;
    for (int32_t n = 0; n < sp->conv.out_c; n++, hdr += 2, acc += 2) {
        const uint32_t *wp = w0, *wq = w1;
        acc[0] = acc[1] = hdr[0];
        if (block < 4) { /* natural order, int16 values */
            const int16_t *xp = (const int16_t *)(const void *)w0, *xq = (const int16_t *)(const void *)w1;
            for (int32_t count = hdr[1]; count > 0; count--, v += block, xp += block, xq += block) {
                xp += *sk * block;
                xq += *sk++ * block;
                for (int32_t t = 0; t < block; t++) {
                    acc[0] += v[t] * xp[t];
                    acc[1] += v[t] * xq[t];
                }
            }
            continue;
        }
        for (int32_t count = hdr[1]; count > 0; count--) {
            const int32_t s = *sk++ * 2 * cpb;
            wp += s;
            wq += s;
            for (int32_t c = 0; c < cpb; c++, v += 4, wp += 2, wq += 2) {
                const uint32_t wv = se_ld32(v), e = se_sxtb16(wv), o = se_sxtb16_ror8(wv);
                acc[0] = se_smlad(wp[1], o, se_smlad(wp[0], e, acc[0]));
                acc[1] = se_smlad(wq[1], o, se_smlad(wq[0], e, acc[1]));
            }
        }
    }
}

static void se_requant_pairs(const int32_t *acc, int32_t n, const int32_t *rq, int32_t zp, int32_t lo, int32_t hi,
                             int8_t *o) {
    for (int32_t i = 0; i < n; i++) {
        o[i] = se_rq_table(acc[2 * i], rq + 2 * i, zp, lo, hi, 0);
        o[n + i] = se_rq_table(acc[2 * i + 1], rq + 2 * i, zp, lo, hi, 0);
    }
}
#endif

/* A single pixel (odd output width): the sparse FC walk, accumulators at acc[2n]. */
static void se_spc_single(const se_sparse_conv_params_t *sp, const uint32_t *w0, int32_t *acc, int32_t cpb) {
    const uint8_t *sk = sp->skips;
    const int8_t *v = sp->values;
    for (int32_t n = 0; n < sp->conv.out_c; n++) {
        int32_t a[2] = {sp->hdr[2 * n], 0};
        if (sp->hdr[2 * n + 1]) {
            if (cpb == 1) se_sp_blocks(a, w0, &sk, &v, sp->hdr[2 * n + 1], 1, 1);
            else if (cpb == 2) se_sp_blocks(a, w0, &sk, &v, sp->hdr[2 * n + 1], 2, 1);
            else se_sp_blocks(a, w0, &sk, &v, sp->hdr[2 * n + 1], 4, 1);
        }
        acc[2 * n] = a[0];
    }
}

void se_conv_sparse_s8_dsp(const se_sparse_conv_params_t *sp, const int8_t *in, int8_t *out) {
    const se_conv_params_t *p = &sp->conv;
    const int32_t n = p->out_c, ncol = (p->out_w - 1) * p->stride_w + p->k_w, col = (p->k_h * p->in_c) >> 1;
    const int32_t cpb = sp->block >> 2, natural = sp->block < 4;
    const se_req_t r = {0, p->mult, p->shift, p->rq, 1, p->out_zp, p->act_min, p->act_max,
                         se_rq_fast(p->rq, p->out_c, p->act_min, p->act_max)};
    uint32_t *cols = (uint32_t *)(void *)p->scratch;
    int32_t *acc = (int32_t *)(void *)(p->scratch + 2 * ncol * col);
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            if (natural) se_columns(p, img, oy, ncol, cols, 1); /* two instances, no test per chunk */
            else se_columns(p, img, oy, ncol, cols, 0);
            for (int32_t ox = 0; ox < p->out_w; ox += 2) {
                const uint32_t *w0 = cols + ox * p->stride_w * col;
                const int32_t pair = ox + 1 < p->out_w;
                int8_t *o = out + ((b * p->out_h + oy) * p->out_w + ox) * n;
                if (pair) se_spc_pairs(sp, w0, w0 + p->stride_w * col, acc, sp->block);
                else if (natural) se_spc_pairs(sp, w0, w0, acc, sp->block); /* the pair kernel, second half unused */
                else se_spc_single(sp, w0, acc, cpb);
                if (pair && p->rq) {
                    se_requant_pairs(acc, n, p->rq, p->out_zp, p->act_min, p->act_max, o);
                    continue;
                }
                for (int32_t q = 0; q <= pair; q++)
                    for (int32_t c = 0; c < n; c++) o[q * n + c] = se_req(&r, acc[2 * c + q], c, 0);
            }
        }
    }
}

