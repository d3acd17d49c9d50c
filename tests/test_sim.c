/* test_sim.c: GSCN-sim's per-layer simulator core (accel/sim.h): golden cycle counts of three tiny
 * layers computed by hand from the rules in sim.h (the arithmetic is written next to each number),
 * in both fidelity levels; invariants on random layers (cycles >= MACs / multipliers, utilisation in
 * [0,1], a subset of a mask never costs more cycles, density 1.0 within 10% of a dense systolic
 * estimate); fast within 10% of detailed over shapes, densities and both mask patterns; the stats
 * table; the mask generator; no allocation in a fast simulation of a prepared layer; the packed masks
 * of `train --save-masks` (accel/masks.h) round-trip to the same cycles; no leaks. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "accel/arch.h"
#include "accel/masks.h"
#include "accel/sim.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/rng.h"
#include "core/sparse.h"

#define FAST_VS_DETAILED_TOL 0.10 /* relative, on every part's cycles */
#define DENSE_TOL 0.10            /* density 1.0 vs the dense systolic estimate */

/* Every test frees what it allocates: the teardown compares with the bytes live at its setup (so a
 * failed test's leftovers do not fail the tests after it). */
static int setup_mark(void **state) {
    *state = (void *)(uintptr_t)mem_live_bytes();
    return 0;
}
static int teardown_leaks(void **state) { return mem_live_bytes() == (size_t)(uintptr_t)*state ? 0 : -1; }

/* A tiny accelerator for hand arithmetic: 2 PEs x 4 multipliers, 4 banks per PE, 1 GHz, 4 bytes per
 * cycle of DRAM, 1 KiB buffers, no energy table. */
static AccelArch tiny_arch(void) {
    AccelArch a;
    assert_int_equal(config_defaults(&arch_table, &a), 0);
    snprintf(a.name, sizeof a.name, "tiny");
    a.clock_ghz = 1.0;
    a.pes = 2;
    a.mults_per_pe = 4;
    a.acc_banks_per_pe = 4;
    a.grad_buf_kib = a.weight_buf_kib = a.act_buf_kib = a.psum_buf_kib = 1;
    a.dram_gbps = 4.0;
    a.mac_pj = a.buf_pj_per_byte = a.dram_pj_per_byte = 0;
    return a;
}

/* A CSR from a list of (row, channel) in row order, values 1. */
static void csr_from_list(SparseGrad *s, ConvGeom g, const int (*rc)[2], int n) {
    assert_int_equal(sparse_init(s, g.n, g.p, g.q, g.k, (size_t)n + 1), 0);
    size_t nr = (size_t)g.n * g.p * g.q;
    for (int j = 0; j < n; j++) {
        s->chan[j] = (uint16_t)rc[j][1];
        s->val[j] = 1.0f;
        for (size_t i = (size_t)rc[j][0] + 1; i <= nr; i++) s->row_ptr[i] = j + 1;
    }
    s->nnz = (size_t)n;
}

static void both_modes(const AccelArch *a, ConvGeom g, const SparseGrad *s, SimLayerStats *fast, SimLayerStats *det) {
    assert_int_equal(sim_layer(a, g, s, SIM_FAST, fast), 0);
    assert_int_equal(sim_layer(a, g, s, SIM_DETAILED, det), 0);
}

#define ASSERT_PART(st, pi, cyc, comp, bank, macs_)                                                 \
    do {                                                                                           \
        assert_int_equal((long)(st).part[pi].cycles, (cyc));                                       \
        assert_int_equal((long)(st).part[pi].compute_cycles, (comp));                              \
        assert_int_equal((long)(st).part[pi].stall_bank_cycles, (bank));                           \
        assert_int_equal((long)(st).part[pi].macs, (macs_));                                       \
    } while (0)

/* ---- golden layers ------------------------------------------------------------------------------ */

