/* test_resprop_vec.c: the structured ReSprop variant resprop-vec (baselines/resprop_vec.c): the
 * per-vector decision on hand-made tensors (exact numbers below) and against a double-precision
 * reference on random ones, dense fallback steps, the controller steering the density to its target,
 * the fused CSR path (== the dense S, structured rows, any thread count, no allocation), checkpoint
 * round trip (and blobs not crossing with resprop), option errors. */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "baselines/resprop.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/model.h"
#include "core/net.h"
#include "core/sparse.h"

static const Scheme *const VEC = &scheme_resprop_vec;

/* ---- helpers ------------------------------------------------------------------------------------ */

static void opts_default(ResPropOptions *o) {
    memset(o, 0, sizeof *o);
    assert_int_equal(config_defaults(VEC->options, o), 0);
}

static void opts_set(ResPropOptions *o, const char *key, const char *value) {
    assert_int_equal(config_set(VEC->options, o, NULL, key, value, "test"), 0);
}

static SchemeStep step_at(long step, long spe, long total, uint64_t seed) {
    SchemeStep st;
    memset(&st, 0, sizeof st);
    st.step = step;
    st.epoch = (int)(step / spe);
    st.step_in_epoch = step % spe;
    st.steps_per_epoch = spe;
    st.total_steps = total;
    st.layer = 2;
    rng_init(&st.rng, seed);
    return st;
}

static void *create(const ResPropOptions *o, GradShape sh, double rs) {
    void *state = NULL;
    assert_int_equal(VEC->layer_create(&state, o, sh, rs), 0);
    assert_non_null(state);
    return state;
}

/* A step writing the dense S into s (csr NULL) or S into csr (s then must stay untouched). */
static void run_step(void *state, const ResPropOptions *o, const SchemeStep *st, const float *g, float *s,
                     SparseGrad *csr, SchemeOut *out) {
    memset(out, 0, sizeof *out);
    out->g = g;
    out->s = s;
    out->csr = csr;
    assert_int_equal(VEC->sparsify(state, o, st, out), 0);
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
}

/* G whose positions have very different magnitudes (log-uniform scale over 1e-3..1e1), so a
 * threshold on the RMS can select any fraction of them. */
static void fill_scaled(float *x, GradShape sh, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    size_t rows = (size_t)sh.n * sh.p * sh.q;
    for (size_t i = 0; i < rows; i++) {
        double scale = pow(10.0, -3.0 + 4.0 * rng_uniform(&r));
        for (int k = 0; k < sh.k; k++) x[i * sh.k + k] = (float)(scale * rng_normal(&r));
    }
}

static void assert_dense_step(const SchemeOut *out, const float *g, size_t count) {
    assert_true(out->dense);
    assert_null(out->r);
    assert_true(out->density == 1.0);
    assert_false(out->csr_written);
    assert_memory_equal(out->s, g, count * sizeof(float));
}

/* ---- table and options -------------------------------------------------------------------------- */

static void test_vec_table(void **state) {
    (void)state;
    assert_string_equal(VEC->name, "resprop-vec");
    assert_true(scheme_find("resprop-vec") == VEC); /* registered */
    assert_true(VEC->options == scheme_resprop.options); /* the same keys */
    assert_int_equal(VEC->cfg_size, sizeof(ResPropOptions));
    assert_non_null(VEC->state_bytes);
    ResPropOptions o;
    opts_default(&o);
    assert_false(VEC->wants_fc(&o));
    opts_set(&o, "fc", "true");
    assert_true(VEC->wants_fc(&o));
    VEC->layer_destroy(NULL);
}

