/* test_h5rec.c: the HDF5 run record (results/h5rec.h) and its export (results/export.h).
 * Every test works in a fresh mkdtemp directory, removed afterwards, and checks in teardown that
 * nothing allocated through core/mem.h leaked. Error cases capture stderr and check that the
 * message names the file. Datasets the reader API does not cover (N-D arrays, integer array
 * attributes) are read back with plain HDF5 calls, as any other tool would. */
#include "tests/testutil.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "results/export.h"
#include "results/h5rec.h"

#define PATH_BYTES 1024
#define TEXT_BYTES 8192
#define H5DUMP "/usr/bin/h5dump"

typedef struct {
    char dir[64];
    char final[PATH_BYTES]; /* dir/run.h5 */
    char part[PATH_BYTES];  /* dir/run.h5.part */
    TuCapture cap;          /* stderr captured between tu_capture_begin and tu_capture_end_echo */
    size_t live_bytes;      /* mem_live_bytes at setup */
} Fx;

/* ---- fixture ---- */

static int fx_setup(void **state) {
    Fx *fx = test_calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_h5rec") != 0) {
        test_free(fx);
        return -1;
    }
    snprintf(fx->final, sizeof fx->final, "%s/run.h5", fx->dir);
    snprintf(fx->part, sizeof fx->part, "%s/run.h5.part", fx->dir);
    fx->live_bytes = mem_live_bytes();
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    Fx *fx = *state;
    int rc = 0;
    tu_capture_abort(&fx->cap); /* a test failed while stderr was captured */
    if (mem_live_bytes() != fx->live_bytes) {
        print_error("leak: %zu bytes live after the test, %zu before\n", mem_live_bytes(), fx->live_bytes);
        rc = -1;
    }
    if (tu_rmtree(fx->dir) != 0) rc = -1;
    test_free(fx);
    return rc;
}

static void fx_path(const Fx *fx, char *out, const char *name) {
    snprintf(out, PATH_BYTES, "%s/%s", fx->dir, name);
}

/* ---- small file helpers ---- */

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void read_text(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) {
        print_error("cannot open %s\n", path);
        fail();
    }
    size_t len = fread(buf, 1, cap - 1, f);
    buf[len] = '\0';
    fclose(f);
}

/* ---- the reference record ---- */

#define EPOCH_ROWS 3
#define EPOCH_COLS 4
static const char *const epoch_cols[EPOCH_COLS] = {"epoch", "train_loss", "test_acc", "lr"}; /* not sorted */
static const char *const epoch_units[EPOCH_COLS] = {"1", "nats", "frac", "1"};
static const double epoch_rows[EPOCH_ROWS][EPOCH_COLS] = {
    {0, 2.302585092994046, 0.1, 0.1},
    {1, 1.0 / 3.0, 0.8765432109876543, 1e-300},
    {2, -2.5e10, 12345678901234567.0, 0.05},
};

#define STEP_ROWS 4
static const char *const step_cols[] = {"step", "loss", "step_ms"};
static const char *const step_units[] = {"1", "nats", "ms"};

#define DENS_ROWS 2
static const char *const dens_cols[] = {"step", "density_frac"};
static const char *const dens_units[] = {"1", "frac"};

static const char config_text[] = "[run]\nmodel = lenet5\nepochs = 3\nlr = 0.1\n";

static double step_value(int r, int c) { return c == 0 ? r * 100.0 : (c == 1 ? 2.0 / (r + 1) : 3.25 + r); }
static double dens_value(int r, int c) { return c == 0 ? r * 100.0 : 0.1 * (r + 1); }