/* Golden 1: 1x1 conv, N=1, C=4, H=W=2, K=2 (P=Q=2, 4 rows), memory-bound.
 * Mask: row 0 {k0, k1}, row 1 {k0}, row 3 {k1}: nnz 4.
 * Tiles: T = floor(1024/2 / (K*6 = 12)) = 42 -> 1 tile. Pk = gcd(2,2) = 2, Ps = 1: PE = k.
 * bwd-data: L = 1 tap x 4 = 4 products = 1 group; dest = pixel*4 + c -> banks 0,1,2,3: 1 cycle.
 *   PE0 {r0k0, r1k0} = 2, PE1 {r0k1, r3k1} = 2 -> busy 2, no bank stall.
 *   in_0 = S (6*4 + 4*4 = 40) + W once (Zw = 2*1*1*4*4 = 32 <= 512) = 72; out_0 = dX = 1*2*2*4*4 = 64.
 *   fill ceil(72/4) = 18, step max(2, 0) = 2, drain ceil(64/4) = 16 -> 36 cycles; MACs 4*4 = 16.
 * bwd-weights: dest = k*4 + c -> banks 0..3: 1 cycle each; busy 2.
 *   in_0 = 40 + X share 64 = 104; dW 32 <= 1024 written once: out_0 = 32.
 *   fill 26, step 2, drain 8 -> 36 cycles.
 * pre: taps sum = 2 x 2 = 4; ops = 2*K*C*4 (64) + N*H*W*C (16) + N*P*Q*K (8) = 88 -> ceil(88/8) = 11;
 *   bytes = 2*32 + 16*4 + 16*4 + 8*4 + 6*4 + 4*(4+1) = 64+64+64+32+24+20 = 268 -> ceil(268/4) = 67.
 * total = 36 + 36 + 67 = 139. */
static void test_golden_1x1(void **state) {
    (void)state;
    AccelArch a = tiny_arch();
    ConvGeom g = sparse_geom(1, 4, 2, 2, 2, 1, 1, 1, 0);
    static const int nz[][2] = {{0, 0}, {0, 1}, {1, 0}, {3, 1}};
    SparseGrad s;
    csr_from_list(&s, g, nz, 4);
    SimLayerStats f, d;
    both_modes(&a, g, &s, &f, &d);
    for (int m = 0; m < 2; m++) {
        const SimLayerStats st = m ? d : f;
        ASSERT_PART(st, SIM_PART_BWD_DATA, 36, 2, 0, 16);
        ASSERT_PART(st, SIM_PART_BWD_WEIGHTS, 36, 2, 0, 16);
        ASSERT_PART(st, SIM_PART_PRE, 67, 11, 0, 88);
        assert_int_equal((long)st.part[SIM_PART_TOTAL].cycles, 139);
        assert_int_equal((long)st.part[SIM_PART_BWD_DATA].stall_mem_cycles, 34);
        assert_int_equal((long)st.part[SIM_PART_BWD_DATA].dram_bytes, 72 + 64);
        assert_int_equal((long)st.part[SIM_PART_BWD_WEIGHTS].dram_bytes, 104 + 32);
        assert_int_equal((long)st.part[SIM_PART_PRE].dram_bytes, 268);
        assert_true(fabs(st.part[SIM_PART_BWD_DATA].util_frac - 16.0 / (36 * 8)) < 1e-12);
        assert_true(fabs(st.part[SIM_PART_BWD_DATA].imbalance - 1.0) < 1e-12);
        assert_int_equal(st.n_tiles, 1);
        assert_true(st.part[SIM_PART_TOTAL].energy_pj == 0);
    }
    sparse_deinit(&s);
}

/* Golden 2: 3x3 conv, pad 1, N=1, C=3, H=W=3, K=1 (P=Q=3, 9 rows), compute-bound (DRAM 1e6 bytes per
 * cycle: every non-empty transfer takes 1 cycle), with bank conflicts at the borders.
 * Mask: rows 0 (corner p=q=0), 4 (centre), 8 (corner p=q=2), channel 0. Pk = gcd(2,1) = 1, Ps = 2:
 * sp = (i*2)/9 -> rows 0..4 on PE0, rows 5..8 on PE1. One tile.
 * bwd-weights, dest = (r*3 + t)*3 + c (k = 0):
 *   row 4: 9 taps, L = 27, dests 0..26 contiguous: 7 groups (6 of 4, 1 of 3), no conflict: 7 cycles.
 *   row 0: taps r,t in {1,2}: dests 12,13,14,15 | 16,17,21,22 | 23,24,25,26; banks (mod 4)
 *          0123 | 0,1,1,2 (2 cycles) | 3012 -> 4 cycles, 3 groups.
 *   row 8: taps r,t in {0,1}: dests 0,1,2,3 | 4,5,9,10 | 11,12,13,14 -> 1 + 2 + 1 = 4 cycles.
 *   PE0 = 4 + 7 = 11 cycles (10 groups), PE1 = 4 -> busy 11, bank stall 1.
 *   fill 1 + step max(11, 0) + drain (dW 108 bytes) 1 = 13; MACs 27 + 12 + 12 = 51.
 *   imbalance: products PE0 39, PE1 12, mean 25.5 -> 39/25.5.
 * bwd-data, dest = ((ih0 + r)*3 + iw0 + t)*3 + c:
 *   row 4 (ih0 = iw0 = 0): 0..26 -> 7; row 0 (ih0 = iw0 = -1): 0,1,2,3 | 4,5,9,10 | 11,12,13,14 -> 4;
 *   row 8 (ih0 = iw0 = 1): 12..17, 21..26 -> 12,13,14,15 | 16,17,21,22 | 23,24,25,26 -> 4.
 *   busy 11, bank stall 1; fill 1 + 11 + drain (dX 108 bytes) 1 = 13.
 * pre: taps sum = (2+3+2) x (2+3+2) = 49; ops = 2*1*3*49 (294) + 27 + 9 = 330 -> ceil(330/8) = 42;
 *   memory 1 cycle -> 42. total = 13 + 13 + 42 = 68. */
