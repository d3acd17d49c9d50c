/* `resprop flops`: the FLOP budget of one training step under a uniform gradient density, by the one rule
 * of core/flops.h: per layer forward, dense backward, effective backward (sparse + pre-ReSprop +
 * elementwise) and the reduction; for the network the backward reduction and the Amdahl overall speedup,
 * next to the paper's 10x and 2.7x (read from the claims file, results/paper/claims.csv). --out writes the
 * same numbers as an HDF5 record (kind "flops"). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cli.h"
#include "core/err.h"
#include "core/flops.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"
#include "results/h5rec.h"
#include "results/report.h"

typedef struct {
    const char *model, *out, *claims;
    Dims4 input;
    long batch, classes, reuse;
    double density, p;
    bool have_input, have_batch, have_density;
} FlopsArgs;

static void flops_usage(FILE *f) {
    fprintf(f,
            "usage: resprop flops --model NAME --input CxHxW --batch B --density D [--classes K] [--reuse 1|0]\n"
            "                     [--p P] [--out FILE.h5]\n"
            "  FLOPs of one training step (2 per multiply-add, core/flops.h) when every conv layer propagates\n"
            "  a gradient of density D (nnz = D*N*K*P*Q): per conv and fc layer the forward, the dense\n"
            "  backward, its parts under the scheme (sparse, pre-ReSprop, elementwise), the effective backward\n"
            "  (their sum) and the reduction (dense / effective); then the network's backward reduction and\n"
            "  the overall training speedup by Amdahl's law, 1 / ((1-P) + P/reduction), next to the paper's\n"
            "  10x and 2.7x from the claims file. FC layers stay dense. --out also writes an HDF5 record\n"
            "  (kind \"flops\").\n"
            "  --model NAME    one of:");
    for (int i = 0; model_names[i]; i++) fprintf(f, " %s", model_names[i]);
    fprintf(f,
            "\n  --input CxHxW   one sample's channels, height, width\n"
            "  --batch B       samples per step\n"
            "  --density D     share of the output gradient propagated, 0..1 (0.1 = 90%% reuse)\n"
            "  --classes K     output classes (default 1000 for inputs above 64 px, else 10)\n"
            "  --reuse 1|0     1: ReSprop (a reuse term: pre-ReSprop passes, difference, threshold, add);\n"
            "                  0: a scheme without reuse (meProp, threshold, random: one mask pass) (default 1)\n"
            "  --p P           share of training time spent in the backward pass, 0..1 (default 0.7, which\n"
            "                  gives the paper's 2.7x at 10x; the paper's own p is not stated)\n"
            "  --out FILE.h5   also write the record (never overwrites a complete one)\n"
            "  --claims FILE   the paper's claims, ids bwd_reduction and amdahl_speedup\n"
            "                  (default results/paper/claims.csv)\n");
}

/* Parses the options into *a; 0, or EXIT_BAD_INPUT after a message, or -1 after --help. */
static int flops_parse(int argc, char **argv, FlopsArgs *a) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"input", required_argument, 0, 'i'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"density", required_argument, 0, 'd'},
                                         {"classes", required_argument, 0, 'c'},
                                         {"reuse", required_argument, 0, 'r'},
                                         {"p", required_argument, 0, 'p'},
                                         {"out", required_argument, 0, 'o'},
                                         {"claims", required_argument, 0, 'C'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (FlopsArgs){.classes = 0, .reuse = 1, .p = FLOPS_DEFAULT_P};
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'm': a->model = optarg; break;
        case 'i':
            bad = cli_parse_input(optarg, &a->input);
            a->have_input = true;
            break;
        case 'b':
            bad = cli_parse_int("--batch", optarg, 1, 1 << 20, &a->batch);
            a->have_batch = true;
            break;
        case 'd':
            bad = cli_parse_double("--density", optarg, 0, 1, &a->density);
            a->have_density = true;
            break;
        case 'c': bad = cli_parse_int("--classes", optarg, 1, 1000000, &a->classes); break;
        case 'r': bad = cli_parse_int("--reuse", optarg, 0, 1, &a->reuse); break;
        case 'p': bad = cli_parse_double("--p", optarg, 0, 1, &a->p); break;
        case 'o': a->out = optarg; break;
        case 'C': a->claims = optarg; break;
        case 'h': flops_usage(stdout); return -1;
        default: flops_usage(stderr); return EXIT_BAD_INPUT;
        }
        if (bad) return EXIT_BAD_INPUT;
    }
    const char *missing = !a->model ? "--model NAME" : !a->have_input ? "--input CxHxW"
                        : !a->have_batch ? "--batch B" : !a->have_density ? "--density D" : NULL;
    if (missing) {
        log_msg(LOG_ERROR, "flops: %s is required", missing);
        flops_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    if (optind < argc) {
        log_msg(LOG_ERROR, "flops: unexpected argument '%s'", argv[optind]);
        flops_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    if (a->classes == 0) a->classes = a->input.h > 64 || a->input.w > 64 ? 1000 : 10;
    return 0;
}

static void flops_print_row(const char *idx, const char *name, const char *kind, const char *shape,
                            const ConvFlops *f, double scale) {
    printf("%-4s %-24s %-5s %-30s %11.4f %11.4f %11.4f %11.4f %11.4f %11.4f %8.3fx\n", idx, name, kind, shape,
           f->fwd / scale, f->bwd_dense / scale, f->bwd_sparse / scale, f->bwd_pre / scale,
           f->bwd_elementwise / scale, flops_bwd_effective(f) / scale, flops_reduction(f));
}

/* The record: root attributes, one series row per counted (conv or fc) layer. */
/* The paper's numbers beside ours, from the claims file. */
typedef struct {
    double reduction, speedup;
    char path[PATH_MAX];
} FlopsPaper;

static int flops_write_record(const FlopsArgs *a, const ModelSpec *m, const ConvFlops *pl, const ConvFlops *total,
                              double conv_reduction, const FlopsPaper *paper) {
    static const char *const cols[] = {"layer", "fwd", "bwd_dense", "bwd_sparse", "bwd_pre", "bwd_elementwise",
                                       "reduction"};
    static const char *const units[] = {"1", "FLOP", "FLOP", "FLOP", "FLOP", "FLOP", "1"};
    int rc = 0;
    H5Rec *rec = NULL;
    char buf[64], *names = NULL;
    size_t cap = (size_t)m->n_layers * (LAYER_NAME_MAX + 1) + 1, used = 0;
    names = mem_calloc(cap, 1);
    if (!names) FAIL(ERR_NOMEM, "flops: out of memory");
    TRY(h5rec_create(&rec, a->out));
    double reduction = flops_reduction(total);
    TRY(h5rec_attr_str(rec, "/", "kind", "flops"));
    TRY(h5rec_attr_str(rec, "/", "version", resprop_version));
    TRY(h5rec_attr_str(rec, "/", "flop_rule", "2 per multiply-add; core/flops.h"));
    TRY(h5rec_attr_str(rec, "/", "model", m->name));
    snprintf(buf, sizeof buf, "%dx%dx%d", a->input.c, a->input.h, a->input.w);
    TRY(h5rec_attr_str(rec, "/", "input", buf));
    TRY(h5rec_attr_i64(rec, "/", "classes", a->classes));
    TRY(h5rec_attr_i64(rec, "/", "batch", a->batch));
    TRY(h5rec_attr_f64(rec, "/", "density", a->density));
    TRY(h5rec_attr_i64(rec, "/", "reuse", a->reuse));
    TRY(h5rec_attr_f64(rec, "/", "p", a->p));
    TRY(h5rec_attr_f64(rec, "/", "reduction", reduction));
    TRY(h5rec_attr_f64(rec, "/", "conv_reduction", conv_reduction));
    TRY(h5rec_attr_f64(rec, "/", "amdahl_speedup", reduction > 0 ? flops_amdahl(reduction, a->p) : 0));
    TRY(h5rec_attr_f64(rec, "/", "paper_reduction", paper->reduction));
    TRY(h5rec_attr_f64(rec, "/", "paper_speedup", paper->speedup));
    TRY(h5rec_attr_str(rec, "/", "claims_file", paper->path));
    TRY(h5rec_attr_f64(rec, "/", "fwd_flop", total->fwd));
    TRY(h5rec_attr_f64(rec, "/", "bwd_dense_flop", total->bwd_dense));
    TRY(h5rec_attr_f64(rec, "/", "bwd_sparse_flop", total->bwd_sparse));
    TRY(h5rec_attr_f64(rec, "/", "bwd_pre_flop", total->bwd_pre));
    TRY(h5rec_attr_f64(rec, "/", "bwd_elementwise_flop", total->bwd_elementwise));
    TRY(h5rec_series(rec, "/per_layer", 7, cols, units));
    for (int i = 0; i < m->n_layers; i++) {
        LayerKind k = m->layers[i].kind;
        if (k != LAYER_CONV && k != LAYER_FC) continue;
        const ConvFlops *f = &pl[i];
        double row[7] = {i, f->fwd, f->bwd_dense, f->bwd_sparse, f->bwd_pre, f->bwd_elementwise,
                         flops_reduction(f)};
        TRY(h5rec_append(rec, "/per_layer", row));
        used += (size_t)snprintf(names + used, cap - used, "%s%s", used ? "," : "", m->layers[i].name);
    }
    TRY(h5rec_attr_str(rec, "/per_layer", "layer_names", names));
    rc = h5rec_finish(rec);
    rec = NULL;
    TRY(rc);
fail:
    if (rec) h5rec_fail(rec, "flops: writing the record failed");
    mem_free(names);
    return rc;
}

int cmd_flops(int argc, char **argv) {
    FlopsArgs a;
    int rc = flops_parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    int exit_code = EXIT_RUN_FAILED;
    ModelSpec m = {0};
    LayerCount *rows = NULL;
    ConvFlops *pl = NULL, total, conv = {0};
    FlopsPaper paper;
    if (a.claims) snprintf(paper.path, sizeof paper.path, "%s", a.claims);
    else cli_find_resource("results/paper/claims.csv", paper.path, sizeof paper.path);
    ReportClaims claims;
    if (report_claims_load(&claims, paper.path)) return EXIT_BAD_INPUT;
    const ReportClaim *cr = report_claim(&claims, "bwd_reduction"), *cs = report_claim(&claims, "amdahl_speedup");
    if (cr) paper.reduction = cr->value;
    if (cs) paper.speedup = cs->value;
    report_claims_deinit(&claims);
    if (!cr || !cs) return EXIT_BAD_INPUT;
    if (model_build(&m, a.model, a.input.c, a.input.h, a.input.w, (int)a.classes)) {
        exit_code = EXIT_BAD_INPUT;
        goto done;
    }
    rows = mem_calloc((size_t)m.n_layers, sizeof *rows);
    pl = mem_calloc((size_t)m.n_layers, sizeof *pl);
    if (!rows || !pl) {
        log_msg(LOG_ERROR, "flops: out of memory");
        goto done;
    }
    if (model_count(&m, rows, NULL, NULL) || flops_network(&m, (int)a.batch, a.density, a.reuse, pl, &total))
        goto done;

    double scale = total.fwd >= 1e9 ? 1e9 : 1e6;
    const char *unit = scale == 1e9 ? "GFLOP" : "MFLOP";
    printf("%s, input %dx%dx%d, %ld classes, batch %ld, density %g, %s; %s per step, 2 FLOPs per multiply-add\n",
           m.name, a.input.c, a.input.h, a.input.w, a.classes, a.batch, a.density,
           a.reuse ? "with reuse (ReSprop)" : "no reuse", unit);
    printf("%-4s %-24s %-5s %-30s %11s %11s %11s %11s %11s %11s %9s\n", "#", "layer", "kind",
           "in -> out  kernel/stride", "fwd", "bwd dense", "bwd sparse", "pre", "elementw", "bwd eff",
           "reduction");
    for (int i = 0; i < m.n_layers; i++) {
        const LayerSpec *s = &m.layers[i];
        if (s->kind != LAYER_CONV && s->kind != LAYER_FC) continue;
        Dims4 in = rows[s->in[0]].out, out = rows[i].out;
        char idx[16], shape[64];
        snprintf(idx, sizeof idx, "%d", i);
        if (s->kind == LAYER_CONV)
            snprintf(shape, sizeof shape, "%dx%dx%d -> %dx%dx%d %dx%d/%d", in.c, in.h, in.w, out.c, out.h, out.w,
                     s->kh, s->kw, s->stride);
        else
            snprintf(shape, sizeof shape, "%d -> %d (dense)", in.c * in.h * in.w, out.c);
        flops_print_row(idx, s->name, layer_kind_name(s->kind), shape, &pl[i], scale);
        if (s->kind == LAYER_CONV) flops_add(&conv, &pl[i]);
    }
    flops_print_row("", "conv layers", "", "", &conv, scale);
    flops_print_row("", "network", "", "fc dense; bn, pool, add: 0", &total, scale);

    double conv_r = flops_reduction(&conv), net_r = flops_reduction(&total);
    double speedup = net_r > 0 ? flops_amdahl(net_r, a.p) : 0;
    printf("\nbackward reduction: %.2fx network (%.2fx conv layers only)    paper: %gx\n", net_r, conv_r,
           paper.reduction);
    printf("overall speedup (Amdahl, backward share p = %.2f): %.2fx    paper: %gx "
           "(p = %.2f gives %.2fx at %gx; the paper's p is not stated)\n",
           a.p, speedup, paper.speedup, a.p, flops_amdahl(paper.reduction, a.p), paper.reduction);
    printf("the paper's numbers: %s\n", paper.path);
    printf("effective backward = sparse %.1f%% + pre-ReSprop %.1f%% + elementwise %.1f%% of the dense backward\n",
           100 * total.bwd_sparse / total.bwd_dense, 100 * total.bwd_pre / total.bwd_dense,
           100 * total.bwd_elementwise / total.bwd_dense);

    if (a.out) {
        rc = flops_write_record(&a, &m, pl, &total, conv_r, &paper);
        if (rc) { /* a record in the way or an unwritable place is the user's to fix, as in `train` */
            exit_code = rc == ERR_IO || rc == ERR_CONFIG ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
            goto done;
        }
        printf("record: %s\n", a.out);
    }
    exit_code = 0;
done:
    mem_free(pl);
    mem_free(rows);
    model_deinit(&m);
    return exit_code;
}
