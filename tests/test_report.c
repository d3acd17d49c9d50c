/* test_report.c: the report's aggregation (results/report.h) on small records written in the test
 * with h5rec: grouping by setting, mean and sample std over seeds, the dense delta, single-seed
 * marking, the skipped/ignored files, the claims file, and that the tables name what they show.
 * Every test works in a fresh mkdtemp directory and checks that nothing allocated through
 * core/mem.h leaked. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/mem.h"
#include "results/h5rec.h"
#include "results/report.h"

#define PATH_BYTES 1024

typedef struct {
    char dir[64];
    TuCapture cap;
    size_t live_bytes;
} Fx;

static int fx_setup(void **state) {
    Fx *fx = test_calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_report") != 0) {
        test_free(fx);
        return -1;
    }
    fx->live_bytes = mem_live_bytes();
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    Fx *fx = *state;
    int rc = 0;
    tu_capture_abort(&fx->cap);
    if (mem_live_bytes() != fx->live_bytes) {
        print_error("leak: %zu bytes live after the test, %zu before\n", mem_live_bytes(), fx->live_bytes);
        rc = -1;
    }
    if (tu_rmtree(fx->dir) != 0) rc = -1;
    test_free(fx);
    return rc;
}

/* A complete training record with a final test accuracy of acc after `epochs` epochs (linear ramp),
 * network density 1 - reuse_ach, the given learning rate in its config. */
static void make_run(const char *path, const char *scheme, double rs, long seed, double lr, double acc, double reuse_ach,
                     bool finish) {
    H5Rec *r = NULL;
    char config[512];
    snprintf(config, sizeof config,
             "dataset = fmnist\nmodel = lenet5\nepochs = 3\nbatch = 64\nlr = %g\nscheme = %s\nreuse = %g\n"
             "backend = dnnl\nseed = %ld\nthreads = 1\nout = %s\n",
             lr, scheme, rs, seed, path);
    assert_int_equal(h5rec_create(&r, path), 0);
    assert_int_equal(h5rec_attr_str(r, "/", "config", config), 0);
    assert_int_equal(h5rec_attr_str(r, "/", "dataset", "fmnist"), 0);
    assert_int_equal(h5rec_attr_str(r, "/", "model", "lenet5"), 0);
    assert_int_equal(h5rec_attr_str(r, "/", "scheme", scheme), 0);
    assert_int_equal(h5rec_attr_str(r, "/", "backend", "dnnl"), 0);
    assert_int_equal(h5rec_attr_f64(r, "/", "reuse_nominal", rs), 0);
    assert_int_equal(h5rec_attr_i64(r, "/", "seed", seed), 0);
    static const char *const ecols[] = {"epoch", "test_acc"}, *const eunits[] = {"1", "frac"};
    static const char *const ncols[] = {"epoch", "density"}, *const nunits[] = {"1", "frac"};
    assert_int_equal(h5rec_series(r, "/epoch", 2, ecols, eunits), 0);
    assert_int_equal(h5rec_series(r, "/network", 2, ncols, nunits), 0);
    for (int e = 1; e <= 3; e++) {
        double row[2] = {e, acc * e / 3}, nrow[2] = {e, 1 - reuse_ach};
        assert_int_equal(h5rec_append(r, "/epoch", row), 0);
        assert_int_equal(h5rec_append(r, "/network", nrow), 0);
    }
    if (finish) assert_int_equal(h5rec_finish(r), 0);
    else h5rec_close(r); /* stays NAME.h5.part */
}

