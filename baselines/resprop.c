/* resprop.c: the ReSprop scheme (see resprop.h and /work/shared/RESPROP.md). */
#include "baselines/resprop.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* Tensors with at least this many elements use all OpenMP threads. */
#define RESPROP_OMP_MIN 32768
/* Elements of R averaged together by one batch-mean chunk (a double accumulator on the stack). */
#define RESPROP_MEAN_CHUNK 256

/* ---- options ----------------------------------------------------------------------------------- */

static const CfgKey resprop_keys[] = {
    {"margin", CFG_DOUBLE, offsetof(ResPropOptions, margin), "0.05", 0.0, 1.0, NULL,
     "target density after warm-up = (1 - RS) + margin (fraction, 0..1)"},
    {"warmup", CFG_STRING, offsetof(ResPropOptions, warmup), "paper", 0, 0, NULL,
     "none | paper (epochs 0-1 dense, 2..8 ramp) | fraction:F (the paper's shape in the first F of the run)"},
    {"sample", CFG_STRING, offsetof(ResPropOptions, sample), "random", 0, 0, "random|batchmean",
     "stored R: one sample's true gradient drawn uniformly (random) or the batch mean"},
    {"reset_each_epoch", CFG_BOOL, offsetof(ResPropOptions, reset_each_epoch), "true", 0, 0, NULL,
     "R invalid (dense step) at the first and last step of each epoch, as released"},
    {"tau_init", CFG_DOUBLE, offsetof(ResPropOptions, tau_init), "1e-7", DBL_MIN, 1e30, NULL,
     "initial threshold on |G - R| (gradient units)"},
    {"tau_min", CFG_DOUBLE, offsetof(ResPropOptions, tau_min), "1e-30", DBL_MIN, 1e30, NULL,
     "lower clamp of the threshold controller (gradient units)"},
    {"tau_max", CFG_DOUBLE, offsetof(ResPropOptions, tau_max), "1.0", DBL_MIN, 1e30, NULL,
     "upper clamp of the threshold controller (gradient units)"},
    {"fc", CFG_BOOL, offsetof(ResPropOptions, fc), "false", 0, 0, NULL,
     "apply ReSprop to fully connected layers too"},
};

const CfgTable resprop_options_table = {
    .keys = resprop_keys,
    .n_keys = (int)(sizeof resprop_keys / sizeof resprop_keys[0]),
    .extra_prefix = NULL,
};

bool resprop_applies_to_fc(const void *cfg) { return ((const ResPropOptions *)cfg)->fc; }

/* ---- pure functions ---------------------------------------------------------------------------- */

int resprop_parse_warmup(const char *text, ResPropWarmup *mode, double *frac) {
    static const char prefix[] = "fraction:";
    const size_t plen = sizeof prefix - 1;
    if (strcmp(text, "none") == 0) {
        *mode = RESPROP_WARMUP_NONE;
        *frac = 1.0;
        return 0;
    }
    if (strcmp(text, "paper") == 0) {
        *mode = RESPROP_WARMUP_PAPER;
        *frac = 1.0;
        return 0;
    }
    if (strncmp(text, prefix, plen) == 0) {
        const char *num = text + plen;
        char *end = NULL;
        double f = 0.0;
        bool ok = isdigit((unsigned char)num[0]) || (num[0] == '.' && isdigit((unsigned char)num[1]));
        if (ok) {
            f = strtod(num, &end);
            ok = end != num && *end == '\0' && isfinite(f) && f > 0.0 && f <= 1.0;
        }
        if (ok) {
            *mode = RESPROP_WARMUP_FRACTION;
            *frac = f;
            return 0;
        }
    }
    log_msg(LOG_ERROR,
            "scheme resprop: key 'warmup' value '%s': expected none, paper or fraction:F with F a number in (0, 1]",
            text);
    return ERR_CONFIG;
}

