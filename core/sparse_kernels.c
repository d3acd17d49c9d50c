/* sparse_kernels.c: the CPU sparse conv backward kernels over the CSR format (sparse_kernels.h). */
#include "core/sparse_kernels.h"

#include <omp.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

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
