/* ref.h: double-precision reference layers and a reference whole-network interpreter, written as
 * plain loops (oneDNN has no f64). They are the correctness anchors for core/layer.c and core/net.c:
 * tests/test_ref.c checks every backward here against centred finite differences of its forward,
 * and the layer/net tests compare the oneDNN engine against these functions.
 *
 * Layouts are the plain ones of core/layer.h:
 *   activations (N,H,W,C) NHWC, index ((n*H + h)*W + w)*C + c
 *   conv weight (K,C,R,S), index ((k*C + c)*R + r)*S + s; conv bias (K)
 *   fc weight   (K, H*W*C), the input flattened per sample in NHWC order: (h*W + w)*C + c; fc bias (K)
 *   bn gamma, beta, mean, var (C)
 * Window geometry (out_c, kh, kw, stride, pad) comes from a LayerSpec; `in` dims carry n = batch.
 * Backward functions WRITE their outputs (never accumulate) and recompute what they need from the
 * forward's inputs, so each can be checked on its own. Nothing here touches oneDNN or core/layer.c;
 * the interpreter allocates through core/mem.h (leak checks see it). */
#ifndef RESPROP_TESTS_REF_H
#define RESPROP_TESTS_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/model.h"
#include "core/shape.h"

#define REF_BN_EPS 1e-5
#define REF_BN_MOMENTUM 0.1

/* Output dims of a layer (n copied from in[0]), computed independently of layer_out_dims.
 * INPUT: in[0]. LOSS: in[0], which must be (N, classes, 1, 1). Returns 0 or ERR_SHAPE (logged). */
int ref_out_dims(const LayerSpec *s, const Dims4 *in, Dims4 *out);

/* Convolution. x (N,H,W,C), w (K,C,R,S), b (K) or NULL for no bias, y (N,P,Q,K). */
void ref_conv_fwd(const LayerSpec *s, Dims4 in, const double *x, const double *w, const double *b,
                  double *y);
/* dx (N,H,W,C) from dy (N,P,Q,K). */
void ref_conv_bwd_data(const LayerSpec *s, Dims4 in, const double *w, const double *dy, double *dx);
/* dw (K,C,R,S) and db (K) (db NULL: not computed) from x and dy. */
void ref_conv_bwd_weights(const LayerSpec *s, Dims4 in, const double *x, const double *dy, double *dw,
                          double *db);

/* Batch norm, training mode: batch mean and biased variance over N*H*W per channel.
 * y = gamma * (x - mean) / sqrt(var + eps) + beta, then ReLU when relu. mean/var (C) receive the
 * batch statistics (var biased). */
void ref_bn_fwd_train(Dims4 d, const double *x, const double *gamma, const double *beta, bool relu,
                      double *y, double *mean, double *var);
/* Training-mode backward (statistics recomputed from x): dx (N,H,W,C), dgamma, dbeta (C). */
void ref_bn_bwd(Dims4 d, const double *x, const double *gamma, const double *beta, bool relu,
                const double *dy, double *dx, double *dgamma, double *dbeta);
/* Inference mode with the given running mean/var (C). */
void ref_bn_fwd_infer(Dims4 d, const double *x, const double *gamma, const double *beta,
                      const double *mean, const double *var, bool relu, double *y);
/* Running statistics update (PyTorch): rm = (1-m) rm + m mean, rv = (1-m) rv + m var * M/(M-1),
 * var biased over M = N*H*W samples, m = REF_BN_MOMENTUM. */
void ref_bn_update_running(int c, size_t m, const double *mean, const double *var, double *run_mean,
                           double *run_var);

/* ReLU over n elements; backward mask x > 0. */
void ref_relu_fwd(size_t n, const double *x, double *y);
void ref_relu_bwd(size_t n, const double *x, const double *dy, double *dx);

/* Max pooling (kh, kw, stride, pad): padding never wins (only in-bounds elements compete); the
 * gradient goes to the first maximum in row-major window order. y (N,P,Q,C). */
void ref_maxpool_fwd(const LayerSpec *s, Dims4 in, const double *x, double *y);
void ref_maxpool_bwd(const LayerSpec *s, Dims4 in, const double *x, const double *dy, double *dx);
/* Average pooling with padding counted in the divisor (kh*kw). */
void ref_avgpool_fwd(const LayerSpec *s, Dims4 in, const double *x, double *y);
void ref_avgpool_bwd(const LayerSpec *s, Dims4 in, const double *dy, double *dx);
/* Global average pool to (N,1,1,C). */
void ref_gap_fwd(Dims4 in, const double *x, double *y);
void ref_gap_bwd(Dims4 in, const double *dy, double *dx);

