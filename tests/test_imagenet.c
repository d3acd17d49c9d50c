/* test_imagenet.c: the ImageNet converter and shard reader on JPEG trees written here with libjpeg
 * (odd sizes, grayscale, CMYK, corrupt and truncated files; class-folder val, flat val with
 * LOC_val_solution.csv, flat val with val_labels.txt), the resize/crop step on its own, and every
 * failure path of both (return code, message naming the path, no leftovers, no leaks). */
#include "tests/testutil.h"

#include <stdio.h> /* before jpeglib.h */

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>
#include <jpeglib.h>
#include <zlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "datasets/dataset.h"
#include "datasets/imagenet.h"

#define PATH_BYTES 1024
#define S 16        /* converted image side */
#define SHARD 4     /* images per shard: forces several shards */
#define JPEG_TOL 8  /* per-channel tolerance after JPEG + resampling */

static const char *const WNIDS[3] = {"n01440764", "n01443537", "n01484850"};

typedef struct {
    uint8_t r, g, b;
} Rgb;

static const Rgb RED = {220, 40, 30}, GREEN = {40, 190, 60}, BLUE = {30, 50, 210}, GRAY = {128, 128, 128};
static const Rgb ORANGE = {200, 100, 0}; /* the CMYK image: inverted (255, 128, 0, 200) */

/* What a converted image must look like: one colour, or left half `a` and right half `b`. */
typedef struct {
    Rgb a, b;
    int split;
} Look;

#define SOLID(c) ((Look){c, c, 0})
#define HALVES(l, r) ((Look){l, r, 1})

typedef struct {
    char dir[64];
    TuCapture cap; /* stderr of the last captured call */
} Fx;

/* ---- files and directories ---- */

/* out (PATH_BYTES) = the formatted path; fails the test when it does not fit. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out, PATH_BYTES, fmt, ap);
    va_end(ap);
    assert_true(w >= 0 && w < PATH_BYTES);
}

static void fx_path(const Fx *fx, char *out, const char *rel) { pathf(out, "%s/%s", fx->dir, rel); }

/* mkdir -p under fx->dir. */
static void fx_mkdirs(const Fx *fx, const char *rel) {
    char path[PATH_BYTES];
    fx_path(fx, path, rel);
    for (char *p = path + strlen(fx->dir) + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    mkdir(path, 0700);
}

static int fx_setup(void **state) {
    Fx *fx = test_calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_imagenet") != 0) {
        test_free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    Fx *fx = *state;
    tu_capture_abort(&fx->cap);
    int rc = tu_rmtree(fx->dir);
    test_free(fx);
    return rc;
}

static void fx_write_text(const Fx *fx, const char *rel, const char *text) {
    char path[PATH_BYTES];
    fx_path(fx, path, rel);
    tu_write_file(path, text, strlen(text));
}

static void copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    rewind(f);
    char *buf = test_malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    tu_write_file(to, buf, (size_t)len);
    test_free(buf);
}

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

/* Sorted names in dir (not . and ..), joined by spaces into out. */
static void list_dir(const char *dir, char *out, size_t cap) {
    char names[32][NAME_MAX + 1];
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n < 32) strcpy(names[n++], e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_name);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i) strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, names[i], cap - strlen(out) - 1);
    }
}

/* ---- JPEG writing with libjpeg ---- */

/* pixels (h, w, comps) in color space cs; no chroma subsampling, quality 95. adobe = 0 leaves out
 * the Adobe marker libjpeg writes for CMYK by default. */
static void write_jpeg(const char *path, int w, int h, int comps, J_COLOR_SPACE cs, const uint8_t *pixels,
                       int adobe) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    for (int k = 0; k < c.num_components; k++) c.comp_info[k].h_samp_factor = c.comp_info[k].v_samp_factor = 1;
    if (!adobe) c.write_Adobe_marker = FALSE;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)c.next_scanline * (size_t)w * (size_t)comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    assert_int_equal(fclose(f), 0);
}

/* An RGB JPEG showing `look` (split: columns < w/2 are a, the rest b). */
static void fx_jpeg_rgb(const Fx *fx, const char *rel, int w, int h, Look look) {
    char path[PATH_BYTES];
    uint8_t *px = test_malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            Rgb c = look.split && x >= w / 2 ? look.b : look.a;
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
    fx_path(fx, path, rel);
    write_jpeg(path, w, h, 3, JCS_RGB, px, 1);
    test_free(px);
}

