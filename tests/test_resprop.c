/* test_resprop.c: the ReSprop scheme against straightforward reference loops (mask, stored sample,
 * batch mean, dense steps), its pure functions at their breakpoints (controller, target density of
 * the three warm-up modes, warm-up parsing), option validation, checkpoint round trip, that
 * sparsify neither allocates nor leaks, and that the fused CSR writer (SchemeOut.csr) produces
 * exactly the S of the dense path for any thread count. */
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
#include "core/sparse.h"

#define TOL_D 1e-12 /* double schedule values */

/* ---- helpers ------------------------------------------------------------------------------------ */

/* |a - b| <= tol, printing both values on failure (this cmocka has no assert_double_equal). */
static void near_check(double a, double b, double tol, const char *expr, int line) {
    if (!(fabs(a - b) <= tol)) fail_msg("line %d: %s = %.17g, want %.17g", line, expr, a, b);
}
#define assert_near(a, b, tol) near_check((a), (b), (tol), #a, __LINE__)

static void opts_default(ResPropOptions *o) {
    memset(o, 0, sizeof *o);
    assert_int_equal(config_defaults(scheme_resprop.options, o), 0);
}

static void opts_set(ResPropOptions *o, const char *key, const char *value) {
    assert_int_equal(config_set(scheme_resprop.options, o, NULL, key, value, "test"), 0);
}

/* A step of a run with `spe` steps per epoch and `total` steps, its RNG stream from `seed`. */
static SchemeStep step_at(long step, long spe, long total, uint64_t seed) {
    SchemeStep st;
    memset(&st, 0, sizeof st);
    st.step = step;
    st.epoch = (int)(step / spe);
    st.step_in_epoch = step % spe;
    st.steps_per_epoch = spe;
    st.total_steps = total;
    st.layer = 3;
    rng_init(&st.rng, seed);
    return st;
}

/* The sample index the scheme must store at a step with this RNG stream: the first draw. */
static size_t expected_x(const SchemeStep *st, int n) {
    Rng r = st->rng;
    return (size_t)rng_below(&r, (uint64_t)n);
}

static void run_step(void *state, const ResPropOptions *o, const SchemeStep *st, const float *g, float *s,
                     SchemeOut *out) {
    memset(out, 0, sizeof *out);
    out->g = g;
    out->s = s;
    assert_int_equal(scheme_resprop.sparsify(state, o, st, out), 0);
}

static void *create(const ResPropOptions *o, GradShape sh, double rs) {
    void *state = NULL;
    assert_int_equal(scheme_resprop.layer_create(&state, o, sh, rs), 0);
    assert_non_null(state);
    return state;
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
}

/* The reference mask: D = G - R (float, as the scheme's arithmetic), S = D where |D| > tau compared
 * in double, else 0. Returns nnz(S). */
static size_t ref_mask(const float *g, const float *r, float *s, int n, size_t m, double tau) {
    size_t nnz = 0;
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < m; j++) {
            float d = g[(size_t)i * m + j] - r[j];
            if (fabs((double)d) > tau) {
                s[(size_t)i * m + j] = d;
                nnz++;
            } else {
                s[(size_t)i * m + j] = 0.0f;
            }
        }
    }
    return nnz;
}

static void assert_floats_equal(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) fail_msg("index %zu: got %.9g, want %.9g", i, (double)a[i], (double)b[i]);
    }
}

static void assert_dense_step(const SchemeOut *out, const float *g, size_t count) {
    assert_true(out->dense);
    assert_null(out->r);
    assert_true(out->density == 1.0);
    assert_memory_equal(out->s, g, count * sizeof(float));
}

/* ---- the scheme table and options -------------------------------------------------------------- */

static void test_resprop_defaults(void **state) {
    (void)state;
    assert_string_equal(scheme_resprop.name, "resprop");
    assert_int_equal(scheme_resprop.cfg_size, sizeof(ResPropOptions));
    ResPropOptions o;
    opts_default(&o);
    assert_true(o.margin == 0.05);
    assert_string_equal(o.warmup, "paper");
    assert_string_equal(o.sample, "random");
    assert_true(o.reset_each_epoch);
    assert_true(o.tau_init == 1e-7);
    assert_true(o.tau_min == 1e-30);
    assert_true(o.tau_max == 1.0);
    assert_false(o.fc);
    assert_false(resprop_applies_to_fc(&o));
    opts_set(&o, "fc", "true");
    assert_true(resprop_applies_to_fc(&o));
}

