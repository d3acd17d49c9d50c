/* test_schemes.c: the baseline sparsity schemes (baselines/dense.c, meprop.c, threshold.c, random.c)
 * and the registry (baselines/registry.c):
 *   - dense is the identity;
 *   - meprop keeps exactly k per sample, the k largest |G| (checked against a sort of the indices by
 *     magnitude, ties by lower index), also with many ties and zeros;
 *   - threshold masks with a strict >, its controller halves/doubles tau and clamps at both ends, its
 *     state round-trips through a checkpoint blob;
 *   - random is unbiased (mean of S over many steps, each with its own stream, is G within bounds
 *     set from the variance), its density is about 1 - RS, and it is a function of the stream;
 *   - the registry: every scheme found by name, names unique, scheme_options with good and bad keys,
 *     values and sections;
 *   - every registered scheme (resprop too) keeps the scheme.h contract: no allocation inside
 *     sparsify, density in [0, 1], out->dense only for a copy of G with no reuse term.
 * Every test checks that nothing leaks. Statistical tests use fixed seeds, so they always pass or
 * always fail; their bounds are still several standard deviations wide. */
#include "tests/testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/scheme.h"

/* ---- a scheme on one layer ---------------------------------------------------------------------- */

typedef struct {
    const Scheme *sc;
    void *cfg;    /* cfg_size bytes, NULL for a scheme without options */
    void *state;
    GradShape shape;
    float *g;     /* (N,P,Q,K) */
    float *s;     /* (N,P,Q,K) */
    SchemeOut out;
} Run;

static void extra_add(CfgExtra *e, const char *key, const char *value) {
    assert_true(e->n < CFG_MAX_EXTRA);
    snprintf(e->key[e->n], sizeof e->key[0], "%s", key);
    snprintf(e->value[e->n], sizeof e->value[0], "%s", value);
    e->n++;
}

/* Creates the scheme `name` for one layer with options from `extra` (NULL: defaults); asserts success. */
static void run_open(Run *r, const char *name, GradShape shape, double reuse, const CfgExtra *extra) {
    memset(r, 0, sizeof *r);
    r->sc = scheme_find(name);
    assert_non_null(r->sc);
    if (r->sc->cfg_size) {
        r->cfg = mem_calloc(1, r->sc->cfg_size);
        assert_non_null(r->cfg);
    }
    assert_int_equal(scheme_options(r->sc, r->cfg, extra), 0);
    r->shape = shape;
    assert_int_equal(r->sc->layer_create(&r->state, r->cfg, shape, reuse), 0);
    assert_non_null(r->state);
    r->g = mem_calloc(grad_count(shape), sizeof *r->g);
    r->s = mem_calloc(grad_count(shape), sizeof *r->s);
    assert_non_null(r->g);
    assert_non_null(r->s);
}

static void run_close(Run *r) {
    if (r->sc && r->state) r->sc->layer_destroy(r->state);
    mem_free(r->cfg);
    mem_free(r->g);
    mem_free(r->s);
    memset(r, 0, sizeof *r);
}

static SchemeStep step_at(long step, uint64_t seed, int layer) {
    Rng base;
    rng_init(&base, seed);
    SchemeStep st = {.step = step,
                     .epoch = (int)(step / 10),
                     .step_in_epoch = step % 10,
                     .steps_per_epoch = 10,
                     .total_steps = 100,
                     .layer = layer};
    st.rng = rng_split(&base, (uint64_t)layer * 1000003u + (uint64_t)step);
    return st;
}

/* One sparsify call; s is filled with garbage first so stale values cannot pass. */
static void run_step(Run *r, const SchemeStep *st) {
    size_t n = grad_count(r->shape);
    for (size_t i = 0; i < n; i++) r->s[i] = 12345.0f;
    r->out = (SchemeOut){.g = r->g, .s = r->s, .density = -1.0, .tau = -1.0};
    assert_int_equal(r->sc->sparsify(r->state, r->cfg, st, &r->out), 0);
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    Rng rng;
    rng_init(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&rng);
}

