/* test_model.c: the architecture tables of core/model.c: torchvision's published parameter and
 * multiply-add counts, layer shapes, table structure and input/name rejection. */
#include "tests/testutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/layer.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"

/* Built model plus its counts; freed by tm_free. */
typedef struct {
    ModelSpec m;
    LayerCount *rows;
    int64_t params, macs;
} TmModel;

static void tm_build(TmModel *t, const char *name, int c, int h, int w, int classes) {
    memset(t, 0, sizeof *t);
    int rc = model_build(&t->m, name, c, h, w, classes);
    if (rc != 0) fail_msg("model_build(%s, %dx%dx%d, %d) = %s", name, c, h, w, classes, err_str(rc));
    t->rows = mem_calloc((size_t)t->m.n_layers, sizeof *t->rows);
    assert_non_null(t->rows);
    assert_int_equal(model_count(&t->m, t->rows, &t->params, &t->macs), 0);
}

static void tm_free(TmModel *t) {
    mem_free(t->rows);
    model_deinit(&t->m);
}

/* Index of the layer called name, failing the test when absent. */
static int tm_find(const ModelSpec *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, name) == 0) return i;
    fail_msg("%s: no layer '%s'", m->name, name);
    return -1;
}

static bool tm_has(const ModelSpec *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, name) == 0) return true;
    return false;
}

static void tm_assert_dims(Dims4 d, int c, int h, int w) {
    if (d.n != 1 || d.c != c || d.h != h || d.w != w)
        fail_msg("dims %dx%dx%dx%d; expected 1x%dx%dx%d", d.n, d.c, d.h, d.w, c, h, w);
}

/* The fixture keeps the live byte count of mem.h before the test; teardown checks it is back. */
static int tm_setup(void **state) {
    *state = (void *)(uintptr_t)mem_live_bytes();
    return 0;
}

static int tm_teardown(void **state) {
    assert_int_equal(mem_live_bytes(), (uintptr_t)*state);
    return 0;
}

/* ------------------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int c, h, w, classes;
    int64_t params, macs;
} TmGolden;

/* torchvision (and fvcore/ptflops conv+linear) counts. */
static const TmGolden tm_golden[] = {
    {"resnet18", 3, 224, 224, 1000, 11689512, 1814073344},
    {"resnet34", 3, 224, 224, 1000, 21797672, 3663761408},
    {"resnet50", 3, 224, 224, 1000, 25557032, 4089184256},
    {"vgg16", 3, 224, 224, 1000, 138365992, 15470264320},
    {"resnet18", 3, 32, 32, 10, 11173962, 555422720},
};

static void test_torchvision_counts(void **state) {
    for (size_t i = 0; i < sizeof tm_golden / sizeof tm_golden[0]; i++) {
        const TmGolden *g = &tm_golden[i];
        TmModel t;
        tm_build(&t, g->name, g->c, g->h, g->w, g->classes);
        if (t.params != g->params || t.macs != g->macs)
            fail_msg("%s %dx%dx%d/%d: params %lld macs %lld; expected %lld / %lld", g->name, g->c, g->h, g->w,
                     g->classes, (long long)t.params, (long long)t.macs, (long long)g->params,
                     (long long)g->macs);
        tm_free(&t);
    }
}

static void test_resnet20_counts(void **state) {
    TmModel t;
    tm_build(&t, "resnet20", 3, 32, 32, 10);
    double p = (double)t.params, m = (double)t.macs;
    if (!(p > 0.27e6 * 0.99 && p < 0.27e6 * 1.01) || !(m > 40.8e6 * 0.99 && m < 40.8e6 * 1.01))
        fail_msg("resnet20: params %lld macs %lld; expected 0.27 M and 40.8 M within 1%%",
                 (long long)t.params, (long long)t.macs);
    /* depth 20 = 19 convs (+2 projections) + fc */
    int n_conv = 0, n_fc = 0;
    for (int i = 0; i < t.m.n_layers; i++) {
        n_conv += t.m.layers[i].kind == LAYER_CONV;
        n_fc += t.m.layers[i].kind == LAYER_FC;
    }
    assert_int_equal(n_conv, 19 + 2);
    assert_int_equal(n_fc, 1);
    tm_free(&t);
}

