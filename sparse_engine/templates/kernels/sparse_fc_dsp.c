#include "se_dsp.h"
#include "se_dsp_requant.h"

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
                                  (p)->act_max, (out), (p)->single_round);                               \
        else                                                                                              \
            se_requant_row((acc) + q_ * (p)->out_n, (p)->out_n, (p)->mult, (p)->shift, (p)->out_zp,       \
                           (p)->act_min, (p)->act_max, (out), (p)->single_round);                         \
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

