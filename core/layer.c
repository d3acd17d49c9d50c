/* layer.c: layers as short lists of oneDNN primitive executions.
 *
 * Each layer kind contributes one create function that builds its primitives into three step
 * lists (training forward, inference forward, backward) whose arguments reference the layer's
 * memory objects; forward/backward then just execute the lists. Activation memories are created
 * with no data and get their handles in layer_bind. A few kinds add a small hook after the steps
 * (BN running statistics, the loss value and its gradient). */
#include "core/layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define LAYER_MAX_STEPS 4
#define STEP_MAX_ARGS 12
#define LAYER_MAX_OWNED 12
#define LAYER_MAX_SHARED 16

/* One primitive execution. `needs_dx` >= 0: run only when dx[needs_dx] is bound. `copy_of`
 * marks a reorder used as a copy (skipped when source and destination are the same buffer). */
typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch; /* on the context's shared scratchpad, NULL when none is needed */
    int n_args;
    dnnl_exec_arg_t args[STEP_MAX_ARGS];
    int needs_dx;
    bool active;
    float **copy_src, **copy_dst; /* for copies: skip when *copy_src == *copy_dst */
} Step;

typedef struct {
    const char *name;
    bool decay;
    dnnl_memory_desc_t md;       /* stored layout (as the forward primitive wants it) */
    dnnl_memory_desc_t plain_md; /* the plain layout of layer.h */
    size_t n_stored, n_plain;
    float *w, *dw;         /* (n_stored) */
    dnnl_memory_t m_w, m_dw;
    dnnl_memory_desc_t bwd_md; /* the backward-data layout, when it differs from md: then */
    dnnl_memory_t m_w_bwd;     /* a copy on the context's CTX_WEIGHTS_BWD buffer, refreshed each backward */
    dnnl_memory_desc_t raw_md; /* the backward-weights layout, when it differs from md: then */
    dnnl_memory_t m_dw_raw;    /* its output on CTX_WGRAD_RAW, reordered into dw right after */
} Param;

typedef struct LayerOps LayerOps;

struct Layer {
    LayerSpec spec;
    const LayerOps *ops;
    DnnlCtx *ctx;
    int n_in;
    Dims4 in[2], out;

    /* bound activations (owned by the caller) */
    float *x[2], *y, *dx[2], *dy;
    const int32_t *labels;
    dnnl_memory_t m_x[2], m_y, m_dx[2], m_dy;

    Step fwd_train[LAYER_MAX_STEPS], fwd_infer[LAYER_MAX_STEPS], bwd[LAYER_MAX_STEPS], recompute[1];
    int n_fwd_train, n_fwd_infer, n_bwd, n_recompute;

    Param params[2];
    int n_params;
    int i_wbwd, i_data, i_wgt, i_dwre; /* conv/fc: positions in bwd of the weights reorder (-1 none),
                                          bwd_data, bwd_weights, weight-gradient reorder (-1 none) */
    /* sparsity scheme (conv): single-sample primitives and memories */
    LayerScheme *scheme;
    Step sch_w1_reorder, sch_data1, sch_wgt1, sch_dw1_reorder;
    dnnl_memory_t m_s, m_r, m_xsum, m_dx1, m_dw1, m_dw1_raw, m_w1;
    /* backend sparse: the CSR view, the geometry, OHWI weight and weight-gradient reorders */
    SparseGrad csr;
    ConvGeom geom;
    Step sp_w_reorder, sp_dw_reorder;
    dnnl_memory_t m_w_ohwi, m_dw_ohwi;

    /* memories and buffers private to a kind (BN statistics, workspaces) */
    dnnl_memory_t owned_mem[LAYER_MAX_OWNED];
    int n_owned_mem;
    float *bn_mean, *bn_var, *bn_run_mean, *bn_run_var; /* (C) */
    void *workspace;
    double loss;
    double *sample_loss; /* LOSS: (N) cross-entropy of each sample of the last forward */
    /* memories on the context's shared buffers, re-pointed when the buffers move */
    struct {
        dnnl_memory_t mem;
        int slot;
    } shared_refs[LAYER_MAX_SHARED];
    int n_shared_refs;
    unsigned generation_seen;
};

struct LayerOps {
    int (*create)(Layer *l);
    int (*after_forward)(Layer *l, bool train); /* optional */
    int (*after_backward)(Layer *l);            /* optional */
};

/* ---- the shared context ---------------------------------------------------------------------- */

int dnnl_ctx_init(DnnlCtx *ctx) {
    int rc = 0;
    memset(ctx, 0, sizeof *ctx);
    DNNL_TRY(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
    return 0;
fail:
    dnnl_ctx_deinit(ctx);
    return rc;
}

void dnnl_ctx_deinit(DnnlCtx *ctx) {
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
    for (int i = 0; i < CTX_N_SHARED; i++) mem_free(ctx->shared[i]);
    memset(ctx, 0, sizeof *ctx);
}

static int ctx_reserve(DnnlCtx *ctx, int slot, size_t bytes) {
    if (bytes <= ctx->shared_bytes[slot]) return 0;
    void *p = mem_alloc(bytes);
    if (!p) return ERR_NOMEM;
    mem_free(ctx->shared[slot]);
    ctx->shared[slot] = p;
    ctx->shared_bytes[slot] = bytes;
    ctx->generation++;
    return 0;
}

/* ---- small helpers ----------------------------------------------------------------------------- */

static const char *const kind_names[LAYER_N_KINDS] = {
    [LAYER_INPUT] = "input", [LAYER_CONV] = "conv",       [LAYER_BN] = "bn",
    [LAYER_RELU] = "relu",   [LAYER_MAXPOOL] = "maxpool", [LAYER_AVGPOOL] = "avgpool",
    [LAYER_GAP] = "gap",     [LAYER_FC] = "fc",           [LAYER_ADD] = "add",
    [LAYER_LOSS] = "loss",
};

const char *layer_kind_name(LayerKind kind) {
    return (kind >= 0 && kind < LAYER_N_KINDS && kind_names[kind]) ? kind_names[kind] : "?";
}

int layer_kind_inputs(LayerKind kind) {
    switch (kind) {
    case LAYER_INPUT: return 0;
    case LAYER_ADD: return 2;
    default: return 1;
    }
}

bool layer_kind_needs_dx(LayerKind kind, int input) {
    return input == 0 && (kind == LAYER_BN || kind == LAYER_ADD);
}

/* Inputs must be positive and small enough that element counts stay far from overflow. */
#define LAYER_MAX_DIM (1 << 20)
#define LAYER_MAX_ELEMS (1ULL << 36)

int layer_out_dims(const LayerSpec *s, const Dims4 *in, Dims4 *out) {
    int rc = 0;
    for (int i = 0; i < layer_kind_inputs(s->kind); i++) {
        Dims4 d = in[i];
        if (d.n < 1 || d.c < 1 || d.h < 1 || d.w < 1 || d.n > LAYER_MAX_DIM || d.c > LAYER_MAX_DIM ||
            d.h > LAYER_MAX_DIM || d.w > LAYER_MAX_DIM || dims_count(d) > LAYER_MAX_ELEMS)
            FAIL(ERR_SHAPE, "layer %s: input %d is %dx%dx%dx%d (NxCxHxW), expected positive sizes with at most 2^36 elements",
                 s->name, i, d.n, d.c, d.h, d.w);
    }
    Dims4 o = in[0];
    switch (s->kind) {
    case LAYER_CONV:
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL:
        if (s->kh < 1 || s->kw < 1 || s->stride < 1 || s->pad < 0)
            FAIL(ERR_SHAPE, "layer %s: kernel %dx%d stride %d pad %d: expected kernel >= 1, stride >= 1, pad >= 0",
                 s->name, s->kh, s->kw, s->stride, s->pad);
        if (in[0].h + 2 * s->pad < s->kh || in[0].w + 2 * s->pad < s->kw)
            FAIL(ERR_SHAPE, "layer %s: %dx%d window (pad %d) larger than its %dx%d input", s->name, s->kh,
                 s->kw, s->pad, in[0].h, in[0].w);
        if (s->kind != LAYER_CONV && (s->pad >= s->kh || s->pad >= s->kw))
            FAIL(ERR_SHAPE, "layer %s: pooling pad %d must be smaller than the %dx%d window", s->name,
                 s->pad, s->kh, s->kw);
        o.h = shape_out(in[0].h, s->kh, s->stride, s->pad);
        o.w = shape_out(in[0].w, s->kw, s->stride, s->pad);
        if (s->kind == LAYER_CONV) {
            if (s->out_c < 1) FAIL(ERR_SHAPE, "layer %s: %d output channels, expected >= 1", s->name, s->out_c);
            o.c = s->out_c;
        }
        break;
    case LAYER_FC:
        if (s->out_c < 1) FAIL(ERR_SHAPE, "layer %s: %d output features, expected >= 1", s->name, s->out_c);
        o.c = s->out_c, o.h = 1, o.w = 1;
        break;
    case LAYER_GAP: o.h = 1, o.w = 1; break;
    case LAYER_ADD:
        if (in[0].c != in[1].c || in[0].h != in[1].h || in[0].w != in[1].w || in[0].n != in[1].n)
            FAIL(ERR_SHAPE, "layer %s: adds %dx%dx%d to %dx%dx%d, expected equal shapes", s->name, in[0].c,
                 in[0].h, in[0].w, in[1].c, in[1].h, in[1].w);
        break;
    case LAYER_LOSS:
        if (in[0].h != 1 || in[0].w != 1)
            FAIL(ERR_SHAPE, "layer %s: loss input %dx%dx%d, expected classes x 1 x 1", s->name, in[0].c,
                 in[0].h, in[0].w);
        break;
    case LAYER_INPUT:
    case LAYER_BN:
    case LAYER_RELU: break;
    default: FAIL(ERR_SHAPE, "layer %s: unknown kind %d", s->name, (int)s->kind);
    }
    *out = o;
    return 0;
fail:
    return rc;
}

static int md_nhwc(dnnl_memory_desc_t *md, Dims4 d) {
    int rc = 0;
    dnnl_dims_t dims = {d.n, d.c, d.h, d.w};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nhwc));