/* Writes every kind of content to r; does not finish it. */
static void fill_record(H5Rec *r) {
    static const int64_t shape[3] = {6, 28, 28};
    static const double meta[3] = {1.5, 2.5, 3.5};
    static const uint64_t meta_dims[1] = {3};
    assert_int_equal(h5rec_attr_str(r, "/", "model", "lenet5"), 0);
    assert_int_equal(h5rec_attr_str(r, "/", "model", "resnet18-with-a-longer-name"), 0); /* replaced */
    assert_int_equal(h5rec_attr_str(r, "/", "config", config_text), 0);
    assert_int_equal(h5rec_attr_i64(r, "/", "seed", 42), 0);
    assert_int_equal(h5rec_attr_f64(r, "/", "lr0", 0.1), 0);
    assert_int_equal(h5rec_attr_str(r, "/layers/003_conv1", "kind", "conv"), 0);
    assert_int_equal(h5rec_attr_i64_array(r, "/layers/003_conv1", "output_shape", shape, 3), 0);
    assert_int_equal(h5rec_attr_i64(r, "/layers/003_conv1", "macs_per_sample", 117600), 0);

    assert_int_equal(h5rec_series(r, "/epoch", EPOCH_COLS, epoch_cols, epoch_units), 0);
    for (int i = 0; i < EPOCH_ROWS; i++) assert_int_equal(h5rec_append(r, "/epoch", epoch_rows[i]), 0);
    assert_int_equal(h5rec_series(r, "/step", 3, step_cols, step_units), 0);
    for (int i = 0; i < STEP_ROWS; i++) {
        double row[3] = {step_value(i, 0), step_value(i, 1), step_value(i, 2)};
        assert_int_equal(h5rec_append(r, "/step", row), 0);
    }
    assert_int_equal(h5rec_series(r, "/layers/003_conv1/density", 2, dens_cols, dens_units), 0);
    for (int i = 0; i < DENS_ROWS; i++) {
        double row[2] = {dens_value(i, 0), dens_value(i, 1)};
        assert_int_equal(h5rec_append(r, "/layers/003_conv1/density", row), 0);
    }
    /* Not a series: a dataset without a unit in a plain group. */
    assert_int_equal(h5rec_write_f64(r, "/meta/vec", 1, meta_dims, meta), 0);
}

static void make_record(Fx *fx) {
    H5Rec *r = NULL;
    assert_int_equal(h5rec_create(&r, fx->final), 0);
    fill_record(r);
    assert_int_equal(h5rec_finish(r), 0);
}