static void test_golden_3x3_conflicts(void **state) {
    (void)state;
    AccelArch a = tiny_arch();
    a.dram_gbps = 1e6;
    ConvGeom g = sparse_geom(1, 3, 3, 3, 1, 3, 3, 1, 1);
    static const int nz[][2] = {{0, 0}, {4, 0}, {8, 0}};
    SparseGrad s;
    csr_from_list(&s, g, nz, 3);
    SimLayerStats f, d;
    both_modes(&a, g, &s, &f, &d);
    for (int m = 0; m < 2; m++) {
        const SimLayerStats st = m ? d : f;
        ASSERT_PART(st, SIM_PART_BWD_DATA, 13, 11, 1, 51);
        ASSERT_PART(st, SIM_PART_BWD_WEIGHTS, 13, 11, 1, 51);
        ASSERT_PART(st, SIM_PART_PRE, 42, 42, 0, 330);
        assert_int_equal((long)st.part[SIM_PART_TOTAL].cycles, 68);
        assert_true(fabs(st.part[SIM_PART_BWD_WEIGHTS].imbalance - 39.0 / 25.5) < 1e-12);
    }
    sparse_deinit(&s);
}

/* Golden 3: 1x1 conv, N=1, C=1, H=W=2, K=22, two tiles with double buffering.
 * T = floor(512 / (22*6 = 132)) = 3: tiles rows {0,1,2} and {3}. Pk = gcd(2,22) = 2, Ps = 1: PE = k mod 2.
 * Mask: row 0 {k0,k1,k2}, row 2 {k4}, row 3 {k1,k3}. Every nonzero: L = 1, 1 group, 1 cycle.
 *   tile 0: PE0 {k0,k2,k4} = 3, PE1 {k1} = 1 -> busy 3; tile 1: PE1 {k1,k3} = 2 -> busy 2. compute 5.
 * bwd-data: Zw = 22*4 = 88 <= 512 (once); dX = 16 bytes, shares floor(16*3/4) = 12 and 4.
 *   in_0 = 6*4 + 4*3 + 88 = 124, out_0 = 12, in_1 = 6*2 + 4 = 16, out_1 = 4.
 *   fill ceil(124/4) = 31; step0 = max(3, ceil((16 + 0)/4) = 4) = 4; step1 = max(2, ceil((0 + 12)/4) = 3)
 *   = 3; drain ceil(4/4) = 1 -> 31 + 4 + 3 + 1 = 39. DRAM 124 + 12 + 16 + 4 = 156.
 * bwd-weights: X = 16 bytes, shares 12, 4; dW 88 <= 1024 written after the last tile.
 *   in_0 = 36 + 12 = 48, out_0 = 0, in_1 = 16 + 4 = 20, out_1 = 88.
 *   fill 12; step0 = max(3, ceil(20/4) = 5) = 5; step1 = max(2, 0) = 2; drain 22 -> 41. */