static void test_resprop_bad_options(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    GradShape sh = {2, 2, 2, 2};
    ResPropOptions o;
    void *st = (void *)&o; /* must be reset to NULL on failure */

    /* rejected by the table itself */
    opts_default(&o);
    assert_int_equal(config_set(scheme_resprop.options, &o, NULL, "sample", "bogus", "test"), ERR_CONFIG);
    assert_int_equal(config_set(scheme_resprop.options, &o, NULL, "tau_min", "0", "test"), ERR_CONFIG);
    assert_int_equal(config_set(scheme_resprop.options, &o, NULL, "margin", "2", "test"), ERR_CONFIG);
    assert_int_equal(config_set(scheme_resprop.options, &o, NULL, "reset_each_epoch", "maybe", "test"),
                     ERR_CONFIG);
    assert_int_equal(config_set(scheme_resprop.options, &o, NULL, "tau", "1", "test"), ERR_CONFIG);

    /* rejected by layer_create */
    opts_set(&o, "tau_min", "1e-3");
    opts_set(&o, "tau_max", "1e-4");
    assert_int_equal(scheme_resprop.layer_create(&st, &o, sh, 0.9), ERR_CONFIG);
    assert_null(st);

    static const char *const bad_warmup[] = {"fraction:0", "fraction:2", "bogus", "fraction:", "fraction:-0.5",
                                             "fraction:0.5x", "fraction:nan", "Paper"};
    for (size_t i = 0; i < sizeof bad_warmup / sizeof bad_warmup[0]; i++) {
        opts_default(&o);
        opts_set(&o, "warmup", bad_warmup[i]);
        st = (void *)&o;
        assert_int_equal(scheme_resprop.layer_create(&st, &o, sh, 0.9), ERR_CONFIG);
        assert_null(st);
    }

    opts_default(&o);
    opts_set(&o, "tau_init", "10"); /* above tau_max = 1 */
    assert_int_equal(scheme_resprop.layer_create(&st, &o, sh, 0.9), ERR_CONFIG);
    opts_default(&o);
    assert_int_equal(scheme_resprop.layer_create(&st, &o, sh, 1.0), ERR_CONFIG);
    assert_int_equal(scheme_resprop.layer_create(&st, &o, (GradShape){0, 2, 2, 2}, 0.9), ERR_SHAPE);
    assert_null(st);

    /* good ones */
    static const char *const good_warmup[] = {"none", "paper", "fraction:0.25", "fraction:1", "fraction:.5"};
    for (size_t i = 0; i < sizeof good_warmup / sizeof good_warmup[0]; i++) {
        opts_set(&o, "warmup", good_warmup[i]);
        st = create(&o, sh, 0.9);
        scheme_resprop.layer_destroy(st);
    }
    scheme_resprop.layer_destroy(NULL);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_resprop_parse_warmup(void **state) {
    (void)state;
    ResPropWarmup mode = RESPROP_WARMUP_NONE;
    double frac = 0.0;
    assert_int_equal(resprop_parse_warmup("none", &mode, &frac), 0);
    assert_int_equal(mode, RESPROP_WARMUP_NONE);
    assert_int_equal(resprop_parse_warmup("paper", &mode, &frac), 0);
    assert_int_equal(mode, RESPROP_WARMUP_PAPER);
    assert_true(frac == 1.0);
    assert_int_equal(resprop_parse_warmup("fraction:0.25", &mode, &frac), 0);
    assert_int_equal(mode, RESPROP_WARMUP_FRACTION);
    assert_true(frac == 0.25);
    assert_int_equal(resprop_parse_warmup("fraction:1", &mode, &frac), 0);
    assert_true(frac == 1.0);
    /* errors leave the outputs unchanged */
    static const char *const bad[] = {"fraction:0", "fraction:2", "bogus", "", "fraction:", "fraction:abc",
                                      "fraction: 0.5", "fraction:1.0000001", "fraction:inf", "none "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mode = RESPROP_WARMUP_PAPER;
        frac = 0.75;
        assert_int_equal(resprop_parse_warmup(bad[i], &mode, &frac), ERR_CONFIG);
        assert_int_equal(mode, RESPROP_WARMUP_PAPER);
        assert_true(frac == 0.75);
    }
}

/* ---- pure functions ----------------------------------------------------------------------------- */

static void test_resprop_controller(void **state) {
    (void)state;
    /* below target halves, above doubles, equal keeps */
    assert_true(resprop_controller(1e-3, 0.05, 0.15, 1e-30, 1.0) == 5e-4);
    assert_true(resprop_controller(1e-3, 0.30, 0.15, 1e-30, 1.0) == 2e-3);
    assert_true(resprop_controller(1e-3, 0.15, 0.15, 1e-30, 1.0) == 1e-3);
    /* clamps at both ends */
    assert_true(resprop_controller(0.75, 0.9, 0.1, 1e-30, 1.0) == 1.0);
    assert_true(resprop_controller(1.5e-30, 0.0, 0.1, 1e-30, 1.0) == 1e-30);
    /* the released code's defect: during dense warm-up (target 1, density < 1) tau halves every
     * step and underflows to 0 after ~1100 steps, where doubling never recovers. Clamped, it never
     * reaches 0 and recovers. */
    double tau = 1e-7;
    for (int i = 0; i < 2000; i++) {
        tau = resprop_controller(tau, 0.99, 1.0, 1e-30, 1.0);
        assert_true(tau > 0.0);
    }
    assert_true(tau == 1e-30);
    for (int i = 0; i < 2000; i++) tau = resprop_controller(tau, 0.5, 0.15, 1e-30, 1.0);
    assert_true(tau == 1.0);
}

static void test_resprop_target_none(void **state) {
    (void)state;
    /* (1 - 0.9) + 0.05 = 0.15 from the first step */
    assert_near(resprop_target_density(RESPROP_WARMUP_NONE, 1.0, 0, 0, 100, 0.9, 0.05), 0.15, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_NONE, 1.0, 50, 99, 100, 0.9, 0.05), 0.15, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_NONE, 1.0, 0, 0, 100, 0.5, 0.0), 0.5, TOL_D);
    /* clamped at 1: RS 0 with a margin would ask for density 1.05 */
    assert_true(resprop_target_density(RESPROP_WARMUP_NONE, 1.0, 0, 0, 100, 0.0, 0.05) == 1.0);
}

