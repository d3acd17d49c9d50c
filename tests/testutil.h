/* testutil.h: shared helpers for the cmocka tests. Include after <cmocka.h>'s prerequisites. */
#ifndef RESPROP_TESTUTIL_H
#define RESPROP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Norm-relative difference max|a-b| / max|b| over n elements (max|b| floored at 1e-30);
 * *worst receives the index of the largest |a-b| when not NULL. */
double tu_rel_err_f(const float *a, const float *b, size_t n, size_t *worst);
double tu_rel_err_d(const double *a, const double *b, size_t n, size_t *worst);
double tu_rel_err_fd(const float *a, const double *b, size_t n, size_t *worst);

/* Fails the test, printing what, the index and the values, when the norm-relative error exceeds tol. */
void tu_assert_close_fd(const char *what, const float *a, const double *b, size_t n, double tol,
                        const char *file, int line);
void tu_assert_close_d(const char *what, const double *a, const double *b, size_t n, double tol,
                       const char *file, int line);
#define assert_close_fd(what, a, b, n, tol) tu_assert_close_fd(what, a, b, n, tol, __FILE__, __LINE__)
#define assert_close_d(what, a, b, n, tol) tu_assert_close_d(what, a, b, n, tol, __FILE__, __LINE__)

#endif
