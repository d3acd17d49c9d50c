/* test_ref.c: the double-precision references of tests/ref.c against centred finite differences of
 * their own forward passes (loss L = sum(y .* g) for a random projection g), a few hand-computed
 * golden values that pin the layout conventions (which finite differences cannot see), and the
 * reference network interpreter against finite differences on a hand-built residual network. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/rng.h"
#include "tests/ref.h"
#include "tests/testutil.h"

#define FD_STEP 1e-5
#define FD_TOL 1e-6


static void fill_normal(Rng *rng, double *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = rng_normal(rng);
}

/* Values at least 0.05 away from zero, so a step of FD_STEP never crosses a ReLU kink. */
static void fill_away_from_zero(Rng *rng, double *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = rng_normal(rng);
        a[i] = v < 0 ? v - 0.05 : v + 0.05;
    }
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Objective L(ctx) and the centred finite-difference check of its gradient with respect to t[0..n)
 * (t points into ctx's tensors) against `analytic`. */
typedef double (*ObjFn)(void *ctx);

static void fd_check(const char *what, ObjFn f, void *ctx, double *t, size_t n, const double *analytic) {
    double *num = tu_dalloc(n);
    for (size_t i = 0; i < n; i++) {
        double save = t[i];
        t[i] = save + FD_STEP;
        double lp = f(ctx);
        t[i] = save - FD_STEP;
        double lm = f(ctx);
        t[i] = save;
        num[i] = (lp - lm) / (2 * FD_STEP);
    }
    assert_close_d(what, analytic, num, n, FD_TOL);
    mem_free(num);
}

/* ---- one layer with its tensors ------------------------------------------------------------- */

typedef struct {
    LayerSpec s;
    Dims4 in, out;
    double *x[2];    /* inputs (N,H,W,C); x[1] only for add */
    double *p[2];    /* weight/gamma, bias/beta (plain layouts); NULL when absent */
    size_t pn[2];
    double *y, *g;   /* output and projection, (out) */
    double *mean, *var; /* bn batch statistics (C) */
    int32_t *labels; /* loss (N) */
} Case;

static void case_init(Case *c, const LayerSpec *s, Dims4 in, Rng *rng) {
    memset(c, 0, sizeof *c);
    c->s = *s;
    c->in = in;
    Dims4 ins[2] = {in, in};
    assert_int_equal(ref_out_dims(s, ins, &c->out), 0);
    size_t nx = dims_count(in), ny = dims_count(c->out);
    bool kinks = s->kind == LAYER_RELU || s->kind == LAYER_ADD;
    for (int j = 0; j < (s->kind == LAYER_ADD ? 2 : 1); j++) {
        c->x[j] = tu_dalloc(nx);
        (kinks ? fill_away_from_zero : fill_normal)(rng, c->x[j], nx);
    }
    for (int j = 0; j < ref_n_params(s); j++) {
        c->pn[j] = ref_param_count(s, in, j);
        c->p[j] = tu_dalloc(c->pn[j]);
        fill_normal(rng, c->p[j], c->pn[j]);
    }
    c->y = tu_dalloc(ny);
    c->g = tu_dalloc(ny);
    fill_normal(rng, c->g, ny);
    c->mean = tu_dalloc((size_t)in.c);
    c->var = tu_dalloc((size_t)in.c);
    c->labels = mem_calloc((size_t)in.n, sizeof *c->labels);
    assert_non_null(c->labels);
    for (int i = 0; i < in.n; i++) c->labels[i] = (int32_t)rng_below(rng, (uint64_t)in.c);
}

static void case_deinit(Case *c) {
    for (int j = 0; j < 2; j++) {
        mem_free(c->x[j]);
        mem_free(c->p[j]);
    }
    mem_free(c->y);
    mem_free(c->g);
    mem_free(c->mean);
    mem_free(c->var);
    mem_free(c->labels);
}

static double proj(Case *c) { return dot(c->y, c->g, dims_count(c->out)); }

static double obj_conv(void *ctx) {
    Case *c = ctx;
    ref_conv_fwd(&c->s, c->in, c->x[0], c->p[0], c->p[1], c->y);
    return proj(c);
}
static double obj_bn(void *ctx) {
    Case *c = ctx;
    ref_bn_fwd_train(c->in, c->x[0], c->p[0], c->p[1], c->s.relu, c->y, c->mean, c->var);
    return proj(c);
}
static double obj_relu(void *ctx) {
    Case *c = ctx;
    ref_relu_fwd(dims_count(c->in), c->x[0], c->y);
    return proj(c);
}
static double obj_maxpool(void *ctx) {
    Case *c = ctx;
    ref_maxpool_fwd(&c->s, c->in, c->x[0], c->y);
    return proj(c);
}
static double obj_avgpool(void *ctx) {
    Case *c = ctx;
    ref_avgpool_fwd(&c->s, c->in, c->x[0], c->y);
    return proj(c);
}
static double obj_gap(void *ctx) {
    Case *c = ctx;
    ref_gap_fwd(c->in, c->x[0], c->y);
    return proj(c);
}
static double obj_fc(void *ctx) {
    Case *c = ctx;
    ref_fc_fwd(c->in, c->s.out_c, c->x[0], c->p[0], c->p[1], c->y);
    return proj(c);
}
static double obj_add(void *ctx) {
    Case *c = ctx;
    ref_add_fwd(dims_count(c->in), c->x[0], c->x[1], c->s.relu, c->y);
    return proj(c);
}
static double obj_loss(void *ctx) {
    Case *c = ctx;
    return ref_softmax_ce_fwd(c->in.n, c->in.c, c->x[0], c->labels, c->y);
}

/* Spec helpers. */
static LayerSpec spec_win(LayerKind kind, int out_c, int kh, int kw, int stride, int pad, bool bias) {
    LayerSpec s = {.kind = kind, .name = "t", .in = {0, -1}, .out_c = out_c, .kh = kh, .kw = kw,
                   .stride = stride, .pad = pad, .bias = bias};
    return s;
}
static LayerSpec spec_plain(LayerKind kind, bool relu) {
    LayerSpec s = {.kind = kind, .name = "t", .in = {0, -1}, .relu = relu};
    if (kind == LAYER_ADD) s.in[1] = 0;
    return s;
}

/* ---- finite-difference tests ---------------------------------------------------------------- */

static void test_conv_fd(void **state) {
    static const struct {
        Dims4 in;
        int k, kh, kw, stride, pad;
        bool bias;
    } cfg[] = {
        {{2, 3, 5, 6}, 4, 3, 3, 1, 1, true},  {{2, 4, 6, 5}, 3, 1, 1, 2, 0, false},
        {{1, 2, 7, 7}, 3, 3, 3, 2, 1, true},  {{2, 3, 6, 6}, 2, 5, 5, 1, 0, true},
        {{1, 2, 5, 6}, 3, 3, 1, 2, 1, false}, {{2, 3, 9, 9}, 2, 5, 5, 2, 1, false},
    };
    size_t base = mem_live_bytes();
    Rng rng;
    rng_init(&rng, 11);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        LayerSpec s = spec_win(LAYER_CONV, cfg[t].k, cfg[t].kh, cfg[t].kw, cfg[t].stride, cfg[t].pad,
                               cfg[t].bias);
        Case c;
        case_init(&c, &s, cfg[t].in, &rng);
        double *dx = tu_dalloc(dims_count(c.in)), *dw = tu_dalloc(c.pn[0]), *db = tu_dalloc(c.out.c);
        ref_conv_bwd_data(&s, c.in, c.p[0], c.g, dx);
        ref_conv_bwd_weights(&s, c.in, c.x[0], c.g, dw, c.p[1] ? db : NULL);
        fd_check("conv dx", obj_conv, &c, c.x[0], dims_count(c.in), dx);
        fd_check("conv dw", obj_conv, &c, c.p[0], c.pn[0], dw);
        if (c.p[1]) fd_check("conv db", obj_conv, &c, c.p[1], c.pn[1], db);
        mem_free(dx);
        mem_free(dw);
        mem_free(db);
        case_deinit(&c);
    }
    assert_int_equal(mem_live_bytes(), base);
}