static void fx_jpeg_gray(const Fx *fx, const char *rel, int w, int h, uint8_t v) {
    char path[PATH_BYTES];
    uint8_t *px = test_malloc((size_t)w * (size_t)h);
    memset(px, v, (size_t)w * (size_t)h);
    fx_path(fx, path, rel);
    write_jpeg(path, w, h, 1, JCS_GRAYSCALE, px, 1);
    test_free(px);
}

/* A CMYK JPEG with these stored values: with the Adobe marker (libjpeg's default) they are read as
 * inverted (Photoshop), without it as plain ink amounts. */
static void fx_jpeg_cmyk(const Fx *fx, const char *rel, int w, int h, const uint8_t cmyk[4], int adobe) {
    char path[PATH_BYTES];
    uint8_t *px = test_malloc((size_t)w * (size_t)h * 4);
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) memcpy(px + 4 * i, cmyk, 4);
    fx_path(fx, path, rel);
    write_jpeg(path, w, h, 4, JCS_CMYK, px, adobe);
    test_free(px);
}

/* A noisy 64x64 JPEG cut to 40% of its bytes: libjpeg reports "Premature end of JPEG file". */
static void fx_jpeg_truncated(const Fx *fx, const char *rel) {
    char path[PATH_BYTES];
    uint8_t *px = test_malloc(64 * 64 * 3);
    for (size_t i = 0; i < 64 * 64 * 3; i++) px[i] = (uint8_t)(i * 2654435761u >> 13);
    fx_path(fx, path, rel);
    write_jpeg(path, 64, 64, 3, JCS_RGB, px, 1);
    test_free(px);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size * 2 / 5), 0);
}

/* Inserts 3 zero bytes before the final EOI marker: libjpeg warns "Corrupt JPEG data: N extraneous
 * bytes before marker 0xd9" after every pixel has been decoded. */
static void fx_jpeg_extraneous(const Fx *fx, const char *rel) {
    char path[PATH_BYTES];
    fx_path(fx, path, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[65536];
    size_t len = fread(buf, 1, sizeof buf - 3, f);
    fclose(f);
    assert_true(len > 4 && len < sizeof buf - 3 && buf[len - 2] == 0xff && buf[len - 1] == 0xd9);
    memset(buf + len - 2, 0, 3);
    buf[len + 1] = 0xff;
    buf[len + 2] = 0xd9;
    tu_write_file(path, buf, len + 3);
}

/* ---- the test trees ---- */

/* src/train: 9 good images, 2 bad ones, 1 non-JPEG file. Looks of the good ones in load order. */
#define TRAIN_N 9
#define TRAIN_SKIPPED 2
static void fx_train_tree(const Fx *fx, const char *src, Look *looks, int32_t *labels) {
    char rel[PATH_BYTES];
    const uint8_t cmyk[4] = {255, 128, 0, 200};
#define T(cls, name) (pathf(rel, "%s/train/%s/%s", src, WNIDS[cls], name), rel)
    for (int k = 0; k < 3; k++) fx_mkdirs(fx, T(k, ""));
    fx_jpeg_rgb(fx, T(0, "a.JPEG"), 37, 23, SOLID(RED));
    fx_jpeg_rgb(fx, T(0, "b.JPEG"), 50, 81, SOLID(RED));
    fx_jpeg_gray(fx, T(0, "c.JPEG"), 29, 31, 128);
    fx_jpeg_rgb(fx, T(0, "d.JPEG"), 12, 10, SOLID(RED)); /* smaller than S: enlarged */
    fx_write_text(fx, T(0, "notes.txt"), "not an image\n");
    fx_jpeg_rgb(fx, T(1, "a.JPEG"), 40, 40, SOLID(GREEN));
    fx_jpeg_rgb(fx, T(1, "b.jpg"), 23, 37, SOLID(GREEN));
    fx_jpeg_cmyk(fx, T(1, "c.JPEG"), 30, 20, cmyk, 1);
    fx_jpeg_rgb(fx, T(2, "a.JPEG"), 64, 48, SOLID(BLUE));
    fx_jpeg_rgb(fx, T(2, "b.JPEG"), 48, 32, HALVES(RED, BLUE)); /* -> 24x16, crop from x = 4 */
    fx_write_text(fx, T(2, "c.JPEG"), "this is not a JPEG file\n");
    fx_jpeg_truncated(fx, T(2, "d.JPEG"));
#undef T
    const Look l[TRAIN_N] = {SOLID(RED),   SOLID(RED),   SOLID(GRAY), SOLID(RED),          SOLID(GREEN),
                             SOLID(GREEN), SOLID(ORANGE), SOLID(BLUE), HALVES(RED, BLUE)};
    const int32_t y[TRAIN_N] = {0, 0, 0, 0, 1, 1, 1, 2, 2};
    if (looks) memcpy(looks, l, sizeof l);
    if (labels) memcpy(labels, y, sizeof y);
}

/* ---- checks ---- */

static void assert_zeroed(const Dataset *d) {
    assert_int_equal(d->n, 0);
    assert_int_equal(d->classes, 0);
    assert_null(d->images);
    assert_null(d->labels);
    assert_null(d->class_names);
}

static int near(int got, int want) { return got >= want - JPEG_TOL && got <= want + JPEG_TOL; }

/* Image i of d looks like look (every pixel, ±JPEG_TOL per channel). */
static void assert_look(const Dataset *d, int i, Look look) {
    int bad = 0;
    for (int y = 0; y < d->h; y++)
        for (int x = 0; x < d->w; x++) {
            const uint8_t *p = d->images + (((size_t)i * (size_t)d->h + (size_t)y) * (size_t)d->w + (size_t)x) * 3;
            Rgb c = look.split && x >= d->w / 2 ? look.b : look.a;
            if ((!near(p[0], c.r) || !near(p[1], c.g) || !near(p[2], c.b)) && bad++ < 4)
                print_error("image %d pixel (%d,%d): got (%d,%d,%d), want (%d,%d,%d) +-%d\n", i, y, x, p[0],
                            p[1], p[2], c.r, c.g, c.b, JPEG_TOL);
        }
    assert_int_equal(bad, 0);
}

static void assert_set(const Dataset *d, int n, const Look *looks, const int32_t *labels) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, S);
    assert_int_equal(d->w, S);
    assert_int_equal(d->classes, 3);
    assert_non_null(d->class_names);
    for (int k = 0; k < 3; k++) assert_string_equal(d->class_names[k], WNIDS[k]);
    for (int i = 0; i < n; i++) {
        if (d->labels[i] != labels[i]) print_error("label %d: got %d, want %d\n", i, d->labels[i], labels[i]);
        assert_int_equal(d->labels[i], labels[i]);
        assert_look(d, i, looks[i]);
    }
}

