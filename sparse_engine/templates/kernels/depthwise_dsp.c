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

