/* export.c: a record's series to .dat (gnuplot) and .csv files. Reads through results/h5rec.h only. */
#include "results/export.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "results/h5rec.h"

#define EXPORT_PATH_BYTES 4096
#define EXPORT_UNIT_BYTES 64
#define EXPORT_NUM_BYTES 32
#define EXPORT_MAX_DEPTH 32 /* nested groups; guards against hard-link cycles */

/* One series, loaded whole. */
typedef struct {
    char **cols;  /* (n_cols) names */
    char **units; /* (n_cols) unit strings */
    double **data; /* (n_cols) columns of >= rows values each */
    int n_cols;
    long rows; /* the shortest column */
} ExportTable;

static void export_table_deinit(ExportTable *t) {
    if (t->data)
        for (int i = 0; i < t->n_cols; i++) mem_free(t->data[i]);
    mem_free(t->data);
    h5reader_free_names(t->units, t->units ? t->n_cols : 0);
    h5reader_free_names(t->cols, t->n_cols);
    *t = (ExportTable){0};
}

static int export_table_load(ExportTable *t, H5Reader *rd, const char *record, const char *group) {
    int rc = 0;
    char path[EXPORT_PATH_BYTES], unit[EXPORT_UNIT_BYTES];
    *t = (ExportTable){0};
    TRY(h5reader_series_cols(rd, group, &t->cols, &t->n_cols));
    t->units = mem_calloc((size_t)t->n_cols, sizeof *t->units);
    t->data = mem_calloc((size_t)t->n_cols, sizeof *t->data);
    if (!t->units || !t->data) FAIL(ERR_NOMEM, "%s: out of memory exporting %s", record, group);
    for (int i = 0; i < t->n_cols; i++) {
        long n = 0;
        TRY(h5reader_column(rd, group, t->cols[i], &t->data[i], &n));
        int len = snprintf(path, sizeof path, "%s/%s", group, t->cols[i]);
        if (len < 0 || (size_t)len >= sizeof path) FAIL(ERR_FORMAT, "%s: path %s too long", record, group);
        TRY(h5reader_attr_str(rd, path, "unit", unit, sizeof unit));
        t->units[i] = mem_strdup(unit);
        if (!t->units[i]) FAIL(ERR_NOMEM, "%s: out of memory exporting %s", record, group);
        if (i == 0 || n < t->rows) {
            if (i > 0) log_msg(LOG_WARN, "%s: series %s: column %s has %ld rows, fewer than the others; "
                                         "exporting %ld", record, group, t->cols[i], n, n);
            t->rows = n;
        }
    }
fail:
    if (rc < 0) export_table_deinit(t);
    return rc;
}