double resprop_target_density(ResPropWarmup mode, double frac, int epoch, long step, long total_steps,
                              double rs, double margin) {
    double base = (1.0 - rs) + margin;
    double t = base;
    switch (mode) {
    case RESPROP_WARMUP_NONE: t = base; break;
    case RESPROP_WARMUP_PAPER:
        if (epoch < 2) t = 1.0;
        else if (epoch <= 8) t = fmax(1.0 - 0.1 * epoch, base);
        else t = base;
        break;
    case RESPROP_WARMUP_FRACTION: {
        double total = total_steps < 1 ? 1.0 : (double)total_steps;
        /* 9 * (step / total) / F written as one division, so exact breakpoints (e == 2) stay exact */
        double e = 9.0 * (double)step / (frac * total);
        if (e < 2.0) t = 1.0;
        else if (e < 9.0) t = fmax(1.0 - 0.1 * floor(e), base);
        else t = base;
        break;
    }
    default: ASSERT(!"unknown ResPropWarmup");
    }
    return t > 1.0 ? 1.0 : t;
}

double resprop_controller(double tau, double density, double target, double tau_min, double tau_max) {
    if (density < target) tau *= 0.5;
    else if (density > target) tau *= 2.0;
    if (tau < tau_min) tau = tau_min;
    if (tau > tau_max) tau = tau_max;
    return tau;
}

bool resprop_reuse_allowed(const SchemeStep *st, bool have_r, bool reset_each_epoch) {
    if (!have_r || st->step == 0) return false;
    if (reset_each_epoch && (st->step_in_epoch == 0 || st->step_in_epoch == st->steps_per_epoch - 1))
        return false;
    return true;
}

/* The largest float <= tau: for every float x, x > tau (in double) exactly when x > this value, so
 * the mask loop compares in float and still applies the strict threshold of the double tau. */
static float resprop_tau_float(double tau) {
    float f = (float)tau;
    if ((double)f > tau) f = nextafterf(f, 0.0f);
    return f;
}

/* ---- per-layer state (shared by the variants) ----------------------------------------------- */

typedef struct {
    const ResPropVariant *v; /* the variant (its mask, name, blob magic); not owned */
    GradShape shape;
    double reuse;          /* nominal reuse sparsity RS in [0, 1) */
    ResPropWarmup warmup;  /* parsed from the options at create */
    double warmup_frac;    /* F of fraction:F, 1 otherwise */
    bool batchmean;        /* sample = batchmean (parsed at create) */
    float *block;          /* owned (mem.h): both buffers */
    float *buf[2];         /* (P,Q,K) NHWC each: stored samples, buf[cur] the latest */
    int cur;
    bool valid;            /* buf[cur] holds a stored sample */
    double tau;            /* threshold in force at the next sparse step */
} ResPropState;

/* Checkpoint blob: this header (no padding: 8 x 4 + 8 bytes), then buf[0] and buf[1], each
 * P*Q*K floats, in native byte order. The magic is the variant's. */
#define RESPROP_BLOB_MAGIC 0x50525352u /* "RSRP" */
#define RESPROP_BLOB_VERSION 1u
typedef struct {
    uint32_t magic, version;
    int32_t n, p, q, k;
    int32_t cur, valid;
    double tau;
} ResPropBlobHeader;

void resprop_state_destroy(void *state) {
    ResPropState *s = state;
    if (!s) return;
    mem_free(s->block);
    mem_free(s);
}

