/* h5rec.c: the HDF5 run record (writer and reader). See h5rec.h for the contract and
 * results/SCHEMA.md for the layout.
 *
 * Conventions inside this file:
 * - Every HDF5 call goes through H5_TRY (or H5_TRY_RC), which logs file:line, the call text, the
 *   record's path (and the object inside it) and HDF5's own innermost error message, then jumps to
 *   the function's `fail:` label with ERR_HDF5. HDF5's automatic error printing is switched off in
 *   every entry point that opens a file (h5rec_quiet), so the log line is the only report.
 * - hid_t handles start at H5I_INVALID_HID and are released with h5_close, which accepts it.
 * - Series column order is the creation order of the group's links (tracked and indexed on every
 *   group created here); groups written by other tools without that index fall back to name order. */
#include "results/h5rec.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define H5REC_CHUNK_ROWS 1024 /* rows per chunk of a series column (8 KiB of float64) */
#define H5REC_PATH_BYTES 1024 /* longest object path inside a record */
#define H5REC_NAME_BYTES 256  /* longest column name */
#define H5REC_UNIT_BYTES 64   /* longest unit string */
#define H5REC_MSG_BYTES 512   /* HDF5 error message kept for the log line */
#define H5REC_TIME_BYTES 32

/* H5_TRY_RC(call, code, file, obj): runs an HDF5 call (herr_t, hid_t or htri_t: negative is
 * failure); on failure logs it with the record path `file`, the object `obj` (may be NULL) and
 * HDF5's message, sets rc = code and jumps to fail. H5_TRY is the usual ERR_HDF5 form. Private
 * here until core/err.h carries it. Both stringify the call before its macros expand. */
#define H5_TRY_AS_(call, text, code, file, obj)                                                    \
    do {                                                                                           \
        if ((int64_t)(call) < 0) {                                                                 \
            h5_report(__FILE__, __LINE__, text, (file), (obj));                                    \
            rc = (code);                                                                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
#define H5_TRY_RC(call, code, file, obj) H5_TRY_AS_(call, #call, code, file, obj)
#define H5_TRY(call, file, obj) H5_TRY_AS_(call, #call, ERR_HDF5, file, obj)

struct H5Rec {
    hid_t file;       /* the open NAME.h5.part */
    char *final_path; /* NAME.h5 (owned) */
    char *part_path;  /* NAME.h5.part (owned) */
};

struct H5Reader {
    hid_t file;
    char *path; /* owned */
};

/* ---- errors and handles ---- */

typedef struct {
    char msg[H5REC_MSG_BYTES];
} H5ErrMsg;

/* Keeps the innermost entry of the error stack: the most specific description of what failed. */
static herr_t h5_err_walk(unsigned n, const H5E_error2_t *e, void *ctx) {
    H5ErrMsg *m = ctx;
    if (n == 0)
        snprintf(m->msg, sizeof m->msg, "%s (in %s)", e->desc ? e->desc : "no description",
                 e->func_name ? e->func_name : "?");
    return 0;
}

static void h5_report(const char *src, int line, const char *call, const char *file, const char *obj) {
    H5ErrMsg m = {"no message on the HDF5 error stack"};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_err_walk, &m);
    H5Eclear2(H5E_DEFAULT);
    log_msg(LOG_ERROR, "%s:%d: %s failed on %s%s%s: %s", src, line, call, file ? file : "?",
            obj ? ", object " : "", obj ? obj : "", m.msg);
}

/* Silences HDF5's automatic error-stack printing: errors reach the log through H5_TRY only. */
static void h5rec_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Closes any HDF5 identifier; H5I_INVALID_HID (or any negative id) is a no-op. */
static void h5_close(hid_t id) {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: H5Idec_ref(id); break;
    }
}

/* ---- small helpers shared by writer and reader ---- */

static int h5_check_name(const char *file, const char *what, const char *name) {
    int rc = 0;
    if (!name || !name[0] || strchr(name, '/') || strcmp(name, ".") == 0)
        FAIL(ERR_CONFIG, "%s: bad %s name \"%s\": expected a non-empty name without '/'", file, what,
             name ? name : "(null)");
    if (strlen(name) >= H5REC_NAME_BYTES)
        FAIL(ERR_CONFIG, "%s: %s name \"%s\" is too long (at most %d bytes)", file, what, name,
             H5REC_NAME_BYTES - 1);
fail:
    return rc;
}

/* out = a + "/" + b (a may be "/" or end in '/'). */
static int h5_join(char *out, size_t cap, const char *file, const char *a, const char *b) {
    int rc = 0;
    size_t la = strlen(a);
    while (la > 0 && a[la - 1] == '/') la--;
    int n = snprintf(out, cap, "%.*s/%s", (int)la, a, b);
    if (n < 0 || (size_t)n >= cap)
        FAIL(ERR_CONFIG, "%s: object path %s/%s is too long (at most %zu bytes)", file, a, b, cap - 1);
fail:
    return rc;
}

/* *exists: whether every component of `path` exists (checked one link at a time, since HDF5
 * fails rather than answering "no" when an intermediate group is missing). "/" always exists. */
static int h5_exists(hid_t loc, const char *file, const char *path, bool *exists) {
    int rc = 0;
    char buf[H5REC_PATH_BYTES];
    *exists = false;
    if (!path || !path[0]) FAIL(ERR_CONFIG, "%s: empty object path", file);
    size_t len = strlen(path);
    if (len >= sizeof buf)
        FAIL(ERR_CONFIG, "%s: object path too long (%zu bytes, at most %zu): %.64s...", file, len,
             sizeof buf - 1, path);
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    if (strcmp(buf, "/") == 0 || strcmp(buf, ".") == 0) {
        *exists = true;
        goto fail;
    }
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        if (buf[i - 1] == '/') continue; /* "a//b" */
        char c = buf[i];
        buf[i] = '\0';
        htri_t ex;
        H5_TRY(ex = H5Lexists(loc, buf, H5P_DEFAULT), file, buf);
        buf[i] = c;
        if (!ex) goto fail;
    }
    *exists = true;
