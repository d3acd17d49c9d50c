/* net.c: a network as a table of layers plus two planned arenas.
 *
 * Activations: every layer output gets its own region, except that ReLU and residual add write
 * over their (first) input when that input has no other consumer and its producer's backward
 * does not read its own output, and that a BN output read only by the next layer, a conv or fc,
 * goes to one shared buffer and is recomputed (layer_recompute) right before that layer's backward.
 * Gradients: planned over the backward order. The gradient of a layer output lives from its first
 * writer (the highest-index consumer, which runs first backward) to the layer's own backward.
 * Buffers are recycled as soon as a gradient dies, layers that allow it write their input gradient
 * over their output gradient, and the other consumers of a fork write into one shared buffer whose
 * contents are then added to the fork's gradient. */
#include "core/net.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timer.h"

struct Net {
    ModelSpec spec; /* own copy of the table */
    int batch;
    DnnlCtx *ctx;
    Layer **layers; /* (n_layers) */
    Dims4 *dims;    /* (n_layers) output dims with n = batch */
    float **y;      /* (n_layers) output activation of each layer, (N,H,W,C) */
    float **g;      /* (n_layers) gradient of each output, NULL where unused */
    bool (*acc)[2]; /* acc[i][j]: layer i's dx[j] goes to `accum`, then is added to g[in[j]] */
    int *recompute_before; /* (n_layers) layer to recompute before layer i's backward, or -1 */
    float *act_arena, *grad_arena, *accum, *recomputed;
    size_t act_bytes, grad_bytes, accum_bytes, recomputed_bytes;
    int32_t *labels; /* (N) */
    int n_params;
    LayerParam *params;
    /* sparsity scheme */
    const Scheme *scheme;
    const void *scheme_cfg;
    int n_sch;
    int *sch_of;              /* (n_layers) index into the arrays below, or -1 */
    LayerScheme *sch;         /* (n_sch) */
    void **sch_state;         /* (n_sch) */
    ConvSchemeStats *sch_stats; /* (n_sch) */
    float *s_buf;             /* shared S storage */
    size_t s_bytes;
    SparseGrad csr_store;     /* backend sparse: shared CSR storage */
    SparseWorkspace sp_ws;    /* backend sparse: shared weight-gradient slots */
    SparseVecWorkspace sp_vws; /* backend sparse: the structured kernels' column buffers */
    Rng sch_rng;              /* base of the per-(layer, step) streams */
    bool sch_want_stats;
};

static bool needs_own_output(const LayerSpec *s) {
    return s->kind == LAYER_RELU || (s->kind == LAYER_ADD && s->relu) || s->kind == LAYER_LOSS ||
           s->kind == LAYER_INPUT;
}

static bool backward_in_place(LayerKind k) { return k == LAYER_RELU || k == LAYER_BN || k == LAYER_ADD; }

/* Number of consumers of each layer's output. */
static void count_consumers(const ModelSpec *m, int *n_cons) {
    for (int i = 0; i < m->n_layers; i++) n_cons[i] = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < layer_kind_inputs(m->layers[i].kind); j++) n_cons[m->layers[i].in[j]]++;
}

static size_t align_floats(size_t n) { return (n + 15) / 16 * 16; }

#define OFF_RECOMPUTED LONG_MIN

/* Plans the activation arena: off[i] is layer i's float offset, -1-k to share layer k's, or
 * OFF_RECOMPUTED for outputs kept in the shared recompute buffer (*recomputed floats). */
static size_t plan_activations(Net *net, const int *n_cons, long *off, size_t *recomputed) {
    const ModelSpec *m = &net->spec;
    size_t total = 0;
    *recomputed = 0;
    for (int i = 0; i < m->n_layers; i++) net->recompute_before[i] = -1;
    for (int i = 0; i < m->n_layers; i++) {
        const LayerSpec *s = &m->layers[i];
        int p = s->in[0];
        if (layer_kind_recomputable(s->kind) && n_cons[i] == 1 && i + 1 < m->n_layers &&
            m->layers[i + 1].in[0] == i &&
            (m->layers[i + 1].kind == LAYER_CONV || m->layers[i + 1].kind == LAYER_FC)) {
            off[i] = OFF_RECOMPUTED;
            net->recompute_before[i + 1] = i;
            size_t need = align_floats(dims_count(net->dims[i]));
            if (need > *recomputed) *recomputed = need;
            continue;
        }
        if ((s->kind == LAYER_RELU || s->kind == LAYER_ADD) && p > 0 && n_cons[p] == 1 &&
            !needs_own_output(&m->layers[p])) {
            off[i] = off[p] < 0 ? off[p] : -1 - p;
            continue;
        }
        off[i] = (long)total;
        total += align_floats(dims_count(net->dims[i]));
    }
    return total;
}

