/* test_sparse_vec.c: the gathered-GEMM kernels for structured sparse gradients (core/sparse_vec.h)
 * against a double-precision direct loop and against the unstructured kernels of
 * core/sparse_kernels.h on the same structured S, for the conv kinds of the models, at densities 0
 * (no active position), 0.1 and 1; small workspaces (a position per GEMM, samples split over
 * chunks), 1 and 2 threads, bit-identical repeats, OpenBLAS's thread count restored; no allocation
 * inside the kernels and no leaks. f32 against double: norm-relative tolerance 1e-4. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/sparse.h"
#include "core/sparse_kernels.h"
#include "core/sparse_vec.h"
#include "tests/ref.h"
#include "tests/testutil.h"

#define TOL 1e-4

typedef struct {
    const char *what;
    int n, c, h, w, k, r, s, stride, pad;
} ConvCase;

static const ConvCase cases[] = {
    {"3x3 s1 p1", 4, 16, 8, 8, 16, 3, 3, 1, 1},
    {"3x3 s2 p1 odd input", 3, 8, 9, 9, 32, 3, 3, 2, 1},
    {"1x1 s2 p0", 4, 16, 8, 8, 32, 1, 1, 2, 0},
    {"7x7 s2 p3 C=3", 2, 3, 16, 16, 16, 7, 7, 2, 3},
    {"5x5 s1 p0", 3, 6, 12, 12, 8, 5, 5, 1, 0},
    {"3x3 s1 p1 K=5 C=20", 2, 20, 5, 7, 5, 3, 3, 1, 1},
    /* K*R*S*C above SPARSE_VEC_ROWSPLIT_MAX: bwd_data's column split, bwd_weights' column pieces */
    {"3x3 s1 p1 K=64 C=512", 3, 512, 4, 4, 64, 3, 3, 1, 1},
};


/* A structured S (N,P,Q,K): each position active with probability density (all K channels,
 * normal values, never 0), else zero. Returns the number of active positions. */
static size_t draw_structured(Rng *rng, float *s, size_t rows, int k, double density) {
    size_t active = 0;
    for (size_t i = 0; i < rows; i++) {
        bool on = density >= 1.0 || (density > 0.0 && rng_uniform(rng) < density);
        for (int c = 0; c < k; c++) {
            float v = on ? (float)rng_normal(rng) : 0.0f;
            s[i * k + c] = on && v == 0.0f ? 1.0f : v;
        }
        active += on;
    }
    return active;
}

/* Direct double loops over the dense S: dx (N,H,W,C), dw (K,R,S,C). */
static void ref_conv_bwd(const float *s, const float *w, const float *x, ConvGeom g, double *dx, double *dw) {
    memset(dx, 0, (size_t)g.n * g.h * g.w * g.c * sizeof *dx);
    memset(dw, 0, (size_t)g.k * g.r * g.s * g.c * sizeof *dw);
    for (int n = 0; n < g.n; n++)
        for (int p = 0; p < g.p; p++)
            for (int q = 0; q < g.q; q++)
                for (int k = 0; k < g.k; k++) {
                    double v = s[(((size_t)n * g.p + p) * g.q + q) * g.k + k];
                    if (v == 0.0) continue;
                    for (int r = 0; r < g.r; r++) {
                        int h = p * g.stride - g.pad + r;
                        if (h < 0 || h >= g.h) continue;
                        for (int t = 0; t < g.s; t++) {
                            int xw = q * g.stride - g.pad + t;
                            if (xw < 0 || xw >= g.w) continue;
                            size_t xo = (((size_t)n * g.h + h) * g.w + xw) * g.c;
                            size_t wo = (((size_t)k * g.r + r) * g.s + t) * g.c;
                            for (int c = 0; c < g.c; c++) {
                                dx[xo + c] += v * w[wo + c];
                                dw[wo + c] += v * x[xo + c];
                            }
                        }
                    }
                }
}

