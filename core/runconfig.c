/* runconfig.c: the training run's key table. Every run key is declared here once: its flag and INI
 * name, type, field, default, bounds and help line. A min of DBL_MIN means "greater than 0" (see
 * config.h). Keys under "scheme." pass through to CfgExtra for the scheme to check. */
#include "core/runconfig.h"

#include <float.h>
#include <stddef.h>

#include "core/sparse.h"

#define RC_INT(name, field, def, lo, hi, help) {name, CFG_INT, offsetof(RunConfig, field), def, lo, hi, NULL, help}
#define RC_LONG(name, field, def, lo, hi, help) {name, CFG_LONG, offsetof(RunConfig, field), def, lo, hi, NULL, help}
#define RC_NUM(name, field, def, lo, hi, help) {name, CFG_DOUBLE, offsetof(RunConfig, field), def, lo, hi, NULL, help}
#define RC_BOOL(name, field, def, help) {name, CFG_BOOL, offsetof(RunConfig, field), def, 0, 1, NULL, help}
#define RC_STR(name, field, def, choices, help) {name, CFG_STRING, offsetof(RunConfig, field), def, 0, 0, choices, help}

#define RC_COUNT_MAX 2147483647.0 /* INT_MAX */


static const CfgKey runconfig_keys[] = {
    /* data */
    RC_STR("dataset", dataset, "fmnist", "fmnist|mnist|cifar10|cifar100|imagenet|synthetic", "dataset"),
    RC_STR("data-dir", data_dir, "", NULL, "dataset directory (path; \"\" = the dataset's default directory)"),
    RC_STR("labels", labels, "fine", "fine|coarse", "CIFAR-100 label set (20 coarse or 100 fine classes)"),
    RC_INT("limit-train", limit_train, "0", 0, RC_COUNT_MAX, "use the first N training images (images; 0 = all)"),
    RC_INT("limit-test", limit_test, "0", 0, RC_COUNT_MAX, "use the first N test images (images; 0 = all)"),
    RC_STR("augment", augment, "auto", "auto|none|crop-flip",
           "training augmentation (auto = crop-flip except for lenet5)"),
    RC_INT("synthetic-train", synthetic_train, "512", 1, 1e8, "synthetic training set size (images)"),
    RC_INT("synthetic-test", synthetic_test, "256", 1, 1e8, "synthetic test set size (images)"),
    RC_INT("synthetic-classes", synthetic_classes, "4", 2, 1e5, "synthetic number of classes (classes)"),
    RC_STR("synthetic-shape", synthetic_shape, "3x8x8", NULL,
           "synthetic image shape CxHxW (channels x height x width pixels)"),
    /* model and optimisation */
    RC_STR("model", model, "lenet5", NULL, "network (model name; the model builder checks it)"),
    RC_INT("epochs", epochs, "3", 1, 1e5, "training length (epochs)"),
    RC_INT("batch", batch, "128", 1, 65536, "mini-batch size (images per step)"),
    RC_NUM("lr", lr, "0.1", DBL_MIN, 100, "learning rate (peak for onecycle)"),
    RC_NUM("momentum", momentum, "0.9", 0, 0.999, "SGD momentum coefficient (0 = plain SGD)"),
    RC_NUM("weight-decay", weight_decay, "5e-4", 0, 1, "L2 weight decay coefficient (multiplier of the weights)"),
    RC_BOOL("nesterov", nesterov, "true", "Nesterov momentum (bool)"),
    /* sparsity scheme */
    RC_STR("scheme", scheme, "dense", NULL,
           "sparsity scheme of the conv layers' output gradients (resprop schemes lists them)"),
    RC_NUM("reuse", reuse, "0.9", 0, 0.999, "nominal reuse sparsity RS: target density 1-RS (fraction)"),
    RC_STR("backend", backend, "dnnl", "dnnl|sparse|gscn",
           "executor of the backward convolutions (dnnl: oneDNN on dense S; sparse: CPU sparse kernels on CSR S; "
           "gscn: sparse, plus GSCN-sim timing of the real S every gscn-every steps)"),
    RC_INT("gscn-every", gscn_every, "50", 1, 1e9,
           "backend gscn / save-masks: simulate the conv layers' S every N steps (steps)"),
    RC_STR("gscn-preset", gscn_preset, "gscn-iso-1080ti", NULL,
           "backend gscn: accelerator preset (accel/presets/NAME.ini, or a path ending in .ini)"),
    RC_STR("gscn-mode", gscn_mode, "fast", "fast|detailed", "backend gscn: simulator fidelity (detailed: small layers only)"),
    RC_INT("save-masks", save_masks, "0", 0, 10000,
           "store the conv layers' masks of the first N observed sparse steps in the record (steps; backend "
           "sparse or gscn)"),
    RC_NUM("breakeven-stem", breakeven[SPARSE_CLASS_STEM], BREAKEVEN_STEM, 0, 1,
           "backend sparse: densest S run on the sparse kernels, conv layers with C < 16 (fraction)"),
    RC_NUM("breakeven-pointwise", breakeven[SPARSE_CLASS_POINTWISE], BREAKEVEN_POINTWISE, 0, 1,
           "backend sparse: the same for 1x1 conv layers (fraction)"),
    RC_NUM("breakeven-narrow", breakeven[SPARSE_CLASS_NARROW], BREAKEVEN_NARROW, 0, 1,
           "backend sparse: the same for conv layers with C <= 64 (fraction)"),
    RC_NUM("breakeven-wide", breakeven[SPARSE_CLASS_WIDE], BREAKEVEN_WIDE, 0, 1,
           "backend sparse: the same for conv layers with C > 64 (fraction)"),
    RC_NUM("amdahl-p", amdahl_p, "0.7", 0, 1, "share of training time in backward, for the Amdahl speedup (fraction)"),
    RC_STR("schedule", schedule, "onecycle", NULL,
           "learning-rate schedule: constant|cosine|onecycle|step:E1,E2,... (milestones in epochs)"),
    RC_NUM("lr-min", lr_min, "0", 0, 100, "cosine: final learning rate (learning rate)"),
    RC_NUM("gamma", gamma, "0.1", DBL_MIN, 1, "step: learning-rate factor at each milestone (multiplier)"),
    RC_NUM("warmup-epochs", warmup_epochs, "0", 0, 1e5, "linear warm-up from 0 to lr (epochs, may be fractional)"),
    RC_NUM("pct-start", pct_start, "0.15", 0.001, 0.999, "onecycle: share of steps spent rising to lr (fraction)"),
    RC_NUM("div-factor", div_factor, "25", 1e-3, 1e9, "onecycle: starting lr = lr / div-factor (ratio)"),
    RC_NUM("final-div", final_div, "1e4", 1e-3, 1e12, "onecycle: final lr = starting lr / final-div (ratio)"),
    /* run */
    RC_LONG("seed", seed, "1", 0, 2147483647.0, "random seed (integer)"),
    RC_INT("threads", threads, "2", 1, 1024, "CPU threads (threads)"),
    RC_STR("out", out, "", NULL, "run record path (NAME.h5; \"\" = results/runs/<derived name>.h5)"),
    RC_STR("resume", resume, "", NULL, "record or checkpoint to resume (path; \"\" = fresh run)"),
    RC_INT("log-every", log_every, "50", 1, 1e9, "progress line and per-step record row every N steps (steps)"),
    RC_BOOL("quiet", quiet, "false", "log warnings and errors only (bool)"),
};

const CfgTable runconfig_table = {
    .keys = runconfig_keys,
    .n_keys = (int)(sizeof runconfig_keys / sizeof runconfig_keys[0]),
    .extra_prefix = "scheme.",
};