static void test_bn_fd(void **state) {
    static const Dims4 dims[] = {{2, 3, 3, 4}, {4, 2, 1, 1}, {1, 5, 4, 3}};
    Rng rng;
    rng_init(&rng, 12);
    for (int relu = 0; relu <= 1; relu++)
        for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
            LayerSpec s = spec_plain(LAYER_BN, relu);
            Case c;
            case_init(&c, &s, dims[t], &rng);
            size_t nx = dims_count(c.in);
            double *dx = tu_dalloc(nx), *dg = tu_dalloc(c.pn[0]), *dbt = tu_dalloc(c.pn[1]);
            ref_bn_bwd(c.in, c.x[0], c.p[0], c.p[1], s.relu, c.g, dx, dg, dbt);
            fd_check(relu ? "bn+relu dx" : "bn dx", obj_bn, &c, c.x[0], nx, dx);
            fd_check(relu ? "bn+relu dgamma" : "bn dgamma", obj_bn, &c, c.p[0], c.pn[0], dg);
            fd_check(relu ? "bn+relu dbeta" : "bn dbeta", obj_bn, &c, c.p[1], c.pn[1], dbt);
            /* Inference with the batch statistics is the training forward. */
            double *yi = tu_dalloc(nx);
            obj_bn(&c);
            ref_bn_fwd_infer(c.in, c.x[0], c.p[0], c.p[1], c.mean, c.var, s.relu, yi);
            assert_close_d("bn infer == train with batch stats", yi, c.y, nx, 1e-15);
            mem_free(yi);
            mem_free(dx);
            mem_free(dg);
            mem_free(dbt);
            case_deinit(&c);
        }
}