fail:
    return rc;
}

static int md_plain(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    int rc = 0;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag));
fail:
    return rc;
}

/* A memory the layer owns with no data yet (activations get their handle at bind). */
static int mem_new(Layer *l, dnnl_memory_t *m, const dnnl_memory_desc_t *md, void *data) {
    int rc = 0;
    DNNL_TRY(dnnl_memory_create(m, md, l->ctx->engine, data ? data : DNNL_MEMORY_NONE));
    return 0;
fail:
    *m = NULL;
    return rc;
}

static int owned_mem_new(Layer *l, dnnl_memory_t *m, const dnnl_memory_desc_t *md, void *data) {
    ASSERT(l->n_owned_mem < LAYER_MAX_OWNED);
    int rc = mem_new(l, m, md, data);
    if (rc == 0) l->owned_mem[l->n_owned_mem++] = *m;
    return rc;
}

/* A memory on one of the context's shared buffers (grown to fit); the layer re-points it before
 * executing if the buffer has moved since. The caller owns and destroys the memory object. */
static int shared_mem_new(Layer *l, dnnl_memory_t *m, const dnnl_memory_desc_t *md, int slot) {
    int rc = 0;
    ASSERT(l->n_shared_refs < LAYER_MAX_SHARED);
    TRY(ctx_reserve(l->ctx, slot, dnnl_memory_desc_get_size(md)));
    DNNL_TRY(dnnl_memory_create(m, md, l->ctx->engine, DNNL_MEMORY_NONE));
    l->shared_refs[l->n_shared_refs].mem = *m;
    l->shared_refs[l->n_shared_refs].slot = slot;
    l->n_shared_refs++;
    l->generation_seen = l->ctx->generation - 1; /* force a sync */
fail:
    return rc;
}

static dnnl_primitive_attr_t attr_user_scratch(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

/* Makes a step from an op descriptor: primitive descriptor (user scratchpad, optional post-ops),
 * primitive and scratchpad memory. On failure the step holds what was created (destroyed later). */
static int step_make(Layer *l, Step *st, const void *op_desc, const_dnnl_primitive_desc_t hint,
                     dnnl_post_ops_t post_ops) {
    int rc = 0;
    dnnl_primitive_attr_t attr = attr_user_scratch();
    if (!attr) FAIL(ERR_DNNL, "layer %s: cannot create primitive attributes", l->spec.name);
    if (post_ops) DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, post_ops));
    DNNL_TRY(dnnl_primitive_desc_create(&st->pd, op_desc, attr, l->ctx->engine, hint));
    DNNL_TRY(dnnl_primitive_create(&st->prim, st->pd));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(st->pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sbytes) {
        TRY(shared_mem_new(l, &st->scratch, smd, CTX_SCRATCH));
        st->args[st->n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, st->scratch};
    }
    st->needs_dx = -1;
    st->active = true;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int step_reorder(Layer *l, Step *st, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst) {
    int rc = 0;
    dnnl_primitive_attr_t attr = attr_user_scratch();
    if (!attr) FAIL(ERR_DNNL, "layer %s: cannot create primitive attributes", l->spec.name);
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&st->pd, src, l->ctx->engine, dst, l->ctx->engine, attr));
    DNNL_TRY(dnnl_primitive_create(&st->prim, st->pd));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(st->pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sbytes) {
        TRY(shared_mem_new(l, &st->scratch, smd, CTX_SCRATCH));
        st->args[st->n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, st->scratch};
    }
    st->needs_dx = -1;
    st->active = true;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static void step_arg(Step *st, int arg, dnnl_memory_t m) {
    ASSERT(st->n_args < STEP_MAX_ARGS);
    st->args[st->n_args++] = (dnnl_exec_arg_t){arg, m};
}

static void step_deinit(Step *st) {
    if (st->prim) dnnl_primitive_destroy(st->prim);
    if (st->pd) dnnl_primitive_desc_destroy(st->pd);
    if (st->scratch) dnnl_memory_destroy(st->scratch);
    memset(st, 0, sizeof *st);
}

static Step *add_step(Layer *l, Step *list, int *n) {
    ASSERT(*n < (list == l->recompute ? 1 : LAYER_MAX_STEPS));
    return &list[(*n)++];
}

static int run_steps(Layer *l, Step *list, int n) {
    int rc = 0;
    for (int i = 0; i < n; i++) {
        Step *st = &list[i];
        if (!st->active) continue;
        DNNL_TRY(dnnl_primitive_execute(st->prim, l->ctx->stream, st->n_args, st->args));
    }
    DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
fail:
    if (rc) log_msg(LOG_ERROR, "layer %s (%s): execution failed", l->spec.name, layer_kind_name(l->spec.kind));
    return rc;
}

/* Points the layer's memories on shared buffers at the buffers' current addresses. */
static int sync_shared(Layer *l) {
    int rc = 0;
    if (l->generation_seen == l->ctx->generation) return 0;
    for (int i = 0; i < l->n_shared_refs; i++)
        DNNL_TRY(dnnl_memory_set_data_handle(l->shared_refs[i].mem, l->ctx->shared[l->shared_refs[i].slot]));
    l->generation_seen = l->ctx->generation;
fail:
    return rc;
}

/* ---- parameters ------------------------------------------------------------------------------- */

/* Allocates a parameter in layout `md` (zero-filled) and its gradient. */
static int param_init(Layer *l, Param *p, const char *name, bool decay, const dnnl_memory_desc_t *md,
                      const dnnl_memory_desc_t *plain_md) {
    int rc = 0;
    p->name = name;
    p->decay = decay;
    p->md = *md;
    p->plain_md = *plain_md;
    size_t bytes = dnnl_memory_desc_get_size(md);
    p->n_stored = bytes / sizeof(float);
    p->n_plain = dnnl_memory_desc_get_size(plain_md) / sizeof(float);
    p->w = mem_calloc(p->n_stored, sizeof(float));
    p->dw = mem_calloc(p->n_stored, sizeof(float));
    if (!p->w || !p->dw) FAIL(ERR_NOMEM, "layer %s: cannot allocate %s (%zu bytes)", l->spec.name, name, bytes);
    TRY(mem_new(l, &p->m_w, md, p->w));
    TRY(mem_new(l, &p->m_dw, md, p->dw));
    return 0;
fail:
    return rc;
}

static void param_deinit(Param *p) {
    if (p->m_w) dnnl_memory_destroy(p->m_w);
    if (p->m_dw) dnnl_memory_destroy(p->m_dw);
    if (p->m_w_bwd) dnnl_memory_destroy(p->m_w_bwd);
    if (p->m_dw_raw) dnnl_memory_destroy(p->m_dw_raw);
    mem_free(p->w);
    mem_free(p->dw);
    memset(p, 0, sizeof *p);
}

/* The weights memory the backward-data primitive reads: p->m_w itself, or a copy in `want`
 * layout refreshed by a reorder step at the start of backward. */
static int param_bwd_weights_mem(Layer *l, Param *p, const dnnl_memory_desc_t *want, dnnl_memory_t *out) {
    int rc = 0;
    if (dnnl_memory_desc_equal(want, &p->md)) {
        *out = p->m_w;
        return 0;
    }
    TRY(shared_mem_new(l, &p->m_w_bwd, want, CTX_WEIGHTS_BWD));
    p->bwd_md = *want;
    Step *st = add_step(l, l->bwd, &l->n_bwd);
    TRY(step_reorder(l, st, &p->md, want));
    step_arg(st, DNNL_ARG_FROM, p->m_w);
    step_arg(st, DNNL_ARG_TO, p->m_w_bwd);
    *out = p->m_w_bwd;
fail:
    return rc;
}

/* The diff-weights memory the backward-weights primitive writes: p->m_dw, or a raw buffer in
 * `got` layout that a reorder step (appended by param_finish_dw) brings back to p->md. */
