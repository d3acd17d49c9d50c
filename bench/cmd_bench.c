/* `resprop bench step` and `resprop bench backward`: measured speed, always as interleaved runs
 * reported against the named baseline (dense oneDNN f32).
 *
 * step:     whole training steps (forward, backward, SGD update) of a plain dense net, alone or
 *           alternated with the same net under a scheme and backend (--scheme, --backend);
 * backward: per conv layer, the dense oneDNN backward (bwd-data + bwd-weights) against the scheme's
 *           backward on backend sparse (ReSprop's fused difference/threshold pass, the sparse kernels,
 *           the single-sample reuse terms and the bias), at given densities, layer by layer. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>

#include "baselines/resprop.h"
#include "bench/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/net.h"
#include "core/runconfig.h"
#include "core/scheme.h"
#include "core/sparse.h"
#include "core/timer.h"
#include "core/trainer.h"

#define BENCH_MAX_DENSITIES 16

typedef struct {
    char model[CFG_STR_MAX], input[CFG_STR_MAX];
    int batch, steps, warmup, threads, classes;
    long seed;
    char out[CFG_STR_MAX];
    char scheme[CFG_STR_MAX];
    double reuse;
    char backend[CFG_STR_MAX];
    double breakeven[SPARSE_N_CLASSES];
    char density[CFG_STR_MAX];
} BenchConfig;

#define BK(name, type, field, def, lo, hi, choices, help) \
    {name, type, offsetof(BenchConfig, field), def, lo, hi, choices, help}

static const CfgKey bench_keys[] = {
    BK("model", CFG_STRING, model, "", 0, 0, NULL, "network (required; resprop model lists them)"),
    BK("input", CFG_STRING, input, "3x32x32", 0, 0, NULL, "input shape CxHxW (channels x height x width pixels)"),
    BK("batch", CFG_INT, batch, "128", 1, 65536, NULL, "mini-batch size (images)"),
    BK("steps", CFG_INT, steps, "10", 1, 100000, NULL,
       "timed repetitions: training steps (step) or backward calls per layer and density (backward)"),
    BK("warmup", CFG_INT, warmup, "-1", -1, 100000, NULL,
       "untimed repetitions first (-1 = auto: step 3, or 25 with a scheme so its controller settles; backward 2)"),
    BK("threads", CFG_INT, threads, "2", 1, 1024, NULL, "CPU threads (threads)"),
    BK("classes", CFG_INT, classes, "10", 2, 1000000, NULL, "output classes (classes)"),
    BK("seed", CFG_LONG, seed, "1", 0, 2147483647.0, NULL, "random seed (integer)"),
    BK("out", CFG_STRING, out, "", 0, 0, NULL, "also write the measurements to this HDF5 file (path; \"\" = none)"),
    BK("scheme", CFG_STRING, scheme, "dense", 0, 0, NULL,
       "step: scheme of the compared net (dense = time the dense net alone); backward: resprop (also for dense) "
       "or resprop-vec"),
    BK("reuse", CFG_DOUBLE, reuse, "0.9", 0, 0.999, NULL, "step: nominal reuse sparsity RS of the scheme (fraction)"),
    BK("backend", CFG_STRING, backend, "dnnl", 0, 0, "dnnl|sparse", "step: executor of the scheme's backward"),
    BK("breakeven-stem", CFG_DOUBLE, breakeven[SPARSE_CLASS_STEM], BREAKEVEN_STEM, 0, 1, NULL,
       "step, backend sparse: break-even density of conv layers with C < 16 (fraction)"),
    BK("breakeven-pointwise", CFG_DOUBLE, breakeven[SPARSE_CLASS_POINTWISE], BREAKEVEN_POINTWISE, 0, 1, NULL,
       "step, backend sparse: the same for 1x1 conv layers (fraction)"),
    BK("breakeven-narrow", CFG_DOUBLE, breakeven[SPARSE_CLASS_NARROW], BREAKEVEN_NARROW, 0, 1, NULL,
       "step, backend sparse: the same for conv layers with C <= 64 (fraction)"),
    BK("breakeven-wide", CFG_DOUBLE, breakeven[SPARSE_CLASS_WIDE], BREAKEVEN_WIDE, 0, 1, NULL,
       "step, backend sparse: the same for conv layers with C > 64 (fraction)"),
    BK("density", CFG_STRING, density, "0.05,0.1", 0, 0, NULL,
       "backward: densities of S to time, comma separated (fractions in (0, 1])"),
};

static const CfgTable bench_table = {
    .keys = bench_keys,
    .n_keys = (int)(sizeof bench_keys / sizeof bench_keys[0]),
    .extra_prefix = "scheme.",
};

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: resprop bench step --model NAME [--scheme S --reuse RS --backend dnnl|sparse] [options]\n"
            "       resprop bench backward --model NAME [--density D1,D2,...] [options]\n"
            "  step: the f32 training step (forward, backward, SGD momentum update) on random data, median of\n"
            "    --steps steps after --warmup steps. With --scheme, a second net under the scheme and backend\n"
            "    runs alternated with the plain dense oneDNN net, step by step, and the ratio is printed. The\n"
            "    scheme runs as after its warm-up schedule; pass its options as --scheme.KEY=VALUE.\n"
            "  backward: per conv layer and density, the dense oneDNN backward (bwd-data + bwd-weights) against\n"
            "    ReSprop (--scheme resprop, default, or resprop-vec) on backend sparse (fused threshold pass +\n"
            "    sparse kernels + single-sample reuse terms), with the threshold fixed so S has the given\n"
            "    density (of entries; of positions for resprop-vec); alternated, medians of --steps calls;\n"
            "    the sums over the network, and break-even estimates per layer class.\n"
            "  --out FILE.h5 writes the measurements (results/SCHEMA.md, kinds bench_step, bench_backward).\n"
            "options:\n");
    config_print_help(&bench_table, f);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (reorders v). */
