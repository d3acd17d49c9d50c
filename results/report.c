/* report.c: scanning a runs directory into typed records, grouping the training runs, the claims
 * file, atomic output files and the gnuplot runner. The tables and figure data: report_out.c. */
#include "results/report.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "results/h5rec.h"

/* snprintf that cuts silently (every buffer here is sized for the expected text; a cut label is
 * harmless, and paths are checked where they matter). */
static int sfmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sfmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* ---- small helpers ---- */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Grows *arr (elements of `size` bytes, *n used, *cap allocated) to hold one more; ERR_NOMEM. */
static int grow(void **arr, int n, int *cap, size_t size) {
    if (n < *cap) return 0;
    int ncap = *cap ? *cap * 2 : 16;
    void *p = mem_calloc((size_t)ncap, size);
    if (!p) return ERR_NOMEM;
    if (*arr) memcpy(p, *arr, (size_t)n * size);
    mem_free(*arr);
    *arr = p;
    *cap = ncap;
    return 0;
}

static void copy_str(char *dst, size_t cap, const char *src) {
    sfmt(dst, cap, "%s", src ? src : "");
}

void report_mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, ss = 0;
    *mean = *std = NAN;
    if (n <= 0) return;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    if (n < 2) return;
    for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *std = sqrt(ss / (n - 1));
}

/* ---- files ---- */

int report_mkdirs(const char *dir) {
    int rc = 0;
    char buf[REPORT_PATH];
    if (sfmt(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) FAIL(ERR_CONFIG, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) FAIL(ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = c;
        if (c == '\0') break;
    }
fail:
    return rc;
}

int report_file_open(const char *path, FILE **f) {
    int rc = 0;
    char tmp[REPORT_PATH + 8];
    *f = NULL;
    sfmt(tmp, sizeof tmp, "%s.tmp", path);
    *f = fopen(tmp, "w");
    if (!*f) FAIL(ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
fail:
    return rc;
}

int report_file_commit(const char *path, FILE *f, bool ok) {
    int rc = 0;
    char tmp[REPORT_PATH + 8];
    sfmt(tmp, sizeof tmp, "%s.tmp", path);
    if (!f) return ok ? ERR_IO : 0;
    if (ferror(f)) ok = false;
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        unlink(tmp);
        FAIL(ERR_IO, "%s: writing failed; nothing was left under that name", path);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        FAIL(ERR_IO, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
    }
fail:
    return rc;
}

/* ---- claims ---- */

/* Splits one CSV line into at most max fields (double-quoted fields may hold commas; "" is a
 * quote). Writes into buf; returns the number of fields or -1 for an unterminated quote. */
static int csv_split(const char *line, char *buf, size_t cap, char **fields, int max) {
    int n = 0;
    size_t o = 0;
    const char *p = line;
    while (n < max) {
        fields[n++] = buf + o;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') return -1;
                if (*p == '"' && p[1] == '"') p++;
                else if (*p == '"') {
                    p++;
                    break;
                }
                if (o + 1 < cap) buf[o++] = *p;
                p++;
            }
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') {
                if (o + 1 < cap) buf[o++] = *p;
                p++;
            }
        }
        if (o < cap) buf[o++] = '\0';
        if (*p != ',') break;
        p++;
    }
    return n;
}