static size_t count_nonzero(const float *x, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += x[i] != 0.0f;
    return c;
}

/* Every test leaves no allocation behind: the live bytes at its end equal those at its start (a
 * failed test's leftovers, cut short by cmocka, do not make the following tests fail too). */
static int leaks_setup(void **state) {
    *state = (void *)(uintptr_t)mem_live_bytes();
    return 0;
}

static int check_leaks(void **state) {
    size_t before = (size_t)(uintptr_t)*state;
    if (mem_live_bytes() != before) {
        fprintf(stderr, "leak: %zu bytes still allocated\n", mem_live_bytes() - before);
        return -1;
    }
    return 0;
}

/* ---- dense --------------------------------------------------------------------------------------- */

static void test_dense_identity(void **state) {
    (void)state;
    Run r;
    GradShape sh = {3, 4, 5, 6};
    run_open(&r, "dense", sh, 0.9, NULL);
    fill_normal(r.g, grad_count(sh), 1);
    r.g[7] = 0.0f; /* zeros stay zeros, and density stays 1 (nothing dropped) */
    SchemeStep st = step_at(0, 1, 0);
    run_step(&r, &st);
    assert_memory_equal(r.s, r.g, grad_count(sh) * sizeof *r.g);
    assert_null(r.out.r);
    assert_true(r.out.density == 1.0);
    assert_true(isnan(r.out.tau));
    assert_true(r.out.dense);
    assert_null(r.sc->state_bytes);
    run_close(&r);
}

/* ---- meprop -------------------------------------------------------------------------------------- */

static const float *sort_base; /* the sample the comparator orders (qsort has no context argument) */

/* |x| descending, then index ascending (meprop's tie rule). NaN-free input. */
static int cmp_mag_desc(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    float x = fabsf(sort_base[i]), y = fabsf(sort_base[j]);
    if (x != y) return x > y ? -1 : 1;
    return i < j ? -1 : i > j ? 1 : 0;
}

static size_t meprop_k(double reuse, size_t per) {
    double k = round((1.0 - reuse) * (double)per);
    return k < 1 ? 1 : (size_t)k;
}

/* Checks that r.s is meprop's output for r.g: per sample, the first k indices of the reference sort
 * keep their G, every other entry is 0; density and the reported tau match. */
static void check_meprop(Run *r, size_t k) {
    size_t per = grad_sample(r->shape);
    size_t *idx = mem_calloc(per, sizeof *idx);
    assert_non_null(idx);
    size_t nnz = 0;
    for (int n = 0; n < r->shape.n; n++) {
        const float *g = r->g + (size_t)n * per, *s = r->s + (size_t)n * per;
        for (size_t i = 0; i < per; i++) idx[i] = i;
        sort_base = g;
        qsort(idx, per, sizeof *idx, cmp_mag_desc);
        for (size_t j = 0; j < per; j++) {
            size_t i = idx[j];
            float want = j < k ? g[i] : 0.0f;
            if (memcmp(&s[i], &want, sizeof want) != 0 && !(want == 0.0f && s[i] == 0.0f))
                fail_msg("meprop sample %d index %zu (rank %zu, k %zu): s %g, expected %g", n, i, j, k, s[i], want);
        }
        nnz += count_nonzero(s, per);
        if (n == 0) assert_true(r->out.tau == fabsf(g[idx[k - 1]]));
    }
    assert_true(r->out.density == (double)nnz / (double)grad_count(r->shape));
    assert_null(r->out.r);
    assert_true(r->out.dense == (k == per));
    mem_free(idx);
}