static void test_golden_tiles(void **state) {
    (void)state;
    AccelArch a = tiny_arch();
    ConvGeom g = sparse_geom(1, 1, 2, 2, 22, 1, 1, 1, 0);
    static const int nz[][2] = {{0, 0}, {0, 1}, {0, 2}, {2, 4}, {3, 1}, {3, 3}};
    SparseGrad s;
    csr_from_list(&s, g, nz, 6);
    SimLayerStats f, d;
    both_modes(&a, g, &s, &f, &d);
    for (int m = 0; m < 2; m++) {
        const SimLayerStats st = m ? d : f;
        assert_int_equal(st.rows_per_tile, 3);
        assert_int_equal(st.n_tiles, 2);
        ASSERT_PART(st, SIM_PART_BWD_DATA, 39, 5, 0, 6);
        ASSERT_PART(st, SIM_PART_BWD_WEIGHTS, 41, 5, 0, 6);
        assert_int_equal((long)st.part[SIM_PART_BWD_DATA].dram_bytes, 156);
        assert_int_equal((long)st.part[SIM_PART_BWD_WEIGHTS].dram_bytes, 48 + 20 + 88);
    }
    sparse_deinit(&s);
}

/* Golden 4: channel chunks (rule 5). 1x1 conv, N=1, H=W=1 (1 row), C=8, K=32.
 * Zw = 32*8*4 = 1024 bytes. bwd-data budget 1024/2 = 512 < 1024 -> n = 2, cc = 4, 2 chunks;
 * bwd-weights budget 1024 -> 1 chunk. T = floor(512 / 192) = 2 -> 1 tile. Pk = 2, Ps = 1: PE = k mod 2.
 * Mask: row 0 {k0, k1, k2}.
 * bwd-data: per chunk L = 4, dests c0..c0+3 -> 1 cycle; PE0 {k0,k2} = 2, PE1 = 1 -> busy 2 per chunk.
 *   each step: in = S (6*3 + 4*1 = 22) + W chunk (32*4*4 = 512) = 534; out = dX slice 1*1*1*4*4 = 16.
 *   fill ceil(534/4) = 134; step0 = max(2, ceil(534/4) = 134) = 134; step1 = max(2, ceil(16/4) = 4) = 4;
 *   drain 4 -> 276 cycles, compute 4, MACs 3*8 = 24, DRAM 2*534 + 2*16 = 1100,
 *   buffer 6*3*2 chunks + 12*24 = 324.
 * bwd-weights: L = 8 = 2 groups, dests k*8 + 0..7 -> 2 cycles; PE0 = 4, PE1 = 2 -> busy 4.
 *   in = 22 + X (8*4 = 32) = 54, out = dW 1024: fill 14, step 4, drain 256 -> 274. */
static void test_golden_chunks(void **state) {
    (void)state;
    AccelArch a = tiny_arch();
    ConvGeom g = sparse_geom(1, 8, 1, 1, 32, 1, 1, 1, 0);
    static const int nz[][2] = {{0, 0}, {0, 1}, {0, 2}};
    SparseGrad s;
    csr_from_list(&s, g, nz, 3);
    SimLayerStats f, d;
    both_modes(&a, g, &s, &f, &d);
    for (int m = 0; m < 2; m++) {
        const SimLayerStats st = m ? d : f;
        assert_int_equal(st.n_chunks[0], 2);
        assert_int_equal(st.n_chunks[1], 1);
        ASSERT_PART(st, SIM_PART_BWD_DATA, 276, 4, 0, 24);
        ASSERT_PART(st, SIM_PART_BWD_WEIGHTS, 274, 4, 0, 24);
        assert_int_equal((long)st.part[SIM_PART_BWD_DATA].dram_bytes, 1100);
        assert_int_equal((long)st.part[SIM_PART_BWD_DATA].buf_bytes, 324);
        assert_int_equal((long)st.part[SIM_PART_BWD_WEIGHTS].dram_bytes, 54 + 1024);
    }
    sparse_deinit(&s);
}

/* ---- random layers ---------------------------------------------------------------------------- */

typedef struct {
    int n, c, h, w, k, r, s, stride, pad;
} Shape;

