/* Cortex-M int8 kernels on the DSP extension (SXTB16 / SXTAB16 widen, SMLAD multiply-accumulate).
 *
 * Dot products: one operand is widened once into an int16 scratch row ("wide row"): the zero
 * point is subtracted and every 4 values x0..x3 are stored as the halfword pairs (x0,x2),(x1,x3),
 * the order in which SXTB16 and SXTB16 ROR #8 unpack a word; a k % 4 tail follows in plain order.
 * The other operand stays int8 and is unpacked four bytes at a time in registers. A 2 x 2
 * register tile (two wide rows x two int8 rows) uses every unpacked word twice.
 * Requantization is TFLite's through se_mbqm_floor; the multipliers are never negative, which the
 * SMMULR forms (se_srdhm_rdiv) rely on.
 * Every kernel computes the same bits as its portable twin in kernels.c and as the simulator. */
#include "kernels.h"
#include "se_math.h"

/* Requantization of one output column: pointers advance by `step` (1 per channel, 0 per tensor).
 * With `rq` (the generator proved |acc| * 2 < 2^31 and no channel shifts left) the shift comes as
 * its rounding term, codegen.requant_table: per channel {mult, 2^(right - 1) or 0}; CLZ gives
 * right back. */
typedef struct {
    const int32_t *bias, *mult, *shift, *rq;
    int32_t step, out_zp, act_min, act_max;
} se_req_t;

/* se_mbqm_floor + zero point + clamp to the activation range. */
static inline __attribute__((always_inline)) int8_t se_rq(int32_t acc, int32_t mult, int32_t shift, int32_t zp,
                                                          int32_t lo, int32_t hi) {
    return se_clamp(se_mbqm_floor(acc, mult, shift) + zp, lo, hi);
}

/* RDBPOT(SRDHM(x, mult), right) for mult >= 0 and |2x| < 2^31, given the doubled x2 = 2x and
 * rnd = 2^(right - 1) (0 for right 0): SRDHM is SMMULR of the doubled value, and the rounding
 * divide (v + 2^(right-1) - [v < 0]) >> right cannot overflow. */
static inline __attribute__((always_inline)) int32_t se_srdhm_rdiv(int32_t x2, int32_t mult, int32_t rnd,
                                                                   int32_t right) {
    const int32_t v = se_smmulr(x2, mult);
    return right ? (v + rnd - (int32_t)((uint32_t)v >> 31)) >> right : v;
}

/* The same bits as se_rq from a requant_table row t. */
static inline __attribute__((always_inline)) int8_t se_rq_table(int32_t acc, const int32_t *t, int32_t zp,
                                                                int32_t lo, int32_t hi) {
    int32_t v = se_srdhm_rdiv((int32_t)((uint32_t)acc << 1), t[0], t[1], 32 - se_clz((uint32_t)t[1]));
    v += zp;
    v = v < lo ? lo : v; /* this order, not se_clamp's: fewer instructions */
    return (int8_t)(v > hi ? hi : v);
}

static inline int8_t se_req(const se_req_t *r, int32_t acc, int32_t col) {
    int32_t i = col * r->step;
    return r->rq ? se_rq_table(acc, r->rq + 2 * i, r->out_zp, r->act_min, r->act_max)
                 : se_rq(acc, r->mult[i], r->shift[i], r->out_zp, r->act_min, r->act_max);
}

static inline int32_t se_bias(const se_req_t *r, int32_t col) { return r->bias ? r->bias[col * r->step] : 0; }

/* Wide rows. Row r of a pair (r = 0, 1) keeps chunk c (values 4c..4c+3) in the words
 * [4c + 2r] = (x0,x2) and [4c + 2r + 1] = (x1,x3), so one tile step reads four consecutive words;
 * a single row uses pitch 2. The k % 4 tail of row r follows all chunks, at int16 index
 * tail_base + 3r. Every wide row has the zero point subtracted; se_widen returns its sum,
 * which folds the other operand's zero point out of the inner loop:
 * sum x*(w + off) = sum x*w + off * sum x. */
#define SE_PAIR_LEN(k) (8 * ((k) >> 2) + 8) /* int16 elements of a pair of wide rows */

static int32_t se_widen(const int8_t *x, int32_t stride, int32_t k, int32_t off, uint32_t *dst, int32_t pitch,
                        int16_t *tail) {
    const int32_t chunks = k >> 2;
    const uint32_t off2 = se_pair(off, off);
    int32_t sum = 0;
    if (stride == 1) {
        for (int32_t c = 0; c < chunks; c++) {
            uint32_t w = se_ld32(x);
            uint32_t e = se_sxtab16(off2, w), o = se_sxtab16_ror8(off2, w);
            dst[0] = e;
            dst[1] = o;
            sum = se_smlad(e, 0x00010001u, sum);
            sum = se_smlad(o, 0x00010001u, sum);
            x += 4;
            dst += pitch;
        }
    } else {
        for (int32_t c = 0; c < chunks; c++) {
            int32_t x0 = x[0] + off, x1 = x[stride] + off, x2 = x[2 * stride] + off, x3 = x[3 * stride] + off;
            dst[0] = se_pair(x0, x2);
            dst[1] = se_pair(x1, x3);
            sum += x0 + x1 + x2 + x3;
            x += 4 * stride;
            dst += pitch;
        }
    }
    for (int32_t t = 0; t < (k & 3); t++) {
        tail[t] = (int16_t)(x[t * stride] + off);
        sum += tail[t];
    }
    return sum;
}

/* Inner loops: chunks of 4 values of k, int8 rows s* unpacked with SXTB16 (no offset).
 * 2x2: two interleaved wide rows (pitch 4) x two int8 rows, acc = {c00, c01, c10, c11}.
 * 1x4: one wide row (pitch 2) x four int8 rows. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One chunk of the 2x2 loop: 4 widened words, two int8 words, 8 SMLAD. */