static void test_resprop_target_paper(void **state) {
    (void)state;
    const double rs = 0.9, mg = 0.05;
    /* epochs 0-1 dense; 2: 0.8; 8: max(0.2, 0.15) = 0.2; 9 on: 0.15 (step arguments ignored) */
    assert_true(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 0, 0, 10, rs, mg) == 1.0);
    assert_true(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 1, 9, 10, rs, mg) == 1.0);
    assert_near(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 2, 0, 10, rs, mg), 0.8, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 5, 0, 10, rs, mg), 0.5, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 8, 0, 10, rs, mg), 0.2, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 9, 0, 10, rs, mg), 0.15, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 89, 0, 10, rs, mg), 0.15, TOL_D);
    /* RS 0.5: base 0.55 wins over the ramp from epoch 5 (0.5) */
    assert_near(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 4, 0, 10, 0.5, mg), 0.6, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 5, 0, 10, 0.5, mg), 0.55, TOL_D);
    /* RS 0 with margin: clamped at 1 after warm-up too */
    assert_true(resprop_target_density(RESPROP_WARMUP_PAPER, 1.0, 9, 0, 10, 0.0, mg) == 1.0);
}

static void test_resprop_target_fraction(void **state) {
    (void)state;
    const double rs = 0.9, mg = 0.05, f = 0.25;
    const long total = 3600; /* e = 9 * step / (0.25 * 3600) = step / 100 */
    assert_true(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 0, total, rs, mg) == 1.0);
    assert_true(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 199, total, rs, mg) == 1.0); /* e 1.99 */
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 200, total, rs, mg), 0.8, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 299, total, rs, mg), 0.8, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 300, total, rs, mg), 0.7, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 899, total, rs, mg), 0.2, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 900, total, rs, mg), 0.15, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 0, 3599, total, rs, mg), 0.15, TOL_D);
    /* the epoch argument is ignored */
    assert_true(resprop_target_density(RESPROP_WARMUP_FRACTION, f, 50, 100, total, rs, mg) == 1.0);
    /* F = 1: the released 9-epoch shape over a 9-"epoch" run of 900 steps: e = step / 100 */
    assert_true(resprop_target_density(RESPROP_WARMUP_FRACTION, 1.0, 0, 199, 900, rs, mg) == 1.0);
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, 1.0, 0, 200, 900, rs, mg), 0.8, TOL_D);
    assert_near(resprop_target_density(RESPROP_WARMUP_FRACTION, 1.0, 0, 899, 900, rs, mg), 0.2, TOL_D);
}

static void test_resprop_reuse_allowed(void **state) {
    (void)state;
    SchemeStep st = step_at(0, 5, 15, 1);
    assert_false(resprop_reuse_allowed(&st, true, false)); /* first of the run */
    st = step_at(7, 5, 15, 1);
    assert_false(resprop_reuse_allowed(&st, false, false)); /* no stored sample */
    assert_true(resprop_reuse_allowed(&st, true, true));
    st = step_at(5, 5, 15, 1);
    assert_false(resprop_reuse_allowed(&st, true, true));
    assert_true(resprop_reuse_allowed(&st, true, false));
    st = step_at(9, 5, 15, 1);
    assert_false(resprop_reuse_allowed(&st, true, true));
    assert_true(resprop_reuse_allowed(&st, true, false));
}

/* ---- sparsify ----------------------------------------------------------------------------------- */

