/* sim.h: GSCN-sim's per-layer simulator core (../shared/GSCN.md): the cycles, traffic and energy of
 * one conv layer's two backward convolutions with the sparse gradient S (core/sparse.h CSR) on the
 * accelerator AccelArch (accel/arch.h), plus the pre-ReSprop dense work. This is the harness's own,
 * openly documented model, not the thesis's (unpublished) GSCN.
 *
 * ---- the dataflow (every rule, so a number can be recomputed by hand) ---------------------------
 * Notation: PE = a->pes, M = a->mults_per_pe, B = a->acc_banks_per_pe, bw = arch_dram_bytes_per_cycle.
 * Geometry g: input (N,H,W,C), weights (K,R,S,C), output (N,P,Q,K); a "row" is an output pixel
 * (n,p,q), rows numbered i = (n*P + p)*Q + q as in SparseGrad.
 *
 * 1. Work item = one nonzero s of S at (n,p,q,k). Its in-bounds taps are r in [r_lo,r_hi) x
 *    t in [s_lo,s_hi) (the window at ih0 = p*stride - pad, iw0 = q*stride - pad clipped to the
 *    input); it makes L = taps * C products (multiply-adds), in the order r, t, c (c fastest):
 *      bwd-data    (dX += s * W[k,r,t,:]):  destination dX[n, ih0+r, iw0+t, c],
 *                  linear index ((n*H + ih0+r)*W + iw0+t)*C + c;
 *      bwd-weights (dW += s * X[n,ih0+r,iw0+t,:]): destination dW[k,r,t,c],
 *                  linear index ((k*R + r)*S + t)*C + c.
 *    MACs of a part = sum of L over the nonzeros.
 * 2. A PE streams its nonzeros in CSR order; each nonzero takes its L products in groups of M
 *    consecutive products (ceil(L/M) groups; a group never mixes two nonzeros, so L mod M wastes
 *    multipliers). The products of a group cross the crossbar to the PE's B accumulator banks;
 *    bank = destination linear index mod B (low-order interleave). A bank accepts one product per
 *    cycle, so a group takes (largest number of its products that map to one bank) cycles: 1 when
 *    conflict-free, and the extra cycles are bank-conflict stalls. Each PE has its own banks (partial
 *    sums of different PEs are reduced on the way out, inside the drain traffic below).
 * 3. Partition over PEs: PE = Pk x Ps with Pk = gcd(PE, K) channel groups and Ps = PE / Pk spatial
 *    groups. Within a tile of rows [lo,hi), the nonzero (row i, channel k) goes to PE
 *    (k mod Pk) * Ps + ((i - lo) * Ps) / (hi - lo): channels interleaved, the tile's rows cut into Ps
 *    contiguous blocks. Load imbalance therefore comes from the real mask.
 * 4. Tiles: rows_per_tile T = max(1, floor(grad_buf_kib*1024 / 2 / (K * 6))) consecutive rows (half
 *    the gradient buffer holds a tile's S at full density: 4-byte value + 2-byte channel per
 *    nonzero; the other half is the second buffer). n_tiles = ceil(N*P*Q / T). All PEs finish a
 *    tile before the next (barrier): busy_t = max over PEs of the PE's cycles in tile t.
 * 5. Channel chunks: the stationary tensor, W for bwd-data (budget weight_buf_kib*1024/2, the other
 *    half double-buffers) and dW for bwd-weights (budget psum_buf_kib*1024), Zw = K*R*S*C*4 bytes,
 *    is cut along C into chunks of cc channels: cc = C when Zw <= budget, else
 *    fit = floor(budget / (K*R*S*4)) (at least 1) rounded down to a multiple of M when fit >= M
 *    (so groups stay full); n_cc = ceil(C / cc) chunks (the last may be narrower, cw = its width).
 *    The part runs the whole tile sequence once per chunk (chunk-major: steps u = chunk*n_tiles +
 *    tile); in a chunk a nonzero makes taps * cw products, c in [c0, c0+cw) (rules 1-2 with c0 + c).
 *    If even cc = 1 does not fit (K*R*S*4 > budget), the chunk "spills": re-read (W, dW) and
 *    re-written (dW) with every tile instead of once per chunk.
 *    DRAM bytes of a step: in = S of the tile (6 * nnz_t + 4 * rows_t, the row pointers; S is read
 *    again in every chunk) + the tile's share of the streamed tensor, out = the tile's share of the
 *    output. A "share" of a tensor of Z bytes for rows [lo,hi) of Nr = N*P*Q rows is
 *    floor(Z*hi/Nr) - floor(Z*lo/Nr) (shares sum to Z; halos are not re-read).
 *      bwd-data:    the W chunk (K*R*S*cw*4) with the chunk's first tile; out: share of the dX
 *                   channel slice (N*H*W*cw*4).
 *      bwd-weights: in: share of the X channel slice (N*H*W*cw*4); out: the dW chunk (K*R*S*cw*4)
 *                   after the chunk's last tile.
 * 6. Double buffering: step u+1 loads and step u-1 writes back while step u computes (a step is
 *    one tile of one chunk; busy_u as busy_t above):
 *      fill   = ceil(in_0 / bw)
 *      step_u = max(busy_u, ceil((in_{u+1} + out_{u-1}) / bw))   (in_{n_steps} = out_{-1} = 0)
 *      drain  = ceil(out_{last} / bw)
 *      cycles = fill + sum_u step_u + drain
 *    compute_cycles = sum_u busy_u; stall_mem_cycles = cycles - compute_cycles;
 *    stall_bank_cycles = sum over steps of the bank-stall cycles of the PE that set busy_u (the
 *    first such PE), a part of compute_cycles.
 * 7. Pre-ReSprop dense work (ReSprop's reuse terms), at full utilisation of all PE*M multipliers:
 *    one-sample dense bwd-data and bwd-weights, K*C*sum_{p,q} taps(p,q) MACs each; the batch sum of
 *    X, N*H*W*C adds; the fused threshold pass over G, N*P*Q*K operations (one slot each).
 *    DRAM: W read and dW written (2*Zw), one dX sample written (H*W*C*4), X read for the batch sum
 *    (N*H*W*C*4), G read once (N*P*Q*K*4), S written (6*nnz + 4*(N*P*Q+1)).
 *      compute = ceil(ops / (PE*M)), cycles = max(compute, ceil(bytes / bw)).
 * 8. Derived stats of every part: util_frac = macs / (cycles * PE * M); imbalance = max / mean over
 *    PEs of the part's products (1 when there are none; 1 for the dense pre part); buf_bytes =
 *    on-chip buffer traffic: 6 per nonzero per chunk (S read) + 12 per product (dense operand read 4,
 *    accumulator read-modify-write 8) for the sparse parts, the DRAM bytes for the pre part;
 *    energy_pj = macs*mac_pj + buf_bytes*buf_pj_per_byte + dram_bytes*dram_pj_per_byte when the
 *    preset gives energies (arch_has_energy), else 0.
 *    The layer total sums the parts (cycles, stalls, bytes, macs, energy), its util_frac is
 *    macs / (cycles * PE * M) and its imbalance the larger of the two sparse parts'.
 *
 * ---- fidelity levels ------------------------------------------------------------------------------
 * SIM_DETAILED steps every tile cycle by cycle: every PE holds its current group as per-bank queues,
 * every bank retires one product per cycle, a PE fetches its next group when its queues are empty.
 * SIM_FAST sums per-PE group costs from the mask: the cost of a nonzero depends only on its tap
 * window, its chunk width (full or last) and its first destination index mod B, so it is computed
 * once per (part, width, window, residue) and memoised in the SimWork: the stalls are exact, not an
 * expectation, and the rest is O(nnz x chunks) counting. The memory model (rules 4-6) and the pre part are the same closed forms
 * in both modes. Tests hold fast within 10% of detailed (they agree exactly when both are correct).
 *
 * Ownership: SimWork is a value object the caller owns (sim_work_init / sim_work_deinit; deinit accepts
 * a zeroed struct); all its memory is allocated at init, and sim_layer_ws in SIM_FAST allocates
 * nothing. SIM_DETAILED allocates per call (small layers only). */
