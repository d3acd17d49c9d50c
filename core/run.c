#include "core/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "accel/arch.h"
#include "accel/gpu.h"
#include "accel/masks.h"
#include "accel/sim.h"
#include "core/checkpoint.h"
#include "core/err.h"
#include "core/flops.h"
#include "core/scheme.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/net.h"
#include "core/sysinfo.h"
#include "core/timer.h"
#include "core/trainer.h"
#include "datasets/dataset.h"
#include "datasets/imagenet.h"
#include "datasets/loader.h"
#include "results/h5rec.h"

/* The per-epoch series: also the checkpoint's history, so the record can be rebuilt from it. */
static const char *const epoch_cols[] = {"epoch",    "train_loss", "train_acc", "test_loss",  "test_acc",
                                         "test_acc5", "lr",        "wall_s",    "data_wait_s"};
static const char *const epoch_units[] = {"1", "nats", "frac", "nats", "frac", "frac", "1", "s", "s"};
#define N_EPOCH_COLS (int)(sizeof epoch_cols / sizeof epoch_cols[0])
/* Per conv layer (under /layers/NNN_NAME/): every logged step, and every epoch. */
static const char *const lstep_cols[] = {"step", "density", "reuse", "tau", "cos_r_g", "angle_r_g", "cos_g_ghat",
                                         "angle_g_ghat", "cos_dw", "bwd_flops_dense", "bwd_flops_eff", "sparse_path"};
static const char *const lstep_units[] = {"1", "frac", "frac", "1", "1", "deg", "1", "deg", "1", "FLOP", "FLOP", "1"};
#define N_LSTEP_COLS (int)(sizeof lstep_cols / sizeof lstep_cols[0])
static const char *const lepoch_cols[] = {"epoch", "density", "reuse", "cos_r_g", "cos_g_ghat", "cos_dw",
                                          "bwd_flops_dense", "bwd_flops_eff", "reduction", "dense_steps",
                                          "sparse_steps"};
static const char *const lepoch_units[] = {"1", "frac", "frac", "1", "1", "1", "FLOP", "FLOP", "1", "1", "1"};
#define N_LEPOCH_COLS (int)(sizeof lepoch_cols / sizeof lepoch_cols[0])
/* The network per epoch: FLOPs per step averaged over the epoch (conv and fc layers). */
static const char *const net_cols[] = {"epoch", "density", "fwd_flops", "bwd_flops_dense", "bwd_flops_eff",
                                       "reduction", "amdahl_speedup"};
static const char *const net_units[] = {"1", "frac", "FLOP", "FLOP", "FLOP", "1", "1"};
#define N_NET_COLS (int)(sizeof net_cols / sizeof net_cols[0])

/* Per conv layer sums over the current epoch. */
typedef struct {
    double density, bwd_dense, bwd_eff, cos_r_g, cos_g_ghat, cos_dw;
    long steps, dense_steps, sparse_steps, n_cos_r_g, n_cos_g_ghat, n_cos_dw;
} LayerEpoch;

static double angle_deg(double c) { return isnan(c) ? NAN : acos(c > 1 ? 1 : c < -1 ? -1 : c) * 180.0 / M_PI; }

static void layer_group(const ModelSpec *m, int i, const char *sub, char *buf, size_t cap) {
    snprintf(buf, cap, "/layers/%03d_%s%s%s", i, m->layers[i].name, sub[0] ? "/" : "", sub);
}

/* This step's FLOPs of conv (or fc) layer i given what its scheme did; an fc counts as the 1x1 conv
 * over a 1x1 input with the flattened features as channels (the view core/flops.h uses for fc). */
static void step_conv_flops(Net *net, int i, int batch, const ConvSchemeStats *st, ConvFlops *f) {
    Layer *l = net_layer(net, i);
    Dims4 in = layer_in_dims(l, 0), out = layer_out_dims_of(l);
    LayerSpec s = *layer_spec(l);
    if (s.kind == LAYER_FC) {
        in = (Dims4){in.n, (int)dims_sample(in), 1, 1};
        s.kind = LAYER_CONV, s.kh = s.kw = 1, s.stride = 1, s.pad = 0;
    }
    double numel = (double)dims_count(out);
    flops_conv(&s, in, out, batch, st->dense ? numel : st->density * numel, st->has_r, f);
    if (st->dense) { /* G propagated as is: the dense backward, no scheme overhead */
        f->bwd_sparse = f->bwd_dense;
        f->bwd_pre = f->bwd_elementwise = 0;
    }
}

static const char *const step_cols[] = {"step", "epoch", "loss", "lr", "step_ms"};
static const char *const step_units[] = {"1", "1", "nats", "1", "ms"};
#define N_STEP_COLS (int)(sizeof step_cols / sizeof step_cols[0])

void run_record_path(const RunConfig *cfg, char *buf, size_t cap) {
    if (cfg->out[0]) snprintf(buf, cap, "%s", cfg->out);
    else snprintf(buf, cap, "results/runs/%.200s-%.64s-s%ld.h5", cfg->model, cfg->dataset, cfg->seed);
}

/* NAME from NAME.h5, NAME.h5.part or NAME.ckpt.h5. */
static void base_name(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", path);
    static const char *const suffixes[] = {".ckpt.h5", ".h5.part", ".h5"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(buf), s = strlen(suffixes[i]);
        if (n > s && strcmp(buf + n - s, suffixes[i]) == 0) {
            buf[n - s] = 0;
            return;
        }
    }
}

static bool file_exists(const char *p) { return access(p, F_OK) == 0; }

/* mkdir -p of the directory part of path. */
static int make_parent_dirs(const char *path) {
    char tmp[CFG_STR_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && !file_exists(tmp)) {
            log_msg(LOG_ERROR, "cannot create directory %s", tmp);
            return ERR_IO;
        }
        *p = '/';
    }
    return 0;
}

/* ---- data --------------------------------------------------------------------------------------- */

static int parse_shape(const char *text, int *c, int *h, int *w) {
    char tail;
    if (sscanf(text, "%dx%dx%d%c", c, h, w, &tail) != 3 || *c < 1 || *h < 1 || *w < 1 || *c > 4 || *h > 4096 ||
        *w > 4096) {
        log_msg(LOG_ERROR, "synthetic-shape '%s': expected CxHxW with C in 1..4, e.g. 3x8x8", text);
        return ERR_CONFIG;
    }
    return 0;
}

