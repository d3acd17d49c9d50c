/* test_sparse.c: the CSR sparse-gradient format (round trip, capacity errors) and the sparse conv
 * backward kernels of core/sparse_kernels.c, both the fast paths and the reference ones, against
 * oneDNN's dense backward (core/layer.h) on the same sparsified gradient S, for the conv kinds of
 * the models and for shapes that reach every fast-path variant (channel blocks, borders, strides,
 * channel splits); fast against reference; determinism with 1 and 2 threads; no leaks and no
 * allocation inside the kernels.
 *
 * Both sides are f32; oneDNN sums in a different order, so norm-relative tolerance 1e-4 (fast vs
 * reference: 1e-5). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/layer.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/sparse.h"
#include "core/sparse_kernels.h"
#include "tests/ref.h"
#include "tests/testutil.h"

#define TOL 1e-4
#define TOL_REF 1e-5


/* Each entry nonzero with probability density (normal value, never exactly 0), else 0.
 * Returns the number of nonzeros. */
static size_t draw_sparse(Rng *rng, float *s, size_t n, double density) {
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++) {
        s[i] = 0.0f;
        if (density >= 1.0 || rng_uniform(rng) < density) {
            float v = (float)rng_normal(rng);
            s[i] = v != 0.0f ? v : 1.0f;
            nnz++;
        }
    }
    return nnz;
}

static void draw_dense(Rng *rng, float *a, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(scale * rng_normal(rng));
}

/* ---- format ---------------------------------------------------------------------------------- */

static void round_trip(int n, int p, int q, int k, double density, uint64_t seed) {
    size_t base = mem_live_bytes();
    Rng rng;
    rng_init(&rng, seed);
    size_t total = (size_t)n * p * q * k;
    float *s = tu_falloc(total), *back = tu_falloc(total);
    size_t nnz = draw_sparse(&rng, s, total, density);
    SparseGrad sg;
    assert_int_equal(sparse_init(&sg, n, p, q, k, total), 0);
    assert_int_equal(sparse_from_dense(&sg, s), 0);
    assert_int_equal(sg.nnz, nnz);
    assert_int_equal(sg.row_ptr[0], 0);
    assert_int_equal(sg.row_ptr[(size_t)n * p * q], (int32_t)nnz);
    /* rows are monotone, channels strictly ascending within a row and in range */
    for (size_t i = 0; i < (size_t)n * p * q; i++) {
        assert_true(sg.row_ptr[i] <= sg.row_ptr[i + 1]);
        for (int32_t j = sg.row_ptr[i]; j < sg.row_ptr[i + 1]; j++) {
            assert_true(sg.chan[j] < k);
            if (j > sg.row_ptr[i]) assert_true(sg.chan[j] > sg.chan[j - 1]);
        }
    }
    assert_true(fabs(sparse_density(&sg) - (double)nnz / (double)total) < 1e-12);
    memset(back, 0xff, total * sizeof *back); /* to_dense must overwrite everything */
    sparse_to_dense(&sg, back);
    assert_memory_equal(back, s, total * sizeof *s);
    sparse_deinit(&sg);
    sparse_deinit(&sg); /* deinit twice is harmless */
    mem_free(s);
    mem_free(back);
    assert_int_equal(mem_live_bytes(), base);
}

static void test_round_trip(void **state) {
    round_trip(3, 5, 7, 16, 0.10, 1);
    round_trip(2, 4, 4, 200, 0.10, 2);
    round_trip(2, 3, 3, 8, 0.0, 3);
    round_trip(2, 3, 3, 8, 1.0, 4);
    round_trip(1, 1, 1, SPARSE_K_MAX, 0.10, 5); /* the largest channel index fits */
}

/* -0.0 counts as zero and is dropped; an exactly-sized capacity works; one less is ERR_SHAPE with a
 * message and leaves a valid empty gradient. */
