/* test_net.c: whole networks of core/net.c (oneDNN, f32) against the double reference interpreter
 * of tests/ref.c: loss, every parameter gradient, BN running statistics over several training
 * steps, inference with the running statistics, and no leaks. The main network is a tiny ResNet
 * built by hand as a LayerSpec table (one basic block per stage, stride-2 projection shortcuts,
 * 8x8 inputs); lenet5 and resnet20 from model_build run through the same comparison, and so do
 * three small graphs where the network input feeds BN and ADD directly (layers that always write
 * their input gradient) next to layers that skip it.
 *
 * Parameters are copied out of the net with layer_param_get, so both sides use exactly the same
 * f32 values; tolerance 1e-4 norm-relative (f32 through ~20 layers of convolutions and BNs). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/layer.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/net.h"
#include "core/rng.h"
#include "core/trainer.h"
#include "tests/ref.h"
#include "tests/testutil.h"

#define NET_TOL 1e-4

#define NO -1
#define CONV(nm, i, k, r, st, p) \
    {.kind = LAYER_CONV, .name = nm, .in = {i, NO}, .out_c = k, .kh = r, .kw = r, .stride = st, .pad = p}
#define BN(nm, i, r) {.kind = LAYER_BN, .name = nm, .in = {i, NO}, .relu = r}
#define ADD(nm, a, b) {.kind = LAYER_ADD, .name = nm, .in = {a, b}, .relu = true}

/* A tiny ResNet: stem conv + BN + standalone ReLU + 3x3/1 max pool, three stages of one basic block
 * (8, 16, 32 channels at 8x8, 4x4, 2x2), the last two with 1x1 stride-2 projections, GAP, FC, loss. */
static LayerSpec tiny_resnet[] = {
    /*  0 */ {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
    /*  1 */ CONV("conv1", 0, 8, 3, 1, 1),
    /*  2 */ BN("bn1", 1, false),
    /*  3 */ {.kind = LAYER_RELU, .name = "relu", .in = {2, NO}},
    /*  4 */ {.kind = LAYER_MAXPOOL, .name = "maxpool", .in = {3, NO}, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
    /*  5 */ CONV("layer1.0.conv1", 4, 8, 3, 1, 1),
    /*  6 */ BN("layer1.0.bn1", 5, true),
    /*  7 */ CONV("layer1.0.conv2", 6, 8, 3, 1, 1),
    /*  8 */ BN("layer1.0.bn2", 7, false),
    /*  9 */ ADD("layer1.0.add", 8, 4),
    /* 10 */ CONV("layer2.0.conv1", 9, 16, 3, 2, 1),
    /* 11 */ BN("layer2.0.bn1", 10, true),
    /* 12 */ CONV("layer2.0.conv2", 11, 16, 3, 1, 1),
    /* 13 */ BN("layer2.0.bn2", 12, false),
    /* 14 */ CONV("layer2.0.downsample.0", 9, 16, 1, 2, 0),
    /* 15 */ BN("layer2.0.downsample.1", 14, false),
    /* 16 */ ADD("layer2.0.add", 13, 15),
    /* 17 */ CONV("layer3.0.conv1", 16, 32, 3, 2, 1),
    /* 18 */ BN("layer3.0.bn1", 17, true),
    /* 19 */ CONV("layer3.0.conv2", 18, 32, 3, 1, 1),
    /* 20 */ BN("layer3.0.bn2", 19, false),
    /* 21 */ CONV("layer3.0.downsample.0", 16, 32, 1, 2, 0),
    /* 22 */ BN("layer3.0.downsample.1", 21, false),
    /* 23 */ ADD("layer3.0.add", 20, 22),
    /* 24 */ {.kind = LAYER_GAP, .name = "avgpool", .in = {23, NO}},
    /* 25 */ {.kind = LAYER_FC, .name = "fc", .in = {24, NO}, .out_c = 10, .bias = true},
    /* 26 */ {.kind = LAYER_LOSS, .name = "loss", .in = {25, NO}},
};

static ModelSpec tiny_spec(void) {
    ModelSpec m = {.name = "tiny_resnet", .input = {1, 3, 8, 8}, .classes = 10,
                   .n_layers = (int)(sizeof tiny_resnet / sizeof tiny_resnet[0]), .layers = tiny_resnet};
    return m;
}


/* Fills the input and labels of both sides with the same (float-rounded) values. */
static void fill_batch(Net *net, RefNet *r, Rng *rng) {
    size_t n = dims_count(r->layers[0].out);
    float *x = net_input(net);
    double *rx = ref_net_input(r);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)rng_normal(rng);
        rx[i] = x[i];
    }
    int32_t *lab = net_labels(net);
    for (int i = 0; i < r->batch; i++) lab[i] = r->labels[i] = (int32_t)rng_below(rng, (uint64_t)r->m->classes);
}