int report_claims_load(ReportClaims *c, const char *path) {
    int rc = 0, cap = 0, lineno = 0;
    bool header = false;
    char line[4096], buf[4096];
    FILE *f = NULL;
    memset(c, 0, sizeof *c);
    copy_str(c->path, sizeof c->path, path);
    f = fopen(path, "r");
    if (!f) FAIL(ERR_IO, "%s: cannot read the paper's claims file: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') FAIL(ERR_FORMAT, "%s:%d: line too long", path, lineno);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        char *fld[7];
        int nf = csv_split(line, buf, sizeof buf, fld, 7);
        if (nf != 6)
            FAIL(ERR_FORMAT, "%s:%d: expected 6 comma-separated fields (id,value,unit,comparison,text,source), got %d%s",
                 path, lineno, nf < 0 ? 0 : nf, nf < 0 ? " (unterminated quote)" : "");
        if (!header) {
            if (strcmp(fld[0], "id") || strcmp(fld[1], "value") || strcmp(fld[2], "unit") ||
                strcmp(fld[3], "comparison") || strcmp(fld[4], "text") || strcmp(fld[5], "source"))
                FAIL(ERR_FORMAT, "%s:%d: expected the header row id,value,unit,comparison,text,source", path, lineno);
            header = true;
            continue;
        }
        char *end;
        double v = strtod(fld[1], &end);
        if (end == fld[1] || *end != '\0' || !isfinite(v))
            FAIL(ERR_FORMAT, "%s:%d: claim '%s': value '%s' is not a number", path, lineno, fld[0], fld[1]);
        if (strcmp(fld[3], "<") && strcmp(fld[3], "~") && strcmp(fld[3], "=") && strcmp(fld[3], ">"))
            FAIL(ERR_FORMAT, "%s:%d: claim '%s': comparison '%s': expected <, >, ~ or =", path, lineno, fld[0], fld[3]);
        if (!fld[0][0] || strlen(fld[0]) >= REPORT_NAME)
            FAIL(ERR_FORMAT, "%s:%d: empty or too long claim id", path, lineno);
        for (int i = 0; i < c->n; i++)
            if (strcmp(c->v[i].id, fld[0]) == 0) FAIL(ERR_FORMAT, "%s:%d: claim '%s' appears twice", path, lineno, fld[0]);
        if (grow((void **)&c->v, c->n, &cap, sizeof *c->v)) FAIL(ERR_NOMEM, "%s: out of memory", path);
        ReportClaim *cl = &c->v[c->n++];
        copy_str(cl->id, sizeof cl->id, fld[0]);
        cl->value = v;
        copy_str(cl->unit, sizeof cl->unit, fld[2]);
        copy_str(cl->cmp, sizeof cl->cmp, fld[3]);
        copy_str(cl->text, sizeof cl->text, fld[4]);
        copy_str(cl->source, sizeof cl->source, fld[5]);
    }
    if (ferror(f)) FAIL(ERR_IO, "%s: read error", path);
    if (!header || c->n == 0) FAIL(ERR_FORMAT, "%s: no claims (expected a header row and at least one claim)", path);
fail:
    if (f) fclose(f);
    if (rc) report_claims_deinit(c);
    return rc;
}

void report_claims_deinit(ReportClaims *c) {
    mem_free(c->v);
    c->v = NULL;
    c->n = 0;
}

const ReportClaim *report_claim(const ReportClaims *c, const char *id) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->v[i].id, id) == 0) return &c->v[i];
    log_msg(LOG_ERROR, "%s: no claim with id '%s' (expected: the paper's numbers are looked up by id)", c->path, id);
    return NULL;
}

/* ---- reading records ---- */

typedef struct {
    Report *rep;
    int cap_runs, cap_flops, cap_sims, cap_bwd, cap_step, cap_skipped, cap_partial;
} Scan;

/* Optional attributes: absent -> the default, without an error. */
static int opt_str(H5Reader *rd, const char *name, char *buf, size_t cap, const char *dflt) {
    bool yes;
    int rc = h5reader_has(rd, "/", name, &yes);
    if (rc) return rc;
    if (!yes) {
        copy_str(buf, cap, dflt);
        return 0;
    }
    return h5reader_attr_str(rd, "/", name, buf, cap);
}

static int opt_f64(H5Reader *rd, const char *name, double *v, double dflt) {
    bool yes;
    int rc = h5reader_has(rd, "/", name, &yes);
    if (rc) return rc;
    if (!yes) {
        *v = dflt;
        return 0;
    }
    return h5reader_attr_f64(rd, "/", name, v);
}

static int req_long(H5Reader *rd, const char *name, long *v) {
    double d;
    int rc = h5reader_attr_f64(rd, "/", name, &d);
    if (!rc) *v = (long)d;
    return rc;
}

/* The last value of a column, NAN if the column is empty. */
static int last_value(H5Reader *rd, const char *group, const char *col, double *v) {
    int rc = 0;
    double *data = NULL;
    long n = 0;
    *v = NAN;
    TRY(h5reader_column(rd, group, col, &data, &n));
    if (n > 0) *v = data[n - 1];
fail:
    mem_free(data);
    return rc;
}

/* Keys of a training config that identify a point rather than a setting. */
static bool config_identity_key(const char *k) {
    static const char *const keys[] = {"dataset", "model", "epochs", "scheme", "reuse", "backend", "seed",
                                       "threads", "out", "resume", "log-every", "quiet"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0) return true;
    return false;
}

/* Splits the config text into run->setting ("k=v\n" lines) and run->variant (scheme.* options). */
static void config_split(const char *text, ReportRun *run) {
    size_t so = 0, vo = 0;
    run->setting[0] = run->variant[0] = '\0';
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024], key[256], val[768];
        sfmt(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p += len + (eol ? 1 : 0);
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
        *eq = '\0';
        char *k = line, *v = eq + 1;
        while (*k == ' ' || *k == '\t') k++;
        for (char *e = k + strlen(k); e > k && (e[-1] == ' ' || e[-1] == '\t'); *--e = '\0') {}
        while (*v == ' ' || *v == '\t') v++;
        for (char *e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'); *--e = '\0') {}
        copy_str(key, sizeof key, k);
        copy_str(val, sizeof val, v);
        if (strncmp(key, "scheme.", 7) == 0) {
            int w = sfmt(run->variant + vo, sizeof run->variant - vo, "%s%s=%s", vo ? ", " : "", key + 7, val);
            if (w > 0 && vo + (size_t)w < sizeof run->variant) vo += (size_t)w;
        } else if (!config_identity_key(key)) {
            int w = sfmt(run->setting + so, sizeof run->setting - so, "%s=%s\n", key, val);
            if (w > 0 && so + (size_t)w < sizeof run->setting) so += (size_t)w;
        }
    }
}

