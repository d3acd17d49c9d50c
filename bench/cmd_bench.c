/* `resprop bench step`: the dense training step's time, throughput and where it goes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>

#include "bench/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/net.h"
#include "core/timer.h"
#include "core/trainer.h"

typedef struct {
    const char *model, *out;
    Dims4 input;
    long batch, classes, steps, warmup, threads, seed;
} BenchArgs;

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: resprop bench step --model NAME [--input CxHxW] [--batch B] [--steps N] [--warmup W]\n"
            "                          [--threads T] [--classes K] [--seed S] [--out FILE.h5]\n"
            "  Times the dense f32 training step (forward, backward, SGD momentum update) on random data:\n"
            "  median of N steps after W warm-up steps, images/s, the share of the step spent outside\n"
            "  convolutions, and the peak resident size. --out also writes the step times to HDF5.\n"
            "  defaults: --input 3x32x32 --batch 128 --steps 10 --warmup 3 --threads 2 --classes 10 --seed 1\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int write_record(const BenchArgs *a, const double *step_ms, long n, double median_ms, double conv_frac,
                        long rss_kib) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.part", a->out);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        log_msg(LOG_ERROR, "bench: cannot create %s", tmp);
        return ERR_HDF5;
    }
    hsize_t dims[1] = {(hsize_t)n};
    char input[64];
    snprintf(input, sizeof input, "%dx%dx%d", a->input.c, a->input.h, a->input.w);
    int ok = H5LTmake_dataset_double(f, "/step_ms", 1, dims, step_ms) >= 0;
    ok = ok && H5LTset_attribute_string(f, "/", "kind", "bench_step") >= 0;
    ok = ok && H5LTset_attribute_int(f, "/", "schema_version", (int[]){1}, 1) >= 0;
    ok = ok && H5LTset_attribute_string(f, "/", "version", resprop_version) >= 0;
    ok = ok && H5LTset_attribute_string(f, "/", "model", a->model) >= 0;
    ok = ok && H5LTset_attribute_string(f, "/", "input", input) >= 0;
    ok = ok && H5LTset_attribute_string(f, "/", "backend", "dnnl") >= 0;
    ok = ok && H5LTset_attribute_string(f, "/", "dtype", "f32") >= 0;
    ok = ok && H5LTset_attribute_long(f, "/", "batch", &a->batch, 1) >= 0;
    ok = ok && H5LTset_attribute_long(f, "/", "threads", &a->threads, 1) >= 0;
    ok = ok && H5LTset_attribute_double(f, "/", "median_step_ms", &median_ms, 1) >= 0;
    ok = ok && H5LTset_attribute_double(f, "/", "outside_conv_frac", &conv_frac, 1) >= 0;
    ok = ok && H5LTset_attribute_long(f, "/", "peak_rss_kib", &rss_kib, 1) >= 0;
    char cpu[256];
    sysinfo_cpu_model(cpu, sizeof cpu);
    ok = ok && H5LTset_attribute_string(f, "/", "cpu", cpu) >= 0;
    if (H5Fclose(f) < 0) ok = 0;
    if (!ok || rename(tmp, a->out) != 0) {
        log_msg(LOG_ERROR, "bench: cannot write %s", a->out);
        unlink(tmp);
        return ERR_HDF5;
    }
    return 0;
}

static int bench_step(const BenchArgs *a) {
    int rc = 0;
    ModelSpec m = {0};
    DnnlCtx ctx = {0};
    Net *net = NULL;
    Trainer tr = {0};
    double *times = NULL;
    if (model_build(&m, a->model, a->input.c, a->input.h, a->input.w, (int)a->classes)) return EXIT_BAD_INPUT;
    cli_set_threads((int)a->threads);
    TRY(dnnl_ctx_init(&ctx));
    Rng rng;
    rng_init(&rng, (uint64_t)a->seed);
    TRY(net_create(&net, &m, (int)a->batch, &ctx, &rng));
    TRY(trainer_init(&tr, net));
    /* random inputs and labels: the step's cost does not depend on the values */
    Rng dr = rng_split(&rng, 0xda7a);
    float *x = net_input(net);
    size_t nx = (size_t)a->batch * dims_sample(a->input);
    for (size_t i = 0; i < nx; i++) x[i] = (float)rng_normal(&dr);
    for (long i = 0; i < a->batch; i++) net_labels(net)[i] = (int32_t)rng_below(&dr, (uint64_t)a->classes);
    SgdParams sp = {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = false};
    times = mem_calloc((size_t)a->steps, sizeof(double));
    if (!times) FAIL(ERR_NOMEM, "bench: out of memory");
    fprintf(stderr, "bench step: %s %dx%dx%d batch %ld, %ld threads: %ld warm-up + %ld timed steps\n", a->model,
            a->input.c, a->input.h, a->input.w, a->batch, a->threads, a->warmup, a->steps);
    for (long i = 0; i < a->warmup; i++) TRY(trainer_step(&tr, &sp));
    tr.profile = true;
    trainer_profile_reset(&tr);
    double total = 0;
    for (long i = 0; i < a->steps; i++) {
        double t0 = timer_now_ms();
        TRY(trainer_step(&tr, &sp));
        times[i] = timer_now_ms() - t0;
        total += times[i];
    }
    double *sorted = mem_alloc((size_t)a->steps * sizeof(double));
    if (!sorted) FAIL(ERR_NOMEM, "bench: out of memory");
    memcpy(sorted, times, (size_t)a->steps * sizeof(double));
    qsort(sorted, (size_t)a->steps, sizeof(double), cmp_double);
    double med = a->steps % 2 ? sorted[a->steps / 2] : 0.5 * (sorted[a->steps / 2 - 1] + sorted[a->steps / 2]);
    mem_free(sorted);
    double conv_ms = 0, fwd_ms = 0, bwd_ms = 0;
    for (int i = 1; i < net_n_layers(net); i++) {
        fwd_ms += tr.fwd_ms[i];
        bwd_ms += tr.bwd_ms[i];
        if (layer_spec(net_layer(net, i))->kind == LAYER_CONV) conv_ms += tr.fwd_ms[i] + tr.bwd_ms[i];
    }
    double outside = total > 0 ? 1.0 - conv_ms / total : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("model=%s input=%dx%dx%d batch=%ld threads=%ld dtype=f32 backend=dnnl\n", a->model, a->input.c,
           a->input.h, a->input.w, a->batch, a->threads);
    printf("step_ms_median=%.2f img_per_s=%.1f\n", med, a->batch * 1000.0 / med);
    printf("per step (mean): forward %.2f ms, backward %.2f ms, sgd %.2f ms; outside convolutions %.1f%%\n",
           fwd_ms / a->steps, bwd_ms / a->steps, tr.opt_ms / a->steps, 100 * outside);
    size_t shared = 0;
    for (int i = 0; i < CTX_N_SHARED; i++) shared += ctx.shared_bytes[i];
    printf("activations %.1f MB, gradients %.1f MB, parameters+gradients %.1f MB, shared buffers %.1f MB, "
           "peak_rss=%.1f MB\n",
           net_activation_bytes(net) / 1048576.0, net_gradient_bytes(net) / 1048576.0,
           net_param_bytes(net) / 1048576.0, shared / 1048576.0, ru.ru_maxrss / 1024.0);
    if (a->out) TRY(write_record(a, times, a->steps, med, outside, ru.ru_maxrss));
