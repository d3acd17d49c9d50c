/* err.h: error codes, the TRY macro family and ASSERT.
 * Fallible functions return int: 0 ok, negative ERR_* on failure. Each TRY macro logs file:line, the
 * call text and the library's own message, sets `rc` and jumps to the function's `fail:` label, so a
 * function using them declares `int rc = 0;` and ends with one cleanup label. */
#ifndef RESPROP_ERR_H
#define RESPROP_ERR_H

#include <oneapi/dnnl/dnnl.h>

enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,
    ERR_IO = -2,
    ERR_FORMAT = -3,
    ERR_CONFIG = -4,
    ERR_DNNL = -5,
    ERR_HDF5 = -6,
    ERR_SHAPE = -7,
    ERR_NUMERIC = -8, /* NaN/Inf loss or similar: the run failed */
};

/* Human-readable name of an ERR_* code; never NULL. */
const char *err_str(int rc);

/* Name of a oneDNN status ("dnnl_invalid_arguments"); never NULL. */
const char *err_dnnl_str(dnnl_status_t st);

/* Logs "file:line: call failed: msg" at error level. Used by the macros below. */
void err_report(const char *file, int line, const char *call, const char *msg);

/* Run a call returning our int convention; on failure keep its code and jump to fail. */
#define TRY(call)                                                                  \
    do {                                                                           \
        int try_rc_ = (call);                                                      \
        if (try_rc_ < 0) {                                                         \
            rc = try_rc_;                                                          \
            goto fail;                                                             \
        }                                                                          \
    } while (0)

/* Run a oneDNN call; on failure log it with its status and return ERR_DNNL through fail. */
#define DNNL_TRY(call)                                                             \
    do {                                                                           \
        dnnl_status_t dnnl_st_ = (call);                                           \
        if (dnnl_st_ != dnnl_success) {                                            \
            err_report(__FILE__, __LINE__, #call, err_dnnl_str(dnnl_st_));         \
            rc = ERR_DNNL;                                                         \
            goto fail;                                                             \
        }                                                                          \
    } while (0)

/* Fail with a code and a formatted message naming what was expected. */
#define FAIL(code, ...)                                                            \
    do {                                                                           \
        log_msg(LOG_ERROR, __VA_ARGS__);                                           \
        rc = (code);                                                               \
        goto fail;                                                                 \
    } while (0)

/* A broken internal invariant: file:line:expr and abort, in release builds too. */
void err_assert_fail(const char *file, int line, const char *expr);
#define ASSERT(expr)                                                               \
    do {                                                                           \
        if (!(expr)) err_assert_fail(__FILE__, __LINE__, #expr);                   \
    } while (0)

#endif