/* Fully connected: y (N,K) = x (N, H*W*C) w^T + b; b NULL for no bias. */
void ref_fc_fwd(Dims4 in, int k, const double *x, const double *w, const double *b, double *y);
/* dx (N,H,W,C), dw (K, H*W*C), db (K) (NULL: not computed); dx NULL: not computed. */
void ref_fc_bwd(Dims4 in, int k, const double *x, const double *w, const double *dy, double *dx,
                double *dw, double *db);

/* y = x0 + x1, then ReLU when relu. Backward: dx0 = dx1 = dy * (relu ? y > 0 : 1); y is the
 * forward output. */
void ref_add_fwd(size_t n, const double *x0, const double *x1, bool relu, double *y);
void ref_add_bwd(size_t n, const double *y, bool relu, const double *dy, double *dx0, double *dx1);

/* Softmax cross-entropy, mean over the batch. x (N, classes) logits, labels (N) in [0, classes),
 * p (N, classes) receives the probabilities. Returns the mean loss. */
double ref_softmax_ce_fwd(int n, int classes, const double *x, const int32_t *labels, double *p);
/* dx = (p - onehot(label)) / N. */
void ref_softmax_ce_bwd(int n, int classes, const double *p, const int32_t *labels, double *dx);

/* Number of learnable parameter tensors of a layer (conv/fc: 1 + bias, bn: 2, others 0) and the
 * element count of tensor i for input dims in[0] (0 when absent). Order as layer.h: weight, bias /
 * gamma, beta. */
int ref_n_params(const LayerSpec *s);
size_t ref_param_count(const LayerSpec *s, Dims4 in, int i);

/* ---- Reference whole-network interpreter ----------------------------------------------------- */

typedef struct {
    Dims4 out;          /* output dims, n = batch; LOSS: (N, classes, 1, 1) */
    double *y;          /* (N,H,W,C) output; LOSS: probabilities (N, classes) */
    double *dy;         /* (N,H,W,C) d loss / d y, summed over all consumers; layer 0: input gradient */
    int n_params;       /* 0..2 */
    size_t param_n[2];  /* element counts */
    double *param[2];   /* plain layouts (see top); the caller sets them (defaults as layer.h) */
    double *grad[2];    /* d loss / d param, same layouts; written by ref_net_backward */
    double *run_mean;   /* BN (C): running statistics, start 0 and 1; NULL otherwise */
    double *run_var;
    double *batch_mean; /* BN (C): last training forward's batch statistics (var biased) */
    double *batch_var;
} RefLayer;

typedef struct {
    const ModelSpec *m; /* borrowed; must outlive the RefNet */
    int batch;
    RefLayer *layers;   /* m->n_layers entries */
    int32_t *labels;    /* (N), caller fills */
    double loss;        /* after ref_net_forward */
    double *scratch[2]; /* (max activation count) input gradients before they are summed */
} RefNet;

/* Allocates every buffer for `batch` samples (all through core/mem.h) with the layer.h parameter
 * defaults (weights and biases 0, gamma 1, beta 0, running mean 0, var 1). Returns 0, ERR_SHAPE
 * (logged) for a spec that does not fit, or ERR_NOMEM; on failure nothing stays allocated. */
int ref_net_init(RefNet *r, const ModelSpec *m, int batch);
void ref_net_deinit(RefNet *r); /* accepts a zeroed RefNet */
/* Input (N,H,W,C) buffer = layers[0].y; the caller fills it and r->labels. */
double *ref_net_input(RefNet *r);
/* Forward through the loss. train: BN uses batch statistics and updates its running statistics
 * (momentum 0.1, unbiased variance); otherwise BN uses the running statistics. Returns the loss. */
double ref_net_forward(RefNet *r, bool train);
/* Backward after a training forward: every layers[i].grad[] and layers[i].dy (layers[0].dy is the
 * input gradient). Consumers' contributions to a shared output are summed. */
void ref_net_backward(RefNet *r);

/* The batch sum of X is specified only at the pixels some window of g reads: zeroes the other
 * pixels of a (H,W,C) float array and of b (H,W,C) double (either may be NULL). */
void ref_zero_unread(ConvGeom g, float *a, double *b);

#endif