#ifndef RESPROP_SIM_H
#define RESPROP_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "accel/arch.h"
#include "core/rng.h"
#include "core/sparse.h"

typedef enum { SIM_FAST = 0, SIM_DETAILED = 1 } SimMode;

/* The parts of a layer's stats. */
typedef enum { SIM_PART_BWD_DATA = 0, SIM_PART_BWD_WEIGHTS, SIM_PART_PRE, SIM_PART_TOTAL, SIM_N_PARTS } SimPart;

typedef struct {
    double cycles;            /* total cycles of the part */
    double compute_cycles;    /* cycles the PEs compute (incl. bank stalls) */
    double stall_bank_cycles; /* bank-conflict stall cycles (part of compute_cycles) */
    double stall_mem_cycles;  /* cycles waiting for DRAM (fill, drain, memory-bound tiles) */
    double util_frac;         /* multiplier utilisation 0..1 */
    double imbalance;         /* max / mean products per PE */
    double buf_bytes;         /* on-chip buffer traffic (bytes) */
    double dram_bytes;        /* DRAM traffic (bytes) */
    double macs;              /* multiply-adds (operations for the pre part) */
    double energy_pj;         /* energy (pJ; 0 when the preset has no energy table) */
} SimPartStats;

typedef struct {
    SimPartStats part[SIM_N_PARTS]; /* indexed by SimPart */
    long rows_per_tile;             /* rule 4 */
    long n_tiles;
    long n_chunks[2];               /* rule 5: channel chunks of bwd-data, bwd-weights */
} SimLayerStats;

