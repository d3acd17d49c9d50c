/* report_out.c: the report's tables (Markdown and LaTeX from one table model) and figure data
 * (.dat files for plots/figN_*.gp). Reads the Report filled by report_scan, the claims file, and
 * for per-layer figure data the records again. */
#include "results/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sysinfo.h"
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

/* ---- one table model, two renderings ---- */
#define RT_COLS 12
#define RT_CELL 160

typedef struct {
    char title[160];
    char caption[4096];
    int n_cols;
    char head[RT_COLS][64];
    char (*cells)[RT_COLS][RT_CELL];
    int n_rows, cap_rows;
    char note[2048]; /* after the table: the missing-data message or a remark */
} RTable;

static void rt_init(RTable *t, const char *title, int n_cols, const char *const *head) {
    memset(t, 0, sizeof *t);
    sfmt(t->title, sizeof t->title, "%s", title);
    t->n_cols = n_cols;
    for (int i = 0; i < n_cols; i++) sfmt(t->head[i], sizeof t->head[i], "%s", head[i]);
}

static void rt_deinit(RTable *t) { mem_free(t->cells); }

/* A new row of empty cells, or NULL (out of memory, logged). */
static char (*rt_row(RTable *t))[RT_CELL] {
    if (t->n_rows == t->cap_rows) {
        int cap = t->cap_rows ? t->cap_rows * 2 : 16;
        void *p = mem_calloc((size_t)cap, sizeof *t->cells);
        if (!p) {
            log_msg(LOG_ERROR, "report: out of memory");
            return NULL;
        }
        if (t->cells) memcpy(p, t->cells, (size_t)t->n_rows * sizeof *t->cells);
        mem_free(t->cells);
        t->cells = p;
        t->cap_rows = cap;
    }
    memset(t->cells[t->n_rows], 0, sizeof t->cells[0]);
    return t->cells[t->n_rows++];
}

static void cellf(char *cell, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cellf(char *cell, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cell, RT_CELL, fmt, ap);
    va_end(ap);
}

static void appendf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t cap, const char *fmt, ...) {
    size_t l = strlen(buf);
    if (l + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, cap - l, fmt, ap);
    va_end(ap);
}

static void md_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n') fputc(' ', f);
        else fputc(*s, f);
    }
}

static void rt_md(FILE *f, const RTable *t) {
    fprintf(f, "## %s\n\n", t->title);
    md_text(f, t->caption);
    fputs("\n\n", f);
    if (t->n_rows > 0) {
        for (int c = 0; c < t->n_cols; c++) fputs("| ", f), md_text(f, t->head[c]), fputc(' ', f);
        fputs("|\n", f);
        for (int c = 0; c < t->n_cols; c++) fputs("| --- ", f);
        fputs("|\n", f);
        for (int r = 0; r < t->n_rows; r++) {
            for (int c = 0; c < t->n_cols; c++) fputs("| ", f), md_text(f, t->cells[r][c]), fputc(' ', f);
            fputs("|\n", f);
        }
        fputc('\n', f);
    }
    if (t->note[0]) fputs(t->note, f), fputs("\n\n", f);
}

/* LaTeX text: special characters escaped, the few non-ASCII signs we use as math. */
static void tex_text(FILE *f, const char *s) {
    static const struct {
        const char *utf8, *tex;
    } sym[] = {{"±", "$\\pm$"}, {"Δ", "$\\Delta$"}, {"≈", "$\\approx$"}, {"—", "--"}, {"≥", "$\\geq$"}, {"≤", "$\\leq$"},
               {"×", "$\\times$"}, {"°", "$^\\circ$"}, {"−", "$-$"}};
    while (*s) {
        bool done = false;
        for (size_t i = 0; i < sizeof sym / sizeof sym[0] && !done; i++) {
            size_t l = strlen(sym[i].utf8);
            if (strncmp(s, sym[i].utf8, l) == 0) fputs(sym[i].tex, f), s += l, done = true;
        }
        if (done) continue;
        switch (*s) {
        case '&': case '%': case '$': case '#': case '_': case '{': case '}': fputc('\\', f), fputc(*s, f); break;
        case '~': fputs("\\textasciitilde{}", f); break;
        case '^': fputs("\\textasciicircum{}", f); break;
        case '\\': fputs("\\textbackslash{}", f); break;
        case '<': fputs("$<$", f); break;
        case '>': fputs("$>$", f); break;
        case '`': break;
        case '\n': fputc(' ', f); break;
        default: fputc(*s, f);
        }
        s++;
    }
}

static void rt_tex(FILE *f, const RTable *t) {
    fputs("\\subsection*{", f);
    tex_text(f, t->title);
    fputs("}\n", f);
    if (t->n_rows > 0) {
        fputs("\\begin{table}[htbp]\n\\centering\\small\n\\caption{", f);
        tex_text(f, t->caption);
        fputs("}\n\\resizebox{\\textwidth}{!}{%\n\\begin{tabular}{", f);
        for (int c = 0; c < t->n_cols; c++) fputc(c == 0 ? 'l' : 'r', f);
        fputs("}\n\\toprule\n", f);
        for (int c = 0; c < t->n_cols; c++) tex_text(f, t->head[c]), fputs(c + 1 < t->n_cols ? " & " : " \\\\\n", f);
        fputs("\\midrule\n", f);
        for (int r = 0; r < t->n_rows; r++)
            for (int c = 0; c < t->n_cols; c++)
                tex_text(f, t->cells[r][c]), fputs(c + 1 < t->n_cols ? " & " : " \\\\\n", f);
        fputs("\\bottomrule\n\\end{tabular}}\n\\end{table}\n", f);
    } else {
        tex_text(f, t->caption);
        fputs("\n\n", f);
    }
    if (t->note[0]) tex_text(f, t->note), fputs("\n\n", f);
}

/* ---- shared formatting ---- */

static void fmt_num(char *cell, double v, const char *fmt) {
    if (isfinite(v)) cellf(cell, fmt, v);
    else cellf(cell, "—");
}

/* "a.h5, b.h5" when few, else "N records (listed under Records used)". */
static void name_records(char *buf, size_t cap, int n, const char *(*get)(const void *, int), const void *arr) {
    if (n == 0) {
        appendf(buf, cap, "none");
    } else if (n <= 6) {
        for (int i = 0; i < n; i++) appendf(buf, cap, "%s%s", i ? ", " : "", get(arr, i));
    } else {
        appendf(buf, cap, "%d records (listed under \"Records used\")", n);
    }
}

static const char *get_flops(const void *a, int i) { return ((const ReportFlops *)a)[i].path; }
static const char *get_sim(const void *a, int i) { return ((const ReportSim *)a)[i].path; }
static const char *get_bwd(const void *a, int i) { return ((const ReportBenchBwd *)a)[i].path; }
static const char *get_step(const void *a, int i) { return ((const ReportBenchStep *)a)[i].path; }

typedef struct {
    const Report *rep;
    const ReportClaims *cl;
    char missing[16][512]; /* the report's list of missing inputs */
    int n_missing;
} Ctx;

static void add_missing(Ctx *cx, const char *what) {
    if (cx->n_missing < 16) sfmt(cx->missing[cx->n_missing++], sizeof cx->missing[0], "%s", what);
}

static void set_missing(Ctx *cx, RTable *t, const char *kind, const char *cmd) {
    sfmt(t->note, sizeof t->note, "No records of kind %s under %s; produce them with `%s`.", kind, cx->rep->dir, cmd);
    char buf[512];
    sfmt(buf, sizeof buf, "%s: no records of kind %s; produce them with `%s`", t->title, kind, cmd);
    add_missing(cx, buf);
}

static void claim_str(char *buf, size_t cap, const ReportClaim *c) {
    sfmt(buf, cap, "%s %g%s%s", strcmp(c->cmp, "~") == 0 ? "≈" : c->cmp, c->value,
             strcmp(c->unit, "x") == 0 ? "" : " ", strcmp(c->unit, "frac") == 0 ? "" : c->unit);
    if (strcmp(c->unit, "frac") == 0) sfmt(buf, cap, "%s %g%%", strcmp(c->cmp, "~") == 0 ? "≈" : c->cmp, 100 * c->value);
    else if (strcmp(c->unit, "x") == 0) sfmt(buf, cap, "%s %.1fx", strcmp(c->cmp, "~") == 0 ? "≈" : c->cmp, c->value);
}

/* ---- table a: accuracy ---- */

static bool is_resprop(const char *scheme) { return strcmp(scheme, "resprop") == 0; }

