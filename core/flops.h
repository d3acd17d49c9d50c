/* flops.h: the one FLOP rule of the harness (every FLOP count in tables, records and reports comes from
 * here). Pure arithmetic on layer shapes: no oneDNN, no allocation except flops_network's count rows.
 *
 * The rule: 2 FLOPs per multiply-add; plain adds and compares 1 FLOP each. For a conv layer with batch N,
 * input (C,H,W), output (K,P,Q), kernel R x S (any stride and padding: padding taps count as work):
 *   fwd              = 2*N*K*P*Q*C*R*S
 *   bwd_dense        = bwd_data + bwd_weights = fwd + fwd             (the dense backward)
 *   bwd_sparse       = 2*nnz*C*R*S (bwd_data) + 2*nnz*C*R*S (bwd_weights)
 *                      where nnz = the nonzeros of the propagated gradient S (each nonzero of dY touches
 *                      C*R*S inputs and C*R*S weights)
 *   bwd_pre          (only with a reuse term: ReSprop) the two single-sample passes bwd_data(R, W) and
 *                      bwd_weights(sum_n X_n, R), 2*K*P*Q*C*R*S each, + the batch sum of the input,
 *                      N*C*H*W adds. They do not depend on G (they may overlap the forward pass) and cost
 *                      about 1/N of the dense backward (2/N of one dense pass, the "2/N" of RESPROP.md).
 *   bwd_elementwise  reported apart from the convolution FLOPs:
 *                      with reuse:    N*K*P*Q (D = G - R) + N*K*P*Q (|D| > tau) + N*C*H*W (the add of the
 *                                     broadcast bwd_data(R) into dX)
 *                      without reuse: N*K*P*Q (the scheme's mask pass over G)
 *   effective backward = bwd_sparse + bwd_pre + bwd_elementwise; reduction = bwd_dense / effective.
 * Not counted (the model_count convention: bias adds, BN, ReLU, pooling, ADD and the loss count 0): the bias
 * gradient (sum of G over N,P,Q), the add of the two dW terms (K*C*R*S, below 1/N of the rest), and the
 * copy of the stored sample R. The first conv's bwd_data (the gradient of the image) is counted although a
 * trainer may skip it, so that the dense backward is exactly twice the forward for every layer.
 *
 * FC layers stay dense under every scheme (RESPROP.md: FC and BN stay dense): flops_fc counts them as a
 * 1x1 conv over a 1x1 input with C = the flattened input features, propagated whole: bwd_sparse =
 * bwd_dense (all N*K entries "nonzero"), no pre-ReSprop part, no elementwise overhead. They therefore
 * appear in fwd, bwd_dense and, unchanged, in the effective backward.
 *
 * Overall speedup (Amdahl): if a share p of the training time is the backward pass and it becomes
 * `reduction` times cheaper, training becomes 1 / ((1-p) + p/reduction) times faster. p = 0.7 reproduces the
 * paper's 2.7x at its 10x backward reduction (1 / (0.3 + 0.07) = 2.70); the paper does not state its p, so
 * p is a parameter everywhere and 0.7 only the default. */
#ifndef RESPROP_FLOPS_H
#define RESPROP_FLOPS_H

#include <stdbool.h>

#include "core/layer.h"
#include "core/model.h"
#include "core/shape.h"

/* The default share of training time in the backward pass for the Amdahl speedup: 0.7 links a 10x
 * backward reduction to a 2.7x overall speedup, the paper's two headline numbers (which themselves
 * live in results/paper/claims.csv). */
#define FLOPS_DEFAULT_P 0.7

/* FLOPs of one layer (or a sum of layers) for one training step of a batch. All in FLOP. */
typedef struct {
    double fwd;             /* forward */
    double bwd_dense;       /* dense backward: bwd_data + bwd_weights */
    double bwd_sparse;      /* backward of the propagated gradient S (FC: the whole gradient) */
    double bwd_pre;         /* pre-ReSprop single-sample passes + batch sum of the input (reuse only) */
    double bwd_elementwise; /* difference, threshold and broadcast add (reuse) or the mask pass (no reuse) */
} ConvFlops;

/* One conv layer (s->kind == LAYER_CONV). in, out: per-sample dims (n ignored; out.c must be s->out_c),
 * e.g. from model_count; batch N >= 1; nnz: nonzeros of the propagated gradient S over the whole batch,
 * 0 <= nnz <= N*K*P*Q (fractional values allowed, e.g. density * N*K*P*Q); reuse: the scheme adds a
 * reuse term (ReSprop) or not (meProp, threshold, random, dense). Arguments outside these are an ASSERT.
 * Cannot fail. */
void flops_conv(const LayerSpec *s, Dims4 in, Dims4 out, int batch, double nnz, bool reuse, ConvFlops *f);

/* One FC layer (s->kind == LAYER_FC), always dense (see above). Cannot fail. */
void flops_fc(const LayerSpec *s, Dims4 in, Dims4 out, int batch, ConvFlops *f);

/* acc += f, field by field. */
void flops_add(ConvFlops *acc, const ConvFlops *f);

/* bwd_sparse + bwd_pre + bwd_elementwise: the backward a scheme actually costs. */
double flops_bwd_effective(const ConvFlops *f);

/* bwd_dense / flops_bwd_effective(f): how many times cheaper the backward got (< 1: more expensive).
 * 0 when nothing was counted (effective backward 0). */
double flops_reduction(const ConvFlops *f);

/* Overall training speedup when a share p (0..1) of the training time is the backward pass and that
 * becomes `reduction` (> 0) times faster: 1 / ((1-p) + p/reduction). Arguments outside are an ASSERT. */
double flops_amdahl(double reduction, double p);

/* The whole network at a uniform density (0..1) of the propagated gradient in every conv layer
 * (nnz = density * N*K*P*Q): conv layers through flops_conv, FC layers through flops_fc, every other
 * kind zero. per_layer (m->n_layers entries, caller-allocated; NULL if not wanted) receives each layer's
 * counts; *total their sum. Returns 0, ERR_CONFIG (batch < 1 or density outside [0, 1], logged),
 * ERR_SHAPE (a broken layer table, from model_count) or ERR_NOMEM. */
int flops_network(const ModelSpec *m, int batch, double density, bool reuse, ConvFlops *per_layer,
                  ConvFlops *total);

#endif
