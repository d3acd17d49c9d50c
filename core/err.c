#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"

const char *err_str(int rc) {
    switch (rc) {
    case ERR_OK: return "ok";
    case ERR_NOMEM: return "out of memory";
    case ERR_IO: return "I/O error";
    case ERR_FORMAT: return "bad file format";
    case ERR_CONFIG: return "bad configuration";
    case ERR_DNNL: return "oneDNN error";
    case ERR_HDF5: return "HDF5 error";
    case ERR_SHAPE: return "shape mismatch";
    case ERR_NUMERIC: return "non-finite value";
    default: return "unknown error";
    }
}

const char *err_dnnl_str(dnnl_status_t st) {
    switch (st) {
    case dnnl_success: return "dnnl_success";
    case dnnl_out_of_memory: return "dnnl_out_of_memory";
    case dnnl_invalid_arguments: return "dnnl_invalid_arguments";
    case dnnl_unimplemented: return "dnnl_unimplemented";
    case dnnl_iterator_ends: return "dnnl_iterator_ends";
    case dnnl_runtime_error: return "dnnl_runtime_error";
    case dnnl_not_required: return "dnnl_not_required";
    default: return "dnnl_unknown_status";
    }
}

void err_report(const char *file, int line, const char *call, const char *msg) {
    log_msg(LOG_ERROR, "%s:%d: %s failed: %s", file, line, call, msg);
}

void err_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