#define SE_MAC_2X2_STEP \
        "ldrd %[a], %[b], [%[x]], #8\n\t" \
        "ldrd %[c], %[d], [%[x]], #8\n\t" \
        "ldr %[w], [%[s0]], #4\n\t" \
        "sxtb16 %[e], %[w]\n\t" \
        "sxtb16 %[w], %[w], ror #8\n\t" \
        "smlad %[c00], %[a], %[e], %[c00]\n\t" \
        "smlad %[c10], %[c], %[e], %[c10]\n\t" \
        "smlad %[c00], %[b], %[w], %[c00]\n\t" \
        "smlad %[c10], %[d], %[w], %[c10]\n\t" \
        "ldr %[w], [%[s1]], #4\n\t" \
        "sxtb16 %[e], %[w]\n\t" \
        "sxtb16 %[w], %[w], ror #8\n\t" \
        "smlad %[c01], %[a], %[e], %[c01]\n\t" \
        "smlad %[c11], %[c], %[e], %[c11]\n\t" \
        "smlad %[c01], %[b], %[w], %[c01]\n\t" \
        "smlad %[c11], %[d], %[w], %[c11]\n\t"

/* not inlined: each loop needs 14 registers, all that Thumb-2 has */
__attribute__((noinline)) static void se_mac_2x2(int32_t acc[4], const uint32_t *x, const int8_t *s0,
                                                 const int8_t *s1, int32_t chunks) {
    int32_t c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3];
    uint32_t a, b, c, d, w, e;
    /* unrolled twice; an odd count enters at the second copy (chunks > 0) */
    __asm__ volatile(
        "tst %[n], #1\n\t"
        "beq 1f\n\t"
        "add %[n], %[n], #1\n\t"
        "b 2f\n\t"
        "1:\n\t"
        SE_MAC_2X2_STEP
        "2:\n\t"
        SE_MAC_2X2_STEP
        "subs %[n], %[n], #2\n\t"
        "bne 1b\n\t"
        : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [x] "+r"(x), [s0] "+r"(s0),
          [s1] "+r"(s1), [n] "+r"(chunks), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [w] "=&r"(w),
          [e] "=&r"(e)
        :
        : "cc", "memory");
    acc[0] = c00;
    acc[1] = c01;
    acc[2] = c10;
    acc[3] = c11;
}

__attribute__((noinline)) static void se_mac_1x4(int32_t acc[4], const uint32_t *x, const int8_t *s0,
                                                 const int8_t *s1, const int8_t *s2, const int8_t *s3,
                                                 int32_t chunks) {
    int32_t c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3];
    uint32_t a, b, w, e;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[a], %[b], [%[x]], #8\n\t"
        "ldr %[w], [%[s0]], #4\n\t"
        "sxtb16 %[e], %[w]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[c0], %[a], %[e], %[c0]\n\t"
        "smlad %[c0], %[b], %[w], %[c0]\n\t"
        "ldr %[w], [%[s1]], #4\n\t"
        "sxtb16 %[e], %[w]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[c1], %[a], %[e], %[c1]\n\t"
        "smlad %[c1], %[b], %[w], %[c1]\n\t"
        "ldr %[w], [%[s2]], #4\n\t"
        "sxtb16 %[e], %[w]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[c2], %[a], %[e], %[c2]\n\t"
        "smlad %[c2], %[b], %[w], %[c2]\n\t"
        "ldr %[w], [%[s3]], #4\n\t"
        "sxtb16 %[e], %[w]\n\t"
        "sxtb16 %[w], %[w], ror #8\n\t"
        "smlad %[c3], %[a], %[e], %[c3]\n\t"
        "smlad %[c3], %[b], %[w], %[c3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [c0] "+r"(c0), [c1] "+r"(c1), [c2] "+r"(c2), [c3] "+r"(c3), [x] "+r"(x), [s0] "+r"(s0), [s1] "+r"(s1),
          [s2] "+r"(s2), [s3] "+r"(s3), [n] "+r"(chunks), [a] "=&r"(a), [b] "=&r"(b), [w] "=&r"(w), [e] "=&r"(e)
        :
        : "cc", "memory");
    acc[0] = c0;
    acc[1] = c1;
    acc[2] = c2;
    acc[3] = c3;
}
#else
static inline void se_mac_2x2(int32_t acc[4], const uint32_t *x, const int8_t *s0, const int8_t *s1,
                              int32_t chunks) {
    for (int32_t c = 0; c < chunks; c++, x += 4, s0 += 4, s1 += 4) {
        uint32_t w0 = se_ld32(s0), w1 = se_ld32(s1);
        acc[0] = se_smlad(x[1], se_sxtb16_ror8(w0), se_smlad(x[0], se_sxtb16(w0), acc[0]));
        acc[1] = se_smlad(x[1], se_sxtb16_ror8(w1), se_smlad(x[0], se_sxtb16(w1), acc[1]));
        acc[2] = se_smlad(x[3], se_sxtb16_ror8(w0), se_smlad(x[2], se_sxtb16(w0), acc[2]));
        acc[3] = se_smlad(x[3], se_sxtb16_ror8(w1), se_smlad(x[2], se_sxtb16(w1), acc[3]));
    }
}

static inline void se_mac_1x4(int32_t acc[4], const uint32_t *x, const int8_t *s0, const int8_t *s1,
                              const int8_t *s2, const int8_t *s3, int32_t chunks) {
    const int8_t *s[4] = {s0, s1, s2, s3};
    for (int32_t c = 0; c < chunks; c++, x += 2)
        for (int32_t j = 0; j < 4; j++) {
            uint32_t w = se_ld32(s[j] + 4 * c);
            acc[j] = se_smlad(x[1], se_sxtb16_ror8(w), se_smlad(x[0], se_sxtb16(w), acc[j]));
        }
}
#endif