fail:
    return rc;
}

/* Index by which a group's members are listed: creation order when the group tracks it. */
static int h5_link_index(hid_t gid, const char *file, const char *obj, H5_index_t *idx) {
    int rc = 0;
    hid_t gcpl = H5I_INVALID_HID;
    unsigned flags = 0;
    H5_TRY(gcpl = H5Gget_create_plist(gid), file, obj);
    H5_TRY(H5Pget_link_creation_order(gcpl, &flags), file, obj);
    *idx = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
fail:
    h5_close(gcpl);
    return rc;
}

static int h5_n_links(hid_t gid, const char *file, const char *obj, int *n) {
    int rc = 0;
    H5G_info_t info;
    H5_TRY(H5Gget_info(gid, &info), file, obj);
    if (info.nlinks > (hsize_t)1 << 30) FAIL(ERR_FORMAT, "%s: group %s has %llu members", file, obj,
                                             (unsigned long long)info.nlinks);
    *n = (int)info.nlinks;
fail:
    return rc;
}

/* Name of the i-th member of gid (in index order) into name[H5REC_NAME_BYTES]. */
static int h5_member_name(hid_t gid, H5_index_t idx, int i, const char *file, const char *obj,
                          char *name) {
    int rc = 0;
    ssize_t len;
    H5_TRY(len = H5Lget_name_by_idx(gid, ".", idx, H5_ITER_INC, (hsize_t)i, name, H5REC_NAME_BYTES,
                                    H5P_DEFAULT),
           file, obj);
    if (len >= H5REC_NAME_BYTES)
        FAIL(ERR_FORMAT, "%s: member %d of %s has a name longer than %d bytes", file, i, obj,
             H5REC_NAME_BYTES - 1);
fail:
    return rc;
}

/* Opens the i-th member of a series group as a 1-D dataset; *rows receives its length. */
static int h5_col_open(hid_t gid, H5_index_t idx, int i, const char *file, const char *group,
                       hid_t *did, hsize_t *rows) {
    int rc = 0;
    hid_t oid = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char name[H5REC_NAME_BYTES];
    int nd;
    *did = H5I_INVALID_HID;
    H5_TRY(oid = H5Oopen_by_idx(gid, ".", idx, H5_ITER_INC, (hsize_t)i, H5P_DEFAULT), file, group);
    if (H5Iget_type(oid) != H5I_DATASET) {
        TRY(h5_member_name(gid, idx, i, file, group, name));
        FAIL(ERR_FORMAT, "%s: series %s: member \"%s\" is not a dataset (expected 1-D float64 columns)",
             file, group, name);
    }
    H5_TRY(space = H5Dget_space(oid), file, group);
    H5_TRY(nd = H5Sget_simple_extent_ndims(space), file, group);
    if (nd != 1) {
        TRY(h5_member_name(gid, idx, i, file, group, name));
        FAIL(ERR_FORMAT, "%s: series %s: column \"%s\" has %d dimensions, expected 1", file, group,
             name, nd);
    }
    H5_TRY(H5Sget_simple_extent_dims(space, rows, NULL), file, group);
    *did = oid;
    oid = H5I_INVALID_HID;
fail:
    h5_close(space);
    h5_close(oid);
    return rc;
}

/* Opens an existing series group: its handle, listing index and column count. */
static int h5_series_open(hid_t file_id, const char *file, const char *group, hid_t *gid,
                          H5_index_t *idx, int *n_cols) {
    int rc = 0;
    hid_t g = H5I_INVALID_HID;
    H5_TRY(g = H5Gopen2(file_id, group, H5P_DEFAULT), file, group);
    TRY(h5_link_index(g, file, group, idx));
    TRY(h5_n_links(g, file, group, n_cols));
    *gid = g;
    g = H5I_INVALID_HID;
fail:
    h5_close(g);
    return rc;
}

/* Rows of an open series: the shortest column (columns differ only when an append was cut short;
 * the next append or truncate evens them out). */
static int h5_series_rows(hid_t gid, H5_index_t idx, int n_cols, const char *file, const char *group,
                          long *rows) {
    int rc = 0;
    hid_t did = H5I_INVALID_HID;
    hsize_t lo = 0, hi = 0;
    for (int i = 0; i < n_cols; i++) {
        hsize_t len = 0;
        TRY(h5_col_open(gid, idx, i, file, group, &did, &len));
        h5_close(did);
        did = H5I_INVALID_HID;
        if (i == 0 || len < lo) lo = len;
        if (len > hi) hi = len;
    }
    if (hi != lo)
        log_msg(LOG_WARN, "%s: series %s has columns of %llu to %llu rows (an append was cut short); "
                "using %llu", file, group, (unsigned long long)lo, (unsigned long long)hi,
                (unsigned long long)lo);
    *rows = (long)lo;
fail:
    h5_close(did);
    return rc;
}

