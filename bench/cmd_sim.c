/* `resprop sim`: GSCN-sim over every conv layer of a model (accel/sim.h) with a sparse gradient from one
 * of three sources -- a generated mask of one density (--density), generated masks of the per-layer mean
 * densities of a training record (--density-from), or the real masks a training run stored
 * (--masks, `train --save-masks`) -- next to the GPU baseline model's dense backward time of the same
 * layers (accel/gpu.h): a per-layer table, the network's conv backward time on both, the speedup, and
 * the simulator's own speed (simulated MACs per wall second). --arch.KEY=VALUE overrides preset keys.
 * --out writes an HDF5 record (kind "sim", results/SCHEMA.md). The accelerator is the harness's own
 * documented model, not the thesis's GSCN. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/arch.h"
#include "accel/gpu.h"
#include "accel/masks.h"
#include "accel/sim.h"
#include "bench/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/rng.h"
#include "core/sparse.h"
#include "core/timer.h"
#include "results/h5rec.h"

#define SIM_MAX_OVERRIDES 32

typedef struct {
    const char *model, *out, *preset;
    const char *density_from; /* --density-from RUN.h5 */
    const char *masks;        /* --masks RUN.h5 */
    Dims4 input;
    long batch, classes, seed, epoch, mask_step;
    double density, cluster;
    SimMaskPattern pattern;
    SimMode mode;
    bool have_input, have_batch, have_density, have_epoch, have_mask_step;
    int n_over;                                   /* --arch.KEY=VALUE overrides, in order */
    char over_key[SIM_MAX_OVERRIDES][64], over_val[SIM_MAX_OVERRIDES][256];
    char model_buf[64];                           /* --masks: the model named by the record */
} SimArgs;

/* One conv layer's result. */
typedef struct {
    int layer;          /* index in the model table */
    ConvGeom g;
    double density;     /* target density of the generated mask (--density, --density-from) */
    char mask_group[160]; /* --masks: the record's masks group of this layer */
    size_t nnz;         /* nonzeros of the mask simulated */
    SimLayerStats st;
    double sim_us;      /* simulated backward time at the preset clock (us) */
    double gpu_ms;      /* GPU model's dense backward (ms) */
    bool mem_bound;     /* DRAM time (dram_bytes / bw) exceeds the compute cycles */
} SimRow;

static void sim_usage(FILE *f) {
    fprintf(f,
            "usage: resprop sim --model NAME --input CxHxW --batch B --density D --preset NAME\n"
            "                   [--pattern uniform|clustered] [--cluster X] [--mode fast|detailed] [--seed S]\n"
            "                   [--classes K] [--arch.KEY=VALUE ...] [--out FILE.h5]\n"
            "       resprop sim --model NAME --input CxHxW --batch B --density-from RUN.h5 [--epoch E] --preset NAME ...\n"
            "       resprop sim --masks RUN.h5 [--mask-step K] --preset NAME ...\n"
            "  Simulates the sparse backward pass (bwd-data + bwd-weights with the sparse gradient S, plus\n"
            "  ReSprop's pre-ReSprop dense work) of every conv layer on GSCN-sim (accel/sim.h), with a random\n"
            "  mask of density D per layer (seeded per layer), and compares it with the GPU baseline model's\n"
            "  dense backward of the same layer (GTX 1080 Ti, accel/gpu.h). Prints a per-layer table and the\n"
            "  network's conv backward times and speedup. The accelerator is the harness's own, openly\n"
            "  documented model, not the thesis's (unpublished) GSCN.\n"
            "  --model NAME       one of:");
    for (int i = 0; model_names[i]; i++) fprintf(f, " %s", model_names[i]);
    fprintf(f,
            "\n  --input CxHxW      one sample's channels, height, width\n"
            "  --batch B          samples per step\n"
            "  --density D        share of the output gradient propagated, 0 < D <= 1 (0.1 = 90%% reuse)\n"
            "  --density-from R   instead of --density: per conv layer (by position) the mean density of S of\n"
            "                     epoch E (default the last) of training record R (/layers/NNN_NAME/scheme_epoch);\n"
            "                     the record must have as many conv layers as the model\n"
            "  --epoch E          with --density-from: the epoch (1-based) whose densities to use\n"
            "  --masks R          instead of --density: the real masks stored by `resprop train --save-masks`\n"
            "                     in record R; model, input, batch and classes default to the record's (if given\n"
            "                     they must match it)\n"
            "  --mask-step K      with --masks: the training step (1-based) whose masks to use (default the first\n"
            "                     saved; the record's mask_steps attribute lists them)\n"
            "  --pattern P        uniform (every entry independently) or clustered (whole-row clusters)\n"
            "                     (default uniform)\n"
            "  --cluster X        clustered only: 0 = uniform .. 1 = whole rows (default 1)\n"
            "  --preset NAME      accelerator preset (accel/presets/NAME.ini) or a path ending in .ini\n"
            "  --mode M           fast (memoised group costs, exact stalls) or detailed (cycle by cycle;\n"
            "                     small layers only) (default fast)\n"
            "  --seed S           mask seed; layer i uses the stream split from S with key i (default 1)\n"
            "  --classes K        output classes (default 1000 for inputs above 64 px, else 10)\n"
            "  --out FILE.h5      also write the record (kind \"sim\"; never overwrites a complete one)\n"
            "  --arch.KEY=VALUE   override one key of the preset (e.g. --arch.pes=128 --arch.dram-gbps=242),\n"
            "                     checked like a preset file; the record lists the overrides\n"
            "preset keys:\n");
    for (int i = 0; i < arch_table.n_keys; i++)
        if (strcmp(arch_table.keys[i].name, "name") != 0)
            fprintf(f, "  --arch.%-18s %s\n", arch_table.keys[i].name, arch_table.keys[i].help);
    fprintf(f, "presets:\n");
    arch_print_presets(NULL, f);
}