/* Fixed values, all multiples of 1/8 so every D is exact: entries with |D| == tau must be dropped. */
static void test_resprop_mask_fixed(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { N = 3, M = 12 };
    GradShape sh = {N, 2, 2, 3};
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "tau_init", "0.25");
    void *st = create(&o, sh, 0.5); /* target 0.55 */

    static const float delta[7] = {0.0f, 0.125f, -0.25f, 0.25f, 0.5f, -0.5f, 0.375f};
    float g0[N * M], g1[N * M], s[N * M], want[N * M], r0[M];
    for (int j = 0; j < M; j++) r0[j] = (float)(j - 6) * 0.125f;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < M; j++) {
            g0[i * M + j] = r0[j]; /* every sample equal: R = r0 whatever x is */
            g1[i * M + j] = r0[j] + delta[(i * M + j) % 7];
        }
    }
    SchemeOut out;
    SchemeStep ss = step_at(0, 100, 1000, 11);
    run_step(st, &o, &ss, g0, s, &out);
    assert_dense_step(&out, g0, N * M);
    assert_true(out.tau == 0.25);

    ss = step_at(1, 100, 1000, 12);
    run_step(st, &o, &ss, g1, s, &out);
    assert_false(out.dense);
    assert_non_null(out.r);
    assert_floats_equal(out.r, r0, M);
    size_t nnz = ref_mask(g1, r0, want, N, M, 0.25);
    assert_floats_equal(s, want, N * M);
    assert_true(out.density == (double)nnz / (N * M));
    assert_true(out.tau == 0.25);
    int at_tau = 0;
    for (int i = 0; i < N * M; i++) {
        if (fabsf(g1[i] - r0[i % M]) == 0.25f) {
            at_tau++;
            assert_true(s[i] == 0.0f);
        }
    }
    assert_true(at_tau > 0);
    /* by hand: of every 7 deltas, 3 exceed 0.25 (0.5, -0.5, 0.375); 36 entries -> 15 or 16 kept */
    assert_true(nnz > 0 && nnz < N * M);

    /* density (< 0.55) below target: the next step runs at tau / 2 */
    double tau2 = resprop_controller(0.25, out.density, 0.55, 1e-30, 1.0);
    assert_true(tau2 == 0.125);
    ss = step_at(2, 100, 1000, 13);
    run_step(st, &o, &ss, g0, s, &out);
    assert_true(out.tau == 0.125);
    /* R is now sample x1 of g1 */
    SchemeStep s1 = step_at(1, 100, 1000, 12);
    assert_floats_equal(out.r, g1 + expected_x(&s1, N) * M, M);
    scheme_resprop.layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

/* A tau that is not a float (0.1): |D| = 0.1f (just above 0.1 in double) is kept, the float just
 * below 0.1 is dropped: the strict comparison is against the double tau. */
static void test_resprop_mask_tau_not_a_float(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { N = 2, M = 4 };
    GradShape sh = {N, 1, 1, M};
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "tau_init", "0.1");
    void *st = create(&o, sh, 0.5);
    const float above = 0.1f, below = nextafterf(0.1f, 0.0f);
    assert_true((double)above > 0.1 && (double)below < 0.1);
    float g0[N * M] = {0}, g1[N * M] = {above, -above, below, -below, 0.5f, 0.0f, -below, above};
    float s[N * M], want[N * M];
    SchemeOut out;
    SchemeStep ss = step_at(0, 100, 1000, 1);
    run_step(st, &o, &ss, g0, s, &out);
    ss = step_at(1, 100, 1000, 2);
    run_step(st, &o, &ss, g1, s, &out);
    size_t nnz = ref_mask(g1, g0, want, N, M, 0.1);
    assert_int_equal(nnz, 4);
    assert_floats_equal(s, want, N * M);
    assert_true(out.density == 0.5);
    scheme_resprop.layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

/* Random values over several steps against the reference mask, stored sample and controller chain;
 * the larger shape runs the OpenMP path. */
static void check_against_reference(GradShape sh, int n_steps) {
    size_t live0 = mem_live_bytes();
    const int n = sh.n;
    const size_t m = grad_sample(sh), cnt = grad_count(sh);
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "tau_init", "0.5");
    void *st = create(&o, sh, 0.5);
    float *g = mem_alloc(2 * cnt * sizeof(float));
    float *s = mem_alloc(cnt * sizeof(float));
    float *want = mem_alloc(cnt * sizeof(float));
    assert_true(g && s && want);
    float *prev = g + cnt; /* the previous step's G */
    double tau = 0.5;
    size_t allocs0 = mem_n_allocs();
    for (int k = 0; k < n_steps; k++) {
        if (k > 0) memcpy(prev, g, cnt * sizeof(float));
        fill_normal(g, cnt, 100 + (uint64_t)k);
        SchemeStep ss = step_at(k, 1000, 10000, 500 + (uint64_t)k);
        SchemeOut out;
        run_step(st, &o, &ss, g, s, &out);
        if (k == 0) {
            assert_dense_step(&out, g, cnt);
            continue;
        }
        SchemeStep before = step_at(k - 1, 1000, 10000, 500 + (uint64_t)(k - 1));
        const float *r_want = prev + expected_x(&before, n) * m;
        assert_non_null(out.r);
        assert_floats_equal(out.r, r_want, m);
        size_t nnz = ref_mask(g, r_want, want, n, m, tau);
        assert_floats_equal(s, want, cnt);
        assert_true(out.density == (double)nnz / (double)cnt);
        assert_true(out.tau == tau);
        assert_false(out.dense);
        tau = resprop_controller(tau, out.density, 0.55, 1e-30, 1.0);
    }
    assert_int_equal(mem_n_allocs(), allocs0); /* sparsify never allocates */
    mem_free(g);
    mem_free(s);
    mem_free(want);
    scheme_resprop.layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_resprop_mask_random_small(void **state) {
    (void)state;
    check_against_reference((GradShape){3, 2, 3, 5}, 8);
}

