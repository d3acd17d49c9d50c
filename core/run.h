/* run.h: one training run from a RunConfig, end to end: data, model, training loop with progress
 * lines, evaluation every epoch, the HDF5 run record (results/h5rec.h), a checkpoint at every epoch
 * end, and resume. The record is NAME.h5.part while the run goes and NAME.h5 once complete; the
 * checkpoint is NAME.ckpt.h5. */
#ifndef RESPROP_RUN_H
#define RESPROP_RUN_H

#include <stdbool.h>

#include "core/runconfig.h"

typedef struct {
    int stop_after_epochs; /* tests: return after this many epochs of this call, as if killed (0: off) */
} RunHooks;

typedef struct {
    char record[CFG_STR_MAX + 32];     /* NAME.h5 (complete) or NAME.h5.part (interrupted or failed) */
    char checkpoint[CFG_STR_MAX + 32]; /* NAME.ckpt.h5 */
    int epochs_done;
    bool complete;
    double final_train_loss, final_test_loss, final_test_acc, final_test_acc5;
    double wall_s;        /* this call's training + evaluation time */
    double img_per_s;     /* training images per second over this call */
    double data_wait_frac; /* share of training time spent waiting for data */
    double first_loss;    /* loss of the first step of this call (tests) */
} RunSummary;

/* Runs cfg (resuming when cfg->resume is set). Returns 0; ERR_CONFIG / ERR_IO / ERR_FORMAT for bad
 * input (then no record exists under the final name); ERR_NUMERIC when the loss became NaN or
 * infinite (the .part record says status "failed" with the message); other ERR_* for failures. */
int run_train(const RunConfig *cfg, const CfgExtra *extra, const RunHooks *hooks, RunSummary *sum);

/* Fills cfg/extra from the checkpoint of the run named by `resume` (NAME.h5, NAME.h5.part or
 * NAME.ckpt.h5) and sets cfg->resume, so run_train continues it. */
int run_config_for_resume(const char *resume, RunConfig *cfg, CfgExtra *extra);

/* Evaluates a checkpoint on the test split of the dataset its run used (data_dir may override
 * where it is; "" keeps the run's). Prints and returns loss and top-1/top-5 accuracy. */
int run_eval(const char *checkpoint, const char *data_dir, int threads, double *loss, double *acc1, double *acc5);

/* The record path cfg would write (cfg->out, or results/runs/MODEL-DATASET-sSEED.h5). */
void run_record_path(const RunConfig *cfg, char *buf, size_t cap);

#endif