int resprop_state_create(void **state, const ResPropVariant *v, const ResPropOptions *o, GradShape shape,
                         double reuse) {
    int rc = 0;
    ResPropState *s = NULL;
    ResPropWarmup mode = RESPROP_WARMUP_NONE;
    double frac = 1.0;
    const char *name = v->name;
    *state = NULL;
    if (shape.n < 1 || shape.p < 1 || shape.q < 1 || shape.k < 1)
        FAIL(ERR_SHAPE, "scheme %s: gradient shape (%d,%d,%d,%d) has an empty dimension", name, shape.n, shape.p,
             shape.q, shape.k);
    if (!(reuse >= 0.0 && reuse < 1.0))
        FAIL(ERR_CONFIG, "scheme %s: reuse sparsity %g: expected a number in [0, 1)", name, reuse);
    TRY(resprop_parse_warmup(o->warmup, &mode, &frac));
    if (strcmp(o->sample, "random") != 0 && strcmp(o->sample, "batchmean") != 0)
        FAIL(ERR_CONFIG, "scheme %s: key 'sample' value '%s': expected one of random|batchmean", name, o->sample);
    if (!(o->margin >= 0.0 && o->margin <= 1.0))
        FAIL(ERR_CONFIG, "scheme %s: key 'margin' value %g: expected a number in [0, 1]", name, o->margin);
    if (!(o->tau_min > 0.0 && o->tau_min <= o->tau_max && isfinite(o->tau_max)))
        FAIL(ERR_CONFIG, "scheme %s: keys 'tau_min' = %g and 'tau_max' = %g: expected 0 < tau_min <= tau_max",
             name, o->tau_min, o->tau_max);
    if (!(o->tau_init >= o->tau_min && o->tau_init <= o->tau_max))
        FAIL(ERR_CONFIG, "scheme %s: key 'tau_init' value %g: expected a number in [tau_min, tau_max] = [%g, %g]",
             name, o->tau_init, o->tau_min, o->tau_max);

    size_t m = grad_sample(shape);
    size_t stride = (m + 15) & ~(size_t)15; /* keeps buf[1] 64-byte aligned */
    s = mem_calloc(1, sizeof *s);
    if (!s) FAIL(ERR_NOMEM, "scheme %s: out of memory for the layer state", name);
    s->block = mem_calloc(2 * stride, sizeof(float));
    if (!s->block) FAIL(ERR_NOMEM, "scheme %s: out of memory for R (2 x %zu floats)", name, m);
    s->v = v;
    s->shape = shape;
    s->reuse = reuse;
    s->warmup = mode;
    s->warmup_frac = frac;
    s->batchmean = strcmp(o->sample, "batchmean") == 0;
    s->buf[0] = s->block;
    s->buf[1] = s->block + stride;
    s->cur = 0;
    s->valid = false;
    s->tau = o->tau_init;
    *state = s;
    return 0;
fail:
    resprop_state_destroy(s);
    return rc;
}

/* dst (P,Q,K) = mean over n of g (N,P,Q,K), accumulated in double, in chunks of R's elements. */
static void resprop_batch_mean(float *restrict dst, const float *restrict g, int n, size_t m) {
    size_t n_chunks = (m + RESPROP_MEAN_CHUNK - 1) / RESPROP_MEAN_CHUNK;
#pragma omp parallel for schedule(static) if ((size_t)n * m >= RESPROP_OMP_MIN)
    for (size_t c = 0; c < n_chunks; c++) {
        double acc[RESPROP_MEAN_CHUNK];
        size_t i0 = c * RESPROP_MEAN_CHUNK;
        size_t len = m - i0 < RESPROP_MEAN_CHUNK ? m - i0 : RESPROP_MEAN_CHUNK;
        for (size_t i = 0; i < len; i++) acc[i] = 0.0;
        for (int j = 0; j < n; j++) {
            const float *gj = g + (size_t)j * m + i0;
#pragma omp simd
            for (size_t i = 0; i < len; i++) acc[i] += (double)gj[i];
        }
        for (size_t i = 0; i < len; i++) dst[i0 + i] = (float)(acc[i] / n);
    }
}

/* 0 when csr can take this layer's S through the slot-writer protocol, else ERR_SHAPE (logged). */
static int resprop_csr_check(const ResPropState *s, const SparseGrad *csr) {
    int rc = 0;
    const GradShape sh = s->shape;
    if (csr->n != sh.n || csr->p != sh.p || csr->q != sh.q || csr->k != sh.k)
        FAIL(ERR_SHAPE, "scheme %s: sparse gradient of shape (%d,%d,%d,%d) for a layer of shape (%d,%d,%d,%d)",
             s->v->name, csr->n, csr->p, csr->q, csr->k, sh.n, sh.p, sh.q, sh.k);
    TRY(sparse_slot_check(csr));
fail:
    return rc;
}

int resprop_stored_sample(Rng rng, int n) { return (int)rng_below(&rng, (uint64_t)n); }

