/* test_config.c: the table-driven configuration (core/config.h) over the run table
 * (core/runconfig.h): defaults; config_set of every type with inclusive bounds, NaN/Inf, bool
 * spellings and choices; unknown keys with a suggestion in the message; INI files (top level, [run],
 * [scheme.NAME], comments, syntax errors and bad values with file:line, missing files); precedence
 * defaults < file < command line; the command-line forms; config_to_text round trips; the generated
 * help. Every test runs on a fixture allocated through core/mem.h and checks that nothing leaks.
 *
 * Logged lines are checked by redirecting stderr (fd 2) into a temporary file for the duration of
 * the call and restoring it before any assertion, so cmocka's own messages reach the real stderr. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/runconfig.h"
#include "core/sparse.h"
#include "tests/testutil.h"

#define TEXT_CAP 32768
#define MAX_FILES 8

/* ---- fixture: two configs, two extras, a temp directory for INI files -------------------------- */

typedef struct {
    RunConfig a, b;
    CfgExtra ea, eb;
    char dir[64];               /* removed with its files by fx_teardown */
    char files[MAX_FILES][96];  /* paths handed out by fx_file */
    int n_files;
    TuCapture cap;              /* stderr of the last QUIET */
    const char *log;            /* cap.text */
    char text[TEXT_CAP];
} Fx;

static int fx_setup(void **state) {
    Fx *fx = mem_calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->log = fx->cap.text;
    if (config_defaults(&runconfig_table, &fx->a) != 0) return -1;
    if (config_defaults(&runconfig_table, &fx->b) != 0) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_config") != 0) {
        mem_free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    Fx *fx = *state;
    int rc = 0;
    if (fx) {
        tu_capture_abort(&fx->cap);
        rc = tu_rmtree(fx->dir);
    }
    mem_free(fx);
    return rc == 0 && mem_live_bytes() == 0 ? 0 : -1;
}

/* Writes text to a new file in the fixture's directory and returns its path (owned by the fixture). */
static const char *fx_file(Fx *fx, const char *text) {
    assert_true(fx->n_files < MAX_FILES);
    char *path = fx->files[fx->n_files];
    snprintf(path, sizeof fx->files[0], "%s/%d.ini", fx->dir, fx->n_files);
    fx->n_files++;
    tu_write_file(path, text, strlen(text));
    return path;
}

/* rc = call, with everything it logs captured into fx->log. */
#define QUIET(rc, call) TU_CAPTURE(&fx->cap, (rc) = (call))

/* Sets key=value on fx->a; expects rc. */
static int fx_set(Fx *fx, const char *key, const char *value) {
    int rc;
    QUIET(rc, config_set(&runconfig_table, &fx->a, &fx->ea, key, value, "test"));
    return rc;
}

static int fx_args(Fx *fx, char **argv, int argc, bool *help) {
    int rc;
    QUIET(rc, config_parse_args(&runconfig_table, &fx->a, &fx->ea, argc, argv, 1, help));
    return rc;
}

static int fx_load(Fx *fx, const char *path) {
    int rc;
    QUIET(rc, config_load_ini(&runconfig_table, &fx->a, &fx->ea, path));
    return rc;
}

static void assert_extra(const CfgExtra *e, const char *key, const char *value) {
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->key[i], key) == 0) {
            assert_string_equal(e->value[i], value);
            return;
        }
    fail_msg("extra key '%s' not set (%d extra keys)", key, e->n);
}

static void assert_extra_equal(const CfgExtra *x, const CfgExtra *y) {
    assert_int_equal(x->n, y->n);
    for (int i = 0; i < x->n; i++) {
        assert_string_equal(x->key[i], y->key[i]);
        assert_string_equal(x->value[i], y->value[i]);
    }
    assert_string_equal(x->section, y->section);
}

/* ---- defaults ---------------------------------------------------------------------------------- */

