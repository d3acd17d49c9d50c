/* test_optim.c: SGD arithmetic against hand-computed steps, LR schedules at their breakpoints,
 * schedule parsing. Every expected value is worked out by hand in the comments. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/optim.h"

#define TOL_F 1e-6  /* float steps of O(1) values */
#define TOL_D 1e-12 /* double schedule values */

/* Runs one step and compares w (and v when not NULL) with the expected values. */
static void sgd_check(const char *what, float *w, const float *dw, float *v, size_t n,
                      const SgdParams *p, bool decay, bool first, const double *w_want,
                      const double *v_want) {
    optim_sgd_step(w, dw, v, n, p, decay, first);
    assert_close_fd(what, w, w_want, n, TOL_F);
    if (v_want) assert_close_fd(what, v, v_want, n, TOL_F);
}

static void test_sgd_plain(void **state) {
    (void)state;
    /* lr 0.5, no momentum, no decay; v = NULL is allowed.
     * step 1: w = [1, -2] - 0.5 * [0.5, 0.25] = [0.75, -2.125]
     * step 2: dw = [-1, 4]: w = [0.75 + 0.5, -2.125 - 2] = [1.25, -4.125] */
    SgdParams p = {.lr = 0.5, .momentum = 0.0, .weight_decay = 0.0, .nesterov = false};
    float w[2] = {1.0f, -2.0f};
    sgd_check("plain step 1", w, (const float[]){0.5f, 0.25f}, NULL, 2, &p, true, true,
              (const double[]){0.75, -2.125}, NULL);
    sgd_check("plain step 2", w, (const float[]){-1.0f, 4.0f}, NULL, 2, &p, true, false,
              (const double[]){1.25, -4.125}, NULL);
}

static void test_sgd_plain_decay(void **state) {
    (void)state;
    /* lr 0.5, wd 0.25, no momentum. g = dw + 0.25 * w.
     * decay on:  w = 2: g = 1 + 0.5 = 1.5, w = 2 - 0.75 = 1.25
     *            then g = 1 + 0.3125 = 1.3125, w = 1.25 - 0.65625 = 0.59375
     * decay off: w = 2: g = 1, w = 1.5; then w = 1.0 */
    SgdParams p = {.lr = 0.5, .momentum = 0.0, .weight_decay = 0.25, .nesterov = false};
    float one = 1.0f, w = 2.0f;
    sgd_check("decay step 1", &w, &one, NULL, 1, &p, true, true, (const double[]){1.25}, NULL);
    sgd_check("decay step 2", &w, &one, NULL, 1, &p, true, false, (const double[]){0.59375}, NULL);
    w = 2.0f;
    sgd_check("no-decay step 1", &w, &one, NULL, 1, &p, false, true, (const double[]){1.5}, NULL);
    sgd_check("no-decay step 2", &w, &one, NULL, 1, &p, false, false, (const double[]){1.0}, NULL);
}