int resprop_state_sparsify(void *state, const void *cfg, const SchemeStep *st, SchemeOut *out) {
    int rc = 0;
    ResPropState *s = state;
    const ResPropOptions *o = cfg;
    ASSERT(s && o && st && out && out->g && out->s);
    const int n = s->shape.n;
    const size_t m = grad_sample(s->shape), total = grad_count(s->shape);
    const float *restrict g = out->g;         /* (N,P,Q,K) */
    const float *restrict r = s->buf[s->cur]; /* (P,Q,K): the previous step's sample */
    out->csr_written = false;
    out->structured = false;

    if (resprop_reuse_allowed(st, s->valid, o->reset_each_epoch)) {
        if (out->csr) TRY(resprop_csr_check(s, out->csr));
        /* steps 1-2: the variant's mask, into out->csr or out->s */
        size_t nnz = s->v->mask(s->shape, g, r, s->tau, out->s, out->csr);
        if (out->csr) {
            out->csr_written = true;
            out->structured = s->v->structured;
        }
        /* step 3: the executor adds R back to every sample */
        out->density = (double)nnz / (double)total;
        out->r = r;
        out->tau = s->tau;
        out->dense = false;
        /* step 4: the controller, once per step after the mask */
        double target = resprop_target_density(s->warmup, s->warmup_frac, st->epoch, st->step, st->total_steps,
                                               s->reuse, o->margin);
        s->tau = resprop_controller(s->tau, out->density, target, o->tau_min, o->tau_max);
    } else {
        /* step 6: no valid R, the dense gradient; the controller does not run */
        memcpy(out->s, g, total * sizeof *out->s);
        out->density = 1.0;
        out->r = NULL;
        out->tau = s->tau;
        out->dense = true;
    }

    /* step 5: store this step's R into the other buffer (out->r keeps pointing at the old one) */
    float *next = s->buf[1 - s->cur];
    if (s->batchmean) {
        resprop_batch_mean(next, g, n, m);
    } else {
        size_t x = (size_t)resprop_stored_sample(st->rng, n);
        memcpy(next, g + x * m, m * sizeof *next);
    }
    s->cur = 1 - s->cur;
    s->valid = true;
fail:
    return rc;
}

/* ---- checkpointing ----------------------------------------------------------------------------- */

size_t resprop_state_bytes(const void *state) {
    const ResPropState *s = state;
    return sizeof(ResPropBlobHeader) + 2 * grad_sample(s->shape) * sizeof(float);
}

void resprop_state_save(const void *state, void *blob) {
    const ResPropState *s = state;
    size_t m = grad_sample(s->shape);
    ResPropBlobHeader h;
    memset(&h, 0, sizeof h);
    h.magic = s->v->blob_magic;
    h.version = RESPROP_BLOB_VERSION;
    h.n = s->shape.n;
    h.p = s->shape.p;
    h.q = s->shape.q;
    h.k = s->shape.k;
    h.cur = s->cur;
    h.valid = s->valid;
    h.tau = s->tau;
    unsigned char *b = blob;
    memcpy(b, &h, sizeof h);
    memcpy(b + sizeof h, s->buf[0], m * sizeof(float));
    memcpy(b + sizeof h + m * sizeof(float), s->buf[1], m * sizeof(float));
}