static void test_meprop_topk(void **state) {
    (void)state;
    static const struct {
        GradShape sh;
        double reuse;
        size_t k; /* expected k, worked out by hand */
    } cases[] = {
        {{3, 5, 7, 3}, 0.9, 11},   /* 105 per sample: 10.5 -> 11 (or 10: see below) */
        {{2, 4, 4, 8}, 0.5, 64},   /* 128 -> 64 */
        {{4, 2, 2, 2}, 0.75, 2},   /* 8 -> 2 */
        {{2, 1, 1, 8}, 0.999, 1},  /* 0.008 rounds to 0: at least 1 */
        {{2, 3, 3, 3}, 0.0, 27},   /* RS 0: every entry, a copy */
        {{1, 16, 16, 64}, 0.9, 1638}, /* 16384 per sample: 1638.4 -> 1638 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Run r;
        run_open(&r, "meprop", cases[c].sh, cases[c].reuse, NULL);
        size_t per = grad_sample(cases[c].sh), k = meprop_k(cases[c].reuse, per);
        if (c == 0) assert_true(k == 10 || k == 11); /* (1 - 0.9) * 105 is 10.5 up to rounding of 0.1 */
        else assert_int_equal(k, cases[c].k);
        fill_normal(r.g, grad_count(cases[c].sh), 100 + c);
        SchemeStep st = step_at(0, 1, 0);
        run_step(&r, &st);
        /* exactly k nonzeros per sample (normal draws have no zeros) */
        for (int n = 0; n < cases[c].sh.n; n++) assert_int_equal(count_nonzero(r.s + (size_t)n * per, per), k);
        check_meprop(&r, k);
        run_close(&r);
    }
}

static void test_meprop_ties(void **state) {
    (void)state;
    GradShape sh = {3, 4, 4, 8}; /* 128 per sample */
    size_t per = grad_sample(sh), total = grad_count(sh);
    for (int variant = 0; variant < 5; variant++) {
        Run r;
        double reuse = variant == 4 ? 0.5 : 0.7;
        run_open(&r, "meprop", sh, reuse, NULL);
        size_t k = meprop_k(reuse, per);
        Rng rng;
        rng_init(&rng, 7 + variant);
        for (size_t i = 0; i < total; i++) {
            switch (variant) {
            case 0: /* few distinct magnitudes, both signs: ties at the cut */
                r.g[i] = (float)((int)rng_below(&rng, 3) + 1) * (rng_below(&rng, 2) ? 1.0f : -1.0f);
                break;
            case 1: /* all equal: the first k indices */
                r.g[i] = -0.25f;
                break;
            case 2: /* mostly zeros (+0 and -0), fewer nonzeros than k: zeros fill up by index */
                r.g[i] = rng_below(&rng, 10) == 0 ? (float)rng_normal(&rng) : (rng_below(&rng, 2) ? 0.0f : -0.0f);
                break;
            case 3: /* magnitudes sharing their high bytes: the select must go down to the last byte */
                r.g[i] = 1.0f + (float)rng_below(&rng, 8) * 0x1p-23f;
                break;
            case 4: /* denormals, huge and infinite values */
                r.g[i] = (float[]){0x1p-140f, -0x1p-149f, 3e38f, -INFINITY, 1.0f}[rng_below(&rng, 5)];
                break;
            }
        }
        SchemeStep st = step_at(0, 1, 0);
        run_step(&r, &st);
        check_meprop(&r, k);
        if (variant == 1)
            for (int n = 0; n < sh.n; n++)
                for (size_t i = 0; i < per; i++) assert_true(r.s[n * per + i] == (i < k ? -0.25f : 0.0f));
        run_close(&r);
    }
}

/* ---- threshold ----------------------------------------------------------------------------------- */