static void test_vec_bad_options(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    GradShape sh = {2, 2, 2, 4};
    ResPropOptions o;
    void *st = NULL;
    TuCapture cap;
    int rc = 0;
    static const struct {
        const char *key, *value, *needle;
    } bad[] = {
        {"warmup", "fraction:0", "warmup"},
        {"warmup", "sometimes", "warmup"},
        {"tau_init", "2", "tau_init"},
        {"tau_min", "0.5", "tau_init"}, /* tau_init 1e-7 below tau_min */
        {"tau_max", "1e-9", "tau_min"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        opts_default(&o);
        opts_set(&o, bad[i].key, bad[i].value);
        st = (void *)&o;
        TU_CAPTURE(&cap, rc = VEC->layer_create(&st, &o, sh, 0.9));
        assert_int_equal(rc, ERR_CONFIG);
        assert_null(st);
        assert_log_has(cap.text, bad[i].needle);
    }
    opts_default(&o);
    strcpy(o.sample, "median"); /* past the table's own check */
    TU_CAPTURE(&cap, rc = VEC->layer_create(&st, &o, sh, 0.9));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(cap.text, "scheme resprop-vec: key 'sample'");
    opts_default(&o);
    TU_CAPTURE(&cap, rc = VEC->layer_create(&st, &o, sh, 1.0));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(cap.text, "resprop-vec");
    TU_CAPTURE(&cap, rc = VEC->layer_create(&st, &o, (GradShape){2, 0, 2, 4}, 0.9));
    assert_int_equal(rc, ERR_SHAPE);
    assert_null(st);
    assert_int_equal(config_set(VEC->options, &o, NULL, "vector", "1", "test"), ERR_CONFIG);
    assert_int_equal(mem_live_bytes(), live0);
}

/* ---- the decision ------------------------------------------------------------------------------- */

static void test_vec_decide(void **state) {
    (void)state;
    const float r[4] = {0.25f, -0.5f, 1.0f, 0.0f};
    float g[4], d[4];
    /* d = (0.5, 0.5, 0.5, 0.5): RMS exactly 0.5, strict comparison */
    for (int k = 0; k < 4; k++) g[k] = r[k] + 0.5f;
    assert_false(resprop_vec_decide(g, r, 4, 0.5, d));
    for (int k = 0; k < 4; k++) assert_true(d[k] == 0.5f);
    assert_true(resprop_vec_decide(g, r, 4, 0.49999, d));
    /* d = (3, 4, 0, 0): RMS sqrt(25 / 4) = 2.5 */
    g[0] = r[0] + 3.0f;
    g[1] = r[1] + 4.0f;
    g[2] = r[2];
    g[3] = r[3];
    assert_true(resprop_vec_decide(g, r, 4, 2.4999, d));
    assert_false(resprop_vec_decide(g, r, 4, 2.5, d));
    assert_true(d[0] == 3.0f && d[1] == 4.0f && d[2] == 0.0f && d[3] == 0.0f);
    /* K = 1: |d| > tau */
    assert_true(resprop_vec_decide(g, r, 1, 2.9, d));
    assert_false(resprop_vec_decide(g, r, 1, 3.0, d));
    /* d = 0: never active */
    assert_false(resprop_vec_decide(r, r, 4, 1e-30, d));
}

/* The exact case: N=2, P=1, Q=3, K=4, R = r0 (every sample of the first step equals it), tau 0.5.
 * The differences d of the second step, their RMS and the decision, by hand:
 *   (0,0,0)  ( 0.5,  0.5,  0.5,   0.5  )  RMS 0.5       reuse (not > 0.5)
 *   (0,0,1)  ( 1,    0,    0,    -1    )  RMS 0.7071    active, S keeps the two zeros
 *   (0,0,2)  ( 0,    0,    0,     0    )  RMS 0         reuse
 *   (1,0,0)  (-2,    0,    0,     0    )  RMS 1         active
 *   (1,0,1)  ( 0.25, 0.25, -0.25, 0.25 )  RMS 0.25      reuse
 *   (1,0,2)  ( 0.5,  0.5,  0.5,   0.625)  RMS 0.532     active
 * density = 3 * 4 / 24 = 0.5; the target 0.3 (RS 0.75, margin 0.05) is below it: tau doubles. */
static void test_vec_exact(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { N = 2, M = 12, CNT = N * M };
    GradShape sh = {N, 1, 3, 4};
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "tau_init", "0.5");
    static const float delta[CNT] = {
        0.5f, 0.5f, 0.5f, 0.5f, 1.0f, 0.0f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f,
        -2.0f, 0.0f, 0.0f, 0.0f, 0.25f, 0.25f, -0.25f, 0.25f, 0.5f, 0.5f, 0.5f, 0.625f,
    };
    static const float want[CNT] = {
        0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f,
        -2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.5f, 0.5f, 0.5f, 0.625f,
    };
    float r0[M], g0[CNT], g1[CNT], s[CNT], back[CNT];
    for (int j = 0; j < M; j++) r0[j] = (float)(j - 5) * 0.125f;
    for (int i = 0; i < CNT; i++) {
        g0[i] = r0[i % M];
        g1[i] = r0[i % M] + delta[i];
    }
    for (int pass = 0; pass < 2; pass++) { /* dense S, then the fused CSR */
        void *st = create(&o, sh, 0.75);
        SparseGrad csr;
        assert_int_equal(sparse_init(&csr, N, 1, 3, 4, CNT), 0);
        SparseGrad *c = pass ? &csr : NULL;
        SchemeOut out;
        SchemeStep ss = step_at(0, 100, 1000, 3);
        run_step(st, &o, &ss, g0, s, c, &out);
        assert_dense_step(&out, g0, CNT);
        ss = step_at(1, 100, 1000, 4);
        for (int i = 0; i < CNT; i++) s[i] = 99.0f;
        run_step(st, &o, &ss, g1, s, c, &out);
        assert_false(out.dense);
        assert_memory_equal(out.r, r0, sizeof r0);
        assert_true(out.density == 0.5);
        assert_true(out.tau == 0.5);
        if (pass == 0) {
            assert_false(out.csr_written);
            assert_memory_equal(s, want, sizeof want);
        } else {
            assert_true(out.csr_written);
            assert_true(out.structured);
            for (int i = 0; i < CNT; i++) assert_true(s[i] == 99.0f);
            assert_int_equal(csr.nnz, 12); /* three full rows, the zeros inside them included */
            static const int32_t row_ptr[7] = {0, 0, 4, 4, 8, 8, 12};
            assert_memory_equal(csr.row_ptr, row_ptr, sizeof row_ptr);
            size_t n_full = 0;
            assert_true(sparse_rows_structured(&csr, &n_full));
            assert_int_equal(n_full, 3);
            sparse_to_dense(&csr, back);
            assert_memory_equal(back, want, sizeof want);
        }
        /* density 0.5 > target 0.3: tau doubles */
        ss = step_at(2, 100, 1000, 5);
        run_step(st, &o, &ss, g1, s, c, &out);
        assert_true(out.tau == 1.0);
        sparse_deinit(&csr);
        VEC->layer_destroy(st);
    }
    assert_int_equal(mem_live_bytes(), live0);
}