/* Whether consumer c writes a gradient for its input j: always, except into the network input
 * where only kinds that cannot skip it do. */
static bool writes_dx(const ModelSpec *m, int c, int j) {
    return m->layers[m->layers[c].in[j]].kind != LAYER_INPUT || layer_kind_needs_dx(m->layers[c].kind, j);
}

/* Plans the gradient buffers. vb_of[i]: virtual buffer of layer i's gradient (-1: none);
 * vb_size[b]: floats of buffer b. Returns the number of buffers. `last_cons` is scratch. */
static int plan_gradients(Net *net, int *last_cons, int *vb_of, size_t *vb_size, size_t *accum_floats) {
    const ModelSpec *m = &net->spec;
    int n = m->n_layers, n_vb = 0;
    bool *busy = mem_calloc((size_t)n + 1, sizeof(bool));
    ASSERT(busy);
    for (int i = 0; i < n; i++) vb_of[i] = -1, last_cons[i] = -1;
    for (int c = 0; c < n; c++) /* the first writer of each gradient is its highest-index writer */
        for (int j = 0; j < layer_kind_inputs(m->layers[c].kind); j++)
            if (writes_dx(m, c, j) && c > last_cons[m->layers[c].in[j]]) last_cons[m->layers[c].in[j]] = c;
    *accum_floats = 0;
    for (int c = n - 1; c >= 1; c--) {
        const LayerSpec *s = &m->layers[c];
        bool handed = false;
        for (int j = 0; j < layer_kind_inputs(s->kind); j++) {
            int p = s->in[j];
            net->acc[c][j] = false;
            if (!writes_dx(m, c, j)) continue;
            size_t need = align_floats(dims_count(net->dims[p]));
            bool again = j == 1 && s->in[0] == p && writes_dx(m, c, 0); /* add(x, x) */
            if (last_cons[p] != c || again) { /* another consumer (or input) wrote first: sum */
                net->acc[c][j] = true;
                if (need > *accum_floats) *accum_floats = need;
                continue;
            }
            if (!handed && vb_of[c] >= 0 && backward_in_place(s->kind) && j == 0) {
                vb_of[p] = vb_of[c];
                handed = true;
            } else { /* best free fit, else grow the largest free, else a new buffer */
                int best = -1;
                for (int b = 0; b < n_vb; b++) {
                    if (busy[b]) continue;
                    if (best < 0) best = b;
                    else if (vb_size[b] >= need && (vb_size[best] < need || vb_size[b] < vb_size[best])) best = b;
                    else if (vb_size[best] < need && vb_size[b] > vb_size[best]) best = b;
                }
                if (best < 0) best = n_vb++, vb_size[best] = 0;
                if (vb_size[best] < need) vb_size[best] = need;
                busy[best] = true;
                vb_of[p] = best;
            }
            if (vb_size[vb_of[p]] < need) vb_size[vb_of[p]] = need;
        }
        if (vb_of[c] >= 0 && !handed) busy[vb_of[c]] = false;
    }
    mem_free(busy);
    return n_vb;
}