static void threshold_open(Run *r, GradShape sh, double reuse, const char *margin, const char *tau_init,
                           const char *tau_min, const char *tau_max) {
    CfgExtra e;
    memset(&e, 0, sizeof e);
    if (margin) extra_add(&e, "scheme.margin", margin);
    if (tau_init) extra_add(&e, "scheme.tau_init", tau_init);
    if (tau_min) extra_add(&e, "scheme.tau_min", tau_min);
    if (tau_max) extra_add(&e, "scheme.tau_max", tau_max);
    run_open(r, "threshold", sh, reuse, &e);
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

static void test_threshold_strict(void **state) {
    (void)state;
    Run r;
    GradShape sh = {1, 1, 2, 4};
    threshold_open(&r, sh, 0.5, "0", "0.5", NULL, NULL);
    const float g[8] = {0.5f, -0.5f, 0.50000006f, -0.6f, 0.4f, 0.0f, -0.50000006f, 2.0f};
    const float want[8] = {0, 0, 0.50000006f, -0.6f, 0, 0, -0.50000006f, 2.0f};
    memcpy(r.g, g, sizeof g);
    SchemeStep st = step_at(0, 1, 0);
    run_step(&r, &st);
    assert_memory_equal(r.s, want, sizeof want);
    assert_true(r.out.tau == 0.5);
    assert_true(r.out.density == 4.0 / 8.0);
    assert_null(r.out.r);
    assert_false(r.out.dense);
    /* nothing dropped: a copy of G */
    fill_const(r.g, 8, 3.0f);
    run_step(&r, &st);
    assert_memory_equal(r.s, r.g, sizeof g);
    assert_true(r.out.density == 1.0);
    assert_true(r.out.dense);
    run_close(&r);
}

/* Runs one step with every entry of G = v (or, with half, the first half v and the rest 0) and
 * checks the tau the mask used. */
static void th_step(Run *r, float v, bool half, double want_tau, long step) {
    size_t n = grad_count(r->shape);
    for (size_t i = 0; i < n; i++) r->g[i] = half && i >= n / 2 ? 0.0f : v;
    SchemeStep st = step_at(step, 1, 0);
    run_step(r, &st);
    if (r->out.tau != want_tau) fail_msg("step %ld: tau %g, expected %g", step, r->out.tau, want_tau);
}

static void test_threshold_controller(void **state) {
    (void)state;
    Run r;
    GradShape sh = {2, 1, 1, 4};
    /* target density (1 - 0.5) + 0 = 0.5 */
    threshold_open(&r, sh, 0.5, "0", "0.5", "0.125", "2");
    long t = 0;
    th_step(&r, 0.1f, false, 0.5, t++);    /* density 0 < 0.5: halve */
    assert_true(r.out.density == 0.0);
    th_step(&r, 0.1f, false, 0.25, t++);
    th_step(&r, 0.1f, false, 0.125, t++);  /* next 0.0625 clamps to tau_min */
    th_step(&r, 0.1f, false, 0.125, t++);
    th_step(&r, 10.0f, false, 0.125, t++); /* density 1 > 0.5: double */
    th_step(&r, 10.0f, false, 0.25, t++);
    th_step(&r, 10.0f, false, 0.5, t++);
    th_step(&r, 10.0f, false, 1.0, t++);
    th_step(&r, 10.0f, false, 2.0, t++);   /* next 4 clamps to tau_max */
    th_step(&r, 10.0f, true, 2.0, t++);    /* density exactly 0.5 = target: unchanged */
    assert_true(r.out.density == 0.5);
    th_step(&r, 10.0f, true, 2.0, t++);
    run_close(&r);

    /* the margin moves the target: RS 0.75 + margin 0.3 -> 0.55 > 0.5, so density 0.5 halves */
    threshold_open(&r, sh, 0.75, "0.3", "1", "1e-30", "1");
    th_step(&r, 10.0f, true, 1.0, 0);
    th_step(&r, 10.0f, true, 0.5, 1);
    run_close(&r);
    /* RS 0.75 + margin 0.2 -> 0.45 < 0.5, so density 0.5 doubles, clamped at a non-power-of-two max */
    threshold_open(&r, sh, 0.75, "0.2", "1", "1e-30", "1.5");
    th_step(&r, 10.0f, true, 1.0, 0);
    th_step(&r, 10.0f, true, 1.5, 1);
    th_step(&r, 10.0f, true, 1.5, 2);
    run_close(&r);
    /* defaults: tau starts at 1e-7 and the target is (1 - RS) + 0.05 */
    threshold_open(&r, sh, 0.9, NULL, NULL, NULL, NULL);
    th_step(&r, 1e-3f, false, 1e-7, 0); /* density 1 > 0.15 */
    th_step(&r, 1e-3f, false, 2e-7, 1);
    run_close(&r);
}

static void test_threshold_state(void **state) {
    (void)state;
    Run a, b;
    GradShape sh = {1, 2, 2, 2};
    threshold_open(&a, sh, 0.5, "0", "0.5", "1e-6", "8");
    th_step(&a, 10.0f, false, 0.5, 0);
    th_step(&a, 10.0f, false, 1.0, 1); /* tau of the next step: 2 */
    size_t bytes = a.sc->state_bytes(a.state);
    assert_true(bytes > 0 && bytes <= 64);
    unsigned char blob[64];
    a.sc->state_save(a.state, blob);
    threshold_open(&b, sh, 0.5, "0", "0.5", "1e-6", "8");
    assert_int_equal(b.sc->state_load(b.state, blob, bytes), 0);
    th_step(&b, 10.0f, false, 2.0, 2);
    th_step(&a, 10.0f, false, 2.0, 2);
    /* a blob of the wrong size or with a non-positive tau is rejected */
    TuCapture cap;
    int rc;
    TU_CAPTURE(&cap, rc = b.sc->state_load(b.state, blob, bytes + 1));
    assert_int_equal(rc, ERR_FORMAT);
    double bad = -1.0;
    unsigned char bad_blob[64] = {0};
    memcpy(bad_blob, &bad, sizeof bad);
    TU_CAPTURE(&cap, rc = b.sc->state_load(b.state, bad_blob, bytes));
    assert_int_equal(rc, ERR_FORMAT);
    th_step(&b, 10.0f, false, 4.0, 3); /* unchanged by the rejected loads */
    run_close(&a);
    run_close(&b);
}

static void test_threshold_bad_options(void **state) {
    (void)state;
    const Scheme *sc = scheme_find("threshold");
    assert_non_null(sc);
    void *cfg = mem_calloc(1, sc->cfg_size);
    assert_non_null(cfg);
    static const char *sets[][2] = {{"1e-3", "1e-4"}, {"1e-6", "1"}, {"2", "1"}};
    for (int i = 0; i < 3; i++) {
        CfgExtra e;
        memset(&e, 0, sizeof e);
        /* {tau_min, tau_max} with tau_min > tau_max, or tau_init (default 1e-7, or 2) out of range */
        if (i == 2) extra_add(&e, "scheme.tau_init", sets[i][0]);
        else {
            extra_add(&e, "scheme.tau_min", sets[i][0]);
            extra_add(&e, "scheme.tau_max", sets[i][1]);
        }
        assert_int_equal(scheme_options(sc, cfg, &e), 0);
        void *st = NULL;
        TuCapture cap;
        int rc;
        TU_CAPTURE(&cap, rc = sc->layer_create(&st, cfg, (GradShape){1, 1, 1, 1}, 0.5));
        assert_int_equal(rc, ERR_CONFIG);
        assert_null(st);
        assert_log_has(cap.text, "tau_");
    }
    mem_free(cfg);
}

/* ---- random -------------------------------------------------------------------------------------- */

static void test_random_unbiased(void **state) {
    (void)state;
    enum { DRAWS = 400 };
    const double reuse = 0.75, p = 1.0 - reuse;
    GradShape sh = {2, 4, 4, 8};
    size_t n = grad_count(sh);
    Run r;
    run_open(&r, "random", sh, reuse, NULL);
    fill_normal(r.g, n, 5);
    double *sum = mem_calloc(n, sizeof *sum);
    assert_non_null(sum);
    double dens_sum = 0.0;
    for (int t = 0; t < DRAWS; t++) {
        SchemeStep st = step_at(t, 11, 3);
        run_step(&r, &st);
        assert_null(r.out.r);
        assert_true(isnan(r.out.tau));
        assert_false(r.out.dense);
        size_t nnz = 0;
        for (size_t i = 0; i < n; i++) {
            /* kept entries are G / p exactly as the scheme scales them; dropped ones are 0 */
            if (r.s[i] != 0.0f) {
                assert_true(r.s[i] == r.g[i] * (float)(1.0 / p));
                nnz++;
            } else assert_true(r.s[i] == 0.0f);
            sum[i] += r.s[i];
        }
        assert_true(r.out.density == (double)nnz / (double)n);
        dens_sum += r.out.density;
    }
    /* mean_i ~ G_i with sd |G_i| sqrt((1-p) / (p DRAWS)); every entry within 6 sd, and the mean
     * squared z-score near 1 (a scheme without the 1/p scale is ~8.7 sd off everywhere) */
    double z2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double sd = fabs(r.g[i]) * sqrt((1.0 - p) / (p * DRAWS));
        double z = (sum[i] / DRAWS - r.g[i]) / sd;
        if (fabs(z) > 6.0) fail_msg("random: entry %zu mean %g, G %g (%.1f sd off)", i, sum[i] / DRAWS, r.g[i], z);
        z2 += z * z;
    }
    z2 /= (double)n;
    if (z2 < 0.7 || z2 > 1.3) fail_msg("random: mean squared z-score %g, expected about 1", z2);
    /* achieved density: sd sqrt(p (1-p) / (n DRAWS)) ~ 0.0014 */
    double dens = dens_sum / DRAWS;
    if (fabs(dens - p) > 0.01) fail_msg("random: mean density %g, expected about %g", dens, p);
    mem_free(sum);
    run_close(&r);
}

