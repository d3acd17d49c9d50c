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
 * reduction, so results are deterministic for any thread count. */
#ifndef RESPROP_BASELINES_RESPROP_H
#define RESPROP_BASELINES_RESPROP_H

#include <stdbool.h>

#include "core/config.h"
#include "core/scheme.h"

extern const Scheme scheme_resprop;

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

#endif