fail:
    mem_free(times);
    trainer_deinit(&tr);
    net_destroy(net);
    dnnl_ctx_deinit(&ctx);
    model_deinit(&m);
    if (rc) log_msg(LOG_ERROR, "bench step failed: %s", err_str(rc));
    return rc ? EXIT_RUN_FAILED : 0;
}

int cmd_bench(int argc, char **argv) {
    BenchArgs a = {.input = {1, 3, 32, 32}, .batch = 128, .classes = 10, .steps = 10, .warmup = 3, .threads = 2,
                   .seed = 1};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_INPUT : 0;
    }
    if (strcmp(argv[1], "step") != 0) {
        log_msg(LOG_ERROR, "bench: unknown benchmark '%s' (expected: step)", argv[1]);
        return EXIT_BAD_INPUT;
    }
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"input", required_argument, 0, 'i'},
        {"batch", required_argument, 0, 'b'},   {"steps", required_argument, 0, 'n'},
        {"warmup", required_argument, 0, 'w'},  {"threads", required_argument, 0, 't'},
        {"classes", required_argument, 0, 'c'}, {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    argc--, argv++;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'm': a.model = optarg; break;
        case 'i': bad = cli_parse_input(optarg, &a.input); break;
        case 'b': bad = cli_parse_int("--batch", optarg, 1, 65536, &a.batch); break;
        case 'n': bad = cli_parse_int("--steps", optarg, 1, 100000, &a.steps); break;
        case 'w': bad = cli_parse_int("--warmup", optarg, 0, 100000, &a.warmup); break;
        case 't': bad = cli_parse_int("--threads", optarg, 1, 1024, &a.threads); break;
        case 'c': bad = cli_parse_int("--classes", optarg, 1, 1000000, &a.classes); break;
        case 's': bad = cli_parse_int("--seed", optarg, 0, 0x7fffffffL, &a.seed); break;
        case 'o': a.out = optarg; break;
        case 'h': bench_usage(stdout); return 0;
        default: bad = 1;
        }
        if (bad) {
            bench_usage(stderr);
            return EXIT_BAD_INPUT;
        }
    }
    if (!a.model || optind < argc) {
        log_msg(LOG_ERROR, a.model ? "bench step: unexpected argument '%s'" : "bench step: --model NAME is required%s",
                a.model ? argv[optind] : "");
        bench_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    return bench_step(&a);
}