static void test_random_deterministic(void **state) {
    (void)state;
    GradShape sh = {3, 3, 3, 5};
    size_t n = grad_count(sh);
    Run r;
    run_open(&r, "random", sh, 0.6, NULL);
    fill_normal(r.g, n, 9);
    float *first = mem_calloc(n, sizeof *first);
    assert_non_null(first);
    SchemeStep a = step_at(4, 21, 2), b = step_at(4, 21, 2), c = step_at(5, 21, 2);
    run_step(&r, &a);
    memcpy(first, r.s, n * sizeof *first);
    double d1 = r.out.density;
    run_step(&r, &b);
    assert_memory_equal(r.s, first, n * sizeof *first);
    assert_true(r.out.density == d1);
    assert_true(memcmp(&a.rng, &b.rng, sizeof a.rng) == 0); /* the scheme reads st->rng, never advances it */
    /* the samples draw independent masks */
    size_t per = grad_sample(sh);
    for (int i = 1; i < sh.n; i++) {
        bool same = true;
        for (size_t j = 0; j < per; j++) same &= (first[j] == 0.0f) == (first[i * per + j] == 0.0f);
        assert_false(same);
    }
    run_step(&r, &c);
    assert_true(memcmp(r.s, first, n * sizeof *first) != 0);
    mem_free(first);
    run_close(&r);
    /* RS 0: everything kept at scale 1, a copy */
    run_open(&r, "random", sh, 0.0, NULL);
    fill_normal(r.g, n, 9);
    run_step(&r, &a);
    assert_memory_equal(r.s, r.g, n * sizeof *r.g);
    assert_true(r.out.density == 1.0);
    assert_true(r.out.dense);
    run_close(&r);
}