static void test_capacity(void **state) {
    size_t base = mem_live_bytes();
    float s[2 * 2 * 2 * 3] = {0};
    s[1] = 1.5f;
    s[5] = -2.0f;
    s[6] = -0.0f;
    s[11] = 3.0f;
    SparseGrad sg;
    assert_int_equal(sparse_init(&sg, 2, 2, 1, 3, 3), 0); /* 12 entries: 4 pixels of 3 channels */
    assert_int_equal(sparse_from_dense(&sg, s), 0);
    assert_int_equal(sg.nnz, 3);
    sparse_deinit(&sg);

    assert_int_equal(sparse_init(&sg, 2, 2, 1, 3, 2), 0);
    TuCapture cap;
    int rc = 0;
    TU_CAPTURE(&cap, rc = sparse_from_dense(&sg, s));
    assert_int_equal(rc, ERR_SHAPE);
    assert_log_has(cap.text, "3 nonzeros");
    assert_log_has(cap.text, "nnz_cap 2");
    assert_int_equal(sg.nnz, 0);
    for (int i = 0; i <= 4; i++) assert_int_equal(sg.row_ptr[i], 0);
    float back[12];
    sparse_to_dense(&sg, back);
    for (int i = 0; i < 12; i++) assert_true(back[i] == 0.0f);
    sparse_deinit(&sg);

    /* zero capacity: fine for an all-zero gradient, ERR_SHAPE otherwise */
    assert_int_equal(sparse_init(&sg, 2, 2, 1, 3, 0), 0);
    float z[12] = {0};
    assert_int_equal(sparse_from_dense(&sg, z), 0);
    TU_CAPTURE(&cap, rc = sparse_from_dense(&sg, s));
    assert_int_equal(rc, ERR_SHAPE);
    sparse_deinit(&sg);
    assert_int_equal(mem_live_bytes(), base);
}

static void test_init_errors(void **state) {
    size_t base = mem_live_bytes();
    SparseGrad sg;
    TuCapture cap;
    int rc = 0;
    TU_CAPTURE(&cap, rc = sparse_init(&sg, 1, 1, 1, SPARSE_K_MAX + 1, 4));
    assert_int_equal(rc, ERR_SHAPE);
    assert_log_has(cap.text, "65535");
    assert_null(sg.row_ptr);
    TU_CAPTURE(&cap, rc = sparse_init(&sg, 0, 1, 1, 4, 4));
    assert_int_equal(rc, ERR_SHAPE);
    TU_CAPTURE(&cap, rc = sparse_init(&sg, 1, 1, 1, 4, (size_t)INT32_MAX + 1));
    assert_int_equal(rc, ERR_SHAPE);
    SparseWorkspace ws;
    TU_CAPTURE(&cap, rc = sparse_workspace_init(&ws, 2, 0, 0));
    assert_int_equal(rc, ERR_SHAPE);
    assert_null(ws.dw_priv);
    /* geometry checks */
    assert_int_equal(sparse_geom_check(sparse_geom(2, 3, 8, 8, 4, 3, 3, 1, 1)), 0);
    ConvGeom g = sparse_geom(2, 3, 8, 8, 4, 3, 3, 1, 1);
    g.p = 7;
    TU_CAPTURE(&cap, rc = sparse_geom_check(g));
    assert_int_equal(rc, ERR_SHAPE);
    TU_CAPTURE(&cap, rc = sparse_geom_check(sparse_geom(1, 2, 3, 3, 4, 5, 5, 1, 0)));
    assert_int_equal(rc, ERR_SHAPE);
    assert_int_equal(mem_live_bytes(), base);
}

/* ---- kernels against oneDNN ------------------------------------------------------------------ */

typedef struct {
    const char *what;
    int n, c, h, w, k, r, s, stride, pad;
} ConvCase;