static void assert_str_attr(H5Reader *rd, const char *obj, const char *name, const char *want) {
    char buf[512];
    assert_int_equal(h5reader_attr_str(rd, obj, name, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
}

static void assert_iso_utc(H5Reader *rd, const char *name, char *out) {
    assert_int_equal(h5reader_attr_str(rd, "/", name, out, 32), 0);
    assert_int_equal(strlen(out), 20); /* 2024-05-01T12:34:56Z */
    assert_true(out[4] == '-' && out[7] == '-' && out[10] == 'T' && out[13] == ':' && out[19] == 'Z');
}

/* Column col of group equals want[0..n) exactly. */
static void assert_column(H5Reader *rd, const char *group, const char *col, const double *want, long n,
                          int stride) {
    double *data = NULL;
    long got = -1;
    assert_int_equal(h5reader_column(rd, group, col, &data, &got), 0);
    assert_int_equal(got, n);
    for (long i = 0; i < n; i++)
        if (data[i] != want[i * stride]) {
            print_error("%s/%s[%ld] = %.17g, want %.17g\n", group, col, i, data[i], want[i * stride]);
            mem_free(data);
            fail();
        }
    mem_free(data);
}

static void assert_epoch_series(H5Reader *rd, long rows) {
    char **cols = NULL;
    int n = 0;
    assert_int_equal(h5reader_series_cols(rd, "/epoch", &cols, &n), 0);
    assert_int_equal(n, EPOCH_COLS);
    for (int c = 0; c < EPOCH_COLS; c++) assert_string_equal(cols[c], epoch_cols[c]); /* declared order */
    h5reader_free_names(cols, n);
    for (int c = 0; c < EPOCH_COLS; c++) {
        char path[64];
        snprintf(path, sizeof path, "/epoch/%s", epoch_cols[c]);
        assert_str_attr(rd, path, "unit", epoch_units[c]);
        assert_column(rd, "/epoch", epoch_cols[c], &epoch_rows[0][c], rows, EPOCH_COLS);
    }
}

/* ---- tests ---- */

static void test_roundtrip(void **state) {
    Fx *fx = *state;
    H5Rec *r = NULL;
    long rows = -1;
    assert_int_equal(h5rec_create(&r, fx->final), 0);
    assert_true(file_exists(fx->part));
    assert_false(file_exists(fx->final));
    fill_record(r);
    assert_int_equal(h5rec_rows(r, "/epoch", &rows), 0);
    assert_int_equal(rows, EPOCH_ROWS);
    assert_int_equal(h5rec_rows(r, "/no/such/series", &rows), 0);
    assert_int_equal(rows, 0);
    assert_int_equal(h5rec_flush(r), 0);
    assert_false(file_exists(fx->final));
    assert_int_equal(h5rec_finish(r), 0);
    assert_true(file_exists(fx->final));
    assert_false(file_exists(fx->part));

    H5Reader *rd = NULL;
    double v = 0;
    char start[32], end[32];
    assert_int_equal(h5reader_open(&rd, fx->final), 0);
    assert_int_equal(h5reader_attr_f64(rd, "/", "schema_version", &v), 0);
    assert_true(v == H5REC_SCHEMA_VERSION);
    assert_str_attr(rd, "/", "status", "complete");
    assert_iso_utc(rd, "start_time", start);
    assert_iso_utc(rd, "end_time", end);
    assert_true(strcmp(start, end) <= 0);
    assert_str_attr(rd, "/", "model", "resnet18-with-a-longer-name");
    assert_str_attr(rd, "/", "config", config_text);
    assert_int_equal(h5reader_attr_f64(rd, "/", "seed", &v), 0);
    assert_true(v == 42);
    assert_int_equal(h5reader_attr_f64(rd, "/", "lr0", &v), 0);
    assert_true(v == 0.1);
    assert_str_attr(rd, "/layers/003_conv1", "kind", "conv");
    assert_int_equal(h5reader_attr_f64(rd, "/layers/003_conv1", "macs_per_sample", &v), 0);
    assert_true(v == 117600);
    assert_epoch_series(rd, EPOCH_ROWS);

    char **names = NULL;
    int n = 0;
    assert_int_equal(h5reader_list_series(rd, "/", &names, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "epoch");
    assert_string_equal(names[1], "step");
    h5reader_free_names(names, n);
    assert_int_equal(h5reader_list_groups(rd, "/", &names, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "epoch");
    assert_string_equal(names[1], "layers");
    assert_string_equal(names[2], "meta");
    assert_string_equal(names[3], "step");
    h5reader_free_names(names, n);
    assert_int_equal(h5reader_list_series(rd, "/layers/003_conv1", &names, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "density");
    h5reader_free_names(names, n);

    /* A too-small buffer is an error, not a truncated string. */
    char tiny[4];
    tu_capture_begin(&fx->cap);
    int rc = h5reader_attr_str(rd, "/", "model", tiny, sizeof tiny);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_FORMAT);
    assert_log_has(fx->cap.text, "model");
    h5reader_close(rd);

    /* The integer array attribute, read as any HDF5 tool would. */
    int64_t shape[3] = {0};
    hid_t f = H5Fopen(fx->final, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen_by_name(f, "/layers/003_conv1", "output_shape", H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t sp = H5Aget_space(a);
    assert_int_equal(H5Sget_simple_extent_npoints(sp), 3);
    assert_true(H5Aread(a, H5T_NATIVE_INT64, shape) >= 0);
    H5Sclose(sp);
    H5Aclose(a);
    /* schema_version is an integer attribute, not a float. */
    a = H5Aopen_by_name(f, "/", "schema_version", H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_INTEGER);
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
    assert_true(shape[0] == 6 && shape[1] == 28 && shape[2] == 28);
}

static void test_create_refuses_final(void **state) {
    Fx *fx = *state;
    static const char precious[] = "a finished run";
    tu_write_file(fx->final, precious, sizeof precious);
    H5Rec *r = (H5Rec *)1;
    tu_capture_begin(&fx->cap);
    int rc = h5rec_create(&r, fx->final);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_IO);
    assert_null(r);
    assert_log_has(fx->cap.text, fx->final);
    assert_log_has(fx->cap.text, "complete record");
    assert_log_has(fx->cap.text, "move it away");
    assert_false(file_exists(fx->part));
    char buf[64];
    read_text(fx->final, buf, sizeof buf);
    assert_string_equal(buf, precious);

    /* Resuming into a name whose run is complete is refused too. */
    tu_write_file(fx->part, "x", 1);
    tu_capture_begin(&fx->cap);
    rc = h5rec_reopen(&r, fx->final);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_IO);
    assert_null(r);
    assert_log_has(fx->cap.text, "complete record");
}

static void test_create_bad_dir(void **state) {
    Fx *fx = *state;
    char path[PATH_BYTES];
    fx_path(fx, path, "no/such/dir/run.h5");
    H5Rec *r = NULL;
    tu_capture_begin(&fx->cap);
    int rc = h5rec_create(&r, path);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_IO);
    assert_null(r);
    assert_log_has(fx->cap.text, "no/such/dir/run.h5.part");
    assert_log_has(fx->cap.text, "H5Fcreate");
}

static void test_fail_keeps_part(void **state) {
    Fx *fx = *state;
    H5Rec *r = NULL;
    assert_int_equal(h5rec_create(&r, fx->final), 0);
    assert_int_equal(h5rec_series(r, "/epoch", EPOCH_COLS, epoch_cols, epoch_units), 0);
    assert_int_equal(h5rec_append(r, "/epoch", epoch_rows[0]), 0);
    h5rec_fail(r, "loss is NaN at step 7");
    assert_false(file_exists(fx->final));
    assert_true(file_exists(fx->part));

    H5Reader *rd = NULL;
    char end[32];
    assert_int_equal(h5reader_open(&rd, fx->part), 0);
    assert_str_attr(rd, "/", "status", "failed");
    assert_str_attr(rd, "/", "status_message", "loss is NaN at step 7");
    assert_iso_utc(rd, "end_time", end);
    assert_epoch_series(rd, 1);
    h5reader_close(rd);

    h5rec_fail(NULL, "nothing"); /* accepts NULL */
    h5rec_close(NULL);

    /* Resuming a failed run: running again, the old message and end time gone. */
    assert_int_equal(h5rec_reopen(&r, fx->final), 0);
    h5rec_close(r);
    char buf[64];
    assert_int_equal(h5reader_open(&rd, fx->part), 0);
    assert_str_attr(rd, "/", "status", "running");
    tu_capture_begin(&fx->cap);
    int rc = h5reader_attr_str(rd, "/", "status_message", buf, sizeof buf);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_FORMAT);
    assert_log_has(fx->cap.text, "status_message");
    assert_log_has(fx->cap.text, fx->part);
    h5reader_close(rd);
}

static void test_resume(void **state) {
    Fx *fx = *state;
    H5Rec *r = NULL;
    long rows = -1;
    assert_int_equal(h5rec_create(&r, fx->final), 0);
    assert_int_equal(h5rec_attr_str(r, "/", "model", "lenet5"), 0);
    assert_int_equal(h5rec_series(r, "/epoch", EPOCH_COLS, epoch_cols, epoch_units), 0);
    assert_int_equal(h5rec_append(r, "/epoch", epoch_rows[0]), 0);
    assert_int_equal(h5rec_append(r, "/epoch", epoch_rows[1]), 0);
    assert_int_equal(h5rec_flush(r), 0);
    h5rec_close(r); /* interrupted */
    assert_true(file_exists(fx->part));
    assert_false(file_exists(fx->final));

    H5Reader *rd = NULL;
    assert_int_equal(h5reader_open(&rd, fx->part), 0);
    assert_str_attr(rd, "/", "status", "running");
    h5reader_close(rd);

    r = NULL;
    assert_int_equal(h5rec_reopen(&r, fx->final), 0);
    assert_int_equal(h5rec_series(r, "/epoch", EPOCH_COLS, epoch_cols, epoch_units), 0); /* kept */
    assert_int_equal(h5rec_rows(r, "/epoch", &rows), 0);
    assert_int_equal(rows, 2);

    /* Declaring the series differently is refused and names the column. */
    static const char *const other_units[EPOCH_COLS] = {"1", "bits", "frac", "1"};
    tu_capture_begin(&fx->cap);
    int rc1 = h5rec_series(r, "/epoch", EPOCH_COLS, epoch_cols, other_units);
    int rc2 = h5rec_series(r, "/epoch", 2, epoch_cols, epoch_units);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc1, ERR_FORMAT);
    assert_int_equal(rc2, ERR_FORMAT);
    assert_log_has(fx->cap.text, "train_loss");
    assert_log_has(fx->cap.text, "bits");
    assert_log_has(fx->cap.text, "4 columns, declared with 2");

    assert_int_equal(h5rec_append(r, "/epoch", epoch_rows[2]), 0);
    assert_int_equal(h5rec_finish(r), 0);
    assert_false(file_exists(fx->part));

    assert_int_equal(h5reader_open(&rd, fx->final), 0);
    assert_str_attr(rd, "/", "status", "complete");
    assert_str_attr(rd, "/", "model", "lenet5");
    assert_epoch_series(rd, EPOCH_ROWS);
    h5reader_close(rd);

    /* Nothing to resume. */
    char other[PATH_BYTES];
    fx_path(fx, other, "other.h5");
    r = (H5Rec *)1;
    tu_capture_begin(&fx->cap);
    int rc = h5rec_reopen(&r, other);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_IO);
    assert_null(r);
    assert_log_has(fx->cap.text, "other.h5.part");
}

