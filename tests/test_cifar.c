/* test_cifar.c: the CIFAR-10 and CIFAR-100 binary readers on files written here (every pixel checked
 * in NHWC order, labels fine and coarse, the identity fields) and on broken ones. Every bad case
 * checks the return code, that the Dataset stays zeroed, that nothing leaks, and that the logged
 * message names the file and the expected/found values. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "datasets/dataset.h"

#define PATH_BYTES 512
#define SIDE 32
#define PLANE (SIDE * SIDE)
#define REC10 3073
#define REC100 3074

typedef struct {
    char dir[64];
} Fx;

static int fx_setup(void **state) {
    Fx *fx = test_calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_cifar") != 0) {
        test_free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    Fx *fx = *state;
    int rc = tu_rmtree(fx->dir);
    test_free(fx);
    return rc;
}

static void fx_path(const Fx *fx, char *out, const char *name) { snprintf(out, PATH_BYTES, "%s/%s", fx->dir, name); }

/* ---- writing CIFAR files ---- */

/* The stored (planar) pixel of file f, record i, channel ch at (y, x), and the labels. */
static uint8_t tpix(int f, size_t i, int ch, int y, int x) {
    return (uint8_t)(f * 53 + i * 37 + (size_t)ch * 101 + (size_t)y * 11 + (size_t)x * 5 + 3);
}
static int tlabel10(int f, size_t i) { return (int)((f * 5 + i * 3 + 1) % 10); }
static int tfine(int f, size_t i) { return (int)((f * 17 + i * 7 + 2) % 100); }
static int tcoarse(int f, size_t i) { return tfine(f, i) / 5; }

/* A file of n records in format rec (REC10 or REC100) for file number f, plus extra trailing bytes
 * (a partial record); label_at/label_value, when label_at < n, overwrite label byte `which` of
 * that record. *crc (when not NULL) continues over the bytes written. Returns the size. */
static size_t write_cifar(const char *path, int rec, int f, size_t n, size_t extra, size_t label_at,
                          int which, int label_value, uLong *crc) {
    size_t bytes = n * (size_t)rec + extra;
    uint8_t *buf = test_malloc(bytes ? bytes : 1);
    memset(buf, 0, bytes ? bytes : 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = buf + i * (size_t)rec;
        int nl = rec - 3 * PLANE;
        if (nl == 1) r[0] = (uint8_t)tlabel10(f, i);
        else {
            r[0] = (uint8_t)tcoarse(f, i);
            r[1] = (uint8_t)tfine(f, i);
        }
        if (i == label_at) r[which] = (uint8_t)label_value;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < SIDE; y++)
                for (int x = 0; x < SIDE; x++) r[nl + ch * PLANE + y * SIDE + x] = tpix(f, i, ch, y, x);
    }
    for (size_t k = 0; k < extra; k++) buf[n * (size_t)rec + k] = (uint8_t)(k + 1);
    tu_write_file(path, buf, bytes);
    if (crc) *crc = crc32(*crc, buf, (uInt)bytes);
    test_free(buf);
    return bytes;
}

/* Records per CIFAR-10 train batch: batch 2 holds 700 (2.1 MB, so the 1 MiB chunk loop runs
 * three times, the last partial), the rest a few. */
static const size_t N10[5] = {3, 700, 2, 5, 1};
#define N10_TEST 4
#define NOWHERE ((size_t)-1)

static const char *batch_name(int k) {
    static const char *const names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    return names[k];
}

/* All six CIFAR-10 files; the train and test crc32 and byte counts are returned when asked for. */
static void write_cifar10(const Fx *fx, uint32_t *crc_train, uint64_t *bytes_train, uint32_t *crc_test,
                          uint64_t *bytes_test) {
    char p[PATH_BYTES];
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t bytes = 0;
    for (int k = 0; k < 5; k++) {
        fx_path(fx, p, batch_name(k));
        bytes += write_cifar(p, REC10, k, N10[k], 0, NOWHERE, 0, 0, &crc);
    }
    if (crc_train) *crc_train = (uint32_t)crc;
    if (bytes_train) *bytes_train = bytes;
    crc = crc32(0L, Z_NULL, 0);
    fx_path(fx, p, batch_name(5));
    bytes = write_cifar(p, REC10, 5, N10_TEST, 0, NOWHERE, 0, 0, &crc);
    if (crc_test) *crc_test = (uint32_t)crc;
    if (bytes_test) *bytes_test = bytes;
}

/* ---- checks ---- */

static void assert_zeroed(const Dataset *d) {
    assert_int_equal(d->n, 0);
    assert_int_equal(d->c, 0);
    assert_int_equal(d->h, 0);
    assert_int_equal(d->w, 0);
    assert_int_equal(d->classes, 0);
    assert_null(d->images);
    assert_null(d->labels);
    assert_null(d->class_names);
    assert_int_equal(d->file_bytes, 0);
    assert_int_equal(d->checksum, 0);
    for (size_t k = 0; k < sizeof d->source; k++) assert_int_equal(d->source[k], 0);
}

