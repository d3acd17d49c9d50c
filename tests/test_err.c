/* test_err.c: the error machinery of core/err.h: DNNL_TRY turns a failing oneDNN call into ERR_DNNL
 * through the fail: label and logs file:line, the call text and the status name; TRY propagates a
 * negative code and still runs the cleanup; err_str/err_dnnl_str name every code distinctly; and a
 * oneDNN refusal deep inside layer_create (and net_create) comes back as ERR_DNNL with nothing
 * built and nothing leaked.
 *
 * Logged lines are checked by redirecting stderr (fd 2) into a temporary file for the duration of
 * the call and restoring it before any assertion, so cmocka's own messages always reach the real
 * stderr. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/layer.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/net.h"
#include "core/rng.h"
#include "tests/testutil.h"

static int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

/* ---- (a) DNNL_TRY around a failing oneDNN call ------------------------------------------------- */

/* Each helper records the line of its DNNL_TRY, counts how often it reached its cleanup and whether
 * it ran past the failing call. The call texts are written with single spaces so that the
 * stringified `#call` is exactly the text below. */
typedef struct {
    int line;
    int n_cleanups;
    bool reached;
} Probe;

#define BAD_NDIMS_CALL "dnnl_memory_desc_init_by_tag(&md, -1, dims, dnnl_f32, dnnl_nchw)"
static int bad_ndims(Probe *p) {
    int rc = 0;
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {2, 3, 4, 5};
    p->line = __LINE__ + 1;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md, -1, dims, dnnl_f32, dnnl_nchw));
    p->reached = true;
fail:
    p->n_cleanups++;
    return rc;
}

#define BAD_TAG_CALL "dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_nchw)"
static int bad_tag(Probe *p) {
    int rc = 0;
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {2, 3, 4, 5};
    p->line = __LINE__ + 1;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_nchw));
    p->reached = true;
fail:
    p->n_cleanups++;
    return rc;
}

/* A stand-in library call returning a chosen status, counting its evaluations. */
static dnnl_status_t fake_status(dnnl_status_t st, int *calls) {
    (*calls)++;
    return st;
}

#define FAKE_CALL "fake_status(st, &calls)"
static int fake(Probe *p, dnnl_status_t st, int *out_calls) {
    int rc = 0, calls = 0;
    p->line = __LINE__ + 1;
    DNNL_TRY(fake_status(st, &calls));
    p->reached = true;
fail:
    p->n_cleanups++;
    *out_calls = calls;
    return rc;
}

/* Checks the captured log of one failed DNNL_TRY: exactly one error-level line that ends with
 * "<file>:<line>: <call> failed: <status name>". */
static void check_dnnl_log(const char *text, int line, const char *call, const char *status) {
    char want[512];
    snprintf(want, sizeof want, "%s:%d: %s failed: %s\n", __FILE__, line, call, status);
    if (count_lines(text) != 1) fail_msg("expected one logged line, got:\n%s", text);
    assert_log_has(text, "error");
    assert_log_has(text, want);
    size_t n = strlen(text), k = strlen(want);
    if (n < k || strcmp(text + n - k, want) != 0) fail_msg("expected the line to end with \"%s\", got:\n%s", want, text);
}

static void test_dnnl_try_invalid_ndims(void **state) {
    /* the call itself fails with invalid arguments (checked directly, not through the macro) */
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {2, 3, 4, 5};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&md, -1, dims, dnnl_f32, dnnl_nchw);
    assert_int_equal(st, dnnl_invalid_arguments);
    assert_string_equal(err_dnnl_str(st), "dnnl_invalid_arguments");

    size_t base = mem_live_bytes();
    Probe p = {0};
    TuCapture cap;
    tu_capture_begin(&cap);
    int rc = bad_ndims(&p);
    const char *text = tu_capture_end(&cap);
    assert_int_equal(rc, ERR_DNNL);
    assert_false(p.reached);
    assert_int_equal(p.n_cleanups, 1);
    check_dnnl_log(text, p.line, BAD_NDIMS_CALL, "dnnl_invalid_arguments");
    assert_int_equal(mem_live_bytes(), base);
}

