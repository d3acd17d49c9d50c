/* sparse.h: the sparse-gradient format and the CPU sparse backward kernels of a convolution.
 *
 * SparseGrad is CSR over the output pixels of an NHWC output gradient S (N,P,Q,K): row i =
 * (n*P + p)*Q + q holds the nonzeros of pixel (n,p,q) in [row_ptr[i], row_ptr[i+1]), each with its
 * channel chan[j] (k, ascending within a row when built by sparse_from_dense) and value val[j].
 * This is THE interchange format of the sparse backend:
 *   - today sparse_from_dense compresses a dense S (tests, and the first integration step);
 *   - next step, the scheme's producing pass (ReSprop's difference/threshold over G) writes this
 *     format directly, fused, because compressing a dense S costs 30-60% of the sparse kernels'
 *     time on small layers (see CPU-NOTES);
 *   - GSCN-sim (accel/) reads the same format (with the layer shapes) to time the accelerator.
 *
 * Ownership: SparseGrad and SparseWorkspace are value objects the caller owns (x_init / x_deinit;
 * deinit accepts a zeroed or already deinit'ed struct). Everything is allocated through core/mem.h
 * at init; from_dense, to_dense and the kernels allocate nothing.
 *
 * Layouts: activations NHWC (N,H,W,C); the kernels' weights are OHWI (K,R,S,C), i.e. channel vectors
 * innermost. The kernels are reference implementations (correct first, OpenMP over samples / over
 * private dW slots), deterministic for a given workspace. */
#ifndef RESPROP_SPARSE_H
#define RESPROP_SPARSE_H

#include <stddef.h>
#include <stdint.h>

/* Geometry of one convolution: input (N,H,W,C), weights (K,R,S,C), output (N,P,Q,K).
 * p and q must equal shape_out(h, r, stride, pad) and shape_out(w, s, stride, pad);
 * sparse_geom fills them. */
typedef struct {
    int n, c, h, w, k, r, s, stride, pad, p, q;
} ConvGeom;

/* A ConvGeom with p, q computed (shape_out). Pure; no validation (sparse_geom_check does that). */
ConvGeom sparse_geom(int n, int c, int h, int w, int k, int r, int s, int stride, int pad);
/* 0 when every dim is positive, pad >= 0, the window fits (p, q >= 1 and consistent with the
 * input) and K <= SPARSE_K_MAX; else ERR_SHAPE with a logged message. */
int sparse_geom_check(ConvGeom g);

#define SPARSE_K_MAX 65535 /* channel indices are uint16_t */

typedef struct {
    int n, p, q, k;     /* shape of the dense gradient (N,P,Q,K) */
    size_t nnz;         /* nonzeros currently stored, <= nnz_cap */
    size_t nnz_cap;     /* capacity of chan and val */
    int32_t *row_ptr;   /* (N*P*Q + 1) CSR row starts, row_ptr[0] = 0, row_ptr[N*P*Q] = nnz */
    uint16_t *chan;     /* (nnz_cap) output channel k of each nonzero */
    float *val;         /* (nnz_cap) value of each nonzero */
} SparseGrad;

/* Allocates for shape (n,p,q,k) and up to nnz_cap nonzeros (nnz_cap <= INT32_MAX; 0 allowed);
 * starts empty (nnz 0, row_ptr all 0). Returns 0, ERR_SHAPE (bad dims, k > SPARSE_K_MAX, nnz_cap
 * too large; logged) or ERR_NOMEM. On failure *sg is zeroed. */
int sparse_init(SparseGrad *sg, int n, int p, int q, int k, size_t nnz_cap);
void sparse_deinit(SparseGrad *sg);

/* Compresses a dense s (N,P,Q,K) NHWC of sg's shape, keeping the entries != 0 (-0.0 is dropped, NaN
 * kept). Returns 0, or ERR_SHAPE with a message naming the count and the capacity when s has more than
 * nnz_cap nonzeros; sg is then the valid empty gradient (nnz 0). Allocates nothing. */
int sparse_from_dense(SparseGrad *sg, const float *s);
/* Expands into s (N,P,Q,K) NHWC (overwritten: zeros elsewhere). For tests. */
void sparse_to_dense(const SparseGrad *sg, float *s);
/* nnz / (N*P*Q*K). */
double sparse_density(const SparseGrad *sg);

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
