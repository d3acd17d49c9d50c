/* flops.c: the FLOP rule of flops.h. All arithmetic in double: integer counts stay exact up to 2^53
 * (9e15 FLOP; vgg16 at 224 px and batch 256 is about 8e12 per forward pass). */
#include "core/flops.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

void flops_conv(const LayerSpec *s, Dims4 in, Dims4 out, int batch, double nnz, bool reuse, ConvFlops *f) {
    ASSERT(s->kind == LAYER_CONV && out.c == s->out_c && batch >= 1);
    double n = batch;
    double kpq = (double)out.c * out.h * out.w;    /* one sample's output gradient */
    double crs = (double)in.c * s->kh * s->kw;     /* one output's receptive field = one weight row */
    double chw = (double)in.c * in.h * in.w;       /* one sample's input */
    ASSERT(nnz >= 0 && nnz <= n * kpq * (1 + 1e-12));
    f->fwd = 2 * n * kpq * crs;
    f->bwd_dense = 2 * f->fwd;                   /* bwd_data + bwd_weights, each = fwd */
    f->bwd_sparse = 2 * (2 * nnz * crs);         /* bwd_data(S) + bwd_weights(X, S) */
    if (reuse) {
        f->bwd_pre = 2 * (2 * kpq * crs) + n * chw;          /* bwd_data(R), bwd_weights(sum X, R), sum X */
        f->bwd_elementwise = n * kpq + n * kpq + n * chw;    /* G - R, |D| > tau, dX += broadcast */
    } else {
        f->bwd_pre = 0;
        f->bwd_elementwise = n * kpq; /* the mask pass */
    }
}

void flops_fc(const LayerSpec *s, Dims4 in, Dims4 out, int batch, ConvFlops *f) {
    ASSERT(s->kind == LAYER_FC && out.c == s->out_c && batch >= 1);
    double features = (double)in.c * in.h * in.w;
    f->fwd = 2.0 * batch * s->out_c * features;
    f->bwd_dense = 2 * f->fwd;
    f->bwd_sparse = f->bwd_dense; /* propagated whole */
    f->bwd_pre = 0;
    f->bwd_elementwise = 0;
}

void flops_add(ConvFlops *acc, const ConvFlops *f) {
    acc->fwd += f->fwd;
    acc->bwd_dense += f->bwd_dense;
    acc->bwd_sparse += f->bwd_sparse;
    acc->bwd_pre += f->bwd_pre;
    acc->bwd_elementwise += f->bwd_elementwise;
}

double flops_bwd_effective(const ConvFlops *f) { return f->bwd_sparse + f->bwd_pre + f->bwd_elementwise; }

double flops_reduction(const ConvFlops *f) {
    double eff = flops_bwd_effective(f);
    return eff > 0 ? f->bwd_dense / eff : 0;
}

double flops_amdahl(double reduction, double p) {
    ASSERT(reduction > 0 && p >= 0 && p <= 1);
    return 1 / ((1 - p) + p / reduction);
}

/* Per-kind counter at a uniform density; kinds without an entry count zero. */
typedef void (*FlopsLayerFn)(const LayerSpec *s, Dims4 in, Dims4 out, int batch, double density, bool reuse,
                             ConvFlops *f);

static void flops_layer_conv(const LayerSpec *s, Dims4 in, Dims4 out, int batch, double density, bool reuse,
                             ConvFlops *f) {
    double nnz = density * batch * ((double)out.c * out.h * out.w);
    flops_conv(s, in, out, batch, nnz, reuse, f);
}

static void flops_layer_fc(const LayerSpec *s, Dims4 in, Dims4 out, int batch, double density, bool reuse,
                           ConvFlops *f) {
    flops_fc(s, in, out, batch, f);
}

static const FlopsLayerFn flops_layer_fns[LAYER_N_KINDS] = {
    [LAYER_CONV] = flops_layer_conv,
    [LAYER_FC] = flops_layer_fc,
};

int flops_network(const ModelSpec *m, int batch, double density, bool reuse, ConvFlops *per_layer,
                  ConvFlops *total) {
    int rc = 0;
    LayerCount *rows = NULL;
    *total = (ConvFlops){0};
    if (batch < 1) FAIL(ERR_CONFIG, "flops: batch %d; expected at least 1", batch);
    if (!(density >= 0 && density <= 1)) FAIL(ERR_CONFIG, "flops: density %g; expected a number in [0, 1]", density);
    if (!m->layers || m->n_layers < 2)
        FAIL(ERR_SHAPE, "flops: model %s has %d layers; expected at least an input and a loss", m->name, m->n_layers);
    rows = mem_calloc((size_t)m->n_layers, sizeof *rows);
    if (!rows) FAIL(ERR_NOMEM, "flops: out of memory for %d layer counts of %s", m->n_layers, m->name);
    TRY(model_count(m, rows, NULL, NULL));
    for (int i = 0; i < m->n_layers; i++) {
        const LayerSpec *s = &m->layers[i];
        ConvFlops f = {0};
        FlopsLayerFn fn = flops_layer_fns[s->kind]; /* kinds checked by model_count */
        if (fn) fn(s, rows[s->in[0]].out, rows[i].out, batch, density, reuse, &f);
        if (per_layer) per_layer[i] = f;
        flops_add(total, &f);
    }
fail:
    mem_free(rows);
    return rc;
}