/* The shortest decimal that reads back as exactly v ("nan", "inf", "-inf" for the rest). */
static void export_num(char *buf, double v) {
    if (isnan(v)) {
        snprintf(buf, EXPORT_NUM_BYTES, "nan");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, EXPORT_NUM_BYTES, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* A name or unit as one whitespace-free .dat token. */
static void export_put_token(FILE *f, const char *s) {
    if (!*s) fputc('-', f);
    for (; *s; s++) fputc(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ? '_' : *s, f);
}

/* A CSV field, quoted (RFC 4180) when it holds a comma, quote or line break. */
static void export_put_csv(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void export_write_table(FILE *f, const ExportTable *t, bool csv) {
    char num[EXPORT_NUM_BYTES];
    if (csv) {
        for (int i = 0; i < t->n_cols; i++) {
            if (i) fputc(',', f);
            export_put_csv(f, t->cols[i]);
        }
    } else {
        fputs("#", f);
        for (int i = 0; i < t->n_cols; i++) {
            fputc(' ', f);
            export_put_token(f, t->cols[i]);
        }
        fputs("\n#", f);
        for (int i = 0; i < t->n_cols; i++) {
            fputs(" [", f);
            export_put_token(f, t->units[i]);
            fputc(']', f);
        }
    }
    fputc('\n', f);
    for (long r = 0; r < t->rows; r++) {
        for (int i = 0; i < t->n_cols; i++) {
            export_num(num, t->data[i][r]);
            if (i) fputc(csv ? ',' : ' ', f);
            fputs(num, f);
        }
        fputc('\n', f);
    }
}

/* Writes OUT/base.ext via OUT/base.ext.tmp and a rename. */
static int export_file(const char *out_dir, const char *base, const char *ext, const ExportTable *t) {
    int rc = 0;
    char path[EXPORT_PATH_BYTES], tmp[EXPORT_PATH_BYTES];
    FILE *f = NULL;
    int n1 = snprintf(path, sizeof path, "%s/%s%s", out_dir, base, ext);
    int n2 = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof path || (size_t)n2 >= sizeof tmp) {
        tmp[0] = '\0';
        FAIL(ERR_IO, "%s/%s%s: path too long (at most %zu bytes)", out_dir, base, ext, sizeof tmp - 5);
    }
    f = fopen(tmp, "w");
    if (!f) FAIL(ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    export_write_table(f, t, strcmp(ext, ".csv") == 0);
    if (ferror(f)) FAIL(ERR_IO, "%s: write error: %s", tmp, strerror(errno));
    FILE *g = f;
    f = NULL;
    if (fclose(g) != 0) FAIL(ERR_IO, "%s: write error on close: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) FAIL(ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
fail:
    if (f) fclose(f);
    if (rc < 0 && tmp[0]) remove(tmp);
    return rc;
}

/* "/layers/003_conv1/grad" -> "layers_003_conv1_grad". */
static void export_base_name(char *out, size_t cap, const char *group) {
    while (*group == '/') group++;
    size_t i = 0;
    for (; group[i] && i + 1 < cap; i++) out[i] = group[i] == '/' ? '_' : group[i];
    out[i] = '\0';
}

static int export_series(H5Reader *rd, const char *record, const char *out_dir, const char *group) {
    int rc = 0;
    ExportTable t = {0};
    char base[EXPORT_PATH_BYTES];
    export_base_name(base, sizeof base, group);
    TRY(export_table_load(&t, rd, record, group));
    TRY(export_file(out_dir, base, ".dat", &t));
    TRY(export_file(out_dir, base, ".csv", &t));
    log_msg(LOG_DEBUG, "%s: %s -> %s/%s.{dat,csv} (%ld rows)", record, group, out_dir, base, t.rows);
fail:
    export_table_deinit(&t);
    return rc;
}

static int export_join(char *out, const char *record, const char *obj, const char *name) {
    int rc = 0;
    int n = snprintf(out, EXPORT_PATH_BYTES, "%s/%s", strcmp(obj, "/") == 0 ? "" : obj, name);
    if (n < 0 || n >= EXPORT_PATH_BYTES) FAIL(ERR_FORMAT, "%s: group path %s/%s too long", record, obj, name);
fail:
    return rc;
}

/* Exports every series at or below obj, depth-first in name order. */
static int export_walk(H5Reader *rd, const char *record, const char *out_dir, const char *obj, int depth,
                       int *n_series) {
    int rc = 0;
    char **names = NULL;
    int n = 0;
    char path[EXPORT_PATH_BYTES];
    if (depth > EXPORT_MAX_DEPTH)
        FAIL(ERR_FORMAT, "%s: groups nested deeper than %d at %s (a link cycle?)", record,
             EXPORT_MAX_DEPTH, obj);
    TRY(h5reader_list_series(rd, obj, &names, &n));
    for (int i = 0; i < n; i++) {
        TRY(export_join(path, record, obj, names[i]));
        TRY(export_series(rd, record, out_dir, path));
        (*n_series)++;
    }
    h5reader_free_names(names, n);
    names = NULL;
    n = 0;
    TRY(h5reader_list_groups(rd, obj, &names, &n));
    for (int i = 0; i < n; i++) {
        TRY(export_join(path, record, obj, names[i]));
        TRY(export_walk(rd, record, out_dir, path, depth + 1, n_series));
    }
fail:
    h5reader_free_names(names, n);
    return rc;
}

/* mkdir -p. */
static int export_mkdirs(const char *dir) {
    int rc = 0;
    char buf[EXPORT_PATH_BYTES];
    struct stat st;
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf) FAIL(ERR_IO, "export directory \"%s\": empty or too long", dir);
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            FAIL(ERR_IO, "%s: cannot create directory %s: %s", dir, buf, strerror(errno));
        buf[i] = c;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        FAIL(ERR_IO, "%s: not a directory", dir);
fail:
    return rc;
}

int export_run(const char *record_path, const char *out_dir) {
    int rc = 0;
    H5Reader *rd = NULL;
    int n_series = 0;
    ASSERT(record_path && out_dir);
    TRY(h5reader_open(&rd, record_path));
    TRY(export_mkdirs(out_dir));
    TRY(export_walk(rd, record_path, out_dir, "/", 0, &n_series));
    if (n_series == 0) log_msg(LOG_WARN, "%s: no series to export", record_path);
    else log_msg(LOG_INFO, "%s: %d series exported to %s", record_path, n_series, out_dir);
fail:
    if (rc < 0) log_msg(LOG_ERROR, "%s: export to %s failed", record_path, out_dir);
    h5reader_close(rd);
    return rc;
}
