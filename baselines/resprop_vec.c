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
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "baselines/resprop.h"
#include "core/sparse.h"

/* Tensors with at least this many elements use all OpenMP threads. */
#define RESPROP_VEC_OMP_MIN 32768
#define RESPROP_VEC_BLOB_MAGIC 0x56525352u /* "RSRV" */

double resprop_vec_diff_rms(const float *restrict g, const float *restrict r, int k, float *restrict d) {
    double ss = 0.0;
    int j = 0;
#ifdef __AVX512F__
    /* 16 channels at a time, the squares summed in double in two 8-lane accumulators (the same sum,
     * in a fixed order, whatever the compiler) */
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    for (; j + 16 <= k; j += 16) {
        __m512 dv = _mm512_sub_ps(_mm512_loadu_ps(g + j), _mm512_loadu_ps(r + j));
        _mm512_storeu_ps(d + j, dv);
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(dv));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dv), 1)));
        acc0 = _mm512_fmadd_pd(lo, lo, acc0);
        acc1 = _mm512_fmadd_pd(hi, hi, acc1);
    }
    ss = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
#endif
    for (; j < k; j++) {
        float dj = g[j] - r[j];
        d[j] = dj;
        ss += (double)dj * (double)dj;
    }
    return sqrt(ss / (double)k);
}

bool resprop_vec_decide(const float *restrict g, const float *restrict r, int k, double tau, float *restrict d) {
    return resprop_vec_diff_rms(g, r, k, d) > tau;
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
    uint16_t iota[SPARSE_K_MAX + 1];
    for (size_t k = 0; k < k_count; k++) iota[k] = (uint16_t)k;
#pragma omp parallel for schedule(static) num_threads(n_slots) if (grad_count(sh) >= RESPROP_VEC_OMP_MIN)
    for (int t = 0; t < n_slots; t++) {
        size_t lo, hi;
        sparse_slot_rows(csr, t, n_slots, &lo, &hi);
        size_t pos = lo * k_count, j = 0; /* j: the pixel within the sample, R's row (slots start at a sample) */
        for (size_t i = lo; i < hi; i++, j = j + 1 == pq ? 0 : j + 1) {
            if (resprop_vec_decide(g + i * k_count, r + j * k_count, sh.k, tau, csr->val + pos)) {
                memcpy(csr->chan + pos, iota, k_count * sizeof *iota);
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