/* Golden numbers: per channel x = {1,2,3,4} (N=4): mean 2.5, biased var 1.25, unbiased 5/3. */
static void test_bn_running_golden(void **state) {
    Dims4 d = {4, 2, 1, 1};
    double x[8] = {1, -1, 2, -2, 3, -3, 4, -4}, mean[2], var[2], y[8];
    double gamma[2] = {1, 1}, beta[2] = {0, 0}, rm[2] = {0, 1}, rv[2] = {1, 2};
    ref_bn_fwd_train(d, x, gamma, beta, false, y, mean, var);
    assert_true(fabs(mean[0] - 2.5) < 1e-15 && fabs(mean[1] + 2.5) < 1e-15);
    assert_true(fabs(var[0] - 1.25) < 1e-15 && fabs(var[1] - 1.25) < 1e-15);
    assert_true(fabs(y[0] + 1.5 / sqrt(1.25 + 1e-5)) < 1e-14);
    ref_bn_update_running(2, 4, mean, var, rm, rv);
    assert_true(fabs(rm[0] - 0.25) < 1e-15 && fabs(rm[1] - (0.9 - 0.25)) < 1e-15);
    assert_true(fabs(rv[0] - (0.9 + 0.1 * 5.0 / 3.0)) < 1e-15);
    assert_true(fabs(rv[1] - (1.8 + 0.1 * 5.0 / 3.0)) < 1e-15);
}

static void test_relu_fd(void **state) {
    Rng rng;
    rng_init(&rng, 13);
    LayerSpec s = spec_plain(LAYER_RELU, false);
    Case c;
    case_init(&c, &s, (Dims4){2, 3, 4, 5}, &rng);
    size_t n = dims_count(c.in);
    double *dx = tu_dalloc(n);
    ref_relu_bwd(n, c.x[0], c.g, dx);
    fd_check("relu dx", obj_relu, &c, c.x[0], n, dx);
    mem_free(dx);
    case_deinit(&c);
}

