/* sparse_vec.c: gathered-GEMM backward convolutions for structured sparse gradients (sparse_vec.h). */
#include "core/sparse_vec.h"

#include <stdint.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <oneapi/dnnl/dnnl.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* Target width of one bwd_weights column piece (a unit of dynamic scheduling). */
#define SPARSE_VEC_PIECE_COLS 256
/* bwd_weights splits the active positions over the threads (private dW blocks) when K*R*S*C is at
 * most this many floats, else it splits dW's columns */
#define SPARSE_VEC_ROWSPLIT_MAX ((size_t)1 << 18)
/* active positions per bwd_weights GEMM at most in the row split (the im2col rows stay in L2) */
#define SPARSE_VEC_WGT_ROWS 256

int sparse_vec_workspace_init(SparseVecWorkspace *ws, size_t max_rsc, int n_threads, size_t bytes_per_thread) {
    int rc = 0;
    memset(ws, 0, sizeof *ws);
    if (max_rsc == 0) FAIL(ERR_SHAPE, "sparse_vec_workspace_init: max_rsc 0: expected the largest R*S*C (> 0)");
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (bytes_per_thread == 0) bytes_per_thread = SPARSE_VEC_DEFAULT_BYTES;
    size_t cap = bytes_per_thread / sizeof(float);
    if (cap < max_rsc) cap = max_rsc;
    cap = (cap + 15) & ~(size_t)15; /* every buffer 64-byte aligned */
    ws->cols = mem_alloc((size_t)n_threads * cap * sizeof(float));
    if (!ws->cols)
        FAIL(ERR_NOMEM, "sparse_vec_workspace_init: out of memory for %d x %zu floats", n_threads, cap);
    ws->n_threads = n_threads;
    ws->max_rsc = max_rsc;
    ws->cols_cap = cap;
    return 0;
fail:
    sparse_vec_workspace_deinit(ws);
    return rc;
}

void sparse_vec_workspace_deinit(SparseVecWorkspace *ws) {
    mem_free(ws->cols);
    memset(ws, 0, sizeof *ws);
}

/* C (m x n) = op(A) B + beta C, row-major, single-threaded; op(A) = A (m x k) or, with ta, A^T for A
 * (k x m). */
