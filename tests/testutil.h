/* testutil.h: shared helpers for the cmocka tests. Include after <cmocka.h>'s prerequisites. */
#ifndef RESPROP_TESTUTIL_H
#define RESPROP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* ---- stderr capture ----------------------------------------------------------------------------
 * Between tu_capture_begin and tu_capture_end, fd 2 goes to an anonymous temporary file; end restores
 * it before it asserts anything, so cmocka's own messages reach the real stderr. The caller owns the
 * TuCapture (stack or fixture); it holds no memory of core/mem.h (the FILE is libc's and closed by
 * end), so mem_live_bytes checks are not disturbed. Zero-initialised (a calloc'ed fixture) it is
 * idle; begin ignores whatever it held before. */
#define TU_CAPTURE_BYTES 16384

typedef struct {
    FILE *tmp;                   /* the temporary file while capturing, else NULL */
    int saved_fd;                /* the original fd 2 while capturing */
    char text[TU_CAPTURE_BYTES]; /* what was captured, NUL-terminated; cut at TU_CAPTURE_BYTES - 1 */
} TuCapture;

/* Flushes stderr and redirects fd 2; fails the test when that is impossible (stderr then untouched). */
void tu_capture_begin(TuCapture *c);
/* Restores stderr and returns c->text (valid until the next tu_capture_begin on c). */
const char *tu_capture_end(TuCapture *c);
/* The same, then writes the captured text to the restored stderr so it stays in the test output. */
const char *tu_capture_end_echo(TuCapture *c);
/* For teardown: restores stderr when a test failed between begin and end; no-op when idle. */
void tu_capture_abort(TuCapture *c);

/* Runs stmt with stderr captured into *cap (then cap->text): TU_CAPTURE(&cap, rc = f(x)). */
#define TU_CAPTURE(cap, stmt)                                                                      \
    do {                                                                                           \
        tu_capture_begin(cap);                                                                     \
        stmt;                                                                                      \
        tu_capture_end(cap);                                                                       \
    } while (0)
#define TU_CAPTURE_ECHO(cap, stmt)                                                                 \
    do {                                                                                           \
        tu_capture_begin(cap);                                                                     \
        stmt;                                                                                      \
        tu_capture_end_echo(cap);                                                                  \
    } while (0)

/* Fail the test (at the caller's file:line, printing the whole log) when text lacks / holds needle.
 * A NULL needle checks nothing, for optional needles in table-driven checks. */
void tu_assert_log_has(const char *text, const char *needle, const char *file, int line);
void tu_assert_log_lacks(const char *text, const char *needle, const char *file, int line);
#define assert_log_has(text, needle) tu_assert_log_has(text, needle, __FILE__, __LINE__)
#define assert_log_lacks(text, needle) tu_assert_log_lacks(text, needle, __FILE__, __LINE__)

/* ---- temporary files and directories ----------------------------------------------------------- */

/* Creates a fresh directory /tmp/<prefix>.XXXXXX and writes its path into dir (cap bytes).
 * Returns 0, or -1 when it does not fit or cannot be created (for fixtures, which return int). */
int tu_mkdtemp(char *dir, size_t cap, const char *prefix);
/* Removes path and, for a directory, everything below it (links are removed, not followed), like
 * rm -rf. Returns 0 when path no longer exists afterwards (also when it never did), else -1. */
int tu_rmtree(const char *path);
/* Writes n bytes to path (created or truncated); fails the test on any error. */
void tu_write_file(const char *path, const void *bytes, size_t n);
/* Zeroed arrays of n floats / doubles (at least one element) from core/mem.h; fail the test when out of
 * memory. Free with mem_free. */
float *tu_falloc(size_t n);
double *tu_dalloc(size_t n);

#endif