static int load_split(const RunConfig *cfg, const char *split, Dataset *d) {
    const char *ds = cfg->dataset, *dir = cfg->data_dir;
    if (strcmp(ds, "fmnist") == 0)
        return dataset_load_idx_dir(d, dir[0] ? dir : "/usr/share/datasets/fashion-mnist", split, 10);
    if (strcmp(ds, "synthetic") == 0) {
        int c, h, w, rc = parse_shape(cfg->synthetic_shape, &c, &h, &w);
        if (rc) return rc;
        int n = strcmp(split, "train") == 0 ? cfg->synthetic_train : cfg->synthetic_test;
        return dataset_synthetic(d, split, n, c, h, w, cfg->synthetic_classes, (uint64_t)cfg->seed);
    }
    if (!dir[0]) {
        log_msg(LOG_ERROR, "dataset %s needs --data-dir DIR (%s)", ds,
                strcmp(ds, "mnist") == 0      ? "the directory of the four IDX .gz files"
                : strcmp(ds, "imagenet") == 0 ? "the shards written by resprop imagenet-convert"
                                              : "the directory of the CIFAR binary files");
        return ERR_CONFIG;
    }
    if (strcmp(ds, "mnist") == 0) return dataset_load_idx_dir(d, dir, split, 10);
    if (strcmp(ds, "cifar10") == 0) return dataset_load_cifar10(d, dir, split);
    if (strcmp(ds, "cifar100") == 0) return dataset_load_cifar100(d, dir, split, strcmp(cfg->labels, "coarse") == 0);
    if (strcmp(ds, "imagenet") == 0) return dataset_load_imagenet(d, dir, strcmp(split, "train") == 0 ? "train" : "val");
    log_msg(LOG_ERROR, "dataset '%s': unknown", ds);
    return ERR_CONFIG;
}

static int load_data(const RunConfig *cfg, Dataset *train, Dataset *test) {
    int rc = 0;
    TRY(load_split(cfg, "train", train));
    TRY(load_split(cfg, "test", test));
    if (train->c != test->c || train->h != test->h || train->w != test->w || train->classes != test->classes)
        FAIL(ERR_FORMAT, "dataset %s: train images %dx%dx%d (%d classes) but test images %dx%dx%d (%d classes)",
             cfg->dataset, train->c, train->h, train->w, train->classes, test->c, test->h, test->w, test->classes);
    if (cfg->limit_train > 0) dataset_truncate(train, cfg->limit_train);
    if (cfg->limit_test > 0) dataset_truncate(test, cfg->limit_test);
fail:
    return rc;
}

/* auto: crop + flip (pad 2 at 28 px, 4 at 32 px, h/8 up to 127 px; random-resized crop from 128 px,
 * as ImageNet training), except lenet5 (none). */
static void make_augment(const RunConfig *cfg, const Dataset *train, Augment *a) {
    memset(a, 0, sizeof *a);
    dataset_channel_stats(train, a->mean, a->std);
    bool on = strcmp(cfg->augment, "crop-flip") == 0 || (strcmp(cfg->augment, "auto") == 0 && strcmp(cfg->model, "lenet5") != 0);
    if (on) {
        a->pad = train->h <= 28 ? 2 : train->h <= 32 ? 4 : train->h / 8;
        a->rrc = train->h >= 128 && train->w >= 128;
        a->flip = true;
    }
}

/* ---- the record --------------------------------------------------------------------------------- */

static int record_header(H5Rec *rec, const RunConfig *cfg, const CfgExtra *extra, const ModelSpec *m,
                         const Dataset *train, const Dataset *test, long steps_per_epoch, const Augment *aug,
                         const Net *net) {
    int rc = 0;
    char buf[512], *text = NULL;
    TRY(h5rec_attr_str(rec, "/", "version", resprop_version));
    sysinfo_dnnl_version(buf, sizeof buf);
    TRY(h5rec_attr_str(rec, "/", "dnnl_version", buf));
    sysinfo_hdf5_version(buf, sizeof buf);
    TRY(h5rec_attr_str(rec, "/", "hdf5_version", buf));
    TRY(h5rec_attr_str(rec, "/", "openblas_config", sysinfo_openblas_config()));
    sysinfo_cpu_model(buf, sizeof buf);
    TRY(h5rec_attr_str(rec, "/", "cpu_model", buf));
    sysinfo_cpu_isa(buf, sizeof buf);
    TRY(h5rec_attr_str(rec, "/", "cpu_isa", buf));
    TRY(h5rec_attr_i64(rec, "/", "threads", cfg->threads));
    TRY(h5rec_attr_i64(rec, "/", "seed", cfg->seed));
    size_t cap = 1 << 16;
    text = mem_alloc(cap);
    if (!text) FAIL(ERR_NOMEM, "record: out of memory");
    if (config_to_text(&runconfig_table, cfg, extra, text, cap) < 0) FAIL(ERR_NOMEM, "record: config text too long");
    TRY(h5rec_attr_str(rec, "/", "config", text));
    TRY(h5rec_attr_str(rec, "/", "dataset", cfg->dataset));
    TRY(h5rec_attr_str(rec, "/", "dataset_source", train->source));
    TRY(h5rec_attr_i64(rec, "/", "dataset_train_n", train->n));
    TRY(h5rec_attr_i64(rec, "/", "dataset_test_n", test->n));
    TRY(h5rec_attr_i64(rec, "/", "dataset_file_bytes", (int64_t)(train->file_bytes + test->file_bytes)));
    snprintf(buf, sizeof buf, "%08x %08x", train->checksum, test->checksum);
    TRY(h5rec_attr_str(rec, "/", "dataset_checksum", buf));
    TRY(h5rec_attr_str(rec, "/", "model", m->name));
    snprintf(buf, sizeof buf, "%dx%dx%d", m->input.c, m->input.h, m->input.w);
    TRY(h5rec_attr_str(rec, "/", "input", buf));
    TRY(h5rec_attr_i64(rec, "/", "classes", m->classes));
    TRY(h5rec_attr_i64(rec, "/", "batch", cfg->batch));
    TRY(h5rec_attr_i64(rec, "/", "steps_per_epoch", steps_per_epoch));
    if (aug->rrc) snprintf(buf, sizeof buf, "random-resized crop, flip %s", aug->flip ? "on" : "off");
    else snprintf(buf, sizeof buf, "pad %d, flip %s", aug->pad, aug->flip ? "on" : "off");
    TRY(h5rec_attr_str(rec, "/", "augmentation", buf));
    TRY(h5rec_series(rec, "/epoch", N_EPOCH_COLS, epoch_cols, epoch_units));
    TRY(h5rec_series(rec, "/step", N_STEP_COLS, step_cols, step_units));
    TRY(h5rec_attr_str(rec, "/", "scheme", cfg->scheme));
    TRY(h5rec_attr_f64(rec, "/", "reuse_nominal", cfg->reuse));
    TRY(h5rec_attr_str(rec, "/", "backend", cfg->backend));
    TRY(h5rec_attr_f64(rec, "/", "amdahl_p", cfg->amdahl_p));
    TRY(h5rec_series(rec, "/network", N_NET_COLS, net_cols, net_units));
    for (int j = 0; j < net_scheme_n(net); j++) {
        char g[256];
        int li = net_scheme_stats(net, j)->layer;
        layer_group(m, li, "scheme", g, sizeof g);
        TRY(h5rec_series(rec, g, N_LSTEP_COLS, lstep_cols, lstep_units));
        layer_group(m, li, "scheme_epoch", g, sizeof g);
        TRY(h5rec_series(rec, g, N_LEPOCH_COLS, lepoch_cols, lepoch_units));
    }

    LayerCount *rows = mem_calloc((size_t)m->n_layers, sizeof *rows);
    int64_t tp, tm;
    if (!rows) FAIL(ERR_NOMEM, "record: out of memory");
    rc = model_count(m, rows, &tp, &tm);
    for (int i = 1; rc == 0 && i < m->n_layers; i++) {
        const LayerSpec *s = &m->layers[i];
        char g[128];
        snprintf(g, sizeof g, "/layers/%03d_%s", i, s->name);
        int64_t shape[3] = {rows[i].out.c, rows[i].out.h, rows[i].out.w};
        if ((rc = h5rec_attr_str(rec, g, "kind", layer_kind_name(s->kind))) ||
            (rc = h5rec_attr_i64_array(rec, g, "output_shape", shape, 3)) ||
            (rc = h5rec_attr_i64(rec, g, "params", rows[i].params)) ||
            (rc = h5rec_attr_i64(rec, g, "macs_per_sample", rows[i].macs)) ||
            (rc = h5rec_attr_i64(rec, g, "fwd_flops_per_step", 2 * rows[i].macs * cfg->batch)))
            break;
    }
    mem_free(rows);
    TRY(rc);
    TRY(h5rec_attr_i64(rec, "/", "params", tp));
    TRY(h5rec_attr_i64(rec, "/", "macs_per_sample", tm));
fail:
    mem_free(text);
    return rc;
}