int resprop_state_load(void *state, const void *blob, size_t bytes) {
    int rc = 0;
    ResPropState *s = state;
    const char *name = s->v->name;
    size_t m = grad_sample(s->shape);
    const unsigned char *b = blob;
    ResPropBlobHeader h;
    if (bytes != resprop_state_bytes(s))
        FAIL(ERR_FORMAT, "scheme %s: layer state blob has %zu bytes, expected %zu", name, bytes,
             resprop_state_bytes(s));
    memcpy(&h, b, sizeof h);
    if (h.magic != s->v->blob_magic || h.version != RESPROP_BLOB_VERSION)
        FAIL(ERR_FORMAT, "scheme %s: layer state blob: bad magic 0x%08x or version %u (expected 0x%08x, %u)", name,
             (unsigned)h.magic, (unsigned)h.version, (unsigned)s->v->blob_magic, RESPROP_BLOB_VERSION);
    if (h.n != s->shape.n || h.p != s->shape.p || h.q != s->shape.q || h.k != s->shape.k)
        FAIL(ERR_FORMAT, "scheme %s: layer state blob is for shape (%d,%d,%d,%d), the layer has (%d,%d,%d,%d)",
             name, (int)h.n, (int)h.p, (int)h.q, (int)h.k, s->shape.n, s->shape.p, s->shape.q, s->shape.k);
    if ((h.cur != 0 && h.cur != 1) || (h.valid != 0 && h.valid != 1) || !isfinite(h.tau) || !(h.tau > 0.0))
        FAIL(ERR_FORMAT, "scheme %s: layer state blob: bad buffer index %d, valid flag %d or tau %g", name,
             (int)h.cur, (int)h.valid, h.tau);
    memcpy(s->buf[0], b + sizeof h, m * sizeof(float));
    memcpy(s->buf[1], b + sizeof h + m * sizeof(float), m * sizeof(float));
    s->cur = h.cur;
    s->valid = h.valid == 1;
    s->tau = h.tau;
fail:
    return rc;
}

/* ---- resprop's mask: elementwise |D| > tau ------------------------------------------------------ */

/* The dense S (N,P,Q,K) of one step. */
static size_t resprop_mask_dense(const float *restrict g, const float *restrict r, float *restrict dst, int n,
                                 size_t m, float tf) {
    size_t nnz = 0, total = (size_t)n * m;
#pragma omp parallel for reduction(+ : nnz) schedule(static) if (total >= RESPROP_OMP_MIN)
    for (int i = 0; i < n; i++) {
        const float *restrict gi = g + (size_t)i * m;
        float *restrict si = dst + (size_t)i * m;
        size_t cnt = 0;
#pragma omp simd reduction(+ : cnt)
        for (size_t j = 0; j < m; j++) {
            float d = gi[j] - r[j];
            int keep = fabsf(d) > tf;
            si[j] = keep ? d : 0.0f;
            cnt += (size_t)keep;
        }
        nnz += cnt;
    }
    return nnz;
}

/* One pixel's K channels: the kept D = g - r (|D| > tf) appended to val/chan in ascending k.
 * Returns how many were kept. */
static inline size_t resprop_mask_row(const float *restrict g, const float *restrict r, int k_count, float tf,
                                      float *restrict val, uint16_t *restrict chan) {
    size_t cnt = 0;
#ifdef __AVX512F__
    const __m512 vt = _mm512_set1_ps(tf);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int k0 = 0;
    /* 32 channels per iteration: both halves' masks and compressions are independent, only their
     * stores wait for the running count */
    for (; k0 + 32 <= k_count; k0 += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(g + k0), _mm512_loadu_ps(r + k0));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(g + k0 + 16), _mm512_loadu_ps(r + k0 + 16));
        __mmask16 m0 = _mm512_cmp_ps_mask(_mm512_abs_ps(d0), vt, _CMP_GT_OQ);
        __mmask16 m1 = _mm512_cmp_ps_mask(_mm512_abs_ps(d1), vt, _CMP_GT_OQ);
        unsigned p0 = (unsigned)__builtin_popcount((unsigned)m0), p1 = (unsigned)__builtin_popcount((unsigned)m1);
        __m512 v0 = _mm512_maskz_compress_ps(m0, d0), v1 = _mm512_maskz_compress_ps(m1, d1);
        __m512i base = _mm512_add_epi32(_mm512_set1_epi32(k0), iota);
        __m256i i0 = _mm512_cvtepi32_epi16(_mm512_maskz_compress_epi32(m0, base));
        __m512i base1 = _mm512_add_epi32(base, _mm512_set1_epi32(16));
        __m256i i1 = _mm512_cvtepi32_epi16(_mm512_maskz_compress_epi32(m1, base1));
        __mmask16 l0 = (__mmask16)((1u << p0) - 1u), l1 = (__mmask16)((1u << p1) - 1u);
        _mm512_mask_storeu_ps(val + cnt, l0, v0);
        _mm256_mask_storeu_epi16(chan + cnt, l0, i0);
        _mm512_mask_storeu_ps(val + cnt + p0, l1, v1);
        _mm256_mask_storeu_epi16(chan + cnt + p0, l1, i1);
        cnt += p0 + p1;
    }
    for (; k0 < k_count; k0 += 16) {
        int left = k_count - k0;
        __mmask16 lm = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(lm, g + k0), _mm512_maskz_loadu_ps(lm, r + k0));
        __mmask16 keep = _mm512_mask_cmp_ps_mask(lm, _mm512_abs_ps(d), vt, _CMP_GT_OQ);
        /* compress in registers, then a masked store: a compressing store straight to memory was
         * several times slower on this machine's Zen 4 cores in a one-off microbenchmark */
        unsigned pc = (unsigned)__builtin_popcount((unsigned)keep);
        __mmask16 lo = (__mmask16)((1u << pc) - 1u);
        _mm512_mask_storeu_ps(val + cnt, lo, _mm512_maskz_compress_ps(keep, d));
        __m512i idx = _mm512_maskz_compress_epi32(keep, _mm512_add_epi32(_mm512_set1_epi32(k0), iota));
        _mm256_mask_storeu_epi16(chan + cnt, lo, _mm512_cvtepi32_epi16(idx));
        cnt += pc;
    }
