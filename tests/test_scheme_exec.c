/* test_scheme_exec: the backends of the scheme interface. A conv layer with a scheme attached
 * computes the split form dX = bwd_data(S) + bcast(bwd_data(R)), dW = bwd_weights(X, S) +
 * bwd_weights(sum_n X_n, R); it must equal the explicit form, the plain backward on
 * G_hat = S + bcast(R), for every conv kind of the models: backend dnnl to 1e-5 norm-relative,
 * backend sparse (CPU kernels on the CSR S, from a fused writer or compressed from the dense S) to
 * 1e-4, and backend sparse above its break-even density (oneDNN on the expanded S) to 1e-5. */
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/layer.h"
#include "core/mem.h"
#include "core/rng.h"
#include "baselines/resprop.h"
#include "core/config.h"
#include "core/model.h"
#include "core/net.h"
#include "core/scheme.h"
#include "tests/testutil.h"

/* A scheme whose output the test prepares: S and R are copied from its state. */
typedef struct {
    const float *s, *r;
    size_t n;
    bool dense;
    bool fused; /* write S into out->csr when given (as a fused writer does), poisoning out->s */
    bool structured; /* with fused: S's rows are empty or full, and the scheme says so */
} FixedState;

static int fixed_sparsify(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out) {
    FixedState *f = state;
    if (f->dense) {
        memcpy(out->s, out->g, f->n * sizeof(float));
        out->dense = true;
        out->density = 1;
        return 0;
    }
    if (f->fused && out->csr) {
        if (sparse_from_dense(out->csr, f->s)) return ERR_SHAPE;
        out->csr_written = true;
        out->structured = f->structured;
        for (size_t i = 0; i < f->n; i++) out->s[i] = NAN; /* the executor must not read s */
    } else {
        memcpy(out->s, f->s, f->n * sizeof(float));
    }
    out->r = f->r;
    size_t nnz = 0;
    for (size_t i = 0; i < f->n; i++) nnz += f->s[i] != 0;
    out->density = (double)nnz / f->n;
    return 0;
}

static const Scheme fixed_scheme = {.name = "fixed", .summary = "test", .sparsify = fixed_sparsify};

