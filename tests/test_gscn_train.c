/* test_gscn_train.c: `resprop train --backend gscn` and `--save-masks` on a tiny synthetic run.
 *   - backend gscn trains bit for bit like backend sparse (losses, test losses): the simulator only
 *     reads S;
 *   - its record holds one /gscn row and one /layers/NNN_NAME/gscn row per conv layer every gscn-every
 *     steps, with finite simulated speedups once the steps are sparse;
 *   - a killed and resumed gscn run has the same simulated series as an uninterrupted one;
 *   - the masks saved by --save-masks, read back and simulated as `resprop sim --masks` does, give
 *     exactly the cycles the training run simulated from its CSR S at that step;
 *   - --save-masks on backend dnnl and an unknown gscn-preset are ERR_CONFIG.
 * The presets are read from accel/presets/ relative to the repository root (the group setup walks up). */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "accel/arch.h"
#include "accel/masks.h"
#include "accel/sim.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/run.h"
#include "core/sparse.h"
#include "results/h5rec.h"

static char tmpdir[256];
static TuCapture cap;

static int group_setup(void **state) {
    (void)state;
    for (int up = 0; up <= 4; up++) {
        if (access(ARCH_PRESET_DIR "/gscn-small.ini", R_OK) == 0) break;
        if (up == 4 || chdir("..") != 0) return -1;
    }
    if (tu_mkdtemp(tmpdir, sizeof tmpdir, "test_gscn_train") != 0) return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    return tu_rmtree(tmpdir);
}

/* A tiny resnet20 on 3x8x8 synthetic images, 2 epochs of 8 steps, ReSprop at RS 0.9 without warm-up. */
static void tiny_config(RunConfig *cfg, CfgExtra *extra, const char *name, const char *backend) {
    assert_int_equal(config_defaults(&runconfig_table, cfg), 0);
    memset(extra, 0, sizeof *extra);
    snprintf(cfg->dataset, sizeof cfg->dataset, "synthetic");
    snprintf(cfg->model, sizeof cfg->model, "resnet20");
    snprintf(cfg->synthetic_shape, sizeof cfg->synthetic_shape, "3x8x8");
    cfg->synthetic_train = 256;
    cfg->synthetic_test = 64;
    cfg->synthetic_classes = 4;
    cfg->batch = 32;
    cfg->epochs = 2;
    cfg->lr = 0.05;
    cfg->log_every = 1;
    cfg->quiet = true;
    cfg->threads = 2;
    snprintf(cfg->scheme, sizeof cfg->scheme, "resprop");
    cfg->reuse = 0.9;
    snprintf(cfg->backend, sizeof cfg->backend, "%s", backend);
    cfg->gscn_every = 3;
    snprintf(cfg->gscn_preset, sizeof cfg->gscn_preset, "gscn-small");
    assert_int_equal(config_set(&runconfig_table, cfg, extra, "scheme.warmup", "none", "test"), 0);
    snprintf(cfg->out, sizeof cfg->out, "%s/%s.h5", tmpdir, name);
}

static double *read_col(const char *file, const char *group, const char *col, long *n) {
    H5Reader *rd = NULL;
    double *data = NULL;
    assert_int_equal(h5reader_open(&rd, file), 0);
    int rc = h5reader_column(rd, group, col, &data, n);
    if (rc) fail_msg("%s: no column %s/%s", file, group, col);
    h5reader_close(rd);
    return data;
}

static void assert_same_series(const char *a, const char *b, const char *group, const char *col) {
    long na, nb;
    double *x = read_col(a, group, col, &na), *y = read_col(b, group, col, &nb);
    assert_int_equal(na, nb);
    assert_true(na > 0);
    if (memcmp(x, y, (size_t)na * sizeof(double)) != 0) fail_msg("%s/%s differs between %s and %s", group, col, a, b);
    mem_free(x);
    mem_free(y);
}

/* The conv layers' group names "/layers/NNN_NAME" of the model the tiny config trains. */
static int conv_groups(ModelSpec *m, char groups[][64], int *layer_idx) {
    int n = 0;
    assert_int_equal(model_build(m, "resnet20", 3, 8, 8, 4), 0);
    for (int i = 1; i < m->n_layers; i++)
        if (m->layers[i].kind == LAYER_CONV) {
            snprintf(groups[n], 64, "/layers/%03d_%s", i, m->layers[i].name);
            layer_idx[n++] = i;
        }
    return n;
}