static const Shape shapes[] = {
    {2, 8, 6, 6, 8, 3, 3, 1, 1},   {1, 3, 9, 9, 16, 7, 7, 2, 3}, {2, 16, 5, 5, 32, 1, 1, 1, 0},
    {2, 5, 7, 7, 12, 3, 3, 2, 1},  {1, 32, 4, 4, 16, 3, 3, 1, 1},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static AccelArch small_arch(void) {
    AccelArch a = tiny_arch();
    a.pes = 4;
    a.mults_per_pe = 8;
    a.acc_banks_per_pe = 8;
    a.grad_buf_kib = 2;
    a.weight_buf_kib = 4;
    a.psum_buf_kib = 4;
    a.dram_gbps = 64;
    return a;
}

static ConvGeom shape_geom(Shape sh) {
    return sparse_geom(sh.n, sh.c, sh.h, sh.w, sh.k, sh.r, sh.s, sh.stride, sh.pad);
}

static void mask_for(SparseGrad *s, ConvGeom g, double density, SimMaskPattern pat, double cl, uint64_t seed) {
    assert_int_equal(sparse_init(s, g.n, g.p, g.q, g.k, (size_t)g.n * g.p * g.q * g.k), 0);
    Rng rng;
    rng_init(&rng, seed);
    assert_int_equal(sim_make_mask(s, density, pat, cl, &rng), 0);
}

static void check_invariants(const AccelArch *a, const SimLayerStats *st) {
    double mults = (double)arch_mults(a);
    for (int p = 0; p < SIM_N_PARTS; p++) {
        const SimPartStats *x = &st->part[p];
        assert_true(x->cycles + 1e-9 >= x->macs / mults);
        assert_true(x->util_frac >= 0 && x->util_frac <= 1 + 1e-12);
        assert_true(x->compute_cycles <= x->cycles);
        assert_true(x->stall_bank_cycles <= x->compute_cycles);
        assert_true(fabs(x->cycles - x->compute_cycles - x->stall_mem_cycles) < 1e-9);
        assert_true(x->imbalance >= 1 - 1e-12);
    }
}

static void test_invariants_and_fast_vs_detailed(void **state) {
    (void)state;
    static const double dens[] = {0.02, 0.1, 0.3, 1.0};
    AccelArch archs[2] = {tiny_arch(), small_arch()};
    double worst = 0;
    for (int ai = 0; ai < 2; ai++)
        for (int si = 0; si < N_SHAPES; si++)
            for (int di = 0; di < 4; di++)
                for (int pat = 0; pat < 2; pat++) {
                    ConvGeom g = shape_geom(shapes[si]);
                    SparseGrad s;
                    mask_for(&s, g, dens[di], (SimMaskPattern)pat, 0.5, 1000u + 97u * si + 7u * di + pat);
                    SimLayerStats f, d;
                    both_modes(&archs[ai], g, &s, &f, &d);
                    check_invariants(&archs[ai], &f);
                    check_invariants(&archs[ai], &d);
                    for (int p = 0; p < SIM_N_PARTS; p++) {
                        double rel = fabs(f.part[p].cycles - d.part[p].cycles) / fmax(d.part[p].cycles, 1);
                        if (rel > worst) worst = rel;
                        if (rel > FAST_VS_DETAILED_TOL)
                            fail_msg("arch %d shape %d density %g pattern %d part %s: fast %.0f detailed %.0f cycles",
                                     ai, si, dens[di], pat, sim_part_name((SimPart)p), f.part[p].cycles,
                                     d.part[p].cycles);
                        assert_true(fabs(f.part[p].macs - d.part[p].macs) < 0.5);
                    }
                    sparse_deinit(&s);
                }
    printf("fast vs detailed: worst relative cycle difference %.4f (tolerance %.2f)\n", worst, FAST_VS_DETAILED_TOL);
}

/* A subset of a mask (everything else fixed) never costs more cycles, in either mode. */
static void test_subset_monotone(void **state) {
    (void)state;
    AccelArch a = small_arch();
    Rng rng;
    rng_init(&rng, 77);
    for (int si = 0; si < N_SHAPES; si++) {
        ConvGeom g = shape_geom(shapes[si]);
        SparseGrad s, sub;
        mask_for(&s, g, 0.3, SIM_MASK_UNIFORM, 0, 500u + si);
        assert_int_equal(sparse_init(&sub, g.n, g.p, g.q, g.k, s.nnz + 1), 0);
        size_t nr = (size_t)g.n * g.p * g.q;
        for (int round = 0; round < 3; round++) {
            size_t z = 0;
            for (size_t i = 0; i < nr; i++) {
                for (int32_t j = s.row_ptr[i]; j < s.row_ptr[i + 1]; j++)
                    if (rng_uniform(&rng) < 0.6) {
                        sub.chan[z] = s.chan[j];
                        sub.val[z++] = s.val[j];
                    }
                sub.row_ptr[i + 1] = (int32_t)z;
            }
            sub.nnz = z;
            for (int m = 0; m < 2; m++) {
                SimLayerStats full, part;
                assert_int_equal(sim_layer(&a, g, &s, (SimMode)m, &full), 0);
                assert_int_equal(sim_layer(&a, g, &sub, (SimMode)m, &part), 0);
                for (int p = 0; p < SIM_N_PARTS; p++) assert_true(part.part[p].cycles <= full.part[p].cycles);
            }
        }
        sparse_deinit(&sub);
        sparse_deinit(&s);
    }
}

/* Density 1.0 against a dense systolic estimate max(MACs / multipliers, DRAM bytes / bytes per cycle),
 * within DENSE_TOL, on layers where C is a multiple of M (no wasted multipliers in a group), W and dW
 * fit their buffers (one chunk) and the PEs get equal rows. */
static void test_dense_estimate(void **state) {
    (void)state;
    AccelArch a = small_arch();
    a.weight_buf_kib = a.psum_buf_kib = 64; /* W and dW fit: one channel chunk (rule 5) */
    double worst = 0;
    static const Shape dense_shapes[] = {{2, 8, 8, 8, 8, 3, 3, 1, 1}, {4, 16, 4, 4, 16, 1, 1, 1, 0},
                                         {2, 32, 6, 6, 8, 3, 3, 1, 1}};
    for (int si = 0; si < 3; si++) {
        ConvGeom g = shape_geom(dense_shapes[si]);
        SparseGrad s;
        mask_for(&s, g, 1.0, SIM_MASK_UNIFORM, 0, 1);
        assert_int_equal(s.nnz, (size_t)g.n * g.p * g.q * g.k);
        for (int m = 0; m < 2; m++) {
            SimLayerStats st;
            assert_int_equal(sim_layer(&a, g, &s, (SimMode)m, &st), 0);
            for (int p = 0; p < 2; p++) {
                const SimPartStats *x = &st.part[p];
                double est = fmax(x->macs / (double)arch_mults(&a), x->dram_bytes / arch_dram_bytes_per_cycle(&a));
                double rel = fabs(x->cycles - est) / est;
                if (rel > worst) worst = rel;
                if (rel > DENSE_TOL)
                    fail_msg("shape %d part %s: %.0f cycles vs dense estimate %.0f", si, sim_part_name((SimPart)p),
                             x->cycles, est);
            }
        }
        sparse_deinit(&s);
    }
    printf("density 1.0 vs dense systolic estimate: worst relative difference %.4f (tolerance %.2f)\n", worst,
           DENSE_TOL);
}

/* ---- stats table, errors, masks, allocation ------------------------------------------------------- */

static void test_stats_table(void **state) {
    (void)state;
    assert_int_equal(sim_n_stats, 40);
    SimLayerStats st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < sim_n_stats; i++) {
        assert_true(sim_stats[i].offset + sizeof(double) <= sizeof st);
        assert_non_null(sim_stats[i].unit);
        assert_non_null(sim_stats[i].description);
        for (int j = 0; j < i; j++) {
            assert_true(strcmp(sim_stats[i].name, sim_stats[j].name) != 0);
            assert_true(sim_stats[i].offset != sim_stats[j].offset);
        }
        double v = i + 0.5;
        memcpy((char *)&st + sim_stats[i].offset, &v, sizeof v);
    }
    for (int i = 0; i < sim_n_stats; i++) assert_true(sim_stat_value(&st, i) == i + 0.5);
    assert_string_equal(sim_stats[0].name, "bwd_data.cycles");
    assert_true(st.part[SIM_PART_TOTAL].energy_pj == sim_stat_value(&st, sim_n_stats - 1));
}

