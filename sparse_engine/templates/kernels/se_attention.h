/* Multi-head self-attention (attention.c; sparse_engine/attention.py), depth-first: per head, K_h
 * and V_h, then per tile of `tile` query rows the Q (or, with FWSA, T) rows, scores, softmax,
 * context rows into the merged context; then the output projection over row tiles, in place when
 * the context lives in `out` (ctx_off < 0, row stride ctx_stride = out_dim). Sub-layers run
 * through the kernels the generator picked (portable or DSP). q: the per-head projection of q_n
 * outputs per head (P, or E with FWSA: the fused matrix A_h, the keys are then the input rows);
 * k unused with FWSA. The *_off fields are byte offsets into `work` (arena). The input holds
 * `groups` sequences of `seq` rows one after the other (MobileViT patches); each runs alone,
 * through the same workspace. A projection whose sfc_* is set runs block-sparse from s*, head h
 * from its coding's stored block *_first[h] on; its dense struct is then unused.
 * Scratch: the largest of its sub-layers'. */
#ifndef SPARSE_ENGINE_SE_ATTENTION_H
#define SPARSE_ENGINE_SE_ATTENTION_H

#include <stdint.h>

#include "se_fc.h"
#include "se_matmul.h"
#include "se_softmax.h"
#include "se_sparse.h"

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

#endif
