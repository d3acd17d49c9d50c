/* test_idx.c: the IDX reader on files written here (gzipped and plain) and on corrupted ones, plus
 * the real Fashion-MNIST files when /usr/share/datasets/fashion-mnist holds them (skipped otherwise).
 * Every bad case checks the return code, that the Dataset stays zeroed, that nothing leaks, and that
 * the logged message names the file and the expected/found values. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "datasets/dataset.h"

#define MAGIC_IMAGES 0x00000803u
#define MAGIC_LABELS 0x00000801u
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define PATH_BYTES 512

typedef struct {
    char dir[64];
    char images[PATH_BYTES]; /* dir/images.idx(.gz) used by the single-file tests */
    char labels[PATH_BYTES];
} Fx;

/* ---- fixture: a fresh temp dir per test, removed with everything in it ---- */

static int fx_setup(void **state) {
    Fx *fx = test_calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_idx") != 0) {
        test_free(fx);
        return -1;
    }
    snprintf(fx->images, sizeof fx->images, "%s/images.idx.gz", fx->dir);
    snprintf(fx->labels, sizeof fx->labels, "%s/labels.idx.gz", fx->dir);
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

/* ---- writing IDX files ---- */

/* The pixel of image i at (r, c) and the label of record i in every generated file. */
static uint8_t tpix(size_t i, size_t r, size_t c) { return (uint8_t)(i * 37 + r * 11 + c * 5 + 3); }
static int32_t tlabel(size_t i, int classes) { return (int32_t)((i * 7 + 1) % (size_t)classes); }

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void write_bytes(const char *path, int gz, const uint8_t *buf, size_t len) {
    if (gz) {
        gzFile f = gzopen(path, "wb1");
        assert_non_null(f);
        if (len) assert_int_equal(gzwrite(f, buf, (unsigned)len), (int)len);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        tu_write_file(path, buf, len);
    }
}

/* An image file: magic, n_hdr, rows, cols, then body_bytes of the tpix stream (fewer than
 * n_hdr*rows*cols truncates, more appends trailing bytes). */
static void write_images(const char *path, int gz, uint32_t magic, uint32_t n_hdr, uint32_t rows,
                         uint32_t cols, size_t body_bytes) {
    uint8_t *buf = test_malloc(16 + body_bytes);
    put_be32(buf, magic);
    put_be32(buf + 4, n_hdr);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    size_t img = rows && cols ? (size_t)rows * cols : 1;
    for (size_t k = 0; k < body_bytes; k++) {
        size_t i = k / img, rc = k % img;
        buf[16 + k] = cols ? tpix(i, rc / cols, rc % cols) : 0;
    }
    write_bytes(path, gz, buf, 16 + body_bytes);
    test_free(buf);
}

/* A label file: magic, n_hdr, then n_body labels tlabel(i, classes). */
static void write_labels(const char *path, int gz, uint32_t magic, uint32_t n_hdr, size_t n_body,
                         int classes) {
    uint8_t *buf = test_malloc(8 + n_body);
    put_be32(buf, magic);
    put_be32(buf + 4, n_hdr);
    for (size_t i = 0; i < n_body; i++) buf[8 + i] = (uint8_t)tlabel(i, classes);
    write_bytes(path, gz, buf, 8 + n_body);
    test_free(buf);
}

/* The standard good pair used by the bad-case tests for the file they do not corrupt. */
#define GOOD_N 6
#define GOOD_ROWS 4
#define GOOD_COLS 5
#define GOOD_CLASSES 10
static void write_good_images(const Fx *fx) {
    write_images(fx->images, 1, MAGIC_IMAGES, GOOD_N, GOOD_ROWS, GOOD_COLS, GOOD_N * GOOD_ROWS * GOOD_COLS);
}
static void write_good_labels(const Fx *fx) {
    write_labels(fx->labels, 1, MAGIC_LABELS, GOOD_N, GOOD_N, GOOD_CLASSES);
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
    assert_int_equal(d->source[0], 0);
}

/* Every pixel and label of a loaded generated file. */
static void assert_generated(const Dataset *d, int n, int rows, int cols, int classes) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, rows);
    assert_int_equal(d->w, cols);
    assert_int_equal(d->classes, classes);
    assert_non_null(d->images);
    assert_non_null(d->labels);
    size_t bad = 0;
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t r = 0; r < (size_t)rows; r++)
            for (size_t c = 0; c < (size_t)cols; c++) {
                uint8_t got = d->images[(i * (size_t)rows + r) * (size_t)cols + c];
                if (got != tpix(i, r, c) && bad++ < 5)
                    print_error("pixel (%zu,%zu,%zu): got %u, want %u\n", i, r, c, got, tpix(i, r, c));
            }
    for (size_t i = 0; i < (size_t)n; i++)
        if (d->labels[i] != tlabel(i, classes) && bad++ < 10)
            print_error("label %zu: got %d, want %d\n", i, d->labels[i], tlabel(i, classes));
    assert_int_equal(bad, 0);
}