int net_create(Net **out, const ModelSpec *m, int batch, DnnlCtx *ctx, const Rng *rng) {
    int rc = 0;
    int n = m->n_layers;
    int *n_cons = NULL, *last_cons = NULL, *vb_of = NULL;
    long *off = NULL;
    size_t *vb_size = NULL, *vb_off = NULL;
    *out = NULL;
    if (batch < 1) {
        log_msg(LOG_ERROR, "batch %d: expected >= 1", batch);
        return ERR_CONFIG;
    }
    if (n < 2 || m->layers[0].kind != LAYER_INPUT || m->layers[n - 1].kind != LAYER_LOSS) {
        log_msg(LOG_ERROR, "model %s: expected an input layer first and a loss layer last", m->name);
        return ERR_SHAPE;
    }
    Net *net = mem_calloc(1, sizeof *net);
    if (!net) return ERR_NOMEM;
    net->batch = batch;
    net->ctx = ctx;
    net->spec = *m;
    net->spec.layers = mem_alloc((size_t)n * sizeof(LayerSpec));
    net->layers = mem_calloc((size_t)n, sizeof(Layer *));
    net->dims = mem_calloc((size_t)n, sizeof(Dims4));
    net->y = mem_calloc((size_t)n, sizeof(float *));
    net->g = mem_calloc((size_t)n, sizeof(float *));
    net->acc = mem_calloc((size_t)n, sizeof *net->acc);
    net->recompute_before = mem_calloc((size_t)n, sizeof(int));
    net->labels = mem_calloc((size_t)batch, sizeof(int32_t));
    n_cons = mem_calloc((size_t)n, sizeof(int));
    last_cons = mem_calloc((size_t)n, sizeof(int));
    vb_of = mem_calloc((size_t)n, sizeof(int));
    off = mem_calloc((size_t)n, sizeof(long));
    vb_size = mem_calloc((size_t)n, sizeof(size_t));
    vb_off = mem_calloc((size_t)n, sizeof(size_t));
    if (!net->spec.layers || !net->layers || !net->dims || !net->y || !net->g || !net->acc || !net->recompute_before || !net->labels ||
        !n_cons || !last_cons || !vb_of || !off || !vb_size || !vb_off)
        FAIL(ERR_NOMEM, "model %s: cannot allocate the network tables", m->name);
    memcpy(net->spec.layers, m->layers, (size_t)n * sizeof(LayerSpec));

    /* shapes and layers */
    net->dims[0] = m->input;
    net->dims[0].n = batch;
    for (int i = 1; i < n; i++) {
        const LayerSpec *s = &m->layers[i];
        Dims4 in[2] = {{0}};
        for (int j = 0; j < layer_kind_inputs(s->kind); j++) {
            if (s->in[j] < 0 || s->in[j] >= i)
                FAIL(ERR_SHAPE, "model %s: layer %s reads layer %d, expected an earlier layer", m->name, s->name, s->in[j]);
            in[j] = net->dims[s->in[j]];
        }
        TRY(layer_create(&net->layers[i], s, in, ctx));
        net->dims[i] = layer_out_dims_of(net->layers[i]);
    }

    /* arenas */
    count_consumers(m, n_cons);
    size_t rec_floats;
    size_t act_floats = plan_activations(net, n_cons, off, &rec_floats);
    size_t accum_floats;
    int n_vb = plan_gradients(net, last_cons, vb_of, vb_size, &accum_floats);
    size_t grad_floats = 0;
    for (int b = 0; b < n_vb; b++) vb_off[b] = grad_floats, grad_floats += vb_size[b];
    net->act_bytes = act_floats * sizeof(float);
    net->grad_bytes = grad_floats * sizeof(float);
    net->accum_bytes = accum_floats * sizeof(float);
    net->recomputed_bytes = rec_floats * sizeof(float);
    net->recomputed = rec_floats ? mem_calloc(rec_floats, sizeof(float)) : NULL;
    net->act_arena = mem_calloc(act_floats, sizeof(float));
    net->grad_arena = mem_calloc(grad_floats ? grad_floats : 1, sizeof(float));
    net->accum = accum_floats ? mem_calloc(accum_floats, sizeof(float)) : NULL;
    if (!net->act_arena || !net->grad_arena || (accum_floats && !net->accum) || (rec_floats && !net->recomputed))
        FAIL(ERR_NOMEM, "model %s: cannot allocate %zu MB of activations and gradients", m->name,
             (net->act_bytes + net->grad_bytes + net->accum_bytes) >> 20);
    for (int i = 0; i < n; i++) {
        long o = off[i];
        while (o < 0 && o != OFF_RECOMPUTED) o = off[-1 - o];
        net->y[i] = o == OFF_RECOMPUTED ? net->recomputed : net->act_arena + o;
        net->g[i] = vb_of[i] >= 0 ? net->grad_arena + vb_off[vb_of[i]] : NULL;
    }

    /* bind, init */
    for (int i = 1; i < n; i++) {
        const LayerSpec *s = &m->layers[i];
        float *x[2] = {NULL, NULL}, *dx[2] = {NULL, NULL};
        for (int j = 0; j < layer_kind_inputs(s->kind); j++) {
            int p = s->in[j];
            x[j] = net->y[p];
            dx[j] = !writes_dx(m, i, j) ? NULL : net->acc[i][j] ? net->accum : net->g[p];
        }
        TRY(layer_bind(net->layers[i], x, net->y[i], dx, net->g[i]));
        Rng r = rng_split(rng, (uint64_t)i);
        TRY(layer_init_params(net->layers[i], &r));
    }
    layer_bind_labels(net->layers[n - 1], net->labels);

    for (int i = 1; i < n; i++) net->n_params += layer_n_params(net->layers[i]);
    net->params = mem_calloc((size_t)net->n_params + 1, sizeof(LayerParam));
    if (!net->params) FAIL(ERR_NOMEM, "model %s: cannot allocate the parameter list", m->name);
    for (int i = 1, k = 0; i < n; i++)
        for (int j = 0; j < layer_n_params(net->layers[i]); j++) net->params[k++] = layer_param(net->layers[i], j);
    *out = net;
    net = NULL;
fail:
    net_destroy(net);
    mem_free(n_cons);
    mem_free(last_cons);
    mem_free(vb_of);
    mem_free(off);
    mem_free(vb_size);
    mem_free(vb_off);
    return rc;
}