/* ---- evaluation --------------------------------------------------------------------------------- */

static int evaluate(Net *net, Loader *ld, double *loss, double *acc1, double *acc5) {
    int rc = 0, n_valid;
    long n = 0, c1 = 0, c5 = 0;
    double lsum = 0;
    TRY(loader_start_epoch(ld, 0));
    for (;;) {
        TRY(loader_next(ld, net_input(net), net_labels(net), &n_valid));
        if (n_valid == 0) break;
        TRY(net_forward(net, false));
        lsum += net_loss_sum(net, n_valid);
        c1 += net_correct(net, 1, n_valid);
        c5 += net_correct(net, 5, n_valid);
        n += n_valid;
    }
    *loss = n ? lsum / n : NAN;
    *acc1 = n ? (double)c1 / n : NAN;
    *acc5 = n ? (double)c5 / n : NAN;
fail:
    return rc;
}

/* ---- backend gscn and --save-masks: the real S of every conv layer, observed every gscn-every steps --
 * The observer (net_set_observer) runs inside the backward but only reads S; its own wall time is
 * measured and taken out of the step's time, so neither numerics nor timings change. Every observed
 * step appends one row per conv layer and one network row (NAN sims where the layer's step was dense),
 * so the rows are a pure function of the step count and a resume can cut them back. */
static const char *const gscn_lcols[] = {"step",   "density",   "nnz",         "cycles",           "compute_cycles",
                                         "stall_mem_cycles", "util", "imbalance", "dram_bytes",    "sim_us",
                                         "gpu_ms", "speedup"};
static const char *const gscn_lunits[] = {"1",     "frac",  "1",     "cycles", "cycles", "cycles",
                                          "frac",  "ratio", "bytes", "us",     "ms",     "ratio"};
#define N_GSCN_LCOLS (int)(sizeof gscn_lcols / sizeof gscn_lcols[0])
static const char *const gscn_ncols[] = {"step", "density", "sim_conv_ms", "gpu_conv_ms", "speedup", "sim_wall_ms"};
static const char *const gscn_nunits[] = {"1", "frac", "ms", "ms", "ratio", "ms"};
#define N_GSCN_NCOLS (int)(sizeof gscn_ncols / sizeof gscn_ncols[0])

typedef struct {
    bool sim;             /* backend gscn: simulate */
    int save_left;        /* masks still to save (--save-masks) */
    int every;
    AccelArch arch;
    SimMode mode;
    const ModelSpec *m;
    H5Rec *rec;           /* borrowed: the run's record */
    int n;                /* observed conv layers */
    int *slot_of;         /* (model layers) slot of a layer, -1 if not observed */
    int *layer;           /* (n) model layer index */
    SimWork *work;        /* (n) one prepared simulator per layer (sim only) */
    SimLayerStats *st;    /* (n) this step's stats */
    double *gpu_ms;       /* (n) the GPU model's dense backward of the layer */
    double *density;      /* (n) this step's density of S */
    double *nnz;          /* (n) */
    ConvGeom *geom;       /* (n) */
    bool *seen;           /* (n) observed this step (false: the layer's step was dense) */
    int64_t **words;      /* (n) packed masks of this step (save-masks only) */
    size_t *n_words;      /* (n) */
    double wall_ms;       /* the observer's wall time this step */
    char saved[512];      /* steps whose masks are in the record, "150,200" */
    double last_speedup, last_sim_ms, last_gpu_ms;
    long last_step;       /* 0: no sparse step simulated yet */
} GscnRun;

static void gscn_deinit(GscnRun *gr) {
    for (int i = 0; i < gr->n; i++) {
        if (gr->work) sim_work_deinit(&gr->work[i]);
        if (gr->words) mem_free(gr->words[i]);
    }
    mem_free(gr->slot_of);
    mem_free(gr->layer);
    mem_free(gr->work);
    mem_free(gr->st);
    mem_free(gr->gpu_ms);
    mem_free(gr->density);
    mem_free(gr->nnz);
    mem_free(gr->geom);
    mem_free(gr->seen);
    mem_free(gr->words);
    mem_free(gr->n_words);
    memset(gr, 0, sizeof *gr);
}

static int gscn_observe(void *ctx, int layer, const SparseGrad *s) {
    int rc = 0;
    GscnRun *gr = ctx;
    double t0 = timer_now_ms();
    int j = layer >= 0 && layer < gr->m->n_layers ? gr->slot_of[layer] : -1;
    if (j < 0) return 0;
    if (gr->sim) TRY(sim_layer_ws(&gr->work[j], s, gr->mode, &gr->st[j]));
    if (gr->save_left > 0) mask_pack(s, gr->words[j]);
    gr->density[j] = sparse_density(s);
    gr->nnz[j] = (double)s->nnz;
    gr->seen[j] = true;
fail:
    gr->wall_ms += timer_now_ms() - t0;
    return rc;
}

