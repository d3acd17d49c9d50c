/* resprop: the harness's command-line tool. One binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "bench/cli.h"
#include "core/log.h"

static int cmd_help(int argc, char **argv);

static const CliCommand commands[] = {
    {"help", "list the subcommands (resprop help CMD: that command's options)", cmd_help},
    {"version", "print the harness version and the library versions it runs on", cmd_version},
    {"model", "per-layer table of a model: output shapes, parameters, multiply-adds", cmd_model},
    {"train", "train a model; writes an HDF5 run record and checkpoints (resprop train --help)", cmd_train},
    {"eval", "evaluate a checkpoint on its dataset's test split", cmd_eval},
    {"export", "write a run record's series as .dat (gnuplot) and .csv files", cmd_export},
    {"imagenet-convert", "convert an ILSVRC-2012 JPEG tree into HDF5 shards", cmd_imagenet_convert},
    {"schemes", "list the sparsity schemes and their options", cmd_schemes},
    {"flops", "backward FLOP accounting of a model at a gradient density (no training)", cmd_flops},
    {"sim", "simulate the sparse backward of every conv layer on GSCN-sim against the GPU model", cmd_sim},
    {"sweep", "run a grid of training runs from a sweep file, one record per point (resprop sweep --help)", cmd_sweep},
    {"report", "tables (Markdown, LaTeX) and figures 1-8 from every record under a runs directory", cmd_report},
    {"plot", "quick figures of one training run: accuracy, loss, per-layer reuse", cmd_plot},
    {"bench", "measure speed against dense oneDNN: `bench step` (training step), `bench backward` (per conv layer)", cmd_bench},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static int cmd_help(int argc, char **argv) {
    if (argc > 1) {
        for (int i = 0; i < N_COMMANDS; i++)
            if (strcmp(argv[1], commands[i].name) == 0 && commands[i].run != cmd_help) {
                char *args[] = {argv[1], "--help", NULL};
                return commands[i].run(2, args);
            }
        log_msg(LOG_ERROR, "help: unknown command '%s'", argv[1]);
        return EXIT_BAD_INPUT;
    }
    printf("usage: resprop COMMAND [OPTIONS]   (resprop COMMAND --help for its options)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) printf("  %-18s %s\n", commands[i].name, commands[i].summary);
    return 0;
}

int main(int argc, char **argv) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* HDF5 errors are reported through our own messages */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(0, NULL) == 0 && argc >= 2 ? 0 : (argc < 2 ? EXIT_BAD_INPUT : 0);
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    log_msg(LOG_ERROR, "unknown command '%s' (resprop help lists them)", argv[1]);
    return EXIT_BAD_INPUT;
}