static const ConvCase conv_cases[] = {
    {"3x3 s1 p1", 4, 16, 8, 8, 16, 3, 3, 1, 1},
    {"3x3 s2 p1 odd input", 4, 16, 9, 9, 32, 3, 3, 2, 1},
    {"1x1 s2 p0", 4, 16, 8, 8, 32, 1, 1, 2, 0},
    {"7x7 s2 p3 C=3 stem", 2, 3, 16, 16, 16, 7, 7, 2, 3},
    {"5x5 s1 p0", 3, 6, 12, 12, 8, 5, 5, 1, 0},
    {"wide 3x3 s1 p1 C=K=128 4x4", 2, 128, 4, 4, 128, 3, 3, 1, 1},
    /* fast-path variants */
    {"3x3 s1 p1 C=3 stem (row segments)", 2, 3, 10, 9, 20, 3, 3, 1, 1},
    {"3x3 s2 p1 C=3 odd input (row segments)", 2, 3, 9, 11, 7, 3, 3, 2, 1},
    {"3x3 s1 p1 C=64 K=48 (64-wide blocks)", 2, 64, 7, 6, 48, 3, 3, 1, 1},
    {"3x3 s1 p0 C=32 K=96 (no padding)", 2, 32, 6, 7, 96, 3, 3, 1, 0},
    {"3x3 s2 p1 C=64 K=80 (gather)", 3, 64, 8, 9, 80, 3, 3, 2, 1},
    {"3x3 s1 p1 C=256 K=96 (narrow blocks)", 1, 256, 5, 5, 96, 3, 3, 1, 1},
    {"3x3 s1 p2 C=16 K=3 (wide padding)", 3, 16, 5, 4, 3, 3, 3, 1, 2},
    {"1x1 s1 p0 C=128 K=40", 2, 128, 5, 5, 40, 1, 1, 1, 0},
    {"1x1 s1 p1 C=48 K=1 (padded 1x1)", 3, 48, 4, 5, 1, 1, 1, 1, 1},
    {"1x1 s2 p0 C=256 K=24", 2, 256, 6, 6, 24, 1, 1, 2, 0},
    {"5x5 s2 p2 C=32 (reference paths)", 2, 32, 9, 9, 16, 5, 5, 2, 2},
};
#define N_CONV_CASES (sizeof conv_cases / sizeof conv_cases[0])

/* KCRS <-> OHWI (K,R,S,C). */
static void kcrs_to_ohwi(const float *kcrs, float *ohwi, ConvGeom g) {
    for (int k = 0; k < g.k; k++)
        for (int c = 0; c < g.c; c++)
            for (int r = 0; r < g.r; r++)
                for (int s = 0; s < g.s; s++)
                    ohwi[(((size_t)k * g.r + r) * g.s + s) * g.c + c] = kcrs[(((size_t)k * g.c + c) * g.r + r) * g.s + s];
}
static void ohwi_to_kcrs(const float *ohwi, float *kcrs, ConvGeom g) {
    for (int k = 0; k < g.k; k++)
        for (int c = 0; c < g.c; c++)
            for (int r = 0; r < g.r; r++)
                for (int s = 0; s < g.s; s++)
                    kcrs[(((size_t)k * g.c + c) * g.r + r) * g.s + s] = ohwi[(((size_t)k * g.r + r) * g.s + s) * g.c + c];
}

static void to_double(const float *a, double *d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = a[i];
}