/* Prepares the observer for a built net (scheme attached on backend sparse). */
static int gscn_init(GscnRun *gr, const RunConfig *cfg, const ModelSpec *m, Net *net) {
    int rc = 0;
    GpuModel gpu;
    GpuNetTime gnet;
    GpuLayerTime *gl = NULL;
    memset(gr, 0, sizeof *gr);
    gr->sim = strcmp(cfg->backend, "gscn") == 0;
    gr->save_left = cfg->save_masks;
    gr->every = cfg->gscn_every;
    gr->m = m;
    gr->mode = strcmp(cfg->gscn_mode, "detailed") == 0 ? SIM_DETAILED : SIM_FAST;
    if (!gr->sim && gr->save_left == 0) return 0;
    if (strcmp(cfg->backend, "dnnl") == 0)
        FAIL(ERR_CONFIG, "save-masks %d: needs --backend sparse or gscn (the masks are the CSR S of the sparse "
             "backend)", cfg->save_masks);
    if (gr->sim) {
        if (arch_load_preset(&gr->arch, cfg->gscn_preset)) FAIL(ERR_CONFIG, "gscn-preset '%s': see above", cfg->gscn_preset);
        gl = mem_calloc((size_t)m->n_layers, sizeof *gl);
        if (!gl) FAIL(ERR_NOMEM, "gscn: out of memory");
        TRY(gpu_model_default(&gpu));
        TRY(gpu_model_network(&gpu, m, cfg->batch, NULL, gl, &gnet));
    }
    int n_sch = net_scheme_n(net);
    gr->slot_of = mem_alloc((size_t)m->n_layers * sizeof(int));
    gr->layer = mem_calloc((size_t)n_sch + 1, sizeof(int));
    gr->work = mem_calloc((size_t)n_sch + 1, sizeof(SimWork));
    gr->st = mem_calloc((size_t)n_sch + 1, sizeof(SimLayerStats));
    gr->gpu_ms = mem_calloc((size_t)n_sch + 1, sizeof(double));
    gr->density = mem_calloc((size_t)n_sch + 1, sizeof(double));
    gr->nnz = mem_calloc((size_t)n_sch + 1, sizeof(double));
    gr->geom = mem_calloc((size_t)n_sch + 1, sizeof(ConvGeom));
    gr->seen = mem_calloc((size_t)n_sch + 1, sizeof(bool));
    gr->words = mem_calloc((size_t)n_sch + 1, sizeof(int64_t *));
    gr->n_words = mem_calloc((size_t)n_sch + 1, sizeof(size_t));
    if (!gr->slot_of || !gr->layer || !gr->work || !gr->st || !gr->gpu_ms || !gr->density || !gr->nnz || !gr->geom || !gr->seen ||
        !gr->words || !gr->n_words)
        FAIL(ERR_NOMEM, "gscn: out of memory");
    for (int i = 0; i < m->n_layers; i++) gr->slot_of[i] = -1;
    for (int j = 0; j < n_sch; j++) {
        int li = net_scheme_stats(net, j)->layer;
        if (m->layers[li].kind != LAYER_CONV) continue; /* fc layers under the scheme stay on the GPU */
        int k = gr->n++;
        ConvGeom g;
        gr->slot_of[li] = k;
        gr->layer[k] = li;
        TRY(layer_conv_geom(net_layer(net, li), &g));
        gr->geom[k] = g;
        if (gr->sim) {
            TRY(sim_work_init(&gr->work[k], &gr->arch, g));
            gr->gpu_ms[k] = gl[li].ms;
        }
        if (gr->save_left > 0) {
            gr->n_words[k] = mask_n_words(g.n, g.p, g.q, g.k);
            gr->words[k] = mem_alloc(gr->n_words[k] * sizeof(int64_t));
            if (!gr->words[k]) FAIL(ERR_NOMEM, "save-masks: out of memory for the masks of layer %s", m->layers[li].name);
        }
    }
    TRY(net_set_observer(net, gscn_observe, gr));
fail:
    mem_free(gl);
    if (rc) gscn_deinit(gr);
    return rc;
}

/* The series and attributes of the observer in the record (idempotent, for resume). */
static int gscn_record_header(GscnRun *gr, H5Rec *rec) {
    int rc = 0;
    gr->rec = rec;
    if (!gr->sim && gr->save_left == 0) return 0;
    TRY(h5rec_attr_i64(rec, "/", "gscn_every", gr->every));
    if (gr->sim) {
        TRY(h5rec_attr_str(rec, "/", "gscn_accelerator", "GSCN-sim: the harness's own documented model (accel/sim.h), "
                                                          "not the thesis's GSCN"));
        TRY(h5rec_attr_str(rec, "/", "gscn_preset", gr->arch.name));
        TRY(h5rec_attr_str(rec, "/", "gscn_mode", gr->mode == SIM_DETAILED ? "detailed" : "fast"));
        TRY(h5rec_attr_str(rec, "/", "gscn_gpu_baseline", "GTX 1080 Ti model (accel/gpu.h), dense backward"));
        TRY(h5rec_series(rec, "/gscn", N_GSCN_NCOLS, gscn_ncols, gscn_nunits));
        for (int j = 0; j < gr->n; j++) {
            char g[256];
            layer_group(gr->m, gr->layer[j], "gscn", g, sizeof g);
            TRY(h5rec_series(rec, g, N_GSCN_LCOLS, gscn_lcols, gscn_lunits));
        }
    }
    if (gr->save_left > 0) {
        TRY(h5rec_attr_str(rec, "/", "mask_format", "per conv layer /layers/NNN_NAME/masks/step_SSSSSSSS: int64 words of "
                                                     "48 mask bits each (accel/masks.h)"));
        for (int j = 0; j < gr->n; j++) {
            char g[256];
            const ConvGeom *cg = &gr->geom[j];
            layer_group(gr->m, gr->layer[j], "masks", g, sizeof g);
            TRY(h5rec_attr_i64(rec, g, "n", cg->n));
            TRY(h5rec_attr_i64(rec, g, "p", cg->p));
            TRY(h5rec_attr_i64(rec, g, "q", cg->q));
            TRY(h5rec_attr_i64(rec, g, "k", cg->k));
            TRY(h5rec_attr_i64(rec, g, "bits_per_word", MASK_BITS_PER_WORD));
        }
    }
fail:
    return rc;
}

static bool gscn_observes(const GscnRun *gr, long step) {
    return (gr->sim || gr->save_left > 0) && (step + 1) % gr->every == 0;
}

