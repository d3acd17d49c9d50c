/* gpu.h: the GPU baseline model, the denominator of every simulated speedup (../shared/GSCN.md, "The GPU
 * baseline model"): the dense backward time of each layer of a network on a GTX 1080 Ti running cuDNN.
 * The GPU runs even ReSprop's sparse gradient dense (fine-grained sparsity buys it nothing), so its time is
 * the dense backward time whatever the scheme. Pure arithmetic on layer shapes (core/model.h) and the FLOP
 * rule of core/flops.h: no oneDNN, no training code, no globals.
 *
 * The model, per layer of the model's table (batch N, f32):
 *   conv / fc:  ms = max(bwd_dense FLOPs / (peak * factor[kind]),  bytes / bandwidth)
 *   bn, relu, add, maxpool, avgpool, gap, loss:  ms = bytes / bandwidth   (memory-bound, 0 FLOPs)
 *   input:      0
 * FLOPs: flops_conv / flops_fc's bwd_dense (bwd_data + bwd_weights = 2 x forward, 2 FLOPs per multiply-add),
 * so the GPU and the rest of the harness count the same work.
 * Bytes (DRAM traffic, each operand read or written exactly once, 4 bytes per element; an estimate that
 * ignores caches and re-reads, and the bias gradient):
 *   conv / fc  read dY (N,K,P,Q), W (K,C,R,S), X (N,C,H,W); write dX (N,C,H,W), dW (K,C,R,S)
 *              (fc: C*R*S = the flattened input features, P = Q = 1)
 *   bn         read X, dY, write dX; with the fused ReLU also read Y (the ReLU mask)
 *   relu       read Y, dY, write dX
 *   add        read dY, write dX0, dX1; with the fused ReLU also read Y
 *   maxpool/avgpool  read X, Y, dY, write dX
 *   gap, loss  read dY (loss: the probabilities), write dX
 *
 * Card constants (NVIDIA GTX 1080 Ti specification): 3584 CUDA cores ("lanes"), 1.582 GHz boost clock,
 * 2 FLOP per lane per cycle (one f32 FMA) -> peak 11.34 TFLOP/s; 484 GB/s GDDR5X. The boost clock is used,
 * not the 1.480 GHz base (10.6 TFLOP/s), because (a) a loaded 1080 Ti runs at or above its rated boost
 * clock, and (b) GSCN's "gscn-iso-1080ti" preset is defined on the same 11.3 TFLOP/s, so the simulated
 * speedup over this model isolates what sparsity buys. Using the base clock instead would only rescale
 * every fitted factor by 1582/1480 = 1.069 (the modelled times are unchanged).
 *
 * Layer kinds and their effective-rate factors (fraction of the peak FMA rate that cuDNN's chosen
 * algorithm achieves, counted in direct-convolution FLOPs; > 1 means the algorithm does fewer real
 * multiplies than the direct count, as Winograd does):
 *   GPU_KIND_WINOGRAD   3x3 stride-1 conv (cuDNN 5.1 picks Winograd / FFT)   factor 1.12    (fitted)
 *   GPU_KIND_POINTWISE  1x1 conv, any stride (a plain GEMM)                  factor 0.405   (fitted)
 *   GPU_KIND_STRIDED    k x k conv, k > 1, stride > 1: strided 3x3 and the   factor 0.1225  (fitted)
 *                       7x7/2 stem (no Winograd; implicit-GEMM backward-data of strided convs and the
 *                       3-channel stem are inefficient in cuDNN 5.1)
 *   GPU_KIND_FC         fully connected (a GEMM)                  factor 0.405 = POINTWISE (tied, not fitted:
 *                       at batch 16 every fc of these networks is bandwidth-bound anyway)
 *   GPU_KIND_CONV       any other conv (5x5 stride 1, ...)        factor 0.405 = POINTWISE (tied, not fitted:
 *                       no calibration network has one; direct/implicit GEMM assumed)
 *   GPU_KIND_MEMORY     every layer kind without FLOPs (bn, relu, add, pool, gap, loss): bytes / bandwidth
 *
 * Calibration (the public facts, J. Johnson, "cnn-benchmarks", https://github.com/jcjohnson/cnn-benchmarks,
 * GTX 1080 Ti, cuDNN 5.1.10, Torch, batch 16, 3x224x224, backward pass):
 *   ResNet-18 22.34 ms, ResNet-34 34.60 ms, ResNet-50 67.06 ms, VGG-16 86.91 ms.
 * Fit: the three factors WINOGRAD, POINTWISE, STRIDED are the only free parameters (peak and bandwidth are
 * the card's data sheet, the memory-bound layers have no factor). They are the optimum of a grid search
 * (WINOGRAD 0.9..1.3 in steps of 0.005, POINTWISE 0.25..0.5 in 0.005, STRIDED 0.08..0.2 in 0.0025; FC tied
 * to POINTWISE) minimising the largest relative error over the four networks, built with
 * model_build(name, 3, 224, 224, 1000) at batch 16, ties (within 0.01 percentage points) broken by the
 * smallest sum of squared relative errors: 1.12 / 0.405 / 0.1225, used unrounded. Modelled backward times:
 * ResNet-18 23.13 ms (+3.6%), ResNet-34 33.37 ms (-3.6%), ResNet-50 66.71 ms (-0.5%), VGG-16 88.61 ms
 * (+2.0%). tests/test_gpu.c redoes the search (test_fit_reproduces) and checks the four within 10%.
 * What pins each factor: VGG-16 is 99% 3x3/1 convs (WINOGRAD); ResNet-50's 1x1 convs are 44% of its
 * FLOPs (POINTWISE); ResNet-18 and ResNet-34 differ only in 3x3/1 blocks, so the part they share (stem,
 * strided convs) sets STRIDED. The binding pair is ResNet-18 (+3.6%) against ResNet-34 (-3.6%): the model
 * charges ResNet-34's 16 extra 3x3 blocks a little less than cuDNN took, and no factor separates them.
 * POINTWISE is loosely pinned (0.37..0.43 give the same largest error; the tie-break picks 0.405). Three
 * parameters for four numbers leave one degree of freedom: the fit shows that the model is consistent
 * with the measurements, not that it predicts other networks to 4%.
 * Known approximations: model_build's vgg16 is torchvision's vgg16_bn (BN + fused ReLU after each conv),
 * Johnson's VGG-16 has no BN (a separate ReLU); the memory-bound layers are charged at the full 484 GB/s;
 * Torch's separate ReLU modules are charged as fused. Cross-check (not fitted): Lambda's public
 * TensorFlow benchmark, ResNet-50 f32 training at about 209 img/s, i.e. about 4.8 ms per image for the
 * whole step at a larger batch; this model's backward alone is 4.2 ms per image, about 6.3 ms with a
 * forward of half that, i.e. the newer stack (cuDNN 7) is about 1.3x faster than the cuDNN 5.1
 * measurements this model reproduces. A speedup over this model is a speedup over the 2017 stack; against
 * a current one it would be smaller by about that factor. Reports should say so.
 *
 * Constants as data: every number of GpuModel is a key of one CfgTable (gpu_table, core/config.h) whose
 * defaults are the GTX 1080 Ti above; accel/gpu/gtx1080ti.ini sets every key with its source (a test holds
 * the file equal to the defaults). gpu_model_load reads such a file; keys:
 *   name, lanes, clock-ghz, flops-per-lane-cycle, bandwidth-gbs,
 *   factor-winograd, factor-pointwise, factor-strided, factor-conv, factor-fc.
 *
 * Measured override: a CSV of per-layer times (see gpu_measured_load) replaces the modelled time of the
 * layers it names; the others keep the model. */
