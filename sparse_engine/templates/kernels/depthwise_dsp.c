#include "se_dsp.h"
#include "se_dsp_requant.h"

/* Depthwise, channel multiplier 1: four channels per input word, unpacked by SXTAB16 into the
 * halfword pairs (c0,c2) and (c1,c3) and multiplied by SMLABB/SMLATT. The weights are widened
 * offline (codegen.depthwise_dsp_weights): for each group of four channels and each tap the pairs
 * (w0,w2),(w1,w3); then the c % 4 tail channels tap by tap. Taps outside the image are skipped
 * (they would add zero). Accumulators of one pixel go to scratch, then one requantizing pass. */
#define SE_DW_TAP(xp, wp)                                        \
    do {                                                         \
        uint32_t x_ = se_ld32(xp);                               \
        uint32_t xe_ = se_sxtab16(off2, x_), xo_ = se_sxtab16_ror8(off2, x_); \
        uint32_t we_ = se_ld32(wp), wo_ = se_ld32((wp) + 2);     \
        a0 = se_smlabb(xe_, we_, a0);                            \
        a2 = se_smlatt(xe_, we_, a2);                            \
        a1 = se_smlabb(xo_, wo_, a1);                            \
        a3 = se_smlatt(xo_, wo_, a3);                            \
    } while (0)

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One tap as asm: LD loads the input word into t; weights from w on (post-increment). */
#define SE_DW_TAP_ASM(LD)                          \
    LD "\n\t"                                      \
    "ldrd %[we], %[wo], [%[w]], #8\n\t"            \
    "sxtab16 %[e], %[o], %[t]\n\t"                 \
    "sxtab16 %[t], %[o], %[t], ror #8\n\t"         \
    "smlabb %[a0], %[e], %[we], %[a0]\n\t"         \
    "smlatt %[a2], %[e], %[we], %[a2]\n\t"         \
    "smlabb %[a1], %[t], %[wo], %[a1]\n\t"         \
    "smlatt %[a3], %[t], %[wo], %[a3]\n\t"
#define SE_DW_ROW_ASM(LD0)                                                                 \
    SE_DW_TAP_ASM(LD0) SE_DW_TAP_ASM("ldr %[t], [%[x], %[cs]]")                            \
    SE_DW_TAP_ASM("ldr %[t], [%[x], %[cs], lsl #1]")

/* Three taps of one kernel row: inputs at X_, X_ + CS_, X_ + 2 CS_; weights from W_ on. */
#define SE_DW_ROW3(X_, CS_, W_)                                                            \
    do {                                                                                   \
        uint32_t t_, e_, we_, wo_;                                                         \
        const int16_t *w_ = (W_);                                                          \
        __asm__(SE_DW_ROW_ASM("ldr %[t], [%[x]]")                                          \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w_), \
                  [t] "=&r"(t_), [e] "=&r"(e_), [we] "=&r"(we_), [wo] "=&r"(wo_)           \
                : [x] "r"(X_), [cs] "r"(CS_), [o] "r"(off2)                                \
                : "memory");                                                               \
    } while (0)

/* Five taps of one kernel row: inputs at X_ + i CS_ (i < 5), weights from W_ on. X_ is moved
 * (to X_ + 2 CS_ halfway: Thumb-2 addressing scales a register offset by 1, 2, 4 or 8 only). */
#define SE_DW_ROW5(X_, CS_, W_)                                                            \
    do {                                                                                   \
        uint32_t t_, e_, we_, wo_;                                                         \
        const int8_t *x_ = (X_);                                                           \
        __asm__(SE_DW_ROW_ASM("ldr %[t], [%[x]]")                                          \
                "add %[x], %[x], %[cs], lsl #1\n\t"                                        \
                SE_DW_TAP_ASM("ldr %[t], [%[x], %[cs]]")                                   \
                SE_DW_TAP_ASM("ldr %[t], [%[x], %[cs], lsl #1]")                           \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(W_), \
                  [x] "+r"(x_), [t] "=&r"(t_), [e] "=&r"(e_), [we] "=&r"(we_), [wo] "=&r"(wo_) \
                : [cs] "r"(CS_), [o] "r"(off2)                                             \
                : "memory");                                                               \
    } while (0)

/* The whole 3x3 window of one group: rows at X_, X_ + RS_, X_ + 2 RS_. Leaves X_ at X_ + 2 RS_
 * and W_ after the nine taps, which is the next group's first weight. */
