/* `resprop train`, `resprop eval` and `resprop export`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "core/run.h"
#include "core/runconfig.h"
#include "results/export.h"

/* Exit code of a failed run: bad input 2, anything else 1. */
static int exit_code_of(int rc) {
    return rc == ERR_CONFIG || rc == ERR_IO || rc == ERR_FORMAT ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
}

static void train_usage(FILE *f) {
    fprintf(f, "usage: resprop train [--config FILE.ini] [--KEY=VALUE ...] [--resume RUN.h5]\n"
               "  Trains a model and writes its run record (HDF5, NAME.h5.part while running, NAME.h5 when\n"
               "  complete) and a checkpoint (NAME.ckpt.h5) at every epoch end. Progress on stderr.\n"
               "  --resume RUN continues an interrupted run from its checkpoint with its stored config.\n"
               "  Precedence: defaults < --config file < command line. Keys (also valid in INI files):\n");
    config_print_help(&runconfig_table, f);
}

int cmd_train(int argc, char **argv) {
    RunConfig cfg;
    CfgExtra extra;
    memset(&extra, 0, sizeof extra);
    bool help = false;
    if (config_defaults(&runconfig_table, &cfg)) return EXIT_RUN_FAILED;
    int rc = config_parse_args(&runconfig_table, &cfg, &extra, argc, argv, 1, &help);
    if (help) {
        train_usage(stdout);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "(resprop train --help lists the keys)\n");
        return EXIT_BAD_INPUT;
    }
    if (cfg.quiet) log_set_level(LOG_WARN);
    if (cfg.resume[0]) {
        char resume[CFG_STR_MAX];
        snprintf(resume, sizeof resume, "%s", cfg.resume);
        int threads = cfg.threads;
        if ((rc = run_config_for_resume(resume, &cfg, &extra))) return exit_code_of(rc);
        if (threads != cfg.threads)
            log_msg(LOG_WARN, "resume: using the run's %d threads (bitwise continuation needs the same count)", cfg.threads);
    }
    RunSummary sum;
    rc = run_train(&cfg, &extra, NULL, &sum);
    if (rc) {
        char part[sizeof sum.record + 8];
        snprintf(part, sizeof part, "%s.part", sum.record);
        bool kept = sum.record[0] && access(part, F_OK) == 0;
        log_msg(LOG_ERROR, "train failed: %s%s%s", err_str(rc), kept ? "; record so far: " : "", kept ? part : "");
        return exit_code_of(rc);
    }
    printf("done: %d epochs, test acc %.4f (top-5 %.4f), %.1f s, %.0f img/s, data wait %.1f%% of training time\n"
           "record: %s\ncheckpoint: %s\n",
           sum.epochs_done, sum.final_test_acc, sum.final_test_acc5, sum.wall_s, sum.img_per_s,
           100 * sum.data_wait_frac, sum.record, sum.checkpoint);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *dir = "";
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: resprop eval --checkpoint RUN.ckpt.h5 [--data-dir DIR] [--threads T]\n"
                   "  Evaluates a checkpoint on the test split of the dataset its run used: loss, top-1, top-5.\n");
            return 0;
        }
        if (i + 1 < argc && strcmp(argv[i], "--checkpoint") == 0) ckpt = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--data-dir") == 0) dir = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            if (cli_parse_int("--threads", argv[++i], 1, 1024, &threads)) return EXIT_BAD_INPUT;
        } else {
            log_msg(LOG_ERROR, "eval: unexpected argument '%s' (resprop eval --help)", argv[i]);
            return EXIT_BAD_INPUT;
        }
    }
    if (!ckpt) {
        log_msg(LOG_ERROR, "eval: --checkpoint FILE is required");
        return EXIT_BAD_INPUT;
    }
    double loss, a1, a5;
    int rc = run_eval(ckpt, dir, (int)threads, &loss, &a1, &a5);
    return rc ? exit_code_of(rc) : 0;
}

int cmd_export(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: resprop export RUN.h5 --out DIR\n"
                   "  Writes every series of a run record as DIR/<group>.dat (whitespace separated, header line,\n"
                   "  for gnuplot) and DIR/<group>.csv.\n");
            return 0;
        }
        if (i + 1 < argc && strcmp(argv[i], "--out") == 0) out = argv[++i];
        else if (!in && argv[i][0] != '-') in = argv[i];
        else {
            log_msg(LOG_ERROR, "export: unexpected argument '%s' (resprop export --help)", argv[i]);
            return EXIT_BAD_INPUT;
        }
    }
    if (!in || !out) {
        log_msg(LOG_ERROR, "export: RUN.h5 and --out DIR are required");
        return EXIT_BAD_INPUT;
    }
    int rc = export_run(in, out);
    return rc ? exit_code_of(rc) : 0;
}