static int sv_lib = -1; /* TEMPORARY experiment switch: 0 OpenBLAS, 1 dnnl_sgemm */
static void sv_gemm(bool ta, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                    float *c, int ldc) {
    if (sv_lib < 0) {
        const char *e = getenv("SV_LIB");
        sv_lib = e && e[0] == '1';
    }
    if (sv_lib) {
        dnnl_sgemm(ta ? 'T' : 'N', 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c,
                ldc);
}

/* OpenBLAS at one thread for the call (the kernels run sgemm inside an OpenMP region). */
static int sv_blas_begin(void) {
    int n = openblas_get_num_threads();
    if (n != 1) openblas_set_num_threads(1);
    return n;
}
static void sv_blas_end(int n) {
    if (n != 1) openblas_set_num_threads(n);
}

static void sv_check(const SparseGrad *s, ConvGeom g, const SparseVecWorkspace *ws) {
    ASSERT(s->n == g.n && s->p == g.p && s->q == g.q && s->k == g.k);
    ASSERT((size_t)g.r * g.s * g.c <= ws->max_rsc && ws->cols);
    ASSERT(s->nnz % (size_t)g.k == 0);
}

/* Active positions of sample n (its row count must be a multiple of K: structured rows). */
static size_t sv_sample_active(const SparseGrad *s, size_t pq, int n) {
    size_t len = (size_t)(s->row_ptr[(size_t)(n + 1) * pq] - s->row_ptr[(size_t)n * pq]);
    ASSERT(len % (size_t)s->k == 0);
    return len / (size_t)s->k;
}

/* Advances *i to the next non-empty row and returns it; ASSERTs it is full. */
static size_t sv_next_row(const SparseGrad *s, size_t *i) {
    while (s->row_ptr[*i + 1] == s->row_ptr[*i]) (*i)++;
    ASSERT(s->row_ptr[*i + 1] - s->row_ptr[*i] == s->k);
    return (*i)++;
}

/* col2im of one position: its R*S*C block src is added into dx at the window of output position
 * `row` (taps outside the input skipped). */
static void sv_col2im(ConvGeom g, size_t row, const float *src, float *dx) {
    const size_t pq = (size_t)g.p * g.q;
    int n = (int)(row / pq), rem = (int)(row % pq), p = rem / g.q, q = rem % g.q;
    for (int r = 0; r < g.r; r++) {
        int h = p * g.stride - g.pad + r;
        if (h < 0 || h >= g.h) continue;
        for (int t = 0; t < g.s; t++) {
            int x = q * g.stride - g.pad + t;
            if (x < 0 || x >= g.w) continue;
            float *restrict d = dx + (((size_t)n * g.h + h) * g.w + x) * g.c;
            const float *restrict sr = src + ((size_t)r * g.s + t) * g.c;
#pragma omp simd
            for (int c = 0; c < g.c; c++) d[c] += sr[c];
        }
    }
}

/* Sample n's dx: dx0 or zeros. */
static void sv_init_sample(ConvGeom g, int n, const float *dx0, float *dx) {
    const size_t hwc = (size_t)g.h * g.w * g.c;
    if (dx0) memcpy(dx + (size_t)n * hwc, dx0, hwc * sizeof *dx);
    else memset(dx + (size_t)n * hwc, 0, hwc * sizeof *dx);
}

/* dx of samples [n0, n1) (one thread's item): for each sub-chunk of at most `chunk` active positions:
 * cols = vals * W, and col2im. Each sample's dx is initialised (dx0 or zeros) just before its first
 * position is added, so it is still in cache when the col2im adds into it. */
static void sv_data_item(const SparseGrad *s, const float *w, ConvGeom g, float *cols, size_t chunk, int n0,
                         int n1, const float *dx0, float *dx) {
    const size_t pq = (size_t)g.p * g.q, rsc = (size_t)g.r * g.s * g.c;
    const size_t kk = (size_t)g.k;
    size_t off = (size_t)s->row_ptr[(size_t)n0 * pq], end = (size_t)s->row_ptr[(size_t)n1 * pq];
    size_t i = (size_t)n0 * pq; /* row cursor */
    int n_ready = n0;           /* samples [n0, n_ready) initialised */
    while (off < end) {
        size_t m = (end - off) / kk;
        if (m > chunk) m = chunk;
        sv_gemm(false, (int)m, (int)rsc, g.k, s->val + off, g.k, w, (int)rsc, 0.0f, cols, (int)rsc);
        for (size_t j = 0; j < m; j++) {
            size_t row = sv_next_row(s, &i);
            int n = (int)(row / pq);
            while (n_ready <= n) sv_init_sample(g, n_ready++, dx0, dx);
            sv_col2im(g, row, cols + j * rsc, dx);
        }
        off += m * kk;
    }
    while (n_ready < n1) sv_init_sample(g, n_ready++, dx0, dx);
}

void sparse_vec_conv_bwd_data(const SparseGrad *s, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                              float *dx) {
    sparse_vec_conv_bwd_data_init(s, w_ohwi, g, ws, NULL, dx);
}

void sparse_vec_conv_bwd_data_init(const SparseGrad *s, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                                   const float *dx0, float *dx) {
    sv_check(s, g, ws);
    const size_t pq = (size_t)g.p * g.q, rsc = (size_t)g.r * g.s * g.c;
    size_t chunk = ws->cols_cap / rsc;
    if (chunk > SPARSE_VEC_MAX_ROWS) chunk = SPARSE_VEC_MAX_ROWS;
    int n_threads = ws->n_threads < omp_get_max_threads() ? ws->n_threads : omp_get_max_threads();
    int blas = sv_blas_begin(), next_item = 0;
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num();
        float *cols = ws->cols + (size_t)t * ws->cols_cap;
        /* items: runs of whole samples with at most `chunk` active positions (or one larger sample),
         * found by the same greedy scan in every thread; a thread claims the next unclaimed item
         * (an item's result does not depend on which thread computes it) */
        int item = 0, n0 = 0, mine;
#pragma omp atomic capture
        mine = next_item++;
        while (n0 < g.n) {
            size_t cnt = sv_sample_active(s, pq, n0);
            int n1 = n0 + 1;
            while (n1 < g.n) {
                size_t a = sv_sample_active(s, pq, n1);
                if (cnt + a > chunk) break;
                cnt += a;
                n1++;
            }
            if (item == mine) {
                sv_data_item(s, w_ohwi, g, cols, chunk, n0, n1, dx0, dx);
#pragma omp atomic capture
                mine = next_item++;
            }
            item++;
            n0 = n1;
        }
    }
    sv_blas_end(blas);
}