/* ---- bad shapes and reuse ------------------------------------------------------------------------ */

static void test_layer_create_rejects(void **state) {
    (void)state;
    static const char *names[] = {"dense", "meprop", "threshold", "random"};
    for (int i = 0; i < 4; i++) {
        const Scheme *sc = scheme_find(names[i]);
        assert_non_null(sc);
        void *cfg = sc->cfg_size ? mem_calloc(1, sc->cfg_size) : NULL;
        assert_int_equal(scheme_options(sc, cfg, NULL), 0);
        void *st = NULL;
        TuCapture cap;
        int rc;
        TU_CAPTURE(&cap, rc = sc->layer_create(&st, cfg, (GradShape){2, 0, 3, 4}, 0.5));
        assert_int_equal(rc, ERR_SHAPE);
        assert_null(st);
        assert_log_has(cap.text, names[i]);
        if (strcmp(names[i], "dense") != 0) {
            TU_CAPTURE(&cap, rc = sc->layer_create(&st, cfg, (GradShape){2, 3, 3, 4}, 1.0));
            assert_int_equal(rc, ERR_CONFIG);
            TU_CAPTURE(&cap, rc = sc->layer_create(&st, cfg, (GradShape){2, 3, 3, 4}, NAN));
            assert_int_equal(rc, ERR_CONFIG);
            assert_null(st);
        }
        mem_free(cfg);
    }
}

