/* checkpoint.h: the state needed to continue a run bit-for-bit: parameters, BN running statistics
 * and momentum (plain layouts, so a checkpoint does not depend on oneDNN's chosen layouts), the
 * trainer's step, the completed epochs, the metric history so far and the record's row counts.
 * Written to PATH.tmp and renamed over PATH, so a kill at any instant leaves a valid checkpoint. */
#ifndef RESPROP_CHECKPOINT_H
#define RESPROP_CHECKPOINT_H

#include "core/trainer.h"

#define CKPT_MAX_HIST_COLS 16

typedef struct {
    int epochs_done;   /* completed epochs */
    long steps_done;   /* trainer steps taken */
    long step_rows;    /* rows of the record's /step series at that point */
    int n_cols;        /* columns of the epoch history */
    long n_rows;       /* rows of the epoch history */
    double *history;   /* (n_rows, n_cols) row-major, owned (mem.h); NULL when n_rows == 0 */
    char *config_text; /* owned copy of the run's effective config (INI text) or NULL */
} CkptMeta;

void ckpt_meta_deinit(CkptMeta *m); /* accepts a zeroed struct */

/* Saves the trainer's network and optimizer state plus meta to path (atomically). */
int ckpt_save(const char *path, Trainer *t, const CkptMeta *meta);

/* Loads a checkpoint into a trainer built for the same model (every tensor's size is checked:
 * ERR_FORMAT naming the file and tensor on a mismatch) and fills *meta (caller deinits). */
int ckpt_load(const char *path, Trainer *t, CkptMeta *meta);

/* Reads only meta (config text, epochs) without a trainer. */
int ckpt_read_meta(const char *path, CkptMeta *meta);

#endif
