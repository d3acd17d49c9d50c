/* test_flops.c: the FLOP rule of core/flops.c, field by field on layers counted by hand (3x3, stride 2,
 * 1x1, FC), the reduction and Amdahl formulas, and the network totals against model_count's MACs. */
#include "tests/testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/flops.h"
#include "core/layer.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"

/* Exact comparison: every count here is an integer far below 2^53. */
static void tf_assert_flops(const ConvFlops *f, double fwd, double dense, double sparse, double pre, double elem) {
    if (f->fwd != fwd || f->bwd_dense != dense || f->bwd_sparse != sparse || f->bwd_pre != pre ||
        f->bwd_elementwise != elem)
        fail_msg("got fwd %.17g dense %.17g sparse %.17g pre %.17g elem %.17g; expected %.17g %.17g %.17g %.17g "
                 "%.17g",
                 f->fwd, f->bwd_dense, f->bwd_sparse, f->bwd_pre, f->bwd_elementwise, fwd, dense, sparse, pre, elem);
}

static LayerSpec tf_conv(int k, int r, int stride, int pad) {
    return (LayerSpec){.kind = LAYER_CONV, .name = "conv", .in = {0, -1}, .out_c = k, .kh = r, .kw = r,
                       .stride = stride, .pad = pad};
}

/* Output dims through the layer's own shape rule, so the hand-computed P, Q below are checked too. */
static Dims4 tf_out(const LayerSpec *s, Dims4 in) {
    Dims4 out;
    assert_int_equal(layer_out_dims(s, &in, &out), 0);
    return out;
}

/* N=2, input C=3, H=W=5, K=4, 3x3, stride 1, pad 1 -> P=Q=5.
 *   K*P*Q = 100, C*R*S = 27, N*K*P*Q = 200, N*C*H*W = 150.
 *   fwd        = 2*N*K*P*Q*C*R*S = 2*2*100*27           = 10800
 *   bwd_dense  = 2*fwd                                  = 21600
 *   nnz = 50 (density 0.25):
 *   bwd_sparse = 2*(2*nnz*C*R*S) = 4*50*27              = 5400
 *   reuse:    bwd_pre  = 2*(2*K*P*Q*C*R*S) + N*C*H*W = 4*2700 + 150 = 10950
 *             elementwise = 200 + 200 + 150             = 550
 *             effective = 5400 + 10950 + 550 = 16900; reduction = 21600/16900
 *   no reuse: bwd_pre = 0, elementwise = N*K*P*Q = 200; effective = 5600; reduction = 21600/5600 */
static void test_conv_3x3_by_hand(void **state) {
    LayerSpec s = tf_conv(4, 3, 1, 1);
    Dims4 in = {1, 3, 5, 5}, out = tf_out(&s, in);
    assert_true(out.c == 4 && out.h == 5 && out.w == 5);
    ConvFlops f;
    flops_conv(&s, in, out, 2, 50, true, &f);
    tf_assert_flops(&f, 10800, 21600, 5400, 10950, 550);
    assert_true(flops_bwd_effective(&f) == 16900);
    assert_true(fabs(flops_reduction(&f) - 21600.0 / 16900.0) < 1e-15);

    flops_conv(&s, in, out, 2, 50, false, &f);
    tf_assert_flops(&f, 10800, 21600, 5400, 0, 200);
    assert_true(flops_bwd_effective(&f) == 5600);
    assert_true(fabs(flops_reduction(&f) - 21600.0 / 5600.0) < 1e-15);

    /* nnz 0 without reuse: only the mask pass is left. */
    flops_conv(&s, in, out, 2, 0, false, &f);
    tf_assert_flops(&f, 10800, 21600, 0, 0, 200);
    assert_true(flops_reduction(&f) == 21600.0 / 200.0);
}

/* N=4, C=8, H=W=8, K=16, 3x3, stride 2, pad 1 -> P=Q=floor((8+2-3)/2)+1 = 4.
 *   K*P*Q = 256, C*R*S = 72, N*K*P*Q = 1024, N*C*H*W = 2048.
 *   fwd = 2*4*256*72 = 147456; dense = 294912
 *   nnz = 100: sparse = 4*100*72 = 28800
 *   reuse: pre = 4*256*72 + 2048 = 75776; elementwise = 1024 + 1024 + 2048 = 4096 */