void net_destroy(Net *net) {
    if (!net) return;
    if (net->layers)
        for (int i = 0; i < net->spec.n_layers; i++) layer_destroy(net->layers[i]);
    mem_free(net->layers);
    mem_free(net->spec.layers);
    mem_free(net->dims);
    mem_free(net->y);
    mem_free(net->g);
    mem_free(net->acc);
    mem_free(net->act_arena);
    mem_free(net->grad_arena);
    mem_free(net->accum);
    mem_free(net->recomputed);
    mem_free(net->recompute_before);
    mem_free(net->labels);
    mem_free(net->params);
    if (net->scheme)
        for (int j = 0; j < net->n_sch; j++) net->scheme->layer_destroy(net->sch_state[j]);
    mem_free(net->sch_of);
    mem_free(net->sch);
    mem_free(net->sch_state);
    mem_free(net->sch_stats);
    mem_free(net->s_buf);
    sparse_deinit(&net->csr_store);
    sparse_workspace_deinit(&net->sp_ws);
    sparse_vec_workspace_deinit(&net->sp_vws);
    mem_free(net);
}

int net_batch(const Net *net) { return net->batch; }
float *net_input(Net *net) { return net->y[0]; }
int32_t *net_labels(Net *net) { return net->labels; }

int net_forward(Net *net, bool train) {
    int rc = 0;
    for (int i = 1; i < net->spec.n_layers; i++) TRY(layer_forward(net->layers[i], train));
fail:
    return rc;
}

/* After conv layer i's backward: what the scheme did, and on stats steps the similarities. G is
 * still in the layer's output-gradient buffer, S in the shared buffer, R where the scheme keeps it. */
static void scheme_stats(Net *net, int i) {
    int j = net->sch_of[i];
    LayerScheme *ls = &net->sch[j];
    ConvSchemeStats *st = &net->sch_stats[j];
    const SchemeOut *o = &ls->out;
    Dims4 d = net->dims[i];
    size_t n = dims_count(d), sample = dims_sample(d);
    st->layer = i;
    st->density = o->density;
    st->tau = o->tau;
    st->dense = o->dense;
    st->has_r = o->r != NULL;
    st->sparse_path = ls->ran_sparse;
    st->cos_g_ghat = st->cos_r_g = NAN;
    st->cos_dw = ls->cos_dw;
    if (!net->sch_want_stats) return;
    const float *g = net->g[i];
    if (o->dense) {
        st->cos_g_ghat = 1.0;
    } else {
        double ab = 0, aa = 0, bb = 0;
        for (size_t k = 0; k < n; k++) {
            double gh = (double)o->s[k] + (o->r ? o->r[k % sample] : 0.0);
            ab += g[k] * gh, aa += (double)g[k] * g[k], bb += gh * gh;
        }
        st->cos_g_ghat = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : NAN;
    }
    if (o->r) {
        Rng r = rng_split(&ls->step.rng, 0x5ca1ab1e);
        size_t x = (size_t)rng_below(&r, (uint64_t)d.n);
        st->cos_r_g = layer_cosine(o->r, g + x * sample, sample);
    }
}