/* Random G against a reference in double: R = G[x] of the previous step (x the first draw of its
 * stream), active where the RMS of d exceeds tau, S = d there; the tau chain of the controller. */
static void test_vec_reference(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    GradShape sh = {4, 5, 3, 24};
    const size_t m = grad_sample(sh), cnt = grad_count(sh), rows = (size_t)sh.n * sh.p * sh.q;
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "tau_init", "0.01");
    void *st = create(&o, sh, 0.6); /* target 0.45 */
    float *g = mem_alloc(2 * cnt * sizeof(float)), *s = mem_alloc(cnt * sizeof(float));
    assert_true(g && s);
    float *prev = g + cnt;
    double tau = 0.01;
    for (int k = 0; k < 12; k++) {
        if (k > 0) memcpy(prev, g, cnt * sizeof(float));
        fill_scaled(g, sh, 200 + (uint64_t)k);
        SchemeStep ss = step_at(k, 1000, 10000, 70 + (uint64_t)k);
        SchemeOut out;
        run_step(st, &o, &ss, g, s, NULL, &out);
        if (k == 0) continue;
        SchemeStep before = step_at(k - 1, 1000, 10000, 70 + (uint64_t)(k - 1));
        Rng rr = before.rng;
        const float *r = prev + (size_t)rng_below(&rr, (uint64_t)sh.n) * m;
        assert_memory_equal(out.r, r, m * sizeof(float));
        assert_true(out.tau == tau);
        size_t active = 0;
        for (size_t i = 0; i < rows; i++) {
            const float *gi = g + i * sh.k, *ri = r + (i % ((size_t)sh.p * sh.q)) * sh.k;
            double ss2 = 0.0;
            for (int c = 0; c < sh.k; c++) {
                double d = (double)(gi[c] - ri[c]);
                ss2 += d * d;
            }
            double rms = sqrt(ss2 / sh.k);
            if (fabs(rms - tau) <= 1e-12 * tau) continue; /* a tie in rounding: either is right */
            bool on = rms > tau;
            active += on;
            for (int c = 0; c < sh.k; c++) {
                float want = on ? gi[c] - ri[c] : 0.0f;
                if (s[i * sh.k + c] != want)
                    fail_msg("step %d row %zu chan %d: got %g, want %g", k, i, c, (double)s[i * sh.k + c],
                             (double)want);
            }
        }
        assert_true(out.density == (double)(active * sh.k) / (double)cnt);
        tau = resprop_controller(tau, out.density, 0.45, 1e-30, 1.0);
    }
    mem_free(g);
    mem_free(s);
    VEC->layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