/* source = dir, file_bytes and crc32 over dir/<prefix>-00000.h5 .. in order. */
static void assert_identity(const Dataset *d, const char *dir, const char *prefix, int n_shards) {
    uLong crc = crc32(0, NULL, 0);
    uint64_t bytes = 0;
    for (int k = 0; k < n_shards; k++) {
        char path[PATH_BYTES];
        pathf(path, "%s/%s-%05d.h5", dir, prefix, k);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
            crc = crc32(crc, buf, (uInt)got);
            bytes += got;
        }
        fclose(f);
    }
    assert_string_equal(d->source, dir);
    assert_true(bytes > 0);
    assert_int_equal(d->file_bytes, bytes);
    assert_int_equal(d->checksum, (uint32_t)crc);
}

/* Images in a shard, and that it lists the three wnids. */
static long shard_images(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t dims[4];
    H5T_class_t cls;
    size_t size;
    assert_true(H5LTget_dataset_info(f, "images", dims, &cls, &size) >= 0);
    assert_int_equal(dims[1], S);
    assert_int_equal(dims[2], S);
    assert_int_equal(dims[3], 3);
    assert_int_equal(size, 1);
    hsize_t cdims[1];
    assert_true(H5LTget_dataset_info(f, "classes", cdims, &cls, &size) >= 0);
    assert_int_equal(cdims[0], 3);
    assert_int_equal(cls, H5T_STRING);
    H5Fclose(f);
    return (long)dims[0];
}

static void expect_convert_fail(Fx *fx, const char *src, const char *dst, int size, int want_rc,
                                const char *n1, const char *n2) {
    size_t live = mem_live_bytes();
    int skipped = -1;
    tu_capture_begin(&fx->cap);
    int rc = imagenet_convert(src, dst, size, SHARD, &skipped);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, want_rc);
    assert_true(skipped >= 0);
    assert_int_equal(mem_live_bytes(), live);
    assert_log_has(fx->cap.text, n1);
    assert_log_has(fx->cap.text, n2);
}

static void expect_load_fail(Fx *fx, const char *dir, const char *split, int want_rc, const char *n1,
                             const char *n2) {
    size_t live = mem_live_bytes();
    Dataset d;
    memset(&d, 0xab, sizeof d);
    tu_capture_begin(&fx->cap);
    int rc = dataset_load_imagenet(&d, dir, split);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, want_rc);
    assert_zeroed(&d);
    assert_int_equal(mem_live_bytes(), live);
    assert_log_has(fx->cap.text, n1);
    assert_log_has(fx->cap.text, n2);
}