static float *frand(Rng *r, size_t n, double scale) {
    float *p = mem_alloc(n * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(scale * rng_normal(r));
    return p;
}

static double *to_d(const float *a, size_t n) {
    double *d = mem_alloc(n * sizeof(double));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

typedef struct {
    Dims4 in;
    int k, ks, stride, pad;
    bool bias, with_r, dense;
    double density;
    bool fc; /* an fc layer (k outputs over the flattened input) instead of a conv */
    bool sparse;      /* backend sparse */
    double breakeven; /* backend sparse: its break-even density */
    bool fused;       /* the scheme writes the CSR itself */
    bool structured;  /* whole pixel rows of S are kept or dropped (resprop-vec): gathered-GEMM kernels */
} Case;

static void run_case(const Case *c) {
    size_t live = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    LayerSpec spec = {.kind = c->fc ? LAYER_FC : LAYER_CONV, .name = "layer", .in = {0, -1}, .out_c = c->k,
                      .kh = c->ks, .kw = c->ks, .stride = c->stride, .pad = c->pad, .bias = c->bias};
    Layer *split = NULL, *plain = NULL;
    assert_int_equal(layer_create(&split, &spec, &c->in, &ctx), 0);
    assert_int_equal(layer_create(&plain, &spec, &c->in, &ctx), 0);
    Dims4 out = layer_out_dims_of(split);
    size_t nx = dims_count(c->in), ny = dims_count(out), ns = (size_t)out.c * out.h * out.w;
    Rng rng;
    rng_init(&rng, 42 + (uint64_t)c->k);
    LayerParam wp = layer_param(split, 0);
    float *w = frand(&rng, wp.n_plain, 0.3), *b = frand(&rng, (size_t)c->k, 0.1);
    for (int i = 0; i < 2; i++) {
        Layer *l = i ? plain : split;
        assert_int_equal(layer_param_set(l, 0, w), 0);
        if (c->bias) assert_int_equal(layer_param_set(l, 1, b), 0);
    }
    float *x = frand(&rng, nx, 1.0), *g = frand(&rng, ny, 1.0), *s = frand(&rng, ny, 1.0), *r = frand(&rng, ns, 0.5);
    if (c->structured) { /* S: keep about `density` of the pixel rows, whole */
        for (size_t i = 0; i < ny; i += (size_t)c->k)
            if (rng_uniform(&rng) >= c->density)
                for (int k = 0; k < c->k; k++) s[i + (size_t)k] = 0;
    } else {
        for (size_t i = 0; i < ny; i++) /* S: keep about `density` of the entries */
            if (rng_uniform(&rng) >= c->density) s[i] = 0;
    }
    float *ghat = mem_alloc(ny * sizeof(float)), *sbuf = mem_calloc(ny, sizeof(float));
    float *y1 = mem_alloc(ny * sizeof(float)), *y2 = mem_alloc(ny * sizeof(float));
    float *dx1 = mem_alloc(nx * sizeof(float)), *dx2 = mem_alloc(nx * sizeof(float));
    assert_true(ghat && sbuf && y1 && y2 && dx1 && dx2);
    for (size_t i = 0; i < ny; i++)
        ghat[i] = c->dense ? g[i] : s[i] + (c->with_r ? r[i % ns] : 0.0f);

    FixedState fs = {.s = s, .r = c->with_r ? r : NULL, .n = ny, .dense = c->dense, .fused = c->fused,
                     .structured = c->structured};
    /* with a fused writer, no statistics: then nothing may read the poisoned dense S */
    LayerScheme ls = {.scheme = &fixed_scheme, .state = &fs, .s_buf = sbuf, .want_dense_dw = !c->fused};
    SparseGrad store = {0};
    SparseWorkspace ws = {0};
    SparseVecWorkspace vws = {0};
    double tol = 1e-5;
    if (c->sparse) {
        assert_int_equal(sparse_init(&store, 1, (int)(ny / (size_t)c->k), 1, 1, ny), 0);
        assert_int_equal(sparse_workspace_init(&ws, 2, wp.n_plain, 0), 0);
        ls.sparse = true;
        ls.breakeven = c->breakeven;
        ls.csr_store = &store;
        ls.ws = &ws;
        if (c->structured) {
            assert_int_equal(sparse_vec_workspace_init(&vws, (size_t)c->ks * c->ks * c->in.c, 2, 0), 0);
            ls.vws = &vws;
        }
        if (c->breakeven >= c->density) tol = 1e-4; /* the sparse kernels sum in another order */
    }
    assert_int_equal(layer_attach_scheme(split, &ls), 0);
    float *xs[2] = {x, NULL}, *dxs1[2] = {dx1, NULL}, *dxs2[2] = {dx2, NULL};
    assert_int_equal(layer_bind(split, xs, y1, dxs1, g), 0);
    assert_int_equal(layer_bind(plain, xs, y2, dxs2, ghat), 0);
    for (int i = 0; i < 2; i++) {
        Layer *l = i ? plain : split;
        assert_int_equal(layer_forward(l, true), 0);
        assert_int_equal(layer_backward(l), 0);
    }
    double *want = to_d(dx2, nx);
    assert_close_fd("dX split vs explicit", dx1, want, nx, tol);
    mem_free(want);
    float *dw1 = mem_alloc(wp.n_plain * sizeof(float)), *dw2 = mem_alloc(wp.n_plain * sizeof(float));
    assert_int_equal(layer_grad_get(split, 0, dw1), 0);
    assert_int_equal(layer_grad_get(plain, 0, dw2), 0);
    want = to_d(dw2, wp.n_plain);
    assert_close_fd("dW split vs explicit", dw1, want, wp.n_plain, tol);
    mem_free(want);
    if (c->bias) { /* the bias gradient is the dense sum of G, not of G_hat */
        float *db = mem_alloc((size_t)c->k * sizeof(float));
        double *dbw = mem_calloc((size_t)c->k, sizeof(double));
        assert_int_equal(layer_grad_get(split, 1, db), 0);
        for (size_t i = 0; i < ny; i++) dbw[i % (size_t)c->k] += g[i];
        assert_close_fd("db = sum G", db, dbw, (size_t)c->k, 1e-5);
        mem_free(db);
        mem_free(dbw);
    }
    /* the dense weight gradient's cosine: 1 for a dense step, below 1 otherwise */
    if (c->fused) assert_true(isnan(ls.cos_dw));
    else if (c->dense) assert_true(ls.cos_dw == 1.0);
    else assert_true(ls.cos_dw < 0.9999 && ls.cos_dw > -1.0);
    assert_true(ls.out.density > 0 && ls.out.density <= 1);
    /* the sparse kernels ran exactly when the backend is sparse, the step is not dense, the layer is a
     * conv and the density is at most the break-even density */
    assert_int_equal(ls.ran_sparse, c->sparse && !c->dense && !c->fc && ls.out.density <= c->breakeven);
    sparse_deinit(&store);
    sparse_workspace_deinit(&ws);
    sparse_vec_workspace_deinit(&vws);
    mem_free(dw1);
    mem_free(dw2);
    mem_free(w), mem_free(b), mem_free(x), mem_free(g), mem_free(s), mem_free(r);
    mem_free(ghat), mem_free(sbuf), mem_free(y1), mem_free(y2), mem_free(dx1), mem_free(dx2);
    layer_destroy(split);
    layer_destroy(plain);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_3x3(void **st) { run_case(&(Case){{4, 16, 8, 8}, 16, 3, 1, 1, false, true, false, 0.1, false, false, 0, false, false}); }
static void test_3x3_stride2(void **st) { run_case(&(Case){{3, 16, 9, 9}, 32, 3, 2, 1, false, true, false, 0.2, false, false, 0, false, false}); }
static void test_1x1_downsample(void **st) { run_case(&(Case){{4, 16, 8, 8}, 32, 1, 2, 0, false, true, false, 0.1, false, false, 0, false, false}); }
static void test_stem_7x7(void **st) { run_case(&(Case){{2, 3, 20, 20}, 16, 7, 2, 3, false, true, false, 0.3, false, false, 0, false, false}); }
static void test_cifar_stem_3ch(void **st) { run_case(&(Case){{4, 3, 8, 8}, 16, 3, 1, 1, false, true, false, 0.1, false, false, 0, false, false}); }
static void test_5x5_bias(void **st) { run_case(&(Case){{4, 6, 12, 12}, 16, 5, 1, 0, true, true, false, 0.2, false, false, 0, false, false}); }
static void test_wide(void **st) { run_case(&(Case){{2, 128, 4, 4}, 128, 3, 1, 1, false, true, false, 0.05, false, false, 0, false, false}); }
static void test_no_reuse(void **st) { run_case(&(Case){{4, 16, 8, 8}, 16, 3, 1, 1, false, false, false, 0.1, false, false, 0, false, false}); }
static void test_fc(void **st) { run_case(&(Case){{4, 8, 3, 3}, 10, 1, 1, 0, true, true, false, 0.3, true, false, 0, false, false}); }
static void test_fc_flat(void **st) { run_case(&(Case){{8, 64, 1, 1}, 32, 1, 1, 0, true, true, false, 0.1, true, false, 0, false, false}); }
static void test_dense_step(void **st) { run_case(&(Case){{4, 16, 8, 8}, 16, 3, 1, 1, true, true, true, 1.0, false, false, 0, false, false}); }

/* The real resprop scheme at a threshold below every |G - R| (density 1): G_hat = (G - R) + R, so
 * through the dnnl backend its gradients equal the dense ones within 1e-5 (not bit for bit). */
/* backend sparse: every conv kind on the CPU kernels (break-even 1), from a dense S and from a fused
 * writer; above the break-even density the oneDNN path on the expanded S; fc stays on oneDNN. */
#define SP(in, k, ks, st, pad, bias, dens, be, fused) \
    run_case(&(Case){in, k, ks, st, pad, bias, true, false, dens, false, true, be, fused, false})
static void test_sparse_3x3(void **st) {
    SP(((Dims4){4, 16, 8, 8}), 16, 3, 1, 1, false, 0.1, 1.0, false);
    SP(((Dims4){4, 16, 8, 8}), 16, 3, 1, 1, false, 0.1, 1.0, true);
}
static void test_sparse_3x3_stride2(void **st) {
    SP(((Dims4){3, 16, 9, 9}), 32, 3, 2, 1, false, 0.2, 1.0, true);
    SP(((Dims4){4, 64, 8, 8}), 128, 3, 2, 1, false, 0.1, 1.0, true);
}
static void test_sparse_1x1(void **st) { SP(((Dims4){4, 16, 8, 8}), 32, 1, 2, 0, false, 0.1, 1.0, true); }
static void test_sparse_stem_7x7(void **st) { SP(((Dims4){2, 3, 20, 20}), 16, 7, 2, 3, false, 0.3, 1.0, true); }
static void test_sparse_cifar_stem(void **st) { SP(((Dims4){4, 3, 8, 8}), 64, 3, 1, 1, false, 0.1, 1.0, false); }
static void test_sparse_5x5_bias(void **st) { SP(((Dims4){4, 6, 12, 12}), 16, 5, 1, 0, true, 0.2, 1.0, true); }
static void test_sparse_wide(void **st) { SP(((Dims4){2, 128, 4, 4}), 128, 3, 1, 1, false, 0.05, 1.0, true); }
static void test_sparse_no_reuse(void **st) {
    run_case(&(Case){{4, 16, 8, 8}, 16, 3, 1, 1, false, false, false, 0.1, false, true, 1.0, true, false});
}
static void test_sparse_above_breakeven(void **st) {
    SP(((Dims4){4, 16, 8, 8}), 16, 3, 1, 1, false, 0.3, 0.1, true);  /* fused CSR expanded for oneDNN */
    SP(((Dims4){4, 16, 8, 8}), 16, 3, 1, 1, false, 0.3, 0.1, false); /* dense S straight to oneDNN */
}
static void test_sparse_dense_step(void **st) {
    run_case(&(Case){{4, 16, 8, 8}, 16, 3, 1, 1, true, true, true, 1.0, false, true, 1.0, true, false});
}
/* a structured S (whole rows) from the fused writer runs on the gathered-GEMM kernels */
#define SV(in, k, ks, st, pad, dens) run_case(&(Case){in, k, ks, st, pad, false, true, false, dens, false, true, 1.0, true, true})
static void test_sparse_structured(void **st) {
    SV(((Dims4){4, 16, 8, 8}), 16, 3, 1, 1, 0.1);
    SV(((Dims4){3, 16, 9, 9}), 32, 3, 2, 1, 0.2);
    SV(((Dims4){4, 16, 8, 8}), 32, 1, 2, 0, 0.1);
    SV(((Dims4){2, 3, 20, 20}), 16, 7, 2, 3, 0.3);
    SV(((Dims4){2, 128, 4, 4}), 128, 3, 1, 1, 0.1);
}

static void test_sparse_fc_stays_dnnl(void **st) {
    run_case(&(Case){{4, 8, 3, 3}, 10, 1, 1, 0, true, true, false, 0.3, true, true, 1.0, true, false});
}

static void test_resprop_density1_equals_dense(void **unused) {
    size_t live = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    LayerSpec spec = {.kind = LAYER_CONV, .name = "conv", .in = {0, -1}, .out_c = 16, .kh = 3, .kw = 3, .stride = 1,
                      .pad = 1};
    Dims4 in = {4, 8, 8, 8};
    Layer *sch = NULL, *plain = NULL;
    assert_int_equal(layer_create(&sch, &spec, &in, &ctx), 0);
    assert_int_equal(layer_create(&plain, &spec, &in, &ctx), 0);
    Dims4 out = layer_out_dims_of(sch);
    size_t nx = dims_count(in), ny = dims_count(out), nw = layer_param(sch, 0).n_plain;
    Rng rng;
    rng_init(&rng, 7);
    float *w = frand(&rng, nw, 0.3), *x = frand(&rng, nx, 1.0), *g = frand(&rng, ny, 1.0);
    float *sbuf = mem_calloc(ny, sizeof(float)), *y1 = mem_alloc(ny * 4), *y2 = mem_alloc(ny * 4);
    float *dx1 = mem_alloc(nx * 4), *dx2 = mem_alloc(nx * 4), *dw1 = mem_alloc(nw * 4), *dw2 = mem_alloc(nw * 4);
    assert_int_equal(layer_param_set(sch, 0, w), 0);
    assert_int_equal(layer_param_set(plain, 0, w), 0);
    ResPropOptions opt;
    assert_int_equal(config_defaults(scheme_resprop.options, &opt), 0);
    opt.tau_init = opt.tau_min = opt.tau_max = 1e-30;
    snprintf(opt.warmup, sizeof opt.warmup, "none");
    opt.reset_each_epoch = false;
    void *state = NULL;
    assert_int_equal(scheme_resprop.layer_create(&state, &opt, (GradShape){out.n, out.h, out.w, out.c}, 0.9), 0);
    LayerScheme ls = {.scheme = &scheme_resprop, .cfg = &opt, .state = state, .s_buf = sbuf};
    assert_int_equal(layer_attach_scheme(sch, &ls), 0);
    float *xs[2] = {x, NULL}, *d1[2] = {dx1, NULL}, *d2[2] = {dx2, NULL};
    assert_int_equal(layer_bind(sch, xs, y1, d1, g), 0);
    assert_int_equal(layer_bind(plain, xs, y2, d2, g), 0);
    for (long step = 0; step < 2; step++) { /* step 0 is dense (no R yet); step 1 reuses R */
        for (size_t i = 0; i < ny; i++) g[i] = (float)rng_normal(&rng);
        ls.step = (SchemeStep){.step = step, .step_in_epoch = step, .steps_per_epoch = 100, .total_steps = 100,
                               .rng = rng_split(&rng, (uint64_t)step)};
        for (int k = 0; k < 2; k++) {
            Layer *l = k ? plain : sch;
            assert_int_equal(layer_forward(l, true), 0);
            assert_int_equal(layer_backward(l), 0);
        }
        assert_true(ls.out.dense == (step == 0));
        assert_true(ls.out.density == 1.0);
        double *want = to_d(dx2, nx);
        assert_close_fd("dX resprop at density 1 vs dense", dx1, want, nx, 1e-5);
        mem_free(want);
        assert_int_equal(layer_grad_get(sch, 0, dw1), 0);
        assert_int_equal(layer_grad_get(plain, 0, dw2), 0);
        want = to_d(dw2, nw);
        assert_close_fd("dW resprop at density 1 vs dense", dw1, want, nw, 1e-5);
        mem_free(want);
    }
    assert_non_null(ls.out.r); /* the second step did go through the reuse terms */
    scheme_resprop.layer_destroy(state);
    mem_free(w), mem_free(x), mem_free(g), mem_free(sbuf), mem_free(y1), mem_free(y2);
    mem_free(dx1), mem_free(dx2), mem_free(dw1), mem_free(dw2);
    layer_destroy(sch);
    layer_destroy(plain);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), live);
}

/* A whole network (resnet20 at 8x8, batch 8) under resprop with the controller running, on backend
 * dnnl and on backend sparse with every layer forced onto the sparse kernels: the parameter
 * gradients agree at every step while the density falls from 1 (the threshold doubles per step).
 * Weights stay fixed, so the two runs see the same inputs; a different summation order may flip a
 * threshold decision for an entry within rounding of tau, hence the tolerance of 1e-3. */
static void test_net_sparse_equals_dnnl(void **unused) {
    size_t live = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    ModelSpec m = {0};
    assert_int_equal(model_build(&m, "resnet20", 3, 8, 8, 10), 0);
    ResPropOptions opt;
    assert_int_equal(config_defaults(scheme_resprop.options, &opt), 0);
    snprintf(opt.warmup, sizeof opt.warmup, "none");
    opt.reset_each_epoch = false;
    opt.tau_init = 1e-5;
    opt.margin = 0;
    Net *net[2] = {NULL, NULL};
    NetBackend sparse = {.sparse = true, .breakeven = {1, 1, 1, 1}};
    Rng rng;
    rng_init(&rng, 5);
    for (int b = 0; b < 2; b++) {
        assert_int_equal(net_create(&net[b], &m, 8, &ctx, &rng), 0);
        assert_int_equal(net_attach_scheme(net[b], &scheme_resprop, &opt, 0.9, 3, b ? &sparse : NULL), 0);
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
            double *wd = to_d(want.dw, want.n_stored);
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
    assert_true(sparse_steps > 100); /* and the sparse kernels ran */
    for (int b = 0; b < 2; b++) net_destroy(net[b]);
    model_deinit(&m);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_attach_rejects_non_conv(void **st) {
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    LayerSpec spec = {.kind = LAYER_RELU, .name = "relu", .in = {0, -1}};
    Dims4 in = {2, 4, 4, 4};
    Layer *l = NULL;
    assert_int_equal(layer_create(&l, &spec, &in, &ctx), 0);
    LayerScheme ls = {.scheme = &fixed_scheme};
    assert_int_equal(layer_attach_scheme(l, &ls), ERR_SHAPE);
    layer_destroy(l);
    dnnl_ctx_deinit(&ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_3x3),          cmocka_unit_test(test_3x3_stride2), cmocka_unit_test(test_1x1_downsample),
        cmocka_unit_test(test_stem_7x7),     cmocka_unit_test(test_cifar_stem_3ch), cmocka_unit_test(test_5x5_bias),
        cmocka_unit_test(test_wide),         cmocka_unit_test(test_no_reuse),    cmocka_unit_test(test_dense_step),
        cmocka_unit_test(test_attach_rejects_non_conv), cmocka_unit_test(test_resprop_density1_equals_dense),
        cmocka_unit_test(test_fc),                   cmocka_unit_test(test_fc_flat),
        cmocka_unit_test(test_sparse_3x3), cmocka_unit_test(test_sparse_3x3_stride2), cmocka_unit_test(test_sparse_1x1),
        cmocka_unit_test(test_sparse_stem_7x7), cmocka_unit_test(test_sparse_cifar_stem),
        cmocka_unit_test(test_sparse_5x5_bias), cmocka_unit_test(test_sparse_wide),
        cmocka_unit_test(test_sparse_no_reuse), cmocka_unit_test(test_sparse_above_breakeven),
        cmocka_unit_test(test_sparse_dense_step), cmocka_unit_test(test_sparse_fc_stays_dnnl),
        cmocka_unit_test(test_sparse_structured),  cmocka_unit_test(test_net_sparse_equals_dnnl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
