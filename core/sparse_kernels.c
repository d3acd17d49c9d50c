/* sparse_kernels.c: the CPU sparse conv backward kernels over the CSR format (sparse_kernels.h). */
#include "core/sparse_kernels.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* ---- workspace ------------------------------------------------------------------------------- */

/* One nonzero regrouped by output channel (bwd_weights fast path): the element offset in x of its
 * window's top-left input pixel (may be negative at the border: never dereferenced then), its value,
 * and the mask of its in-bounds taps (see wplan_mask). */
typedef struct {
    int32_t xoff;
    float v;
    uint32_t m;
} SkEnt;

enum { SK_ENT_CAP = 1 << 17 };

#define SK_SUM_BLOCK ((size_t)4096) /* floats of a batch-sum block: 16 KiB of sums stay in L1 */
#ifndef SK_SPLIT_SAMPLES_BYTES /* bwd_weights splits samples (private dW) up to this dW size */
#define SK_SPLIT_SAMPLES_BYTES (1u << 20)
#endif


int sparse_workspace_init(SparseWorkspace *ws, int n_slots, size_t dw_elems, size_t xs_elems) {
    int rc = 0;
    memset(ws, 0, sizeof *ws);
    if (n_slots <= 0) n_slots = omp_get_max_threads();
    if (dw_elems == 0) FAIL(ERR_SHAPE, "sparse_workspace_init: dw_elems must be positive");
    ws->n_slots = n_slots;
    ws->dw_elems = dw_elems;
    ws->xs_elems = xs_elems;
    ws->dw_priv = mem_alloc((size_t)n_slots * dw_elems * sizeof *ws->dw_priv);
    if (xs_elems) {
        ws->xs_priv = mem_alloc((size_t)n_slots * xs_elems * sizeof *ws->xs_priv);
        if (!ws->xs_priv)
            FAIL(ERR_NOMEM, "sparse_workspace_init: out of memory for %d x %zu floats", n_slots, xs_elems);
    }
    /* K <= dw_elems and K <= SPARSE_K_MAX, so a slot owns at most that many channels */
    ws->kcount_cap = (dw_elems < SPARSE_K_MAX ? dw_elems : SPARSE_K_MAX) + 2;
    ws->split_samples_bytes = SK_SPLIT_SAMPLES_BYTES;
    ws->ent_cap = SK_ENT_CAP;
    ws->ent = mem_alloc((size_t)n_slots * ws->ent_cap * sizeof(SkEnt));
    ws->kcount = mem_alloc((size_t)n_slots * ws->kcount_cap * sizeof *ws->kcount);
    if (!ws->dw_priv || !ws->ent || !ws->kcount)
        FAIL(ERR_NOMEM, "sparse_workspace_init: out of memory for %d slots of %zu floats", n_slots, dw_elems);
    return 0;
fail:
    sparse_workspace_deinit(ws);
    return rc;
}

void sparse_workspace_deinit(SparseWorkspace *ws) {
    mem_free(ws->dw_priv);
    mem_free(ws->xs_priv);
    mem_free(ws->ent);
    mem_free(ws->kcount);
    memset(ws, 0, sizeof *ws);
}

/* ---- reference kernels --------------------------------------------------------------------------------- */

static void check_shapes(const SparseGrad *s, ConvGeom g) {
    ASSERT(sparse_geom_check(g) == 0);
    ASSERT(s->n == g.n && s->p == g.p && s->q == g.q && s->k == g.k);
}

/* The in-bounds tap range [lo, hi) of a window starting at input coordinate o over an extent. */
static inline void tap_range(int o, int taps, int extent, int *lo, int *hi) {
    *lo = o < 0 ? -o : 0;
    *hi = o + taps > extent ? extent - o : taps;
}

void sparse_conv_bwd_data_ref(const SparseGrad *s, const float *w_ohwi, ConvGeom g, float *dx) {
    sparse_conv_bwd_data_ref_init(s, w_ohwi, g, NULL, dx);
}

void sparse_conv_bwd_data_ref_init(const SparseGrad *s, const float *w_ohwi, ConvGeom g, const float *dx0, float *dx) {
    check_shapes(s, g);
    const size_t C = (size_t)g.c, sample = (size_t)g.h * g.w * C;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < g.n; n++) {
        float *dxn = dx + (size_t)n * sample; /* (H,W,C) */
        if (dx0) memcpy(dxn, dx0, sample * sizeof *dxn);
        else memset(dxn, 0, sample * sizeof *dxn);
        for (int p = 0; p < g.p; p++) {
            int ih0 = p * g.stride - g.pad, r_lo, r_hi;
            tap_range(ih0, g.r, g.h, &r_lo, &r_hi);
            for (int q = 0; q < g.q; q++) {
                int iw0 = q * g.stride - g.pad, s_lo, s_hi;
                tap_range(iw0, g.s, g.w, &s_lo, &s_hi);
                size_t row = ((size_t)n * g.p + p) * g.q + q;
                for (int32_t j = s->row_ptr[row]; j < s->row_ptr[row + 1]; j++) {
                    const float v = s->val[j];
                    const float *wk = w_ohwi + (size_t)s->chan[j] * g.r * g.s * C; /* (R,S,C) */
                    for (int r = r_lo; r < r_hi; r++)
                        for (int t = s_lo; t < s_hi; t++) {
                            float *restrict d = dxn + ((size_t)(ih0 + r) * g.w + (iw0 + t)) * C;
                            const float *restrict wv = wk + ((size_t)r * g.s + t) * C;
                            for (size_t c = 0; c < C; c++) d[c] += v * wv[c];
                        }
                }
            }
        }
    }
}

