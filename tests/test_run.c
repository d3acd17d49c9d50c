/* test_run: whole training runs on a tiny synthetic set: determinism, kill + resume, the record's
 * life cycle (.part while running, final name only when complete), a diverging run, bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <hdf5.h>
#include <zlib.h>
#include <hdf5_hl.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/run.h"
#include "results/h5rec.h"
#include "tests/testutil.h"

static char tmpdir[256];

static int setup(void **state) {
    if (tu_mkdtemp(tmpdir, sizeof tmpdir, "test_run") != 0) return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int teardown(void **state) { return tu_rmtree(tmpdir); }

/* A tiny resnet20 on 3x8x8 synthetic images: 3 epochs of 8 steps. */
static void tiny_config(RunConfig *cfg, const char *name) {
    assert_int_equal(config_defaults(&runconfig_table, cfg), 0);
    snprintf(cfg->dataset, sizeof cfg->dataset, "synthetic");
    snprintf(cfg->model, sizeof cfg->model, "resnet20");
    snprintf(cfg->synthetic_shape, sizeof cfg->synthetic_shape, "3x8x8");
    cfg->synthetic_train = 256;
    cfg->synthetic_test = 70; /* a padded last evaluation batch */
    cfg->synthetic_classes = 4;
    cfg->batch = 32;
    cfg->epochs = 3;
    cfg->lr = 0.05;
    cfg->log_every = 1;
    cfg->quiet = true;
    cfg->threads = 2;
    snprintf(cfg->out, sizeof cfg->out, "%s/%s.h5", tmpdir, name);
}

static double *read_col(const char *file, const char *group, const char *col, long *n) {
    H5Reader *rd = NULL;
    double *data = NULL;
    assert_int_equal(h5reader_open(&rd, file), 0);
    assert_int_equal(h5reader_column(rd, group, col, &data, n), 0);
    h5reader_close(rd);
    return data;
}

static void assert_same_series(const char *a, const char *b, const char *group, const char *col) {
    long na, nb;
    double *x = read_col(a, group, col, &na), *y = read_col(b, group, col, &nb);
    assert_int_equal(na, nb);
    assert_true(na > 0);
    assert_memory_equal(x, y, (size_t)na * sizeof(double)); /* bitwise */
    mem_free(x);
    mem_free(y);
}

/* Every tensor under /params, /momentum, /bn of two checkpoints is bitwise equal. */
static herr_t cmp_visit(hid_t obj, const char *name, const H5O_info_t *info, void *op) {
    if (info->type != H5O_TYPE_DATASET || strcmp(name, "history") == 0) return 0;
    hid_t other = *(hid_t *)op;
    int rank;
    hsize_t da[4], db[4];
    H5T_class_t cls;
    size_t ts;
    if (H5LTget_dataset_ndims(obj, name, &rank) < 0 || rank != 1) return -1;
    if (H5LTget_dataset_info(obj, name, da, &cls, &ts) < 0 || H5LTget_dataset_info(other, name, db, &cls, &ts) < 0)
        return -1;
    if (da[0] != db[0]) return -1;
    float *x = mem_alloc(da[0] * sizeof(float) + 4), *y = mem_alloc(da[0] * sizeof(float) + 4);
    int bad = H5LTread_dataset_float(obj, name, x) < 0 || H5LTread_dataset_float(other, name, y) < 0 ||
              memcmp(x, y, da[0] * sizeof(float)) != 0;
    if (bad) print_error("checkpoint tensor %s differs\n", name);
    mem_free(x);
    mem_free(y);
    return bad ? -1 : 0;
}

static void assert_same_checkpoint(const char *a, const char *b) {
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(fa >= 0 && fb >= 0);
    assert_true(H5Ovisit(fa, H5_INDEX_NAME, H5_ITER_NATIVE, cmp_visit, &fb) >= 0);
    H5Fclose(fa);
    H5Fclose(fb);
}