/* One wide row (words at x, `pitch` apart) against one int8 row. */
static inline int32_t se_mac_1x1(int32_t acc, const uint32_t *x, int32_t pitch, const int8_t *s, int32_t chunks) {
    for (int32_t c = 0; c < chunks; c++, x += pitch, s += 4) {
        uint32_t w = se_ld32(s);
        acc = se_smlad(x[1], se_sxtb16_ror8(w), se_smlad(x[0], se_sxtb16(w), acc));
    }
    return acc;
}

/* Products of wide rows (one, or a pair when o1 != NULL) with the int8 rows s + m*s_stride,
 * m in [0, count), each holding k values whose zero point is -off:
 * o_r[m*o_step] = requantize(bias[m] + x_r . (s_m + off)). sum_r is the sum of wide row r. */
static void se_dot(const uint32_t *wide, const int16_t *tails, const int32_t sum[2], const int8_t *s,
                   int32_t s_stride, int32_t count, int32_t k, int32_t off, const se_req_t *r, int8_t *o0,
                   int8_t *o1, int32_t o_step) {
    const int32_t chunks = k >> 2, tail = k & 3, tail_at = k & ~3;
    const int32_t rows = o1 ? 2 : 1, pitch = 2 * rows;
    const se_req_t rl = *r;  /* a local copy: output stores cannot alias it */
    r = &rl;
    int8_t *const outs[2] = {o0, o1};
    int32_t m = 0;
    if (rows == 2) {
        for (; m + 1 < count; m += 2) {
            const int8_t *s0 = s + m * s_stride, *s1 = s0 + s_stride;
            int32_t b0 = se_bias(r, m), b1 = se_bias(r, m + 1);
            int32_t acc[4] = {b0 + off * sum[0], b1 + off * sum[0], b0 + off * sum[1], b1 + off * sum[1]};
            if (chunks) se_mac_2x2(acc, wide, s0, s1, chunks);
            for (int32_t t = 0; t < tail; t++) {
                int32_t w0 = s0[tail_at + t], w1 = s1[tail_at + t];
                acc[0] += tails[t] * w0;
                acc[1] += tails[t] * w1;
                acc[2] += tails[3 + t] * w0;
                acc[3] += tails[3 + t] * w1;
            }
            o0[m * o_step] = se_req(r, acc[0], m);
            o0[(m + 1) * o_step] = se_req(r, acc[1], m + 1);
            o1[m * o_step] = se_req(r, acc[2], m);
            o1[(m + 1) * o_step] = se_req(r, acc[3], m + 1);
        }
    } else {
        for (; m + 3 < count; m += 4) {
            const int8_t *s0 = s + m * s_stride;
            int32_t acc[4];
            for (int32_t j = 0; j < 4; j++) acc[j] = se_bias(r, m + j) + off * sum[0];
            if (chunks) se_mac_1x4(acc, wide, s0, s0 + s_stride, s0 + 2 * s_stride, s0 + 3 * s_stride, chunks);
            for (int32_t j = 0; j < 4; j++) {
                for (int32_t t = 0; t < tail; t++) acc[j] += tails[t] * s0[j * s_stride + tail_at + t];
                o0[(m + j) * o_step] = se_req(r, acc[j], m + j);
            }
        }
    }
    for (; m < count; m++) {
        const int8_t *sm = s + m * s_stride;
        for (int32_t q = 0; q < rows; q++) {
            int32_t acc = se_mac_1x1(se_bias(r, m) + off * sum[q], wide + 2 * q, pitch, sm, chunks);
            for (int32_t t = 0; t < tail; t++) acc += tails[3 * q + t] * sm[tail_at + t];
            outs[q][m * o_step] = se_req(r, acc, m);
        }
    }
}

/* A pair (or one, when x1 == NULL) of wide rows in `scratch`, ready for se_dot. */
typedef struct {
    uint32_t *wide;
    int16_t *tails;
    int32_t sum[2];
} se_wide_t;

static se_wide_t se_wide_rows(int16_t *scratch, const int8_t *x0, const int8_t *x1, int32_t stride, int32_t k,
                              int32_t off) {
    se_wide_t w;
    w.wide = (uint32_t *)(void *)scratch;
    w.tails = scratch + 8 * (k >> 2);
    int32_t pitch = x1 ? 4 : 2;
    w.sum[0] = se_widen(x0, stride, k, off, w.wide, pitch, w.tails);
    w.sum[1] = x1 ? se_widen(x1, stride, k, off, w.wide + 2, pitch, w.tails + 3) : 0;
    return w;
}

void se_fc_s8_dsp(const se_fc_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t k = p->in_k, n = p->out_n;
    const se_req_t r = {p->bias, p->mult, p->shift, p->rq, 1, p->out_zp, p->act_min, p->act_max};
    int32_t row = 0;
    for (; row < p->rows; row += 2) {
        const int8_t *x1 = row + 1 < p->rows ? in + (row + 1) * k : 0;
        se_wide_t w = se_wide_rows(p->scratch, in + row * k, x1, 1, k, -p->in_zp);
        se_dot(w.wide, w.tails, w.sum, p->weights, k, n, k, 0, &r, out + row * n, x1 ? out + (row + 1) * n : 0, 1);
    }
}

/* Wide row r of the receptive field of output pixel (oy, ox), in the OHWI weight order (ky, kx, c);
 * padding contributes zero. Channel counts that are not a multiple of 4 go through the int8
 * staging row, so that 4-value chunks run across taps as they do in the weights. */
