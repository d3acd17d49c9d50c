/* `resprop train`: dense training on Fashion-MNIST / MNIST with SGD and an LR schedule.
 * This is the first, dense-only version: the config table, HDF5 run record, other datasets,
 * augmentation and sparsity schemes come with the issues that build on it. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/net.h"
#include "core/timer.h"
#include "core/trainer.h"
#include "datasets/dataset.h"

typedef struct {
    const char *dataset, *data_dir, *model, *schedule;
    long epochs, batch, threads, seed, limit, log_every;
    double lr, momentum, wd;
    bool nesterov, quiet;
} TrainArgs;

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: resprop train --model NAME [--dataset fmnist|mnist] [--data-dir DIR] [--epochs E]\n"
            "                     [--batch B] [--lr LR] [--momentum M] [--wd WD] [--nesterov]\n"
            "                     [--schedule constant|cosine|onecycle|step:E1,E2,...] [--seed S]\n"
            "                     [--threads T] [--limit N] [--log-every K] [--quiet]\n"
            "  Dense f32 training on oneDNN; prints progress on stderr and train/test accuracy per epoch.\n"
            "  defaults: --dataset fmnist --data-dir /usr/share/datasets/fashion-mnist --epochs 1 --batch 128\n"
            "            --lr 0.05 --momentum 0.9 --wd 5e-4 --schedule cosine --seed 1 --threads 2\n"
            "            --log-every 50; --limit N trains on the first N training images (0 = all)\n");
}

/* Per-channel mean and std of a uint8 dataset (for normalisation). */
static void channel_stats(const Dataset *d, double *mean, double *std) {
    for (int c = 0; c < d->c; c++) {
        double s = 0, s2 = 0;
        size_t cnt = (size_t)d->n * d->h * d->w;
        for (size_t i = 0; i < cnt; i++) {
            double v = d->images[i * d->c + c] / 255.0;
            s += v, s2 += v * v;
        }
        mean[c] = s / cnt;
        std[c] = sqrt(fmax(s2 / cnt - mean[c] * mean[c], 1e-12));
    }
}

/* Copies samples idx[0..m) (m <= N; the rest of the batch repeats sample idx[0]) into the net. */
static void fill_batch(Net *net, const Dataset *d, const long *idx, int m, const double *mean, const double *std) {
    int n = net_batch(net);
    size_t per = (size_t)d->h * d->w * d->c;
    float *x = net_input(net);
    int32_t *y = net_labels(net);
    for (int b = 0; b < n; b++) {
        long s = idx[b < m ? b : 0];
        const uint8_t *src = d->images + (size_t)s * per;
        float *dst = x + (size_t)b * per;
        for (size_t i = 0; i < per; i++) {
            int c = (int)(i % (size_t)d->c);
            dst[i] = (float)((src[i] / 255.0 - mean[c]) / std[c]);
        }
        y[b] = d->labels[s];
    }
}

static int evaluate(Net *net, const Dataset *d, const double *mean, const double *std, long *idx, double *acc) {
    int rc = 0;
    int n = net_batch(net);
    long correct = 0;
    for (long s = 0; s < d->n; s += n) {
        int m = (int)(d->n - s < n ? d->n - s : n);
        for (int b = 0; b < m; b++) idx[b] = s + b;
        fill_batch(net, d, idx, m, mean, std);
        TRY(net_forward(net, false));
        correct += net_correct(net, 1, m);
    }
    *acc = (double)correct / d->n;
fail:
    return rc;
}