/* ---- schedule and controller -------------------------------------------------------------------- */

/* Dense steps: the first of the run and, with reset_each_epoch, the first and last of each epoch:
 * s == g even when a CSR is offered (csr_written false), r NULL, tau untouched. */
static void test_vec_dense_steps(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { SPE = 4, EPOCHS = 3 };
    GradShape sh = {3, 2, 2, 5};
    const size_t cnt = grad_count(sh);
    for (int reset = 0; reset <= 1; reset++) {
        ResPropOptions o;
        opts_default(&o);
        opts_set(&o, "warmup", "none");
        opts_set(&o, "reset_each_epoch", reset ? "true" : "false");
        opts_set(&o, "tau_init", "0.1");
        void *st = create(&o, sh, 0.9);
        float g[60], s[60];
        SparseGrad csr;
        assert_int_equal(sparse_init(&csr, 3, 2, 2, 5, cnt), 0);
        int n_dense = 0;
        double tau = 0.1;
        for (long k = 0; k < SPE * EPOCHS; k++) {
            fill_normal(g, cnt, 10 + (uint64_t)k);
            SchemeStep ss = step_at(k, SPE, SPE * EPOCHS, 30 + (uint64_t)k);
            SchemeOut out;
            run_step(st, &o, &ss, g, s, (k & 1) ? &csr : NULL, &out);
            long in_ep = k % SPE;
            bool want_dense = k == 0 || (reset && (in_ep == 0 || in_ep == SPE - 1));
            assert_true(out.tau == tau);
            if (want_dense) {
                assert_dense_step(&out, g, cnt);
                n_dense++;
            } else {
                assert_false(out.dense);
                assert_non_null(out.r);
                assert_true(out.csr_written == ((k & 1) != 0));
                tau = resprop_controller(tau, out.density, 0.15, 1e-30, 1.0);
            }
        }
        assert_int_equal(n_dense, reset ? 2 * EPOCHS : 1);
        sparse_deinit(&csr);
        VEC->layer_destroy(st);
    }
    assert_int_equal(mem_live_bytes(), live0);
}

/* The controller steers the density: from tau_init 1e-7 (everything active) toward the target
 * 0.25 (RS 0.8, margin 0.05) on G with spread-out position magnitudes: the warm-up keeps it at 1;
 * after the transient the density stays below 0.6 and its mean is near the target (a single step
 * varies a lot: a pixel where the stored R is large is active in every sample). */