/* Columns [j0, j1) of the im2col row of output position `row` (zeros outside the input). */
static void sv_im2col_row(const float *x, ConvGeom g, size_t row, size_t j0, size_t j1, float *restrict dst) {
    const size_t pq = (size_t)g.p * g.q, cc = (size_t)g.c;
    int n = (int)(row / pq), rem = (int)(row % pq), p = rem / g.q, q = rem % g.q;
    for (size_t tap = j0 / cc; tap * cc < j1; tap++) {
        int r = (int)(tap / (size_t)g.s), t = (int)(tap % (size_t)g.s);
        size_t c0 = tap * cc < j0 ? j0 - tap * cc : 0, c1 = (tap + 1) * cc > j1 ? j1 - tap * cc : cc;
        float *restrict d = dst + tap * cc + c0 - j0;
        int h = p * g.stride - g.pad + r, xw = q * g.stride - g.pad + t;
        if (h < 0 || h >= g.h || xw < 0 || xw >= g.w) {
            memset(d, 0, (c1 - c0) * sizeof *d);
        } else {
            const float *src = x + (((size_t)n * g.h + h) * g.w + xw) * cc;
            memcpy(d, src + c0, (c1 - c0) * sizeof *d);
        }
    }
}

/* Column range [j0, j1) of piece t of n_pieces over rsc columns, boundaries on multiples of 16. */
static void sv_col_range(size_t rsc, int t, int n_pieces, size_t *j0, size_t *j1) {
    size_t a = ((size_t)t * rsc / (size_t)n_pieces + 15) & ~(size_t)15;
    size_t b = ((size_t)(t + 1) * rsc / (size_t)n_pieces + 15) & ~(size_t)15;
    *j0 = a < rsc ? a : rsc;
    *j1 = t == n_pieces - 1 || b > rsc ? rsc : b;
}

