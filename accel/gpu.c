/* gpu.c: the GPU baseline model of gpu.h: per-layer roofline of the dense backward with a per-kind
 * effective-rate factor, memory-bound elementwise layers, and the measured-time CSV override. */
#include "accel/gpu.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/flops.h"
#include "core/log.h"
#include "core/mem.h"

#define GPU_F32_BYTES 4.0
#define GPU_LINE_MAX 1024

static const char *const gpu_kind_names[GPU_N_KINDS] = {
    [GPU_KIND_NONE] = "none",     [GPU_KIND_WINOGRAD] = "winograd", [GPU_KIND_POINTWISE] = "pointwise",
    [GPU_KIND_STRIDED] = "strided", [GPU_KIND_CONV] = "conv",       [GPU_KIND_FC] = "fc",
    [GPU_KIND_MEMORY] = "memory",
};

const char *gpu_kind_name(GpuKind kind) {
    return kind >= 0 && kind < GPU_N_KINDS && gpu_kind_names[kind] ? gpu_kind_names[kind] : "unknown";
}

/* Kinds whose time has a compute term (and so a factor). */
static bool gpu_kind_has_factor(GpuKind kind) {
    return kind == GPU_KIND_WINOGRAD || kind == GPU_KIND_POINTWISE || kind == GPU_KIND_STRIDED ||
           kind == GPU_KIND_CONV || kind == GPU_KIND_FC;
}

#define GK_NUM(name, field, def, lo, hi, help) {name, CFG_DOUBLE, offsetof(GpuModel, field), def, lo, hi, NULL, help}

/* The defaults are the GTX 1080 Ti: data sheet constants, and the factors fitted to Johnson's
 * cnn-benchmarks backward times (gpu.h: the fit and its residuals). */
static const CfgKey gpu_keys[] = {
    {"name", CFG_STRING, offsetof(GpuModel, name), "gtx1080ti-cudnn5.1", 0, 0, NULL, "card and software stack (text)"},
    GK_NUM("lanes", lanes, "3584", 1, 1e7, "f32 FMA lanes, i.e. CUDA cores (lanes)"),
    GK_NUM("clock-ghz", clock_ghz, "1.582", DBL_MIN, 10,
           "clock of the peak rate (GHz; boost, see accel/gpu.h for why not the 1.480 base)"),
    GK_NUM("flops-per-lane-cycle", flops_per_lane_cycle, "2", DBL_MIN, 64, "FLOP per lane per cycle (2 = one FMA)"),
    GK_NUM("bandwidth-gbs", bandwidth_gbs, "484", DBL_MIN, 1e5, "DRAM bandwidth (GB/s, 1e9 bytes per second)"),
    GK_NUM("factor-winograd", factor[GPU_KIND_WINOGRAD], "1.12", DBL_MIN, 16,
           "effective rate of 3x3 stride-1 convs (fraction of the peak, fitted)"),
    GK_NUM("factor-pointwise", factor[GPU_KIND_POINTWISE], "0.405", DBL_MIN, 16,
           "effective rate of 1x1 convs (fraction of the peak, fitted)"),
    GK_NUM("factor-strided", factor[GPU_KIND_STRIDED], "0.1225", DBL_MIN, 16,
           "effective rate of k x k convs with k > 1 and stride > 1 (fraction of the peak, fitted)"),
    GK_NUM("factor-conv", factor[GPU_KIND_CONV], "0.405", DBL_MIN, 16,
           "effective rate of other convs (fraction of the peak; = factor-pointwise, not fitted)"),
    GK_NUM("factor-fc", factor[GPU_KIND_FC], "0.405", DBL_MIN, 16,
           "effective rate of fully connected layers (fraction of the peak; = factor-pointwise, not fitted)"),
};

const CfgTable gpu_table = {
    .keys = gpu_keys,
    .n_keys = (int)(sizeof gpu_keys / sizeof gpu_keys[0]),
    .extra_prefix = NULL,
};

int gpu_model_default(GpuModel *g) {
    *g = (GpuModel){0};
    int rc = config_defaults(&gpu_table, g);
    ASSERT(rc == 0); /* the table's defaults parse */
    return 0;
}