/* After an observed step: the rows, and the masks when every layer was sparse and some are still wanted. */
static int gscn_after_step(GscnRun *gr, long step) {
    int rc = 0;
    char g[256];
    bool all = true;
    double sim_ms = 0, gpu_ms = 0, dsum = 0, nsum = 0;
    for (int j = 0; j < gr->n; j++) all &= gr->seen[j];
    if (gr->sim) {
        for (int j = 0; j < gr->n; j++) {
            const SimPartStats *t = &gr->st[j].part[SIM_PART_TOTAL];
            bool ok = gr->seen[j];
            double us = ok ? t->cycles * arch_cycle_ns(&gr->arch) * 1e-3 : NAN;
            double r[N_GSCN_LCOLS] = {(double)step + 1, ok ? gr->density[j] : 1, ok ? gr->nnz[j] : NAN,
                                      ok ? t->cycles : NAN, ok ? t->compute_cycles : NAN,
                                      ok ? t->stall_mem_cycles : NAN, ok ? t->util_frac : NAN,
                                      ok ? t->imbalance : NAN, ok ? t->dram_bytes : NAN, us, gr->gpu_ms[j],
                                      ok && us > 0 ? gr->gpu_ms[j] * 1e3 / us : NAN};
            layer_group(gr->m, gr->layer[j], "gscn", g, sizeof g);
            TRY(h5rec_append(gr->rec, g, r));
            if (ok) sim_ms += us * 1e-3;
            gpu_ms += gr->gpu_ms[j];
            const ConvGeom *cg = &gr->geom[j];
            double numel = (double)cg->n * cg->p * cg->q * cg->k;
            dsum += (ok ? gr->density[j] : 1) * numel, nsum += numel;
        }
        double sp = all && sim_ms > 0 ? gpu_ms / sim_ms : NAN;
        double nr[N_GSCN_NCOLS] = {(double)step + 1, nsum > 0 ? dsum / nsum : NAN, all ? sim_ms : NAN, gpu_ms, sp,
                                   gr->wall_ms};
        TRY(h5rec_append(gr->rec, "/gscn", nr));
        if (all && gr->n > 0) {
            gr->last_speedup = sp, gr->last_sim_ms = sim_ms, gr->last_gpu_ms = gpu_ms, gr->last_step = step + 1;
        }
    }
    if (gr->save_left > 0 && all && gr->n > 0) {
        char path[320];
        for (int j = 0; j < gr->n; j++) {
            layer_group(gr->m, gr->layer[j], "masks", g, sizeof g);
            snprintf(path, sizeof path, "%s/step_%08ld", g, step + 1);
            uint64_t dims[1] = {gr->n_words[j]};
            TRY(h5rec_write_i64(gr->rec, path, 1, dims, gr->words[j]));
        }
        size_t len = strlen(gr->saved);
        snprintf(gr->saved + len, sizeof gr->saved - len, "%s%ld", len ? "," : "", step + 1);
        TRY(h5rec_attr_str(gr->rec, "/", "mask_steps", gr->saved));
        gr->save_left--;
    }
fail:
    for (int j = 0; j < gr->n; j++) gr->seen[j] = false;
    gr->wall_ms = 0;
    return rc;
}

/* ---- training ----------------------------------------------------------------------------------- */