static void test_resprop_mask_random_large(void **state) {
    (void)state;
    check_against_reference((GradShape){8, 16, 16, 16}, 6); /* 32768 elements: OpenMP path */
}

/* R = G[x] with x the first draw of the step's stream: same seed same x; over 1000 seeds every
 * x in [0, N) appears. */
static void test_resprop_stored_sample(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { N = 5, M = 4 };
    GradShape sh = {N, 1, 2, 2};
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    float g[N * M], g1[N * M], s[N * M];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < M; j++) {
            g[i * M + j] = (float)((i + 1) * 10 + j); /* sample i is recognisable */
            g1[i * M + j] = -1.0f;
        }
    }
    int hits[N] = {0};
    for (uint64_t seed = 0; seed < 1000; seed++) {
        float r_first[M];
        for (int rep = 0; rep < 2; rep++) {
            void *st = create(&o, sh, 0.9);
            SchemeOut out;
            SchemeStep s0 = step_at(0, 100, 1000, seed);
            run_step(st, &o, &s0, g, s, &out);
            SchemeStep s1 = step_at(1, 100, 1000, seed + 7777);
            run_step(st, &o, &s1, g1, s, &out);
            assert_non_null(out.r);
            int x = (int)(out.r[0] / 10.0f) - 1;
            assert_true(x >= 0 && x < N);
            assert_floats_equal(out.r, g + x * M, M); /* the whole sample, not G_hat */
            assert_int_equal((size_t)x, expected_x(&s0, N));
            if (rep == 0) {
                memcpy(r_first, out.r, sizeof r_first);
                hits[x]++;
            } else {
                assert_floats_equal(out.r, r_first, M); /* same seed, same sample */
            }
            scheme_resprop.layer_destroy(st);
        }
    }
    for (int i = 0; i < N; i++) assert_true(hits[i] > 0);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_resprop_batchmean(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { N = 4, M = 6 };
    GradShape sh = {N, 1, 2, 3};
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "sample", "batchmean");
    void *st = create(&o, sh, 0.9);
    float g0[N * M], g1[N * M], s[N * M];
    fill_normal(g0, N * M, 1);
    fill_normal(g1, N * M, 2);
    double mean[M];
    for (int j = 0; j < M; j++) {
        mean[j] = 0.0;
        for (int i = 0; i < N; i++) mean[j] += g0[i * M + j];
        mean[j] /= N;
    }
    SchemeOut out;
    SchemeStep ss = step_at(0, 100, 1000, 1);
    run_step(st, &o, &ss, g0, s, &out);
    ss = step_at(1, 100, 1000, 2);
    run_step(st, &o, &ss, g1, s, &out);
    assert_non_null(out.r);
    assert_close_fd("batch mean R", out.r, mean, M, 1e-6);
    scheme_resprop.layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

/* Dense steps: the first of the run, with reset also the first and last of each epoch; s == g,
 * r == NULL, density 1, and tau untouched by them. */