static double median(double *v, long n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- HDF5 output ------------------------------------------------------------------------------ */

typedef struct {
    hid_t f;
    char tmp[4096];
    int ok;
} BenchOut;

static int out_open(BenchOut *o, const char *path, const char *kind, const BenchConfig *c) {
    snprintf(o->tmp, sizeof o->tmp, "%s.part", path);
    o->f = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (o->f < 0) {
        log_msg(LOG_ERROR, "bench: cannot create %s", o->tmp);
        return ERR_HDF5;
    }
    long batch = c->batch, threads = c->threads;
    char cpu[256];
    sysinfo_cpu_model(cpu, sizeof cpu);
    o->ok = H5LTset_attribute_string(o->f, "/", "kind", kind) >= 0;
    o->ok = o->ok && H5LTset_attribute_int(o->f, "/", "schema_version", (int[]){1}, 1) >= 0;
    o->ok = o->ok && H5LTset_attribute_string(o->f, "/", "version", resprop_version) >= 0;
    o->ok = o->ok && H5LTset_attribute_string(o->f, "/", "model", c->model) >= 0;
    o->ok = o->ok && H5LTset_attribute_string(o->f, "/", "input", c->input) >= 0;
    o->ok = o->ok && H5LTset_attribute_string(o->f, "/", "dtype", "f32") >= 0;
    o->ok = o->ok && H5LTset_attribute_string(o->f, "/", "baseline", "dense oneDNN f32") >= 0;
    o->ok = o->ok && H5LTset_attribute_long(o->f, "/", "batch", &batch, 1) >= 0;
    o->ok = o->ok && H5LTset_attribute_long(o->f, "/", "threads", &threads, 1) >= 0;
    o->ok = o->ok && H5LTset_attribute_string(o->f, "/", "cpu", cpu) >= 0;
    return 0;
}

static void out_doubles(BenchOut *o, const char *name, const double *v, long n) {
    hsize_t dims[1] = {(hsize_t)n};
    o->ok = o->ok && H5LTmake_dataset_double(o->f, name, 1, dims, v) >= 0;
}

static void out_attr(BenchOut *o, const char *name, double v) {
    o->ok = o->ok && H5LTset_attribute_double(o->f, "/", name, &v, 1) >= 0;
}

static void out_attr_str(BenchOut *o, const char *name, const char *v) {
    o->ok = o->ok && H5LTset_attribute_string(o->f, "/", name, v) >= 0;
}

static int out_close(BenchOut *o, const char *path) {
    if (H5Fclose(o->f) < 0) o->ok = 0;
    if (!o->ok || rename(o->tmp, path) != 0) {
        log_msg(LOG_ERROR, "bench: cannot write %s", path);
        unlink(o->tmp);
        return ERR_HDF5;
    }
    printf("record: %s\n", path);
    return 0;
}

/* ---- bench step --------------------------------------------------------------------------------- */

typedef struct {
    Net *net;
    Trainer tr;
    void *scheme_cfg;
    double *ms;
} StepSide;

static int side_create(StepSide *s, const ModelSpec *m, const BenchConfig *c, Dims4 in, DnnlCtx *ctx, long steps) {
    int rc = 0;
    Rng rng;
    rng_init(&rng, (uint64_t)c->seed);
    TRY(net_create(&s->net, m, c->batch, ctx, &rng));
    TRY(trainer_init(&s->tr, s->net));
    Rng dr = rng_split(&rng, 0xda7a);
    float *x = net_input(s->net);
    in.n = c->batch;
    for (size_t i = 0; i < dims_count(in); i++) x[i] = (float)rng_normal(&dr);
    for (int i = 0; i < c->batch; i++) net_labels(s->net)[i] = (int32_t)rng_below(&dr, (uint64_t)c->classes);
    s->ms = mem_calloc((size_t)steps, sizeof(double));
    if (!s->ms) FAIL(ERR_NOMEM, "bench: out of memory");
fail:
    return rc;
}

static void side_destroy(StepSide *s) {
    trainer_deinit(&s->tr);
    net_destroy(s->net);
    mem_free(s->scheme_cfg);
    mem_free(s->ms);
}

/* The scheme's step counter placed after any warm-up schedule, never the first or last of an epoch. */
static void scheme_steady_step(Net *net, long i) {
    const long base = 1000000000L;
    net_scheme_step(net, base + i, 1000, 1 + i, base, base, false);
}

static int bench_step(const BenchConfig *c, const CfgExtra *extra, const ModelSpec *m, Dims4 input) {
    int rc = 0;
    DnnlCtx ctx = {0};
    StepSide d = {0}, s = {0};
    const Scheme *scheme = NULL;
    bool compare = strcmp(c->scheme, "dense") != 0 || strcmp(c->backend, "dnnl") != 0;
    long warmup = c->warmup >= 0 ? c->warmup : compare ? 25 : 3, steps = c->steps;
    double *dens = NULL, *sparse_frac = NULL;
    if (compare) {
        scheme = scheme_find(c->scheme);
        if (!scheme) FAIL(ERR_CONFIG, "bench step: scheme '%s': unknown (resprop schemes lists them)", c->scheme);
    }
    TRY(dnnl_ctx_init(&ctx));
    TRY(side_create(&d, m, c, input, &ctx, steps));
    if (compare) {
        TRY(side_create(&s, m, c, input, &ctx, steps));
        s.scheme_cfg = mem_calloc(1, scheme->cfg_size + 1);
        if (!s.scheme_cfg) FAIL(ERR_NOMEM, "bench: out of memory");
        TRY(scheme_options(scheme, s.scheme_cfg, extra));
        NetBackend be = {.sparse = strcmp(c->backend, "sparse") == 0};
        for (int k = 0; k < SPARSE_N_CLASSES; k++) be.breakeven[k] = c->breakeven[k];
        TRY(net_attach_scheme(s.net, scheme, s.scheme_cfg, c->reuse, (uint64_t)c->seed, &be));
    }
    dens = mem_calloc((size_t)steps, sizeof(double));
    sparse_frac = mem_calloc((size_t)steps, sizeof(double));
    if (!dens || !sparse_frac) FAIL(ERR_NOMEM, "bench: out of memory");
    SgdParams sp = {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = false};
    fprintf(stderr, "bench step: %s %s batch %d, %d threads, f32: %ld warm-up + %ld timed steps%s\n", c->model,
            c->input, c->batch, c->threads, warmup, steps,
            compare ? ", alternating the dense net and the scheme's net" : "");
    long i_s = 0;
    for (long i = 0; i < warmup; i++) {
        TRY(trainer_step(&d.tr, &sp));
        if (compare) {
            scheme_steady_step(s.net, i_s++);
            TRY(trainer_step(&s.tr, &sp));
        }
    }
    d.tr.profile = s.tr.profile = true;
    trainer_profile_reset(&d.tr);
    if (compare) trainer_profile_reset(&s.tr);
    for (long i = 0; i < steps; i++) {
        for (int half = 0; half < (compare ? 2 : 1); half++) {
            bool dense_turn = compare ? (half == (int)(i % 2)) : true; /* alternate who goes first */
            StepSide *side = dense_turn ? &d : &s;
            if (!dense_turn) scheme_steady_step(s.net, i_s++);
            double t0 = timer_now_ms();
            TRY(trainer_step(&side->tr, &sp));
            side->ms[i] = timer_now_ms() - t0;
        }
        if (compare) {
            int n = net_scheme_n(s.net), ns = 0;
            double sum = 0;
            for (int j = 0; j < n; j++) {
                const ConvSchemeStats *st = net_scheme_stats(s.net, j);
                sum += st->density;
                ns += st->sparse_path;
            }
            dens[i] = n ? sum / n : 1.0;
            sparse_frac[i] = n ? (double)ns / n : 0.0;
        }
        fprintf(stderr, "\rstep %ld/%ld", i + 1, steps);
    }
    fprintf(stderr, "\n");
    double *tmp = mem_alloc((size_t)steps * sizeof(double));
    if (!tmp) FAIL(ERR_NOMEM, "bench: out of memory");
    memcpy(tmp, d.ms, (size_t)steps * sizeof(double));
    double med_d = median(tmp, steps), med_s = NAN, mean_dens = 0, mean_sparse = 0;
    if (compare) {
        memcpy(tmp, s.ms, (size_t)steps * sizeof(double));
        med_s = median(tmp, steps);
        for (long i = 0; i < steps; i++) mean_dens += dens[i] / steps, mean_sparse += sparse_frac[i] / steps;
    }
    mem_free(tmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("model=%s input=%s batch=%d threads=%d dtype=f32 baseline=dense-oneDNN\n", c->model, c->input, c->batch,
           c->threads);
    for (int k = 0; k < (compare ? 2 : 1); k++) {
        StepSide *side = k ? &s : &d;
        double fwd = 0, bwd = 0, conv = 0;
        for (int i = 1; i < net_n_layers(side->net); i++) {
            fwd += side->tr.fwd_ms[i];
            bwd += side->tr.bwd_ms[i];
            if (layer_spec(net_layer(side->net, i))->kind == LAYER_CONV) conv += side->tr.fwd_ms[i] + side->tr.bwd_ms[i];
        }
        double med = k ? med_s : med_d;
        if (k)
            printf("%-7s scheme=%s reuse=%.3g backend=%s: step_ms_median=%.2f img_per_s=%.1f (mean conv density %.3f, "
                   "%.0f%% of conv layer-steps on the sparse kernels)\n",
                   "scheme", c->scheme, c->reuse, c->backend, med, c->batch * 1000.0 / med, mean_dens,
                   100 * mean_sparse);
        else
            printf("%-7s step_ms_median=%.2f img_per_s=%.1f\n", "dense", med, c->batch * 1000.0 / med);
        printf("        per step (mean): forward %.2f ms, backward %.2f ms, sgd %.2f ms; convolutions %.2f ms\n",
               fwd / steps, bwd / steps, side->tr.opt_ms / steps, conv / steps);
    }
    if (compare)
        printf("speedup (dense median / scheme median) = %.3fx; scheme buffers %.1f MB\n", med_d / med_s,
               net_scheme_bytes(s.net) / 1048576.0);
    printf("peak_rss=%.1f MB (this process%s)\n", ru.ru_maxrss / 1024.0, compare ? ", both nets" : "");
    if (c->out[0]) {
        BenchOut o;
        TRY(out_open(&o, c->out, "bench_step", c));
        out_doubles(&o, "/dense_step_ms", d.ms, steps);
        out_attr(&o, "median_dense_ms", med_d);
        out_attr_str(&o, "scheme", compare ? c->scheme : "dense");
        out_attr_str(&o, "backend", compare ? c->backend : "dnnl");
        out_attr(&o, "reuse", c->reuse);
        out_attr(&o, "peak_rss_kib", (double)ru.ru_maxrss);
        if (compare) {
            out_doubles(&o, "/scheme_step_ms", s.ms, steps);
            out_doubles(&o, "/scheme_density", dens, steps);
            out_doubles(&o, "/scheme_sparse_frac", sparse_frac, steps);
            out_attr(&o, "median_scheme_ms", med_s);
            out_attr(&o, "speedup", med_d / med_s);
            out_attr(&o, "mean_density", mean_dens);
        }
        TRY(out_close(&o, c->out));
    }
fail:
    mem_free(dens);
    mem_free(sparse_frac);
    side_destroy(&d);
    side_destroy(&s);
    dnnl_ctx_deinit(&ctx);
    return rc;
}

/* ---- bench backward ---------------------------------------------------------------------------- */

/* tau with P(|A - B| > tau) = d for A, B independent standard normals: erfc(tau / 2) = d. */
static double tau_for_density(double d) {
    double lo = 0, hi = 20;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (erfc(mid / 2) > d) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int parse_densities(const char *text, double *d, int *n) {
    int rc = 0;
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", text);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        double v = strtod(t, &end);
        if (end == t || *end != '\0' || !(v > 0 && v <= 1) || *n >= BENCH_MAX_DENSITIES)
            FAIL(ERR_CONFIG, "bench backward: key 'density' value '%s': expected up to %d comma-separated numbers in "
                             "(0, 1]", text, BENCH_MAX_DENSITIES);
        d[(*n)++] = v;
    }
    if (*n == 0) FAIL(ERR_CONFIG, "bench backward: key 'density' is empty: expected numbers in (0, 1]");
fail:
    return rc;
}

typedef struct {
    int layer;
    SparseClass cls;
    double density, achieved, dense_ms, sparse_ms;
} BackwardRow;

/* Times one conv layer at each density: returns rows[0..nd). */
/* For resprop-vec: the threshold that makes the timed calls' mean density d. The bench's G is the same
 * in every call, so the R of call s is known in advance: sample xs[s] of G, the one the scheme stored
 * the call before (resprop_stored_sample). The RMS differences of every position against each call's
 * R are pooled (work: n_calls * N*P*Q doubles), computed as the scheme computes them
 * (resprop_vec_diff_rms), and tau leaves round(d * pool) of them strictly above it, or, where equal
 * values make that count impossible, the nearest count (the larger one on a tie). Equal values are
 * common: the pair (n, x) of one call and (x, n) of another give the same RMS. The stored sample's own
 * positions (difference 0) are in the pool: they never become active. */
static double tau_vec_for_density(const float *g, GradShape sh, double d, const int *xs, long n_calls, float *dbuf,
                                  double *work) {
    size_t pq = (size_t)sh.p * sh.q, pos = (size_t)sh.n * pq, m = grad_sample(sh), k = (size_t)sh.k, t = 0;
    for (long s = 0; s < n_calls; s++) {
        const float *r = g + (size_t)xs[s] * m;
        for (size_t i = 0; i < pos; i++) work[t++] = resprop_vec_diff_rms(g + i * k, r + (i % pq) * k, sh.k, dbuf);
    }
    qsort(work, t, sizeof *work, cmp_double);
    size_t want = (size_t)llround(d * (double)t);
    if (want >= t) return 0.0;
    if (want == 0) return work[t - 1];
    /* the run of values equal to v = work[t - want - 1]: tau = v leaves fewer than want above when the
     * run reaches past it, tau just below the run leaves more */
    size_t hi = t - want - 1, lo = hi;
    while (hi + 1 < t && work[hi + 1] == work[hi]) hi++;
    while (lo > 0 && work[lo - 1] == work[lo]) lo--;
    size_t fewer = t - 1 - hi, more = t - lo; /* counts above tau = v and above tau just below v */
    if (lo == 0 || want - fewer < more - want) return work[hi];
    return work[lo - 1];
}

/* resprop-vec's bench gradient: every position's K-vector scaled to RMS 1. Its reuse decision compares
 * the RMS of G[n] - R at a position with tau, R being one stored sample: with iid normal entries the
 * norms of the stored sample's vectors alone (relative spread sqrt(2/K)) would move each call's density
 * far from the mean when a layer has few positions (layer4 of resnet18: 16 per sample, K = 512). With
 * equal norms only the angles between vectors decide, and every call stays near the mean density that
 * tau_vec_for_density sets. */
static void normalize_positions(float *g, size_t n_pos, size_t k) {
    for (size_t i = 0; i < n_pos; i++) {
        float *v = g + i * k;
        double ss = 0;
        for (size_t j = 0; j < k; j++) ss += (double)v[j] * v[j];
        float scale = ss > 0 ? (float)sqrt((double)k / ss) : 0.0f;
        for (size_t j = 0; j < k; j++) v[j] *= scale;
    }
}

static int time_layer(const BenchConfig *c, const Scheme *sch, const LayerSpec *spec, Dims4 in, bool need_dx,
                      const double *dens, int nd, long warmup, long reps, DnnlCtx *ctx, BackwardRow *rows) {
    int rc = 0;
    Layer *ld = NULL, *ls_layer = NULL;
    float *x = NULL, *y = NULL, *g = NULL, *dx = NULL, *sbuf = NULL;
    double *td = NULL, *tsp = NULL, *work = NULL;
    int *xsamp = NULL;
    float *dbuf = NULL;
    void *state = NULL;
    SparseGrad store = {0};
    SparseWorkspace ws = {0};
    SparseVecWorkspace vws = {0};
    Rng rng;
    rng_init(&rng, (uint64_t)c->seed ^ 0xbac4u);
    TRY(layer_create(&ld, spec, &in, ctx));
    Dims4 out = layer_out_dims_of(ld);
    size_t nx = dims_count(in), ny = dims_count(out);
    x = mem_alloc(nx * sizeof *x), dx = mem_alloc(nx * sizeof *dx);
    y = mem_alloc(ny * sizeof *y), g = mem_alloc(ny * sizeof *g), sbuf = mem_alloc(ny * sizeof *sbuf);
    td = mem_alloc((size_t)reps * sizeof *td), tsp = mem_alloc((size_t)reps * sizeof *tsp);
    if (!x || !dx || !y || !g || !sbuf || !td || !tsp) FAIL(ERR_NOMEM, "bench: out of memory");
    for (size_t i = 0; i < nx; i++) x[i] = (float)rng_normal(&rng);
    for (size_t i = 0; i < ny; i++) g[i] = (float)rng_normal(&rng);
    if (sch == &scheme_resprop_vec) normalize_positions(g, ny / (size_t)out.c, (size_t)out.c);
    TRY(layer_init_params(ld, &rng));
    float *xs[2] = {x, NULL}, *dxs[2] = {need_dx ? dx : NULL, NULL};
    TRY(layer_bind(ld, xs, y, dxs, g));
    TRY(layer_forward(ld, true));
    ConvGeom geom;
    TRY(layer_conv_geom(ld, &geom));
    TRY(sparse_init(&store, 1, out.n * out.h * out.w, 1, 1, ny));
    TRY(sparse_workspace_init(&ws, 0, (size_t)geom.k * geom.r * geom.s * geom.c, (size_t)geom.h * geom.w * geom.c));
    TRY(sparse_vec_workspace_init(&vws, (size_t)geom.r * geom.s * geom.c, 0, 0));
    GradShape shape = {out.n, out.h, out.w, out.c};
    bool vec = sch == &scheme_resprop_vec;
    if (vec) {
        work = mem_alloc((size_t)reps * out.n * out.h * out.w * sizeof *work);
        xsamp = mem_alloc((size_t)reps * sizeof *xsamp);
        dbuf = mem_alloc((size_t)out.c * sizeof *dbuf);
        if (!work || !xsamp || !dbuf) FAIL(ERR_NOMEM, "bench: out of memory");
    }
    for (int di = 0; di < nd; di++) {
        ResPropOptions opt;
        TRY(config_defaults(sch->options, &opt));
        Rng srng = rng_split(&rng, 0x5eed + (uint64_t)di);
        double tau;
        if (vec) { /* timed call s (step warmup + 1 + s) reuses the sample stored at step warmup + s */
            for (long r = 0; r < reps; r++)
                xsamp[r] = resprop_stored_sample(rng_split(&srng, (uint64_t)(warmup + r)), out.n);
            tau = tau_vec_for_density(g, shape, dens[di], xsamp, reps, dbuf, work);
        } else {
            /* the stored sample's own entries (G - R = 0) never pass: aim the others at d * N / (N - 1) */
            double dd = out.n > 1 ? dens[di] * out.n / (out.n - 1) : dens[di];
            tau = tau_for_density(dd < 1.0 ? dd : 1.0);
        }
        snprintf(opt.warmup, sizeof opt.warmup, "none");
        opt.margin = 0;
        opt.reset_each_epoch = false;
        opt.tau_init = opt.tau_min = opt.tau_max = tau;
        TRY(sch->layer_create(&state, &opt, shape, 1.0 - dens[di] < 0.999 ? 1.0 - dens[di] : 0.999));
        LayerScheme lsch = {.scheme = sch, .cfg = &opt, .state = state, .s_buf = sbuf, .sparse = true,
                            .breakeven = 1.0, .csr_store = &store, .ws = &ws, .vws = &vws};
        TRY(layer_create(&ls_layer, spec, &in, ctx));
        float *w = mem_alloc(layer_param(ld, 0).n_plain * sizeof(float));
        if (!w) FAIL(ERR_NOMEM, "bench: out of memory");
        rc = layer_param_get(ld, 0, w);
        if (!rc) rc = layer_param_set(ls_layer, 0, w);
        mem_free(w);
        TRY(rc);
        TRY(layer_attach_scheme(ls_layer, &lsch));
        TRY(layer_bind(ls_layer, xs, y, dxs, g));
        TRY(layer_forward(ls_layer, true));
        long step = 0;
        /* the scheme's first call stores its reuse sample (a dense step): never timed */
        lsch.step = (SchemeStep){.step = 0, .epoch = 1000, .steps_per_epoch = 1L << 40, .total_steps = 1L << 40,
                                 .rng = rng_split(&srng, 0)};
        TRY(layer_backward(ls_layer));
        double density_sum = 0;
        for (long r = 0; r < warmup + reps; r++) {
            for (int half = 0; half < 2; half++) {
                bool dense_turn = half == (int)(r % 2);
                double t0 = timer_now_ms();
                if (dense_turn) {
                    TRY(layer_backward(ld));
                } else {
                    lsch.step = (SchemeStep){.step = ++step, .epoch = 1000, .step_in_epoch = step,
                                             .steps_per_epoch = 1L << 40, .total_steps = 1L << 40, .layer = 0,
                                             .rng = rng_split(&srng, (uint64_t)step)};
                    TRY(layer_backward(ls_layer));
                }
                double ms = timer_now_ms() - t0;
                if (r >= warmup) (dense_turn ? td : tsp)[r - warmup] = ms;
                if (r >= warmup && !dense_turn) density_sum += lsch.out.density;
            }
        }
        if (!lsch.ran_sparse) FAIL(ERR_SHAPE, "bench backward: layer %s did not run the sparse kernels", spec->name);
        rows[di] = (BackwardRow){.cls = sparse_class(geom), .density = dens[di], .achieved = density_sum / (double)reps,
                                 .dense_ms = median(td, reps), .sparse_ms = median(tsp, reps)};
        layer_destroy(ls_layer);
        ls_layer = NULL;
        sch->layer_destroy(state);
        state = NULL;
    }
fail:
    if (state) sch->layer_destroy(state);
    layer_destroy(ls_layer);
    layer_destroy(ld);
    sparse_deinit(&store);
    sparse_workspace_deinit(&ws);
    sparse_vec_workspace_deinit(&vws);
    mem_free(x), mem_free(dx), mem_free(y), mem_free(g), mem_free(sbuf), mem_free(td), mem_free(tsp), mem_free(work);
    mem_free(xsamp), mem_free(dbuf);
    return rc;
}

static int bench_backward(const BenchConfig *c, const ModelSpec *m, Dims4 input) {
    int rc = 0;
    DnnlCtx ctx = {0};
    Dims4 *dims = NULL;
    BackwardRow *rows = NULL;
    double dens[BENCH_MAX_DENSITIES];
    int nd = 0, n_conv = 0;
    long warmup = c->warmup >= 0 ? c->warmup : 2, reps = c->steps;
    const char *sname = strcmp(c->scheme, "dense") == 0 ? "resprop" : c->scheme;
    const Scheme *sch = strcmp(sname, "resprop") == 0 ? &scheme_resprop
                        : strcmp(sname, "resprop-vec") == 0 ? &scheme_resprop_vec : NULL;
    if (!sch) FAIL(ERR_CONFIG, "bench backward: key 'scheme' value '%s': expected resprop or resprop-vec", c->scheme);
    TRY(parse_densities(c->density, dens, &nd));
    dims = mem_calloc((size_t)m->n_layers, sizeof *dims);
    if (!dims) FAIL(ERR_NOMEM, "bench: out of memory");
    dims[0] = input;
    dims[0].n = c->batch;
    for (int i = 1; i < m->n_layers; i++) {
        const LayerSpec *sp = &m->layers[i];
        Dims4 ins[2] = {dims[sp->in[0]], sp->in[1] >= 0 ? dims[sp->in[1]] : dims[sp->in[0]]};
        TRY(layer_out_dims(sp, ins, &dims[i]));
        n_conv += sp->kind == LAYER_CONV;
    }
    rows = mem_calloc((size_t)n_conv * nd + 1, sizeof *rows);
    if (!rows) FAIL(ERR_NOMEM, "bench: out of memory");
    TRY(dnnl_ctx_init(&ctx));
    fprintf(stderr, "bench backward: %s %s batch %d, %d threads, f32, %s; densities %s; %ld warm-up + %ld timed "
                    "calls per layer and density, dense and sparse alternated\n",
            c->model, c->input, c->batch, c->threads, sch->name, c->density, warmup, reps);
    int j = 0;
    for (int i = 1; i < m->n_layers; i++) {
        const LayerSpec *sp = &m->layers[i];
        if (sp->kind != LAYER_CONV) continue;
        fprintf(stderr, "\rlayer %d/%d %-24s", j + 1, n_conv, sp->name);
        TRY(time_layer(c, sch, sp, dims[sp->in[0]], sp->in[0] != 0, dens, nd, warmup, reps, &ctx,
                       rows + (size_t)j * nd));
        for (int d = 0; d < nd; d++) rows[(size_t)j * nd + d].layer = i;
        j++;
    }
    fprintf(stderr, "\n");
    printf("model=%s input=%s batch=%d threads=%d dtype=f32 baseline=dense-oneDNN (bwd-data + bwd-weights)\n",
           c->model, c->input, c->batch, c->threads);
    printf("sparse = %s on backend sparse: fused threshold pass + %s kernels + reuse terms + bias\n", sch->name,
           sch == &scheme_resprop_vec ? "gathered-GEMM" : "sparse");
    for (int d = 0; d < nd; d++) {
        printf("\ndensity %.3g\n%-4s %-24s %-9s %-22s %9s %9s %7s %8s\n", dens[d], "#", "layer", "class",
               "CxHxW -> KxPxQ", "dense_ms", "sparse_ms", "ratio", "achieved");
        double sd = 0, ss = 0, cd[SPARSE_N_CLASSES] = {0}, cs[SPARSE_N_CLASSES] = {0};
        for (int k = 0; k < n_conv; k++) {
            const BackwardRow *r = &rows[(size_t)k * nd + d];
            const LayerSpec *sp = &m->layers[r->layer];
            Dims4 a = dims[sp->in[0]], b = dims[r->layer];
            char shape[64];
            snprintf(shape, sizeof shape, "%dx%dx%d -> %dx%dx%d", a.c, a.h, a.w, b.c, b.h, b.w);
            printf("%-4d %-24s %-9s %-22s %9.3f %9.3f %6.2fx %8.4f\n", r->layer, sp->name, sparse_class_name(r->cls),
                   shape, r->dense_ms, r->sparse_ms, r->dense_ms / r->sparse_ms, r->achieved);
            sd += r->dense_ms, ss += r->sparse_ms;
            cd[r->cls] += r->dense_ms, cs[r->cls] += r->sparse_ms;
        }
        printf("%-4s %-24s %-9s %-22s %9.3f %9.3f %6.2fx\n", "", "all conv layers (sum)", "", "", sd, ss, sd / ss);
        printf("by class:");
        for (int k = 0; k < SPARSE_N_CLASSES; k++)
            if (cd[k] > 0) printf(" %s %.2fx", sparse_class_name((SparseClass)k), cd[k] / cs[k]);
        printf("\n");
    }
    /* break-even estimate per class: the densest tested density at which sparse still wins */
    printf("\nbreak-even estimate (densest tested density where the class's summed sparse time <= dense):");
    for (int k = 0; k < SPARSE_N_CLASSES; k++) {
        double best = -1;
        bool present = false;
        for (int d = 0; d < nd; d++) {
            double cd = 0, cs = 0;
            for (int l = 0; l < n_conv; l++) {
                const BackwardRow *r = &rows[(size_t)l * nd + d];
                if ((int)r->cls == k) cd += r->dense_ms, cs += r->sparse_ms, present = true;
            }
            if (cd > 0 && cs <= cd && dens[d] > best) best = dens[d];
        }
        if (present) {
            if (best > 0) printf(" %s %.3g", sparse_class_name((SparseClass)k), best);
            else printf(" %s <%.3g", sparse_class_name((SparseClass)k), dens[0]);
        }
    }
    printf("\n");
    if (c->out[0]) {
        BenchOut o;
        size_t n = (size_t)n_conv * nd;
        double *col = mem_alloc((n + 1) * sizeof *col);
        if (!col) FAIL(ERR_NOMEM, "bench: out of memory");
        rc = out_open(&o, c->out, "bench_backward", c);
        if (!rc) {
            out_attr_str(&o, "scheme", sch->name);
            out_attr_str(&o, "backend", "sparse");
            out_attr_str(&o, "densities", c->density);
            const char *names[] = {"/layer", "/class", "/density", "/achieved_density", "/dense_ms", "/sparse_ms",
                                   "/ratio"};
            for (int f = 0; f < 7; f++) {
                for (size_t r = 0; r < n; r++) {
                    const BackwardRow *b = &rows[r];
                    double v[7] = {b->layer, b->cls, b->density, b->achieved, b->dense_ms, b->sparse_ms,
                                   b->dense_ms / b->sparse_ms};
                    col[r] = v[f];
                }
                out_doubles(&o, names[f], col, (long)n);
            }
            rc = out_close(&o, c->out);
        }
        mem_free(col);
        TRY(rc);
    }
fail:
    mem_free(dims);
    mem_free(rows);
    dnnl_ctx_deinit(&ctx);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    BenchConfig c;
    CfgExtra extra;
    memset(&extra, 0, sizeof extra);
    ModelSpec m = {0};
    bool help = false;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_INPUT : 0;
    }
    bool step = strcmp(argv[1], "step") == 0, backward = strcmp(argv[1], "backward") == 0;
    if (!step && !backward) {
        log_msg(LOG_ERROR, "bench: unknown benchmark '%s' (expected: step or backward)", argv[1]);
        return EXIT_BAD_INPUT;
    }
    if (config_defaults(&bench_table, &c) || config_parse_args(&bench_table, &c, &extra, argc, argv, 2, &help)) {
        bench_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    if (help) {
        bench_usage(stdout);
        return 0;
    }
    Dims4 input;
    if (!c.model[0]) {
        log_msg(LOG_ERROR, "bench %s: --model NAME is required", argv[1]);
        return EXIT_BAD_INPUT;
    }
    if (cli_parse_input(c.input, &input)) return EXIT_BAD_INPUT;
    if (model_build(&m, c.model, input.c, input.h, input.w, c.classes)) return EXIT_BAD_INPUT;
    if (backward && extra.n > 0) {
        log_msg(LOG_ERROR, "bench backward: --%s: the backward bench fixes ReSprop's options itself", extra.key[0]);
        model_deinit(&m);
        return EXIT_BAD_INPUT;
    }
    cli_set_threads(c.threads);
    int rc = step ? bench_step(&c, &extra, &m, input) : bench_backward(&c, &m, input);
    model_deinit(&m);
    if (rc) log_msg(LOG_ERROR, "bench %s failed: %s", argv[1], err_str(rc));
    return rc == 0 ? 0 : rc == ERR_CONFIG || rc == ERR_SHAPE ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
}
