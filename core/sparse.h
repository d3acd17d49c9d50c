/* sparse.h: the sparse-gradient format of the sparse backend, and the convolution geometry.
 *
 * SparseGrad is CSR over the output pixels of an NHWC output gradient S (N,P,Q,K): row i =
 * (n*P + p)*Q + q holds the nonzeros of pixel (n,p,q) in [row_ptr[i], row_ptr[i+1]), each with its
 * channel chan[j] (k, ascending within a row) and value val[j]. This is THE interchange format:
 *   - the scheme's producing pass (ReSprop's difference/threshold over G) writes it directly, fused,
 *     through the slot-writer protocol below (compressing a dense S in a second pass costs 30-60% of
 *     the sparse kernels' time on small layers, see CPU-NOTES); schemes without a fused writer have
 *     their dense S compressed by sparse_from_dense;
 *   - the CPU kernels (core/sparse_kernels.h) read it;
 *   - GSCN-sim (accel/) reads the same format (with the layer shapes) to time the accelerator.
 * A structured scheme (resprop-vec) writes rows that are either empty or full (all K channels in
 * order): sparse_rows_structured recognises that, and the gathered-GEMM kernels use it.
 *
 * Ownership: SparseGrad is a value object the caller owns (sparse_init / sparse_deinit; deinit
 * accepts a zeroed or already deinit'ed struct). Everything is allocated through core/mem.h at init;
 * nothing else here allocates. */
#ifndef RESPROP_SPARSE_H
#define RESPROP_SPARSE_H

#include <stdbool.h>
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

/* A SparseGrad of shape (n,p,q,k) on the arrays of `store` (borrowed: a view is never deinit'ed and
 * lives no longer than the store), so layers of different shapes can share one storage. Returns 0, or
 * ERR_SHAPE (logged) when the store has fewer rows than n*p*q or nnz_cap < n*p*q*k, or k > SPARSE_K_MAX. */
int sparse_view(SparseGrad *view, const SparseGrad *store, int n, int p, int q, int k);

/* Whether the windows of g read only the pixels on a stride: a strided 1x1 kernel without padding. */
bool sparse_geom_strided_1x1(ConvGeom g);

/* Shape classes of the sparse backend's conv layers, each with its own break-even density (run config
 * keys breakeven-NAME): stem (c < 16), pointwise (1x1), narrow (c <= 64), wide (c > 64). */
typedef enum {
    SPARSE_CLASS_STEM = 0,
    SPARSE_CLASS_POINTWISE,
    SPARSE_CLASS_NARROW,
    SPARSE_CLASS_WIDE,
    SPARSE_N_CLASSES
} SparseClass;
SparseClass sparse_class(ConvGeom g);
const char *sparse_class_name(SparseClass c); /* "stem", "pointwise", "narrow", "wide" */

/* ---- the slot-writer protocol (fused producers, no allocation) ----------------------------------
 * A producer writes in parallel over n_slots contiguous ranges of whole samples. Slot t owns the rows
 * [lo, hi) given by sparse_slot_rows, and writes its nonzeros in row order from index lo * K (its own
 * region; this needs nnz_cap >= N*P*Q*K, see sparse_init), setting row_ptr[i + 1] to the index one
 * past row i's last nonzero for each of its rows. sparse_slot_finish then compacts the slots in order
 * into the plain CSR above and sets nnz. The result does not depend on n_slots. */

/* Rows [*lo, *hi) of slot t of n_slots (samples t*N/n_slots .. (t+1)*N/n_slots). */
void sparse_slot_rows(const SparseGrad *sg, int t, int n_slots, size_t *lo, size_t *hi);
/* 0, or ERR_SHAPE (logged) when nnz_cap < N*P*Q*K, which the protocol needs. */
int sparse_slot_check(const SparseGrad *sg);
/* Compacts the n_slots regions written as above into plain CSR; sets row_ptr[0] = 0 and nnz. */
void sparse_slot_finish(SparseGrad *sg, int n_slots);

/* Whether every row is empty or holds all K channels (structured rows), and how many are full. */
bool sparse_rows_structured(const SparseGrad *sg, size_t *n_full);

#endif