void sparse_conv_bwd_weights_ref(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                                 float *dw_ohwi) {
    check_shapes(s, g);
    const size_t C = (size_t)g.c, sample = (size_t)g.h * g.w * C;
    const size_t n_dw = (size_t)g.k * g.r * g.s * C;
    ASSERT(ws->dw_priv && n_dw <= ws->dw_elems);
    const int n_slots = ws->n_slots;
    /* Slot t owns samples [t*N/n_slots, (t+1)*N/n_slots): the split depends only on n_slots. */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n_slots; t++) {
        float *dwp = ws->dw_priv + (size_t)t * ws->dw_elems; /* (K,R,S,C) */
        memset(dwp, 0, n_dw * sizeof *dwp);
        int n_lo = (int)((long long)t * g.n / n_slots), n_hi = (int)((long long)(t + 1) * g.n / n_slots);
        for (int n = n_lo; n < n_hi; n++) {
            const float *xn = x + (size_t)n * sample; /* (H,W,C) */
            for (int p = 0; p < g.p; p++) {
                int ih0 = p * g.stride - g.pad, r_lo, r_hi;
                tap_range(ih0, g.r, g.h, &r_lo, &r_hi);
                for (int q = 0; q < g.q; q++) {
                    int iw0 = q * g.stride - g.pad, s_lo, s_hi;
                    tap_range(iw0, g.s, g.w, &s_lo, &s_hi);
                    size_t row = ((size_t)n * g.p + p) * g.q + q;
                    for (int32_t j = s->row_ptr[row]; j < s->row_ptr[row + 1]; j++) {
                        const float v = s->val[j];
                        float *dwk = dwp + (size_t)s->chan[j] * g.r * g.s * C; /* (R,S,C) */
                        for (int r = r_lo; r < r_hi; r++)
                            for (int u = s_lo; u < s_hi; u++) {
                                float *restrict d = dwk + ((size_t)r * g.s + u) * C;
                                const float *restrict xv = xn + ((size_t)(ih0 + r) * g.w + (iw0 + u)) * C;
                                for (size_t c = 0; c < C; c++) d[c] += v * xv[c];
                            }
                    }
                }
            }
        }
    }
    /* Fixed-order reduction over slots: element i is summed slot 0, 1, ... whatever the threads. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n_dw; i++) {
        float acc = 0.0f;
        for (int t = 0; t < n_slots; t++) acc += ws->dw_priv[(size_t)t * ws->dw_elems + i];
        dw_ohwi[i] = acc;
    }
}

/* ---- the batch sum of x (the reuse term's input) ---------------------------------------------- */

void sparse_sum_samples(float *restrict sum, const float *restrict x, int n, size_t sample) {
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < sample; b += SK_SUM_BLOCK) {
        size_t len = sample - b < SK_SUM_BLOCK ? sample - b : SK_SUM_BLOCK;
        float *restrict d = sum + b;
        memcpy(d, x + b, len * sizeof *d);
        for (int j = 1; j < n; j++) {
            const float *restrict xj = x + (size_t)j * sample + b;
#pragma omp simd
            for (size_t i = 0; i < len; i++) d[i] += xj[i];
        }
    }
}

void sparse_batch_sum(const float *x, ConvGeom g, float *xsum) {
    const size_t hwc = (size_t)g.h * g.w * g.c, C = (size_t)g.c;
    if (!sparse_geom_strided_1x1(g)) {
        sparse_sum_samples(xsum, x, g.n, hwc);
        return;
    }
    memset(xsum, 0, hwc * sizeof *xsum);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < g.p; p++)
        for (int n = 0; n < g.n; n++)
            for (int q = 0; q < g.q; q++) {
                size_t pix = (size_t)p * g.stride * g.w + (size_t)q * g.stride;
                const float *restrict src = x + ((size_t)n * g.h * g.w + pix) * C;
                float *restrict dst = xsum + pix * C;
#pragma omp simd
                for (size_t c = 0; c < C; c++) dst[c] += src[c];
            }
}

/* xs (H,W,C) += the pixels [e0, e1) of x (N*H*W pixels, NHWC), each at its place in the sample. */
static void sk_sum_pixels(const float *restrict x, ConvGeom g, size_t e0, size_t e1, float *restrict xs) {
    const size_t hw = (size_t)g.h * g.w, C = (size_t)g.c;
    while (e0 < e1) {
        size_t in = e0 % hw, len = hw - in < e1 - e0 ? hw - in : e1 - e0;
        const float *restrict src = x + e0 * C;
        float *restrict dst = xs + in * C;
#pragma omp simd
        for (size_t i = 0; i < len * C; i++) dst[i] += src[i];
        e0 += len;
    }
}

/* ---- fast kernels ---------------------------------------------------------------------------- */

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define SK_AVX512 1
#endif

#ifdef SK_AVX512

#define SK_INLINE static inline __attribute__((always_inline))
#define SK_UNROLL _Pragma("GCC unroll 32")

/* x + off for an element offset that is only used under a lane mask that excludes every lane
 * outside x (AVX-512 masked loads do not fault on masked-off lanes); integer arithmetic, so no
 * out-of-object pointer is ever formed in C. */
SK_INLINE const float *sk_addr(const float *x, ptrdiff_t off) {
    return (const float *)((uintptr_t)x + (uintptr_t)(off * (ptrdiff_t)sizeof(float)));
}

/* -- bwd_data: gather form -------------------------------------------------------------------- */

#ifndef SK_WBLOCK_BYTES /* x bytes the windows of one bwd_weights block touch (half of L2: dW and the
                           * entries stream through the rest; 1 MiB was 5-25% slower on 3x3 layers) */
#define SK_WBLOCK_BYTES (512u << 10)
#endif
#ifndef SK_GATHER_SLAB_BYTES /* weights of one channel block in the gather form (L2) */
#define SK_GATHER_SLAB_BYTES (64u << 20)
#endif
#ifndef SK_PREFETCH_X
#define SK_PREFETCH_X 1
#endif
#ifndef SK_DIRECT_1X1_BYTES /* 1x1 bwd_weights scatters straight into dW up to this size (L1) */
#define SK_DIRECT_1X1_BYTES (64u << 10)
#endif
#ifndef SK_STREAM_BYTES /* bwd_data gather form: non-temporal stores above this dx size */
#define SK_STREAM_BYTES (4u << 20)
#endif
#ifndef SK_SLAB_BYTES
#define SK_SLAB_BYTES (16u << 10)
#endif
#ifndef SK_ENT_SKEW /* bwd_weights: extra entries per channel region (L1 set spread) */
#define SK_ENT_SKEW 21
#endif
#ifndef SK_TILE_K_MAX /* bwd_data: the tile form up to this K (128->128 16x16: the gather form is ~1.25x faster) */
#define SK_TILE_K_MAX 64
#endif

/* One channel block [cb, cb + 16*NV) of the input pixels (n, h, 0..W-1) of input row `row` = n*H + h.
 * dx[n,h,w,cb..] = sum over the taps (r,s) reaching (h,w) and the nonzeros (k, v) of their output
 * pixel of v * w[k,r,s,cb..]. Taps outermost: the weights of one tap and channel block (K x 16*NV
 * floats) and the dx row stay in L1 while every pixel of the row consumes that tap's nonzeros;
 * a pixel's partial sum is kept in registers over one tap's nonzeros (two sets, alternate
 * nonzeros) and added to the row in memory. Fixed order (taps r, s, then the row's nonzeros). */
