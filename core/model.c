/* model.c: the architecture table, the generic emitters that turn one row of it into LayerSpec rows,
 * and the per-layer counts.
 *
 * Building runs the emitters twice over the same description: a counting pass (no rows, only the
 * number of layers) and a filling pass into one exactly-sized allocation, so the emitters cannot fail
 * and return plain layer indices. Names follow torchvision's module names where one exists
 * ("layer2.0.conv1", "layer2.0.downsample.0", "features.3", "classifier.6"). */
#include "core/model.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* ---------------------------------------------------------------------------------------------
 * Architecture descriptions */

typedef enum {
    MODEL_FAM_LENET = 0,         /* a fixed sequential layer table */
    MODEL_FAM_RESNET_BASIC,      /* torchvision ResNet, basic blocks, stem chosen by input size */
    MODEL_FAM_RESNET_BOTTLENECK, /* torchvision ResNet v1.5, bottleneck blocks (stride on the 3x3) */
    MODEL_FAM_CIFAR_RESNET,      /* He et al. 2016 CIFAR ResNet: basic blocks, always the small stem */
    MODEL_FAM_VGG,               /* torchvision vgg*_bn: conv(bias)+BN+ReLU, M = max pool 2/2 */
    MODEL_FAM_N
} ModelFamily;

#define MODEL_MAX_STAGES 4
#define MODEL_OUT_CLASSES (-1) /* out_c placeholder in fixed tables: the number of classes */
#define MODEL_VGG_POOL 0       /* "M" in a VGG cfg */
#define MODEL_SMALL_INPUT_PX 64 /* h and w at most this: CIFAR stem / CIFAR VGG head */

typedef struct {
    const char *name;
    ModelFamily family;
    int n_stages;                  /* resnets */
    int blocks[MODEL_MAX_STAGES];  /* resnets: blocks per stage */
    int widths[MODEL_MAX_STAGES];  /* resnets: block width per stage (the stem uses widths[0]) */
    const int *cfg;                /* vgg: conv widths, MODEL_VGG_POOL = max pool 2/2 */
    int n_cfg;
    const LayerSpec *seq;          /* lenet: the layers after the input, in[] implied (previous) */
    int n_seq;
} ModelArch;

static const LayerSpec model_lenet5_seq[] = {
    {.kind = LAYER_CONV, .name = "conv1", .out_c = 6, .kh = 5, .kw = 5, .stride = 1, .pad = 2},
    {.kind = LAYER_BN, .name = "bn1", .relu = true},
    {.kind = LAYER_MAXPOOL, .name = "pool1", .kh = 2, .kw = 2, .stride = 2},
    {.kind = LAYER_CONV, .name = "conv2", .out_c = 16, .kh = 5, .kw = 5, .stride = 1, .pad = 0},
    {.kind = LAYER_BN, .name = "bn2", .relu = true},
    {.kind = LAYER_MAXPOOL, .name = "pool2", .kh = 2, .kw = 2, .stride = 2},
    {.kind = LAYER_FC, .name = "fc1", .out_c = 120, .bias = true},
    {.kind = LAYER_RELU, .name = "relu1"},
    {.kind = LAYER_FC, .name = "fc2", .out_c = 84, .bias = true},
    {.kind = LAYER_RELU, .name = "relu2"},
    {.kind = LAYER_FC, .name = "fc3", .out_c = MODEL_OUT_CLASSES, .bias = true},
};

static const int model_vgg16_cfg[] = {64,  64,  MODEL_VGG_POOL, 128, 128, MODEL_VGG_POOL, 256, 256, 256,
                                      MODEL_VGG_POOL, 512, 512, 512, MODEL_VGG_POOL, 512, 512, 512,
                                      MODEL_VGG_POOL};

