/* Int8 kernels of SparseEngine: portable C (se_*_s8, kernels.c) and Cortex-M DSP versions
 * (se_*_s8_dsp, kernels_dsp.c). Both compute exactly what the NumPy simulator
 * (sparse_engine/simulator.py) computes; the parameter structs are filled by the generator.
 * `scratch` is a static int16 buffer sized by the generator; only the DSP kernels use it.
 * `rq`, when not NULL: the generator proved |acc| * 2 < 2^31 and found no left shift in the layer,
 * so the DSP kernels requantize with SMMULR (the same bits, fewer instructions) from this table,
 * per channel {mult, 2^(right shift - 1) or 0} (codegen.requant_table). */
#ifndef SPARSE_ENGINE_KERNELS_H
#define SPARSE_ENGINE_KERNELS_H

#include <stdint.h>

#define SE_MAX_DIMS 6

typedef struct {
    int32_t batch, in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, depth_mult;
    int32_t in_zp, out_zp, act_min, act_max;
    const int8_t *weights;
    const int16_t *weights16; /* depthwise DSP kernel: weights widened offline (codegen.depthwise_dsp_weights) */
    const int32_t *bias, *mult, *shift;
    const int32_t *rq;
    int16_t *scratch;
    /* depthwise in place (out == in): output rows wait in `ring` (hold_rows rows) until no later
     * output row reads the input row they overwrite; 0 = out is a separate buffer */
    int32_t hold_rows;
    int8_t *ring;
} se_conv_params_t;

typedef struct {
    int32_t rows, in_k, out_n, in_zp, out_zp, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias, *mult, *shift, *rq;
    int16_t *scratch;
} se_fc_params_t;

/* Fully connected with block-sparse weights in blockwise run-length coding (sparse_engine/sparse.py):
 * per output channel counts[n] stored blocks of `block` values, each after skips[i] zero blocks. */
typedef struct {
    int32_t rows, in_k, out_n, block, in_zp, out_zp, act_min, act_max;
    const uint16_t *counts;
    const uint8_t *skips;
    const int8_t *values;
    const int32_t *bias, *mult, *shift, *rq;
    int16_t *scratch;
} se_sparse_fc_params_t;

/* kxk conv with block-sparse weights: the conv geometry, quantization and scratch in `conv`
 * (conv.weights unused), the coding of W[O, kw*kh*C] in column order (kx, ky, c) (sparse.py). */
typedef struct {
    se_conv_params_t conv;
    int32_t block;
    const uint16_t *counts;
    const uint8_t *skips;
    const int8_t *values;
    const int32_t *hdr; /* DSP kernel: per output channel {bias, count} (codegen.sparse_conv) */
} se_sparse_conv_params_t;

/* out[t][i][j] = sum_k (A[a_off[t] + i*a_rs + k*a_cs] - a_zp) * (B[b_off[t] + k*b_ks + j*b_ns] - b_zp):
 * the strides let a transposing copy in front of either operand be absorbed. */
typedef struct {
    int32_t batch, m, k, n, a_zp, b_zp, out_zp, mult, shift, act_min, act_max;
    int32_t a_rs, a_cs, b_ks, b_ns;
    const int32_t *a_offsets, *b_offsets, *rq;
    int16_t *scratch;
} se_matmul_params_t;

typedef struct {
    int32_t out_shape[SE_MAX_DIMS], a_strides[SE_MAX_DIMS], b_strides[SE_MAX_DIMS];
    int32_t a_zp, b_zp, out_zp, act_min, act_max;
    int32_t left_shift, a_mult, a_shift, b_mult, b_shift, out_mult, out_shift; /* add */
    int32_t mult, shift;                                                     /* mul */
    int16_t *scratch; /* se_add_s8_dsp: room for its two 256-entry int32 term tables */
} se_binary_params_t;

typedef struct {
    int32_t batch, in_h, in_w, channels, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t in_zp, out_zp, fixed_count, requant, mult, shift;
    const int32_t *count_mult, *count_shift;
} se_pool_params_t;

typedef struct {
    int32_t shape[SE_MAX_DIMS], in_strides[SE_MAX_DIMS];
    int32_t size, plain, requant, mult, shift, in_zp, out_zp;
} se_copy_params_t;

typedef struct {
    int32_t n_inputs, outer, out_inner, out_zp;
    const int32_t *inner, *requant, *mult, *shift, *in_zp;
} se_concat_params_t;

typedef struct {
    int32_t rows, n, mult, shift, out_zp;
    int32_t right, rnd; /* DSP kernel: -shift and its rounding term 2^(right - 1) or 0 */
    const int32_t *exp_table;
} se_softmax_params_t;