static void test_same_numerics_as_sparse(void **state) {
    (void)state;
    RunConfig cs, cg;
    CfgExtra es, eg;
    RunSummary ss, sg;
    size_t live = mem_live_bytes();
    tiny_config(&cs, &es, "sparse", "sparse");
    tiny_config(&cg, &eg, "gscn", "gscn");
    assert_int_equal(run_train(&cs, &es, NULL, &ss), 0);
    assert_int_equal(run_train(&cg, &eg, NULL, &sg), 0);
    assert_true(ss.complete && sg.complete);
    assert_same_series(ss.record, sg.record, "/step", "loss");
    assert_same_series(ss.record, sg.record, "/epoch", "train_loss");
    assert_same_series(ss.record, sg.record, "/epoch", "test_loss");
    assert_int_equal(mem_live_bytes(), live);

    /* 16 steps observed every 3: steps 3, 6, ..., 15 */
    long n;
    double *step = read_col(sg.record, "/gscn", "step", &n), *sp = read_col(sg.record, "/gscn", "speedup", &n);
    assert_int_equal(n, 5);
    int finite = 0;
    for (long i = 0; i < n; i++) {
        assert_true(step[i] == 3.0 * (double)(i + 1));
        if (isfinite(sp[i])) {
            assert_true(sp[i] > 0);
            finite++;
        }
    }
    assert_true(finite >= 1);
    mem_free(step);
    mem_free(sp);
    ModelSpec m = {0};
    char groups[64][64], g[96];
    int idx[64];
    int nc = conv_groups(&m, groups, idx);
    for (int j = 0; j < nc; j++) {
        snprintf(g, sizeof g, "%.60s/gscn", groups[j]);
        double *cyc = read_col(sg.record, g, "cycles", &n), *d = read_col(sg.record, g, "density", &n);
        assert_int_equal(n, 5);
        for (long i = 0; i < n; i++) {
            assert_true(d[i] >= 0 && d[i] <= 1);
            assert_true(isnan(cyc[i]) || cyc[i] > 0);
        }
        mem_free(cyc);
        mem_free(d);
    }
    model_deinit(&m);
    /* the sparse run's record has no simulator series */
    H5Reader *rd = NULL;
    double *x = NULL;
    assert_int_equal(h5reader_open(&rd, ss.record), 0);
    int rc;
    TU_CAPTURE(&cap, rc = h5reader_column(rd, "/gscn", "speedup", &x, &n));
    assert_int_not_equal(rc, 0);
    h5reader_close(rd);
}

static void test_resume_keeps_series(void **state) {
    (void)state;
    RunConfig full, part, rcfg;
    CfgExtra ef, ep, er;
    RunSummary sf, sp, sr;
    tiny_config(&full, &ef, "gfull", "gscn");
    tiny_config(&part, &ep, "gkilled", "gscn");
    full.gscn_every = part.gscn_every = 5; /* 8 steps per epoch: the kill is between two observations */
    assert_int_equal(run_train(&full, &ef, NULL, &sf), 0);
    RunHooks stop = {.stop_after_epochs = 1};
    assert_int_equal(run_train(&part, &ep, &stop, &sp), 0);
    assert_false(sp.complete);
    char final[600];
    snprintf(final, sizeof final, "%s/gkilled.h5", tmpdir);
    assert_int_equal(run_config_for_resume(final, &rcfg, &er), 0);
    assert_int_equal(run_train(&rcfg, &er, NULL, &sr), 0);
    assert_true(sr.complete);
    assert_same_series(sf.record, sr.record, "/gscn", "step");
    assert_same_series(sf.record, sr.record, "/gscn", "sim_conv_ms");
    assert_same_series(sf.record, sr.record, "/layers/001_conv1/gscn", "cycles");
}