static void test_truncate(void **state) {
    Fx *fx = *state;
    H5Rec *r = NULL;
    long rows = -1;
    assert_int_equal(h5rec_create(&r, fx->final), 0);
    assert_int_equal(h5rec_series(r, "/step", 3, step_cols, step_units), 0);
    for (int i = 0; i < 5; i++) {
        double row[3] = {step_value(i, 0), step_value(i, 1), step_value(i, 2)};
        assert_int_equal(h5rec_append(r, "/step", row), 0);
    }
    assert_int_equal(h5rec_truncate(r, "/step", 3), 0);
    assert_int_equal(h5rec_rows(r, "/step", &rows), 0);
    assert_int_equal(rows, 3);
    double extra[3] = {99, 9.5, -1};
    assert_int_equal(h5rec_append(r, "/step", extra), 0);
    assert_int_equal(h5rec_rows(r, "/step", &rows), 0);
    assert_int_equal(rows, 4);

    tu_capture_begin(&fx->cap);
    int rc_big = h5rec_truncate(r, "/step", 10);
    int rc_neg = h5rec_truncate(r, "/step", -1);
    int rc_missing = h5rec_truncate(r, "/nope", 0);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc_big, ERR_CONFIG);
    assert_int_equal(rc_neg, ERR_CONFIG);
    assert_int_equal(rc_missing, ERR_FORMAT);
    assert_log_has(fx->cap.text, "to 10 rows: it has 4");
    assert_log_has(fx->cap.text, "/nope");
    assert_int_equal(h5rec_finish(r), 0);

    H5Reader *rd = NULL;
    assert_int_equal(h5reader_open(&rd, fx->final), 0);
    double want[3][4];
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < 3; i++) want[c][i] = step_value(i, c);
        want[c][3] = extra[c];
        assert_column(rd, "/step", step_cols[c], want[c], 4, 1);
    }
    h5reader_close(rd);
}