static void test_deterministic(void **state) {
    RunConfig c1, c2;
    CfgExtra extra = {0};
    RunSummary s1, s2;
    size_t live = mem_live_bytes();
    tiny_config(&c1, "det1");
    tiny_config(&c2, "det2");
    assert_int_equal(run_train(&c1, &extra, NULL, &s1), 0);
    assert_int_equal(run_train(&c2, &extra, NULL, &s2), 0);
    assert_true(s1.complete && s2.complete);
    assert_int_equal(access(s1.record, F_OK), 0);
    char part[1100];
    snprintf(part, sizeof part, "%s.part", s1.record);
    assert_int_not_equal(access(part, F_OK), 0); /* renamed when complete */
    assert_same_series(s1.record, s2.record, "/step", "loss");
    assert_same_series(s1.record, s2.record, "/epoch", "test_loss");
    assert_same_checkpoint(s1.checkpoint, s2.checkpoint);
    /* it learned something: the test accuracy beats chance (4 classes) */
    assert_true(s1.final_test_acc > 0.5);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_kill_and_resume(void **state) {
    RunConfig full, part;
    CfgExtra extra = {0};
    RunSummary sf, sp, sr;
    tiny_config(&full, "full");
    tiny_config(&part, "killed");
    assert_int_equal(run_train(&full, &extra, NULL, &sf), 0);
    RunHooks stop = {.stop_after_epochs = 1};
    assert_int_equal(run_train(&part, &extra, &stop, &sp), 0);
    assert_false(sp.complete);
    assert_int_equal(sp.epochs_done, 1);
    char final[1100];
    snprintf(final, sizeof final, "%s/killed.h5", tmpdir);
    assert_int_not_equal(access(final, F_OK), 0); /* no record under the final name */
    assert_int_equal(access(sp.record, F_OK), 0); /* the .part */
    /* resume from the stored config alone */
    RunConfig rc;
    CfgExtra rx;
    assert_int_equal(run_config_for_resume(final, &rc, &rx), 0);
    assert_int_equal(run_train(&rc, &rx, NULL, &sr), 0);
    assert_true(sr.complete);
    assert_int_equal(sr.epochs_done, 3);
    assert_same_series(sf.record, sr.record, "/epoch", "test_loss");
    assert_same_series(sf.record, sr.record, "/epoch", "train_loss");
    assert_same_series(sf.record, sr.record, "/step", "loss");
    assert_same_checkpoint(sf.checkpoint, sr.checkpoint);
}

/* ReSprop's per-layer state (stored samples, thresholds) survives a resume: bitwise the same run. */
static void test_scheme_state_survives_resume(void **state) {
    RunConfig full, part;
    CfgExtra extra = {0};
    assert_int_equal(config_set(&runconfig_table, &full, &extra, "scheme.warmup", "fraction:0.3", "test"), 0);
    RunSummary sf, sp, sr;
    tiny_config(&full, "rs-full");
    tiny_config(&part, "rs-killed");
    for (int i = 0; i < 2; i++) {
        RunConfig *c = i ? &part : &full;
        snprintf(c->scheme, sizeof c->scheme, "resprop");
        c->reuse = 0.8;
        c->log_every = 3;
    }
    assert_int_equal(run_train(&full, &extra, NULL, &sf), 0);
    RunHooks stop = {.stop_after_epochs = 2};
    assert_int_equal(run_train(&part, &extra, &stop, &sp), 0);
    RunConfig rc;
    CfgExtra rx;
    assert_int_equal(run_config_for_resume(part.out, &rc, &rx), 0);
    assert_string_equal(rc.scheme, "resprop");
    assert_int_equal(rx.n, 1); /* the scheme option came back from the stored config */
    assert_int_equal(run_train(&rc, &rx, NULL, &sr), 0);
    assert_same_series(sf.record, sr.record, "/step", "loss");
    assert_same_series(sf.record, sr.record, "/epoch", "test_loss");
    assert_same_series(sf.record, sr.record, "/network", "density");
    assert_same_checkpoint(sf.checkpoint, sr.checkpoint);
    /* the per-layer series exist and say what the scheme did */
    long n;
    double *d = read_col(sr.record, "/layers/001_conv1/scheme", "density", &n);
    assert_true(n > 0);
    bool sparse = false;
    for (long i = 0; i < n; i++) sparse |= d[i] < 0.9;
    assert_true(sparse);
    mem_free(d);
}

/* resprop's fc option puts the FC layer under the scheme too: it gets its series and sparsifies. */
static void test_scheme_on_fc(void **state) {
    RunConfig c;
    CfgExtra extra = {0};
    RunSummary s;
    tiny_config(&c, "rs-fc");
    snprintf(c.scheme, sizeof c.scheme, "resprop");
    c.reuse = 0.5;
    assert_int_equal(config_set(&runconfig_table, &c, &extra, "scheme.fc", "true", "test"), 0);
    assert_int_equal(config_set(&runconfig_table, &c, &extra, "scheme.warmup", "none", "test"), 0);
    assert_int_equal(run_train(&c, &extra, NULL, &s), 0);
    long n;
    double *d = read_col(s.record, "/layers/053_fc/scheme", "density", &n);
    assert_true(n > 0);
    bool sparse = false;
    for (long i = 0; i < n; i++) sparse |= d[i] < 0.99;
    assert_true(sparse);
    mem_free(d);
}

static void test_resume_rebuilds_missing_record(void **state) {
    RunConfig part;
    CfgExtra extra = {0};
    RunSummary sp, sr;
    tiny_config(&part, "lostrecord");
    RunHooks stop = {.stop_after_epochs = 2};
    assert_int_equal(run_train(&part, &extra, &stop, &sp), 0);
    assert_int_equal(unlink(sp.record), 0); /* the .part is gone; the checkpoint holds the history */
    RunConfig rc;
    CfgExtra rx;
    assert_int_equal(run_config_for_resume(part.out, &rc, &rx), 0);
    assert_int_equal(run_train(&rc, &rx, NULL, &sr), 0);
    long n;
    double *ep = read_col(sr.record, "/epoch", "epoch", &n);
    assert_int_equal(n, 3);
    for (long i = 0; i < n; i++) assert_true(ep[i] == i + 1);
    mem_free(ep);
}

static void test_complete_record_not_overwritten(void **state) {
    RunConfig c;
    CfgExtra extra = {0};
    RunSummary s;
    tiny_config(&c, "twice");
    c.epochs = 1;
    assert_int_equal(run_train(&c, &extra, NULL, &s), 0);
    log_set_level(LOG_ERROR + 0);
    assert_int_equal(run_train(&c, &extra, NULL, &s), ERR_IO);
}

static void test_diverging_run_fails_cleanly(void **state) {
    RunConfig c;
    CfgExtra extra = {0};
    RunSummary s;
    tiny_config(&c, "diverge");
    c.lr = 1e30; /* the loss becomes inf/NaN within a few steps */
    snprintf(c.schedule, sizeof c.schedule, "constant");
    c.momentum = 0;
    assert_int_equal(run_train(&c, &extra, NULL, &s), ERR_NUMERIC);
    char final[1100], part[1200], status[64] = "";
    snprintf(final, sizeof final, "%s/diverge.h5", tmpdir);
    snprintf(part, sizeof part, "%s.part", final);
    assert_int_not_equal(access(final, F_OK), 0);
    H5Reader *rd = NULL;
    assert_int_equal(h5reader_open(&rd, part), 0);
    assert_int_equal(h5reader_attr_str(rd, "/", "status", status, sizeof status), 0);
    assert_string_equal(status, "failed");
    h5reader_close(rd);
}

static void test_bad_input_writes_nothing(void **state) {
    RunConfig c;
    CfgExtra extra = {0};
    RunSummary s;
    tiny_config(&c, "badinput");
    snprintf(c.dataset, sizeof c.dataset, "cifar10");
    snprintf(c.data_dir, sizeof c.data_dir, "%s/no-such-dir", tmpdir);
    int rc = run_train(&c, &extra, NULL, &s);
    assert_true(rc == ERR_IO || rc == ERR_FORMAT);
    char part[1100];
    snprintf(part, sizeof part, "%s.part", c.out);
    assert_int_not_equal(access(c.out, F_OK), 0);
    assert_int_not_equal(access(part, F_OK), 0);
    tiny_config(&c, "badmodel");
    snprintf(c.model, sizeof c.model, "resnet9000");
    assert_int_equal(run_train(&c, &extra, NULL, &s), ERR_CONFIG);
    assert_int_not_equal(access(c.out, F_OK), 0);
}

/* ---- end to end on files in the real formats, written here ---------------------------------------- */

/* CIFAR records: `label_bytes` label bytes (the last one is the class, < classes) then 3 planes. */
static void write_cifar(const char *path, int n, int label_bytes, int classes, unsigned seed) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char rec[3074];
    for (int i = 0; i < n; i++) {
        int cls = (int)((seed + (unsigned)i) % (unsigned)classes);
        for (int b = 0; b < label_bytes; b++) rec[b] = (unsigned char)(b + 1 == label_bytes ? cls : cls / 5);
        for (int p = 0; p < 3072; p++) /* a class-dependent brightness pattern plus noise */
            rec[label_bytes + p] = (unsigned char)((p / 1024 == cls % 3 ? 200 : 40) + (rand_r(&seed) % 40));
        assert_int_equal(fwrite(rec, 1, (size_t)(3072 + label_bytes), f), (size_t)(3072 + label_bytes));
    }
    fclose(f);
}