static void check_dense_schedule(bool reset) {
    size_t live0 = mem_live_bytes();
    enum { N = 2, M = 8, SPE = 5, EPOCHS = 3 };
    GradShape sh = {N, 2, 2, 2};
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", reset ? "true" : "false");
    opts_set(&o, "tau_init", "1e-3");
    void *st = create(&o, sh, 0.9); /* target 0.15 */
    float g[N * M], s[N * M];
    double tau = 1e-3;
    int n_dense = 0;
    for (long k = 0; k < SPE * EPOCHS; k++) {
        fill_normal(g, N * M, 40 + (uint64_t)k);
        SchemeStep ss = step_at(k, SPE, SPE * EPOCHS, 900 + (uint64_t)k);
        SchemeOut out;
        run_step(st, &o, &ss, g, s, &out);
        long in_ep = k % SPE;
        bool want_dense = k == 0 || (reset && (in_ep == 0 || in_ep == SPE - 1));
        assert_true(out.tau == tau);
        if (want_dense) {
            assert_dense_step(&out, g, N * M);
            n_dense++;
        } else {
            assert_false(out.dense);
            assert_non_null(out.r);
            tau = resprop_controller(tau, out.density, 0.15, 1e-30, 1.0);
        }
    }
    assert_int_equal(n_dense, reset ? 2 * EPOCHS : 1);
    scheme_resprop.layer_destroy(st);

    /* a fresh state (a resume without state_load) has no R: its first call is dense */
    st = create(&o, sh, 0.9);
    SchemeStep ss = step_at(7, SPE, SPE * EPOCHS, 1);
    SchemeOut out;
    run_step(st, &o, &ss, g, s, &out);
    assert_dense_step(&out, g, N * M);
    scheme_resprop.layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_resprop_dense_steps_reset(void **state) {
    (void)state;
    check_dense_schedule(true);
}

static void test_resprop_dense_steps_no_reset(void **state) {
    (void)state;
    check_dense_schedule(false);
}

/* At a tau below every |D| (density 1), G_hat = S + broadcast_N(R) reproduces G up to rounding. */
static void test_resprop_ghat_equals_g(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    GradShape sh = {4, 3, 3, 8};
    const size_t m = grad_sample(sh), cnt = grad_count(sh);
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "tau_init", "1e-20");
    void *st = create(&o, sh, 0.9);
    float *g0 = mem_alloc(cnt * sizeof(float)), *g1 = mem_alloc(cnt * sizeof(float));
    float *s = mem_alloc(cnt * sizeof(float)), *ghat = mem_alloc(cnt * sizeof(float));
    double *g1d = mem_alloc(cnt * sizeof(double));
    assert_true(g0 && g1 && s && ghat && g1d);
    fill_normal(g0, cnt, 5);
    fill_normal(g1, cnt, 6);
    SchemeOut out;
    SchemeStep ss = step_at(0, 100, 1000, 1);
    run_step(st, &o, &ss, g0, s, &out);
    ss = step_at(1, 100, 1000, 2);
    run_step(st, &o, &ss, g1, s, &out);
    assert_non_null(out.r);
    assert_true(out.density == 1.0);
    for (size_t i = 0; i < cnt; i++) {
        ghat[i] = s[i] + out.r[i % m];
        g1d[i] = g1[i];
    }
    assert_close_fd("G_hat vs G", ghat, g1d, cnt, 1e-6);
    mem_free(g0);
    mem_free(g1);
    mem_free(s);
    mem_free(ghat);
    mem_free(g1d);
    scheme_resprop.layer_destroy(st);
    assert_int_equal(mem_live_bytes(), live0);
}

/* Two states over the same inputs; one is saved, destroyed, recreated and loaded mid-way: every
 * output afterwards is bit-identical. */
static void test_resprop_state_roundtrip(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    enum { STEPS = 14, SPE = 5, MID = 6 };
    GradShape sh = {3, 2, 2, 4};
    const size_t m = grad_sample(sh), cnt = grad_count(sh);
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "fraction:0.5");
    opts_set(&o, "tau_init", "1e-3");
    void *a = create(&o, sh, 0.9), *b = create(&o, sh, 0.9);
    float *g = mem_alloc(cnt * sizeof(float)), *sa = mem_alloc(cnt * sizeof(float));
    float *sb = mem_alloc(cnt * sizeof(float));
    assert_true(g && sa && sb);
    size_t bytes = scheme_resprop.state_bytes(b);
    unsigned char *blob = mem_alloc(bytes), *blob2 = mem_alloc(bytes);
    assert_true(blob && blob2);
    for (long k = 0; k < STEPS; k++) {
        if (k == MID) {
            scheme_resprop.state_save(b, blob);
            scheme_resprop.layer_destroy(b);
            b = create(&o, sh, 0.9);
            /* bad blobs are refused */
            assert_int_equal(scheme_resprop.state_load(b, blob, bytes - 1), ERR_FORMAT);
            void *other = create(&o, (GradShape){3, 2, 4, 2}, 0.9); /* same size, other shape */
            assert_int_equal(scheme_resprop.state_bytes(other), bytes);
            assert_int_equal(scheme_resprop.state_load(other, blob, bytes), ERR_FORMAT);
            scheme_resprop.layer_destroy(other);
            assert_int_equal(scheme_resprop.state_load(b, blob, bytes), 0);
            scheme_resprop.state_save(b, blob2);
            assert_memory_equal(blob, blob2, bytes);
        }
        fill_normal(g, cnt, 70 + (uint64_t)k);
        SchemeStep ss = step_at(k, SPE, STEPS, 300 + (uint64_t)k);
        SchemeOut oa, ob;
        run_step(a, &o, &ss, g, sa, &oa);
        run_step(b, &o, &ss, g, sb, &ob);
        assert_memory_equal(sa, sb, cnt * sizeof(float));
        assert_true(oa.density == ob.density);
        assert_true(oa.tau == ob.tau);
        assert_true(oa.dense == ob.dense);
        assert_true((oa.r == NULL) == (ob.r == NULL));
        if (oa.r) assert_memory_equal(oa.r, ob.r, m * sizeof(float));
    }
    mem_free(blob);
    mem_free(blob2);
    mem_free(g);
    mem_free(sa);
    mem_free(sb);
    scheme_resprop.layer_destroy(a);
    scheme_resprop.layer_destroy(b);
    assert_int_equal(mem_live_bytes(), live0);
}