static int param_dw_mem(Layer *l, Param *p, const dnnl_memory_desc_t *got, dnnl_memory_t *out) {
    int rc = 0;
    if (dnnl_memory_desc_equal(got, &p->md)) {
        *out = p->m_dw;
        return 0;
    }
    TRY(shared_mem_new(l, &p->m_dw_raw, got, CTX_WGRAD_RAW));
    p->raw_md = *got;
    *out = p->m_dw_raw;
fail:
    return rc;
}

/* Appends the reorder raw -> stored layout after the backward-weights step (when needed). */
static int param_finish_dw(Layer *l, Param *p) {
    int rc = 0;
    if (!p->m_dw_raw) return 0;
    Step *st = add_step(l, l->bwd, &l->n_bwd);
    TRY(step_reorder(l, st, &p->raw_md, &p->md));
    step_arg(st, DNNL_ARG_FROM, p->m_dw_raw);
    step_arg(st, DNNL_ARG_TO, p->m_dw);
fail:
    return rc;
}

/* Reorder between a parameter's stored layout and its plain layout (not on the training path). */
static int param_convert(Layer *l, const dnnl_memory_desc_t *src_md, const void *src,
                         const dnnl_memory_desc_t *dst_md, void *dst) {
    int rc = 0;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ms = NULL, md = NULL;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, src_md, l->ctx->engine, dst_md, l->ctx->engine, NULL));
    DNNL_TRY(dnnl_primitive_create(&prim, pd));
    DNNL_TRY(dnnl_memory_create(&ms, src_md, l->ctx->engine, (void *)src));
    DNNL_TRY(dnnl_memory_create(&md, dst_md, l->ctx->engine, dst));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    DNNL_TRY(dnnl_primitive_execute(prim, l->ctx->stream, 2, args));
    DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
fail:
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- activation memories ---------------------------------------------------------------------- */

/* Creates m_x[i], m_dx[i] (per input) and m_y, m_dy with the given descriptors (NULL: nhwc). */
static int io_mems(Layer *l, const dnnl_memory_desc_t *xmd, const dnnl_memory_desc_t *ymd) {
    int rc = 0;
    dnnl_memory_desc_t md;
    for (int i = 0; i < l->n_in; i++) {
        if (xmd) md = *xmd;
        else TRY(md_nhwc(&md, l->in[i]));
        TRY(mem_new(l, &l->m_x[i], &md, NULL));
        TRY(mem_new(l, &l->m_dx[i], &md, NULL));
    }
    if (ymd) md = *ymd;
    else TRY(md_nhwc(&md, l->out));
    TRY(mem_new(l, &l->m_y, &md, NULL));
    TRY(mem_new(l, &l->m_dy, &md, NULL));
fail:
    return rc;
}

/* ---- convolution and fully connected ---------------------------------------------------------- */

/* Shared by conv and fc: `fwd_d`, `bwd_data_d`, `bwd_w_d` are initialised op descriptors with
 * weights in format any; builds the steps and the parameters. */
static int weighted_steps(Layer *l, const void *fwd_d, const void *bwd_data_d, const void *bwd_w_d,
                          const dnnl_memory_desc_t *w_plain, const dnnl_memory_desc_t *b_md) {
    int rc = 0;
    Step *f = add_step(l, l->fwd_train, &l->n_fwd_train);
    TRY(step_make(l, f, fwd_d, NULL, NULL));
    TRY(param_init(l, &l->params[0], "weight", true, dnnl_primitive_desc_query_md(f->pd, dnnl_query_weights_md, 0),
                   w_plain));
    l->n_params = 1;
    if (l->spec.bias) {
        TRY(param_init(l, &l->params[1], "bias", false, b_md, b_md));
        l->n_params = 2;
    }
    step_arg(f, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(f, DNNL_ARG_WEIGHTS, l->params[0].m_w);
    if (l->spec.bias) step_arg(f, DNNL_ARG_BIAS, l->params[1].m_w);
    step_arg(f, DNNL_ARG_DST, l->m_y);

    Step data = {0};
    TRY(step_make(l, &data, bwd_data_d, f->pd, NULL));
    dnnl_memory_t m_wb;
    int before = l->n_bwd;
    rc = param_bwd_weights_mem(l, &l->params[0], dnnl_primitive_desc_query_md(data.pd, dnnl_query_weights_md, 0),
                               &m_wb);
    if (rc) {
        step_deinit(&data);
        goto fail;
    }
    l->i_wbwd = l->n_bwd > before ? l->n_bwd - 1 : -1;
    l->i_data = l->n_bwd;
    Step *d = add_step(l, l->bwd, &l->n_bwd);
    *d = data;
    step_arg(d, DNNL_ARG_DIFF_DST, l->m_dy);
    step_arg(d, DNNL_ARG_WEIGHTS, m_wb);
    step_arg(d, DNNL_ARG_DIFF_SRC, l->m_dx[0]);
    d->needs_dx = 0;

    l->i_wgt = l->n_bwd;
    Step *w = add_step(l, l->bwd, &l->n_bwd);
    TRY(step_make(l, w, bwd_w_d, f->pd, NULL));
    dnnl_memory_t m_dw;
    TRY(param_dw_mem(l, &l->params[0], dnnl_primitive_desc_query_md(w->pd, dnnl_query_diff_weights_md, 0), &m_dw));
    step_arg(w, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(w, DNNL_ARG_DIFF_DST, l->m_dy);
    step_arg(w, DNNL_ARG_DIFF_WEIGHTS, m_dw);
    if (l->spec.bias) {
        const dnnl_memory_desc_t *dbmd = dnnl_primitive_desc_query_md(w->pd, dnnl_query_diff_weights_md, 1);
        if (!dnnl_memory_desc_equal(dbmd, b_md))
            FAIL(ERR_DNNL, "layer %s: unexpected bias gradient layout", l->spec.name);
        step_arg(w, DNNL_ARG_DIFF_BIAS, l->params[1].m_dw);
    }
    before = l->n_bwd;
    TRY(param_finish_dw(l, &l->params[0]));
    l->i_dwre = l->n_bwd > before ? l->n_bwd - 1 : -1;
fail:
    return rc;
}

static int conv_create(Layer *l) {
    int rc = 0;
    const LayerSpec *s = &l->spec;
    dnnl_memory_desc_t src, dst, w_any, w_plain, b;
    TRY(md_nhwc(&src, l->in[0]));
    TRY(md_nhwc(&dst, l->out));
    dnnl_dims_t wd = {l->out.c, l->in[0].c, s->kh, s->kw}, bd = {l->out.c};
    TRY(md_plain(&w_any, 4, wd, dnnl_format_tag_any));
    TRY(md_plain(&w_plain, 4, wd, dnnl_oihw));
    TRY(md_plain(&b, 1, bd, dnnl_a));
    TRY(io_mems(l, NULL, NULL));
    dnnl_dims_t st = {s->stride, s->stride}, pad = {s->pad, s->pad};
    dnnl_convolution_desc_t fd, dd, wdsc;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src, &w_any,
                                                s->bias ? &b : NULL, &dst, st, pad, pad));
    DNNL_TRY(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &src, &w_any, &dst, st, pad, pad));
    DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, &src, &w_any,
                                                         s->bias ? &b : NULL, &dst, st, pad, pad));
    TRY(weighted_steps(l, &fd, &dd, &wdsc, &w_plain, &b));
fail:
    return rc;
}

static int fc_create(Layer *l) {
    int rc = 0;
    const LayerSpec *s = &l->spec;
    int n = l->in[0].n, k = l->out.c;
    int64_t fan_in = (int64_t)dims_sample(l->in[0]);
    dnnl_memory_desc_t src, dst, w_any, w_plain, b;
    dnnl_dims_t sd = {n, fan_in}, dd2 = {n, k}, wd = {k, fan_in}, bd = {k};
    TRY(md_plain(&src, 2, sd, dnnl_nc));
    TRY(md_plain(&dst, 2, dd2, dnnl_nc));
    TRY(md_plain(&w_any, 2, wd, dnnl_format_tag_any));
    TRY(md_plain(&w_plain, 2, wd, dnnl_oi));
    TRY(md_plain(&b, 1, bd, dnnl_a));
    TRY(io_mems(l, &src, &dst));
    dnnl_inner_product_desc_t fd, dd, wdsc;
    DNNL_TRY(dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &src, &w_any, s->bias ? &b : NULL, &dst));
    DNNL_TRY(dnnl_inner_product_backward_data_desc_init(&dd, &src, &w_any, &dst));
    DNNL_TRY(dnnl_inner_product_backward_weights_desc_init(&wdsc, &src, &w_any, s->bias ? &b : NULL, &dst));
    TRY(weighted_steps(l, &fd, &dd, &wdsc, &w_plain, &b));
fail:
    return rc;
}

