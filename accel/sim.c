/* sim.c: GSCN-sim's per-layer simulator core; the rules are in sim.h. */
#include "accel/sim.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* ---- the stats table ------------------------------------------------------------------------- */

#define SIM_FIELDS(X)                                                                               \
    X(cycles, "cycles", "total cycles")                                                             \
    X(compute_cycles, "cycles", "cycles the PEs compute, bank stalls included")                     \
    X(stall_bank_cycles, "cycles", "accumulator bank-conflict stall cycles (part of compute)")      \
    X(stall_mem_cycles, "cycles", "cycles waiting for DRAM (fill, drain, memory-bound tiles)")      \
    X(util_frac, "frac", "multiplier utilisation: macs / (cycles x multipliers)")                   \
    X(imbalance, "ratio", "load imbalance: max / mean products per PE")                             \
    X(buf_bytes, "bytes", "on-chip buffer traffic")                                                 \
    X(dram_bytes, "bytes", "DRAM traffic")                                                          \
    X(macs, "MACs", "multiply-adds (pre part: operations)")                                         \
    X(energy_pj, "pJ", "energy (0 when the preset has no energy table)")

#define SIM_STAT_ENTRY(part, pname, field, unit, desc)                                             \
    {pname "." #field, unit, pname ": " desc,                                                        \
     offsetof(SimLayerStats, part) + offsetof(SimPartStats, field)},
#define SIM_X_DATA(field, unit, desc) SIM_STAT_ENTRY(part[SIM_PART_BWD_DATA], "bwd_data", field, unit, desc)
#define SIM_X_WEIGHTS(field, unit, desc) SIM_STAT_ENTRY(part[SIM_PART_BWD_WEIGHTS], "bwd_weights", field, unit, desc)
#define SIM_X_PRE(field, unit, desc) SIM_STAT_ENTRY(part[SIM_PART_PRE], "pre", field, unit, desc)
#define SIM_X_TOTAL(field, unit, desc) SIM_STAT_ENTRY(part[SIM_PART_TOTAL], "total", field, unit, desc)

const SimStatDesc sim_stats[] = {
    SIM_FIELDS(SIM_X_DATA) SIM_FIELDS(SIM_X_WEIGHTS) SIM_FIELDS(SIM_X_PRE) SIM_FIELDS(SIM_X_TOTAL)
};
const int sim_n_stats = (int)(sizeof sim_stats / sizeof sim_stats[0]);

double sim_stat_value(const SimLayerStats *st, int i) {
    ASSERT(i >= 0 && i < sim_n_stats);
    double v;
    memcpy(&v, (const char *)st + sim_stats[i].offset, sizeof v);
    return v;
}

const char *sim_part_name(SimPart p) {
    static const char *const names[SIM_N_PARTS] = {"bwd_data", "bwd_weights", "pre", "total"};
    return p >= 0 && p < SIM_N_PARTS ? names[p] : "?";
}

/* ---- workspace ------------------------------------------------------------------------------- */

