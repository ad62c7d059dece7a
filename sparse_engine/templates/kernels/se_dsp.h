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
/* This header: the helpers of the DSP family files (*_dsp.c): per-column requantization,
 * widening of int8 rows into int16 halfword pairs and the 2x2 SMLAD dot tiles. Functions are
 * static: the family files form one translation unit with it (codegen.DSP_UNIT), so GCC inlines
 * them as one file. */
#ifndef SPARSE_ENGINE_SE_DSP_H
#define SPARSE_ENGINE_SE_DSP_H

#include "kernels.h"
#include "se_math.h"

/* Requantization of one output column: pointers advance by `step` (1 per channel, 0 per tensor).
 * With `rq` (the generator proved |acc| * 2 < 2^31 and no channel shifts left) the shift comes as
 * its rounding term, codegen.requant_table: per channel {mult, 2^(right - 1) or 0}; CLZ gives
 * right back. */
typedef struct {
    const int32_t *bias, *mult, *shift, *rq;
    int32_t step, out_zp, act_min, act_max;
    int32_t fast; /* se_rq_fast: table, every right shift >= 1, bounds [-128, 127] */
} se_req_t;

/* Whether the n table rows of rq all shift right by 1 or more and the bounds are int8's: the
 * requantization is then SMMULR, rounding shift, zero point, SSAT, with no branch. */
static inline int32_t se_rq_fast(const int32_t *rq, int32_t n, int32_t lo, int32_t hi) {
    if (!rq || lo != -128 || hi != 127) return 0;
    for (int32_t i = 0; i < n; i++)
        if (rq[2 * i + 1] == 0) return 0;
    return 1;
}

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

/* se_mbqm_single for mult >= 0, |2x| < 2^31 and right = -shift >= 0, given x2 = 2x and
 * rnd = 2^(right - 1): with P = x2 * mult, (P + 2^(31 + right)) >> (32 + right) is
 * ((P >> 32) + rnd) >> right for right >= 1 (the low word cannot carry into the rounded
 * result), and SMMULR for right 0. */
static inline __attribute__((always_inline)) int32_t se_single_rdiv(int32_t x2, int32_t mult, int32_t rnd,
                                                                    int32_t right) {
    return right ? (se_smmul(x2, mult) + rnd) >> right : se_smmulr(x2, mult);
}

/* The same bits as se_rq (or, `single`, se_mbqm_single) from a requant_table row t. */
static inline __attribute__((always_inline)) int8_t se_rq_table(int32_t acc, const int32_t *t, int32_t zp,
                                                                int32_t lo, int32_t hi, int32_t single) {
    const int32_t x2 = (int32_t)((uint32_t)acc << 1), right = 32 - se_clz((uint32_t)t[1]);
    int32_t v = single ? se_single_rdiv(x2, t[0], t[1], right) : se_srdhm_rdiv(x2, t[0], t[1], right);
    v += zp;
    v = v < lo ? lo : v; /* this order, not se_clamp's: fewer instructions */
    return (int8_t)(v > hi ? hi : v);
}

/* `single`: TFLite FullyConnected's single rounding (se_mbqm_single); a constant in every caller,
 * so each instance keeps one rounding. */
static inline __attribute__((always_inline)) int8_t se_req(const se_req_t *r, int32_t acc, int32_t col,
                                                           int32_t single) {
    int32_t i = col * r->step;
    if (r->rq) return se_rq_table(acc, r->rq + 2 * i, r->out_zp, r->act_min, r->act_max, single);
    if (single) return se_clamp(se_mbqm_single(acc, r->mult[i], r->shift[i]) + r->out_zp, r->act_min, r->act_max);
    return se_rq(acc, r->mult[i], r->shift[i], r->out_zp, r->act_min, r->act_max);
}

static inline int32_t se_bias(const se_req_t *r, int32_t col) { return r->bias ? r->bias[col * r->step] : 0; }

/* x2 = 2 acc requantized the se_rq_fast way with multiplier m, rounding term rnd and right shift
 * right >= 1 (se_srdhm_rdiv's or, `single`, se_single_rdiv's shifting branch). */
