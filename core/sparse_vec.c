/* sparse_vec.c: gathered-GEMM backward convolutions for structured sparse gradients (sparse_vec.h). */
#include "core/sparse_vec.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sparse_kernels.h"

/* Target width of one bwd_weights column piece (a unit of dynamic scheduling). */
#define SPARSE_VEC_PIECE_COLS 256
/* bwd_weights splits the active positions over the threads (private dW blocks) when K*R*S*C is at
 * most this many floats, else it splits dW's columns */
#define SPARSE_VEC_ROWSPLIT_MAX ((size_t)1 << 18)
/* columns per GEMM chunk (about 512 KiB: they stay in L2) and the fewest positions per chunk */
#define SPARSE_VEC_CHUNK_FLOATS ((size_t)1 << 17)
#define SPARSE_VEC_MIN_ROWS 128
/* GEMMs with at least this many output columns run on oneDNN's sgemm, narrower ones on OpenBLAS */
#define SPARSE_VEC_DNNL_MIN_N 64
/* bwd_data assembles each sample in a scratch copy when the buffer holds it and this many column
 * blocks besides */
#define SPARSE_VEC_SCR_ROWS 64

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

/* Positions per GEMM: about SPARSE_VEC_CHUNK_FLOATS floats of columns of `width` (at least
 * SPARSE_VEC_MIN_ROWS positions), at most room / width (room: the floats of the buffer; callers
 * guarantee room >= width). */
static size_t sv_chunk(size_t room, size_t width) {
    size_t cap = room / width, want = SPARSE_VEC_CHUNK_FLOATS / width;
    if (want < SPARSE_VEC_MIN_ROWS) want = SPARSE_VEC_MIN_ROWS;
    if (want > SPARSE_VEC_MAX_ROWS) want = SPARSE_VEC_MAX_ROWS;
    return want < cap ? want : cap;
}

/* C (m x n) = op(A) B + beta C, row-major, single-threaded (the callers run inside OpenMP regions);
 * op(A) = A (m x k) or, with ta, A^T for A (k x m). On this project's machine oneDNN's sgemm ran
 * 10-20% faster than OpenBLAS 0.3.21 on the gathered shapes of resnet18 (about 205-233 against
 * 170-210 GFLOP/s on 2 cores, one GEMM per core), but made the stem's weight gradient (27 output
 * columns) 3x slower: narrow outputs stay on OpenBLAS. */