int net_attach_scheme(Net *net, const Scheme *s, const void *cfg, double reuse, uint64_t seed, const NetBackend *be) {
    int rc = 0;
    int n = net->spec.n_layers;
    size_t s_floats = 0, max_rows = 0, max_w = 0, max_rsc = 0, max_hwc = 0;
    if (net->scheme) FAIL(ERR_CONFIG, "model %s: a scheme is attached already", net->spec.name);
    net->sch_of = mem_alloc((size_t)n * sizeof(int));
    if (!net->sch_of) FAIL(ERR_NOMEM, "scheme: out of memory");
    for (int i = 0; i < n; i++) {
        net->sch_of[i] = -1;
        LayerKind k = net->spec.layers[i].kind;
        if (k == LAYER_CONV || (k == LAYER_FC && s->wants_fc && s->wants_fc(cfg))) net->sch_of[i] = net->n_sch++;
        if (net->sch_of[i] >= 0 && dims_count(net->dims[i]) > s_floats) s_floats = dims_count(net->dims[i]);
        if (be && be->sparse && k == LAYER_CONV) {
            Dims4 d = net->dims[i];
            ConvGeom g;
            TRY(layer_conv_geom(net->layers[i], &g));
            size_t rows = (size_t)d.n * d.h * d.w, w = (size_t)g.k * g.r * g.s * g.c;
            if (rows > max_rows) max_rows = rows;
            if (w > max_w) max_w = w;
            if ((size_t)g.r * g.s * g.c > max_rsc) max_rsc = (size_t)g.r * g.s * g.c;
            if ((size_t)g.h * g.w * g.c > max_hwc) max_hwc = (size_t)g.h * g.w * g.c;
        }
    }
    if (max_rows) {
        TRY(sparse_init(&net->csr_store, 1, (int)max_rows, 1, 1, s_floats));
        TRY(sparse_workspace_init(&net->sp_ws, 0, max_w, max_hwc));
        TRY(sparse_vec_workspace_init(&net->sp_vws, max_rsc, 0, 0));
    }
    net->sch = mem_calloc((size_t)net->n_sch + 1, sizeof(LayerScheme));
    net->sch_state = mem_calloc((size_t)net->n_sch + 1, sizeof(void *));
    net->sch_stats = mem_calloc((size_t)net->n_sch + 1, sizeof(ConvSchemeStats));
    net->s_buf = mem_calloc(s_floats + 1, sizeof(float));
    net->s_bytes = (s_floats + 1) * sizeof(float);
    if (!net->sch || !net->sch_state || !net->sch_stats || !net->s_buf) FAIL(ERR_NOMEM, "scheme: out of memory");
    net->scheme = s;
    net->scheme_cfg = cfg;
    rng_init(&net->sch_rng, seed ^ 0x5c4e3eULL);
    for (int i = 0; i < n; i++) {
        int j = net->sch_of[i];
        if (j < 0) continue;
        Dims4 d = net->dims[i];
        GradShape shape = {d.n, d.h, d.w, d.c};
        TRY(s->layer_create(&net->sch_state[j], cfg, shape, reuse));
        net->sch[j] = (LayerScheme){.scheme = s, .cfg = cfg, .state = net->sch_state[j], .s_buf = net->s_buf};
        if (max_rows && net->spec.layers[i].kind == LAYER_CONV) {
            ConvGeom g;
            TRY(layer_conv_geom(net->layers[i], &g));
            net->sch[j].sparse = true;
            net->sch[j].breakeven = be->breakeven[sparse_class(g)];
            net->sch[j].csr_store = &net->csr_store;
            net->sch[j].ws = &net->sp_ws;
            net->sch[j].vws = &net->sp_vws;
        }
        net->sch_stats[j] = (ConvSchemeStats){.layer = i, .density = 1, .tau = NAN, .cos_g_ghat = NAN,
                                              .cos_r_g = NAN, .cos_dw = NAN};
        TRY(layer_attach_scheme(net->layers[i], &net->sch[j]));
    }
fail:
    return rc;
}

int net_set_observer(Net *net, int (*fn)(void *ctx, int layer, const SparseGrad *s), void *ctx) {
    int rc = 0, n = 0;
    for (int j = 0; j < net->n_sch; j++) {
        if (!net->sch[j].sparse) continue;
        net->sch[j].observe = fn;
        net->sch[j].observe_ctx = ctx;
        net->sch[j].observe_now = false;
        n++;
    }
    if (n == 0) FAIL(ERR_CONFIG, "model %s: observing S needs a scheme on backend sparse", net->spec.name);
fail:
    return rc;
}

