/* sparse.c: the CSR sparse-gradient format and reference sparse conv backward kernels (sparse.h). */
#include "core/sparse.h"

#include <omp.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/shape.h"

ConvGeom sparse_geom(int n, int c, int h, int w, int k, int r, int s, int stride, int pad) {
    ConvGeom g = {.n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .s = s, .stride = stride, .pad = pad};
    if (stride > 0) {
        g.p = shape_out(h, r, stride, pad);
        g.q = shape_out(w, s, stride, pad);
    }
    return g;
}

int sparse_geom_check(ConvGeom g) {
    int rc = 0;
    if (g.n <= 0 || g.c <= 0 || g.h <= 0 || g.w <= 0 || g.k <= 0 || g.r <= 0 || g.s <= 0 || g.stride <= 0 ||
        g.pad < 0)
        FAIL(ERR_SHAPE, "sparse conv geometry: n=%d c=%d h=%d w=%d k=%d r=%d s=%d stride=%d pad=%d: expected "
                        "positive dims and stride, pad >= 0", g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.stride, g.pad);
    if (g.k > SPARSE_K_MAX) FAIL(ERR_SHAPE, "sparse conv geometry: k=%d exceeds %d", g.k, SPARSE_K_MAX);
    if (g.h + 2 * g.pad < g.r || g.w + 2 * g.pad < g.s)
        FAIL(ERR_SHAPE, "sparse conv geometry: %dx%d window larger than padded %dx%d input", g.r, g.s,
             g.h + 2 * g.pad, g.w + 2 * g.pad);
    if (g.p != shape_out(g.h, g.r, g.stride, g.pad) || g.q != shape_out(g.w, g.s, g.stride, g.pad))
        FAIL(ERR_SHAPE, "sparse conv geometry: output %dx%d, expected %dx%d", g.p, g.q,
             shape_out(g.h, g.r, g.stride, g.pad), shape_out(g.w, g.s, g.stride, g.pad));
fail:
    return rc;
}

/* ---- the format ------------------------------------------------------------------------------ */

static size_t sg_rows(const SparseGrad *sg) { return (size_t)sg->n * sg->p * sg->q; }

int sparse_init(SparseGrad *sg, int n, int p, int q, int k, size_t nnz_cap) {
    int rc = 0;
    memset(sg, 0, sizeof *sg);
    if (n <= 0 || p <= 0 || q <= 0 || k <= 0)
        FAIL(ERR_SHAPE, "sparse_init: shape (%d,%d,%d,%d): expected positive dims", n, p, q, k);
    if (k > SPARSE_K_MAX) FAIL(ERR_SHAPE, "sparse_init: k=%d exceeds %d (uint16 channel index)", k, SPARSE_K_MAX);
    if (nnz_cap > (size_t)INT32_MAX)
        FAIL(ERR_SHAPE, "sparse_init: nnz_cap %zu exceeds %d (int32 row pointers)", nnz_cap, INT32_MAX);
    sg->n = n;
    sg->p = p;
    sg->q = q;
    sg->k = k;
    sg->nnz_cap = nnz_cap;
    size_t cap = nnz_cap ? nnz_cap : 1;
    sg->row_ptr = mem_calloc(sg_rows(sg) + 1, sizeof *sg->row_ptr);
    sg->chan = mem_alloc(cap * sizeof *sg->chan);
    sg->val = mem_alloc(cap * sizeof *sg->val);
    if (!sg->row_ptr || !sg->chan || !sg->val)
        FAIL(ERR_NOMEM, "sparse_init: out of memory for shape (%d,%d,%d,%d), nnz_cap %zu", n, p, q, k, nnz_cap);
    return 0;
fail:
    sparse_deinit(sg);
    return rc;
}

void sparse_deinit(SparseGrad *sg) {
    mem_free(sg->val);
    mem_free(sg->chan);
    mem_free(sg->row_ptr);
    memset(sg, 0, sizeof *sg);
}

int sparse_from_dense(SparseGrad *sg, const float *s) {
    int rc = 0;
    size_t rows = sg_rows(sg), K = (size_t)sg->k, nnz = 0;
    sg->row_ptr[0] = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *px = s + i * K;
        for (size_t k = 0; k < K; k++) {
            if (px[k] == 0.0f) continue;
            if (nnz < sg->nnz_cap) {
                sg->chan[nnz] = (uint16_t)k;
                sg->val[nnz] = px[k];
            }
            nnz++;
        }
        sg->row_ptr[i + 1] = (int32_t)(nnz <= sg->nnz_cap ? nnz : sg->nnz_cap);
    }
    if (nnz > sg->nnz_cap)
        FAIL(ERR_SHAPE, "sparse_from_dense: %zu nonzeros in the (%d,%d,%d,%d) gradient exceed nnz_cap %zu",
             nnz, sg->n, sg->p, sg->q, sg->k, sg->nnz_cap);
    sg->nnz = nnz;
    return 0;
fail:
    memset(sg->row_ptr, 0, (rows + 1) * sizeof *sg->row_ptr);
    sg->nnz = 0;
    return rc;
}

void sparse_to_dense(const SparseGrad *sg, float *s) {
    size_t rows = sg_rows(sg), K = (size_t)sg->k;
    memset(s, 0, rows * K * sizeof *s);
    for (size_t i = 0; i < rows; i++)
        for (int32_t j = sg->row_ptr[i]; j < sg->row_ptr[i + 1]; j++) s[i * K + sg->chan[j]] = sg->val[j];
}

double sparse_density(const SparseGrad *sg) {
    double total = (double)sg_rows(sg) * sg->k;
    return total > 0 ? (double)sg->nnz / total : 0.0;
}