/* ---- conversions that succeed ---- */

/* Class-folder val; train in 3 shards (4 + 4 + 1); bad files logged by path and counted. */
static void test_convert_folders(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    Look looks[TRAIN_N];
    int32_t labels[TRAIN_N];
    char src[PATH_BYTES], dst[PATH_BYTES], path[PATH_BYTES], names[1024];
    fx_train_tree(fx, "src", looks, labels);
    fx_mkdirs(fx, "src/val/n01440764");
    fx_mkdirs(fx, "src/val/n01484850");
    fx_jpeg_rgb(fx, "src/val/n01440764/v1.JPEG", 30, 30, SOLID(RED));
    fx_jpeg_rgb(fx, "src/val/n01484850/v2.JPEG", 20, 44, SOLID(BLUE));
    fx_jpeg_rgb(fx, "src/val/n01484850/v3.JPEG", 33, 33, SOLID(BLUE));
    fx_path(fx, src, "src");
    fx_path(fx, dst, "out");

    int skipped = -1;
    tu_capture_begin(&fx->cap);
    int rc = imagenet_convert(src, dst, S, SHARD, &skipped);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, TRAIN_SKIPPED);
    fx_path(fx, path, "src/train/n01484850/c.JPEG");
    assert_log_has(fx->cap.text, path);
    assert_log_has(fx->cap.text, "Not a JPEG file");
    fx_path(fx, path, "src/train/n01484850/d.JPEG");
    assert_log_has(fx->cap.text, path);
    assert_log_has(fx->cap.text, "Premature end of JPEG file");
    assert_log_has(fx->cap.text, "1 CMYK");
    assert_int_equal(mem_live_bytes(), live);

    list_dir(dst, names, sizeof names);
    assert_string_equal(names, "train-00000.h5 train-00001.h5 train-00002.h5 val-00000.h5");
    const long want_n[3] = {4, 4, 1};
    for (int k = 0; k < 3; k++) {
        pathf(path, "%s/train-%05d.h5", dst, k);
        assert_int_equal(shard_images(path), want_n[k]);
    }

    Dataset d = {0};
    assert_int_equal(dataset_load_imagenet(&d, dst, "train"), 0);
    assert_set(&d, TRAIN_N, looks, labels);
    assert_identity(&d, dst, "train", 3);
    dataset_deinit(&d);

    const Look vlooks[3] = {SOLID(RED), SOLID(BLUE), SOLID(BLUE)};
    const int32_t vlabels[3] = {0, 2, 2};
    assert_int_equal(dataset_load_imagenet(&d, dst, "val"), 0);
    assert_set(&d, 3, vlooks, vlabels);
    assert_identity(&d, dst, "val", 1);
    uint32_t crc = d.checksum;
    dataset_deinit(&d);
    assert_int_equal(dataset_load_imagenet(&d, dst, "test"), 0); /* "test" reads val */
    assert_set(&d, 3, vlooks, vlabels);
    assert_int_equal(d.checksum, crc);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);

    /* the same tree converted again elsewhere, a second later: byte-identical shards (deterministic:
     * no timestamps in the files) */
    char dst2[PATH_BYTES];
    fx_path(fx, dst2, "out2");
    sleep(1);
    assert_int_equal(imagenet_convert(src, dst2, S, SHARD, NULL), 0);
    assert_int_equal(dataset_load_imagenet(&d, dst2, "train"), 0);
    Dataset d1 = {0};
    assert_int_equal(dataset_load_imagenet(&d1, dst, "train"), 0);
    assert_int_equal(d.checksum, d1.checksum);
    assert_memory_equal(d.images, d1.images, (size_t)d.n * S * S * 3);
    dataset_deinit(&d1);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* Flat val labelled by val/LOC_val_solution.csv (header, CRLF line, several boxes), one corrupt val
 * file (skipped), one with a harmless libjpeg warning (kept). shard_images 1: one shard per image. */