static void test_write_nd(void **state) {
    Fx *fx = *state;
    H5Rec *r = NULL;
    float w[2 * 3 * 4], w2[2 * 3 * 4];
    double d[5] = {0.1, -0.2, 1e300, 0, 5};
    int64_t k[4] = {INT64_MIN, -1, 0, INT64_MAX};
    for (int i = 0; i < 24; i++) {
        w[i] = 0.25f * (float)i - 1.0f;
        w2[i] = 1.0f / (float)(i + 1);
    }
    const uint64_t wdims[3] = {2, 3, 4}, ddims[1] = {5}, kdims[2] = {2, 2}, bad[1] = {1};
    assert_int_equal(h5rec_create(&r, fx->final), 0);
    assert_int_equal(h5rec_write_f32(r, "/weights/conv1/w", 3, wdims, w), 0);
    assert_int_equal(h5rec_write_f32(r, "/weights/conv1/w", 3, wdims, w2), 0); /* in place */
    assert_int_equal(h5rec_write_f32(r, "/x", 3, wdims, w), 0);
    assert_int_equal(h5rec_write_f64(r, "/x", 1, ddims, d), 0); /* replaced: other shape and type */
    assert_int_equal(h5rec_write_i64(r, "/k", 2, kdims, k), 0);

    tu_capture_begin(&fx->cap);
    int rc_dims = h5rec_write_f32(r, "/bad", 0, bad, w);
    static const char *const bad_cols[] = {"a/b"};
    static const char *const dup_cols[] = {"a", "a"};
    static const char *const units2[] = {"1", "1"};
    int rc_name = h5rec_series(r, "/s", 1, bad_cols, units2);
    int rc_dup = h5rec_series(r, "/s", 2, dup_cols, units2);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc_dims, ERR_CONFIG);
    assert_int_equal(rc_name, ERR_CONFIG);
    assert_int_equal(rc_dup, ERR_CONFIG);
    assert_log_has(fx->cap.text, "\"a/b\"");
    assert_log_has(fx->cap.text, "declared twice");
    assert_int_equal(h5rec_finish(r), 0);

    hid_t f = H5Fopen(fx->final, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t ds = H5Dopen2(f, "/weights/conv1/w", H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t sp = H5Dget_space(ds);
    hsize_t got[3] = {0};
    assert_int_equal(H5Sget_simple_extent_ndims(sp), 3);
    H5Sget_simple_extent_dims(sp, got, NULL);
    assert_true(got[0] == 2 && got[1] == 3 && got[2] == 4);
    hid_t ty = H5Dget_type(ds);
    assert_int_equal(H5Tget_class(ty), H5T_FLOAT);
    assert_int_equal(H5Tget_size(ty), 4);
    float back[24];
    assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    assert_memory_equal(back, w2, sizeof back);
    H5Tclose(ty);
    H5Sclose(sp);
    H5Dclose(ds);

    double dback[5];
    ds = H5Dopen2(f, "/x", H5P_DEFAULT);
    sp = H5Dget_space(ds);
    assert_int_equal(H5Sget_simple_extent_npoints(sp), 5);
    assert_true(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dback) >= 0);
    assert_memory_equal(dback, d, sizeof d);
    H5Sclose(sp);
    H5Dclose(ds);

    int64_t kback[4];
    ds = H5Dopen2(f, "/k", H5P_DEFAULT);
    assert_true(H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, kback) >= 0);
    assert_memory_equal(kback, k, sizeof k);
    H5Dclose(ds);
    H5Fclose(f);
}