#define SE_DW_3X3(X_, CS_, RS_, W_)                                                        \
    do {                                                                                   \
        uint32_t t_, e_, we_, wo_;                                                         \
        __asm__(SE_DW_ROW_ASM("ldr %[t], [%[x]]")                                          \
                "add %[x], %[x], %[rs]\n\t" SE_DW_ROW_ASM("ldr %[t], [%[x]]")            \
                "add %[x], %[x], %[rs]\n\t" SE_DW_ROW_ASM("ldr %[t], [%[x]]")            \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(W_), \
                  [x] "+r"(X_), [t] "=&r"(t_), [e] "=&r"(e_), [we] "=&r"(we_), [wo] "=&r"(wo_) \
                : [cs] "r"(CS_), [rs] "r"(RS_), [o] "r"(off2)                              \
                : "memory");                                                               \
    } while (0)
#else
#define SE_DW_ROW3(X_, CS_, W_)                    \
    do {                                           \
        SE_DW_TAP((X_), (W_));                     \
        SE_DW_TAP((X_) + (CS_), (W_) + 4);         \
        SE_DW_TAP((X_) + 2 * (CS_), (W_) + 8);     \
    } while (0)
#define SE_DW_ROW5(X_, CS_, W_)                              \
    do {                                                    \
        for (int32_t i_ = 0; i_ < 5; i_++, (W_) += 4)       \
            SE_DW_TAP((X_) + i_ * (CS_), (W_));             \
    } while (0)
#define SE_DW_3X3(X_, CS_, RS_, W_)                     \
    do {                                                \
        SE_DW_ROW3((X_), (CS_), (W_));                  \
        SE_DW_ROW3((X_) + (RS_), (CS_), (W_) + 12);     \
        SE_DW_ROW3((X_) + 2 * (RS_), (CS_), (W_) + 24); \
        (X_) += 2 * (RS_);                              \
        (W_) += 36;                                     \
    } while (0)
#endif

