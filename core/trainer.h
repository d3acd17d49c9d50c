/* trainer.h: one SGD training step over a Net, with the optimizer state (momentum buffers, one
 * arena) allocated once in trainer_init. Optional per-layer timing of forward and backward. */
#ifndef RESPROP_TRAINER_H
#define RESPROP_TRAINER_H

#include <stdbool.h>

#include "core/net.h"
#include "core/optim.h"

typedef struct {
    Net *net;          /* borrowed */
    float *momentum;   /* one arena: every parameter's velocity, in net_param order */
    size_t *mom_off;   /* (n_params) float offsets into momentum */
    long step;         /* steps taken (0 before the first) */
    bool profile;      /* record per-layer times into fwd_ms/bwd_ms (summed over steps) */
    double *fwd_ms, *bwd_ms; /* (n_layers) */
    double opt_ms;
} Trainer;

/* Caller owns `t`; trainer_deinit frees what trainer_init allocated. */
int trainer_init(Trainer *t, Net *net);
void trainer_deinit(Trainer *t);

/* forward (train) + backward + SGD update with `p` (lr from the schedule). The loss is checked:
 * a NaN or infinite loss returns ERR_NUMERIC before any update. */
int trainer_step(Trainer *t, const SgdParams *p);

/* Zeroes the profile sums. */
void trainer_profile_reset(Trainer *t);

#endif