/* Two groups (lr 0.1 and lr 0.05), dense and resprop over seeds, plus files the report must skip. */
static void make_runs_dir(Fx *fx, char *runs) {
    char p[PATH_BYTES];
    snprintf(runs, PATH_BYTES, "%s/runs", fx->dir);
    mkdir(runs, 0777);
    snprintf(p, sizeof p, "%s/sweep", runs);
    mkdir(p, 0777);
    struct {
        const char *name, *scheme;
        double rs;
        long seed;
        double lr, acc, reuse;
    } pts[] = {
        {"sweep/dense-s1.h5", "dense", 0.9, 1, 0.1, 0.90, 0},
        {"sweep/dense-s2.h5", "dense", 0.9, 2, 0.1, 0.92, 0},
        {"sweep/rp90-s1.h5", "resprop", 0.9, 1, 0.1, 0.88, 0.80},
        {"sweep/rp90-s2.h5", "resprop", 0.9, 2, 0.1, 0.90, 0.90},
        {"sweep/rp50-s1.h5", "resprop", 0.5, 1, 0.1, 0.91, 0.40},
        {"lr05-dense.h5", "dense", 0.9, 1, 0.05, 0.80, 0},
        {"lr05-meprop.h5", "meprop", 0.9, 1, 0.05, 0.70, 0.90},
        {"lr05-dense-again.h5", "dense", 0.5, 1, 0.05, 0.84, 0}, /* dense again at another RS, same seed */
    };
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", runs, pts[i].name);
        make_run(p, pts[i].scheme, pts[i].rs, pts[i].seed, pts[i].lr, pts[i].acc, pts[i].reuse, true);
    }
    snprintf(p, sizeof p, "%s/sweep/killed.h5", runs);
    make_run(p, "resprop", 0.9, 3, 0.1, 0.1, 0.9, false); /* killed.h5.part */
    snprintf(p, sizeof p, "%s/sweep/dense-s1.ckpt.h5", runs);
    tu_write_file(p, "not a record", 12);
    snprintf(p, sizeof p, "%s/corrupt.h5", runs);
    tu_write_file(p, "garbage bytes, not HDF5", 23);
}

static const ReportRow *find_row(const Report *rep, const char *scheme, double rs, const char *label_part) {
    for (int w = 0; w < rep->n_rows; w++) {
        const ReportRow *r = &rep->rows[w];
        if (strcmp(r->scheme, scheme) == 0 && (isnan(rs) || fabs(r->reuse - rs) < 1e-9) &&
            strstr(rep->groups[r->group].label, label_part))
            return r;
    }
    fail_msg("no row %s RS %g in a group labelled *%s*", scheme, rs, label_part);
    return NULL;
}

static void test_mean_std(void **state) {
    (void)state;
    double m, s, v[] = {1, 2, 3, 4};
    report_mean_std(v, 4, &m, &s);
    assert_true(fabs(m - 2.5) < 1e-12);
    assert_true(fabs(s - sqrt(5.0 / 3.0)) < 1e-12); /* sample std, n - 1 */
    report_mean_std(v, 1, &m, &s);
    assert_true(m == 1 && isnan(s));
    report_mean_std(v, 0, &m, &s);
    assert_true(isnan(m) && isnan(s));
}