#define MODEL_COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* CIFAR ResNets have depth 6n+2: n basic blocks in each of 3 stages. */
static const ModelArch model_archs[] = {
    {.name = "lenet5", .family = MODEL_FAM_LENET, .seq = model_lenet5_seq,
     .n_seq = MODEL_COUNT_OF(model_lenet5_seq)},
    {.name = "resnet20", .family = MODEL_FAM_CIFAR_RESNET, .n_stages = 3, .blocks = {3, 3, 3},
     .widths = {16, 32, 64}},
    {.name = "resnet32", .family = MODEL_FAM_CIFAR_RESNET, .n_stages = 3, .blocks = {5, 5, 5},
     .widths = {16, 32, 64}},
    {.name = "resnet56", .family = MODEL_FAM_CIFAR_RESNET, .n_stages = 3, .blocks = {9, 9, 9},
     .widths = {16, 32, 64}},
    {.name = "resnet18", .family = MODEL_FAM_RESNET_BASIC, .n_stages = 4, .blocks = {2, 2, 2, 2},
     .widths = {64, 128, 256, 512}},
    {.name = "resnet34", .family = MODEL_FAM_RESNET_BASIC, .n_stages = 4, .blocks = {3, 4, 6, 3},
     .widths = {64, 128, 256, 512}},
    {.name = "resnet50", .family = MODEL_FAM_RESNET_BOTTLENECK, .n_stages = 4, .blocks = {3, 4, 6, 3},
     .widths = {64, 128, 256, 512}},
    {.name = "vgg16", .family = MODEL_FAM_VGG, .cfg = model_vgg16_cfg,
     .n_cfg = MODEL_COUNT_OF(model_vgg16_cfg)},
};

const char *const model_names[] = {"lenet5", "resnet20", "resnet32", "resnet56", "resnet18",
                                   "resnet34", "resnet50", "vgg16", NULL};

/* ResNet stems: conv k/stride/pad + BN ReLU, then an optional max pool (pool_k 0 = none). */
typedef struct {
    int k, stride, pad;
    int pool_k, pool_stride, pool_pad;
} ModelStem;

static const ModelStem model_resnet_stems[2] = {
    [false] = {.k = 7, .stride = 2, .pad = 3, .pool_k = 3, .pool_stride = 2, .pool_pad = 1}, /* ImageNet */
    [true] = {.k = 3, .stride = 1, .pad = 1},                                                /* CIFAR */
};

/* VGG classifiers: hidden FC+ReLU widths before the final FC to the classes. torchvision's dropout
 * layers have no parameters and are left out (their indices are still skipped in the names). */
typedef struct {
    int n_hidden;
    int hidden[2];
} ModelVggHead;

static const ModelVggHead model_vgg_heads[2] = {
    [false] = {.n_hidden = 2, .hidden = {4096, 4096}}, /* ImageNet */
    [true] = {.n_hidden = 0},                          /* CIFAR: one FC */
};

/* ---------------------------------------------------------------------------------------------
 * The builder: counting pass when rows is NULL, filling pass otherwise. */

typedef struct {
    LayerSpec *rows; /* NULL in the counting pass; else cap entries */
    int n, cap;
} ModelBuilder;

__attribute__((format(printf, 3, 4))) static int model_push(ModelBuilder *b, LayerSpec row, const char *fmt,
                                                            ...) {
    if (b->rows) {
        ASSERT(b->n < b->cap);
        va_list ap;
        va_start(ap, fmt);
        int len = vsnprintf(row.name, sizeof row.name, fmt, ap);
        va_end(ap);
        ASSERT(len > 0 && len < (int)sizeof row.name);
        b->rows[b->n] = row;
    }
    return b->n++;
}

static LayerSpec model_row(LayerKind kind, int x0, int x1) {
    return (LayerSpec){.kind = kind, .in = {x0, x1}};
}

static LayerSpec model_conv(int x, int out_c, int k, int stride, int pad, bool bias) {
    LayerSpec r = model_row(LAYER_CONV, x, -1);
    r.out_c = out_c;
    r.kh = r.kw = k;
    r.stride = stride;
    r.pad = pad;
    r.bias = bias;
    return r;
}

