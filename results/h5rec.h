/* h5rec.h: the HDF5 run record. One file per run, written as NAME.h5.part while the run goes
 * (appended and flushed at each epoch end) and renamed to NAME.h5 when it completes, so a complete
 * record exists under NAME.h5 and nowhere else. A failed run keeps its .part with status "failed"
 * and the message. Plain HDF5 only (attributes, 1-D/N-D datasets), so h5dump and h5py read it.
 *
 * Series ("tables"): a group whose members are 1-D extendible datasets of equal length, one per
 * column, each with a "unit" attribute; rows are appended. results/SCHEMA.md lists every path.
 *
 * Every int function returns 0 or a negative ERR_* and logs why, naming the file: ERR_HDF5 for a
 * failed HDF5 call, ERR_IO for files that are missing or in the way, ERR_FORMAT for a record
 * without the expected object or shape, ERR_CONFIG for bad arguments (names, counts, sizes). */
#ifndef RESPROP_H5REC_H
#define RESPROP_H5REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H5REC_SCHEMA_VERSION 1

typedef struct H5Rec H5Rec;

/* Creates final_path + ".part" (truncating an old .part) and sets schema_version, status
 * "running" and start_time (ISO-8601 UTC). ERR_IO if final_path already exists (a complete record
 * is never overwritten) or the file cannot be created. h5rec_create, h5rec_reopen and
 * h5reader_open switch off HDF5's own error printing (process-wide): failures are logged by this
 * module (the call, the record path, the object and HDF5's message) and returned as ERR_HDF5. */
int h5rec_create(H5Rec **out, const char *final_path);
/* Reopens final_path + ".part" for appending (resume); sets status "running" again and drops a
 * previous failure's status_message and end_time. ERR_IO if the .part does not exist or final_path
 * does (that run is complete). */
int h5rec_reopen(H5Rec **out, const char *final_path);

/* Attributes on an object path ("/", a group or a dataset; a missing path is created as a group,
 * parents included). An existing attribute of that name is replaced. Strings are stored
 * fixed-length, null-terminated; integers as int64, reals as float64; arrays as 1-D (n >= 1). */
int h5rec_attr_str(H5Rec *r, const char *obj, const char *name, const char *value);
int h5rec_attr_i64(H5Rec *r, const char *obj, const char *name, int64_t value);
int h5rec_attr_f64(H5Rec *r, const char *obj, const char *name, double value);
int h5rec_attr_i64_array(H5Rec *r, const char *obj, const char *name, const int64_t *v, int n);

/* Declares a series group with its columns and their units (idempotent: an existing group with
 * the same columns and units, in the same order, is kept, for resume; different ones are
 * ERR_FORMAT). Column names are non-empty and free of '/'. */
int h5rec_series(H5Rec *r, const char *group, int n_cols, const char *const *cols, const char *const *units);
/* Appends one row (n_cols values, in the declared order). Allocates nothing of ours. */
int h5rec_append(H5Rec *r, const char *group, const double *row);
/* Rows in a series (0 if absent). Columns of unequal length (an append cut short by a crash)
 * count as the shortest, with a warning; the next append or truncate evens them out. */
int h5rec_rows(H5Rec *r, const char *group, long *rows);
/* Cuts a series back to `rows` rows (resume from a checkpoint that predates the last rows).
 * ERR_CONFIG if rows < 0 or more than the series has; ERR_FORMAT if the series does not exist. */
int h5rec_truncate(H5Rec *r, const char *group, long rows);

/* A whole dataset at once (float32 or float64 or int64 data; dims in row-major order, 1..32 of
 * them); parent groups are created. An existing dataset of the same shape and type is overwritten
 * in place, any other one at that path replaced. */
int h5rec_write_f32(H5Rec *r, const char *path, int ndims, const uint64_t *dims, const float *data);
int h5rec_write_f64(H5Rec *r, const char *path, int ndims, const uint64_t *dims, const double *data);
int h5rec_write_i64(H5Rec *r, const char *path, int ndims, const uint64_t *dims, const int64_t *data);

/* Flushes everything to disk (the epoch boundary). */
int h5rec_flush(H5Rec *r);
/* Sets status "complete", the end time, closes, fsyncs and renames .part -> final. Frees r, also
 * on failure (then the record stays at the .part, and the log says so). */
int h5rec_finish(H5Rec *r);
/* Sets status "failed", status_message and end_time, closes, leaves the .part. Frees r. Accepts
 * NULL; problems are logged (there is nothing left to return them to). */
void h5rec_fail(H5Rec *r, const char *message);
/* Closes without changing status (the run was interrupted and may resume). Accepts NULL. */
void h5rec_close(H5Rec *r);

/* Reading (tables, export, tests): a series' column names and a column's values. Opens any
 * record, complete or .part (a .part still open by a running process needs
 * HDF5_USE_FILE_LOCKING=FALSE in the reader's environment). A missing file is ERR_IO, a file that
 * is not HDF5 ERR_FORMAT, a damaged one ERR_HDF5; every message names the file. */
typedef struct H5Reader H5Reader;
int h5reader_open(H5Reader **out, const char *path);
void h5reader_close(H5Reader *rd);
/* *yes: whether object obj exists in the record and, when attr is not NULL, carries that
 * attribute. Absence is not an error and logs nothing (for optional attributes and groups). */
int h5reader_has(H5Reader *rd, const char *obj, const char *attr, bool *yes);
/* A string attribute into buf[cap]; ERR_FORMAT if absent, not a string or longer than cap - 1. */
int h5reader_attr_str(H5Reader *rd, const char *obj, const char *name, char *buf, size_t cap);
/* A scalar integer or real attribute as a double. */
int h5reader_attr_f64(H5Reader *rd, const char *obj, const char *name, double *v);
/* Columns of a series group in their declared order; names are allocated through mem.h into
 * *cols (free with h5reader_free_names). */
int h5reader_series_cols(H5Reader *rd, const char *group, char ***cols, int *n_cols);
void h5reader_free_names(char **names, int n);
/* A column as doubles (*data allocated through mem.h, free with mem_free; *n rows). Columns of
 * one series may differ in length after a crash: use the shortest. */
int h5reader_column(H5Reader *rd, const char *group, const char *col, double **data, long *n);
/* The groups directly under obj that are series (for export): names relative to obj, in name
 * order, allocated like h5reader_series_cols. A series is a group with at least one member, all
 * of them 1-D datasets with a "unit" attribute. */
int h5reader_list_series(H5Reader *rd, const char *obj, char ***groups, int *n);
/* All groups directly under obj (series or not), same form: lets export and tables walk nested
 * records ("/layers/003_conv1/..."). */
int h5reader_list_groups(H5Reader *rd, const char *obj, char ***groups, int *n);

#endif