static void test_defaults(void **state) {
    Fx *fx = *state;
    const RunConfig *c = &fx->a;
    assert_string_equal(c->dataset, "fmnist");
    assert_string_equal(c->data_dir, "");
    assert_string_equal(c->labels, "fine");
    assert_int_equal(c->limit_train, 0);
    assert_int_equal(c->limit_test, 0);
    assert_string_equal(c->augment, "auto");
    assert_int_equal(c->synthetic_train, 512);
    assert_int_equal(c->synthetic_test, 256);
    assert_int_equal(c->synthetic_classes, 4);
    assert_string_equal(c->synthetic_shape, "3x8x8");
    assert_string_equal(c->model, "lenet5");
    assert_int_equal(c->epochs, 3);
    assert_int_equal(c->batch, 128);
    assert_true(c->lr == 0.1);
    assert_true(c->momentum == 0.9);
    assert_true(c->weight_decay == 5e-4);
    assert_true(c->nesterov);
    assert_string_equal(c->schedule, "onecycle");
    assert_true(c->lr_min == 0);
    assert_true(c->gamma == 0.1);
    assert_true(c->warmup_epochs == 0);
    assert_true(c->pct_start == 0.15);
    assert_true(c->div_factor == 25);
    assert_true(c->final_div == 1e4);
    assert_int_equal(c->seed, 1);
    assert_int_equal(c->threads, 2);
    assert_string_equal(c->out, "");
    assert_string_equal(c->resume, "");
    assert_int_equal(c->log_every, 50);
    assert_false(c->quiet);
    assert_string_equal(c->scheme, "dense");
    assert_true(c->reuse == 0.9);
    assert_string_equal(c->backend, "dnnl");
    assert_true(c->breakeven[SPARSE_CLASS_STEM] == 0.1 && c->breakeven[SPARSE_CLASS_POINTWISE] == 0.2);
    assert_true(c->breakeven[SPARSE_CLASS_NARROW] == 0.3 && c->breakeven[SPARSE_CLASS_WIDE] == 0.4);
    assert_true(c->amdahl_p == 0.7);
    assert_int_equal(fx->ea.n, 0);

    /* the table: unique hyphenated names, a help line each, every field covered once */
    const CfgTable *t = &runconfig_table;
    assert_string_equal(t->extra_prefix, "scheme.");
    assert_int_equal(t->n_keys, 42);
    for (int i = 0; i < t->n_keys; i++) {
        const CfgKey *k = &t->keys[i];
        assert_non_null(k->name);
        assert_null(strchr(k->name, '_'));
        assert_non_null(k->help);
        assert_true(strlen(k->help) > 5);
        for (int j = 0; j < i; j++) {
            if (strcmp(k->name, t->keys[j].name) == 0) fail_msg("key '%s' twice", k->name);
            if (k->offset == t->keys[j].offset) fail_msg("keys '%s' and '%s' share a field", k->name, t->keys[j].name);
        }
    }
}

/* ---- config_set -------------------------------------------------------------------------------- */

static void test_set_int_bounds(void **state) {
    Fx *fx = *state;
    assert_int_equal(fx_set(fx, "epochs", "1"), 0);
    assert_int_equal(fx->a.epochs, 1);
    assert_int_equal(fx_set(fx, "epochs", "100000"), 0);
    assert_int_equal(fx->a.epochs, 100000);
    static const char *const bad[] = {"0", "100001", "-1", "3.5", "abc", "", "12abc", " 7x",
                                      "99999999999999999999", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fx_set(fx, "epochs", bad[i]) != ERR_CONFIG) fail_msg("epochs='%s' accepted", bad[i]);
        assert_int_equal(fx->a.epochs, 100000); /* unchanged on error */
    }
    assert_log_has(fx->log, "test: key 'epochs' value '1e3': expected an integer in [1, 100000]");

    assert_int_equal(fx_set(fx, "batch", "65536"), 0);
    assert_int_equal(fx->a.batch, 65536);
    assert_int_equal(fx_set(fx, "batch", "65537"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "limit-train", "0"), 0);
    assert_int_equal(fx_set(fx, "limit-train", "-1"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "limit-test", "2147483647"), 0);
    assert_int_equal(fx->a.limit_test, INT_MAX);
    assert_int_equal(fx_set(fx, "limit-test", "2147483648"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "threads", "1024"), 0);
    assert_int_equal(fx_set(fx, "threads", "1025"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "log-every", "1000000000"), 0);
    assert_int_equal(fx_set(fx, "log-every", "1000000001"), ERR_CONFIG);

    /* CFG_LONG */
    assert_int_equal(fx_set(fx, "seed", "0"), 0);
    assert_int_equal(fx->a.seed, 0);
    assert_int_equal(fx_set(fx, "seed", "2147483647"), 0);
    assert_int_equal(fx->a.seed, 2147483647L);
    assert_int_equal(fx_set(fx, "seed", "2147483648"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "seed", "-1"), ERR_CONFIG);
    assert_int_equal(fx->a.seed, 2147483647L);
    assert_log_has(fx->log, "expected an integer in [0, 2147483647]");
}