/* The stats table: one entry per (part, field) of SimLayerStats, all doubles, for generic writers. */
typedef struct {
    const char *name;        /* "bwd_data.cycles", ... (part.field) */
    const char *unit;        /* "cycles", "frac", "ratio", "bytes", "MACs", "pJ" */
    const char *description; /* one line */
    size_t offset;           /* offsetof(SimLayerStats, ...) of the double */
} SimStatDesc;

extern const SimStatDesc sim_stats[];
extern const int sim_n_stats;
/* The value of stat i of *st. */
double sim_stat_value(const SimLayerStats *st, int i);
/* Name of a part: "bwd_data", "bwd_weights", "pre", "total". */
const char *sim_part_name(SimPart p);

/* A prepared layer: per-PE counters and the cost memo for (a, g). */
typedef struct {
    AccelArch arch;
    ConvGeom g;
    int pk, ps;        /* rule 3 */
    int cc[2], n_cc[2]; /* rule 5: channels per chunk and chunks, per sparse part */
    bool spill[2];      /* rule 5: a one-channel chunk still does not fit */
    long rows_per_tile;
    double *pe_cycles; /* (PE) cycles of the current tile */
    double *pe_groups; /* (PE) groups of the current tile */
    double *pe_work;   /* (PE) products over the part */
    int32_t *memo;     /* (2 parts, 2 chunk widths, window classes, B) cycles of one nonzero, -1 = not yet */
    size_t memo_n;     /* entries per part */
    uint16_t *bank_cnt; /* (B) scratch for memo fills */
} SimWork;

/* Prepares a layer: validates g (sparse_geom_check) and allocates. Returns 0, ERR_SHAPE, ERR_CONFIG
 * (pes, mults or banks < 1) or ERR_NOMEM; on failure *w is zeroed. */
int sim_work_init(SimWork *w, const AccelArch *a, ConvGeom g);
void sim_work_deinit(SimWork *w);

/* Simulates the layer of w with sparse gradient s (shape (N,P,Q,K) of g, else ERR_SHAPE) into *out
 * (overwritten). SIM_FAST allocates nothing. Returns 0, ERR_SHAPE or ERR_NOMEM (detailed). */
int sim_layer_ws(SimWork *w, const SparseGrad *s, SimMode mode, SimLayerStats *out);
/* The same with a temporary SimWork. */
int sim_layer(const AccelArch *a, ConvGeom g, const SparseGrad *s, SimMode mode, SimLayerStats *out);

/* ---- masks when no training mask exists ----------------------------------------------------- */
typedef enum { SIM_MASK_UNIFORM = 0, SIM_MASK_CLUSTERED = 1 } SimMaskPattern;

/* Fills s (initialised with its shape; the CSR is overwritten) with a random mask of expected density
 * `density` in [0,1] and values uniform in [-1,1) (never 0):
 *   uniform:   every (row, channel) independently with probability density;
 *   clustered: cluster in [0,1]: a row is active with probability a = density^cluster and an active
 *              row holds each channel with probability density / a (cluster 0 = uniform, 1 = whole
 *              rows, like resprop-vec).
 * Returns 0, ERR_CONFIG (density or cluster out of range) or ERR_SHAPE when the mask drawn needs more
 * than s->nnz_cap nonzeros (s is then empty). Allocates nothing. */
int sim_make_mask(SparseGrad *s, double density, SimMaskPattern pattern, double cluster, Rng *rng);

#endif