static LayerSpec model_bn(int x, bool relu) {
    LayerSpec r = model_row(LAYER_BN, x, -1);
    r.relu = relu;
    return r;
}

static LayerSpec model_maxpool(int x, int k, int stride, int pad) {
    LayerSpec r = model_row(LAYER_MAXPOOL, x, -1);
    r.kh = r.kw = k;
    r.stride = stride;
    r.pad = pad;
    return r;
}

static LayerSpec model_fc(int x, int out_c) {
    LayerSpec r = model_row(LAYER_FC, x, -1);
    r.out_c = out_c;
    r.bias = true;
    return r;
}

static LayerSpec model_add(int x0, int x1, bool relu) {
    LayerSpec r = model_row(LAYER_ADD, x0, x1);
    r.relu = relu;
    return r;
}

/* Everything an emitter needs besides the builder. */
typedef struct {
    const ModelArch *arch;
    int input;   /* index of the input layer */
    bool small;  /* input h and w <= MODEL_SMALL_INPUT_PX (or the family always uses the small stem) */
    int classes;
} ModelEmitArgs;

/* ResNet blocks: x is the block input with cin channels; returns the index of the block's output
 * (the ADD), which has width * expansion channels. */
typedef int (*ModelBlockFn)(ModelBuilder *b, const char *pfx, int x, int cin, int width, int stride,
                            int expansion);
/* Family emitters: append everything between the input and the loss; return the final FC's index. */
typedef int (*ModelEmitFn)(ModelBuilder *b, const ModelEmitArgs *e, ModelBlockFn block, int expansion);

/* torchvision's rule: a 1x1 projection + BN when the stride or the channel count changes. */
static int model_shortcut(ModelBuilder *b, const char *pfx, int x, int cin, int cout, int stride) {
    if (stride == 1 && cin == cout) return x;
    int y = model_push(b, model_conv(x, cout, 1, stride, 0, false), "%s.downsample.0", pfx);
    return model_push(b, model_bn(y, false), "%s.downsample.1", pfx);
}

static int model_block_basic(ModelBuilder *b, const char *pfx, int x, int cin, int width, int stride,
                             int expansion) {
    int y = model_push(b, model_conv(x, width, 3, stride, 1, false), "%s.conv1", pfx);
    y = model_push(b, model_bn(y, true), "%s.bn1", pfx);
    y = model_push(b, model_conv(y, width * expansion, 3, 1, 1, false), "%s.conv2", pfx);
    y = model_push(b, model_bn(y, false), "%s.bn2", pfx);
    int sc = model_shortcut(b, pfx, x, cin, width * expansion, stride);
    return model_push(b, model_add(y, sc, true), "%s.add", pfx);
}

static int model_block_bottleneck(ModelBuilder *b, const char *pfx, int x, int cin, int width, int stride,
                                  int expansion) {
    int y = model_push(b, model_conv(x, width, 1, 1, 0, false), "%s.conv1", pfx);
    y = model_push(b, model_bn(y, true), "%s.bn1", pfx);
    y = model_push(b, model_conv(y, width, 3, stride, 1, false), "%s.conv2", pfx);
    y = model_push(b, model_bn(y, true), "%s.bn2", pfx);
    y = model_push(b, model_conv(y, width * expansion, 1, 1, 0, false), "%s.conv3", pfx);
    y = model_push(b, model_bn(y, false), "%s.bn3", pfx);
    int sc = model_shortcut(b, pfx, x, cin, width * expansion, stride);
    return model_push(b, model_add(y, sc, true), "%s.add", pfx);
}