/* Moves the --arch.KEY=VALUE (or --arch.KEY VALUE) arguments of argv into a's override list and the
 * rest into rest[] (*n_rest); 0 or EXIT_BAD_INPUT after a message. */
static int sim_split_overrides(int argc, char **argv, SimArgs *a, char **rest, int *n_rest) {
    *n_rest = 0;
    for (int i = 0; i < argc; i++) {
        if (i == 0 || strncmp(argv[i], "--arch.", 7) != 0) {
            rest[(*n_rest)++] = argv[i];
            continue;
        }
        const char *kv = argv[i] + 7, *eq = strchr(kv, '='), *val;
        size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
        if (eq) val = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) val = argv[++i];
        else {
            log_msg(LOG_ERROR, "%s: expected --arch.KEY=VALUE", argv[i]);
            return EXIT_BAD_INPUT;
        }
        if (a->n_over >= SIM_MAX_OVERRIDES || klen == 0 || klen >= sizeof a->over_key[0] ||
            strlen(val) >= sizeof a->over_val[0]) {
            log_msg(LOG_ERROR, "%s: expected at most %d overrides --arch.KEY=VALUE with a known KEY", argv[i],
                    SIM_MAX_OVERRIDES);
            return EXIT_BAD_INPUT;
        }
        memcpy(a->over_key[a->n_over], kv, klen);
        a->over_key[a->n_over][klen] = '\0';
        snprintf(a->over_val[a->n_over], sizeof a->over_val[0], "%s", val);
        a->n_over++;
    }
    return 0;
}

