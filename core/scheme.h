/* scheme.h: the plug-in point for sparsity schemes.
 *
 * A scheme turns a conv layer's true output gradient G (N,P,Q,K) into the gradient S it propagates
 * (same shape, zeros where dropped) plus, optionally, a reuse term R (P,Q,K) that the executor adds
 * to every sample: the propagated gradient is G_hat = S + broadcast_N(R). The executor (oneDNN
 * dense, later the CPU sparse kernels or the simulator) computes the backward convolutions in split
 * form: dX = bwd_data(S) + broadcast_N(bwd_data(R)), dW = bwd_weights(X, S) + bwd_weights(sum_n X_n, R).
 *
 * Everything a scheme decides from is an explicit argument: its validated options, its per-layer
 * state, and a SchemeStep (step, epoch, layer, and an RNG stream derived from the run's seed, the
 * layer and the step, so draws are reproducible and survive a resume). No globals, no state
 * inferred from call order. Controllers and schedules are pure functions in the scheme's file.
 *
 * Adding a scheme: one file baselines/NAME.c defining `const Scheme scheme_NAME`, one line in
 * baselines/registry.c, one test file tests/test_NAME.c (README.md has the recipe). */
#ifndef RESPROP_SCHEME_H
#define RESPROP_SCHEME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/rng.h"
#include "core/sparse.h"

/* The shape of one conv layer's output gradient: (n, p, q, k) NHWC. */
typedef struct {
    int n, p, q, k;
} GradShape;

static inline size_t grad_count(GradShape s) { return (size_t)s.n * s.p * s.q * s.k; }
static inline size_t grad_sample(GradShape s) { return (size_t)s.p * s.q * s.k; }

typedef struct {
    long step;            /* global training step, 0-based */
    int epoch;            /* 0-based */
    long step_in_epoch;   /* 0-based */
    long steps_per_epoch;
    long total_steps;     /* steps of the whole run */
    int layer;            /* the layer's index in the model table (a stable id) */
    Rng rng;              /* a stream for (seed, layer, step): the scheme may draw from it freely */
} SchemeStep;

/* One call's inputs and outputs. */
typedef struct {
    const float *g; /* in:  (N,P,Q,K) the true output gradient */
    float *s;       /* out: (N,P,Q,K) the gradient to propagate (dense storage, zeros where dropped) */
    const float *r; /* out: (P,Q,K) reuse term added to every sample, or NULL; must stay valid and
                       unchanged until the next sparsify call of this layer */
    double density; /* out: nnz(s) / numel(s) */
    double tau;     /* out: the threshold in force this step (NAN if the scheme has none) */
    bool dense;     /* out: this step propagated G unchanged (s is a copy of g, r == NULL) */
    /* The sparse backend's fused path. csr (in) is non-NULL when the executor would like S in the CSR
     * format of core/sparse.h (shape (N,P,Q,K), nnz_cap >= N*P*Q*K, so the slot-writer protocol
     * applies). A scheme that can write it in its producing pass does so and sets csr_written; s is
     * then left unwritten. Otherwise it writes s as usual and the executor compresses it. A dense
     * step always writes s. */
    SparseGrad *csr;
    bool csr_written;  /* out: S is in *csr (and not in s) */
    bool structured;   /* out (with csr_written): every row of *csr is empty or full (all K channels) */
} SchemeOut;

typedef struct {
    const char *name;    /* "resprop", "meprop", ... */
    const char *summary; /* one line for `resprop schemes` */
    /* Options: a config table over the scheme's own options struct of cfg_size bytes (keys are
     * given as --scheme.KEY=VALUE or KEY = VALUE under [scheme.NAME]); n_keys may be 0. */
    const CfgTable *options;
    size_t cfg_size;
    /* Per-layer state for gradients of `shape` at nominal reuse `reuse` (RS in [0, 1)); *state
     * owned by the scheme, released by layer_destroy (accepts NULL). */
    int (*layer_create)(void **state, const void *cfg, GradShape shape, double reuse);
    void (*layer_destroy)(void *state);
    /* G -> S (+ R) for one step. Must not allocate (it runs inside the training step). */
    int (*sparsify)(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out);
    /* Checkpointing of the per-layer state as a flat blob (NULL: stateless). */
    size_t (*state_bytes)(const void *state);
    void (*state_save)(const void *state, void *blob);
    int (*state_load)(void *state, const void *blob, size_t bytes);
    /* Optional: whether these options also put the fully connected layers under the scheme (their
     * gradient has shape (N,1,1,K)); NULL: conv layers only. */
    bool (*wants_fc)(const void *cfg);
} Scheme;

/* The registry (baselines/registry.c): NULL-terminated list, and lookup by name (NULL if unknown). */
extern const Scheme *const scheme_registry[];
const Scheme *scheme_find(const char *name);

/* Validated options of a scheme: defaults, then every "scheme.KEY" of `extra` that belongs to it
 * (keys of another scheme's section are errors). cfg must have cfg_size bytes. */
int scheme_options(const Scheme *s, void *cfg, const CfgExtra *extra);

#endif