static void run_conv_case(const ConvCase *cc, double density, uint64_t seed) {
    size_t base = mem_live_bytes();
    char name[160];
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    Rng rng;
    rng_init(&rng, seed);

    LayerSpec spec = {.kind = LAYER_CONV, .in = {0, -1}, .out_c = cc->k, .kh = cc->r, .kw = cc->s,
                      .stride = cc->stride, .pad = cc->pad, .bias = false};
    snprintf(spec.name, sizeof spec.name, "conv");
    Dims4 in[2] = {{cc->n, cc->c, cc->h, cc->w}, {0, 0, 0, 0}};
    Layer *l = NULL;
    assert_int_equal(layer_create(&l, &spec, in, &ctx), 0);
    Dims4 out = layer_out_dims_of(l);
    ConvGeom g = sparse_geom(cc->n, cc->c, cc->h, cc->w, cc->k, cc->r, cc->s, cc->stride, cc->pad);
    assert_int_equal(sparse_geom_check(g), 0);
    assert_int_equal(out.h, g.p);
    assert_int_equal(out.w, g.q);
    assert_int_equal(out.c, g.k);

    size_t nx = dims_count(in[0]), ny = dims_count(out), nw = (size_t)g.k * g.c * g.r * g.s;
    float *x = tu_falloc(nx), *y = tu_falloc(ny), *dx = tu_falloc(nx), *dy = tu_falloc(ny);
    float *w_kcrs = tu_falloc(nw), *w_ohwi = tu_falloc(nw), *dw_dnnl = tu_falloc(nw);
    float *sdx = tu_falloc(nx), *sdw_ohwi = tu_falloc(nw), *sdw_kcrs = tu_falloc(nw);
    double *ref = tu_dalloc(nx > nw ? nx : nw);
    draw_dense(&rng, x, nx, 1.0);
    draw_dense(&rng, w_kcrs, nw, 1.0 / sqrt((double)g.c * g.r * g.s));
    assert_int_equal(layer_param_set(l, 0, w_kcrs), 0);
    kcrs_to_ohwi(w_kcrs, w_ohwi, g);
    float *xs[2] = {x, NULL}, *dxs[2] = {dx, NULL};
    assert_int_equal(layer_bind(l, xs, y, dxs, dy), 0);
    assert_int_equal(layer_forward(l, true), 0);
    size_t nnz = draw_sparse(&rng, dy, ny, density);
    assert_int_equal(layer_backward(l), 0);
    assert_int_equal(layer_grad_get(l, 0, dw_dnnl), 0);

    SparseGrad sg;
    SparseWorkspace ws;
    assert_int_equal(sparse_init(&sg, g.n, g.p, g.q, g.k, ny), 0);
    const size_t hwc = (size_t)g.h * g.w * g.c;
    assert_int_equal(sparse_workspace_init(&ws, 0, nw, hwc), 0);
    assert_int_equal(sparse_from_dense(&sg, dy), 0);
    assert_int_equal(sg.nnz, nnz);
    assert_true(nnz > 0);

    size_t allocs = mem_n_allocs();
    memset(sdx, 0xff, nx * sizeof *sdx); /* overwritten, not accumulated */
    memset(sdw_ohwi, 0xff, nw * sizeof *sdw_ohwi);
    sparse_conv_bwd_data(&sg, w_ohwi, g, sdx);
    sparse_conv_bwd_weights(&sg, x, g, &ws, sdw_ohwi);
    assert_int_equal(mem_n_allocs(), allocs);

    to_double(dx, ref, nx);
    snprintf(name, sizeof name, "%s density %.2f: dX", cc->what, density);
    assert_close_fd(name, sdx, ref, nx, TOL);
    ohwi_to_kcrs(sdw_ohwi, sdw_kcrs, g);
    to_double(dw_dnnl, ref, nw);
    snprintf(name, sizeof name, "%s density %.2f: dW", cc->what, density);
    assert_close_fd(name, sdw_kcrs, ref, nw, TOL);

    /* the reference kernels: against oneDNN, and the fast ones against them */
    float *rdx = tu_falloc(nx), *rdw = tu_falloc(nw);
    memset(rdx, 0xff, nx * sizeof *rdx);
    memset(rdw, 0xff, nw * sizeof *rdw);
    allocs = mem_n_allocs();
    sparse_conv_bwd_data_ref(&sg, w_ohwi, g, rdx);
    sparse_conv_bwd_weights_ref(&sg, x, g, &ws, rdw);
    assert_int_equal(mem_n_allocs(), allocs);
    to_double(dx, ref, nx);
    snprintf(name, sizeof name, "%s density %.2f: reference dX", cc->what, density);
    assert_close_fd(name, rdx, ref, nx, TOL);
    to_double(rdx, ref, nx);
    snprintf(name, sizeof name, "%s density %.2f: fast dX vs reference", cc->what, density);
    assert_close_fd(name, sdx, ref, nx, TOL_REF);
    to_double(rdw, ref, nw);
    snprintf(name, sizeof name, "%s density %.2f: fast dW vs reference", cc->what, density);
    assert_close_fd(name, sdw_ohwi, ref, nw, TOL_REF);
    ohwi_to_kcrs(rdw, sdw_kcrs, g);
    to_double(dw_dnnl, ref, nw);
    snprintf(name, sizeof name, "%s density %.2f: reference dW", cc->what, density);
    assert_close_fd(name, sdw_kcrs, ref, nw, TOL);
    /* the other split of the fast bwd_weights (channels instead of samples, or the reverse) */
    size_t split = ws.split_samples_bytes;
    ws.split_samples_bytes = nw * sizeof(float) <= split ? 0 : nw * sizeof(float);
    memset(sdw_ohwi, 0xff, nw * sizeof *sdw_ohwi);
    allocs = mem_n_allocs();
    sparse_conv_bwd_weights(&sg, x, g, &ws, sdw_ohwi);
    assert_int_equal(mem_n_allocs(), allocs);
    ws.split_samples_bytes = split;
    to_double(rdw, ref, nw);
    snprintf(name, sizeof name, "%s density %.2f: fast dW (other split) vs reference", cc->what, density);
    assert_close_fd(name, sdw_ohwi, ref, nw, TOL_REF);
    /* blocks of a few rows (a block has at most ent_cap / K rows): block boundaries everywhere, both splits */
    size_t ent_cap = ws.ent_cap;
    ws.ent_cap = 3 * (size_t)g.k + 2;
    for (int sp = 0; sp < 2; sp++) {
        ws.split_samples_bytes = sp ? 0 : split;
        memset(sdw_ohwi, 0xff, nw * sizeof *sdw_ohwi);
        allocs = mem_n_allocs();
        sparse_conv_bwd_weights(&sg, x, g, &ws, sdw_ohwi);
        assert_int_equal(mem_n_allocs(), allocs);
        snprintf(name, sizeof name, "%s density %.2f: fast dW (3-row blocks, %s split) vs reference", cc->what,
                 density, sp ? "channel" : "default");
        assert_close_fd(name, sdw_ohwi, ref, nw, TOL_REF);
    }
    ws.ent_cap = ent_cap;
    ws.split_samples_bytes = split;

    /* the batch sum of X beside dW: in the sample split it is taken block by block (also with
     * 3-row blocks, so the sum's cursor crosses rows and samples mid-block), elsewhere in a pass of
     * its own; against double at every pixel some window reads, and dW unchanged by it */
    float *xsum = tu_falloc(hwc);
    double *rsum = tu_dalloc(hwc);
    for (size_t i = 0; i < nx; i++) rsum[i % hwc] += x[i];
    ref_zero_unread(g, NULL, rsum); /* pixels no window reads are not specified: 0 on both sides */
    for (int v = 0; v < 4; v++) {
        ws.split_samples_bytes = v & 1 ? 0 : split;
        ws.ent_cap = v & 2 ? 3 * (size_t)g.k + 2 : ent_cap;
        memset(xsum, 0xff, hwc * sizeof *xsum);
        memset(sdw_ohwi, 0xff, nw * sizeof *sdw_ohwi);
        allocs = mem_n_allocs();
        sparse_conv_bwd_weights_xsum(&sg, x, g, &ws, sdw_ohwi, xsum);
        assert_int_equal(mem_n_allocs(), allocs);
        snprintf(name, sizeof name, "%s density %.2f: fast dW with the batch sum (variant %d) vs reference", cc->what,
                 density, v);
        assert_close_fd(name, sdw_ohwi, ref, nw, TOL_REF);
        ref_zero_unread(g, xsum, NULL);
        snprintf(name, sizeof name, "%s density %.2f: batch sum of X (variant %d)", cc->what, density, v);
        assert_close_fd(name, xsum, rsum, hwc, 1e-6);
    }
    ws.ent_cap = ent_cap;
    ws.split_samples_bytes = split;
    mem_free(xsum);
    mem_free(rsum);
    mem_free(rdx);
    mem_free(rdw);

    sparse_workspace_deinit(&ws);
    sparse_deinit(&sg);
    float *bufs[] = {x, y, dx, dy, w_kcrs, w_ohwi, dw_dnnl, sdx, sdw_ohwi, sdw_kcrs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) mem_free(bufs[i]);
    mem_free(ref);
    layer_destroy(l);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

static void test_conv_case(void **state) {
    const ConvCase *cc = *state;
    run_conv_case(cc, 0.10, 11 + (uint64_t)(cc - conv_cases));
    run_conv_case(cc, 0.05, 101 + (uint64_t)(cc - conv_cases));
    run_conv_case(cc, 0.60, 201 + (uint64_t)(cc - conv_cases)); /* long rows (many nonzeros per pixel) */
}

/* sparse_conv_bwd_data_init: each sample's dx starts from dx0, i.e. equals the plain kernel plus the
 * broadcast dx0, for the tile form (stride 1), the gather form (stride 2, 1x1) and the reference
 * kernel (C not a multiple of 16). */
static void check_init(ConvGeom g, uint64_t seed) {
    size_t base = mem_live_bytes();
    Rng rng;
    rng_init(&rng, seed);
    size_t sample = (size_t)g.h * g.w * g.c, nx = (size_t)g.n * sample, ny = (size_t)g.n * g.p * g.q * g.k;
    size_t nw = (size_t)g.k * g.r * g.s * g.c;
    float *w = tu_falloc(nw), *s = tu_falloc(ny), *dx0 = tu_falloc(sample), *a = tu_falloc(nx), *b = tu_falloc(nx);
    draw_dense(&rng, w, nw, 0.1);
    draw_dense(&rng, dx0, sample, 1.0);
    draw_sparse(&rng, s, ny, 0.1);
    SparseGrad sg;
    assert_int_equal(sparse_init(&sg, g.n, g.p, g.q, g.k, ny), 0);
    assert_int_equal(sparse_from_dense(&sg, s), 0);
    sparse_conv_bwd_data(&sg, w, g, a);
    for (size_t i = 0; i < nx; i++) a[i] += dx0[i % sample];
    double *want = tu_dalloc(nx);
    to_double(a, want, nx);
    size_t allocs = mem_n_allocs();
    sparse_conv_bwd_data_init(&sg, w, g, dx0, b);
    assert_int_equal(mem_n_allocs(), allocs);
    assert_close_fd("bwd_data_init vs bwd_data + broadcast dx0", b, want, nx, 1e-6);
    sparse_conv_bwd_data_init(&sg, w, g, NULL, b); /* NULL: from zero, as the plain kernel */
    sparse_conv_bwd_data(&sg, w, g, a);
    assert_memory_equal(a, b, nx * sizeof *a);
    sparse_deinit(&sg);
    mem_free(w), mem_free(s), mem_free(dx0), mem_free(a), mem_free(b), mem_free(want);
    assert_int_equal(mem_live_bytes(), base);
}

static void test_bwd_data_init(void **state) {
    check_init(sparse_geom(4, 32, 8, 8, 32, 3, 3, 1, 1), 11);   /* tile form */
    check_init(sparse_geom(4, 64, 9, 9, 128, 3, 3, 2, 1), 12);  /* gather form */
    check_init(sparse_geom(4, 64, 8, 8, 128, 1, 1, 2, 0), 13);  /* 1x1 */
    check_init(sparse_geom(3, 6, 12, 12, 8, 5, 5, 1, 0), 14);   /* reference kernel */
}

/* Two calls with 2 threads give identical bits (dX and dW), and neither allocates; so does 1 thread
 * running the same slots, and (channel split of the fast bwd_weights) another slot count. An
 * all-zero gradient gives zero dX and dW (the outputs are overwritten). */
static void test_determinism(void **state) {
    size_t base = mem_live_bytes();
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    Rng rng;
    rng_init(&rng, 77);
    ConvGeom g = sparse_geom(8, 64, 8, 8, 40, 3, 3, 1, 1);
    size_t nx = (size_t)g.n * g.h * g.w * g.c, ny = (size_t)g.n * g.p * g.q * g.k, nw = (size_t)g.k * g.r * g.s * g.c;
    float *x = tu_falloc(nx), *w = tu_falloc(nw), *s = tu_falloc(ny);
    float *dx1 = tu_falloc(nx), *dx2 = tu_falloc(nx), *dw1 = tu_falloc(nw), *dw2 = tu_falloc(nw);
    draw_dense(&rng, x, nx, 1.0);
    draw_dense(&rng, w, nw, 0.1);
    draw_sparse(&rng, s, ny, 0.1);
    SparseGrad sg;
    SparseWorkspace ws;
    assert_int_equal(sparse_init(&sg, g.n, g.p, g.q, g.k, ny), 0);
    assert_int_equal(sparse_workspace_init(&ws, 0, nw, (size_t)g.h * g.w * g.c), 0);
    assert_int_equal(ws.n_slots, 2);
    assert_int_equal(sparse_from_dense(&sg, s), 0);
    size_t allocs = mem_n_allocs();
    sparse_conv_bwd_data(&sg, w, g, dx1);
    sparse_conv_bwd_weights(&sg, x, g, &ws, dw1);
    sparse_conv_bwd_data(&sg, w, g, dx2);
    sparse_conv_bwd_weights(&sg, x, g, &ws, dw2);
    assert_int_equal(mem_n_allocs(), allocs);
    assert_memory_equal(dx1, dx2, nx * sizeof *dx1);
    assert_memory_equal(dw1, dw2, nw * sizeof *dw1);
    /* with one thread running the same 2 slots: still the same bits */
    omp_set_num_threads(1);
    sparse_conv_bwd_data(&sg, w, g, dx2);
    sparse_conv_bwd_weights(&sg, x, g, &ws, dw2);
    assert_memory_equal(dx1, dx2, nx * sizeof *dx1);
    assert_memory_equal(dw1, dw2, nw * sizeof *dw1);
    omp_set_num_threads(2);
    /* the channel split does not depend on n_slots either */
    SparseWorkspace ws3;
    assert_int_equal(sparse_workspace_init(&ws3, 3, nw, 0), 0);
    ws.split_samples_bytes = ws3.split_samples_bytes = 0;
    sparse_conv_bwd_weights(&sg, x, g, &ws, dw1);
    sparse_conv_bwd_weights(&sg, x, g, &ws3, dw2);
    assert_memory_equal(dw1, dw2, nw * sizeof *dw1);
    sparse_workspace_deinit(&ws3);

    memset(s, 0, ny * sizeof *s);
    assert_int_equal(sparse_from_dense(&sg, s), 0);
    assert_int_equal(sg.nnz, 0);
    sparse_conv_bwd_data(&sg, w, g, dx1);
    sparse_conv_bwd_weights(&sg, x, g, &ws, dw1);
    for (size_t i = 0; i < nx; i++) assert_true(dx1[i] == 0.0f);
    for (size_t i = 0; i < nw; i++) assert_true(dw1[i] == 0.0f);

    sparse_workspace_deinit(&ws);
    sparse_deinit(&sg);
    float *bufs[] = {x, w, s, dx1, dx2, dw1, dw2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) mem_free(bufs[i]);
    omp_set_num_threads(saved);
    assert_int_equal(mem_live_bytes(), base);
}

int main(void) {
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_bwd_data_init),
    };
    enum { N_FIXED = sizeof fixed / sizeof fixed[0] };
    struct CMUnitTest tests[N_FIXED + N_CONV_CASES];
    for (size_t i = 0; i < N_FIXED; i++) tests[i] = fixed[i];
    for (size_t i = 0; i < N_CONV_CASES; i++)
        tests[N_FIXED + i] = (struct CMUnitTest){conv_cases[i].what, test_conv_case, NULL, NULL, (void *)&conv_cases[i]};
    return _cmocka_run_group_tests("sparse", tests, N_FIXED + N_CONV_CASES, NULL, NULL);
}