int run_train(const RunConfig *cfg, const CfgExtra *extra, const RunHooks *hooks, RunSummary *sum) {
    int rc = 0;
    Dataset train = {0}, test = {0};
    ModelSpec m = {0};
    DnnlCtx ctx = {0};
    Net *net = NULL;
    Trainer tr = {0};
    Loader *ltrain = NULL, *ltest = NULL;
    H5Rec *rec = NULL;
    CkptMeta meta = {0};
    double *history = NULL;
    const Scheme *scheme = NULL;
    void *scheme_cfg = NULL;
    LayerEpoch *lep = NULL;
    GscnRun gr = {0};
    int n_sch = 0;
    char base[CFG_STR_MAX], part[CFG_STR_MAX + 16];
    bool record_started = false;
    memset(sum, 0, sizeof *sum);

    /* names */
    if (cfg->resume[0]) base_name(cfg->resume, base, sizeof base);
    else {
        char rp[CFG_STR_MAX];
        run_record_path(cfg, rp, sizeof rp);
        base_name(rp, base, sizeof base);
    }
    snprintf(sum->record, sizeof sum->record, "%s.h5", base);
    snprintf(sum->checkpoint, sizeof sum->checkpoint, "%s.ckpt.h5", base);
    snprintf(part, sizeof part, "%s.h5.part", base);
    if (file_exists(sum->record))
        FAIL(ERR_IO, "%s: a complete record of this run exists; move it away or choose another --out", sum->record);
    if (cfg->resume[0] && !file_exists(sum->checkpoint))
        FAIL(ERR_IO, "resume %s: no checkpoint %s (a run writes one at each epoch end)", cfg->resume, sum->checkpoint);

    /* schedule, data, model */
    Schedule sched = {.kind = SCHED_ONECYCLE, .lr = cfg->lr, .lr_min = cfg->lr_min, .gamma = cfg->gamma,
                      .warmup_epochs = cfg->warmup_epochs, .pct_start = cfg->pct_start,
                      .div_factor = cfg->div_factor, .final_div = cfg->final_div};
    TRY(sched_parse(&sched, cfg->schedule));
    TRY(load_data(cfg, &train, &test));
    TRY(model_build(&m, cfg->model, train.c, train.h, train.w, train.classes));
    omp_set_num_threads(cfg->threads);
    Augment aug;
    make_augment(cfg, &train, &aug);
    TRY(loader_create(&ltrain, &train, cfg->batch, true, &aug, (uint64_t)cfg->seed));
    TRY(loader_create(&ltest, &test, cfg->batch, false, &aug, (uint64_t)cfg->seed));
    long spe = loader_batches(ltrain);
    TRY(dnnl_ctx_init(&ctx));
    Rng rng;
    rng_init(&rng, (uint64_t)cfg->seed);
    TRY(net_create(&net, &m, cfg->batch, &ctx, &rng));
    TRY(trainer_init(&tr, net));
    scheme = scheme_find(cfg->scheme);
    if (!scheme) FAIL(ERR_CONFIG, "scheme '%s': unknown (resprop schemes lists them)", cfg->scheme);
    scheme_cfg = mem_calloc(1, scheme->cfg_size + 1);
    if (!scheme_cfg) FAIL(ERR_NOMEM, "run: out of memory");
    TRY(scheme_options(scheme, scheme_cfg, extra));
    NetBackend backend = {.sparse = strcmp(cfg->backend, "sparse") == 0 || strcmp(cfg->backend, "gscn") == 0};
    for (int c = 0; c < SPARSE_N_CLASSES; c++) backend.breakeven[c] = cfg->breakeven[c];
    TRY(net_attach_scheme(net, scheme, scheme_cfg, cfg->reuse, (uint64_t)cfg->seed, &backend));
    n_sch = net_scheme_n(net);
    TRY(gscn_init(&gr, cfg, &m, net));
    if (cfg->resume[0] && gr.save_left > 0) {
        log_msg(LOG_WARN, "save-masks: a resumed run saves no more masks (those saved before stay in the record)");
        gr.save_left = 0;
    }
    lep = mem_calloc((size_t)n_sch + 1, sizeof(LayerEpoch));
    if (!lep) FAIL(ERR_NOMEM, "run: out of memory");
    history = mem_calloc((size_t)cfg->epochs * N_EPOCH_COLS + 1, sizeof(double));
    if (!history) FAIL(ERR_NOMEM, "run: out of memory");

    /* record: fresh, or continued from the checkpoint */
    int start_epoch = 0;
    long step_rows = 0;
    TRY(make_parent_dirs(sum->record));
    if (cfg->resume[0]) {
        TRY(ckpt_load(sum->checkpoint, &tr, &meta));
        if (meta.n_cols != N_EPOCH_COLS || meta.n_rows != meta.epochs_done || meta.epochs_done > cfg->epochs)
            FAIL(ERR_FORMAT, "checkpoint %s: history of %ld x %d rows for %d epochs does not fit this run",
                 sum->checkpoint, meta.n_rows, meta.n_cols, meta.epochs_done);
        start_epoch = meta.epochs_done;
        if (meta.n_rows) memcpy(history, meta.history, (size_t)meta.n_rows * N_EPOCH_COLS * sizeof(double));
        if (file_exists(part)) {
            TRY(h5rec_reopen(&rec, sum->record));
            TRY(h5rec_truncate(rec, "/epoch", meta.n_rows));
            TRY(h5rec_truncate(rec, "/step", meta.step_rows));
            TRY(h5rec_truncate(rec, "/network", meta.n_rows));
            for (int j = 0; j < n_sch; j++) {
                char g[256];
                int li = net_scheme_stats(net, j)->layer;
                layer_group(&m, li, "scheme", g, sizeof g);
                TRY(h5rec_truncate(rec, g, meta.step_rows));
                layer_group(&m, li, "scheme_epoch", g, sizeof g);
                TRY(h5rec_truncate(rec, g, meta.n_rows));
            }
            TRY(gscn_record_header(&gr, rec));
            if (gr.sim) { /* one row per observed step, dense or not: a pure function of the step count */
                long keep = meta.steps_done / gr.every;
                TRY(h5rec_truncate(rec, "/gscn", keep));
                for (int j = 0; j < gr.n; j++) {
                    char g[256];
                    layer_group(&m, gr.layer[j], "gscn", g, sizeof g);
                    TRY(h5rec_truncate(rec, g, keep));
                }
            }
            step_rows = meta.step_rows;
        } else { /* the record is rebuilt from the checkpoint (per-step rows before it are lost) */
            TRY(h5rec_create(&rec, sum->record));
            TRY(record_header(rec, cfg, extra, &m, &train, &test, spe, &aug, net));
            TRY(gscn_record_header(&gr, rec));
            for (long r = 0; r < meta.n_rows; r++) TRY(h5rec_append(rec, "/epoch", history + r * N_EPOCH_COLS));
            TRY(h5rec_attr_str(rec, "/", "rebuilt_from_checkpoint", sum->checkpoint));
        }
        TRY(h5rec_attr_i64(rec, "/", "resumed_at_epoch", start_epoch));
        log_msg(LOG_INFO, "resuming %s at epoch %d (step %ld)", sum->record, start_epoch + 1, tr.step);
    } else {
        TRY(h5rec_create(&rec, sum->record));
        TRY(record_header(rec, cfg, extra, &m, &train, &test, spe, &aug, net));
        TRY(gscn_record_header(&gr, rec));
    }
    record_started = true;
    TRY(h5rec_flush(rec));

    log_msg(LOG_INFO, "train: %s on %s (%d train / %d test images %dx%dx%d, %d classes), %d epochs x %ld steps, batch %d",
            m.name, cfg->dataset, train.n, test.n, train.c, train.h, train.w, train.classes, cfg->epochs, spe, cfg->batch);
    double t_run = timer_now_ms(), train_ms = 0, wait0 = loader_wait_ms(ltrain);
    long total_steps = spe * cfg->epochs, steps_this_call = 0;
    int epochs_this_call = 0;
    for (int e = start_epoch; e < cfg->epochs; e++) {
        double t_epoch = timer_now_ms(), w_epoch = loader_wait_ms(ltrain), loss_sum = 0, lr = 0;
        double row_loss = 0, row_ms = 0; /* sums since the last /step row */
        long correct = 0, row_n = 0;
        memset(lep, 0, (size_t)n_sch * sizeof *lep);
        TRY(loader_start_epoch(ltrain, e));
        for (long s = 0; s < spe; s++) {
            int n_valid;
            double t0 = timer_now_ms();
            TRY(loader_next(ltrain, net_input(net), net_labels(net), &n_valid));
            if (n_valid != cfg->batch) FAIL(ERR_SHAPE, "run: training batch of %d, expected %d", n_valid, cfg->batch);
            long step = (long)e * spe + s;
            lr = sched_lr(&sched, (double)step / spe, cfg->epochs);
            SgdParams sp = {.lr = lr, .momentum = cfg->momentum, .weight_decay = cfg->weight_decay, .nesterov = cfg->nesterov};
            bool logged = (s + 1) % cfg->log_every == 0 || s + 1 == spe;
            net_scheme_step(net, step, e, s, spe, total_steps, logged);
            bool observed = gscn_observes(&gr, step);
            if (observed) net_scheme_observe(net, true);
            rc = trainer_step(&tr, &sp);
            if (observed) net_scheme_observe(net, false);
            if (rc == ERR_NUMERIC) {
                char msg[256];
                snprintf(msg, sizeof msg, "loss became %g at epoch %d step %ld/%ld (lr %g): the run diverged",
                         net_loss(net), e + 1, s + 1, spe, lr);
                log_msg(LOG_ERROR, "%s", msg);
                h5rec_fail(rec, msg);
                rec = NULL;
                goto fail;
            }
            TRY(rc);
            double step_ms = timer_now_ms() - t0 - gr.wall_ms, loss = net_loss(net); /* the simulator is not timed */
            if (observed) TRY(gscn_after_step(&gr, step));
            train_ms += step_ms;
            if (steps_this_call == 0) sum->first_loss = loss;
            steps_this_call++;
            loss_sum += loss;
            row_loss += loss, row_ms += step_ms, row_n++;
            for (int j = 0; j < n_sch; j++) { /* per conv layer: this step's density and FLOPs */
                const ConvSchemeStats *st = net_scheme_stats(net, j);
                ConvFlops f;
                step_conv_flops(net, st->layer, cfg->batch, st, &f);
                LayerEpoch *a = &lep[j];
                a->density += st->density, a->bwd_dense += f.bwd_dense, a->bwd_eff += flops_bwd_effective(&f);
                a->steps++, a->dense_steps += st->dense, a->sparse_steps += st->sparse_path;
                if (!isnan(st->cos_r_g)) a->cos_r_g += st->cos_r_g, a->n_cos_r_g++;
                if (!isnan(st->cos_g_ghat)) a->cos_g_ghat += st->cos_g_ghat, a->n_cos_g_ghat++;
                if (!isnan(st->cos_dw)) a->cos_dw += st->cos_dw, a->n_cos_dw++;
                if (logged) {
                    char g[256];
                    layer_group(&m, st->layer, "scheme", g, sizeof g);
                    double r[N_LSTEP_COLS] = {(double)step + 1, st->density, 1 - st->density, st->tau, st->cos_r_g,
                                              angle_deg(st->cos_r_g), st->cos_g_ghat, angle_deg(st->cos_g_ghat),
                                              st->cos_dw, f.bwd_dense, flops_bwd_effective(&f), st->sparse_path};
                    TRY(h5rec_append(rec, g, r));
                }
            }
            correct += net_correct(net, 1, cfg->batch);
            if ((s + 1) % cfg->log_every == 0 || s + 1 == spe) {
                double row[N_STEP_COLS] = {(double)step + 1, e + 1, row_loss / row_n, lr, row_ms / row_n};
                TRY(h5rec_append(rec, "/step", row));
                step_rows++;
                row_loss = row_ms = 0, row_n = 0;
                if (!cfg->quiet) {
                    double el = timer_now_ms() - t_run, per = el / steps_this_call;
                    fprintf(stderr, "epoch %d/%d step %ld/%ld loss %.4f acc %.3f lr %.4g %.0f img/s ETA %.0f s\n", e + 1,
                            cfg->epochs, s + 1, spe, loss_sum / (s + 1), (double)correct / ((s + 1) * cfg->batch), lr,
                            cfg->batch * 1000.0 * steps_this_call / train_ms,
                            per * (total_steps - step - 1) / 1000.0);
                }
            }
        }
        double tl, ta1, ta5;
        TRY(evaluate(net, ltest, &tl, &ta1, &ta5));
        double *row = history + (size_t)e * N_EPOCH_COLS;
        double vals[N_EPOCH_COLS] = {e + 1, loss_sum / spe, (double)correct / (spe * cfg->batch), tl, ta1, ta5, lr,
                                     (timer_now_ms() - t_epoch) / 1000.0, (loader_wait_ms(ltrain) - w_epoch) / 1000.0};
        memcpy(row, vals, sizeof vals);
        /* checkpoint first, then the record: a kill in between leaves a checkpoint that can rebuild it */
        ckpt_meta_deinit(&meta);
        meta = (CkptMeta){.epochs_done = e + 1, .steps_done = tr.step, .step_rows = step_rows, .n_cols = N_EPOCH_COLS,
                          .n_rows = e + 1, .history = NULL};
        meta.history = history; /* borrowed for the save */
        char *cfg_text = mem_alloc(1 << 16);
        if (!cfg_text) FAIL(ERR_NOMEM, "run: out of memory");
        config_to_text(&runconfig_table, cfg, extra, cfg_text, 1 << 16);
        meta.config_text = cfg_text;
        rc = ckpt_save(sum->checkpoint, &tr, &meta);
        meta.history = NULL;
        mem_free(cfg_text);
        meta.config_text = NULL;
        TRY(rc);
        TRY(h5rec_append(rec, "/epoch", row));
        double net_density = 0, net_fwd = 0, net_dense = 0, net_eff = 0;
        long layer_steps = 0, sparse_layer_steps = 0;
        for (int j = 0; j < n_sch; j++) {
            LayerEpoch *a = &lep[j];
            layer_steps += a->steps, sparse_layer_steps += a->sparse_steps;
            double k = a->steps ? (double)a->steps : 1;
            char g[256];
            layer_group(&m, net_scheme_stats(net, j)->layer, "scheme_epoch", g, sizeof g);
            double r[N_LEPOCH_COLS] = {e + 1, a->density / k, 1 - a->density / k,
                                       a->n_cos_r_g ? a->cos_r_g / a->n_cos_r_g : NAN,
                                       a->n_cos_g_ghat ? a->cos_g_ghat / a->n_cos_g_ghat : NAN,
                                       a->n_cos_dw ? a->cos_dw / a->n_cos_dw : NAN, a->bwd_dense / k, a->bwd_eff / k,
                                       a->bwd_eff > 0 ? a->bwd_dense / a->bwd_eff : NAN, (double)a->dense_steps,
                                       (double)a->sparse_steps};
            TRY(h5rec_append(rec, g, r));
            net_density += a->density / k * (a->bwd_dense / k);
            net_dense += a->bwd_dense / k, net_eff += a->bwd_eff / k;
        }
        {
            ConvFlops fl[1];
            for (int i = 1; i < m.n_layers; i++) { /* forward of convs and fc; fc backward stays dense */
                Layer *l = net_layer(net, i);
                LayerKind k = layer_spec(l)->kind;
                if (k == LAYER_CONV) flops_conv(layer_spec(l), layer_in_dims(l, 0), layer_out_dims_of(l), cfg->batch,
                                                (double)dims_count(layer_out_dims_of(l)), false, fl);
                else if (k == LAYER_FC) {
                    flops_fc(layer_spec(l), layer_in_dims(l, 0), layer_out_dims_of(l), cfg->batch, fl);
                    bool under_scheme = false; /* then its backward is in the per-layer sums already */
                    for (int j = 0; j < n_sch; j++) under_scheme |= net_scheme_stats(net, j)->layer == i;
                    if (!under_scheme) net_dense += fl->bwd_dense, net_eff += flops_bwd_effective(fl);
                } else continue;
                net_fwd += fl->fwd;
            }
            double red = net_eff > 0 ? net_dense / net_eff : NAN;
            double nr[N_NET_COLS] = {e + 1, net_dense > 0 ? net_density / net_dense : NAN, net_fwd, net_dense, net_eff,
                                     red, isnan(red) ? NAN : flops_amdahl(red, cfg->amdahl_p)};
            TRY(h5rec_append(rec, "/network", nr));
            if (strcmp(cfg->scheme, "dense") != 0)
                printf("epoch %d/%d: %s RS %.2f: mean density %.3f (reuse %.3f), backward FLOP reduction %.2fx, "
                       "Amdahl speedup %.2fx at p %.2f\n",
                       e + 1, cfg->epochs, cfg->scheme, cfg->reuse, nr[1], 1 - nr[1], red, nr[6], cfg->amdahl_p);
            if (!cfg->quiet && backend.sparse)
                printf("epoch %d/%d: backend sparse: %.1f%% of the layer-steps ran the sparse kernels, the rest oneDNN "
                       "(dense steps, or density above the break-even)\n",
                       e + 1, cfg->epochs, layer_steps ? 100.0 * sparse_layer_steps / layer_steps : 0.0);
            if (!cfg->quiet && gr.sim) {
                if (gr.last_step > 0)
                    printf("epoch %d/%d: backend gscn: latest simulated speedup %.2fx at step %ld (GSCN-sim %s conv backward "
                           "%.3f ms vs GPU model %.3f ms; the harness's own accelerator model)\n",
                           e + 1, cfg->epochs, gr.last_speedup, gr.last_step, gr.arch.name, gr.last_sim_ms,
                           gr.last_gpu_ms);
                else
                    printf("epoch %d/%d: backend gscn: no sparse step simulated yet (every %d steps; dense steps are not "
                           "simulated)\n", e + 1, cfg->epochs, gr.every);
            }
        }
        TRY(h5rec_flush(rec));
        printf("epoch %d/%d: train loss %.4f acc %.4f | test loss %.4f acc %.4f top-5 %.4f | lr %.4g | %.1f s (data wait %.2f s)\n",
               e + 1, cfg->epochs, vals[1], vals[2], tl, ta1, ta5, lr, vals[7], vals[8]);
        fflush(stdout);
        sum->epochs_done = e + 1;
        sum->final_train_loss = vals[1];
        sum->final_test_loss = tl;
        sum->final_test_acc = ta1;
        sum->final_test_acc5 = ta5;
        epochs_this_call++;
        if (hooks && hooks->stop_after_epochs && epochs_this_call >= hooks->stop_after_epochs && e + 1 < cfg->epochs) {
            h5rec_close(rec); /* as if killed: the .part and the checkpoint stay */
            rec = NULL;
            break;
        }
    }
    sum->wall_s = (timer_now_ms() - t_run) / 1000.0;
    sum->img_per_s = train_ms > 0 ? steps_this_call * cfg->batch * 1000.0 / train_ms : 0;
    sum->data_wait_frac = train_ms > 0 ? (loader_wait_ms(ltrain) - wait0) / train_ms : 0;
    if (rec) {
        TRY(h5rec_attr_f64(rec, "/", "img_per_s", sum->img_per_s));
        TRY(h5rec_attr_f64(rec, "/", "data_wait_frac", sum->data_wait_frac));
        H5Rec *r = rec;
        rec = NULL;
        TRY(h5rec_finish(r));
        sum->complete = true;
    } else {
        snprintf(sum->record, sizeof sum->record, "%s", part);
    }
fail:
    if (rc && rec) {
        char msg[128];
        snprintf(msg, sizeof msg, "run failed%s: %s", record_started ? "" : " while writing the header", err_str(rc));
        h5rec_fail(rec, msg);
    }
    ckpt_meta_deinit(&meta);
    gscn_deinit(&gr);
    mem_free(history);
    mem_free(lep);
    loader_destroy(ltrain);
    loader_destroy(ltest);
    trainer_deinit(&tr);
    net_destroy(net);
    mem_free(scheme_cfg);
    dnnl_ctx_deinit(&ctx);
    model_deinit(&m);
    dataset_deinit(&train);
    dataset_deinit(&test);
    return rc;
}