/* One case at one density with `threads` threads and a per-thread buffer of `bytes` (0: default). */
static void run_case(const ConvCase *cc, double density, int threads, size_t bytes, uint64_t seed) {
    size_t live0 = mem_live_bytes();
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    char what[160];
    ConvGeom g = sparse_geom(cc->n, cc->c, cc->h, cc->w, cc->k, cc->r, cc->s, cc->stride, cc->pad);
    assert_int_equal(sparse_geom_check(g), 0);
    const size_t rows = (size_t)g.n * g.p * g.q, ny = rows * g.k, nx = (size_t)g.n * g.h * g.w * g.c;
    const size_t rsc = (size_t)g.r * g.s * g.c, nw = (size_t)g.k * rsc;
    Rng rng;
    rng_init(&rng, seed);
    float *sd = tu_falloc(ny), *x = tu_falloc(nx), *w = tu_falloc(nw);
    float *dx = tu_falloc(nx), *dw = tu_falloc(nw), *dx2 = tu_falloc(nx), *dw2 = tu_falloc(nw);
    float *udx = tu_falloc(nx), *udw = tu_falloc(nw);
    double *rdx = tu_dalloc(nx), *rdw = tu_dalloc(nw), *tmp = tu_dalloc(nx > nw ? nx : nw);
    size_t active = draw_structured(&rng, sd, rows, g.k, density);
    for (size_t i = 0; i < nx; i++) x[i] = (float)rng_normal(&rng);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(rng_normal(&rng) / sqrt((double)rsc));
    if (density == 0.0) assert_int_equal(active, 0);
    if (density == 1.0) assert_int_equal(active, rows);

    SparseGrad sg;
    assert_int_equal(sparse_init(&sg, g.n, g.p, g.q, g.k, ny), 0);
    assert_int_equal(sparse_from_dense(&sg, sd), 0);
    size_t n_full = 0;
    assert_true(sparse_rows_structured(&sg, &n_full));
    assert_int_equal(n_full, active);
    SparseVecWorkspace ws;
    assert_int_equal(sparse_vec_workspace_init(&ws, rsc, 0, bytes), 0);
    SparseWorkspace uws;
    assert_int_equal(sparse_workspace_init(&uws, 0, nw, 0), 0);

    size_t allocs0 = mem_n_allocs();
    memset(dx, 0xff, nx * sizeof *dx); /* overwritten, not accumulated */
    memset(dw, 0xff, nw * sizeof *dw);
    sparse_vec_conv_bwd_data(&sg, w, g, &ws, dx);
    sparse_vec_conv_bwd_weights(&sg, x, g, &ws, dw);
    sparse_vec_conv_bwd_data(&sg, w, g, &ws, dx2);
    sparse_vec_conv_bwd_weights(&sg, x, g, &ws, dw2);
    assert_int_equal(mem_n_allocs(), allocs0);
    assert_memory_equal(dx, dx2, nx * sizeof *dx); /* bit-identical repeats */
    assert_memory_equal(dw, dw2, nw * sizeof *dw);

    ref_conv_bwd(sd, w, x, g, rdx, rdw);
    snprintf(what, sizeof what, "%s density %g threads %d: dx vs double", cc->what, density, threads);
    assert_close_fd(what, dx, rdx, nx, TOL);
    snprintf(what, sizeof what, "%s density %g threads %d: dw vs double", cc->what, density, threads);
    assert_close_fd(what, dw, rdw, nw, TOL);

    sparse_conv_bwd_data(&sg, w, g, udx);
    sparse_conv_bwd_weights(&sg, x, g, &uws, udw);
    for (size_t i = 0; i < nx; i++) tmp[i] = udx[i];
    snprintf(what, sizeof what, "%s density %g: dx vs sparse_conv_bwd_data", cc->what, density);
    assert_close_fd(what, dx, tmp, nx, TOL);
    for (size_t i = 0; i < nw; i++) tmp[i] = udw[i];
    snprintf(what, sizeof what, "%s density %g: dw vs sparse_conv_bwd_weights", cc->what, density);
    assert_close_fd(what, dw, tmp, nw, TOL);

    sparse_workspace_deinit(&uws);
    sparse_vec_workspace_deinit(&ws);
    sparse_vec_workspace_deinit(&ws); /* twice is harmless */
    sparse_deinit(&sg);
    mem_free(sd);
    mem_free(x);
    mem_free(w);
    mem_free(dx);
    mem_free(dw);
    mem_free(dx2);
    mem_free(dw2);
    mem_free(udx);
    mem_free(udw);
    mem_free(rdx);
    mem_free(rdw);
    mem_free(tmp);
    omp_set_num_threads(saved);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_cases(void **state) {
    (void)state;
    static const double densities[] = {0.0, 0.1, 1.0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t d = 0; d < sizeof densities / sizeof densities[0]; d++)
            for (int t = 1; t <= 2; t++) run_case(&cases[i], densities[d], t, 0, 100 + i * 10 + d);
}

/* Tiny buffers: one R*S*C block per GEMM, so every sample is split over many chunks. */
/* sparse_vec_conv_bwd_data_init: every sample's dx starts from dx0 = the plain kernel + broadcast dx0. */
static void test_data_init(void **state) {
    size_t base = mem_live_bytes();
    Rng rng;
    rng_init(&rng, 31);
    ConvGeom g = sparse_geom(4, 16, 9, 9, 32, 3, 3, 2, 1);
    size_t sample = (size_t)g.h * g.w * g.c, nx = (size_t)g.n * sample, rows = (size_t)g.n * g.p * g.q;
    size_t ny = rows * (size_t)g.k, nw = (size_t)g.k * g.r * g.s * g.c;
    float *w = tu_falloc(nw), *s = tu_falloc(ny), *dx0 = tu_falloc(sample), *a = tu_falloc(nx), *b = tu_falloc(nx);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(0.1 * rng_normal(&rng));
    for (size_t i = 0; i < sample; i++) dx0[i] = (float)rng_normal(&rng);
    draw_structured(&rng, s, rows, g.k, 0.2);
    SparseGrad sg;
    SparseVecWorkspace ws;
    assert_int_equal(sparse_init(&sg, g.n, g.p, g.q, g.k, ny), 0);
    assert_int_equal(sparse_from_dense(&sg, s), 0);
    assert_int_equal(sparse_vec_workspace_init(&ws, (size_t)g.r * g.s * g.c, 2, 0), 0);
    sparse_vec_conv_bwd_data(&sg, w, g, &ws, a);
    for (size_t i = 0; i < nx; i++) a[i] += dx0[i % sample];
    double *want = tu_dalloc(nx);
    for (size_t i = 0; i < nx; i++) want[i] = a[i];
    sparse_vec_conv_bwd_data_init(&sg, w, g, &ws, dx0, b);
    assert_close_fd("vec bwd_data_init vs bwd_data + broadcast dx0", b, want, nx, 1e-6);
    sparse_vec_workspace_deinit(&ws);
    sparse_deinit(&sg);
    mem_free(w), mem_free(s), mem_free(dx0), mem_free(a), mem_free(b), mem_free(want);
    assert_int_equal(mem_live_bytes(), base);
}

static void test_small_workspace(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&cases[i], 0.3, 2, 1, 300 + i);
        run_case(&cases[i], 1.0, 1, 4 * 3 * (size_t)cases[i].r * cases[i].s * cases[i].c, 400 + i);
    }
}