/* ---- batch normalisation ---------------------------------------------------------------------- */

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* A BN forward with given statistics (y from x, gamma, beta, mean, var). */
static int bn_stats_step(Layer *l, Step *st, const dnnl_batch_normalization_desc_t *d, dnnl_memory_t mean,
                         dnnl_memory_t var) {
    int rc = 0;
    TRY(step_make(l, st, d, NULL, NULL));
    step_arg(st, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(st, DNNL_ARG_DST, l->m_y);
    step_arg(st, DNNL_ARG_SCALE, l->params[0].m_w);
    step_arg(st, DNNL_ARG_SHIFT, l->params[1].m_w);
    step_arg(st, DNNL_ARG_MEAN, mean);
    step_arg(st, DNNL_ARG_VARIANCE, var);
fail:
    return rc;
}

static int bn_create(Layer *l) {
    int rc = 0;
    int c = l->in[0].c;
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (l->spec.relu ? dnnl_fuse_norm_relu : 0);
    dnnl_memory_desc_t data, cmd;
    dnnl_dims_t cd = {c};
    TRY(md_nhwc(&data, l->in[0]));
    TRY(md_plain(&cmd, 1, cd, dnnl_a));
    TRY(io_mems(l, NULL, NULL));
    TRY(param_init(l, &l->params[0], "gamma", false, &cmd, &cmd));
    TRY(param_init(l, &l->params[1], "beta", false, &cmd, &cmd));
    l->n_params = 2;
    for (int i = 0; i < c; i++) l->params[0].w[i] = 1.0f;
    l->bn_mean = mem_calloc((size_t)c, sizeof(float));
    l->bn_var = mem_calloc((size_t)c, sizeof(float));
    l->bn_run_mean = mem_calloc((size_t)c, sizeof(float));
    l->bn_run_var = mem_calloc((size_t)c, sizeof(float));
    if (!l->bn_mean || !l->bn_var || !l->bn_run_mean || !l->bn_run_var)
        FAIL(ERR_NOMEM, "layer %s: cannot allocate statistics", l->spec.name);
    for (int i = 0; i < c; i++) l->bn_run_var[i] = 1.0f;
    dnnl_memory_t m_mean, m_var, m_rmean, m_rvar, m_ws = NULL;
    TRY(owned_mem_new(l, &m_mean, &cmd, l->bn_mean));
    TRY(owned_mem_new(l, &m_var, &cmd, l->bn_var));
    TRY(owned_mem_new(l, &m_rmean, &cmd, l->bn_run_mean));
    TRY(owned_mem_new(l, &m_rvar, &cmd, l->bn_run_var));

    dnnl_batch_normalization_desc_t fd, id, bd;
    DNNL_TRY(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &data, BN_EPS, flags));
    Step *f = add_step(l, l->fwd_train, &l->n_fwd_train);
    TRY(step_make(l, f, &fd, NULL, NULL));
    const dnnl_memory_desc_t *wsmd = dnnl_primitive_desc_query_md(f->pd, dnnl_query_workspace_md, 0);
    if (wsmd && dnnl_memory_desc_get_size(wsmd)) {
        l->workspace = mem_alloc(dnnl_memory_desc_get_size(wsmd));
        if (!l->workspace) FAIL(ERR_NOMEM, "layer %s: cannot allocate workspace", l->spec.name);
        TRY(owned_mem_new(l, &m_ws, wsmd, l->workspace));
    }
    step_arg(f, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(f, DNNL_ARG_DST, l->m_y);
    step_arg(f, DNNL_ARG_SCALE, l->params[0].m_w);
    step_arg(f, DNNL_ARG_SHIFT, l->params[1].m_w);
    step_arg(f, DNNL_ARG_MEAN, m_mean);
    step_arg(f, DNNL_ARG_VARIANCE, m_var);
    if (m_ws) step_arg(f, DNNL_ARG_WORKSPACE, m_ws);

    DNNL_TRY(dnnl_batch_normalization_forward_desc_init(&id, dnnl_forward_inference, &data, BN_EPS,
                                                        flags | dnnl_use_global_stats));
    /* inference on the running statistics; and the same normalisation from the saved batch
     * statistics, for layer_recompute */
    TRY(bn_stats_step(l, add_step(l, l->fwd_infer, &l->n_fwd_infer), &id, m_rmean, m_rvar));
    TRY(bn_stats_step(l, add_step(l, l->recompute, &l->n_recompute), &id, m_mean, m_var));

    DNNL_TRY(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &data, &data, BN_EPS, flags));
    Step *b = add_step(l, l->bwd, &l->n_bwd);
    TRY(step_make(l, b, &bd, f->pd, NULL));
    step_arg(b, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(b, DNNL_ARG_MEAN, m_mean);
    step_arg(b, DNNL_ARG_VARIANCE, m_var);
    step_arg(b, DNNL_ARG_DIFF_DST, l->m_dy);
    step_arg(b, DNNL_ARG_SCALE, l->params[0].m_w);
    step_arg(b, DNNL_ARG_SHIFT, l->params[1].m_w);
    if (m_ws) step_arg(b, DNNL_ARG_WORKSPACE, m_ws);
    step_arg(b, DNNL_ARG_DIFF_SRC, l->m_dx[0]);
    step_arg(b, DNNL_ARG_DIFF_SCALE, l->params[0].m_dw);
    step_arg(b, DNNL_ARG_DIFF_SHIFT, l->params[1].m_dw);
fail:
    return rc;
}

/* Running statistics after a training forward (PyTorch: unbiased variance, momentum 0.1). */
static int bn_after_forward(Layer *l, bool train) {
    if (!train) return 0;
    int c = l->in[0].c;
    double m = (double)l->in[0].n * l->in[0].h * l->in[0].w;
    float unbias = m > 1 ? (float)(m / (m - 1)) : 1.0f;
    for (int i = 0; i < c; i++) {
        l->bn_run_mean[i] = (1 - BN_MOMENTUM) * l->bn_run_mean[i] + BN_MOMENTUM * l->bn_mean[i];
        l->bn_run_var[i] = (1 - BN_MOMENTUM) * l->bn_run_var[i] + BN_MOMENTUM * unbias * l->bn_var[i];
    }
    return 0;
}

/* ---- ReLU, pooling, add ------------------------------------------------------------------------ */

/* Eltwise ReLU backward that reads the forward output (so the forward may run in place). */
static int relu_bwd_step(Layer *l, const dnnl_memory_desc_t *md, dnnl_memory_t dst, dnnl_memory_t diff_dst,
                         dnnl_memory_t diff_src) {
    int rc = 0;
    dnnl_eltwise_desc_t fd, bd;
    dnnl_primitive_desc_t hint = NULL;
    DNNL_TRY(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, dnnl_eltwise_relu_use_dst_for_bwd, md, 0, 0));
    DNNL_TRY(dnnl_primitive_desc_create(&hint, &fd, NULL, l->ctx->engine, NULL));
    DNNL_TRY(dnnl_eltwise_backward_desc_init(&bd, dnnl_eltwise_relu_use_dst_for_bwd, md, md, 0, 0));
    Step *b = add_step(l, l->bwd, &l->n_bwd);
    TRY(step_make(l, b, &bd, hint, NULL));
    step_arg(b, DNNL_ARG_DST, dst);
    step_arg(b, DNNL_ARG_DIFF_DST, diff_dst);
    step_arg(b, DNNL_ARG_DIFF_SRC, diff_src);
    b->needs_dx = 0;
fail:
    if (hint) dnnl_primitive_desc_destroy(hint);
    return rc;
}

static int relu_create(Layer *l) {
    int rc = 0;
    dnnl_memory_desc_t md;
    TRY(md_nhwc(&md, l->in[0]));
    TRY(io_mems(l, NULL, NULL));
    dnnl_eltwise_desc_t fd;
    DNNL_TRY(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, dnnl_eltwise_relu_use_dst_for_bwd, &md, 0, 0));
    Step *f = add_step(l, l->fwd_train, &l->n_fwd_train);
    TRY(step_make(l, f, &fd, NULL, NULL));
    step_arg(f, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(f, DNNL_ARG_DST, l->m_y);
    TRY(relu_bwd_step(l, &md, l->m_y, l->m_dy, l->m_dx[0]));
fail:
    return rc;
}

static int pool_create(Layer *l) {
    int rc = 0;
    const LayerSpec *s = &l->spec;
    dnnl_memory_desc_t src, dst;
    TRY(md_nhwc(&src, l->in[0]));
    TRY(md_nhwc(&dst, l->out));
    TRY(io_mems(l, NULL, NULL));
    bool gap = s->kind == LAYER_GAP;
    dnnl_alg_kind_t alg = s->kind == LAYER_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnnl_dims_t st = {gap ? 1 : s->stride, gap ? 1 : s->stride};
    dnnl_dims_t ker = {gap ? l->in[0].h : s->kh, gap ? l->in[0].w : s->kw};
    dnnl_dims_t dil = {0, 0}, pad = {gap ? 0 : s->pad, gap ? 0 : s->pad};
    dnnl_pooling_v2_desc_t fd, bd;
    DNNL_TRY(dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_training, alg, &src, &dst, st, ker, dil, pad, pad));
    Step *f = add_step(l, l->fwd_train, &l->n_fwd_train);
    TRY(step_make(l, f, &fd, NULL, NULL));
    dnnl_memory_t m_ws = NULL;
    const dnnl_memory_desc_t *wsmd = dnnl_primitive_desc_query_md(f->pd, dnnl_query_workspace_md, 0);
    if (wsmd && dnnl_memory_desc_get_size(wsmd)) {
        l->workspace = mem_alloc(dnnl_memory_desc_get_size(wsmd));
        if (!l->workspace) FAIL(ERR_NOMEM, "layer %s: cannot allocate workspace", l->spec.name);
        TRY(owned_mem_new(l, &m_ws, wsmd, l->workspace));
    }
    step_arg(f, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(f, DNNL_ARG_DST, l->m_y);
    if (m_ws) step_arg(f, DNNL_ARG_WORKSPACE, m_ws);
    DNNL_TRY(dnnl_pooling_v2_backward_desc_init(&bd, alg, &src, &dst, st, ker, dil, pad, pad));
    Step *b = add_step(l, l->bwd, &l->n_bwd);
    TRY(step_make(l, b, &bd, f->pd, NULL));
    step_arg(b, DNNL_ARG_DIFF_DST, l->m_dy);
    step_arg(b, DNNL_ARG_DIFF_SRC, l->m_dx[0]);
    if (m_ws) step_arg(b, DNNL_ARG_WORKSPACE, m_ws);
    b->needs_dx = 0;
fail:
    return rc;
}

