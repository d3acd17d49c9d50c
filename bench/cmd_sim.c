/* `resprop sim`: GSCN-sim over every conv layer of a model with a generated sparse gradient of a given
 * density (accel/sim.h), next to the GPU baseline model's dense backward time of the same layers
 * (accel/gpu.h): a per-layer table, the network's conv backward time on both, the speedup, and the
 * simulator's own speed (simulated MACs per wall second). --out writes an HDF5 record (kind "sim",
 * results/SCHEMA.md). The accelerator is the harness's own documented model, not the thesis's GSCN.
 * Only the --density source for now; --masks RUN.h5 and --density-from RUN.h5 come later. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/arch.h"
#include "accel/gpu.h"
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

typedef struct {
    const char *model, *out, *preset;
    Dims4 input;
    long batch, classes, seed;
    double density, cluster;
    SimMaskPattern pattern;
    SimMode mode;
    bool have_input, have_batch, have_density;
} SimArgs;

/* One conv layer's result. */
typedef struct {
    int layer;          /* index in the model table */
    ConvGeom g;
    size_t nnz;         /* nonzeros of the generated mask */
    SimLayerStats st;
    double sim_us;      /* simulated backward time at the preset clock (us) */
    double gpu_ms;      /* GPU model's dense backward (ms) */
    bool mem_bound;     /* DRAM time (dram_bytes / bw) exceeds the compute cycles */
} SimRow;

static void sim_usage(FILE *f) {
    fprintf(f,
            "usage: resprop sim --model NAME --input CxHxW --batch B --density D --preset NAME\n"
            "                   [--pattern uniform|clustered] [--cluster X] [--mode fast|detailed] [--seed S]\n"
            "                   [--classes K] [--out FILE.h5]\n"
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
            "  --pattern P        uniform (every entry independently) or clustered (whole-row clusters)\n"
            "                     (default uniform)\n"
            "  --cluster X        clustered only: 0 = uniform .. 1 = whole rows (default 1)\n"
            "  --preset NAME      accelerator preset (accel/presets/NAME.ini) or a path ending in .ini\n"
            "  --mode M           fast (memoised group costs, exact stalls) or detailed (cycle by cycle;\n"
            "                     small layers only) (default fast)\n"
            "  --seed S           mask seed; layer i uses the stream split from S with key i (default 1)\n"
            "  --classes K        output classes (default 1000 for inputs above 64 px, else 10)\n"
            "  --out FILE.h5      also write the record (kind \"sim\"; never overwrites a complete one)\n"
            "presets:\n");
    arch_print_presets(NULL, f);
}

/* Parses the options into *a; 0, or EXIT_BAD_INPUT after a message, or -1 after --help. */
static int sim_parse(int argc, char **argv, SimArgs *a) {
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
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (SimArgs){.seed = 1, .cluster = 1, .pattern = SIM_MASK_UNIFORM, .mode = SIM_FAST};
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
        case 'h': sim_usage(stdout); return -1;
        default: sim_usage(stderr); return EXIT_BAD_INPUT;
        }
        if (bad) return EXIT_BAD_INPUT;
    }
    const char *missing = !a->model ? "--model NAME" : !a->have_input ? "--input CxHxW"
                        : !a->have_batch ? "--batch B" : !a->have_density ? "--density D"
                        : !a->preset ? "--preset NAME" : NULL;
    if (missing) {
        log_msg(LOG_ERROR, "sim: %s is required (resprop sim --help)", missing);
        return EXIT_BAD_INPUT;
    }
    if (optind < argc) {
        log_msg(LOG_ERROR, "sim: unexpected argument '%s'", argv[optind]);
        return EXIT_BAD_INPUT;
    }
    if (a->classes == 0) a->classes = a->input.h > 64 || a->input.w > 64 ? 1000 : 10;
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
static int sim_run_layer(const SimArgs *a, const AccelArch *arch, const Rng *base, SimRow *row, double *sim_wall_ms) {
    int rc = 0;
    SparseGrad s = {0};
    ConvGeom g = row->g;
    TRY(sparse_init(&s, g.n, g.p, g.q, g.k, sim_mask_cap(&g, a->density)));
    Rng r = rng_split(base, (uint64_t)row->layer);
    TRY(sim_make_mask(&s, a->density, a->pattern, a->cluster, &r));
    row->nnz = s.nnz;
    double t0 = timer_now_ms();
    TRY(sim_layer(arch, g, &s, a->mode, &row->st));
    *sim_wall_ms += timer_now_ms() - t0;
    const SimPartStats *t = &row->st.part[SIM_PART_TOTAL];
    row->sim_us = t->cycles * arch_cycle_ns(arch) * 1e-3;
    row->mem_bound = t->dram_bytes / arch_dram_bytes_per_cycle(arch) > t->compute_cycles;
fail:
    sparse_deinit(&s);
    return rc;
}