/* ---- the fused CSR writer ------------------------------------------------------------------------ */

/* The CSR is well formed: rows monotone from 0 to nnz, channels strictly ascending and < K, no
 * stored zero. */
static void assert_csr_valid(const SparseGrad *sg) {
    size_t rows = (size_t)sg->n * sg->p * sg->q;
    assert_int_equal(sg->row_ptr[0], 0);
    assert_int_equal((size_t)sg->row_ptr[rows], sg->nnz);
    for (size_t i = 0; i < rows; i++) {
        assert_true(sg->row_ptr[i] <= sg->row_ptr[i + 1]);
        for (int32_t j = sg->row_ptr[i]; j < sg->row_ptr[i + 1]; j++) {
            assert_true(sg->chan[j] < sg->k);
            assert_true(sg->val[j] != 0.0f);
            if (j > sg->row_ptr[i]) assert_true(sg->chan[j] > sg->chan[j - 1]);
        }
    }
}

/* Two states over the same inputs, one writing the dense S, the other the CSR: on every sparse step
 * the CSR expands to exactly the dense S, density/tau/R agree, out->s is left untouched; dense steps
 * write s in both. With `threads` OpenMP threads; no allocation inside sparsify. */
static void check_fused(GradShape sh, int threads, const char *tau_init) {
    size_t live0 = mem_live_bytes();
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(threads);
    enum { STEPS = 9, SPE = 4 };
    const size_t m = grad_sample(sh), cnt = grad_count(sh);
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "tau_init", tau_init);
    void *a = create(&o, sh, 0.7), *b = create(&o, sh, 0.7);
    float *g = mem_alloc(cnt * sizeof(float)), *sa = mem_alloc(cnt * sizeof(float));
    float *sb = mem_alloc(cnt * sizeof(float)), *back = mem_alloc(cnt * sizeof(float));
    assert_true(g && sa && sb && back);
    SparseGrad csr;
    assert_int_equal(sparse_init(&csr, sh.n, sh.p, sh.q, sh.k, cnt), 0);
    int n_sparse = 0;
    size_t allocs0 = mem_n_allocs();
    for (long k = 0; k < STEPS; k++) {
        fill_normal(g, cnt, 1000 + (uint64_t)k);
        if (k == 5)
            for (size_t i = 0; i < cnt; i += 7) g[i] = 0.0f; /* some D exactly -R, some R exactly 0 */
        SchemeStep ss = step_at(k, SPE, STEPS, 40 + (uint64_t)k);
        SchemeOut oa, ob;
        run_step(a, &o, &ss, g, sa, &oa);
        for (size_t i = 0; i < cnt; i++) sb[i] = -7.0f; /* must stay untouched on fused steps */
        memset(&ob, 0, sizeof ob);
        ob.g = g;
        ob.s = sb;
        ob.csr = &csr;
        ob.csr_written = true; /* stale values from an earlier step must be overwritten */
        ob.structured = true;
        assert_int_equal(scheme_resprop.sparsify(b, &o, &ss, &ob), 0);
        assert_true(oa.dense == ob.dense);
        assert_true(oa.density == ob.density);
        assert_true(oa.tau == ob.tau);
        assert_true((oa.r == NULL) == (ob.r == NULL));
        assert_false(ob.structured);
        if (oa.dense) {
            assert_false(ob.csr_written);
            assert_memory_equal(sb, g, cnt * sizeof(float));
            continue;
        }
        n_sparse++;
        assert_true(ob.csr_written);
        assert_memory_equal(oa.r, ob.r, m * sizeof(float));
        for (size_t i = 0; i < cnt; i++) assert_true(sb[i] == -7.0f);
        assert_csr_valid(&csr);
        assert_true(ob.density == (double)csr.nnz / (double)cnt);
        sparse_to_dense(&csr, back);
        assert_memory_equal(back, sa, cnt * sizeof(float)); /* bit for bit */
    }
    assert_int_equal(mem_n_allocs(), allocs0);
    assert_true(n_sparse >= 4);
    sparse_deinit(&csr);
    mem_free(g);
    mem_free(sa);
    mem_free(sb);
    mem_free(back);
    scheme_resprop.layer_destroy(a);
    scheme_resprop.layer_destroy(b);
    omp_set_num_threads(saved_threads);
    assert_int_equal(mem_live_bytes(), live0);
}

