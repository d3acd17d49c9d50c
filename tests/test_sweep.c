/* test_sweep.c: sweep files (core/sweep.h): grid expansion order and counts, [base] layering, command
 * line overrides, dropping of duplicate points (also those made equal by dropping scheme options a
 * scheme does not take), point names (varying grid keys only, sanitised, unique), the point's run
 * config, and the rejection of bad files with file:line [section] in the message. Every test checks
 * that nothing leaks (core/mem.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/runconfig.h"
#include "core/sweep.h"
#include "tests/testutil.h"

typedef struct {
    char dir[64];
    char path[128];
    Sweep s;
    TuCapture cap;
} Fx;

static int fx_setup(void **state) {
    Fx *fx = mem_calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_sweep") != 0) {
        mem_free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/s.ini", fx->dir);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    Fx *fx = *state;
    int rc = 0;
    if (fx) {
        tu_capture_abort(&fx->cap);
        sweep_deinit(&fx->s);
        rc = tu_rmtree(fx->dir);
    }
    mem_free(fx);
    return rc == 0 && mem_live_bytes() == 0 ? 0 : -1;
}

/* Loads text as the sweep file with overrides; returns sweep_load's code, log in fx->cap.text. */
static int fx_load(Fx *fx, const char *text, int n_over, const char *const *over) {
    sweep_deinit(&fx->s);
    tu_write_file(fx->path, text, strlen(text));
    int rc;
    TU_CAPTURE(&fx->cap, rc = sweep_load(&fx->s, fx->path, n_over, over));
    return rc;
}

static const char *val(const Fx *fx, int point, const char *key) {
    int k = sweep_key_index(&fx->s, key);
    assert_true(k >= 0);
    return fx->s.points[point].value[k];
}

static const char *const smoke =
    "; a comment\n"
    "[sweep]\n"
    "name = smoke            ; inline comment\n"
    "[base]                  ; run keys for every point\n"
    "dataset = synthetic\n"
    "model = resnet20\n"
    "epochs = 1\n"
    "scheme.warmup = fraction:0.25\n"
    "[grid dense]\n"
    "scheme = dense\n"
    "seed = 1, 2\n"
    "[grid schemes]\n"
    "scheme = resprop, meprop\n"
    "reuse = 0.5, 0.9\n"
    "seed = 1,2\n";

static void test_expand_order(void **state) {
    Fx *fx = *state;
    assert_int_equal(fx_load(fx, smoke, 0, NULL), 0);
    assert_string_equal(fx->s.name, "smoke");
    assert_int_equal(fx->s.n_grids, 2);
    assert_string_equal(fx->s.grid_names[0], "dense");
    assert_string_equal(fx->s.grid_names[1], "schemes");
    assert_int_equal(fx->s.n_points, 2 + 2 * 2 * 2);
    assert_int_equal(fx->s.n_duplicates, 0);
    /* grid by grid, last key fastest */
    static const char *const want[][3] = {
        {"dense", NULL, "1"},       {"dense", NULL, "2"},       {"resprop", "0.5", "1"}, {"resprop", "0.5", "2"},
        {"resprop", "0.9", "1"},    {"resprop", "0.9", "2"},    {"meprop", "0.5", "1"},  {"meprop", "0.5", "2"},
        {"meprop", "0.9", "1"},     {"meprop", "0.9", "2"},
    };
    for (int i = 0; i < fx->s.n_points; i++) {
        assert_string_equal(val(fx, i, "scheme"), want[i][0]);
        if (want[i][1]) assert_string_equal(val(fx, i, "reuse"), want[i][1]);
        assert_string_equal(val(fx, i, "seed"), want[i][2]);
        assert_string_equal(val(fx, i, "dataset"), "synthetic"); /* [base] */
        assert_string_equal(val(fx, i, "lr"), "0.1");            /* default */
        assert_int_equal(fx->s.points[i].grid, i < 2 ? 0 : 1);
    }
    /* the scheme option stays only where the scheme takes it */
    assert_null(val(fx, 0, "scheme.warmup"));
    assert_string_equal(val(fx, 2, "scheme.warmup"), "fraction:0.25");
    assert_null(val(fx, 6, "scheme.warmup"));
    assert_false(fx->s.threads_set);
}