typedef struct {
    int32_t rows, n, in_zp, out_zp;
    int32_t prescale, eps_term, limit; /* LayerNorm: k0, E0 and L (simulator.py) */
    const int32_t *mult, *shift, *bias_q8;
} se_norm_params_t;

typedef struct {
    int32_t size;
    const int8_t *table;
} se_lut_params_t;

typedef void (*se_fc_fn)(const se_fc_params_t *p, const int8_t *in, int8_t *out);
typedef void (*se_matmul_fn)(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
typedef void (*se_softmax_fn)(const se_softmax_params_t *p, const int8_t *in, int8_t *out);
typedef void (*se_sparse_fc_fn)(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);

/* Multi-head self-attention (sparse_engine/attention.py), depth-first: per head, K_h and V_h, then
 * per tile of `tile` query rows the Q (or, with FWSA, T) rows, scores, softmax, context rows into
 * the merged context; then the output projection over row tiles, in place when the context lives
 * in `out` (ctx_off < 0, row stride ctx_stride = out_dim). Sub-layers run through the kernels the
 * generator picked (portable or DSP). q: the per-head projection of q_n outputs per head (P, or E
 * with FWSA: the fused matrix A_h, the keys are then the input rows); k unused with FWSA. The
 * *_off fields are byte offsets into `work` (arena). The input holds `groups` sequences of `seq`
 * rows one after the other (MobileViT patches); each runs alone, through the same workspace.
 * A projection whose sfc_* is set runs block-sparse (sparse_engine/sparsity.py) from s*, head h
 * from its coding's stored block *_first[h] on; its dense struct is then unused. */
typedef struct {
    int32_t heads, seq, groups, dim, head_dim, out_dim, q_n, tile, fused, ctx_stride;
    int32_t ctx_off, k_off, v_off, q_off, s_off, c_off, o_off;
    se_fc_params_t q, k, v, o;
    se_sparse_fc_params_t sq, sk, sv, so;
    const int32_t *q_first, *k_first, *v_first;
    se_matmul_params_t scores, ctx;
    se_softmax_params_t softmax;
    se_fc_fn fc_q, fc_k, fc_v, fc_o;
    se_sparse_fc_fn sfc_q, sfc_k, sfc_v, sfc_o;
    se_matmul_fn mm_scores, mm_ctx;
    se_softmax_fn sm;
} se_attention_params_t;

void se_attention_s8(const se_attention_params_t *p, const int8_t *in, int8_t *out, int8_t *work);
void se_conv2d_s8(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_depthwise_conv2d_s8(const se_conv_params_t *p, const int8_t *in, int8_t *out);
int8_t *se_dw_row_begin(const se_conv_params_t *p, int8_t *out, int32_t oy);
void se_dw_row_end(const se_conv_params_t *p, int8_t *out, int32_t oy);
void se_fc_s8(const se_fc_params_t *p, const int8_t *in, int8_t *out);
void se_fc_sparse_s8(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);
void se_matmul_s8(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void se_add_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void se_mul_s8(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void se_conv_sparse_s8(const se_sparse_conv_params_t *p, const int8_t *in, int8_t *out);
void se_avgpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out);
void se_maxpool_s8(const se_pool_params_t *p, const int8_t *in, int8_t *out);
void se_copy_s8(const se_copy_params_t *p, const int8_t *in, int8_t *out);
void se_concat_s8(const se_concat_params_t *p, const int8_t *const *ins, int8_t *out);
void se_softmax_s8(const se_softmax_params_t *p, const int8_t *in, int8_t *out);
void se_layernorm_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out);
void se_affine_s8(const se_norm_params_t *p, const int8_t *in, int8_t *out);
void se_lut_s8(const se_lut_params_t *p, const int8_t *in, int8_t *out);

void se_conv2d_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_depthwise_conv2d_s8_dsp(const se_conv_params_t *p, const int8_t *in, int8_t *out);
void se_fc_s8_dsp(const se_fc_params_t *p, const int8_t *in, int8_t *out);
void se_fc_sparse_s8_dsp(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);
void se_fc_sparse_narrow_s8_dsp(const se_sparse_fc_params_t *p, const int8_t *in, int8_t *out);
void se_conv_sparse_s8_dsp(const se_sparse_conv_params_t *p, const int8_t *in, int8_t *out);
void se_matmul_s8_dsp(const se_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void se_softmax_s8_dsp(const se_softmax_params_t *p, const int8_t *in, int8_t *out);
void se_add_s8_dsp(const se_binary_params_t *p, const int8_t *a, const int8_t *b, int8_t *out);

#endif
