/* net.h: a network instance built from a ModelSpec for a fixed batch size.
 *
 * The Net owns one Layer per spec row, the activation arena (outputs, kept for backward, with
 * in-place reuse where a layer allows it), the gradient arena (buffers shared by liveness), the
 * input and label buffers. Everything is allocated in net_create; net_forward/net_backward allocate
 * nothing. Gradients reaching a layer output from several consumers (residual forks) are summed. */
#ifndef RESPROP_NET_H
#define RESPROP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/model.h"
#include "core/rng.h"

typedef struct Net Net;

/* Builds the network for `batch` samples and initialises its parameters from `rng` (one stream
 * split per layer, so a layer's init does not depend on the others). The spec is copied. */
int net_create(Net **out, const ModelSpec *m, int batch, DnnlCtx *ctx, const Rng *rng);
void net_destroy(Net *net); /* accepts NULL */

int net_batch(const Net *net);
/* Input buffer (N,H,W,C) NHWC and labels (N); the caller fills them before net_forward. */
float *net_input(Net *net);
int32_t *net_labels(Net *net);

/* Forward through the loss. train: batch statistics, keep what backward needs. */
int net_forward(Net *net, bool train);
/* Backward from the loss to every parameter gradient (after a training forward). */
int net_backward(Net *net);
/* net_backward that adds each layer's backward time (ms, including fork sums) to ms[i]. */
int net_backward_timed(Net *net, double *ms);
/* After net_forward: mean loss over the batch, and how many of the first n_valid samples are
 * correct in the top k (k = 1, 5). */
double net_loss(const Net *net);
int net_correct(const Net *net, int k, int n_valid);
/* Sum of the loss of the first n_valid samples (evaluation of a padded last batch). */
double net_loss_sum(const Net *net, int n_valid);

int net_n_layers(const Net *net);
Layer *net_layer(Net *net, int i);
/* Output activation of layer i (N,H,W,C) and its gradient buffer (valid during/after backward
 * only until the buffer is reused by another layer; NULL for the loss). */
float *net_output(Net *net, int i);

/* All learnable parameters in layer order (n_params entries). */
int net_n_params(const Net *net);
LayerParam net_param(Net *net, int i);

/* ---- sparsity schemes ----
 * net_attach_scheme gives every conv layer (and every fc layer when the scheme's wants_fc says so)
 * its own state of scheme `s` (options cfg, borrowed, at
 * nominal reuse RS) and one shared buffer for S. Before each training step, net_scheme_step tells
 * the layers the step; with `stats` the backward also measures, per conv layer, the cosine between
 * G and G_hat, between the stored reuse term R and a new sample of G, and between the scheme's and
 * the dense weight gradient (costs a dense weight-gradient pass on those steps only). */
/* The executor of the S terms (layer.h): backend dnnl (sparse false), or backend sparse with a
 * break-even density per conv shape class (sparse.h's SparseClass). */
typedef struct {
    bool sparse;
    double breakeven[SPARSE_N_CLASSES];
} NetBackend;

/* be NULL: backend dnnl. Backend sparse makes one CSR storage and one weight-gradient workspace for
 * all conv layers (sized for the largest). */
int net_attach_scheme(Net *net, const Scheme *s, const void *cfg, double reuse, uint64_t seed, const NetBackend *be);
void net_scheme_step(Net *net, long step, int epoch, long step_in_epoch, long steps_per_epoch, long total_steps,
                     bool stats);

typedef struct {
    int layer;          /* index in the model table */
    double density;     /* of S this step (1 on dense steps) */
    double tau;         /* threshold in force (NAN if none) */
    bool dense, has_r;  /* the step propagated G unchanged; a reuse term was added */
    bool sparse_path;   /* backend sparse: the S terms ran on the sparse kernels (else oneDNN) */
    double cos_g_ghat;  /* cosine(G, G_hat) over the whole tensor (stats steps, else NAN) */
    double cos_r_g;     /* cosine(R, G[x']) for a random sample x' (stats steps with R, else NAN) */
    double cos_dw;      /* cosine(scheme dW, dense dW) (stats steps, else NAN) */
} ConvSchemeStats;

/* Backend sparse: every conv layer with a scheme calls fn(ctx, layer index, S) at the end of the
 * backward of each non-dense step while observing is on (net_scheme_observe; off at attach), with the
 * step's CSR S (LayerScheme.observe). fn only reads S, so training is unchanged. ERR_CONFIG without a
 * scheme on backend sparse. */
int net_set_observer(Net *net, int (*fn)(void *ctx, int layer, const SparseGrad *s), void *ctx);
void net_scheme_observe(Net *net, bool on);

/* Conv layers with a scheme (0 without one), and the stats of the j-th after the last backward. */
int net_scheme_n(const Net *net);
const ConvSchemeStats *net_scheme_stats(const Net *net, int j);
/* The scheme state of the j-th conv layer as a blob (checkpoints). */
size_t net_scheme_state_bytes(const Net *net, int j);
void net_scheme_state_save(const Net *net, int j, void *blob);
int net_scheme_state_load(Net *net, int j, const void *blob, size_t bytes);

/* Bytes of the activation and gradient arenas (for reports). */
size_t net_activation_bytes(const Net *net);
size_t net_gradient_bytes(const Net *net);
/* Bytes of parameters and their gradients (momentum is the trainer's). */
size_t net_param_bytes(const Net *net);
/* Bytes the scheme adds: S, the CSR storage and the sparse workspace (the schemes' own state excluded). */
size_t net_scheme_bytes(const Net *net);

#endif