static void test_convert_flat_csv(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    char src[PATH_BYTES], dst[PATH_BYTES], names[1024];
    fx_train_tree(fx, "src", NULL, NULL);
    fx_mkdirs(fx, "src/val");
    fx_jpeg_rgb(fx, "src/val/ILSVRC2012_val_00000001.JPEG", 17, 40, SOLID(GREEN));
    fx_jpeg_rgb(fx, "src/val/ILSVRC2012_val_00000002.JPEG", 40, 17, SOLID(RED));
    fx_jpeg_rgb(fx, "src/val/ILSVRC2012_val_00000003.JPEG", 16, 16, SOLID(BLUE));
    fx_write_text(fx, "src/val/ILSVRC2012_val_00000004.JPEG", "\xff\xd8\xff garbage");
    fx_jpeg_rgb(fx, "src/val/ILSVRC2012_val_00000005.JPEG", 19, 19, SOLID(RED));
    fx_jpeg_extraneous(fx, "src/val/ILSVRC2012_val_00000005.JPEG"); /* a warning only: kept */
    fx_write_text(fx, "src/val/LOC_val_solution.csv",
                  "ImageId,PredictionString\n"
                  "ILSVRC2012_val_00000003,n01484850 1 2 3 4 n01484850 5 6 7 8\r\n"
                  "ILSVRC2012_val_00000001,n01443537 0 0 10 10\n"
                  "ILSVRC2012_val_00000004,n01440764 0 0 10 10\n"
                  "ILSVRC2012_val_00000002,n01440764 1 1 5 5\n"
                  "ILSVRC2012_val_00000005,n01440764 1 1 5 5\n");
    fx_path(fx, src, "src");
    fx_path(fx, dst, "out");
    int skipped = -1;
    char path[PATH_BYTES];
    tu_capture_begin(&fx->cap);
    int rc = imagenet_convert(src, dst, S, 1, &skipped);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, TRAIN_SKIPPED + 1);
    fx_path(fx, path, "src/val/ILSVRC2012_val_00000005.JPEG");
    assert_log_has(fx->cap.text, path);
    assert_log_has(fx->cap.text, "extraneous bytes");
    list_dir(dst, names, sizeof names);
    assert_string_equal(names, "train-00000.h5 train-00001.h5 train-00002.h5 train-00003.h5 "
                               "train-00004.h5 train-00005.h5 train-00006.h5 train-00007.h5 "
                               "train-00008.h5 val-00000.h5 val-00001.h5 val-00002.h5 val-00003.h5");
    Dataset d = {0};
    const Look vlooks[4] = {SOLID(GREEN), SOLID(RED), SOLID(BLUE), SOLID(RED)};
    const int32_t vlabels[4] = {1, 0, 2, 0};
    assert_int_equal(dataset_load_imagenet(&d, dst, "val"), 0);
    assert_set(&d, 4, vlooks, vlabels);
    assert_identity(&d, dst, "val", 4);
    dataset_deinit(&d);
    assert_int_equal(dataset_load_imagenet(&d, dst, "train"), 0);
    assert_int_equal(d.n, TRAIN_N);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* src/val_labels.txt with wnids and 0-based indices, a comment, a blank line, a CRLF line, names with
 * and without extension or with a directory; one val class folder besides the flat files (folder
 * images come first); a CMYK JPEG without the Adobe marker (not inverted). */
