/* resprop.h: ReSprop (Goli and Aamodt, CVPR 2020), the scheme `scheme_resprop` (core/scheme.h),
 * and the pure functions it is built from, exposed for tests. /work/shared/RESPROP.md is the
 * specification; the numbered steps below follow its "algorithm" section.
 *
 * Per conv layer, with the true output gradient G (N,P,Q,K) NHWC and the stored sample R (P,Q,K):
 *   1. D = G - broadcast_N(R)
 *   2. S = D where |D| > tau (strict; compared exactly against the double tau), else 0;
 *      density = nnz(S) / numel(G)
 *   3. out->r = R: the executor propagates G_hat = S + broadcast_N(R) in split form
 *   4. tau = resprop_controller(tau, density, target, tau_min, tau_max), once per step after the mask,
 *      with target = resprop_target_density(...) of this step
 *   5. R = G[x] (the TRUE gradient of one sample) with x = rng_below(copy of st->rng, N), the first
 *      draw of the step's stream (sample = random), or R = mean_n G[n] (sample = batchmean)
 *   6. Steps without a valid R propagate G unchanged: s = copy of g, out->r = NULL, out->dense = true,
 *      density 1, tau unchanged (the controller does not run); the new R of step 5 is still stored.
 *
 * When R is not valid (item 6 of RESPROP.md): the first step of a run (st->step == 0, or the first
 * call after layer_create without a state_load) and, with reset_each_epoch (default true, as in
 * the released code), the first step of every epoch (st->step_in_epoch == 0: the released code
 * clears R at each epoch start) and the last step of every epoch (st->step_in_epoch ==
 * steps_per_epoch - 1: the released code runs its last, possibly partial, batch dense). The harness
 * keeps that last-step rule although its batches are all full, so the number of dense steps per
 * epoch (two) matches the released code. Without reset_each_epoch only the first step of the run is
 * dense.
 *
 * The warm-up epochs (target density 1.0) are NOT dense steps: they run steps 1-5 with target 1.0,
 * so the controller drives tau down to tau_min (density close to 1), as the released code does; tau
 * is clamped to [tau_min, tau_max], where the released code underflows to 0 and never recovers.
 *
 * Double buffering: the state holds two (P,Q,K) buffers. sparsify points out->r at the buffer
 * holding the previous step's sample, then stores this step's sample into the other one, so out->r
 * stays valid and unchanged until the next sparsify call of the layer, as scheme.h requires.
 * sparsify never allocates; its loops run under OpenMP over samples/elements, and nnz is an integer
 * reduction, so results are deterministic for any thread count.
 *
 * The fused CSR path (the sparse backend): when out->csr is given on a sparse step, the one pass over
 * G writes S (the same entries, bit for bit, as the dense path) straight into the CSR through the
 * slot-writer protocol of core/sparse.h (omp_get_max_threads() slots; AVX-512 compress stores where
 * the build has AVX-512F, a scalar loop otherwise), sets csr_written and leaves out->s unwritten.
 * The result does not depend on the thread count. */
#ifndef RESPROP_BASELINES_RESPROP_H
#define RESPROP_BASELINES_RESPROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/scheme.h"
#include "core/sparse.h"

extern const Scheme scheme_resprop;
/* The structured variant (baselines/resprop_vec.c): the reuse decision per output position for its
 * whole K-vector, active when the RMS of d = G[n,p,q,:] - R[p,q,:] exceeds tau; then S = d on all K
 * channels, else 0. Same options, state, controller, dense steps; its own checkpoint magic. Its CSR
 * rows are empty or full (SchemeOut.structured). */
extern const Scheme scheme_resprop_vec;

/* The scheme's options (scheme_resprop.options is a CfgTable over this struct; cfg_size is its
 * size). Keys: margin, warmup, sample, reset_each_epoch, tau_init, tau_min, tau_max, fc. The text
 * keys are validated by layer_create (ERR_CONFIG naming the key): warmup must parse with
 * resprop_parse_warmup, tau_min <= tau_init <= tau_max. warmup and sample are parsed once, by
 * layer_create; sparsify reads the other options from the cfg it is given. */
typedef struct {
    double margin;                /* target density = (1 - RS) + margin after warm-up; [0, 1], 0.05 */
    char warmup[CFG_STR_MAX];     /* "none" | "paper" | "fraction:F" with F in (0, 1]; "paper" */
    char sample[CFG_STR_MAX];     /* "random" (R = G[x], x uniform) | "batchmean" (R = mean_n G) */
    bool reset_each_epoch;        /* R invalid at the first and last step of each epoch; true */
    double tau_init;              /* threshold of the first sparse step; > 0, 1e-7 */
    double tau_min;               /* controller clamp, > 0 (no underflow to 0); 1e-30 */
    double tau_max;               /* controller clamp; 1.0 */
    bool fc;                      /* apply to FC layers too (read by the executor); false */
} ResPropOptions;

typedef enum {
    RESPROP_WARMUP_NONE = 0, /* (1-RS)+margin from the first step */
    RESPROP_WARMUP_PAPER,    /* by epoch: 0-1 dense, 2..8 max(1 - 0.1*epoch, base), then base */
    RESPROP_WARMUP_FRACTION, /* the paper's 9-epoch shape squeezed into the first fraction F of the run */
} ResPropWarmup;

