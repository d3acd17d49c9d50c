/* cmd_report.c: `resprop report` (tables and figures from a runs directory) and `resprop plot`
 * (the quick figures of one training run). The work is in results/report.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "results/report.h"

static void report_usage(FILE *f) {
    fprintf(f,
            "usage: resprop report RUNS_DIR [--out DIR] [--claims FILE] [--plots DIR] [--no-figures]\n"
            "  Reads every record under RUNS_DIR (recursively): training runs (NAME.h5) and the records of\n"
            "  `flops --out`, `sim --out`, `bench step|backward --out`. Skips NAME.h5.part (incomplete or\n"
            "  failed runs: counted), *.ckpt.h5 (checkpoints) and unreadable files (a warning each). Writes\n"
            "    DIR/tables.md, DIR/tables.tex   a. accuracy per scheme and RS (mean ± std over seeds, delta\n"
            "                                    to dense, the paper's < 1.1%%), b. nominal vs achieved reuse,\n"
            "                                    c. backward FLOP reduction and Amdahl speedup, d. measured CPU\n"
            "                                    backward and step speedups, e. GSCN-sim speedups and sensitivity\n"
            "    DIR/figdata/figN_*.dat          the data of every figure (gnuplot text, # footnote: line)\n"
            "    DIR/figures/figN_*.png, .pdf    figures 1-8 drawn by plots/figN_*.gp (gnuplot)\n"
            "  and prints the path of each. A table or figure without records says which command makes them.\n"
            "  The paper's numbers come from the claims file, not from code.\n"
            "  --out DIR       output directory (default results)\n"
            "  --claims FILE   the paper's claims (default results/paper/claims.csv)\n"
            "  --plots DIR     the gnuplot scripts (default plots)\n"
            "  --no-figures    write tables and figure data only (no gnuplot)\n"
            "  exit: 0 ok (also with skipped records), 1 writing or gnuplot failed, 2 bad input (unreadable\n"
            "  RUNS_DIR, missing or corrupt claims file, bad option)\n");
}

int cmd_report(int argc, char **argv) {
    const char *runs = NULL, *out = "results", *claims_opt = NULL, *plots_opt = NULL;
    bool figures = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            report_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "--out") || !strcmp(a, "--claims") || !strcmp(a, "--plots")) && i + 1 < argc) {
            const char **dst = !strcmp(a, "--out") ? &out : !strcmp(a, "--claims") ? &claims_opt : &plots_opt;
            *dst = argv[++i];
        } else if (!strcmp(a, "--no-figures")) {
            figures = false;
        } else if (a[0] == '-') {
            log_msg(LOG_ERROR, "report: unknown option or missing value: %s", a);
            report_usage(stderr);
            return EXIT_BAD_INPUT;
        } else if (!runs) {
            runs = a;
        } else {
            log_msg(LOG_ERROR, "report: more than one RUNS_DIR (%s and %s)", runs, a);
            return EXIT_BAD_INPUT;
        }
    }
    if (!runs) {
        log_msg(LOG_ERROR, "report: RUNS_DIR is required");
        report_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    char claims_path[PATH_MAX], plots[PATH_MAX];
    if (claims_opt) snprintf(claims_path, sizeof claims_path, "%s", claims_opt);
    else cli_find_resource("results/paper/claims.csv", claims_path, sizeof claims_path);
    if (plots_opt) snprintf(plots, sizeof plots, "%s", plots_opt);
    else cli_find_resource("plots", plots, sizeof plots);
    ReportClaims cl;
    if (report_claims_load(&cl, claims_path)) return EXIT_BAD_INPUT;
    Report rep;
    int rc = report_scan(&rep, runs);
    if (rc) {
        report_claims_deinit(&cl);
        return rc == ERR_IO || rc == ERR_CONFIG ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
    }
    fprintf(stderr, "report: %d training runs, %d flops, %d sim, %d bench_backward, %d bench_step records under %s; "
            "ignored %d .h5.part, %d checkpoints, %d unreadable\n", rep.n_runs, rep.n_flops, rep.n_sims, rep.n_bwd,
            rep.n_step, runs, rep.n_partial, rep.n_ckpt, rep.n_skipped);
    rc = report_mkdirs(out);
    if (!rc) rc = report_write(&rep, &cl, out, stdout);
    if (rc == ERR_FORMAT) rc = EXIT_BAD_INPUT; /* a claim the report needs is missing */
    else if (rc) rc = EXIT_RUN_FAILED;
    if (!rc && figures && report_render(plots, out, stdout)) rc = EXIT_RUN_FAILED;
    report_deinit(&rep);
    report_claims_deinit(&cl);
    if (rc) log_msg(LOG_ERROR, "report: failed (see above); outputs written so far are complete files");
    return rc;
}

static void plot_usage(FILE *f) {
    fprintf(f,
            "usage: resprop plot RUN.h5 [--out DIR] [--plots DIR]\n"
            "  The quick figures of one training run (a complete NAME.h5 or a running/failed NAME.h5.part):\n"
            "    DIR/accuracy.png, .pdf   train and test accuracy and loss per epoch\n"
            "    DIR/reuse.png, .pdf      achieved reuse of every conv layer per logged step\n"
            "    DIR/run_epoch.dat, DIR/run_reuse.dat   their data (gnuplot text)\n"
            "  and prints the path of each.\n"
            "  --out DIR     output directory (default: the record's path without .h5, plus -plots)\n"
            "  --plots DIR   the gnuplot scripts (default plots)\n"
            "  exit: 0 ok, 1 writing or gnuplot failed, 2 bad input (missing or unreadable record, not a\n"
            "  training run)\n");
}

int cmd_plot(int argc, char **argv) {
    const char *run = NULL, *out_opt = NULL, *plots_opt = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            plot_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "--out") || !strcmp(a, "--plots")) && i + 1 < argc) {
            *(!strcmp(a, "--out") ? &out_opt : &plots_opt) = argv[++i];
        } else if (a[0] == '-') {
            log_msg(LOG_ERROR, "plot: unknown option or missing value: %s", a);
            plot_usage(stderr);
            return EXIT_BAD_INPUT;
        } else if (!run) {
            run = a;
        } else {
            log_msg(LOG_ERROR, "plot: more than one record (%s and %s)", run, a);
            return EXIT_BAD_INPUT;
        }
    }
    if (!run) {
        log_msg(LOG_ERROR, "plot: RUN.h5 is required");
        plot_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    char out[PATH_MAX], plots[PATH_MAX];
    if (out_opt) snprintf(out, sizeof out, "%s", out_opt);
    else {
        size_t n = strlen(run);
        size_t cut = n > 3 && !strcmp(run + n - 3, ".h5") ? n - 3 : n > 8 && !strcmp(run + n - 8, ".h5.part") ? n - 8 : n;
        snprintf(out, sizeof out, "%.*s-plots", (int)cut, run);
    }
    if (plots_opt) snprintf(plots, sizeof plots, "%s", plots_opt);
    else cli_find_resource("plots", plots, sizeof plots);
    int rc = report_plot_run(run, out, plots, stdout);
    if (rc) log_msg(LOG_ERROR, "plot: %s: failed (see above)", run);
    return rc == 0 ? 0 : rc == ERR_IO && access(run, R_OK) == 0 ? EXIT_RUN_FAILED
                     : rc == ERR_NOMEM                           ? EXIT_RUN_FAILED
                                                                 : EXIT_BAD_INPUT;
}
