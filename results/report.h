/* report.h: the tables and figure data of `resprop report`, read only from records.
 *
 * Flow: report_scan walks a runs directory, opens every NAME.h5 and files it by kind (training
 * run: no `kind` attribute; "flops", "sim", "bench_step", "bench_backward"), skipping .h5.part
 * (incomplete or failed runs, counted), *.ckpt.h5 (checkpoints, counted) and unreadable records
 * (a warning naming the file). It then groups the training runs (report_aggregate). report_write
 * writes OUT/tables.md, OUT/tables.tex and OUT/figdata/FIG.dat (each under NAME.tmp, renamed), the
 * paper's numbers coming from a claims file (results/paper/claims.csv, report_claims_load), never
 * from code. report_render runs gnuplot on PLOTS/figN_*.gp for each figure data file.
 *
 * Ownership: Report and ReportClaims are value objects; *_deinit frees what *_scan / *_load
 * allocated (through core/mem.h) and accepts a zeroed struct. Every int function returns 0 or a
 * negative ERR_* after logging why, naming the file. */
#ifndef RESPROP_REPORT_H
#define RESPROP_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#define REPORT_NAME 64
#define REPORT_TEXT 512
#define REPORT_PATH 1024
#define REPORT_MAX_DENS 16

/* ---- the paper's claims (data, not code) ---- */
typedef struct {
    char id[REPORT_NAME];
    double value;
    char unit[16];
    char cmp[8];               /* "<", "~" or "=" */
    char text[REPORT_TEXT];    /* what is claimed */
    char source[REPORT_TEXT];  /* where it is published */
} ReportClaim;

typedef struct {
    char path[REPORT_PATH];
    ReportClaim *v;
    int n;
} ReportClaims;

/* Reads a claims CSV: '#' comment lines, a header row
 * "id,value,unit,comparison,text,source", then one claim per row (fields may be double-quoted).
 * ERR_IO if the file cannot be read, ERR_FORMAT (naming file:line) for a bad row or header. */
int report_claims_load(ReportClaims *c, const char *path);
void report_claims_deinit(ReportClaims *c);
/* The claim with that id, or NULL after an error naming the claims file and the id. */
const ReportClaim *report_claim(const ReportClaims *c, const char *id);

/* ---- records ---- */
typedef struct {
    char path[REPORT_PATH];    /* relative to the runs directory */
    char dataset[REPORT_NAME], model[REPORT_NAME], scheme[REPORT_NAME], backend[REPORT_NAME];
    char setting[REPORT_TEXT * 4]; /* config lines "key=value\n" that are not per-point identity */
    char variant[REPORT_TEXT];     /* the scheme's own options ("warmup=none"), "" for defaults */
    int epochs;                /* configured epochs */
    int n_epochs;              /* rows of /epoch */
    long seed;
    double reuse;              /* reuse_nominal (RS) */
    double final_acc;          /* last /epoch test_acc (frac) */
    double reuse_net;          /* 1 - last /network density (FLOP-weighted over conv layers), NAN if absent */
    double reuse_layers;       /* mean over conv layers of the last /layers/NNN_NAME/scheme_epoch reuse, NAN if none */
    int group, row;            /* set by report_aggregate: index into Report.groups / Report.rows */
} ReportRun;

typedef struct {
    char path[REPORT_PATH];
    char model[REPORT_NAME], input[REPORT_NAME];
    long batch;
    double density, p, reduction, conv_reduction, amdahl;
} ReportFlops;

typedef struct {
    char path[REPORT_PATH];
    char model[REPORT_NAME], input[REPORT_NAME], preset[REPORT_NAME], pattern[REPORT_NAME];
    char mask_source[REPORT_PATH]; /* "density", or where the masks came from */
    long batch, pes;
    double dram_gbps, density, cluster, speedup, sim_ms, gpu_ms;
} ReportSim;

typedef struct {
    char path[REPORT_PATH];
    char model[REPORT_NAME], input[REPORT_NAME], scheme[REPORT_NAME], cpu[REPORT_TEXT];
    long batch, threads;
    int n_dens;
    double density[REPORT_MAX_DENS];   /* asked densities, in record order */
    double dense_ms[REPORT_MAX_DENS];  /* sum over conv layers of the median dense ms */
    double sparse_ms[REPORT_MAX_DENS]; /* sum over conv layers of the median sparse ms */
    int n_layers;                      /* conv layers */
} ReportBenchBwd;