/* Parses the options into *a; 0, or EXIT_BAD_INPUT after a message, or -1 after --help. */
static int sim_parse(int argc_all, char **argv_all, SimArgs *a, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"input", required_argument, 0, 'i'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"density", required_argument, 0, 'd'},
                                         {"pattern", required_argument, 0, 'P'},
                                         {"cluster", required_argument, 0, 'x'},
                                         {"preset", required_argument, 0, 'a'},
                                         {"mode", required_argument, 0, 'M'},
                                         {"seed", required_argument, 0, 's'},
                                         {"classes", required_argument, 0, 'c'},
                                         {"out", required_argument, 0, 'o'},
                                         {"density-from", required_argument, 0, 'F'},
                                         {"epoch", required_argument, 0, 'E'},
                                         {"masks", required_argument, 0, 'K'},
                                         {"mask-step", required_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->seed = 1, a->cluster = 1, a->pattern = SIM_MASK_UNIFORM, a->mode = SIM_FAST;
    int argc;
    if (sim_split_overrides(argc_all, argv_all, a, argv, &argc)) return EXIT_BAD_INPUT;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'm': a->model = optarg; break;
        case 'i':
            bad = cli_parse_input(optarg, &a->input);
            a->have_input = true;
            break;
        case 'b':
            bad = cli_parse_int("--batch", optarg, 1, 1 << 20, &a->batch);
            a->have_batch = true;
            break;
        case 'd':
            bad = cli_parse_double("--density", optarg, 0, 1, &a->density);
            if (!bad && !(a->density > 0)) {
                log_msg(LOG_ERROR, "--density '%s': expected a number in (0, 1]", optarg);
                bad = -1;
            }
            a->have_density = true;
            break;
        case 'P':
            if (strcmp(optarg, "uniform") == 0) a->pattern = SIM_MASK_UNIFORM;
            else if (strcmp(optarg, "clustered") == 0) a->pattern = SIM_MASK_CLUSTERED;
            else {
                log_msg(LOG_ERROR, "--pattern '%s': expected uniform or clustered", optarg);
                bad = -1;
            }
            break;
        case 'x': bad = cli_parse_double("--cluster", optarg, 0, 1, &a->cluster); break;
        case 'a': a->preset = optarg; break;
        case 'M':
            if (strcmp(optarg, "fast") == 0) a->mode = SIM_FAST;
            else if (strcmp(optarg, "detailed") == 0) a->mode = SIM_DETAILED;
            else {
                log_msg(LOG_ERROR, "--mode '%s': expected fast or detailed", optarg);
                bad = -1;
            }
            break;
        case 's': bad = cli_parse_int("--seed", optarg, 0, 0x7fffffffL, &a->seed); break;
        case 'c': bad = cli_parse_int("--classes", optarg, 1, 1000000, &a->classes); break;
        case 'o': a->out = optarg; break;
        case 'F': a->density_from = optarg; break;
        case 'E':
            bad = cli_parse_int("--epoch", optarg, 1, 1000000, &a->epoch);
            a->have_epoch = true;
            break;
        case 'K': a->masks = optarg; break;
        case 'S':
            bad = cli_parse_int("--mask-step", optarg, 1, 0x7fffffffffL, &a->mask_step);
            a->have_mask_step = true;
            break;
        case 'h': sim_usage(stdout); return -1;
        default: sim_usage(stderr); return EXIT_BAD_INPUT;
        }
        if (bad) return EXIT_BAD_INPUT;
    }
    int n_src = a->have_density + (a->density_from != NULL) + (a->masks != NULL);
    if (n_src > 1) {
        log_msg(LOG_ERROR, "sim: give one of --density, --density-from and --masks");
        return EXIT_BAD_INPUT;
    }
    if (a->have_epoch && !a->density_from) {
        log_msg(LOG_ERROR, "sim: --epoch goes with --density-from");
        return EXIT_BAD_INPUT;
    }
    if (a->have_mask_step && !a->masks) {
        log_msg(LOG_ERROR, "sim: --mask-step goes with --masks");
        return EXIT_BAD_INPUT;
    }
    bool from_rec = a->masks != NULL; /* model, input and batch may come from the record */
    const char *missing = !a->model && !from_rec ? "--model NAME" : !a->have_input && !from_rec ? "--input CxHxW"
                        : !a->have_batch && !from_rec ? "--batch B"
                        : n_src == 0 ? "--density D (or --density-from RUN.h5, or --masks RUN.h5)"
                        : !a->preset ? "--preset NAME" : NULL;
    if (missing) {
        log_msg(LOG_ERROR, "sim: %s is required (resprop sim --help)", missing);
        return EXIT_BAD_INPUT;
    }
    if (optind < argc) {
        log_msg(LOG_ERROR, "sim: unexpected argument '%s'", argv[optind]);
        return EXIT_BAD_INPUT;
    }
    if (a->classes == 0 && !from_rec) a->classes = a->input.h > 64 || a->input.w > 64 ? 1000 : 10;
    return 0;
}

/* Capacity for a mask of expected density d over rows x k entries: the mean plus 10 standard
 * deviations of the clustered worst case (whole rows: k * Binomial(rows, d)), capped at the full size. */
static size_t sim_mask_cap(const ConvGeom *g, double d) {
    double rows = (double)g->n * g->p * g->q, full = rows * g->k;
    double cap = d * full + 10.0 * g->k * sqrt(rows * d) + 1024;
    return cap >= full ? (size_t)full : (size_t)cap;
}

/* Generates the mask of one layer and simulates it into *row; adds the simulation's wall time. */
static int sim_run_layer(const SimArgs *a, const AccelArch *arch, const Rng *base, H5Reader *rd, SimRow *row,
                         double *sim_wall_ms) {
    int rc = 0;
    SparseGrad s = {0};
    ConvGeom g = row->g;
    double *words = NULL;
    if (a->masks) { /* the real mask of the training step */
        char col[32];
        long n_words;
        snprintf(col, sizeof col, "step_%08ld", a->mask_step);
        TRY(h5reader_column(rd, row->mask_group, col, &words, &n_words));
        size_t count = (size_t)g.n * g.p * g.q * g.k;
        long nb = mask_count_bits(words, (size_t)n_words, count);
        if (nb < 0 || (size_t)n_words != mask_n_words(g.n, g.p, g.q, g.k))
            FAIL(ERR_FORMAT, "%s: %s/%s: %ld words, expected %zu words of %d mask bits for (%d,%d,%d,%d)", a->masks,
                 row->mask_group, col, n_words, mask_n_words(g.n, g.p, g.q, g.k), MASK_BITS_PER_WORD, g.n, g.p, g.q,
                 g.k);
        TRY(sparse_init(&s, g.n, g.p, g.q, g.k, (size_t)nb));
        TRY(mask_unpack(&s, words, (size_t)n_words));
    } else {
        TRY(sparse_init(&s, g.n, g.p, g.q, g.k, sim_mask_cap(&g, row->density)));
        Rng r = rng_split(base, (uint64_t)row->layer);
        TRY(sim_make_mask(&s, row->density, a->pattern, a->cluster, &r));
    }
    row->nnz = s.nnz;
    double t0 = timer_now_ms();
    TRY(sim_layer(arch, g, &s, a->mode, &row->st));
    *sim_wall_ms += timer_now_ms() - t0;
    const SimPartStats *t = &row->st.part[SIM_PART_TOTAL];
    row->sim_us = t->cycles * arch_cycle_ns(arch) * 1e-3;
    row->mem_bound = t->dram_bytes / arch_dram_bytes_per_cycle(arch) > t->compute_cycles;
fail:
    mem_free(words);
    sparse_deinit(&s);
    return rc;
}