static void test_convert_flat_txt(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    char src[PATH_BYTES], dst[PATH_BYTES];
    fx_train_tree(fx, "src", NULL, NULL);
    fx_mkdirs(fx, "src/val/n01443537");
    fx_jpeg_rgb(fx, "src/val/n01443537/m.JPEG", 25, 19, SOLID(GREEN));
    fx_jpeg_rgb(fx, "src/val/x1.JPEG", 21, 21, SOLID(BLUE));
    fx_jpeg_rgb(fx, "src/val/x2.jpeg", 31, 18, SOLID(RED));
    fx_jpeg_gray(fx, "src/val/x3.JPEG", 18, 31, 128);
    const uint8_t ink[4] = {0, 127, 255, 55}; /* no Adobe marker: plain CMYK -> ORANGE */
    fx_jpeg_cmyk(fx, "src/val/x4.JPEG", 26, 26, ink, 0);
    fx_write_text(fx, "src/val_labels.txt",
                  "# FILENAME WNID|INDEX\nx1.JPEG n01484850\n\nx2.JPEG 0\r\nx3 1\nval/x4.JPEG n01440764\n");
    fx_path(fx, src, "src");
    fx_path(fx, dst, "out");
    assert_int_equal(imagenet_convert(src, dst, S, SHARD, NULL), 0);
    Dataset d = {0};
    const Look vlooks[5] = {SOLID(GREEN), SOLID(BLUE), SOLID(RED), SOLID(GRAY), SOLID(ORANGE)};
    const int32_t vlabels[5] = {1, 2, 0, 1, 0};
    assert_int_equal(dataset_load_imagenet(&d, dst, "val"), 0);
    assert_set(&d, 5, vlooks, vlabels);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* No src/val: train shards only, a warning; loading val is then "no shards". */
static void test_convert_train_only(void **state) {
    Fx *fx = *state;
    size_t live = mem_live_bytes();
    char src[PATH_BYTES], dst[PATH_BYTES], names[1024];
    fx_train_tree(fx, "src", NULL, NULL);
    fx_path(fx, src, "src");
    fx_path(fx, dst, "out");
    assert_int_equal(imagenet_convert(src, dst, S, 100, NULL), 0);
    list_dir(dst, names, sizeof names);
    assert_string_equal(names, "train-00000.h5");
    expect_load_fail(fx, dst, "val", ERR_IO, dst, "val-NNNNN.h5");
    assert_int_equal(mem_live_bytes(), live);
}

/* ---- resize + crop on its own ---- */

static void test_resize_crop(void **state) {
    size_t live = mem_live_bytes();
    enum { MAXW = 90 };
    static uint8_t src[MAXW * MAXW * 3], dst[S * S * 3], dst2[S * S * 3];
    /* S x S in: copied unchanged */
    for (size_t i = 0; i < S * S * 3; i++) src[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(imagenet_resize_crop(src, S, S, S, dst), 0);
    assert_memory_equal(dst, src, S * S * 3);
    /* constants stay exact, shrinking and enlarging, either orientation */
    const int sizes[][2] = {{37, 23}, {23, 37}, {90, 17}, {5, 9}, {1, 1}, {16, 40}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int h = sizes[t][0], w = sizes[t][1];
        for (int i = 0; i < h * w; i++) {
            src[3 * i] = 201;
            src[3 * i + 1] = 7;
            src[3 * i + 2] = 99;
        }
        assert_int_equal(imagenet_resize_crop(src, h, w, S, dst), 0);
        for (int i = 0; i < S * S; i++) {
            assert_int_equal(dst[3 * i], 201);
            assert_int_equal(dst[3 * i + 1], 7);
            assert_int_equal(dst[3 * i + 2], 99);
        }
    }
    /* 32 x 64, left half 0, right half 255: 16 x 32 after the resize, the centre crop starts at 8,
     * so columns 0..7 are 0 and 8..15 are 255 exactly (area averaging over 2x2 blocks) */
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 64; x++) memset(src + (y * 64 + x) * 3, x < 32 ? 0 : 255, 3);
    assert_int_equal(imagenet_resize_crop(src, 32, 64, S, dst), 0);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) assert_int_equal(dst[(y * S + x) * 3 + 1], x < 8 ? 0 : 255);
    /* a 2x2 box average: rows of 0/100 alternate -> 50 */
    for (int y = 0; y < 32; y++) memset(src + y * 32 * 3, y % 2 ? 100 : 0, 32 * 3);
    assert_int_equal(imagenet_resize_crop(src, 32, 32, S, dst), 0);
    for (int i = 0; i < S * S * 3; i++) assert_int_equal(dst[i], 50);
    /* enlarging a 4x4 horizontal ramp (bilinear, edges clamped) stays monotonic from 0 to 240 */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) memset(src + (y * 4 + x) * 3, x * 80, 3);
    assert_int_equal(imagenet_resize_crop(src, 4, 4, S, dst2), 0);
    for (int x = 1; x < S; x++) assert_true(dst2[x * 3] >= dst2[(x - 1) * 3]);
    assert_int_equal(dst2[0], 0);
    assert_int_equal(dst2[(S - 1) * 3], 240);
    assert_int_equal(imagenet_resize_crop(src, 0, 4, S, dst), ERR_CONFIG);
    assert_int_equal(imagenet_resize_crop(src, 4, 4, 0, dst), ERR_CONFIG);
    assert_int_equal(mem_live_bytes(), live);
}

/* ---- conversions that fail ---- */

static void assert_no_shards(const char *dst) {
    struct stat st;
    if (stat(dst, &st) != 0) return; /* removed: it was created by the failed call */
    char names[1024];
    list_dir(dst, names, sizeof names);
    if (strstr(names, ".h5")) print_error("left behind in %s: %s\n", dst, names);
    assert_null(strstr(names, ".h5"));
}