static inline __attribute__((always_inline)) int32_t se_rq_fast1(int32_t x2, int32_t m, int32_t rnd, int32_t right,
                                                                 int32_t zp, int32_t single) {
    if (single) return se_ssat8(((se_smmul(x2, m) + rnd) >> right) + zp);
    const int32_t v = se_smmulr(x2, m);
    return se_ssat8(((v + rnd - (int32_t)((uint32_t)v >> 31)) >> right) + zp);
}

/* Columns col and col + 1 of one or two rows of a fast layer (r->fast): a to o0[0], b to
 * o0[step], and when o1 is set c to o1[0], d to o1[step]. The two table rows are read once; the
 * chains are independent, which the dual-issue M7 overlaps. */
static inline __attribute__((always_inline)) void se_req_cols(const se_req_t *r, int32_t col, int32_t a, int32_t b,
                                                              int32_t c, int32_t d, int8_t *o0, int8_t *o1,
                                                              int32_t step, int32_t single) {
    const int32_t *t0 = r->rq + 2 * col * r->step, *t1 = t0 + 2 * r->step, zp = r->out_zp;
    const int32_t m0 = t0[0], n0 = t0[1], m1 = t1[0], n1 = t1[1];
    const int32_t s0 = 32 - se_clz((uint32_t)n0), s1 = 32 - se_clz((uint32_t)n1);
    o0[0] = (int8_t)se_rq_fast1((int32_t)((uint32_t)a << 1), m0, n0, s0, zp, single);
    o0[step] = (int8_t)se_rq_fast1((int32_t)((uint32_t)b << 1), m1, n1, s1, zp, single);
    if (o1) {
        o1[0] = (int8_t)se_rq_fast1((int32_t)((uint32_t)c << 1), m0, n0, s0, zp, single);
        o1[step] = (int8_t)se_rq_fast1((int32_t)((uint32_t)d << 1), m1, n1, s1, zp, single);
    }
}

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
/* One chunk of the 2x2 loop: 4 widened words, two int8 words, 8 SMLAD. Word loads, not LDRD
 * (which issues alone on the M7), placed to pair with the SXTB16/SMLAD work; each input word
 * register is reloaded once its first use is done, so the loop needs 13 registers.
 * llvm-mca (M7): 31 cycles for two chunks with the loop branch, 35 with the LDRD form. */
#define SE_MAC_2X2_STEP \
        "ldr %[w], [%[s0]], #4\n\t" \
        "ldr %[v], [%[s1]], #4\n\t" \
        "ldr %[a], [%[x]]\n\t" \
        "sxtb16 %[e], %[w]\n\t" \
        "ldr %[c], [%[x], #8]\n\t" \
        "sxtb16 %[w], %[w], ror #8\n\t" \
        "smlad %[c00], %[a], %[e], %[c00]\n\t" \
        "smlad %[c10], %[c], %[e], %[c10]\n\t" \
        "sxtb16 %[e], %[v]\n\t" \
        "sxtb16 %[v], %[v], ror #8\n\t" \
        "smlad %[c01], %[a], %[e], %[c01]\n\t" \
        "smlad %[c11], %[c], %[e], %[c11]\n\t" \
        "ldr %[a], [%[x], #4]\n\t" \
        "ldr %[c], [%[x], #12]\n\t" \
        "smlad %[c00], %[a], %[w], %[c00]\n\t" \
        "smlad %[c01], %[a], %[v], %[c01]\n\t" \
        "add %[x], %[x], #16\n\t" \
        "smlad %[c10], %[c], %[w], %[c10]\n\t" \
        "smlad %[c11], %[c], %[v], %[c11]\n\t"

/* The 2x2 chunk loop over accumulators c00..c11, weight rows s0, s1 and temporaries a, c, v, w, e
 * of the caller's scope; X (wide rows) and N (chunks > 0) are consumed. Unrolled twice; an odd
 * count enters at the second copy. */
#define SE_MAC_2X2_LOOP(X, N)                                                                                     \
    __asm__ volatile("tst %[n], #1\n\t"                                                                           \
                     "beq 1f\n\t"                                                                                 \
                     "add %[n], %[n], #1\n\t"                                                                     \
                     "b 2f\n\t"                                                                                   \
                     "1:\n\t" SE_MAC_2X2_STEP "2:\n\t" SE_MAC_2X2_STEP                                             \
                     "subs %[n], %[n], #2\n\t"                                                                    \
                     "bne 1b\n\t"                                                                                 \
                     : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [x] "+r"(X),           \
                       [s0] "+r"(s0), [s1] "+r"(s1), [n] "+r"(N), [a] "=&r"(a), [c] "=&r"(c), [v] "=&r"(v),        \
                       [w] "=&r"(w), [e] "=&r"(e)                                                                \
                     :                                                                                           \
                     : "cc", "memory")