static void test_sgd_momentum(void **state) {
    (void)state;
    /* lr 0.1, momentum 0.9, no decay, w = 1.
     * step 1 (first), dw = 1:  v = 1,                     w = 1 - 0.1          = 0.9
     * step 2, dw = 1:          v = 0.9 * 1 + 1 = 1.9,     w = 0.9 - 0.19       = 0.71
     * step 3, dw = 0.5:        v = 0.9 * 1.9 + 0.5 = 2.21, w = 0.71 - 0.221    = 0.489 */
    SgdParams p = {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
    float w = 1.0f, v = 0.0f;
    sgd_check("momentum step 1", &w, (const float[]){1.0f}, &v, 1, &p, true, true,
              (const double[]){0.9}, (const double[]){1.0});
    sgd_check("momentum step 2", &w, (const float[]){1.0f}, &v, 1, &p, true, false,
              (const double[]){0.71}, (const double[]){1.9});
    sgd_check("momentum step 3", &w, (const float[]){0.5f}, &v, 1, &p, true, false,
              (const double[]){0.489}, (const double[]){2.21});
}

static void test_sgd_first_ignores_v(void **state) {
    (void)state;
    /* `first` must overwrite v whatever it holds (garbage, NaN): v = g, not momentum * v + g.
     * lr 0.5, momentum 0.5, w = [1, 1], dw = [2, -2]: v = [2, -2], w = [1 - 1, 1 + 1] = [0, 2].
     * Without `first`, v = [0.5 * 100 + 2, ...] = [52, ...]: the same call with first = false on
     * v = 100 must give w = 1 - 0.5 * 52 = -25. */
    SgdParams p = {.lr = 0.5, .momentum = 0.5, .weight_decay = 0.0, .nesterov = false};
    float w[2] = {1.0f, 1.0f}, v[2] = {NAN, 1e30f};
    const float dw[2] = {2.0f, -2.0f};
    sgd_check("first ignores v", w, dw, v, 2, &p, true, true, (const double[]){0.0, 2.0},
              (const double[]){2.0, -2.0});
    float w1 = 1.0f, v1 = 100.0f;
    sgd_check("not first uses v", &w1, dw, &v1, 1, &p, true, false, (const double[]){-25.0},
              (const double[]){52.0});
}

static void test_sgd_momentum_decay(void **state) {
    (void)state;
    /* lr 0.5, momentum 0.5, wd 0.1, w = 2, dw = 1 each step.
     * decay on:
     *   step 1: g = 1 + 0.1 * 2 = 1.2,    v = 1.2,                    w = 2 - 0.6    = 1.4
     *   step 2: g = 1 + 0.1 * 1.4 = 1.14, v = 0.5 * 1.2 + 1.14 = 1.74, w = 1.4 - 0.87 = 0.53
     *   step 3: g = 1 + 0.053 = 1.053,    v = 0.87 + 1.053 = 1.923,   w = 0.53 - 0.9615 = -0.4315
     * decay off (BN, bias):
     *   step 1: g = 1, v = 1,   w = 1.5
     *   step 2: g = 1, v = 1.5, w = 0.75
     *   step 3: g = 1, v = 1.75, w = -0.125 */
    SgdParams p = {.lr = 0.5, .momentum = 0.5, .weight_decay = 0.1, .nesterov = false};
    const float one = 1.0f;
    float w = 2.0f, v = 0.0f;
    sgd_check("wd step 1", &w, &one, &v, 1, &p, true, true, (const double[]){1.4},
              (const double[]){1.2});
    sgd_check("wd step 2", &w, &one, &v, 1, &p, true, false, (const double[]){0.53},
              (const double[]){1.74});
    sgd_check("wd step 3", &w, &one, &v, 1, &p, true, false, (const double[]){-0.4315},
              (const double[]){1.923});
    w = 2.0f;
    v = 0.0f;
    sgd_check("no-wd step 1", &w, &one, &v, 1, &p, false, true, (const double[]){1.5},
              (const double[]){1.0});
    sgd_check("no-wd step 2", &w, &one, &v, 1, &p, false, false, (const double[]){0.75},
              (const double[]){1.5});
    sgd_check("no-wd step 3", &w, &one, &v, 1, &p, false, false, (const double[]){-0.125},
              (const double[]){1.75});
}

static void test_sgd_nesterov(void **state) {
    (void)state;
    /* lr 0.1, momentum 0.9, Nesterov, no decay, w = 1. d = g + 0.9 * v.
     * step 1 (first), dw = 1: v = 1,                    d = 1 + 0.9 = 1.9,          w = 1 - 0.19 = 0.81
     * step 2, dw = 1:         v = 0.9 + 1 = 1.9,        d = 1 + 1.71 = 2.71,        w = 0.81 - 0.271 = 0.539
     * step 3, dw = -1:        v = 1.71 - 1 = 0.71,      d = -1 + 0.639 = -0.361,    w = 0.539 + 0.0361 = 0.5751 */
    SgdParams p = {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.0, .nesterov = true};
    float w = 1.0f, v = 0.0f;
    sgd_check("nesterov step 1", &w, (const float[]){1.0f}, &v, 1, &p, true, true,
              (const double[]){0.81}, (const double[]){1.0});
    sgd_check("nesterov step 2", &w, (const float[]){1.0f}, &v, 1, &p, true, false,
              (const double[]){0.539}, (const double[]){1.9});
    sgd_check("nesterov step 3", &w, (const float[]){-1.0f}, &v, 1, &p, true, false,
              (const double[]){0.5751}, (const double[]){0.71});
}

static void test_sgd_nesterov_decay(void **state) {
    (void)state;
    /* lr 0.5, momentum 0.5, wd 0.25, Nesterov, w = 4, dw = 0 (pure decay).
     * decay on:
     *   step 1: g = 1,      v = 1,                     d = 1 + 0.5 = 1.5,          w = 4 - 0.75 = 3.25
     *   step 2: g = 0.8125, v = 0.5 + 0.8125 = 1.3125, d = 0.8125 + 0.65625 = 1.46875,
     *           w = 3.25 - 0.734375 = 2.515625
     * decay off: g = 0, v = 0, w stays 4. */
    SgdParams p = {.lr = 0.5, .momentum = 0.5, .weight_decay = 0.25, .nesterov = true};
    const float zero = 0.0f;
    float w = 4.0f, v = 0.0f;
    sgd_check("nesterov wd step 1", &w, &zero, &v, 1, &p, true, true, (const double[]){3.25},
              (const double[]){1.0});
    sgd_check("nesterov wd step 2", &w, &zero, &v, 1, &p, true, false, (const double[]){2.515625},
              (const double[]){1.3125});
    w = 4.0f;
    sgd_check("nesterov no-wd", &w, &zero, &v, 1, &p, false, true, (const double[]){4.0},
              (const double[]){0.0});
}

/* A tensor above the OpenMP threshold (and of odd length, for the simd tail), against the formula
 * written out in double: two momentum + Nesterov + decay steps. The buffers live in a fixture so
 * a failing assertion does not leak them into the next test's leak check. */
#define LARGE_N (((size_t)1 << 16) + 3)

typedef struct {
    float *w, *dw, *v;       /* (LARGE_N) */
    double *w_want, *v_want; /* (LARGE_N) */
} LargeBufs;

static int large_teardown(void **state) {
    LargeBufs *b = *state;
    if (b) {
        mem_free(b->w);
        mem_free(b->dw);
        mem_free(b->v);
        mem_free(b->w_want);
        mem_free(b->v_want);
        mem_free(b);
    }
    return mem_live_bytes() == 0 ? 0 : -1;
}

static int large_setup(void **state) {
    LargeBufs *b = mem_calloc(1, sizeof *b);
    *state = b;
    if (!b) return -1;
    b->w = mem_alloc(LARGE_N * sizeof *b->w);
    b->dw = mem_alloc(LARGE_N * sizeof *b->dw);
    b->v = mem_alloc(LARGE_N * sizeof *b->v);
    b->w_want = mem_alloc(LARGE_N * sizeof *b->w_want);
    b->v_want = mem_alloc(LARGE_N * sizeof *b->v_want);
    if (b->w && b->dw && b->v && b->w_want && b->v_want) return 0;
    large_teardown(state);
    return -1;
}

static void test_sgd_large(void **state) {
    LargeBufs *b = *state;
    const size_t n = LARGE_N;
    const double lr = 0.125, m = 0.5, wd = 0.25;
    SgdParams p = {.lr = lr, .momentum = m, .weight_decay = wd, .nesterov = true};
    for (size_t i = 0; i < n; i++) {
        b->w[i] = (float)((int)(i % 17) - 8) * 0.25f;
        b->dw[i] = (float)((int)(i % 5) - 2) * 0.5f;
        b->v[i] = NAN; /* the first step must not read it */
    }
    for (int step = 0; step < 2; step++) {
        for (size_t i = 0; i < n; i++) {
            double g = (double)b->dw[i] + wd * (double)b->w[i];
            double vi = step == 0 ? g : m * (double)b->v[i] + g;
            b->v_want[i] = vi;
            b->w_want[i] = (double)b->w[i] - lr * (g + m * vi);
        }
        optim_sgd_step(b->w, b->dw, b->v, n, &p, true, step == 0);
        assert_close_fd("large w", b->w, b->w_want, n, TOL_F);
        assert_close_fd("large v", b->v, b->v_want, n, TOL_F);
    }
}

/* ---- schedules ---- */

static void assert_lr(const char *what, const Schedule *s, double epoch, double total, double want) {
    double got = sched_lr(s, epoch, total);
    assert_close_d(what, &got, &want, 1, TOL_D);
}

static void test_sched_constant(void **state) {
    (void)state;
    Schedule s = {.kind = SCHED_CONSTANT, .lr = 0.1};
    assert_lr("constant 0", &s, 0.0, 90.0, 0.1);
    assert_lr("constant 45", &s, 45.0, 90.0, 0.1);
    assert_lr("constant 90", &s, 90.0, 90.0, 0.1);
    /* warm-up 4 epochs: 0 at 0, 0.1 * 1/4 = 0.025 at 1, 0.05 at 2 (half), 0.1 at 4 (end) */
    s.warmup_epochs = 4.0;
    assert_lr("constant warm-up 0", &s, 0.0, 90.0, 0.0);
    assert_lr("constant warm-up 1", &s, 1.0, 90.0, 0.025);
    assert_lr("constant warm-up half", &s, 2.0, 90.0, 0.05);
    assert_lr("constant warm-up end", &s, 4.0, 90.0, 0.1);
    assert_lr("constant after warm-up", &s, 10.0, 90.0, 0.1);
}

static void test_sched_step(void **state) {
    (void)state;
    /* lr 0.1, gamma 0.1, milestones 30, 60: 0.1 below 30, 0.01 from 30, 0.001 from 60 */
    Schedule s = {.kind = SCHED_STEP, .lr = 0.1, .gamma = 0.1, .n_milestones = 2,
                  .milestones = {30.0, 60.0}};
    assert_lr("step 0", &s, 0.0, 90.0, 0.1);
    assert_lr("step just before 30", &s, 29.999, 90.0, 0.1);
    assert_lr("step at 30", &s, 30.0, 90.0, 0.01);
    assert_lr("step 45", &s, 45.0, 90.0, 0.01);
    assert_lr("step just before 60", &s, 59.999, 90.0, 0.01);
    assert_lr("step at 60", &s, 60.0, 90.0, 0.001);
    assert_lr("step at end", &s, 90.0, 90.0, 0.001);
    /* fractional milestone 2.5, gamma 0.5 */
    Schedule f = {.kind = SCHED_STEP, .lr = 1.0, .gamma = 0.5, .n_milestones = 1,
                  .milestones = {2.5}};
    assert_lr("step before 2.5", &f, 2.4, 10.0, 1.0);
    assert_lr("step at 2.5", &f, 2.5, 10.0, 0.5);
    /* warm-up 5 on the step schedule: 0.1 * 2.5 / 5 = 0.05 at 2.5; milestones are absolute */
    s.warmup_epochs = 5.0;
    assert_lr("step warm-up 0", &s, 0.0, 90.0, 0.0);
    assert_lr("step warm-up half", &s, 2.5, 90.0, 0.05);
    assert_lr("step warm-up end", &s, 5.0, 90.0, 0.1);
    assert_lr("step warm-up at 30", &s, 30.0, 90.0, 0.01);
}

static void test_sched_cosine(void **state) {
    (void)state;
    /* lr 0.1, lr_min 0.001, T = 100, no warm-up: lr_min + 0.099 * 0.5 * (1 + cos(pi t / T))
     * t = 0:   0.1
     * t = 25:  0.001 + 0.0495 * (1 + 0.70710678118654752) = 0.001 + 0.084501785668734102
     *        = 0.085501785668734102
     * t = 50:  0.001 + 0.0495 = 0.0505
     * t = 100: 0.001; beyond T it stays at 0.001 */
    Schedule s = {.kind = SCHED_COSINE, .lr = 0.1, .lr_min = 0.001};
    assert_lr("cosine 0", &s, 0.0, 100.0, 0.1);
    assert_lr("cosine T/4", &s, 25.0, 100.0, 0.085501785668734102);
    assert_lr("cosine T/2", &s, 50.0, 100.0, 0.0505);
    assert_lr("cosine T", &s, 100.0, 100.0, 0.001);
    assert_lr("cosine past T", &s, 120.0, 100.0, 0.001);
    /* warm-up 5 of 105 epochs: linear 0 -> 0.1 over [0, 5], then the cosine over [5, 105]
     * 0: 0;  2.5: 0.1 * 0.5 = 0.05;  5: 0.1;  55 (half the cosine): 0.0505;  105: 0.001 */
    s.warmup_epochs = 5.0;
    assert_lr("cosine warm-up 0", &s, 0.0, 105.0, 0.0);
    assert_lr("cosine warm-up half", &s, 2.5, 105.0, 0.05);
    assert_lr("cosine warm-up end", &s, 5.0, 105.0, 0.1);
    assert_lr("cosine warm-up T/2", &s, 55.0, 105.0, 0.0505);
    assert_lr("cosine warm-up T", &s, 105.0, 105.0, 0.001);
}

static void test_sched_onecycle(void **state) {
    (void)state;
    /* lr 0.1, div 25, final_div 1e4, pct_start 0.25, 100 epochs:
     * start lr0 = 0.1 / 25 = 0.004, end = 0.004 / 1e4 = 4e-7
     * rise (cosine) over [0, 25]:  12.5: 0.1 + (0.004 - 0.1) * 0.5 * (1 + cos(pi/2)) = 0.052
     * peak at 25: 0.1
     * fall over [25, 100]:  62.5: 4e-7 + (0.1 - 4e-7) * 0.5 = 0.0500002
     *                       43.75 (a quarter of the fall): 4e-7 + 0.0999996 * 0.5 * (1 + cos(pi/4))
     *                         = 4e-7 + 0.0999996 * 0.85355339059327376
     *                         = 4e-7 + 0.085354997637971 = 0.085355397637971
     * end at 100: 4e-7. warmup_epochs is ignored by onecycle. */
    Schedule s = {.kind = SCHED_ONECYCLE, .lr = 0.1, .pct_start = 0.25, .div_factor = 25.0,
                  .final_div = 1e4, .warmup_epochs = 5.0};
    assert_lr("onecycle start", &s, 0.0, 100.0, 0.004);
    assert_lr("onecycle mid-rise", &s, 12.5, 100.0, 0.052);
    assert_lr("onecycle peak", &s, 25.0, 100.0, 0.1);
    assert_lr("onecycle mid-fall", &s, 62.5, 100.0, 0.0500002);
    assert_lr("onecycle quarter-fall", &s, 43.75, 100.0, 0.085355397637971);
    assert_lr("onecycle end", &s, 100.0, 100.0, 4e-7);
    /* it rises monotonically before the peak and falls after it */
    assert_true(sched_lr(&s, 24.0, 100.0) < 0.1 && sched_lr(&s, 24.0, 100.0) > 0.052);
    assert_true(sched_lr(&s, 26.0, 100.0) < 0.1 && sched_lr(&s, 26.0, 100.0) > 0.0500002);
}

/* ---- parsing ---- */

static void test_sched_parse_accept(void **state) {
    (void)state;
    Schedule s = {.kind = SCHED_COSINE, .lr = 0.3, .gamma = 0.2, .warmup_epochs = 2.0};
    assert_int_equal(sched_parse(&s, "step:30,60"), 0);
    assert_int_equal(s.kind, SCHED_STEP);
    assert_int_equal(s.n_milestones, 2);
    assert_true(s.milestones[0] == 30.0 && s.milestones[1] == 60.0);
    /* other fields untouched */
    assert_true(s.lr == 0.3 && s.gamma == 0.2 && s.warmup_epochs == 2.0);

    assert_int_equal(sched_parse(&s, "step:10"), 0);
    assert_int_equal(s.n_milestones, 1);
    assert_true(s.milestones[0] == 10.0);

    assert_int_equal(sched_parse(&s, "step:0,2.5,1e1"), 0);
    assert_int_equal(s.n_milestones, 3);
    assert_true(s.milestones[0] == 0.0 && s.milestones[1] == 2.5 && s.milestones[2] == 10.0);

    assert_int_equal(sched_parse(&s, "step:1,2,3,4,5,6,7,8"), 0);
    assert_int_equal(s.n_milestones, SCHED_MAX_MILESTONES);
    assert_true(s.milestones[7] == 8.0);

    assert_int_equal(sched_parse(&s, "constant"), 0);
    assert_int_equal(s.kind, SCHED_CONSTANT);
    assert_int_equal(s.n_milestones, 0);
    assert_int_equal(sched_parse(&s, "cosine"), 0);
    assert_int_equal(s.kind, SCHED_COSINE);
    assert_int_equal(sched_parse(&s, "onecycle"), 0);
    assert_int_equal(s.kind, SCHED_ONECYCLE);
    assert_true(s.lr == 0.3 && s.gamma == 0.2 && s.warmup_epochs == 2.0);
}

/* sched_parse with stderr captured into *cap (the message is then cap->text). */
static int parse_captured(Schedule *s, const char *text, TuCapture *cap) {
    int rc;
    TU_CAPTURE(cap, rc = sched_parse(s, text));
    return rc;
}

static void test_sched_parse_reject(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",          "linear",     "Cosine",       "cosine ",     "constant:5", "step",
        "step:",     "step:,30",   "step:30,",     "step:30,,60", "step:60,30", "step:30,30",
        "step:-5",   "step:30x",   "step:1e",      "step: 30",    "step:nan",   "step:inf",
        "step:0x10", "step:1+2",   "step:1,2,3,4,5,6,7,8,9",     "step;30",    "step:3-0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Schedule s = {.kind = SCHED_COSINE, .lr = 0.1, .n_milestones = 1, .milestones = {7.0}};
        TuCapture cap;
        char quoted[128];
        int rc = parse_captured(&s, bad[i], &cap);
        if (rc != ERR_CONFIG) {
            print_error("sched_parse(\"%s\") returned %d, want ERR_CONFIG\n", bad[i], rc);
            fail();
        }
        /* an error-level message quoting the whole text */
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        if (!strstr(cap.text, "error") || !strstr(cap.text, quoted)) {
            print_error("sched_parse(\"%s\"): message does not name the text: %s\n", bad[i], cap.text);
            fail();
        }
        /* *s unchanged on error */
        assert_int_equal(s.kind, SCHED_COSINE);
        assert_int_equal(s.n_milestones, 1);
        assert_true(s.milestones[0] == 7.0 && s.lr == 0.1);
    }
    Schedule s = {0};
    TuCapture cap;
    assert_int_equal(parse_captured(&s, NULL, &cap), ERR_CONFIG);
    assert_non_null(strstr(cap.text, "error"));
}