#ifndef RESPROP_ACCEL_GPU_H
#define RESPROP_ACCEL_GPU_H

#include <stdbool.h>

#include "core/config.h"
#include "core/model.h"

typedef enum {
    GPU_KIND_NONE = 0,  /* the input layer: no backward */
    GPU_KIND_WINOGRAD,  /* 3x3 stride-1 conv */
    GPU_KIND_POINTWISE, /* 1x1 conv, any stride */
    GPU_KIND_STRIDED,   /* k x k conv, k > 1, stride > 1 (incl. the 7x7/2 stem) */
    GPU_KIND_CONV,      /* any other conv */
    GPU_KIND_FC,
    GPU_KIND_MEMORY,    /* layers without FLOPs: bytes / bandwidth */
    GPU_N_KINDS
} GpuKind;

/* The card: a value object (no allocated memory), filled by gpu_model_default, gpu_model_load or by hand.
 * The key of each field in gpu_table is given after it. */
typedef struct {
    char name[CFG_STR_MAX];      /* name: text */
    double lanes;                /* lanes: f32 FMA lanes (CUDA cores) */
    double clock_ghz;            /* clock-ghz: clock used for the peak (GHz) */
    double flops_per_lane_cycle; /* flops-per-lane-cycle: 2 = one FMA (FLOP per lane per cycle) */
    double bandwidth_gbs;        /* bandwidth-gbs: DRAM, GB/s (1e9 bytes/s) */
    double factor[GPU_N_KINDS];  /* factor-KIND: effective-rate factor per kind (> 0, fraction of the peak);
                                  * NONE and MEMORY unused (no key) */
} GpuModel;