/* Images [at, at+n) of d are file f's records 0..n, every pixel in NHWC order, and labels match
 * (kind 10: CIFAR-10 label; 100: fine; 20: coarse). */
static void assert_records(const Dataset *d, size_t at, int f, size_t n, int kind) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *img = d->images + (at + i) * 3 * PLANE;
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++)
                for (int ch = 0; ch < 3; ch++) {
                    uint8_t got = img[(y * SIDE + x) * 3 + ch], want = tpix(f, i, ch, y, x);
                    if (got != want && bad++ < 5)
                        print_error("file %d record %zu (%d,%d,%d): got %u, want %u\n", f, i, y, x, ch, got, want);
                }
        int want = kind == 10 ? tlabel10(f, i) : kind == 100 ? tfine(f, i) : tcoarse(f, i);
        if (d->labels[at + i] != want && bad++ < 10)
            print_error("file %d record %zu: label %d, want %d\n", f, i, d->labels[at + i], want);
    }
    assert_int_equal(bad, 0);
}

/* Runs load with stderr captured (and echoed), and checks: rc, the Dataset zeroed even
 * though it starts as garbage, no leak, and that the message contains each of the needles. */
typedef int (*LoadFn)(Dataset *d, const char *dir, const char *split, int variant);
static int load10(Dataset *d, const char *dir, const char *split, int variant) {
    return dataset_load_cifar10(d, dir, split);
}
static int load100(Dataset *d, const char *dir, const char *split, int coarse) {
    return dataset_load_cifar100(d, dir, split, coarse != 0);
}

static void expect_fail(Fx *fx, LoadFn load, const char *dir, const char *split, int variant, int want_rc,
                        const char *n1, const char *n2, const char *n3) {
    size_t live = mem_live_bytes();
    Dataset d;
    memset(&d, 0xab, sizeof d);
    TuCapture cap;
    int rc;
    TU_CAPTURE_ECHO(&cap, rc = load(&d, dir, split, variant));
    assert_int_equal(rc, want_rc);
    assert_zeroed(&d);
    assert_int_equal(mem_live_bytes(), live);
    assert_log_has(cap.text, n1);
    assert_log_has(cap.text, n2);
    assert_log_has(cap.text, n3);
}

/* ---- good files ---- */

static void test_cifar10_train_test(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    uint32_t crc_train, crc_test;
    uint64_t bytes_train, bytes_test;
    write_cifar10(fx, &crc_train, &bytes_train, &crc_test, &bytes_test);
    char want_source[PATH_BYTES];

    Dataset d = {0};
    assert_int_equal(dataset_load_cifar10(&d, fx->dir, "train"), 0);
    size_t total = 0;
    for (int k = 0; k < 5; k++) total += N10[k];
    assert_int_equal(d.n, total);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 32);
    assert_int_equal(d.w, 32);
    assert_int_equal(d.classes, 10);
    for (int k = 0, at = 0; k < 5; at += (int)N10[k], k++) assert_records(&d, (size_t)at, k, N10[k], 10);
    assert_int_equal(d.file_bytes, bytes_train);
    assert_int_equal(d.file_bytes, total * REC10);
    assert_int_equal(d.checksum, crc_train);
    snprintf(want_source, sizeof want_source, "%s (train)", fx->dir);
    assert_string_equal(d.source, want_source);
    assert_null(d.class_names);
    dataset_deinit(&d);
    assert_zeroed(&d);

    assert_int_equal(dataset_load_cifar10(&d, fx->dir, "test"), 0);
    assert_int_equal(d.n, N10_TEST);
    assert_records(&d, 0, 5, N10_TEST, 10);
    assert_int_equal(d.file_bytes, bytes_test);
    assert_int_equal(d.checksum, crc_test);
    snprintf(want_source, sizeof want_source, "%s (test)", fx->dir);
    assert_string_equal(d.source, want_source);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* dir with a trailing slash, and stats on a known set */