/* ---- resume and eval ---------------------------------------------------------------------------- */

static int config_from_text(const char *text, RunConfig *cfg, CfgExtra *extra) {
    int rc = 0;
    char path[] = "/tmp/resprop-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) FAIL(ERR_IO, "cannot create a temporary file for the checkpoint's config");
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        FAIL(ERR_IO, "cannot write %s", path);
    }
    fputs(text, f);
    fclose(f);
    TRY(config_defaults(&runconfig_table, cfg));
    memset(extra, 0, sizeof *extra);
    rc = config_load_ini(&runconfig_table, cfg, extra, path);
    unlink(path);
fail:
    return rc;
}

int run_config_for_resume(const char *resume, RunConfig *cfg, CfgExtra *extra) {
    int rc = 0;
    char base[CFG_STR_MAX], ck[CFG_STR_MAX + 16];
    CkptMeta meta = {0};
    base_name(resume, base, sizeof base);
    snprintf(ck, sizeof ck, "%s.ckpt.h5", base);
    TRY(ckpt_read_meta(ck, &meta));
    if (!meta.config_text) FAIL(ERR_FORMAT, "checkpoint %s: no config stored", ck);
    TRY(config_from_text(meta.config_text, cfg, extra));
    snprintf(cfg->resume, sizeof cfg->resume, "%s", resume);
fail:
    ckpt_meta_deinit(&meta);
    return rc;
}