/* Reads a scalar string attribute (fixed- or variable-length) into buf[cap]. */
static int h5_attr_get_str(hid_t loc, const char *file, const char *obj, const char *name, char *buf,
                           size_t cap) {
    int rc = 0;
    hid_t aid = H5I_INVALID_HID, ftype = H5I_INVALID_HID, mtype = H5I_INVALID_HID;
    hid_t space = H5I_INVALID_HID;
    char *tmp = NULL, *vstr = NULL;
    htri_t ex, is_var;
    hssize_t npoints;
    ASSERT(buf && cap > 0);
    buf[0] = '\0';
    H5_TRY(ex = H5Aexists(loc, name), file, obj);
    if (!ex) FAIL(ERR_FORMAT, "%s: %s has no attribute \"%s\"", file, obj, name);
    H5_TRY(aid = H5Aopen(loc, name, H5P_DEFAULT), file, obj);
    H5_TRY(ftype = H5Aget_type(aid), file, obj);
    H5_TRY(space = H5Aget_space(aid), file, obj);
    H5_TRY(npoints = H5Sget_simple_extent_npoints(space), file, obj);
    if (H5Tget_class(ftype) != H5T_STRING || npoints != 1)
        FAIL(ERR_FORMAT, "%s: attribute \"%s\" of %s is not a single string", file, name, obj);
    H5_TRY(mtype = H5Tcopy(H5T_C_S1), file, obj);
    H5_TRY(is_var = H5Tis_variable_str(ftype), file, obj);
    const char *s;
    if (is_var) {
        H5_TRY(H5Tset_size(mtype, H5T_VARIABLE), file, obj);
        H5_TRY(H5Aread(aid, mtype, &vstr), file, obj);
        s = vstr ? vstr : "";
    } else {
        size_t size = H5Tget_size(ftype);
        if (size == 0) FAIL(ERR_FORMAT, "%s: attribute \"%s\" of %s has size 0", file, name, obj);
        tmp = mem_alloc(size + 1);
        if (!tmp) FAIL(ERR_NOMEM, "%s: out of memory reading attribute \"%s\"", file, name);
        H5_TRY(H5Tset_size(mtype, size), file, obj);
        H5_TRY(H5Aread(aid, mtype, tmp), file, obj);
        tmp[size] = '\0';
        s = tmp;
    }
    size_t len = strlen(s);
    if (len >= cap)
        FAIL(ERR_FORMAT, "%s: attribute \"%s\" of %s needs %zu bytes, the buffer holds %zu", file, name,
             obj, len + 1, cap);
    memcpy(buf, s, len + 1);
fail:
    if (vstr) H5free_memory(vstr);
    mem_free(tmp);
    h5_close(space);
    h5_close(mtype);
    h5_close(ftype);
    h5_close(aid);
    return rc;
}

/* Writes (replacing) an attribute on an open object. */
static int h5_attr_put(hid_t loc, const char *file, const char *obj, const char *name, hid_t ftype,
                       hid_t mtype, hid_t space, const void *buf) {
    int rc = 0;
    hid_t aid = H5I_INVALID_HID;
    htri_t ex;
    if (!name || !name[0]) FAIL(ERR_CONFIG, "%s: empty attribute name on %s", file, obj);
    H5_TRY(ex = H5Aexists(loc, name), file, obj);
    if (ex) H5_TRY(H5Adelete(loc, name), file, obj);
    H5_TRY(aid = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT), file, obj);
    H5_TRY(H5Awrite(aid, mtype, buf), file, obj);
fail:
    h5_close(aid);
    return rc;
}

/* A fixed-length, null-terminated string attribute (UTF-8 when the text is not plain ASCII):
 * the form h5dump, h5py and every HDF5 version read. */
static int h5_attr_put_str(hid_t loc, const char *file, const char *obj, const char *name,
                           const char *value) {
    int rc = 0;
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    bool ascii = true;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p >= 0x80) ascii = false;
    H5_TRY(type = H5Tcopy(H5T_C_S1), file, obj);
    H5_TRY(H5Tset_size(type, strlen(value) + 1), file, obj);
    H5_TRY(H5Tset_strpad(type, H5T_STR_NULLTERM), file, obj);
    H5_TRY(H5Tset_cset(type, ascii ? H5T_CSET_ASCII : H5T_CSET_UTF8), file, obj);
    H5_TRY(space = H5Screate(H5S_SCALAR), file, obj);
    TRY(h5_attr_put(loc, file, obj, name, type, type, space, value));
fail:
    h5_close(space);
    h5_close(type);
    return rc;
}

static int h5_attr_delete(hid_t loc, const char *file, const char *obj, const char *name) {
    int rc = 0;
    htri_t ex;
    H5_TRY(ex = H5Aexists(loc, name), file, obj);
    if (ex) H5_TRY(H5Adelete(loc, name), file, obj);
fail:
    return rc;
}

/* File access properties of writer and reader alike (the same process may open a record with
 * both, which HDF5 allows only with equal close degrees). STRONG: closing the file closes every
 * object still open in it, so a finished record is fully written before it is renamed. */
static int h5_fapl(const char *file, hid_t *fapl) {
    int rc = 0;
    H5_TRY(*fapl = H5Pcreate(H5P_FILE_ACCESS), file, NULL);
    H5_TRY(H5Pset_fclose_degree(*fapl, H5F_CLOSE_STRONG), file, NULL);
fail:
    return rc;
}

/* Closes a record or reader file, warning about objects this module forgot to close. */
static int h5_file_close(hid_t *file_id, const char *file) {
    int rc = 0;
    if (*file_id < 0) return 0;
    ssize_t open = H5Fget_obj_count(*file_id, H5F_OBJ_ALL | H5F_OBJ_LOCAL);
    if (open > 1) log_msg(LOG_WARN, "%s: %zd HDF5 objects still open at close", file, open - 1);
    hid_t f = *file_id;
    *file_id = H5I_INVALID_HID;
    H5_TRY(H5Fclose(f), file, NULL);
fail:
    return rc;
}

/* ---- writer ---- */

static void h5rec_free(H5Rec *r) {
    if (!r) return;
    if (r->file >= 0) h5_file_close(&r->file, r->part_path);
    mem_free(r->final_path);
    mem_free(r->part_path);
    mem_free(r);
}

static int h5rec_alloc(H5Rec **out, const char *final_path) {
    int rc = 0;
    H5Rec *r = NULL;
    *out = NULL;
    if (!final_path || !final_path[0]) FAIL(ERR_CONFIG, "h5rec: empty record path");
    size_t len = strlen(final_path);
    r = mem_calloc(1, sizeof *r);
    if (!r) FAIL(ERR_NOMEM, "%s: out of memory", final_path);
    r->file = H5I_INVALID_HID;
    r->final_path = mem_strdup(final_path);
    r->part_path = mem_alloc(len + sizeof ".part");
    if (!r->final_path || !r->part_path) FAIL(ERR_NOMEM, "%s: out of memory", final_path);
    memcpy(r->part_path, final_path, len);
    memcpy(r->part_path + len, ".part", sizeof ".part");
    *out = r;
    r = NULL;
fail:
    h5rec_free(r);
    return rc;
}