/* The identity the loader must report for an image file then a label file: crc32 over the bytes the
 * test wrote (read back as stored, i.e. compressed for .gz) and their total size. */
static void file_identity(const char *path, uLong *crc, uint64_t *bytes) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        *crc = crc32(*crc, buf, (uInt)got);
        *bytes += got;
    }
    assert_int_equal(fclose(f), 0);
}

static void assert_identity(const Dataset *d, const char *images, const char *labels, const char *source) {
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t bytes = 0;
    struct stat si, sl;
    file_identity(images, &crc, &bytes);
    file_identity(labels, &crc, &bytes);
    assert_int_equal(stat(images, &si), 0);
    assert_int_equal(stat(labels, &sl), 0);
    assert_int_equal(bytes, (uint64_t)si.st_size + (uint64_t)sl.st_size);
    assert_int_equal(d->file_bytes, bytes);
    assert_int_equal(d->checksum, (uint32_t)crc);
    assert_string_equal(d->source, source);
    assert_null(d->class_names);
}

/* Runs load (images/labels paths of fx, or dir+split when split != NULL) with stderr captured (and
 * echoed), and checks: rc, the Dataset zeroed even though it starts as garbage, no leak, and that
 * the message contains each of the up to three needles. */
static void expect_fail_impl(Fx *fx, const char *split, int classes, int want_rc, const char *n1,
                             const char *n2, const char *n3) {
    size_t live = mem_live_bytes();
    Dataset d;
    memset(&d, 0xab, sizeof d);
    TuCapture cap;
    tu_capture_begin(&cap);
    int rc = split ? dataset_load_idx_dir(&d, fx->dir, split, classes)
                   : dataset_load_idx(&d, fx->images, fx->labels, classes);
    tu_capture_end_echo(&cap);
    assert_int_equal(rc, want_rc);
    assert_zeroed(&d);
    assert_int_equal(mem_live_bytes(), live);
    assert_log_has(cap.text, n1);
    assert_log_has(cap.text, n2);
    assert_log_has(cap.text, n3);
}
#define expect_fail(fx, rc, n1, n2, n3) expect_fail_impl(fx, NULL, GOOD_CLASSES, rc, n1, n2, n3)

/* ---- good files ---- */