/* Mean over conv layers of the last scheme_epoch reuse. */
static int layers_reuse(H5Reader *rd, double *out) {
    int rc = 0, n = 0, used = 0;
    char **groups = NULL, path[REPORT_PATH];
    double sum = 0;
    bool yes;
    *out = NAN;
    TRY(h5reader_has(rd, "/layers", NULL, &yes));
    if (!yes) goto fail;
    TRY(h5reader_list_groups(rd, "/layers", &groups, &n));
    for (int i = 0; i < n; i++) {
        sfmt(path, sizeof path, "/layers/%s/scheme_epoch", groups[i]);
        TRY(h5reader_has(rd, path, NULL, &yes));
        if (!yes) continue;
        double v;
        TRY(last_value(rd, path, "reuse", &v));
        if (isfinite(v)) sum += v, used++;
    }
    if (used) *out = sum / used;
fail:
    h5reader_free_names(groups, n);
    return rc;
}

static int read_run(H5Reader *rd, ReportRun *r) {
    int rc = 0;
    char status[REPORT_NAME], *config = NULL;
    double v;
    bool yes;
    TRY(h5reader_attr_str(rd, "/", "status", status, sizeof status));
    if (strcmp(status, "complete") != 0) FAIL(ERR_FORMAT, "%s: status is '%s', not 'complete'", r->path, status);
    config = mem_alloc(65536);
    if (!config) FAIL(ERR_NOMEM, "out of memory");
    TRY(h5reader_attr_str(rd, "/", "config", config, 65536));
    config_split(config, r);
    TRY(h5reader_attr_str(rd, "/", "dataset", r->dataset, sizeof r->dataset));
    TRY(h5reader_attr_str(rd, "/", "model", r->model, sizeof r->model));
    TRY(h5reader_attr_str(rd, "/", "scheme", r->scheme, sizeof r->scheme));
    TRY(opt_str(rd, "backend", r->backend, sizeof r->backend, "dnnl"));
    TRY(h5reader_attr_f64(rd, "/", "reuse_nominal", &r->reuse));
    TRY(req_long(rd, "seed", &r->seed));
    r->epochs = 0;
    const char *e = strstr(config, "\nepochs = ");
    if (e) r->epochs = atoi(e + 10);
    double *acc = NULL;
    long n = 0;
    TRY(h5reader_column(rd, "/epoch", "test_acc", &acc, &n));
    r->final_acc = n > 0 ? acc[n - 1] : NAN;
    r->n_epochs = (int)n;
    mem_free(acc);
    if (n == 0) FAIL(ERR_FORMAT, "%s: /epoch has no rows", r->path);
    if (r->epochs <= 0) r->epochs = (int)n;
    r->reuse_net = NAN;
    TRY(h5reader_has(rd, "/network", NULL, &yes));
    if (yes) {
        TRY(last_value(rd, "/network", "density", &v));
        r->reuse_net = 1 - v;
    }
    TRY(layers_reuse(rd, &r->reuse_layers));
fail:
    mem_free(config);
    return rc;
}

static int read_flops(H5Reader *rd, ReportFlops *f) {
    int rc = 0;
    TRY(h5reader_attr_str(rd, "/", "model", f->model, sizeof f->model));
    TRY(h5reader_attr_str(rd, "/", "input", f->input, sizeof f->input));
    TRY(req_long(rd, "batch", &f->batch));
    TRY(h5reader_attr_f64(rd, "/", "density", &f->density));
    TRY(h5reader_attr_f64(rd, "/", "p", &f->p));
    TRY(h5reader_attr_f64(rd, "/", "reduction", &f->reduction));
    TRY(h5reader_attr_f64(rd, "/", "conv_reduction", &f->conv_reduction));
    TRY(h5reader_attr_f64(rd, "/", "amdahl_speedup", &f->amdahl));
fail:
    return rc;
}