void se_depthwise_conv2d_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out_base) {
    const int32_t c = p->in_c, off = -p->in_zp, kw = p->k_w, taps = p->k_h * p->k_w;
    const int32_t groups = c >> 2, tail_c = c & 3;
    const uint32_t off2 = se_pair(off, off);
    const int32_t row_step = p->dil_h * p->in_w * c, col_step = p->dil_w * c;
    int32_t *acc = (int32_t *)(void *)p->scratch;
    const int32_t *bias = p->bias; /* in a register across the asm blocks' memory clobbers */
    const int16_t *wtail = p->weights16 + groups * taps * 4;
    const int32_t pairs = se_rqt_pairs_fit(p->rq, c, p->act_min, p->act_max);
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * c;
        int8_t *dst = out_base + b * p->out_h * p->out_w * p->out_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            int8_t *out = se_dw_row_begin(p, dst, oy);
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0 = 0, ky1 = p->k_h;
            while (ky0 < ky1 && y0 + ky0 * p->dil_h < 0) ky0++;
            while (ky1 > ky0 && y0 + (ky1 - 1) * p->dil_h >= p->in_h) ky1--;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t kx0 = 0, kx1 = kw;
                while (kx0 < kx1 && x0 + kx0 * p->dil_w < 0) kx0++;
                while (kx1 > kx0 && x0 + (kx1 - 1) * p->dil_w >= p->in_w) kx1--;
                const int32_t rows = ky1 - ky0, cols = kx1 - kx0, first = ky0 * kw + kx0, skip = (kw - cols) * 4;
                const int8_t *base = img + ((y0 + ky0 * p->dil_h) * p->in_w + x0 + kx0 * p->dil_w) * c;
                const int16_t *wg = p->weights16 + first * 4;
                if (rows * cols == 9 && taps == 9) {
                    const int8_t *xr = base;
                    const int16_t *wp = wg;
                    const int32_t back = 4 - 2 * row_step;
                    for (int32_t g = 0; g < 4 * groups; g += 4) {
                        int32_t a0 = bias[g], a1 = bias[g + 1], a2 = bias[g + 2], a3 = bias[g + 3];
                        SE_DW_3X3(xr, col_step, row_step, wp);
                        xr += back;
                        acc[g] = a0;
                        acc[g + 1] = a1;
                        acc[g + 2] = a2;
                        acc[g + 3] = a3;
                    }
                } else if (taps == 25 && rows * cols == 25) {
                    const int16_t *wp = wg;
                    for (int32_t g = 0; g < 4 * groups; g += 4) {
                        int32_t a0 = bias[g], a1 = bias[g + 1], a2 = bias[g + 2], a3 = bias[g + 3];
                        const int8_t *xr = base + g;
                        for (int32_t ky = 0; ky < 5; ky++, xr += row_step) SE_DW_ROW5(xr, col_step, wp);
                        acc[g] = a0;
                        acc[g + 1] = a1;
                        acc[g + 2] = a2;
                        acc[g + 3] = a3;
                    }
                } else for (int32_t g = 0; g < groups; g++, wg += taps * 4) {
                    int32_t a0 = p->bias[4 * g], a1 = p->bias[4 * g + 1], a2 = p->bias[4 * g + 2], a3 = p->bias[4 * g + 3];
                    const int8_t *xr = base + 4 * g;
                    const int16_t *wp = wg;
                    if (cols == 3) {
                        for (int32_t ky = 0; ky < rows; ky++, xr += row_step, wp += skip + 12) SE_DW_ROW3(xr, col_step, wp);
                    } else {
                        for (int32_t ky = 0; ky < rows; ky++, xr += row_step, wp += skip) {
                            const int8_t *xp = xr;
                            for (int32_t kx = 0; kx < cols; kx++, xp += col_step, wp += 4) SE_DW_TAP(xp, wp);
                        }
                    }
                    acc[4 * g] = a0;
                    acc[4 * g + 1] = a1;
                    acc[4 * g + 2] = a2;
                    acc[4 * g + 3] = a3;
                }
                for (int32_t t = 0; t < tail_c; t++) {
                    int32_t ch = 4 * groups + t, a = p->bias[ch];
                    for (int32_t ky = 0; ky < rows; ky++)
                        for (int32_t kx = 0; kx < cols; kx++)
                            a += (base[ky * row_step + kx * col_step + ch] + off) * wtail[(first + ky * kw + kx) * tail_c + t];
                    acc[ch] = a;
                }
                if (pairs)
                    se_requant_table_pairs(acc, c, p->rq, p->out_zp, out);
                else if (p->rq)
                    se_requant_table(acc, c, p->rq, p->out_zp, p->act_min, p->act_max, out, 0);
                else
                    se_requant_row(acc, c, p->mult, p->shift, p->out_zp, p->act_min, p->act_max, out, 0);
                out += c;
            }
            se_dw_row_end(p, dst, oy);
        }
    }
}


/* Depthwise 3x3, stride 1 or 2, no dilation, channel multiplier 1, row-stationary: input rows are
 * widened once into int16, with the zero point subtracted and the padding written as 0. Each
 * channel keeps a ring of three widened rows, stored column pair by column pair: word
 * [k][slot] = (x[2k], x[2k+1]) of the row in ring slot `slot`, so the six words two adjacent
 * outputs read lie at fixed offsets from one pointer. Per kernel row, two outputs take two words
 * and four MACs: out0 += SMLAD((x0,x1),(w0,w1)) + x2*w2, out1 += x1*w0 + SMLAD((x2,x3),(w1,w2))
 * (stride 2: out1 += SMLAD((x2,x3),(w0,w1)) + x4*w2); weights per channel and kernel row as
 * (w0,w1),(w1,w2), doubled (rows_weights), so the accumulators are 2 acc, which SMMULR takes
 * without a shift. The bias is added in the requantization pass (one register fewer in the loop). A row's accumulators are requantized in one pass with the channel's constants
 * in registers. Channels go block_c at a time: 4, or all of them when the output overwrites the
 * input (each output row is then written after every input row it covers has been widened).
 * Maps taller than wide may be swept along columns instead (sweep_cols; weights transposed). */
/* The sweep: along image rows, or along columns (sweep_cols) for maps taller than wide. A "line"
 * is an image row (column), its pixels px_step bytes apart, lines line_step apart. */
typedef struct {
    int32_t lines, len, pad_line, pad_px, out_lines, out_len, line_step, px_step, oline_step, opx_step;
} se_dw_sweep_t;

