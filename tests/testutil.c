#include "tests/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"

#define TU_REL(A, B)                                                                               \
    double maxd = 0, maxb = 0;                                                                     \
    size_t wi = 0;                                                                                 \
    for (size_t i = 0; i < n; i++) {                                                               \
        double d = fabs((double)(A)[i] - (double)(B)[i]);                                          \
        if (!(d <= maxd)) { /* NaN counts as worst */                                              \
            maxd = isnan(d) ? INFINITY : d;                                                        \
            wi = i;                                                                                \
        }                                                                                          \
        double bb = fabs((double)(B)[i]);                                                          \
        if (bb > maxb) maxb = bb;                                                                  \
    }                                                                                              \
    if (worst) *worst = wi;                                                                        \
    return maxd / (maxb > 1e-30 ? maxb : 1e-30);

double tu_rel_err_f(const float *a, const float *b, size_t n, size_t *worst) { TU_REL(a, b) }
double tu_rel_err_d(const double *a, const double *b, size_t n, size_t *worst) { TU_REL(a, b) }
double tu_rel_err_fd(const float *a, const double *b, size_t n, size_t *worst) { TU_REL(a, b) }

void tu_assert_close_fd(const char *what, const float *a, const double *b, size_t n, double tol,
                        const char *file, int line) {
    size_t wi = 0;
    double e = tu_rel_err_fd(a, b, n, &wi);
    if (!(e <= tol)) {
        print_error("%s: norm-relative error %.3g > %.3g at index %zu (got %.9g, want %.9g)\n", what, e,
                    tol, wi, n ? (double)a[wi] : 0.0, n ? b[wi] : 0.0);
        _fail(file, line);
    }
}

void tu_assert_close_d(const char *what, const double *a, const double *b, size_t n, double tol,
                       const char *file, int line) {
    size_t wi = 0;
    double e = tu_rel_err_d(a, b, n, &wi);
    if (!(e <= tol)) {
        print_error("%s: norm-relative error %.3g > %.3g at index %zu (got %.12g, want %.12g)\n", what,
                    e, tol, wi, n ? a[wi] : 0.0, n ? b[wi] : 0.0);
        _fail(file, line);
    }
}

/* ---- stderr capture ---------------------------------------------------------------------------- */

void tu_capture_begin(TuCapture *c) {
    c->tmp = NULL;
    c->text[0] = '\0';
    fflush(stderr);
    FILE *tmp = tmpfile();
    if (!tmp) fail_msg("tmpfile for the stderr capture: %s", strerror(errno));
    int saved = dup(STDERR_FILENO);
    if (saved < 0) {
        fclose(tmp);
        fail_msg("dup(2) for the stderr capture: %s", strerror(errno));
    }
    if (dup2(fileno(tmp), STDERR_FILENO) < 0) {
        close(saved);
        fclose(tmp);
        fail_msg("dup2 for the stderr capture: %s", strerror(errno));
    }
    c->tmp = tmp;
    c->saved_fd = saved;
}

const char *tu_capture_end(TuCapture *c) {
    assert_non_null(c->tmp); /* stderr was not redirected: nothing to restore */
    fflush(stderr);
    bool restored = dup2(c->saved_fd, STDERR_FILENO) >= 0;
    close(c->saved_fd);
    rewind(c->tmp);
    size_t n = fread(c->text, 1, sizeof c->text - 1, c->tmp);
    c->text[n] = '\0';
    fclose(c->tmp);
    c->tmp = NULL;
    assert_true(restored);
    return c->text;
}

const char *tu_capture_end_echo(TuCapture *c) {
    const char *text = tu_capture_end(c);
    fputs(text, stderr);
    return text;
}

void tu_capture_abort(TuCapture *c) {
    if (!c || !c->tmp) return;
    fflush(stderr);
    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    fclose(c->tmp);
    c->tmp = NULL;
}

void tu_assert_log_has(const char *text, const char *needle, const char *file, int line) {
    if (needle && !strstr(text, needle)) {
        print_error("expected \"%s\" in the log, got:\n%s\n", needle, text);
        _fail(file, line);
    }
}

void tu_assert_log_lacks(const char *text, const char *needle, const char *file, int line) {
    if (needle && strstr(text, needle)) {
        print_error("did not expect \"%s\" in the log, got:\n%s\n", needle, text);
        _fail(file, line);
    }
}

/* ---- temporary files and directories ----------------------------------------------------------- */

int tu_mkdtemp(char *dir, size_t cap, const char *prefix) {
    int w = snprintf(dir, cap, "/tmp/%s.XXXXXX", prefix);
    if (w < 0 || (size_t)w >= cap) return -1;
    return mkdtemp(dir) ? 0 : -1;
}

int tu_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            char sub[4096];
            while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                int w = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                if (w >= 0 && (size_t)w < sizeof sub) tu_rmtree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        remove(path);
    }
    return lstat(path, &st) != 0 && errno == ENOENT ? 0 : -1;
}

void tu_write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s: %s", path, strerror(errno));
    if (n) assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

float *tu_falloc(size_t n) {
    float *p = mem_calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

double *tu_dalloc(size_t n) {
    double *p = mem_calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}