static int32_t se_patch(const se_conv_params_t *p, const int8_t *img, int32_t oy, int32_t ox, uint32_t *dst,
                        int32_t pitch, int16_t *tail, int8_t *stage) {
    const int32_t c = p->in_c, off = -p->in_zp;
    const int direct = (c & 3) == 0;
    int32_t sum = 0;
    int8_t *st = stage;
    for (int32_t ky = 0; ky < p->k_h; ky++) {
        int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
        for (int32_t kx = 0; kx < p->k_w; kx++) {
            int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
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
    return direct ? sum : se_widen(stage, 1, p->k_h * p->k_w * c, off, dst, pitch, tail);
}

void se_conv2d_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t k = p->k_h * p->k_w * p->in_c, n = p->out_c, pixels = p->out_h * p->out_w;
    const se_req_t r = {p->bias, p->mult, p->shift, p->rq, 1, p->out_zp, p->act_min, p->act_max};
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

/* Requantize n int32 accumulators with per-channel multipliers into int8. */
static void se_requant_row(const int32_t *acc, int32_t n, const int32_t *mult, const int32_t *shift, int32_t zp,
                           int32_t lo, int32_t hi, int8_t *out) {
    for (int32_t i = 0; i < n; i++) out[i] = se_rq(acc[i], mult[i], shift[i], zp, lo, hi);
}

/* se_rq_table over a row of accumulators, one table row per channel, fetched by one LDRD. The
 * bounds [-128, 127] take one SSAT. Inlined into the depthwise kernel; the sparse FC kernels call it
 * through se_requant_table_call. Measured: the depthwise kernel pays for a call (3x3 16x16x64:
 * 708,887 instructions against 702,724) and the sparse FC walk for an inlined copy (GCC allocates
 * its registers worse: +16,160 on the 8x8x256 pointwise with blocks of 4). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define SE_RQT_LOOP(CLAMP)                                         \
    "1:\n\t"                                                       \
    "ldr %[v], [%[acc]], #4\n\t"                                   \
    "ldrd %[m], %[rnd], [%[rq]], #8\n\t"                           \
    "clz %[rs], %[rnd]\n\t"                                        \
    "lsl %[v], %[v], #1\n\t"                                       \
    "smmulr %[v], %[v], %[m]\n\t"                                  \
    "rsbs %[rs], %[rs], #32\n\t"                                   \
    "beq 2f\n\t"                                                   \
    "add %[rnd], %[rnd], %[v]\n\t"                                 \
    "sub %[rnd], %[rnd], %[v], lsr #31\n\t"                        \
    "asr %[v], %[rnd], %[rs]\n\t"                                  \
    "2:\n\t"                                                       \
    "add %[v], %[v], %[zp]\n\t"                                    \
    CLAMP                                                          \
    "strb %[v], [%[out]], #1\n\t"                                  \
    "subs %[n], %[n], #1\n\t"                                      \
    "bne 1b\n\t"
#define SE_RQT_OPERANDS                                                                                \
    : [acc] "+r"(acc), [rq] "+r"(rq), [out] "+r"(out), [n] "+r"(n), [v] "=&r"(v), [m] "=&r"(m),         \
      [rnd] "=&r"(rnd), [rs] "=&r"(rs)                                                                 \
    : [zp] "r"(zp), [lo] "r"(lo), [hi] "r"(hi)                                                         \
    : "cc", "memory"
static inline __attribute__((always_inline)) void se_requant_table(const int32_t *acc, int32_t n, const int32_t *rq,
                                                                   int32_t zp, int32_t lo, int32_t hi, int8_t *out) {
    int32_t v, m, rnd, rs;
    if (n <= 0) return;
    if (lo == -128 && hi == 127) {
        __asm__ volatile(SE_RQT_LOOP("ssat %[v], #8, %[v]\n\t") SE_RQT_OPERANDS);
    } else {
        __asm__ volatile(SE_RQT_LOOP("cmp %[v], %[lo]\n\tit lt\n\tmovlt %[v], %[lo]\n\t"
                                     "cmp %[v], %[hi]\n\tit gt\n\tmovgt %[v], %[hi]\n\t") SE_RQT_OPERANDS);
    }
}
#else
static void se_requant_table(const int32_t *acc, int32_t n, const int32_t *rq, int32_t zp, int32_t lo, int32_t hi,
                             int8_t *out) {
    for (int32_t i = 0; i < n; i++) out[i] = se_rq_table(acc[i], rq + 2 * i, zp, lo, hi);
}
#endif

static __attribute__((noinline)) void se_requant_table_call(const int32_t *acc, int32_t n, const int32_t *rq,
                                                            int32_t zp, int32_t lo, int32_t hi, int8_t *out) {
    se_requant_table(acc, n, rq, zp, lo, hi, out);
}

/* Sparse FC on the widened rows of se_fc_s8_dsp, for blocks of 4m values (blocks of 1 and 2:
 * se_fc_sparse_narrow_s8_dsp below): a block is m chunks, so it starts at a chunk boundary of
 * the widened rows and its int8 values unpack with SXTB16 as in the dense kernels. Rows go in
 * pairs, each unpacked weight word serving both rows. The walk over one output channel's
 * blocks (skip, then m chunks) is asm with the chunks unrolled, for m = 1, 2, 4. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define SE_SP_CHUNK1                                 \
    "ldr %[w], [%[v]], #4\n\t"                       \
    "ldrd %[x0], %[x1], [%[wp]], #8\n\t"             \
    "sxtb16 %[e], %[w]\n\t"                          \
    "sxtb16 %[w], %[w], ror #8\n\t"                  \
    "smlad %[a0], %[x0], %[e], %[a0]\n\t"            \
    "smlad %[a0], %[x1], %[w], %[a0]\n\t"
#define SE_SP_CHUNK2                                 \
    SE_SP_CHUNK1                                     \
    "ldrd %[x0], %[x1], [%[wp]], #8\n\t"             \
    "smlad %[a1], %[x0], %[e], %[a1]\n\t"            \
    "smlad %[a1], %[x1], %[w], %[a1]\n\t"
/* count > 0 blocks; SB = bytes of widened words per block */
#define SE_SP_WALK(CHUNKS)                                                                        \
    __asm__("1:\n\t"                                                                              \
            "ldrb %[e], [%[sk]], #1\n\t"                                                          \
            "mla %[wp], %[e], %[sb], %[wp]\n\t"                                                   \
            CHUNKS                                                                                \
            "subs %[n], %[n], #1\n\t"                                                             \
            "bne 1b\n\t"                                                                          \
            : [a0] "+r"(a0), [a1] "+r"(a1), [wp] "+r"(wp), [sk] "+r"(*sk), [v] "+r"(*v), [n] "+r"(count), \
              [w] "=&r"(w_), [e] "=&r"(e_), [x0] "=&r"(x0_), [x1] "=&r"(x1_)                       \
            : [sb] "r"(sb)                                                                        \
            : "cc", "memory")
#define SE_X2(S) S S
#define SE_X4(S) S S S S
static inline __attribute__((always_inline)) void se_sp_blocks(int32_t *acc, const uint32_t *wp, const uint8_t **sk,
                                                               const int8_t **v, int32_t count, int32_t cpb,
                                                               int32_t rows) {
    int32_t a0 = acc[0], a1 = acc[1];
    uint32_t w_, e_, x0_, x1_;
    const int32_t sb = 8 * rows * cpb;
    if (rows == 1) {
        if (cpb == 1) SE_SP_WALK(SE_SP_CHUNK1);
        else if (cpb == 2) SE_SP_WALK(SE_X2(SE_SP_CHUNK1));
        else SE_SP_WALK(SE_X4(SE_SP_CHUNK1));
    } else {
        if (cpb == 1) SE_SP_WALK(SE_SP_CHUNK2);
        else if (cpb == 2) SE_SP_WALK(SE_X2(SE_SP_CHUNK2));
        else SE_SP_WALK(SE_X4(SE_SP_CHUNK2));
    }
    acc[0] = a0;
    acc[1] = a1;
}
#else
static inline void se_sp_blocks(int32_t *acc, const uint32_t *wp, const uint8_t **sk, const int8_t **v,
                                int32_t count, int32_t cpb, int32_t rows) {
    const int32_t pitch = 2 * rows;
    for (; count > 0; count--) {
        wp += *(*sk)++ * pitch * cpb;
        for (int32_t c = 0; c < cpb; c++, *v += 4, wp += pitch) {
            const uint32_t wv = se_ld32(*v), e = se_sxtb16(wv), o = se_sxtb16_ror8(wv);
            acc[0] = se_smlad(wp[1], o, se_smlad(wp[0], e, acc[0]));
            if (rows == 2) acc[1] = se_smlad(wp[3], o, se_smlad(wp[2], e, acc[1]));
        }
    }
}
#endif

/* The walk over one output channel's blocks for se_fc_sparse_narrow_s8_dsp (below): `rows` (1, 2
 * or 4) channel-major int16 inputs per channel, blocks of b = 1 or 2 values. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define SE_NB_R4                                     \
    "ldrsb %[e], [%[v]], #1\n\t"                     \
    "ldrd %[x0], %[x1], [%[wp]], #8\n\t"             \
    "smlabb %[a0], %[x0], %[e], %[a0]\n\t"           \
    "smlatb %[a1], %[x0], %[e], %[a1]\n\t"           \
    "smlabb %[a2], %[x1], %[e], %[a2]\n\t"           \
    "smlatb %[a3], %[x1], %[e], %[a3]\n\t"
#define SE_NB_R2                                     \
    "ldrsb %[e], [%[v]], #1\n\t"                     \
    "ldr %[x0], [%[wp]], #4\n\t"                     \
    "smlabb %[a0], %[x0], %[e], %[a0]\n\t"           \
    "smlatb %[a1], %[x0], %[e], %[a1]\n\t"
#define SE_NB_R1                                     \
    "ldrsb %[e], [%[v]], #1\n\t"                     \
    "ldrsh %[x0], [%[wp]], #2\n\t"                   \
    "mla %[a0], %[x0], %[e], %[a0]\n\t"
/* One block: skip SHIFT-scaled (bytes of widened inputs per block = 2^SHIFT), then its VALUES. */
#define SE_NB_BLOCK(SHIFT, VALUES)                   \
    "ldrb %[e], [%[sk]], #1\n\t"                     \
    "add %[wp], %[wp], %[e], lsl #" #SHIFT "\n\t"    \
    VALUES
/* count > 0 blocks, unrolled twice: an odd count enters at the second copy */
#define SE_NB_WALK(BLOCK)                                                                         \
    __asm__("tst %[n], #1\n\t"                                                                    \
            "beq 1f\n\t"                                                                          \
            "add %[n], %[n], #1\n\t"                                                              \
            "b 2f\n\t"                                                                            \
            "1:\n\t" BLOCK "2:\n\t" BLOCK                                                         \
            "subs %[n], %[n], #2\n\t"                                                             \
            "bne 1b\n\t"                                                                          \
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [wp] "+r"(wp),          \
              [sk] "+r"(*sk), [v] "+r"(*v), [n] "+r"(count), [e] "=&r"(e_), [x0] "=&r"(x0_),      \
              [x1] "=&r"(x1_)                                                                     \
            :                                                                                     \
            : "cc", "memory")
static inline __attribute__((always_inline)) void se_nb_blocks(int32_t *acc, const uint8_t *wp, const uint8_t **sk,
                                                               const int8_t **v, int32_t count, int32_t b,
                                                               int32_t rows) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = rows == 4 ? acc[2] : 0, a3 = rows == 4 ? acc[3] : 0;
    uint32_t e_, x0_, x1_;
    if (rows == 4) {
        if (b == 1) SE_NB_WALK(SE_NB_BLOCK(3, SE_NB_R4));
        else SE_NB_WALK(SE_NB_BLOCK(4, SE_NB_R4 SE_NB_R4));
    } else if (rows == 2) {
        if (b == 1) SE_NB_WALK(SE_NB_BLOCK(2, SE_NB_R2));
        else SE_NB_WALK(SE_NB_BLOCK(3, SE_NB_R2 SE_NB_R2));
    } else {
        if (b == 1) SE_NB_WALK(SE_NB_BLOCK(1, SE_NB_R1));
        else SE_NB_WALK(SE_NB_BLOCK(2, SE_NB_R1 SE_NB_R1));
    }
    acc[0] = a0, acc[1] = a1;
    if (rows == 4) acc[2] = a2, acc[3] = a3;
}
#else
static inline void se_nb_blocks(int32_t *acc, const uint8_t *wp, const uint8_t **sk, const int8_t **v,
                                int32_t count, int32_t b, int32_t rows) {
    const int16_t *x = (const int16_t *)(const void *)wp;
    for (; count > 0; count--) {
        x += *(*sk)++ * b * rows;
        for (int32_t t = 0; t < b; t++, x += rows) {
            const int32_t w = *(*v)++;
            for (int32_t r = 0; r < rows; r++) acc[r] += x[r] * w;
        }
    }
}
#endif

/* The accumulators of every output channel for `rows` widened rows, row r of channel n at
 * acc[r * n_out + n]: the pair layout (rows 1-2, `per_block` = chunks per block) or, `narrow`, the
 * channel-major one (rows 1, 2 or 4, `per_block` = values per block). */
static inline __attribute__((always_inline)) void se_sparse_dot(const se_sparse_fc_params_t *p, const void *wide,
                                                                int32_t *acc, int32_t per_block, int32_t rows,
                                                                int narrow) {
    const int32_t n_out = p->out_n;
    const int32_t *bias = p->bias;
    const uint16_t *counts = p->counts;
    const uint8_t *skip = p->skips;
    const int8_t *v = p->values;
    for (int32_t n = 0; n < n_out; n++) {
        int32_t a[4];
        a[0] = a[1] = bias[n];
        if (rows == 4) a[2] = a[3] = a[0];
        if (counts[n] && narrow) se_nb_blocks(a, wide, &skip, &v, counts[n], per_block, rows);
        else if (counts[n]) se_sp_blocks(a, wide, &skip, &v, counts[n], per_block, rows);
        acc[n] = a[0];
        if (rows >= 2) acc[n_out + n] = a[1];
        if (rows == 4) acc[2 * n_out + n] = a[2], acc[3 * n_out + n] = a[3];
    }
}

/* Requantize `rows` rows of accumulators (acc[r * n_out + n]) into out, advancing out. A macro:
 * as a shared function (even always_inline) it cost the blocks-of-4m kernel 2-4 more instructions
 * per output channel and row pair, GCC allocating the walk's registers differently. */
#define SE_SPARSE_REQUANT(p, acc, rows, out)                                                              \
    for (int32_t q_ = 0; q_ < (rows); q_++, (out) += (p)->out_n) {                                        \
        if ((p)->rq)                                                                                      \
            se_requant_table_call((acc) + q_ * (p)->out_n, (p)->out_n, (p)->rq, (p)->out_zp, (p)->act_min, \
                                  (p)->act_max, (out));                                                   \
        else                                                                                              \
            se_requant_row((acc) + q_ * (p)->out_n, (p)->out_n, (p)->mult, (p)->shift, (p)->out_zp,       \
                           (p)->act_min, (p)->act_max, (out));                                            \
    }

/* One se_sparse_dot instance per (chunks per block, rows), keyed by block * rows: 4 = (1, 1);
 * 8 = (2, 1) or (1, 2); 16 = (4, 1) or (2, 2); 32 = (4, 2). (An if-ladder on the pair measured
 * 1-2 % more instructions: GCC inlines it differently.) */
static void se_sparse_dot_rows(const se_sparse_fc_params_t *p, const uint32_t *wide, int32_t *acc, int32_t rows) {
    switch (p->block * rows) {
    case 4: se_sparse_dot(p, wide, acc, 1, 1, 0); break;
    case 8: if (rows == 1) se_sparse_dot(p, wide, acc, 2, 1, 0); else se_sparse_dot(p, wide, acc, 1, 2, 0); break;
    case 16: if (rows == 1) se_sparse_dot(p, wide, acc, 4, 1, 0); else se_sparse_dot(p, wide, acc, 2, 2, 0); break;
    default: se_sparse_dot(p, wide, acc, 4, 2, 0); break;
    }
}

void se_fc_sparse_s8_dsp(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t k = p->in_k;
    int32_t *acc = (int32_t *)(void *)(p->scratch + SE_PAIR_LEN(k));
    for (int32_t row = 0; row < p->rows; row += 2) {
        const int8_t *x1 = row + 1 < p->rows ? in + (row + 1) * k : 0;
        const se_wide_t w = se_wide_rows(p->scratch, in + row * k, x1, 1, k, -p->in_zp);
        const int32_t rows = x1 ? 2 : 1;
        se_sparse_dot_rows(p, w.wide, acc, rows);
        SE_SPARSE_REQUANT(p, acc, rows, out);
    }
}

/* The high halfwords of a and b as one pair (PKHTB); se_pair gives the low ones (PKHBT). */
static inline uint32_t se_pk_hi(uint32_t a, uint32_t b) { return (a >> 16) | (b & 0xFFFF0000u); }

/* Rows of se_fc_sparse_narrow_s8_dsp's next tile when `left` rows remain: 4, else 2, else 1. */
static inline int32_t se_nb_tile(int32_t left) { return left >= 4 ? 4 : left >= 2 ? 2 : 1; }

/* `rows` (1, 2 or 4) input rows of k values into channel-major int16, zero point subtracted: four
 * channels of every row at a time, unpacked by SXTAB16 into (x0,x2), (x1,x3) and regrouped. */
static void se_nb_widen(const int8_t *in, int32_t k, int32_t rows, int32_t off, int16_t *dst) {
    const uint32_t off2 = se_pair(off, off);
    uint32_t *d = (uint32_t *)(void *)dst;
    uint32_t e[4], o[4];
    int32_t c = 0;
    for (; c + 4 <= k; c += 4) {
        for (int32_t r = 0; r < rows; r++) {
            const uint32_t w = se_ld32(in + r * k + c);
            e[r] = se_sxtab16(off2, w);
            o[r] = se_sxtab16_ror8(off2, w);
        }
        if (rows == 1) {
            d[0] = se_pair(e[0], o[0]), d[1] = se_pk_hi(e[0], o[0]);
        } else if (rows == 2) {
            d[0] = se_pair(e[0], e[1]), d[1] = se_pair(o[0], o[1]);
            d[2] = se_pk_hi(e[0], e[1]), d[3] = se_pk_hi(o[0], o[1]);
        } else {
            d[0] = se_pair(e[0], e[1]), d[1] = se_pair(e[2], e[3]), d[2] = se_pair(o[0], o[1]);
            d[3] = se_pair(o[2], o[3]), d[4] = se_pk_hi(e[0], e[1]), d[5] = se_pk_hi(e[2], e[3]);
            d[6] = se_pk_hi(o[0], o[1]), d[7] = se_pk_hi(o[2], o[3]);
        }
        d += 2 * rows;
    }
    for (; c < k; c++)
        for (int32_t r = 0; r < rows; r++) dst[c * rows + r] = (int16_t)(in[r * k + c] + off);
}

/* Sparse FC for blocks of 1 or 2 values (unstructured sparsity), which cannot use SXTB16 on the
 * weights: up to 4 rows are widened "channel-major" into scratch, channel c's R values (one per
 * row, zero point subtracted) as consecutive halfwords, so one LDRD (R = 4), LDR (2) or LDRSH (1)
 * fetches a kept value's inputs for every row and SMLABB / SMLATB multiply them by its int8 weight.
 * The walk over one output channel's blocks (skip, then b values) is asm unrolled twice; rows go
 * 4 at a time, the last 1-3 in a pair and a single row. */
void se_fc_sparse_narrow_s8_dsp(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t k = p->in_k, b = p->block;
    const int32_t tile = se_nb_tile(p->rows);
    int16_t *wide = p->scratch;
    int32_t *acc = (int32_t *)(void *)(p->scratch + ((tile * k + 1) & ~1));
    for (int32_t row = 0; row < p->rows;) {
        const int32_t rows = se_nb_tile(p->rows - row);
        se_nb_widen(in + row * k, k, rows, -p->in_zp, wide);
        switch (b * 4 + rows) {
        case 5: se_sparse_dot(p, wide, acc, 1, 1, 1); break;
        case 6: se_sparse_dot(p, wide, acc, 1, 2, 1); break;
        case 8: se_sparse_dot(p, wide, acc, 1, 4, 1); break;
        case 9: se_sparse_dot(p, wide, acc, 2, 1, 1); break;
        case 10: se_sparse_dot(p, wide, acc, 2, 2, 1); break;
        default: se_sparse_dot(p, wide, acc, 2, 4, 1); break;
        }
        SE_SPARSE_REQUANT(p, acc, rows, out);
        row += rows;
    }
}

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
        o[i] = se_rq_table(acc[2 * i], rq + 2 * i, zp, lo, hi);
        o[n + i] = se_rq_table(acc[2 * i + 1], rq + 2 * i, zp, lo, hi);
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
    const se_req_t r = {0, p->mult, p->shift, p->rq, 1, p->out_zp, p->act_min, p->act_max};
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
                    for (int32_t c = 0; c < n; c++) o[q * n + c] = se_req(&r, acc[2 * c + q], c);
            }
        }
    }
}

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
                if (p->rq)
                    se_requant_table(acc, c, p->rq, p->out_zp, p->act_min, p->act_max, out);
                else
                    se_requant_row(acc, c, p->mult, p->shift, p->out_zp, p->act_min, p->act_max, out);
                out += c;
            }
            se_dw_row_end(p, dst, oy);
        }
    }
}