static void test_names(void **state) {
    Fx *fx = *state;
    assert_int_equal(fx_load(fx, smoke, 0, NULL), 0);
    static const char *const want[] = {
        "dense_seed-1", "dense_seed-2", "resprop_reuse-0.5_seed-1", "resprop_reuse-0.5_seed-2",
        "resprop_reuse-0.9_seed-1", "resprop_reuse-0.9_seed-2", "meprop_reuse-0.5_seed-1", "meprop_reuse-0.5_seed-2",
        "meprop_reuse-0.9_seed-1", "meprop_reuse-0.9_seed-2",
    };
    for (int i = 0; i < fx->s.n_points; i++) assert_string_equal(fx->s.points[i].name, want[i]);

    /* a scheme option varying in a grid: after reuse; a quoted item keeps its comma, names are sanitised */
    assert_int_equal(fx_load(fx,
                             "[sweep]\nname = n\n[grid]\nscheme = resprop\nseed = 3\nreuse = 0.9\n"
                             "scheme.warmup = none, paper\nschedule = \"step:30,60\", cosine\n",
                             0, NULL),
                     0);
    assert_int_equal(fx->s.n_points, 4);
    assert_string_equal(val(fx, 0, "schedule"), "step:30,60");
    assert_string_equal(fx->s.points[0].name, "warmup-none_schedule-step-30-60");
    assert_string_equal(fx->s.points[3].name, "warmup-paper_schedule-cosine");

    /* one point: named by its scheme */
    assert_int_equal(fx_load(fx, "[sweep]\nname = n\n[grid]\nscheme = meprop\n", 0, NULL), 0);
    assert_int_equal(fx->s.n_points, 1);
    assert_string_equal(fx->s.points[0].name, "meprop");

    /* names that coincide after sanitising get the point number */
    assert_int_equal(fx_load(fx, "[sweep]\nname = n\n[grid]\ndata-dir = a/b, a:b, c\n", 0, NULL), 0);
    assert_int_equal(fx->s.n_points, 3);
    assert_string_equal(fx->s.points[0].name, "data-dir-a-b_p1");
    assert_string_equal(fx->s.points[1].name, "data-dir-a-b_p2");
    assert_string_equal(fx->s.points[2].name, "data-dir-c");
    for (int i = 0; i < fx->s.n_points; i++)
        for (int j = 0; j < i; j++) assert_string_not_equal(fx->s.points[i].name, fx->s.points[j].name);
}

static void test_duplicates(void **state) {
    Fx *fx = *state;
    /* a grid point equal to an earlier grid's; a grid key equal to the default; the scheme option
     * dropped for dense makes both warmup values one point */
    assert_int_equal(fx_load(fx,
                             "[sweep]\nname = d\n[base]\nepochs = 2\n"
                             "[grid a]\nseed = 1, 2\n"
                             "[grid b]\nseed = 2, 3\nlr = 0.1\n"
                             "[grid c]\nscheme = dense, resprop\nscheme.warmup = none, paper\nseed = 1\n",
                             0, NULL),
                     0);
    /* a: s1 s2; b: s2 (dup) s3; c: dense (dup of a s1, twice), resprop none, resprop paper */
    assert_int_equal(fx->s.n_points, 5);
    assert_int_equal(fx->s.n_duplicates, 3);
    assert_string_equal(val(fx, 2, "seed"), "3");
    assert_string_equal(val(fx, 3, "scheme.warmup"), "none");
    assert_string_equal(val(fx, 4, "scheme.warmup"), "paper");
    /* the lr of grid b equals the default: it does not vary, so it is not in the name */
    assert_string_equal(fx->s.points[2].name, "seed-3");
    assert_string_equal(fx->s.points[3].name, "resprop_warmup-none_seed-1");
}

static void test_overrides(void **state) {
    Fx *fx = *state;
    const char *over[] = {"data-dir=/tmp/x", "seed=7", "threads=1"};
    assert_int_equal(fx_load(fx, smoke, 3, over), 0);
    /* seed=7 everywhere: the seed grids collapse */
    assert_int_equal(fx->s.n_points, 1 + 2 * 2);
    assert_int_equal(fx->s.n_duplicates, 5);
    assert_true(fx->s.threads_set);
    for (int i = 0; i < fx->s.n_points; i++) {
        assert_string_equal(val(fx, i, "data-dir"), "/tmp/x");
        assert_string_equal(val(fx, i, "seed"), "7");
        assert_null(strstr(fx->s.points[i].name, "seed"));
    }
    assert_string_equal(fx->s.points[0].name, "dense");
    assert_string_equal(fx->s.points[1].name, "resprop_reuse-0.5");

    RunConfig *cfg = mem_calloc(1, sizeof *cfg);
    CfgExtra *extra = mem_calloc(1, sizeof *extra);
    assert_non_null(cfg);
    assert_non_null(extra);
    assert_int_equal(sweep_point_config(&fx->s, 1, cfg, extra), 0);
    assert_string_equal(cfg->scheme, "resprop");
    assert_true(cfg->reuse == 0.5);
    assert_int_equal(cfg->seed, 7);
    assert_int_equal(cfg->threads, 1);
    assert_string_equal(cfg->data_dir, "/tmp/x");
    assert_string_equal(cfg->model, "resnet20");
    assert_int_equal(extra->n, 1);
    assert_string_equal(extra->key[0], "scheme.warmup");
    assert_string_equal(extra->value[0], "fraction:0.25");
    assert_int_equal(sweep_point_config(&fx->s, 0, cfg, extra), 0);
    assert_int_equal(extra->n, 0);
    mem_free(cfg);
    mem_free(extra);

    const char *bad[] = {"lr=500"};
    assert_int_equal(fx_load(fx, smoke, 1, bad), ERR_CONFIG);
    assert_log_has(fx->cap.text, "--lr: key 'lr' value '500'");
    const char *bad2[] = {"nope"};
    assert_int_equal(fx_load(fx, smoke, 1, bad2), ERR_CONFIG);
}

