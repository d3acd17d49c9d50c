/* sparse_kernels.h: the CPU sparse backward kernels of a convolution over the CSR sparse gradient
 * of core/sparse.h (backend sparse).
 *
 * Layouts: activations NHWC (N,H,W,C); the kernels' weights are OHWI (K,R,S,C), i.e. channel vectors
 * innermost. OpenMP over both cores; deterministic for a given workspace; no allocation per call. */
#ifndef RESPROP_SPARSE_KERNELS_H
#define RESPROP_SPARSE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/sparse.h"

/* Scratch of the sparse kernels, created once (when the model is built) for the largest layer.
 *
 * dw_priv: per-slot private weight-gradient accumulators of the reference bwd_weights
 * (sparse_conv_bwd_weights_ref): the samples are split into n_slots contiguous ranges, one private
 * dW each, summed in slot order, so its result depends only on n_slots.
 * The fast bwd_weights (sparse_conv_bwd_weights) regroups the nonzeros of a block of rows by output
 * channel in each slot's entry buffer (ent_cap entries, one region per channel; kcount holds the
 * per-channel counts), and splits the work over the slots in one of two ways:
 *   - dW of at most split_samples_bytes (default 1 MiB: the private copies and their reduction are
 *     cheap): samples split as in the reference, private dW in dw_priv summed in slot order; the
 *     result depends on n_slots only;
 *   - larger dW: the OUTPUT CHANNELS split into n_slots contiguous ranges, slot t owning dW[k] for
 *     k in [t*K/n_slots, (t+1)*K/n_slots) and writing it directly (no private copies, no reduction);
 *     the result does not even depend on n_slots.
 * Either way every element is summed in a fixed order (row blocks in order; within a block, the
 * nonzeros of each k in row order): bit-identical across calls whatever the number of threads. */
typedef struct {
    int n_slots;       /* number of slots (normally the thread count) */
    size_t dw_elems;   /* capacity of each private dW, in floats (>= K*R*S*C of any layer used) */
    float *dw_priv;    /* (n_slots, dw_elems) reference path and fast sample split */
    size_t xs_elems;   /* capacity of each private batch sum of x, in floats (0: none) */
    float *xs_priv;    /* (n_slots, xs_elems) the fast sample split's partial sums of x, for layers
                        * with H*W*C <= xs_elems (sparse_conv_bwd_weights_xsum) */
    size_t split_samples_bytes; /* fast bwd_weights: sample split up to this dW size (init: 1 MiB) */
    size_t ent_cap;    /* entries per slot in ent (init: 128 Ki; a block of rows has at most ent_cap/K
                        * rows, so it must be >= K: tests lower it to force many small blocks) */
    void *ent;         /* (n_slots, ent_cap) nonzeros regrouped by output channel (internal type) */
    size_t kcount_cap; /* per slot: max channels a slot owns + 1 */
    int32_t *kcount;   /* (n_slots, kcount_cap) */
} SparseWorkspace;

/* n_slots <= 0 means omp_get_max_threads(). Allocates dw_priv, xs_priv (xs_elems: the largest H*W*C
 * of a layer input whose batch sum should ride along, 0 for none) and the regrouping buffers (a few
 * MiB per slot). Returns 0, ERR_SHAPE (dw_elems 0) or ERR_NOMEM; on failure *ws is zeroed. */
int sparse_workspace_init(SparseWorkspace *ws, int n_slots, size_t dw_elems, size_t xs_elems);
void sparse_workspace_deinit(SparseWorkspace *ws);

/* dx (N,H,W,C) NHWC, overwritten = the input gradient of the convolution for output gradient s and
 * weights w_ohwi (K,R,S,C): for each nonzero (n,p,q,k,v) and tap (r,s) inside the input,
 * dx[n, p*stride-pad+r, q*stride-pad+s, :] += v * w[k,r,s,:].
 * Fast path (AVX-512, C a multiple of 16): gather form, each dx pixel accumulated in registers over
 * the taps and nonzeros that reach it and written once; parallel over input rows; deterministic
 * (each element's summation order depends only on s). Other C: the reference kernel.
 * s's shape must match g (ASSERT). Allocates nothing. */
void sparse_conv_bwd_data(const SparseGrad *s, const float *w_ohwi, ConvGeom g, float *dx);
/* The same with every sample's dx starting from dx0 (H,W,C) instead of 0 (NULL: 0): the backend adds
 * the reuse term's broadcast input gradient this way, without another pass over dx. */
void sparse_conv_bwd_data_init(const SparseGrad *s, const float *w_ohwi, ConvGeom g, const float *dx0, float *dx);

/* dw_ohwi (K,R,S,C), overwritten = the weight gradient for output gradient s and input x (N,H,W,C):
 * dw[k,r,s,:] += v * x[n, p*stride-pad+r, q*stride-pad+s, :] over the nonzeros and in-bounds taps.
 * Fast path (AVX-512; C a multiple of 16 with R*S in {1, 9}, or R = 3 with S*C <= 16, e.g. the
 * 3-channel stem): samples or output channels split over the slots (see SparseWorkspace), nonzeros regrouped
 * by channel per block of rows, the dW taps of one channel accumulated in registers. Other shapes:
 * the reference kernel. Deterministic for a given ws (see SparseWorkspace); ASSERT
 * K*R*S*C <= ws->dw_elems. Allocates nothing. */
void sparse_conv_bwd_weights(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                             float *dw_ohwi);

/* The same, and xsum (H,W,C), overwritten (when not NULL) = the sum of x over the batch at every
 * pixel some window reads (a strided 1x1 kernel: its stride's pixels; the others 0): ReSprop's reuse
 * term needs it. In the fast path's sample split the sum is taken per slot while each block's part
 * of x is still in cache (no pass over x of its own), and the slots' partial sums are added in slot
 * order; elsewhere it is a separate pass. Deterministic for a given ws. */
void sparse_conv_bwd_weights_xsum(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                                  float *dw_ohwi, float *xsum);

/* sum (sample floats), overwritten = the sum of x's n samples (n, sample): blocks of 4096 floats in
 * parallel, each summed over the samples in order (deterministic whatever the thread count). */
void sparse_sum_samples(float *sum, const float *x, int n, size_t sample);
/* xsum (H,W,C), overwritten = the batch sum of x (N,H,W,C) at every pixel a window of g reads (a
 * strided 1x1 kernel: its stride's pixels, zeros elsewhere; else sparse_sum_samples). */
void sparse_batch_sum(const float *x, ConvGeom g, float *xsum);

/* The reference kernels: plain per-nonzero scatter, portable C, same contracts (bwd_data zeroes dx
 * and scatters, parallel over samples; bwd_weights accumulates per-sample-range private dW in
 * ws->dw_priv and sums them in slot order, deterministic for a given ws->n_slots). For tests and
 * for the shapes the fast paths do not cover. */
void sparse_conv_bwd_data_ref(const SparseGrad *s, const float *w_ohwi, ConvGeom g, float *dx);
void sparse_conv_bwd_data_ref_init(const SparseGrad *s, const float *w_ohwi, ConvGeom g, const float *dx0, float *dx);
void sparse_conv_bwd_weights_ref(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                                 float *dw_ohwi);

#endif