static void test_set_double_bounds(void **state) {
    Fx *fx = *state;
    /* lr is (0, 100]: the upper bound is inclusive, 0 is not allowed but any positive number is */
    assert_int_equal(fx_set(fx, "lr", "100"), 0);
    assert_true(fx->a.lr == 100);
    assert_int_equal(fx_set(fx, "lr", "1e-300"), 0);
    assert_true(fx->a.lr == 1e-300);
    assert_int_equal(fx_set(fx, "lr", "0.25"), 0);
    static const char *const bad[] = {"0", "-0", "100.00000000001", "-0.1", "nan", "NaN", "inf", "-inf",
                                      "infinity", "1e999", "abc", "", "0.1x", "0.1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fx_set(fx, "lr", bad[i]) != ERR_CONFIG) fail_msg("lr='%s' accepted", bad[i]);
        assert_true(fx->a.lr == 0.25);
    }
    assert_int_equal(fx_set(fx, "lr", "abc"), ERR_CONFIG);
    assert_log_has(fx->log, "test: key 'lr' value 'abc': expected a number in (0, 100]");

    /* inclusive [min, max] with just-outside values rejected */
    struct { const char *key, *lo, *hi, *below, *above; } cases[] = {
        {"momentum", "0", "0.999", "-1e-12", "0.99900001"},
        {"weight-decay", "0", "1", "-1e-300", "1.0000001"},
        {"lr-min", "0", "100", "-1e-9", "100.000001"},
        {"warmup-epochs", "0", "100000", "-0.5", "100000.5"},
        {"pct-start", "0.001", "0.999", "0.000999", "0.9990001"},
        {"div-factor", "0.001", "1e9", "0.000999", "1000000001"},
        {"final-div", "0.001", "1e12", "0.000999", "1.0000001e12"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (fx_set(fx, cases[i].key, cases[i].lo) != 0) fail_msg("%s=%s rejected", cases[i].key, cases[i].lo);
        if (fx_set(fx, cases[i].key, cases[i].hi) != 0) fail_msg("%s=%s rejected", cases[i].key, cases[i].hi);
        if (fx_set(fx, cases[i].key, cases[i].below) != ERR_CONFIG)
            fail_msg("%s=%s accepted", cases[i].key, cases[i].below);
        if (fx_set(fx, cases[i].key, cases[i].above) != ERR_CONFIG)
            fail_msg("%s=%s accepted", cases[i].key, cases[i].above);
        if (fx_set(fx, cases[i].key, "nan") != ERR_CONFIG) fail_msg("%s=nan accepted", cases[i].key);
    }
    /* gamma is (0, 1] */
    assert_int_equal(fx_set(fx, "gamma", "1"), 0);
    assert_int_equal(fx_set(fx, "gamma", "0"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "gamma", "1.0000001"), ERR_CONFIG);
    assert_true(fx->a.gamma == 1);
}

static void test_set_bool(void **state) {
    Fx *fx = *state;
    static const char *const yes[] = {"1", "true", "TRUE", "True", "yes", "YES", "on", "On"};
    static const char *const no[] = {"0", "false", "FALSE", "no", "No", "off", "OFF"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        fx->a.quiet = false;
        if (fx_set(fx, "quiet", yes[i]) != 0 || !fx->a.quiet) fail_msg("quiet='%s' is not true", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        fx->a.quiet = true;
        if (fx_set(fx, "quiet", no[i]) != 0 || fx->a.quiet) fail_msg("quiet='%s' is not false", no[i]);
    }
    static const char *const bad[] = {"", "2", "maybe", "truee", "y", "-1", "t"};
    fx->a.nesterov = true;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fx_set(fx, "nesterov", bad[i]) != ERR_CONFIG) fail_msg("nesterov='%s' accepted", bad[i]);
        assert_true(fx->a.nesterov);
    }
    assert_log_has(fx->log, "key 'nesterov' value 't': expected true or false");
}

static void test_set_string_choices(void **state) {
    Fx *fx = *state;
    static const char *const sets[] = {"fmnist", "mnist", "cifar10", "cifar100", "imagenet", "synthetic"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        assert_int_equal(fx_set(fx, "dataset", sets[i]), 0);
        assert_string_equal(fx->a.dataset, sets[i]);
    }
    static const char *const bad[] = {"FMNIST", "fmnist ", "cifar", "cifar1000", "", "svhn", "mnist|cifar10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fx_set(fx, "dataset", bad[i]) != ERR_CONFIG) fail_msg("dataset='%s' accepted", bad[i]);
        assert_string_equal(fx->a.dataset, "synthetic");
    }
    assert_int_equal(fx_set(fx, "dataset", "svhn"), ERR_CONFIG);
    assert_log_has(fx->log, "key 'dataset' value 'svhn': expected one of fmnist|mnist|cifar10|cifar100|imagenet|synthetic");
    assert_int_equal(fx_set(fx, "labels", "coarse"), 0);
    assert_int_equal(fx_set(fx, "labels", "medium"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "augment", "crop-flip"), 0);
    assert_int_equal(fx_set(fx, "augment", "none"), 0);
    assert_int_equal(fx_set(fx, "augment", "flip"), ERR_CONFIG);
    assert_string_equal(fx->a.augment, "none");

    /* free text: anything an INI line can carry */
    assert_int_equal(fx_set(fx, "schedule", "step:30,60,90"), 0);
    assert_string_equal(fx->a.schedule, "step:30,60,90");
    assert_int_equal(fx_set(fx, "model", "resnet18"), 0);
    assert_int_equal(fx_set(fx, "data-dir", "/data/my sets/a=b;c#d"), 0);
    assert_string_equal(fx->a.data_dir, "/data/my sets/a=b;c#d");
    assert_int_equal(fx_set(fx, "out", ""), 0);
    static const char *const lossy[] = {" lead", "trail ", "a ;b", ";x", "tab\there", "new\nline"};
    for (size_t i = 0; i < sizeof lossy / sizeof lossy[0]; i++) {
        if (fx_set(fx, "data-dir", lossy[i]) != ERR_CONFIG) fail_msg("data-dir='%s' accepted", lossy[i]);
        assert_string_equal(fx->a.data_dir, "/data/my sets/a=b;c#d");
    }
    /* the longest value that fits one INI line, and one more */
    char longv[CFG_STR_MAX];
    size_t fit = 197 - strlen("data-dir = ");
    memset(longv, 'x', fit);
    longv[fit] = '\0';
    assert_int_equal(fx_set(fx, "data-dir", longv), 0);
    longv[fit] = 'x';
    longv[fit + 1] = '\0';
    assert_int_equal(fx_set(fx, "data-dir", longv), ERR_CONFIG);
    assert_log_has(fx->log, "an INI line holds at most 197 characters");
}