static int gcd_int(int a, int b) {
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Window classes: (r_lo, r_hi, s_lo, s_hi) each in [0, R] or [0, S]. */
static size_t n_classes(ConvGeom g) { return (size_t)(g.r + 1) * (g.r + 1) * (g.s + 1) * (g.s + 1); }

int sim_work_init(SimWork *w, const AccelArch *a, ConvGeom g) {
    int rc = 0;
    memset(w, 0, sizeof *w);
    TRY(sparse_geom_check(g));
    if (a->pes < 1 || a->mults_per_pe < 1 || a->acc_banks_per_pe < 1 || a->grad_buf_kib < 1 || !(a->dram_gbps > 0) ||
        !(a->clock_ghz > 0))
        FAIL(ERR_CONFIG, "sim_work_init: architecture '%s' needs pes, mults-per-pe, acc-banks-per-pe, grad-buf-kib, "
             "dram-gbps and clock-ghz > 0", a->name);
    w->arch = *a;
    w->g = g;
    w->pk = gcd_int(a->pes, g.k);
    w->ps = a->pes / w->pk;
    long t = (long)a->grad_buf_kib * 1024 / 2 / ((long)g.k * 6);
    w->rows_per_tile = t < 1 ? 1 : t;
    w->pe_cycles = mem_calloc((size_t)a->pes, sizeof *w->pe_cycles);
    w->pe_groups = mem_calloc((size_t)a->pes, sizeof *w->pe_groups);
    w->pe_work = mem_calloc((size_t)a->pes, sizeof *w->pe_work);
    /* rule 5: channel chunks so the chunk of W (bwd-data) / dW (bwd-weights) fits its buffer */
    const double zw = (double)g.k * g.r * g.s * g.c * 4;
    const double budget[2] = {(double)a->weight_buf_kib * 1024 / 2, (double)a->psum_buf_kib * 1024};
    for (int part = 0; part < 2; part++) {
        const double per_c = (double)g.k * g.r * g.s * 4;
        double fit = floor(budget[part] / per_c); /* channels whose W / dW fit */
        int cc = zw <= budget[part] ? g.c : fit < 1 ? 1 : (int)fit;
        if (cc < g.c && cc >= a->mults_per_pe) cc -= cc % a->mults_per_pe;
        w->cc[part] = cc;
        w->n_cc[part] = (g.c + cc - 1) / cc;
        w->spill[part] = per_c * cc > budget[part];
    }
    w->memo_n = n_classes(g) * (size_t)a->acc_banks_per_pe;
    w->memo = mem_alloc(4 * w->memo_n * sizeof *w->memo);
    w->bank_cnt = mem_calloc((size_t)a->acc_banks_per_pe, sizeof *w->bank_cnt);
    if (!w->pe_cycles || !w->pe_groups || !w->pe_work || !w->memo || !w->bank_cnt)
        FAIL(ERR_NOMEM, "sim_work_init: out of memory for %d PEs", a->pes);
    for (size_t i = 0; i < 4 * w->memo_n; i++) w->memo[i] = -1;
    return 0;
fail:
    sim_work_deinit(w);
    return rc;
}

void sim_work_deinit(SimWork *w) {
    mem_free(w->pe_cycles);
    mem_free(w->pe_groups);
    mem_free(w->pe_work);
    mem_free(w->memo);
    mem_free(w->bank_cnt);
    memset(w, 0, sizeof *w);
}

/* ---- geometry helpers ------------------------------------------------------------------------ */

typedef struct {
    int n, ih0, iw0, rlo, rhi, slo, shi;
} Win;

/* The in-bounds tap range [lo, hi) of a window starting at o over an extent. */
static inline void tap_range(int o, int taps, int extent, int *lo, int *hi) {
    *lo = o < 0 ? -o : 0;
    *hi = o + taps > extent ? extent - o : taps;
    if (*hi < *lo) *hi = *lo;
}

static inline Win row_win(ConvGeom g, size_t i) {
    Win v;
    int q = (int)(i % (size_t)g.q);
    int p = (int)((i / (size_t)g.q) % (size_t)g.p);
    v.n = (int)(i / ((size_t)g.q * g.p));
    v.ih0 = p * g.stride - g.pad;
    v.iw0 = q * g.stride - g.pad;
    tap_range(v.ih0, g.r, g.h, &v.rlo, &v.rhi);
    tap_range(v.iw0, g.s, g.w, &v.slo, &v.shi);
    return v;
}

static inline size_t win_class(ConvGeom g, Win v) {
    return (((size_t)v.rlo * (g.r + 1) + v.rhi) * (g.s + 1) + v.slo) * (g.s + 1) + v.shi;
}

static inline long win_products(ConvGeom g, Win v) { return (long)(v.rhi - v.rlo) * (v.shi - v.slo) * g.c; }

static inline int mod_pos(long long x, int b) {
    long long m = x % b;
    return (int)(m < 0 ? m + b : m);
}

/* Destination base index of a nonzero (rule 1): the product (r, t, c) goes to base + rel(r, t, c). */
static inline long long dest_base(ConvGeom g, int part, Win v, int k) {
    if (part == SIM_PART_BWD_DATA) return (((long long)v.n * g.h + v.ih0) * g.w + v.iw0) * g.c;
    return (long long)k * g.r * g.s * g.c;
}
static inline long long dest_rel(ConvGeom g, int part, int r, int t, int c) {
    if (part == SIM_PART_BWD_DATA) return ((long long)r * g.w + t) * g.c + c;
    return ((long long)r * g.s + t) * g.c + c;
}

/* Cycles of one nonzero of window v over channels [c0, c0 + cw) of a chunk whose first destination
 * base + c0 is `res` mod B (rule 2), memoised per (part, full or last chunk width, window, res). */
static int32_t nz_cost(SimWork *w, int part, Win v, int res, int cw) {
    const ConvGeom g = w->g;
    const int B = w->arch.acc_banks_per_pe, M = w->arch.mults_per_pe;
    size_t wi = (size_t)part * 2 + (cw == w->cc[part] ? 0 : 1);
    int32_t *slot = w->memo + wi * w->memo_n + win_class(g, v) * (size_t)B + (size_t)res;
    if (*slot >= 0) return *slot;
    int32_t cycles = 0;
    int in_group = 0, mx = 0;
    memset(w->bank_cnt, 0, (size_t)B * sizeof *w->bank_cnt);
    for (int r = v.rlo; r < v.rhi; r++)
        for (int t = v.slo; t < v.shi; t++)
            for (int c = 0; c < cw; c++) {
                int b = mod_pos(res + dest_rel(g, part, r, t, c), B);
                if (++w->bank_cnt[b] > mx) mx = w->bank_cnt[b];
                if (++in_group == M) {
                    cycles += mx;
                    memset(w->bank_cnt, 0, (size_t)B * sizeof *w->bank_cnt);
                    in_group = mx = 0;
                }
            }
    cycles += mx;
    *slot = cycles;
    return cycles;
}

/* ---- memory model (rules 4-6) ---------------------------------------------------------------- */

static inline double share(double z, size_t lo, size_t hi, size_t nr) {
    /* floor(Z*hi/Nr) - floor(Z*lo/Nr) in exact integer arithmetic */
    unsigned __int128 zz = (unsigned __int128)(unsigned long long)z;
    return (double)(unsigned long long)(zz * hi / nr) - (double)(unsigned long long)(zz * lo / nr);
}

typedef struct {
    double in, out;
} TileBytes;

/* Bytes of step u = chunk * n_tiles + tile of the part's sequence of tiles (rule 5). */
static TileBytes tile_bytes(const SimWork *w, const SparseGrad *s, int part, long u, long n_tiles) {
    const ConvGeom g = w->g;
    const size_t nr = (size_t)g.n * g.p * g.q;
    const long t = u % n_tiles, ci = u / n_tiles;
    const int cw = g.c - (int)ci * w->cc[part] < w->cc[part] ? g.c - (int)ci * w->cc[part] : w->cc[part];
    size_t lo = (size_t)t * (size_t)w->rows_per_tile, hi = lo + (size_t)w->rows_per_tile;
    if (hi > nr) hi = nr;
    const double zw = (double)g.k * g.r * g.s * cw * 4, zx = (double)g.n * g.h * g.w * cw * 4;
    const bool spill = w->spill[part];
    TileBytes b;
    b.in = 6.0 * (double)(s->row_ptr[hi] - s->row_ptr[lo]) + 4.0 * (double)(hi - lo);
    if (part == SIM_PART_BWD_DATA) {
        if (spill || t == 0) b.in += zw;
        b.out = share(zx, lo, hi, nr);
    } else {
        b.in += share(zx, lo, hi, nr) + (spill ? zw : 0);
        b.out = spill || t == n_tiles - 1 ? zw : 0;
    }
    return b;
}

/* ---- compute of one tile: fast and detailed ---------------------------------------------------- */

/* Per-PE cycles and groups of tile rows [lo, hi) into w->pe_cycles / pe_groups; adds products to
 * pe_work. */
static void tile_fast(SimWork *w, const SparseGrad *s, int part, size_t lo, size_t hi, int c0, int cw, double *macs) {
    const ConvGeom g = w->g;
    const int B = w->arch.acc_banks_per_pe, M = w->arch.mults_per_pe, pk = w->pk, ps = w->ps;
    const long long rsc = (long long)g.r * g.s * g.c;
    for (size_t i = lo; i < hi; i++) {
        int32_t j0 = s->row_ptr[i], j1 = s->row_ptr[i + 1];
        if (j0 == j1) continue;
        Win v = row_win(g, i);
        long L = win_products(g, v) / g.c * cw;
        if (L == 0) continue;
        double groups = (double)((L + M - 1) / M);
        int sp = (int)(((i - lo) * (size_t)ps) / (hi - lo));
        int32_t row_cost =
            part == SIM_PART_BWD_DATA ? nz_cost(w, part, v, mod_pos(dest_base(g, part, v, 0) + c0, B), cw) : 0;
        for (int32_t j = j0; j < j1; j++) {
            int k = s->chan[j];
            int pe = (k % pk) * ps + sp;
            int32_t cost =
                part == SIM_PART_BWD_DATA ? row_cost : nz_cost(w, part, v, mod_pos((long long)k * rsc + c0, B), cw);
            w->pe_cycles[pe] += cost;
            w->pe_groups[pe] += groups;
            w->pe_work[pe] += (double)L;
        }
        *macs += (double)L * (j1 - j0);
    }
}

/* The same, cycle by cycle: every PE holds its current group as per-bank queues; each bank retires one
 * product per cycle; a PE fetches its next group when its queues are empty. Scratch from the caller:
 * list (nnz of the tile) entries, start (PE + 1), cnt (PE * B), state arrays. */
typedef struct {
    int32_t *list;  /* nonzero indices grouped by PE */
    size_t *row_of; /* row of each listed nonzero */
    size_t *start;  /* (PE + 1) */
    size_t *pos;    /* (PE) next list entry */
    long *prod;     /* (PE) next product of the current nonzero; -1 = none */
    int *rem;       /* (PE) products queued */
    uint32_t *cnt;  /* (PE x B) queued products per bank */
} Det;

static void tile_detailed(SimWork *w, const SparseGrad *s, int part, size_t lo, size_t hi, int c0, int cw, Det *d,
                          double *macs) {
    const ConvGeom g = w->g;
    const int B = w->arch.acc_banks_per_pe, M = w->arch.mults_per_pe, pk = w->pk, ps = w->ps, npe = w->arch.pes;
    /* counting sort of the tile's nonzeros by PE, keeping CSR order within a PE */
    memset(d->start, 0, (size_t)(npe + 1) * sizeof *d->start);
    for (size_t i = lo; i < hi; i++) {
        int sp = (int)(((i - lo) * (size_t)ps) / (hi - lo));
        for (int32_t j = s->row_ptr[i]; j < s->row_ptr[i + 1]; j++) d->start[(s->chan[j] % pk) * ps + sp + 1]++;
    }
    for (int p = 0; p < npe; p++) d->start[p + 1] += d->start[p];
    for (int p = 0; p < npe; p++) d->pos[p] = d->start[p];
    for (size_t i = lo; i < hi; i++) {
        int sp = (int)(((i - lo) * (size_t)ps) / (hi - lo));
        for (int32_t j = s->row_ptr[i]; j < s->row_ptr[i + 1]; j++) {
            size_t e = d->pos[(s->chan[j] % pk) * ps + sp]++;
            d->list[e] = j;
            d->row_of[e] = i;
        }
    }
    for (int p = 0; p < npe; p++) {
        d->pos[p] = d->start[p];
        d->prod[p] = -1;
        d->rem[p] = 0;
        w->pe_cycles[p] = 0;
        w->pe_groups[p] = 0;
    }
    memset(d->cnt, 0, (size_t)npe * B * sizeof *d->cnt);
    int active = npe;
    for (long cycle = 0; active > 0; cycle++) {
        active = 0;
        for (int p = 0; p < npe; p++) {
            uint32_t *cnt = d->cnt + (size_t)p * B;
            if (d->rem[p] == 0) { /* fetch the next group */
                Win v = {0, 0, 0, 0, 0, 0, 0};
                long L = 0;
                while (d->pos[p] < d->start[p + 1]) {
                    size_t e = d->pos[p];
                    v = row_win(g, d->row_of[e]);
                    L = win_products(g, v) / g.c * cw;
                    if (d->prod[p] < 0) {
                        d->prod[p] = 0;
                        *macs += (double)L;
                        w->pe_work[p] += (double)L;
                    }
                    if (d->prod[p] < L) break;
                    d->pos[p]++;
                    d->prod[p] = -1;
                }
                if (d->pos[p] == d->start[p + 1]) continue; /* done */
                int32_t j = d->list[d->pos[p]];
                int tw = v.shi - v.slo;
                long long base = dest_base(g, part, v, s->chan[j]);
                for (int m = 0; m < M && d->prod[p] < L; m++, d->prod[p]++) {
                    long x = d->prod[p];
                    int c = (int)(x % cw), tap = (int)(x / cw);
                    int r = v.rlo + tap / tw, t = v.slo + tap % tw;
                    cnt[mod_pos(base + dest_rel(g, part, r, t, c0 + c), B)]++;
                    d->rem[p]++;
                }
                w->pe_groups[p] += 1;
            }
            active++;
            for (int b = 0; b < B; b++)
                if (cnt[b]) {
                    cnt[b]--;
                    d->rem[p]--;
                }
            w->pe_cycles[p] = (double)(cycle + 1);
        }
    }
}

/* ---- one sparse part ---------------------------------------------------------------------------- */

static void finish_energy(const AccelArch *a, SimPartStats *ps) {
    ps->energy_pj = arch_has_energy(a) ? ps->macs * a->mac_pj + ps->buf_bytes * a->buf_pj_per_byte +
                                             ps->dram_bytes * a->dram_pj_per_byte
                                       : 0;
}

static int part_run(SimWork *w, const SparseGrad *s, int part, SimMode mode, SimPartStats *ps) {
    int rc = 0;
    const ConvGeom g = w->g;
    const int npe = w->arch.pes, B = w->arch.acc_banks_per_pe;
    const size_t nr = (size_t)g.n * g.p * g.q;
    const long T = w->rows_per_tile, n_tiles = (long)((nr + (size_t)T - 1) / (size_t)T);
    const long n_steps = n_tiles * w->n_cc[part];
    const double bw = arch_dram_bytes_per_cycle(&w->arch);
    Det d = {0};
    memset(ps, 0, sizeof *ps);
    for (int p = 0; p < npe; p++) w->pe_work[p] = 0;
    if (mode == SIM_DETAILED) {
        size_t max_nnz = 1;
        for (long t = 0; t < n_tiles; t++) {
            size_t lo = (size_t)t * T, hi = lo + (size_t)T < nr ? lo + (size_t)T : nr;
            size_t z = (size_t)(s->row_ptr[hi] - s->row_ptr[lo]);
            if (z > max_nnz) max_nnz = z;
        }
        d.list = mem_alloc(max_nnz * sizeof *d.list);
        d.row_of = mem_alloc(max_nnz * sizeof *d.row_of);
        d.start = mem_alloc((size_t)(npe + 1) * sizeof *d.start);
        d.pos = mem_alloc((size_t)npe * sizeof *d.pos);
        d.prod = mem_alloc((size_t)npe * sizeof *d.prod);
        d.rem = mem_alloc((size_t)npe * sizeof *d.rem);
        d.cnt = mem_alloc((size_t)npe * B * sizeof *d.cnt);
        if (!d.list || !d.row_of || !d.start || !d.pos || !d.prod || !d.rem || !d.cnt)
            FAIL(ERR_NOMEM, "sim_layer: out of memory for the detailed simulation (%zu nonzeros per tile)", max_nnz);
    }
    TileBytes prev = {0, 0}, cur = tile_bytes(w, s, part, 0, n_tiles);
    double dram = 0;
    ps->cycles = ceil(cur.in / bw); /* fill */
    for (long u = 0; u < n_steps; u++) {
        long t = u % n_tiles;
        int c0 = (int)(u / n_tiles) * w->cc[part], cw = g.c - c0 < w->cc[part] ? g.c - c0 : w->cc[part];
        size_t lo = (size_t)t * T, hi = lo + (size_t)T < nr ? lo + (size_t)T : nr;
        TileBytes next = u + 1 < n_steps ? tile_bytes(w, s, part, u + 1, n_tiles) : (TileBytes){0, 0};
        if (mode == SIM_DETAILED) {
            tile_detailed(w, s, part, lo, hi, c0, cw, &d, &ps->macs);
        } else {
            for (int p = 0; p < npe; p++) w->pe_cycles[p] = w->pe_groups[p] = 0;
            tile_fast(w, s, part, lo, hi, c0, cw, &ps->macs);
        }
        int crit = 0;
        for (int p = 1; p < npe; p++)
            if (w->pe_cycles[p] > w->pe_cycles[crit]) crit = p;
        double busy = w->pe_cycles[crit];
        ps->compute_cycles += busy;
        ps->stall_bank_cycles += busy - w->pe_groups[crit];
        double mem = ceil((next.in + prev.out) / bw);
        ps->cycles += busy > mem ? busy : mem;
        dram += cur.in + cur.out;
        prev = cur;
        cur = next;
    }
    ps->cycles += ceil(prev.out / bw); /* drain */
    ps->stall_mem_cycles = ps->cycles - ps->compute_cycles;
    ps->dram_bytes = dram;
    ps->util_frac = ps->cycles > 0 ? ps->macs / (ps->cycles * (double)arch_mults(&w->arch)) : 0;
    double mx = 0, sum = 0;
    for (int p = 0; p < npe; p++) {
        sum += w->pe_work[p];
        if (w->pe_work[p] > mx) mx = w->pe_work[p];
    }
    ps->imbalance = sum > 0 ? mx / (sum / npe) : 1;
    ps->buf_bytes = 6.0 * (double)s->nnz * w->n_cc[part] + 12.0 * ps->macs;
    finish_energy(&w->arch, ps);
fail:
    mem_free(d.list);
    mem_free(d.row_of);
    mem_free(d.start);
    mem_free(d.pos);
    mem_free(d.prod);
    mem_free(d.rem);
    mem_free(d.cnt);
    return rc;
}

/* Rule 7: the pre-ReSprop dense work. */
static void part_pre(const SimWork *w, const SparseGrad *s, SimPartStats *ps) {
    const ConvGeom g = w->g;
    memset(ps, 0, sizeof *ps);
    double taps_p = 0, taps_q = 0;
    for (int p = 0; p < g.p; p++) {
        int lo, hi;
        tap_range(p * g.stride - g.pad, g.r, g.h, &lo, &hi);
        taps_p += hi - lo;
    }
    for (int q = 0; q < g.q; q++) {
        int lo, hi;
        tap_range(q * g.stride - g.pad, g.s, g.w, &lo, &hi);
        taps_q += hi - lo;
    }
    const double zw = (double)g.k * g.r * g.s * g.c * 4, hwc = (double)g.h * g.w * g.c;
    const double npqk = (double)g.n * g.p * g.q * g.k, nr = (double)g.n * g.p * g.q;
    ps->macs = 2.0 * g.k * g.c * taps_p * taps_q + g.n * hwc + npqk;
    ps->dram_bytes = 2 * zw + hwc * 4 + g.n * hwc * 4 + npqk * 4 + 6.0 * (double)s->nnz + 4 * (nr + 1);
    ps->buf_bytes = ps->dram_bytes;
    ps->compute_cycles = ceil(ps->macs / (double)arch_mults(&w->arch));
    double mem = ceil(ps->dram_bytes / arch_dram_bytes_per_cycle(&w->arch));
    ps->cycles = ps->compute_cycles > mem ? ps->compute_cycles : mem;
    ps->stall_mem_cycles = ps->cycles - ps->compute_cycles;
    ps->util_frac = ps->macs / (ps->cycles * (double)arch_mults(&w->arch));
    ps->imbalance = 1;
    finish_energy(&w->arch, ps);
}

int sim_layer_ws(SimWork *w, const SparseGrad *s, SimMode mode, SimLayerStats *out) {
    int rc = 0;
    const ConvGeom g = w->g;
    memset(out, 0, sizeof *out);
    if (s->n != g.n || s->p != g.p || s->q != g.q || s->k != g.k)
        FAIL(ERR_SHAPE, "sim_layer: gradient (%d,%d,%d,%d) does not match the layer's output (%d,%d,%d,%d)", s->n, s->p,
             s->q, s->k, g.n, g.p, g.q, g.k);
    out->rows_per_tile = w->rows_per_tile;
    out->n_tiles = (long)(((size_t)g.n * g.p * g.q + (size_t)w->rows_per_tile - 1) / (size_t)w->rows_per_tile);
    out->n_chunks[0] = w->n_cc[0];
    out->n_chunks[1] = w->n_cc[1];
    TRY(part_run(w, s, SIM_PART_BWD_DATA, mode, &out->part[SIM_PART_BWD_DATA]));
    TRY(part_run(w, s, SIM_PART_BWD_WEIGHTS, mode, &out->part[SIM_PART_BWD_WEIGHTS]));
    part_pre(w, s, &out->part[SIM_PART_PRE]);
    SimPartStats *tot = &out->part[SIM_PART_TOTAL];
    for (int p = 0; p < SIM_PART_TOTAL; p++) {
        const SimPartStats *x = &out->part[p];
        tot->cycles += x->cycles;
        tot->compute_cycles += x->compute_cycles;
        tot->stall_bank_cycles += x->stall_bank_cycles;
        tot->stall_mem_cycles += x->stall_mem_cycles;
        tot->buf_bytes += x->buf_bytes;
        tot->dram_bytes += x->dram_bytes;
        tot->macs += x->macs;
        tot->energy_pj += x->energy_pj;
    }
    tot->util_frac = tot->cycles > 0 ? tot->macs / (tot->cycles * (double)arch_mults(&w->arch)) : 0;
    double i0 = out->part[SIM_PART_BWD_DATA].imbalance, i1 = out->part[SIM_PART_BWD_WEIGHTS].imbalance;
    tot->imbalance = i0 > i1 ? i0 : i1;
    return 0;
fail:
    return rc;
}

int sim_layer(const AccelArch *a, ConvGeom g, const SparseGrad *s, SimMode mode, SimLayerStats *out) {
    int rc = 0;
    SimWork w;
    TRY(sim_work_init(&w, a, g));
    rc = sim_layer_ws(&w, s, mode, out);
fail:
    sim_work_deinit(&w);
    return rc;
}

/* ---- masks ------------------------------------------------------------------------------------------ */

int sim_make_mask(SparseGrad *s, double density, SimMaskPattern pattern, double cluster, Rng *rng) {
    int rc = 0;
    const size_t nr = (size_t)s->n * s->p * s->q;
    const int K = s->k;
    s->nnz = 0;
    memset(s->row_ptr, 0, (nr + 1) * sizeof *s->row_ptr);
    if (!(density >= 0 && density <= 1)) FAIL(ERR_CONFIG, "sim_make_mask: density %g is not in [0, 1]", density);
    if (pattern == SIM_MASK_CLUSTERED && !(cluster >= 0 && cluster <= 1))
        FAIL(ERR_CONFIG, "sim_make_mask: cluster parameter %g is not in [0, 1]", cluster);
    if (pattern != SIM_MASK_UNIFORM && pattern != SIM_MASK_CLUSTERED)
        FAIL(ERR_CONFIG, "sim_make_mask: unknown pattern %d", (int)pattern);
    double a = pattern == SIM_MASK_CLUSTERED && density > 0 ? pow(density, cluster) : 1.0;
    double pin = a > 0 ? density / a : 0;
    double lg = pin < 1 ? log1p(-pin) : 0;
    size_t nz = 0;
    for (size_t i = 0; i < nr; i++) {
        if (pin > 0 && (a >= 1 || rng_uniform(rng) < a)) {
            /* geometric skipping: the gap to the next kept channel */
            long k = -1;
            for (;;) {
                if (pin >= 1) k++;
                else {
                    double gap = floor(log1p(-rng_uniform(rng)) / lg);
                    if (gap >= K) break;
                    k += 1 + (long)gap;
                }
                if (k >= K) break;
                if (nz >= s->nnz_cap) {
                    memset(s->row_ptr, 0, (nr + 1) * sizeof *s->row_ptr);
                    FAIL(ERR_SHAPE, "sim_make_mask: the mask needs more than the capacity of %zu nonzeros", s->nnz_cap);
                }
                float v = (float)(2 * rng_uniform(rng) - 1);
                s->chan[nz] = (uint16_t)k;
                s->val[nz] = v != 0 ? v : 1.0f;
                nz++;
            }
        }
        s->row_ptr[i + 1] = (int32_t)nz;
    }
    s->nnz = nz;
    return 0;
fail:
    return rc;
}