static void test_pool_fd(void **state) {
    static const struct {
        Dims4 in;
        int kh, kw, stride, pad;
    } cfg[] = {
        {{2, 3, 7, 7}, 3, 3, 2, 1}, {{2, 2, 6, 4}, 2, 2, 2, 0}, {{1, 3, 5, 6}, 3, 3, 1, 1},
        {{2, 2, 8, 8}, 3, 3, 2, 0}, {{1, 2, 5, 5}, 2, 3, 2, 1},
    };
    Rng rng;
    rng_init(&rng, 14);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int avg = 0; avg <= 1; avg++) {
            LayerSpec s = spec_win(avg ? LAYER_AVGPOOL : LAYER_MAXPOOL, 0, cfg[t].kh, cfg[t].kw,
                                   cfg[t].stride, cfg[t].pad, false);
            Case c;
            case_init(&c, &s, cfg[t].in, &rng);
            size_t n = dims_count(c.in);
            double *dx = tu_dalloc(n);
            if (avg) {
                ref_avgpool_bwd(&s, c.in, c.g, dx);
                fd_check("avgpool dx", obj_avgpool, &c, c.x[0], n, dx);
            } else {
                ref_maxpool_bwd(&s, c.in, c.x[0], c.g, dx);
                fd_check("maxpool dx", obj_maxpool, &c, c.x[0], n, dx);
            }
            mem_free(dx);
            case_deinit(&c);
        }
}

/* Max pool conventions: padding never wins (all-negative input), ties go to the first maximum in
 * row-major window order; avg pool divides by kh*kw including padding. */
static void test_pool_golden(void **state) {
    Dims4 in = {1, 1, 2, 2};
    LayerSpec s = spec_win(LAYER_MAXPOOL, 0, 3, 3, 2, 1, false); /* one output covering all 4 */
    double x[4] = {-3, -2, -2, -5}, y[1], dy[1] = {1}, dx[4];
    ref_maxpool_fwd(&s, in, x, y);
    assert_true(y[0] == -2);
    ref_maxpool_bwd(&s, in, x, dy, dx);
    assert_true(dx[0] == 0 && dx[1] == 1 && dx[2] == 0 && dx[3] == 0);
    LayerSpec a = spec_win(LAYER_AVGPOOL, 0, 3, 3, 2, 1, false);
    double ones[4] = {1, 1, 1, 1};
    ref_avgpool_fwd(&a, in, ones, y);
    assert_true(fabs(y[0] - 4.0 / 9.0) < 1e-15);
    ref_avgpool_bwd(&a, in, dy, dx);
    for (int i = 0; i < 4; i++) assert_true(fabs(dx[i] - 1.0 / 9.0) < 1e-15);
}

static void test_gap_fd(void **state) {
    Rng rng;
    rng_init(&rng, 15);
    LayerSpec s = spec_plain(LAYER_GAP, false);
    Case c;
    case_init(&c, &s, (Dims4){3, 4, 3, 5}, &rng);
    size_t n = dims_count(c.in);
    double *dx = tu_dalloc(n);
    ref_gap_bwd(c.in, c.g, dx);
    fd_check("gap dx", obj_gap, &c, c.x[0], n, dx);
    mem_free(dx);
    case_deinit(&c);
}

static void test_fc_fd(void **state) {
    static const struct {
        Dims4 in;
        int k;
        bool bias;
    } cfg[] = {{{2, 3, 2, 2}, 5, true}, {{3, 6, 1, 1}, 4, false}, {{2, 2, 3, 1}, 3, true}};
    Rng rng;
    rng_init(&rng, 16);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        LayerSpec s = spec_win(LAYER_FC, cfg[t].k, 0, 0, 0, 0, cfg[t].bias);
        Case c;
        case_init(&c, &s, cfg[t].in, &rng);
        size_t n = dims_count(c.in);
        double *dx = tu_dalloc(n), *dw = tu_dalloc(c.pn[0]), *db = tu_dalloc((size_t)cfg[t].k);
        ref_fc_bwd(c.in, cfg[t].k, c.x[0], c.p[0], c.g, dx, dw, c.p[1] ? db : NULL);
        fd_check("fc dx", obj_fc, &c, c.x[0], n, dx);
        fd_check("fc dw", obj_fc, &c, c.p[0], c.pn[0], dw);
        if (c.p[1]) fd_check("fc db", obj_fc, &c, c.p[1], c.pn[1], db);
        mem_free(dx);
        mem_free(dw);
        mem_free(db);
        case_deinit(&c);
    }
}