static void test_set_extra(void **state) {
    Fx *fx = *state;
    assert_int_equal(fx_set(fx, "scheme.margin", "0.05"), 0);
    assert_int_equal(fx_set(fx, "scheme.warmup", "whatever"), 0); /* not validated here */
    assert_int_equal(fx_set(fx, "scheme.margin", "0.07"), 0);      /* replaced in place */
    assert_int_equal(fx->ea.n, 2);
    assert_string_equal(fx->ea.key[0], "scheme.margin");
    assert_string_equal(fx->ea.value[0], "0.07");
    assert_string_equal(fx->ea.key[1], "scheme.warmup");
    assert_string_equal(fx->ea.section, "");
    assert_int_equal(fx_set(fx, "scheme.", "1"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "scheme.a b", "1"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "scheme.x", " 1"), ERR_CONFIG);
    int rc;
    QUIET(rc, config_set(&runconfig_table, &fx->a, NULL, "scheme.margin", "1", "test"));
    assert_int_equal(rc, ERR_CONFIG);
    assert_int_equal(fx->ea.n, 2);
    for (int i = 2; i < CFG_MAX_EXTRA; i++) {
        char key[32];
        snprintf(key, sizeof key, "scheme.k%d", i);
        assert_int_equal(fx_set(fx, key, "v"), 0);
    }
    assert_int_equal(fx->ea.n, CFG_MAX_EXTRA);
    assert_int_equal(fx_set(fx, "scheme.one-too-many", "v"), ERR_CONFIG);
    assert_int_equal(fx_set(fx, "scheme.k2", "w"), 0); /* replacing still works when full */
    assert_extra(&fx->ea, "scheme.k2", "w");
}

static void test_unknown_key_suggestion(void **state) {
    Fx *fx = *state;
    assert_int_equal(fx_set(fx, "lr-mn", "0.1"), ERR_CONFIG);
    assert_log_has(fx->log, "test: unknown key 'lr-mn' (did you mean 'lr-min'?)");
    assert_int_equal(fx_set(fx, "eopchs", "3"), ERR_CONFIG); /* a swap is one edit */
    assert_log_has(fx->log, "did you mean 'epochs'?");
    assert_int_equal(fx_set(fx, "weight_decay", "0"), ERR_CONFIG);
    assert_log_has(fx->log, "did you mean 'weight-decay'?");
    assert_int_equal(fx_set(fx, "schem.margin", "0.1"), ERR_CONFIG);
    assert_log_has(fx->log, "did you mean 'scheme.margin'?");
    assert_int_equal(fx_set(fx, "frobnicate", "1"), ERR_CONFIG);
    assert_log_has(fx->log, "unknown key 'frobnicate'");
    assert_log_lacks(fx->log, "did you mean");
    assert_int_equal(fx->ea.n, 0);

    char *argv[] = {"train", "--epoch", "3"};
    assert_int_equal(fx_args(fx, argv, 3, NULL), ERR_CONFIG);
    assert_log_has(fx->log, "--epoch: unknown key 'epoch' (did you mean 'epochs'?)");
    assert_int_equal(fx->a.epochs, 3);
}

/* A second table over another struct, without an extra prefix. */
typedef struct {
    int n;
    double x, y;
    char name[CFG_STR_MAX];
} Small;

static const CfgKey small_keys[] = {
    {"n", CFG_INT, offsetof(Small, n), "5", -10, 10, NULL, "count (items)"},
    {"x", CFG_DOUBLE, offsetof(Small, x), "0.5", 0, 1, NULL, "share (fraction)"},
    {"name", CFG_STRING, offsetof(Small, name), "a", 0, 0, "a|b", "which one"},
    {"y", CFG_DOUBLE, offsetof(Small, y), "-1e300", -INFINITY, INFINITY, NULL, "unbounded (number)"},
};
static const CfgTable small_table = {small_keys, 4, NULL};

static const CfgKey bad_keys[] = {
    {"n", CFG_INT, offsetof(Small, n), "50", -10, 10, NULL, "count (items)"},
};
static const CfgTable bad_table = {bad_keys, 1, NULL};

static void test_other_table(void **state) {
    Fx *fx = *state;
    Small s;
    memset(&s, 0, sizeof s);
    assert_int_equal(config_defaults(&small_table, &s), 0);
    assert_int_equal(s.n, 5);
    assert_true(s.x == 0.5);
    assert_string_equal(s.name, "a");
    int rc;
    QUIET(rc, config_set(&small_table, &s, &fx->ea, "n", "-10", "t"));
    assert_int_equal(rc, 0);
    assert_int_equal(s.n, -10);
    /* unbounded doubles still refuse NaN and Inf */
    assert_true(s.y == -1e300);
    static const char *const nonfinite[] = {"inf", "-inf", "nan", "1e400", "-1e400"};
    for (size_t i = 0; i < sizeof nonfinite / sizeof nonfinite[0]; i++) {
        QUIET(rc, config_set(&small_table, &s, NULL, "y", nonfinite[i], "t"));
        if (rc != ERR_CONFIG) fail_msg("y='%s' accepted", nonfinite[i]);
    }
    QUIET(rc, config_set(&small_table, &s, NULL, "y", "1.7e308", "t"));
    assert_int_equal(rc, 0);
    assert_true(s.y == 1.7e308);
    QUIET(rc, config_set(&small_table, &s, &fx->ea, "scheme.k", "1", "t"));
    assert_int_equal(rc, ERR_CONFIG);
    assert_int_equal(fx->ea.n, 0);
    const char *path = fx_file(fx, "n = 3\n[scheme.x]\nk = 1\n");
    QUIET(rc, config_load_ini(&small_table, &s, &fx->ea, path));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(fx->log, ":2: unknown section [scheme.x]: expected [run]");
    assert_int_equal(s.n, 3);
    assert_int_equal(fx->ea.n, 0);
    /* a bad default in a table is reported, not silently used */
    QUIET(rc, config_defaults(&bad_table, &s));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(fx->log, "default of --n: key 'n' value '50': expected an integer in [-10, 10]");
}