SK_INLINE void bwdd_tile_row(const SparseGrad *sp, const float *w_ohwi, ConvGeom g, const float *dx0, float *dx,
                             int row, int cb, const int NV) {
    const int n = row / g.h, h = row % g.h;
    const size_t C = (size_t)g.c, RSC = (size_t)g.r * g.s * C;
    const int32_t *rp = sp->row_ptr;
    const uint16_t *chan = sp->chan;
    const float *val = sp->val;
    float *dxr = dx + ((size_t)row * g.w) * C + cb;
    const float *d0 = dx0 ? dx0 + ((size_t)h * g.w) * C + cb : NULL; /* the sample's starting values */
    for (int wq = 0; wq < g.w; wq++) {
        SK_UNROLL
        for (int c = 0; c < NV; c++)
            _mm512_storeu_ps(dxr + (size_t)wq * C + 16 * c,
                             d0 ? _mm512_loadu_ps(d0 + (size_t)wq * C + 16 * c) : _mm512_setzero_ps());
    }
    for (int r = 0; r < g.r; r++) {
        int num = h + g.pad - r;
        if (num < 0 || num % g.stride) continue;
        int p = num / g.stride;
        if (p >= g.p) continue;
        const int32_t *rpp = rp + ((size_t)n * g.p + p) * g.q;
        for (int s = 0; s < g.s; s++) {
            const float *wt = w_ohwi + ((size_t)r * g.s + s) * C + cb;
            /* pixels wq = q*stride - pad + s for q in range */
            int q0 = 0;
            while (q0 * g.stride - g.pad + s < 0) q0++;
            for (int q = q0; q < g.q; q++) {
                int wq = q * g.stride - g.pad + s;
                if (wq >= g.w) break;
                int32_t j = rpp[q], je = rpp[q + 1];
                if (j == je) continue;
                float *d = dxr + (size_t)wq * C;
                __m512 a0[4], a1[4];
                SK_UNROLL
                for (int c = 0; c < NV; c++) {
                    a0[c] = _mm512_loadu_ps(d + 16 * c);
                    a1[c] = _mm512_setzero_ps();
                }
                for (; j + 1 < je; j += 2) {
                    const float *w0 = wt + chan[j] * RSC, *w1 = wt + chan[j + 1] * RSC;
                    const __m512 v0 = _mm512_set1_ps(val[j]), v1 = _mm512_set1_ps(val[j + 1]);
                    SK_UNROLL
                    for (int c = 0; c < NV; c++) {
                        a0[c] = _mm512_fmadd_ps(v0, _mm512_loadu_ps(w0 + 16 * c), a0[c]);
                        a1[c] = _mm512_fmadd_ps(v1, _mm512_loadu_ps(w1 + 16 * c), a1[c]);
                    }
                }
                if (j < je) {
                    const float *w0 = wt + chan[j] * RSC;
                    const __m512 v0 = _mm512_set1_ps(val[j]);
                    SK_UNROLL
                    for (int c = 0; c < NV; c++) a0[c] = _mm512_fmadd_ps(v0, _mm512_loadu_ps(w0 + 16 * c), a0[c]);
                }
                SK_UNROLL
                for (int c = 0; c < NV; c++) _mm512_storeu_ps(d + 16 * c, _mm512_add_ps(a0[c], a1[c]));
            }
        }
    }
}

enum { SK_GATHER_CAP = 2048 }; /* nonzeros buffered per input pixel before they are consumed */

/* acc += sum over the m buffered nonzeros of val[i] * w[off[i] .. + 16*NV); U independent
 * accumulator sets take alternate nonzeros (FMA latency), summed in a fixed order at the end. */
SK_INLINE void bwdd_consume(__m512 *acc, const float *w, const int32_t *off, const float *val, int m, const int NV) {
    enum { U = 2 };
    __m512 a[U][8];
    SK_UNROLL
    for (int c = 0; c < NV; c++) {
        a[0][c] = acc[c];
        a[1][c] = _mm512_setzero_ps();
    }
    int i = 0;
    for (; i + U <= m; i += U) {
        SK_UNROLL
        for (int u = 0; u < U; u++) {
            const __m512 v = _mm512_set1_ps(val[i + u]);
            const float *wp = w + off[i + u];
            SK_UNROLL
            for (int c = 0; c < NV; c++) a[u][c] = _mm512_fmadd_ps(v, _mm512_loadu_ps(wp + 16 * c), a[u][c]);
        }
    }
    for (; i < m; i++) {
        const __m512 v = _mm512_set1_ps(val[i]);
        const float *wp = w + off[i];
        SK_UNROLL
        for (int c = 0; c < NV; c++) a[0][c] = _mm512_fmadd_ps(v, _mm512_loadu_ps(wp + 16 * c), a[0][c]);
    }
    SK_UNROLL
    for (int c = 0; c < NV; c++) acc[c] = _mm512_add_ps(a[0][c], a[1][c]);
}

/* One channel block [cb, cb + 16*NV) of the input pixels (n, h, 0..W-1) of input row `row` = n*H + h:
 * dx[n,h,w,cb..] = sum over the taps (r,s) reaching (h,w) and the nonzeros (k, v) of their output
 * pixel of v * w[k,r,s,cb..]. The nonzeros of all taps are first listed (weight offset, value) with
 * vector ops, then consumed in one long loop; the sum stays in registers and is stored once. */
SK_INLINE void bwdd_gather_row(const SparseGrad *sp, const float *w_ohwi, ConvGeom g, const float *dx0, float *dx,
                               int row, int cb, bool stream, int32_t *boff, float *bval, const int NV) {
    const int n = row / g.h, h = row % g.h;
    const int C = g.c, RSC = g.r * g.s * C;
    const int32_t *rp = sp->row_ptr;
    const uint16_t *chan = sp->chan;
    const float *val = sp->val;
    const __m512i rscv = _mm512_set1_epi32(RSC);
    int tr[64], tp[64], n_r = 0; /* taps r reaching row h, with their output row p */
    for (int r = 0; r < g.r && n_r < 64; r++) {
        int num = h + g.pad - r;
        if (num < 0 || num % g.stride) continue;
        int p = num / g.stride;
        if (p >= g.p) continue;
        tr[n_r] = r;
        tp[n_r++] = p;
    }
    float *dxr = dx + ((size_t)row * g.w) * C + cb;
    const float *d0 = dx0 ? dx0 + ((size_t)h * g.w) * C + cb : NULL; /* the sample's starting values */
    for (int wq = 0; wq < g.w; wq++) {
        __m512 acc[8];
        SK_UNROLL
        for (int c = 0; c < NV; c++) acc[c] = d0 ? _mm512_loadu_ps(d0 + (size_t)wq * C + 16 * c) : _mm512_setzero_ps();
        int m = 0;
        for (int s = 0; s < g.s; s++) {
            int num = wq + g.pad - s;
            if (num < 0 || num % g.stride) continue;
            int q = num / g.stride;
            if (q >= g.q) continue;
            for (int ir = 0; ir < n_r; ir++) {
                size_t orow = ((size_t)n * g.p + tp[ir]) * g.q + q;
                const __m512i tv = _mm512_set1_epi32((tr[ir] * g.s + s) * C + cb);
                for (int32_t j = rp[orow], je = rp[orow + 1]; j < je; j += 16) {
                    int len = je - j < 16 ? je - j : 16;
                    if (m + len > SK_GATHER_CAP) {
                        bwdd_consume(acc, w_ohwi, boff, bval, m, NV);
                        m = 0;
                    }
                    __mmask16 k = (__mmask16)((1u << len) - 1);
                    __m512i ch = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, chan + j));
                    _mm512_storeu_si512(boff + m, _mm512_add_epi32(_mm512_mullo_epi32(ch, rscv), tv));
                    _mm512_storeu_ps(bval + m, _mm512_maskz_loadu_ps(k, val + j));
                    m += len;
                }
            }
        }
        bwdd_consume(acc, w_ohwi, boff, bval, m, NV);
        float *d = dxr + (size_t)wq * C;
        if (stream) {
            SK_UNROLL
            for (int c = 0; c < NV; c++) _mm512_stream_ps(d + 16 * c, acc[c]);
        } else {
            SK_UNROLL
            for (int c = 0; c < NV; c++) _mm512_storeu_ps(d + 16 * c, acc[c]);
        }
    }
}