static void test_vec_controller(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    GradShape sh = {8, 6, 6, 16};
    const size_t cnt = grad_count(sh);
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "fraction:0.5"); /* steps 0..21 of 100: target 1 */
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "tau_max", "1e3"); /* above the RMS of the largest positions */
    void *st = create(&o, sh, 0.8);
    float *g = mem_alloc(cnt * sizeof(float)), *s = mem_alloc(cnt * sizeof(float));
    assert_true(g && s);
    double sum_late = 0.0;
    int n_late = 0;
    for (long k = 0; k < 100; k++) {
        fill_scaled(g, sh, 500 + (uint64_t)k);
        SchemeStep ss = step_at(k, 1000, 100, 800 + (uint64_t)k);
        SchemeOut out;
        run_step(st, &o, &ss, g, s, NULL, &out);
        if (k >= 1 && k < 22) assert_true(out.density > 0.9); /* warm-up: tau at tau_min */
        if (k >= 50) {
            assert_true(out.density < 0.6);
            sum_late += out.density;
            n_late++;
        }
    }
    double mean = sum_late / n_late;
    assert_true(mean > 0.15 && mean < 0.35);
    mem_free(g);
    mem_free(s);
    VEC->layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

/* ---- the fused CSR path ------------------------------------------------------------------------- */

/* Two states, dense S and fused CSR, over the same inputs and `threads` threads: the CSR expands to
 * exactly the dense S, its rows are structured with density * rows full ones, nothing allocates. */
static void check_fused(GradShape sh, int threads) {
    size_t live0 = mem_live_bytes();
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    const size_t cnt = grad_count(sh), rows = (size_t)sh.n * sh.p * sh.q;
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "tau_init", "0.05");
    void *a = create(&o, sh, 0.5), *b = create(&o, sh, 0.5);
    float *g = mem_alloc(cnt * sizeof(float)), *sa = mem_alloc(cnt * sizeof(float));
    float *sb = mem_alloc(cnt * sizeof(float)), *back = mem_alloc(cnt * sizeof(float));
    assert_true(g && sa && sb && back);
    SparseGrad csr;
    assert_int_equal(sparse_init(&csr, sh.n, sh.p, sh.q, sh.k, cnt), 0);
    size_t allocs0 = mem_n_allocs();
    int n_sparse = 0;
    for (long k = 0; k < 8; k++) {
        fill_scaled(g, sh, 900 + (uint64_t)k);
        SchemeStep ss = step_at(k, 5, 8, 60 + (uint64_t)k);
        SchemeOut oa, ob;
        run_step(a, &o, &ss, g, sa, NULL, &oa);
        run_step(b, &o, &ss, g, sb, &csr, &ob);
        assert_true(oa.dense == ob.dense && oa.density == ob.density && oa.tau == ob.tau);
        if (oa.dense) {
            assert_false(ob.csr_written);
            continue;
        }
        n_sparse++;
        assert_false(oa.csr_written);
        assert_true(ob.csr_written && ob.structured);
        size_t n_full = 0;
        assert_true(sparse_rows_structured(&csr, &n_full));
        assert_true(n_full * sh.k == csr.nnz);
        assert_true(ob.density == (double)csr.nnz / (double)cnt);
        assert_true(n_full <= rows);
        sparse_to_dense(&csr, back);
        assert_memory_equal(back, sa, cnt * sizeof(float));
    }
    assert_int_equal(mem_n_allocs(), allocs0);
    assert_true(n_sparse >= 4);
    sparse_deinit(&csr);
    mem_free(g);
    mem_free(sa);
    mem_free(sb);
    mem_free(back);
    VEC->layer_destroy(a);
    VEC->layer_destroy(b);
    omp_set_num_threads(saved);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_vec_fused(void **state) {
    (void)state;
    static const GradShape shapes[] = {{3, 2, 3, 3}, {2, 4, 4, 16}, {5, 3, 3, 21}, {1, 2, 2, 8}, {8, 16, 16, 17}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 1; t <= 2; t++) check_fused(shapes[i], t);
}