static int read_sim(H5Reader *rd, ReportSim *s) {
    int rc = 0;
    double v;
    TRY(h5reader_attr_str(rd, "/", "model", s->model, sizeof s->model));
    TRY(h5reader_attr_str(rd, "/", "input", s->input, sizeof s->input));
    TRY(h5reader_attr_str(rd, "/", "preset", s->preset, sizeof s->preset));
    TRY(opt_str(rd, "pattern", s->pattern, sizeof s->pattern, "uniform"));
    TRY(opt_str(rd, "mask_source", s->mask_source, sizeof s->mask_source, "density"));
    TRY(req_long(rd, "batch", &s->batch));
    TRY(h5reader_attr_f64(rd, "/", "pes", &v));
    s->pes = (long)v;
    TRY(h5reader_attr_f64(rd, "/", "dram_gbps", &s->dram_gbps));
    TRY(h5reader_attr_f64(rd, "/", "density", &s->density));
    TRY(opt_f64(rd, "cluster", &s->cluster, 0));
    TRY(h5reader_attr_f64(rd, "/", "speedup", &s->speedup));
    TRY(h5reader_attr_f64(rd, "/", "sim_conv_ms", &s->sim_ms));
    TRY(h5reader_attr_f64(rd, "/", "gpu_conv_ms", &s->gpu_ms));
fail:
    return rc;
}

static int read_bench_common(H5Reader *rd, char *model, char *input, char *cpu, long *batch, long *threads) {
    int rc = 0;
    TRY(h5reader_attr_str(rd, "/", "model", model, REPORT_NAME));
    TRY(h5reader_attr_str(rd, "/", "input", input, REPORT_NAME));
    TRY(opt_str(rd, "cpu", cpu, REPORT_TEXT, "unknown CPU"));
    TRY(req_long(rd, "batch", batch));
    TRY(req_long(rd, "threads", threads));
fail:
    return rc;
}

static int read_bench_bwd(H5Reader *rd, ReportBenchBwd *b) {
    int rc = 0;
    double *dens = NULL, *dms = NULL, *sms = NULL, *layer = NULL;
    long n = 0, n2 = 0, n3 = 0, n4 = 0;
    TRY(read_bench_common(rd, b->model, b->input, b->cpu, &b->batch, &b->threads));
    TRY(opt_str(rd, "scheme", b->scheme, sizeof b->scheme, "resprop"));
    TRY(h5reader_column(rd, "/", "density", &dens, &n));
    TRY(h5reader_column(rd, "/", "dense_ms", &dms, &n2));
    TRY(h5reader_column(rd, "/", "sparse_ms", &sms, &n3));
    TRY(h5reader_column(rd, "/", "layer", &layer, &n4));
    if (n2 != n || n3 != n || n4 != n || n == 0)
        FAIL(ERR_FORMAT, "%s: /density, /dense_ms, /sparse_ms and /layer differ in length or are empty", b->path);
    b->n_dens = 0;
    for (long i = 0; i < n; i++) {
        int d = 0;
        while (d < b->n_dens && fabs(b->density[d] - dens[i]) > 1e-12) d++;
        if (d == b->n_dens) {
            if (d == REPORT_MAX_DENS) FAIL(ERR_FORMAT, "%s: more than %d densities", b->path, REPORT_MAX_DENS);
            b->density[d] = dens[i];
            b->dense_ms[d] = b->sparse_ms[d] = 0;
            b->n_dens++;
        }
        b->dense_ms[d] += dms[i];
        b->sparse_ms[d] += sms[i];
    }
    b->n_layers = (int)(n / b->n_dens);
fail:
    mem_free(dens);
    mem_free(dms);
    mem_free(sms);
    mem_free(layer);
    return rc;
}

static int read_bench_step(H5Reader *rd, ReportBenchStep *b) {
    int rc = 0;
    TRY(read_bench_common(rd, b->model, b->input, b->cpu, &b->batch, &b->threads));
    TRY(opt_str(rd, "scheme", b->scheme, sizeof b->scheme, "dense"));
    TRY(opt_str(rd, "backend", b->backend, sizeof b->backend, "dnnl"));
    TRY(opt_f64(rd, "reuse", &b->reuse, NAN));
    TRY(h5reader_attr_f64(rd, "/", "median_dense_ms", &b->dense_ms));
    TRY(opt_f64(rd, "median_scheme_ms", &b->scheme_ms, NAN));
    TRY(opt_f64(rd, "speedup", &b->speedup, NAN));
    TRY(opt_f64(rd, "mean_density", &b->mean_density, NAN));
fail:
    return rc;
}

#define SCAN_ADD(sc, arr, n, cap, rel, out)                                                           \
    do {                                                                                             \
        if (grow((void **)&(sc)->rep->arr, (sc)->rep->n, &(sc)->cap, sizeof *(sc)->rep->arr))         \
            FAIL(ERR_NOMEM, "report: out of memory");                                                 \
        (out) = &(sc)->rep->arr[(sc)->rep->n];                                                        \
        memset((out), 0, sizeof *(out));                                                             \
        copy_str((out)->path, sizeof (out)->path, rel);                                              \
    } while (0)

