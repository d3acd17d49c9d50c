/* cli.h: shared pieces of the `resprop` subcommands (bench/ only). */
#ifndef RESPROP_CLI_H
#define RESPROP_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/shape.h"
#include "core/sysinfo.h"

/* Exit codes of the CLI: 0 ok, 1 run failed, 2 bad input. */
enum { EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2 };

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} CliCommand;


/* Parses "CxHxW" (e.g. 3x32x32). Returns 0 or -1 after printing what was expected. */
int cli_parse_input(const char *text, Dims4 *d);
/* Parses an int / double in [min, max] for option `opt`; -1 with a message on failure. */
int cli_parse_int(const char *opt, const char *text, long min, long max, long *out);
int cli_parse_double(const char *opt, const char *text, double min, double max, double *out);
/* A file or directory shipped with the repository (plots/, results/paper/claims.csv): out = rel when
 * it exists relative to the working directory, else the same path relative to the binary's build/..
 * directory when that exists, else rel. */
void cli_find_resource(const char *rel, char *out, size_t cap);
/* Sets oneDNN's OpenMP threads (and OpenBLAS to 1 thread). */
void cli_set_threads(int threads);

int cmd_version(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_imagenet_convert(int argc, char **argv);
int cmd_flops(int argc, char **argv);
int cmd_schemes(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_report(int argc, char **argv); /* and cmd_plot: bench/cmd_report.c */
int cmd_plot(int argc, char **argv);

#endif
