/* test_synthetic.c: the synthetic dataset: deterministic in its arguments, train and test distinct
 * samples of shared classes, balanced labels, learnable (a nearest-class-mean classifier fitted on
 * train scores well on test), identity fields, and bad arguments rejected without leaks. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "datasets/dataset.h"

static size_t image_bytes(const Dataset *d) { return (size_t)d->n * d->c * d->h * d->w; }

static void assert_zeroed(const Dataset *d) {
    assert_int_equal(d->n, 0);
    assert_int_equal(d->c, 0);
    assert_int_equal(d->classes, 0);
    assert_null(d->images);
    assert_null(d->labels);
    assert_int_equal(d->checksum, 0);
    assert_int_equal(d->source[0], 0);
}

static void assert_same(const Dataset *a, const Dataset *b) {
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->images, b->images, image_bytes(a));
    assert_memory_equal(a->labels, b->labels, (size_t)a->n * sizeof *a->labels);
    assert_int_equal(a->checksum, b->checksum);
}

static size_t n_differing_bytes(const Dataset *a, const Dataset *b, size_t bytes) {
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++) n += a->images[i] != b->images[i];
    return n;
}

static void test_deterministic(void **state) {
    size_t live = mem_live_bytes();
    Dataset a = {0}, b = {0}, c = {0};
    assert_int_equal(dataset_synthetic(&a, "train", 100, 3, 8, 8, 4, 42), 0);
    assert_int_equal(dataset_synthetic(&b, "train", 100, 3, 8, 8, 4, 42), 0);
    assert_same(&a, &b);
    assert_int_equal(dataset_synthetic(&c, "train", 100, 3, 8, 8, 4, 43), 0);
    assert_true(n_differing_bytes(&a, &c, image_bytes(&a)) > image_bytes(&a) / 2);
    assert_int_not_equal(a.checksum, c.checksum);
    dataset_deinit(&b);
    /* the first samples do not depend on n */
    assert_int_equal(dataset_synthetic(&b, "train", 30, 3, 8, 8, 4, 42), 0);
    assert_memory_equal(a.images, b.images, image_bytes(&b));
    assert_memory_equal(a.labels, b.labels, 30 * sizeof *a.labels);
    dataset_deinit(&a);
    dataset_deinit(&b);
    dataset_deinit(&c);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_identity(void **state) {
    size_t live = mem_live_bytes();
    Dataset d = {0};
    assert_int_equal(dataset_synthetic(&d, "test", 50, 3, 5, 7, 6, 9), 0);
    assert_int_equal(d.n, 50);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 5);
    assert_int_equal(d.w, 7);
    assert_int_equal(d.classes, 6);
    assert_string_equal(d.source, "synthetic(seed=9,shape=3x5x7,classes=6,split=test)");
    assert_int_equal(d.file_bytes, 0);
    assert_null(d.class_names);
    /* crc32 over the images, then the labels as 4-byte little-endian integers */
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, d.images, (uInt)image_bytes(&d));
    for (int i = 0; i < d.n; i++) {
        uint8_t le[4] = {(uint8_t)d.labels[i], (uint8_t)(d.labels[i] >> 8), (uint8_t)(d.labels[i] >> 16),
                         (uint8_t)(d.labels[i] >> 24)};
        crc = crc32(crc, le, 4);
    }
    assert_int_equal(d.checksum, (uint32_t)crc);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* Labels in range and balanced; pixels use a good part of the range (not flat, not saturated). */