/* BN gamma/beta get random non-default values (so beta moves the ReLU masks); then every parameter
 * is copied from the net into the reference. */
static void sync_params(Net *net, RefNet *r, Rng *rng) {
    for (int i = 1; i < r->m->n_layers; i++) {
        Layer *l = net_layer(net, i);
        RefLayer *rl = &r->layers[i];
        assert_non_null(l);
        assert_int_equal(layer_n_params(l), rl->n_params);
        for (int j = 0; j < rl->n_params; j++) {
            assert_int_equal(layer_param(l, j).n_plain, rl->param_n[j]);
            float *tmp = tu_falloc(rl->param_n[j]);
            if (r->m->layers[i].kind == LAYER_BN) {
                for (size_t e = 0; e < rl->param_n[j]; e++)
                    tmp[e] = (float)((j == 0 ? 1.0 : 0.0) + 0.3 * rng_normal(rng));
                assert_int_equal(layer_param_set(l, j, tmp), 0);
            }
            assert_int_equal(layer_param_get(l, j, tmp), 0);
            for (size_t e = 0; e < rl->param_n[j]; e++) rl->param[j][e] = tmp[e];
            mem_free(tmp);
        }
    }
}

static void check_close(const char *net_name, const char *layer, const char *field, const float *got,
                     const double *want, size_t n, double tol) {
    char what[160];
    snprintf(what, sizeof what, "%s %s: %s", net_name, layer, field);
    assert_close_fd(what, got, want, n, tol);
}

static void check_loss(double got, double want, double tol) {
    if (!(fabs(got - want) <= tol * fabs(want)))
        fail_msg("loss %.9g, reference %.9g (rel %.3g > %.3g)", got, want, fabs(got - want) / fabs(want), tol);
}

/* Every parameter gradient and every BN running statistic of the net against the reference. */
static void check_grads_and_stats(Net *net, RefNet *r) {
    for (int i = 1; i < r->m->n_layers; i++) {
        Layer *l = net_layer(net, i);
        RefLayer *rl = &r->layers[i];
        const LayerSpec *s = &r->m->layers[i];
        for (int j = 0; j < rl->n_params; j++) {
            float *g = tu_falloc(rl->param_n[j]);
            assert_int_equal(layer_grad_get(l, j, g), 0);
            check_close(r->m->name, s->name, layer_param(l, j).name, g, rl->grad[j], rl->param_n[j], NET_TOL);
            mem_free(g);
        }
        if (s->kind == LAYER_BN) {
            check_close(r->m->name, s->name, "running mean", layer_bn_running_mean(l), rl->run_mean,
                     (size_t)rl->out.c, NET_TOL);
            check_close(r->m->name, s->name, "running var", layer_bn_running_var(l), rl->run_var,
                     (size_t)rl->out.c, NET_TOL);
        }
    }
}

/* The whole comparison for one model: two training steps (forward + backward, no parameter update,
 * new batch each time: gradient buffers and fork sums must not carry over), then inference with the
 * running statistics. Leak-checked. */