/* The conv layers of a training record, in order: "/layers/NNN_NAME" into *groups (mem.h; free with
 * mem_free), *n of them. ERR_FORMAT (logged) for a record without /layers or without conv layers. */
static int sim_record_convs(H5Reader *rd, const char *path, char (**groups)[128], int *n) {
    int rc = 0, n_all = 0;
    char **all = NULL, kind[32];
    *groups = NULL;
    *n = 0;
    if (h5reader_list_groups(rd, "/layers", &all, &n_all))
        FAIL(ERR_FORMAT, "%s: no /layers group: expected a training record (resprop train)", path);
    *groups = mem_calloc((size_t)n_all + 1, sizeof **groups);
    if (!*groups) FAIL(ERR_NOMEM, "sim: out of memory");
    for (int i = 0; i < n_all; i++) {
        char g[128];
        snprintf(g, sizeof g, "/layers/%.100s", all[i]);
        if (h5reader_attr_str(rd, g, "kind", kind, sizeof kind) == 0 && strcmp(kind, "conv") == 0)
            memcpy((*groups)[(*n)++], g, sizeof g);
    }
    if (*n == 0) FAIL(ERR_FORMAT, "%s: no conv layers under /layers: expected a training record (resprop train)", path);
fail:
    h5reader_free_names(all, n_all);
    if (rc) {
        mem_free(*groups);
        *groups = NULL;
        *n = 0;
    }
    return rc;
}

/* --density-from / --masks: fills rows[j].density or rows[j].mask_group from the record's j-th conv
 * layer (and a->mask_step); checks the counts and shapes. ERR_FORMAT / ERR_IO (logged) on a mismatch. */
static int sim_rows_from_record(SimArgs *a, H5Reader *rd, const ModelSpec *m, SimRow *rows, int n_rows) {
    int rc = 0, n_conv = 0;
    char (*groups)[128] = NULL;
    double *col = NULL, *ep = NULL;
    const char *path = a->masks ? a->masks : a->density_from;
    TRY(sim_record_convs(rd, path, &groups, &n_conv));
    if (n_conv != n_rows)
        FAIL(ERR_FORMAT, "%s: %d conv layers in the record, but model %s has %d: expected the same network (layers "
             "are matched by position)", path, n_conv, m->name, n_rows);
    if (a->masks) {
        char steps[1024];
        if (h5reader_attr_str(rd, "/", "mask_steps", steps, sizeof steps) || !steps[0])
            FAIL(ERR_FORMAT, "%s: no masks in the record (attribute mask_steps): expected a record of `resprop train "
                 "--save-masks N` on backend sparse or gscn", path);
        bool found = false;
        long first = 0;
        for (char *tok = steps; *tok;) {
            long v = strtol(tok, &tok, 10);
            if (!first) first = v;
            found |= a->have_mask_step && v == a->mask_step;
            if (*tok == ',') tok++;
            else if (*tok) break;
        }
        if (!a->have_mask_step) a->mask_step = first;
        else if (!found) FAIL(ERR_FORMAT, "%s: no masks of step %ld: the record holds steps %s", path, a->mask_step,
                              steps);
    }
    for (int j = 0; j < n_rows; j++) {
        char g[160];
        if (a->masks) {
            snprintf(g, sizeof g, "%s/masks", groups[j]);
            double d[4];
            static const char *const dn[] = {"n", "p", "q", "k"};
            for (int i = 0; i < 4; i++)
                if (h5reader_attr_f64(rd, g, dn[i], &d[i]))
                    FAIL(ERR_FORMAT, "%s: %s has no shape attribute '%s'", path, g, dn[i]);
            const ConvGeom *cg = &rows[j].g;
            if (d[0] != cg->n || d[1] != cg->p || d[2] != cg->q || d[3] != cg->k)
                FAIL(ERR_FORMAT, "%s: %s: masks of shape (%g,%g,%g,%g), but model layer %s has (%d,%d,%d,%d) at batch "
                     "%d", path, g, d[0], d[1], d[2], d[3], m->layers[rows[j].layer].name, cg->n, cg->p, cg->q, cg->k,
                     cg->n);
            snprintf(rows[j].mask_group, sizeof rows[j].mask_group, "%s", g);
            continue;
        }
        long n = 0, ne = 0;
        snprintf(g, sizeof g, "%s/scheme_epoch", groups[j]);
        if (h5reader_column(rd, g, "density", &col, &n) || h5reader_column(rd, g, "epoch", &ep, &ne))
            FAIL(ERR_FORMAT, "%s: %s: no density per epoch (a record of a run with a scheme, e.g. --scheme resprop?)",
                 path, g);
        if (n > ne) n = ne;
        if (n == 0) FAIL(ERR_FORMAT, "%s: %s holds no epoch: expected a record with at least one complete epoch", path, g);
        long r = n - 1;
        if (a->have_epoch) {
            for (r = 0; r < n && ep[r] != (double)a->epoch; r++) {}
            if (r == n) FAIL(ERR_FORMAT, "%s: %s: no epoch %ld (the record holds epochs 1..%g)", path, g, a->epoch,
                             ep[n - 1]);
        }
        if (!(col[r] >= 0 && col[r] <= 1))
            FAIL(ERR_FORMAT, "%s: %s: density %g at epoch %g: expected a number in [0, 1]", path, g, col[r], ep[r]);
        rows[j].density = col[r];
        if (j == 0) a->epoch = (long)ep[r];
        mem_free(col);
        mem_free(ep);
        col = ep = NULL;
    }
fail:
    mem_free(col);
    mem_free(ep);
    mem_free(groups);
    return rc;
}