/* Stride 1, R*S > 1 and K <= SK_TILE_K_MAX (one tap's weights in L1 for a 32-wide block): the
 * tap-outer tile form (bwdd_tile_row); otherwise (strided or 1x1, where each dx pixel gets few taps and
 * dx is mostly written, not computed; or many output channels, where the tile form's per-tap dx
 * updates and short per-pixel loops cost more than the gather form's L2 weight reads) the gather
 * form, with non-temporal stores when dx exceeds the caches. */
static void bwdd_fast(const SparseGrad *sp, const float *w_ohwi, ConvGeom g, const float *dx0, float *dx) {
    const bool tile = g.stride == 1 && g.r * g.s > 1 && g.k <= SK_TILE_K_MAX &&
                      (size_t)g.k * 32 * sizeof(float) <= SK_SLAB_BYTES;
    int nv = tile ? 4 : 8;
    if (tile) /* as wide as possible (<= 64) while one tap's weights (K x block) fit in L1 */
        while (nv > 1 && (g.c % (16 * nv) || (size_t)g.k * 16 * nv * sizeof(float) > SK_SLAB_BYTES)) nv /= 2;
    else /* while the weights' slab of one block stays in L2 */
        while (nv > 1 && (g.c % (16 * nv) || (size_t)g.k * g.r * g.s * 16 * nv * sizeof(float) > SK_GATHER_SLAB_BYTES)) nv /= 2;
    if (g.c % (16 * nv)) nv = 1;
    const int n_rows = g.n * g.h;
    const bool stream = (size_t)n_rows * g.w * g.c * sizeof(float) >= SK_STREAM_BYTES && (uintptr_t)dx % 64 == 0;
#pragma omp parallel
    {
        int32_t boff[SK_GATHER_CAP + 16] __attribute__((aligned(64)));
        float bval[SK_GATHER_CAP + 16] __attribute__((aligned(64)));
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int lo = (int)((long long)n_rows * t / nt), hi = (int)((long long)n_rows * (t + 1) / nt);
        if (tile) {
            for (int row = lo; row < hi; row++)
                for (int cb = 0; cb < g.c; cb += 16 * nv) switch (nv) {
                    case 4: bwdd_tile_row(sp, w_ohwi, g, dx0, dx, row, cb, 4); break;
                    case 2: bwdd_tile_row(sp, w_ohwi, g, dx0, dx, row, cb, 2); break;
                    default: bwdd_tile_row(sp, w_ohwi, g, dx0, dx, row, cb, 1); break;
                    }
        } else {
            for (int cb = 0; cb < g.c; cb += 16 * nv)
                for (int row = lo; row < hi; row++) switch (nv) {
                    case 8: bwdd_gather_row(sp, w_ohwi, g, dx0, dx, row, cb, stream, boff, bval, 8); break;
                    case 4: bwdd_gather_row(sp, w_ohwi, g, dx0, dx, row, cb, stream, boff, bval, 4); break;
                    case 2: bwdd_gather_row(sp, w_ohwi, g, dx0, dx, row, cb, stream, boff, bval, 2); break;
                    default: bwdd_gather_row(sp, w_ohwi, g, dx0, dx, row, cb, stream, boff, bval, 1); break;
                    }
            if (stream) _mm_sfence();
        }
    }
}

/* -- bwd_weights: output channels over slots, nonzeros regrouped by channel ------------------- */

typedef enum { WP_TAPS9, WP_TAPS1, WP_ROWSEG } WpKind;

/* How the fast bwd_weights handles a geometry. TAPS: C a multiple of 16, R*S taps, the dW of one
 * channel block (16*nv channels) of all taps of one output channel kept in registers; tap mask bit
 * r*S+s. ROWSEG (R = 3, S*C <= 16): one vector per window row (its S*C contiguous floats in x and
 * in dW); mask bits 0..15 are the lanes of the in-bounds columns, bits 16.. the in-bounds rows. */
typedef struct {
    WpKind kind;
    int nv;         /* vectors per tap (TAPS) */
    uint32_t full;  /* mask of an interior window */
    ptrdiff_t toff[9]; /* TAPS9: x offset of tap t = r*S+s from the window's top-left */
} WPlan;

static bool wplan_make(ConvGeom g, WPlan *pl) {
    memset(pl, 0, sizeof *pl);
    if ((size_t)g.n * g.h * g.w * g.c >= (size_t)INT32_MAX / 2) return false;
    const ptrdiff_t WC = (ptrdiff_t)g.w * g.c;
    if (g.c % 16 == 0 && g.r == 3 && g.s == 3) {
        pl->kind = WP_TAPS9;
        pl->nv = g.c % 32 == 0 ? 2 : 1;
        pl->full = 0x1ff;
        SK_UNROLL
        for (int r = 0; r < 3; r++)
            for (int s = 0; s < 3; s++) pl->toff[r * 3 + s] = r * WC + s * g.c;
        return true;
    }
    if (g.c % 16 == 0 && g.r == 1 && g.s == 1) {
        pl->kind = WP_TAPS1;
        pl->nv = g.c % 128 == 0 ? 8 : g.c % 64 == 0 ? 4 : g.c % 32 == 0 ? 2 : 1;
        pl->full = 1;
        return true;
    }
    if (g.r == 3 && g.s * g.c <= 16) {
        pl->kind = WP_ROWSEG;
        pl->full = ((1u << (g.s * g.c)) - 1) | (7u << 16);
        return true;
    }
    return false;
}

/* The tap mask of the window with top-left input (ih0, iw0). */
static inline uint32_t wplan_mask(const WPlan *pl, ConvGeom g, int ih0, int iw0) {
    int r_lo, r_hi, s_lo, s_hi;
    tap_range(ih0, g.r, g.h, &r_lo, &r_hi);
    tap_range(iw0, g.s, g.w, &s_lo, &s_hi);
    if (r_lo == 0 && r_hi == g.r && s_lo == 0 && s_hi == g.s) return pl->full;
    uint32_t m = 0;
    if (pl->kind == WP_ROWSEG) {
        if (s_hi > s_lo) m = ((1u << (s_hi * g.c)) - 1) & ~((1u << (s_lo * g.c)) - 1);
        for (int r = r_lo; r < r_hi; r++) m |= 1u << (16 + r);
    } else {
        for (int r = r_lo; r < r_hi; r++)
            for (int s = s_lo; s < s_hi; s++) m |= 1u << (r * g.s + s);
    }
    return m;
}