static void test_load_gz(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    write_images(fx->images, 1, MAGIC_IMAGES, 7, 5, 3, 7 * 5 * 3);
    write_labels(fx->labels, 1, MAGIC_LABELS, 7, 7, 10);
    Dataset d = {0};
    assert_int_equal(dataset_load_idx(&d, fx->images, fx->labels, 10), 0);
    assert_generated(&d, 7, 5, 3, 10);
    char source[2 * PATH_BYTES + 8];
    snprintf(source, sizeof source, "%s + %s", fx->images, fx->labels);
    assert_identity(&d, fx->images, fx->labels, source);
    dataset_deinit(&d);
    assert_zeroed(&d);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_load_plain(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    char img[PATH_BYTES], lab[PATH_BYTES];
    fx_path(fx, img, "plain-images-idx3-ubyte");
    fx_path(fx, lab, "plain-labels-idx1-ubyte");
    write_images(img, 0, MAGIC_IMAGES, 4, 2, 6, 4 * 2 * 6);
    write_labels(lab, 0, MAGIC_LABELS, 4, 4, 3);
    Dataset d = {0};
    assert_int_equal(dataset_load_idx(&d, img, lab, 3), 0);
    assert_generated(&d, 4, 2, 6, 3);
    char source[2 * PATH_BYTES + 8];
    snprintf(source, sizeof source, "%s + %s", img, lab);
    assert_identity(&d, img, lab, source);
    dataset_deinit(&d);
    /* mixed: plain images, gzipped labels; one class means every label is 0 */
    write_labels(fx->labels, 1, MAGIC_LABELS, 4, 4, 1);
    assert_int_equal(dataset_load_idx(&d, img, fx->labels, 1), 0);
    assert_generated(&d, 4, 2, 6, 1);
    snprintf(source, sizeof source, "%s + %s", img, fx->labels);
    assert_identity(&d, img, fx->labels, source);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* 8000 28x28 images = 6.3 MB: larger than the reader's first buffer, so its growth path runs. */
static void test_load_large(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    write_images(fx->images, 1, MAGIC_IMAGES, 8000, 28, 28, (size_t)8000 * 28 * 28);
    write_labels(fx->labels, 1, MAGIC_LABELS, 8000, 8000, 10);
    Dataset d = {0};
    assert_int_equal(dataset_load_idx(&d, fx->images, fx->labels, 10), 0);
    assert_generated(&d, 8000, 28, 28, 10);
    char source[2 * PATH_BYTES + 8];
    snprintf(source, sizeof source, "%s + %s", fx->images, fx->labels);
    assert_identity(&d, fx->images, fx->labels, source);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* Standard names: train as .gz, test only without .gz (the fallback); dir with a trailing slash too. */
static void test_load_dir(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    char p[PATH_BYTES], slash[PATH_BYTES];
    fx_path(fx, p, "train-images-idx3-ubyte.gz");
    write_images(p, 1, MAGIC_IMAGES, 9, 3, 3, 9 * 3 * 3);
    fx_path(fx, p, "train-labels-idx1-ubyte.gz");
    write_labels(p, 1, MAGIC_LABELS, 9, 9, 10);
    fx_path(fx, p, "t10k-images-idx3-ubyte");
    write_images(p, 0, MAGIC_IMAGES, 2, 3, 3, 2 * 3 * 3);
    fx_path(fx, p, "t10k-labels-idx1-ubyte");
    write_labels(p, 0, MAGIC_LABELS, 2, 2, 10);
    Dataset d = {0};
    char img[PATH_BYTES], lab[PATH_BYTES], source[PATH_BYTES + 16];
    assert_int_equal(dataset_load_idx_dir(&d, fx->dir, "train", 10), 0);
    assert_generated(&d, 9, 3, 3, 10);
    fx_path(fx, img, "train-images-idx3-ubyte.gz");
    fx_path(fx, lab, "train-labels-idx1-ubyte.gz");
    snprintf(source, sizeof source, "%s (train)", fx->dir);
    assert_identity(&d, img, lab, source);
    dataset_deinit(&d);
    snprintf(slash, sizeof slash, "%s/", fx->dir);
    assert_int_equal(dataset_load_idx_dir(&d, slash, "test", 10), 0);
    assert_generated(&d, 2, 3, 3, 10);
    fx_path(fx, img, "t10k-images-idx3-ubyte");
    fx_path(fx, lab, "t10k-labels-idx1-ubyte");
    snprintf(source, sizeof source, "%s/ (test)", fx->dir);
    assert_identity(&d, img, lab, source);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_deinit_zeroed(void **state) {
    Dataset d = {0};
    dataset_deinit(&d);
    assert_zeroed(&d);
    dataset_deinit(NULL);
}

/* ---- bad files: one test per case ---- */

static void test_wrong_magic_images(void **state) {
    Fx *fx = *state;
    write_good_labels(fx);
    write_images(fx->images, 1, 0x12345678u, GOOD_N, GOOD_ROWS, GOOD_COLS, GOOD_N * GOOD_ROWS * GOOD_COLS);
    expect_fail(fx, ERR_FORMAT, fx->images, "0x12345678", "0x00000803");
    /* a label file given as the images: found 0x801, and a hint */
    write_labels(fx->images, 1, MAGIC_LABELS, GOOD_N, GOOD_N, GOOD_CLASSES);
    expect_fail(fx, ERR_FORMAT, "0x00000801", "0x00000803", "swapped");
}

static void test_wrong_magic_labels(void **state) {
    Fx *fx = *state;
    write_good_images(fx);
    write_labels(fx->labels, 1, 0x00000802u, GOOD_N, GOOD_N, GOOD_CLASSES);
    expect_fail(fx, ERR_FORMAT, fx->labels, "0x00000802", "0x00000801");
}

static void test_truncated_images(void **state) {
    Fx *fx = *state;
    write_good_labels(fx);
    /* 2.5 of 6 images present: 120 bytes expected, 50 found */
    write_images(fx->images, 1, MAGIC_IMAGES, GOOD_N, GOOD_ROWS, GOOD_COLS, 50);
    expect_fail(fx, ERR_FORMAT, fx->images, "120 bytes", "found 50 bytes (2 whole images)");
    /* cut inside the header: 16 header bytes expected */
    uint8_t hdr[10] = {0, 0, 8, 3, 0, 0, 0, GOOD_N, 0, 0};
    write_bytes(fx->images, 0, hdr, sizeof hdr);
    expect_fail(fx, ERR_FORMAT, fx->images, "expected 16 bytes", "found 10");
    /* an empty file */
    write_bytes(fx->images, 0, hdr, 0);
    expect_fail(fx, ERR_FORMAT, fx->images, "expected 16 bytes", "found 0");
}

static void test_truncated_labels(void **state) {
    Fx *fx = *state;
    write_good_images(fx);
    write_labels(fx->labels, 1, MAGIC_LABELS, GOOD_N, GOOD_N - 2, GOOD_CLASSES);
    expect_fail(fx, ERR_FORMAT, fx->labels, "6 labels", "found 4 bytes");
}

/* A .gz file cut in the middle of its compressed stream (not just a short IDX inside a whole gzip). */
static void test_truncated_gzip_stream(void **state) {
    Fx *fx = *state;
    write_labels(fx->labels, 1, MAGIC_LABELS, 300, 300, GOOD_CLASSES);
    write_images(fx->images, 1, MAGIC_IMAGES, 300, 28, 28, (size_t)300 * 28 * 28);
    struct stat st;
    assert_int_equal(stat(fx->images, &st), 0);
    assert_int_equal(truncate(fx->images, st.st_size / 2), 0);
    expect_fail(fx, ERR_FORMAT, fx->images, "cut short", NULL);
    /* only the 8-byte gzip trailer missing: all data present, still an error */
    write_good_labels(fx);
    write_images(fx->images, 1, MAGIC_IMAGES, GOOD_N, GOOD_ROWS, GOOD_COLS, GOOD_N * GOOD_ROWS * GOOD_COLS);
    assert_int_equal(stat(fx->images, &st), 0);
    assert_int_equal(truncate(fx->images, st.st_size - 8), 0);
    expect_fail(fx, ERR_FORMAT, fx->images, "cut short", NULL);
}

static void test_corrupt_gzip_data(void **state) {
    Fx *fx = *state;
    write_good_labels(fx);
    write_good_images(fx);
    FILE *f = fopen(fx->images, "r+b");
    assert_non_null(f);
    uint8_t junk[8] = {0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00};
    assert_int_equal(fseek(f, 12, SEEK_SET), 0); /* past the 10-byte gzip header */
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    assert_int_equal(fclose(f), 0);
    expect_fail(fx, ERR_FORMAT, fx->images, NULL, NULL);
}

static void test_trailing_data(void **state) {
    Fx *fx = *state;
    write_good_labels(fx);
    write_images(fx->images, 1, MAGIC_IMAGES, GOOD_N, GOOD_ROWS, GOOD_COLS, GOOD_N * GOOD_ROWS * GOOD_COLS + 1);
    expect_fail(fx, ERR_FORMAT, fx->images, "after the 6 images", NULL);
}

static void test_count_mismatch(void **state) {
    Fx *fx = *state;
    write_good_images(fx);
    write_labels(fx->labels, 1, MAGIC_LABELS, GOOD_N + 1, GOOD_N + 1, GOOD_CLASSES);
    expect_fail(fx, ERR_FORMAT, "6 images", "7 labels", fx->labels);
}

static void test_label_out_of_range(void **state) {
    Fx *fx = *state;
    write_good_images(fx);
    /* tlabel for 6 records and 10 classes: 1 8 5 2 9 6 -> with 9 classes record 4 (label 9) is bad */
    write_good_labels(fx);
    expect_fail_impl(fx, NULL, 9, ERR_FORMAT, fx->labels, "record 4 has label 9", "0..8");
    /* a 255 byte */
    uint8_t lab[8 + GOOD_N] = {0, 0, 8, 1, 0, 0, 0, GOOD_N, 0, 1, 2, 255, 4, 5};
    write_bytes(fx->labels, 0, lab, sizeof lab);
    expect_fail(fx, ERR_FORMAT, "record 3 has label 255", NULL, NULL);
}

static void test_missing_file(void **state) {
    Fx *fx = *state;
    write_good_labels(fx); /* images missing */
    expect_fail(fx, ERR_IO, fx->images, "No such file", NULL);
    remove(fx->labels); /* labels missing */
    write_good_images(fx);
    expect_fail(fx, ERR_IO, fx->labels, "No such file", NULL);
    /* a directory where a file should be: opens, but cannot be read */
    assert_int_equal(mkdir(fx->labels, 0700), 0);
    expect_fail(fx, ERR_IO, fx->labels, NULL, NULL);
    /* the directory form: neither train-images...gz nor train-images... */
    expect_fail_impl(fx, "train", GOOD_CLASSES, ERR_IO, "train-images-idx3-ubyte.gz", "neither", NULL);
}

static void test_zero_images(void **state) {
    Fx *fx = *state;
    write_images(fx->images, 1, MAGIC_IMAGES, 0, GOOD_ROWS, GOOD_COLS, 0);
    write_labels(fx->labels, 1, MAGIC_LABELS, 0, 0, GOOD_CLASSES);
    expect_fail(fx, ERR_FORMAT, fx->images, "zero images", NULL);
}

static void test_absurd_dims(void **state) {
    Fx *fx = *state;
    write_good_labels(fx);
    static const uint32_t dims[][2] = {{0, 28}, {28, 0}, {4097, 28}, {28, 4097}, {0xffffffffu, 1}};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        write_images(fx->images, 1, MAGIC_IMAGES, GOOD_N, dims[k][0], dims[k][1], 0);
        expect_fail(fx, ERR_FORMAT, fx->images, "absurd image size", "1..4096");
    }
    /* 4096 itself is allowed: fails only as truncated */
    write_images(fx->images, 1, MAGIC_IMAGES, GOOD_N, 4096, 1, 10);
    expect_fail(fx, ERR_FORMAT, fx->images, "truncated", NULL);
    /* a count beyond int */
    write_images(fx->images, 1, MAGIC_IMAGES, 0x80000000u, 1, 1, 0);
    expect_fail(fx, ERR_FORMAT, fx->images, "absurd image count", NULL);
}

static void test_bad_arguments(void **state) {
    Fx *fx = *state;
    write_good_images(fx);
    write_good_labels(fx);
    expect_fail_impl(fx, NULL, 0, ERR_CONFIG, "classes = 0", NULL, NULL);
    expect_fail_impl(fx, NULL, 257, ERR_CONFIG, "classes = 257", NULL, NULL);
    expect_fail_impl(fx, "valid", GOOD_CLASSES, ERR_CONFIG, "\"valid\"", "\"train\" or \"test\"", NULL);
}

/* ---- the real files ---- */

static void check_fashion(const char *split, int n_want) {
    size_t live = mem_live_bytes();
    Dataset d = {0};
    assert_int_equal(dataset_load_idx_dir(&d, FASHION_DIR, split, 10), 0);
    assert_int_equal(d.n, n_want);
    assert_int_equal(d.c, 1);
    assert_int_equal(d.h, 28);
    assert_int_equal(d.w, 28);
    assert_int_equal(d.classes, 10);
    int count[10] = {0};
    for (int i = 0; i < d.n; i++) {
        assert_in_range(d.labels[i], 0, 9);
        count[d.labels[i]]++;
    }
    for (int k = 0; k < 10; k++) {
        if (count[k] == 0) print_error("%s: class %d absent\n", split, k);
        assert_true(count[k] > 0);
    }
    /* Fashion-MNIST's mean pixel is about 73 (0.286 * 255): catches a byte offset or a wrong file */
    double sum = 0;
    size_t n_pix = (size_t)d.n * 28 * 28;
    for (size_t i = 0; i < n_pix; i++) sum += d.images[i];
    double mean = sum / (double)n_pix;
    if (mean < 60 || mean > 85) print_error("%s: mean pixel %.2f, expected ~73\n", split, mean);
    assert_true(mean >= 60 && mean <= 85);
    char img[PATH_BYTES], lab[PATH_BYTES], source[PATH_BYTES];
    const char *prefix = strcmp(split, "train") == 0 ? "train" : "t10k";
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", FASHION_DIR, prefix);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", FASHION_DIR, prefix);
    snprintf(source, sizeof source, "%s (%s)", FASHION_DIR, split);
    assert_identity(&d, img, lab, source);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_fashion_mnist(void **state) {
    struct stat st;
    if (stat(FASHION_DIR "/train-images-idx3-ubyte.gz", &st) != 0) skip();
    check_fashion("train", 60000);
    check_fashion("test", 10000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_gz, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_plain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_large, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_dir, fx_setup, fx_teardown),
        cmocka_unit_test(test_deinit_zeroed),
        cmocka_unit_test_setup_teardown(test_wrong_magic_images, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_magic_labels, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_images, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_labels, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_gzip_stream, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_gzip_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_trailing_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_count_mismatch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_label_out_of_range, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_zero_images, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_absurd_dims, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, fx_setup, fx_teardown),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