static void test_dnnl_try_invalid_format(void **state) {
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {2, 3, 4, 5};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_nchw); /* 4D tag, 2 dims */
    assert_int_not_equal(st, dnnl_success);

    Probe p = {0};
    TuCapture cap;
    tu_capture_begin(&cap);
    int rc = bad_tag(&p);
    const char *text = tu_capture_end(&cap);
    assert_int_equal(rc, ERR_DNNL);
    assert_false(p.reached);
    assert_int_equal(p.n_cleanups, 1);
    check_dnnl_log(text, p.line, BAD_TAG_CALL, err_dnnl_str(st));
}

/* Every failing status maps to ERR_DNNL with its own name in the log; the call is evaluated once;
 * dnnl_success goes on past the macro without logging. */
static void test_dnnl_try_statuses(void **state) {
    static const struct {
        dnnl_status_t st;
        const char *name;
    } cases[] = {
        {dnnl_out_of_memory, "dnnl_out_of_memory"}, {dnnl_invalid_arguments, "dnnl_invalid_arguments"},
        {dnnl_unimplemented, "dnnl_unimplemented"}, {dnnl_iterator_ends, "dnnl_iterator_ends"},
        {dnnl_runtime_error, "dnnl_runtime_error"}, {dnnl_not_required, "dnnl_not_required"},
    };
    TuCapture cap;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Probe p = {0};
        int calls = 0;
        tu_capture_begin(&cap);
        int rc = fake(&p, cases[i].st, &calls);
        const char *text = tu_capture_end(&cap);
        assert_int_equal(rc, ERR_DNNL);
        assert_int_equal(calls, 1);
        assert_false(p.reached);
        assert_int_equal(p.n_cleanups, 1);
        check_dnnl_log(text, p.line, FAKE_CALL, cases[i].name);
    }
    /* an out-of-range status still fails and logs a (non-empty) name */
    Probe p = {0};
    int calls = 0;
    tu_capture_begin(&cap);
    int rc = fake(&p, (dnnl_status_t)12345, &calls);
    const char *text = tu_capture_end(&cap);
    assert_int_equal(rc, ERR_DNNL);
    assert_int_equal(calls, 1);
    check_dnnl_log(text, p.line, FAKE_CALL, err_dnnl_str((dnnl_status_t)12345));

    Probe ok = {0};
    tu_capture_begin(&cap);
    rc = fake(&ok, dnnl_success, &calls);
    text = tu_capture_end(&cap);
    assert_int_equal(rc, 0);
    assert_int_equal(calls, 1);
    assert_true(ok.reached);
    assert_int_equal(ok.n_cleanups, 1);
    assert_string_equal(text, "");
}

/* ---- (b) TRY ----------------------------------------------------------------------------------- */

static int step_rc(int rc_in, int *calls) {
    (*calls)++;
    return rc_in;
}

/* Allocates, runs two steps that succeed (0 and a positive value: not a failure), then `code`. */
static int try_chain(int code, Probe *p, int *calls) {
    int rc = 0;
    void *buf = mem_alloc(256);
    if (!buf) return ERR_NOMEM;
    TRY(step_rc(0, calls));
    TRY(step_rc(1, calls));
    TRY(step_rc(code, calls));
    p->reached = true;
fail:
    mem_free(buf);
    p->n_cleanups++;
    return rc;
}

/* A caller of a DNNL_TRY function: ERR_DNNL propagates through TRY unchanged. */
static int nested(Probe *inner, Probe *outer) {
    int rc = 0;
    void *buf = mem_alloc(64);
    if (!buf) return ERR_NOMEM;
    TRY(bad_ndims(inner));
    outer->reached = true;
fail:
    mem_free(buf);
    outer->n_cleanups++;
    return rc;
}

static const int all_codes[] = {ERR_OK,     ERR_NOMEM, ERR_IO,    ERR_FORMAT, ERR_CONFIG,
                                ERR_DNNL,   ERR_HDF5,  ERR_SHAPE, ERR_NUMERIC};