/* A CSR without room for the slot-writer protocol is ERR_SHAPE. */
static void test_vec_fused_error(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    GradShape sh = {2, 2, 2, 4};
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    void *st = create(&o, sh, 0.5);
    float g[32] = {0}, s[32];
    SparseGrad small;
    assert_int_equal(sparse_init(&small, 2, 2, 2, 4, 31), 0);
    SchemeOut out;
    SchemeStep ss = step_at(0, 10, 100, 1);
    run_step(st, &o, &ss, g, s, &small, &out); /* dense: the CSR is not used */
    ss = step_at(1, 10, 100, 2);
    memset(&out, 0, sizeof out);
    out.g = g;
    out.s = s;
    out.csr = &small;
    TuCapture cap;
    int rc = 0;
    TU_CAPTURE(&cap, rc = VEC->sparsify(st, &o, &ss, &out));
    assert_int_equal(rc, ERR_SHAPE);
    assert_log_has(cap.text, "nnz_cap");
    sparse_deinit(&small);
    VEC->layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

/* ---- checkpointing ------------------------------------------------------------------------------ */

static void test_vec_state_roundtrip(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { STEPS = 12, SPE = 5, MID = 7 };
    GradShape sh = {3, 2, 3, 4};
    const size_t cnt = grad_count(sh), m = grad_sample(sh);
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "sample", "batchmean");
    opts_set(&o, "tau_init", "1e-2");
    void *a = create(&o, sh, 0.9), *b = create(&o, sh, 0.9);
    float *g = mem_alloc(cnt * sizeof(float)), *sa = mem_alloc(cnt * sizeof(float));
    float *sb = mem_alloc(cnt * sizeof(float));
    assert_true(g && sa && sb);
    size_t bytes = VEC->state_bytes(b);
    unsigned char *blob = mem_alloc(bytes), *blob2 = mem_alloc(bytes);
    assert_true(blob && blob2);
    for (long k = 0; k < STEPS; k++) {
        if (k == MID) {
            VEC->state_save(b, blob);
            VEC->layer_destroy(b);
            b = create(&o, sh, 0.9);
            TuCapture cap;
            int rc = 0;
            TU_CAPTURE(&cap, rc = VEC->state_load(b, blob, bytes - 4));
            assert_int_equal(rc, ERR_FORMAT);
            /* resprop's blob of the same shape and size is refused (another magic), and vice versa */
            void *rp = NULL;
            assert_int_equal(scheme_resprop.layer_create(&rp, &o, sh, 0.9), 0);
            assert_int_equal(scheme_resprop.state_bytes(rp), bytes);
            TU_CAPTURE(&cap, rc = scheme_resprop.state_load(rp, blob, bytes));
            assert_int_equal(rc, ERR_FORMAT);
            assert_log_has(cap.text, "bad magic");
            scheme_resprop.state_save(rp, blob2);
            TU_CAPTURE(&cap, rc = VEC->state_load(b, blob2, bytes));
            assert_int_equal(rc, ERR_FORMAT);
            assert_log_has(cap.text, "scheme resprop-vec");
            scheme_resprop.layer_destroy(rp);
            assert_int_equal(VEC->state_load(b, blob, bytes), 0);
            VEC->state_save(b, blob2);
            assert_memory_equal(blob, blob2, bytes);
        }
        fill_scaled(g, sh, 40 + (uint64_t)k);
        SchemeStep ss = step_at(k, SPE, STEPS, 90 + (uint64_t)k);
        SchemeOut oa, ob;
        run_step(a, &o, &ss, g, sa, NULL, &oa);
        run_step(b, &o, &ss, g, sb, NULL, &ob);
        assert_memory_equal(sa, sb, cnt * sizeof(float));
        assert_true(oa.density == ob.density && oa.tau == ob.tau && oa.dense == ob.dense);
        assert_true((oa.r == NULL) == (ob.r == NULL));
        if (oa.r) assert_memory_equal(oa.r, ob.r, m * sizeof(float));
    }
    mem_free(blob);
    mem_free(blob2);
    mem_free(g);
    mem_free(sa);
    mem_free(sb);
    VEC->layer_destroy(a);
    VEC->layer_destroy(b);
    assert_int_equal(mem_live_bytes(), live0);
}