void net_scheme_observe(Net *net, bool on) {
    for (int j = 0; j < net->n_sch; j++) net->sch[j].observe_now = on;
}

void net_scheme_step(Net *net, long step, int epoch, long step_in_epoch, long steps_per_epoch, long total_steps,
                     bool stats) {
    net->sch_want_stats = stats;
    for (int i = 0; i < net->spec.n_layers; i++) {
        int j = net->sch_of ? net->sch_of[i] : -1;
        if (j < 0) continue;
        SchemeStep *st = &net->sch[j].step;
        st->step = step;
        st->epoch = epoch;
        st->step_in_epoch = step_in_epoch;
        st->steps_per_epoch = steps_per_epoch;
        st->total_steps = total_steps;
        st->layer = i;
        st->rng = rng_split(&net->sch_rng, ((uint64_t)step << 16) ^ (uint64_t)i);
        net->sch[j].want_dense_dw = stats;
    }
}

int net_scheme_n(const Net *net) { return net->n_sch; }
const ConvSchemeStats *net_scheme_stats(const Net *net, int j) { return &net->sch_stats[j]; }

size_t net_scheme_state_bytes(const Net *net, int j) {
    return net->scheme->state_bytes ? net->scheme->state_bytes(net->sch_state[j]) : 0;
}

void net_scheme_state_save(const Net *net, int j, void *blob) {
    if (net->scheme->state_save) net->scheme->state_save(net->sch_state[j], blob);
}

int net_scheme_state_load(Net *net, int j, const void *blob, size_t bytes) {
    return net->scheme->state_load ? net->scheme->state_load(net->sch_state[j], blob, bytes) : 0;
}

int net_backward(Net *net) { return net_backward_timed(net, NULL); }

int net_backward_timed(Net *net, double *ms) {
    int rc = 0;
    const ModelSpec *m = &net->spec;
    for (int i = m->n_layers - 1; i >= 1; i--) {
        double t0 = ms ? timer_now_ms() : 0;
        if (net->recompute_before[i] >= 0) TRY(layer_recompute(net->layers[net->recompute_before[i]]));
        TRY(layer_backward(net->layers[i]));
        if (net->sch_of && net->sch_of[i] >= 0) scheme_stats(net, i);
        for (int j = 0; j < layer_kind_inputs(m->layers[i].kind); j++)
            if (net->acc[i][j]) {
                int p = m->layers[i].in[j];
                layer_add_into(net->g[p], net->accum, dims_count(net->dims[p]));
            }
        if (ms) ms[i] += timer_now_ms() - t0;
    }
fail:
    return rc;
}

double net_loss(const Net *net) { return layer_loss_value(net->layers[net->spec.n_layers - 1]); }
int net_correct(const Net *net, int k, int n_valid) {
    return layer_loss_correct(net->layers[net->spec.n_layers - 1], k, n_valid);
}
double net_loss_sum(const Net *net, int n_valid) {
    return layer_loss_sum(net->layers[net->spec.n_layers - 1], n_valid);
}
int net_n_layers(const Net *net) { return net->spec.n_layers; }
Layer *net_layer(Net *net, int i) { return i > 0 && i < net->spec.n_layers ? net->layers[i] : NULL; }
float *net_output(Net *net, int i) { return net->y[i]; }
int net_n_params(const Net *net) { return net->n_params; }
LayerParam net_param(Net *net, int i) { return net->params[i]; }
size_t net_param_bytes(const Net *net) {
    size_t b = 0;
    for (int i = 1; i < net->spec.n_layers; i++) b += layer_param_bytes(net->layers[i]);
    return b;
}

size_t net_activation_bytes(const Net *net) { return net->act_bytes + net->recomputed_bytes; }
size_t net_gradient_bytes(const Net *net) { return net->grad_bytes + net->accum_bytes; }

size_t net_scheme_bytes(const Net *net) {
    size_t b = net->s_bytes;
    if (net->csr_store.row_ptr)
        b += ((size_t)net->csr_store.p + 1) * sizeof(int32_t) + net->csr_store.nnz_cap * (sizeof(uint16_t) + sizeof(float));
    b += (size_t)net->sp_ws.n_slots * net->sp_ws.dw_elems * sizeof(float);
    b += (size_t)net->sp_vws.n_threads * net->sp_vws.cols_cap * sizeof(float);
    return b;
}