/* A plain copy (nhwc -> nhwc reorder), skipped when source and destination coincide. */
static int copy_step(Layer *l, const dnnl_memory_desc_t *md, dnnl_memory_t from, float **from_ptr,
                     dnnl_memory_t to, float **to_ptr, int needs_dx) {
    int rc = 0;
    Step *c = add_step(l, l->bwd, &l->n_bwd);
    TRY(step_reorder(l, c, md, md));
    step_arg(c, DNNL_ARG_FROM, from);
    step_arg(c, DNNL_ARG_TO, to);
    c->copy_src = from_ptr;
    c->copy_dst = to_ptr;
    c->needs_dx = needs_dx;
fail:
    return rc;
}

static int add_create(Layer *l) {
    int rc = 0;
    dnnl_memory_desc_t md;
    dnnl_post_ops_t po = NULL;
    TRY(md_nhwc(&md, l->out));
    TRY(io_mems(l, NULL, NULL));
    dnnl_binary_desc_t fd;
    DNNL_TRY(dnnl_binary_desc_init(&fd, dnnl_binary_add, &md, &md, &md));
    if (l->spec.relu) {
        DNNL_TRY(dnnl_post_ops_create(&po));
        DNNL_TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0, 0));
    }
    Step *f = add_step(l, l->fwd_train, &l->n_fwd_train);
    TRY(step_make(l, f, &fd, NULL, po));
    step_arg(f, DNNL_ARG_SRC_0, l->m_x[0]);
    step_arg(f, DNNL_ARG_SRC_1, l->m_x[1]);
    step_arg(f, DNNL_ARG_DST, l->m_y);
    /* dx0 = relu'(y) * dy (or dy), then dx1 = dx0 */
    if (l->spec.relu) TRY(relu_bwd_step(l, &md, l->m_y, l->m_dy, l->m_dx[0]));
    else TRY(copy_step(l, &md, l->m_dy, &l->dy, l->m_dx[0], &l->dx[0], 0));
    TRY(copy_step(l, &md, l->m_dx[0], &l->dx[0], l->m_dx[1], &l->dx[1], 1));
fail:
    if (po) dnnl_post_ops_destroy(po);
    return rc;
}

/* ---- softmax cross-entropy -------------------------------------------------------------------- */

static int loss_create(Layer *l) {
    int rc = 0;
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {l->in[0].n, l->in[0].c};
    TRY(md_plain(&md, 2, d, dnnl_nc));
    TRY(io_mems(l, &md, &md));
    l->sample_loss = mem_calloc((size_t)l->in[0].n, sizeof(double));
    if (!l->sample_loss) FAIL(ERR_NOMEM, "layer %s: cannot allocate per-sample losses", l->spec.name);
    dnnl_softmax_desc_t fd;
    DNNL_TRY(dnnl_softmax_forward_desc_init(&fd, dnnl_forward_training, &md, 1));
    Step *f = add_step(l, l->fwd_train, &l->n_fwd_train);
    TRY(step_make(l, f, &fd, NULL, NULL));
    step_arg(f, DNNL_ARG_SRC, l->m_x[0]);
    step_arg(f, DNNL_ARG_DST, l->m_y);
fail:
    return rc;
}

static int loss_check_labels(const Layer *l) {
    int n = l->in[0].n, k = l->in[0].c;
    if (!l->labels) {
        log_msg(LOG_ERROR, "layer %s: no labels bound", l->spec.name);
        return ERR_SHAPE;
    }
    for (int i = 0; i < n; i++)
        if (l->labels[i] < 0 || l->labels[i] >= k) {
            log_msg(LOG_ERROR, "layer %s: label %d of sample %d outside [0, %d)", l->spec.name, (int)l->labels[i], i, k);
            return ERR_FORMAT;
        }
    return 0;
}

/* Mean cross-entropy from the logits in double (log-sum-exp), so large logits stay finite. */
static int loss_after_forward(Layer *l, bool train) {
    int rc = loss_check_labels(l);
    if (rc) return rc;
    int n = l->in[0].n, k = l->in[0].c;
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *z = l->x[0] + (size_t)i * k;
        double m = z[0];
        for (int j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
        double s = 0;
        for (int j = 0; j < k; j++) s += exp((double)z[j] - m);
        l->sample_loss[i] = m + log(s) - z[l->labels[i]];
        total += l->sample_loss[i];
    }
    l->loss = total / n;
    return 0;
}

static int loss_after_backward(Layer *l) {
    int n = l->in[0].n, k = l->in[0].c;
    if (!l->dx[0]) return 0;
    float inv = 1.0f / (float)n;
    for (int i = 0; i < n; i++) {
        const float *p = l->y + (size_t)i * k;
        float *g = l->dx[0] + (size_t)i * k;
        for (int j = 0; j < k; j++) g[j] = (p[j] - (j == l->labels[i] ? 1.0f : 0.0f)) * inv;
    }
    return 0;
}

double layer_loss_value(const Layer *l) { return l->loss; }

double layer_loss_sum(const Layer *l, int n_valid) {
    int n = n_valid < l->in[0].n ? n_valid : l->in[0].n;
    double s = 0;
    for (int i = 0; i < n; i++) s += l->sample_loss[i];
    return s;
}

int layer_loss_correct(const Layer *l, int k, int n_valid) {
    int n = n_valid < l->in[0].n ? n_valid : l->in[0].n, c = l->in[0].c, correct = 0;
    for (int i = 0; i < n; i++) {
        const float *z = l->x[0] + (size_t)i * c;
        float target = z[l->labels[i]];
        int above = 0;
        for (int j = 0; j < c; j++) above += z[j] > target;
        correct += above < k;
    }
    return correct;
}

static int input_create(Layer *l) { return 0; }

/* ---- the registry of kinds --------------------------------------------------------------------- */

static const LayerOps layer_ops[LAYER_N_KINDS] = {
    [LAYER_INPUT] = {input_create, NULL, NULL},
    [LAYER_CONV] = {conv_create, NULL, NULL},
    [LAYER_BN] = {bn_create, bn_after_forward, NULL},
    [LAYER_RELU] = {relu_create, NULL, NULL},
    [LAYER_MAXPOOL] = {pool_create, NULL, NULL},
    [LAYER_AVGPOOL] = {pool_create, NULL, NULL},
    [LAYER_GAP] = {pool_create, NULL, NULL},
    [LAYER_FC] = {fc_create, NULL, NULL},
    [LAYER_ADD] = {add_create, NULL, NULL},
    [LAYER_LOSS] = {loss_create, loss_after_forward, loss_after_backward},
};

/* ---- public API ------------------------------------------------------------------------------- */

int layer_create(Layer **out, const LayerSpec *spec, const Dims4 *in, DnnlCtx *ctx) {
    int rc = 0;
    *out = NULL;
    if (spec->kind < 0 || spec->kind >= LAYER_N_KINDS) {
        log_msg(LOG_ERROR, "layer %s: unknown kind %d", spec->name, (int)spec->kind);
        return ERR_SHAPE;
    }
    Layer *l = mem_calloc(1, sizeof *l);
    if (!l) return ERR_NOMEM;
    l->spec = *spec;
    l->ops = &layer_ops[spec->kind];
    l->ctx = ctx;
    l->n_in = layer_kind_inputs(spec->kind);
    for (int i = 0; i < l->n_in; i++) l->in[i] = in[i];
    TRY(layer_out_dims(spec, in, &l->out));
    TRY(l->ops->create(l));
    *out = l;
    return 0;
fail:
    log_msg(LOG_ERROR, "layer %s (%s): cannot create (%s)", spec->name, layer_kind_name(spec->kind), err_str(rc));
    layer_destroy(l);
    return rc;
}