static void test_convert_bad_source(void **state) {
    Fx *fx = *state;
    char src[PATH_BYTES], dst[PATH_BYTES], path[PATH_BYTES];
    fx_path(fx, src, "src");
    fx_path(fx, dst, "out");
    /* missing src */
    expect_convert_fail(fx, src, dst, S, ERR_IO, src, "No such file");
    assert_no_shards(dst);
    /* src without train/ */
    fx_mkdirs(fx, "src/val");
    fx_path(fx, path, "src/train");
    expect_convert_fail(fx, src, dst, S, ERR_IO, path, "No such file");
    /* empty train/ (a stray file is not a class) */
    fx_mkdirs(fx, "src/train");
    fx_write_text(fx, "src/train/README", "x\n");
    expect_convert_fail(fx, src, dst, S, ERR_IO, path, "no class folders");
    assert_no_shards(dst);
    /* class folders holding nothing decodable */
    fx_mkdirs(fx, "src/train/n01440764");
    fx_write_text(fx, "src/train/n01440764/x.JPEG", "garbage");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "no decodable JPEG");
    assert_no_shards(dst);
    /* bad arguments */
    expect_convert_fail(fx, src, dst, 0, ERR_CONFIG, dst, "image size 0");
    expect_convert_fail(fx, src, dst, IMAGENET_MAX_SIZE + 1, ERR_CONFIG, dst, NULL);
    size_t live = mem_live_bytes();
    assert_int_equal(imagenet_convert(src, dst, S, 0, NULL), ERR_CONFIG);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_convert_bad_val(void **state) {
    Fx *fx = *state;
    char src[PATH_BYTES], dst[PATH_BYTES], path[PATH_BYTES];
    fx_train_tree(fx, "src", NULL, NULL);
    fx_path(fx, src, "src");
    fx_path(fx, dst, "out");
    /* flat val without a label file: after train was written, so that must be removed too */
    fx_mkdirs(fx, "src/val");
    fx_jpeg_rgb(fx, "src/val/v1.JPEG", 20, 20, SOLID(RED));
    fx_jpeg_rgb(fx, "src/val/v2.JPEG", 20, 20, SOLID(RED));
    fx_path(fx, path, "src/val");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "no label file");
    assert_no_shards(dst);
    /* an unknown wnid: file:line */
    fx_write_text(fx, "src/val/val_labels.txt", "v1.JPEG n01440764\nv2.JPEG n99999999\n");
    fx_path(fx, path, "src/val/val_labels.txt:2");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "n99999999");
    /* an index out of range */
    fx_write_text(fx, "src/val/val_labels.txt", "v1.JPEG 0\nv2.JPEG 3\n");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "index 3 out of range");
    /* not the format */
    fx_write_text(fx, "src/val/val_labels.txt", "v1.JPEG 0\nv2.JPEG 1 extra\n");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "FILENAME WNID");
    /* listed twice */
    fx_write_text(fx, "src/val/val_labels.txt", "v1.JPEG 0\nv2.JPEG 1\nv1 2\n");
    fx_path(fx, path, "src/val/val_labels.txt");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "v1 is listed twice (lines 1 and 3)");
    /* an image without an entry */
    fx_write_text(fx, "src/val/val_labels.txt", "v1.JPEG 0\n");
    fx_path(fx, path, "src/val/v2.JPEG");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "no entry");
    /* the CSV takes precedence; a row without a comma */
    fx_write_text(fx, "src/val/LOC_val_solution.csv", "ImageId,PredictionString\nv1 n01440764\n");
    fx_path(fx, path, "src/val/LOC_val_solution.csv:2");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "ImageId,PredictionString");
    /* a val folder that is no class */
    fx_write_text(fx, "src/val/LOC_val_solution.csv", "ImageId,PredictionString\nv1,n01440764\nv2,n01440764\n");
    fx_mkdirs(fx, "src/val/n00000000");
    fx_path(fx, path, "src/val/n00000000");
    expect_convert_fail(fx, src, dst, S, ERR_FORMAT, path, "not a class");
    assert_no_shards(dst);
    tu_rmtree(path);
    /* now it works; a second conversion into the same dst refuses to mix */
    assert_int_equal(imagenet_convert(src, dst, S, SHARD, NULL), 0);
    expect_convert_fail(fx, src, dst, S, ERR_IO, dst, "already holds shards");
    Dataset d = {0};
    assert_int_equal(dataset_load_imagenet(&d, dst, "val"), 0); /* still intact */
    assert_int_equal(d.n, 2);
    dataset_deinit(&d);
}

/* ---- shards that fail to load ---- */