static void test_errors(void **state) {
    (void)state;
    TuCapture cap;
    AccelArch a = tiny_arch();
    ConvGeom g = sparse_geom(1, 4, 2, 2, 2, 1, 1, 1, 0);
    SparseGrad s;
    assert_int_equal(sparse_init(&s, 1, 2, 2, 3, 4), 0); /* K = 3, not the layer's 2 */
    SimLayerStats st;
    int rc;
    TU_CAPTURE(&cap, rc = sim_layer(&a, g, &s, SIM_FAST, &st));
    assert_int_equal(rc, ERR_SHAPE);
    assert_log_has(cap.text, "does not match");
    a.pes = 0;
    sparse_deinit(&s);
    assert_int_equal(sparse_init(&s, 1, 2, 2, 2, 2), 0);
    TU_CAPTURE(&cap, rc = sim_layer(&a, g, &s, SIM_FAST, &st));
    assert_int_equal(rc, ERR_CONFIG);
    Rng rng;
    rng_init(&rng, 3);
    TU_CAPTURE(&cap, rc = sim_make_mask(&s, 1.5, SIM_MASK_UNIFORM, 0, &rng));
    assert_int_equal(rc, ERR_CONFIG);
    TU_CAPTURE(&cap, rc = sim_make_mask(&s, 0.5, SIM_MASK_CLUSTERED, -1, &rng));
    assert_int_equal(rc, ERR_CONFIG);
    TU_CAPTURE(&cap, rc = sim_make_mask(&s, 1.0, SIM_MASK_UNIFORM, 0, &rng)); /* 8 > capacity 2 */
    assert_int_equal(rc, ERR_SHAPE);
    assert_log_has(cap.text, "capacity");
    assert_int_equal(s.nnz, 0);
    assert_int_equal(s.row_ptr[4], 0);
    sparse_deinit(&s);
}