/* One .h5 file: classify and read. A record that cannot be used is a warning, not an error. */
static int scan_record(Scan *sc, const char *full, const char *rel) {
    int rc = 0, rrc = 0;
    H5Reader *rd = NULL;
    char kind[REPORT_NAME] = "";
    bool has_kind = false;
    rrc = h5reader_open(&rd, full);
    if (!rrc) rrc = h5reader_has(rd, "/", "kind", &has_kind);
    if (!rrc && has_kind) rrc = h5reader_attr_str(rd, "/", "kind", kind, sizeof kind);
    if (!rrc) {
        Report *rep = sc->rep;
        if (!has_kind) {
            ReportRun *r;
            SCAN_ADD(sc, runs, n_runs, cap_runs, rel, r);
            rrc = read_run(rd, r);
            if (!rrc) rep->n_runs++;
        } else if (strcmp(kind, "flops") == 0) {
            ReportFlops *f;
            SCAN_ADD(sc, flops, n_flops, cap_flops, rel, f);
            rrc = read_flops(rd, f);
            if (!rrc) rep->n_flops++;
        } else if (strcmp(kind, "sim") == 0) {
            ReportSim *s;
            SCAN_ADD(sc, sims, n_sims, cap_sims, rel, s);
            rrc = read_sim(rd, s);
            if (!rrc) rep->n_sims++;
        } else if (strcmp(kind, "bench_backward") == 0) {
            ReportBenchBwd *b;
            SCAN_ADD(sc, bwd, n_bwd, cap_bwd, rel, b);
            rrc = read_bench_bwd(rd, b);
            if (!rrc) rep->n_bwd++;
        } else if (strcmp(kind, "bench_step") == 0) {
            ReportBenchStep *b;
            SCAN_ADD(sc, step, n_step, cap_step, rel, b);
            rrc = read_bench_step(rd, b);
            if (!rrc) rep->n_step++;
        } else {
            log_msg(LOG_WARN, "%s: unknown record kind '%s' (expected flops, sim, bench_step, bench_backward or none "
                    "for a training run)", full, kind);
            rrc = ERR_FORMAT;
        }
    }
    if (rrc == ERR_NOMEM) FAIL(ERR_NOMEM, "report: out of memory");
    if (rrc) {
        log_msg(LOG_WARN, "report: skipping %s: not a usable record (%s; the reason is above)", full, err_str(rrc));
        if (grow((void **)&sc->rep->skipped, sc->rep->n_skipped, &sc->cap_skipped, sizeof *sc->rep->skipped))
            FAIL(ERR_NOMEM, "report: out of memory");
        copy_str(sc->rep->skipped[sc->rep->n_skipped++], REPORT_PATH, rel);
    }
fail:
    h5reader_close(rd);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Walks dir recursively; rel is the path relative to the runs directory ("" at the top). */
static int scan_dir(Scan *sc, const char *dir, const char *rel, int depth) {
    int rc = 0, n = 0, cap = 0;
    DIR *d = NULL;
    char **names = NULL;
    if (depth > 32) FAIL(ERR_IO, "%s: directories nested too deep (a link loop?)", dir);
    d = opendir(dir);
    if (!d && depth > 0) { /* a subdirectory: a warning, like an unreadable record */
        log_msg(LOG_WARN, "report: skipping directory %s: %s", dir, strerror(errno));
        if (grow((void **)&sc->rep->skipped, sc->rep->n_skipped, &sc->cap_skipped, sizeof *sc->rep->skipped))
            FAIL(ERR_NOMEM, "report: out of memory");
        copy_str(sc->rep->skipped[sc->rep->n_skipped++], REPORT_PATH, rel);
        goto fail;
    }
    if (!d) FAIL(ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (grow((void **)&names, n, &cap, sizeof *names)) FAIL(ERR_NOMEM, "report: out of memory");
        names[n] = mem_strdup(e->d_name);
        if (!names[n]) FAIL(ERR_NOMEM, "report: out of memory");
        n++;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char full[REPORT_PATH], sub[REPORT_PATH];
        struct stat st;
        if (sfmt(full, sizeof full, "%s/%s", dir, names[i]) >= (int)sizeof full ||
            sfmt(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", names[i]) >= (int)sizeof sub) {
            log_msg(LOG_WARN, "report: skipping %s/%s: path too long", dir, names[i]);
            continue;
        }
        if (stat(full, &st) != 0) {
            log_msg(LOG_WARN, "report: skipping %s: %s", full, strerror(errno));
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            TRY(scan_dir(sc, full, sub, depth + 1));
        } else if (ends_with(names[i], ".ckpt.h5")) {
            sc->rep->n_ckpt++;
        } else if (ends_with(names[i], ".h5.part")) {
            if (grow((void **)&sc->rep->partial, sc->rep->n_partial, &sc->cap_partial, sizeof *sc->rep->partial))
                FAIL(ERR_NOMEM, "report: out of memory");
            copy_str(sc->rep->partial[sc->rep->n_partial++], REPORT_PATH, sub);
        } else if (ends_with(names[i], ".h5")) {
            TRY(scan_record(sc, full, sub));
        }
    }
fail:
    if (d) closedir(d);
    for (int i = 0; i < n; i++) mem_free(names[i]);
    mem_free(names);
    return rc;
}

int report_scan(Report *rep, const char *dir) {
    int rc = 0;
    Scan sc = {.rep = rep};
    struct stat st;
    memset(rep, 0, sizeof *rep);
    copy_str(rep->dir, sizeof rep->dir, dir);
    if (stat(dir, &st) != 0) FAIL(ERR_IO, "%s: cannot read the runs directory: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) FAIL(ERR_IO, "%s: not a directory (expected the runs directory)", dir);
    TRY(scan_dir(&sc, dir, "", 0));
    TRY(report_aggregate(rep));
fail:
    if (rc) report_deinit(rep);
    return rc;
}

void report_deinit(Report *rep) {
    mem_free(rep->runs);
    mem_free(rep->flops);
    mem_free(rep->sims);
    mem_free(rep->bwd);
    mem_free(rep->step);
    mem_free(rep->groups);
    mem_free(rep->rows);
    mem_free(rep->skipped);
    mem_free(rep->partial);
    memset(rep, 0, sizeof *rep);
}

/* ---- grouping ---- */

static bool same_row(const ReportRow *w, const ReportRun *r) {
    bool dense = strcmp(r->scheme, "dense") == 0;
    return strcmp(w->scheme, r->scheme) == 0 && strcmp(w->backend, r->backend) == 0 &&
           strcmp(w->variant, r->variant) == 0 && (dense || fabs(w->reuse - r->reuse) < 1e-9);
}

/* Row order: dense first, then scheme name, RS, backend, options. */
static int row_cmp(const ReportRow *a, const ReportRow *b) {
    if (a->group != b->group) return a->group < b->group ? -1 : 1;
    bool da = strcmp(a->scheme, "dense") == 0, db = strcmp(b->scheme, "dense") == 0;
    if (da != db) return da ? -1 : 1;
    int c = strcmp(a->scheme, b->scheme);
    if (c) return c;
    if (!da && a->reuse != b->reuse) return a->reuse < b->reuse ? -1 : 1;
    c = strcmp(a->backend, b->backend);
    return c ? c : strcmp(a->variant, b->variant);
}

/* The value of `key` in a setting ("k=v\n" lines) into buf; "" if absent. */
static void setting_get(const char *setting, const char *key, char *buf, size_t cap) {
    size_t kl = strlen(key);
    buf[0] = '\0';
    for (const char *p = setting; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            sfmt(buf, cap, "%.*s", (int)(len - kl - 1), p + kl + 1);
            return;
        }
        p += len + (eol ? 1 : 0);
    }
}

/* Appends to each group label the settings whose values differ between groups. */
static void label_groups(Report *rep) {
    enum { MAX_KEYS = 32 };
    char keys[MAX_KEYS][128];
    int n_keys = 0;
    for (int g = 0; g < rep->n_groups; g++) {
        ReportGroup *gr = &rep->groups[g];
        sfmt(gr->label, sizeof gr->label, "%s, %s, %d epochs", gr->dataset, gr->model, gr->epochs);
    }
    for (int g = 0; g < rep->n_groups; g++) {
        for (const char *p = rep->groups[g].setting; *p;) {
            const char *eol = strchr(p, '\n');
            size_t len = eol ? (size_t)(eol - p) : strlen(p);
            const char *line = p, *eq = memchr(p, '=', len);
            p += len + (eol ? 1 : 0);
            if (!eq || (size_t)(eq - line) >= sizeof keys[0]) continue;
            char key[128], v0[512], vh[512];
            sfmt(key, sizeof key, "%.*s", (int)(eq - line), line);
            bool known = false, varies = false;
            for (int k = 0; k < n_keys; k++) known = known || strcmp(keys[k], key) == 0;
            if (known || n_keys == MAX_KEYS) continue;
            setting_get(rep->groups[0].setting, key, v0, sizeof v0);
            for (int h = 1; h < rep->n_groups && !varies; h++) {
                setting_get(rep->groups[h].setting, key, vh, sizeof vh);
                varies = strcmp(v0, vh) != 0;
            }
            if (varies) sfmt(keys[n_keys++], sizeof keys[0], "%s", key);
        }
    }
    for (int g = 0; g < rep->n_groups; g++) {
        ReportGroup *gr = &rep->groups[g];
        for (int k = 0; k < n_keys; k++) {
            char v[512];
            setting_get(gr->setting, keys[k], v, sizeof v);
            size_t l = strlen(gr->label);
            sfmt(gr->label + l, sizeof gr->label - l, ", %s=%s", keys[k], v[0] ? v : "(unset)");
        }
    }
}

static int group_cmp(const ReportGroup *a, const ReportGroup *b) {
    int c = strcmp(a->dataset, b->dataset);
    if (c) return c;
    if ((c = strcmp(a->model, b->model))) return c;
    if (a->epochs != b->epochs) return a->epochs < b->epochs ? -1 : 1;
    return strcmp(a->setting, b->setting);
}

int report_aggregate(Report *rep) {
    int rc = 0, cap_g = 0, cap_r = 0;
    double *vals = NULL;
    long *seeds = NULL;
    mem_free(rep->groups);
    mem_free(rep->rows);
    rep->groups = NULL;
    rep->rows = NULL;
    rep->n_groups = rep->n_rows = 0;
    if (rep->n_runs == 0) goto fail;
    /* groups, in sorted order */
    for (int i = 0; i < rep->n_runs; i++) {
        ReportRun *r = &rep->runs[i];
        int g = 0;
        for (; g < rep->n_groups; g++) {
            ReportGroup *gr = &rep->groups[g];
            if (!strcmp(gr->dataset, r->dataset) && !strcmp(gr->model, r->model) && gr->epochs == r->epochs &&
                !strcmp(gr->setting, r->setting))
                break;
        }
        if (g == rep->n_groups) {
            if (grow((void **)&rep->groups, rep->n_groups, &cap_g, sizeof *rep->groups)) FAIL(ERR_NOMEM, "report: out of memory");
            ReportGroup *gr = &rep->groups[rep->n_groups++];
            copy_str(gr->dataset, sizeof gr->dataset, r->dataset);
            copy_str(gr->model, sizeof gr->model, r->model);
            gr->epochs = r->epochs;
            gr->setting = r->setting;
        }
        rep->groups[g].n_runs++;
    }
    /* sort groups (insertion sort: few groups) */
    for (int i = 1; i < rep->n_groups; i++)
        for (int j = i; j > 0 && group_cmp(&rep->groups[j - 1], &rep->groups[j]) > 0; j--) {
            ReportGroup t = rep->groups[j];
            rep->groups[j] = rep->groups[j - 1];
            rep->groups[j - 1] = t;
        }
    for (int i = 0; i < rep->n_runs; i++) {
        ReportRun *r = &rep->runs[i];
        for (int g = 0; g < rep->n_groups; g++) {
            ReportGroup *gr = &rep->groups[g];
            if (!strcmp(gr->dataset, r->dataset) && !strcmp(gr->model, r->model) && gr->epochs == r->epochs &&
                !strcmp(gr->setting, r->setting))
                r->group = g;
        }
    }
    label_groups(rep);
    /* rows */
    for (int i = 0; i < rep->n_runs; i++) {
        ReportRun *r = &rep->runs[i];
        int w = 0;
        for (; w < rep->n_rows; w++)
            if (rep->rows[w].group == r->group && same_row(&rep->rows[w], r)) break;
        if (w == rep->n_rows) {
            if (grow((void **)&rep->rows, rep->n_rows, &cap_r, sizeof *rep->rows)) FAIL(ERR_NOMEM, "report: out of memory");
            ReportRow *row = &rep->rows[rep->n_rows++];
            memset(row, 0, sizeof *row);
            row->group = r->group;
            copy_str(row->scheme, sizeof row->scheme, r->scheme);
            copy_str(row->backend, sizeof row->backend, r->backend);
            copy_str(row->variant, sizeof row->variant, r->variant);
            row->reuse = strcmp(r->scheme, "dense") == 0 ? NAN : r->reuse;
        }
    }
    /* sort rows, then assign runs */
    for (int i = 1; i < rep->n_rows; i++)
        for (int j = i; j > 0 && row_cmp(&rep->rows[j - 1], &rep->rows[j]) > 0; j--) {
            ReportRow t = rep->rows[j];
            rep->rows[j] = rep->rows[j - 1];
            rep->rows[j - 1] = t;
        }
    /* runs that share a seed (a dense point repeated at every RS of a grid, say) are averaged
     * first: the mean and std are over seeds, never over copies of one seed */
    vals = mem_calloc((size_t)rep->n_runs * 4, sizeof *vals);
    seeds = mem_calloc((size_t)rep->n_runs, sizeof *seeds);
    if (!vals || !seeds) FAIL(ERR_NOMEM, "report: out of memory");
    for (int w = 0; w < rep->n_rows; w++) {
        ReportRow *row = &rep->rows[w];
        int n = 0, ns = 0, nn = 0, nl = 0;
        double *acc = vals, *cnt = vals + rep->n_runs, *rn = vals + 2 * rep->n_runs, *rl = vals + 3 * rep->n_runs;
        double dummy;
        for (int i = 0; i < rep->n_runs; i++) {
            ReportRun *r = &rep->runs[i];
            if (r->group != row->group || !same_row(row, r)) continue;
            r->row = w;
            n++;
            int k = 0;
            while (k < ns && seeds[k] != r->seed) k++;
            if (k == ns) seeds[ns] = r->seed, acc[ns] = 0, cnt[ns] = 0, ns++;
            acc[k] += r->final_acc;
            cnt[k] += 1;
            if (isfinite(r->reuse_net)) rn[nn++] = r->reuse_net;
            if (isfinite(r->reuse_layers)) rl[nl++] = r->reuse_layers;
        }
        for (int k = 0; k < ns; k++) acc[k] /= cnt[k];
        row->n = n;
        row->n_seeds = ns;
        report_mean_std(acc, ns, &row->mean, &row->std);
        report_mean_std(rn, nn, &row->reuse_net, &dummy);
        report_mean_std(rl, nl, &row->reuse_layers, &dummy);
    }
    /* dense references: same group, same backend preferred */
    for (int w = 0; w < rep->n_rows; w++) {
        ReportRow *row = &rep->rows[w];
        row->dense = -1;
        for (int v = 0; v < rep->n_rows; v++) {
            const ReportRow *d = &rep->rows[v];
            if (d->group != row->group || strcmp(d->scheme, "dense") != 0) continue;
            if (row->dense < 0 || (strcmp(d->backend, row->backend) == 0 &&
                                   strcmp(rep->rows[row->dense].backend, row->backend) != 0))
                row->dense = v;
        }
        row->delta = row->dense >= 0 ? row->mean - rep->rows[row->dense].mean : NAN;
        row->single_seed = row->n_seeds == 1 || (row->dense >= 0 && rep->rows[row->dense].n_seeds == 1);
    }
fail:
    mem_free(vals);
    mem_free(seeds);
    return rc;
}

int report_main_group(const Report *rep) {
    int best = -1;
    for (int g = 0; g < rep->n_groups; g++)
        if (best < 0 || rep->groups[g].n_runs > rep->groups[best].n_runs) best = g;
    return best;
}

/* ---- gnuplot ---- */

static bool has_quote(const char *s) { return strchr(s, '\'') != NULL || strchr(s, '"') != NULL; }

static bool file_nonempty(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

int report_gnuplot(const char *plots_dir, const char *script, const char *datafile, const char *outbase,
                   FILE *paths) {
    int rc = 0;
    char spath[REPORT_PATH], expr[4 * REPORT_PATH], tmpbase[REPORT_PATH + 8];
    static const char *const ext[] = {"png", "pdf"};
    sfmt(spath, sizeof spath, "%s/%s", plots_dir, script);
    sfmt(tmpbase, sizeof tmpbase, "%s.tmp", outbase);
    if (has_quote(plots_dir) || has_quote(datafile) || has_quote(outbase))
        FAIL(ERR_CONFIG, "%s: paths passed to gnuplot may not contain quotes", outbase);
    if (access(spath, R_OK) != 0) FAIL(ERR_IO, "%s: cannot read the gnuplot script: %s", spath, strerror(errno));
    sfmt(expr, sizeof expr, "plotdir='%s'; datafile='%s'; outbase='%s'", plots_dir, datafile, tmpbase);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) FAIL(ERR_IO, "%s: cannot start gnuplot: %s", spath, strerror(errno));
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", "-e", expr, spath, (char *)NULL);
        fprintf(stderr, "error: cannot run gnuplot: %s (install gnuplot-nox)\n", strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) FAIL(ERR_IO, "%s: waiting for gnuplot: %s", spath, strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL(ERR_IO, "%s: gnuplot failed (exit %d) on %s", spath, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
             datafile);
    for (int i = 0; i < 2; i++) {
        char tmp[REPORT_PATH + 16], fin[REPORT_PATH + 16];
        sfmt(tmp, sizeof tmp, "%s.%s", tmpbase, ext[i]);
        sfmt(fin, sizeof fin, "%s.%s", outbase, ext[i]);
        if (!file_nonempty(tmp)) FAIL(ERR_IO, "%s: gnuplot left no (or an empty) %s", spath, tmp);
        if (rename(tmp, fin) != 0) FAIL(ERR_IO, "%s: cannot rename %s: %s", fin, tmp, strerror(errno));
        if (paths) fprintf(paths, "figure: %s\n", fin);
    }
fail:
    for (int i = 0; rc && i < 2; i++) {
        char tmp[REPORT_PATH + 16];
        sfmt(tmp, sizeof tmp, "%s.%s", tmpbase, ext[i]);
        unlink(tmp);
    }
    return rc;
}