/* The record: identity attributes, one dataset per sim stat (one entry per conv layer), GPU times. */
static int sim_write_record(const SimArgs *a, const AccelArch *arch, const ModelSpec *m, const SimRow *rows,
                            int n_rows, double sim_ms, double gpu_conv_ms, const GpuNetTime *gnet, double sim_macs,
                            double wall_ms) {
    int rc = 0;
    H5Rec *rec = NULL;
    char buf[96], path[128];
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
    TRY(h5rec_attr_str(rec, "/", "mask_source", "density"));
    TRY(h5rec_attr_f64(rec, "/", "density", a->density));
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
    for (int c = 0; c < 4; c++) {
        static const char *const cn[] = {"nnz", "sim_us", "gpu_ms", "speedup"};
        static const char *const cu[] = {"1", "us", "ms", "ratio"};
        for (int j = 0; j < n_rows; j++)
            v[j] = c == 0 ? (double)rows[j].nnz : c == 1 ? rows[j].sim_us : c == 2 ? rows[j].gpu_ms
                 : rows[j].sim_us > 0 ? rows[j].gpu_ms * 1e3 / rows[j].sim_us : 0;
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
    SimArgs a;
    int rc = sim_parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    int exit_code = EXIT_RUN_FAILED, n_rows = 0;
    ModelSpec m = {0};
    AccelArch arch;
    GpuModel gpu;
    GpuNetTime gnet;
    LayerCount *counts = NULL;
    GpuLayerTime *gl = NULL;
    SimRow *rows = NULL;
    if (arch_load_preset(&arch, a.preset) ||
        model_build(&m, a.model, a.input.c, a.input.h, a.input.w, (int)a.classes)) {
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
                                .gpu_ms = gl[i].ms};
        n_rows++;
    }

    Rng base;
    rng_init(&base, (uint64_t)a.seed);
    double sim_wall_ms = 0, t_all = timer_now_ms();
    for (int j = 0; j < n_rows; j++) {
        rc = sim_run_layer(&a, &arch, &base, &rows[j], &sim_wall_ms);
        if (rc) {
            log_msg(LOG_ERROR, "sim: layer %s failed: %s", m.layers[rows[j].layer].name, err_str(rc));
            goto done;
        }
    }
    double all_wall_ms = timer_now_ms() - t_all;

    char cluster_txt[32] = "";
    if (a.pattern == SIM_MASK_CLUSTERED) snprintf(cluster_txt, sizeof cluster_txt, "%g", a.cluster);
    printf("sim: %s, input %dx%dx%d, batch %ld, density %g (%s%s%s), preset %s (%d PEs x %d mults, %g GHz, "
           "%g GB/s), %s mode, seed %ld\n",
           m.name, a.input.c, a.input.h, a.input.w, a.batch, a.density,
           a.pattern == SIM_MASK_CLUSTERED ? "clustered" : "uniform",
           a.pattern == SIM_MASK_CLUSTERED ? ", cluster " : "", cluster_txt, arch.name,
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
        rc = sim_write_record(&a, &arch, &m, rows, n_rows, sim_ms, gpu_conv_ms, &gnet, sim_macs, sim_wall_ms);
        if (rc) {
            exit_code = rc == ERR_IO || rc == ERR_CONFIG ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
            goto done;
        }
        printf("record: %s\n", a.out);
    }
    exit_code = 0;
done:
    mem_free(rows);
    mem_free(gl);
    mem_free(counts);
    model_deinit(&m);
    return exit_code;
}