/* ERR_IO when the final record exists (or cannot be checked). */
static int h5rec_refuse_final(const char *final_path) {
    int rc = 0;
    struct stat st;
    if (stat(final_path, &st) == 0)
        FAIL(ERR_IO, "%s: a complete record already exists under this name; move it away (or choose "
                     "another name) before writing a run record here",
             final_path);
    if (errno != ENOENT) FAIL(ERR_IO, "%s: cannot check for an existing record: %s", final_path,
                              strerror(errno));
fail:
    return rc;
}

static void h5rec_now(char *buf, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, cap, "unknown");
}

static int h5rec_stamp(H5Rec *r, const char *name) {
    char now[H5REC_TIME_BYTES];
    h5rec_now(now, sizeof now);
    return h5rec_attr_str(r, "/", name, now);
}

int h5rec_create(H5Rec **out, const char *final_path) {
    int rc = 0;
    H5Rec *r = NULL;
    hid_t fapl = H5I_INVALID_HID;
    ASSERT(out);
    *out = NULL;
    h5rec_quiet();
    TRY(h5rec_alloc(&r, final_path));
    TRY(h5rec_refuse_final(final_path));
    TRY(h5_fapl(r->part_path, &fapl));
    H5_TRY_RC(r->file = H5Fcreate(r->part_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), ERR_IO,
              r->part_path, NULL);
    TRY(h5rec_attr_i64(r, "/", "schema_version", H5REC_SCHEMA_VERSION));
    TRY(h5rec_attr_str(r, "/", "status", "running"));
    TRY(h5rec_stamp(r, "start_time"));
    *out = r;
    r = NULL;
fail:
    h5_close(fapl);
    if (r && r->file >= 0) {
        h5_file_close(&r->file, r->part_path);
        remove(r->part_path); /* a .part without its root attributes is of no use */
    }
    h5rec_free(r);
    return rc;
}

int h5rec_reopen(H5Rec **out, const char *final_path) {
    int rc = 0;
    H5Rec *r = NULL;
    hid_t fapl = H5I_INVALID_HID, root = H5I_INVALID_HID;
    struct stat st;
    ASSERT(out);
    *out = NULL;
    h5rec_quiet();
    TRY(h5rec_alloc(&r, final_path));
    TRY(h5rec_refuse_final(final_path));
    if (stat(r->part_path, &st) != 0)
        FAIL(ERR_IO, "%s: cannot resume: %s", r->part_path, strerror(errno));
    TRY(h5_fapl(r->part_path, &fapl));
    H5_TRY(r->file = H5Fopen(r->part_path, H5F_ACC_RDWR, fapl), r->part_path, NULL);
    /* Running again: a failed run's message and end time no longer describe it. */
    TRY(h5rec_attr_str(r, "/", "status", "running"));
    H5_TRY(root = H5Gopen2(r->file, "/", H5P_DEFAULT), r->part_path, "/");
    TRY(h5_attr_delete(root, r->part_path, "/", "status_message"));
    TRY(h5_attr_delete(root, r->part_path, "/", "end_time"));
    *out = r;
    r = NULL;
fail:
    h5_close(root);
    h5_close(fapl);
    h5rec_free(r);
    return rc;
}

/* Opens obj (group or dataset), creating it as a group, parents included, when missing. */
static int h5rec_obj_open(H5Rec *r, const char *obj, hid_t *oid) {
    int rc = 0;
    hid_t lcpl = H5I_INVALID_HID, gcpl = H5I_INVALID_HID;
    bool exists;
    *oid = H5I_INVALID_HID;
    TRY(h5_exists(r->file, r->part_path, obj, &exists));
    if (exists) {
        H5_TRY(*oid = H5Oopen(r->file, obj, H5P_DEFAULT), r->part_path, obj);
    } else {
        H5_TRY(lcpl = H5Pcreate(H5P_LINK_CREATE), r->part_path, obj);
        H5_TRY(H5Pset_create_intermediate_group(lcpl, 1), r->part_path, obj);
        H5_TRY(gcpl = H5Pcreate(H5P_GROUP_CREATE), r->part_path, obj);
        H5_TRY(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
               r->part_path, obj);
        H5_TRY(*oid = H5Gcreate2(r->file, obj, lcpl, gcpl, H5P_DEFAULT), r->part_path, obj);
    }
fail:
    h5_close(gcpl);
    h5_close(lcpl);
    return rc;
}

int h5rec_attr_str(H5Rec *r, const char *obj, const char *name, const char *value) {
    int rc = 0;
    hid_t oid = H5I_INVALID_HID;
    ASSERT(r && obj && name && value);
    TRY(h5rec_obj_open(r, obj, &oid));
    TRY(h5_attr_put_str(oid, r->part_path, obj, name, value));
fail:
    h5_close(oid);
    return rc;
}

/* A numeric attribute: a scalar, or a 1-D array of n >= 1 values. */
static int h5rec_attr_num(H5Rec *r, const char *obj, const char *name, hid_t ftype, hid_t mtype,
                          const void *v, bool scalar, int n) {
    int rc = 0;
    hid_t oid = H5I_INVALID_HID, space = H5I_INVALID_HID;
    ASSERT(r && obj && name && v);
    if (!scalar && n < 1)
        FAIL(ERR_CONFIG, "%s: attribute \"%s\" on %s: %d values, expected at least 1", r->part_path,
             name, obj, n);
    TRY(h5rec_obj_open(r, obj, &oid));
    hsize_t dims[1] = {(hsize_t)n};
    H5_TRY(space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL), r->part_path, obj);
    TRY(h5_attr_put(oid, r->part_path, obj, name, ftype, mtype, space, v));
fail:
    h5_close(space);
    h5_close(oid);
    return rc;
}

int h5rec_attr_i64(H5Rec *r, const char *obj, const char *name, int64_t value) {
    return h5rec_attr_num(r, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, true, 1);
}

int h5rec_attr_f64(H5Rec *r, const char *obj, const char *name, double value) {
    return h5rec_attr_num(r, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, true, 1);
}