static void test_conv_stride2_by_hand(void **state) {
    LayerSpec s = tf_conv(16, 3, 2, 1);
    Dims4 in = {1, 8, 8, 8}, out = tf_out(&s, in);
    assert_true(out.c == 16 && out.h == 4 && out.w == 4);
    ConvFlops f;
    flops_conv(&s, in, out, 4, 100, true, &f);
    tf_assert_flops(&f, 147456, 294912, 28800, 75776, 4096);
    flops_conv(&s, in, out, 4, 100, false, &f);
    tf_assert_flops(&f, 147456, 294912, 28800, 0, 1024);
}

/* N=3, C=16, H=W=7, K=32, 1x1, stride 1, pad 0 -> P=Q=7.
 *   K*P*Q = 1568, C*R*S = 16, N*K*P*Q = 4704, N*C*H*W = 2352.
 *   fwd = 2*3*1568*16 = 150528; dense = 301056
 *   nnz = 470: sparse = 4*470*16 = 30080
 *   reuse: pre = 4*1568*16 + 2352 = 102704; elementwise = 4704 + 4704 + 2352 = 11760
 * and the 1x1 stride-2 downsample of the same input: P=Q=floor((7-1)/2)+1 = 4, K*P*Q = 512,
 *   N*K*P*Q = 1536: fwd = 2*3*512*16 = 49152; nnz = 1536 (all): sparse = 4*1536*16 = 98304 = dense;
 *   pre = 4*512*16 + 2352 = 35120; elementwise = 1536 + 1536 + 2352 = 5424 */
static void test_conv_1x1_by_hand(void **state) {
    LayerSpec s = tf_conv(32, 1, 1, 0);
    Dims4 in = {1, 16, 7, 7}, out = tf_out(&s, in);
    assert_true(out.c == 32 && out.h == 7 && out.w == 7);
    ConvFlops f;
    flops_conv(&s, in, out, 3, 470, true, &f);
    tf_assert_flops(&f, 150528, 301056, 30080, 102704, 11760);

    LayerSpec d = tf_conv(32, 1, 2, 0);
    out = tf_out(&d, in);
    assert_true(out.c == 32 && out.h == 4 && out.w == 4);
    flops_conv(&d, in, out, 3, 1536, true, &f);
    tf_assert_flops(&f, 49152, 98304, 98304, 35120, 5424);
}

/* FC: N=2, input 4x2x2 = 16 features, 10 outputs: fwd = 2*2*10*16 = 640, dense = 1280, propagated whole:
 * sparse = 1280, no pre, no elementwise, reduction exactly 1. */
static void test_fc_dense(void **state) {
    LayerSpec s = {.kind = LAYER_FC, .name = "fc", .in = {0, -1}, .out_c = 10, .bias = true};
    Dims4 in = {1, 4, 2, 2}, out = tf_out(&s, in);
    ConvFlops f;
    flops_fc(&s, in, out, 2, &f);
    tf_assert_flops(&f, 640, 1280, 1280, 0, 0);
    assert_true(flops_reduction(&f) == 1.0);
}

static void test_add_and_zero(void **state) {
    ConvFlops acc = {0}, a = {1, 2, 3, 4, 5}, b = {10, 20, 30, 40, 50};
    assert_true(flops_reduction(&acc) == 0); /* nothing counted */
    flops_add(&acc, &a);
    flops_add(&acc, &b);
    tf_assert_flops(&acc, 11, 22, 33, 44, 55);
    assert_true(flops_bwd_effective(&acc) == 132);
}

/* p = 0.7 at 10x: 1 / (0.3 + 0.07) = 2.7027, the paper's 2.7x. */
static void test_amdahl(void **state) {
    assert_true(fabs(flops_amdahl(10, FLOPS_DEFAULT_P) - 1 / 0.37) < 1e-12); /* the default p */
    assert_true(fabs(flops_amdahl(10, 0.7) - 1 / 0.37) < 1e-12);
    assert_true(flops_amdahl(10, 0) == 1);  /* no backward share: no gain */
    assert_true(fabs(flops_amdahl(10, 1) - 10) < 1e-12);
    assert_true(flops_amdahl(1, 0.7) == 1);  /* no reduction: no gain */
    assert_true(flops_amdahl(0.5, 0.5) < 1); /* a costlier backward slows training */
}