/* --masks: model, input, batch and classes from the record's root attributes; given ones must match. */
static int sim_args_from_masks(SimArgs *a, H5Reader *rd) {
    int rc = 0;
    char input[64], model[64];
    double batch, classes;
    if (h5reader_attr_str(rd, "/", "model", model, sizeof model) ||
        h5reader_attr_str(rd, "/", "input", input, sizeof input) || h5reader_attr_f64(rd, "/", "batch", &batch) ||
        h5reader_attr_f64(rd, "/", "classes", &classes))
        FAIL(ERR_FORMAT, "%s: no model, input, batch or classes attribute: expected a training record", a->masks);
    Dims4 in;
    if (cli_parse_input(input, &in)) FAIL(ERR_FORMAT, "%s: attribute input '%s': expected CxHxW", a->masks, input);
    if (a->model && strcmp(a->model, model) != 0)
        FAIL(ERR_CONFIG, "--model %s: the masks in %s are of model %s", a->model, a->masks, model);
    if (a->have_input && (in.c != a->input.c || in.h != a->input.h || in.w != a->input.w))
        FAIL(ERR_CONFIG, "--input: the masks in %s are of input %s", a->masks, input);
    if (a->have_batch && a->batch != (long)batch)
        FAIL(ERR_CONFIG, "--batch %ld: the masks in %s are of batch %g", a->batch, a->masks, batch);
    if (a->classes && a->classes != (long)classes)
        FAIL(ERR_CONFIG, "--classes %ld: the masks in %s are of %g classes", a->classes, a->masks, classes);
    snprintf(a->model_buf, sizeof a->model_buf, "%s", model);
    a->model = a->model_buf;
    a->input = in, a->have_input = true;
    a->batch = (long)batch, a->have_batch = true;
    a->classes = (long)classes;
fail:
    return rc;
}