static void test_cifar_resnet_depths(void **state) {
    static const struct {
        const char *name;
        int depth;
    } cases[] = {{"resnet20", 20}, {"resnet32", 32}, {"resnet56", 56}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TmModel t;
        tm_build(&t, cases[i].name, 3, 32, 32, 10);
        int n_conv = 0, n_add = 0;
        for (int l = 0; l < t.m.n_layers; l++) {
            n_conv += t.m.layers[l].kind == LAYER_CONV && t.m.layers[l].kh == 3;
            n_add += t.m.layers[l].kind == LAYER_ADD;
        }
        assert_int_equal(n_conv + 1, cases[i].depth);
        assert_int_equal(n_add, (cases[i].depth - 2) / 2);
        tm_free(&t);
    }
}

static void test_lenet5_shapes(void **state) {
    TmModel t;
    tm_build(&t, "lenet5", 1, 28, 28, 10);
    const ModelSpec *m = &t.m;
    tm_assert_dims(t.rows[0].out, 1, 28, 28);
    int conv1 = tm_find(m, "conv1");
    assert_false(m->layers[conv1].bias);
    tm_assert_dims(t.rows[conv1].out, 6, 28, 28);
    assert_int_equal(t.rows[conv1].params, 6 * 1 * 5 * 5);
    assert_int_equal(t.rows[conv1].macs, 6 * 28 * 28 * 25);
    assert_true(m->layers[tm_find(m, "bn1")].relu);
    tm_assert_dims(t.rows[tm_find(m, "pool1")].out, 6, 14, 14);
    tm_assert_dims(t.rows[tm_find(m, "conv2")].out, 16, 10, 10);
    tm_assert_dims(t.rows[tm_find(m, "pool2")].out, 16, 5, 5);
    int fc1 = tm_find(m, "fc1");
    tm_assert_dims(t.rows[fc1].out, 120, 1, 1);
    assert_int_equal(t.rows[fc1].params, 400 * 120 + 120);
    assert_int_equal(t.rows[fc1].macs, 400 * 120);
    assert_int_equal(m->layers[tm_find(m, "relu1")].kind, LAYER_RELU);
    tm_assert_dims(t.rows[tm_find(m, "fc2")].out, 84, 1, 1);
    int fc3 = tm_find(m, "fc3");
    tm_assert_dims(t.rows[fc3].out, 10, 1, 1);
    assert_int_equal(m->layers[m->n_layers - 1].in[0], fc3);
    /* conv1 150 + bn1 12 + conv2 2400 + bn2 32 + fc1 48120 + fc2 10164 + fc3 850 */
    assert_int_equal(t.params, 61728);
    assert_int_equal(m->n_layers, 13);
    tm_free(&t);
}

static void test_resnet_stems(void **state) {
    TmModel t;
    /* ImageNet stem: 7x7/2 conv, 3x3/2 max pool. */
    tm_build(&t, "resnet18", 3, 224, 224, 1000);
    int conv1 = tm_find(&t.m, "conv1");
    assert_int_equal(t.m.layers[conv1].kh, 7);
    assert_int_equal(t.m.layers[conv1].stride, 2);
    assert_int_equal(t.m.layers[conv1].pad, 3);
    tm_assert_dims(t.rows[tm_find(&t.m, "maxpool")].out, 64, 56, 56);
    tm_assert_dims(t.rows[tm_find(&t.m, "layer4.1.add")].out, 512, 7, 7);
    tm_assert_dims(t.rows[tm_find(&t.m, "avgpool")].out, 512, 1, 1);
    assert_false(tm_has(&t.m, "layer1.0.downsample.0"));
    tm_free(&t);
    /* CIFAR stem: 3x3/1 conv, no max pool. */
    tm_build(&t, "resnet18", 3, 32, 32, 10);
    conv1 = tm_find(&t.m, "conv1");
    assert_int_equal(t.m.layers[conv1].kh, 3);
    assert_int_equal(t.m.layers[conv1].stride, 1);
    assert_false(tm_has(&t.m, "maxpool"));
    tm_assert_dims(t.rows[tm_find(&t.m, "layer4.1.add")].out, 512, 4, 4);
    tm_free(&t);
    /* 64 px is still small; 65 px is not. */
    tm_build(&t, "resnet34", 3, 64, 64, 10);
    assert_false(tm_has(&t.m, "maxpool"));
    tm_free(&t);
    tm_build(&t, "resnet34", 3, 65, 64, 10);
    assert_true(tm_has(&t.m, "maxpool"));
    tm_free(&t);
}