void layer_destroy(Layer *l) {
    if (!l) return;
    for (int i = 0; i < l->n_fwd_train; i++) step_deinit(&l->fwd_train[i]);
    for (int i = 0; i < l->n_fwd_infer; i++) step_deinit(&l->fwd_infer[i]);
    for (int i = 0; i < l->n_bwd; i++) step_deinit(&l->bwd[i]);
    for (int i = 0; i < l->n_recompute; i++) step_deinit(&l->recompute[i]);
    step_deinit(&l->sch_w1_reorder);
    step_deinit(&l->sch_data1);
    step_deinit(&l->sch_wgt1);
    step_deinit(&l->sch_dw1_reorder);
    step_deinit(&l->sp_w_reorder);
    step_deinit(&l->sp_dw_reorder);
    dnnl_memory_t sm[9] = {l->m_s,  l->m_r,      l->m_xsum, l->m_dx1,      l->m_dw1,
                           l->m_dw1_raw, l->m_w1, l->m_w_ohwi, l->m_dw_ohwi};
    for (int i = 0; i < 9; i++)
        if (sm[i]) dnnl_memory_destroy(sm[i]);
    for (int i = 0; i < 2; i++) param_deinit(&l->params[i]);
    for (int i = 0; i < l->n_owned_mem; i++) dnnl_memory_destroy(l->owned_mem[i]);
    dnnl_memory_t ms[6] = {l->m_x[0], l->m_x[1], l->m_y, l->m_dx[0], l->m_dx[1], l->m_dy};
    for (int i = 0; i < 6; i++)
        if (ms[i]) dnnl_memory_destroy(ms[i]);
    mem_free(l->bn_mean);
    mem_free(l->bn_var);
    mem_free(l->bn_run_mean);
    mem_free(l->bn_run_var);
    mem_free(l->workspace);
    mem_free(l->sample_loss);
    mem_free(l);
}

const LayerSpec *layer_spec(const Layer *l) { return &l->spec; }
Dims4 layer_in_dims(const Layer *l, int i) { return l->in[i]; }
Dims4 layer_out_dims_of(const Layer *l) { return l->out; }

static int set_handle(dnnl_memory_t m, void *p) {
    if (!m) return 0;
    return dnnl_memory_set_data_handle(m, p ? p : DNNL_MEMORY_NONE) == dnnl_success ? 0 : ERR_DNNL;
}

int layer_bind(Layer *l, float *const x[2], float *y, float *const dx[2], float *dy) {
    int rc = 0;
    for (int i = 0; i < l->n_in; i++) {
        l->x[i] = x[i];
        l->dx[i] = dx ? dx[i] : NULL;
        TRY(set_handle(l->m_x[i], l->x[i]));
        TRY(set_handle(l->m_dx[i], l->dx[i]));
    }
    l->y = y;
    l->dy = dy;
    TRY(set_handle(l->m_y, y));
    TRY(set_handle(l->m_dy, dy));
    for (int i = 0; i < l->n_bwd; i++) {
        Step *st = &l->bwd[i];
        st->active = st->needs_dx < 0 || l->dx[st->needs_dx] != NULL;
        if (st->copy_src && *st->copy_src == *st->copy_dst) st->active = false;
    }
    for (int i = 0; i < l->n_in; i++)
        if (!l->dx[i] && layer_kind_needs_dx(l->spec.kind, i))
            FAIL(ERR_SHAPE, "layer %s: %s needs a gradient buffer for input %d", l->spec.name,
                 layer_kind_name(l->spec.kind), i);
    return 0;
fail:
    if (rc == ERR_DNNL) log_msg(LOG_ERROR, "layer %s: cannot bind buffers", l->spec.name);
    return rc;
}

void layer_bind_labels(Layer *l, const int32_t *labels) { l->labels = labels; }

int layer_forward(Layer *l, bool train) {
    int rc = 0;
    TRY(sync_shared(l));
    if (!train && l->n_fwd_infer) TRY(run_steps(l, l->fwd_infer, l->n_fwd_infer));
    else if (l->n_fwd_train) TRY(run_steps(l, l->fwd_train, l->n_fwd_train));
    if (l->ops->after_forward) TRY(l->ops->after_forward(l, train));
fail:
    return rc;
}

bool layer_kind_recomputable(LayerKind kind) { return kind == LAYER_BN; }

int layer_recompute(Layer *l) {
    int rc = 0;
    if (!l->n_recompute) FAIL(ERR_SHAPE, "layer %s: %s cannot recompute its output", l->spec.name,
                              layer_kind_name(l->spec.kind));
    TRY(sync_shared(l));
    TRY(run_steps(l, l->recompute, l->n_recompute));
fail:
    return rc;
}

static int conv_backward_scheme(Layer *l);

int layer_backward(Layer *l) {
    int rc = 0;
    if (l->scheme) return conv_backward_scheme(l);
    TRY(sync_shared(l));
    if (l->n_bwd) TRY(run_steps(l, l->bwd, l->n_bwd));
    if (l->ops->after_backward) TRY(l->ops->after_backward(l));
fail:
    return rc;
}

int layer_n_params(const Layer *l) { return l->n_params; }

size_t layer_param_bytes(const Layer *l) {
    size_t b = 0;
    for (int i = 0; i < l->n_params; i++) {
        const Param *p = &l->params[i];
        b += 2 * p->n_stored * sizeof(float);

    }
    return b;
}

LayerParam layer_param(Layer *l, int i) {
    ASSERT(i >= 0 && i < l->n_params);
    Param *p = &l->params[i];
    return (LayerParam){p->name, p->w, p->dw, p->n_stored, p->n_plain, p->decay};
}

int layer_param_get(Layer *l, int i, float *plain) {
    ASSERT(i >= 0 && i < l->n_params);
    return param_convert(l, &l->params[i].md, l->params[i].w, &l->params[i].plain_md, plain);
}

int layer_param_set(Layer *l, int i, const float *plain) {
    ASSERT(i >= 0 && i < l->n_params);
    return param_convert(l, &l->params[i].plain_md, plain, &l->params[i].md, l->params[i].w);
}

int layer_param_to_plain(Layer *l, int i, const float *stored, float *plain) {
    ASSERT(i >= 0 && i < l->n_params);
    return param_convert(l, &l->params[i].md, stored, &l->params[i].plain_md, plain);
}

int layer_param_from_plain(Layer *l, int i, const float *plain, float *stored) {
    ASSERT(i >= 0 && i < l->n_params);
    return param_convert(l, &l->params[i].plain_md, plain, &l->params[i].md, stored);
}

int layer_grad_get(Layer *l, int i, float *plain) {
    ASSERT(i >= 0 && i < l->n_params);
    return param_convert(l, &l->params[i].md, l->params[i].dw, &l->params[i].plain_md, plain);
}

float *layer_bn_running_mean(Layer *l) { return l->bn_run_mean; }
float *layer_bn_running_var(Layer *l) { return l->bn_run_var; }

int layer_init_params(Layer *l, Rng *rng) {
    int rc = 0;
    float *buf = NULL;
    LayerKind k = l->spec.kind;
    if (k != LAYER_CONV && k != LAYER_FC) return 0; /* BN starts at gamma 1, beta 0 */
    Param *w = &l->params[0];
    size_t n = w->n_plain;
    size_t cap = n > (size_t)l->out.c ? n : (size_t)l->out.c;
    buf = mem_alloc(cap * sizeof(float));
    if (!buf) FAIL(ERR_NOMEM, "layer %s: cannot allocate init buffer", l->spec.name);
    if (k == LAYER_CONV) {
        double std = sqrt(2.0 / ((double)l->out.c * l->spec.kh * l->spec.kw));
        for (size_t i = 0; i < n; i++) buf[i] = (float)(std * rng_normal(rng));
    } else {
        double bound = 1.0 / sqrt((double)dims_sample(l->in[0]));
        for (size_t i = 0; i < n; i++) buf[i] = (float)(bound * (2 * rng_uniform(rng) - 1));
    }
    TRY(layer_param_set(l, 0, buf));
    if (l->n_params > 1) {
        /* conv bias 0 (torchvision's VGG); fc bias uniform like its weight (PyTorch default) */
        double bound = k == LAYER_FC ? 1.0 / sqrt((double)dims_sample(l->in[0])) : 0.0;
        for (int i = 0; i < l->out.c; i++) buf[i] = (float)(bound * (2 * rng_uniform(rng) - 1));
        TRY(layer_param_set(l, 1, buf));
    }
fail:
    mem_free(buf);
    return rc;
}

/* ---- a sparsity scheme on a conv layer: the split form on oneDNN (backend dnnl) -------------------- */

/* Executes a step with one argument's memory replaced (no allocation: the copy is on the stack). */
static int exec_with(Layer *l, const Step *st, int arg, dnnl_memory_t m) {
    int rc = 0;
    dnnl_exec_arg_t args[STEP_MAX_ARGS];
    memcpy(args, st->args, (size_t)st->n_args * sizeof args[0]);
    for (int i = 0; i < st->n_args; i++)
        if (args[i].arg == arg) args[i].memory = m;
    DNNL_TRY(dnnl_primitive_execute(st->prim, l->ctx->stream, st->n_args, args));
fail:
    return rc;
}

static int exec_step(Layer *l, const Step *st) {
    int rc = 0;
    DNNL_TRY(dnnl_primitive_execute(st->prim, l->ctx->stream, st->n_args, st->args));
fail:
    return rc;
}

