#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>

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
