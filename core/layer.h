/* layer.h: one layer of a network over oneDNN primitives.
 *
 * A layer's primitive descriptors, primitives, reorders, memories, parameters and parameter gradients
 * live in one opaque Layer, created together (layer_create) and destroyed together (layer_destroy).
 * Activation buffers are NOT owned by the layer: the network (or a test) allocates them and binds
 * them once with layer_bind. Everything is allocated at create/bind time; forward and backward
 * allocate nothing.
 *
 * Layouts: activations NHWC f32, x/y/dx/dy are (N,H,W,C). Parameters are kept in whatever layout
 * oneDNN prefers (weights created with format `any`, reordered once); layer_param_get/set and
 * layer_grad_get convert to and from the plain layouts below.
 *   conv weight  (K,C,R,S)       conv bias (K)
 *   fc weight    (K, H*W*C)      the input flattened in NHWC order, i.e. index (h*W + w)*C + c
 *   fc bias      (K)
 *   bn gamma (C), bn beta (C)
 * Conventions (match PyTorch): BN eps 1e-5, running stats momentum 0.1, the running variance is
 * updated with the unbiased batch variance; average pooling includes padding in the divisor;
 * the loss is the mean softmax cross-entropy over the batch. */
#ifndef RESPROP_LAYER_H
#define RESPROP_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "core/rng.h"
#include "core/scheme.h"
#include "core/shape.h"
#include "core/sparse.h"
#include "core/sparse_kernels.h"
#include "core/sparse_vec.h"

typedef enum {
    LAYER_INPUT = 0, /* the network input; no computation */
    LAYER_CONV,      /* out_c, kh, kw, stride, pad, bias */
    LAYER_BN,        /* batch normalisation, optional fused ReLU (relu) */
    LAYER_RELU,
    LAYER_MAXPOOL, /* kh, kw, stride, pad */
    LAYER_AVGPOOL, /* kh, kw, stride, pad; padding counted in the divisor */
    LAYER_GAP,     /* global average pool to 1x1 */
    LAYER_FC,      /* out_c, bias; input of any H,W,C is flattened */
    LAYER_ADD,     /* y = x0 + x1, optional fused ReLU (relu); in[1] is the second input */
    LAYER_LOSS,    /* softmax cross-entropy over x (N,1,1,classes); y holds the probabilities */
    LAYER_N_KINDS
} LayerKind;

#define LAYER_NAME_MAX 32

typedef struct {
    LayerKind kind;
    char name[LAYER_NAME_MAX]; /* e.g. "layer2.0.conv1"; unique within a model */
    int in[2];                 /* producer indices in the model's layer table; -1 when unused */
    int out_c;                 /* conv/fc output channels or features */
    int kh, kw;                /* conv/pool kernel */
    int stride, pad;           /* conv/pool */
    bool bias;                 /* conv/fc */
    bool relu;                 /* bn/add: ReLU fused on the output */
} LayerSpec;

/* Number of inputs a kind takes (0, 1 or 2). */
int layer_kind_inputs(LayerKind kind);
/* Whether a kind's backward always writes its input gradient dx[input] (so it must be bound even
 * when the input is the network input): BN and ADD's first input. Others skip it when unbound. */
bool layer_kind_needs_dx(LayerKind kind, int input);
/* "conv", "bn", ...; never NULL. */
const char *layer_kind_name(LayerKind kind);

/* Output dims (n copied from in[0]) of a layer given its input dims. Returns 0, or ERR_SHAPE
 * with a logged message when the inputs do not fit (window larger than input, add of unequal
 * shapes, ...). Pure; used by the model counts and by layer_create. */
int layer_out_dims(const LayerSpec *spec, const Dims4 *in, Dims4 *out);

/* Shared oneDNN engine and stream. Value object: dnnl_ctx_init/dnnl_ctx_deinit. */
/* Buffers shared by all layers because each use is transient (inside one primitive or one
 * layer's backward): oneDNN's scratchpad, the weights copy in backward-data layout, the weight
 * gradient in backward-weights layout. They grow while layers are created, never in a step. */