static void test_resprop_fused_csr(void **state) {
    (void)state;
    static const GradShape shapes[] = {
        {3, 2, 3, 3},    /* K = 3: one masked tail */
        {2, 3, 2, 16},   /* exactly one vector */
        {4, 2, 2, 21},   /* one vector and a tail */
        {3, 4, 5, 64},
        {5, 3, 3, 40},   /* N not a multiple of the slots */
        {1, 2, 2, 7},    /* one sample: an empty slot with two threads */
        {8, 16, 16, 17}, /* > RESPROP_OMP_MIN elements: the parallel path */
        {4, 32, 32, 128}, /* tau 1.0: slot 1 moves > 2^16 nonzeros to a disjoint place, in parallel pieces */
    };
    static const char *const taus[] = {"0.5", "1e-30", "1.0"}; /* mixed, keep-all, keep-few */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        for (int threads = 1; threads <= 2; threads++) {
            for (size_t t = 0; t < sizeof taus / sizeof taus[0]; t++) check_fused(shapes[i], threads, taus[t]);
        }
    }
}

/* A CSR of the wrong shape or without room for the slot-writer protocol is refused with ERR_SHAPE
 * before anything changes; the next good call matches an untouched twin. */
static void test_resprop_fused_csr_errors(void **state) {
    (void)state;
    size_t live0 = mem_live_bytes();
    GradShape sh = {2, 2, 2, 5};
    const size_t cnt = grad_count(sh);
    ResPropOptions o;
    opts_default(&o);
    opts_set(&o, "warmup", "none");
    opts_set(&o, "reset_each_epoch", "false");
    opts_set(&o, "tau_init", "0.5");
    void *a = create(&o, sh, 0.5), *b = create(&o, sh, 0.5);
    float g[40], sa[40], sb[40], back[40];
    SparseGrad small, other, good;
    assert_int_equal(sparse_init(&small, 2, 2, 2, 5, cnt - 1), 0);
    assert_int_equal(sparse_init(&other, 2, 2, 5, 2, cnt), 0);
    assert_int_equal(sparse_init(&good, 2, 2, 2, 5, cnt), 0);
    SchemeOut oa, ob;
    for (long k = 0; k < 3; k++) {
        fill_normal(g, cnt, 60 + (uint64_t)k);
        SchemeStep ss = step_at(k, 100, 1000, 7 + (uint64_t)k);
        run_step(a, &o, &ss, g, sa, &oa);
        if (k >= 1) {
            SparseGrad *bad[2] = {&small, &other};
            for (int j = 0; j < 2; j++) {
                TuCapture cap;
                int rc = 0;
                memset(&ob, 0, sizeof ob);
                ob.g = g;
                ob.s = sb;
                ob.csr = bad[j];
                TU_CAPTURE(&cap, rc = scheme_resprop.sparsify(b, &o, &ss, &ob));
                assert_int_equal(rc, ERR_SHAPE);
                assert_log_has(cap.text, "resprop");
                assert_false(ob.csr_written);
            }
        }
        memset(&ob, 0, sizeof ob);
        ob.g = g;
        ob.s = sb;
        ob.csr = &good;
        assert_int_equal(scheme_resprop.sparsify(b, &o, &ss, &ob), 0);
        assert_true(oa.tau == ob.tau && oa.density == ob.density);
        if (k >= 1) {
            sparse_to_dense(&good, back);
            assert_memory_equal(back, sa, sizeof back);
        }
    }
    sparse_deinit(&small);
    sparse_deinit(&other);
    sparse_deinit(&good);
    scheme_resprop.layer_destroy(a);
    scheme_resprop.layer_destroy(b);
    assert_int_equal(mem_live_bytes(), live0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resprop_defaults),
        cmocka_unit_test(test_resprop_bad_options),
        cmocka_unit_test(test_resprop_parse_warmup),
        cmocka_unit_test(test_resprop_controller),
        cmocka_unit_test(test_resprop_target_none),
        cmocka_unit_test(test_resprop_target_paper),
        cmocka_unit_test(test_resprop_target_fraction),
        cmocka_unit_test(test_resprop_reuse_allowed),
        cmocka_unit_test(test_resprop_mask_fixed),
        cmocka_unit_test(test_resprop_mask_tau_not_a_float),
        cmocka_unit_test(test_resprop_mask_random_small),
        cmocka_unit_test(test_resprop_mask_random_large),
        cmocka_unit_test(test_resprop_stored_sample),
        cmocka_unit_test(test_resprop_batchmean),
        cmocka_unit_test(test_resprop_dense_steps_reset),
        cmocka_unit_test(test_resprop_dense_steps_no_reset),
        cmocka_unit_test(test_resprop_ghat_equals_g),
        cmocka_unit_test(test_resprop_state_roundtrip),
        cmocka_unit_test(test_resprop_fused_csr),
        cmocka_unit_test(test_resprop_fused_csr_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