#define N_CODES (sizeof all_codes / sizeof all_codes[0])

static void test_try_propagates_and_cleans_up(void **state) {
    size_t base = mem_live_bytes();
    for (size_t i = 0; i < N_CODES; i++) {
        int code = all_codes[i];
        Probe p = {0};
        int calls = 0;
        int rc = try_chain(code, &p, &calls);
        assert_int_equal(rc, code);
        assert_int_equal(calls, 3); /* each call evaluated exactly once */
        assert_int_equal(p.reached, code == 0);
        assert_int_equal(p.n_cleanups, 1);
        assert_int_equal(mem_live_bytes(), base);
    }
    /* any negative value is a failure, not only the named codes */
    Probe p = {0};
    int calls = 0;
    assert_int_equal(try_chain(-1000, &p, &calls), -1000);
    assert_false(p.reached);
    assert_int_equal(p.n_cleanups, 1);

    Probe inner = {0}, outer = {0};
    TuCapture cap;
    tu_capture_begin(&cap);
    int rc = nested(&inner, &outer);
    const char *text = tu_capture_end(&cap);
    assert_int_equal(rc, ERR_DNNL);
    assert_false(inner.reached);
    assert_false(outer.reached);
    assert_int_equal(inner.n_cleanups, 1);
    assert_int_equal(outer.n_cleanups, 1);
    check_dnnl_log(text, inner.line, BAD_NDIMS_CALL, "dnnl_invalid_arguments");
    assert_int_equal(mem_live_bytes(), base);
}

/* ---- (c) names --------------------------------------------------------------------------------- */

static bool is_named_code(int rc) {
    for (size_t i = 0; i < N_CODES; i++)
        if (all_codes[i] == rc) return true;
    return false;
}