int run_eval(const char *checkpoint, const char *data_dir, int threads, double *loss, double *acc1, double *acc5) {
    int rc = 0;
    RunConfig cfg;
    CfgExtra extra;
    CkptMeta meta = {0};
    Dataset train = {0}, test = {0};
    ModelSpec m = {0};
    DnnlCtx ctx = {0};
    Net *net = NULL;
    Trainer tr = {0};
    Loader *ld = NULL;
    TRY(ckpt_read_meta(checkpoint, &meta));
    if (!meta.config_text) FAIL(ERR_FORMAT, "checkpoint %s: no config stored", checkpoint);
    TRY(config_from_text(meta.config_text, &cfg, &extra));
    ckpt_meta_deinit(&meta);
    if (data_dir && data_dir[0]) snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data_dir);
    if (threads > 0) cfg.threads = threads;
    omp_set_num_threads(cfg.threads);
    TRY(load_data(&cfg, &train, &test));
    TRY(model_build(&m, cfg.model, train.c, train.h, train.w, train.classes));
    Augment aug;
    make_augment(&cfg, &train, &aug); /* normalisation statistics of the training set, as in training */
    TRY(loader_create(&ld, &test, cfg.batch, false, &aug, (uint64_t)cfg.seed));
    TRY(dnnl_ctx_init(&ctx));
    Rng rng;
    rng_init(&rng, (uint64_t)cfg.seed);
    TRY(net_create(&net, &m, cfg.batch, &ctx, &rng));
    TRY(trainer_init(&tr, net));
    TRY(ckpt_load(checkpoint, &tr, &meta));
    TRY(evaluate(net, ld, loss, acc1, acc5));
    printf("%s: %s on %s test (%d images) after %d epochs: loss %.4f, top-1 %.4f, top-5 %.4f\n", checkpoint, m.name,
           cfg.dataset, test.n, meta.epochs_done, *loss, *acc1, *acc5);
fail:
    ckpt_meta_deinit(&meta);
    loader_destroy(ld);
    trainer_deinit(&tr);
    net_destroy(net);
    dnnl_ctx_deinit(&ctx);
    model_deinit(&m);
    dataset_deinit(&train);
    dataset_deinit(&test);
    return rc;
}