int layer_conv_geom(const Layer *l, ConvGeom *g) {
    int rc = 0;
    if (l->spec.kind != LAYER_CONV) FAIL(ERR_SHAPE, "layer %s: not a conv layer", l->spec.name);
    Dims4 in = l->in[0];
    *g = sparse_geom(in.n, in.c, in.h, in.w, l->out.c, l->spec.kh, l->spec.kw, l->spec.stride, l->spec.pad);
    TRY(sparse_geom_check(*g));
fail:
    return rc;
}

/* Backend sparse on a conv layer: the CSR view, the OHWI weight copy and the dW reorder back. */
static int attach_sparse(Layer *l, const LayerScheme *ls) {
    int rc = 0;
    Param *p = &l->params[0];
    if (!ls->csr_store || !ls->ws)
        FAIL(ERR_SHAPE, "layer %s: backend sparse needs a CSR store and a workspace", l->spec.name);
    TRY(layer_conv_geom(l, &l->geom));
    TRY(sparse_view(&l->csr, ls->csr_store, l->out.n, l->out.h, l->out.w, l->out.c));
    ConvGeom g = l->geom;
    size_t n_w = (size_t)g.k * g.r * g.s * g.c;
    if (n_w > ls->ws->dw_elems)
        FAIL(ERR_SHAPE, "layer %s: %zu weights exceed the sparse workspace's %zu", l->spec.name, n_w, ls->ws->dw_elems);
    if (ls->vws && (size_t)g.r * g.s * g.c > ls->vws->max_rsc)
        FAIL(ERR_SHAPE, "layer %s: R*S*C = %d exceeds the structured workspace's %zu", l->spec.name, g.r * g.s * g.c,
             ls->vws->max_rsc);
    if (!(ls->breakeven >= 0.0 && ls->breakeven <= 1.0))
        FAIL(ERR_CONFIG, "layer %s: break-even density %g: expected a number in [0, 1]", l->spec.name, ls->breakeven);
    dnnl_dims_t wd = {g.k, g.c, g.r, g.s};
    dnnl_memory_desc_t ohwi;
    TRY(md_plain(&ohwi, 4, wd, dnnl_ohwi));
    TRY(shared_mem_new(l, &l->m_w_ohwi, &ohwi, CTX_SPARSE_W));
    TRY(shared_mem_new(l, &l->m_dw_ohwi, &ohwi, CTX_SPARSE_DW));
    TRY(step_reorder(l, &l->sp_w_reorder, &p->md, &ohwi));
    step_arg(&l->sp_w_reorder, DNNL_ARG_FROM, p->m_w);
    step_arg(&l->sp_w_reorder, DNNL_ARG_TO, l->m_w_ohwi);
    TRY(step_reorder(l, &l->sp_dw_reorder, &ohwi, &p->md));
    step_arg(&l->sp_dw_reorder, DNNL_ARG_FROM, l->m_dw_ohwi);
    step_arg(&l->sp_dw_reorder, DNNL_ARG_TO, p->m_dw);
fail:
    return rc;
}

int layer_attach_scheme(Layer *l, LayerScheme *ls) {
    int rc = 0;
    dnnl_primitive_desc_t hint = NULL;
    bool fc = l->spec.kind == LAYER_FC;
    if ((l->spec.kind != LAYER_CONV && !fc) || l->scheme)
        FAIL(ERR_SHAPE, "layer %s: a sparsity scheme attaches to a conv or fc layer, once", l->spec.name);
    const LayerSpec *s = &l->spec;
    Param *p = &l->params[0];
    Dims4 in1 = l->in[0], out1 = l->out;
    in1.n = out1.n = 1;
    dnnl_memory_desc_t out_md, src1, dst1, w_any;
    if (fc) { /* inner product: 2-D (n, features) views of the same buffers */
        int64_t fan_in = (int64_t)dims_sample(l->in[0]);
        dnnl_dims_t od = {l->out.n, l->out.c}, sd1 = {1, fan_in}, dd1 = {1, l->out.c}, wd2 = {l->out.c, fan_in};
        TRY(md_plain(&out_md, 2, od, dnnl_nc));
        TRY(md_plain(&src1, 2, sd1, dnnl_nc));
        TRY(md_plain(&dst1, 2, dd1, dnnl_nc));
        TRY(md_plain(&w_any, 2, wd2, dnnl_format_tag_any));
    } else {
        TRY(md_nhwc(&out_md, l->out));
        TRY(md_nhwc(&src1, in1));
        TRY(md_nhwc(&dst1, out1));
        dnnl_dims_t wd = {l->out.c, l->in[0].c, s->kh, s->kw};
        TRY(md_plain(&w_any, 4, wd, dnnl_format_tag_any));
    }
    dnnl_dims_t st = {s->stride, s->stride}, pad = {s->pad, s->pad};
    TRY(mem_new(l, &l->m_s, &out_md, ls->s_buf));
    TRY(mem_new(l, &l->m_r, &dst1, NULL));
    TRY(shared_mem_new(l, &l->m_xsum, &src1, CTX_REUSE_XSUM));
    TRY(shared_mem_new(l, &l->m_dx1, &src1, CTX_REUSE_DX));
    TRY(ctx_reserve(l->ctx, CTX_DENSE_DW, p->n_stored * sizeof(float)));

    /* single-sample primitives (a forward descriptor serves as their hint) */
    dnnl_convolution_desc_t fd, dd, wdsc;
    dnnl_inner_product_desc_t ifd, idd, iwd;
    if (fc) {
        DNNL_TRY(dnnl_inner_product_forward_desc_init(&ifd, dnnl_forward_training, &src1, &w_any, NULL, &dst1));
        DNNL_TRY(dnnl_primitive_desc_create(&hint, &ifd, NULL, l->ctx->engine, NULL));
        DNNL_TRY(dnnl_inner_product_backward_data_desc_init(&idd, &src1, &w_any, &dst1));
        TRY(step_make(l, &l->sch_data1, &idd, hint, NULL));
    } else {
        DNNL_TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src1,
                                                    &w_any, NULL, &dst1, st, pad, pad));
        DNNL_TRY(dnnl_primitive_desc_create(&hint, &fd, NULL, l->ctx->engine, NULL));
        DNNL_TRY(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &src1, &w_any, &dst1, st,
                                                          pad, pad));
        TRY(step_make(l, &l->sch_data1, &dd, hint, NULL));
    }
    const dnnl_memory_desc_t *w1md = dnnl_primitive_desc_query_md(l->sch_data1.pd, dnnl_query_weights_md, 0);
    dnnl_memory_t m_w1 = p->m_w;
    if (!dnnl_memory_desc_equal(w1md, &p->md)) {
        if (p->m_w_bwd && dnnl_memory_desc_equal(w1md, &p->bwd_md)) {
            m_w1 = p->m_w_bwd; /* refreshed by the main backward's reorder */
        } else {
            TRY(shared_mem_new(l, &l->m_w1, w1md, CTX_REUSE_W));
            TRY(step_reorder(l, &l->sch_w1_reorder, &p->md, w1md));
            step_arg(&l->sch_w1_reorder, DNNL_ARG_FROM, p->m_w);
            step_arg(&l->sch_w1_reorder, DNNL_ARG_TO, l->m_w1);
            m_w1 = l->m_w1;
        }
    }
    step_arg(&l->sch_data1, DNNL_ARG_DIFF_DST, l->m_r);
    step_arg(&l->sch_data1, DNNL_ARG_WEIGHTS, m_w1);
    step_arg(&l->sch_data1, DNNL_ARG_DIFF_SRC, l->m_dx1);

    if (fc) {
        DNNL_TRY(dnnl_inner_product_backward_weights_desc_init(&iwd, &src1, &w_any, NULL, &dst1));
        TRY(step_make(l, &l->sch_wgt1, &iwd, hint, NULL));
    } else {
        DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, &src1, &w_any, NULL,
                                                             &dst1, st, pad, pad));
        TRY(step_make(l, &l->sch_wgt1, &wdsc, hint, NULL));
    }
    const dnnl_memory_desc_t *dw1md = dnnl_primitive_desc_query_md(l->sch_wgt1.pd, dnnl_query_diff_weights_md, 0);
    TRY(shared_mem_new(l, &l->m_dw1, &p->md, CTX_REUSE_DW));
    dnnl_memory_t m_dw1_out = l->m_dw1;
    if (!dnnl_memory_desc_equal(dw1md, &p->md)) {
        TRY(shared_mem_new(l, &l->m_dw1_raw, dw1md, CTX_REUSE_DW_RAW));
        TRY(step_reorder(l, &l->sch_dw1_reorder, dw1md, &p->md));
        step_arg(&l->sch_dw1_reorder, DNNL_ARG_FROM, l->m_dw1_raw);
        step_arg(&l->sch_dw1_reorder, DNNL_ARG_TO, l->m_dw1);
        m_dw1_out = l->m_dw1_raw;
    }
    step_arg(&l->sch_wgt1, DNNL_ARG_SRC, l->m_xsum);
    step_arg(&l->sch_wgt1, DNNL_ARG_DIFF_DST, l->m_r);
    step_arg(&l->sch_wgt1, DNNL_ARG_DIFF_WEIGHTS, m_dw1_out);
    if (ls->sparse && !fc) TRY(attach_sparse(l, ls));
    ls->cos_dw = NAN;
    l->scheme = ls;
