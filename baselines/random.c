/* random.c: the random-drop baseline `scheme_random` (core/scheme.h).
 *
 * Every entry of G is kept independently with probability p = 1 - RS and scaled by 1/p, so
 * E[S] = G (unbiased); no reuse term, no threshold (tau NAN). density = nnz(S) / numel(S), the
 * achieved fraction (about p). Draws come from the step's stream st->rng only: sample n uses the
 * stream rng_split(&st->rng, n) (one uniform per entry, in NHWC order), so S is a deterministic
 * function of (G, st->rng) whatever the OpenMP thread count. With RS = 0 every entry is kept at scale
 * 1 and out->dense is true. No options, no checkpointed state; sparsify never allocates. */
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/scheme.h"

typedef struct {
    GradShape shape;
    double keep; /* p = 1 - RS, in (0, 1] */
} RandomState;

static int random_layer_create(void **state, const void *cfg, GradShape shape, double reuse) {
    int rc = 0;
    *state = NULL;
    if (shape.n < 1 || shape.p < 1 || shape.q < 1 || shape.k < 1)
        FAIL(ERR_SHAPE, "scheme random: gradient shape (%d,%d,%d,%d): expected positive sizes", shape.n, shape.p,
             shape.q, shape.k);
    if (!(reuse >= 0.0 && reuse < 1.0))
        FAIL(ERR_CONFIG, "scheme random: reuse %g: expected a fraction in [0, 1)", reuse);
    RandomState *r = mem_calloc(1, sizeof *r);
    if (!r) FAIL(ERR_NOMEM, "scheme random: out of memory for the layer state");
    r->shape = shape;
    r->keep = 1.0 - reuse;
    *state = r;
fail:
    return rc;
}

static void random_layer_destroy(void *state) { mem_free(state); }

static int random_sparsify(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out) {
    const RandomState *r = state;
    ASSERT(r && st && out && out->g && out->s);
    const size_t per = grad_sample(r->shape), total = grad_count(r->shape);
    const double p = r->keep;
    const float scale = (float)(1.0 / p);
    size_t nnz = 0;
#pragma omp parallel for schedule(static) reduction(+ : nnz)
    for (int n = 0; n < r->shape.n; n++) {
        const float *gn = out->g + (size_t)n * per; /* (P,Q,K) */
        float *sn = out->s + (size_t)n * per;       /* (P,Q,K) */
        Rng rng = rng_split(&st->rng, (uint64_t)n);
        size_t kept = 0;
        for (size_t i = 0; i < per; i++) {
            float v = rng_uniform(&rng) < p ? gn[i] * scale : 0.0f;
            sn[i] = v;
            kept += v != 0.0f;
        }
        nnz += kept;
    }
    out->r = NULL;
    out->density = (double)nnz / (double)total;
    out->tau = NAN;
    out->dense = p == 1.0;
    return 0;
}

const Scheme scheme_random = {
    .name = "random",
    .summary = "random: keep each entry of G with probability 1-RS, scaled by 1/(1-RS) (unbiased), no reuse",
    .options = NULL,
    .cfg_size = 0,
    .layer_create = random_layer_create,
    .layer_destroy = random_layer_destroy,
    .sparsify = random_sparsify,
};