static void test_errors(void **state) {
    Fx *fx = *state;
    static const struct {
        const char *text, *log;
    } cases[] = {
        {"[sweep]\nname = x\n[grid]\nreuse = 0.5, 2\n", "s.ini:4 [grid]: key 'reuse' value '2'"},
        {"[sweep]\nname = x\n[grid g1]\nscheme = dense, nope\n", "s.ini:4 [grid g1]: key 'scheme' value 'nope': unknown scheme"},
        {"[sweep]\nname = x\n[base]\nlrr = 3\n[grid]\n", "s.ini:4 [base]: unknown key 'lrr' (did you mean 'lr'?)"},
        {"[sweep]\n[grid]\nseed = 1\n", "missing key 'name'"},
        {"[sweep]\nname = x\n", "no [grid] section"},
        {"[base]\nseed = 1\n[grid]\n", "no [sweep] section"},
        {"[sweep]\nname = x\n[grid]\n[other]\n", "s.ini:4: unknown section [other]"},
        {"[sweep]\nname = a/b\n[grid]\n", "key 'name' value 'a/b'"},
        {"[sweep]\nname = x\nfoo = 1\n[grid]\n", "unknown key 'foo'"},
        {"[sweep]\nname = x\n[grid]\nscheme = dense, meprop\nscheme.margin = 0.1\n", "no point's scheme takes option 'margin'"},
        {"[sweep]\nname = x\n[grid]\nscheme = resprop\nscheme.margin = 0.1, 7\n", "s.ini:5 [grid]"},
        {"[sweep]\nname = x\n[base]\nscheme.margin = 7\n[grid]\nscheme = resprop\n", "s.ini:4 [base]: key 'margin'"},
        {"[sweep]\nname = x\n[grid]\nout = a.h5\n", "key 'out': set by the sweep"},
        {"[sweep]\nname = x\n[base]\nresume = a.h5\n[grid]\n", "key 'resume': set by the sweep"},
        {"[sweep]\nname = x\n[grid]\nseed = 1,,2\n", "empty item"},
        {"[sweep]\nname = x\n[grid]\nseed = 1,\n", "empty item"},
        {"[sweep]\nname = x\n[grid]\nschedule = \"step:1,2\n", "unterminated"},
        {"[sweep]\nname = x\n[grid]\nmodel = resnet99\n", "unknown model"},
        {"[sweep]\nname = x\n[grid]\nschedule = \"step:9,3\"\n", "key 'schedule' value 'step:9,3'"},
        {"[sweep]\nname = x\n[grid]\nschedule = step:3,9\n", "in double quotes"},
        {"[sweep]\nname = x\n[grid]\nsynthetic-shape = 3x8\n", "synthetic-shape"},
        {"[sweep]\nname = x\n[grid]\nseed = 1\nseed = 2\n", "key 'seed' set twice"},
        {"[sweep]\nname = x\n[grid g]\n[grid g]\n", "appears twice"},
        {"seed = 1\n[sweep]\nname = x\n[grid]\n", "before the first section"},
        {"[sweep]\nname = x\n[grid]\nthis is not ini\n", "s.ini:4: syntax error"},
        {"[sweep]\nname = x\n[grid]\nseed = 0,1,2,3,4,5,6,7,8,9\nreuse = 0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9\n"
         "lr = 1,2,3,4,5,6,7,8,9,10\nmomentum = 0,0.1,0.2,0.3,0.4,0.5\n", "more than 4096 points"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int rc = fx_load(fx, cases[c].text, 0, NULL);
        if (rc != ERR_CONFIG) fprintf(stderr, "case %zu: rc %d, log: %s\n", c, rc, fx->cap.text);
        assert_int_equal(rc, ERR_CONFIG);
        assert_log_has(fx->cap.text, cases[c].log);
        assert_int_equal(fx->s.n_points, 0);
    }
    /* a missing file is an I/O error */
    sweep_deinit(&fx->s);
    int rc;
    TU_CAPTURE(&fx->cap, rc = sweep_load(&fx->s, "/nonexistent/sweep.ini", 0, NULL));
    assert_int_equal(rc, ERR_IO);
    assert_log_has(fx->cap.text, "/nonexistent/sweep.ini");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expand_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_names, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_overrides, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