static void test_make_mask(void **state) {
    (void)state;
    const int n = 4, p = 10, q = 10, k = 64;
    const size_t total = (size_t)n * p * q * k;
    SparseGrad s;
    assert_int_equal(sparse_init(&s, n, p, q, k, total), 0);
    Rng rng;
    rng_init(&rng, 11);
    static const double dens[] = {0.0, 0.05, 0.1, 0.5, 1.0};
    for (int di = 0; di < 5; di++)
        for (int pat = 0; pat < 2; pat++) {
            double cl = 0.7;
            assert_int_equal(sim_make_mask(&s, dens[di], (SimMaskPattern)pat, cl, &rng), 0);
            double got = sparse_density(&s);
            double sd = sqrt(dens[di] * (1 - dens[di]) / (pat ? (double)n * p * q * pow(dens[di], cl) + 1 : total));
            assert_true(fabs(got - dens[di]) <= 5 * sd + 1e-12);
            for (int i = 0; i < n * p * q; i++)
                for (int32_t j = s.row_ptr[i]; j < s.row_ptr[i + 1]; j++) {
                    assert_true(s.chan[j] < k);
                    assert_true(s.val[j] != 0 && s.val[j] >= -1 && s.val[j] < 1);
                    if (j > s.row_ptr[i]) assert_true(s.chan[j] > s.chan[j - 1]);
                }
        }
    /* cluster 1: whole rows */
    assert_int_equal(sim_make_mask(&s, 0.2, SIM_MASK_CLUSTERED, 1.0, &rng), 0);
    for (int i = 0; i < n * p * q; i++) {
        int32_t z = s.row_ptr[i + 1] - s.row_ptr[i];
        assert_true(z == 0 || z == k);
    }
    sparse_deinit(&s);
}

/* A fast simulation of a prepared layer allocates nothing (and stays equal across repeats). */
static void test_fast_no_alloc(void **state) {
    (void)state;
    AccelArch a;
    assert_int_equal(config_defaults(&arch_table, &a), 0); /* gscn-iso-1080ti's numbers */
    ConvGeom g = sparse_geom(2, 64, 14, 14, 64, 3, 3, 1, 1);
    SparseGrad s;
    mask_for(&s, g, 0.1, SIM_MASK_UNIFORM, 0, 5);
    SimWork w;
    assert_int_equal(sim_work_init(&w, &a, g), 0);
    SimLayerStats st1, st2;
    assert_int_equal(sim_layer_ws(&w, &s, SIM_FAST, &st1), 0);
    size_t before = mem_n_allocs();
    assert_int_equal(sim_layer_ws(&w, &s, SIM_FAST, &st2), 0);
    assert_int_equal(mem_n_allocs(), before);
    assert_memory_equal(&st1, &st2, sizeof st1);
    check_invariants(&a, &st1);
    assert_true(st1.part[SIM_PART_TOTAL].energy_pj > 0); /* the preset's numbers have an energy table */
    sim_work_deinit(&w);
    sparse_deinit(&s);
}

/* accel/masks.h: a mask packed into 48-bit words (as `train --save-masks` stores it), read back as
 * doubles (as the record reader returns them) and unpacked, has the same positions and costs the same
 * cycles in both modes; bad words are ERR_FORMAT, too small a capacity ERR_SHAPE. */