static void test_add_fd(void **state) {
    Rng rng;
    rng_init(&rng, 17);
    for (int relu = 0; relu <= 1; relu++) {
        LayerSpec s = spec_plain(LAYER_ADD, relu);
        Case c;
        case_init(&c, &s, (Dims4){2, 3, 3, 2}, &rng);
        size_t n = dims_count(c.in);
        /* Keep x0 + x1 away from zero too: x1 = x0's sign times |x1|. */
        for (size_t i = 0; i < n; i++) c.x[1][i] = copysign(fabs(c.x[1][i]), c.x[0][i]);
        for (size_t i = 0; i < n; i++)
            if (i % 3 == 0) c.x[1][i] = -2 * c.x[0][i]; /* some negative sums */
        double *dx0 = tu_dalloc(n), *dx1 = tu_dalloc(n);
        obj_add(&c);
        ref_add_bwd(n, c.y, s.relu, c.g, dx0, dx1);
        fd_check("add dx0", obj_add, &c, c.x[0], n, dx0);
        fd_check("add dx1", obj_add, &c, c.x[1], n, dx1);
        mem_free(dx0);
        mem_free(dx1);
        case_deinit(&c);
    }
}

static void test_loss_fd(void **state) {
    Rng rng;
    rng_init(&rng, 18);
    LayerSpec s = spec_plain(LAYER_LOSS, false);
    Case c;
    case_init(&c, &s, (Dims4){5, 7, 1, 1}, &rng);
    size_t n = dims_count(c.in);
    double *dx = tu_dalloc(n);
    obj_loss(&c);
    for (int i = 0; i < c.in.n; i++) {
        double sum = 0;
        for (int j = 0; j < c.in.c; j++) sum += c.y[i * c.in.c + j];
        assert_true(fabs(sum - 1) < 1e-14);
    }
    ref_softmax_ce_bwd(c.in.n, c.in.c, c.y, c.labels, dx);
    fd_check("loss dx", obj_loss, &c, c.x[0], n, dx);
    /* Large logits do not overflow. */
    double big[3] = {1000, 0, -1000}, p[3];
    int32_t lab = 1;
    double l = ref_softmax_ce_fwd(1, 3, big, &lab, p);
    assert_true(fabs(l - 1000) < 1e-9 && fabs(p[0] - 1) < 1e-15);
    mem_free(dx);
    case_deinit(&c);
}

/* Layout goldens: padding placement, KCRS orientation, NHWC flattening of fc. */
static void test_layout_golden(void **state) {
    /* 1 channel, 3x3 input 1..9, all-ones 3x3 kernel, pad 1: centre 45, corner 1+2+4+5 = 12. */
    Dims4 in = {1, 1, 3, 3};
    double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], y[9];
    for (int i = 0; i < 9; i++) w[i] = 1;
    LayerSpec s = spec_win(LAYER_CONV, 1, 3, 3, 1, 1, false);
    ref_conv_fwd(&s, in, x, w, NULL, y);
    assert_true(y[4] == 45 && y[0] == 12 && y[8] == 5 + 6 + 8 + 9);
    /* C=2, 3x4 input; weight nonzero only at (k=1, c=1, r=0, s=2), K=2, pad 0: y(p,q,1) = x(p, q+2, 1). */
    Dims4 in2 = {1, 2, 3, 4};
    double x2[24], w2[2 * 2 * 3 * 3] = {0}, y2[1 * 2 * 1 * 2];
    for (int i = 0; i < 24; i++) x2[i] = i;
    w2[((1 * 2 + 1) * 3 + 0) * 3 + 2] = 1;
    LayerSpec s2 = spec_win(LAYER_CONV, 2, 3, 3, 1, 0, false);
    ref_conv_fwd(&s2, in2, x2, w2, NULL, y2);
    /* out (1,1,2,2) NHWC: y2[q*2 + k] */
    assert_true(y2[0] == 0 && y2[2] == 0);
    assert_true(y2[1] == x2[(0 * 4 + 2) * 2 + 1] && y2[3] == x2[(0 * 4 + 3) * 2 + 1]);
    /* fc weight index (h*W + w)*C + c picks x(n, h, w, c). */
    Dims4 in3 = {2, 3, 2, 2};
    double x3[24], w3[12] = {0}, y3[2];
    for (int i = 0; i < 24; i++) x3[i] = i;
    w3[(1 * 2 + 0) * 3 + 2] = 1; /* h=1, w=0, c=2 */
    ref_fc_fwd(in3, 1, x3, w3, NULL, y3);
    assert_true(y3[0] == x3[(1 * 2 + 0) * 3 + 2] && y3[1] == x3[12 + (1 * 2 + 0) * 3 + 2]);
}