#else
    for (int k = 0; k < k_count; k++) {
        float d = g[k] - r[k];
        if (fabsf(d) > tf) {
            val[cnt] = d;
            chan[cnt] = (uint16_t)k;
            cnt++;
        }
    }
#endif
    return cnt;
}

/* S into csr through the slot-writer protocol (slots = omp_get_max_threads(), one per thread). */
static size_t resprop_mask_csr(GradShape sh, const float *restrict g, const float *restrict r, float tf,
                               SparseGrad *csr) {
    const int n_slots = omp_get_max_threads();
    const size_t k_count = (size_t)sh.k, pq = (size_t)sh.p * sh.q;
#pragma omp parallel for schedule(static) num_threads(n_slots) if (grad_count(sh) >= RESPROP_OMP_MIN)
    for (int t = 0; t < n_slots; t++) {
        size_t lo, hi;
        sparse_slot_rows(csr, t, n_slots, &lo, &hi);
        size_t pos = lo * k_count, j = 0; /* j: the pixel within the sample, R's row (slots start at a sample) */
        for (size_t i = lo; i < hi; i++, j = j + 1 == pq ? 0 : j + 1) {
            pos += resprop_mask_row(g + i * k_count, r + j * k_count, sh.k, tf, csr->val + pos, csr->chan + pos);
            csr->row_ptr[i + 1] = (int32_t)pos;
        }
    }
    sparse_slot_finish(csr, n_slots);
    return csr->nnz;
}

static size_t resprop_mask(GradShape sh, const float *g, const float *r, double tau, float *s, SparseGrad *csr) {
    const float tf = resprop_tau_float(tau);
    if (csr) return resprop_mask_csr(sh, g, r, tf, csr);
    return resprop_mask_dense(g, r, s, sh.n, grad_sample(sh), tf);
}

static const ResPropVariant resprop_variant = {
    .name = "resprop",
    .blob_magic = RESPROP_BLOB_MAGIC,
    .mask = resprop_mask,
    .structured = false,
};

static int resprop_layer_create(void **state, const void *cfg, GradShape shape, double reuse) {
    return resprop_state_create(state, &resprop_variant, cfg, shape, reuse);
}

const Scheme scheme_resprop = {
    .name = "resprop",
    .summary = "ReSprop: reuse one stored sample's gradient, propagate |G - R| > tau (controller to a target density)",
    .options = &resprop_options_table,
    .cfg_size = sizeof(ResPropOptions),
    .layer_create = resprop_layer_create,
    .layer_destroy = resprop_state_destroy,
    .sparsify = resprop_state_sparsify,
    .state_bytes = resprop_state_bytes,
    .state_save = resprop_state_save,
    .state_load = resprop_state_load,
    .wants_fc = resprop_applies_to_fc,
};