int gpu_model_load(GpuModel *g, const char *path) {
    int rc = 0;
    GpuModel t;
    gpu_model_default(&t);
    TRY(config_load_ini(&gpu_table, &t, NULL, path));
    TRY(gpu_model_check(&t));
    *g = t;
fail:
    return rc;
}

static bool gpu_positive(double x) { return isfinite(x) && x > 0; }

int gpu_model_check(const GpuModel *g) {
    int rc = 0;
    if (!gpu_positive(g->lanes)) FAIL(ERR_CONFIG, "gpu %s: lanes %g; expected a number > 0", g->name, g->lanes);
    if (!gpu_positive(g->clock_ghz))
        FAIL(ERR_CONFIG, "gpu %s: clock_ghz %g; expected a number > 0", g->name, g->clock_ghz);
    if (!gpu_positive(g->flops_per_lane_cycle))
        FAIL(ERR_CONFIG, "gpu %s: flops_per_lane_cycle %g; expected a number > 0", g->name, g->flops_per_lane_cycle);
    if (!gpu_positive(g->bandwidth_gbs))
        FAIL(ERR_CONFIG, "gpu %s: bandwidth_gbs %g; expected a number > 0", g->name, g->bandwidth_gbs);
    for (int k = 0; k < GPU_N_KINDS; k++)
        if (gpu_kind_has_factor((GpuKind)k) && !gpu_positive(g->factor[k]))
            FAIL(ERR_CONFIG, "gpu %s: factor of kind %s is %g; expected a number > 0", g->name,
                 gpu_kind_name((GpuKind)k), g->factor[k]);
fail:
    return rc;
}

double gpu_peak_flops(const GpuModel *g) { return g->lanes * g->clock_ghz * 1e9 * g->flops_per_lane_cycle; }

GpuKind gpu_layer_kind(const LayerSpec *s) {
    switch (s->kind) {
    case LAYER_INPUT: return GPU_KIND_NONE;
    case LAYER_FC: return GPU_KIND_FC;
    case LAYER_CONV:
        if (s->kh == 1 && s->kw == 1) return GPU_KIND_POINTWISE;
        if (s->stride > 1) return GPU_KIND_STRIDED;
        if (s->kh == 3 && s->kw == 3) return GPU_KIND_WINOGRAD;
        return GPU_KIND_CONV;
    default: return GPU_KIND_MEMORY;
    }
}

/* ---- bytes per layer kind (gpu.h lists the operands) ---------------------------------------------
 * x: one sample's input elements, y: one sample's output elements, n: batch. */
typedef double (*GpuBytesFn)(const LayerSpec *s, Dims4 in, Dims4 out, double n);

/* conv and fc: read dY, W, X; write dX, dW. fc's weight is (K, C*H*W) = (K, flattened input). */
static double gpu_bytes_weighted(const LayerSpec *s, Dims4 in, Dims4 out, double n) {
    double x = (double)dims_sample(in), y = (double)dims_sample(out);
    double w = s->kind == LAYER_FC ? (double)s->out_c * x : (double)s->out_c * in.c * s->kh * s->kw;
    return GPU_F32_BYTES * (n * y + w + n * x + n * x + w);
}

static double gpu_bytes_bn(const LayerSpec *s, Dims4 in, Dims4 out, double n) {
    double x = (double)dims_sample(in);
    return GPU_F32_BYTES * n * x * (s->relu ? 4 : 3); /* X, dY, dX (+ Y) */
}

static double gpu_bytes_relu(const LayerSpec *s, Dims4 in, Dims4 out, double n) {
    return GPU_F32_BYTES * n * (double)dims_sample(in) * 3; /* Y, dY, dX */
}

static double gpu_bytes_add(const LayerSpec *s, Dims4 in, Dims4 out, double n) {
    return GPU_F32_BYTES * n * (double)dims_sample(out) * (s->relu ? 4 : 3); /* dY, dX0, dX1 (+ Y) */
}