typedef struct {
    char path[REPORT_PATH];
    char model[REPORT_NAME], input[REPORT_NAME], scheme[REPORT_NAME], backend[REPORT_NAME], cpu[REPORT_TEXT];
    long batch, threads;
    double reuse, dense_ms, scheme_ms, speedup, mean_density; /* scheme_ms, speedup, mean_density NAN when dense only */
} ReportBenchStep;

/* A group of training runs that share dataset, model, epochs and every other setting. */
typedef struct {
    char dataset[REPORT_NAME], model[REPORT_NAME];
    int epochs;
    char label[REPORT_TEXT];   /* "fmnist, lenet5, 3 epochs" plus the settings that differ between groups */
    const char *setting;       /* points into the first run's setting */
    int n_runs;
} ReportGroup;

/* Runs of one group with the same scheme, RS, backend and scheme options: one row per seed set. */
typedef struct {
    int group;
    char scheme[REPORT_NAME], backend[REPORT_NAME];
    char variant[REPORT_TEXT];
    double reuse;              /* NAN for dense */
    int n;                     /* runs */
    int n_seeds;               /* distinct seeds among them */
    double mean, std;          /* final test accuracy (frac) over seeds (runs of one seed averaged first);
                                  std NAN for a single seed */
    double reuse_net, reuse_layers; /* means over the runs (NAN if absent) */
    int dense;                 /* row index of the group's dense reference, -1 if none */
    double delta;              /* mean - dense mean (frac), NAN without a dense row */
    bool single_seed;          /* this row or its dense reference rests on one seed */
} ReportRow;

typedef struct {
    char dir[REPORT_PATH];
    ReportRun *runs; int n_runs;
    ReportFlops *flops; int n_flops;
    ReportSim *sims; int n_sims;
    ReportBenchBwd *bwd; int n_bwd;
    ReportBenchStep *step; int n_step;
    ReportGroup *groups; int n_groups;
    ReportRow *rows; int n_rows;
    char (*skipped)[REPORT_PATH]; int n_skipped;  /* unreadable or unusable .h5 (warned) */
    char (*partial)[REPORT_PATH]; int n_partial;  /* .h5.part: incomplete or failed runs */
    int n_ckpt;                                   /* *.ckpt.h5 checkpoints (not records) */
} Report;

/* Reads every record under dir (recursively, in sorted path order) and aggregates. ERR_IO if dir
 * cannot be read; unreadable records are warnings and land in rep->skipped. */
int report_scan(Report *rep, const char *dir);
void report_deinit(Report *rep);
/* Groups the runs and fills groups and rows (called by report_scan; exposed for tests). */
int report_aggregate(Report *rep);
/* Mean and sample standard deviation (n - 1) of v[0..n); std NAN for n < 2, both NAN for n == 0. */
void report_mean_std(const double *v, int n, double *mean, double *std);
/* The group whose runs feed figures 1 to 4: the one with the most runs (ties: the first). -1 if none. */
int report_main_group(const Report *rep);

/* Writes out_dir/tables.md, out_dir/tables.tex and out_dir/figdata/FIG.dat; prints each path to
 * `paths` (may be NULL). */
int report_write(const Report *rep, const ReportClaims *claims, const char *out_dir, FILE *paths);
/* Runs gnuplot on plots_dir/<fig>.gp for every figure (out_dir/figdata/<fig>.dat), writing
 * out_dir/figures/<fig>.png and .pdf; prints each path to `paths`. ERR_IO if a script or gnuplot
 * fails or leaves an empty file. */
int report_render(const char *plots_dir, const char *out_dir, FILE *paths);

/* resprop plot: writes out_dir/run_epoch.dat and run_reuse.dat from one training record and draws
 * them with plots_dir/run_accuracy.gp and run_reuse.gp into out_dir/accuracy.{png,pdf} and
 * out_dir/reuse.{png,pdf}; prints each path to `paths`. ERR_FORMAT for a record that is not a
 * training run. */
int report_plot_run(const char *record, const char *out_dir, const char *plots_dir, FILE *paths);
/* Runs gnuplot -e "plotdir='..'; datafile='..'; outbase='..'" script, writing outbase.png and
 * outbase.pdf under temporary names and renaming them; prints both paths to `paths`. */
int report_gnuplot(const char *plots_dir, const char *script, const char *datafile, const char *outbase,
                   FILE *paths);
/* Writes `path` atomically: opens path.tmp; report_file_commit closes and renames it (or removes
 * the .tmp when ok is false). */
int report_file_open(const char *path, FILE **f);
int report_file_commit(const char *path, FILE *f, bool ok);
/* Creates a directory and its parents. */
int report_mkdirs(const char *dir);

#endif
