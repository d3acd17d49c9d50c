/* loader.c: augmentation and the prefetching batch loader.
 *
 * One worker thread (pthreads, not OpenMP: it is one thread on top of the training step's OpenMP
 * team) fills a ring of LOADER_SLOTS batch buffers allocated in loader_create; loader_next copies
 * the oldest ready slot out. Nothing is allocated after loader_create.
 *
 * Synchronisation (all shared fields below `mu` are guarded by it):
 *   - the worker waits on `can_fill` until an epoch is active, batches of it remain to be made and a
 *     slot is free; it claims slot (head + n_ready) % LOADER_SLOTS and batch `n_made`, unlocks, fills
 *     the slot, relocks and publishes it (n_ready++, signal `can_take`);
 *   - loader_next waits on `can_take` until n_ready > 0, copies slot `head` out without the lock (a
 *     ready slot is never written by the worker), relocks, frees it (signal `can_fill`);
 *   - loader_start_epoch bumps `gen` and resets the ring. A fill in flight belongs to the old
 *     generation: the worker notices (it polls the atomic copy of gen between samples), drops the
 *     slot without publishing it and starts the new epoch. Only the worker ever writes slots, so the
 *     dropped fill cannot collide with the new epoch's slots.
 * Every batch is a pure function of (seed, epoch, batch index), so thread timing never shows.
 *
 * Random streams (keys of rng_split on base = rng_init(seed ^ LOADER_SEED_MIX)):
 *   order of epoch e:                      LOADER_KEY_ORDER | e
 *   augmentation of position p in epoch e: (e << 32) + p + 1
 * The order keys carry the top bit so they can never equal an augmentation key (with plain key e,
 * epoch e's order would share its stream with position e - 1 of epoch 0). */
#include "datasets/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timer.h"

#define LOADER_SLOTS 3 /* batches prepared ahead: one being copied out, two in reserve */
#define LOADER_MAX_C 4
#define LOADER_SEED_MIX 0x6c6f616465722e31ULL /* "loader.1" */
#define LOADER_KEY_ORDER (1ULL << 63)

/* A pthread call that can only fail on a broken invariant (lock/unlock/wait/signal on objects that
 * were initialised): log file:line, the call and its error, and abort, in release builds too. */