/* A whole resnet20 (3x8x8, batch 8: stem without dx, 3x3 stride 1 and 2, 1x1 downsample) under
 * resprop-vec on backend sparse (break-even 1: every non-dense step on the gathered-GEMM kernels,
 * the reuse terms included) against the same net on backend dnnl: every parameter's gradient within
 * 1e-3 norm-relative over 12 steps of training. */
static void test_vec_net_sparse_equals_dnnl(void **state) {
    (void)state;
    size_t live = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    ModelSpec m = {0};
    assert_int_equal(model_build(&m, "resnet20", 3, 8, 8, 10), 0);
    ResPropOptions opt;
    opts_default(&opt);
    opts_set(&opt, "warmup", "none");
    opt.reset_each_epoch = false;
    opt.tau_init = 0.5;
    opt.margin = 0;
    Net *net[2] = {NULL, NULL};
    NetBackend sparse = {.sparse = true, .breakeven = {1, 1, 1, 1}};
    Rng rng;
    rng_init(&rng, 5);
    for (int b = 0; b < 2; b++) {
        assert_int_equal(net_create(&net[b], &m, 8, &ctx, &rng), 0);
        assert_int_equal(net_attach_scheme(net[b], VEC, &opt, 0.9, 3, b ? &sparse : NULL), 0);
        Rng dr;
        rng_init(&dr, 11);
        float *x = net_input(net[b]);
        for (size_t i = 0; i < (size_t)8 * 3 * 8 * 8; i++) x[i] = (float)rng_normal(&dr);
        for (int i = 0; i < 8; i++) net_labels(net[b])[i] = i % 10;
    }
    int n_params = net_n_params(net[0]);
    double min_density = 1, sparse_steps = 0;
    for (long step = 0; step < 12; step++) {
        for (int b = 0; b < 2; b++) {
            net_scheme_step(net[b], step, 0, step, 1000, 1000, false);
            assert_int_equal(net_forward(net[b], true), 0);
            assert_int_equal(net_backward(net[b]), 0);
        }
        for (int i = 0; i < n_params; i++) {
            LayerParam a = net_param(net[1], i), want = net_param(net[0], i);
            double *wd = mem_alloc(want.n_stored * sizeof *wd);
            assert_non_null(wd);
            for (size_t e = 0; e < want.n_stored; e++) wd[e] = want.dw[e];
            char what[96];
            snprintf(what, sizeof what, "step %ld, parameter %d (%s): sparse vs dnnl", step, i, a.name);
            assert_close_fd(what, a.dw, wd, a.n_stored, 1e-3);
            mem_free(wd);
        }
        for (int j = 0; j < net_scheme_n(net[1]); j++) {
            const ConvSchemeStats *st = net_scheme_stats(net[1], j);
            if (st->density < min_density) min_density = st->density;
            sparse_steps += st->sparse_path;
        }
    }
    assert_true(min_density < 0.5);  /* the comparison covered sparse densities */
    assert_true(sparse_steps > 100); /* and the gathered-GEMM kernels ran */
    for (int b = 0; b < 2; b++) net_destroy(net[b]);
    model_deinit(&m);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), live);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_table),
        cmocka_unit_test(test_vec_bad_options),
        cmocka_unit_test(test_vec_decide),
        cmocka_unit_test(test_vec_exact),
        cmocka_unit_test(test_vec_reference),
        cmocka_unit_test(test_vec_dense_steps),
        cmocka_unit_test(test_vec_controller),
        cmocka_unit_test(test_vec_fused),
        cmocka_unit_test(test_vec_fused_error),
        cmocka_unit_test(test_vec_state_roundtrip),
        cmocka_unit_test(test_vec_net_sparse_equals_dnnl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