static void test_labels_and_pixels(void **state) {
    size_t live = mem_live_bytes();
    Dataset d = {0};
    assert_int_equal(dataset_synthetic(&d, "train", 1003, 1, 12, 12, 10, 5), 0);
    int count[10] = {0};
    for (int i = 0; i < d.n; i++) {
        assert_in_range(d.labels[i], 0, 9);
        count[d.labels[i]]++;
    }
    for (int k = 0; k < 10; k++) assert_in_range(count[k], 100, 101);
    size_t n0 = 0, n255 = 0;
    uint8_t lo = 255, hi = 0;
    for (size_t i = 0; i < image_bytes(&d); i++) {
        uint8_t v = d.images[i];
        n0 += v == 0;
        n255 += v == 255;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    assert_true(lo < 40 && hi > 215);
    assert_true(n0 + n255 < image_bytes(&d) / 50); /* clipping is rare */
    double mean, std;
    dataset_channel_stats(&d, &mean, &std);
    assert_true(mean > 0.4 && mean < 0.6);
    assert_true(std > 0.15 && std < 0.35);
    /* one class: every label 0 */
    dataset_deinit(&d);
    assert_int_equal(dataset_synthetic(&d, "test", 5, 2, 3, 3, 1, 5), 0);
    for (int i = 0; i < d.n; i++) assert_int_equal(d.labels[i], 0);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* Nearest class mean: class means from train, each test image to the closest mean (squared L2). */
static double nearest_mean_acc(const Dataset *train, const Dataset *test) {
    size_t per = (size_t)train->c * train->h * train->w;
    int k_n = train->classes;
    double *mean = calloc((size_t)k_n * per, sizeof *mean);
    int *count = calloc((size_t)k_n, sizeof *count);
    assert_non_null(mean);
    assert_non_null(count);
    for (int i = 0; i < train->n; i++) {
        int k = train->labels[i];
        count[k]++;
        for (size_t p = 0; p < per; p++) mean[k * per + p] += train->images[i * per + p];
    }
    for (int k = 0; k < k_n; k++) {
        assert_true(count[k] > 0);
        for (size_t p = 0; p < per; p++) mean[k * per + p] /= count[k];
    }
    int right = 0;
    for (int i = 0; i < test->n; i++) {
        int best = -1;
        double best_d = 0;
        for (int k = 0; k < k_n; k++) {
            double dist = 0;
            for (size_t p = 0; p < per; p++) {
                double e = test->images[i * per + p] - mean[k * per + p];
                dist += e * e;
            }
            if (best < 0 || dist < best_d) best = k, best_d = dist;
        }
        right += best == test->labels[i];
    }
    free(mean);
    free(count);
    return (double)right / test->n;
}

/* Train and test: different samples, the same classes (a classifier fitted on train works on test). */
static void test_learnable(void **state) {
    size_t live = mem_live_bytes();
    static const struct {
        int c, h, w, classes, n_train, n_test;
        uint64_t seed;
    } cases[] = {{3, 8, 8, 4, 512, 256, 1}, {3, 8, 8, 4, 512, 256, 2}, {1, 8, 8, 10, 1000, 500, 3},
                 {3, 32, 32, 10, 500, 200, 4}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Dataset train = {0}, test = {0};
        assert_int_equal(dataset_synthetic(&train, "train", cases[k].n_train, cases[k].c, cases[k].h,
                                           cases[k].w, cases[k].classes, cases[k].seed), 0);
        assert_int_equal(dataset_synthetic(&test, "test", cases[k].n_test, cases[k].c, cases[k].h,
                                           cases[k].w, cases[k].classes, cases[k].seed), 0);
        size_t bytes = image_bytes(&test);
        assert_true(n_differing_bytes(&train, &test, bytes) > bytes / 2);
        assert_int_not_equal(train.checksum, test.checksum);
        double acc = nearest_mean_acc(&train, &test);
        print_message("%dx%dx%d, %d classes: nearest-class-mean test accuracy %.3f (chance %.3f)\n",
                      cases[k].c, cases[k].h, cases[k].w, cases[k].classes, acc, 1.0 / cases[k].classes);
        assert_true(acc >= 0.8);
        /* control: the same classifier with another seed's train set is near chance */
        Dataset other = {0};
        assert_int_equal(dataset_synthetic(&other, "train", cases[k].n_train, cases[k].c, cases[k].h,
                                           cases[k].w, cases[k].classes, cases[k].seed + 100), 0);
        double acc_other = nearest_mean_acc(&other, &test);
        assert_true(acc_other < 0.5 * acc);
        dataset_deinit(&other);
        dataset_deinit(&train);
        dataset_deinit(&test);
    }
    assert_int_equal(mem_live_bytes(), live);
}

static void expect_bad(const char *split, int n, int c, int h, int w, int classes) {
    size_t live = mem_live_bytes();
    Dataset d;
    memset(&d, 0xab, sizeof d);
    assert_int_equal(dataset_synthetic(&d, split, n, c, h, w, classes, 1), ERR_CONFIG);
    assert_zeroed(&d);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_bad_args(void **state) {
    expect_bad("valid", 10, 3, 8, 8, 4);
    expect_bad("", 10, 3, 8, 8, 4);
    expect_bad("train", 0, 3, 8, 8, 4);
    expect_bad("train", -1, 3, 8, 8, 4);
    expect_bad("train", 10, 0, 8, 8, 4);
    expect_bad("train", 10, 65, 8, 8, 4);
    expect_bad("train", 10, 3, 0, 8, 4);
    expect_bad("train", 10, 3, 8, 0, 4);
    expect_bad("train", 10, 3, 4097, 8, 4);
    expect_bad("train", 10, 3, 8, -2, 4);
    expect_bad("train", 10, 3, 8, 8, 0);
    expect_bad("train", 10, 3, 8, 8, 65537);
}

/* dataset_truncate and dataset_channel_stats on generated data */
static void test_truncate_and_stats(void **state) {
    size_t live = mem_live_bytes();
    Dataset d = {0}, e = {0};
    assert_int_equal(dataset_synthetic(&d, "train", 40, 2, 4, 4, 3, 7), 0);
    assert_int_equal(dataset_synthetic(&e, "train", 40, 2, 4, 4, 3, 7), 0);
    dataset_truncate(&d, 40);
    assert_int_equal(d.n, 40);
    dataset_truncate(&d, 11);
    assert_int_equal(d.n, 11);
    assert_memory_equal(d.images, e.images, 11 * 2 * 4 * 4);
    double mean[2], std[2];
    dataset_channel_stats(&d, mean, std);
    for (int ch = 0; ch < 2; ch++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < 11 * 16; i++) {
            double v = d.images[i * 2 + ch] / 255.0;
            s += v;
            s2 += v * v;
        }
        double m = s / (11 * 16);
        assert_true(fabs(mean[ch] - m) < 1e-12);
        assert_true(fabs(std[ch] - sqrt(s2 / (11 * 16) - m * m)) < 1e-9);
    }
    dataset_truncate(&d, 0);
    assert_int_equal(d.n, 0);
    dataset_channel_stats(&d, mean, std);
    assert_true(mean[0] == 0 && std[0] == 0);
    dataset_deinit(&d);
    dataset_deinit(&e);
    assert_int_equal(mem_live_bytes(), live);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_labels_and_pixels),
        cmocka_unit_test(test_learnable),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_truncate_and_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
