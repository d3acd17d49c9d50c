/* test_layers.c: every layer kind of core/layer.c (oneDNN, f32) against the double references of
 * tests/ref.c on small random shapes: outputs, input gradients, parameter gradients, BN running
 * statistics, the in-place binds layer.h allows, shape errors as codes, and no leaks.
 *
 * Inputs and parameters are drawn in double, rounded to float once, and the reference sees exactly
 * the rounded values, so the only difference left is oneDNN's f32 arithmetic: norm-relative
 * tolerance 1e-5 everywhere. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/layer.h"
#include "core/mem.h"
#include "core/rng.h"
#include "tests/ref.h"
#include "tests/testutil.h"

#define TOL 1e-5

/* Binding variants (flags of a case). */
enum {
    F_INFER = 1 << 0,     /* forward(train = false) only; BN with random running stats set first */
    F_Y_IS_X0 = 1 << 1,   /* y bound to the x[0] buffer (relu, add) */
    F_DX0_IS_DY = 1 << 2, /* dx[0] bound to the dy buffer (relu, bn, add) */
    F_DX1_IS_DY = 1 << 3, /* dx[1] bound to the dy buffer (add) */
    F_NO_DX = 1 << 4,     /* dx[0] NULL: input gradient not needed (parameter gradients only) */
};

typedef struct {
    const char *what;
    LayerSpec s;
    Dims4 in; /* in[0]; add: both inputs */
    int flags;
} LayerCase;

#define NO -1
#define CONV(k, r, s_, st, p, b) \
    {.kind = LAYER_CONV, .name = "conv", .in = {0, NO}, .out_c = k, .kh = r, .kw = s_, .stride = st, .pad = p, .bias = b}
#define POOL(kind_, r, st, p) {.kind = kind_, .name = "pool", .in = {0, NO}, .kh = r, .kw = r, .stride = st, .pad = p}
#define PLAIN(kind_, relu_) {.kind = kind_, .name = #kind_, .in = {0, kind_ == LAYER_ADD ? 0 : NO}, .relu = relu_}
#define FC(k, b) {.kind = LAYER_FC, .name = "fc", .in = {0, NO}, .out_c = k, .bias = b}

