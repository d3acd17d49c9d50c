/* sparse_vec.c: gathered-GEMM backward convolutions for structured sparse gradients (sparse_vec.h). */
#include "core/sparse_vec.h"

#include <stdint.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* Target width of one bwd_weights column piece (a unit of dynamic scheduling). */
#define SPARSE_VEC_PIECE_COLS 256

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

/* dx of samples [n0, n1) (one thread's item): zeroed, then for each sub-chunk of at most `chunk`
 * active positions: cols = vals * W, and col2im. */
static void sv_data_item(const SparseGrad *s, const float *w, ConvGeom g, float *cols, size_t chunk, int n0,
                         int n1, const float *dx0, float *dx) {
    const size_t pq = (size_t)g.p * g.q, rsc = (size_t)g.r * g.s * g.c, hwc = (size_t)g.h * g.w * g.c;
    const size_t kk = (size_t)g.k;
    if (dx0)
        for (int n = n0; n < n1; n++) memcpy(dx + (size_t)n * hwc, dx0, hwc * sizeof *dx);
    else
        memset(dx + (size_t)n0 * hwc, 0, (size_t)(n1 - n0) * hwc * sizeof *dx);
    size_t off = (size_t)s->row_ptr[(size_t)n0 * pq], end = (size_t)s->row_ptr[(size_t)n1 * pq];
    size_t i = (size_t)n0 * pq; /* row cursor */
    while (off < end) {
        size_t m = (end - off) / kk;
        if (m > chunk) m = chunk;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)rsc, g.k, 1.0f, s->val + off, g.k, w,
                    (int)rsc, 0.0f, cols, (int)rsc);
        for (size_t j = 0; j < m; j++) {
            size_t row = sv_next_row(s, &i);
            int n = (int)(row / pq), rem = (int)(row % pq), p = rem / g.q, q = rem % g.q;
            const float *src = cols + j * rsc;
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
        off += m * kk;
    }
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

/* dW[:, j0:j1) over all active positions, in chunks of at most ws->cols_cap floats of cols. */
static void sv_weights_piece(const SparseGrad *s, const float *x, ConvGeom g, const SparseVecWorkspace *ws,
                             float *cols, size_t j0, size_t j1, float *dw) {
    const size_t rsc = (size_t)g.r * g.s * g.c, kk = (size_t)g.k, width = j1 - j0;
    const size_t total = (size_t)s->row_ptr[(size_t)g.n * g.p * g.q];
    size_t chunk = ws->cols_cap / width;
    if (chunk > SPARSE_VEC_MAX_ROWS) chunk = SPARSE_VEC_MAX_ROWS;
    size_t off = 0, i = 0;
    float beta = 0.0f;
    while (off < total) {
        size_t m = (total - off) / kk;
        if (m > chunk) m = chunk;
        for (size_t j = 0; j < m; j++) sv_im2col_row(x, g, sv_next_row(s, &i), j0, j1, cols + j * width);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g.k, (int)width, (int)m, 1.0f, s->val + off, g.k,
                    cols, (int)width, beta, dw + j0, (int)rsc);
        beta = 1.0f;
        off += m * kk;
    }
    if (beta == 0.0f) /* no active position */
        for (size_t k = 0; k < kk; k++) memset(dw + k * rsc + j0, 0, width * sizeof *dw);
}

void sparse_vec_conv_bwd_weights(const SparseGrad *s, const float *x, ConvGeom g, SparseVecWorkspace *ws,
                                 float *dw_ohwi) {
    sv_check(s, g, ws);
    const size_t rsc = (size_t)g.r * g.s * g.c;
    int n_threads = ws->n_threads < omp_get_max_threads() ? ws->n_threads : omp_get_max_threads();
    /* column pieces of about SPARSE_VEC_PIECE_COLS (at least one per thread), claimed dynamically */
    int n_pieces = (int)((rsc + SPARSE_VEC_PIECE_COLS - 1) / SPARSE_VEC_PIECE_COLS);
    n_pieces = (n_pieces + n_threads - 1) / n_threads * n_threads; /* equal shares: no idle thread at the end */
    int blas = sv_blas_begin();
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (int piece = 0; piece < n_pieces; piece++) {
        size_t j0, j1;
        sv_col_range(rsc, piece, n_pieces, &j0, &j1);
        if (j1 > j0)
            sv_weights_piece(s, x, g, ws, ws->cols + (size_t)omp_get_thread_num() * ws->cols_cap, j0, j1, dw_ohwi);
    }
    sv_blas_end(blas);
}