/* Splits one line into at most max tokens (modifies it). */
static int split(char *line, const char *sep, char **tok, int max) {
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, sep, &save); t && n < max; t = strtok_r(NULL, sep, &save))
        tok[n++] = t;
    return n;
}

/* Checks OUT/base.dat and OUT/base.csv against the expected table (value(r, c)). */
static void check_export(const char *out, const char *base, int n_cols, const char *const *cols,
                         const char *const *units, int n_rows, double (*value)(int, int)) {
    char path[PATH_BYTES], text[TEXT_BYTES], want[256];
    char *lines[64], *tok[16];
    for (int csv = 0; csv < 2; csv++) {
        snprintf(path, sizeof path, "%s/%s.%s", out, base, csv ? "csv" : "dat");
        read_text(path, text, sizeof text);
        int n_lines = split(text, "\n", lines, 64);
        int header = csv ? 1 : 2;
        assert_int_equal(n_lines, header + n_rows);
        want[0] = '\0';
        for (int c = 0; c < n_cols; c++) {
            strcat(want, csv ? (c ? "," : "") : (c ? " " : "# "));
            strcat(want, cols[c]);
        }
        assert_string_equal(lines[0], want);
        if (!csv) {
            strcpy(want, "#");
            for (int c = 0; c < n_cols; c++) {
                strcat(want, " [");
                strcat(want, units[c]);
                strcat(want, "]");
            }
            assert_string_equal(lines[1], want);
        }
        for (int r = 0; r < n_rows; r++) {
            int n = split(lines[header + r], csv ? "," : " ", tok, 16);
            assert_int_equal(n, n_cols);
            for (int c = 0; c < n_cols; c++) {
                char *end = NULL;
                double v = strtod(tok[c], &end);
                assert_true(end && *end == '\0');
                if (v != value(r, c)) {
                    print_error("%s row %d col %d: %s, want %.17g\n", path, r, c, tok[c], value(r, c));
                    fail();
                }
            }
        }
    }
}