int h5rec_attr_i64_array(H5Rec *r, const char *obj, const char *name, const int64_t *v, int n) {
    return h5rec_attr_num(r, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, false, n);
}

/* An existing series must have exactly the declared columns and units, in order. */
static int h5rec_series_match(H5Rec *r, const char *group, int n_cols, const char *const *cols,
                              const char *const *units) {
    int rc = 0;
    hid_t gid = H5I_INVALID_HID, did = H5I_INVALID_HID;
    H5_index_t idx;
    int n_have;
    char name[H5REC_NAME_BYTES], unit[H5REC_UNIT_BYTES];
    TRY(h5_series_open(r->file, r->part_path, group, &gid, &idx, &n_have));
    if (n_have != n_cols)
        FAIL(ERR_FORMAT, "%s: series %s exists with %d columns, declared with %d", r->part_path, group,
             n_have, n_cols);
    for (int i = 0; i < n_cols; i++) {
        hsize_t len;
        TRY(h5_member_name(gid, idx, i, r->part_path, group, name));
        TRY(h5_col_open(gid, idx, i, r->part_path, group, &did, &len));
        TRY(h5_attr_get_str(did, r->part_path, name, "unit", unit, sizeof unit));
        h5_close(did);
        did = H5I_INVALID_HID;
        if (strcmp(name, cols[i]) != 0 || strcmp(unit, units[i]) != 0)
            FAIL(ERR_FORMAT, "%s: series %s exists with column %d = \"%s\" [%s], declared \"%s\" [%s]",
                 r->part_path, group, i, name, unit, cols[i], units[i]);
    }
fail:
    h5_close(did);
    h5_close(gid);
    return rc;
}

int h5rec_series(H5Rec *r, const char *group, int n_cols, const char *const *cols, const char *const *units) {
    int rc = 0;
    hid_t gid = H5I_INVALID_HID, space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    hid_t did = H5I_INVALID_HID;
    bool exists;
    ASSERT(r && group);
    if (n_cols < 1 || !cols || !units)
        FAIL(ERR_CONFIG, "%s: series %s: %d columns, expected at least one with names and units",
             r->part_path, group, n_cols);
    for (int i = 0; i < n_cols; i++) {
        TRY(h5_check_name(r->part_path, "column", cols[i]));
        if (!units[i] || strlen(units[i]) >= H5REC_UNIT_BYTES)
            FAIL(ERR_CONFIG, "%s: series %s: column %s needs a unit of at most %d bytes", r->part_path,
                 group, cols[i], H5REC_UNIT_BYTES - 1);
        for (int j = 0; j < i; j++)
            if (strcmp(cols[i], cols[j]) == 0)
                FAIL(ERR_CONFIG, "%s: series %s: column \"%s\" declared twice", r->part_path, group, cols[i]);
    }
    TRY(h5_exists(r->file, r->part_path, group, &exists));
    if (exists) {
        TRY(h5rec_series_match(r, group, n_cols, cols, units));
        goto fail;
    }
    TRY(h5rec_obj_open(r, group, &gid));
    hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {H5REC_CHUNK_ROWS};
    H5_TRY(space = H5Screate_simple(1, dims, maxdims), r->part_path, group);
    H5_TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), r->part_path, group);
    H5_TRY(H5Pset_chunk(dcpl, 1, chunk), r->part_path, group);
    for (int i = 0; i < n_cols; i++) {
        H5_TRY(did = H5Dcreate2(gid, cols[i], H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
               r->part_path, group);
        TRY(h5_attr_put_str(did, r->part_path, cols[i], "unit", units[i]));
        h5_close(did);
        did = H5I_INVALID_HID;
    }
fail:
    h5_close(did);
    h5_close(dcpl);
    h5_close(space);
    h5_close(gid);
    return rc;
}

int h5rec_append(H5Rec *r, const char *group, const double *row) {
    int rc = 0;
    hid_t gid = H5I_INVALID_HID, did = H5I_INVALID_HID, fspace = H5I_INVALID_HID;
    hid_t mspace = H5I_INVALID_HID;
    H5_index_t idx;
    int n_cols;
    long rows;
    ASSERT(r && group && row);
    TRY(h5_series_open(r->file, r->part_path, group, &gid, &idx, &n_cols));
    if (n_cols < 1) FAIL(ERR_FORMAT, "%s: series %s has no columns", r->part_path, group);
    TRY(h5_series_rows(gid, idx, n_cols, r->part_path, group, &rows));
    hsize_t one[1] = {1}, start[1] = {(hsize_t)rows}, extent[1] = {(hsize_t)rows + 1};
    H5_TRY(mspace = H5Screate_simple(1, one, NULL), r->part_path, group);
    for (int i = 0; i < n_cols; i++) {
        hsize_t len;
        TRY(h5_col_open(gid, idx, i, r->part_path, group, &did, &len));
        H5_TRY(H5Dset_extent(did, extent), r->part_path, group);
        H5_TRY(fspace = H5Dget_space(did), r->part_path, group);
        H5_TRY(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, one, NULL), r->part_path, group);
        H5_TRY(H5Dwrite(did, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, &row[i]), r->part_path, group);
        h5_close(fspace);
        h5_close(did);
        fspace = did = H5I_INVALID_HID;
    }
fail:
    h5_close(mspace);
    h5_close(fspace);
    h5_close(did);
    h5_close(gid);
    return rc;
}

int h5rec_rows(H5Rec *r, const char *group, long *rows) {
    int rc = 0;
    hid_t gid = H5I_INVALID_HID;
    H5_index_t idx;
    int n_cols;
    bool exists;
    ASSERT(r && group && rows);
    *rows = 0;
    TRY(h5_exists(r->file, r->part_path, group, &exists));
    if (!exists) goto fail;
    TRY(h5_series_open(r->file, r->part_path, group, &gid, &idx, &n_cols));
    TRY(h5_series_rows(gid, idx, n_cols, r->part_path, group, rows));
fail:
    h5_close(gid);
    return rc;
}