static void test_cifar10_trailing_slash_and_stats(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    write_cifar10(fx, NULL, NULL, NULL, NULL);
    char slash[PATH_BYTES];
    snprintf(slash, sizeof slash, "%s/", fx->dir);
    Dataset d = {0};
    assert_int_equal(dataset_load_cifar10(&d, slash, "test"), 0);
    assert_records(&d, 0, 5, N10_TEST, 10);
    /* channel stats against a direct double computation over the stored planes */
    double mean[3], std[3];
    dataset_channel_stats(&d, mean, std);
    for (int ch = 0; ch < 3; ch++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < N10_TEST; i++)
            for (int y = 0; y < SIDE; y++)
                for (int x = 0; x < SIDE; x++) {
                    double v = tpix(5, i, ch, y, x) / 255.0;
                    s += v;
                    s2 += v * v;
                }
        double cnt = (double)N10_TEST * PLANE, m = s / cnt;
        assert_true(fabs(mean[ch] - m) < 1e-12);
        assert_true(fabs(std[ch] - sqrt(s2 / cnt - m * m)) < 1e-9);
    }
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_cifar100_fine_coarse(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    char p[PATH_BYTES], want_source[PATH_BYTES];
    uLong crc_train = crc32(0L, Z_NULL, 0), crc_test = crc32(0L, Z_NULL, 0);
    fx_path(fx, p, "train.bin");
    size_t bytes_train = write_cifar(p, REC100, 0, 400, 0, NOWHERE, 0, 0, &crc_train); /* 1.2 MB */
    fx_path(fx, p, "test.bin");
    size_t bytes_test = write_cifar(p, REC100, 1, 7, 0, NOWHERE, 0, 0, &crc_test);

    Dataset d = {0};
    assert_int_equal(dataset_load_cifar100(&d, fx->dir, "train", false), 0);
    assert_int_equal(d.n, 400);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 32);
    assert_int_equal(d.w, 32);
    assert_int_equal(d.classes, 100);
    assert_records(&d, 0, 0, 400, 100);
    assert_int_equal(d.file_bytes, bytes_train);
    assert_int_equal(d.checksum, (uint32_t)crc_train);
    snprintf(want_source, sizeof want_source, "%s (train, fine labels)", fx->dir);
    assert_string_equal(d.source, want_source);
    dataset_deinit(&d);

    assert_int_equal(dataset_load_cifar100(&d, fx->dir, "train", true), 0);
    assert_int_equal(d.classes, 20);
    assert_records(&d, 0, 0, 400, 20);
    assert_int_equal(d.checksum, (uint32_t)crc_train); /* same bytes read */
    snprintf(want_source, sizeof want_source, "%s (train, coarse labels)", fx->dir);
    assert_string_equal(d.source, want_source);
    dataset_deinit(&d);

    assert_int_equal(dataset_load_cifar100(&d, fx->dir, "test", true), 0);
    assert_int_equal(d.n, 7);
    assert_records(&d, 0, 1, 7, 20);
    assert_int_equal(d.file_bytes, bytes_test);
    assert_int_equal(d.checksum, (uint32_t)crc_test);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_truncate(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    write_cifar10(fx, NULL, NULL, NULL, NULL);
    Dataset d = {0};
    assert_int_equal(dataset_load_cifar10(&d, fx->dir, "train"), 0);
    dataset_truncate(&d, 10000); /* more than there are: no-op */
    assert_int_equal(d.n, 711);
    dataset_truncate(&d, 5);
    assert_int_equal(d.n, 5);
    assert_records(&d, 0, 0, 3, 10);
    assert_records(&d, 3, 1, 2, 10);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* ---- bad input: one test per case ---- */

static void test_missing_dir(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    fx_path(fx, p, "nowhere");
    expect_fail(fx, load10, p, "train", 0, ERR_IO, p, "No such file", NULL);
    expect_fail(fx, load100, p, "test", 0, ERR_IO, p, "No such file", NULL);
    /* a file where the directory should be */
    fx_path(fx, p, "plain");
    write_cifar(p, REC10, 0, 1, 0, NOWHERE, 0, 0, NULL);
    expect_fail(fx, load10, p, "test", 0, ERR_IO, p, "not a directory", NULL);
}

static void test_missing_file(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    write_cifar10(fx, NULL, NULL, NULL, NULL);
    fx_path(fx, p, "data_batch_3.bin");
    remove(p);
    expect_fail(fx, load10, fx->dir, "train", 0, ERR_IO, p, "No such file", NULL);
    /* test still loads */
    Dataset d = {0};
    assert_int_equal(dataset_load_cifar10(&d, fx->dir, "test"), 0);
    dataset_deinit(&d);
    /* CIFAR-100: no train.bin; a directory named test.bin */
    fx_path(fx, p, "train.bin");
    expect_fail(fx, load100, fx->dir, "train", 0, ERR_IO, p, "No such file", NULL);
    fx_path(fx, p, "test.bin");
    assert_int_equal(mkdir(p, 0700), 0);
    expect_fail(fx, load100, fx->dir, "test", 1, ERR_IO, p, "not a regular file", NULL);
}

static void test_size_not_multiple(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    write_cifar10(fx, NULL, NULL, NULL, NULL);
    fx_path(fx, p, "data_batch_4.bin");
    write_cifar(p, REC10, 3, 2, 100, NOWHERE, 0, 0, NULL); /* 2 * 3073 + 100 = 6246 */
    expect_fail(fx, load10, fx->dir, "train", 0, ERR_FORMAT, p, "size 6246 bytes", "remainder of 100 bytes");
    fx_path(fx, p, "train.bin");
    write_cifar(p, REC100, 0, 3, 3073, NOWHERE, 0, 0, NULL); /* a CIFAR-10 record too many */
    expect_fail(fx, load100, fx->dir, "train", 0, ERR_FORMAT, p, "3074-byte record", "remainder of 3073 bytes");
}

/* A file cut inside its last record, and a file of one label byte only */
static void test_truncated(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    fx_path(fx, p, "test_batch.bin");
    write_cifar(p, REC10, 5, 2, 0, NOWHERE, 0, 0, NULL);
    assert_int_equal(truncate(p, 2 * REC10 - 1000), 0);
    expect_fail(fx, load10, fx->dir, "test", 0, ERR_FORMAT, p, "1 whole records", "remainder of 2073 bytes");
    fx_path(fx, p, "test.bin");
    write_cifar(p, REC100, 0, 0, 1, NOWHERE, 0, 0, NULL);
    expect_fail(fx, load100, fx->dir, "test", 1, ERR_FORMAT, p, "size 1 bytes", "0 whole records");
}

static void test_empty_file(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    write_cifar10(fx, NULL, NULL, NULL, NULL);
    fx_path(fx, p, "data_batch_5.bin");
    write_cifar(p, REC10, 4, 0, 0, NOWHERE, 0, 0, NULL);
    expect_fail(fx, load10, fx->dir, "train", 0, ERR_FORMAT, p, "empty file", "3073-byte records");
    fx_path(fx, p, "train.bin");
    write_cifar(p, REC100, 0, 0, 0, NOWHERE, 0, 0, NULL);
    expect_fail(fx, load100, fx->dir, "train", 0, ERR_FORMAT, p, "empty file", "3074-byte records");
}

static void test_label_out_of_range_cifar10(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    write_cifar10(fx, NULL, NULL, NULL, NULL);
    /* record 600 of the 700 in batch 2: in the second 1 MiB chunk */
    fx_path(fx, p, "data_batch_2.bin");
    write_cifar(p, REC10, 1, 700, 0, 600, 0, 10, NULL);
    expect_fail(fx, load10, fx->dir, "train", 0, ERR_FORMAT, p, "record 600 has label 10", "expected 0..9");
    fx_path(fx, p, "test_batch.bin");
    write_cifar(p, REC10, 5, 4, 0, 0, 0, 255, NULL);
    expect_fail(fx, load10, fx->dir, "test", 0, ERR_FORMAT, p, "record 0 has label 255", "0..9");
}

static void test_label_out_of_range_cifar100(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    fx_path(fx, p, "train.bin");
    write_cifar(p, REC100, 0, 5, 0, 3, 1, 100, NULL); /* fine 100 */
    expect_fail(fx, load100, fx->dir, "train", 0, ERR_FORMAT, p, "record 3 has fine label 100", "0..99");
    /* the fine label is checked even when loading coarse labels: the file is corrupt either way */
    expect_fail(fx, load100, fx->dir, "train", 1, ERR_FORMAT, p, "record 3 has fine label 100", NULL);
    write_cifar(p, REC100, 0, 5, 0, 4, 0, 20, NULL); /* coarse 20 */
    expect_fail(fx, load100, fx->dir, "train", 1, ERR_FORMAT, p, "record 4 has coarse label 20", "0..19");
    expect_fail(fx, load100, fx->dir, "train", 0, ERR_FORMAT, p, "record 4 has coarse label 20", NULL);
}

static void test_bad_split(void **state) {
    Fx *fx = *state;
    write_cifar10(fx, NULL, NULL, NULL, NULL);
    expect_fail(fx, load10, fx->dir, "valid", 0, ERR_CONFIG, "\"valid\"", "\"train\" or \"test\"", NULL);
    expect_fail(fx, load100, fx->dir, "", 0, ERR_CONFIG, "\"\"", "\"train\" or \"test\"", NULL);
}

static void test_deinit_class_names(void **state) {
    size_t live = mem_live_bytes();
    Dataset d = {0};
    d.classes = 3;
    d.class_names = mem_calloc(3, sizeof *d.class_names);
    assert_non_null(d.class_names);
    d.class_names[0] = mem_strdup("tench");
    d.class_names[2] = mem_strdup("goldfish"); /* a NULL entry in between is accepted */
    dataset_deinit(&d);
    assert_zeroed(&d);
    assert_int_equal(mem_live_bytes(), live);
    dataset_deinit(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cifar10_train_test, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cifar10_trailing_slash_and_stats, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cifar100_fine_coarse, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_size_not_multiple, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_label_out_of_range_cifar10, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_label_out_of_range_cifar100, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_split, fx_setup, fx_teardown),
        cmocka_unit_test(test_deinit_class_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