/* Parses "none", "paper" or "fraction:F" (F a decimal number in (0, 1], the whole text after the
 * colon). *frac is set to F for fraction and to 1 otherwise. Returns 0, or ERR_CONFIG with a message
 * naming the text and what was expected; on error *mode and *frac are unchanged. Pure apart from
 * the log message. */
int resprop_parse_warmup(const char *text, ResPropWarmup *mode, double *frac);

/* Target density of a step, with base = (1 - rs) + margin:
 *   none:     base
 *   paper:    epoch < 2: 1.0; 2 <= epoch <= 8: max(1.0 - 0.1 * epoch, base); epoch >= 9: base
 *   fraction: e = 9 * step / (frac * total_steps) (total_steps < 1 counts as 1);
 *             e < 2: 1.0; 2 <= e < 9: max(1.0 - 0.1 * floor(e), base); e >= 9: base
 * The result is clamped to at most 1.0. `epoch` is used by paper only, `step`/`total_steps`/`frac` by
 * fraction only. Pure function. */
double resprop_target_density(ResPropWarmup mode, double frac, int epoch, long step, long total_steps,
                              double rs, double margin);

/* The threshold controller: density < target -> tau / 2; density > target -> tau * 2; equal ->
 * unchanged; then clamped to [tau_min, tau_max]. Pure function. */
double resprop_controller(double tau, double density, double target, double tau_min, double tau_max);

/* Whether R is valid for this step given that a sample has been stored (`have_r`): false at the
 * first step of the run, and with `reset_each_epoch` at the first and last step of each epoch.
 * Pure function. */
bool resprop_reuse_allowed(const SchemeStep *st, bool have_r, bool reset_each_epoch);

/* The `fc` option of a ResPropOptions (cfg): whether the executor applies ReSprop to FC layers too. */
bool resprop_applies_to_fc(const void *cfg);

/* ---- the machinery shared by the ReSprop variants (resprop, resprop-vec) -------------------------
 * A variant differs from resprop only in how it turns D = G - broadcast_N(R) into S (steps 1-2): its
 * ResPropVariant names a mask function, and everything else (options, per-layer state with the
 * double-buffered R, warm-up target, controller, dense steps, storing R, checkpoint blob) is the code
 * below. The state functions have the signatures of core/scheme.h's hooks, so a variant's Scheme
 * table points at them directly and only its layer_create is its own (resprop_state_create with
 * its variant). */

/* Steps 1-2 of a variant for one sparse step: S from g (N,P,Q,K) and r (P,Q,K) at threshold tau.
 * With csr == NULL it writes the dense s (N,P,Q,K) (zeros where dropped); otherwise it writes S into
 * csr (of shape (N,P,Q,K), already checked with sparse_slot_check) through the slot-writer protocol
 * of core/sparse.h, finishing it, and leaves s unwritten. Returns nnz(S). Must not allocate. */
typedef size_t (*ResPropMaskFn)(GradShape shape, const float *g, const float *r, double tau, float *s,
                                SparseGrad *csr);

typedef struct {
    const char *name;      /* the scheme's name, for messages */
    uint32_t blob_magic;   /* the variant's checkpoint-blob magic (blobs do not cross variants) */
    ResPropMaskFn mask;    /* steps 1-2 */
    bool structured;       /* the mask's CSR rows are empty or full (SchemeOut.structured) */
} ResPropVariant;

/* The options table of every variant (a CfgTable over ResPropOptions; keys listed above). */
extern const CfgTable resprop_options_table;

/* Validates the options (ERR_CONFIG naming the key, ERR_SHAPE for an empty shape) and creates the
 * per-layer state of variant v (which must outlive it) for gradients of `shape` at nominal reuse RS
 * `reuse` in [0, 1). *state is NULL on failure. Owned by the caller: resprop_state_destroy. */
int resprop_state_create(void **state, const ResPropVariant *v, const ResPropOptions *o, GradShape shape,
                         double reuse);
void resprop_state_destroy(void *state); /* accepts NULL */
/* One step (the numbered steps at the top of this file, S by the variant's mask). cfg is the
 * ResPropOptions the state was created with. When out->csr is non-NULL on a sparse step, S goes into
 * it (csr_written = true, structured = the variant's), else into out->s; a dense step always writes
 * out->s. Returns 0, or ERR_SHAPE (logged) when out->csr does not match the layer's shape or its
 * capacity is too small for the slot-writer protocol; nothing is changed then. Never allocates. */
int resprop_state_sparsify(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out);
/* The checkpoint blob: header (magic of the variant, version, shape, buffer index, valid, tau), then
 * both R buffers. load returns ERR_FORMAT (logged) on a wrong size, magic, version or shape. */
size_t resprop_state_bytes(const void *state);
void resprop_state_save(const void *state, void *blob);
int resprop_state_load(void *state, const void *blob, size_t bytes);

/* Which of the batch's n samples a step stores as the next R (sample = random): the first draw of
 * the step's rng. The one place that choice is made; benchmarks use it to know a run's R in advance. */
int resprop_stored_sample(Rng rng, int n);

/* resprop-vec's difference at one position: d[0..k) = g - r (float) and the RMS
 * sqrt(sum_k d_k^2 / k) (the sum of squares in double, in a fixed order). Pure; d may not alias g or r. */
double resprop_vec_diff_rms(const float *g, const float *r, int k, float *d);
/* resprop-vec's decision for one position: resprop_vec_diff_rms(g, r, k, d) > tau. */
bool resprop_vec_decide(const float *g, const float *r, int k, double tau, float *d);

#endif