static double epoch_value(int r, int c) { return epoch_rows[r][c]; }

static void test_export(void **state) {
    Fx *fx = *state;
    char out[PATH_BYTES], path[PATH_BYTES];
    make_record(fx);
    fx_path(fx, out, "exported/nested"); /* created with its parent */
    assert_int_equal(export_run(fx->final, out), 0);
    check_export(out, "epoch", EPOCH_COLS, epoch_cols, epoch_units, EPOCH_ROWS, epoch_value);
    check_export(out, "step", 3, step_cols, step_units, STEP_ROWS, step_value);
    check_export(out, "layers_003_conv1_density", 2, dens_cols, dens_units, DENS_ROWS, dens_value);

    /* Exactly those six files: no temporaries, nothing for the non-series /meta. */
    DIR *d = opendir(out);
    assert_non_null(d);
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        n_files++;
        assert_null(strstr(e->d_name, ".tmp"));
        assert_null(strstr(e->d_name, "meta"));
    }
    closedir(d);
    assert_int_equal(n_files, 6);

    /* Exporting again overwrites in place. */
    assert_int_equal(export_run(fx->final, out), 0);
    check_export(out, "epoch", EPOCH_COLS, epoch_cols, epoch_units, EPOCH_ROWS, epoch_value);

    /* Errors name the file. */
    fx_path(fx, path, "missing.h5");
    tu_capture_begin(&fx->cap);
    int rc_missing = export_run(path, out);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc_missing, ERR_IO);
    assert_log_has(fx->cap.text, path);
    tu_capture_begin(&fx->cap);
    int rc_dir = export_run(fx->final, fx->final); /* out_dir is a file */
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc_dir, ERR_IO);
    assert_log_has(fx->cap.text, "not a directory");
}

static void test_h5dump(void **state) {
    Fx *fx = *state;
    if (access(H5DUMP, X_OK) != 0) {
        skip();
    }
    char out[PATH_BYTES], cmd[3 * PATH_BYTES], text[TEXT_BYTES];
    make_record(fx);
    fx_path(fx, out, "h5dump.txt");
    snprintf(cmd, sizeof cmd, H5DUMP " -H '%s' > '%s' 2>&1", fx->final, out);
    assert_int_equal(system(cmd), 0);
    read_text(out, text, sizeof text);
    assert_non_null(strstr(text, "schema_version"));
    assert_non_null(strstr(text, "GROUP \"epoch\""));
    assert_non_null(strstr(text, "density_frac"));
    /* String attributes print as text. */
    snprintf(cmd, sizeof cmd, H5DUMP " -a /status '%s' > '%s' 2>&1", fx->final, out);
    assert_int_equal(system(cmd), 0);
    read_text(out, text, sizeof text);
    assert_non_null(strstr(text, "\"complete\""));
}