static void train_few_steps(const char *dataset, const char *dir, const char *model, const char *name) {
    RunConfig c;
    CfgExtra extra = {0};
    RunSummary s;
    tiny_config(&c, name);
    snprintf(c.dataset, sizeof c.dataset, "%s", dataset);
    snprintf(c.data_dir, sizeof c.data_dir, "%s", dir);
    snprintf(c.model, sizeof c.model, "%s", model);
    c.epochs = 1;
    c.batch = 16;
    assert_int_equal(run_train(&c, &extra, NULL, &s), 0);
    assert_true(s.complete);
    assert_true(isfinite(s.final_test_loss));
    char src[1100] = "";
    H5Reader *rd = NULL;
    assert_int_equal(h5reader_open(&rd, s.record), 0);
    assert_int_equal(h5reader_attr_str(rd, "/", "dataset_source", src, sizeof src), 0);
    h5reader_close(rd);
    assert_non_null(strstr(src, dir));
}

static void test_cifar_formats_end_to_end(void **state) {
    char d10[512], d100[512], p[700];
    snprintf(d10, sizeof d10, "%s/cifar10", tmpdir);
    snprintf(d100, sizeof d100, "%s/cifar100", tmpdir);
    assert_int_equal(mkdir(d10, 0777), 0);
    assert_int_equal(mkdir(d100, 0777), 0);
    for (int b = 1; b <= 5; b++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", d10, b);
        write_cifar(p, 16, 1, 10, (unsigned)b);
    }
    snprintf(p, sizeof p, "%s/test_batch.bin", d10);
    write_cifar(p, 20, 1, 10, 99);
    snprintf(p, sizeof p, "%s/train.bin", d100);
    write_cifar(p, 64, 2, 100, 7);
    snprintf(p, sizeof p, "%s/test.bin", d100);
    write_cifar(p, 20, 2, 100, 8);
    train_few_steps("cifar10", d10, "resnet20", "cifar10-e2e");
    train_few_steps("cifar100", d100, "resnet20", "cifar100-e2e");
}