static const LayerCase cases[] = {
    {"conv 3ch 3x3 s1 p1 bias", CONV(4, 3, 3, 1, 1, true), {2, 3, 7, 7}, 0},
    {"conv 1x1 s2 p0", CONV(6, 1, 1, 2, 0, false), {2, 8, 8, 8}, 0},
    {"conv 5x5 s2 p1 bias", CONV(5, 5, 5, 2, 1, true), {2, 3, 9, 9}, 0},
    {"conv 5x5 s1 p0 on 5x5", CONV(4, 5, 5, 1, 0, false), {3, 2, 5, 5}, 0},
    {"conv 16ch 3x3 s2 p1 8x6", CONV(16, 3, 3, 2, 1, false), {2, 16, 8, 6}, 0},
    {"conv 3x1 s1 p1 bias", CONV(3, 3, 1, 1, 1, true), {2, 4, 6, 5}, 0},
    {"conv 3x3 s1 p0 32ch", CONV(32, 3, 3, 1, 0, true), {4, 32, 6, 6}, 0},
    {"conv without dx", CONV(8, 3, 3, 1, 1, false), {2, 3, 6, 6}, F_NO_DX},
    {"bn train", PLAIN(LAYER_BN, false), {3, 5, 4, 3}, 0},
    {"bn train relu 16ch", PLAIN(LAYER_BN, true), {2, 16, 4, 4}, 0},
    {"bn train 1x1 spatial", PLAIN(LAYER_BN, false), {8, 6, 1, 1}, 0},
    {"bn train dx==dy", PLAIN(LAYER_BN, true), {2, 8, 3, 3}, F_DX0_IS_DY},
    {"bn inference", PLAIN(LAYER_BN, false), {2, 5, 4, 3}, F_INFER},
    {"bn inference relu", PLAIN(LAYER_BN, true), {2, 16, 3, 3}, F_INFER},
    {"relu", PLAIN(LAYER_RELU, false), {2, 5, 4, 3}, 0},
    {"relu in place", PLAIN(LAYER_RELU, false), {2, 16, 3, 5}, F_Y_IS_X0 | F_DX0_IS_DY},
    {"maxpool 3x3 s2 p1", POOL(LAYER_MAXPOOL, 3, 2, 1), {2, 4, 7, 7}, 0},
    {"maxpool 2x2 s2 p0", POOL(LAYER_MAXPOOL, 2, 2, 0), {2, 3, 6, 6}, 0},
    {"maxpool 3x3 s1 p1 16ch", POOL(LAYER_MAXPOOL, 3, 1, 1), {1, 16, 5, 5}, 0},
    {"avgpool 3x3 s2 p1", POOL(LAYER_AVGPOOL, 3, 2, 1), {2, 4, 7, 7}, 0},
    {"avgpool 2x2 s2 p0", POOL(LAYER_AVGPOOL, 2, 2, 0), {2, 3, 6, 6}, 0},
    {"avgpool 3x3 s1 p1 16ch", POOL(LAYER_AVGPOOL, 3, 1, 1), {1, 16, 5, 5}, 0},
    {"gap", PLAIN(LAYER_GAP, false), {2, 8, 5, 5}, 0},
    {"gap 3x4", PLAIN(LAYER_GAP, false), {3, 3, 3, 4}, 0},
    {"fc from 4D bias", FC(7, true), {2, 5, 3, 3}, 0},
    {"fc 2D", FC(10, false), {4, 16, 1, 1}, 0},
    {"fc 4D 16ch", FC(6, true), {3, 16, 2, 2}, 0},
    {"add", PLAIN(LAYER_ADD, false), {2, 5, 4, 3}, 0},
    {"add relu", PLAIN(LAYER_ADD, true), {2, 16, 3, 3}, 0},
    {"add y==x0", PLAIN(LAYER_ADD, true), {2, 5, 4, 3}, F_Y_IS_X0},
    {"add dx0==dy", PLAIN(LAYER_ADD, false), {2, 5, 4, 3}, F_DX0_IS_DY},
    {"add relu dx0==dy", PLAIN(LAYER_ADD, true), {2, 5, 4, 3}, F_DX0_IS_DY},
    {"add relu dx1==dy", PLAIN(LAYER_ADD, true), {2, 5, 4, 3}, F_DX1_IS_DY},
    {"loss", PLAIN(LAYER_LOSS, false), {5, 10, 1, 1}, 0},
    {"loss 3 classes", PLAIN(LAYER_LOSS, false), {8, 3, 1, 1}, 0},
};

/* ---- buffers: what the layer sees (f32) and what the reference sees (f64) -------------------- */

typedef struct {
    Dims4 in, out;
    size_t nx, ny;
    int n_in, np;
    float *fx[2], *fy, *fdx[2], *fdy; /* allocated buffers (aliases are not allocated twice) */
    double *x[2], *y, *dx[2], *dy;    /* reference copies */
    size_t pn[2];
    double *p[2], *g[2];              /* parameters (rounded to float) and reference gradients */
    double *rm, *rv, *bmean, *bvar;   /* bn: running stats (before/after), batch stats */
    int32_t *labels;
    double loss;
} Bufs;


/* Draws n values (scale * normal + shift), rounded to float, into f and the exact same values into d. */
static void draw(Rng *rng, float *f, double *d, size_t n, double scale, double shift) {
    for (size_t i = 0; i < n; i++) {
        float v = (float)(scale * rng_normal(rng) + shift);
        if (f) f[i] = v;
        d[i] = v;
    }
}

static void bufs_free(Bufs *b) {
    for (int j = 0; j < 2; j++) {
        mem_free(b->fx[j]);
        mem_free(b->fdx[j]);
        mem_free(b->x[j]);
        mem_free(b->dx[j]);
        mem_free(b->p[j]);
        mem_free(b->g[j]);
    }
    mem_free(b->fy);
    mem_free(b->fdy);
    mem_free(b->y);
    mem_free(b->dy);
    mem_free(b->rm);
    mem_free(b->rv);
    mem_free(b->bmean);
    mem_free(b->bvar);
    mem_free(b->labels);
    memset(b, 0, sizeof *b);
}