static inline se_dw_sweep_t se_dw_sweep(const se_conv_params_t *p) {
    const int32_t c = p->in_c, oc = p->out_c;
    if (p->sweep_cols)
        return (se_dw_sweep_t){p->in_w, p->in_h, p->pad_left, p->pad_top, p->out_w, p->out_h, c, p->in_w * c, oc,
                               p->out_w * oc};
    return (se_dw_sweep_t){p->in_h, p->in_w, p->pad_top, p->pad_left, p->out_h, p->out_w, p->in_w * c, c,
                           p->out_w * oc, oc};
}

/* Columns of a widened line (rows_scratch): every column a pair of outputs reads, even. */
static inline int32_t se_dw_rows_wp(const se_dw_sweep_t *g, int32_t stride) {
    return (stride * (g->out_len - 1) + 4 + 1) & ~1;
}

/* (x - zp) of the four channels at pixel px of one input row, as SXTAB16 pairs (c0,c2),(c1,c3);
 * 0 outside the row (the padding). */
static inline __attribute__((always_inline)) void se_dw_pixel4(const int8_t *row, int32_t px, int32_t w, int32_t c,
                                                               uint32_t off2, uint32_t *e, uint32_t *o) {
    if (px < 0 || px >= w) {
        *e = *o = 0;
    } else {
        uint32_t x = se_ld32(row + px * c);
        *e = se_sxtab16(off2, x);
        *o = se_sxtab16_ror8(off2, x);
    }
}

/* Four channels' column pair from the SXTAB16 pairs of pixels a and b, into the words d[0],
 * d[step], d[2 step], d[3 step] (channels 0..3). */
static inline __attribute__((always_inline)) void se_dw_store4(uint32_t *d, int32_t step, uint32_t ae, uint32_t ao,
                                                               uint32_t be, uint32_t bo) {
    d[0] = se_pkhbt16(ae, be);
    d[step] = se_pkhbt16(ao, bo);
    d[2 * step] = se_pkhtb16(be, ae);
    d[3 * step] = se_pkhtb16(bo, ao);
}

/* Widen channels [c0, c0 + nb) of input line `row` (NULL: a padding line) into ring slot `slot`
 * of ring[nb][wp / 2][3]: column j holds pixel j - pad_px. */
static void se_dw_widen_row(const se_conv_params_t *p, const se_dw_sweep_t *g, const int8_t *row, int32_t c0,
                            int32_t nb, int32_t wp, int32_t slot, uint32_t *ring) {
    const int32_t c = g->px_step, w = g->len, pl = g->pad_px, off = -p->in_zp, half = wp / 2, step = 3 * half;
    const uint32_t off2 = se_pair(off, off);
    if (!row) {
        for (int32_t i = 0; i < nb * half; i++) ring[3 * i + slot] = 0;
        return;
    }
    /* column pairs (2k, 2k + 1): both pixels inside the row for k in [k0, k1), padding around */
    const int32_t k0 = (pl + 1) >> 1 < half ? (pl + 1) >> 1 : half;
    const int32_t k1 = (w + pl) >> 1 < k0 ? k0 : ((w + pl) >> 1 > half ? half : (w + pl) >> 1);
    int32_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const int8_t *src = row + c0 + i;
        uint32_t *d = ring + i * step + slot, ae, ao, be, bo;
        for (int32_t k = 0; k < half; k++) {
            if (k == k0) {
                const int8_t *s = src + (2 * k - pl) * c;
                for (; k < k1; k++, s += 2 * c) {
                    const uint32_t xa = se_ld32(s), xb = se_ld32(s + c);
                    ae = se_sxtab16(off2, xa);
                    ao = se_sxtab16_ror8(off2, xa);
                    be = se_sxtab16(off2, xb);
                    bo = se_sxtab16_ror8(off2, xb);
                    se_dw_store4(d + 3 * k, step, ae, ao, be, bo);
                }
                if (k == half) break;
            }
            se_dw_pixel4(src, 2 * k - pl, w, c, off2, &ae, &ao);
            se_dw_pixel4(src, 2 * k + 1 - pl, w, c, off2, &be, &bo);
            se_dw_store4(d + 3 * k, step, ae, ao, be, bo);
        }
    }
    for (; i < nb; i++) { /* channels of a block that are not a group of four */
        uint32_t *d = ring + i * step + slot;
        for (int32_t k = 0; k < half; k++) {
            const int32_t a = 2 * k - pl, b = a + 1;
            d[3 * k] = se_pair(a < 0 || a >= w ? 0 : row[a * c + c0 + i] + off,
                               b < 0 || b >= w ? 0 : row[b * c + c0 + i] + off);
        }
    }
}