/* ---- workspace ------------------------------------------------------------------------------- */

int sparse_workspace_init(SparseWorkspace *ws, int n_slots, size_t dw_elems) {
    int rc = 0;
    memset(ws, 0, sizeof *ws);
    if (n_slots <= 0) n_slots = omp_get_max_threads();
    if (dw_elems == 0) FAIL(ERR_SHAPE, "sparse_workspace_init: dw_elems must be positive");
    ws->n_slots = n_slots;
    ws->dw_elems = dw_elems;
    ws->dw_priv = mem_alloc((size_t)n_slots * dw_elems * sizeof *ws->dw_priv);
    if (!ws->dw_priv)
        FAIL(ERR_NOMEM, "sparse_workspace_init: out of memory for %d x %zu floats", n_slots, dw_elems);
    return 0;
fail:
    sparse_workspace_deinit(ws);
    return rc;
}

void sparse_workspace_deinit(SparseWorkspace *ws) {
    mem_free(ws->dw_priv);
    memset(ws, 0, sizeof *ws);
}

/* ---- kernels --------------------------------------------------------------------------------- */

static void check_shapes(const SparseGrad *s, ConvGeom g) {
    ASSERT(sparse_geom_check(g) == 0);
    ASSERT(s->n == g.n && s->p == g.p && s->q == g.q && s->k == g.k);
}

/* The in-bounds tap range [lo, hi) of a window starting at input coordinate o over an extent. */
static inline void tap_range(int o, int taps, int extent, int *lo, int *hi) {
    *lo = o < 0 ? -o : 0;
    *hi = o + taps > extent ? extent - o : taps;
}

void sparse_conv_bwd_data(const SparseGrad *s, const float *w_ohwi, ConvGeom g, float *dx) {
    check_shapes(s, g);
    const size_t C = (size_t)g.c, sample = (size_t)g.h * g.w * C;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < g.n; n++) {
        float *dxn = dx + (size_t)n * sample; /* (H,W,C) */
        memset(dxn, 0, sample * sizeof *dxn);
        for (int p = 0; p < g.p; p++) {
            int ih0 = p * g.stride - g.pad, r_lo, r_hi;
            tap_range(ih0, g.r, g.h, &r_lo, &r_hi);
            for (int q = 0; q < g.q; q++) {
                int iw0 = q * g.stride - g.pad, s_lo, s_hi;
                tap_range(iw0, g.s, g.w, &s_lo, &s_hi);
                size_t row = ((size_t)n * g.p + p) * g.q + q;
                for (int32_t j = s->row_ptr[row]; j < s->row_ptr[row + 1]; j++) {
                    const float v = s->val[j];
                    const float *wk = w_ohwi + (size_t)s->chan[j] * g.r * g.s * C; /* (R,S,C) */
                    for (int r = r_lo; r < r_hi; r++)
                        for (int t = s_lo; t < s_hi; t++) {
                            float *restrict d = dxn + ((size_t)(ih0 + r) * g.w + (iw0 + t)) * C;
                            const float *restrict wv = wk + ((size_t)r * g.s + t) * C;
                            for (size_t c = 0; c < C; c++) d[c] += v * wv[c];
                        }
                }
            }
        }
    }
}

void sparse_conv_bwd_weights(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                             float *dw_ohwi) {
    check_shapes(s, g);
    const size_t C = (size_t)g.c, sample = (size_t)g.h * g.w * C;
    const size_t n_dw = (size_t)g.k * g.r * g.s * C;
    ASSERT(ws->dw_priv && n_dw <= ws->dw_elems);
    const int n_slots = ws->n_slots;
    /* Slot t owns samples [t*N/n_slots, (t+1)*N/n_slots): the split depends only on n_slots. */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n_slots; t++) {
        float *dwp = ws->dw_priv + (size_t)t * ws->dw_elems; /* (K,R,S,C) */
        memset(dwp, 0, n_dw * sizeof *dwp);
        int n_lo = (int)((long long)t * g.n / n_slots), n_hi = (int)((long long)(t + 1) * g.n / n_slots);
        for (int n = n_lo; n < n_hi; n++) {
            const float *xn = x + (size_t)n * sample; /* (H,W,C) */
            for (int p = 0; p < g.p; p++) {
                int ih0 = p * g.stride - g.pad, r_lo, r_hi;
                tap_range(ih0, g.r, g.h, &r_lo, &r_hi);
                for (int q = 0; q < g.q; q++) {
                    int iw0 = q * g.stride - g.pad, s_lo, s_hi;
                    tap_range(iw0, g.s, g.w, &s_lo, &s_hi);
                    size_t row = ((size_t)n * g.p + p) * g.q + q;
                    for (int32_t j = s->row_ptr[row]; j < s->row_ptr[row + 1]; j++) {
                        const float v = s->val[j];
                        float *dwk = dwp + (size_t)s->chan[j] * g.r * g.s * C; /* (R,S,C) */
                        for (int r = r_lo; r < r_hi; r++)
                            for (int u = s_lo; u < s_hi; u++) {
                                float *restrict d = dwk + ((size_t)r * g.s + u) * C;
                                const float *restrict xv = xn + ((size_t)(ih0 + r) * g.w + (iw0 + u)) * C;
                                for (size_t c = 0; c < C; c++) d[c] += v * xv[c];
                            }
                    }
                }
            }
        }
    }
    /* Fixed-order reduction over slots: element i is summed slot 0, 1, ... whatever the threads. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n_dw; i++) {
        float acc = 0.0f;
        for (int t = 0; t < n_slots; t++) acc += ws->dw_priv[(size_t)t * ws->dw_elems + i];
        dw_ohwi[i] = acc;
    }
}