/* The reference forward for one layer (train: BN batch statistics and running-stat update). */
static void ref_forward(const LayerSpec *s, Bufs *b, bool train) {
    switch (s->kind) {
    case LAYER_CONV: ref_conv_fwd(s, b->in, b->x[0], b->p[0], b->p[1], b->y); break;
    case LAYER_BN:
        if (train) {
            ref_bn_fwd_train(b->in, b->x[0], b->p[0], b->p[1], s->relu, b->y, b->bmean, b->bvar);
            ref_bn_update_running(b->in.c, (size_t)b->in.n * b->in.h * b->in.w, b->bmean, b->bvar, b->rm,
                                  b->rv);
        } else {
            ref_bn_fwd_infer(b->in, b->x[0], b->p[0], b->p[1], b->rm, b->rv, s->relu, b->y);
        }
        break;
    case LAYER_RELU: ref_relu_fwd(b->nx, b->x[0], b->y); break;
    case LAYER_MAXPOOL: ref_maxpool_fwd(s, b->in, b->x[0], b->y); break;
    case LAYER_AVGPOOL: ref_avgpool_fwd(s, b->in, b->x[0], b->y); break;
    case LAYER_GAP: ref_gap_fwd(b->in, b->x[0], b->y); break;
    case LAYER_FC: ref_fc_fwd(b->in, s->out_c, b->x[0], b->p[0], b->p[1], b->y); break;
    case LAYER_ADD: ref_add_fwd(b->nx, b->x[0], b->x[1], s->relu, b->y); break;
    case LAYER_LOSS: b->loss = ref_softmax_ce_fwd(b->in.n, b->in.c, b->x[0], b->labels, b->y); break;
    default: fail_msg("no reference for kind %d", (int)s->kind);
    }
}

static void ref_backward(const LayerSpec *s, Bufs *b) {
    switch (s->kind) {
    case LAYER_CONV:
        ref_conv_bwd_data(s, b->in, b->p[0], b->dy, b->dx[0]);
        ref_conv_bwd_weights(s, b->in, b->x[0], b->dy, b->g[0], b->g[1]);
        break;
    case LAYER_BN: ref_bn_bwd(b->in, b->x[0], b->p[0], b->p[1], s->relu, b->dy, b->dx[0], b->g[0], b->g[1]); break;
    case LAYER_RELU: ref_relu_bwd(b->nx, b->x[0], b->dy, b->dx[0]); break;
    case LAYER_MAXPOOL: ref_maxpool_bwd(s, b->in, b->x[0], b->dy, b->dx[0]); break;
    case LAYER_AVGPOOL: ref_avgpool_bwd(s, b->in, b->dy, b->dx[0]); break;
    case LAYER_GAP: ref_gap_bwd(b->in, b->dy, b->dx[0]); break;
    case LAYER_FC: ref_fc_bwd(b->in, s->out_c, b->x[0], b->p[0], b->dy, b->dx[0], b->g[0], b->g[1]); break;
    case LAYER_ADD: ref_add_bwd(b->nx, b->y, s->relu, b->dy, b->dx[0], b->dx[1]); break;
    case LAYER_LOSS: ref_softmax_ce_bwd(b->in.n, b->in.c, b->y, b->labels, b->dx[0]); break;
    default: fail_msg("no reference for kind %d", (int)s->kind);
    }
}

static void check(const char *what, const char *field, const float *got, const double *want, size_t n,
                  double tol) {
    char name[128];
    snprintf(name, sizeof name, "%s: %s", what, field);
    assert_close_fd(name, got, want, n, tol);
}

/* Runs one case end to end; every allocation (layer, context scratch, buffers) is released before
 * the leak check. */