/* The message also names the offending milestone itself. */
static void test_sched_parse_message(void **state) {
    (void)state;
    Schedule s = {0};
    TuCapture cap;
    assert_int_equal(parse_captured(&s, "step:30,abc", &cap), ERR_CONFIG);
    assert_non_null(strstr(cap.text, "\"abc\""));
    assert_int_equal(parse_captured(&s, "step:30,20", &cap), ERR_CONFIG);
    assert_non_null(strstr(cap.text, "\"20\""));
    assert_non_null(strstr(cap.text, "ascending"));
    assert_int_equal(parse_captured(&s, "step:-1", &cap), ERR_CONFIG);
    assert_non_null(strstr(cap.text, "negative"));
}

/* Every test leaves no allocation behind. */
static int check_leaks(void **state) {
    (void)state;
    return mem_live_bytes() == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sgd_plain, check_leaks),
        cmocka_unit_test_teardown(test_sgd_plain_decay, check_leaks),
        cmocka_unit_test_teardown(test_sgd_momentum, check_leaks),
        cmocka_unit_test_teardown(test_sgd_first_ignores_v, check_leaks),
        cmocka_unit_test_teardown(test_sgd_momentum_decay, check_leaks),
        cmocka_unit_test_teardown(test_sgd_nesterov, check_leaks),
        cmocka_unit_test_teardown(test_sgd_nesterov_decay, check_leaks),
        cmocka_unit_test_setup_teardown(test_sgd_large, large_setup, large_teardown),
        cmocka_unit_test_teardown(test_sched_constant, check_leaks),
        cmocka_unit_test_teardown(test_sched_step, check_leaks),
        cmocka_unit_test_teardown(test_sched_cosine, check_leaks),
        cmocka_unit_test_teardown(test_sched_onecycle, check_leaks),
        cmocka_unit_test_teardown(test_sched_parse_accept, check_leaks),
        cmocka_unit_test_teardown(test_sched_parse_reject, check_leaks),
        cmocka_unit_test_teardown(test_sched_parse_message, check_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