fail:
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (rc) log_msg(LOG_ERROR, "layer %s: cannot attach the sparsity scheme", l->spec.name);
    return rc;
}

double layer_cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : NAN;
}

/* Runs the main weight-gradient primitive (and its reorder) with diff_dst = m. */
static int conv_weight_grad(Layer *l, dnnl_memory_t m) {
    int rc = 0;
    TRY(exec_with(l, &l->bwd[l->i_wgt], DNNL_ARG_DIFF_DST, m));
    if (l->i_dwre >= 0) TRY(exec_step(l, &l->bwd[l->i_dwre]));
fail:
    return rc;
}

/* The reuse terms' elementwise passes: memory-bound, so vectorised (restrict) and parallel. */

/* dx (n, sample) += broadcast_n(add (sample)). */
static void add_broadcast(float *restrict dx, const float *restrict add, int n, size_t sample) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) {
        float *restrict d = dx + (size_t)j * sample;
#pragma omp simd
        for (size_t i = 0; i < sample; i++) d[i] += add[i];
    }
}

void layer_add_into(float *restrict dst, const float *restrict src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Backend sparse: the S terms with the CPU kernels on the CSR view (dx overwritten, starting from the
 * reuse term's input gradient dx1 (H,W,C) in every sample when given; dW into the parameter's stored
 * layout; xsum, when given, receives the batch sum of X from the weight-gradient kernel's pass). */
static int conv_backward_sparse(Layer *l, const float *dx1, float *xsum) {
    int rc = 0;
    LayerScheme *ls = l->scheme;
    /* a structured S with its workspace goes to conv_backward_vec instead */
    ASSERT(!(ls->out.structured && ls->out.csr_written && ls->vws));
    if (l->dx[0]) {
        TRY(exec_step(l, &l->sp_w_reorder));
        DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
        sparse_conv_bwd_data_init(&l->csr, l->ctx->shared[CTX_SPARSE_W], l->geom, dx1, l->dx[0]);
    }
    sparse_conv_bwd_weights_xsum(&l->csr, l->x[0], l->geom, ls->ws, l->ctx->shared[CTX_SPARSE_DW], xsum);
    TRY(exec_step(l, &l->sp_dw_reorder));
    DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
fail:
    return rc;
}

/* Backend sparse, structured S (resprop-vec): everything on the gathered-GEMM kernels and the OHWI
 * weights, the reuse terms included (dx1 from R, then every sample's dx starts from it; the batch sum
 * of X, R's weight gradient over it and S's in one accumulation), then one reorder of dW back. */
static int conv_backward_vec(Layer *l) {
    int rc = 0;
    LayerScheme *ls = l->scheme;
    const SchemeOut *o = &ls->out;
    float *w = l->ctx->shared[CTX_SPARSE_W], *dw = l->ctx->shared[CTX_SPARSE_DW], *dx1 = NULL;
    if (l->dx[0]) {
        TRY(exec_step(l, &l->sp_w_reorder));
        DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
        if (o->r) {
            dx1 = l->ctx->shared[CTX_REUSE_DX];
            sparse_vec_conv_bwd_data_dense1(o->r, w, l->geom, ls->vws, dx1);
        }
        sparse_vec_conv_bwd_data_init(&l->csr, w, l->geom, ls->vws, dx1, l->dx[0]);
    }
    if (o->r) {
        sparse_vec_conv_bwd_weights_reuse(&l->csr, l->x[0], o->r, l->geom, ls->vws, l->ctx->shared[CTX_REUSE_XSUM],
                                          dw);
    } else {
        sparse_vec_conv_bwd_weights(&l->csr, l->x[0], l->geom, ls->vws, dw);
    }
    TRY(exec_step(l, &l->sp_dw_reorder));
    DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
fail:
    return rc;
}

/* The split form's S and reuse terms, S on the sparse kernels (run_sparse) or on oneDNN. */
static int conv_backward_split(Layer *l, bool run_sparse) {
    int rc = 0;
    LayerScheme *ls = l->scheme;
    const SchemeOut *o = &ls->out;
    Param *p = &l->params[0];
    Dims4 in = l->in[0];
    /* the reuse terms first: the sparse kernels start dx from their input gradient dx1 */
    const float *dx1 = NULL, *dw1 = NULL;
    bool wbwd_done = false;
    if (o->r) {
        DNNL_TRY(dnnl_memory_set_data_handle(l->m_r, (void *)o->r));
        if (l->dx[0]) {
            /* the single-sample weights may be the main backward's reorder output: refresh it first */
            if (l->i_wbwd >= 0) TRY(exec_step(l, &l->bwd[l->i_wbwd]));
            wbwd_done = true;
            if (l->sch_w1_reorder.prim) TRY(exec_step(l, &l->sch_w1_reorder));
            TRY(exec_step(l, &l->sch_data1));
            dx1 = l->ctx->shared[CTX_REUSE_DX];
        }
        DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
    }
    float *xsum = l->ctx->shared[CTX_REUSE_XSUM];
    if (o->r && !run_sparse) sparse_sum_samples(xsum, l->x[0], in.n, dims_sample(in));
    if (run_sparse) { /* the sparse weight-gradient kernel takes the batch sum of X on its way */
        TRY(conv_backward_sparse(l, dx1, o->r ? xsum : NULL));
        ls->ran_sparse = true;
    }
    if (o->r) { /* R's weight gradient over the batch sum */
        TRY(exec_step(l, &l->sch_wgt1));
        if (l->sch_dw1_reorder.prim) TRY(exec_step(l, &l->sch_dw1_reorder));
        DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
        dw1 = l->ctx->shared[CTX_REUSE_DW];
    }
    if (!run_sparse) {
        if (l->i_wbwd >= 0 && !wbwd_done) TRY(exec_step(l, &l->bwd[l->i_wbwd]));
        if (l->dx[0]) TRY(exec_with(l, &l->bwd[l->i_data], DNNL_ARG_DIFF_DST, l->m_s));
        TRY(conv_weight_grad(l, l->m_s));
        DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
        if (dx1) add_broadcast(l->dx[0], dx1, in.n, dims_sample(in));
    }
    if (dw1) layer_add_into(p->dw, dw1, p->n_stored);
fail:
    return rc;
}

static int conv_backward_scheme(Layer *l) {
    int rc = 0;
    LayerScheme *ls = l->scheme;
    SchemeOut *o = &ls->out;
    Param *p = &l->params[0];
    Dims4 out = l->out;
    TRY(sync_shared(l));
    bool backend_sparse = l->m_w_ohwi != NULL;
    memset(o, 0, sizeof *o);
    o->g = l->dy;
    o->s = ls->s_buf;
    o->tau = NAN;
    o->csr = backend_sparse ? &l->csr : NULL;
    TRY(ls->scheme->sparsify(ls->state, ls->cfg, &ls->step, o));
    ls->cos_dw = NAN;
    ls->ran_sparse = false;
    float *dense_dw = l->ctx->shared[CTX_DENSE_DW];
    if (ls->want_dense_dw && !o->dense) { /* the true dense weight gradient, for comparison */
        TRY(conv_weight_grad(l, l->m_dy));
        DNNL_TRY(dnnl_stream_wait(l->ctx->stream));
        memcpy(dense_dw, p->dw, p->n_stored * sizeof(float));
    }
    if (o->dense) {
        TRY(run_steps(l, l->bwd, l->n_bwd));
        if (ls->want_dense_dw) ls->cos_dw = 1.0;
        return 0;
    }
    bool run_sparse = backend_sparse && o->density <= ls->breakeven;
    if (backend_sparse) {
        if (o->csr_written && (!run_sparse || ls->want_dense_dw)) sparse_to_dense(&l->csr, ls->s_buf);
        if (run_sparse && !o->csr_written) TRY(sparse_from_dense(&l->csr, ls->s_buf));
    }
    if (run_sparse && o->structured && o->csr_written && ls->vws) {
        TRY(conv_backward_vec(l));
        ls->ran_sparse = true;
    } else {
        TRY(conv_backward_split(l, run_sparse));
    }
    if (l->spec.bias) { /* the bias gradient stays dense: sum of G over N, P, Q */
        float *db = l->params[1].dw;
        int k = out.c;
        size_t rows = (size_t)out.n * out.h * out.w;
        for (int c = 0; c < k; c++) db[c] = 0;
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < k; c++) db[c] += l->dy[r * (size_t)k + c];
    }
    if (ls->want_dense_dw) ls->cos_dw = layer_cosine(p->dw, dense_dw, p->n_stored);
    if (ls->observe && ls->observe_now && backend_sparse) { /* S is read only: training is unchanged */
        if (!o->csr_written && !run_sparse) TRY(sparse_from_dense(&l->csr, ls->s_buf));
        TRY(ls->observe(ls->observe_ctx, ls->step.layer, &l->csr));
    }
fail:
    return rc;
}