enum {
    CTX_SCRATCH = 0,
    CTX_WEIGHTS_BWD,
    CTX_WGRAD_RAW,
    /* the reuse terms of a sparsity scheme (layer_attach_scheme) */
    CTX_REUSE_XSUM, /* sum over the batch of a conv's input (1,H,W,C) */
    CTX_REUSE_DX,   /* bwd_data of the reuse term (1,H,W,C) */
    CTX_REUSE_DW,   /* bwd_weights of the reuse term, in the weights' stored layout */
    CTX_REUSE_DW_RAW,
    CTX_REUSE_W,    /* the weights in the single-sample bwd_data layout, when it differs */
    CTX_DENSE_DW,   /* the dense weight gradient, for its cosine with the scheme's */
    CTX_SPARSE_W,   /* backend sparse: the weights in OHWI, refreshed once per backward */
    CTX_SPARSE_DW,  /* backend sparse: the weight gradient in OHWI, reordered into the stored layout */
    CTX_N_SHARED
};

typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    void *shared[CTX_N_SHARED];
    size_t shared_bytes[CTX_N_SHARED];
    unsigned generation; /* bumped whenever a shared buffer moves */
} DnnlCtx;

int dnnl_ctx_init(DnnlCtx *ctx);
void dnnl_ctx_deinit(DnnlCtx *ctx); /* accepts a zeroed ctx */

typedef struct Layer Layer;

/* Creates the layer for input dims in[0..layer_kind_inputs-1] (n = batch). Parameters start at
 * their defaults (conv/fc weights 0, biases 0, bn gamma 1, beta 0, running mean 0, var 1);
 * layer_init_params draws Kaiming weights. On failure *out is NULL and the error is logged. */
int layer_create(Layer **out, const LayerSpec *spec, const Dims4 *in, DnnlCtx *ctx);
void layer_destroy(Layer *l); /* accepts NULL */

const LayerSpec *layer_spec(const Layer *l);
Dims4 layer_in_dims(const Layer *l, int i);
Dims4 layer_out_dims_of(const Layer *l);

/* Binds the activation buffers (owned by the caller, each (N,H,W,C) of the matching dims):
 * x[i] inputs, y output, dx[i] input gradients (written, never accumulated; NULL = not needed),
 * dy output gradient. RELU allows y == x and dx == dy; BN allows dx == dy; ADD allows y == x[0]
 * and dx[0] == dy or dx[1] == dy. LOSS: y is (N, classes) probabilities, dy unused.
 * Returns 0 or ERR_DNNL. */
int layer_bind(Layer *l, float *const x[2], float *y, float *const dx[2], float *dy);

/* LOSS only: labels (N) in [0, classes), bound like the activations. */
void layer_bind_labels(Layer *l, const int32_t *labels);

/* Forward pass; train selects batch statistics for BN (and updates its running statistics)
 * and keeps what backward needs. */
int layer_forward(Layer *l, bool train);
/* BN only: writes y again from x and the batch statistics of the last training forward (the same
 * normalisation, so the same values), for networks that do not keep a BN output until backward.
 * ERR_SHAPE for other kinds. */
int layer_recompute(Layer *l);
/* Kinds layer_recompute supports. */
bool layer_kind_recomputable(LayerKind kind);
/* Backward pass after a training forward: computes dx[] and the parameter gradients. */
int layer_backward(Layer *l);

/* LOSS only, after forward: mean loss over the batch, and the number of the first n_valid samples
 * whose label is among the k highest logits (ties count against: a label is correct when fewer
 * than k logits are strictly higher). */
double layer_loss_value(const Layer *l);
/* Sum of the cross-entropy of the first n_valid samples of the last forward. */
double layer_loss_sum(const Layer *l, int n_valid);
int layer_loss_correct(const Layer *l, int k, int n_valid);

/* A sparsity scheme on a conv or fc layer. Once attached, layer_backward sparsifies the output
 * gradient G (dy) with the scheme into S and computes the split form
 *   dX = bwd_data(S) + broadcast_N(bwd_data(R)),  dW = bwd_weights(X, S) + bwd_weights(sum_n X_n, R)
 * with the single-sample terms (R) on oneDNN; a bias gradient stays dense (sum of G). A step the scheme
 * marks dense runs the plain oneDNN path on G. The S terms run on
 *   backend dnnl:   oneDNN on the dense S;
 *   backend sparse (conv only, `sparse` set before attaching): the CPU kernels of core/sparse_kernels.h
 *                   over the CSR S (written by the scheme's fused pass, or compressed from its dense S),
 *                   with the weights reordered to OHWI once per backward; a structured S (rows empty or
 *                   full, as resprop-vec writes it) runs on the gathered-GEMM kernels of sparse_vec.h --
 *                   when the step's density is
 *                   at most `breakeven`; above it, S is expanded and the oneDNN path runs (ran_sparse
 *                   false). The decision depends on the density only, so a run stays deterministic.
 * All buffers and single-sample primitives are made at attach time. */