static int table_accuracy(Ctx *cx, RTable *t, const ReportClaim *loss) {
    static const char *const head[] = {"group", "scheme", "RS", "backend", "options", "runs (seeds)",
                                       "test acc % (mean ± std)", "Δ vs dense (pp)", "paper", "claim holds"};
    const Report *rep = cx->rep;
    char pc[64];
    claim_str(pc, sizeof pc, loss);
    rt_init(t, "a. Final test accuracy per scheme and RS", 10, head);
    sfmt(t->caption, sizeof t->caption,
             "Final test top-1 accuracy (last row of /epoch/test_acc) of %d complete training runs under %s, grouped by "
             "dataset, model, epochs and every other training setting; mean ± sample std over the seeds of a row "
             "(runs that share a seed are averaged first); "
             "Δ = row mean − the same group's dense mean, in percentage points. Paper: %s (\"%s\", %s); the claim is "
             "about ReSprop and holds when the loss −Δ is below %g pp. \"single seed\" marks a value that rests on one "
             "seed (the row's or its dense reference's). Records: listed under \"Records used\".",
             rep->n_runs, rep->dir, pc, loss->text, loss->source, loss->value);
    if (rep->n_runs == 0) {
        set_missing(cx, t, "training run",
                    "resprop sweep bench/configs/smoke.ini (or resprop train --out RUNS_DIR/NAME.h5)");
        return 0;
    }
    for (int w = 0; w < rep->n_rows; w++) {
        const ReportRow *r = &rep->rows[w];
        char(*c)[RT_CELL] = rt_row(t);
        if (!c) return ERR_NOMEM;
        bool dense = strcmp(r->scheme, "dense") == 0;
        cellf(c[0], "%s", rep->groups[r->group].label);
        cellf(c[1], "%s", r->scheme);
        if (dense) cellf(c[2], "—");
        else cellf(c[2], "%.2f", r->reuse);
        cellf(c[3], "%s", r->backend);
        cellf(c[4], "%s", r->variant[0] ? r->variant : "default");
        cellf(c[5], "%d (%d)", r->n, r->n_seeds);
        if (r->n_seeds >= 2) cellf(c[6], "%.2f ± %.2f", 100 * r->mean, 100 * r->std);
        else cellf(c[6], "%.2f (single seed)", 100 * r->mean);
        if (dense) cellf(c[7], "—");
        else if (r->dense < 0) cellf(c[7], "no dense run");
        else cellf(c[7], "%+.2f%s", 100 * r->delta, r->single_seed ? " (single seed)" : "");
        if (is_resprop(r->scheme)) {
            cellf(c[8], "%s", pc);
            if (r->dense < 0) cellf(c[9], "unknown (no dense run)");
            else cellf(c[9], "%s%s", -100 * r->delta < loss->value ? "yes" : "no", r->single_seed ? " (single seed)" : "");
        } else {
            cellf(c[8], "—");
            cellf(c[9], "—");
        }
    }
    return 0;
}

/* ---- table b: reuse ---- */

static int table_reuse(Ctx *cx, RTable *t, const ReportClaim *reuse) {
    static const char *const head[] = {"group", "scheme", "RS", "backend", "options", "runs",
                                       "nominal %", "achieved % (network)", "achieved % (layer mean)", "paper",
                                       "network − paper (pp)"};
    const Report *rep = cx->rep;
    char pc[64];
    claim_str(pc, sizeof pc, reuse);
    rt_init(t, "b. Nominal vs achieved reuse per network", 11, head);
    sfmt(t->caption, sizeof t->caption,
             "Achieved reuse of the sparsified training runs under %s at their last epoch: \"network\" = 1 − "
             "/network/density (the conv layers' gradient density, weighted by each layer's dense backward FLOPs), "
             "\"layer mean\" = the unweighted mean over conv layers of /layers/NNN_NAME/scheme_epoch/reuse; both "
             "averaged over the row's runs. Nominal = the run's RS (reuse_nominal). Paper: %s (\"%s\", %s).",
             rep->dir, pc, reuse->text, reuse->source);
    int n = 0;
    for (int w = 0; w < rep->n_rows; w++) {
        const ReportRow *r = &rep->rows[w];
        if (strcmp(r->scheme, "dense") == 0) continue;
        char(*c)[RT_CELL] = rt_row(t);
        if (!c) return ERR_NOMEM;
        n++;
        cellf(c[0], "%s", rep->groups[r->group].label);
        cellf(c[1], "%s", r->scheme);
        cellf(c[2], "%.2f", r->reuse);
        cellf(c[3], "%s", r->backend);
        cellf(c[4], "%s", r->variant[0] ? r->variant : "default");
        cellf(c[5], "%d%s", r->n, r->n_seeds == 1 ? " (single seed)" : "");
        cellf(c[6], "%.1f", 100 * r->reuse);
        fmt_num(c[7], 100 * r->reuse_net, "%.1f");
        fmt_num(c[8], 100 * r->reuse_layers, "%.1f");
        cellf(c[9], "%s", pc);
        fmt_num(c[10], 100 * (r->reuse_net - reuse->value), "%+.1f");
    }
    if (n == 0) {
        if (rep->n_runs == 0) set_missing(cx, t, "training run", "resprop sweep bench/configs/smoke.ini");
        else {
            sfmt(t->note, sizeof t->note, "No sparsified (non-dense) training runs under %s; produce them with "
                     "`resprop train --scheme resprop --reuse 0.9 --out %s/NAME.h5`.", rep->dir, rep->dir);
            add_missing(cx, "b. reuse: no non-dense training runs (resprop train --scheme resprop --reuse 0.9)");
        }
    }
    return 0;
}

/* ---- table c: FLOPs ---- */

static int table_flops(Ctx *cx, RTable *t, const ReportClaim *red, const ReportClaim *amd) {
    static const char *const head[] = {"model", "input", "batch", "density", "bwd reduction (network)",
                                       "conv only", "paper", "Amdahl speedup", "p", "paper"};
    const Report *rep = cx->rep;
    char pr[64], pa[64], names[2048] = "";
    claim_str(pr, sizeof pr, red);
    claim_str(pa, sizeof pa, amd);
    rt_init(t, "c. Backward FLOP reduction and Amdahl speedup", 10, head);
    name_records(names, sizeof names, rep->n_flops, get_flops, rep->flops);
    sfmt(t->caption, sizeof t->caption,
             "Backward FLOPs of the dense network over those under ReSprop at the stated gradient density (core/flops.h: "
             "2 FLOPs per multiply-add; sparse + pre-ReSprop + elementwise terms; fc layers dense), and the overall "
             "speedup 1 / ((1 − p) + p / reduction) with p the backward share of training time (an assumption: the "
             "paper's p is unknown). Per-layer values: figdata/fig5_flops_layers.dat. Paper: %s (%s) and %s (%s), %s. "
             "Records (kind flops) under %s: %s.",
             pr, red->text, pa, amd->text, red->source, rep->dir, names);
    if (rep->n_flops == 0) {
        set_missing(cx, t, "flops", "resprop flops --model resnet34 --input 3x224x224 --batch 64 --density 0.1 --out RUNS_DIR/flops/resnet34.h5");
        return 0;
    }
    for (int i = 0; i < rep->n_flops; i++) {
        const ReportFlops *f = &rep->flops[i];
        char(*c)[RT_CELL] = rt_row(t);
        if (!c) return ERR_NOMEM;
        cellf(c[0], "%s", f->model);
        cellf(c[1], "%s", f->input);
        cellf(c[2], "%ld", f->batch);
        cellf(c[3], "%.3g", f->density);
        cellf(c[4], "%.2fx", f->reduction);
        cellf(c[5], "%.2fx", f->conv_reduction);
        cellf(c[6], "%s", pr);
        cellf(c[7], "%.2fx", f->amdahl);
        cellf(c[8], "%.2f", f->p);
        cellf(c[9], "%s", pa);
    }
    return 0;
}

/* ---- table d: CPU measurements ---- */

static void cpus(const Report *rep, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int k = 0; k < rep->n_bwd + rep->n_step; k++) {
        const char *cpu = k < rep->n_bwd ? rep->bwd[k].cpu : rep->step[k - rep->n_bwd].cpu;
        if (!strstr(buf, cpu)) appendf(buf, cap, "%s\"%s\"", buf[0] ? ", " : "", cpu);
    }
}

