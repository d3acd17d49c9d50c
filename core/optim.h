/* optim.h: SGD with momentum, weight decay and Nesterov, and learning-rate schedules.
 * Pure arithmetic over float arrays: no oneDNN, no allocation in optim_sgd_step. */
#ifndef RESPROP_OPTIM_H
#define RESPROP_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    double lr;           /* learning rate of this step (from the schedule) */
    double momentum;     /* 0 disables momentum */
    double weight_decay; /* L2 coefficient, added to the gradient: g += wd * w */
    bool nesterov;
} SgdParams;

/* One SGD step over n elements, PyTorch's convention:
 *   g = dw + wd * w
 *   v = momentum * v + g            (v starts at 0; the first step sets v = g)
 *   d = nesterov ? g + momentum * v : v      (d = g when momentum == 0)
 *   w -= lr * d
 * `v` may be NULL when momentum == 0. `decay` false skips weight decay for this tensor (BN, bias).
 * `first` true means v has not been set yet (first step): v's old contents are ignored (may be
 * uninitialised) and v = g. Arithmetic is in float (lr, momentum, wd rounded to float once).
 * w, dw, v must not overlap (restrict). Tensors above 2^15 elements use all OpenMP threads.
 * Never fails; never allocates. */
void optim_sgd_step(float *w, const float *dw, float *v, size_t n, const SgdParams *p, bool decay,
                    bool first);

typedef enum {
    SCHED_CONSTANT = 0,
    SCHED_STEP,     /* lr * gamma^(number of milestones <= epoch) */
    SCHED_COSINE,   /* lr_min + (lr - lr_min) * 0.5 * (1 + cos(pi * t / T)) after warm-up */
    SCHED_ONECYCLE, /* cosine lr/div -> lr over pct_start, then cosine down to lr/(div*final_div) */
} SchedKind;

/* The formulas, with W = warmup_epochs, E = total_epochs, cos_anneal(a, b, f) =
 * b + (a - b) * 0.5 * (1 + cos(pi * f)) (a at f = 0, b at f = 1):
 *   constant: lr
 *   step:     lr * gamma^k, k = number of milestones m with epoch >= m (absolute epochs, not shifted
 *             by the warm-up)
 *   cosine:   cos_anneal(lr, lr_min, clamp((epoch - W) / (E - W), 0, 1)): the cosine spans [W, E],
 *             so it is lr during the warm-up and reaches lr_min at E (and stays there after E)
 *   onecycle: PyTorch OneCycleLR(anneal_strategy='cos', three_phase=False) in continuous time:
 *             t = clamp(epoch / E, 0, 1), lr0 = lr / div_factor, lr_end = lr0 / final_div
 *             (div_factor and final_div must be > 0: ASSERT; the config bounds guarantee it);
 *             t <  pct_start: cos_anneal(lr0, lr, t / pct_start)
 *             t >= pct_start: cos_anneal(lr, lr_end, (t - pct_start) / (1 - pct_start))
 *             (PyTorch counts in steps with phase ends at pct_start*steps - 1 and steps - 1; with
 *             epoch = step / steps_per_epoch the two differ by at most one step's worth).
 * Warm-up (all but onecycle, which ignores warmup_epochs): for 0 <= epoch < W the value above is
 * multiplied by epoch / W, so it rises linearly from 0 at epoch 0 to the schedule's value at W. */

#define SCHED_MAX_MILESTONES 8

typedef struct {
    SchedKind kind;
    double lr;              /* base (peak) learning rate */
    double lr_min;          /* cosine floor */
    double gamma;           /* step factor, e.g. 0.1 */
    int n_milestones;
    double milestones[SCHED_MAX_MILESTONES]; /* in epochs, ascending */
    double warmup_epochs;   /* linear warm-up from 0 to the schedule's value (0 = none); not onecycle */
    double pct_start;       /* onecycle: share of the run spent rising (e.g. 0.25) */
    double div_factor;      /* onecycle: start lr = lr / div_factor (e.g. 25) */
    double final_div;       /* onecycle: end lr = start lr / final_div (e.g. 1e4) */
} Schedule;

/* Learning rate at fractional epoch `epoch` (= step / steps_per_epoch) of a run of `total_epochs`.
 * Pure function. Step milestones apply at epoch >= milestone. Warm-up multiplies the value by
 * epoch / warmup_epochs while epoch < warmup_epochs. */
double sched_lr(const Schedule *s, double epoch, double total_epochs);

/* Parse "constant", "step:30,60", "cosine", "onecycle" into kind + milestones (other fields
 * untouched; n_milestones = 0 for all but step). Names are exact and lower case; step needs 1 to
 * SCHED_MAX_MILESTONES non-negative, strictly ascending decimal numbers separated by single commas
 * without spaces (fractions such as 2.5 are allowed). Returns 0 or ERR_CONFIG with a message naming
 * the bad text; on error *s is unchanged. */
int sched_parse(Schedule *s, const char *text);

#endif