/* dW taps of one output channel, channel block cb, over ne regrouped nonzeros (3x3). */
SK_INLINE void bwdw_taps9(float *dwk, const float *x, const SkEnt *e, int ne, int cb, const WPlan *pl, int C,
                          const int NV) {
    __m512 acc[9 * 2];
    ptrdiff_t toff[9];
    SK_UNROLL
    for (int t = 0; t < 9; t++) toff[t] = pl->toff[t] + cb;
    SK_UNROLL
    for (int t = 0; t < 9; t++)
        SK_UNROLL
        for (int c = 0; c < NV; c++) acc[t * NV + c] = _mm512_loadu_ps(dwk + (size_t)t * C + cb + 16 * c);
    for (int i = 0; i < ne; i++) {
        const __m512 v = _mm512_set1_ps(e[i].v);
        const uint32_t m = e[i].m;
        if (m == 0x1ff) {
            const float *xp = x + e[i].xoff;
            SK_UNROLL
            for (int t = 0; t < 9; t++)
                SK_UNROLL
                for (int c = 0; c < NV; c++)
                    acc[t * NV + c] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xp + toff[t] + 16 * c), acc[t * NV + c]);
        } else {
            SK_UNROLL
            for (int t = 0; t < 9; t++) {
                const bool ok = (m >> t) & 1;
                const __mmask16 k = ok ? 0xffff : 0;
                const float *xp = x + (ok ? e[i].xoff + toff[t] : 0); /* x itself when the tap is out */
                SK_UNROLL
                for (int c = 0; c < NV; c++)
                    acc[t * NV + c] = _mm512_mask3_fmadd_ps(_mm512_loadu_ps(xp + 16 * c), v, acc[t * NV + c], k);
            }
        }
    }
    SK_UNROLL
    for (int t = 0; t < 9; t++)
        SK_UNROLL
        for (int c = 0; c < NV; c++) _mm512_storeu_ps(dwk + (size_t)t * C + cb + 16 * c, acc[t * NV + c]);
}

/* Out of line, one per width: inlined into bwdw_slot, the accumulators and tap addresses competed
 * with the slot's own variables for registers and one accumulator lived on the stack. */
static __attribute__((noinline)) void bwdw_taps9_w1(float *dwk, const float *x, const SkEnt *e, int ne, int cb,
                                                    const WPlan *pl, int C) {
    bwdw_taps9(dwk, x, e, ne, cb, pl, C, 1);
}
static __attribute__((noinline)) void bwdw_taps9_w2(float *dwk, const float *x, const SkEnt *e, int ne, int cb,
                                                    const WPlan *pl, int C) {
    bwdw_taps9(dwk, x, e, ne, cb, pl, C, 2);
}

/* 1x1: one tap; two accumulator sets (alternate nonzeros) when the block is narrow. */
SK_INLINE void bwdw_taps1(float *dwk, const float *x, const SkEnt *e, int ne, int cb, const int NV) {
    __m512 a0[8], a1[8];
    SK_UNROLL
    for (int c = 0; c < NV; c++) {
        a0[c] = _mm512_loadu_ps(dwk + cb + 16 * c);
        a1[c] = _mm512_setzero_ps();
    }
    int i = 0;
    for (; i + 1 < ne; i += 2) {
        const __m512 v0 = _mm512_set1_ps(e[i].m ? e[i].v : 0.0f), v1 = _mm512_set1_ps(e[i + 1].m ? e[i + 1].v : 0.0f);
        const float *x0 = x + (e[i].m ? e[i].xoff + cb : 0), *x1 = x + (e[i + 1].m ? e[i + 1].xoff + cb : 0);
        SK_UNROLL
        for (int c = 0; c < NV; c++) {
            a0[c] = _mm512_fmadd_ps(v0, _mm512_loadu_ps(x0 + 16 * c), a0[c]);
            a1[c] = _mm512_fmadd_ps(v1, _mm512_loadu_ps(x1 + 16 * c), a1[c]);
        }
    }
    if (i < ne) {
        const __m512 v0 = _mm512_set1_ps(e[i].m ? e[i].v : 0.0f);
        const float *x0 = x + (e[i].m ? e[i].xoff + cb : 0);
        SK_UNROLL
        for (int c = 0; c < NV; c++) a0[c] = _mm512_fmadd_ps(v0, _mm512_loadu_ps(x0 + 16 * c), a0[c]);
    }
    SK_UNROLL
    for (int c = 0; c < NV; c++) _mm512_storeu_ps(dwk + cb + 16 * c, _mm512_add_ps(a0[c], a1[c]));
}

/* R = 3, S*C <= 16: one masked vector per window row; two accumulator sets (alternate nonzeros). */
SK_INLINE void bwdw_rowseg_one(__m512 *acc, const float *x, const SkEnt *e, ptrdiff_t WC) {
    const __m512 v = _mm512_set1_ps(e->v);
    const uint32_t m = e->m;
    SK_UNROLL
    for (int r = 0; r < 3; r++) {
        const bool ok = (m >> (16 + r)) & 1;
        const __mmask16 k = ok ? (__mmask16)(m & 0xffff) : 0;
        const float *xp = sk_addr(x, ok ? e->xoff + r * WC : 0);
        acc[r] = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(k, xp), v, acc[r], k);
    }
}

static void bwdw_rowseg(float *dwk, const float *x, const SkEnt *e, int ne, ConvGeom g) {
    const ptrdiff_t WC = (ptrdiff_t)g.w * g.c;
    const int SC = g.s * g.c;
    const __mmask16 wm = (__mmask16)((1u << SC) - 1);
    __m512 a0[3], a1[3];
    SK_UNROLL
    for (int r = 0; r < 3; r++) {
        a0[r] = _mm512_maskz_loadu_ps(wm, dwk + (size_t)r * SC);
        a1[r] = _mm512_setzero_ps();
    }
    int i = 0;
    for (; i + 1 < ne; i += 2) {
        bwdw_rowseg_one(a0, x, e + i, WC);
        bwdw_rowseg_one(a1, x, e + i + 1, WC);
    }
    if (i < ne) bwdw_rowseg_one(a0, x, e + i, WC);
    SK_UNROLL
    for (int r = 0; r < 3; r++) _mm512_mask_storeu_ps(dwk + (size_t)r * SC, wm, _mm512_add_ps(a0[r], a1[r]));
}

/* First index in [a, b) whose channel is >= k (chan ascending within a row): the count of channels
 * below k, 32 at a time with a masked vector compare (rows are short; no unpredictable branches). */