/* OpenBLAS's own thread count is set to one for the call and restored. */
static void test_blas_threads_restored(void **state) {
    (void)state;
    int before = openblas_get_num_threads();
    openblas_set_num_threads(2);
    run_case(&cases[0], 0.5, 2, 0, 7);
    assert_int_equal(openblas_get_num_threads(), 2);
    openblas_set_num_threads(before);
}

static void test_workspace_errors(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    SparseVecWorkspace ws;
    TuCapture cap;
    int rc = 0;
    TU_CAPTURE(&cap, rc = sparse_vec_workspace_init(&ws, 0, 2, 0));
    assert_int_equal(rc, ERR_SHAPE);
    assert_log_has(cap.text, "max_rsc");
    assert_null(ws.cols);
    assert_int_equal(sparse_vec_workspace_init(&ws, 100, 3, 8), 0); /* raised to one block */
    assert_int_equal(ws.n_threads, 3);
    assert_true(ws.cols_cap >= 100);
    sparse_vec_workspace_deinit(&ws);
    assert_int_equal(mem_live_bytes(), live0);
}

/* The reuse-term kernels: sparse_vec_conv_bwd_data_dense1 (one dense sample R) and
 * sparse_vec_conv_bwd_weights_reuse (S over X plus R over the batch sum of X, which it also returns)
 * against the double loops, for every case, 1 and 2 threads, default and one-block workspaces (the
 * fused batch sum, and the separate one); bit-identical repeats; no allocation inside. */