/* ---- registry ------------------------------------------------------------------------------------ */

static void test_registry(void **state) {
    (void)state;
    static const char *expected[] = {"dense", "resprop", "meprop", "threshold", "random", "resprop-vec"};
    int n = 0;
    for (; scheme_registry[n]; n++) {
        const Scheme *sc = scheme_registry[n];
        assert_non_null(sc->name);
        assert_non_null(sc->summary);
        assert_true(sc->summary[0] != '\0');
        assert_non_null(sc->layer_create);
        assert_non_null(sc->layer_destroy);
        assert_non_null(sc->sparsify);
        assert_true(scheme_find(sc->name) == sc);
        for (int j = 0; j < n; j++) assert_string_not_equal(scheme_registry[j]->name, sc->name);
        /* checkpoint hooks: all three or none */
        bool any = sc->state_bytes || sc->state_save || sc->state_load;
        bool all = sc->state_bytes && sc->state_save && sc->state_load;
        assert_true(any == all);
        /* an options table comes with its struct size */
        if (sc->options && sc->options->n_keys > 0) assert_true(sc->cfg_size > 0);
        sc->layer_destroy(NULL); /* accepts NULL */
    }
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const Scheme *sc = scheme_find(expected[i]);
        assert_non_null(sc);
        assert_string_equal(sc->name, expected[i]);
    }
    assert_int_equal(n, (int)(sizeof expected / sizeof expected[0]));
    assert_null(scheme_find("nope"));
    assert_null(scheme_find("Dense"));
    assert_null(scheme_find(""));
    assert_null(scheme_find(NULL));
}

static double option_value(const Scheme *sc, const void *cfg, const char *key) {
    char buf[64];
    assert_true(config_get_text(sc->options, cfg, key, buf, sizeof buf) > 0);
    return strtod(buf, NULL);
}