static void sv_gemm(bool ta, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                    float *c, int ldc) {
    if (n >= SPARSE_VEC_DNNL_MIN_N) {
        dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
        ASSERT(st == dnnl_success);
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

/* dst[0, n) = src (or zeros when src is NULL) with streaming stores where aligned: the destination
 * is not read back, so its lines need not be fetched first. */
static void sv_stream(float *restrict dst, const float *restrict src, size_t n) {
#ifdef __AVX512F__
    if (((uintptr_t)dst & 63) == 0 && (!src || ((uintptr_t)src & 63) == 0) && n % 16 == 0) {
        for (size_t i = 0; i < n; i += 16) _mm512_stream_ps(dst + i, src ? _mm512_load_ps(src + i) : _mm512_setzero_ps());
        return;
    }
#endif
    if (src) memcpy(dst, src, n * sizeof *dst);
    else memset(dst, 0, n * sizeof *dst);
}

/* dx of samples [n0, n1) (one thread's item): for each sub-chunk of at most `chunk` active positions:
 * cols = vals * W, and col2im. With a scratch sample scr (H*W*C floats, else NULL), each sample with
 * active positions is assembled there (dx0 or zeros, plus its positions) while it stays in cache, then
 * streamed into dx; samples without any are streamed from dx0 or zeros. Without scr, each sample's dx
 * is initialised just before its first position is added. */
static void sv_data_item(const SparseGrad *s, const float *w, ConvGeom g, float *cols, float *scr, size_t chunk,
                         int n0, int n1, const float *dx0, float *dx) {
    const size_t pq = (size_t)g.p * g.q, rsc = (size_t)g.r * g.s * g.c, hwc = (size_t)g.h * g.w * g.c;
    const size_t kk = (size_t)g.k;
    size_t off = (size_t)s->row_ptr[(size_t)n0 * pq], end = (size_t)s->row_ptr[(size_t)n1 * pq];
    size_t i = (size_t)n0 * pq; /* row cursor */
    int n_ready = n0;           /* samples [n0, n_ready) initialised (or, with scr, finished or in scr) */
    int cur = -1;               /* with scr: the sample held in scr */
    while (off < end) {
        size_t m = (end - off) / kk;
        if (m > chunk) m = chunk;
        sv_gemm(false, (int)m, (int)rsc, g.k, s->val + off, g.k, w, (int)rsc, 0.0f, cols, (int)rsc);
        for (size_t j = 0; j < m; j++) {
            size_t row = sv_next_row(s, &i);
            int n = (int)(row / pq);
            if (!scr) {
                while (n_ready <= n) sv_init_sample(g, n_ready++, dx0, dx);
                sv_col2im(g, row, cols + j * rsc, dx);
                continue;
            }
            if (n != cur) {
                if (cur >= 0) sv_stream(dx + (size_t)cur * hwc, scr, hwc);
                for (; n_ready < n; n_ready++) sv_stream(dx + (size_t)n_ready * hwc, dx0, hwc);
                n_ready = n + 1;
                if (dx0) memcpy(scr, dx0, hwc * sizeof *scr);
                else memset(scr, 0, hwc * sizeof *scr);
                cur = n;
            }
            sv_col2im(g, row % pq, cols + j * rsc, scr);
        }
        off += m * kk;
    }
    if (scr) {
        if (cur >= 0) sv_stream(dx + (size_t)cur * hwc, scr, hwc);
        for (; n_ready < n1; n_ready++) sv_stream(dx + (size_t)n_ready * hwc, dx0, hwc);
#ifdef __AVX512F__
        _mm_sfence(); /* the streaming stores are visible before the region's barrier */
#endif
    }
    while (n_ready < n1) sv_init_sample(g, n_ready++, dx0, dx);
}

void sparse_vec_conv_bwd_data(const SparseGrad *s, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                              float *dx) {
    sparse_vec_conv_bwd_data_init(s, w_ohwi, g, ws, NULL, dx);
}

/* Column split, for a W larger than a core's cache: chunks of active positions whose column blocks
 * fit in all threads' buffers together (ws->cols is one allocation); per chunk each thread computes a
 * 16-aligned column range of the chunk's blocks with its slice of W (so W is read once per chunk, not
 * once per thread), then, after a barrier, adds the positions of its own samples (the samples split
 * evenly over the threads) into dx, each sample initialised just before its first position. */
static void sv_data_split(const SparseGrad *s, const float *w, ConvGeom g, const SparseVecWorkspace *ws,
                          int n_threads, const float *dx0, float *dx) {
    const size_t pq = (size_t)g.p * g.q, rsc = (size_t)g.r * g.s * g.c, kk = (size_t)g.k;
    const size_t total = (size_t)s->row_ptr[(size_t)g.n * pq] / kk;
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t chunk = sv_chunk((size_t)nt * ws->cols_cap, rsc), j0, j1;
        sv_col_range(rsc, t, nt, &j0, &j1);
        int s0 = (int)((long long)g.n * t / nt), s1 = (int)((long long)g.n * (t + 1) / nt), n_ready = s0;
        size_t p0 = (size_t)s->row_ptr[(size_t)s0 * pq] / kk, p1 = (size_t)s->row_ptr[(size_t)s1 * pq] / kk;
        size_t i = (size_t)s0 * pq; /* row cursor over my samples */
        for (size_t a = 0; a < total; a += chunk) {
            size_t m = total - a < chunk ? total - a : chunk;
            if (j1 > j0)
                sv_gemm(false, (int)m, (int)(j1 - j0), g.k, s->val + a * kk, g.k, w + j0, (int)rsc, 0.0f,
                        ws->cols + j0, (int)rsc);
#pragma omp barrier
            size_t lo = a > p0 ? a : p0, hi = a + m < p1 ? a + m : p1;
            for (size_t j = lo; j < hi; j++) {
                size_t row = sv_next_row(s, &i);
                int n = (int)(row / pq);
                while (n_ready <= n) sv_init_sample(g, n_ready++, dx0, dx);
                sv_col2im(g, row, ws->cols + (j - a) * rsc, dx);
            }
#pragma omp barrier
        }
        while (n_ready < s1) sv_init_sample(g, n_ready++, dx0, dx);
    }
}

void sparse_vec_conv_bwd_data_init(const SparseGrad *s, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                                   const float *dx0, float *dx) {
    sv_check(s, g, ws);
    const size_t pq = (size_t)g.p * g.q, rsc = (size_t)g.r * g.s * g.c;
    /* a scratch sample in front of each thread's columns when there is room for it */
    const size_t hr = ((size_t)g.h * g.w * g.c + 15) & ~(size_t)15;
    const bool use_scr = hr + rsc * SPARSE_VEC_SCR_ROWS <= ws->cols_cap;
    size_t chunk = sv_chunk(ws->cols_cap - (use_scr ? hr : 0), rsc);
    int n_threads = ws->n_threads < omp_get_max_threads() ? ws->n_threads : omp_get_max_threads();
    int blas = sv_blas_begin(), next_item = 0;
    if (n_threads > 1 && (size_t)g.k * rsc > SPARSE_VEC_ROWSPLIT_MAX) {
        sv_data_split(s, w_ohwi, g, ws, n_threads, dx0, dx);
        sv_blas_end(blas);
        return;
    }
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num();
        float *scr = use_scr ? ws->cols + (size_t)t * ws->cols_cap : NULL;
        float *cols = ws->cols + (size_t)t * ws->cols_cap + (use_scr ? hr : 0);
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
                sv_data_item(s, w_ohwi, g, cols, scr, chunk, n0, n1, dx0, dx);
#pragma omp atomic capture
                mine = next_item++;
            }
            item++;
            n0 = n1;
        }
    }
    sv_blas_end(blas);
}