/* ---- INI files --------------------------------------------------------------------------------- */

static void test_ini_sections(void **state) {
    Fx *fx = *state;
    const char *path = fx_file(fx,
                               "; a comment\n"
                               "# another comment\n"
                               "epochs = 7\n"
                               "lr=0.5   ; inline comment\n"
                               "\n"
                               "  batch = 64\n"          /* indented: a key, not a continuation */
                               "scheme.top = 1\n"        /* extra key at top level */
                               "[run]\n"
                               "dataset = cifar100\r\n"  /* CRLF */
                               "labels : coarse\n"       /* name: value, as libinih allows */
                               "data-dir = /d/x=y\n"
                               "nesterov = off\n"
                               "[ scheme.resprop ]\n"
                               "margin = 0.05\n"
                               "  warmup = 2\n"
                               "\n"
                               "[run]\n"
                               "quiet = yes\n");
    assert_int_equal(fx_load(fx, path), 0);
    assert_int_equal(fx->a.epochs, 7);
    assert_true(fx->a.lr == 0.5);
    assert_int_equal(fx->a.batch, 64);
    assert_string_equal(fx->a.dataset, "cifar100");
    assert_string_equal(fx->a.labels, "coarse");
    assert_string_equal(fx->a.data_dir, "/d/x=y");
    assert_false(fx->a.nesterov);
    assert_true(fx->a.quiet);
    assert_int_equal(fx->a.threads, 2); /* untouched keys keep their value */
    assert_int_equal(fx->ea.n, 3);
    assert_extra(&fx->ea, "scheme.top", "1");
    assert_extra(&fx->ea, "scheme.margin", "0.05");
    assert_extra(&fx->ea, "scheme.warmup", "2");
    assert_string_equal(fx->ea.section, "resprop");
    assert_string_equal(fx->log, "");

    /* an empty [scheme.NAME] still names the scheme */
    const char *empty = fx_file(fx, "[scheme.dense]\n");
    assert_int_equal(fx_load(fx, empty), 0);
    assert_string_equal(fx->ea.section, "dense");
    assert_int_equal(fx->ea.n, 3);
}

static void test_ini_errors(void **state) {
    Fx *fx = *state;
    char want[256];

    const char *syn = fx_file(fx, "epochs = 2\n; fine\nlr 0.3\nbatch = 8\n");
    assert_int_equal(fx_load(fx, syn), ERR_CONFIG);
    snprintf(want, sizeof want, "%s:3: syntax error in 'lr 0.3'", syn);
    assert_log_has(fx->log, want);

    const char *sec = fx_file(fx, "[run\nepochs = 2\n");
    assert_int_equal(fx_load(fx, sec), ERR_CONFIG);
    snprintf(want, sizeof want, "%s:1: syntax error", sec);
    assert_log_has(fx->log, want);

    const char *val = fx_file(fx, "epochs = 2\n\n[run]\nlr = abc\n");
    assert_int_equal(fx_load(fx, val), ERR_CONFIG);
    snprintf(want, sizeof want, "%s:4: key 'lr' value 'abc': expected a number in (0, 100]", val);
    assert_log_has(fx->log, want);
    assert_log_lacks(fx->log, "syntax error");

    const char *unk = fx_file(fx, "\n\nmomentun = 0.5\n");
    assert_int_equal(fx_load(fx, unk), ERR_CONFIG);
    snprintf(want, sizeof want, "%s:3: unknown key 'momentun' (did you mean 'momentum'?)", unk);
    assert_log_has(fx->log, want);

    const char *usec = fx_file(fx, "[rn]\nepochs = 2\n");
    assert_int_equal(fx_load(fx, usec), ERR_CONFIG);
    snprintf(want, sizeof want, "%s:1: unknown section [rn]: expected [run] or [scheme.NAME]", usec);
    assert_log_has(fx->log, want);

    char longline[400];
    int n = snprintf(longline, sizeof longline, "epochs = 2\ndata-dir = ");
    memset(longline + n, 'y', 250);
    snprintf(longline + n + 250, sizeof longline - (size_t)n - 250, "\nbatch = 9\n");
    const char *lng = fx_file(fx, longline);
    assert_int_equal(fx_load(fx, lng), ERR_CONFIG);
    snprintf(want, sizeof want, "%s:2: line longer than 197 characters", lng);
    assert_log_has(fx->log, want);
    assert_int_equal(fx->a.batch, 9); /* line numbers and the rest of the file unaffected */

    assert_int_equal(fx_load(fx, "/tmp/test_config_no_such_file.ini"), ERR_IO);
    assert_log_has(fx->log, "/tmp/test_config_no_such_file.ini: cannot open config file");
    assert_int_equal(fx_load(fx, "/tmp"), ERR_IO); /* a directory: opens, cannot be read */
}