static void test_basic_block_wiring(void **state) {
    TmModel t;
    tm_build(&t, "resnet20", 3, 32, 32, 10);
    const ModelSpec *m = &t.m;
    assert_false(tm_has(m, "layer1.0.downsample.0"));
    int ds = tm_find(m, "layer2.0.downsample.0");
    assert_int_equal(m->layers[ds].kind, LAYER_CONV);
    assert_int_equal(m->layers[ds].kh, 1);
    assert_int_equal(m->layers[ds].stride, 2);
    assert_int_equal(m->layers[ds].pad, 0);
    assert_false(m->layers[ds].bias);
    assert_int_equal(m->layers[ds].in[0], tm_find(m, "layer1.2.add"));
    int dsbn = tm_find(m, "layer2.0.downsample.1");
    assert_false(m->layers[dsbn].relu);
    int add = tm_find(m, "layer2.0.add");
    assert_true(m->layers[add].relu);
    assert_int_equal(m->layers[add].in[0], tm_find(m, "layer2.0.bn2"));
    assert_int_equal(m->layers[add].in[1], dsbn);
    assert_false(m->layers[tm_find(m, "layer2.0.bn2")].relu);
    assert_true(m->layers[tm_find(m, "layer2.0.bn1")].relu);
    assert_int_equal(m->layers[tm_find(m, "layer2.0.conv1")].stride, 2);
    /* identity shortcut: the block input */
    assert_int_equal(m->layers[tm_find(m, "layer2.1.add")].in[1], add);
    tm_assert_dims(t.rows[tm_find(m, "layer3.2.add")].out, 64, 8, 8);
    tm_free(&t);
}

static void test_bottleneck_wiring(void **state) {
    TmModel t;
    tm_build(&t, "resnet50", 3, 224, 224, 1000);
    const ModelSpec *m = &t.m;
    /* layer1.0 changes channels 64 -> 256 at stride 1: projection with stride 1 */
    int ds = tm_find(m, "layer1.0.downsample.0");
    assert_int_equal(m->layers[ds].stride, 1);
    assert_int_equal(m->layers[ds].out_c, 256);
    assert_false(tm_has(m, "layer1.1.downsample.0"));
    /* v1.5: the stride is on the 3x3 conv */
    assert_int_equal(m->layers[tm_find(m, "layer2.0.conv1")].stride, 1);
    int c2 = tm_find(m, "layer2.0.conv2");
    assert_int_equal(m->layers[c2].stride, 2);
    assert_int_equal(m->layers[c2].kh, 3);
    assert_int_equal(m->layers[tm_find(m, "layer2.0.downsample.0")].stride, 2);
    assert_false(m->layers[tm_find(m, "layer2.0.bn3")].relu);
    tm_assert_dims(t.rows[tm_find(m, "layer2.0.conv3")].out, 512, 28, 28);
    tm_assert_dims(t.rows[tm_find(m, "layer4.2.add")].out, 2048, 7, 7);
    tm_assert_dims(t.rows[tm_find(m, "fc")].out, 1000, 1, 1);
    tm_free(&t);
}