static double gpu_bytes_pool(const LayerSpec *s, Dims4 in, Dims4 out, double n) {
    return GPU_F32_BYTES * n * (2 * (double)dims_sample(in) + 2 * (double)dims_sample(out)); /* X, dX, Y, dY */
}

static double gpu_bytes_pass(const LayerSpec *s, Dims4 in, Dims4 out, double n) {
    return GPU_F32_BYTES * n * ((double)dims_sample(in) + (double)dims_sample(out)); /* dY (loss: P), dX */
}

static const GpuBytesFn gpu_bytes_fns[LAYER_N_KINDS] = {
    [LAYER_CONV] = gpu_bytes_weighted, [LAYER_FC] = gpu_bytes_weighted, [LAYER_BN] = gpu_bytes_bn,
    [LAYER_RELU] = gpu_bytes_relu,     [LAYER_ADD] = gpu_bytes_add,     [LAYER_MAXPOOL] = gpu_bytes_pool,
    [LAYER_AVGPOOL] = gpu_bytes_pool,  [LAYER_GAP] = gpu_bytes_pass,    [LAYER_LOSS] = gpu_bytes_pass,
};

/* Dense backward FLOPs through flops.h (conv, fc); 0 for the rest. */
static double gpu_layer_flops(const LayerSpec *s, Dims4 in, Dims4 out, int batch) {
    ConvFlops f = {0};
    if (s->kind == LAYER_CONV) flops_conv(s, in, out, batch, 0, false, &f);
    else if (s->kind == LAYER_FC) flops_fc(s, in, out, batch, &f);
    return f.bwd_dense;
}

int gpu_model_network(const GpuModel *g, const ModelSpec *m, int batch, const GpuMeasured *meas,
                      GpuLayerTime *per_layer, GpuNetTime *total) {
    int rc = 0;
    LayerCount *rows = NULL;
    *total = (GpuNetTime){0};
    TRY(gpu_model_check(g));
    if (batch < 1) FAIL(ERR_CONFIG, "gpu: batch %d; expected at least 1", batch);
    if (!m->layers || m->n_layers < 2)
        FAIL(ERR_SHAPE, "gpu: model %s has %d layers; expected at least an input and a loss", m->name, m->n_layers);
    if (meas && meas->n_layers != m->n_layers)
        FAIL(ERR_CONFIG, "gpu: measured times hold %d layers, model %s has %d; load them for this model",
             meas->n_layers, m->name, m->n_layers);
    rows = mem_calloc((size_t)m->n_layers, sizeof *rows);
    if (!rows) FAIL(ERR_NOMEM, "gpu: out of memory for %d layer counts of %s", m->n_layers, m->name);
    TRY(model_count(m, rows, NULL, NULL));

    double peak = gpu_peak_flops(g), bw = g->bandwidth_gbs * 1e9;
    for (int i = 0; i < m->n_layers; i++) {
        const LayerSpec *s = &m->layers[i];
        GpuLayerTime t = {.kind = gpu_layer_kind(s)};
        if (t.kind != GPU_KIND_NONE) {
            Dims4 in = rows[s->in[0]].out, out = rows[i].out;
            GpuBytesFn bytes = gpu_bytes_fns[s->kind];
            t.flops = gpu_layer_flops(s, in, out, batch);
            t.bytes = bytes ? bytes(s, in, out, batch) : 0;
            t.compute_ms = gpu_kind_has_factor(t.kind) ? 1e3 * t.flops / (peak * g->factor[t.kind]) : 0;
            t.memory_ms = 1e3 * t.bytes / bw;
            t.ms = fmax(t.compute_ms, t.memory_ms);
        }
        if (meas && meas->ms[i] >= 0) {
            t.ms = meas->ms[i];
            t.measured = true;
            total->n_measured++;
        }
        if (per_layer) per_layer[i] = t;
        total->total_ms += t.ms;
        if (s->kind == LAYER_CONV || s->kind == LAYER_FC) total->conv_ms += t.ms;
        total->flops += t.flops;
        total->bytes += t.bytes;
    }
fail:
    mem_free(rows);
    return rc;
}

