/* sparse_vec.h: the backward convolutions for a STRUCTURED sparse output gradient (every CSR row of
 * core/sparse.h empty or full, as resprop-vec writes it): the active positions' values already form
 * a packed (n_active x K) row-major matrix in s->val, so both backward passes are dense GEMMs over
 * the gathered active positions (oneDNN's dnnl_sgemm; OpenBLAS for outputs narrower than 64 columns):
 *   bwd_data:    cols (m x R*S*C) = vals (m x K) * W (K x R*S*C, OHWI as a matrix), then col2im:
 *                each active position's R*S*C block is added into dx at its window (taps outside the
 *                input skipped);
 *   bwd_weights: dW (K x R*S*C) = sum over chunks of vals^T (K x m) * im2col rows (m x R*S*C) gathered
 *                from x (zeros outside the input).
 * ReSprop's reuse terms run on the same kernels: R (P,Q,K) is one dense sample, so its input gradient
 * is bwd_data of one sample (sparse_vec_conv_bwd_data_dense1) and its weight gradient over the batch
 * sum of X joins S's in one accumulation (sparse_vec_conv_bwd_weights_reuse).
 * Layouts as core/sparse_kernels.h: activations NHWC, weights OHWI (K,R,S,C).
 *
 * Threads: one OpenMP region per call; inside it each thread runs single-threaded GEMMs. bwd_data:
 * runs of whole samples claimed dynamically (no col2im races), each sample assembled in a scratch
 * copy in cache and then streamed into dx; when W (K*R*S*C) is large, every chunk of positions is
 * instead computed by column slices of W (each thread one slice, so W is read once) and added by
 * sample ranges. bwd_weights: for a small dW each thread accumulates its contiguous share of the
 * positions into a private dW, summed in thread order afterwards; for a large one, 16-float-aligned
 * column ranges of dW of about 256 columns claimed dynamically. Every partition depends only on the
 * shapes, the workspace and the thread count, so results are bit-identical across calls with the
 * same workspace and thread count. OpenBLAS must run at one thread inside OpenMP regions: the kernels
 * set openblas_set_num_threads(1) for the call when it is not already 1 and restore it afterwards (the
 * `resprop` CLI keeps it at 1 anyway). Work is cut into chunks of at most ws->cols_cap floats per
 * thread, so memory stays bounded whatever the layer. Nothing allocates per call. */
#ifndef RESPROP_SPARSE_VEC_H
#define RESPROP_SPARSE_VEC_H

#include <stddef.h>

#include "core/sparse.h"

#define SPARSE_VEC_DEFAULT_BYTES ((size_t)2 << 20) /* cols buffer per thread */
#define SPARSE_VEC_MAX_ROWS 8192                    /* active positions per GEMM at most */

/* Scratch of the gathered-GEMM kernels: one cols buffer per thread, created once (when the model is
 * built) for the largest R*S*C of the layers it serves. Value object owned by the caller. */
typedef struct {
    int n_threads;   /* buffers (the OpenMP threads a call uses at most) */
    size_t max_rsc;  /* the largest R*S*C it serves */
    size_t cols_cap; /* floats per buffer (>= max_rsc: one position's column block fits) */
    float *cols;     /* (n_threads, cols_cap) */
} SparseVecWorkspace;

/* n_threads <= 0 means omp_get_max_threads(); bytes_per_thread 0 means SPARSE_VEC_DEFAULT_BYTES
 * (raised to one R*S*C block when smaller). Returns 0, ERR_SHAPE (max_rsc 0; logged) or ERR_NOMEM;
 * on failure *ws is zeroed. Allocates through core/mem.h. */
int sparse_vec_workspace_init(SparseVecWorkspace *ws, size_t max_rsc, int n_threads, size_t bytes_per_thread);
/* Accepts a zeroed or already deinit'ed workspace. */
void sparse_vec_workspace_deinit(SparseVecWorkspace *ws);

/* dx (N,H,W,C) NHWC, overwritten: the input gradient for the structured output gradient s (shape
 * (N,P,Q,K) of g; ASSERT) and weights w_ohwi (K,R,S,C). ASSERTs that every row is empty or holds K
 * entries, and R*S*C <= ws->max_rsc. Allocates nothing. */
void sparse_vec_conv_bwd_data(const SparseGrad *s, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                              float *dx);
/* The same with every sample's dx starting from dx0 (H,W,C) instead of 0 (NULL: 0). */
void sparse_vec_conv_bwd_data_init(const SparseGrad *s, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                                   const float *dx0, float *dx);

/* dw_ohwi (K,R,S,C), overwritten: the weight gradient for the structured output gradient s and the
 * input x (N,H,W,C). Same assertions; allocates nothing. */
void sparse_vec_conv_bwd_weights(const SparseGrad *s, const float *x, ConvGeom g, SparseVecWorkspace *ws,
                                 float *dw_ohwi);

/* dw_ohwi (K,R,S,C), overwritten: the weight gradient of the structured S over x (N,H,W,C) plus that
 * of the dense single-sample gradient r (P,Q,K) over the batch sum of x (ReSprop's reuse term: R
 * against sum_n X[n]); xsum (H,W,C), overwritten, receives that batch sum at every pixel some window
 * reads (the others are unspecified: a strided 1x1 kernel sums only its stride's pixels). When the
 * per-thread blocks fit the workspace, the batch sum is taken in the same pass over x as the gather
 * (per-thread partial sums, added in thread order). Same assertions; allocates nothing. */
void sparse_vec_conv_bwd_weights_reuse(const SparseGrad *s, const float *x, const float *r, ConvGeom g,
                                       SparseVecWorkspace *ws, float *xsum, float *dw_ohwi);

/* dx1 (H,W,C), overwritten: the input gradient of ONE sample for the dense output gradient r (P,Q,K)
 * (the reuse term's; g.n is ignored). ASSERTs R*S*C <= ws->max_rsc. Allocates nothing. */
void sparse_vec_conv_bwd_data_dense1(const float *r, const float *w_ohwi, ConvGeom g, SparseVecWorkspace *ws,
                                     float *dx1);

#endif