/* Density 1 gains nothing: the effective backward is at least the dense one, with or without reuse,
 * for every layer shape above and for a whole network. */
static void test_density_one_no_gain(void **state) {
    LayerSpec s[3] = {tf_conv(4, 3, 1, 1), tf_conv(16, 3, 2, 1), tf_conv(32, 1, 1, 0)};
    Dims4 in[3] = {{1, 3, 5, 5}, {1, 8, 8, 8}, {1, 16, 7, 7}};
    for (int i = 0; i < 3; i++) {
        Dims4 out = tf_out(&s[i], in[i]);
        for (int reuse = 0; reuse < 2; reuse++) {
            ConvFlops f;
            flops_conv(&s[i], in[i], out, 5, 5.0 * out.c * out.h * out.w, reuse, &f);
            assert_true(f.bwd_sparse == f.bwd_dense);
            assert_true(flops_bwd_effective(&f) >= f.bwd_dense);
            assert_true(flops_reduction(&f) < 1);
        }
    }
    ModelSpec m = {0};
    assert_int_equal(model_build(&m, "resnet20", 3, 32, 32, 10), 0);
    ConvFlops t;
    assert_int_equal(flops_network(&m, 128, 1.0, false, NULL, &t), 0);
    assert_true(flops_bwd_effective(&t) >= t.bwd_dense);
    model_deinit(&m);
}

/* resnet18 at 3x224x224, 1000 classes, batch 8: conv dense backward = 2*2*conv MACs*batch, forward of
 * everything = 2*MACs*batch (model_count: 1,814,073,344 MACs per sample, of which fc 512*1000), FC
 * counted dense, every other kind zero, the total the sum of the rows. */
static void test_network_resnet18(void **state) {
    const int batch = 8;
    ModelSpec m = {0};
    assert_int_equal(model_build(&m, "resnet18", 3, 224, 224, 1000), 0);
    LayerCount *rows = mem_calloc((size_t)m.n_layers, sizeof *rows);
    ConvFlops *pl = mem_calloc((size_t)m.n_layers, sizeof *pl);
    assert_non_null(rows);
    assert_non_null(pl);
    int64_t params, macs;
    assert_int_equal(model_count(&m, rows, &params, &macs), 0);
    assert_true(macs == 1814073344);

    for (int reuse = 0; reuse < 2; reuse++) {
        ConvFlops t, conv = {0}, sum = {0};
        assert_int_equal(flops_network(&m, batch, 1.0, reuse, pl, &t), 0);
        int64_t conv_macs = 0;
        int n_conv = 0;
        for (int i = 0; i < m.n_layers; i++) {
            flops_add(&sum, &pl[i]);
            if (m.layers[i].kind == LAYER_CONV) {
                conv_macs += rows[i].macs;
                flops_add(&conv, &pl[i]);
                n_conv++;
                assert_true(pl[i].fwd == 2.0 * rows[i].macs * batch);
            } else if (m.layers[i].kind == LAYER_FC) {
                assert_true(pl[i].fwd == 2.0 * rows[i].macs * batch);
                assert_true(pl[i].bwd_sparse == pl[i].bwd_dense && pl[i].bwd_pre == 0 && pl[i].bwd_elementwise == 0);
            } else {
                ConvFlops zero = {0};
                assert_memory_equal(&pl[i], &zero, sizeof zero);
            }
        }
        assert_int_equal(n_conv, 20); /* stem, 16 block convs, 3 downsamples */
        assert_true(conv_macs == macs - 512 * 1000);
        assert_true(conv.bwd_dense == 2.0 * 2.0 * (double)conv_macs * batch);
        assert_true(conv.bwd_sparse == conv.bwd_dense); /* density 1 */
        assert_true(t.fwd == 2.0 * (double)macs * batch);
        assert_true(t.bwd_dense == 2.0 * 2.0 * (double)macs * batch);
        assert_memory_equal(&t, &sum, sizeof t);
    }
    mem_free(pl);
    mem_free(rows);
    model_deinit(&m);
}