/* First CSR row at or after active entry offset `off` (a multiple of K). */
static size_t sv_row_at(const SparseGrad *s, size_t off) {
    size_t lo = 0, hi = (size_t)s->n * s->p * s->q; /* smallest i with row_ptr[i] >= off */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((size_t)s->row_ptr[mid] < off) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The active positions of one weight-gradient source: a structured CSR s over the input x (N,H,W,C),
 * or, with s NULL, every position of one dense sample val (P,Q,K) over x (H,W,C). */
typedef struct {
    const SparseGrad *s;
    const float *val; /* (total, K) */
    const float *x;
    size_t total; /* active positions */
} SvSource;

/* The row (output position) of active position `idx`, for a cursor walk with sv_src_next. */
static size_t sv_src_at(const SvSource *src, size_t idx, int k) {
    return src->s ? sv_row_at(src->s, idx * (size_t)k) : idx;
}
static size_t sv_src_next(const SvSource *src, size_t *i) { return src->s ? sv_next_row(src->s, i) : (*i)++; }

/* dW[:, j0:j1) (+)= the sources' terms, in chunks of at most ws->cols_cap floats of cols; *beta 0
 * overwrites (then becomes 1). */
static void sv_weights_piece(const SvSource *src, int n_src, ConvGeom g, const SparseVecWorkspace *ws, float *cols,
                             size_t j0, size_t j1, float beta, float *dw) {
    const size_t rsc = (size_t)g.r * g.s * g.c, kk = (size_t)g.k, width = j1 - j0;
    size_t chunk = ws->cols_cap / width;
    if (chunk > SPARSE_VEC_MAX_ROWS) chunk = SPARSE_VEC_MAX_ROWS;
    for (int u = 0; u < n_src; u++) {
        const SvSource *a = &src[u];
        size_t i = sv_src_at(a, 0, g.k);
        for (size_t off = 0; off < a->total;) {
            size_t m = a->total - off < chunk ? a->total - off : chunk;
            for (size_t j = 0; j < m; j++) sv_im2col_row(a->x, g, sv_src_next(a, &i), j0, j1, cols + j * width);
            sv_gemm(true, g.k, (int)width, (int)m, a->val + off * kk, g.k, cols, (int)width, beta, dw + j0, (int)rsc);
            beta = 1.0f;
            off += m;
        }
    }
    if (beta == 0.0f) /* no active position */
        for (size_t k = 0; k < kk; k++) memset(dw + k * rsc + j0, 0, width * sizeof *dw);
}

/* Row split: thread t of nt takes the t-th contiguous share of each source's active positions and
 * accumulates their dW into a private (K, R*S*C) block (thread 0: dw itself, from beta0), then the
 * blocks are summed in thread order. Needs cols_cap >= kr + rsc (kr: the block, rounded to 16 floats). */
static void sv_weights_rows(const SvSource *src, int n_src, ConvGeom g, const SparseVecWorkspace *ws, int n_threads,
                            size_t kr, float beta0, float *dw) {
    const size_t rsc = (size_t)g.r * g.s * g.c, kk = (size_t)g.k, nw = kk * rsc;
    size_t chunk = (ws->cols_cap - kr) / rsc;
    if (chunk > SPARSE_VEC_WGT_ROWS) chunk = SPARSE_VEC_WGT_ROWS;
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *buf = ws->cols + (size_t)t * ws->cols_cap;
        float *dst = t == 0 ? dw : buf, *cols = buf + kr;
        float beta = t == 0 ? beta0 : 0.0f;
        for (int u = 0; u < n_src; u++) {
            const SvSource *a = &src[u];
            size_t a0 = a->total * (size_t)t / (size_t)nt, a1 = a->total * (size_t)(t + 1) / (size_t)nt;
            size_t i = a0 < a1 ? sv_src_at(a, a0, g.k) : 0;
            for (size_t off = a0; off < a1;) {
                size_t m = a1 - off < chunk ? a1 - off : chunk;
                for (size_t j = 0; j < m; j++) sv_im2col_row(a->x, g, sv_src_next(a, &i), 0, rsc, cols + j * rsc);
                sv_gemm(true, g.k, (int)rsc, (int)m, a->val + off * kk, g.k, cols, (int)rsc, beta, dst, (int)rsc);
                beta = 1.0f;
                off += m;
            }
        }
        if (beta == 0.0f) memset(dst, 0, nw * sizeof *dst);
#pragma omp barrier
#pragma omp for schedule(static)
        for (size_t e = 0; e < nw; e += 16) {
            size_t len = nw - e < 16 ? nw - e : 16;
            for (int v = 1; v < nt; v++) {
                const float *restrict from = ws->cols + (size_t)v * ws->cols_cap + e;
                float *restrict d = dw + e;
#pragma omp simd
                for (size_t c = 0; c < len; c++) d[c] += from[c];
            }
        }
    }
}

/* dw (+)= the sources' weight-gradient terms (accumulate: add to dw, else overwrite it). */
static void sv_weights(const SvSource *src, int n_src, ConvGeom g, SparseVecWorkspace *ws, bool accumulate,
                       float *dw) {
    const size_t rsc = (size_t)g.r * g.s * g.c, kr = ((size_t)g.k * rsc + 15) & ~(size_t)15;
    const float beta0 = accumulate ? 1.0f : 0.0f;
    int n_threads = ws->n_threads < omp_get_max_threads() ? ws->n_threads : omp_get_max_threads();
    int blas = sv_blas_begin();
    if (kr <= SPARSE_VEC_ROWSPLIT_MAX && kr + rsc <= ws->cols_cap && getenv("SV_NOROWS") == NULL) {
        sv_weights_rows(src, n_src, g, ws, n_threads, kr, beta0, dw);
    } else {
        /* column pieces of about SPARSE_VEC_PIECE_COLS (at least one per thread), claimed dynamically */
        int n_pieces = (int)((rsc + SPARSE_VEC_PIECE_COLS - 1) / SPARSE_VEC_PIECE_COLS);
        n_pieces = (n_pieces + n_threads - 1) / n_threads * n_threads; /* equal shares: no idle thread at the end */
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
        for (int piece = 0; piece < n_pieces; piece++) {
            size_t j0, j1;
            sv_col_range(rsc, piece, n_pieces, &j0, &j1);
            if (j1 > j0)
                sv_weights_piece(src, n_src, g, ws, ws->cols + (size_t)omp_get_thread_num() * ws->cols_cap, j0, j1,
                                 beta0, dw);
        }
    }
    sv_blas_end(blas);
}