/* Activations x activations. When B's values run contiguously along k (B stored transposed, as
 * for Q.K^T), pairs of A rows are widened and B's rows are the int8 side; otherwise A's rows must
 * be contiguous along k, pairs of B columns are widened and A's rows are the int8 side. */
void se_matmul_s8_dsp(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    const int32_t m = p->m, k = p->k, n = p->n;
    const se_req_t r = {0, &p->mult, &p->shift, p->rq, 0, p->out_zp, p->act_min, p->act_max};
    for (int32_t t = 0; t < p->batch; t++) {
        const int8_t *A = a + p->a_offsets[t], *B = b + p->b_offsets[t];
        int8_t *O = out + t * m * n;
        if (p->b_ks == 1) {
            for (int32_t i = 0; i < m; i += 2) {
                const int8_t *a1 = i + 1 < m ? A + (i + 1) * p->a_rs : 0;
                se_wide_t w = se_wide_rows(p->scratch, A + i * p->a_rs, a1, p->a_cs, k, -p->a_zp);
                se_dot(w.wide, w.tails, w.sum, B, p->b_ns, n, k, -p->b_zp, &r, O + i * n, a1 ? O + (i + 1) * n : 0, 1);
            }
        } else {
            for (int32_t j = 0; j < n; j += 2) {
                const int8_t *b1 = j + 1 < n ? B + (j + 1) * p->b_ns : 0;
                se_wide_t w = se_wide_rows(p->scratch, B + j * p->b_ns, b1, p->b_ks, k, -p->b_zp);
                se_dot(w.wide, w.tails, w.sum, A, p->a_rs, m, k, -p->a_zp, &r, O + j, b1 ? O + j + 1 : 0, n);
            }
        }
    }
}

