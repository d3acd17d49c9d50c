/* model.h: network definitions as data. A model is a table of LayerSpec built by one table-driven
 * builder from a short description per architecture (no per-model code paths); the counts
 * (output shapes, parameters, multiply-adds) are computed from the table alone, without oneDNN.
 *
 * Layer 0 is LAYER_INPUT, the last layer is LAYER_LOSS; every layer's inputs come before it.
 *
 * Models: lenet5; resnet20/32/56 (He et al. 2016 CIFAR ResNets, 3 stages of 16/32/64, projection
 * shortcuts: 1x1 conv + BN where the stride or width changes); resnet18/34 (basic blocks) and resnet50
 * (bottleneck, torchvision v1.5: stride on the 3x3); vgg16 (torchvision vgg16_bn: convs with bias, BN,
 * ReLU). resnet18/34/50 and vgg16 pick their stem/head from the input: h and w <= 64 px get the CIFAR
 * form (resnet: 3x3/1 conv, no max pool; vgg: a single FC to the classes), larger inputs the ImageNet
 * form (resnet: 7x7/2 conv + 3x3/2 max pool; vgg: FC 4096, FC 4096, FC classes; dropout omitted, the
 * adaptive 7x7 pool omitted, i.e. the last feature map is flattened as is). Layer names follow
 * torchvision's modules ("conv1", "layer2.0.downsample.0", "layer2.0.add", "features.3",
 * "classifier.6", "fc"); BN layers carry the ReLU that follows them (relu = true).
 *
 * Counting rule (the fvcore / torchvision "GFLOPS" convention, which reproduces torchvision's published
 * totals exactly, e.g. resnet18 at 3x224x224 / 1000 classes: 11,689,512 params, 1,814,073,344 MACs;
 * resnet50: 25,557,032 / 4,089,184,256; vgg16_bn: 138,365,992 / 15,470,264,320):
 *   MACs   = conv K*P*Q*C*R*S + fc in*out only. Bias adds, BN, ReLU, pooling, ADD and the loss count 0.
 *   params = conv K*C*R*S (+K with bias), fc in*out (+out), BN 2*C (gamma, beta); running stats and
 *            everything else 0. */
#ifndef RESPROP_MODEL_H
#define RESPROP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/shape.h"

typedef struct {
    char name[32];
    Dims4 input; /* n = 1; c, h, w of one sample */
    int classes;
    int n_layers;
    LayerSpec *layers; /* owned: n_layers entries */
} ModelSpec;

/* Names accepted by model_build, NULL-terminated. */
extern const char *const model_names[];

/* Builds the layer table of `name` for inputs (c, h, w) and `classes` outputs. Unknown names and
 * inputs too small for the architecture are ERR_CONFIG with a message listing what is accepted.
 * Caller frees with model_deinit. */
int model_build(ModelSpec *m, const char *name, int c, int h, int w, int classes);
void model_deinit(ModelSpec *m); /* accepts a zeroed spec */

typedef struct {
    Dims4 out;       /* per-sample output dims (n = 1) */
    int64_t params;  /* learnable parameters (BN gamma+beta counted, running stats not) */
    int64_t macs;    /* multiply-adds per sample: conv N*K*P*Q*C*R*S / N, fc in*out; 0 for other kinds */
} LayerCount;

/* Per-layer counts (rows: n_layers entries, caller-allocated) and totals. Returns 0 or ERR_SHAPE. */
int model_count(const ModelSpec *m, LayerCount *rows, int64_t *total_params, int64_t *total_macs);

#endif