int h5rec_truncate(H5Rec *r, const char *group, long rows) {
    int rc = 0;
    hid_t gid = H5I_INVALID_HID, did = H5I_INVALID_HID;
    H5_index_t idx;
    int n_cols;
    long have;
    bool exists;
    ASSERT(r && group);
    TRY(h5_exists(r->file, r->part_path, group, &exists));
    if (!exists) FAIL(ERR_FORMAT, "%s: cannot truncate series %s: it does not exist", r->part_path, group);
    TRY(h5_series_open(r->file, r->part_path, group, &gid, &idx, &n_cols));
    TRY(h5_series_rows(gid, idx, n_cols, r->part_path, group, &have));
    if (rows < 0 || rows > have)
        FAIL(ERR_CONFIG, "%s: cannot truncate series %s to %ld rows: it has %ld", r->part_path, group,
             rows, have);
    hsize_t extent[1] = {(hsize_t)rows};
    for (int i = 0; i < n_cols; i++) {
        hsize_t len;
        TRY(h5_col_open(gid, idx, i, r->part_path, group, &did, &len));
        H5_TRY(H5Dset_extent(did, extent), r->part_path, group);
        h5_close(did);
        did = H5I_INVALID_HID;
    }
fail:
    h5_close(did);
    h5_close(gid);
    return rc;
}

/* A whole N-D dataset; an existing one of the same shape and type is overwritten in place,
 * otherwise replaced. */
static int h5rec_write_nd(H5Rec *r, const char *path, int ndims, const uint64_t *dims, hid_t ftype,
                          hid_t mtype, const void *data) {
    int rc = 0;
    hid_t space = H5I_INVALID_HID, did = H5I_INVALID_HID, lcpl = H5I_INVALID_HID;
    hid_t old_space = H5I_INVALID_HID, old_type = H5I_INVALID_HID;
    hsize_t hd[H5S_MAX_RANK];
    bool exists;
    ASSERT(r && path);
    if (ndims < 1 || ndims > H5S_MAX_RANK || !dims)
        FAIL(ERR_CONFIG, "%s: dataset %s: %d dimensions, expected 1..%d", r->part_path, path, ndims,
             H5S_MAX_RANK);
    uint64_t count = 1;
    for (int i = 0; i < ndims; i++) {
        hd[i] = dims[i];
        count *= dims[i];
    }
    if (count > 0 && !data) FAIL(ERR_CONFIG, "%s: dataset %s: no data", r->part_path, path);
    H5_TRY(space = H5Screate_simple(ndims, hd, NULL), r->part_path, path);
    TRY(h5_exists(r->file, r->part_path, path, &exists));
    if (exists) {
        htri_t same_space, same_type;
        H5_TRY(did = H5Dopen2(r->file, path, H5P_DEFAULT), r->part_path, path);
        H5_TRY(old_space = H5Dget_space(did), r->part_path, path);
        H5_TRY(old_type = H5Dget_type(did), r->part_path, path);
        H5_TRY(same_space = H5Sextent_equal(old_space, space), r->part_path, path);
        H5_TRY(same_type = H5Tequal(old_type, ftype), r->part_path, path);
        if (!same_space || !same_type) {
            h5_close(did);
            did = H5I_INVALID_HID;
            H5_TRY(H5Ldelete(r->file, path, H5P_DEFAULT), r->part_path, path);
        }
    }
    if (did < 0) {
        H5_TRY(lcpl = H5Pcreate(H5P_LINK_CREATE), r->part_path, path);
        H5_TRY(H5Pset_create_intermediate_group(lcpl, 1), r->part_path, path);
        H5_TRY(did = H5Dcreate2(r->file, path, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT),
               r->part_path, path);
    }
    if (count > 0) H5_TRY(H5Dwrite(did, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), r->part_path, path);
fail:
    h5_close(old_type);
    h5_close(old_space);
    h5_close(lcpl);
    h5_close(did);
    h5_close(space);
    return rc;
}

int h5rec_write_f32(H5Rec *r, const char *path, int ndims, const uint64_t *dims, const float *data) {
    return h5rec_write_nd(r, path, ndims, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data);
}

int h5rec_write_f64(H5Rec *r, const char *path, int ndims, const uint64_t *dims, const double *data) {
    return h5rec_write_nd(r, path, ndims, dims, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data);
}

int h5rec_write_i64(H5Rec *r, const char *path, int ndims, const uint64_t *dims, const int64_t *data) {
    return h5rec_write_nd(r, path, ndims, dims, H5T_STD_I64LE, H5T_NATIVE_INT64, data);
}

int h5rec_flush(H5Rec *r) {
    int rc = 0;
    ASSERT(r);
    H5_TRY(H5Fflush(r->file, H5F_SCOPE_GLOBAL), r->part_path, NULL);
fail:
    return rc;
}

/* Forces the closed .part to stable storage before it is renamed (write-temp-then-rename). */
static int h5rec_sync(const char *path) {
    int rc = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) FAIL(ERR_IO, "%s: cannot open to sync: %s", path, strerror(errno));
    if (fsync(fd) != 0) FAIL(ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
fail:
    if (fd >= 0) close(fd);
    return rc;
}

int h5rec_finish(H5Rec *r) {
    int rc = 0;
    ASSERT(r);
    TRY(h5rec_attr_str(r, "/", "status", "complete"));
    TRY(h5rec_stamp(r, "end_time"));
    TRY(h5_file_close(&r->file, r->part_path));
    TRY(h5rec_sync(r->part_path));
    TRY(h5rec_refuse_final(r->final_path));
    if (rename(r->part_path, r->final_path) != 0)
        FAIL(ERR_IO, "%s: cannot rename the finished record to %s: %s", r->part_path, r->final_path,
             strerror(errno));
fail:
    if (rc < 0) log_msg(LOG_ERROR, "%s: the record was not finished; it stays at %s", r->final_path, r->part_path);
    h5rec_free(r);
    return rc;
}

