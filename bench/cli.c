#include "bench/cli.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "core/log.h"

int cli_parse_input(const char *text, Dims4 *d) {
    int c, h, w;
    char tail;
    if (!text || sscanf(text, "%dx%dx%d%c", &c, &h, &w, &tail) != 3 || c < 1 || h < 1 || w < 1 || c > 4096 ||
        h > 8192 || w > 8192) {
        log_msg(LOG_ERROR, "--input '%s': expected CxHxW with positive sizes, e.g. 3x32x32", text ? text : "");
        return -1;
    }
    *d = (Dims4){1, c, h, w};
    return 0;
}

int cli_parse_int(const char *opt, const char *text, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        log_msg(LOG_ERROR, "%s '%s': expected an integer in [%ld, %ld]", opt, text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *opt, const char *text, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min || v > max) {
        log_msg(LOG_ERROR, "%s '%s': expected a number in [%g, %g]", opt, text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

void cli_set_threads(int threads) {
    if (threads > 0) omp_set_num_threads(threads);
    openblas_set_num_threads(1);
}

void cli_find_resource(const char *rel, char *out, size_t cap) {
    snprintf(out, cap, "%s", rel);
    if (access(rel, R_OK) == 0) return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    char cand[PATH_MAX + 64];
    int w = snprintf(cand, sizeof cand, "%s/../%s", dirname(exe), rel);
    if (w > 0 && (size_t)w < sizeof cand && (size_t)w < cap && access(cand, R_OK) == 0) memcpy(out, cand, (size_t)w + 1);
}