static inline int32_t chan_lower_bound(const uint16_t *chan, int32_t a, int32_t b, int k) {
    const __m512i kv = _mm512_set1_epi16((short)k);
    int32_t n_below = 0;
    for (int32_t j = a; j < b; j += 32) {
        int len = b - j < 32 ? b - j : 32;
        __mmask32 m = (__mmask32)(len == 32 ? 0xffffffffu : (1u << len) - 1);
        __m512i cv = _mm512_maskz_loadu_epi16(m, chan + j);
        int c = __builtin_popcount((unsigned)_mm512_mask_cmplt_epu16_mask(m, cv, kv));
        n_below += c;
        if (c < len) break;
    }
    return a + n_below;
}

/* Slot work: dW[k] for k in [klo, khi), zeroed then accumulated block of rows by block of rows.
 * One pass per block lists each nonzero straight into its channel's region of ent (channel kk owns
 * [kk*stride, kk*stride + kc[kk]): a row holds at most one nonzero per channel, so a block of at most
 * stride rows cannot overflow it; no counting pass, no per-row table), then each channel's list is
 * consumed with its dW taps in registers. */
static void bwdw_slot(const SparseGrad *sp, const float *x, ConvGeom g, const WPlan *pl, int n_lo, int n_hi,
                      int klo, int khi, SkEnt *ent, size_t ent_cap, int32_t *kc, float *dw, float *xs) {
    const size_t C = (size_t)g.c, RSC = (size_t)g.r * g.s * C, hw = (size_t)g.h * g.w;
    memset(dw + (size_t)klo * RSC, 0, (size_t)(khi - klo) * RSC * sizeof *dw);
    /* xs: the slot's samples summed into it (zeroed here) after each block, up to the first input
     * row a later window can read: those pixels were just read by the block's windows and are still
     * in L2, so the batch sum costs no pass over x of its own */
    size_t x_done = (size_t)n_lo * hw;
    if (xs) memset(xs, 0, hw * C * sizeof *xs);
    if (khi <= klo) {
        if (xs) sk_sum_pixels(x, g, x_done, (size_t)n_hi * hw, xs);
        return;
    }
    const int Ks = khi - klo;
    const int32_t *rp = sp->row_ptr;
    const uint16_t *chan = sp->chan;
    const float *val = sp->val;
    /* rows per block: bounded by the x bytes the block's windows touch (kept in L2) and by the
     * channel regions; the regions are SK_ENT_SKEW entries longer than a block needs so that they
     * do not all start on the same L1 set */
    size_t x_bytes_row = (size_t)g.stride * g.stride * C * sizeof(float);
    /* strided with the channel split: twice the bytes (a strided row costs 4x the bytes, so a block
     * has 4x fewer rows, and there each channel's dW, > 1 MiB in all, is loaded and stored from L3
     * once per block: 1.04-1.25x on 128->256 and 256->512 s2; by samples it was slower) */
    const bool ksplit = klo > 0 || khi < g.k;
    size_t max_rows = (size_t)SK_WBLOCK_BYTES * (g.stride > 1 && ksplit ? 2 : 1) / (x_bytes_row ? x_bytes_row : 1);
    if (max_rows < 16) max_rows = 16;
    size_t per_k = ent_cap / (size_t)Ks; /* >= 1: ent_cap > SPARSE_K_MAX */
    if (per_k > 4 * SK_ENT_SKEW) per_k -= SK_ENT_SKEW;
    if (max_rows > per_k) max_rows = per_k;
    const size_t stride = (max_rows + SK_ENT_SKEW) * (size_t)Ks <= ent_cap ? max_rows + SK_ENT_SKEW : max_rows;
    const size_t n_rows = (size_t)n_hi * g.p * g.q;
    /* x prefetch per output row (else per window): stride 1 with a channel split (every slot scans
     * all rows) or narrow channels (few lines per window row); measured 3-20% faster there, ~2%
     * slower on 64->64 32x32 by samples */
    const bool row_pf = g.stride == 1 && (ksplit || C <= 32);
    int n = n_lo, p = 0, q = 0;
    size_t i = (size_t)n_lo * g.p * g.q;
    while (i < n_rows) {
        memset(kc, 0, (size_t)Ks * sizeof *kc);
        bool any = false;
        const size_t i_end = i + max_rows < n_rows ? i + max_rows : n_rows; /* rows of this block */
        for (; i < i_end; i++) {
            int32_t a = rp[i], b = rp[i + 1];
            if (klo > 0) a = chan_lower_bound(chan, a, b, klo);
            if (khi < g.k) b = chan_lower_bound(chan, a, b, khi);
            if (SK_PREFETCH_X && row_pf && (q == 0 || !any)) {
                /* stride 1, at each output row: the input row its windows add to the previous output
                 * row's, whole, into L2 (the channel lists below visit the block's pixels out of order;
                 * per window, overlapping windows prefetched each line three times) */
                const int ih0 = p * g.stride - g.pad;
                for (int r = g.r > g.stride ? g.r - g.stride : 0; r < g.r; r++) {
                    int ih = ih0 + r;
                    if (ih < 0 || ih >= g.h) continue;
                    const char *x0 = (const char *)(x + ((size_t)n * g.h + ih) * g.w * C);
                    const size_t nbytes = (size_t)g.w * C * sizeof(float);
                    for (size_t off = 0; off < nbytes; off += 64) _mm_prefetch(x0 + off, _MM_HINT_T1);
                }
                any = true;
            }
            if (b > a) { /* empty rows cost only this test */
                int ih0 = p * g.stride - g.pad, iw0 = q * g.stride - g.pad;
                if (SK_PREFETCH_X && !row_pf) {
                    /* strided: x of the window's rows not touched by the previous output row, into L2 */
                    int s_lo, s_hi;
                    tap_range(iw0, g.s, g.w, &s_lo, &s_hi);
                    for (int r = g.r > g.stride ? g.r - g.stride : 0; r < g.r; r++) {
                        int ih = ih0 + r;
                        if (ih < 0 || ih >= g.h || s_hi <= s_lo) continue;
                        const char *x0 = (const char *)(x + (((size_t)n * g.h + ih) * g.w + iw0 + s_lo) * C);
                        size_t nbytes = (size_t)(s_hi - s_lo) * C * sizeof(float);
                        for (size_t off = 0; off < nbytes; off += 64) _mm_prefetch(x0 + off, _MM_HINT_T1);
                    }
                }
                const bool inside = ih0 >= 0 && ih0 + g.r <= g.h && iw0 >= 0 && iw0 + g.s <= g.w;
                const int32_t xoff = (int32_t)((((ptrdiff_t)n * g.h + ih0) * g.w + iw0) * (ptrdiff_t)C);
                const uint32_t m = inside ? pl->full : wplan_mask(pl, g, ih0, iw0);
                for (int32_t j = a; j < b; j++) {
                    const int kk = chan[j] - klo;
                    ent[(size_t)kk * stride + kc[kk]++] = (SkEnt){xoff, val[j], m};
                }
                any = true;
            }
            if (++q == g.q) {
                q = 0;
                if (++p == g.p) {
                    p = 0;
                    n++;
                }
            }
        }
        if (!any) goto sum;
        for (int kk = 0; kk < Ks; kk++) {
            const int ne = kc[kk];
            if (ne == 0) continue;
            float *dwk = dw + (size_t)(klo + kk) * RSC;
            const SkEnt *e = ent + (size_t)kk * stride;
            switch (pl->kind) {
            case WP_TAPS9:
                for (int cb = 0; cb < g.c; cb += 16 * pl->nv) {
                    if (pl->nv == 2) bwdw_taps9_w2(dwk, x, e, ne, cb, pl, g.c);
                    else bwdw_taps9_w1(dwk, x, e, ne, cb, pl, g.c);
                }
                break;
            case WP_TAPS1:
                for (int cb = 0; cb < g.c; cb += 16 * pl->nv) switch (pl->nv) {
                    case 8: bwdw_taps1(dwk, x, e, ne, cb, 8); break;
                    case 4: bwdw_taps1(dwk, x, e, ne, cb, 4); break;
                    case 2: bwdw_taps1(dwk, x, e, ne, cb, 2); break;
                    default: bwdw_taps1(dwk, x, e, ne, cb, 1); break;
                    }
                break;
            case WP_ROWSEG: bwdw_rowseg(dwk, x, e, ne, g); break;
            }
        }
    sum:
        if (xs) { /* the next output row (n, p) reads input rows from p*stride - pad on */
            int h0 = p * g.stride - g.pad;
            size_t lim = n >= n_hi ? (size_t)n_hi * hw : (size_t)n * hw + (size_t)(h0 > 0 ? h0 : 0) * g.w;
            if (lim > x_done) {
                sk_sum_pixels(x, g, x_done, lim, xs);
                x_done = lim;
            }
        }
    }
    if (xs) sk_sum_pixels(x, g, x_done, (size_t)n_hi * hw, xs);
}