void h5rec_fail(H5Rec *r, const char *message) {
    if (!r) return;
    /* Each step is tried even if one fails: the status matters most, the rest is best effort. */
    int rc = h5rec_attr_str(r, "/", "status", "failed");
    if (h5rec_attr_str(r, "/", "status_message", message ? message : "") < 0) rc = -1;
    if (h5rec_stamp(r, "end_time") < 0) rc = -1;
    if (h5_file_close(&r->file, r->part_path) < 0) rc = -1;
    if (rc < 0) log_msg(LOG_ERROR, "%s: could not fully record the failure (%s)", r->part_path,
                        message ? message : "");
    h5rec_free(r);
}

void h5rec_close(H5Rec *r) { h5rec_free(r); }

/* ---- reader ---- */

int h5reader_open(H5Reader **out, const char *path) {
    int rc = 0;
    H5Reader *rd = NULL;
    hid_t fapl = H5I_INVALID_HID;
    struct stat st;
    htri_t is_h5;
    ASSERT(out && path);
    *out = NULL;
    h5rec_quiet();
    if (stat(path, &st) != 0) FAIL(ERR_IO, "%s: cannot open record: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) FAIL(ERR_IO, "%s: cannot open record: not a regular file", path);
    rd = mem_calloc(1, sizeof *rd);
    if (!rd) FAIL(ERR_NOMEM, "%s: out of memory", path);
    rd->file = H5I_INVALID_HID;
    rd->path = mem_strdup(path);
    if (!rd->path) FAIL(ERR_NOMEM, "%s: out of memory", path);
    H5_TRY(is_h5 = H5Fis_hdf5(path), path, NULL);
    if (!is_h5)
        FAIL(ERR_FORMAT, "%s: not an HDF5 file (no HDF5 signature in its %lld bytes)", path,
             (long long)st.st_size);
    TRY(h5_fapl(path, &fapl));
    H5_TRY(rd->file = H5Fopen(path, H5F_ACC_RDONLY, fapl), path, NULL);
    *out = rd;
    rd = NULL;
fail:
    h5_close(fapl);
    h5reader_close(rd);
    return rc;
}

void h5reader_close(H5Reader *rd) {
    if (!rd) return;
    h5_file_close(&rd->file, rd->path);
    mem_free(rd->path);
    mem_free(rd);
}

/* Opens an object of the record, with a clear error when it is absent. */
static int h5reader_obj(H5Reader *rd, const char *obj, hid_t *oid) {
    int rc = 0;
    bool exists;
    *oid = H5I_INVALID_HID;
    TRY(h5_exists(rd->file, rd->path, obj, &exists));
    if (!exists) FAIL(ERR_FORMAT, "%s: no object %s in the record", rd->path, obj);
    H5_TRY(*oid = H5Oopen(rd->file, obj, H5P_DEFAULT), rd->path, obj);
fail:
    return rc;
}

int h5reader_has(H5Reader *rd, const char *obj, const char *attr, bool *yes) {
    int rc = 0;
    hid_t oid = H5I_INVALID_HID;
    htri_t ex;
    bool exists;
    ASSERT(rd && obj && yes);
    *yes = false;
    TRY(h5_exists(rd->file, rd->path, obj, &exists));
    if (!exists || !attr) {
        *yes = exists;
        goto fail;
    }
    H5_TRY(oid = H5Oopen(rd->file, obj, H5P_DEFAULT), rd->path, obj);
    H5_TRY(ex = H5Aexists(oid, attr), rd->path, obj);
    *yes = ex > 0;
fail:
    h5_close(oid);
    return rc;
}

int h5reader_attr_str(H5Reader *rd, const char *obj, const char *name, char *buf, size_t cap) {
    int rc = 0;
    hid_t oid = H5I_INVALID_HID;
    ASSERT(rd && obj && name && buf && cap > 0);
    buf[0] = '\0';
    TRY(h5reader_obj(rd, obj, &oid));
    TRY(h5_attr_get_str(oid, rd->path, obj, name, buf, cap));
fail:
    h5_close(oid);
    return rc;
}

int h5reader_attr_f64(H5Reader *rd, const char *obj, const char *name, double *v) {
    int rc = 0;
    hid_t oid = H5I_INVALID_HID, aid = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    htri_t ex;
    hssize_t npoints;
    ASSERT(rd && obj && name && v);
    TRY(h5reader_obj(rd, obj, &oid));
    H5_TRY(ex = H5Aexists(oid, name), rd->path, obj);
    if (!ex) FAIL(ERR_FORMAT, "%s: %s has no attribute \"%s\"", rd->path, obj, name);
    H5_TRY(aid = H5Aopen(oid, name, H5P_DEFAULT), rd->path, obj);
    H5_TRY(type = H5Aget_type(aid), rd->path, obj);
    H5_TRY(space = H5Aget_space(aid), rd->path, obj);
    H5_TRY(npoints = H5Sget_simple_extent_npoints(space), rd->path, obj);
    H5T_class_t cls = H5Tget_class(type);
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || npoints != 1)
        FAIL(ERR_FORMAT, "%s: attribute \"%s\" of %s is not a single number", rd->path, name, obj);
    H5_TRY(H5Aread(aid, H5T_NATIVE_DOUBLE, v), rd->path, obj);
fail:
    h5_close(space);
    h5_close(type);
    h5_close(aid);
    h5_close(oid);
    return rc;
}

void h5reader_free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) mem_free(names[i]);
    mem_free(names);
}

int h5reader_series_cols(H5Reader *rd, const char *group, char ***cols, int *n_cols) {
    int rc = 0;
    hid_t gid = H5I_INVALID_HID, did = H5I_INVALID_HID;
    H5_index_t idx;
    int n = 0;
    char **names = NULL;
    char name[H5REC_NAME_BYTES];
    bool exists;
    ASSERT(rd && group && cols && n_cols);
    *cols = NULL;
    *n_cols = 0;
    TRY(h5_exists(rd->file, rd->path, group, &exists));
    if (!exists) FAIL(ERR_FORMAT, "%s: no series %s in the record", rd->path, group);
    TRY(h5_series_open(rd->file, rd->path, group, &gid, &idx, &n));
    if (n < 1) FAIL(ERR_FORMAT, "%s: %s is not a series (it has no columns)", rd->path, group);
    names = mem_calloc((size_t)n, sizeof *names);
    if (!names) FAIL(ERR_NOMEM, "%s: out of memory", rd->path);
    for (int i = 0; i < n; i++) {
        hsize_t len;
        TRY(h5_col_open(gid, idx, i, rd->path, group, &did, &len)); /* checks it is a column */
        h5_close(did);
        did = H5I_INVALID_HID;
        TRY(h5_member_name(gid, idx, i, rd->path, group, name));
        names[i] = mem_strdup(name);
        if (!names[i]) FAIL(ERR_NOMEM, "%s: out of memory", rd->path);
    }
    *cols = names;
    *n_cols = n;
    names = NULL;
fail:
    h5reader_free_names(names, n);
    h5_close(did);
    h5_close(gid);
    return rc;
}