/* dst[0, c) = src[0, c), or zeros when src is NULL; c a multiple of 16 (inline: a library call per
 * 256-byte tap cost more than the copy). */
static inline void sv_copy16(float *restrict dst, const float *restrict src, size_t c) {
#ifdef __AVX512F__
    for (size_t i = 0; i < c; i += 16) _mm512_storeu_ps(dst + i, src ? _mm512_loadu_ps(src + i) : _mm512_setzero_ps());
#else
    if (src) memcpy(dst, src, c * sizeof *dst);
    else memset(dst, 0, c * sizeof *dst);
#endif
}

/* Columns [j0, j1) of the im2col row of output position `row` (zeros outside the input). */
static void sv_im2col_row(const float *x, ConvGeom g, size_t row, size_t j0, size_t j1, float *restrict dst) {
    const size_t pq = (size_t)g.p * g.q, cc = (size_t)g.c;
    int n = (int)(row / pq), rem = (int)(row % pq), p = rem / g.q, q = rem % g.q;
    if (j0 == 0 && j1 == (size_t)g.r * g.s * cc && cc % 16 == 0) { /* the whole row, whole taps */
        for (int r = 0; r < g.r; r++) {
            int h = p * g.stride - g.pad + r;
            for (int t = 0; t < g.s; t++) {
                int xw = q * g.stride - g.pad + t;
                bool in = h >= 0 && h < g.h && xw >= 0 && xw < g.w;
                sv_copy16(dst, in ? x + (((size_t)n * g.h + h) * g.w + xw) * cc : NULL, cc);
                dst += cc;
            }
        }
        return;
    }
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
    size_t chunk = sv_chunk(ws->cols_cap, width);
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

/* Called by every thread of a parallel region, after a barrier: dst[0..n) += the private copies that
 * threads 1..nt-1 left at the start of their ws->cols buffers (thread 0 wrote into dst itself).
 * Work-shared over 16-float blocks; ends with the implicit barrier of its omp for. */
static void sv_reduce_private(const SparseVecWorkspace *ws, int nt, float *dst, size_t n) {
#pragma omp for schedule(static)
    for (size_t e = 0; e < n; e += 16) {
        size_t len = n - e < 16 ? n - e : 16;
        for (int v = 1; v < nt; v++) {
            const float *restrict from = ws->cols + (size_t)v * ws->cols_cap + e;
            float *restrict d = dst + e;
#pragma omp simd
            for (size_t c = 0; c < len; c++) d[c] += from[c];
        }
    }
}

/* Row split: thread t of nt takes the t-th contiguous share of each source's active positions and
 * accumulates their dW into a private (K, R*S*C) block (thread 0: dw itself, from beta0), then the
 * blocks are summed in thread order. Needs cols_cap >= kr + rsc (kr: the block, rounded to 16 floats). */
static void sv_weights_rows(const SvSource *src, int n_src, ConvGeom g, const SparseVecWorkspace *ws, int n_threads,
                            size_t kr, float beta0, float *dw) {
    const size_t rsc = (size_t)g.r * g.s * g.c, kk = (size_t)g.k, nw = kk * rsc;
    size_t chunk = sv_chunk(ws->cols_cap - kr, rsc);
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
        sv_reduce_private(ws, nt, dw, nw);
    }
}