#define LOADER_PT(call)                                                                            \
    do {                                                                                           \
        int pt_rc_ = (call);                                                                       \
        if (pt_rc_ != 0) loader_pt_abort(__FILE__, __LINE__, #call, pt_rc_);                       \
    } while (0)

/* A pthread call in loader_create: log it and fail with `code`. */
#define LOADER_PT_TRY(code, call)                                                                  \
    do {                                                                                           \
        int pt_rc_ = (call);                                                                       \
        if (pt_rc_ != 0) {                                                                         \
            char pt_msg_[128];                                                                     \
            loader_errno_str(pt_rc_, pt_msg_, sizeof pt_msg_);                                     \
            err_report(__FILE__, __LINE__, #call, pt_msg_);                                        \
            rc = (code);                                                                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

struct Loader {
    /* set by loader_create, read-only afterwards */
    const Dataset *d;  /* borrowed */
    int batch;
    bool train;
    Augment aug;
    Rng base;
    long n_batches;
    size_t sample_floats; /* h*w*c */
    float *x[LOADER_SLOTS];   /* each (batch,h,w,c) NHWC, owned */
    int32_t *y[LOADER_SLOTS]; /* each (batch), owned */

    /* worker-only */
    int32_t *order;  /* (n) permutation of the training epoch `order_epoch`, owned; NULL for eval */
    int order_epoch; /* -1: none yet */

    /* consumer-only (loader_next, loader_start_epoch, loader_wait_ms run on one thread) */
    long n_taken;    /* batches of the current epoch handed out */
    bool started;
    double wait_ms;

    /* shared, guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t can_fill; /* worker waits: a slot freed, an epoch started, or stop */
    pthread_cond_t can_take; /* consumer waits: a slot became ready */
    _Atomic unsigned gen;    /* epoch generation; written under mu, polled by the filling worker */
    _Atomic bool stop;       /* written under mu, polled by the filling worker */
    bool active;             /* an epoch has been started */
    int epoch;
    long n_made;             /* batches of the current epoch claimed by the worker */
    int head, n_ready;       /* ready slots are head, head+1, ... (mod LOADER_SLOTS) */
    int n_valid[LOADER_SLOTS];

    /* what loader_destroy must undo */
    bool has_mu, has_can_fill, has_can_take, has_thread;
    pthread_t thread;
};

static void loader_errno_str(int e, char *buf, size_t bytes) {
    snprintf(buf, bytes, "%s (errno %d)", strerror(e), e);
}

static void loader_pt_abort(const char *file, int line, const char *call, int e) {
    char msg[128];
    loader_errno_str(e, msg, sizeof msg);
    err_report(file, line, call, msg);
    err_assert_fail(file, line, call);
}

/* ---- augmentation ---- */

/* Random-resized crop, torchvision's RandomResizedCrop defaults. */
#define AUG_RRC_ATTEMPTS 10
#define AUG_RRC_SCALE_MIN 0.08
#define AUG_RRC_SCALE_MAX 1.0
#define AUG_RRC_RATIO_MIN (3.0 / 4.0)
#define AUG_RRC_RATIO_MAX (4.0 / 3.0)

/* Python's round() of a non-negative value that fits an int: half to even (nearbyint in the default
 * rounding mode, which nothing in this program changes). */
static int aug_round(double v) { return (int)nearbyint(v); }

static int aug_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void augment_rrc_window(int h, int w, Rng *rng, int *y0, int *x0, int *wh, int *ww) {
    ASSERT(h >= 1 && w >= 1 && rng != NULL);
    double area = (double)h * w;
    double log_lo = log(AUG_RRC_RATIO_MIN), log_hi = log(AUG_RRC_RATIO_MAX);
    /* Draw order (part of the reproducibility contract): per attempt the area fraction, then the
     * log-aspect; on the first fit the row offset, then the column offset. */
    for (int t = 0; t < AUG_RRC_ATTEMPTS; t++) {
        double target = area * (AUG_RRC_SCALE_MIN + (AUG_RRC_SCALE_MAX - AUG_RRC_SCALE_MIN) * rng_uniform(rng));
        double ratio = exp(log_lo + (log_hi - log_lo) * rng_uniform(rng));
        int iw = aug_round(sqrt(target * ratio)), ih = aug_round(sqrt(target / ratio));
        if (iw < 1 || iw > w || ih < 1 || ih > h) continue;
        *wh = ih;
        *ww = iw;
        *y0 = (int)rng_below(rng, (uint64_t)(h - ih + 1));
        *x0 = (int)rng_below(rng, (uint64_t)(w - iw + 1));
        return;
    }
    /* torchvision's fallback: the centred window of the whole image, aspect clamped. */
    double in_ratio = (double)w / h;
    int iw = w, ih = h;
    if (in_ratio < AUG_RRC_RATIO_MIN) ih = aug_clampi(aug_round(w / AUG_RRC_RATIO_MIN), 1, h);
    else if (in_ratio > AUG_RRC_RATIO_MAX) iw = aug_clampi(aug_round(h * AUG_RRC_RATIO_MAX), 1, w);
    *wh = ih;
    *ww = iw;
    *y0 = (h - ih) / 2;
    *x0 = (w - iw) / 2;
}

/* The rrc branch of augment_sample (rng != NULL): the window of src resized to h x w by bilinear
 * sampling, flipped, normalised; works straight from src, allocates nothing. Each output value is
 * t + fy * (b - t) with t, b the horizontal lerps a + fx * (b - a): a uniform region stays exact
 * and a monotone row stays monotone. */
static void augment_rrc(const Augment *a, const uint8_t *src, int h, int w, int c, float *dst, Rng *rng) {
    int y0, x0, wh, ww;
    augment_rrc_window(h, w, rng, &y0, &x0, &wh, &ww);
    bool flip = a->flip ? rng_below(rng, 2) == 1 : false;

    /* (v/255 - mean) / std as v * scale - shift, in double */
    double scale[LOADER_MAX_C], shift[LOADER_MAX_C];
    for (int ch = 0; ch < c; ch++) {
        scale[ch] = 1.0 / (255.0 * a->std[ch]);
        shift[ch] = a->mean[ch] / a->std[ch];
    }
    double ry = (double)wh / h, rx = (double)ww / w; /* window pixels per output pixel */
    for (int y = 0; y < h; y++) {
        double sy = (y + 0.5) * ry - 0.5; /* half-pixel centres, in window coordinates */
        if (sy < 0) sy = 0;
        if (sy > wh - 1) sy = wh - 1;
        int iy = (int)sy, iy1 = iy + 1 < wh ? iy + 1 : iy;
        float fy = (float)(sy - iy);
        const uint8_t *r0 = src + ((size_t)(y0 + iy) * w + x0) * c;  /* window row iy, (ww,c) */
        const uint8_t *r1 = src + ((size_t)(y0 + iy1) * w + x0) * c; /* window row iy1 */
        float *out = dst + (size_t)y * w * c;
        for (int x = 0; x < w; x++) {
            double sx = (x + 0.5) * rx - 0.5;
            if (sx < 0) sx = 0;
            if (sx > ww - 1) sx = ww - 1;
            int ix = (int)sx, ix1 = ix + 1 < ww ? ix + 1 : ix;
            float fx = (float)(sx - ix);
            const uint8_t *p00 = r0 + (size_t)ix * c, *p01 = r0 + (size_t)ix1 * c;
            const uint8_t *p10 = r1 + (size_t)ix * c, *p11 = r1 + (size_t)ix1 * c;
            float *o = out + (size_t)(flip ? w - 1 - x : x) * c;
            for (int ch = 0; ch < c; ch++) {
                float top = (float)p00[ch] + fx * (float)(p01[ch] - p00[ch]);
                float bot = (float)p10[ch] + fx * (float)(p11[ch] - p10[ch]);
                float v = top + fy * (bot - top);
                o[ch] = (float)(v * scale[ch] - shift[ch]);
            }
        }
    }
}

void augment_sample(const Augment *a, const uint8_t *src, int h, int w, int c, float *dst, Rng *rng) {
    ASSERT(c >= 1 && c <= LOADER_MAX_C && h >= 1 && w >= 1);
    if (rng && a->rrc) {
        augment_rrc(a, src, h, w, c, dst, rng);
        return;
    }
    /* The normalised value of every byte, per channel: the per-pixel work becomes a lookup. */
    float lut[LOADER_MAX_C][256];
    for (int ch = 0; ch < c; ch++)
        for (int v = 0; v < 256; v++) lut[ch][v] = (float)((v / 255.0 - a->mean[ch]) / a->std[ch]);

    /* Draw order (part of the reproducibility contract): row offset, column offset, flip. */
    int pad = rng && a->pad > 0 ? a->pad : 0;
    int oy = pad ? (int)rng_below(rng, (uint64_t)(2 * pad + 1)) : 0;
    int ox = pad ? (int)rng_below(rng, (uint64_t)(2 * pad + 1)) : 0;
    bool flip = rng && a->flip ? rng_below(rng, 2) == 1 : false;

    /* Output (y, x) reads the padded image at (y + oy, x' + ox), x' = flip ? w-1-x : x; the padded
     * image at (py, px) is src (py - pad, px - pad), or 0 outside src. */
    for (int y = 0; y < h; y++) {
        int sy = y + oy - pad;
        float *out = dst + (size_t)y * w * c;
        if (sy < 0 || sy >= h) {
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) out[(size_t)x * c + ch] = lut[ch][0];
            continue;
        }
        const uint8_t *row = src + (size_t)sy * w * c;
        if (!pad && !flip) {
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) out[(size_t)x * c + ch] = lut[ch][row[(size_t)x * c + ch]];
            continue;
        }
        for (int x = 0; x < w; x++) {
            int sx = (flip ? w - 1 - x : x) + ox - pad;
            bool inside = sx >= 0 && sx < w;
            for (int ch = 0; ch < c; ch++)
                out[(size_t)x * c + ch] = lut[ch][inside ? row[(size_t)sx * c + ch] : 0];
        }
    }
}

/* ---- the worker ---- */

/* Fisher-Yates over 0..n-1 from the epoch's own stream. */
static void loader_make_order(Loader *l, int epoch) {
    int n = l->d->n;
    Rng r = rng_split(&l->base, LOADER_KEY_ORDER | (uint64_t)epoch);
    for (int i = 0; i < n; i++) l->order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int32_t t = l->order[i];
        l->order[i] = l->order[j];
        l->order[j] = t;
    }
    l->order_epoch = epoch;
}

/* Fills slot `slot` with batch b of epoch `epoch`; returns the number of real samples, or -1 when
 * the fill was abandoned because generation `gen` is over (a new epoch, or stop). */
static int loader_fill(Loader *l, int slot, int epoch, long b, unsigned gen) {
    const Dataset *d = l->d;
    size_t sf = l->sample_floats;
    float *x = l->x[slot];
    int32_t *y = l->y[slot];
    long first = b * l->batch;
    int n_valid = l->batch;
    if (!l->train && first + l->batch > d->n) n_valid = (int)(d->n - first);

    if (l->train && l->order_epoch != epoch) loader_make_order(l, epoch);
    for (int i = 0; i < n_valid; i++) {
        if (atomic_load_explicit(&l->gen, memory_order_relaxed) != gen ||
            atomic_load_explicit(&l->stop, memory_order_relaxed))
            return -1;
        long pos = first + i;
        int s = l->train ? l->order[pos] : (int)pos;
        const uint8_t *src = d->images + (size_t)s * sf;
        if (l->train) {
            Rng r = rng_split(&l->base, ((uint64_t)epoch << 32) + (uint64_t)pos + 1);
            augment_sample(&l->aug, src, d->h, d->w, d->c, x + (size_t)i * sf, &r);
        } else {
            augment_sample(&l->aug, src, d->h, d->w, d->c, x + (size_t)i * sf, NULL);
        }
        y[i] = d->labels[s];
    }
    /* Evaluation padding: repeat the batch's first image. */
    for (int i = n_valid; i < l->batch; i++) {
        memcpy(x + (size_t)i * sf, x, sf * sizeof *x);
        y[i] = y[0];
    }
    return n_valid;
}

static void *loader_worker(void *arg) {
    Loader *l = arg;
    LOADER_PT(pthread_mutex_lock(&l->mu));
    for (;;) {
        while (!l->stop && !(l->active && l->n_made < l->n_batches && l->n_ready < LOADER_SLOTS))
            LOADER_PT(pthread_cond_wait(&l->can_fill, &l->mu));
        if (l->stop) break;
        unsigned gen = l->gen;
        int epoch = l->epoch;
        long b = l->n_made++;
        int slot = (l->head + l->n_ready) % LOADER_SLOTS;
        LOADER_PT(pthread_mutex_unlock(&l->mu));

        int n_valid = loader_fill(l, slot, epoch, b, gen);

        LOADER_PT(pthread_mutex_lock(&l->mu));
        if (n_valid >= 0 && gen == l->gen && !l->stop) {
            l->n_valid[slot] = n_valid;
            l->n_ready++;
            LOADER_PT(pthread_cond_signal(&l->can_take));
        } /* else: the epoch was restarted (or the loader is stopping); the slot is simply dropped */
    }
    LOADER_PT(pthread_mutex_unlock(&l->mu));
    return NULL;
}

/* ---- the handle ---- */

int loader_create(Loader **out, const Dataset *d, int batch, bool train, const Augment *aug, uint64_t seed) {
    int rc = 0;
    Loader *l = NULL;
    *out = NULL;
    if (!d || !d->images || !d->labels || d->n <= 0 || d->h <= 0 || d->w <= 0)
        FAIL(ERR_CONFIG, "loader: empty or invalid dataset");
    if (d->c < 1 || d->c > LOADER_MAX_C)
        FAIL(ERR_CONFIG, "loader: %d channels, expected 1..%d", d->c, LOADER_MAX_C);
    if (batch <= 0) FAIL(ERR_CONFIG, "loader: batch size %d, expected > 0", batch);
    if (train && d->n < batch)
        FAIL(ERR_CONFIG, "loader: training set '%s' has %d images, fewer than one batch of %d", d->source,
             d->n, batch);
    if (aug) {
        if (aug->pad < 0 || aug->pad > d->h || aug->pad > d->w)
            FAIL(ERR_CONFIG, "loader: crop padding %d, expected 0..%d", aug->pad, d->h < d->w ? d->h : d->w);
        for (int ch = 0; ch < d->c; ch++)
            if (!isfinite(aug->mean[ch]) || !isfinite(aug->std[ch]) || !(aug->std[ch] > 0))
                FAIL(ERR_CONFIG, "loader: channel %d normalisation mean %g std %g, expected finite mean, std > 0",
                     ch, aug->mean[ch], aug->std[ch]);
    }

    l = mem_calloc(1, sizeof *l);
    if (!l) FAIL(ERR_NOMEM, "loader: out of memory");
    l->d = d;
    l->batch = batch;
    l->train = train;
    if (aug) {
        l->aug = *aug;
    } else {
        for (int ch = 0; ch < LOADER_MAX_C; ch++) l->aug.std[ch] = 1.0;
    }
    rng_init(&l->base, seed ^ LOADER_SEED_MIX);
    l->n_batches = train ? d->n / batch : (d->n + batch - 1) / batch;
    l->sample_floats = (size_t)d->h * d->w * d->c;
    l->order_epoch = -1;
    l->epoch = -1;

    size_t batch_floats = (size_t)batch * l->sample_floats;
    if (batch_floats / (size_t)batch != l->sample_floats || batch_floats > ((size_t)-1) / sizeof(float))
        FAIL(ERR_CONFIG, "loader: batch %d of %zu floats per image overflows", batch, l->sample_floats);
    for (int s = 0; s < LOADER_SLOTS; s++) {
        l->x[s] = mem_alloc(batch_floats * sizeof(float));
        l->y[s] = mem_alloc((size_t)batch * sizeof(int32_t));
        if (!l->x[s] || !l->y[s])
            FAIL(ERR_NOMEM, "loader: out of memory for %d batch buffers of %zu bytes", LOADER_SLOTS,
                 batch_floats * sizeof(float));
    }
    if (train) {
        l->order = mem_alloc((size_t)d->n * sizeof *l->order);
        if (!l->order) FAIL(ERR_NOMEM, "loader: out of memory for the order of %d images", d->n);
    }

    LOADER_PT_TRY(ERR_NOMEM, pthread_mutex_init(&l->mu, NULL));
    l->has_mu = true;
    LOADER_PT_TRY(ERR_NOMEM, pthread_cond_init(&l->can_fill, NULL));
    l->has_can_fill = true;
    LOADER_PT_TRY(ERR_NOMEM, pthread_cond_init(&l->can_take, NULL));
    l->has_can_take = true;
    LOADER_PT_TRY(ERR_NOMEM, pthread_create(&l->thread, NULL, loader_worker, l));
    l->has_thread = true;

    *out = l;
    return 0;
fail:
    loader_destroy(l);
    return rc;
}

void loader_destroy(Loader *l) {
    if (!l) return;
    if (l->has_thread) {
        LOADER_PT(pthread_mutex_lock(&l->mu));
        l->stop = true;
        LOADER_PT(pthread_cond_broadcast(&l->can_fill));
        LOADER_PT(pthread_mutex_unlock(&l->mu));
        LOADER_PT(pthread_join(l->thread, NULL));
    }
    if (l->has_can_take) LOADER_PT(pthread_cond_destroy(&l->can_take));
    if (l->has_can_fill) LOADER_PT(pthread_cond_destroy(&l->can_fill));
    if (l->has_mu) LOADER_PT(pthread_mutex_destroy(&l->mu));
    mem_free(l->order);
    for (int s = LOADER_SLOTS - 1; s >= 0; s--) {
        mem_free(l->y[s]);
        mem_free(l->x[s]);
    }
    mem_free(l);
}

long loader_batches(const Loader *l) { return l->n_batches; }

int loader_start_epoch(Loader *l, int epoch) {
    int rc = 0;
    if (epoch < 0) FAIL(ERR_CONFIG, "loader: epoch %d, expected >= 0", epoch);
    LOADER_PT(pthread_mutex_lock(&l->mu));
    l->gen++; /* abandons a fill in flight; drops the ready slots of the previous epoch */
    l->active = true;
    l->epoch = epoch;
    l->n_made = 0;
    l->head = 0;
    l->n_ready = 0;
    LOADER_PT(pthread_cond_signal(&l->can_fill));
    LOADER_PT(pthread_mutex_unlock(&l->mu));
    l->started = true;
    l->n_taken = 0;
fail:
    return rc;
}

int loader_next(Loader *l, float *x, int32_t *y, int *n_valid) {
    int rc = 0;
    *n_valid = 0;
    if (!l->started) FAIL(ERR_CONFIG, "loader: loader_next before loader_start_epoch");
    if (l->n_taken >= l->n_batches) return 0;

    LOADER_PT(pthread_mutex_lock(&l->mu));
    if (l->n_ready == 0) {
        double t0 = timer_now_ms();
        while (l->n_ready == 0) LOADER_PT(pthread_cond_wait(&l->can_take, &l->mu));
        l->wait_ms += timer_now_ms() - t0;
    }
    int slot = l->head;
    int nv = l->n_valid[slot];
    LOADER_PT(pthread_mutex_unlock(&l->mu));

    /* A ready slot stays counted in n_ready, so the worker leaves it alone while it is copied. */
    memcpy(x, l->x[slot], (size_t)l->batch * l->sample_floats * sizeof *x);
    memcpy(y, l->y[slot], (size_t)l->batch * sizeof *y);

    LOADER_PT(pthread_mutex_lock(&l->mu));
    l->head = (l->head + 1) % LOADER_SLOTS;
    l->n_ready--;
    LOADER_PT(pthread_cond_signal(&l->can_fill));
    LOADER_PT(pthread_mutex_unlock(&l->mu));
    l->n_taken++;
    *n_valid = nv;
fail:
    return rc;
}

double loader_wait_ms(const Loader *l) { return l->wait_ms; }
