#include "kernels.h"
#include "se_math.h"

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

