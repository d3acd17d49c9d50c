/* meprop.c: meProp (Sun et al., ICML 2017) as the scheme `scheme_meprop` (core/scheme.h).
 *
 * For every sample n, S[n] keeps exactly k = round((1 - RS) * P*Q*K) entries of G[n] (at least 1)
 * with the largest |G|, and zeros the rest; no reuse term. Among entries of equal magnitude at the
 * cut, those with the lower index (NHWC order within the sample) are kept, so the result is
 * deterministic. NaN entries count as larger than any number (they are kept first).
 *
 * Selection is O(P*Q*K) per sample and deterministic in the worst case: a radix select over the
 * magnitudes' IEEE bit patterns (for non-negative floats these order like unsigned integers), one
 * byte at a time from the top, each pass keeping only the candidates that share the k-th largest
 * key's prefix. It runs on a per-thread scratch buffer of P*Q*K keys allocated in layer_create (for
 * the OpenMP thread count at that time); sparsify never allocates. Samples run in parallel, each
 * independent of the others, so the result does not depend on the thread count.
 *
 * Outputs: density = nnz(S) / numel(S) (below k / (P*Q*K) only when G has zeros among the kept
 * entries); tau = the k-th largest magnitude of sample 0 (a per-sample cut is not one threshold; this
 * one is reported so the records have a comparable number); out->dense = true when k = P*Q*K
 * (RS = 0 or rounding: S is a copy of G). No options, no checkpointed state. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/scheme.h"

typedef struct {
    GradShape shape;
    size_t k;           /* entries kept per sample, in [1, P*Q*K] */
    int n_threads;      /* scratch slices */
    uint32_t *scratch;  /* (n_threads, P*Q*K) magnitude keys */
} MePropState;

/* The order key of |x|: its IEEE bits without the sign. */
static inline uint32_t meprop_key(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

/* The k-th largest (k in [1, n]) of the keys of |g[0..n)|, using keys[0..n) as scratch. *n_eq
 * receives how many entries equal to it belong to the k largest (the rest of them are strictly
 * greater). */
static uint32_t meprop_select(const float *g, uint32_t *keys, size_t n, size_t k, size_t *n_eq) {
    size_t hist[256];
    uint32_t prefix = 0;
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++) {
        keys[i] = meprop_key(g[i]);
        hist[keys[i] >> 24]++;
    }
    for (int shift = 24;; shift -= 8) {
        /* the k-th largest lies in the highest bucket b where the count from the top reaches k */
        int b = 255;
        while (hist[b] < k) k -= hist[b--];
        prefix |= (uint32_t)b << shift;
        if (shift == 0) break;
        size_t m = 0;
        if (hist[b] == n) m = n; /* every candidate shares this byte: nothing to drop */
        else
            for (size_t i = 0; i < n; i++)
                if (((keys[i] >> shift) & 255u) == (uint32_t)b) keys[m++] = keys[i];
        n = m;
        memset(hist, 0, sizeof hist);
        for (size_t i = 0; i < n; i++) hist[(keys[i] >> (shift - 8)) & 255u]++;
    }
    *n_eq = k;
    return prefix;
}

static int meprop_layer_create(void **state, const void *cfg, GradShape shape, double reuse) {
    int rc = 0;
    MePropState *m = NULL;
    *state = NULL;
    if (shape.n < 1 || shape.p < 1 || shape.q < 1 || shape.k < 1)
        FAIL(ERR_SHAPE, "scheme meprop: gradient shape (%d,%d,%d,%d): expected positive sizes", shape.n, shape.p,
             shape.q, shape.k);
    if (!(reuse >= 0.0 && reuse < 1.0))
        FAIL(ERR_CONFIG, "scheme meprop: reuse %g: expected a fraction in [0, 1)", reuse);
    m = mem_calloc(1, sizeof *m);
    if (!m) FAIL(ERR_NOMEM, "scheme meprop: out of memory for the layer state");
    size_t per = grad_sample(shape);
    double k = round((1.0 - reuse) * (double)per);
    m->shape = shape;
    m->k = k < 1.0 ? 1 : k > (double)per ? per : (size_t)k;
    m->n_threads = omp_get_max_threads();
    if (m->n_threads < 1) m->n_threads = 1;
    if (m->k < per) { /* k == per copies G: no selection, no scratch */
        m->scratch = mem_calloc((size_t)m->n_threads * per, sizeof *m->scratch);
        if (!m->scratch)
            FAIL(ERR_NOMEM, "scheme meprop: out of memory for %d x %zu selection keys", m->n_threads, per);
    }
    *state = m;
    return 0;
fail:
    if (m) mem_free(m->scratch);
    mem_free(m);
    return rc;
}

static void meprop_layer_destroy(void *state) {
    MePropState *m = state;
    if (!m) return;
    mem_free(m->scratch);
    mem_free(m);
}

static int meprop_sparsify(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out) {
    MePropState *m = state;
    ASSERT(m && out && out->g && out->s);
    const size_t per = grad_sample(m->shape), total = grad_count(m->shape);
    const float *g = out->g; /* (N,P,Q,K) */
    float *s = out->s;       /* (N,P,Q,K) */
    size_t nnz = 0;
    float tau0 = NAN;
    if (m->k == per) {
        if (s != g) memcpy(s, g, total * sizeof *s);
        for (size_t i = 0; i < total; i++) nnz += g[i] != 0.0f;
        float lo = INFINITY;
        for (size_t i = 0; i < per; i++) lo = fminf(lo, fabsf(g[i]));
        tau0 = lo;
    } else {
#pragma omp parallel for num_threads(m->n_threads) schedule(static) reduction(+ : nnz)
        for (int n = 0; n < m->shape.n; n++) {
            const float *gn = g + (size_t)n * per; /* (P,Q,K) */
            float *sn = s + (size_t)n * per;       /* (P,Q,K) */
            uint32_t *keys = m->scratch + (size_t)omp_get_thread_num() * per;
            size_t eq_left;
            uint32_t cut = meprop_select(gn, keys, per, m->k, &eq_left);
            size_t kept = 0;
            for (size_t i = 0; i < per; i++) {
                uint32_t key = meprop_key(gn[i]);
                bool keep = key > cut || (key == cut && eq_left > 0);
                if (key == cut && keep) eq_left--;
                float v = keep ? gn[i] : 0.0f;
                sn[i] = v;
                kept += v != 0.0f;
            }
            nnz += kept;
            if (n == 0) memcpy(&tau0, &cut, sizeof tau0);
        }
    }
    out->r = NULL;
    out->density = (double)nnz / (double)total;
    out->tau = tau0;
    out->dense = m->k == per;
    return 0;
}

const Scheme scheme_meprop = {
    .name = "meprop",
    .summary = "meProp (Sun et al. 2017): keep the top-k |G| per sample, k = round((1-RS) PQK), no reuse",
    .options = NULL,
    .cfg_size = 0,
    .layer_create = meprop_layer_create,
    .layer_destroy = meprop_layer_destroy,
    .sparsify = meprop_sparsify,
};
