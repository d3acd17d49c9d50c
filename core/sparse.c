/* sparse.c: the CSR sparse-gradient format and the conv geometry (sparse.h). */
#include "core/sparse.h"

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
#pragma omp parallel for schedule(static) if (rows * K >= 65536)
    for (size_t i = 0; i < rows; i++) {
        float *px = s + i * K;
        memset(px, 0, K * sizeof *px);
        for (int32_t j = sg->row_ptr[i]; j < sg->row_ptr[i + 1]; j++) px[sg->chan[j]] = sg->val[j];
    }
}

double sparse_density(const SparseGrad *sg) {
    double total = (double)sg_rows(sg) * sg->k;
    return total > 0 ? (double)sg->nnz / total : 0.0;
}

int sparse_view(SparseGrad *view, const SparseGrad *store, int n, int p, int q, int k) {
    int rc = 0;
    memset(view, 0, sizeof *view);
    size_t rows = (size_t)n * p * q;
    if (n <= 0 || p <= 0 || q <= 0 || k <= 0 || k > SPARSE_K_MAX)
        FAIL(ERR_SHAPE, "sparse_view: shape (%d,%d,%d,%d): expected positive dims, k <= %d", n, p, q, k, SPARSE_K_MAX);
    if (rows > sg_rows(store) || rows * (size_t)k > store->nnz_cap)
        FAIL(ERR_SHAPE, "sparse_view: shape (%d,%d,%d,%d) needs %zu rows and %zu nonzeros, the store has %zu and %zu", n,
             p, q, k, rows, rows * (size_t)k, sg_rows(store), store->nnz_cap);
    *view = *store;
    view->n = n;
    view->p = p;
    view->q = q;
    view->k = k;
    view->nnz = 0;
    memset(view->row_ptr, 0, (rows + 1) * sizeof *view->row_ptr);
fail:
    return rc;
}

bool sparse_geom_strided_1x1(ConvGeom g) { return g.r == 1 && g.s == 1 && g.pad == 0 && g.stride > 1; }

SparseClass sparse_class(ConvGeom g) {
    if (g.c < 16) return SPARSE_CLASS_STEM;
    if (g.r * g.s == 1) return SPARSE_CLASS_POINTWISE;
    return g.c <= 64 ? SPARSE_CLASS_NARROW : SPARSE_CLASS_WIDE;
}

const char *sparse_class_name(SparseClass c) {
    static const char *const names[SPARSE_N_CLASSES] = {"stem", "pointwise", "narrow", "wide"};
    return c >= 0 && c < SPARSE_N_CLASSES ? names[c] : "?";
}

/* ---- the slot-writer protocol ------------------------------------------------------------------ */

/* A slot's nonzeros move to their final place in parallel pieces when there are this many and the
 * source and destination do not overlap (the usual case: density below 1/2). */
#define SPARSE_COPY_PAR_MIN ((size_t)1 << 16)
#define SPARSE_COPY_PIECE ((size_t)1 << 14)

void sparse_slot_rows(const SparseGrad *sg, int t, int n_slots, size_t *lo, size_t *hi) {
    size_t pq = (size_t)sg->p * sg->q;
    *lo = (size_t)((long long)t * sg->n / n_slots) * pq;
    *hi = (size_t)((long long)(t + 1) * sg->n / n_slots) * pq;
}

int sparse_slot_check(const SparseGrad *sg) {
    int rc = 0;
    size_t total = sg_rows(sg) * (size_t)sg->k;
    if (sg->nnz_cap < total)
        FAIL(ERR_SHAPE, "sparse gradient (%d,%d,%d,%d): a fused writer needs nnz_cap >= %zu, it has %zu", sg->n, sg->p,
             sg->q, sg->k, total, sg->nnz_cap);
fail:
    return rc;
}

void sparse_slot_finish(SparseGrad *sg, int n_slots) {
    size_t K = (size_t)sg->k, end = 0; /* end of the compacted data so far */
    for (int t = 0; t < n_slots; t++) {
        size_t lo, hi;
        sparse_slot_rows(sg, t, n_slots, &lo, &hi);
        if (lo == hi) continue;
        size_t base = lo * K, count = (size_t)sg->row_ptr[hi] - base;
        if (base != end) {
            if (end + count <= base && count >= SPARSE_COPY_PAR_MIN) { /* disjoint: copy in parallel pieces */
#pragma omp parallel for schedule(static)
                for (size_t a = 0; a < count; a += SPARSE_COPY_PIECE) {
                    size_t len = count - a < SPARSE_COPY_PIECE ? count - a : SPARSE_COPY_PIECE;
                    memcpy(sg->chan + end + a, sg->chan + base + a, len * sizeof *sg->chan);
                    memcpy(sg->val + end + a, sg->val + base + a, len * sizeof *sg->val);
                }
            } else {
                memmove(sg->chan + end, sg->chan + base, count * sizeof *sg->chan);
                memmove(sg->val + end, sg->val + base, count * sizeof *sg->val);
            }
            int32_t shift = (int32_t)(base - end);
            for (size_t i = lo + 1; i <= hi; i++) sg->row_ptr[i] -= shift;
        }
        end += count;
    }
    sg->row_ptr[0] = 0;
    sg->nnz = end;
}

bool sparse_rows_structured(const SparseGrad *sg, size_t *n_full) {
    size_t rows = sg_rows(sg), full = 0;
    bool ok = true;
    for (size_t i = 0; i < rows && ok; i++) {
        int32_t len = sg->row_ptr[i + 1] - sg->row_ptr[i];
        if (len == 0) continue;
        if (len != sg->k) {
            ok = false;
            break;
        }
        for (int32_t j = 0; j < len; j++)
            if (sg->chan[sg->row_ptr[i] + j] != (uint16_t)j) ok = false;
        full++;
    }
    if (n_full) *n_full = ok ? full : 0;
    return ok;
}