static void test_scheme_options(void **state) {
    (void)state;
    const Scheme *th = scheme_find("threshold"), *dense = scheme_find("dense"), *mp = scheme_find("meprop");
    assert_non_null(th);
    void *cfg = mem_calloc(1, th->cfg_size);
    assert_non_null(cfg);
    TuCapture cap;
    int rc;
    CfgExtra e;

    /* defaults */
    memset(&e, 0, sizeof e);
    assert_int_equal(scheme_options(th, cfg, &e), 0);
    assert_true(option_value(th, cfg, "margin") == 0.05);
    assert_true(option_value(th, cfg, "tau_init") == 1e-7);
    assert_true(option_value(th, cfg, "tau_min") == 1e-30);
    assert_true(option_value(th, cfg, "tau_max") == 1.0);

    /* good keys, from the command line or its own section */
    extra_add(&e, "scheme.margin", "0.1");
    extra_add(&e, "scheme.tau_init", "1e-3");
    assert_int_equal(scheme_options(th, cfg, &e), 0);
    assert_true(option_value(th, cfg, "margin") == 0.1);
    assert_true(option_value(th, cfg, "tau_init") == 1e-3);
    snprintf(e.section, sizeof e.section, "threshold");
    assert_int_equal(scheme_options(th, cfg, &e), 0);
    /* options start from the defaults every time */
    assert_int_equal(scheme_options(th, cfg, NULL), 0);
    assert_true(option_value(th, cfg, "margin") == 0.05);

    /* an unknown key names the scheme and lists its keys */
    memset(&e, 0, sizeof e);
    extra_add(&e, "scheme.marign", "0.1");
    TU_CAPTURE(&cap, rc = scheme_options(th, cfg, &e));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(cap.text, "scheme.marign");
    assert_log_has(cap.text, "threshold");
    assert_log_has(cap.text, "margin, tau_init, tau_min, tau_max");

    /* bad values: not a number, out of range */
    static const char *bad[][2] = {{"scheme.margin", "abc"}, {"scheme.margin", "1.5"}, {"scheme.tau_min", "0"},
                                   {"scheme.tau_max", "nan"}, {"scheme.tau_init", "-1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        extra_add(&e, bad[i][0], bad[i][1]);
        TU_CAPTURE(&cap, rc = scheme_options(th, cfg, &e));
        if (rc != ERR_CONFIG) fail_msg("%s=%s: rc %d, expected ERR_CONFIG", bad[i][0], bad[i][1], rc);
        assert_log_has(cap.text, bad[i][0]);
    }

    /* options of another scheme's section */
    memset(&e, 0, sizeof e);
    snprintf(e.section, sizeof e.section, "resprop");
    extra_add(&e, "scheme.margin", "0.1");
    TU_CAPTURE(&cap, rc = scheme_options(th, cfg, &e));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(cap.text, "options given for scheme resprop but the run uses threshold");
    /* an empty section of another scheme is still a mistake */
    memset(&e, 0, sizeof e);
    snprintf(e.section, sizeof e.section, "meprop");
    TU_CAPTURE(&cap, rc = scheme_options(dense, NULL, &e));
    assert_int_equal(rc, ERR_CONFIG);

    /* schemes without options take no keys */
    memset(&e, 0, sizeof e);
    assert_int_equal(scheme_options(dense, NULL, &e), 0);
    assert_int_equal(scheme_options(mp, NULL, NULL), 0);
    extra_add(&e, "scheme.margin", "0.1");
    TU_CAPTURE(&cap, rc = scheme_options(dense, NULL, &e));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(cap.text, "dense");
    TU_CAPTURE(&cap, rc = scheme_options(mp, NULL, &e));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(cap.text, "meprop");
    mem_free(cfg);
}

/* ---- the scheme.h contract, for every registered scheme ------------------------------------------ */

static void test_contract_all_schemes(void **state) {
    (void)state;
    GradShape sh = {4, 3, 5, 8};
    size_t n = grad_count(sh);
    for (int i = 0; scheme_registry[i]; i++) {
        Run r;
        run_open(&r, scheme_registry[i]->name, sh, 0.9, NULL);
        unsigned char *blob = NULL;
        size_t bytes = r.sc->state_bytes ? r.sc->state_bytes(r.state) : 0;
        if (bytes) {
            blob = mem_alloc(bytes);
            assert_non_null(blob);
        }
        for (long t = 0; t < 25; t++) {
            fill_normal(r.g, n, 1000 + (uint64_t)t);
            SchemeStep st = step_at(t, 77, 1);
            size_t allocs = mem_n_allocs(), live = mem_live_bytes();
            run_step(&r, &st);
            if (mem_n_allocs() != allocs || mem_live_bytes() != live)
                fail_msg("%s: sparsify allocated (step %ld)", r.sc->name, t);
            if (!(r.out.density >= 0.0 && r.out.density <= 1.0))
                fail_msg("%s: density %g at step %ld", r.sc->name, r.out.density, t);
            assert_true(isnan(r.out.tau) || r.out.tau >= 0.0);
            if (r.out.dense) {
                assert_null(r.out.r);
                assert_memory_equal(r.s, r.g, n * sizeof *r.g);
            }
            for (size_t j = 0; j < n; j++) assert_true(isfinite(r.s[j]));
            if (bytes) {
                allocs = mem_n_allocs();
                assert_true(r.sc->state_bytes(r.state) == bytes);
                r.sc->state_save(r.state, blob);
                assert_int_equal(r.sc->state_load(r.state, blob, bytes), 0);
                assert_true(mem_n_allocs() == allocs);
            }
        }
        mem_free(blob);
        run_close(&r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dense_identity, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_meprop_topk, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_meprop_ties, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_threshold_strict, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_threshold_controller, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_threshold_state, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_threshold_bad_options, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_random_unbiased, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_random_deterministic, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_layer_create_rejects, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_registry, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_scheme_options, leaks_setup, check_leaks),
        cmocka_unit_test_setup_teardown(test_contract_all_schemes, leaks_setup, check_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