/* R = 3, S*C <= 16 (the 3-channel stem), samples [n_lo, n_hi) into dw (K,3,S,C) (overwritten): the
 * window of each output pixel is loaded once (one masked vector per window row), then every nonzero
 * of the pixel adds v * window to its channel's dW rows, accumulated in pad (K,3,16) (zeroed here;
 * whole aligned vectors, so a row updated again soon after is forwarded from the store buffer) which
 * stays in L1, and copied to dw at the end; no regrouping. Out-of-bounds rows are skipped and out-of-bounds columns masked, as in the reference.
 * Order: rows in order, nonzeros in row order. */
static void bwdw_direct_rowseg(const SparseGrad *sp, const float *x, ConvGeom g, const WPlan *pl, int n_lo,
                               int n_hi, float *pad, float *dw) {
    const int SC = g.s * g.c, RSC = 3 * SC;
    const ptrdiff_t WC = (ptrdiff_t)g.w * g.c;
    const __mmask16 wm = (__mmask16)((1u << SC) - 1);
    memset(pad, 0, (size_t)g.k * 48 * sizeof *pad);
    const int32_t *rp = sp->row_ptr;
    const uint16_t *chan = sp->chan;
    const float *val = sp->val;
    for (int n = n_lo; n < n_hi; n++)
        for (int p = 0; p < g.p; p++)
            for (int q = 0; q < g.q; q++) {
                size_t row = ((size_t)n * g.p + p) * g.q + q;
                int32_t j = rp[row], je = rp[row + 1];
                if (j == je) continue;
                int ih0 = p * g.stride - g.pad, iw0 = q * g.stride - g.pad;
                uint32_t m = wplan_mask(pl, g, ih0, iw0);
                ptrdiff_t xoff = (((ptrdiff_t)n * g.h + ih0) * g.w + iw0) * g.c;
                __m512 win[3];
                const __mmask16 cm = (__mmask16)(m & 0xffff);
                SK_UNROLL
                for (int r = 0; r < 3; r++) {
                    const bool ok = (m >> (16 + r)) & 1;
                    win[r] = _mm512_maskz_loadu_ps(ok ? cm : 0, sk_addr(x, ok ? xoff + r * WC : 0));
                }
                const int r_lo = (m >> 16) & 1 ? 0 : (m >> 17) & 1 ? 1 : 2;
                const int r_hi = (m >> 18) & 1 ? 3 : (m >> 17) & 1 ? 2 : 1;
                for (; j < je; j++) {
                    const __m512 v = _mm512_set1_ps(val[j]);
                    float *pk = pad + (size_t)chan[j] * 48;
                    for (int r = r_lo; r < r_hi; r++)
                        _mm512_store_ps(pk + 16 * r, _mm512_mask3_fmadd_ps(win[r], v, _mm512_load_ps(pk + 16 * r), cm));
                }
            }
    for (int k = 0; k < g.k; k++)
        for (int r = 0; r < 3; r++)
            _mm512_mask_storeu_ps(dw + (size_t)k * RSC + r * SC, wm, _mm512_load_ps(pad + (size_t)k * 48 + 16 * r));
}

/* 1x1, samples [n_lo, n_hi) into dw (K,C) (overwritten): each output pixel's input vector is read
 * once (16*NV channels at a time, in registers) and every nonzero of the pixel adds v * x to its
 * channel's dW row, accumulated in pad (K,C) (64-byte aligned, zeroed here: whole aligned vectors, so
 * a row updated again soon after is forwarded from the store buffer; it stays in L1/L2) and copied
 * to dw at the end; no regrouping. Order: rows in order, nonzeros in row order. Windows outside the
 * input (1x1 with padding) contribute nothing. */
SK_INLINE void bwdw_direct_1x1_block(const SparseGrad *sp, const float *x, ConvGeom g, int n_lo, int n_hi,
                                     int cb, float *pad, const int NV) {
    const int32_t *rp = sp->row_ptr;
    const uint16_t *chan = sp->chan;
    const float *val = sp->val;
    const size_t C = (size_t)g.c;
    for (int n = n_lo; n < n_hi; n++)
        for (int p = 0; p < g.p; p++) {
            int ih = p * g.stride - g.pad;
            if (ih < 0 || ih >= g.h) continue;
            for (int q = 0; q < g.q; q++) {
                int iw = q * g.stride - g.pad;
                size_t row = ((size_t)n * g.p + p) * g.q + q;
                int32_t j = rp[row], je = rp[row + 1];
                if (j == je || iw < 0 || iw >= g.w) continue;
                const float *xp = x + (((size_t)n * g.h + ih) * g.w + iw) * C + cb;
                __m512 xv[8];
                SK_UNROLL
                for (int c = 0; c < NV; c++) xv[c] = _mm512_loadu_ps(xp + 16 * c);
                for (; j < je; j++) {
                    const __m512 v = _mm512_set1_ps(val[j]);
                    float *pk = pad + (size_t)chan[j] * C + cb;
                    SK_UNROLL
                    for (int c = 0; c < NV; c++)
                        _mm512_store_ps(pk + 16 * c, _mm512_fmadd_ps(v, xv[c], _mm512_load_ps(pk + 16 * c)));
                }
            }
        }
}