/* The last output of an odd row: its column pair x[0..2] and the next one x[3..5]. */
static inline __attribute__((always_inline)) int32_t se_dw_rows_one(const uint32_t *x, uint32_t w0, uint32_t v0,
                                                                    uint32_t w1, uint32_t v1, uint32_t w2,
                                                                    uint32_t v2) {
    int32_t a = se_smlad(x[0], w0, 0);
    a = se_smlabt(x[3], v0, a), a = se_smlad(x[1], w1, a), a = se_smlabt(x[4], v1, a);
    return se_smlabt(x[5], v2, se_smlad(x[2], w2, a));
}

/* One output row of one channel into doubled int32 accumulators, bias left out (the requant pass
 * adds it): x = the channel's ring, w0..v2 the weight pairs of the rows in ring slots 0, 1, 2. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* the loops' tail: store the pair, next pair until acc reaches end */
#define SE_DWR_STORE_NEXT "strd %[a0], %[a1], [%[acc]], #8\n\tcmp %[acc], %[end]\n\tbne 1b\n\t"
#define SE_DWR_OPERANDS                                                                                         \
    : [x] "+r"(x), [acc] "+r"(acc), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [a0] "=&r"(a0), [a1] "=&r"(a1) \
    : [w0] "r"(w0), [v0] "r"(v0), [w1] "r"(w1), [v1] "r"(v1), [w2] "r"(w2), [v2] "r"(v2), [end] "r"(end)          \
    : "cc", "memory"