int h5reader_column(H5Reader *rd, const char *group, const char *col, double **data, long *n) {
    int rc = 0;
    hid_t did = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char path[H5REC_PATH_BYTES];
    double *buf = NULL;
    hsize_t len = 0;
    int nd;
    bool exists;
    ASSERT(rd && group && col && data && n);
    *data = NULL;
    *n = 0;
    TRY(h5_check_name(rd->path, "column", col));
    TRY(h5_join(path, sizeof path, rd->path, group, col));
    TRY(h5_exists(rd->file, rd->path, path, &exists));
    if (!exists) FAIL(ERR_FORMAT, "%s: no column %s in the record", rd->path, path);
    H5_TRY(did = H5Dopen2(rd->file, path, H5P_DEFAULT), rd->path, path);
    H5_TRY(space = H5Dget_space(did), rd->path, path);
    H5_TRY(nd = H5Sget_simple_extent_ndims(space), rd->path, path);
    if (nd != 1) FAIL(ERR_FORMAT, "%s: column %s has %d dimensions, expected 1", rd->path, path, nd);
    H5_TRY(H5Sget_simple_extent_dims(space, &len, NULL), rd->path, path);
    if (len > (hsize_t)1 << 40) FAIL(ERR_FORMAT, "%s: column %s claims %llu rows", rd->path, path,
                                     (unsigned long long)len);
    buf = mem_alloc(len ? (size_t)len * sizeof *buf : sizeof *buf);
    if (!buf) FAIL(ERR_NOMEM, "%s: out of memory for %llu rows of %s", rd->path, (unsigned long long)len, path);
    if (len > 0) H5_TRY(H5Dread(did, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), rd->path, path);
    *data = buf;
    *n = (long)len;
    buf = NULL;
fail:
    mem_free(buf);
    h5_close(space);
    h5_close(did);
    return rc;
}

/* Whether an open group is a series: at least one member, all 1-D datasets with a "unit". */
static int h5_is_series(hid_t gid, const char *file, const char *group, bool *yes) {
    int rc = 0;
    hid_t oid = H5I_INVALID_HID, space = H5I_INVALID_HID;
    int n;
    *yes = false;
    TRY(h5_n_links(gid, file, group, &n));
    if (n < 1) goto fail;
    for (int i = 0; i < n; i++) {
        htri_t has_unit;
        int nd;
        H5_TRY(oid = H5Oopen_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)i, H5P_DEFAULT), file, group);
        if (H5Iget_type(oid) != H5I_DATASET) goto fail;
        H5_TRY(space = H5Dget_space(oid), file, group);
        H5_TRY(nd = H5Sget_simple_extent_ndims(space), file, group);
        H5_TRY(has_unit = H5Aexists(oid, "unit"), file, group);
        if (nd != 1 || !has_unit) goto fail;
        h5_close(space);
        h5_close(oid);
        space = oid = H5I_INVALID_HID;
    }
    *yes = true;
fail:
    h5_close(space);
    h5_close(oid);
    return rc;
}

/* Names of the groups directly under obj, in name order; only series when series_only. */
static int h5reader_list(H5Reader *rd, const char *obj, bool series_only, char ***out, int *n_out) {
    int rc = 0;
    hid_t gid = H5I_INVALID_HID, sub = H5I_INVALID_HID;
    char **names = NULL;
    int n_links = 0, n = 0;
    char name[H5REC_NAME_BYTES];
    bool exists;
    ASSERT(rd && obj && out && n_out);
    *out = NULL;
    *n_out = 0;
    TRY(h5_exists(rd->file, rd->path, obj, &exists));
    if (!exists) FAIL(ERR_FORMAT, "%s: no group %s in the record", rd->path, obj);
    H5_TRY(gid = H5Gopen2(rd->file, obj, H5P_DEFAULT), rd->path, obj);
    TRY(h5_n_links(gid, rd->path, obj, &n_links));
    names = mem_calloc(n_links > 0 ? (size_t)n_links : 1, sizeof *names);
    if (!names) FAIL(ERR_NOMEM, "%s: out of memory", rd->path);
    for (int i = 0; i < n_links; i++) {
        bool take = true;
        H5_TRY(sub = H5Oopen_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)i, H5P_DEFAULT),
               rd->path, obj);
        if (H5Iget_type(sub) != H5I_GROUP) take = false;
        TRY(h5_member_name(gid, H5_INDEX_NAME, i, rd->path, obj, name));
        if (take && series_only) TRY(h5_is_series(sub, rd->path, name, &take));
        h5_close(sub);
        sub = H5I_INVALID_HID;
        if (!take) continue;
        names[n] = mem_strdup(name);
        if (!names[n]) FAIL(ERR_NOMEM, "%s: out of memory", rd->path);
        n++;
    }
    *out = names;
    *n_out = n;
    names = NULL;
fail:
    h5reader_free_names(names, n);
    h5_close(sub);
    h5_close(gid);
    return rc;
}

int h5reader_list_series(H5Reader *rd, const char *obj, char ***groups, int *n) {
    return h5reader_list(rd, obj, true, groups, n);
}

int h5reader_list_groups(H5Reader *rd, const char *obj, char ***groups, int *n) {
    return h5reader_list(rd, obj, false, groups, n);
}