/* Softmax, the algorithm of se_softmax_s8 with four bytes per word: SSUB8/SEL for the row
 * maximum, USUB8 for the four table indices max - x. The generator picks this kernel when the
 * exp table is at most 2^16 and n * 2^16 < 2^31 (the row sum fits 32 bits) and the output shift
 * has no left part; then y = e * recip >> 16 <= 2^30 and y < 2^30 unless recip = 2^30, so SRDHM
 * is SMMULR of 2y, and y >= 0 makes the rounding shift (v + rnd) >> right. */
void se_softmax_s8_dsp(const se_softmax_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t n = p->n, n4 = n & ~3;
    const int32_t *tab = p->exp_table;
    for (int32_t r = 0; r < p->rows; r++, in += n) {
        uint32_t m4 = 0x80808080u;
        for (int32_t i = 0; i < n4; i += 4) m4 = se_max8(se_ld32(in + i), m4);
        int32_t mx = -128;
        for (int32_t i = 0; i < 32; i += 8) mx = (int8_t)(m4 >> i) > mx ? (int8_t)(m4 >> i) : mx;
        for (int32_t i = n4; i < n; i++) mx = in[i] > mx ? in[i] : mx;
        const uint32_t mxx = (uint8_t)mx * 0x01010101u;
        uint32_t sum = 0;
        for (int32_t i = 0; i < n4; i += 4) {
            uint32_t d = se_usub8(mxx, se_ld32(in + i));
            sum += (uint32_t)(tab[d & 0xFFu] + tab[(d >> 8) & 0xFFu] + tab[(d >> 16) & 0xFFu] + tab[d >> 24]);
        }
        for (int32_t i = n4; i < n; i++) sum += (uint32_t)tab[mx - in[i]];
        const uint32_t recip = (uint32_t)((1ULL << 46) / sum);
        if (recip >= (1u << 30)) { /* y may reach 2^30: the general requantization */
            for (int32_t i = 0; i < n; i++) {
                int32_t y = (int32_t)(((uint64_t)(uint32_t)tab[mx - in[i]] * recip) >> 16);
                *out++ = se_clamp(se_mbqm(y, p->mult, p->shift) + p->out_zp, -128, 127);
            }
            continue;
        }
        const int32_t mult = p->mult, rnd = p->rnd, right = p->right, zp = p->out_zp;
#define SE_SM_OUT(IDX)                                                                       \
    do {                                                                                     \
        uint32_t y_ = (uint32_t)(((uint64_t)(uint32_t)tab[IDX] * recip) >> 16);              \
        *out++ = (int8_t)se_ssat8(((se_smmulr((int32_t)(y_ << 1), mult) + rnd) >> right) + zp); \
    } while (0)
        for (int32_t i = 0; i < n4; i += 4) {
            uint32_t d = se_usub8(mxx, se_ld32(in + i));
            SE_SM_OUT(d & 0xFFu);
            SE_SM_OUT((d >> 8) & 0xFFu);
            SE_SM_OUT((d >> 16) & 0xFFu);
            SE_SM_OUT(d >> 24);
        }
        for (int32_t i = n4; i < n; i++) SE_SM_OUT(mx - in[i]);
#undef SE_SM_OUT
    }
}