static void run_case(const LayerCase *c, uint64_t seed) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    Rng rng;
    rng_init(&rng, seed);
    const LayerSpec *s = &c->s;
    Dims4 ins[2] = {c->in, c->in};
    Bufs b;
    memset(&b, 0, sizeof b);
    b.in = c->in;
    b.n_in = layer_kind_inputs(s->kind);

    /* Shapes: layer_out_dims agrees with the independent reference. */
    Dims4 ro, lo;
    assert_int_equal(ref_out_dims(s, ins, &ro), 0);
    assert_int_equal(layer_out_dims(s, ins, &lo), 0);
    assert_memory_equal(&ro, &lo, sizeof ro);
    Layer *l = NULL;
    assert_int_equal(layer_create(&l, s, ins, &ctx), 0);
    assert_non_null(l);
    b.out = layer_out_dims_of(l);
    assert_memory_equal(&b.out, &ro, sizeof ro);
    b.nx = dims_count(b.in);
    b.ny = dims_count(b.out);

    /* Activations. y aliases x[0] and dx[j] aliases dy as the flags ask. */
    for (int j = 0; j < b.n_in; j++) {
        b.fx[j] = tu_falloc(b.nx);
        b.x[j] = tu_dalloc(b.nx);
        draw(&rng, b.fx[j], b.x[j], b.nx, 1.0, 0.0);
        b.dx[j] = tu_dalloc(b.nx);
    }
    b.y = tu_dalloc(b.ny);
    b.dy = tu_dalloc(b.ny);
    float *y = c->flags & F_Y_IS_X0 ? b.fx[0] : (b.fy = tu_falloc(b.ny));
    float *dy = b.fdy = tu_falloc(b.ny);
    float *dx[2] = {NULL, NULL};
    for (int j = 0; j < b.n_in; j++) {
        bool alias = (j == 0 && (c->flags & F_DX0_IS_DY)) || (j == 1 && (c->flags & F_DX1_IS_DY));
        if (alias) dx[j] = dy;
        else if (!(j == 0 && (c->flags & F_NO_DX))) dx[j] = b.fdx[j] = tu_falloc(b.nx);
    }
    if (s->kind == LAYER_LOSS) {
        b.labels = mem_calloc((size_t)b.in.n, sizeof *b.labels);
        assert_non_null(b.labels);
        for (int i = 0; i < b.in.n; i++) b.labels[i] = (int32_t)rng_below(&rng, (uint64_t)b.in.c);
        layer_bind_labels(l, b.labels);
    }

    /* Parameters: plain counts and names as layer.h, then random values through layer_param_set. */
    b.np = layer_n_params(l);
    assert_int_equal(b.np, ref_n_params(s));
    static const char *const names[LAYER_N_KINDS][2] = {
        [LAYER_CONV] = {"weight", "bias"}, [LAYER_FC] = {"weight", "bias"}, [LAYER_BN] = {"gamma", "beta"}};
    for (int j = 0; j < b.np; j++) {
        LayerParam lp = layer_param(l, j);
        b.pn[j] = ref_param_count(s, b.in, j);
        assert_int_equal(lp.n_plain, b.pn[j]);
        assert_string_equal(lp.name, names[s->kind][j]);
        assert_int_equal(lp.decay, s->kind != LAYER_BN && j == 0);
        float *tmp = tu_falloc(b.pn[j]);
        b.p[j] = tu_dalloc(b.pn[j]);
        b.g[j] = tu_dalloc(b.pn[j]);
        /* weights ~ 1/sqrt(fan-in) keep activations O(1); gamma around 1 */
        double fan = s->kind == LAYER_BN ? 1.0 : (double)b.pn[0] / (s->out_c > 0 ? s->out_c : 1);
        double scale = s->kind == LAYER_BN ? (j == 0 ? 0.3 : 0.5) : 1.0 / sqrt(fan);
        draw(&rng, tmp, b.p[j], b.pn[j], scale, s->kind == LAYER_BN && j == 0 ? 1.0 : 0.0);
        assert_int_equal(layer_param_set(l, j, tmp), 0);
        /* the round trip through oneDNN's layout is exact */
        float *back = tu_falloc(b.pn[j]);
        assert_int_equal(layer_param_get(l, j, back), 0);
        assert_memory_equal(back, tmp, b.pn[j] * sizeof *tmp);
        mem_free(back);
        mem_free(tmp);
    }

    /* BN running statistics: start from random values (layer and reference). */
    if (s->kind == LAYER_BN) {
        int C = b.in.c;
        b.rm = tu_dalloc((size_t)C);
        b.rv = tu_dalloc((size_t)C);
        b.bmean = tu_dalloc((size_t)C);
        b.bvar = tu_dalloc((size_t)C);
        float *rm = layer_bn_running_mean(l), *rv = layer_bn_running_var(l);
        assert_non_null(rm);
        assert_non_null(rv);
        for (int i = 0; i < C; i++) assert_true(rm[i] == 0.0f && rv[i] == 1.0f); /* defaults */
        draw(&rng, rm, b.rm, (size_t)C, 0.5, 0.0);
        for (int i = 0; i < C; i++) {
            rv[i] = (float)(0.5 + rng_uniform(&rng));
            b.rv[i] = rv[i];
        }
    } else {
        assert_null(layer_bn_running_mean(l));
        assert_null(layer_bn_running_var(l));
    }

    float *xs[2] = {b.fx[0], b.fx[1]};
    assert_int_equal(layer_bind(l, xs, y, dx, dy), 0);

    bool train = !(c->flags & F_INFER);
    assert_int_equal(layer_forward(l, train), 0);
    ref_forward(s, &b, train);
    check(c->what, "y", y, b.y, b.ny, TOL);
    if (s->kind == LAYER_LOSS) {
        double got = layer_loss_value(l);
        assert_true(fabs(got - b.loss) <= 1e-6 * fabs(b.loss));
        /* top-1: argmax of the logits equals the label; n_valid counts only the first samples */
        int want = 0, want_first = 0;
        for (int i = 0; i < b.in.n; i++) {
            const double *z = b.x[0] + (size_t)i * b.in.c;
            int am = 0;
            for (int k = 1; k < b.in.c; k++)
                if (z[k] > z[am]) am = k;
            want += am == b.labels[i];
            if (i < b.in.n - 1) want_first += am == b.labels[i];
        }
        assert_int_equal(layer_loss_correct(l, 1, b.in.n), want);
        assert_int_equal(layer_loss_correct(l, 1, b.in.n - 1), want_first);
        assert_int_equal(layer_loss_correct(l, b.in.c, b.in.n), b.in.n);
    }
    if (s->kind == LAYER_BN) {
        /* training: running stats updated (momentum 0.1, unbiased var); inference: untouched */
        check(c->what, "running mean", layer_bn_running_mean(l), b.rm, (size_t)b.in.c, TOL);
        check(c->what, "running var", layer_bn_running_var(l), b.rv, (size_t)b.in.c, TOL);
    }

    if (train) {
        draw(&rng, dy, b.dy, b.ny, 1.0, 0.0);
        assert_int_equal(layer_backward(l), 0);
        ref_backward(s, &b);
        if (s->kind != LAYER_LOSS) {
            for (int j = 0; j < b.n_in; j++)
                if (dx[j]) check(c->what, j ? "dx[1]" : "dx[0]", dx[j], b.dx[j], b.nx, TOL);
        } else {
            check(c->what, "dx (p - onehot)/N", dx[0], b.dx[0], b.nx, TOL);
        }
        for (int j = 0; j < b.np; j++) {
            float *gr = tu_falloc(b.pn[j]);
            assert_int_equal(layer_grad_get(l, j, gr), 0);
            check(c->what, names[s->kind][j], gr, b.g[j], b.pn[j], TOL);
            mem_free(gr);
        }
        if (s->kind == LAYER_BN) {
            /* inference after the update uses the running statistics */
            assert_int_equal(layer_forward(l, false), 0);
            ref_forward(s, &b, false);
            check(c->what, "inference y after training", y, b.y, b.ny, TOL);
        }
    }

    layer_destroy(l);
    bufs_free(&b);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