static inline __attribute__((always_inline)) void se_dw_rows_acc(const uint32_t *x, uint32_t w0, uint32_t v0,
                                                                 uint32_t w1, uint32_t v1, uint32_t w2, uint32_t v2,
                                                                 int32_t n, int32_t stride, int32_t *acc) {
    int32_t *const end = acc + (n & ~1);
    uint32_t t0, t1, t2;
    int32_t a0, a1;
    if (acc < end && stride == 1) {
        __asm__ volatile(
            "1:\n\t"
            "ldr %[t0], [%[x]]\n\t"
            "ldr %[t1], [%[x], #12]\n\t"
            "ldr %[t2], [%[x], #4]\n\t"
            "smuad %[a0], %[t0], %[w0]\n\t"
            "smultb %[a1], %[t0], %[w0]\n\t"
            "ldr %[t0], [%[x], #16]\n\t"
            "smlabt %[a0], %[t1], %[v0], %[a0]\n\t"
            "smlad %[a1], %[t1], %[v0], %[a1]\n\t"
            "ldr %[t1], [%[x], #8]\n\t"
            "smlad %[a0], %[t2], %[w1], %[a0]\n\t"
            "smlatb %[a1], %[t2], %[w1], %[a1]\n\t"
            "ldr %[t2], [%[x], #20]\n\t"
            "smlabt %[a0], %[t0], %[v1], %[a0]\n\t"
            "smlad %[a1], %[t0], %[v1], %[a1]\n\t"
            "add %[x], %[x], #12\n\t"
            "smlad %[a0], %[t1], %[w2], %[a0]\n\t"
            "smlatb %[a1], %[t1], %[w2], %[a1]\n\t"
            "smlabt %[a0], %[t2], %[v2], %[a0]\n\t"
            "smlad %[a1], %[t2], %[v2], %[a1]\n\t"
            SE_DWR_STORE_NEXT SE_DWR_OPERANDS);
    } else if (acc < end) {
        __asm__ volatile(
            "1:\n\t"
            "ldr %[t0], [%[x]]\n\t"
            "ldr %[t1], [%[x], #12]\n\t"
            "ldr %[t2], [%[x], #24]\n\t"
            "smuad %[a0], %[t0], %[w0]\n\t"
            "smuad %[a1], %[t1], %[w0]\n\t"
            "ldr %[t0], [%[x], #4]\n\t"
            "smlabt %[a0], %[t1], %[v0], %[a0]\n\t"
            "smlabt %[a1], %[t2], %[v0], %[a1]\n\t"
            "ldr %[t1], [%[x], #16]\n\t"
            "ldr %[t2], [%[x], #28]\n\t"
            "smlad %[a0], %[t0], %[w1], %[a0]\n\t"
            "smlad %[a1], %[t1], %[w1], %[a1]\n\t"
            "ldr %[t0], [%[x], #8]\n\t"
            "smlabt %[a0], %[t1], %[v1], %[a0]\n\t"
            "smlabt %[a1], %[t2], %[v1], %[a1]\n\t"
            "ldr %[t1], [%[x], #20]\n\t"
            "ldr %[t2], [%[x], #32]\n\t"
            "smlad %[a0], %[t0], %[w2], %[a0]\n\t"
            "smlad %[a1], %[t1], %[w2], %[a1]\n\t"
            "add %[x], %[x], #24\n\t"
            "smlabt %[a0], %[t1], %[v2], %[a0]\n\t"
            "smlabt %[a1], %[t2], %[v2], %[a1]\n\t"
            SE_DWR_STORE_NEXT SE_DWR_OPERANDS);
    }
    if (n & 1) acc[0] = se_dw_rows_one(x, w0, v0, w1, v1, w2, v2);
}
#else
static inline void se_dw_rows_acc(const uint32_t *x, uint32_t w0, uint32_t v0, uint32_t w1, uint32_t v1,
                                  uint32_t w2, uint32_t v2, int32_t n, int32_t stride, int32_t *acc) {
    int32_t *const end = acc + (n & ~1);
    const int32_t o = 3 * stride; /* words from one output pair to the next */
    for (; acc < end; acc += 2, x += o) {
        int32_t a0 = 0, a1 = 0;
        a0 = se_smlad(x[0], w0, a0), a0 = se_smlabt(x[3], v0, a0);
        a0 = se_smlad(x[1], w1, a0), a0 = se_smlabt(x[4], v1, a0);
        a0 = se_smlad(x[2], w2, a0), a0 = se_smlabt(x[5], v2, a0);
        if (stride == 1) {
            a1 = se_smlatb(x[0], w0, a1), a1 = se_smlad(x[3], v0, a1);
            a1 = se_smlatb(x[1], w1, a1), a1 = se_smlad(x[4], v1, a1);
            a1 = se_smlatb(x[2], w2, a1), a1 = se_smlad(x[5], v2, a1);
        } else {
            a1 = se_smlad(x[3], w0, a1), a1 = se_smlabt(x[6], v0, a1);
            a1 = se_smlad(x[4], w1, a1), a1 = se_smlabt(x[7], v1, a1);
            a1 = se_smlad(x[5], w2, a1), a1 = se_smlabt(x[8], v2, a1);
        }
        acc[0] = a0;
        acc[1] = a1;
    }
    if (n & 1) acc[0] = se_dw_rows_one(x, w0, v0, w1, v1, w2, v2);
}
#endif

/* n doubled accumulators of one channel, plus its doubled bias b2, into int8 outputs `step` bytes
 * apart; the common case (table, right shift >= 1, bounds [-128, 127]) two at a time so that
 * their chains overlap on the dual-issue core. */