static void bwdw_direct_1x1(const SparseGrad *sp, const float *x, ConvGeom g, int n_lo, int n_hi, float *pad,
                            float *dw) {
    const size_t n_dw = (size_t)g.k * g.c;
    memset(pad, 0, n_dw * sizeof *pad);
    int nv = g.c % 128 == 0 ? 8 : g.c % 64 == 0 ? 4 : g.c % 32 == 0 ? 2 : 1;
    for (int cb = 0; cb < g.c; cb += 16 * nv) switch (nv) {
        case 8: bwdw_direct_1x1_block(sp, x, g, n_lo, n_hi, cb, pad, 8); break;
        case 4: bwdw_direct_1x1_block(sp, x, g, n_lo, n_hi, cb, pad, 4); break;
        case 2: bwdw_direct_1x1_block(sp, x, g, n_lo, n_hi, cb, pad, 2); break;
        default: bwdw_direct_1x1_block(sp, x, g, n_lo, n_hi, cb, pad, 1); break;
        }
    memcpy(dw, pad, n_dw * sizeof *dw);
}

/* dst[0, n) = the sum of the n_slots private copies priv + t * stride, in slot order. */
static void sk_sum_slots(const float *priv, size_t stride, int n_slots, size_t n, float *dst) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 acc = _mm512_maskz_loadu_ps(m, priv + i);
        for (int t = 1; t < n_slots; t++)
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, priv + (size_t)t * stride + i));
        _mm512_mask_storeu_ps(dst + i, m, acc);
    }
}

/* Small dW (<= ws->split_samples_bytes): samples split over the slots, each slot regroups all its
 * nonzeros (no channel search) into its private dW in ws->dw_priv, summed in slot order (so the
 * result depends on n_slots, like the reference). Larger dW: output channels split over the slots,
 * each slot writes its own channels of dw directly (no private copies, no reduction; the result
 * does not depend on n_slots). Both are independent of how many threads run. */
static void bwdw_fast(const SparseGrad *sp, const float *x, ConvGeom g, const WPlan *pl, SparseWorkspace *ws,
                      float *dw, float *xsum) {
    const int n_slots = ws->n_slots;
    const size_t n_dw = (size_t)g.k * g.r * g.s * g.c, hwc = (size_t)g.h * g.w * g.c;
    const bool by_samples = n_dw * sizeof(float) <= ws->split_samples_bytes && n_slots > 1;
    /* the batch sum rides along in bwdw_slot's sample split, each slot's partial sum in ws->xs_priv */
    const bool direct = pl->kind == WP_ROWSEG || (pl->kind == WP_TAPS1 && n_dw * sizeof(float) <= SK_DIRECT_1X1_BYTES);
    const bool fuse = xsum && by_samples && !direct && !sparse_geom_strided_1x1(g) && hwc <= ws->xs_elems;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n_slots; t++) {
        SkEnt *ent = (SkEnt *)ws->ent + (size_t)t * ws->ent_cap;
        int32_t *kc = ws->kcount + (size_t)t * ws->kcount_cap;
        if (by_samples) {
            int n_lo = (int)((long long)t * g.n / n_slots), n_hi = (int)((long long)(t + 1) * g.n / n_slots);
            if (pl->kind == WP_ROWSEG && (size_t)g.k * 48 * sizeof(float) <= ws->ent_cap * sizeof(SkEnt)) {
                bwdw_direct_rowseg(sp, x, g, pl, n_lo, n_hi, (float *)(void *)ent, ws->dw_priv + (size_t)t * ws->dw_elems);
                continue;
            }
            if (pl->kind == WP_TAPS1 && n_dw * sizeof(float) <= SK_DIRECT_1X1_BYTES &&
                n_dw * sizeof(float) <= ws->ent_cap * sizeof(SkEnt)) {
                bwdw_direct_1x1(sp, x, g, n_lo, n_hi, (float *)(void *)ent, ws->dw_priv + (size_t)t * ws->dw_elems);
                continue;
            }
            bwdw_slot(sp, x, g, pl, n_lo, n_hi, 0, g.k, ent, ws->ent_cap, kc, ws->dw_priv + (size_t)t * ws->dw_elems,
                      fuse ? ws->xs_priv + (size_t)t * ws->xs_elems : NULL);
        } else {
            int klo = (int)((long long)t * g.k / n_slots), khi = (int)((long long)(t + 1) * g.k / n_slots);
            bwdw_slot(sp, x, g, pl, 0, g.n, klo, khi, ent, ws->ent_cap, kc, dw, NULL);
        }
    }
    if (xsum && !fuse) sparse_batch_sum(x, g, xsum);
    if (fuse) sk_sum_slots(ws->xs_priv, ws->xs_elems, n_slots, hwc, xsum);
    if (by_samples) sk_sum_slots(ws->dw_priv, ws->dw_elems, n_slots, n_dw, dw);
}

#endif /* SK_AVX512 */

void sparse_conv_bwd_data(const SparseGrad *s, const float *w_ohwi, ConvGeom g, float *dx) {
    sparse_conv_bwd_data_init(s, w_ohwi, g, NULL, dx);
}

void sparse_conv_bwd_data_init(const SparseGrad *s, const float *w_ohwi, ConvGeom g, const float *dx0, float *dx) {
    check_shapes(s, g);
#ifdef SK_AVX512
    if (g.c % 16 == 0) {
        bwdd_fast(s, w_ohwi, g, dx0, dx);
        return;
    }
#endif
    sparse_conv_bwd_data_ref_init(s, w_ohwi, g, dx0, dx);
}

void sparse_conv_bwd_weights(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                             float *dw_ohwi) {
    sparse_conv_bwd_weights_xsum(s, x, g, ws, dw_ohwi, NULL);
}

void sparse_conv_bwd_weights_xsum(const SparseGrad *s, const float *x, ConvGeom g, SparseWorkspace *ws,
                                  float *dw_ohwi, float *xsum) {
    check_shapes(s, g);
    ASSERT((size_t)g.k * g.r * g.s * g.c <= ws->dw_elems);
#ifdef SK_AVX512
    WPlan pl;
    if (ws->ent && wplan_make(g, &pl)) {
        ASSERT((size_t)g.k + 1 <= ws->kcount_cap && ws->dw_priv && ws->ent_cap >= (size_t)g.k);
        bwdw_fast(s, x, g, &pl, ws, dw_ohwi, xsum);
        return;
    }
#endif
    sparse_conv_bwd_weights_ref(s, x, g, ws, dw_ohwi);
    if (xsum) sparse_batch_sum(x, g, xsum);
}
