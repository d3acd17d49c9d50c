/* `resprop version` and `resprop model`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <hdf5.h>
#include <oneapi/dnnl/dnnl.h>

#include "bench/cli.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"

int cmd_version(int argc, char **argv) {
    if (argc > 1) {
        printf("usage: resprop version\n  prints the harness version (git describe --dirty at build time) and the\n"
               "  versions of oneDNN, HDF5 and OpenBLAS it runs on, and the CPU.\n");
        return strcmp(argv[1], "--help") == 0 ? 0 : EXIT_BAD_INPUT;
    }
    const dnnl_version_t *v = dnnl_version();
    char cpu[256], isa[256], dnnl[32], h5[32];
    sysinfo_cpu_model(cpu, sizeof cpu);
    sysinfo_cpu_isa(isa, sizeof isa);
    sysinfo_dnnl_version(dnnl, sizeof dnnl);
    sysinfo_hdf5_version(h5, sizeof h5);
    printf("resprop %s\n", resprop_version);
    printf("oneDNN %s (cpu runtime %s)\n", dnnl, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");
    printf("HDF5 %s\n", h5);
    printf("OpenBLAS %s\n", sysinfo_openblas_config());
    printf("CPU %s (%s)\n", cpu, isa);
    return 0;
}

static void model_usage(FILE *f) {
    fprintf(f, "usage: resprop model --model NAME --input CxHxW [--classes N]\n"
               "  Prints the per-layer table of NAME for one input: output shape (C x H x W), learnable\n"
               "  parameters and multiply-adds per sample (conv and fc only), and the totals.\n"
               "  --model NAME     one of:");
    for (int i = 0; model_names[i]; i++) fprintf(f, " %s", model_names[i]);
    fprintf(f, "\n  --input CxHxW    input channels, height, width (default 3x32x32)\n"
               "  --classes N      output classes (default 10)\n");
}

static void fmt_thousands(long long v, char *buf) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v), o = 0;
    if (v < 0) buf[o++] = '-';
    for (int i = 0; i < n; i++) {
        buf[o++] = tmp[i];
        if ((n - 1 - i) % 3 == 0 && i != n - 1) buf[o++] = ',';
    }
    buf[o] = 0;
}

int cmd_model(int argc, char **argv) {
    const char *name = NULL;
    Dims4 in = {1, 3, 32, 32};
    long classes = 10;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"input", required_argument, 0, 'i'},
                                         {"classes", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm': name = optarg; break;
        case 'i':
            if (cli_parse_input(optarg, &in)) return EXIT_BAD_INPUT;
            break;
        case 'c':
            if (cli_parse_int("--classes", optarg, 1, 1000000, &classes)) return EXIT_BAD_INPUT;
            break;
        case 'h': model_usage(stdout); return 0;
        default: model_usage(stderr); return EXIT_BAD_INPUT;
        }
    }
    if (!name || optind < argc) {
        log_msg(LOG_ERROR, name ? "model: unexpected argument '%s'" : "model: --model NAME is required%s",
                name ? argv[optind] : "");
        model_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    ModelSpec m = {0};
    if (model_build(&m, name, in.c, in.h, in.w, (int)classes)) return EXIT_BAD_INPUT;
    LayerCount *rows = mem_calloc((size_t)m.n_layers, sizeof *rows);
    int64_t params = 0, macs = 0;
    if (!rows || model_count(&m, rows, &params, &macs)) {
        mem_free(rows);
        model_deinit(&m);
        return EXIT_RUN_FAILED;
    }
    printf("%s, input %dx%dx%d, %ld classes\n", m.name, in.c, in.h, in.w, classes);
    printf("%-4s %-28s %-8s %-16s %14s %16s\n", "#", "layer", "kind", "output CxHxW", "params", "MACs");
    char b1[32], b2[32], shape[40];
    for (int i = 0; i < m.n_layers; i++) {
        const LayerSpec *s = &m.layers[i];
        snprintf(shape, sizeof shape, "%dx%dx%d", rows[i].out.c, rows[i].out.h, rows[i].out.w);
        fmt_thousands(rows[i].params, b1);
        fmt_thousands(rows[i].macs, b2);
        printf("%-4d %-28s %-8s %-16s %14s %16s\n", i, s->name, layer_kind_name(s->kind), shape, b1, b2);
    }
    fmt_thousands(params, b1);
    fmt_thousands(macs, b2);
    printf("total: %s params, %s MACs per sample (%.3f M params, %.3f G MACs)\n", b1, b2, params / 1e6, macs / 1e9);
    mem_free(rows);
    model_deinit(&m);
    return 0;
}