static void test_mask_round_trip(void **state) {
    (void)state;
    AccelArch a = tiny_arch();
    ConvGeom g = sparse_geom(2, 5, 6, 6, 7, 3, 3, 1, 1); /* N*P*Q*K = 504 entries: 10.5 words */
    size_t count = (size_t)g.n * g.p * g.q * g.k, nw = mask_n_words(g.n, g.p, g.q, g.k);
    assert_int_equal(nw, (count + 47) / 48);
    SparseGrad s, u;
    assert_int_equal(sparse_init(&s, g.n, g.p, g.q, g.k, count), 0);
    assert_int_equal(sparse_init(&u, g.n, g.p, g.q, g.k, count), 0);
    int64_t *w = mem_alloc(nw * sizeof *w);
    double *wd = mem_alloc(nw * sizeof *wd);
    assert_non_null(w);
    assert_non_null(wd);
    Rng rng;
    rng_init(&rng, 5);
    for (int pat = 0; pat < 2; pat++) {
        assert_int_equal(sim_make_mask(&s, 0.3, (SimMaskPattern)pat, 0.5, &rng), 0);
        mask_pack(&s, w);
        for (size_t i = 0; i < nw; i++) wd[i] = (double)w[i];
        assert_int_equal(mask_count_bits(wd, nw, count), (long)s.nnz);
        assert_int_equal(mask_unpack(&u, wd, nw), 0);
        assert_int_equal(u.nnz, s.nnz);
        assert_memory_equal(u.row_ptr, s.row_ptr, ((size_t)g.n * g.p * g.q + 1) * sizeof(int32_t));
        assert_memory_equal(u.chan, s.chan, s.nnz * sizeof(uint16_t));
        for (int mode = 0; mode < 2; mode++) {
            SimLayerStats x, y;
            assert_int_equal(sim_layer(&a, g, &s, (SimMode)mode, &x), 0);
            assert_int_equal(sim_layer(&a, g, &u, (SimMode)mode, &y), 0);
            for (int i = 0; i < sim_n_stats; i++) assert_true(sim_stat_value(&x, i) == sim_stat_value(&y, i));
        }
    }
    /* bad words: not an integer, negative, 2^48, a bit beyond the tensor; wrong word count */
    static TuCapture cap;
    int rc;
    double keep = wd[0];
    static const double bad[] = {0.5, -1, 281474976710656.0};
    for (int i = 0; i < 3; i++) {
        wd[0] = bad[i];
        assert_int_equal(mask_count_bits(wd, nw, count), -1);
        TU_CAPTURE(&cap, rc = mask_unpack(&u, wd, nw));
        assert_int_equal(rc, ERR_FORMAT);
        assert_non_null(strstr(cap.text, "48-bit"));
        assert_int_equal(u.nnz, 0);
    }
    wd[0] = keep;
    double last = wd[nw - 1];
    wd[nw - 1] = (double)((int64_t)1 << 40); /* entry 10*48 + 40 = 520 >= 504 */
    TU_CAPTURE(&cap, rc = mask_unpack(&u, wd, nw));
    assert_int_equal(rc, ERR_FORMAT);
    wd[nw - 1] = last;
    TU_CAPTURE(&cap, rc = mask_unpack(&u, wd, nw - 1));
    assert_int_equal(rc, ERR_FORMAT);
    assert_non_null(strstr(cap.text, "expected 11"));
    /* too small a capacity */
    SparseGrad small;
    assert_int_equal(sparse_init(&small, g.n, g.p, g.q, g.k, 1), 0);
    TU_CAPTURE(&cap, rc = mask_unpack(&small, wd, nw));
    assert_int_equal(rc, ERR_SHAPE);
    assert_int_equal(small.nnz, 0);
    sparse_deinit(&small);
    mem_free(wd);
    mem_free(w);
    sparse_deinit(&u);
    sparse_deinit(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_golden_1x1, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_golden_3x3_conflicts, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_golden_tiles, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_golden_chunks, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_invariants_and_fast_vs_detailed, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_subset_monotone, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_dense_estimate, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_stats_table, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_errors, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_make_mask, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_fast_no_alloc, setup_mark, teardown_leaks),
        cmocka_unit_test_setup_teardown(test_mask_round_trip, setup_mark, teardown_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
