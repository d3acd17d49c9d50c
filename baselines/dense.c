/* dense.c: the identity scheme `scheme_dense` (core/scheme.h), the correctness anchor: S is a copy of
 * G, no reuse term, density 1 (nothing is dropped; entries of G that are zero count as kept), no
 * threshold (tau NAN), out->dense = true. No options. The per-layer state only remembers the shape;
 * there is nothing to checkpoint. */
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/scheme.h"

typedef struct {
    GradShape shape;
} DenseState;

static int dense_layer_create(void **state, const void *cfg, GradShape shape, double reuse) {
    int rc = 0;
    *state = NULL;
    if (shape.n < 1 || shape.p < 1 || shape.q < 1 || shape.k < 1)
        FAIL(ERR_SHAPE, "scheme dense: gradient shape (%d,%d,%d,%d): expected positive sizes", shape.n, shape.p,
             shape.q, shape.k);
    DenseState *d = mem_calloc(1, sizeof *d);
    if (!d) FAIL(ERR_NOMEM, "scheme dense: out of memory for the layer state");
    d->shape = shape;
    *state = d;
fail:
    return rc;
}

static void dense_layer_destroy(void *state) { mem_free(state); }

static int dense_sparsify(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out) {
    const DenseState *d = state;
    ASSERT(d && out && out->g && out->s);
    if (out->s != out->g) memcpy(out->s, out->g, grad_count(d->shape) * sizeof *out->s);
    out->r = NULL;
    out->density = 1.0;
    out->tau = NAN;
    out->dense = true;
    return 0;
}

const Scheme scheme_dense = {
    .name = "dense",
    .summary = "identity: propagate G unchanged (the correctness anchor)",
    .options = NULL,
    .cfg_size = 0,
    .layer_create = dense_layer_create,
    .layer_destroy = dense_layer_destroy,
    .sparsify = dense_sparsify,
};