static void test_kind_table(void **state) {
    for (int k = 0; k < LAYER_N_KINDS; k++) {
        assert_non_null(layer_kind_name((LayerKind)k));
        for (int j = 0; j < k; j++) assert_string_not_equal(layer_kind_name((LayerKind)k), layer_kind_name((LayerKind)j));
    }
    assert_int_equal(layer_kind_inputs(LAYER_INPUT), 0);
    assert_int_equal(layer_kind_inputs(LAYER_ADD), 2);
    for (int k = LAYER_CONV; k < LAYER_N_KINDS; k++)
        if (k != LAYER_ADD) assert_int_equal(layer_kind_inputs((LayerKind)k), 1);
}

/* One cmocka test per case (initial_state is the case), so a failure names its case. */
static void test_case(void **state) {
    const LayerCase *c = *state;
    run_case(c, 100 + (uint64_t)(c - cases));
}

#define N_CASES (sizeof cases / sizeof cases[0])

static void test_every_kind_covered(void **state) {
    bool seen[LAYER_N_KINDS] = {false};
    for (size_t i = 0; i < N_CASES; i++) seen[cases[i].s.kind] = true;
    for (int k = LAYER_CONV; k < LAYER_N_KINDS; k++) assert_true(seen[k]);
}

/* The input layer: no computation, no parameters, output dims = input dims. */
static void test_input_layer(void **state) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    LayerSpec s = {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}};
    Dims4 in = {2, 3, 4, 4};
    Layer *l = NULL;
    assert_int_equal(layer_create(&l, &s, &in, &ctx), 0);
    Dims4 o = layer_out_dims_of(l);
    assert_memory_equal(&o, &in, sizeof o);
    assert_int_equal(layer_n_params(l), 0);
    float *buf = tu_falloc(dims_count(in));
    float *none[2] = {NULL, NULL};
    assert_int_equal(layer_bind(l, none, buf, none, NULL), 0);
    assert_int_equal(layer_forward(l, true), 0);
    assert_int_equal(layer_backward(l), 0);
    layer_destroy(l);
    mem_free(buf);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