static int train_run(const TrainArgs *a) {
    int rc = 0, exit_code = EXIT_RUN_FAILED;
    Dataset train = {0}, test = {0};
    ModelSpec m = {0};
    DnnlCtx ctx = {0};
    Net *net = NULL;
    Trainer tr = {0};
    long *order = NULL;
    Schedule sched = {.kind = SCHED_COSINE, .lr = a->lr, .gamma = 0.1, .pct_start = 0.25, .div_factor = 25,
                      .final_div = 1e4};
    if (sched_parse(&sched, a->schedule)) return EXIT_BAD_INPUT;
    int classes = 10;
    if (dataset_load_idx_dir(&train, a->data_dir, "train", classes) ||
        dataset_load_idx_dir(&test, a->data_dir, "test", classes)) {
        exit_code = EXIT_BAD_INPUT;
        goto fail;
    }
    if (a->limit > 0 && a->limit < train.n) train.n = (int)a->limit;
    if (train.n < a->batch) {
        log_msg(LOG_ERROR, "train: %d training images, fewer than one batch of %ld", train.n, a->batch);
        exit_code = EXIT_BAD_INPUT;
        goto fail;
    }
    if (model_build(&m, a->model, train.c, train.h, train.w, classes)) {
        exit_code = EXIT_BAD_INPUT;
        goto fail;
    }
    cli_set_threads((int)a->threads);
    double mean[4], std[4];
    channel_stats(&train, mean, std);
    TRY(dnnl_ctx_init(&ctx));
    Rng rng;
    rng_init(&rng, (uint64_t)a->seed);
    TRY(net_create(&net, &m, (int)a->batch, &ctx, &rng));
    TRY(trainer_init(&tr, net));
    order = mem_alloc((size_t)(train.n > a->batch ? train.n : a->batch) * sizeof(long));
    if (!order) FAIL(ERR_NOMEM, "train: out of memory");
    Rng shuffle = rng_split(&rng, 0x5bu);
    long steps_per_epoch = train.n / a->batch, total = steps_per_epoch * a->epochs;
    log_msg(LOG_INFO, "train: %s on %s (%d train / %d test images %dx%dx%d), %ld epochs x %ld steps, batch %ld",
            a->model, a->dataset, train.n, test.n, train.c, train.h, train.w, a->epochs, steps_per_epoch, a->batch);
    double t_start = timer_now_ms();
    for (long e = 0; e < a->epochs; e++) {
        for (long i = 0; i < train.n; i++) order[i] = i;
        for (long i = train.n - 1; i > 0; i--) {
            long j = (long)rng_below(&shuffle, (uint64_t)i + 1), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        double loss_sum = 0;
        long correct = 0;
        for (long s = 0; s < steps_per_epoch; s++) {
            long step = e * steps_per_epoch + s;
            fill_batch(net, &train, order + s * a->batch, (int)a->batch, mean, std);
            SgdParams sp = {.lr = sched_lr(&sched, (double)step / steps_per_epoch, (double)a->epochs),
                            .momentum = a->momentum, .weight_decay = a->wd, .nesterov = a->nesterov};
            TRY(trainer_step(&tr, &sp));
            loss_sum += net_loss(net);
            correct += net_correct(net, 1, (int)a->batch);
            if (!a->quiet && ((s + 1) % a->log_every == 0 || s + 1 == steps_per_epoch)) {
                double el = timer_now_ms() - t_start, per = el / (step + 1);
                fprintf(stderr, "epoch %ld step %ld/%ld loss %.4f acc %.3f lr %.4g %.0f img/s ETA %.0f s\n", e + 1,
                        s + 1, steps_per_epoch, loss_sum / (s + 1), (double)correct / ((s + 1) * a->batch), sp.lr,
                        a->batch * 1000.0 / per, per * (total - step - 1) / 1000.0);
            }
        }
        double test_acc;
        TRY(evaluate(net, &test, mean, std, order, &test_acc));
        printf("epoch %ld: train loss %.4f train acc %.4f test acc %.4f (%.1f s)\n", e + 1,
               loss_sum / steps_per_epoch, (double)correct / (steps_per_epoch * a->batch), test_acc,
               (timer_now_ms() - t_start) / 1000.0);
        fflush(stdout);
    }
    exit_code = 0;
fail:
    if (rc) log_msg(LOG_ERROR, "train failed: %s", err_str(rc));
    mem_free(order);
    trainer_deinit(&tr);
    net_destroy(net);
    dnnl_ctx_deinit(&ctx);
    model_deinit(&m);
    dataset_deinit(&train);
    dataset_deinit(&test);
    return exit_code;
}

int cmd_train(int argc, char **argv) {
    TrainArgs a = {.dataset = "fmnist", .data_dir = NULL, .schedule = "cosine", .epochs = 1, .batch = 128,
                   .threads = 2, .seed = 1, .log_every = 50, .lr = 0.05, .momentum = 0.9, .wd = 5e-4};
    static const struct option opts[] = {
        {"dataset", required_argument, 0, 'd'},  {"data-dir", required_argument, 0, 'D'},
        {"model", required_argument, 0, 'm'},    {"epochs", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'},    {"lr", required_argument, 0, 'l'},
        {"momentum", required_argument, 0, 'M'}, {"wd", required_argument, 0, 'w'},
        {"nesterov", no_argument, 0, 'N'},       {"schedule", required_argument, 0, 'S'},
        {"seed", required_argument, 0, 's'},     {"threads", required_argument, 0, 't'},
        {"limit", required_argument, 0, 'L'},    {"log-every", required_argument, 0, 'k'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'd': a.dataset = optarg; break;
        case 'D': a.data_dir = optarg; break;
        case 'm': a.model = optarg; break;
        case 'e': bad = cli_parse_int("--epochs", optarg, 1, 100000, &a.epochs); break;
        case 'b': bad = cli_parse_int("--batch", optarg, 1, 65536, &a.batch); break;
        case 'l': bad = cli_parse_double("--lr", optarg, 0, 100, &a.lr); break;
        case 'M': bad = cli_parse_double("--momentum", optarg, 0, 0.999, &a.momentum); break;
        case 'w': bad = cli_parse_double("--wd", optarg, 0, 1, &a.wd); break;
        case 'N': a.nesterov = true; break;
        case 'S': a.schedule = optarg; break;
        case 's': bad = cli_parse_int("--seed", optarg, 0, 0x7fffffffL, &a.seed); break;
        case 't': bad = cli_parse_int("--threads", optarg, 1, 1024, &a.threads); break;
        case 'L': bad = cli_parse_int("--limit", optarg, 0, 100000000, &a.limit); break;
        case 'k': bad = cli_parse_int("--log-every", optarg, 1, 1000000, &a.log_every); break;
        case 'q': a.quiet = true; break;
        case 'h': train_usage(stdout); return 0;
        default: bad = 1;
        }
        if (bad) {
            train_usage(stderr);
            return EXIT_BAD_INPUT;
        }
    }
    if (!a.model || optind < argc) {
        log_msg(LOG_ERROR, a.model ? "train: unexpected argument '%s'" : "train: --model NAME is required%s",
                a.model ? argv[optind] : "");
        train_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    if (strcmp(a.dataset, "fmnist") == 0) {
        if (!a.data_dir) a.data_dir = "/usr/share/datasets/fashion-mnist";
    } else if (strcmp(a.dataset, "mnist") == 0) {
        if (!a.data_dir) {
            log_msg(LOG_ERROR, "train: --dataset mnist needs --data-dir DIR (MNIST has no Debian package)");
            return EXIT_BAD_INPUT;
        }
    } else {
        log_msg(LOG_ERROR, "train: --dataset '%s': expected fmnist or mnist (more datasets come later)", a.dataset);
        return EXIT_BAD_INPUT;
    }
    if (a.quiet) log_set_level(LOG_WARN);
    return train_run(&a);
}