static inline __attribute__((always_inline)) void se_dw_rows_requant(const se_conv_params_t *p, const int32_t *acc,
                                                                     int32_t n, int32_t ch, int32_t b2, int8_t *out,
                                                                     int32_t step) {
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    if (!p->rq) {
        const int32_t m = p->mult[ch], sh = p->shift[ch];
        for (int32_t i = 0; i < n; i++, out += step) *out = se_rq((acc[i] + b2) >> 1, m, sh, zp, lo, hi);
        return;
    }
    const int32_t m = p->rq[2 * ch], rnd = p->rq[2 * ch + 1], right = 32 - se_clz((uint32_t)rnd);
    if (right && lo == -128 && hi == 127) {
        const int32_t *end = acc + (n & ~1);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        if (acc < end) {
            int32_t va, vb, ta, tb;
            __asm__ volatile(
                "1:\n\t"
                "ldrd %[va], %[vb], [%[acc]], #8\n\t"
                "add %[va], %[va], %[b2]\n\t"
                "add %[vb], %[vb], %[b2]\n\t"
                "smmulr %[va], %[va], %[m]\n\t"
                "smmulr %[vb], %[vb], %[m]\n\t"
                "add %[ta], %[va], %[rnd]\n\t"
                "add %[tb], %[vb], %[rnd]\n\t"
                "sub %[va], %[ta], %[va], lsr #31\n\t"
                "sub %[vb], %[tb], %[vb], lsr #31\n\t"
                "asr %[va], %[va], %[right]\n\t"
                "asr %[vb], %[vb], %[right]\n\t"
                "add %[va], %[va], %[zp]\n\t"
                "add %[vb], %[vb], %[zp]\n\t"
                "ssat %[va], #8, %[va]\n\t"
                "ssat %[vb], #8, %[vb]\n\t"
                "strb %[va], [%[out]]\n\t"
                "strb %[vb], [%[out], %[step]]\n\t"
                "add %[out], %[out], %[step], lsl #1\n\t"
                "cmp %[acc], %[end]\n\t"
                "bne 1b\n\t"
                : [acc] "+r"(acc), [out] "+r"(out), [va] "=&r"(va), [vb] "=&r"(vb), [ta] "=&r"(ta), [tb] "=&r"(tb)
                : [b2] "r"(b2), [m] "r"(m), [rnd] "r"(rnd), [right] "r"(right), [zp] "r"(zp), [step] "r"(step),
                  [end] "r"(end)
                : "cc", "memory");
        }
#else
        for (; acc < end; acc += 2, out += 2 * step) {
            out[0] = (int8_t)se_rq_fast1(acc[0] + b2, m, rnd, right, zp, 0);
            out[step] = (int8_t)se_rq_fast1(acc[1] + b2, m, rnd, right, zp, 0);
        }
#endif
        if (n & 1) out[0] = (int8_t)se_rq_fast1(acc[0] + b2, m, rnd, right, zp, 0);
    } else {
        for (int32_t i = 0; i < n; i++, out += step)
            *out = se_rq_table((acc[i] + b2) >> 1, p->rq + 2 * ch, zp, lo, hi, 0);
    }
}

void se_depthwise3x3_s8_dsp(const se_conv_params_t *params, const int8_t *in, int8_t *out_base) {
    /* a local copy: the asm blocks' memory clobbers would otherwise reload every field */
    const se_conv_params_t local = *params, *p = &local;
    const se_dw_sweep_t sw = se_dw_sweep(p), *g = &sw;
    const int32_t c = p->in_c, s = p->stride_h, wp = se_dw_rows_wp(g, s), half = wp / 2;
    uint32_t *ring = (uint32_t *)(void *)p->scratch;
    int32_t *acc = (int32_t *)(void *)(p->scratch + 3 * p->block_c * wp); /* one output line */
    for (int32_t b = 0; b < p->batch; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * c;
        int8_t *dst = out_base + b * p->out_h * p->out_w * p->out_c;
        for (int32_t c0 = 0; c0 < c; c0 += p->block_c) {
            const int32_t nb = c - c0 < p->block_c ? c - c0 : p->block_c;
            int32_t held[3] = {INT32_MIN, INT32_MIN, INT32_MIN}; /* input line in each ring slot */
            for (int32_t oy = 0; oy < g->out_lines; oy++) {
                int32_t kr[3]; /* kernel line of each ring slot */
                for (int32_t k = 0; k < 3; k++) {
                    const int32_t y = oy * s - g->pad_line + k, slot = (oy * s + k) % 3;
                    if (held[slot] != y) {
                        se_dw_widen_row(p, g, y < 0 || y >= g->lines ? 0 : img + y * g->line_step, c0, nb, wp, slot,
                                        ring);
                        held[slot] = y;
                    }
                    kr[slot] = 2 * k;
                }
                int8_t *out = dst + oy * g->oline_step + c0;
                const uint32_t *wt = (const uint32_t *)(const void *)p->weights16 + 6 * c0;
                for (int32_t i = 0; i < nb; i++, wt += 6) {
                    se_dw_rows_acc(ring + 3 * half * i, se_ld32(wt + kr[0]), se_ld32(wt + kr[0] + 1),
                                   se_ld32(wt + kr[1]), se_ld32(wt + kr[1] + 1), se_ld32(wt + kr[2]),
                                   se_ld32(wt + kr[2] + 1), g->out_len, s, acc);
                    se_dw_rows_requant(p, acc, g->out_len, c0 + i, 2 * p->bias[c0 + i], out + i, g->opx_step);
                }
            }
        }
    }
}