static int model_emit_resnet(ModelBuilder *b, const ModelEmitArgs *e, ModelBlockFn block, int expansion) {
    const ModelArch *a = e->arch;
    const ModelStem *st = &model_resnet_stems[e->small];
    int cin = a->widths[0];
    int y = model_push(b, model_conv(e->input, cin, st->k, st->stride, st->pad, false), "conv1");
    y = model_push(b, model_bn(y, true), "bn1");
    if (st->pool_k > 0)
        y = model_push(b, model_maxpool(y, st->pool_k, st->pool_stride, st->pool_pad), "maxpool");
    for (int s = 0; s < a->n_stages; s++) {
        for (int j = 0; j < a->blocks[s]; j++) {
            char pfx[LAYER_NAME_MAX];
            snprintf(pfx, sizeof pfx, "layer%d.%d", s + 1, j);
            y = block(b, pfx, y, cin, a->widths[s], s > 0 && j == 0 ? 2 : 1, expansion);
            cin = a->widths[s] * expansion;
        }
    }
    y = model_push(b, model_row(LAYER_GAP, y, -1), "avgpool");
    return model_push(b, model_fc(y, e->classes), "fc");
}

/* Names and indices as torchvision's vgg*_bn: features.i = conv, i+1 = BN (its ReLU at i+2 is fused),
 * a pool takes one index; classifier.3k = FC, 3k+1 = ReLU, 3k+2 = dropout (omitted). The adaptive
 * 7x7 average pool is left out: it is the identity at 224 px and smaller maps are flattened as is. */
static int model_emit_vgg(ModelBuilder *b, const ModelEmitArgs *e, ModelBlockFn block, int expansion) {
    const ModelArch *a = e->arch;
    int y = e->input, idx = 0;
    for (int i = 0; i < a->n_cfg; i++) {
        if (a->cfg[i] == MODEL_VGG_POOL) {
            y = model_push(b, model_maxpool(y, 2, 2, 0), "features.%d", idx);
            idx += 1;
        } else {
            y = model_push(b, model_conv(y, a->cfg[i], 3, 1, 1, true), "features.%d", idx);
            y = model_push(b, model_bn(y, true), "features.%d", idx + 1);
            idx += 3;
        }
    }
    const ModelVggHead *hd = &model_vgg_heads[e->small];
    for (int k = 0; k < hd->n_hidden; k++) {
        y = model_push(b, model_fc(y, hd->hidden[k]), "classifier.%d", 3 * k);
        y = model_push(b, model_row(LAYER_RELU, y, -1), "classifier.%d", 3 * k + 1);
    }
    return model_push(b, model_fc(y, e->classes), "classifier.%d", 3 * hd->n_hidden);
}

/* A fixed table of layers, each fed by the previous one. */
static int model_emit_seq(ModelBuilder *b, const ModelEmitArgs *e, ModelBlockFn block, int expansion) {
    const ModelArch *a = e->arch;
    int y = e->input;
    for (int i = 0; i < a->n_seq; i++) {
        LayerSpec r = a->seq[i];
        r.in[0] = y;
        r.in[1] = -1;
        if (r.out_c == MODEL_OUT_CLASSES) r.out_c = e->classes;
        y = model_push(b, r, "%s", a->seq[i].name);
    }
    return y;
}

typedef struct {
    const char *name;
    ModelEmitFn emit;
    ModelBlockFn block; /* resnets */
    int expansion;      /* resnets: block output channels / block width */
    bool always_small;  /* the small (CIFAR) stem whatever the input size */
} ModelFamilyDesc;

static const ModelFamilyDesc model_families[MODEL_FAM_N] = {
    [MODEL_FAM_LENET] = {"lenet", model_emit_seq, NULL, 0, false},
    [MODEL_FAM_RESNET_BASIC] = {"resnet-basic", model_emit_resnet, model_block_basic, 1, false},
    [MODEL_FAM_RESNET_BOTTLENECK] = {"resnet-bottleneck", model_emit_resnet, model_block_bottleneck, 4,
                                     false},
    [MODEL_FAM_CIFAR_RESNET] = {"cifar-resnet", model_emit_resnet, model_block_basic, 1, true},
    [MODEL_FAM_VGG] = {"vgg", model_emit_vgg, NULL, 0, false},
};