/* ---- the measured-time CSV ----------------------------------------------------------------------- */

/* Trims leading and trailing white space in place; returns the start. */
static char *gpu_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Layer index of a field: a whole decimal integer, else a layer name. -1 when neither matches. */
static int gpu_find_layer(const ModelSpec *m, const char *field, bool *numeric) {
    char *end = NULL;
    errno = 0;
    long idx = strtol(field, &end, 10);
    *numeric = end != field && *end == '\0';
    if (*numeric) return errno == 0 && idx > 0 && idx < m->n_layers ? (int)idx : -1;
    for (int i = 1; i < m->n_layers; i++) /* not the input: it has no backward */
        if (strcmp(m->layers[i].name, field) == 0) return i;
    return -1;
}

int gpu_measured_load(GpuMeasured *meas, const char *path, const ModelSpec *m) {
    int rc = 0;
    FILE *f = NULL;
    char line[GPU_LINE_MAX + 1];
    *meas = (GpuMeasured){0};
    if (!m->layers || m->n_layers < 2)
        FAIL(ERR_SHAPE, "gpu: model %s has %d layers; expected at least an input and a loss", m->name, m->n_layers);
    meas->ms = mem_alloc((size_t)m->n_layers * sizeof *meas->ms);
    if (!meas->ms) FAIL(ERR_NOMEM, "gpu: out of memory for %d measured times", m->n_layers);
    meas->n_layers = m->n_layers;
    for (int i = 0; i < m->n_layers; i++) meas->ms[i] = -1;

    f = fopen(path, "r");
    if (!f) FAIL(ERR_IO, "gpu: cannot open measured times %s: %s", path, strerror(errno));
    int lineno = 0;
    bool seen_content = false;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == GPU_LINE_MAX && line[len - 1] != '\n' && !feof(f))
            FAIL(ERR_FORMAT, "%s:%d: line longer than %d characters; expected LAYER,MS", path, lineno,
                 GPU_LINE_MAX - 1);
        char *s = gpu_trim(line);
        if (*s == '\0' || *s == '#') continue;
        char *comma = strchr(s, ',');
        if (!comma || strchr(comma + 1, ','))
            FAIL(ERR_FORMAT, "%s:%d: '%s' is not two comma-separated fields; expected LAYER,MS", path, lineno, s);
        *comma = '\0';
        char *name = gpu_trim(s), *value = gpu_trim(comma + 1);
        if (!seen_content && strcasecmp(name, "layer") == 0 && strcasecmp(value, "ms") == 0) {
            seen_content = true; /* the header */
            continue;
        }
        seen_content = true;
        if (*name == '\0') FAIL(ERR_FORMAT, "%s:%d: empty layer field; expected a layer name or index", path, lineno);
        char *end = NULL;
        double ms = strtod(value, &end);
        if (end == value || *end != '\0' || !isfinite(ms) || ms < 0)
            FAIL(ERR_FORMAT, "%s:%d: time '%s' of layer %s; expected a finite number of ms >= 0", path, lineno,
                 value, name);
        bool numeric = false;
        int idx = gpu_find_layer(m, name, &numeric);
        if (idx < 0 && numeric)
            FAIL(ERR_FORMAT, "%s:%d: layer index %s out of range; model %s has layers 1..%d", path, lineno, name,
                 m->name, m->n_layers - 1);
        if (idx < 0)
            FAIL(ERR_FORMAT, "%s:%d: unknown layer '%s'; not a layer name of model %s", path, lineno, name, m->name);
        if (meas->ms[idx] >= 0)
            FAIL(ERR_FORMAT, "%s:%d: layer %s (%d) is named twice", path, lineno, m->layers[idx].name, idx);
        meas->ms[idx] = ms;
    }
    if (ferror(f)) FAIL(ERR_IO, "gpu: cannot read measured times %s: %s", path, strerror(errno));
fail:
    if (f) fclose(f);
    if (rc < 0) gpu_measured_deinit(meas);
    return rc;
}

void gpu_measured_deinit(GpuMeasured *meas) {
    mem_free(meas->ms);
    *meas = (GpuMeasured){0};
}