static int table_bench(Ctx *cx, RTable *tb, RTable *ts) {
    static const char *const hb[] = {"model", "input", "batch", "threads", "scheme", "density", "conv layers",
                                     "dense ms", "sparse ms", "speedup"};
    static const char *const hs[] = {"model", "input", "batch", "threads", "scheme", "backend", "RS", "dense ms",
                                     "scheme ms", "speedup", "mean density"};
    const Report *rep = cx->rep;
    char cpu[2048], names[2048] = "";
    cpus(rep, cpu, sizeof cpu);
    rt_init(tb, "d1. Measured CPU backward speedup per network (bench backward)", 10, hb);
    name_records(names, sizeof names, rep->n_bwd, get_bwd, rep->bwd);
    sfmt(tb->caption, sizeof tb->caption,
             "Sum over the conv layers of the median time of each layer's backward (bwd-data + bwd-weights): dense "
             "oneDNN f32 vs ReSprop on the CPU sparse backend, f32, at each asked density; speedup = dense / sparse. "
             "Machine: %s; threads as listed. Per-layer values: figdata/fig6_bench_backward.dat. Records (kind "
             "bench_backward) under %s: %s.", cpu[0] ? cpu : "—", rep->dir, names);
    if (rep->n_bwd == 0)
        set_missing(cx, tb, "bench_backward", "resprop bench backward --model resnet18 --density 0.05,0.1 --out RUNS_DIR/bench/backward-resnet18.h5");
    for (int i = 0; i < rep->n_bwd; i++)
        for (int d = 0; d < rep->bwd[i].n_dens; d++) {
            const ReportBenchBwd *b = &rep->bwd[i];
            char(*c)[RT_CELL] = rt_row(tb);
            if (!c) return ERR_NOMEM;
            cellf(c[0], "%s", b->model);
            cellf(c[1], "%s", b->input);
            cellf(c[2], "%ld", b->batch);
            cellf(c[3], "%ld", b->threads);
            cellf(c[4], "%s", b->scheme);
            cellf(c[5], "%.3g", b->density[d]);
            cellf(c[6], "%d", b->n_layers);
            cellf(c[7], "%.2f", b->dense_ms[d]);
            cellf(c[8], "%.2f", b->sparse_ms[d]);
            fmt_num(c[9], b->dense_ms[d] / b->sparse_ms[d], "%.2fx");
        }
    names[0] = '\0';
    rt_init(ts, "d2. Measured CPU training-step speedup (bench step)", 11, hs);
    name_records(names, sizeof names, rep->n_step, get_step, rep->step);
    sfmt(ts->caption, sizeof ts->caption,
             "Median training-step time (forward + backward + SGD) of the dense net on oneDNN f32 and of the same net "
             "with the scheme and backend listed, f32, steps alternated; speedup = dense median / scheme median. "
             "Machine: %s. Records (kind bench_step) under %s: %s.", cpu[0] ? cpu : "—", rep->dir, names);
    if (rep->n_step == 0)
        set_missing(cx, ts, "bench_step", "resprop bench step --model resnet18 --scheme resprop --reuse 0.9 --backend sparse --out RUNS_DIR/bench/step-resnet18.h5");
    for (int i = 0; i < rep->n_step; i++) {
        const ReportBenchStep *b = &rep->step[i];
        char(*c)[RT_CELL] = rt_row(ts);
        if (!c) return ERR_NOMEM;
        cellf(c[0], "%s", b->model);
        cellf(c[1], "%s", b->input);
        cellf(c[2], "%ld", b->batch);
        cellf(c[3], "%ld", b->threads);
        cellf(c[4], "%s", b->scheme);
        cellf(c[5], "%s", b->backend);
        fmt_num(c[6], b->reuse, "%.2f");
        cellf(c[7], "%.2f", b->dense_ms);
        fmt_num(c[8], b->scheme_ms, "%.2f");
        fmt_num(c[9], b->speedup, "%.2fx");
        fmt_num(c[10], b->mean_density, "%.3f");
    }
    return 0;
}

/* ---- table e: GSCN-sim ---- */

#define SIM_PRESET "gscn-iso-1080ti"
#define SIM_DENSITY 0.1

/* The base point of model's sims at the headline preset, density and uniform pattern: among the
 * matching records, the (PEs, DRAM) pair met most often (a sensitivity sweep keeps the base values in
 * every other sweep), ties to the first path. -1 if none. */
static int sim_headline(const Report *rep, const char *model) {
    int best = -1, best_n = 0;
    for (int i = 0; i < rep->n_sims; i++) {
        const ReportSim *s = &rep->sims[i];
        if (strcmp(s->model, model) || strcmp(s->preset, SIM_PRESET) || fabs(s->density - SIM_DENSITY) > 1e-9 ||
            strcmp(s->pattern, "uniform") || strcmp(s->mask_source, "density"))
            continue;
        int n = 0;
        for (int j = 0; j < rep->n_sims; j++) {
            const ReportSim *o = &rep->sims[j];
            if (!strcmp(o->model, model) && !strcmp(o->preset, SIM_PRESET) && o->pes == s->pes &&
                o->dram_gbps == s->dram_gbps)
                n++;
        }
        if (n > best_n) best = i, best_n = n;
    }
    return best;
}

static const char *const sim_models[] = {"resnet34", "vgg16"};
static const char *const sim_claims[] = {"gscn_speedup_resnet34", "gscn_speedup_vgg16"};