static void test_out_dims(void **state) {
    Dims4 in[2] = {{2, 3, 8, 8}, {2, 3, 8, 8}}, o;
    LayerSpec s = spec_win(LAYER_CONV, 5, 3, 3, 2, 1, false);
    assert_int_equal(ref_out_dims(&s, in, &o), 0);
    assert_true(o.n == 2 && o.c == 5 && o.h == 4 && o.w == 4);
    s = spec_win(LAYER_MAXPOOL, 0, 3, 3, 2, 1, false);
    assert_int_equal(ref_out_dims(&s, in, &o), 0);
    assert_true(o.c == 3 && o.h == 4 && o.w == 4);
    s = spec_win(LAYER_FC, 10, 0, 0, 0, 0, true);
    assert_int_equal(ref_out_dims(&s, in, &o), 0);
    assert_true(o.c == 10 && o.h == 1 && o.w == 1);
    /* Expected: two logged shape errors. */
    Dims4 small[2] = {{1, 2, 3, 3}, {1, 2, 3, 3}};
    s = spec_win(LAYER_CONV, 4, 5, 5, 1, 0, false);
    assert_int_equal(ref_out_dims(&s, small, &o), ERR_SHAPE);
    Dims4 uneq[2] = {{1, 2, 3, 3}, {1, 2, 3, 4}};
    s = spec_plain(LAYER_ADD, false);
    assert_int_equal(ref_out_dims(&s, uneq, &o), ERR_SHAPE);
}

/* ---- the reference interpreter on a hand-built residual network ----------------------------- */