/* Add of two tensors of the output's shape (codegen.add_dsp_fits). An input's term
 * RDBPOT(SRDHM((x - zp) << left_shift, mult), right) depends on one byte: both terms go to 256-entry
 * tables in the scratch (se_srdhm_rdiv), already shifted left by the output's left shift + 1. The
 * generator proved every doubled SRDHM operand within int32. Per element, the output's rounding
 * divide is se_srdhm_rdiv's without its branch: the sign term is masked off when right is 0. */
static inline __attribute__((always_inline)) void se_add_loop(const int32_t *ta, const int32_t *tb, const int8_t *a,
                                                               const int8_t *b, int8_t *out, int32_t n,
                                                               const se_binary_params_t *p, int32_t full) {
    const int32_t right = p->out_shift > 0 ? 0 : -p->out_shift, rnd = right ? 1 << (right - 1) : 0;
    const int32_t neg = right ? -1 : 0, mult = p->out_mult, zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    for (int32_t i = 0; i < n; i++) {
        int32_t v = se_smmulr(ta[a[i]] + tb[b[i]], mult);
        v = ((v + rnd + ((v >> 31) & neg)) >> right) + zp;
        if (full) {
            out[i] = (int8_t)se_ssat8(v);
        } else {
            v = v < lo ? lo : v;
            out[i] = (int8_t)(v > hi ? hi : v);
        }
    }
}