/* The record: identity attributes, one dataset per sim stat (one entry per conv layer), GPU times. */
static int sim_write_record(const SimArgs *a, const AccelArch *arch, const char *overrides, const ModelSpec *m,
                            const SimRow *rows, int n_rows, double sim_ms, double gpu_conv_ms, const GpuNetTime *gnet,
                            double sim_macs, double wall_ms) {
    int rc = 0;
    H5Rec *rec = NULL;
    char buf[1200], path[128];
    uint64_t dims[1] = {(uint64_t)n_rows};
    double *v = mem_calloc((size_t)n_rows, sizeof *v);
    int64_t *li = mem_calloc((size_t)n_rows, sizeof *li);
    size_t cap = (size_t)n_rows * (LAYER_NAME_MAX + 1) + 1, used = 0;
    char *names = mem_calloc(cap, 1);
    if (!v || !li || !names) FAIL(ERR_NOMEM, "sim: out of memory");
    TRY(h5rec_create(&rec, a->out));
    TRY(h5rec_attr_str(rec, "/", "kind", "sim"));
    TRY(h5rec_attr_str(rec, "/", "version", resprop_version));
    TRY(h5rec_attr_str(rec, "/", "accelerator", "GSCN-sim: the harness's own documented model (accel/sim.h), "
                                                 "not the thesis's GSCN"));
    TRY(h5rec_attr_str(rec, "/", "model", m->name));
    snprintf(buf, sizeof buf, "%dx%dx%d", a->input.c, a->input.h, a->input.w);
    TRY(h5rec_attr_str(rec, "/", "input", buf));
    TRY(h5rec_attr_i64(rec, "/", "classes", a->classes));
    TRY(h5rec_attr_i64(rec, "/", "batch", a->batch));
    if (a->masks) snprintf(buf, sizeof buf, "masks:%s step %ld", a->masks, a->mask_step);
    else if (a->density_from) snprintf(buf, sizeof buf, "density-from:%s", a->density_from);
    else snprintf(buf, sizeof buf, "density");
    TRY(h5rec_attr_str(rec, "/", "mask_source", buf));
    double nnz = 0, numel = 0;
    for (int j = 0; j < n_rows; j++) nnz += (double)rows[j].nnz, numel += (double)rows[j].g.n * rows[j].g.p * rows[j].g.q * rows[j].g.k;
    TRY(h5rec_attr_f64(rec, "/", "density", a->density_from || a->masks ? nnz / numel : a->density));
    if (a->density_from) TRY(h5rec_attr_i64(rec, "/", "density_epoch", a->epoch));
    if (a->masks) TRY(h5rec_attr_i64(rec, "/", "mask_step", a->mask_step));
    TRY(h5rec_attr_str(rec, "/", "arch_overrides", overrides[0] ? overrides : "none"));
    TRY(h5rec_attr_str(rec, "/", "pattern", a->pattern == SIM_MASK_CLUSTERED ? "clustered" : "uniform"));
    TRY(h5rec_attr_f64(rec, "/", "cluster", a->pattern == SIM_MASK_CLUSTERED ? a->cluster : 0));
    TRY(h5rec_attr_i64(rec, "/", "seed", a->seed));
    TRY(h5rec_attr_str(rec, "/", "mode", a->mode == SIM_DETAILED ? "detailed" : "fast"));
    TRY(h5rec_attr_str(rec, "/", "preset", arch->name));
    TRY(h5rec_attr_f64(rec, "/", "clock_ghz", arch->clock_ghz));
    TRY(h5rec_attr_i64(rec, "/", "pes", arch->pes));
    TRY(h5rec_attr_i64(rec, "/", "mults_per_pe", arch->mults_per_pe));
    TRY(h5rec_attr_i64(rec, "/", "acc_banks_per_pe", arch->acc_banks_per_pe));
    TRY(h5rec_attr_i64(rec, "/", "grad_buf_kib", arch->grad_buf_kib));
    TRY(h5rec_attr_i64(rec, "/", "weight_buf_kib", arch->weight_buf_kib));
    TRY(h5rec_attr_i64(rec, "/", "act_buf_kib", arch->act_buf_kib));
    TRY(h5rec_attr_i64(rec, "/", "psum_buf_kib", arch->psum_buf_kib));
    TRY(h5rec_attr_f64(rec, "/", "dram_gbps", arch->dram_gbps));
    TRY(h5rec_attr_f64(rec, "/", "peak_macs_per_s", arch_peak_macs_per_s(arch)));
    TRY(h5rec_attr_str(rec, "/", "gpu_baseline", "GTX 1080 Ti model (accel/gpu.h), dense backward"));
    TRY(h5rec_attr_f64(rec, "/", "sim_conv_ms", sim_ms));
    TRY(h5rec_attr_f64(rec, "/", "gpu_conv_ms", gpu_conv_ms));
    TRY(h5rec_attr_f64(rec, "/", "gpu_conv_fc_ms", gnet->conv_ms));
    TRY(h5rec_attr_f64(rec, "/", "gpu_total_ms", gnet->total_ms));
    TRY(h5rec_attr_f64(rec, "/", "speedup", sim_ms > 0 ? gpu_conv_ms / sim_ms : 0));
    TRY(h5rec_attr_f64(rec, "/", "sim_macs", sim_macs));
    TRY(h5rec_attr_f64(rec, "/", "sim_wall_ms", wall_ms));
    TRY(h5rec_attr_f64(rec, "/", "sim_macs_per_s", wall_ms > 0 ? sim_macs / (wall_ms * 1e-3) : 0));

    for (int j = 0; j < n_rows; j++) {
        li[j] = rows[j].layer;
        used += (size_t)snprintf(names + used, cap - used, "%s%s", used ? "," : "", m->layers[rows[j].layer].name);
    }
    TRY(h5rec_write_i64(rec, "/per_layer/layer", 1, dims, li));
    TRY(h5rec_attr_str(rec, "/per_layer/layer", "unit", "1"));
    TRY(h5rec_attr_str(rec, "/per_layer", "layer_names", names));
    for (int i = 0; i < sim_n_stats; i++) {
        for (int j = 0; j < n_rows; j++) v[j] = sim_stat_value(&rows[j].st, i);
        snprintf(path, sizeof path, "/per_layer/%s", sim_stats[i].name);
        TRY(h5rec_write_f64(rec, path, 1, dims, v));
        TRY(h5rec_attr_str(rec, path, "unit", sim_stats[i].unit));
        TRY(h5rec_attr_str(rec, path, "description", sim_stats[i].description));
    }
    /* (name, unit, value of row j) for the derived per-layer columns */
    for (int c = 0; c < 5; c++) {
        static const char *const cn[] = {"nnz", "sim_us", "gpu_ms", "speedup", "density"};
        static const char *const cu[] = {"1", "us", "ms", "ratio", "frac"};
        for (int j = 0; j < n_rows; j++) {
            const ConvGeom *g = &rows[j].g;
            v[j] = c == 0 ? (double)rows[j].nnz : c == 1 ? rows[j].sim_us : c == 2 ? rows[j].gpu_ms
                 : c == 3 ? (rows[j].sim_us > 0 ? rows[j].gpu_ms * 1e3 / rows[j].sim_us : 0)
                 : (double)rows[j].nnz / ((double)g->n * g->p * g->q * g->k);
        }
        snprintf(path, sizeof path, "/per_layer/%s", cn[c]);
        TRY(h5rec_write_f64(rec, path, 1, dims, v));
        TRY(h5rec_attr_str(rec, path, "unit", cu[c]));
    }
    rc = h5rec_finish(rec);
    rec = NULL;
    TRY(rc);
fail:
    if (rec) h5rec_fail(rec, "sim: writing the record failed");
    mem_free(names);
    mem_free(li);
    mem_free(v);
    return rc;
}