/* not inlined: the loop needs 13 registers, the 1x4 loop below 14 (Thumb-2 has 14) */
__attribute__((noinline)) static void se_mac_2x2(int32_t acc[4], const uint32_t *x, const int8_t *s0,
                                                 const int8_t *s1, int32_t chunks) {
    int32_t c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3];
    uint32_t a, c, v, w, e;
    SE_MAC_2X2_LOOP(x, chunks);
    acc[0] = c00;
    acc[1] = c01;
    acc[2] = c10;
    acc[3] = c11;
}

/* One chunk of se_mac_2x2_rows at byte offsets O, O4 (text) of the two wide rows apart (x0, x1),
 * two words a chunk each; the pointers move after the loop body. */
#define SE_MAC_2X2_APART_STEP(O, O4) \
        "ldr %[w], [%[s0]], #4\n\t" \
        "ldr %[v], [%[s1]], #4\n\t" \
        "ldr %[a], [%[x0], #" O "]\n\t" \
        "sxtb16 %[e], %[w]\n\t" \
        "ldr %[c], [%[x1], #" O "]\n\t" \
        "sxtb16 %[w], %[w], ror #8\n\t" \
        "smlad %[c00], %[a], %[e], %[c00]\n\t" \
        "smlad %[c10], %[c], %[e], %[c10]\n\t" \
        "sxtb16 %[e], %[v]\n\t" \
        "sxtb16 %[v], %[v], ror #8\n\t" \
        "smlad %[c01], %[a], %[e], %[c01]\n\t" \
        "smlad %[c11], %[c], %[e], %[c11]\n\t" \
        "ldr %[a], [%[x0], #" O4 "]\n\t" \
        "ldr %[c], [%[x1], #" O4 "]\n\t" \
        "smlad %[c00], %[a], %[w], %[c00]\n\t" \
        "smlad %[c01], %[a], %[v], %[c01]\n\t" \
        "smlad %[c10], %[c], %[w], %[c10]\n\t" \
        "smlad %[c11], %[c], %[v], %[c11]\n\t"
#define SE_MAC_2X2_APART_OPERANDS                                                                         \
    : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [x0] "+r"(x0), [x1] "+r"(x1), \
      [s0] "+r"(s0), [s1] "+r"(s1), [n] "+r"(n), [a] "=&r"(a), [c] "=&r"(c), [v] "=&r"(v), [w] "=&r"(w),   \
      [e] "=&r"(e)                                                                                        \
    :                                                                                                     \
    : "cc", "memory"

/* The 2x2 tile of the dense conv over widened image rows: for each of kh kernel rows, `chunks`
 * chunks of wide row rows[ky] + at (output pixel 0) and + at + gap (pixel 1) against int8 weight
 * rows s0, s1, which run on from one kernel row to the next. One call per tile; 14 registers. */
__attribute__((noinline)) static void se_mac_2x2_rows(int32_t acc[4], const uint32_t *const *rows, int32_t at,
                                                      int32_t gap, const int8_t *s0, const int8_t *s1, int32_t chunks,
                                                      int32_t kh) {
    int32_t c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3];
    for (int32_t ky = 0; ky < kh; ky++) {
        const uint32_t *x0 = rows[ky] + at, *x1 = x0 + gap;
        int32_t n = chunks >> 1;
        uint32_t a, c, v, w, e;
        if (chunks & 1) /* the odd chunk first, then two a turn */
            __asm__ volatile(SE_MAC_2X2_APART_STEP("0", "4") "add %[x0], %[x0], #8\n\tadd %[x1], %[x1], #8\n\t"
                             SE_MAC_2X2_APART_OPERANDS);
        if (n)
            __asm__ volatile("1:\n\t" SE_MAC_2X2_APART_STEP("0", "4") SE_MAC_2X2_APART_STEP("8", "12")
                             "add %[x0], %[x0], #16\n\t"
                             "add %[x1], %[x1], #16\n\t"
                             "subs %[n], %[n], #1\n\t"
                             "bne 1b\n\t" SE_MAC_2X2_APART_OPERANDS);
    }
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