void se_add_s8_dsp(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
    int32_t *ta = (int32_t *)(void *)p->scratch + 128, *tb = ta + 256;
    const int32_t up = (p->out_shift > 0 ? p->out_shift : 0) + 1, s = p->left_shift + 1;
    const int32_t ar = -p->a_shift, br = -p->b_shift, arnd = ar ? 1 << (ar - 1) : 0, brnd = br ? 1 << (br - 1) : 0;
    for (int32_t x = -128; x < 128; x++) {
        const int32_t va = se_srdhm_rdiv((int32_t)((uint32_t)(x - p->a_zp) << s), p->a_mult, arnd, ar);
        const int32_t vb = se_srdhm_rdiv((int32_t)((uint32_t)(x - p->b_zp) << s), p->b_mult, brnd, br);
        ta[x] = (int32_t)((uint32_t)va << up);
        tb[x] = (int32_t)((uint32_t)vb << up);
    }
    int32_t n = 1;
    for (int32_t d = 0; d < SE_MAX_DIMS; d++) n *= p->out_shape[d];
    if (p->act_min == -128 && p->act_max == 127) {
        se_add_loop(ta, tb, a, b, out, n, p, 1);
    } else {
        se_add_loop(ta, tb, a, b, out, n, p, 0);
    }
}