static void test_missing_file(void **state) {
    Fx *fx = *state;
    char path[PATH_BYTES];
    fx_path(fx, path, "nope.h5");
    H5Reader *rd = (H5Reader *)1;
    tu_capture_begin(&fx->cap);
    int rc = h5reader_open(&rd, path);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_IO);
    assert_null(rd);
    assert_log_has(fx->cap.text, path);
    assert_log_has(fx->cap.text, "No such file");

    /* Missing objects inside a good record are errors naming the record and the object. */
    make_record(fx);
    assert_int_equal(h5reader_open(&rd, fx->final), 0);
    double *data = (double *)1, v;
    long n = -1;
    char **cols = (char **)1;
    int n_cols = -1;
    tu_capture_begin(&fx->cap);
    int rc_col = h5reader_column(rd, "/epoch", "nope", &data, &n);
    int rc_series = h5reader_series_cols(rd, "/nowhere", &cols, &n_cols);
    int rc_notseries = h5reader_series_cols(rd, "/layers", &cols, &n_cols);
    int rc_attr = h5reader_attr_f64(rd, "/", "status", &v); /* a string */
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc_col, ERR_FORMAT);
    assert_null(data);
    assert_int_equal(rc_series, ERR_FORMAT);
    assert_int_equal(rc_notseries, ERR_FORMAT);
    assert_null(cols);
    assert_int_equal(rc_attr, ERR_FORMAT);
    assert_log_has(fx->cap.text, "/epoch/nope");
    assert_log_has(fx->cap.text, "/nowhere");
    assert_log_has(fx->cap.text, "not a single number");
    assert_log_has(fx->cap.text, fx->final);

    /* h5reader_has answers about optional objects and attributes without an error. */
    bool yes = false;
    tu_capture_begin(&fx->cap);
    assert_int_equal(h5reader_has(rd, "/", "status", &yes), 0);
    assert_true(yes);
    assert_int_equal(h5reader_has(rd, "/", "kind", &yes), 0);
    assert_false(yes);
    assert_int_equal(h5reader_has(rd, "/epoch", NULL, &yes), 0);
    assert_true(yes);
    assert_int_equal(h5reader_has(rd, "/nowhere/deeper", "unit", &yes), 0);
    assert_false(yes);
    tu_capture_end_echo(&fx->cap);
    assert_string_equal(fx->cap.text, "");
    h5reader_close(rd);
}

static void test_corrupt_file(void **state) {
    Fx *fx = *state;
    char path[PATH_BYTES];
    unsigned char junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1664525u + 1013904223u;
        junk[i] = (unsigned char)(x >> 24);
    }
    H5Reader *rd = NULL;

    /* Garbage: no HDF5 signature. */
    fx_path(fx, path, "garbage.h5");
    tu_write_file(path, junk, sizeof junk);
    tu_capture_begin(&fx->cap);
    int rc = h5reader_open(&rd, path);
    tu_capture_end_echo(&fx->cap);
    assert_true(rc == ERR_FORMAT || rc == ERR_HDF5);
    assert_null(rd);
    assert_log_has(fx->cap.text, path);

    /* The signature, then garbage: HDF5 itself fails, and the log names the call and the file. */
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    memcpy(junk, sig, sizeof sig);
    fx_path(fx, path, "badsuper.h5");
    tu_write_file(path, junk, sizeof junk);
    tu_capture_begin(&fx->cap);
    rc = h5reader_open(&rd, path);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_HDF5);
    assert_null(rd);
    assert_log_has(fx->cap.text, path);
    assert_log_has(fx->cap.text, "H5Fopen");
    assert_int_equal(export_run(path, fx->dir) < 0, 1);

    /* A real record cut in half: an error at open or at the first read, never a crash. */
    make_record(fx);
    struct stat st;
    assert_int_equal(stat(fx->final, &st), 0);
    assert_int_equal(truncate(fx->final, st.st_size / 2), 0);
    tu_capture_begin(&fx->cap);
    rc = h5reader_open(&rd, fx->final);
    if (rc == 0) {
        char **cols = NULL;
        int n = 0;
        rc = h5reader_series_cols(rd, "/epoch", &cols, &n);
        if (rc == 0) {
            double *data = NULL;
            long rows = 0;
            rc = h5reader_column(rd, "/epoch", cols[0], &data, &rows);
            mem_free(data);
        }
        h5reader_free_names(cols, n);
        h5reader_close(rd);
    }
    tu_capture_end_echo(&fx->cap);
    assert_true(rc < 0);
    assert_log_has(fx->cap.text, fx->final);

    /* A corrupt .part cannot be resumed. */
    tu_write_file(fx->part, junk, sizeof junk);
    remove(fx->final);
    H5Rec *r = NULL;
    tu_capture_begin(&fx->cap);
    rc = h5rec_reopen(&r, fx->final);
    tu_capture_end_echo(&fx->cap);
    assert_int_equal(rc, ERR_HDF5);
    assert_null(r);
    assert_log_has(fx->cap.text, fx->part);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_final, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_bad_dir, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fail_keeps_part, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_resume, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_nd, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_export, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_h5dump, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