static inline void se_mac_2x2_rows(int32_t acc[4], const uint32_t *const *rows, int32_t at, int32_t gap,
                                   const int8_t *s0, const int8_t *s1, int32_t chunks, int32_t kh) {
    for (int32_t ky = 0; ky < kh; ky++) {
        const uint32_t *x0 = rows[ky] + at, *x1 = x0 + gap;
        for (int32_t c = 0; c < chunks; c++, x0 += 2, x1 += 2, s0 += 4, s1 += 4) {
            uint32_t w0 = se_ld32(s0), w1 = se_ld32(s1);
            acc[0] = se_smlad(x0[1], se_sxtb16_ror8(w0), se_smlad(x0[0], se_sxtb16(w0), acc[0]));
            acc[1] = se_smlad(x0[1], se_sxtb16_ror8(w1), se_smlad(x0[0], se_sxtb16(w1), acc[1]));
            acc[2] = se_smlad(x1[1], se_sxtb16_ror8(w0), se_smlad(x1[0], se_sxtb16(w0), acc[2]));
            acc[3] = se_smlad(x1[1], se_sxtb16_ror8(w1), se_smlad(x1[0], se_sxtb16(w1), acc[3]));
        }
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

/* The 2x2 tiles of se_dot_body for a fast layer (r->fast) with k % 4 == 0 and two wide rows:
 * columns [0, count2) two at a time, the accumulators staying in registers from the bias to the
 * requantization (no call and no accumulator array per tile, which cost about as much as the
 * MACs of a small-k tile). */
static inline __attribute__((always_inline)) void se_dot_tiles_body(const uint32_t *wide, const int32_t sum[2],
                                                                    const int8_t *s, int32_t s_stride, int32_t count2,
                                                                    int32_t chunks, int32_t off, const se_req_t *r,
                                                                    int8_t *o0, int8_t *o1, int32_t o_step,
                                                                    int32_t single) {
    const se_req_t rl = *r;
    const int32_t z0 = off * sum[0], z1 = off * sum[1];
    for (int32_t m = 0; m < count2; m += 2) {
        const int8_t *s0 = s + m * s_stride, *s1 = s0 + s_stride;
        const int32_t b0 = se_bias(&rl, m), b1 = se_bias(&rl, m + 1);
        int32_t c00 = b0 + z0, c01 = b1 + z0, c10 = b0 + z1, c11 = b1 + z1;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        const uint32_t *x = wide;
        int32_t n = chunks;
        uint32_t a, c, v, w, e;
        SE_MAC_2X2_LOOP(x, n);
#else
        int32_t acc[4] = {c00, c01, c10, c11};
        se_mac_2x2(acc, wide, s0, s1, chunks);
        c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3];
#endif
        se_req_cols(&rl, m, c00, c01, c10, c11, o0 + m * o_step, o1 + m * o_step, o_step, single);
    }
}
__attribute__((noinline)) static void se_dot_tiles(const uint32_t *wide, const int32_t sum[2], const int8_t *s,
                                                   int32_t s_stride, int32_t count2, int32_t chunks, int32_t off,
                                                   const se_req_t *r, int8_t *o0, int8_t *o1, int32_t o_step) {
    se_dot_tiles_body(wide, sum, s, s_stride, count2, chunks, off, r, o0, o1, o_step, 0);
}
__attribute__((noinline)) static void se_dot_tiles_single(const uint32_t *wide, const int32_t sum[2], const int8_t *s,
                                                          int32_t s_stride, int32_t count2, int32_t chunks,
                                                          int32_t off, const se_req_t *r, int8_t *o0, int8_t *o1,
                                                          int32_t o_step) {
    se_dot_tiles_body(wide, sum, s, s_stride, count2, chunks, off, r, o0, o1, o_step, 1);
}

/* Products of wide rows (one, or a pair when o1 != NULL) with the int8 rows s + m*s_stride,
 * m in [0, count), each holding k values whose zero point is -off:
 * o_r[m*o_step] = requantize(bias[m] + x_r . (s_m + off)). sum_r is the sum of wide row r.
 * Instantiated twice below, once per rounding, so neither pays for a branch on it. */
static inline __attribute__((always_inline)) void se_dot_body(const uint32_t *wide, const int16_t *tails,
                                                              const int32_t sum[2], const int8_t *s, int32_t s_stride,
                                                              int32_t count, int32_t k, int32_t off, const se_req_t *r,
                                                              int8_t *o0, int8_t *o1, int32_t o_step, int32_t single) {
    const int32_t chunks = k >> 2, tail = k & 3, tail_at = k & ~3;
    const int32_t rows = o1 ? 2 : 1, pitch = 2 * rows;
    const se_req_t rl = *r;  /* a local copy: output stores cannot alias it */
    r = &rl;
    int8_t *const outs[2] = {o0, o1};
    int32_t m = 0;
    if (rows == 2 && r->fast && !tail && chunks) {
        m = count & ~1;
        (single ? se_dot_tiles_single : se_dot_tiles)(wide, sum, s, s_stride, m, chunks, off, r, o0, o1, o_step);
    } else if (rows == 2) {
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
            if (r->fast) {
                se_req_cols(r, m, acc[0], acc[1], acc[2], acc[3], o0 + m * o_step, o1 + m * o_step, o_step, single);
                continue;
            }
            o0[m * o_step] = se_req(r, acc[0], m, single);
            o0[(m + 1) * o_step] = se_req(r, acc[1], m + 1, single);
            o1[m * o_step] = se_req(r, acc[2], m, single);
            o1[(m + 1) * o_step] = se_req(r, acc[3], m + 1, single);
        }
    } else {
        for (; m + 3 < count; m += 4) {
            const int8_t *s0 = s + m * s_stride;
            int32_t acc[4];
            for (int32_t j = 0; j < 4; j++) acc[j] = se_bias(r, m + j) + off * sum[0];
            if (chunks) se_mac_1x4(acc, wide, s0, s0 + s_stride, s0 + 2 * s_stride, s0 + 3 * s_stride, chunks);
            for (int32_t j = 0; j < 4; j++)
                for (int32_t t = 0; t < tail; t++) acc[j] += tails[t] * s0[j * s_stride + tail_at + t];
            if (r->fast) {
                se_req_cols(r, m, acc[0], acc[1], 0, 0, o0 + m * o_step, 0, o_step, single);
                se_req_cols(r, m + 2, acc[2], acc[3], 0, 0, o0 + (m + 2) * o_step, 0, o_step, single);
                continue;
            }
            for (int32_t j = 0; j < 4; j++) o0[(m + j) * o_step] = se_req(r, acc[j], m + j, single);
        }
    }
    for (; m < count; m++) {
        const int8_t *sm = s + m * s_stride;
        for (int32_t q = 0; q < rows; q++) {
            int32_t acc = se_mac_1x1(se_bias(r, m) + off * sum[q], wide + 2 * q, pitch, sm, chunks);
            for (int32_t t = 0; t < tail; t++) acc += tails[3 * q + t] * sm[tail_at + t];
            outs[q][m * o_step] = se_req(r, acc, m, single);
        }
    }
}

/* se_dot_body with MultiplyByQuantizedMultiplier's double rounding (conv, MatMul, 1x1 convs). */
static void se_dot(const uint32_t *wide, const int16_t *tails, const int32_t sum[2], const int8_t *s,
                   int32_t s_stride, int32_t count, int32_t k, int32_t off, const se_req_t *r, int8_t *o0,
                   int8_t *o1, int32_t o_step) {
    se_dot_body(wide, tails, sum, s, s_stride, count, k, off, r, o0, o1, o_step, 0);
}

/* se_dot_body with TFLite FullyConnected's single rounding. */
static void se_dot_single(const uint32_t *wide, const int16_t *tails, const int32_t sum[2], const int8_t *s,
                          int32_t s_stride, int32_t count, int32_t k, int32_t off, const se_req_t *r, int8_t *o0,
                          int8_t *o1, int32_t o_step) {
    se_dot_body(wide, tails, sum, s, s_stride, count, k, off, r, o0, o1, o_step, 1);
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


#endif