static void compare_net(const ModelSpec *m, int batch, uint64_t seed) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    Rng rng;
    rng_init(&rng, seed);
    Net *net = NULL;
    assert_int_equal(net_create(&net, m, batch, &ctx, &rng), 0);
    assert_non_null(net);
    assert_int_equal(net_batch(net), batch);
    assert_int_equal(net_n_layers(net), m->n_layers);
    RefNet r;
    assert_int_equal(ref_net_init(&r, m, batch), 0);

    /* net_param lists every layer's parameters in layer order */
    int np = 0;
    for (int i = 1; i < m->n_layers; i++)
        for (int j = 0; j < r.layers[i].n_params; j++, np++) {
            LayerParam a = net_param(net, np), b = layer_param(net_layer(net, i), j);
            assert_ptr_equal(a.w, b.w);
            assert_int_equal(a.n_plain, r.layers[i].param_n[j]);
        }
    assert_int_equal(net_n_params(net), np);

    sync_params(net, &r, &rng);
    int last = m->n_layers - 1, logits = m->layers[last].in[0];
    size_t n_logits = dims_count(r.layers[logits].out);
    for (int step = 0; step < 2; step++) {
        fill_batch(net, &r, &rng);
        assert_int_equal(net_forward(net, true), 0);
        double want = ref_net_forward(&r, true);
        check_loss(net_loss(net), want, 1e-5);
        assert_int_equal(net_backward(net), 0);
        ref_net_backward(&r);
        check_grads_and_stats(net, &r);
    }

    /* inference: BN uses the running statistics of the two steps */
    fill_batch(net, &r, &rng);
    assert_int_equal(net_forward(net, false), 0);
    double want = ref_net_forward(&r, false);
    check_close(m->name, "inference", "logits", net_output(net, logits), r.layers[logits].y, n_logits, NET_TOL);
    check_loss(net_loss(net), want, 1e-5);
    int correct = 0;
    for (int i = 0; i < batch; i++) {
        const double *z = r.layers[logits].y + (size_t)i * m->classes;
        int am = 0;
        for (int k = 1; k < m->classes; k++)
            if (z[k] > z[am]) am = k;
        correct += am == r.labels[i];
    }
    assert_int_equal(net_correct(net, 1, batch), correct);
    assert_int_equal(net_correct(net, m->classes, batch), batch);

    ref_net_deinit(&r);
    net_destroy(net);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

static void test_tiny_resnet(void **state) {
    ModelSpec m = tiny_spec();
    compare_net(&m, 4, 1);
}

/* Batch 1 would make BN degenerate; batch 3 checks nothing assumes even or power-of-two sizes. */
static void test_tiny_resnet_batch3(void **state) {
    ModelSpec m = tiny_spec();
    compare_net(&m, 3, 2);
}

static void test_model_build_lenet5(void **state) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    assert_int_equal(model_build(&m, "lenet5", 1, 28, 28, 10), 0);
    compare_net(&m, 4, 3);
    model_deinit(&m);
}

static void test_model_build_resnet20(void **state) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    assert_int_equal(model_build(&m, "resnet20", 3, 8, 8, 10), 0);
    compare_net(&m, 4, 4);
    model_deinit(&m);
}

/* The network input read directly by kinds whose backward always writes the input gradient (BN,
 * ADD's first input) next to kinds that skip it (conv, ADD's second input). The net must then plan
 * and bind a gradient buffer for the input (summed over its writers), and those writes must not land
 * in any buffer still needed by the rest of the backward: the loss, every parameter gradient and
 * the BN statistics are compared as for the other models. */
#define ADD_LINEAR(nm, a, b) {.kind = LAYER_ADD, .name = nm, .in = {a, b}, .relu = false}
/* GAP at row `at` over row at - 1, then FC and the loss. */
#define HEAD(at) \
    {.kind = LAYER_GAP, .name = "avgpool", .in = {(at) - 1, NO}}, \
    {.kind = LAYER_FC, .name = "fc", .in = {at, NO}, .out_c = 10, .bias = true}, \
    {.kind = LAYER_LOSS, .name = "loss", .in = {(at) + 1, NO}}