static void test_vgg16_heads(void **state) {
    TmModel t;
    tm_build(&t, "vgg16", 3, 224, 224, 1000);
    const ModelSpec *m = &t.m;
    int n_conv = 0, n_fc = 0, n_pool = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const LayerSpec *s = &m->layers[i];
        if (s->kind == LAYER_CONV) {
            n_conv++;
            assert_true(s->bias);
            assert_int_equal(m->layers[i + 1].kind, LAYER_BN);
            assert_true(m->layers[i + 1].relu);
        }
        n_fc += s->kind == LAYER_FC;
        n_pool += s->kind == LAYER_MAXPOOL;
    }
    assert_int_equal(n_conv, 13);
    assert_int_equal(n_fc, 3);
    assert_int_equal(n_pool, 5);
    tm_assert_dims(t.rows[tm_find(m, "features.43")].out, 512, 7, 7);
    int fc0 = tm_find(m, "classifier.0");
    assert_int_equal(t.rows[fc0].params, 512 * 7 * 7 * 4096 + 4096);
    assert_int_equal(m->layers[tm_find(m, "classifier.1")].kind, LAYER_RELU);
    tm_assert_dims(t.rows[tm_find(m, "classifier.6")].out, 1000, 1, 1);
    tm_free(&t);

    tm_build(&t, "vgg16", 3, 32, 32, 10);
    m = &t.m;
    n_fc = 0;
    for (int i = 0; i < m->n_layers; i++) n_fc += m->layers[i].kind == LAYER_FC;
    assert_int_equal(n_fc, 1);
    fc0 = tm_find(m, "classifier.0");
    assert_int_equal(t.rows[fc0].params, 512 * 10 + 10);
    assert_int_equal(m->layers[m->n_layers - 1].in[0], fc0);
    tm_free(&t);
}

/* Every model at several inputs: input first, loss last fed by an FC, inputs precede, unique names,
 * per-kind input arity, counts consistent with the totals. */
static void test_structure_all_models(void **state) {
    static const int inputs[][3] = {{3, 32, 32}, {3, 224, 224}, {1, 32, 40}, {3, 96, 80}};
    for (int k = 0; model_names[k]; k++) {
        for (size_t j = 0; j < sizeof inputs / sizeof inputs[0]; j++) {
            TmModel t;
            tm_build(&t, model_names[k], inputs[j][0], inputs[j][1], inputs[j][2], 7);
            const ModelSpec *m = &t.m;
            assert_string_equal(m->name, model_names[k]);
            assert_int_equal(m->classes, 7);
            assert_true(m->n_layers >= 3);
            assert_int_equal(m->layers[0].kind, LAYER_INPUT);
            const LayerSpec *loss = &m->layers[m->n_layers - 1];
            assert_int_equal(loss->kind, LAYER_LOSS);
            assert_int_equal(m->layers[loss->in[0]].kind, LAYER_FC);
            tm_assert_dims(t.rows[m->n_layers - 1].out, 7, 1, 1);
            int64_t params = 0, macs = 0;
            for (int i = 0; i < m->n_layers; i++) {
                const LayerSpec *s = &m->layers[i];
                if (i > 0 && s->kind == LAYER_INPUT) fail_msg("%s: second input at %d", m->name, i);
                if (i < m->n_layers - 1 && s->kind == LAYER_LOSS) fail_msg("%s: loss at %d", m->name, i);
                assert_true(s->name[0] != '\0');
                int n_in = s->kind == LAYER_INPUT ? 0 : s->kind == LAYER_ADD ? 2 : 1;
                for (int q = 0; q < 2; q++) {
                    if (q < n_in && !(s->in[q] >= 0 && s->in[q] < i))
                        fail_msg("%s: layer %d '%s' input %d = %d", m->name, i, s->name, q, s->in[q]);
                    if (q >= n_in && s->in[q] != -1)
                        fail_msg("%s: layer %d '%s' unused input %d = %d", m->name, i, s->name, q, s->in[q]);
                }
                for (int p = 0; p < i; p++)
                    if (strcmp(m->layers[p].name, s->name) == 0)
                        fail_msg("%s: layers %d and %d are both '%s'", m->name, p, i, s->name);
                params += t.rows[i].params;
                macs += t.rows[i].macs;
            }
            assert_int_equal(params, t.params);
            assert_int_equal(macs, t.macs);
            tm_free(&t);
        }
    }
}