/* Parameter defaults at create, and layer_init_params' distributions. */
static void test_param_defaults_and_init(void **state) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    LayerSpec conv = CONV(16, 3, 3, 1, 1, true);
    LayerSpec bn = PLAIN(LAYER_BN, true);
    LayerSpec fc = FC(10, true);
    Dims4 in = {2, 16, 8, 8}, fin = {2, 64, 1, 1};
    Layer *lc = NULL, *lb = NULL, *lf = NULL;
    assert_int_equal(layer_create(&lc, &conv, &in, &ctx), 0);
    assert_int_equal(layer_create(&lb, &bn, &in, &ctx), 0);
    assert_int_equal(layer_create(&lf, &fc, &fin, &ctx), 0);
    size_t nw = 16 * 16 * 9;
    float *w = tu_falloc(nw);
    assert_int_equal(layer_param_get(lc, 0, w), 0);
    for (size_t i = 0; i < nw; i++) assert_true(w[i] == 0.0f);
    assert_int_equal(layer_param_get(lb, 0, w), 0);
    for (int i = 0; i < 16; i++) assert_true(w[i] == 1.0f);
    assert_int_equal(layer_param_get(lb, 1, w), 0);
    for (int i = 0; i < 16; i++) assert_true(w[i] == 0.0f);

    Rng rng;
    rng_init(&rng, 7);
    assert_int_equal(layer_init_params(lc, &rng), 0);
    assert_int_equal(layer_param_get(lc, 0, w), 0);
    double ss = 0, mean = 0;
    for (size_t i = 0; i < nw; i++) mean += w[i], ss += (double)w[i] * w[i];
    mean /= (double)nw;
    double sd = sqrt(ss / (double)nw - mean * mean), want = sqrt(2.0 / (16 * 9));
    assert_true(fabs(sd - want) < 0.1 * want); /* 2304 draws: sampling error ~1.5% */
    assert_true(fabs(mean) < 0.1 * want);
    assert_int_equal(layer_init_params(lf, &rng), 0);
    assert_int_equal(layer_param_get(lf, 0, w), 0);
    double bound = 1.0 / sqrt(64.0), mx = 0;
    for (size_t i = 0; i < 640; i++) {
        assert_true(fabs(w[i]) <= bound);
        if (fabs(w[i]) > mx) mx = fabs(w[i]);
    }
    assert_true(mx > 0.9 * bound);
    assert_int_equal(layer_param_get(lf, 1, w), 0);
    for (size_t i = 0; i < 10; i++) assert_true(fabs(w[i]) <= bound);
    assert_int_equal(layer_init_params(lb, &rng), 0);
    assert_int_equal(layer_param_get(lb, 0, w), 0);
    for (int i = 0; i < 16; i++) assert_true(w[i] == 1.0f);
    mem_free(w);
    layer_destroy(lc);
    layer_destroy(lb);
    layer_destroy(lf);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

/* Impossible shapes are ERR_SHAPE from layer_out_dims and layer_create (never an abort), with
 * *out NULL and nothing leaked. Each prints one expected error line. */
