/* threshold.c: the threshold-only baseline `scheme_threshold` (core/scheme.h): ReSprop without reuse,
 * which isolates what reuse contributes.
 *
 * S = G where |G| > tau (strict; |G| compared exactly against the double tau), else 0; no reuse
 * term; density = nnz(S) / numel(S). tau is steered by ReSprop's controller (resprop_controller in
 * baselines/resprop.h, so both schemes run literally the same rule): once per step, after the mask,
 * density < target -> tau / 2, density > target -> tau * 2, equal -> unchanged, then clamped to
 * [tau_min, tau_max], with target = (1 - RS) + margin. out->tau is the threshold the mask of this
 * step used (before the update). out->dense is true only when no entry was dropped (S is a copy of G).
 *
 * ReSprop's warm-up schedules are NOT applied: threshold steers to its final target (1-RS)+margin
 * from the first step, and never runs dense steps.
 *
 * Options ([scheme.threshold] or --scheme.KEY): margin, tau_init, tau_min, tau_max;
 * layer_create checks tau_min <= tau_init <= tau_max. State: tau per layer, checkpointed as one
 * double. The mask runs under OpenMP over elements with an integer nnz reduction, so results do not
 * depend on the thread count; sparsify never allocates. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "baselines/resprop.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/scheme.h"

typedef struct {
    double margin;   /* target density = (1 - RS) + margin; [0, 1], 0.05 */
    double tau_init; /* threshold of the first step (gradient magnitude); > 0, 1e-7 */
    double tau_min;  /* controller clamp (gradient magnitude); > 0, 1e-30 */
    double tau_max;  /* controller clamp (gradient magnitude); 1.0 */
} ThresholdOptions;

#define TH_NUM(name, field, def, lo, hi, help) \
    {name, CFG_DOUBLE, offsetof(ThresholdOptions, field), def, lo, hi, NULL, help}

static const CfgKey threshold_keys[] = {
    TH_NUM("margin", margin, "0.05", 0, 1, "target density = (1 - RS) + margin (fraction)"),
    TH_NUM("tau_init", tau_init, "1e-7", DBL_MIN, 1e30, "threshold of the first step (gradient magnitude)"),
    TH_NUM("tau_min", tau_min, "1e-30", DBL_MIN, 1e30, "lower clamp of the threshold (gradient magnitude)"),
    TH_NUM("tau_max", tau_max, "1.0", DBL_MIN, 1e30, "upper clamp of the threshold (gradient magnitude)"),
};

static const CfgTable threshold_table = {
    .keys = threshold_keys,
    .n_keys = (int)(sizeof threshold_keys / sizeof threshold_keys[0]),
    .extra_prefix = NULL,
};

typedef struct {
    GradShape shape;
    double target; /* density the controller steers to */
    double tau;    /* threshold of the next step */
} ThresholdState;

static int threshold_layer_create(void **state, const void *cfg, GradShape shape, double reuse) {
    int rc = 0;
    const ThresholdOptions *o = cfg;
    *state = NULL;
    ASSERT(o);
    if (shape.n < 1 || shape.p < 1 || shape.q < 1 || shape.k < 1)
        FAIL(ERR_SHAPE, "scheme threshold: gradient shape (%d,%d,%d,%d): expected positive sizes", shape.n,
             shape.p, shape.q, shape.k);
    if (!(reuse >= 0.0 && reuse < 1.0))
        FAIL(ERR_CONFIG, "scheme threshold: reuse %g: expected a fraction in [0, 1)", reuse);
    if (!(o->tau_min <= o->tau_max))
        FAIL(ERR_CONFIG, "scheme threshold: tau_min %g > tau_max %g: expected tau_min <= tau_max", o->tau_min,
             o->tau_max);
    if (!(o->tau_init >= o->tau_min && o->tau_init <= o->tau_max))
        FAIL(ERR_CONFIG, "scheme threshold: tau_init %g: expected a value in [tau_min, tau_max] = [%g, %g]",
             o->tau_init, o->tau_min, o->tau_max);
    ThresholdState *t = mem_calloc(1, sizeof *t);
    if (!t) FAIL(ERR_NOMEM, "scheme threshold: out of memory for the layer state");
    t->shape = shape;
    t->target = (1.0 - reuse) + o->margin;
    t->tau = o->tau_init;
    *state = t;
fail:
    return rc;
}

static void threshold_layer_destroy(void *state) { mem_free(state); }

static int threshold_sparsify(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out) {
    ThresholdState *t = state;
    const ThresholdOptions *o = cfg;
    ASSERT(t && o && out && out->g && out->s);
    const long total = (long)grad_count(t->shape);
    const float *g = out->g; /* (N,P,Q,K) */
    float *s = out->s;       /* (N,P,Q,K) */
    const double tau = t->tau;
    long kept = 0;
#pragma omp parallel for schedule(static) reduction(+ : kept)
    for (long i = 0; i < total; i++) {
        bool keep = (double)fabsf(g[i]) > tau;
        s[i] = keep ? g[i] : 0.0f;
        kept += keep;
    }
    out->r = NULL;
    out->density = (double)kept / (double)total;
    out->tau = tau;
    out->dense = kept == total;
    t->tau = resprop_controller(tau, out->density, t->target, o->tau_min, o->tau_max);
    return 0;
}

static size_t threshold_state_bytes(const void *state) { return sizeof(double); }

static void threshold_state_save(const void *state, void *blob) {
    const ThresholdState *t = state;
    memcpy(blob, &t->tau, sizeof t->tau);
}

static int threshold_state_load(void *state, const void *blob, size_t bytes) {
    int rc = 0;
    ThresholdState *t = state;
    double tau;
    if (bytes != sizeof tau)
        FAIL(ERR_FORMAT, "scheme threshold: checkpoint state of %zu bytes: expected %zu (one double tau)", bytes,
             sizeof tau);
    memcpy(&tau, blob, sizeof tau);
    if (!(isfinite(tau) && tau > 0.0))
        FAIL(ERR_FORMAT, "scheme threshold: checkpoint tau %g: expected a positive finite number", tau);
    t->tau = tau;
fail:
    return rc;
}

const Scheme scheme_threshold = {
    .name = "threshold",
    .summary = "threshold only: S = G where |G| > tau, ReSprop's tau controller, no reuse",
    .options = &threshold_table,
    .cfg_size = sizeof(ThresholdOptions),
    .layer_create = threshold_layer_create,
    .layer_destroy = threshold_layer_destroy,
    .sparsify = threshold_sparsify,
    .state_bytes = threshold_state_bytes,
    .state_save = threshold_state_save,
    .state_load = threshold_state_load,
};