static void test_err_str_distinct(void **state) {
    const char *unknown = err_str(-9999);
    assert_non_null(unknown);
    assert_true(unknown[0] != '\0');
    for (size_t i = 0; i < N_CODES; i++) {
        const char *s = err_str(all_codes[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
        assert_string_not_equal(s, unknown);
        for (size_t j = 0; j < i; j++) assert_string_not_equal(s, err_str(all_codes[j]));
    }
    /* unknown codes (including ones next to the table and the extremes) are the unknown name, so a
     * code added to err.h without a name here or in err_str makes this fail */
    const int odd[] = {1, 2, -9, -10, 100, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) assert_string_equal(err_str(odd[i]), unknown);
    for (int rc = -64; rc <= 64; rc++) {
        const char *s = err_str(rc);
        assert_non_null(s);
        if (!is_named_code(rc) && strcmp(s, unknown) != 0)
            fail_msg("err_str(%d) = \"%s\": a named code missing from this test's table", rc, s);
    }
}

static void test_err_dnnl_str_distinct(void **state) {
    const dnnl_status_t all[] = {dnnl_success,       dnnl_out_of_memory, dnnl_invalid_arguments,
                                 dnnl_unimplemented, dnnl_iterator_ends, dnnl_runtime_error,
                                 dnnl_not_required};
    enum { N = sizeof all / sizeof all[0] };
    const char *unknown = err_dnnl_str((dnnl_status_t)12345);
    assert_non_null(unknown);
    for (int i = 0; i < N; i++) {
        const char *s = err_dnnl_str(all[i]);
        assert_non_null(s);
        assert_true(strncmp(s, "dnnl_", 5) == 0);
        assert_string_not_equal(s, unknown);
        for (int j = 0; j < i; j++) assert_string_not_equal(s, err_dnnl_str(all[j]));
    }
}

/* ---- (d) a oneDNN refusal deep inside layer creation ------------------------------------------- */

/* Valid shapes on a context whose engine was never created: oneDNN refuses the first call that needs
 * the engine inside layer_create; the error must come back as ERR_DNNL with *out NULL, the
 * DNNL_TRY line logged from core/layer.c, and nothing leaked. (Zero-channel inputs, which oneDNN
 * would also refuse, are caught earlier by layer_out_dims as ERR_SHAPE: checked here too.) */
static void test_layer_create_dnnl_refusal(void **state) {
    static const struct {
        LayerSpec s;
        Dims4 in;
    } cases[] = {
        {{.kind = LAYER_CONV, .name = "conv_noengine", .in = {0, -1}, .out_c = 4, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
         {2, 3, 6, 6}},
        {{.kind = LAYER_CONV, .name = "conv_bias_noengine", .in = {0, -1}, .out_c = 8, .kh = 1, .kw = 1, .stride = 2, .bias = true},
         {1, 2, 4, 4}},
        {{.kind = LAYER_FC, .name = "fc_noengine", .in = {0, -1}, .out_c = 3, .bias = true}, {2, 5, 1, 1}},
    };
    size_t base = mem_live_bytes();
    DnnlCtx ctx = {0}; /* no engine: oneDNN must refuse */
    TuCapture cap;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Dims4 in[2] = {cases[i].in, {0, 0, 0, 0}}, o;
        assert_int_equal(layer_out_dims(&cases[i].s, in, &o), 0); /* the shapes themselves fit */
        Dims4 zero_c[2] = {{2, 0, 6, 6}, {0, 0, 0, 0}};
        tu_capture_begin(&cap);
        int zrc = layer_out_dims(&cases[i].s, zero_c, &o);
        tu_capture_end(&cap);
        assert_int_equal(zrc, ERR_SHAPE);
        size_t before = mem_live_bytes();
        Layer *l = (Layer *)&o; /* must be reset to NULL */
        tu_capture_begin(&cap);
        int rc = layer_create(&l, &cases[i].s, in, &ctx);
        const char *text = tu_capture_end(&cap);
        assert_int_equal(rc, ERR_DNNL);
        assert_null(l);
        assert_int_equal(mem_live_bytes(), before);
        assert_log_has(text, "core/layer.c:");
        assert_log_has(text, " failed: dnnl_invalid_arguments");
        assert_log_has(text, cases[i].s.name); /* layer_create names the layer */
        assert_log_has(text, err_str(ERR_DNNL));
    }
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

/* The same refusal through net_create: ERR_DNNL, *out NULL, the layers built before it destroyed. */
static void test_net_create_dnnl_refusal(void **state) {
    LayerSpec layers[] = {
        {.kind = LAYER_INPUT, .name = "input", .in = {-1, -1}},
        {.kind = LAYER_RELU, .name = "relu", .in = {0, -1}},
        {.kind = LAYER_CONV, .name = "conv", .in = {1, -1}, .out_c = 4, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
        {.kind = LAYER_GAP, .name = "gap", .in = {2, -1}},
        {.kind = LAYER_FC, .name = "fc", .in = {3, -1}, .out_c = 2, .bias = true},
        {.kind = LAYER_LOSS, .name = "loss", .in = {4, -1}},
    };
    ModelSpec m = {.name = "no_engine", .input = {1, 3, 6, 6}, .classes = 2, .n_layers = 6, .layers = layers};
    size_t base = mem_live_bytes();
    DnnlCtx ctx = {0}; /* no engine: oneDNN must refuse */
    Rng rng;
    rng_init(&rng, 1);
    Net *net = (Net *)&rng; /* must be reset to NULL */
    TuCapture cap;
    tu_capture_begin(&cap);
    int rc = net_create(&net, &m, 2, &ctx, &rng);
    const char *text = tu_capture_end(&cap);
    assert_int_equal(rc, ERR_DNNL);
    assert_null(net);
    assert_log_has(text, "core/layer.c:");
    assert_log_has(text, "relu");
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnnl_try_invalid_ndims),
        cmocka_unit_test(test_dnnl_try_invalid_format),
        cmocka_unit_test(test_dnnl_try_statuses),
        cmocka_unit_test(test_try_propagates_and_cleans_up),
        cmocka_unit_test(test_err_str_distinct),
        cmocka_unit_test(test_err_dnnl_str_distinct),
        cmocka_unit_test(test_layer_create_dnnl_refusal),
        cmocka_unit_test(test_net_create_dnnl_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