/* ---- command line ------------------------------------------------------------------------------ */

static void test_precedence(void **state) {
    Fx *fx = *state;
    const char *path = fx_file(fx, "lr = 0.5\nepochs = 7\nquiet = true\n[scheme.resprop]\nmargin = 0.1\nkeep = 3\n");
    /* --config after --lr still loses to --lr */
    char *argv[] = {"train", "--lr", "0.2", "--config", (char *)path, "--scheme.margin=0.05", "--no-quiet"};
    assert_int_equal(fx_args(fx, argv, 7, NULL), 0);
    assert_true(fx->a.lr == 0.2);   /* command line > file */
    assert_int_equal(fx->a.epochs, 7); /* file > default */
    assert_int_equal(fx->a.batch, 128); /* default */
    assert_false(fx->a.quiet);
    assert_extra(&fx->ea, "scheme.margin", "0.05");
    assert_extra(&fx->ea, "scheme.keep", "3");
    assert_string_equal(fx->ea.section, "resprop");

    /* --config=FILE before, several files in order */
    const char *second = fx_file(fx, "epochs = 9\n");
    char *argv2[] = {"train", "--config=" /* filled below */, "--epochs=4", "--config", (char *)second};
    char arg[128];
    snprintf(arg, sizeof arg, "--config=%s", path);
    argv2[1] = arg;
    assert_int_equal(config_defaults(&runconfig_table, &fx->a), 0);
    assert_int_equal(fx_args(fx, argv2, 5, NULL), 0);
    assert_int_equal(fx->a.epochs, 4);
    char *argv3[] = {"train", arg, "--config", (char *)second};
    assert_int_equal(fx_args(fx, argv3, 4, NULL), 0);
    assert_int_equal(fx->a.epochs, 9); /* the later file wins */

    /* a bad file fails the parse with its file:line */
    const char *bad = fx_file(fx, "epochs = many\n");
    char *argv4[] = {"train", "--config", (char *)bad};
    assert_int_equal(fx_args(fx, argv4, 3, NULL), ERR_CONFIG);
    char want[128];
    snprintf(want, sizeof want, "%s:1: key 'epochs' value 'many'", bad);
    assert_log_has(fx->log, want);
    char *argv5[] = {"train", "--config", "/tmp/test_config_no_such_file.ini"};
    assert_int_equal(fx_args(fx, argv5, 3, NULL), ERR_IO);
}