static void test_aggregate(void **state) {
    Fx *fx = *state;
    char runs[PATH_BYTES];
    make_runs_dir(fx, runs);
    Report rep;
    int rc;
    TU_CAPTURE_ECHO(&fx->cap, rc = report_scan(&rep, runs));
    assert_int_equal(rc, 0);
    assert_log_has(fx->cap.text, "corrupt.h5"); /* the warning names the file */
    assert_int_equal(rep.n_runs, 8);
    assert_int_equal(rep.n_partial, 1);
    assert_string_equal(rep.partial[0], "sweep/killed.h5.part");
    assert_int_equal(rep.n_ckpt, 1);
    assert_int_equal(rep.n_skipped, 1);
    assert_string_equal(rep.skipped[0], "corrupt.h5");
    assert_int_equal(rep.n_groups, 2);
    /* groups differ only in lr: the labels say so */
    assert_non_null(strstr(rep.groups[0].label, "lr="));
    assert_non_null(strstr(rep.groups[1].label, "lr="));
    assert_int_equal(rep.n_rows, 5);

    const ReportRow *d = find_row(&rep, "dense", NAN, "lr=0.1");
    const ReportRow *r90 = find_row(&rep, "resprop", 0.9, "lr=0.1");
    const ReportRow *r50 = find_row(&rep, "resprop", 0.5, "lr=0.1");
    const ReportRow *mp = find_row(&rep, "meprop", 0.9, "lr=0.05");
    assert_int_equal(d->n, 2);
    assert_true(fabs(d->mean - 0.91) < 1e-12);
    assert_int_equal(r90->n, 2);
    assert_int_equal(r90->n_seeds, 2);
    assert_true(fabs(r90->mean - 0.89) < 1e-12);
    assert_true(fabs(r90->std - sqrt(2 * 0.01 * 0.01)) < 1e-12);
    assert_true(fabs(r90->delta - (0.89 - 0.91)) < 1e-12);
    assert_false(r90->single_seed);
    assert_true(fabs(r90->reuse_net - 0.85) < 1e-12); /* mean of 0.80 and 0.90 */
    assert_true(isnan(r90->reuse_layers));            /* no per-layer series in these records */
    assert_int_equal(r50->n, 1);
    assert_true(isnan(r50->std));
    assert_true(r50->single_seed);
    assert_true(fabs(r50->delta - 0.0) < 1e-12);
    /* the other group's dense reference is its own, and it rests on one seed */
    const ReportRow *d05 = find_row(&rep, "dense", NAN, "lr=0.05");
    assert_int_equal(d05->n, 2); /* two runs of one seed: one value, not a spread */
    assert_int_equal(d05->n_seeds, 1);
    assert_true(fabs(d05->mean - 0.82) < 1e-12);
    assert_true(isnan(d05->std));
    assert_true(fabs(mp->delta - (0.70 - 0.82)) < 1e-12);
    assert_true(mp->single_seed);
    assert_int_equal(rep.rows[mp->dense].group, mp->group);
    /* figures 1-4 use the group with the most runs */
    assert_int_equal(report_main_group(&rep), d->group);
    report_deinit(&rep);
}