/* dw (+)= the sources' weight-gradient terms (accumulate: add to dw, else overwrite it). */
static void sv_weights(const SvSource *src, int n_src, ConvGeom g, SparseVecWorkspace *ws, bool accumulate,
                       float *dw) {
    const size_t rsc = (size_t)g.r * g.s * g.c, kr = ((size_t)g.k * rsc + 15) & ~(size_t)15;
    const float beta0 = accumulate ? 1.0f : 0.0f;
    int n_threads = ws->n_threads < omp_get_max_threads() ? ws->n_threads : omp_get_max_threads();
    int blas = sv_blas_begin();
    if (kr <= SPARSE_VEC_ROWSPLIT_MAX && kr + rsc <= ws->cols_cap) {
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

/* The row split with the batch sum fused in: thread t of nt takes the t-th contiguous range of
 * samples; per sample it adds x[n] into a private sum and gathers that sample's active positions
 * while x[n] is still in cache (one pass over x for both), accumulating into its private dW (thread 0:
 * dw). Then xsum = the private sums in thread order, R's positions are split like the row split over
 * xsum, and the dW blocks are summed in thread order. Buffer per thread: dW block (kr), sum (hr),
 * columns (at least one block). */
static void sv_weights_samples(const SparseGrad *s, const float *x, const float *r, ConvGeom g,
                               const SparseVecWorkspace *ws, int n_threads, size_t kr, size_t hr, float *xsum,
                               float *dw) {
    const size_t rsc = (size_t)g.r * g.s * g.c, kk = (size_t)g.k, nw = kk * rsc, pq = (size_t)g.p * g.q;
    const size_t hwc = (size_t)g.h * g.w * g.c;
    const size_t chunk = sv_chunk(ws->cols_cap - kr - hr, rsc);
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *buf = ws->cols + (size_t)t * ws->cols_cap;
        float *dst = t == 0 ? dw : buf, *xs = buf + kr, *cols = buf + kr + hr;
        int s0 = (int)((long long)g.n * t / nt), s1 = (int)((long long)g.n * (t + 1) / nt);
        size_t i = (size_t)s0 * pq, first = (size_t)s->row_ptr[i] / kk, fill = 0;
        float beta = 0.0f;
        /* a strided 1x1 kernel reads only the pixels on its stride: sum just those (the rest stay 0) */
        const bool strided1x1 = sparse_geom_strided_1x1(g);
        if (s0 == s1 || strided1x1) memset(xs, 0, hwc * sizeof *xs);
        for (int n = s0; n < s1; n++) {
            const float *restrict xn = x + (size_t)n * hwc;
            if (strided1x1) {
                for (int p = 0; p < g.p; p++)
                    for (int q = 0; q < g.q; q++) {
                        size_t e0 = ((size_t)p * g.stride * g.w + (size_t)q * g.stride) * g.c;
#pragma omp simd
                        for (size_t e = e0; e < e0 + (size_t)g.c; e++) xs[e] += xn[e];
                    }
            } else if (n == s0) {
                memcpy(xs, xn, hwc * sizeof *xs);
            } else {
#pragma omp simd
                for (size_t e = 0; e < hwc; e++) xs[e] += xn[e];
            }
            size_t cnt = sv_sample_active(s, pq, n);
            for (size_t j = 0; j < cnt; j++) {
                sv_im2col_row(x, g, sv_next_row(s, &i), 0, rsc, cols + fill * rsc);
                if (++fill == chunk) {
                    sv_gemm(true, g.k, (int)rsc, (int)fill, s->val + first * kk, g.k, cols, (int)rsc, beta, dst,
                            (int)rsc);
                    beta = 1.0f;
                    first += fill;
                    fill = 0;
                }
            }
        }
        if (fill) {
            sv_gemm(true, g.k, (int)rsc, (int)fill, s->val + first * kk, g.k, cols, (int)rsc, beta, dst, (int)rsc);
            beta = 1.0f;
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (size_t e = 0; e < hwc; e += 16) {
            size_t len = hwc - e < 16 ? hwc - e : 16;
            float *restrict d = xsum + e;
            const float *restrict a0 = ws->cols + kr + e;
            for (size_t c = 0; c < len; c++) d[c] = a0[c];
            for (int v = 1; v < nt; v++) {
                const float *restrict from = ws->cols + (size_t)v * ws->cols_cap + kr + e;
#pragma omp simd
                for (size_t c = 0; c < len; c++) d[c] += from[c];
            }
        }
        /* R's positions over xsum (the barrier above ends the sums) */
        size_t a0 = pq * (size_t)t / (size_t)nt, a1 = pq * (size_t)(t + 1) / (size_t)nt;
        for (size_t off = a0; off < a1;) {
            size_t m = a1 - off < chunk ? a1 - off : chunk;
            for (size_t j = 0; j < m; j++) sv_im2col_row(xsum, g, off + j, 0, rsc, cols + j * rsc);
            sv_gemm(true, g.k, (int)rsc, (int)m, r + off * kk, g.k, cols, (int)rsc, beta, dst, (int)rsc);
            beta = 1.0f;
            off += m;
        }
        if (beta == 0.0f) memset(dst, 0, nw * sizeof *dst);
#pragma omp barrier
        sv_reduce_private(ws, nt, dw, nw);
    }
}

void sparse_vec_conv_bwd_weights_reuse(const SparseGrad *s, const float *x, const float *r, ConvGeom g,
                                       SparseVecWorkspace *ws, float *xsum, float *dw_ohwi) {
    sv_check(s, g, ws);
    const size_t rsc = (size_t)g.r * g.s * g.c, kr = ((size_t)g.k * rsc + 15) & ~(size_t)15;
    const size_t hwc = (size_t)g.h * g.w * g.c, hr = (hwc + 15) & ~(size_t)15;
    int n_threads = ws->n_threads < omp_get_max_threads() ? ws->n_threads : omp_get_max_threads();
    if (kr <= SPARSE_VEC_ROWSPLIT_MAX && kr + hr + rsc <= ws->cols_cap) {
        int blas = sv_blas_begin();
        sv_weights_samples(s, x, r, g, ws, n_threads, kr, hr, xsum, dw_ohwi);
        sv_blas_end(blas);
        return;
    }
    sparse_batch_sum(x, g, xsum);
    SvSource src[2] = {sv_csr_source(s, x, g), {.s = NULL, .val = r, .x = xsum, .total = (size_t)g.p * g.q}};
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
    int blas = sv_blas_begin();
    if (n_threads > 1 && kk * rsc > SPARSE_VEC_ROWSPLIT_MAX && pq * rsc <= (size_t)n_threads * ws->cols_cap) {
        /* a large W and all positions' blocks fit the buffers: each thread computes a column slice of
         * every block (W read once), then one thread adds them into dx1 */
#pragma omp parallel num_threads(n_threads)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            size_t j0, j1;
            sv_col_range(rsc, t, nt, &j0, &j1);
            if (j1 > j0)
                sv_gemm(false, (int)pq, (int)(j1 - j0), g.k, r, g.k, w_ohwi + j0, (int)rsc, 0.0f, ws->cols + j0,
                        (int)rsc);
#pragma omp barrier
#pragma omp single
            {
                memset(dx1, 0, hwc * sizeof *dx1);
                for (size_t j = 0; j < pq; j++) sv_col2im(g, j, ws->cols + j * rsc, dx1);
            }
        }
        sv_blas_end(blas);
        return;
    }
    if (hr + rsc > ws->cols_cap) n_threads = 1; /* no room for a private copy */
    size_t chunk = sv_chunk(ws->cols_cap - (n_threads > 1 ? hr : 0), rsc);
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
        sv_reduce_private(ws, nt, dx1, hwc);
    }
    sv_blas_end(blas);
}