static void reuse_case(const ConvCase *cc, int threads, size_t bytes, uint64_t seed) {
    size_t live0 = mem_live_bytes();
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    char what[160];
    ConvGeom g = sparse_geom(cc->n, cc->c, cc->h, cc->w, cc->k, cc->r, cc->s, cc->stride, cc->pad);
    ConvGeom g1 = g;
    g1.n = 1;
    const size_t rows = (size_t)g.n * g.p * g.q, ny = rows * g.k, nx = (size_t)g.n * g.h * g.w * g.c;
    const size_t rsc = (size_t)g.r * g.s * g.c, nw = (size_t)g.k * rsc, hwc = (size_t)g.h * g.w * g.c;
    const size_t pqk = (size_t)g.p * g.q * g.k;
    Rng rng;
    rng_init(&rng, seed);
    float *sd = tu_falloc(ny), *x = tu_falloc(nx), *w = tu_falloc(nw), *r = tu_falloc(pqk), *xsum = tu_falloc(hwc);
    float *xsum2 = tu_falloc(hwc), *xsum_f = tu_falloc(hwc);
    double *rxsum = tu_dalloc(hwc);
    float *dx1 = tu_falloc(hwc), *dx1b = tu_falloc(hwc), *dw = tu_falloc(nw), *dwb = tu_falloc(nw);
    double *rdx = tu_dalloc(nx), *rdw = tu_dalloc(nw), *rdx1 = tu_dalloc(hwc), *rdw1 = tu_dalloc(nw);
    draw_structured(&rng, sd, rows, g.k, 0.2);
    for (size_t i = 0; i < nx; i++) x[i] = (float)rng_normal(&rng);
    for (size_t i = 0; i < pqk; i++) r[i] = (float)rng_normal(&rng);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(rng_normal(&rng) / sqrt((double)rsc));
    SparseGrad sg;
    assert_int_equal(sparse_init(&sg, g.n, g.p, g.q, g.k, ny), 0);
    assert_int_equal(sparse_from_dense(&sg, sd), 0);
    SparseVecWorkspace ws;
    assert_int_equal(sparse_vec_workspace_init(&ws, rsc, 0, bytes), 0);

    size_t allocs0 = mem_n_allocs();
    memset(dx1, 0xff, hwc * sizeof *dx1); /* overwritten, not accumulated */
    memset(dw, 0xff, nw * sizeof *dw);
    sparse_vec_conv_bwd_data_dense1(r, w, g, &ws, dx1);
    sparse_vec_conv_bwd_weights_reuse(&sg, x, r, g, &ws, xsum, dw);
    sparse_vec_conv_bwd_data_dense1(r, w, g, &ws, dx1b);
    sparse_vec_conv_bwd_weights_reuse(&sg, x, r, g, &ws, xsum2, dwb);
    assert_int_equal(mem_n_allocs(), allocs0);
    assert_memory_equal(dx1, dx1b, hwc * sizeof *dx1);
    assert_memory_equal(dw, dwb, nw * sizeof *dw);
    assert_memory_equal(xsum, xsum2, hwc * sizeof *xsum);

    for (size_t i = 0; i < nx; i++) rxsum[i % hwc] += x[i]; /* the batch sum of X */
    for (size_t i = 0; i < hwc; i++) xsum_f[i] = (float)rxsum[i];
    /* xsum is specified at the pixels some window reads (a strided 1x1 kernel skips the others) */
    memcpy(xsum2, xsum, hwc * sizeof *xsum);
    ref_zero_unread(g, xsum2, rxsum);
    snprintf(what, sizeof what, "%s threads %d bytes %zu: batch sum of X", cc->what, threads, bytes);
    assert_close_fd(what, xsum2, rxsum, hwc, 1e-6);
    ref_conv_bwd(r, w, xsum_f, g1, rdx1, rdw1); /* R's terms: one sample, over the batch sum */
    ref_conv_bwd(sd, w, x, g, rdx, rdw);      /* S's */
    for (size_t i = 0; i < nw; i++) rdw[i] += rdw1[i];
    snprintf(what, sizeof what, "%s threads %d bytes %zu: dx1 of R vs double", cc->what, threads, bytes);
    assert_close_fd(what, dx1, rdx1, hwc, TOL);
    snprintf(what, sizeof what, "%s threads %d bytes %zu: dW of S and R vs double", cc->what, threads, bytes);
    assert_close_fd(what, dw, rdw, nw, TOL);

    sparse_vec_workspace_deinit(&ws);
    sparse_deinit(&sg);
    mem_free(sd), mem_free(x), mem_free(w), mem_free(r), mem_free(xsum), mem_free(xsum2), mem_free(xsum_f);
    mem_free(rxsum);
    mem_free(dx1), mem_free(dx1b), mem_free(dw), mem_free(dwb);
    mem_free(rdx), mem_free(rdw), mem_free(rdx1), mem_free(rdw1);
    omp_set_num_threads(saved);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_reuse_terms(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 1; t <= 2; t++) {
            reuse_case(&cases[i], t, 0, 500 + i);
            reuse_case(&cases[i], t, 1, 600 + i); /* one R*S*C block: no room for private copies */
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_small_workspace),
        cmocka_unit_test(test_data_init),
        cmocka_unit_test(test_reuse_terms),
        cmocka_unit_test(test_blas_threads_restored),
        cmocka_unit_test(test_workspace_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