static void write_claims(const char *path, bool drop_angle) {
    char text[2048];
    snprintf(text, sizeof text,
             "# test claims\nid,value,unit,comparison,text,source\n"
             "reuse_frac,0.9,frac,~,\"reusable, about 90%%\",test\n"
             "acc_loss_pp,1.1,pp,<,accuracy loss,test\n"
             "bwd_reduction,10,x,~,FLOPs,test\n"
             "amdahl_speedup,2.7,x,~,Amdahl,test\n"
             "gscn_speedup_resnet34,8.0,x,~,r34,test\n"
             "gscn_speedup_vgg16,7.2,x,~,vgg,test\n%s",
             drop_angle ? "" : "grad_angle_deg,37,deg,~,angle,test\n");
    tu_write_file(path, text, strlen(text));
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_write(void **state) {
    Fx *fx = *state;
    char runs[PATH_BYTES], out[256], claims[PATH_BYTES], p[PATH_BYTES];
    make_runs_dir(fx, runs);
    snprintf(out, sizeof out, "%s/out", fx->dir);
    snprintf(claims, sizeof claims, "%s/claims.csv", fx->dir);
    write_claims(claims, false);
    ReportClaims cl;
    assert_int_equal(report_claims_load(&cl, claims), 0);
    assert_int_equal(cl.n, 7);
    assert_string_equal(report_claim(&cl, "reuse_frac")->text, "reusable, about 90%"); /* quoted comma */
    Report rep;
    int rc;
    TU_CAPTURE(&fx->cap, rc = report_scan(&rep, runs));
    assert_int_equal(rc, 0);
    assert_int_equal(report_mkdirs(out), 0);
    assert_int_equal(report_write(&rep, &cl, out, NULL), 0);
    snprintf(p, sizeof p, "%s/tables.md", out);
    const char *md = read_text(p);
    assert_log_has(md, "89.00 ± 1.41");          /* resprop RS 0.9: mean ± std in % */
    assert_log_has(md, "-2.00");                 /* its delta to dense, pp */
    assert_log_has(md, "91.00 (single seed)");   /* resprop RS 0.5 rests on one seed */
    assert_log_has(md, "-12.00 (single seed)");  /* meprop vs a single-seed dense */
    assert_log_has(md, "82.00 (single seed)");   /* dense of lr 0.05: two runs, one seed */
    assert_log_has(md, "no records of kind flops"); /* missing inputs are named, with the command */
    assert_log_has(md, "resprop flops");
    assert_log_has(md, "sweep/killed.h5.part");
    assert_log_has(md, "corrupt.h5");
    assert_null(strstr(md, "dense RS")); /* records used: a dense run has no reuse threshold */
    assert_log_has(md, ", dense, backend");
    snprintf(p, sizeof p, "%s/tables.tex", out);
    const char *tex = read_text(p);
    assert_log_has(tex, "\\toprule");
    assert_log_has(tex, "$\\pm$");
    snprintf(p, sizeof p, "%s/figdata/fig1_accuracy_epoch.dat", out);
    const char *fig1 = read_text(p);
    assert_log_has(fig1, "# footnote: fmnist, lenet5, 3 epochs");
    assert_log_has(fig1, "# block 0: dense (2 seeds)");
    assert_log_has(fig1, "3 91 "); /* epoch 3: mean of 90 and 92 */
    snprintf(p, sizeof p, "%s/figdata/fig8_gscn_sensitivity.dat", out);
    assert_log_has(read_text(p), "# missing:");
    report_deinit(&rep);
    report_claims_deinit(&cl);

    /* a claim the report needs is missing: a clear error naming the file and the id */
    write_claims(claims, true);
    assert_int_equal(report_claims_load(&cl, claims), 0);
    TU_CAPTURE(&fx->cap, rc = report_scan(&rep, runs));
    assert_int_equal(rc, 0);
    TU_CAPTURE_ECHO(&fx->cap, rc = report_write(&rep, &cl, out, NULL));
    assert_int_equal(rc, ERR_FORMAT);
    assert_log_has(fx->cap.text, "grad_angle_deg");
    assert_log_has(fx->cap.text, claims);
    report_deinit(&rep);
    report_claims_deinit(&cl);
}

static void test_bad_inputs(void **state) {
    Fx *fx = *state;
    char p[PATH_BYTES];
    ReportClaims cl;
    Report rep;
    int rc;
    snprintf(p, sizeof p, "%s/none.csv", fx->dir);
    TU_CAPTURE_ECHO(&fx->cap, rc = report_claims_load(&cl, p));
    assert_int_equal(rc, ERR_IO);
    assert_log_has(fx->cap.text, p);
    snprintf(p, sizeof p, "%s/bad.csv", fx->dir);
    const char *bad_header = "id,value,text\nx,1,y\n";
    tu_write_file(p, bad_header, strlen(bad_header));
    TU_CAPTURE_ECHO(&fx->cap, rc = report_claims_load(&cl, p));
    assert_int_equal(rc, ERR_FORMAT);
    assert_log_has(fx->cap.text, "bad.csv:1");
    const char *bad_value = "id,value,unit,comparison,text,source\nx,ten,x,~,t,s\n";
    tu_write_file(p, bad_value, strlen(bad_value));
    TU_CAPTURE_ECHO(&fx->cap, rc = report_claims_load(&cl, p));
    assert_int_equal(rc, ERR_FORMAT);
    assert_log_has(fx->cap.text, "bad.csv:2");
    assert_log_has(fx->cap.text, "ten");
    snprintf(p, sizeof p, "%s/no-such-dir", fx->dir);
    TU_CAPTURE_ECHO(&fx->cap, rc = report_scan(&rep, p));
    assert_int_equal(rc, ERR_IO);
    assert_log_has(fx->cap.text, "no-such-dir");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mean_std),
        cmocka_unit_test_setup_teardown(test_aggregate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