static void write_idx(const char *path, int magic, int n, int rows, int cols, unsigned seed) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    unsigned char hdr[16];
    int dims[3] = {n, rows, cols}, nd = magic == 0x803 ? 3 : 1;
    hdr[0] = hdr[1] = 0, hdr[2] = 8, hdr[3] = (unsigned char)nd;
    for (int i = 0; i < nd; i++)
        for (int b = 0; b < 4; b++) hdr[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    assert_true(gzwrite(f, hdr, (unsigned)(4 + 4 * nd)) > 0);
    for (int i = 0; i < n; i++) {
        int cls = i % 10;
        if (nd == 1) {
            unsigned char l = (unsigned char)cls;
            assert_int_equal(gzwrite(f, &l, 1), 1);
        } else
            for (int q = 0; q < rows * cols; q++) {
                unsigned char v = (unsigned char)((q / cols == cls * 2 ? 250 : 10) + rand_r(&seed) % 5);
                assert_int_equal(gzwrite(f, &v, 1), 1);
            }
    }
    gzclose(f);
}

static void test_mnist_format_end_to_end(void **state) {
    char d[512], p[700];
    snprintf(d, sizeof d, "%s/mnist", tmpdir);
    assert_int_equal(mkdir(d, 0777), 0);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", d);
    write_idx(p, 0x803, 64, 28, 28, 1);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", d);
    write_idx(p, 0x801, 64, 0, 0, 0);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", d);
    write_idx(p, 0x803, 20, 28, 28, 2);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", d);
    write_idx(p, 0x801, 20, 0, 0, 0);
    train_few_steps("mnist", d, "lenet5", "mnist-e2e");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_resume_rebuilds_missing_record),
        cmocka_unit_test(test_scheme_state_survives_resume),
        cmocka_unit_test(test_scheme_on_fc),
        cmocka_unit_test(test_complete_record_not_overwritten),
        cmocka_unit_test(test_diverging_run_fails_cleanly),
        cmocka_unit_test(test_bad_input_writes_nothing),
        cmocka_unit_test(test_cifar_formats_end_to_end),
        cmocka_unit_test(test_mnist_format_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