static int table_sim(Ctx *cx, RTable *th, RTable *ts) {
    static const char *const hh[] = {"model", "record", "preset", "PEs", "DRAM GB/s", "density", "pattern",
                                     "speedup", "paper", "ours − paper (%)"};
    static const char *const hs[] = {"model", "preset", "PEs", "DRAM GB/s", "density", "pattern", "mask source",
                                     "sim ms", "GPU model ms", "speedup"};
    const Report *rep = cx->rep;
    char names[2048] = "", src[2 * REPORT_TEXT] = "";
    rt_init(th, "e1. GSCN-sim backward speedup over the GTX 1080 Ti model", 10, hh);
    for (int m = 0; m < 2; m++) {
        const ReportClaim *cl = report_claim(cx->cl, sim_claims[m]);
        if (!cl) return ERR_FORMAT;
        char pcl[64];
        claim_str(pcl, sizeof pcl, cl);
        appendf(src, sizeof src, "%s%s %s (\"%s\", %s)", m ? "; " : "", sim_models[m], pcl, cl->text, cl->source);
        int i = sim_headline(rep, sim_models[m]);
        char(*c)[RT_CELL] = rt_row(th);
        if (!c) return ERR_NOMEM;
        cellf(c[0], "%s", sim_models[m]);
        char pc[64];
        claim_str(pc, sizeof pc, cl);
        cellf(c[8], "%s", pc);
        if (i < 0) {
            cellf(c[1], "no record");
            for (int k = 2; k < 8; k++) cellf(c[k], "—");
            cellf(c[9], "—");
            char buf[512];
            sfmt(buf, sizeof buf, "e1. GSCN-sim: no sim record for %s at preset %s, density %g, uniform; produce it "
                     "with `resprop sim --model %s --input 3x224x224 --batch 64 --density %g --preset %s --out "
                     "RUNS_DIR/sim/%s-d%g.h5`", sim_models[m], SIM_PRESET, SIM_DENSITY, sim_models[m], SIM_DENSITY,
                     SIM_PRESET, sim_models[m], SIM_DENSITY);
            add_missing(cx, buf);
            continue;
        }
        const ReportSim *s = &rep->sims[i];
        cellf(c[1], "%s", s->path);
        cellf(c[2], "%s", s->preset);
        cellf(c[3], "%ld", s->pes);
        cellf(c[4], "%.1f", s->dram_gbps);
        cellf(c[5], "%.3g", s->density);
        cellf(c[6], "%s", s->pattern);
        cellf(c[7], "%.2fx", s->speedup);
        cellf(c[9], "%+.1f", 100 * (s->speedup - cl->value) / cl->value);
    }
    sfmt(th->caption, sizeof th->caption,
             "Simulated conv backward time (bwd-data + bwd-weights with the sparse gradient, plus the pre-ReSprop "
             "dense work) on GSCN-sim at preset %s, mask density %g (90%% reuse), uniform mask, against the GTX 1080 "
             "Ti model's dense conv backward; speedup = GPU model ms / sim ms. GSCN-sim is the harness's own "
             "documented accelerator model (accel/sim.h), not the thesis's GSCN, whose design is unpublished. When "
             "several records match, the one whose PEs and DRAM bandwidth occur most often among the model's records "
             "at that preset (the sensitivity sweep's base point) is used. Paper: %s.",
             SIM_PRESET, SIM_DENSITY, src);
    rt_init(ts, "e2. GSCN-sim sensitivity (every sim record)", 10, hs);
    name_records(names, sizeof names, rep->n_sims, get_sim, rep->sims);
    sfmt(ts->caption, sizeof ts->caption,
             "Every sim record under %s (GSCN-sim, the harness's own accelerator model, not the thesis's GSCN): "
             "network conv backward speedup over the GTX 1080 Ti model. Records: %s.", rep->dir, names);
    if (rep->n_sims == 0)
        set_missing(cx, ts, "sim", "resprop sim --model resnet34 --input 3x224x224 --batch 64 --density 0.1 --preset gscn-iso-1080ti --out RUNS_DIR/sim/resnet34-d0.1.h5");
    /* sorted view: model, preset, PEs, DRAM, density, pattern */
    int *ord = mem_calloc((size_t)(rep->n_sims ? rep->n_sims : 1), sizeof *ord);
    if (!ord) return ERR_NOMEM;
    for (int i = 0; i < rep->n_sims; i++) ord[i] = i;
    for (int i = 1; i < rep->n_sims; i++)
        for (int j = i; j > 0; j--) {
            const ReportSim *a = &rep->sims[ord[j - 1]], *b = &rep->sims[ord[j]];
            int c = strcmp(a->model, b->model);
            if (!c) c = strcmp(a->preset, b->preset);
            if (!c) c = (a->pes > b->pes) - (a->pes < b->pes);
            if (!c) c = (a->dram_gbps > b->dram_gbps) - (a->dram_gbps < b->dram_gbps);
            if (!c) c = (a->density > b->density) - (a->density < b->density);
            if (!c) c = (a->cluster > b->cluster) - (a->cluster < b->cluster);
            if (c <= 0) break;
            int t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    for (int k = 0; k < rep->n_sims; k++) {
        const ReportSim *s = &rep->sims[ord[k]];
        char(*c)[RT_CELL] = rt_row(ts);
        if (!c) {
            mem_free(ord);
            return ERR_NOMEM;
        }
        cellf(c[0], "%s", s->model);
        cellf(c[1], "%s", s->preset);
        cellf(c[2], "%ld", s->pes);
        cellf(c[3], "%.1f", s->dram_gbps);
        cellf(c[4], "%.3g", s->density);
        if (strcmp(s->pattern, "uniform") == 0) cellf(c[5], "uniform");
        else cellf(c[5], "%s %.2f", s->pattern, s->cluster);
        cellf(c[6], "%s", s->mask_source);
        cellf(c[7], "%.3f", s->sim_ms);
        cellf(c[8], "%.3f", s->gpu_ms);
        cellf(c[9], "%.2fx", s->speedup);
    }
    mem_free(ord);
    return 0;
}

/* ---- figure data ---- */

typedef struct {
    FILE *f;
    char path[REPORT_PATH];
    int n_blocks;
    long rows;   /* rows of the current block */
    bool ok;
} Dat;

static int dat_open(Dat *d, const char *dir, const char *name, const char *title, const char *footnote) {
    int rc = 0;
    memset(d, 0, sizeof *d);
    d->ok = true;
    sfmt(d->path, sizeof d->path, "%s/%s.dat", dir, name);
    TRY(report_file_open(d->path, &d->f));
    fprintf(d->f, "# %s: figure data written by resprop report (plots/%s.gp draws it)\n", name, name);
    fprintf(d->f, "# title: %s\n# footnote: %s\n", title, footnote);
fail:
    return rc;
}

static void dat_block(Dat *d, const char *cols, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void dat_block(Dat *d, const char *cols, const char *fmt, ...) {
    char label[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(label, sizeof label, fmt, ap);
    va_end(ap);
    if (d->n_blocks > 0) fputs("\n\n", d->f);
    fprintf(d->f, "# block %d: %s\n# %s\n", d->n_blocks, label, cols);
    d->n_blocks++;
    d->rows = 0;
}

static void dat_row(Dat *d, int n, const double *v) {
    for (int i = 0; i < n; i++) fprintf(d->f, "%s%.17g", i ? " " : "", v[i]);
    fputc('\n', d->f);
    d->rows++;
}

static int dat_close(Dat *d, const char *missing, FILE *paths) {
    if (!d->f) return 0;
    if (missing) fprintf(d->f, "# missing: %s\n", missing);
    fprintf(d->f, "# blocks: %d\n", missing ? 0 : d->n_blocks);
    int rc = report_file_commit(d->path, d->f, d->ok);
    d->f = NULL;
    if (!rc && paths) fprintf(paths, "figure data: %s\n", d->path);
    return rc;
}

static void run_path(const Report *rep, const ReportRun *r, char *buf, size_t cap) {
    sfmt(buf, cap, "%s/%s", rep->dir, r->path);
}

/* The footnote of figures built on one group of runs. */
static void group_footnote(const Report *rep, int g, char *buf, size_t cap) {
    char lr[64], bs[64], sched[64];
    const ReportGroup *gr = &rep->groups[g];
    const char *s = gr->setting;
    struct {
        const char *key;
        char *out;
    } keys[] = {{"lr", lr}, {"batch", bs}, {"schedule", sched}};
    for (size_t k = 0; k < 3; k++) {
        keys[k].out[0] = '\0';
        size_t kl = strlen(keys[k].key);
        for (const char *p = s; *p;) {
            const char *eol = strchr(p, '\n');
            size_t len = eol ? (size_t)(eol - p) : strlen(p);
            if (len > kl && !strncmp(p, keys[k].key, kl) && p[kl] == '=')
                sfmt(keys[k].out, 64, "%.*s", (int)(len - kl - 1), p + kl + 1);
            p += len + (eol ? 1 : 0);
        }
    }
    sfmt(buf, cap, "%s; batch %s, lr %s, schedule %s; the group with the most runs (%d) under %s", gr->label, bs,
             lr, sched, gr->n_runs, rep->dir);
}

static int fig_accuracy_epoch(Ctx *cx, const char *dir, FILE *paths) {
    int rc = 0, g = report_main_group(cx->rep);
    const Report *rep = cx->rep;
    char foot[1024] = "", path[REPORT_PATH];
    Dat d;
    double *acc = NULL, *sum = NULL, *cnt = NULL, *vals = NULL;
    long *seeds = NULL;
    H5Reader *rd = NULL;
    if (g >= 0) group_footnote(rep, g, foot, sizeof foot);
    TRY(dat_open(&d, dir, "fig1_accuracy_epoch", "Test accuracy vs epoch: dense and ReSprop", g >= 0 ? foot : "no training runs"));
    for (int w = 0; g >= 0 && w < rep->n_rows; w++) {
        const ReportRow *row = &rep->rows[w];
        if (row->group != g || (strcmp(row->scheme, "dense") && strncmp(row->scheme, "resprop", 7))) continue;
        /* per seed and epoch: the mean over that seed's runs; then mean and std over seeds */
        int ne = rep->groups[g].epochs, ns = 0;
        sum = mem_calloc((size_t)row->n * (size_t)ne, sizeof *sum);
        cnt = mem_calloc((size_t)row->n * (size_t)ne, sizeof *cnt);
        vals = mem_calloc((size_t)row->n, sizeof *vals);
        seeds = mem_calloc((size_t)row->n, sizeof *seeds);
        if (!sum || !cnt || !vals || !seeds) FAIL(ERR_NOMEM, "report: out of memory");
        for (int i = 0; i < rep->n_runs; i++) {
            const ReportRun *r = &rep->runs[i];
            if (r->row != w) continue;
            int k = 0;
            while (k < ns && seeds[k] != r->seed) k++;
            if (k == ns) seeds[ns++] = r->seed;
            long n = 0;
            run_path(rep, r, path, sizeof path);
            TRY(h5reader_open(&rd, path));
            TRY(h5reader_column(rd, "/epoch", "test_acc", &acc, &n));
            for (long e = 0; e < n && e < ne; e++) sum[(size_t)k * ne + e] += acc[e], cnt[(size_t)k * ne + e] += 1;
            mem_free(acc);
            acc = NULL;
            h5reader_close(rd);
            rd = NULL;
        }
        const char *cols = "epoch test_acc_pct std_pct seeds";
        if (strcmp(row->scheme, "dense") == 0) dat_block(&d, cols, "dense (%d seeds)", row->n_seeds);
        else
            dat_block(&d, cols, "%s RS %.2f%s%s%s (%d seeds)", row->scheme, row->reuse, row->variant[0] ? ", " : "",
                      row->variant, strcmp(row->backend, "dnnl") ? ", backend sparse" : "", row->n_seeds);
        for (int e = 0; e < ne; e++) {
            int nv = 0;
            for (int k = 0; k < ns; k++)
                if (cnt[(size_t)k * ne + e] > 0) vals[nv++] = sum[(size_t)k * ne + e] / cnt[(size_t)k * ne + e];
            if (nv == 0) continue;
            double m, sd;
            report_mean_std(vals, nv, &m, &sd);
            double v[4] = {e + 1, 100 * m, isfinite(sd) ? 100 * sd : 0, nv};
            dat_row(&d, 4, v);
        }
        mem_free(sum), mem_free(cnt), mem_free(vals), mem_free(seeds);
        sum = cnt = vals = NULL;
        seeds = NULL;
    }
    rc = dat_close(&d, d.n_blocks ? NULL : "no dense or resprop training runs; produce them with `resprop sweep bench/configs/smoke.ini`", paths);
    if (!d.n_blocks) add_missing(cx, "figure 1: no dense or resprop training runs (resprop sweep bench/configs/smoke.ini)");
fail:
    if (rc && d.f) report_file_commit(d.path, d.f, false);
    h5reader_close(rd);
    mem_free(acc), mem_free(sum), mem_free(cnt), mem_free(vals), mem_free(seeds);
    return rc;
}

static int fig_accuracy_rs(Ctx *cx, const char *dir, FILE *paths) {
    int rc = 0, g = report_main_group(cx->rep);
    const Report *rep = cx->rep;
    char foot[1024] = "";
    Dat d;
    if (g >= 0) group_footnote(rep, g, foot, sizeof foot);
    TRY(dat_open(&d, dir, "fig2_accuracy_rs", "Final test accuracy vs reuse sparsity RS", g >= 0 ? foot : "no training runs"));
    /* one block per (scheme, backend, options) among the non-dense rows, then dense as a line */
    for (int w = 0; g >= 0 && w < rep->n_rows; w++) {
        const ReportRow *row = &rep->rows[w];
        if (row->group != g || strcmp(row->scheme, "dense") == 0) continue;
        bool first = true;
        for (int v = 0; v < w; v++) {
            const ReportRow *o = &rep->rows[v];
            if (o->group == g && !strcmp(o->scheme, row->scheme) && !strcmp(o->backend, row->backend) &&
                !strcmp(o->variant, row->variant))
                first = false;
        }
        if (!first) continue;
        dat_block(&d, "RS test_acc_pct std_pct seeds", "%s%s%s%s", row->scheme, row->variant[0] ? " (" : "", row->variant,
                  row->variant[0] ? ")" : "");
        if (strcmp(row->backend, "dnnl")) fprintf(d.f, "# backend %s\n", row->backend);
        for (int v = w; v < rep->n_rows; v++) {
            const ReportRow *o = &rep->rows[v];
            if (o->group != g || strcmp(o->scheme, row->scheme) || strcmp(o->backend, row->backend) ||
                strcmp(o->variant, row->variant))
                continue;
            double x[4] = {o->reuse, 100 * o->mean, isfinite(o->std) ? 100 * o->std : 0, o->n_seeds};
            dat_row(&d, 4, x);
        }
    }
    int nb = d.n_blocks;
    for (int w = 0; g >= 0 && w < rep->n_rows; w++) {
        const ReportRow *row = &rep->rows[w];
        if (row->group != g || strcmp(row->scheme, "dense") || row->dense != w) continue;
        dat_block(&d, "RS test_acc_pct std_pct seeds", "dense, %s (%d seeds)", row->backend, row->n_seeds);
        for (int x = 0; x < 2; x++) {
            double v[4] = {x, 100 * row->mean, isfinite(row->std) ? 100 * row->std : 0, row->n_seeds};
            dat_row(&d, 4, v);
        }
    }
    rc = dat_close(&d, nb ? NULL : "no sparsified training runs; produce them with `resprop sweep bench/configs/smoke.ini`", paths);
    if (!nb) add_missing(cx, "figure 2: no sparsified training runs (resprop sweep bench/configs/smoke.ini)");
fail:
    return rc;
}

/* The run that feeds figures 3 and 4: in the main group, resprop with RS nearest 0.9 (default
 * options first, then the smallest seed, then path order). -1 if none. */
static int pick_run(const Report *rep) {
    int g = report_main_group(rep), best = -1;
    for (int i = 0; g >= 0 && i < rep->n_runs; i++) {
        const ReportRun *r = &rep->runs[i];
        if (r->group != g || strcmp(r->scheme, "resprop")) continue;
        if (best < 0) {
            best = i;
            continue;
        }
        const ReportRun *b = &rep->runs[best];
        double dr = fabs(r->reuse - 0.9), db = fabs(b->reuse - 0.9);
        if (dr < db - 1e-12) best = i;
        else if (fabs(dr - db) <= 1e-12) {
            if (!r->variant[0] && b->variant[0]) best = i;
            else if (!r->variant[0] == !b->variant[0] && r->seed < b->seed) best = i;
        }
    }
    return best;
}

/* Per conv layer of the picked run: the /layers/NNN_NAME/scheme columns cols[0..n) as blocks. */
static int fig_layers(Ctx *cx, const char *dir, const char *name, const char *title, int n, const char *const *cols,
                      const char *colnames, const char *ref, FILE *paths) {
    int rc = 0, ng = 0, pick = pick_run(cx->rep);
    const Report *rep = cx->rep;
    char foot[2048] = "", path[REPORT_PATH], grp[REPORT_PATH], **groups = NULL;
    double *data[4] = {NULL, NULL, NULL, NULL}, *step = NULL;
    long len[4], nstep = 0;
    H5Reader *rd = NULL;
    Dat d;
    if (pick >= 0) {
        const ReportRun *r = &rep->runs[pick];
        group_footnote(rep, r->group, foot, sizeof foot);
        appendf(foot, sizeof foot, "; run %s (resprop RS %.2f%s%s, seed %ld)", r->path, r->reuse, r->variant[0] ? ", " : "",
                r->variant, r->seed);
    }
    TRY(dat_open(&d, dir, name, title, pick >= 0 ? foot : "no resprop training run"));
    if (ref) fprintf(d.f, "%s\n", ref);
    if (pick >= 0) {
        bool has_layers;
        run_path(rep, &rep->runs[pick], path, sizeof path);
        TRY(h5reader_open(&rd, path));
        TRY(h5reader_has(rd, "/layers", NULL, &has_layers));
        if (has_layers) TRY(h5reader_list_groups(rd, "/layers", &groups, &ng));
        for (int l = 0; l < ng; l++) {
            bool yes;
            sfmt(grp, sizeof grp, "/layers/%s/scheme", groups[l]);
            TRY(h5reader_has(rd, grp, NULL, &yes));
            if (!yes) continue;
            TRY(h5reader_column(rd, grp, "step", &step, &nstep));
            for (int c = 0; c < n; c++) TRY(h5reader_column(rd, grp, cols[c], &data[c], &len[c]));
            long rows = nstep;
            for (int c = 0; c < n; c++) rows = len[c] < rows ? len[c] : rows;
            bool any = false;
            for (long i = 0; i < rows; i++) {
                double v[5] = {step[i]};
                bool fin = true;
                for (int c = 0; c < n; c++) v[c + 1] = data[c][i], fin = fin && isfinite(v[c + 1]);
                if (!fin) continue;
                if (!any) dat_block(&d, colnames, "%s", groups[l]), any = true;
                dat_row(&d, n + 1, v);
            }
            mem_free(step);
            step = NULL;
            for (int c = 0; c < n; c++) mem_free(data[c]), data[c] = NULL;
        }
    }
    char miss[512];
    sfmt(miss, sizeof miss, "%s: %s", name,
             pick < 0 ? "no resprop training run; produce one with `resprop train --scheme resprop --reuse 0.9 --out RUNS_DIR/NAME.h5`"
                      : "the picked run logged no finite values");
    rc = dat_close(&d, d.n_blocks ? NULL : miss, paths);
    if (!d.n_blocks) add_missing(cx, miss);
fail:
    if (rc && d.f) report_file_commit(d.path, d.f, false);
    mem_free(step);
    for (int c = 0; c < 4; c++) mem_free(data[c]);
    h5reader_free_names(groups, ng);
    h5reader_close(rd);
    return rc;
}

/* Per-layer columns of one flat-array record: x = position, cols read from /group. */
static int fig_flops(Ctx *cx, const char *dir, const ReportClaim *red, FILE *paths) {
    int rc = 0;
    const Report *rep = cx->rep;
    char path[REPORT_PATH], foot[1024];
    double *red_l = NULL, *layer = NULL;
    long n = 0, n2 = 0;
    H5Reader *rd = NULL;
    Dat d;
    sfmt(foot, sizeof foot, "resprop flops records under %s (core/flops.h: 2 FLOPs per multiply-add; conv and fc layers in model order; fc stays dense)", rep->dir);
    TRY(dat_open(&d, dir, "fig5_flops_layers", "Backward FLOP reduction per layer (dense / ReSprop)", foot));
    fprintf(d.f, "# ref: %g paper: %s (%s)\n", red->value, red->text, red->source);
    for (int i = 0; i < rep->n_flops; i++) {
        const ReportFlops *f = &rep->flops[i];
        sfmt(path, sizeof path, "%s/%s", rep->dir, f->path);
        TRY(h5reader_open(&rd, path));
        TRY(h5reader_column(rd, "/per_layer", "reduction", &red_l, &n));
        TRY(h5reader_column(rd, "/per_layer", "layer", &layer, &n2));
        dat_block(&d, "position layer_index reduction", "%s %s b%ld d%g (network %.2fx)", f->model, f->input, f->batch,
                  f->density, f->reduction);
        for (long k = 0; k < n && k < n2; k++) {
            double v[3] = {k + 1, layer[k], red_l[k]};
            dat_row(&d, 3, v);
        }
        mem_free(red_l), mem_free(layer);
        red_l = layer = NULL;
        h5reader_close(rd);
        rd = NULL;
    }
    rc = dat_close(&d, d.n_blocks ? NULL : "no flops records; produce them with `resprop flops --model resnet34 --input 3x224x224 --batch 64 --density 0.1 --out RUNS_DIR/flops/resnet34.h5`", paths);
    if (!d.n_blocks) add_missing(cx, "figure 5: no flops records (resprop flops ... --out)");
fail:
    if (rc && d.f) report_file_commit(d.path, d.f, false);
    mem_free(red_l), mem_free(layer);
    h5reader_close(rd);
    return rc;
}

static int fig_bench_backward(Ctx *cx, const char *dir, FILE *paths) {
    int rc = 0, pick = -1;
    const Report *rep = cx->rep;
    char path[REPORT_PATH], foot[2048] = "";
    static const char *const cols[] = {"layer", "density", "dense_ms", "sparse_ms"};
    double *v[4] = {NULL, NULL, NULL, NULL};
    long n[4];
    H5Reader *rd = NULL;
    Dat d;
    for (int i = 0; i < rep->n_bwd; i++)
        if (pick < 0 || rep->bwd[i].n_layers > rep->bwd[pick].n_layers) pick = i;
    if (pick >= 0) {
        const ReportBenchBwd *b = &rep->bwd[pick];
        sfmt(foot, sizeof foot, "%s: %s input %s, batch %ld, %ld threads, CPU %s, f32; median per layer; the "
                 "bench_backward record with the most conv layers", b->path, b->model, b->input, b->batch, b->threads, b->cpu);
    }
    TRY(dat_open(&d, dir, "fig6_bench_backward", "Backward time per conv layer: dense oneDNN vs CPU sparse backend",
                 pick >= 0 ? foot : "no bench_backward records"));
    if (pick >= 0) {
        const ReportBenchBwd *b = &rep->bwd[pick];
        sfmt(path, sizeof path, "%s/%s", rep->dir, b->path);
        TRY(h5reader_open(&rd, path));
        for (int c = 0; c < 4; c++) TRY(h5reader_column(rd, "/", cols[c], &v[c], &n[c]));
        for (int c = 1; c < 4; c++)
            if (n[c] != n[0]) FAIL(ERR_FORMAT, "%s: columns of unequal length", path);
        for (int k = -1; k < b->n_dens; k++) {
            if (k < 0) dat_block(&d, "position layer_index ms", "dense oneDNN");
            else dat_block(&d, "position layer_index ms", "sparse backend, density %g", b->density[k]);
            int pos = 0;
            for (long i = 0; i < n[0]; i++) {
                int dk = k < 0 ? 0 : k;
                if (fabs(v[1][i] - b->density[dk]) > 1e-12) continue;
                double row[3] = {++pos, v[0][i], k < 0 ? v[2][i] : v[3][i]};
                dat_row(&d, 3, row);
            }
        }
    }
    rc = dat_close(&d, d.n_blocks ? NULL : "no bench_backward records; produce one with `resprop bench backward --model resnet18 --density 0.05,0.1 --out RUNS_DIR/bench/backward-resnet18.h5`", paths);
    if (!d.n_blocks) add_missing(cx, "figure 6: no bench_backward records (resprop bench backward ... --out)");
fail:
    if (rc && d.f) report_file_commit(d.path, d.f, false);
    for (int c = 0; c < 4; c++) mem_free(v[c]);
    h5reader_close(rd);
    return rc;
}

static int fig_gscn(Ctx *cx, const char *dir, FILE *paths) {
    int rc = 0, hl[2];
    const Report *rep = cx->rep;
    char path[REPORT_PATH], foot[2048];
    double *sp = NULL;
    long n = 0;
    H5Reader *rd = NULL;
    Dat d;
    sfmt(foot, sizeof foot, "GSCN-sim (the harness's own model, accel/sim.h; not the thesis's unpublished GSCN), "
             "preset %s, density %g uniform, vs the GTX 1080 Ti model; records:", SIM_PRESET, SIM_DENSITY);
    for (int m = 0; m < 2; m++) {
        hl[m] = sim_headline(rep, sim_models[m]);
        if (hl[m] >= 0) appendf(foot, sizeof foot, " %s", rep->sims[hl[m]].path);
    }
    TRY(dat_open(&d, dir, "fig7_gscn_speedup", "GSCN-sim backward speedup per conv layer and per network", foot));
    for (int m = 0; m < 2; m++) {
        if (hl[m] < 0) continue;
        sfmt(path, sizeof path, "%s/%s", rep->dir, rep->sims[hl[m]].path);
        TRY(h5reader_open(&rd, path));
        TRY(h5reader_column(rd, "/per_layer", "speedup", &sp, &n));
        dat_block(&d, "position speedup", "%s per layer", sim_models[m]);
        for (long k = 0; k < n; k++) {
            double v[2] = {k + 1, sp[k]};
            dat_row(&d, 2, v);
        }
        mem_free(sp);
        sp = NULL;
        h5reader_close(rd);
        rd = NULL;
    }
    int nb = d.n_blocks;
    if (nb) {
        dat_block(&d, "position ours paper model", "network (ours vs paper)");
        for (int m = 0; m < 2; m++) {
            if (hl[m] < 0) continue;
            const ReportClaim *cl = report_claim(cx->cl, sim_claims[m]);
            if (!cl) FAIL(ERR_FORMAT, "report: the claims file lacks %s", sim_claims[m]);
            fprintf(d.f, "%d %.17g %.17g %s\n", m + 1, rep->sims[hl[m]].speedup, cl->value, sim_models[m]);
        }
    }
    rc = dat_close(&d, nb ? NULL : "no sim records for resnet34 or vgg16 at preset gscn-iso-1080ti, density 0.1 uniform; produce them with `resprop sim --model resnet34 --input 3x224x224 --batch 64 --density 0.1 --preset gscn-iso-1080ti --out RUNS_DIR/sim/resnet34-d0.1.h5`", paths);
    if (!nb) add_missing(cx, "figure 7: no headline sim records (resprop sim --model resnet34|vgg16 ... --preset gscn-iso-1080ti --density 0.1 --out)");
fail:
    if (rc && d.f) report_file_commit(d.path, d.f, false);
    mem_free(sp);
    h5reader_close(rd);
    return rc;
}

/* Figure 8: one block, rows "panel x speedup" (panel 1 PEs, 2 DRAM GB/s, 3 density, 4 cluster) over
 * the sim records of the model with the most of them at the headline preset that vary one parameter
 * from the base point (the most frequent value of each parameter). */
static double sim_param(const ReportSim *s, int p) {
    return p == 0 ? (double)s->pes : p == 1 ? s->dram_gbps : p == 2 ? s->density : s->cluster;
}

static int fig_sensitivity(Ctx *cx, const char *dir, FILE *paths) {
    int rc = 0, best = -1, best_n = 0;
    const Report *rep = cx->rep;
    char foot[2048];
    Dat d;
    d.f = NULL;
    for (int i = 0; i < rep->n_sims; i++) {
        int k = 0;
        for (int j = 0; j < rep->n_sims; j++)
            k += !strcmp(rep->sims[j].model, rep->sims[i].model) && !strcmp(rep->sims[j].preset, SIM_PRESET);
        if (!strcmp(rep->sims[i].preset, SIM_PRESET) && k > best_n) best = i, best_n = k;
    }
    double base[4] = {0, 0, 0, 0};
    const char *model = best >= 0 ? rep->sims[best].model : "";
    for (int p = 0; best >= 0 && p < 4; p++) {
        int top = 0;
        for (int i = 0; i < rep->n_sims; i++) {
            const ReportSim *s = &rep->sims[i];
            if (strcmp(s->model, model) || strcmp(s->preset, SIM_PRESET)) continue;
            int k = 0;
            for (int j = 0; j < rep->n_sims; j++)
                k += !strcmp(rep->sims[j].model, model) && !strcmp(rep->sims[j].preset, SIM_PRESET) &&
                     sim_param(&rep->sims[j], p) == sim_param(s, p);
            if (k > top) top = k, base[p] = sim_param(s, p);
        }
    }
    sfmt(foot, sizeof foot, "GSCN-sim (the harness's own model, not the thesis's GSCN), %s, preset %s; base point "
             "%g PEs, %g GB/s, density %g, cluster %g (the most frequent values); one parameter varied per panel; "
             "records under %s", model, SIM_PRESET, base[0], base[1], base[2], base[3], rep->dir);
    TRY(dat_open(&d, dir, "fig8_gscn_sensitivity", "GSCN-sim sensitivity of the backward speedup", best >= 0 ? foot : "no sim records"));
    int rows = 0;
    if (best >= 0) {
        dat_block(&d, "panel x speedup", "%s", model);
        for (int p = 0; p < 4; p++) {
            double xs[256];
            int nx = 0;
            /* ascending x, first record per x */
            for (;;) {
                int pick = -1;
                for (int i = 0; i < rep->n_sims; i++) {
                    const ReportSim *s = &rep->sims[i];
                    if (strcmp(s->model, model) || strcmp(s->preset, SIM_PRESET) || strcmp(s->mask_source, "density"))
                        continue;
                    bool others = true;
                    for (int q = 0; q < 4; q++)
                        if (q != p && sim_param(s, q) != base[q]) others = false;
                    if (p != 3 && strcmp(s->pattern, "uniform") && base[3] == 0) others = false;
                    if (!others) continue;
                    double x = sim_param(s, p);
                    bool seen = false;
                    for (int k = 0; k < nx; k++) seen = seen || xs[k] == x;
                    if (seen) continue;
                    if (pick < 0 || x < sim_param(&rep->sims[pick], p)) pick = i;
                }
                if (pick < 0 || nx == 256) break;
                xs[nx++] = sim_param(&rep->sims[pick], p);
                double v[3] = {p + 1, xs[nx - 1], rep->sims[pick].speedup};
                dat_row(&d, 3, v);
                rows++;
            }
        }
    }
    rc = dat_close(&d, rows ? NULL : "no sim records at preset gscn-iso-1080ti; produce them with bench/sim_sensitivity.sh or `resprop sim ... --preset gscn-iso-1080ti --out`", paths);
    if (!rows) add_missing(cx, "figure 8: no sim records at preset gscn-iso-1080ti (bench/sim_sensitivity.sh)");
fail:
    if (rc && d.f) report_file_commit(d.path, d.f, false);
    return rc;
}

/* A figure whose records could not be read (a record that scanned fine but lacks a per-layer
 * dataset, say) does not stop the report: its data file says so, and so does tables.md. */
static int fig_guard(Ctx *cx, const char *dir, const char *name, int rc, FILE *paths) {
    if (rc == 0 || rc == ERR_NOMEM || rc == ERR_IO) return rc;
    char miss[512];
    Dat d;
    sfmt(miss, sizeof miss, "%s: reading its records failed (%s; the error above names the record)", name, err_str(rc));
    log_msg(LOG_WARN, "report: %s", miss);
    add_missing(cx, miss);
    int rc2 = dat_open(&d, dir, name, name, "see the warnings of resprop report");
    if (!rc2) rc2 = dat_close(&d, miss, paths);
    return rc2;
}

/* ---- the whole report ---- */

static int write_tables(Ctx *cx, RTable *t, int n_t, const char *out_dir, FILE *paths) {
    int rc = 0;
    const Report *rep = cx->rep;
    char md[REPORT_PATH], tex[REPORT_PATH], when[32];
    FILE *fm = NULL, *ft = NULL;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    sfmt(md, sizeof md, "%s/tables.md", out_dir);
    sfmt(tex, sizeof tex, "%s/tables.tex", out_dir);
    TRY(report_file_open(md, &fm));
    TRY(report_file_open(tex, &ft));
    char intro[4096];
    sfmt(intro, sizeof intro,
             "Generated %s by resprop %s (`resprop report %s`) from the records under %s: %d training runs, %d flops, "
             "%d sim, %d bench_backward and %d bench_step records. Ignored: %d incomplete or failed runs (.h5.part), "
             "%d checkpoints (*.ckpt.h5, not records), %d unreadable or unusable .h5 files (warned). The paper's "
             "numbers come from %s.",
             when, resprop_version, rep->dir, rep->dir, rep->n_runs, rep->n_flops, rep->n_sims, rep->n_bwd, rep->n_step,
             rep->n_partial, rep->n_ckpt, rep->n_skipped, cx->cl->path);
    fprintf(fm, "# ReSprop reproduction: tables\n\n%s\n\n## Missing data\n\n", intro);
    fputs("% Written by resprop report: a fragment to \\input{} in a document that loads booktabs and graphicx.\n"
          "\\section*{ReSprop reproduction: tables}\n", ft);
    tex_text(ft, intro);
    fputs("\n\n\\subsection*{Missing data}\n", ft);
    if (cx->n_missing == 0) fputs("Nothing: every table and figure has records.\n\n", fm), fputs("Nothing.\n\n", ft);
    else {
        fputs("\\begin{itemize}\n", ft);
        for (int i = 0; i < cx->n_missing; i++) {
            fprintf(fm, "- %s\n", cx->missing[i]);
            fputs("\\item ", ft), tex_text(ft, cx->missing[i]), fputc('\n', ft);
        }
        fputs("\n", fm);
        fputs("\\end{itemize}\n", ft);
    }
    for (int i = 0; i < n_t; i++) rt_md(fm, &t[i]), rt_tex(ft, &t[i]);
    /* records used */
    fputs("## Records used\n\n", fm);
    fputs("\\subsection*{Records used}\n\\begin{itemize}\\small\n", ft);
    char line[REPORT_PATH * 2];
    for (int i = 0; i < rep->n_runs; i++) {
        const ReportRun *r = &rep->runs[i];
        char rs[32] = ""; /* a dense run has no reuse threshold */
        if (strcmp(r->scheme, "dense") != 0) snprintf(rs, sizeof rs, " RS %.2f", r->reuse);
        sfmt(line, sizeof line, "%s: training run, %s, %s%s, backend %s, seed %ld%s%s", r->path,
             rep->groups[r->group].label, r->scheme, rs, r->backend, r->seed, r->variant[0] ? ", " : "", r->variant);
        fprintf(fm, "- %s\n", line);
        fputs("\\item ", ft), tex_text(ft, line), fputc('\n', ft);
    }
    for (int k = 0; k < 4; k++) {
        int n = k == 0 ? rep->n_flops : k == 1 ? rep->n_sims : k == 2 ? rep->n_bwd : rep->n_step;
        const char *kind = k == 0 ? "flops" : k == 1 ? "sim" : k == 2 ? "bench_backward" : "bench_step";
        for (int i = 0; i < n; i++) {
            const char *p = k == 0 ? rep->flops[i].path : k == 1 ? rep->sims[i].path : k == 2 ? rep->bwd[i].path
                                                                                                 : rep->step[i].path;
            sfmt(line, sizeof line, "%s: %s", p, kind);
            fprintf(fm, "- %s\n", line);
            fputs("\\item ", ft), tex_text(ft, line), fputc('\n', ft);
        }
    }
    for (int i = 0; i < rep->n_partial; i++) {
        sfmt(line, sizeof line, "%s: ignored (incomplete or failed run)", rep->partial[i]);
        fprintf(fm, "- %s\n", line);
        fputs("\\item ", ft), tex_text(ft, line), fputc('\n', ft);
    }
    for (int i = 0; i < rep->n_skipped; i++) {
        sfmt(line, sizeof line, "%s: skipped (unreadable or not a usable record; see the warning)", rep->skipped[i]);
        fprintf(fm, "- %s\n", line);
        fputs("\\item ", ft), tex_text(ft, line), fputc('\n', ft);
    }
    if (rep->n_runs + rep->n_flops + rep->n_sims + rep->n_bwd + rep->n_step + rep->n_partial + rep->n_skipped == 0)
        fputs("- none\n", fm), fputs("\\item none\n", ft);
    fputs("\\end{itemize}\n", ft);
    rc = report_file_commit(md, fm, true);
    fm = NULL;
    if (!rc && paths) fprintf(paths, "table: %s\n", md);
    int rc2 = report_file_commit(tex, ft, rc == 0);
    ft = NULL;
    if (!rc && !rc2 && paths) fprintf(paths, "table: %s\n", tex);
    if (!rc) rc = rc2;
fail:
    if (fm) report_file_commit(md, fm, false);
    if (ft) report_file_commit(tex, ft, false);
    return rc;
}

int report_write(const Report *rep, const ReportClaims *claims, const char *out_dir, FILE *paths) {
    int rc = 0;
    Ctx *cx = NULL;
    RTable t[8];
    int n_t = 0;
    char figdir[REPORT_PATH];
    static const char *const need[] = {"reuse_frac", "acc_loss_pp", "bwd_reduction", "amdahl_speedup",
                                       "gscn_speedup_resnet34", "gscn_speedup_vgg16", "grad_angle_deg"};
    const ReportClaim *cl[7];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 7; i++)
        if (!(cl[i] = report_claim(claims, need[i]))) FAIL(ERR_FORMAT, "%s: the report needs claim '%s'", claims->path, need[i]);
    cx = mem_calloc(1, sizeof *cx);
    if (!cx) FAIL(ERR_NOMEM, "report: out of memory");
    cx->rep = rep;
    cx->cl = claims;
    sfmt(figdir, sizeof figdir, "%s/figdata", out_dir);
    TRY(report_mkdirs(figdir));
    TRY(table_accuracy(cx, &t[n_t++], cl[1]));
    TRY(table_reuse(cx, &t[n_t++], cl[0]));
    TRY(table_flops(cx, &t[n_t++], cl[2], cl[3]));
    n_t += 2;
    TRY(table_bench(cx, &t[n_t - 2], &t[n_t - 1]));
    n_t += 2;
    TRY(table_sim(cx, &t[n_t - 2], &t[n_t - 1]));
    /* figure data first: its missing-data notes go into tables.md */
    TRY(fig_guard(cx, figdir, "fig1_accuracy_epoch", fig_accuracy_epoch(cx, figdir, paths), paths));
    TRY(fig_guard(cx, figdir, "fig2_accuracy_rs", fig_accuracy_rs(cx, figdir, paths), paths));
    static const char *const reuse_cols[] = {"reuse"};
    TRY(fig_guard(cx, figdir, "fig3_reuse_layers",
                  fig_layers(cx, figdir, "fig3_reuse_layers", "Achieved reuse per conv layer over training", 1,
                             reuse_cols, "step reuse_frac", NULL, paths),
                  paths));
    static const char *const sim_cols[] = {"cos_r_g", "angle_r_g"};
    char ref[1024];
    sfmt(ref, sizeof ref, "# ref: %g paper: %s (%s)", cl[6]->value, cl[6]->text, cl[6]->source);
    TRY(fig_guard(cx, figdir, "fig4_grad_similarity",
                  fig_layers(cx, figdir, "fig4_grad_similarity",
                             "Similarity of a sample's output gradient to the stored one from the previous iteration, "
                             "per conv layer",
                             2, sim_cols, "step cos_r_g angle_r_g_deg", ref, paths),
                  paths));
    TRY(fig_guard(cx, figdir, "fig5_flops_layers", fig_flops(cx, figdir, cl[2], paths), paths));
    TRY(fig_guard(cx, figdir, "fig6_bench_backward", fig_bench_backward(cx, figdir, paths), paths));
    TRY(fig_guard(cx, figdir, "fig7_gscn_speedup", fig_gscn(cx, figdir, paths), paths));
    TRY(fig_guard(cx, figdir, "fig8_gscn_sensitivity", fig_sensitivity(cx, figdir, paths), paths));
    TRY(write_tables(cx, t, n_t, out_dir, paths));
fail:
    for (int i = 0; i < 8; i++) rt_deinit(&t[i]);
    mem_free(cx);
    return rc;
}

/* The figures, in order, and the script that draws each. */
static const char *const figures[] = {"fig1_accuracy_epoch", "fig2_accuracy_rs", "fig3_reuse_layers",
                                      "fig4_grad_similarity", "fig5_flops_layers", "fig6_bench_backward",
                                      "fig7_gscn_speedup", "fig8_gscn_sensitivity"};

int report_render(const char *plots_dir, const char *out_dir, FILE *paths) {
    int rc = 0;
    char figdir[REPORT_PATH], data[REPORT_PATH], base[REPORT_PATH], script[REPORT_NAME * 2];
    sfmt(figdir, sizeof figdir, "%s/figures", out_dir);
    TRY(report_mkdirs(figdir));
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
        sfmt(data, sizeof data, "%s/figdata/%s.dat", out_dir, figures[i]);
        sfmt(base, sizeof base, "%s/%s", figdir, figures[i]);
        sfmt(script, sizeof script, "%s.gp", figures[i]);
        TRY(report_gnuplot(plots_dir, script, data, base, paths));
    }
fail:
    return rc;
}

/* ---- one run's quick figures (resprop plot) ---- */

int report_plot_run(const char *record, const char *out_dir, const char *plots_dir, FILE *paths) {
    int rc = 0, ng = 0;
    H5Reader *rd = NULL;
    char foot[2048], model[REPORT_NAME], dataset[REPORT_NAME], scheme[REPORT_NAME], status[REPORT_NAME];
    char grp[REPORT_PATH], data[REPORT_PATH], base[REPORT_PATH], **groups = NULL;
    static const char *const ecols[] = {"epoch", "train_loss", "test_loss", "train_acc", "test_acc"};
    double *e[5] = {NULL, NULL, NULL, NULL, NULL}, *step = NULL, *reuse = NULL, rs = NAN, seed = NAN;
    long en[5], ns = 0, nr = 0;
    Dat d;
    d.f = NULL;
    TRY(h5reader_open(&rd, record));
    bool yes;
    TRY(h5reader_has(rd, "/", "kind", &yes));
    if (yes) FAIL(ERR_FORMAT, "%s: not a training run record (it has a 'kind' attribute); resprop plot draws training runs", record);
    TRY(h5reader_attr_str(rd, "/", "model", model, sizeof model));
    TRY(h5reader_attr_str(rd, "/", "dataset", dataset, sizeof dataset));
    TRY(h5reader_attr_str(rd, "/", "scheme", scheme, sizeof scheme));
    TRY(h5reader_attr_str(rd, "/", "status", status, sizeof status));
    TRY(h5reader_attr_f64(rd, "/", "reuse_nominal", &rs));
    TRY(h5reader_attr_f64(rd, "/", "seed", &seed));
    sfmt(foot, sizeof foot, "%s: %s on %s, scheme %s%s, seed %.0f, status %s", record, model, dataset, scheme,
         strcmp(scheme, "dense") ? "" : " (RS n/a)", seed, status);
    if (strcmp(scheme, "dense")) appendf(foot, sizeof foot, ", RS %.2f", rs);
    TRY(report_mkdirs(out_dir));
    /* accuracy and loss per epoch */
    TRY(dat_open(&d, out_dir, "run_epoch", "Accuracy and loss per epoch", foot));
    for (int c = 0; c < 5; c++) TRY(h5reader_column(rd, "/epoch", ecols[c], &e[c], &en[c]));
    long rows = en[0];
    for (int c = 1; c < 5; c++) rows = en[c] < rows ? en[c] : rows;
    if (rows > 0) {
        dat_block(&d, "epoch train_loss_nats test_loss_nats train_acc_pct test_acc_pct", "per epoch");
        for (long i = 0; i < rows; i++) {
            double v[5] = {e[0][i], e[1][i], e[2][i], 100 * e[3][i], 100 * e[4][i]};
            dat_row(&d, 5, v);
        }
    }
    TRY(dat_close(&d, rows ? NULL : "the record has no completed epoch yet", paths));
    /* per-layer reuse per logged step */
    TRY(dat_open(&d, out_dir, "run_reuse", "Achieved reuse per conv layer over training", foot));
    TRY(h5reader_has(rd, "/layers", NULL, &yes));
    if (yes) TRY(h5reader_list_groups(rd, "/layers", &groups, &ng));
    for (int l = 0; l < ng; l++) {
        sfmt(grp, sizeof grp, "/layers/%s/scheme", groups[l]);
        TRY(h5reader_has(rd, grp, NULL, &yes));
        if (!yes) continue;
        TRY(h5reader_column(rd, grp, "step", &step, &ns));
        TRY(h5reader_column(rd, grp, "reuse", &reuse, &nr));
        long n = ns < nr ? ns : nr;
        if (n > 0) dat_block(&d, "step reuse_frac", "%s", groups[l]);
        for (long i = 0; i < n; i++) {
            double v[2] = {step[i], reuse[i]};
            if (isfinite(v[1])) dat_row(&d, 2, v);
        }
        mem_free(step), mem_free(reuse);
        step = reuse = NULL;
    }
    TRY(dat_close(&d, d.n_blocks ? NULL : "the record has no per-layer scheme series (no conv layer logged a step yet)", paths));
    sfmt(data, sizeof data, "%s/run_epoch.dat", out_dir);
    sfmt(base, sizeof base, "%s/accuracy", out_dir);
    TRY(report_gnuplot(plots_dir, "run_accuracy.gp", data, base, paths));
    sfmt(data, sizeof data, "%s/run_reuse.dat", out_dir);
    sfmt(base, sizeof base, "%s/reuse", out_dir);
    TRY(report_gnuplot(plots_dir, "run_reuse.gp", data, base, paths));
fail:
    if (rc && d.f) report_file_commit(d.path, d.f, false);
    for (int c = 0; c < 5; c++) mem_free(e[c]);
    mem_free(step), mem_free(reuse);
    h5reader_free_names(groups, ng);
    h5reader_close(rd);
    return rc;
}
