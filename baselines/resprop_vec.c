/* resprop_vec.c: the structured ReSprop variant `resprop-vec` (see resprop.h).
 *
 * The reuse decision is taken per output position (n,p,q) for its whole channel vector: with
 * d = G[n,p,q,:] - R[p,q,:] (a K-vector), the position is ACTIVE when its RMS difference
 * sqrt(mean_k d_k^2) > tau (strict, in double), and then S[n,p,q,:] = d (all K channels, also the
 * entries that are 0); otherwise S[n,p,q,:] = 0 and the whole vector reuses R.
 * density = active positions * K / numel. Everything else (options, warm-up target, controller,
 * stored R, dense steps, double buffering, checkpoint) is resprop's shared machinery; this file holds
 * only the per-vector decision and the writing of S. On the fused path every CSR row is empty or
 * full (channels 0..K-1 in order): SchemeOut.structured, for the gathered-GEMM kernels of
 * core/sparse_vec.h. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <omp.h>

#include "baselines/resprop.h"
#include "core/sparse.h"

/* Tensors with at least this many elements use all OpenMP threads. */
#define RESPROP_VEC_OMP_MIN 32768
#define RESPROP_VEC_BLOB_MAGIC 0x56525352u /* "RSRV" */

bool resprop_vec_decide(const float *restrict g, const float *restrict r, int k, double tau, float *restrict d) {
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < k; j++) {
        float dj = g[j] - r[j];
        d[j] = dj;
        ss += (double)dj * (double)dj;
    }
    return sqrt(ss / (double)k) > tau;
}

/* The dense S (N,P,Q,K): d where active, zeros elsewhere. Returns nnz = active * K. */
static size_t resprop_vec_dense(GradShape sh, const float *restrict g, const float *restrict r, double tau,
                                float *restrict s) {
    const size_t k_count = (size_t)sh.k, pq = (size_t)sh.p * sh.q;
    size_t active = 0;
#pragma omp parallel for reduction(+ : active) schedule(static) if (grad_count(sh) >= RESPROP_VEC_OMP_MIN)
    for (int n = 0; n < sh.n; n++) {
        for (size_t j = 0; j < pq; j++) {
            size_t i = (size_t)n * pq + j;
            float *si = s + i * k_count;
            if (resprop_vec_decide(g + i * k_count, r + j * k_count, sh.k, tau, si)) active++;
            else memset(si, 0, k_count * sizeof *si);
        }
    }
    return active * k_count;
}

/* S into csr through the slot-writer protocol: full rows for active positions, empty rows otherwise. */
static size_t resprop_vec_csr(GradShape sh, const float *restrict g, const float *restrict r, double tau,
                              SparseGrad *csr) {
    const int n_slots = omp_get_max_threads();
    const size_t k_count = (size_t)sh.k, pq = (size_t)sh.p * sh.q;
#pragma omp parallel for schedule(static) num_threads(n_slots) if (grad_count(sh) >= RESPROP_VEC_OMP_MIN)
    for (int t = 0; t < n_slots; t++) {
        size_t lo, hi;
        sparse_slot_rows(csr, t, n_slots, &lo, &hi);
        size_t pos = lo * k_count, j = 0; /* j: the pixel within the sample, R's row (slots start at a sample) */
        for (size_t i = lo; i < hi; i++, j = j + 1 == pq ? 0 : j + 1) {
            if (resprop_vec_decide(g + i * k_count, r + j * k_count, sh.k, tau, csr->val + pos)) {
                uint16_t *restrict ch = csr->chan + pos;
                for (int k = 0; k < sh.k; k++) ch[k] = (uint16_t)k;
                pos += k_count;
            }
            csr->row_ptr[i + 1] = (int32_t)pos;
        }
    }
    sparse_slot_finish(csr, n_slots);
    return csr->nnz;
}

static size_t resprop_vec_mask(GradShape sh, const float *g, const float *r, double tau, float *s, SparseGrad *csr) {
    if (csr) return resprop_vec_csr(sh, g, r, tau, csr);
    return resprop_vec_dense(sh, g, r, tau, s);
}

static const ResPropVariant resprop_vec_variant = {
    .name = "resprop-vec",
    .blob_magic = RESPROP_VEC_BLOB_MAGIC,
    .mask = resprop_vec_mask,
    .structured = true,
};

static int resprop_vec_layer_create(void **state, const void *cfg, GradShape shape, double reuse) {
    return resprop_state_create(state, &resprop_vec_variant, cfg, shape, reuse);
}

const Scheme scheme_resprop_vec = {
    .name = "resprop-vec",
    .summary = "ReSprop per channel vector: propagate G - R at positions whose RMS difference > tau, reuse R elsewhere",
    .options = &resprop_options_table,
    .cfg_size = sizeof(ResPropOptions),
    .layer_create = resprop_vec_layer_create,
    .layer_destroy = resprop_state_destroy,
    .sparsify = resprop_state_sparsify,
    .state_bytes = resprop_state_bytes,
    .state_save = resprop_state_save,
    .state_load = resprop_state_load,
    .wants_fc = resprop_applies_to_fc,
};