/* A shard written directly with HDF5, classes as variable-length strings (as h5py writes them). */
static void write_shard(const char *path, int n, int side, const char *const *classes, int n_classes,
                        const int32_t *labels) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t dims[4] = {(hsize_t)n, (hsize_t)side, (hsize_t)side, 3}, ld[1] = {(hsize_t)n}, cd[1] = {(hsize_t)n_classes};
    uint8_t *px = test_calloc((size_t)n * (size_t)side * (size_t)side * 3, 1);
    assert_true(H5LTmake_dataset(f, "images", 4, dims, H5T_NATIVE_UINT8, px) >= 0);
    assert_true(H5LTmake_dataset(f, "labels", 1, ld, H5T_NATIVE_INT32, labels) >= 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate_simple(1, cd, NULL);
    hid_t ds = H5Dcreate2(f, "classes", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, classes) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    test_free(px);
}

static void test_load_errors(void **state) {
    Fx *fx = *state;
    char src[PATH_BYTES], dst[PATH_BYTES], small[PATH_BYTES], path[PATH_BYTES], from[PATH_BYTES];
    fx_train_tree(fx, "src", NULL, NULL);
    fx_path(fx, src, "src");
    fx_path(fx, dst, "out");
    fx_path(fx, small, "small");
    /* missing directory; directory without shards; unknown split */
    expect_load_fail(fx, dst, "train", ERR_IO, dst, "No such file");
    fx_mkdirs(fx, "out");
    fx_write_text(fx, "out/train-00000.h5.part", "an unfinished shard is not a shard");
    expect_load_fail(fx, dst, "train", ERR_IO, dst, "no train shards");
    expect_load_fail(fx, dst, "valid", ERR_CONFIG, dst, "valid");
    tu_rmtree(dst);
    assert_int_equal(imagenet_convert(src, dst, S, SHARD, NULL), 0); /* 3 train shards */
    assert_int_equal(imagenet_convert(src, small, 8, SHARD, NULL), 0);

    /* a shard of another size appended */
    pathf(from, "%s/train-00000.h5", small);
    pathf(path, "%s/train-00003.h5", dst);
    copy_file(from, path);
    expect_load_fail(fx, dst, "train", ERR_FORMAT, path, "8x8");
    /* a shard with other classes (and variable-length class strings) */
    const char *const other[3] = {"n01440764", "n01443537", "n09999999"};
    const int32_t lab[2] = {0, 1};
    write_shard(path, 2, S, other, 3, lab);
    expect_load_fail(fx, dst, "train", ERR_FORMAT, path, "n09999999");
    /* the same classes written as h5py would: loads */
    write_shard(path, 2, S, WNIDS, 3, lab);
    Dataset d = {0};
    size_t live = mem_live_bytes();
    assert_int_equal(dataset_load_imagenet(&d, dst, "train"), 0);
    assert_int_equal(d.n, TRAIN_N + 2);
    assert_int_equal(d.labels[TRAIN_N + 1], 1);
    assert_string_equal(d.class_names[2], WNIDS[2]);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
    /* a label out of range */
    const int32_t bad[2] = {1, 3};
    write_shard(path, 2, S, WNIDS, 3, bad);
    expect_load_fail(fx, dst, "train", ERR_FORMAT, path, "image 1 has label 3");
    /* a gap in the numbering */
    remove(path);
    pathf(path, "%s/train-00001.h5", dst);
    pathf(from, "%s/train-00001.h5.moved", dst);
    assert_int_equal(rename(path, from), 0);
    expect_load_fail(fx, dst, "train", ERR_FORMAT, "train-00001.h5 is missing", NULL);
    /* not HDF5 at all */
    tu_write_file(path, "garbage", 7);
    expect_load_fail(fx, dst, "train", ERR_FORMAT, path, NULL);
    /* HDF5 without /labels */
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {1, S, S, 3};
    uint8_t px[S * S * 3] = {0};
    assert_true(H5LTmake_dataset(f, "images", 4, dims, H5T_NATIVE_UINT8, px) >= 0);
    H5Fclose(f);
    expect_load_fail(fx, dst, "train", ERR_FORMAT, path, "no /labels");
    /* restored: loads again */
    assert_int_equal(rename(from, path), 0);
    assert_int_equal(dataset_load_imagenet(&d, dst, "train"), 0);
    assert_int_equal(d.n, TRAIN_N);
    dataset_deinit(&d);
    assert_int_equal(mem_live_bytes(), live);
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported through our own messages */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_crop),
        cmocka_unit_test_setup_teardown(test_convert_folders, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_convert_flat_csv, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_convert_flat_txt, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_convert_train_only, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_convert_bad_source, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_convert_bad_val, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