static void test_unknown_name(void **state) {
    ModelSpec m;
    memset(&m, 0xff, sizeof m);
    assert_int_equal(model_build(&m, "resnet19", 3, 32, 32, 10), ERR_CONFIG);
    assert_null(m.layers);
    assert_int_equal(m.n_layers, 0);
    model_deinit(&m); /* a zeroed spec */
    assert_int_equal(model_build(&m, "", 3, 32, 32, 10), ERR_CONFIG);
    assert_int_equal(model_build(&m, NULL, 3, 32, 32, 10), ERR_CONFIG);
    assert_int_equal(model_build(&m, "ResNet18", 3, 32, 32, 10), ERR_CONFIG);
    model_deinit(&m);
}

static void test_bad_inputs(void **state) {
    ModelSpec m;
    /* vgg16: five 2/2 pools need at least 32 px; at 16 px the fifth pool sees a 1x1 map. */
    assert_int_equal(model_build(&m, "vgg16", 3, 16, 16, 10), ERR_CONFIG);
    assert_null(m.layers);
    assert_int_equal(model_build(&m, "vgg16", 3, 32, 16, 10), ERR_CONFIG);
    /* lenet5: after conv1 (pad 2) and pool1 an 8x8 input is 4x4, smaller than conv2's 5x5. */
    assert_int_equal(model_build(&m, "lenet5", 1, 8, 8, 10), ERR_CONFIG);
    assert_int_equal(model_build(&m, "lenet5", 1, 0, 28, 10), ERR_CONFIG);
    assert_int_equal(model_build(&m, "resnet18", 0, 32, 32, 10), ERR_CONFIG);
    assert_int_equal(model_build(&m, "resnet18", 3, 32, 32, 0), ERR_CONFIG);
    model_deinit(&m);
    /* Padded 3x3 convs and 1x1 projections fit any map, so small ResNet inputs are accepted. */
    TmModel t;
    tm_build(&t, "resnet50", 3, 8, 8, 10);
    tm_assert_dims(t.rows[tm_find(&t.m, "layer4.2.add")].out, 2048, 1, 1);
    tm_free(&t);
    tm_build(&t, "vgg16", 3, 32, 32, 10); /* the smallest vgg16 input */
    tm_free(&t);
}

static void test_count_rejects_bad_tables(void **state) {
    TmModel t;
    tm_build(&t, "lenet5", 1, 28, 28, 10);
    int64_t p, mac;
    int conv2 = tm_find(&t.m, "conv2");
    int saved = t.m.layers[conv2].in[0];
    t.m.layers[conv2].in[0] = conv2; /* not an earlier layer */
    assert_int_equal(model_count(&t.m, t.rows, &p, &mac), ERR_SHAPE);
    t.m.layers[conv2].in[0] = saved;
    t.m.layers[conv2].kh = 30; /* window larger than its 14x14 input */
    assert_int_equal(model_count(&t.m, t.rows, &p, &mac), ERR_SHAPE);
    t.m.layers[conv2].kh = 5;
    assert_int_equal(model_count(&t.m, t.rows, &p, &mac), 0);
    assert_int_equal(p, t.params);
    ModelSpec empty = {0};
    assert_int_equal(model_count(&empty, t.rows, &p, &mac), ERR_SHAPE);
    tm_free(&t);
}

static void test_names_list(void **state) {
    int n = 0;
    for (; model_names[n]; n++) {
        TmModel t;
        tm_build(&t, model_names[n], 3, 224, 224, 1000);
        tm_free(&t);
    }
    assert_int_equal(n, 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_torchvision_counts, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_resnet20_counts, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_cifar_resnet_depths, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_lenet5_shapes, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_resnet_stems, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_basic_block_wiring, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_bottleneck_wiring, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_vgg16_heads, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_structure_all_models, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_name, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_count_rejects_bad_tables, tm_setup, tm_teardown),
        cmocka_unit_test_setup_teardown(test_names_list, tm_setup, tm_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