static void model_emit(ModelBuilder *b, const ModelArch *a, int h, int w, int classes) {
    const ModelFamilyDesc *f = &model_families[a->family];
    ModelEmitArgs e = {
        .arch = a,
        .input = model_push(b, model_row(LAYER_INPUT, -1, -1), "input"),
        .small = f->always_small || (h <= MODEL_SMALL_INPUT_PX && w <= MODEL_SMALL_INPUT_PX),
        .classes = classes,
    };
    int y = f->emit(b, &e, f->block, f->expansion);
    model_push(b, model_row(LAYER_LOSS, y, -1), "loss");
}

static const ModelArch *model_find(const char *name) {
    for (int i = 0; name && i < MODEL_COUNT_OF(model_archs); i++)
        if (strcmp(model_archs[i].name, name) == 0) return &model_archs[i];
    return NULL;
}

static void model_list_names(char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; model_names[i] && used < size; i++) {
        int len = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", model_names[i]);
        if (len < 0) break;
        used += (size_t)len;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Counts */

static void model_count_conv(const LayerSpec *s, Dims4 in, Dims4 out, LayerCount *row) {
    int64_t k = s->out_c, crs = (int64_t)in.c * s->kh * s->kw;
    row->params = k * crs + (s->bias ? k : 0);
    row->macs = k * out.h * out.w * crs;
}

static void model_count_fc(const LayerSpec *s, Dims4 in, Dims4 out, LayerCount *row) {
    int64_t n_in = (int64_t)in.c * in.h * in.w, n_out = s->out_c;
    row->params = n_in * n_out + (s->bias ? n_out : 0);
    row->macs = n_in * n_out;
}

static void model_count_bn(const LayerSpec *s, Dims4 in, Dims4 out, LayerCount *row) {
    row->params = 2 * (int64_t)in.c;
    row->macs = 0;
}

typedef void (*ModelCountFn)(const LayerSpec *s, Dims4 in, Dims4 out, LayerCount *row);

/* Kinds without an entry have no parameters and count no multiply-adds (see model.h). */
static const ModelCountFn model_counters[LAYER_N_KINDS] = {
    [LAYER_CONV] = model_count_conv,
    [LAYER_FC] = model_count_fc,
    [LAYER_BN] = model_count_bn,
};

/* Checks that layer i's kind is known and its inputs come before it. */
static int model_check_layer(const ModelSpec *m, int i) {
    int rc = 0;
    const LayerSpec *s = &m->layers[i];
    if ((int)s->kind < 0 || s->kind >= LAYER_N_KINDS)
        FAIL(ERR_SHAPE, "model %s: layer %d '%s' has unknown kind %d", m->name, i, s->name, (int)s->kind);
    if ((i == 0) != (s->kind == LAYER_INPUT) || (i == m->n_layers - 1) != (s->kind == LAYER_LOSS))
        FAIL(ERR_SHAPE, "model %s: layer %d '%s' is %s; expected input first and loss last only", m->name, i,
             s->name, layer_kind_name(s->kind));
    int n_in = layer_kind_inputs(s->kind);
    for (int k = 0; k < 2; k++) {
        bool ok = k < n_in ? s->in[k] >= 0 && s->in[k] < i : s->in[k] == -1;
        if (!ok)
            FAIL(ERR_SHAPE, "model %s: layer %d '%s' (%s) input %d is %d; expected %s", m->name, i, s->name,
                 layer_kind_name(s->kind), k, s->in[k], k < n_in ? "an earlier layer" : "-1 (unused)");
    }
fail:
    return rc;
}

/* model_count, also reporting the index of the layer that failed (-1 if none). */
static int model_count_at(const ModelSpec *m, LayerCount *rows, int64_t *total_params, int64_t *total_macs,
                          int *bad) {
    int rc = 0;
    int64_t params = 0, macs = 0;
    *bad = -1;
    if (!m->layers || m->n_layers < 2)
        FAIL(ERR_SHAPE, "model %s: %d layers; expected at least an input and a loss", m->name, m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const LayerSpec *s = &m->layers[i];
        *bad = i;
        TRY(model_check_layer(m, i));
        LayerCount *row = &rows[i];
        *row = (LayerCount){0};
        if (s->kind == LAYER_INPUT) {
            row->out = m->input;
            row->out.n = 1;
            continue;
        }
        Dims4 in[2] = {rows[s->in[0]].out, {0, 0, 0, 0}};
        if (s->in[1] >= 0) in[1] = rows[s->in[1]].out;
        TRY(layer_out_dims(s, in, &row->out));
        if (model_counters[s->kind]) model_counters[s->kind](s, in[0], row->out, row);
        params += row->params;
        macs += row->macs;
    }
    *bad = -1;
    if (total_params) *total_params = params;
    if (total_macs) *total_macs = macs;
fail:
    return rc;
}

int model_count(const ModelSpec *m, LayerCount *rows, int64_t *total_params, int64_t *total_macs) {
    int bad;
    return model_count_at(m, rows, total_params, total_macs, &bad);
}

/* ---------------------------------------------------------------------------------------------
 * Build / deinit */

int model_build(ModelSpec *m, const char *name, int c, int h, int w, int classes) {
    int rc = 0;
    LayerCount *counts = NULL;
    memset(m, 0, sizeof *m);
    const ModelArch *a = model_find(name);
    if (!a) {
        char list[256];
        model_list_names(list, sizeof list);
        FAIL(ERR_CONFIG, "unknown model '%s'; expected one of: %s", name ? name : "(null)", list);
    }
    if (c < 1 || h < 1 || w < 1 || classes < 1)
        FAIL(ERR_CONFIG, "model %s: input %dx%dx%d (CxHxW) with %d classes; expected all positive",
             a->name, c, h, w, classes);

    ModelBuilder b = {0};
    model_emit(&b, a, h, w, classes); /* counting pass */
    m->layers = mem_calloc((size_t)b.n, sizeof *m->layers);
    if (!m->layers) FAIL(ERR_NOMEM, "model %s: out of memory for %d layers", a->name, b.n);
    b = (ModelBuilder){.rows = m->layers, .cap = b.n};
    model_emit(&b, a, h, w, classes); /* filling pass */
    ASSERT(b.n == b.cap);
    snprintf(m->name, sizeof m->name, "%s", a->name);
    m->input = (Dims4){1, c, h, w};
    m->classes = classes;
    m->n_layers = b.n;

    /* Shapes: a window larger than its (padded) input means the input is too small. */
    counts = mem_calloc((size_t)m->n_layers, sizeof *counts);
    if (!counts) FAIL(ERR_NOMEM, "model %s: out of memory for the shape check", a->name);
    int bad;
    if (model_count_at(m, counts, NULL, NULL, &bad) < 0) {
        const LayerSpec *s = bad >= 0 ? &m->layers[bad] : NULL;
        Dims4 in = s && s->in[0] >= 0 ? counts[s->in[0]].out : m->input;
        FAIL(ERR_CONFIG,
             "model %s: input %dx%dx%d (CxHxW) is too small: layer '%s' (%s %dx%d stride %d pad %d) gets a "
             "%dx%d map",
             a->name, c, h, w, s ? s->name : "?", s ? layer_kind_name(s->kind) : "?", s ? s->kh : 0,
             s ? s->kw : 0, s ? s->stride : 0, s ? s->pad : 0, in.h, in.w);
    }
    mem_free(counts);
    return 0;
fail:
    mem_free(counts);
    model_deinit(m);
    return rc;
}

void model_deinit(ModelSpec *m) {
    if (!m) return;
    mem_free(m->layers);
    memset(m, 0, sizeof *m);
}
