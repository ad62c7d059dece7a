/* Requantization of a row of int32 accumulators into int8 (per-channel multipliers, or the
 * SMMULR table of bindings.common.requant_table) for the DSP kernels that accumulate a whole
 * row first: sparse FC and depthwise. */
#ifndef SPARSE_ENGINE_SE_DSP_REQUANT_H
#define SPARSE_ENGINE_SE_DSP_REQUANT_H

#include "se_dsp.h"

/* Requantize n int32 accumulators with per-channel multipliers into int8 (`single`: TFLite
 * FullyConnected's single rounding). */
static void se_requant_row(const int32_t *acc, int32_t n, const int32_t *mult, const int32_t *shift, int32_t zp,
                           int32_t lo, int32_t hi, int8_t *out, int32_t single) {
    if (single) {
        for (int32_t i = 0; i < n; i++) out[i] = se_clamp(se_mbqm_single(acc[i], mult[i], shift[i]) + zp, lo, hi);
        return;
    }
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
/* The single-rounding form (se_single_rdiv): SMMULR for right 0, else SMMUL, + rnd, >> right
 * (rnd is 0 and the shift a no-op for right 0, so no branch). */
#define SE_RQT_LOOP_SINGLE(CLAMP)                                  \
    "1:\n\t"                                                       \
    "ldr %[v], [%[acc]], #4\n\t"                                   \
    "ldrd %[m], %[rnd], [%[rq]], #8\n\t"                           \
    "clz %[rs], %[rnd]\n\t"                                        \
    "lsl %[v], %[v], #1\n\t"                                       \
    "rsbs %[rs], %[rs], #32\n\t"                                   \
    "ite eq\n\t"                                                   \
    "smmulreq %[v], %[v], %[m]\n\t"                                \
    "smmulne %[v], %[v], %[m]\n\t"                                 \
    "add %[v], %[v], %[rnd]\n\t"                                   \
    "asr %[v], %[v], %[rs]\n\t"                                    \
    "add %[v], %[v], %[zp]\n\t"                                    \
    CLAMP                                                          \
    "strb %[v], [%[out]], #1\n\t"                                  \
    "subs %[n], %[n], #1\n\t"                                      \
    "bne 1b\n\t"
#define SE_RQT_CLAMP "cmp %[v], %[lo]\n\tit lt\n\tmovlt %[v], %[lo]\n\tcmp %[v], %[hi]\n\tit gt\n\tmovgt %[v], %[hi]\n\t"
#define SE_RQT_OPERANDS                                                                                \
    : [acc] "+r"(acc), [rq] "+r"(rq), [out] "+r"(out), [n] "+r"(n), [v] "=&r"(v), [m] "=&r"(m),         \
      [rnd] "=&r"(rnd), [rs] "=&r"(rs)                                                                 \
    : [zp] "r"(zp), [lo] "r"(lo), [hi] "r"(hi)                                                         \
    : "cc", "memory"
static inline __attribute__((always_inline)) void se_requant_table(const int32_t *acc, int32_t n, const int32_t *rq,
                                                                   int32_t zp, int32_t lo, int32_t hi, int8_t *out,
                                                                   int32_t single) {
    int32_t v, m, rnd, rs;
    if (n <= 0) return;
    if (single) {
        if (lo == -128 && hi == 127) {
            __asm__ volatile(SE_RQT_LOOP_SINGLE("ssat %[v], #8, %[v]\n\t") SE_RQT_OPERANDS);
        } else {
            __asm__ volatile(SE_RQT_LOOP_SINGLE(SE_RQT_CLAMP) SE_RQT_OPERANDS);
        }
    } else if (lo == -128 && hi == 127) {
        __asm__ volatile(SE_RQT_LOOP("ssat %[v], #8, %[v]\n\t") SE_RQT_OPERANDS);
    } else {
        __asm__ volatile(SE_RQT_LOOP(SE_RQT_CLAMP) SE_RQT_OPERANDS);
    }
}
/* se_requant_table's double-rounding loop two outputs at a time, interleaved so that each
 * output's dependency chain (SMMULR, rounding, shift, SSAT) overlaps the other's on the dual-issue
 * M7 (se_rqt_pairs_fit: n even, every table row's right shift >= 1, bounds [-128, 127]). The
 * same arithmetic per output as SE_RQT_LOOP's path for right >= 1. */
static inline __attribute__((always_inline)) void se_requant_table_pairs(const int32_t *acc, int32_t n,
                                                                         const int32_t *rq, int32_t zp, int8_t *out) {
    int32_t va, vb, ma, mb, ra, rb;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[va], %[vb], [%[acc]], #8\n\t"
        "ldrd %[ma], %[ra], [%[rq]], #8\n\t"
        "ldrd %[mb], %[rb], [%[rq]], #8\n\t"
        "lsl %[va], %[va], #1\n\t"
        "lsl %[vb], %[vb], #1\n\t"
        "smmulr %[va], %[va], %[ma]\n\t"
        "smmulr %[vb], %[vb], %[mb]\n\t"
        "clz %[ma], %[ra]\n\t"
        "clz %[mb], %[rb]\n\t"
        "add %[ra], %[ra], %[va]\n\t"
        "add %[rb], %[rb], %[vb]\n\t"
        "sub %[ra], %[ra], %[va], lsr #31\n\t"
        "sub %[rb], %[rb], %[vb], lsr #31\n\t"
        "rsb %[ma], %[ma], #32\n\t"
        "rsb %[mb], %[mb], #32\n\t"
        "asr %[va], %[ra], %[ma]\n\t"
        "asr %[vb], %[rb], %[mb]\n\t"
        "add %[va], %[va], %[zp]\n\t"
        "add %[vb], %[vb], %[zp]\n\t"
        "ssat %[va], #8, %[va]\n\t"
        "ssat %[vb], #8, %[vb]\n\t"
        "strb %[va], [%[out]], #1\n\t"
        "strb %[vb], [%[out]], #1\n\t"
        "subs %[n], %[n], #2\n\t"
        "bgt 1b\n\t"
        : [acc] "+r"(acc), [rq] "+r"(rq), [out] "+r"(out), [n] "+r"(n), [va] "=&r"(va), [vb] "=&r"(vb),
          [ma] "=&r"(ma), [mb] "=&r"(mb), [ra] "=&r"(ra), [rb] "=&r"(rb)
        : [zp] "r"(zp)
        : "cc", "memory");
}
#else
static void se_requant_table(const int32_t *acc, int32_t n, const int32_t *rq, int32_t zp, int32_t lo, int32_t hi,
                             int8_t *out, int32_t single) {
    for (int32_t i = 0; i < n; i++) out[i] = se_rq_table(acc[i], rq + 2 * i, zp, lo, hi, single);
}
static void se_requant_table_pairs(const int32_t *acc, int32_t n, const int32_t *rq, int32_t zp, int8_t *out) {
    se_requant_table(acc, n, rq, zp, -128, 127, out, 0);
}
#endif

/* Whether se_requant_table_pairs may requantize rows of n accumulators with table rq. */
static inline int32_t se_rqt_pairs_fit(const int32_t *rq, int32_t n, int32_t lo, int32_t hi) {
    return n >= 2 && !(n & 1) && se_rq_fast(rq, n, lo, hi);
}

static __attribute__((noinline)) void se_requant_table_call(const int32_t *acc, int32_t n, const int32_t *rq,
                                                            int32_t zp, int32_t lo, int32_t hi, int8_t *out,
                                                            int32_t single) {
    se_requant_table(acc, n, rq, zp, lo, hi, out, single);
}


#endif
