/* sparse_kernels.h: the CPU sparse backward kernels of a convolution over the CSR sparse gradient
 * of core/sparse.h (backend sparse).
 *
 * Layouts: activations NHWC (N,H,W,C); the kernels' weights are OHWI (K,R,S,C), i.e. channel vectors
 * innermost. OpenMP over both cores; deterministic for a given workspace; no allocation per call. */
#ifndef RESPROP_SPARSE_KERNELS_H
#define RESPROP_SPARSE_KERNELS_H

#include <stddef.h>

#include "core/sparse.h"

/* Per-slot private weight-gradient accumulators for sparse_conv_bwd_weights, created once (when the
 * model is built) for the largest layer. The result depends only on n_slots (the samples are split
 * into n_slots contiguous ranges, one private dW each, summed in slot order), not on how many
 * threads OpenMP actually runs: bit-identical across calls. */
typedef struct {
    int n_slots;       /* number of private accumulators (normally the thread count) */
    size_t dw_elems;   /* capacity of each, in floats (>= K*R*S*C of any layer used with it) */
    float *dw_priv;    /* (n_slots, dw_elems) */
} SparseWorkspace;

/* n_slots <= 0 means omp_get_max_threads(). Returns 0, ERR_SHAPE (dw_elems 0) or ERR_NOMEM;
 * on failure *ws is zeroed. */
int sparse_workspace_init(SparseWorkspace *ws, int n_slots, size_t dw_elems);
void sparse_workspace_deinit(SparseWorkspace *ws);

/* dx (N,H,W,C) NHWC, overwritten = the input gradient of the convolution for output gradient s and
 * weights w_ohwi (K,R,S,C): for each nonzero (n,p,q,k,v) and tap (r,s) inside the input,
 * dx[n, p*stride-pad+r, q*stride-pad+s, :] += v * w[k,r,s,:]. Parallel over samples (no races).
 * s's shape must match g (ASSERT). Allocates nothing. */
void sparse_conv_bwd_data(const SparseGrad *s, const float *w_ohwi, ConvGeom g, float *dx);

/* dw_ohwi (K,R,S,C), overwritten = the weight gradient for output gradient s and input x (N,H,W,C):
 * dw[k,r,s,:] += v * x[n, p*stride-pad+r, q*stride-pad+s, :] over the nonzeros and in-bounds taps.
 * Accumulates into ws's private slots (ASSERT K*R*S*C <= ws->dw_elems), then sums them in slot
 * order. Deterministic for a given ws->n_slots. Allocates nothing. */
void sparse_conv_bwd_weights(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                             float *dw_ohwi);

#endif
