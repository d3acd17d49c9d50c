/* runconfig.h: the training run's configuration (`resprop train`, sweeps, records). The table in
 * runconfig.c is the only place a run key is declared: help, INI keys, bounds and the record's
 * copy all come from it. Scheme keys (--scheme.KEY=VALUE, [scheme.NAME]) pass through to `extra`. */
#ifndef RESPROP_RUNCONFIG_H
#define RESPROP_RUNCONFIG_H

#include <stdbool.h>

#include "core/config.h"

typedef struct {
    /* data */
    char dataset[CFG_STR_MAX];  /* fmnist|mnist|cifar10|cifar100|imagenet|synthetic */
    char data_dir[CFG_STR_MAX]; /* "" = the dataset's default directory */
    char labels[CFG_STR_MAX];   /* cifar100: fine|coarse */
    int limit_train, limit_test; /* use the first N images (0 = all) */
    char augment[CFG_STR_MAX];  /* auto|none|crop-flip: auto = crop-flip except lenet5 */
    int synthetic_train, synthetic_test, synthetic_classes; /* synthetic set sizes */
    char synthetic_shape[CFG_STR_MAX]; /* CxHxW */
    /* model and optimisation */
    char model[CFG_STR_MAX];
    int epochs, batch;
    double lr, momentum, weight_decay;
    bool nesterov;
    char scheme[CFG_STR_MAX];   /* sparsity scheme name (core/scheme.h registry) */
    double reuse;               /* nominal reuse sparsity RS */
    char backend[CFG_STR_MAX];  /* dnnl | sparse | gscn (= sparse + GSCN-sim of the real S) */
    int gscn_every;             /* backend gscn, save-masks: observe S every N steps */
    char gscn_preset[CFG_STR_MAX]; /* backend gscn: accelerator preset */
    char gscn_mode[CFG_STR_MAX];   /* backend gscn: fast | detailed */
    int save_masks;             /* masks of the first N observed sparse steps into the record */
    double breakeven[4];        /* backend sparse: break-even density per SparseClass (core/sparse.h) */
    double amdahl_p;            /* backward share of training time for the Amdahl speedup */
    char schedule[CFG_STR_MAX]; /* constant|cosine|onecycle|step:E1,E2,... */
    double lr_min, gamma, warmup_epochs, pct_start, div_factor, final_div;
    /* run */
    long seed;
    int threads;
    char out[CFG_STR_MAX];    /* record path (NAME.h5); "" = results/runs/<derived name>.h5 */
    char resume[CFG_STR_MAX]; /* record or checkpoint to resume; "" = fresh run */
    int log_every;            /* progress line and per-step record row every N steps */
    bool quiet;
} RunConfig;

extern const CfgTable runconfig_table;

/* Default break-even densities of the sparse backend per layer shape class (core/sparse.h's
 * SparseClass): up to this density of S the sparse kernels beat oneDNN's dense backward. Never timed
 * during a run, so runs stay deterministic. Measured (REPRODUCE.md, "The CPU sparse backend") with
 *   resprop bench backward --model resnet18 --density 0.15,0.2,0.3,0.5 --steps 5
 *   resprop bench backward --model resnet20 --density 0.15,0.2,0.3 --steps 5
 * summed per class, sparse / dense: wide 1.43x at 0.3, 0.90x at 0.5; narrow 1.26x at 0.5 (resnet18,
 * C = 64) and 1.06x at 0.3 (resnet20, C = 16..64); pointwise 1.52x at 0.2, 1.22x at 0.3 (resnet18;
 * resnet20's small 1x1 layers lose at every density, 0.6x, a fraction of a millisecond); stem 1.1x
 * at 0.1 and 0.7x at 0.15 (resnet18). */
#define BREAKEVEN_STEM "0.1"
#define BREAKEVEN_POINTWISE "0.2"
#define BREAKEVEN_NARROW "0.3"
#define BREAKEVEN_WIDE "0.4"

#endif