static void test_args_forms(void **state) {
    Fx *fx = *state;
    bool help = false;
    char *argv[] = {"train",         "--epochs=5", "--batch", "32", "--quiet", "--no-nesterov",
                    "--dataset",     "mnist",      "--lr=1e-2", "--seed", "-0", "--scheme.margin",
                    "0.05",          "--out=",     "--momentum", "0"};
    assert_int_equal(fx_args(fx, argv, 16, &help), 0);
    assert_false(help);
    assert_int_equal(fx->a.epochs, 5);
    assert_int_equal(fx->a.batch, 32);
    assert_true(fx->a.quiet);
    assert_false(fx->a.nesterov);
    assert_string_equal(fx->a.dataset, "mnist");
    assert_true(fx->a.lr == 0.01);
    assert_int_equal(fx->a.seed, 0);
    assert_extra(&fx->ea, "scheme.margin", "0.05");
    assert_string_equal(fx->a.out, "");
    assert_true(fx->a.momentum == 0);

    char *argv2[] = {"train", "--nesterov=yes", "--quiet=0"};
    assert_int_equal(fx_args(fx, argv2, 3, &help), 0);
    assert_true(fx->a.nesterov);
    assert_false(fx->a.quiet);

    /* rejected: each leaves the config as it was */
    struct { int argc; char *argv[4]; const char *msg; } bad[] = {
        {2, {"train", "positional"}, "unexpected argument 'positional'"},
        {3, {"train", "--epochs=2", "extra"}, "unexpected argument 'extra'"},
        {2, {"train", "-x"}, "unexpected argument '-x'"},
        {2, {"train", "--"}, "unexpected argument '--'"},
        {2, {"train", "--lr"}, "--lr: missing value"},
        {3, {"train", "--lr", "--epochs=2"}, "--lr: missing value"},
        {3, {"train", "--quiet", "false"}, "unexpected argument 'false'"}, /* bare bools take no value */
        {2, {"train", "--no-lr"}, "--no-lr: 'lr' is not a boolean key"},
        {2, {"train", "--no-quiet=1"}, "--no-quiet takes no value"},
        {2, {"train", "--=3"}, "missing key name"},
        {2, {"train", "--lr=0"}, "key 'lr' value '0'"},
        {2, {"train", "--config"}, "--config: missing value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(&fx->b, &fx->a, sizeof fx->a);
        int rc = fx_args(fx, bad[i].argv, bad[i].argc, &help);
        if (rc != ERR_CONFIG) fail_msg("case %zu (%s) returned %d", i, bad[i].argv[1], rc);
        assert_log_has(fx->log, bad[i].msg);
        assert_memory_equal(&fx->a, &fx->b, sizeof fx->a);
    }
    /* a bad option later on the line stops the parse before any file or option is applied */
    const char *path = fx_file(fx, "epochs = 11\n");
    char *argv3[] = {"train", "--config", (char *)path, "--batch=4", "stray"};
    memcpy(&fx->b, &fx->a, sizeof fx->a);
    assert_int_equal(fx_args(fx, argv3, 5, &help), ERR_CONFIG);
    assert_memory_equal(&fx->a, &fx->b, sizeof fx->a);
    assert_false(help);
}

static void test_args_help(void **state) {
    Fx *fx = *state;
    bool help = false;
    char *argv[] = {"train", "--epochs=9", "--nonsense", "--help", "stray"};
    memcpy(&fx->b, &fx->a, sizeof fx->a);
    assert_int_equal(fx_args(fx, argv, 5, &help), 0);
    assert_true(help);
    assert_memory_equal(&fx->a, &fx->b, sizeof fx->a); /* nothing applied */
    assert_int_equal(fx_args(fx, argv, 5, NULL), ERR_CONFIG);
    /* argv before `first` is not looked at */
    help = false;
    char *argv2[] = {"resprop", "train", "--epochs=6"};
    int rc;
    QUIET(rc, config_parse_args(&runconfig_table, &fx->a, &fx->ea, 3, argv2, 2, &help));
    assert_int_equal(rc, 0);
    assert_false(help);
    assert_int_equal(fx->a.epochs, 6);
}

/* ---- text round trip and help ------------------------------------------------------------------ */

/* Sets a value on every key of fx->a (none the default) plus extra keys. */
static void fx_set_everything(Fx *fx) {
    static const char *const kv[][2] = {
        {"dataset", "cifar100"}, {"data-dir", "/data/with space/a=b:c;d#e"}, {"labels", "coarse"},
        {"limit-train", "1000"}, {"limit-test", "2147483647"}, {"augment", "crop-flip"},
        {"synthetic-train", "17"}, {"synthetic-test", "19"}, {"synthetic-classes", "23"},
        {"synthetic-shape", "1x28x28"}, {"model", "resnet18"}, {"epochs", "100000"}, {"batch", "1"},
        {"lr", "0.30000000000000004"}, {"momentum", "0.999"}, {"weight-decay", "1e-7"}, {"nesterov", "off"},
        {"schedule", "step:30,60"}, {"lr-min", "3.333333333333333e-05"}, {"gamma", "2.2250738585072014e-308"},
        {"warmup-epochs", "0.1"}, {"pct-start", "0.001"}, {"div-factor", "1e9"}, {"final-div", "1e-3"},
        {"seed", "2147483647"}, {"threads", "1024"}, {"out", "results/runs/x.h5"}, {"resume", "[weird];name"},
        {"log-every", "1"}, {"quiet", "true"}, {"scheme", "meprop"}, {"reuse", "0.5"}, {"backend", "sparse"},
        {"breakeven-stem", "0.05"}, {"breakeven-pointwise", "0.15"}, {"breakeven-narrow", "0.25"},
        {"breakeven-wide", "1"}, {"amdahl-p", "0.6"}, {"gscn-every", "7"}, {"gscn-preset", "gscn-small"},
        {"gscn-mode", "detailed"}, {"save-masks", "3"},
    };
    assert_int_equal((int)(sizeof kv / sizeof kv[0]), runconfig_table.n_keys);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (fx_set(fx, kv[i][0], kv[i][1]) != 0) fail_msg("%s=%s rejected:\n%s", kv[i][0], kv[i][1], fx->log);
    fx->a.lr_min = 1.0 / 30000; /* a double without a short decimal form */
    assert_int_equal(fx_set(fx, "scheme.margin", "0.05"), 0);
    assert_int_equal(fx_set(fx, "scheme.alpha.beta", "x y = z"), 0);
}

/* Writes fx->a/ea as text to a file, loads it into fx->b/eb (zeroed, no defaults) and compares. */
static void fx_round_trip(Fx *fx) {
    int len = config_to_text(&runconfig_table, &fx->a, &fx->ea, fx->text, sizeof fx->text);
    assert_true(len > 0);
    assert_int_equal((size_t)len, strlen(fx->text));
    memset(&fx->b, 0, sizeof fx->b);
    memset(&fx->eb, 0, sizeof fx->eb);
    const char *path = fx_file(fx, fx->text);
    int rc;
    QUIET(rc, config_load_ini(&runconfig_table, &fx->b, &fx->eb, path));
    if (rc != 0) fail_msg("reading back failed (%d):\n%s\ntext:\n%s", rc, fx->log, fx->text);
    for (int i = 0; i < runconfig_table.n_keys; i++) {
        const CfgKey *k = &runconfig_table.keys[i];
        size_t size = k->type == CFG_INT ? sizeof(int) : k->type == CFG_LONG ? sizeof(long)
                    : k->type == CFG_DOUBLE ? sizeof(double) : k->type == CFG_BOOL ? sizeof(bool) : CFG_STR_MAX;
        if (memcmp((char *)&fx->a + k->offset, (char *)&fx->b + k->offset, size) != 0)
            fail_msg("key '%s' differs after the round trip; text:\n%s", k->name, fx->text);
    }
    assert_memory_equal(&fx->a, &fx->b, sizeof fx->a); /* both zero-padded: byte-identical */
    assert_extra_equal(&fx->ea, &fx->eb);
}

static void test_text_round_trip(void **state) {
    Fx *fx = *state;
    memset(&fx->a, 0, sizeof fx->a);
    assert_int_equal(config_defaults(&runconfig_table, &fx->a), 0);
    fx_round_trip(fx); /* the defaults */
    assert_log_lacks(fx->text, "[scheme");

    fx_set_everything(fx);
    fx_round_trip(fx); /* extras without a section: top-level "scheme.KEY = VALUE" lines */
    assert_log_has(fx->text, "\nscheme.margin = 0.05\n");
    assert_log_has(fx->text, "\nscheme.alpha.beta = x y = z\n");
    assert_log_has(fx->text, "\nlr = 0.30000000000000004\n");
    assert_log_has(fx->text, "\nmomentum = 0.999\n");
    assert_log_has(fx->text, "\nnesterov = false\n");
    assert_log_has(fx->text, "\ndata-dir = /data/with space/a=b:c;d#e\n");
    assert_log_lacks(fx->text, "\n[");
    assert_log_lacks(fx->text + strlen(fx->text) - 30, "quiet"); /* extras come after the run keys */

    memcpy(fx->ea.section, "resprop", 8);
    fx_round_trip(fx); /* extras under [scheme.resprop] */
    assert_log_has(fx->text, "\n[scheme.resprop]\nmargin = 0.05\nalpha.beta = x y = z\n");

    fx->ea.n = 0;
    fx_round_trip(fx); /* an empty section keeps its name */
    assert_log_has(fx->text, "[scheme.resprop]\n");

    /* too small a buffer */
    int rc;
    char small[64];
    QUIET(rc, config_to_text(&runconfig_table, &fx->a, &fx->ea, small, sizeof small));
    assert_int_equal(rc, ERR_NOMEM);
    assert_string_equal(small, "");
    int len = config_to_text(&runconfig_table, &fx->a, NULL, fx->text, sizeof fx->text);
    assert_true(len > 0);
    QUIET(rc, config_to_text(&runconfig_table, &fx->a, NULL, fx->text, (size_t)len));
    assert_int_equal(rc, ERR_NOMEM);
    assert_int_equal(config_to_text(&runconfig_table, &fx->a, NULL, fx->text, (size_t)len + 1), len);
}

static void test_get_text(void **state) {
    Fx *fx = *state;
    char buf[64];
    assert_int_equal(config_get_text(&runconfig_table, &fx->a, "lr", buf, sizeof buf), 3);
    assert_string_equal(buf, "0.1");
    assert_int_equal(config_get_text(&runconfig_table, &fx->a, "nesterov", buf, sizeof buf), 4);
    assert_string_equal(buf, "true");
    assert_int_equal(config_get_text(&runconfig_table, &fx->a, "weight-decay", buf, sizeof buf), 6);
    assert_string_equal(buf, "0.0005");
    assert_int_equal(config_get_text(&runconfig_table, &fx->a, "dataset", buf, sizeof buf), 6);
    assert_string_equal(buf, "fmnist");
    assert_int_equal(config_get_text(&runconfig_table, &fx->a, "data-dir", buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(config_get_text(&runconfig_table, &fx->a, "seed", buf, sizeof buf), 1);
    int rc;
    QUIET(rc, config_get_text(&runconfig_table, &fx->a, "lrr", buf, sizeof buf));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(fx->log, "did you mean 'lr'?");
    QUIET(rc, config_get_text(&runconfig_table, &fx->a, "dataset", buf, 6));
    assert_int_equal(rc, ERR_NOMEM);
}

static void test_print_help(void **state) {
    Fx *fx = *state;
    FILE *f = tmpfile();
    assert_non_null(f);
    config_print_help(&runconfig_table, f);
    rewind(f);
    size_t n = fread(fx->text, 1, sizeof fx->text - 1, f);
    fx->text[n] = '\0';
    fclose(f);
    for (int i = 0; i < runconfig_table.n_keys; i++) {
        const CfgKey *k = &runconfig_table.keys[i];
        char want[256];
        snprintf(want, sizeof want, "  --%s", k->name);
        assert_log_has(fx->text, want);
        assert_log_has(fx->text, k->help);
    }
    assert_log_has(fx->text, "--dataset fmnist|mnist|cifar10|cifar100|imagenet|synthetic");
    assert_log_has(fx->text, "learning rate (peak for onecycle) (default 0.1, range (0, 100])");
    assert_log_has(fx->text, "(default 3, range [1, 100000])");
    assert_log_has(fx->text, "--nesterov[=BOOL]");
    assert_log_has(fx->text, "(default 5e-4, range [0, 1])");
    assert_log_has(fx->text, "(default \"\")");
    assert_log_has(fx->text, "range [0, 2147483647]");
    assert_log_has(fx->text, "--scheme.KEY=VALUE");
    assert_log_has(fx->text, "--config FILE");
    assert_log_has(fx->text, "--no-KEY");
    assert_log_has(fx->text, "--help");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_set_int_bounds, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_set_double_bounds, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_set_bool, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_set_string_choices, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_set_extra, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_suggestion, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_other_table, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ini_sections, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ini_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_precedence, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_args_forms, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_args_help, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_text_round_trip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_get_text, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_print_help, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