/* At batch 256 and density 0.1 with reuse (the paper's setting) the conv layers' sparse part is exactly
 * 0.1 of their dense backward and the pre-ReSprop part about 1/N of it (two single-sample passes against
 * two N-sample passes, plus the small batch sum), so the backward reduction lands just under 10x
 * (about 1 / (0.1 + 1/256 + the elementwise share)). */
static void test_network_paper_setting(void **state) {
    ModelSpec m = {0};
    assert_int_equal(model_build(&m, "resnet18", 3, 224, 224, 1000), 0);
    ConvFlops *pl = mem_calloc((size_t)m.n_layers, sizeof *pl);
    assert_non_null(pl);
    ConvFlops t, conv = {0};
    assert_int_equal(flops_network(&m, 256, 0.1, true, pl, &t), 0);
    for (int i = 0; i < m.n_layers; i++)
        if (m.layers[i].kind == LAYER_CONV) flops_add(&conv, &pl[i]);
    assert_true(fabs(conv.bwd_sparse / conv.bwd_dense - 0.1) < 1e-12);
    double pre_frac = conv.bwd_pre / conv.bwd_dense; /* 1/256 + the batch sum (0.0042 measured) */
    assert_true(pre_frac > 1.0 / 256 && pre_frac < 1.0 / 256 + 1e-3);
    assert_true(conv.bwd_elementwise < 0.01 * conv.bwd_dense);
    double r = flops_reduction(&conv);
    assert_true(r > 8.5 && r < 10);
    assert_true(flops_reduction(&t) < r); /* the dense FC only lowers it */
    mem_free(pl);
    model_deinit(&m);
}

static void test_network_rejects(void **state) {
    ModelSpec m = {0};
    assert_int_equal(model_build(&m, "lenet5", 1, 28, 28, 10), 0);
    ConvFlops t;
    /* each rejection logs one error */
    assert_int_equal(flops_network(&m, 0, 0.5, true, NULL, &t), ERR_CONFIG);
    assert_int_equal(flops_network(&m, 4, 1.5, true, NULL, &t), ERR_CONFIG);
    assert_int_equal(flops_network(&m, 4, -0.1, true, NULL, &t), ERR_CONFIG);
    assert_int_equal(flops_network(&m, 4, NAN, true, NULL, &t), ERR_CONFIG);
    ModelSpec empty = {0};
    assert_int_equal(flops_network(&empty, 4, 0.5, true, NULL, &t), ERR_SHAPE);
    /* density 0 without reuse: the convs keep only their mask pass, the FCs stay dense */
    ConvFlops *pl = mem_calloc((size_t)m.n_layers, sizeof *pl);
    assert_non_null(pl);
    assert_int_equal(flops_network(&m, 4, 0.0, false, pl, &t), 0);
    double fc_dense = 0;
    for (int i = 0; i < m.n_layers; i++) {
        if (m.layers[i].kind == LAYER_CONV)
            assert_true(pl[i].bwd_sparse == 0 && pl[i].bwd_pre == 0 && pl[i].bwd_elementwise > 0);
        if (m.layers[i].kind == LAYER_FC) fc_dense += pl[i].bwd_dense;
    }
    assert_true(fc_dense > 0 && t.bwd_sparse == fc_dense && t.bwd_pre == 0);
    mem_free(pl);
    model_deinit(&m);
}

static int tf_setup(void **state) {
    *state = (void *)(uintptr_t)mem_live_bytes();
    return 0;
}

static int tf_teardown(void **state) {
    assert_int_equal(mem_live_bytes(), (uintptr_t)*state);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conv_3x3_by_hand, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_conv_stride2_by_hand, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_conv_1x1_by_hand, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_fc_dense, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_add_and_zero, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_amdahl, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_density_one_no_gain, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_network_resnet18, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_network_paper_setting, tf_setup, tf_teardown),
        cmocka_unit_test_setup_teardown(test_network_rejects, tf_setup, tf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