static void test_shape_errors(void **state) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    static const struct {
        LayerSpec s;
        Dims4 in[2];
    } bad[] = {
        {CONV(4, 5, 5, 1, 0, false), {{1, 2, 3, 3}, {0, 0, 0, 0}}},      /* 5x5 kernel on 3x3 */
        {CONV(4, 3, 3, 0, 1, false), {{1, 2, 8, 8}, {0, 0, 0, 0}}},      /* stride 0 */
        {CONV(0, 3, 3, 1, 1, false), {{1, 2, 8, 8}, {0, 0, 0, 0}}},      /* no output channels */
        {POOL(LAYER_MAXPOOL, 3, 2, 0), {{1, 2, 2, 2}, {0, 0, 0, 0}}},    /* window > input */
        {POOL(LAYER_AVGPOOL, 2, 2, 2), {{1, 2, 8, 8}, {0, 0, 0, 0}}},    /* pad >= window */
        {PLAIN(LAYER_ADD, false), {{1, 2, 4, 4}, {1, 2, 4, 5}}},         /* unequal shapes */
        {PLAIN(LAYER_ADD, true), {{1, 2, 4, 4}, {1, 3, 4, 4}}},
        {PLAIN(LAYER_LOSS, false), {{2, 10, 2, 2}, {0, 0, 0, 0}}},       /* loss on a 4D map */
        {FC(0, true), {{1, 2, 4, 4}, {0, 0, 0, 0}}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Dims4 o;
        assert_int_equal(layer_out_dims(&bad[i].s, bad[i].in, &o), ERR_SHAPE);
        Layer *l = (Layer *)&o; /* must be reset to NULL */
        assert_int_equal(layer_create(&l, &bad[i].s, bad[i].in, &ctx), ERR_SHAPE);
        assert_null(l);
    }
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

/* A label outside [0, classes) is an error code from forward, not a crash. */
static void test_loss_bad_label(void **state) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    LayerSpec s = PLAIN(LAYER_LOSS, false);
    Dims4 in = {2, 3, 1, 1};
    Layer *l = NULL;
    assert_int_equal(layer_create(&l, &s, &in, &ctx), 0);
    float *x = tu_falloc(6), *p = tu_falloc(6), *dx = tu_falloc(6);
    float *xs[2] = {x, NULL}, *dxs[2] = {dx, NULL};
    int32_t labels[2] = {1, 3};
    assert_int_equal(layer_bind(l, xs, p, dxs, NULL), 0);
    layer_bind_labels(l, labels);
    assert_true(layer_forward(l, true) < 0);
    layer_destroy(l);
    mem_free(x);
    mem_free(p);
    mem_free(dx);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

/* BN and ADD's first input always write their input gradient (layer_kind_needs_dx); every other
 * (kind, input) may be left unbound. */
static void test_kind_needs_dx(void **state) {
    for (int k = 0; k < LAYER_N_KINDS; k++)
        for (int j = 0; j < 2; j++) {
            bool want = j == 0 && (k == LAYER_BN || k == LAYER_ADD);
            if (layer_kind_needs_dx((LayerKind)k, j) != want)
                fail_msg("layer_kind_needs_dx(%s, %d) = %d, expected %d", layer_kind_name((LayerKind)k), j, !want,
                         want);
        }
}

/* Binding ADD with dx[0] NULL (whether or not dx[1] is bound) or BN with dx[0] NULL is ERR_SHAPE
 * from layer_bind, not a crash in backward. The same layer then rebinds correctly: ADD with only
 * dx[0] writes dx[0] and leaves the dx[1] buffer of the failed bind untouched; BN with dx[0] runs.
 * Each failed bind prints one expected error line. */
static void test_bind_missing_needed_dx(void **state) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    Rng rng;
    rng_init(&rng, 31);
    Dims4 in = {2, 5, 4, 3}, ins[2] = {in, in};
    size_t n = dims_count(in);
    int C = in.c;
    LayerSpec add = PLAIN(LAYER_ADD, true), bn = PLAIN(LAYER_BN, true);
    Layer *la = NULL, *lb = NULL;
    assert_int_equal(layer_create(&la, &add, ins, &ctx), 0);
    assert_int_equal(layer_create(&lb, &bn, ins, &ctx), 0);

    float *x0 = tu_falloc(n), *x1 = tu_falloc(n), *y = tu_falloc(n), *dy = tu_falloc(n), *dx0 = tu_falloc(n), *dx1 = tu_falloc(n);
    double *rx0 = tu_dalloc(n), *rx1 = tu_dalloc(n), *ry = tu_dalloc(n), *rdy = tu_dalloc(n), *rdx0 = tu_dalloc(n),
           *rdx1 = tu_dalloc(n);
    draw(&rng, x0, rx0, n, 1.0, 0.0);
    draw(&rng, x1, rx1, n, 1.0, 0.0);
    float *xs[2] = {x0, x1};

    /* ADD: dx[0] missing */
    float *only_dx1[2] = {NULL, dx1}, *none[2] = {NULL, NULL}, *only_dx0[2] = {dx0, NULL};
    assert_int_equal(layer_bind(la, xs, y, only_dx1, dy), ERR_SHAPE);
    assert_int_equal(layer_bind(la, xs, y, none, dy), ERR_SHAPE);
    assert_int_equal(layer_bind(la, xs, y, NULL, dy), ERR_SHAPE);
    /* dx[1] alone may be unbound */
    for (size_t i = 0; i < n; i++) dx1[i] = 12345.0f;
    assert_int_equal(layer_bind(la, xs, y, only_dx0, dy), 0);
    assert_int_equal(layer_forward(la, true), 0);
    ref_add_fwd(n, rx0, rx1, true, ry);
    check("add rebound", "y", y, ry, n, TOL);
    draw(&rng, dy, rdy, n, 1.0, 0.0);
    assert_int_equal(layer_backward(la), 0);
    ref_add_bwd(n, ry, true, rdy, rdx0, rdx1);
    check("add rebound", "dx[0]", dx0, rdx0, n, TOL);
    for (size_t i = 0; i < n; i++)
        if (dx1[i] != 12345.0f) fail_msg("add rebound without dx[1]: dx[1] buffer written at %zu", i);

    /* BN: dx[0] missing */
    assert_int_equal(layer_bind(lb, xs, y, none, dy), ERR_SHAPE);
    assert_int_equal(layer_bind(lb, xs, y, NULL, dy), ERR_SHAPE);
    assert_int_equal(layer_bind(lb, xs, y, only_dx0, dy), 0);
    assert_int_equal(layer_forward(lb, true), 0);
    double *gamma = tu_dalloc((size_t)C), *beta = tu_dalloc((size_t)C), *mean = tu_dalloc((size_t)C),
           *var = tu_dalloc((size_t)C), *dg = tu_dalloc((size_t)C), *db = tu_dalloc((size_t)C);
    for (int i = 0; i < C; i++) gamma[i] = 1.0; /* the defaults: gamma 1, beta 0 */
    ref_bn_fwd_train(in, rx0, gamma, beta, true, ry, mean, var);
    check("bn rebound", "y", y, ry, n, TOL);
    draw(&rng, dy, rdy, n, 1.0, 0.0);
    assert_int_equal(layer_backward(lb), 0);
    ref_bn_bwd(in, rx0, gamma, beta, true, rdy, rdx0, dg, db);
    check("bn rebound", "dx[0]", dx0, rdx0, n, TOL);

    /* kinds that do not need dx[0] bind without it */
    LayerSpec relu = PLAIN(LAYER_RELU, false);
    Layer *lr = NULL;
    assert_int_equal(layer_create(&lr, &relu, ins, &ctx), 0);
    assert_int_equal(layer_bind(lr, xs, y, none, dy), 0);
    assert_int_equal(layer_bind(lr, xs, y, NULL, dy), 0);

    layer_destroy(la);
    layer_destroy(lb);
    layer_destroy(lr);
    double *ds[] = {rx0, rx1, ry, rdy, rdx0, rdx1, gamma, beta, mean, var, dg, db};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) mem_free(ds[i]);
    float *fs[] = {x0, x1, y, dy, dx0, dx1};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) mem_free(fs[i]);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

int main(void) {
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_kind_table),
        cmocka_unit_test(test_every_kind_covered),
        cmocka_unit_test(test_input_layer),
        cmocka_unit_test(test_param_defaults_and_init),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_loss_bad_label),
        cmocka_unit_test(test_kind_needs_dx),
        cmocka_unit_test(test_bind_missing_needed_dx),
    };
    enum { N_FIXED = sizeof fixed / sizeof fixed[0] };
    struct CMUnitTest tests[N_FIXED + N_CASES];
    for (size_t i = 0; i < N_FIXED; i++) tests[i] = fixed[i];
    for (size_t i = 0; i < N_CASES; i++)
        tests[N_FIXED + i] = (struct CMUnitTest){cases[i].what, test_case, NULL, NULL, (void *)&cases[i]};
    return _cmocka_run_group_tests("layers", tests, N_FIXED + N_CASES, NULL, NULL);
}