/* Input -> BN (fused ReLU, not the last writer: its input gradient goes through the fork sum),
 * input -> conv (no input gradient), ADD(in[0] = input (the last writer), in[1] = conv, ReLU), the
 * BN branch merged by a second ADD. */
static LayerSpec input_fork_bn_add[] = {
    /* 0 */ {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
    /* 1 */ BN("bn_in", 0, true),
    /* 2 */ CONV("conv", 0, 4, 3, 1, 1),
    /* 3 */ ADD("add_in", 0, 2),
    /* 4 */ ADD_LINEAR("merge", 3, 1),
    /* 5 */ HEAD(5),
};

/* Input -> BN (no ReLU, the input's only gradient writer, so it may write over its own output
 * gradient), input -> conv, ADD without ReLU (in[0] = conv, in[1] = input: no input gradient) as the
 * input's highest-index reader, so the first writer of the input gradient is not its last reader;
 * the two branches merged by an ADD with ReLU. */
static LayerSpec input_fork_bn_add1[] = {
    /* 0 */ {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
    /* 1 */ BN("bn_in", 0, false),
    /* 2 */ CONV("conv", 0, 4, 3, 1, 1),
    /* 3 */ ADD_LINEAR("add_in", 2, 0),
    /* 4 */ ADD("merge", 3, 1),
    /* 5 */ HEAD(5),
};

/* ADD without ReLU on the input as in[0] feeding a conv; BN of the input merged on in[1]. */
static LayerSpec input_add_linear[] = {
    /* 0 */ {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
    /* 1 */ CONV("conv1", 0, 4, 3, 1, 1),
    /* 2 */ ADD_LINEAR("add_in", 0, 1),
    /* 3 */ CONV("conv2", 2, 4, 3, 1, 1),
    /* 4 */ BN("bn_in", 0, true),
    /* 5 */ ADD("merge", 3, 4),
    /* 6 */ HEAD(6),
};

/* An ADD of one output with itself (both gradients must be summed), and a BN read only by an fc
 * (its output is recomputed before the fc's backward). */
static LayerSpec self_add_bn_fc[] = {
    /* 0 */ {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
    /* 1 */ CONV("conv", 0, 4, 3, 1, 1),
    /* 2 */ BN("bn", 1, false),
    /* 3 */ ADD("self_add", 2, 2),
    /* 4 */ CONV("conv2", 3, 3, 3, 2, 1),
    /* 5 */ BN("bn2", 4, true),
    /* 6 */ {.kind = LAYER_FC, .name = "fc", .in = {5, NO}, .out_c = 10, .bias = true},
    /* 7 */ {.kind = LAYER_LOSS, .name = "loss", .in = {6, NO}},
};

#define SPEC_OF(nm, table) \
    {.name = nm, .input = {1, 4, 6, 6}, .classes = 10, .n_layers = (int)(sizeof table / sizeof table[0]), \
     .layers = table}

static void test_input_fork_bn_add(void **state) {
    ModelSpec m = SPEC_OF("input_fork_bn_add", input_fork_bn_add);
    compare_net(&m, 4, 6);
    compare_net(&m, 3, 7);
}

static void test_input_fork_bn_add1(void **state) {
    ModelSpec m = SPEC_OF("input_fork_bn_add1", input_fork_bn_add1);
    compare_net(&m, 4, 8);
}

static void test_self_add_bn_fc(void **state) {
    ModelSpec m = SPEC_OF("self_add_bn_fc", self_add_bn_fc);
    compare_net(&m, 4, 10);
}

/* A training step allocates nothing: every buffer is planned in net_create / trainer_init. */
static void test_step_allocates_nothing(void **state) {
    ModelSpec m = {0};
    assert_int_equal(model_build(&m, "resnet20", 3, 8, 8, 10), 0);
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    Rng rng;
    rng_init(&rng, 11);
    Net *net = NULL;
    assert_int_equal(net_create(&net, &m, 4, &ctx, &rng), 0);
    Trainer tr;
    assert_int_equal(trainer_init(&tr, net), 0);
    for (size_t i = 0; i < 4 * dims_sample(m.input); i++) net_input(net)[i] = (float)rng_normal(&rng);
    for (int i = 0; i < 4; i++) net_labels(net)[i] = i % 10;
    SgdParams sp = {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true};
    assert_int_equal(trainer_step(&tr, &sp), 0);
    size_t allocs = mem_n_allocs(), live = mem_live_bytes();
    for (int s = 0; s < 3; s++) assert_int_equal(trainer_step(&tr, &sp), 0);
    tr.profile = true;
    assert_int_equal(trainer_step(&tr, &sp), 0);
    assert_int_equal(net_forward(net, false), 0);
    assert_int_equal(mem_n_allocs(), allocs);
    assert_int_equal(mem_live_bytes(), live);
    trainer_deinit(&tr);
    net_destroy(net);
    dnnl_ctx_deinit(&ctx);
    model_deinit(&m);
}

static void test_input_add_linear(void **state) {
    ModelSpec m = SPEC_OF("input_add_linear", input_add_linear);
    compare_net(&m, 4, 9);
}

/* A spec that does not fit its input is an error code from net_create, with nothing leaked. */
static void test_bad_shape(void **state) {
    size_t base = mem_live_bytes();
    DnnlCtx ctx;
    assert_int_equal(dnnl_ctx_init(&ctx), 0);
    LayerSpec bad[] = {
        {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
        CONV("conv1", 0, 4, 5, 1, 0), /* 5x5 kernel on a 3x3 input */
        {.kind = LAYER_GAP, .name = "gap", .in = {1, NO}},
        {.kind = LAYER_FC, .name = "fc", .in = {2, NO}, .out_c = 2, .bias = true},
        {.kind = LAYER_LOSS, .name = "loss", .in = {3, NO}},
    };
    ModelSpec m = {.name = "bad", .input = {1, 2, 3, 3}, .classes = 2, .n_layers = 5, .layers = bad};
    Rng rng;
    rng_init(&rng, 5);
    Net *net = (Net *)&rng; /* must be reset to NULL */
    assert_int_equal(net_create(&net, &m, 2, &ctx, &rng), ERR_SHAPE); /* expected: logged errors */
    assert_null(net);
    /* an add of unequal shapes */
    LayerSpec bad2[] = {
        {.kind = LAYER_INPUT, .name = "input", .in = {NO, NO}},
        CONV("conv1", 0, 4, 3, 2, 1),
        ADD("add", 1, 0),
        {.kind = LAYER_GAP, .name = "gap", .in = {2, NO}},
        {.kind = LAYER_FC, .name = "fc", .in = {3, NO}, .out_c = 2, .bias = true},
        {.kind = LAYER_LOSS, .name = "loss", .in = {4, NO}},
    };
    ModelSpec m2 = {.name = "bad2", .input = {1, 4, 8, 8}, .classes = 2, .n_layers = 6, .layers = bad2};
    net = (Net *)&rng;
    assert_int_equal(net_create(&net, &m2, 2, &ctx, &rng), ERR_SHAPE);
    assert_null(net);
    dnnl_ctx_deinit(&ctx);
    assert_int_equal(mem_live_bytes(), base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_resnet),          cmocka_unit_test(test_tiny_resnet_batch3),
        cmocka_unit_test(test_model_build_lenet5),   cmocka_unit_test(test_model_build_resnet20),
        cmocka_unit_test(test_input_fork_bn_add),    cmocka_unit_test(test_input_fork_bn_add1),
        cmocka_unit_test(test_input_add_linear),     cmocka_unit_test(test_bad_shape),
        cmocka_unit_test(test_self_add_bn_fc),       cmocka_unit_test(test_step_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