static SvSource sv_csr_source(const SparseGrad *s, const float *x, ConvGeom g) {
    return (SvSource){.s = s, .val = s->val, .x = x, .total = (size_t)s->row_ptr[(size_t)g.n * g.p * g.q] / (size_t)g.k};
}

void sparse_vec_conv_bwd_weights(const SparseGrad *s, const float *x, ConvGeom g, SparseVecWorkspace *ws,
                                 float *dw_ohwi) {
    sv_check(s, g, ws);
    SvSource src = sv_csr_source(s, x, g);
    sv_weights(&src, 1, g, ws, false, dw_ohwi);
}

void sparse_vec_conv_bwd_weights_reuse(const SparseGrad *s, const float *x, const float *r, const float *xsum,
                                       ConvGeom g, SparseVecWorkspace *ws, float *dw_ohwi) {
    sv_check(s, g, ws);
    SvSource src[2] = {{.s = NULL, .val = r, .x = xsum, .total = (size_t)g.p * g.q}, sv_csr_source(s, x, g)};
    /* one geometry serves both: the dense source's rows are the positions of sample 0 */
    sv_weights(src, 2, g, ws, false, dw_ohwi);
}

/* dx1 (H,W,C) = the input gradient of one sample for the dense output gradient r (P,Q,K): the
 * positions are split over the threads, each adds into a private copy (thread 0: dx1), and the
 * copies are summed in thread order. */
void sparse_vec_conv_bwd_data_dense1(const float *r, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                                     float *dx1) {
    ASSERT((size_t)g.r * g.s * g.c <= ws->max_rsc && ws->cols);
    const size_t pq = (size_t)g.p * g.q, rsc = (size_t)g.r * g.s * g.c, kk = (size_t)g.k;
    const size_t hwc = (size_t)g.h * g.w * g.c, hr = (hwc + 15) & ~(size_t)15;
    int n_threads = ws->n_threads < omp_get_max_threads() ? ws->n_threads : omp_get_max_threads();
    if (hr + rsc > ws->cols_cap) n_threads = 1; /* no room for a private copy */
    size_t chunk = (ws->cols_cap - (n_threads > 1 ? hr : 0)) / rsc;
    if (chunk > SPARSE_VEC_MAX_ROWS) chunk = SPARSE_VEC_MAX_ROWS;
    int blas = sv_blas_begin();
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *buf = ws->cols + (size_t)t * ws->cols_cap;
        float *dst = t == 0 ? dx1 : buf, *cols = nt > 1 ? buf + hr : buf;
        size_t a0 = pq * (size_t)t / (size_t)nt, a1 = pq * (size_t)(t + 1) / (size_t)nt;
        memset(dst, 0, hwc * sizeof *dst);
        for (size_t off = a0; off < a1;) {
            size_t m = a1 - off < chunk ? a1 - off : chunk;
            sv_gemm(false, (int)m, (int)rsc, g.k, r + off * kk, g.k, w_ohwi, (int)rsc, 0.0f, cols, (int)rsc);
            for (size_t j = 0; j < m; j++) sv_col2im(g, off + j, cols + j * rsc, dst);
            off += m;
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (size_t e = 0; e < hwc; e += 16) {
            size_t len = hwc - e < 16 ? hwc - e : 16;
            for (int v = 1; v < nt; v++) {
                const float *restrict from = ws->cols + (size_t)v * ws->cols_cap + e;
                float *restrict d = dx1 + e;
#pragma omp simd
                for (size_t c = 0; c < len; c++) d[c] += from[c];
            }
        }
    }
    sv_blas_end(blas);
}