int cmd_sim(int argc, char **argv) {
    static SimArgs a; /* large (the override texts) */
    char **rest = mem_calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) {
        log_msg(LOG_ERROR, "sim: out of memory");
        return EXIT_RUN_FAILED;
    }
    int rc = sim_parse(argc, argv, &a, rest);
    mem_free(rest);
    if (rc) return rc < 0 ? 0 : rc;
    int exit_code = EXIT_RUN_FAILED, n_rows = 0;
    ModelSpec m = {0};
    AccelArch arch;
    GpuModel gpu;
    GpuNetTime gnet;
    LayerCount *counts = NULL;
    GpuLayerTime *gl = NULL;
    SimRow *rows = NULL;
    H5Reader *rd = NULL;
    char overrides[2048] = "";
    const char *rec_path = a.masks ? a.masks : a.density_from;
    if (rec_path && h5reader_open(&rd, rec_path)) {
        exit_code = EXIT_BAD_INPUT;
        goto done;
    }
    if ((a.masks && sim_args_from_masks(&a, rd)) || arch_load_preset(&arch, a.preset)) {
        exit_code = EXIT_BAD_INPUT;
        goto done;
    }
    for (int i = 0; i < a.n_over; i++) {
        if (arch_override(&arch, a.over_key[i], a.over_val[i])) {
            exit_code = EXIT_BAD_INPUT;
            goto done;
        }
        size_t len = strlen(overrides);
        snprintf(overrides + len, sizeof overrides - len, "%s%s=%s", i ? "," : "", a.over_key[i], a.over_val[i]);
    }
    if (model_build(&m, a.model, a.input.c, a.input.h, a.input.w, (int)a.classes)) {
        exit_code = EXIT_BAD_INPUT;
        goto done;
    }
    counts = mem_calloc((size_t)m.n_layers, sizeof *counts);
    gl = mem_calloc((size_t)m.n_layers, sizeof *gl);
    rows = mem_calloc((size_t)m.n_layers, sizeof *rows);
    if (!counts || !gl || !rows) {
        log_msg(LOG_ERROR, "sim: out of memory");
        goto done;
    }
    gpu_model_default(&gpu);
    if (model_count(&m, counts, NULL, NULL) || gpu_model_network(&gpu, &m, (int)a.batch, NULL, gl, &gnet)) goto done;

    for (int i = 0; i < m.n_layers; i++) {
        const LayerSpec *s = &m.layers[i];
        if (s->kind != LAYER_CONV) continue;
        Dims4 in = counts[s->in[0]].out;
        rows[n_rows] = (SimRow){.layer = i,
                                .g = sparse_geom((int)a.batch, in.c, in.h, in.w, s->out_c, s->kh, s->kw,
                                                 s->stride, s->pad),
                                .gpu_ms = gl[i].ms, .density = a.density};
        n_rows++;
    }
    if (rd && sim_rows_from_record(&a, rd, &m, rows, n_rows)) {
        exit_code = EXIT_BAD_INPUT;
        goto done;
    }

    Rng base;
    rng_init(&base, (uint64_t)a.seed);
    double sim_wall_ms = 0, t_all = timer_now_ms();
    for (int j = 0; j < n_rows; j++) {
        rc = sim_run_layer(&a, &arch, &base, rd, &rows[j], &sim_wall_ms);
        if (rc) {
            log_msg(LOG_ERROR, "sim: layer %s failed: %s", m.layers[rows[j].layer].name, err_str(rc));
            if (rc == ERR_FORMAT) exit_code = EXIT_BAD_INPUT;
            goto done;
        }
    }
    double all_wall_ms = timer_now_ms() - t_all;

    char cluster_txt[32] = "", source[1200];
    if (a.pattern == SIM_MASK_CLUSTERED) snprintf(cluster_txt, sizeof cluster_txt, "%g", a.cluster);
    char pattern_txt[64];
    snprintf(pattern_txt, sizeof pattern_txt, "%s%s%s", a.pattern == SIM_MASK_CLUSTERED ? "clustered" : "uniform",
             a.pattern == SIM_MASK_CLUSTERED ? ", cluster " : "", cluster_txt);
    if (a.masks) snprintf(source, sizeof source, "the real masks of training step %ld from %s", a.mask_step, a.masks);
    else if (a.density_from)
        snprintf(source, sizeof source, "generated masks (%s) of the per-layer mean densities of epoch %ld from %s",
                 pattern_txt, a.epoch, a.density_from);
    else snprintf(source, sizeof source, "density %g (%s)", a.density, pattern_txt);
    printf("sim: %s, input %dx%dx%d, batch %ld, %s, preset %s%s%s (%d PEs x %d mults, %g GHz, %g GB/s), %s mode, "
           "seed %ld\n",
           m.name, a.input.c, a.input.h, a.input.w, a.batch, source, arch.name, a.n_over ? " with " : "", overrides,
           arch.pes, arch.mults_per_pe, arch.clock_ghz, arch.dram_gbps, a.mode == SIM_DETAILED ? "detailed" : "fast",
           a.seed);
    printf("%-4s %-26s %-32s %10s %11s %6s %6s %4s %10s %8s\n", "#", "layer", "in -> out  kernel/stride", "nonzeros",
           "sim us", "util", "imbal", "mem", "gpu us", "speedup");
    double sim_us = 0, sim_macs = 0, gpu_conv_ms = 0;
    for (int j = 0; j < n_rows; j++) {
        const SimRow *r = &rows[j];
        const LayerSpec *s = &m.layers[r->layer];
        const SimPartStats *t = &r->st.part[SIM_PART_TOTAL];
        char shape[64];
        snprintf(shape, sizeof shape, "%dx%dx%d -> %dx%dx%d %dx%d/%d", r->g.c, r->g.h, r->g.w, r->g.k, r->g.p,
                 r->g.q, s->kh, s->kw, s->stride);
        printf("%-4d %-26s %-32s %10zu %11.2f %6.3f %6.3f %4s %10.2f %7.2fx\n", r->layer, s->name, shape, r->nnz,
               r->sim_us, t->util_frac, t->imbalance, r->mem_bound ? "yes" : "no", r->gpu_ms * 1e3,
               r->sim_us > 0 ? r->gpu_ms * 1e3 / r->sim_us : 0);
        sim_us += r->sim_us;
        sim_macs += t->macs;
        gpu_conv_ms += r->gpu_ms;
    }
    double sim_ms = sim_us * 1e-3, speedup = sim_ms > 0 ? gpu_conv_ms / sim_ms : 0;
    printf("columns: sim us = simulated backward (bwd-data + bwd-weights + pre-ReSprop work) at %g GHz; util = MACs "
           "/ (cycles x multipliers); imbal = max/mean products per PE; mem = DRAM time > compute cycles; gpu us = "
           "GPU model dense backward of the layer\n",
           arch.clock_ghz);
    printf("\nnetwork (%d conv layers): simulated conv backward %.3f ms, GPU conv backward %.3f ms (the same conv "
           "layers only, like for like)\n",
           n_rows, sim_ms, gpu_conv_ms);
    printf("GPU model for reference: conv + fc backward %.3f ms (GpuNetTime.conv_ms; fc stays on the GPU, not "
           "simulated), whole dense backward %.3f ms (GpuNetTime.total_ms)\n",
           gnet.conv_ms, gnet.total_ms);
    printf("speedup (GPU conv backward / simulated conv backward): %.2fx\n", speedup);
    printf("simulator: %.4g MACs simulated in %.3f s of simulation (%.4g MACs/s; %.3f s including mask generation), "
           "single-threaded\n",
           sim_macs, sim_wall_ms * 1e-3, sim_wall_ms > 0 ? sim_macs / (sim_wall_ms * 1e-3) : 0, all_wall_ms * 1e-3);
    printf("note: the accelerator is GSCN-sim, the harness's own openly documented model (accel/sim.h), not the "
           "thesis's GSCN; the GPU is a model of a GTX 1080 Ti with cuDNN 5.1 (accel/gpu.h)\n");

    if (a.out) {
        rc = sim_write_record(&a, &arch, overrides, &m, rows, n_rows, sim_ms, gpu_conv_ms, &gnet, sim_macs, sim_wall_ms);
        if (rc) {
            exit_code = rc == ERR_IO || rc == ERR_CONFIG ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
            goto done;
        }
        printf("record: %s\n", a.out);
    }
    exit_code = 0;
done:
    h5reader_close(rd);
    mem_free(rows);
    mem_free(gl);
    mem_free(counts);
    model_deinit(&m);
    return exit_code;
}