static void test_save_masks_round_trip(void **state) {
    (void)state;
    RunConfig c;
    CfgExtra e;
    RunSummary s;
    size_t live = mem_live_bytes();
    tiny_config(&c, &e, "masks", "gscn");
    c.save_masks = 2;
    assert_int_equal(run_train(&c, &e, NULL, &s), 0);
    H5Reader *rd = NULL;
    char steps[256];
    assert_int_equal(h5reader_open(&rd, s.record), 0);
    assert_int_equal(h5reader_attr_str(rd, "/", "mask_steps", steps, sizeof steps), 0);
    assert_string_equal(steps, "3,6"); /* the first two observed steps (all sparse: no warm-up) */

    ModelSpec m = {0};
    char groups[64][64], g[96];
    int idx[64];
    int nc = conv_groups(&m, groups, idx);
    LayerCount *counts = mem_calloc((size_t)m.n_layers, sizeof *counts);
    assert_non_null(counts);
    assert_int_equal(model_count(&m, counts, NULL, NULL), 0);
    AccelArch a;
    assert_int_equal(arch_load_preset(&a, "gscn-small"), 0);
    for (int which = 0; which < 2; which++) {
        long st = which ? 6 : 3;
        char col[32];
        snprintf(col, sizeof col, "step_%08ld", st);
        for (int j = 0; j < nc; j++) {
            const LayerSpec *ls = &m.layers[idx[j]];
            Dims4 in = counts[ls->in[0]].out;
            ConvGeom geo = sparse_geom(c.batch, in.c, in.h, in.w, ls->out_c, ls->kh, ls->kw, ls->stride, ls->pad);
            long nw;
            double *words = NULL;
            snprintf(g, sizeof g, "%.60s/masks", groups[j]);
            assert_int_equal(h5reader_column(rd, g, col, &words, &nw), 0);
            double kq;
            assert_int_equal(h5reader_attr_f64(rd, g, "k", &kq), 0);
            assert_true(kq == geo.k);
            SparseGrad sg;
            assert_int_equal(sparse_init(&sg, geo.n, geo.p, geo.q, geo.k, (size_t)geo.n * geo.p * geo.q * geo.k), 0);
            assert_int_equal(mask_unpack(&sg, words, (size_t)nw), 0);
            SimLayerStats out;
            assert_int_equal(sim_layer(&a, geo, &sg, SIM_FAST, &out), 0);
            long n;
            snprintf(g, sizeof g, "%.60s/gscn", groups[j]);
            double *cyc = read_col(s.record, g, "cycles", &n), *nnz = read_col(s.record, g, "nnz", &n);
            assert_true(n >= 2);
            if (cyc[which] != out.part[SIM_PART_TOTAL].cycles || nnz[which] != (double)sg.nnz)
                fail_msg("%s step %ld: the record simulated %g cycles (%g nonzeros), the saved mask gives %g (%zu)",
                         groups[j], st, cyc[which], nnz[which], out.part[SIM_PART_TOTAL].cycles, sg.nnz);
            mem_free(cyc);
            mem_free(nnz);
            sparse_deinit(&sg);
            mem_free(words);
        }
    }
    h5reader_close(rd);
    mem_free(counts);
    model_deinit(&m);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_bad_config(void **state) {
    (void)state;
    RunConfig c;
    CfgExtra e;
    RunSummary s;
    int rc;
    tiny_config(&c, &e, "bad-dnnl", "dnnl");
    c.save_masks = 1;
    TU_CAPTURE(&cap, rc = run_train(&c, &e, NULL, &s));
    assert_int_equal(rc, ERR_CONFIG);
    assert_non_null(strstr(cap.text, "save-masks"));
    tiny_config(&c, &e, "bad-preset", "gscn");
    snprintf(c.gscn_preset, sizeof c.gscn_preset, "no-such-preset");
    TU_CAPTURE(&cap, rc = run_train(&c, &e, NULL, &s));
    assert_int_equal(rc, ERR_CONFIG);
    assert_non_null(strstr(cap.text, "no-such-preset"));
    char final[600];
    snprintf(final, sizeof final, "%s/bad-preset.h5", tmpdir);
    assert_int_not_equal(access(final, F_OK), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_numerics_as_sparse),
        cmocka_unit_test(test_resume_keeps_series),
        cmocka_unit_test(test_save_masks_round_trip),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