#define NO -1
static LayerSpec tiny_layers[] = {
    {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
    {.kind = LAYER_CONV, .name = "conv1", .in = {0, NO}, .out_c = 3, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
    {.kind = LAYER_BN, .name = "bn1", .in = {1, NO}, .relu = true},
    {.kind = LAYER_CONV, .name = "conv2", .in = {2, NO}, .out_c = 4, .kh = 3, .kw = 3, .stride = 2, .pad = 1},
    {.kind = LAYER_BN, .name = "bn2", .in = {3, NO}},
    {.kind = LAYER_CONV, .name = "down.conv", .in = {2, NO}, .out_c = 4, .kh = 1, .kw = 1, .stride = 2},
    {.kind = LAYER_BN, .name = "down.bn", .in = {5, NO}},
    {.kind = LAYER_ADD, .name = "add", .in = {4, 6}, .relu = true},
    {.kind = LAYER_GAP, .name = "gap", .in = {7, NO}},
    {.kind = LAYER_FC, .name = "fc", .in = {8, NO}, .out_c = 3, .bias = true},
    {.kind = LAYER_LOSS, .name = "loss", .in = {9, NO}},
};

static double obj_net(void *ctx) { return ref_net_forward(ctx, true); }

static void test_net_fd(void **state) {
    ModelSpec m = {.name = "tiny", .input = {1, 2, 4, 4}, .classes = 3,
                   .n_layers = (int)(sizeof tiny_layers / sizeof tiny_layers[0]), .layers = tiny_layers};
    size_t base = mem_live_bytes();
    RefNet r;
    assert_int_equal(ref_net_init(&r, &m, 3), 0);
    Rng rng;
    rng_init(&rng, 19);
    fill_normal(&rng, ref_net_input(&r), dims_count(r.layers[0].out));
    for (int i = 0; i < r.batch; i++) r.labels[i] = (int32_t)rng_below(&rng, 3);
    for (int i = 0; i < m.n_layers; i++)
        for (int j = 0; j < r.layers[i].n_params; j++) {
            RefLayer *l = &r.layers[i];
            fill_normal(&rng, l->param[j], l->param_n[j]);
            if (m.layers[i].kind == LAYER_BN && j == 0)
                for (size_t e = 0; e < l->param_n[j]; e++) l->param[j][e] += 1.0; /* gamma ~ 1 */
        }
    double loss = ref_net_forward(&r, true);
    assert_true(isfinite(loss) && loss > 0);
    ref_net_backward(&r);
    for (int i = 0; i < m.n_layers; i++) {
        RefLayer *l = &r.layers[i];
        for (int j = 0; j < l->n_params; j++) {
            char what[64];
            snprintf(what, sizeof what, "net %s param %d", m.layers[i].name, j);
            double *an = tu_dalloc(l->param_n[j]);
            memcpy(an, l->grad[j], l->param_n[j] * sizeof *an);
            fd_check(what, obj_net, &r, l->param[j], l->param_n[j], an);
            mem_free(an);
        }
    }
    size_t nin = dims_count(r.layers[0].out);
    double *din = tu_dalloc(nin);
    memcpy(din, r.layers[0].dy, nin * sizeof *din);
    fd_check("net input", obj_net, &r, ref_net_input(&r), nin, din);
    mem_free(din);
    ref_net_deinit(&r);
    assert_int_equal(mem_live_bytes(), base);
}

/* Running statistics over two training forwards, and inference using them. */
static void test_net_running_stats(void **state) {
    ModelSpec m = {.name = "tiny", .input = {1, 2, 4, 4}, .classes = 3,
                   .n_layers = (int)(sizeof tiny_layers / sizeof tiny_layers[0]), .layers = tiny_layers};
    RefNet r;
    assert_int_equal(ref_net_init(&r, &m, 4), 0);
    Rng rng;
    rng_init(&rng, 20);
    for (int i = 0; i < m.n_layers; i++)
        if (r.layers[i].n_params) fill_normal(&rng, r.layers[i].param[0], r.layers[i].param_n[0]);
    size_t nin = dims_count(r.layers[0].out);
    RefLayer *bn1 = &r.layers[2];
    double rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1};
    for (int step = 0; step < 2; step++) {
        fill_normal(&rng, ref_net_input(&r), nin);
        ref_net_forward(&r, true);
        ref_bn_update_running(3, (size_t)4 * 4 * 4, bn1->batch_mean, bn1->batch_var, rm, rv);
    }
    assert_close_d("running mean", bn1->run_mean, rm, 3, 1e-15);
    assert_close_d("running var", bn1->run_var, rv, 3, 1e-15);
    /* Inference of bn1 equals ref_bn_fwd_infer with the running statistics. */
    ref_net_forward(&r, false);
    size_t n1 = dims_count(bn1->out);
    double *want = tu_dalloc(n1);
    ref_bn_fwd_infer(r.layers[1].out, r.layers[1].y, bn1->param[0], bn1->param[1], rm, rv, true, want);
    assert_close_d("bn1 inference", bn1->y, want, n1, 1e-15);
    mem_free(want);
    ref_net_deinit(&r);
}

static void test_net_bad_shape(void **state) {
    LayerSpec bad[3] = {
        {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
        {.kind = LAYER_CONV, .name = "conv", .in = {0, NO}, .out_c = 2, .kh = 5, .kw = 5, .stride = 1},
        {.kind = LAYER_LOSS, .name = "loss", .in = {1, NO}},
    };
    ModelSpec m = {.name = "bad", .input = {1, 1, 3, 3}, .classes = 2, .n_layers = 3, .layers = bad};
    size_t base = mem_live_bytes();
    RefNet r;
    assert_int_equal(ref_net_init(&r, &m, 2), ERR_SHAPE); /* expected: one logged error */
    assert_int_equal(mem_live_bytes(), base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_fd),        cmocka_unit_test(test_bn_fd),
        cmocka_unit_test(test_bn_running_golden), cmocka_unit_test(test_relu_fd),
        cmocka_unit_test(test_pool_fd),        cmocka_unit_test(test_pool_golden),
        cmocka_unit_test(test_gap_fd),         cmocka_unit_test(test_fc_fd),
        cmocka_unit_test(test_add_fd),         cmocka_unit_test(test_loss_fd),
        cmocka_unit_test(test_layout_golden),  cmocka_unit_test(test_out_dims),
        cmocka_unit_test(test_net_fd),         cmocka_unit_test(test_net_running_stats),
        cmocka_unit_test(test_net_bad_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