typedef struct {
    const Scheme *scheme; /* borrowed, with cfg and state: the net owns them */
    const void *cfg;
    void *state;
    SchemeStep step;      /* set by the caller before each backward */
    SchemeOut out;        /* after backward: what the scheme did this step */
    float *s_buf;         /* (N,P,Q,K) storage for S, may be shared by layers */
    bool want_dense_dw;   /* this step also compute the dense weight gradient and cos_dw (and keep a
                             dense S in s_buf for the caller's statistics) */
    double cos_dw;        /* cosine(scheme's dW, dense dW) when computed, else NAN */
    /* backend sparse (conv layers; borrowed, may be shared by layers) */
    bool sparse;
    double breakeven;              /* run the sparse kernels when density <= breakeven */
    const SparseGrad *csr_store;   /* storage for the CSR S (rows and nnz_cap >= the layer's N*P*Q*K) */
    SparseWorkspace *ws;           /* dw_elems >= K*R*S*C */
    SparseVecWorkspace *vws;       /* max_rsc >= R*S*C: the gathered-GEMM kernels for structured S
                                      (resprop-vec); NULL: structured S runs on the general kernels */
    bool ran_sparse;               /* out: this step ran the sparse kernels */
    /* Optional observer of S (backend sparse only; backend gscn and --save-masks use it): when set and
     * observe_now is true, called at the end of a non-dense step's backward with the layer's index and
     * the step's CSR S (compressed from the dense S if the kernels did not need it). It only reads S;
     * a non-zero return fails the backward. */
    int (*observe)(void *ctx, int layer, const SparseGrad *s);
    void *observe_ctx;
    bool observe_now;
} LayerScheme;

/* The geometry of a conv layer for the sparse kernels (ERR_SHAPE for other kinds). */
int layer_conv_geom(const Layer *l, ConvGeom *g);

/* dst (n) += src (n), in parallel for large n (gradient sums of residual forks and reuse terms). */
void layer_add_into(float *restrict dst, const float *restrict src, size_t n);

/* Cosine of two float vectors accumulated in double; NAN when either is zero. */
double layer_cosine(const float *a, const float *b, size_t n);

/* Conv and fc (an fc's gradient is (N,1,1,K)); ERR_SHAPE for other kinds. The LayerScheme must
 * outlive the layer's use of it. */
int layer_attach_scheme(Layer *l, LayerScheme *ls);

/* Parameters. A conv has 1 (weight) or 2 (weight, bias), fc likewise, bn 2 (gamma, beta). */
typedef struct {
    const char *name; /* "weight", "bias", "gamma", "beta" */
    float *w;         /* the tensor as oneDNN stores it (n_stored elements, padding is zero) */
    float *dw;        /* its gradient, same layout as w */
    size_t n_stored;
    size_t n_plain;   /* the true element count (what "params" counts) */
    bool decay;       /* weight decay applies (conv/fc weights only) */
} LayerParam;

int layer_n_params(const Layer *l);
/* Bytes the layer holds for parameters and their gradients. */
size_t layer_param_bytes(const Layer *l);
/* Kaiming-normal conv weights (std = sqrt(2 / (K*R*S)), fan-out as torchvision's ResNets), fc weights
 * and biases uniform in +-1/sqrt(fan_in) (PyTorch's default), BN gamma 1 / beta 0, all drawn from
 * `rng` (the caller passes a stream split per layer). */
int layer_init_params(Layer *l, Rng *rng);
LayerParam layer_param(Layer *l, int i);
int layer_param_get(Layer *l, int i, float *plain);
int layer_param_set(Layer *l, int i, const float *plain);
int layer_grad_get(Layer *l, int i, float *plain);
/* Any buffer in parameter i's stored layout (n_stored floats, e.g. its momentum) to and from the
 * plain layout (n_plain floats). */
int layer_param_to_plain(Layer *l, int i, const float *stored, float *plain);
int layer_param_from_plain(Layer *l, int i, const float *plain, float *stored);

/* BN only: running mean and variance (C), plain; NULL for other kinds. */
float *layer_bn_running_mean(Layer *l);
float *layer_bn_running_var(Layer *l);

#endif