/* One layer's backward on the GPU. */
typedef struct {
    GpuKind kind;
    double flops;      /* dense backward FLOPs (flops.h's bwd_dense), 0 for memory-bound kinds */
    double bytes;      /* DRAM bytes estimate (see above) */
    double compute_ms; /* flops / (peak * factor[kind]) */
    double memory_ms;  /* bytes / bandwidth */
    double ms;         /* max(compute_ms, memory_ms), or the measured time when measured */
    bool measured;     /* ms comes from the CSV override */
} GpuLayerTime;

/* Sums over a network. */
typedef struct {
    double total_ms; /* every layer: the whole dense backward pass */
    double conv_ms;  /* conv and fc layers only (what a conv accelerator replaces) */
    double flops;    /* dense backward FLOPs of all layers */
    double bytes;
    int n_measured;  /* layers whose time came from the override */
} GpuNetTime;

/* Measured per-layer times for one network: a value object the caller owns (gpu_measured_deinit). */
typedef struct {
    int n_layers; /* of the model it was loaded for */
    double *ms;   /* (n_layers) measured ms, or < 0 when the file does not name the layer; owned */
} GpuMeasured;

/* The key table (name, type, field, default = the GTX 1080 Ti, bounds, help with the unit). */
extern const CfgTable gpu_table;

/* The GTX 1080 Ti with the fitted factors above (gpu_table's defaults). Cannot fail (returns 0). */
int gpu_model_default(GpuModel *g);

/* Reads a card file (INI, keys above at top level; see accel/gpu/gtx1080ti.ini) over the defaults, then
 * gpu_model_check. Returns 0; ERR_IO (missing or unreadable file); ERR_CONFIG (unknown key, bad or
 * out-of-range value, syntax error: logged with file:line). On error *g is unchanged. */
int gpu_model_load(GpuModel *g, const char *path);

/* Checks the constants: lanes, clock, flops per lane cycle, bandwidth and every used factor finite and
 * > 0. Returns 0 or ERR_CONFIG (logged, naming the field). */
int gpu_model_check(const GpuModel *g);

/* Peak rate in FLOP/s: lanes * clock * flops_per_lane_cycle. */
double gpu_peak_flops(const GpuModel *g);

/* The kind of a layer (by shape rule above) and its name ("winograd", "pointwise", ...; never NULL). */
GpuKind gpu_layer_kind(const LayerSpec *s);
const char *gpu_kind_name(GpuKind kind);

/* Models the dense backward of every layer of m at `batch` (>= 1). meas: measured override loaded for m
 * (NULL: none). per_layer: m->n_layers entries (caller-allocated; NULL if not wanted). total: required.
 * Returns 0, ERR_CONFIG (bad constants, batch < 1, an override loaded for another layer count; logged),
 * ERR_SHAPE (a broken layer table, from model_count) or ERR_NOMEM. */
int gpu_model_network(const GpuModel *g, const ModelSpec *m, int batch, const GpuMeasured *meas,
                      GpuLayerTime *per_layer, GpuNetTime *total);

/* Loads measured times for the layers of m from a CSV file, one layer per line:
 *     LAYER,MS
 * LAYER is a layer index into m's table (0 < index < n_layers) or a layer name ("layer1.0.conv1"), not
 * the input layer's;
 * MS a finite number >= 0. Blank lines and lines starting with '#' are skipped; a first line
 * "layer,ms" (any case) is a header. Spaces around fields are allowed. The times are used as they are,
 * so they must have been measured at the batch later given to gpu_model_network.
 * Returns 0; ERR_IO when the file cannot be opened or read; ERR_FORMAT for a bad line (not two fields,
 * not a number, a negative or non-finite time, a line over 1023 characters), an unknown layer name, an
 * index out of range, or a layer named twice. Every message names the file and line ("f.csv:3: ...").
 * ERR_NOMEM. On failure *meas is zeroed (nothing to free). Free with gpu_measured_deinit. */
int gpu_measured_load(GpuMeasured *meas, const char *path, const ModelSpec *m);
void gpu_measured_deinit(GpuMeasured *meas); /* accepts a zeroed value */

#endif
