/* test_loader.c: augment_sample against an independent reference (explicit zero-padded image, crop,
 * flip) and the prefetching Loader: coverage and drop-last per epoch, image/label pairing, shuffling,
 * determinism across loaders and consumer timing, resume at epoch e, in-order padded evaluation,
 * restarting and destroying mid-epoch, no allocation per batch, no leaks, bad configurations; the
 * random-resized crop (constant colour kept, monotone gradients, window bounds and torchvision's
 * fallback, a double-precision bilinear reference, determinism).
 * Datasets are built by hand: image i has distinct non-zero pixels and label i (classes = n), so a
 * label names its sample and a zero-padded border is told apart from image content. */
#include "tests/testutil.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/rng.h"
#include "datasets/dataset.h"
#include "datasets/loader.h"

#define TEST_TIMEOUT_S 60 /* a hung worker kills the binary (SIGALRM) instead of hanging CI */
#define MAX_PAD 2
#define MAX_VARIANTS ((2 * MAX_PAD + 1) * (2 * MAX_PAD + 1) * 2)
#define MAX_SIDE 8
#define MAX_C 3
#define MAX_SAMPLE (MAX_SIDE * MAX_SIDE * MAX_C)

/* ---- fixtures and helpers ---- */

static int fx_setup(void **state) {
    alarm(TEST_TIMEOUT_S);
    return 0;
}

static int fx_teardown(void **state) {
    alarm(0);
    return 0;
}

/* Pixel (y, x, ch) of image i: non-zero, and distinct within an image of up to 8x8x3. */
static uint8_t tpix(int i, int y, int x, int ch) { return (uint8_t)(1 + ((y * MAX_SIDE + x) * MAX_C + ch + i * 13) % 255); }

/* A hand-built dataset of n images (h,w,c), labels 0..n-1. Free with ds_free. */
static void ds_make(Dataset *d, int n, int h, int w, int c) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->h = h;
    d->w = w;
    d->c = c;
    d->classes = n;
    snprintf(d->source, sizeof d->source, "test(%d,%d,%d,%d)", n, h, w, c);
    d->images = mem_alloc((size_t)n * h * w * c);
    d->labels = mem_alloc((size_t)n * sizeof *d->labels);
    assert_non_null(d->images);
    assert_non_null(d->labels);
    for (int i = 0; i < n; i++) {
        d->labels[i] = i;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) d->images[(((size_t)i * h + y) * w + x) * c + ch] = tpix(i, y, x, ch);
    }
}

static void ds_free(Dataset *d) {
    mem_free(d->images);
    mem_free(d->labels);
    memset(d, 0, sizeof *d);
}

static Augment aug_make(int pad, bool flip) {
    Augment a = {.pad = pad, .flip = flip};
    for (int ch = 0; ch < 4; ch++) {
        a.mean[ch] = 0.1 * (ch + 1);
        a.std[ch] = 0.2 + 0.05 * ch;
    }
    return a;
}

static double norm_ref(const Augment *a, int v, int ch) { return (v / 255.0 - a->mean[ch]) / a->std[ch]; }

/* Reference crop+flip, written independently of loader.c: build the zero-padded image explicitly,
 * cut the h x w window at (oy, ox), mirror it when flip, normalise. */
static void ref_variant(const Augment *a, const uint8_t *src, int h, int w, int c, int pad, int oy, int ox,
                        bool flip, float *dst) {
    int ph = h + 2 * pad, pw = w + 2 * pad;
    uint8_t padded[(MAX_SIDE + 2 * MAX_PAD) * (MAX_SIDE + 2 * MAX_PAD) * MAX_C];
    memset(padded, 0, sizeof padded);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++)
                padded[((y + pad) * pw + x + pad) * c + ch] = src[(y * w + x) * c + ch];
    (void)ph;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int cx = flip ? w - 1 - x : x;
            for (int ch = 0; ch < c; ch++)
                dst[(y * w + x) * c + ch] = (float)norm_ref(a, padded[((y + oy) * pw + cx + ox) * c + ch], ch);
        }
}

/* Index of the variant (oy, ox, flip) of src whose reference equals out exactly, or -1; the index
 * is (oy * (2*pad+1) + ox) * 2 + flip. Fails the test if more than one matches. */
static int find_variant(const Augment *a, const uint8_t *src, int h, int w, int c, int pad, bool can_flip,
                        const float *out) {
    float ref[MAX_SAMPLE];
    int found = -1, side = 2 * pad + 1;
    for (int oy = 0; oy < side; oy++)
        for (int ox = 0; ox < side; ox++)
            for (int f = 0; f <= (can_flip ? 1 : 0); f++) {
                ref_variant(a, src, h, w, c, pad, oy, ox, f, ref);
                if (memcmp(ref, out, (size_t)h * w * c * sizeof *out) == 0) {
                    assert_int_equal(found, -1);
                    found = (oy * side + ox) * 2 + f;
                }
            }
    return found;
}

static const uint8_t *ds_image(const Dataset *d, int i) { return d->images + (size_t)i * d->h * d->w * d->c; }
static size_t ds_sample(const Dataset *d) { return (size_t)d->h * d->w * d->c; }

/* Every batch of one epoch, concatenated: x (n_batches*batch*sample floats), y, n_valid per batch. */
typedef struct {
    float *x;
    int32_t *y;
    int *n_valid;
    long n_batches;
    int batch;
    size_t sample;
} Epoch;

static void epoch_alloc(Epoch *e, const Loader *l, const Dataset *d, int batch) {
    e->n_batches = loader_batches(l);
    e->batch = batch;
    e->sample = ds_sample(d);
    e->x = mem_alloc((size_t)e->n_batches * batch * e->sample * sizeof *e->x);
    e->y = mem_alloc((size_t)e->n_batches * batch * sizeof *e->y);
    e->n_valid = mem_alloc((size_t)e->n_batches * sizeof *e->n_valid);
    assert_true(e->x && e->y && e->n_valid);
}

static void epoch_free(Epoch *e) {
    mem_free(e->x);
    mem_free(e->y);
    mem_free(e->n_valid);
    memset(e, 0, sizeof *e);
}

/* Sleeps 0..max_us microseconds drawn from r (max_us 0: no sleep). */
static void jitter(Rng *r, int max_us) {
    if (max_us <= 0) return;
    long us = (long)rng_below(r, (uint64_t)max_us + 1);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
    nanosleep(&ts, NULL);
}

/* Reads the rest of the current epoch into e starting at batch `from`; then checks that the epoch
 * is over (n_valid 0, twice). With max_us > 0 the consumer sleeps randomly between calls. */
static void epoch_read_from(Epoch *e, Loader *l, long from, int max_us, uint64_t jitter_seed) {
    Rng r;
    rng_init(&r, jitter_seed);
    for (long b = from; b < e->n_batches; b++) {
        jitter(&r, max_us);
        int nv = -1;
        assert_int_equal(loader_next(l, e->x + (size_t)b * e->batch * e->sample, e->y + (size_t)b * e->batch, &nv), 0);
        assert_true(nv > 0 && nv <= e->batch);
        e->n_valid[b] = nv;
    }
    float *xs = mem_alloc((size_t)e->batch * e->sample * sizeof *xs);
    int32_t *ys = mem_alloc((size_t)e->batch * sizeof *ys);
    assert_true(xs && ys);
    for (int k = 0; k < 2; k++) {
        int nv = -1;
        assert_int_equal(loader_next(l, xs, ys, &nv), 0);
        assert_int_equal(nv, 0);
    }
    mem_free(xs);
    mem_free(ys);
}

static void epoch_read(Epoch *e, Loader *l, int epoch, int max_us, uint64_t jitter_seed) {
    assert_int_equal(loader_start_epoch(l, epoch), 0);
    epoch_read_from(e, l, 0, max_us, jitter_seed);
}

static bool epoch_equal(const Epoch *a, const Epoch *b) {
    return a->n_batches == b->n_batches &&
           memcmp(a->x, b->x, (size_t)a->n_batches * a->batch * a->sample * sizeof *a->x) == 0 &&
           memcmp(a->y, b->y, (size_t)a->n_batches * a->batch * sizeof *a->y) == 0 &&
           memcmp(a->n_valid, b->n_valid, (size_t)a->n_batches * sizeof *a->n_valid) == 0;
}

/* ---- augment_sample ---- */

/* rng NULL: exact normalisation, hand-computed for a 4x4x3 image. */
static void test_augment_normalise(void **state) {
    enum { H = 4, W = 4, C = 3 };
    Augment a = {.pad = 2, .flip = true, .mean = {0.5, 0.0, 0.2}, .std = {0.25, 1.0, 0.5}};
    uint8_t src[H * W * C];
    for (int i = 0; i < H * W * C; i++) src[i] = (uint8_t)(i * 5);
    src[0] = 255; /* channel 0: (1 - 0.5) / 0.25 = 2 */
    src[1] = 51;  /* channel 1: 51/255 = 0.2 */
    src[2] = 0;   /* channel 2: (0 - 0.2) / 0.5 = -0.4 */
    src[3] = 0;   /* channel 0: -2 */
    src[4] = 255; /* channel 1: 1 */
    src[5] = 102; /* channel 2: (0.4 - 0.2) / 0.5 = 0.4 */
    float out[H * W * C];
    augment_sample(&a, src, H, W, C, out, NULL);
    assert_float_equal(out[0], 2.0f, 1e-6);
    assert_float_equal(out[1], 0.2f, 1e-6);
    assert_float_equal(out[2], -0.4f, 1e-6);
    assert_float_equal(out[3], -2.0f, 1e-6);
    assert_float_equal(out[4], 1.0f, 1e-6);
    assert_float_equal(out[5], 0.4f, 1e-6);
    for (int i = 0; i < H * W * C; i++) {
        double want = (src[i] / 255.0 - a.mean[i % C]) / a.std[i % C];
        if (fabs(out[i] - want) > 1e-6 * (1 + fabs(want)))
            fail_msg("pixel %d: got %.9g, want %.9g", i, out[i], want);
    }
}

/* One hand-written variant: pad 1, window at (0, 0), no flip, on a 4x4x1 image with pixels 1..16,
 * mean 0 std 1/255 (so outputs are the raw bytes): the top row and left column are padding. */
static void test_augment_hand_variant(void **state) {
    Augment a = {.pad = 1, .flip = true, .mean = {0}, .std = {1.0 / 255.0}};
    uint8_t src[16];
    for (int i = 0; i < 16; i++) src[i] = (uint8_t)(i + 1);
    const float want[16] = {0, 0, 0, 0, /**/ 0, 1, 2, 3, /**/ 0, 5, 6, 7, /**/ 0, 9, 10, 11};
    const float want_flip[16] = {0, 0, 0, 0, /**/ 3, 2, 1, 0, /**/ 7, 6, 5, 0, /**/ 11, 10, 9, 0};
    float ref[16];
    ref_variant(&a, src, 4, 4, 1, 1, 0, 0, false, ref);
    for (int i = 0; i < 16; i++) assert_float_equal(ref[i], want[i], 1e-4);
    ref_variant(&a, src, 4, 4, 1, 1, 0, 0, true, ref);
    for (int i = 0; i < 16; i++) assert_float_equal(ref[i], want_flip[i], 1e-4);
    /* augment_sample produces both of them for some draws */
    bool seen = false, seen_flip = false;
    Rng r;
    rng_init(&r, 7);
    for (int k = 0; k < 2000 && !(seen && seen_flip); k++) {
        float out[16];
        augment_sample(&a, src, 4, 4, 1, out, &r);
        bool eq = true, eq_flip = true;
        for (int i = 0; i < 16; i++) {
            eq = eq && fabsf(out[i] - want[i]) < 1e-4f;
            eq_flip = eq_flip && fabsf(out[i] - want_flip[i]) < 1e-4f;
        }
        seen = seen || eq;
        seen_flip = seen_flip || eq_flip;
    }
    assert_true(seen);
    assert_true(seen_flip);
}

/* Every output is exactly one crop+flip of the padded image; over many draws all (2p+1)^2 * 2
 * variants appear, roughly uniformly. */
static void check_variants(int h, int w, int c, int pad, bool flip, int draws) {
    Augment a = aug_make(pad, flip);
    uint8_t src[MAX_SAMPLE];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) src[(y * w + x) * c + ch] = tpix(3, y, x, ch);
    int side = 2 * pad + 1, n_variants = side * side * (flip ? 2 : 1);
    int count[MAX_VARIANTS] = {0};
    Rng r;
    rng_init(&r, 1234 + (uint64_t)pad);
    for (int k = 0; k < draws; k++) {
        float out[MAX_SAMPLE];
        augment_sample(&a, src, h, w, c, out, &r);
        int v = find_variant(&a, src, h, w, c, pad, flip, out);
        if (v < 0) fail_msg("draw %d (pad %d, flip %d): output is no crop/flip of the padded image", k, pad, flip);
        count[v]++;
    }
    double expect = (double)draws / n_variants;
    int seen = 0;
    for (int v = 0; v < MAX_VARIANTS; v++) {
        if (!count[v]) continue;
        seen++;
        if (count[v] < 0.5 * expect || count[v] > 1.5 * expect)
            fail_msg("variant %d drawn %d times, expected about %.0f", v, count[v], expect);
    }
    assert_int_equal(seen, n_variants);
}

static void test_augment_variants(void **state) {
    check_variants(4, 4, 1, 1, true, 3600);  /* 18 variants */
    check_variants(4, 4, 3, 2, true, 10000); /* 50 variants */
    check_variants(4, 4, 3, 1, false, 1800); /* crop only: 9 */
    check_variants(5, 3, 2, 0, true, 400);   /* flip only: 2 */
}

/* The same rng state gives the same output; rng NULL ignores pad and flip. */
static void test_augment_pure(void **state) {
    Augment a = aug_make(2, true);
    uint8_t src[4 * 4 * 3];
    for (int i = 0; i < 48; i++) src[i] = (uint8_t)(i * 7 + 1);
    Rng r1, r2;
    rng_init(&r1, 99);
    r2 = r1;
    float o1[48], o2[48];
    for (int k = 0; k < 20; k++) {
        augment_sample(&a, src, 4, 4, 3, o1, &r1);
        augment_sample(&a, src, 4, 4, 3, o2, &r2);
        assert_memory_equal(o1, o2, sizeof o1);
    }
    augment_sample(&a, src, 4, 4, 3, o1, NULL);
    ref_variant(&a, src, 4, 4, 3, 2, 2, 2, false, o2); /* centred window = the image itself */
    assert_memory_equal(o1, o2, sizeof o1);
}

/* ---- random-resized crop ---- */

/* rrc on, pad set too (rrc must replace the pad-crop: zero padding would show as black). */
static Augment aug_rrc(bool flip) {
    Augment a = aug_make(4, flip);
    a.rrc = true;
    return a;
}

static uint8_t *img_alloc(int h, int w, int c) {
    uint8_t *p = mem_alloc((size_t)h * w * c);
    assert_non_null(p);
    return p;
}

static float *out_alloc(int h, int w, int c) {
    float *p = mem_alloc((size_t)h * w * c * sizeof *p);
    assert_non_null(p);
    return p;
}

/* Replays augment_sample's draws on a copy of r: the window, then the flip. */
static bool rrc_replay(Rng r, int h, int w, bool can_flip, int *y0, int *x0, int *wh, int *ww) {
    augment_rrc_window(h, w, &r, y0, x0, wh, ww);
    return can_flip ? rng_below(&r, 2) == 1 : false;
}

/* (1) A constant-colour image stays that colour everywhere, exactly up to float rounding of the
 * normalisation, for up- and downscaled windows, flipped or not; and nothing is allocated. */
static void check_rrc_constant(int h, int w, int c, int draws) {
    static const uint8_t colour[4] = {37, 200, 91, 255};
    Augment a = aug_rrc(true);
    uint8_t *src = img_alloc(h, w, c);
    float *out = out_alloc(h, w, c);
    for (size_t i = 0; i < (size_t)h * w; i++)
        for (int ch = 0; ch < c; ch++) src[i * c + ch] = colour[ch];
    Rng r;
    rng_init(&r, 17 + (uint64_t)h);
    size_t allocs = mem_n_allocs();
    for (int k = 0; k < draws; k++) {
        augment_sample(&a, src, h, w, c, out, &r);
        for (size_t i = 0; i < (size_t)h * w * c; i++) {
            int ch = (int)(i % (size_t)c);
            double want = norm_ref(&a, colour[ch], ch);
            if (fabs(out[i] - want) > 1e-6 * (1 + fabs(want)))
                fail_msg("%dx%dx%d draw %d value %zu: got %.9g, want %.9g", h, w, c, k, i, out[i], want);
        }
    }
    assert_int_equal(mem_n_allocs(), allocs);
    mem_free(out);
    mem_free(src);
}

static void test_rrc_constant(void **state) {
    check_rrc_constant(128, 160, 3, 40);
    check_rrc_constant(224, 224, 1, 20);
    check_rrc_constant(5, 7, 4, 200); /* tiny: windows of 1..7 px, strong upscaling */
}

/* (2) A horizontal gradient (pixel = x * 255/(w-1)) gives rows that are non-decreasing when not
 * flipped and non-increasing when flipped (the flip read from a replay of the draws), and not flat. */
static void test_rrc_gradient(void **state) {
    enum { H = 128, W = 192, C = 3, DRAWS = 200 };
    Augment a = aug_rrc(true);
    uint8_t *src = img_alloc(H, W, C);
    float *out = out_alloc(H, W, C);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ch = 0; ch < C; ch++) src[((size_t)y * W + x) * C + ch] = (uint8_t)(x * 255 / (W - 1));
    Rng r;
    rng_init(&r, 4242);
    int n_flip = 0;
    for (int k = 0; k < DRAWS; k++) {
        int y0, x0, wh, ww;
        bool flip = rrc_replay(r, H, W, true, &y0, &x0, &wh, &ww);
        n_flip += flip;
        augment_sample(&a, src, H, W, C, out, &r);
        for (int y = 0; y < H; y++)
            for (int ch = 0; ch < C; ch++) {
                const float *row = out + (size_t)y * W * C + ch;
                for (int x = 1; x < W; x++) {
                    float prev = row[(size_t)(x - 1) * C], cur = row[(size_t)x * C];
                    if (flip ? cur > prev : cur < prev)
                        fail_msg("draw %d (window %dx%d at %d,%d, flip %d) row %d ch %d: x %d %.9g after %.9g", k, wh,
                                 ww, y0, x0, flip, y, ch, x, cur, prev);
                }
                /* the window spans >= 2 source columns, so the row really rises (or falls) */
                if (ww >= 2 && !(flip ? row[0] > row[(size_t)(W - 1) * C] : row[0] < row[(size_t)(W - 1) * C]))
                    fail_msg("draw %d row %d ch %d: flat or wrong way (flip %d): %.9g .. %.9g", k, y, ch, flip, row[0],
                             row[(size_t)(W - 1) * C]);
            }
    }
    assert_in_range(n_flip, DRAWS / 4, 3 * DRAWS / 4);
    mem_free(out);
    mem_free(src);
}

/* The window's exact bounds, given that ww, wh are roundings of sqrt(s*A*r), sqrt(s*A/r) with
 * s in [0.08, 1] and r in [3/4, 4/3]: (ww -+ 1/2)(wh -+ 1/2) brackets s*A and (ww -+ 1/2)/(wh +- 1/2)
 * brackets r. */
static void check_window_bounds(int h, int w, int y0, int x0, int wh, int ww, const char *what, int k) {
    if (wh < 1 || ww < 1 || y0 < 0 || x0 < 0 || y0 + wh > h || x0 + ww > w)
        fail_msg("%s draw %d: window %dx%d at (%d,%d) outside %dx%d", what, k, wh, ww, y0, x0, h, w);
    double area = (double)h * w;
    if ((ww - 0.5) * (wh - 0.5) > area || (ww + 0.5) * (wh + 0.5) < 0.08 * area)
        fail_msg("%s draw %d: window %dx%d is %.4f of the image", what, k, wh, ww, ww * wh / area);
    if ((ww - 0.5) / (wh + 0.5) > 4.0 / 3.0 || (ww + 0.5) / (wh - 0.5) < 3.0 / 4.0)
        fail_msg("%s draw %d: window %dx%d has aspect %.4f", what, k, wh, ww, (double)ww / wh);
}

/* (3) Over many draws: every window inside the image, area fraction in [0.08, 1] and aspect in
 * [3/4, 4/3] up to rounding, both small (< 0.2) and large (> 0.8) fractions, windows touching every
 * edge (random positions, not centred); the fallback reproduces torchvision's centre crops. */
static void check_rrc_windows(int h, int w, int draws) {
    Rng r;
    rng_init(&r, 99 + (uint64_t)w);
    double lo = 1, hi = 0;
    bool top = false, bottom = false, left = false, right = false;
    for (int k = 0; k < draws; k++) {
        int y0 = -1, x0 = -1, wh = -1, ww = -1;
        augment_rrc_window(h, w, &r, &y0, &x0, &wh, &ww);
        check_window_bounds(h, w, y0, x0, wh, ww, "rrc", k);
        double frac = (double)wh * ww / ((double)h * w);
        lo = frac < lo ? frac : lo;
        hi = frac > hi ? frac : hi;
        top = top || (y0 == 0 && wh < h);
        bottom = bottom || (y0 + wh == h && wh < h);
        left = left || (x0 == 0 && ww < w);
        right = right || (x0 + ww == w && ww < w);
    }
    if (!(lo < 0.2 && hi > 0.8)) fail_msg("%dx%d: area fractions only in [%.3f, %.3f]", h, w, lo, hi);
    if (!(top && bottom && left && right))
        fail_msg("%dx%d: windows touch top %d bottom %d left %d right %d", h, w, top, bottom, left, right);
}

static void test_rrc_window(void **state) {
    check_rrc_windows(224, 224, 20000);
    check_rrc_windows(128, 200, 20000);
    check_rrc_windows(160, 128, 20000);
    /* no attempt can fit: torchvision's fallback, by hand */
    struct {
        int h, w, y0, x0, wh, ww;
    } fb[] = {
        {1, 1000, 0, 499, 1, 1},   /* wide: h = 1, w = round(4/3) = 1, centred */
        {300, 2, 148, 0, 3, 2},    /* tall: w = 2, h = round(2 / (3/4)) = round(2.67) = 3, centred */
        {2, 600, 0, 298, 2, 3},    /* wide: h = 2, w = round(8/3) = 3; (600 - 3) / 2 = 298 */
    };
    for (size_t t = 0; t < sizeof fb / sizeof fb[0]; t++) {
        Rng r;
        rng_init(&r, 5 + t);
        for (int k = 0; k < 50; k++) {
            int y0, x0, wh, ww;
            augment_rrc_window(fb[t].h, fb[t].w, &r, &y0, &x0, &wh, &ww);
            if (y0 != fb[t].y0 || x0 != fb[t].x0 || wh != fb[t].wh || ww != fb[t].ww)
                fail_msg("fallback %zu draw %d: window %dx%d at (%d,%d), want %dx%d at (%d,%d)", t, k, wh, ww, y0, x0,
                         fb[t].wh, fb[t].ww, fb[t].y0, fb[t].x0);
        }
    }
    /* tiny images: always inside (the area/aspect bounds need no fallback only for large images) */
    Rng r;
    rng_init(&r, 3);
    for (int k = 0; k < 2000; k++) {
        int h = 1 + (int)rng_below(&r, 6), w = 1 + (int)rng_below(&r, 6), y0, x0, wh, ww;
        augment_rrc_window(h, w, &r, &y0, &x0, &wh, &ww);
        if (wh < 1 || ww < 1 || y0 < 0 || x0 < 0 || y0 + wh > h || x0 + ww > w)
            fail_msg("tiny draw %d: window %dx%d at (%d,%d) outside %dx%d", k, wh, ww, y0, x0, h, w);
    }
}

/* The output against an independent double-precision bilinear reference of the replayed window
 * (half-pixel centres, clamped to the window), flipped as replayed, normalised; the rng advances
 * exactly by the replayed draws. */
static void test_rrc_reference(void **state) {
    enum { H = 40, W = 56, C = 3, DRAWS = 60 };
    Augment a = aug_rrc(true);
    uint8_t *src = img_alloc(H, W, C);
    float *out = out_alloc(H, W, C);
    Rng r;
    rng_init(&r, 808);
    for (size_t i = 0; i < (size_t)H * W * C; i++) src[i] = (uint8_t)rng_below(&r, 256);
    for (int k = 0; k < DRAWS; k++) {
        Rng after = r;
        int y0, x0, wh, ww;
        augment_rrc_window(H, W, &after, &y0, &x0, &wh, &ww);
        bool flip = rng_below(&after, 2) == 1;
        augment_sample(&a, src, H, W, C, out, &r);
        assert_memory_equal(&r, &after, sizeof r);
        double max_err = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double sy = fmin(fmax((y + 0.5) * wh / H - 0.5, 0), wh - 1);
                double sx = fmin(fmax((x + 0.5) * ww / W - 0.5, 0), ww - 1);
                int iy = (int)floor(sy), ix = (int)floor(sx);
                int iy1 = iy + 1 < wh ? iy + 1 : iy, ix1 = ix + 1 < ww ? ix + 1 : ix;
                double fy = sy - iy, fx = sx - ix;
                int ox = flip ? W - 1 - x : x;
                for (int ch = 0; ch < C; ch++) {
#define PX(yy, xx) ((double)src[((size_t)(y0 + (yy)) * W + x0 + (xx)) * C + ch])
                    double v = (1 - fy) * ((1 - fx) * PX(iy, ix) + fx * PX(iy, ix1)) +
                               fy * ((1 - fx) * PX(iy1, ix) + fx * PX(iy1, ix1));
#undef PX
                    double want = (v / 255.0 - a.mean[ch]) / a.std[ch];
                    double e = fabs(out[((size_t)y * W + ox) * C + ch] - want);
                    max_err = e > max_err ? e : max_err;
                }
            }
        if (max_err > 1e-4) fail_msg("draw %d (window %dx%d at %d,%d flip %d): max error %g", k, wh, ww, y0, x0, flip, max_err);
    }
    mem_free(out);
    mem_free(src);
}

/* (4) Same rng state: identical output; another seed: different; rng NULL: the plain normalised
 * image whatever rrc says. Through the loader: same seed identical epochs, resume reproduces. */
static void test_rrc_deterministic(void **state) {
    size_t live = mem_live_bytes();
    enum { H = 128, W = 144, C = 3 };
    Augment a = aug_rrc(true), plain = aug_make(0, false);
    uint8_t *src = img_alloc(H, W, C);
    float *o1 = out_alloc(H, W, C), *o2 = out_alloc(H, W, C);
    for (size_t i = 0; i < (size_t)H * W * C; i++) src[i] = (uint8_t)(i * 7 % 251);
    Rng r1, r2, r3;
    rng_init(&r1, 31);
    r2 = r1;
    rng_init(&r3, 32);
    for (int k = 0; k < 10; k++) {
        augment_sample(&a, src, H, W, C, o1, &r1);
        augment_sample(&a, src, H, W, C, o2, &r2);
        assert_memory_equal(o1, o2, (size_t)H * W * C * sizeof *o1);
        augment_sample(&a, src, H, W, C, o2, &r3);
        assert_memory_not_equal(o1, o2, (size_t)H * W * C * sizeof *o1);
    }
    augment_sample(&a, src, H, W, C, o1, NULL);
    augment_sample(&plain, src, H, W, C, o2, NULL);
    assert_memory_equal(o1, o2, (size_t)H * W * C * sizeof *o1);
    mem_free(o2);
    mem_free(o1);
    mem_free(src);

    Dataset d;
    ds_make(&d, 24, 8, 8, 3);
    Loader *l1 = NULL, *l2 = NULL, *l3 = NULL;
    assert_int_equal(loader_create(&l1, &d, 4, true, &a, 600), 0);
    assert_int_equal(loader_create(&l2, &d, 4, true, &a, 600), 0);
    assert_int_equal(loader_create(&l3, &d, 4, true, &a, 601), 0);
    Epoch e0, e1, f1, g1;
    epoch_alloc(&e0, l1, &d, 4);
    epoch_alloc(&e1, l1, &d, 4);
    epoch_alloc(&f1, l2, &d, 4);
    epoch_alloc(&g1, l3, &d, 4);
    epoch_read(&e0, l1, 0, 0, 0);
    epoch_read(&e1, l1, 1, 0, 0);
    epoch_read(&f1, l2, 1, 300, 2); /* resumed at epoch 1, slow consumer */
    epoch_read(&g1, l3, 1, 0, 0);
    assert_true(epoch_equal(&e1, &f1));
    assert_false(epoch_equal(&e0, &e1));
    assert_false(epoch_equal(&e1, &g1));
    epoch_free(&e0);
    epoch_free(&e1);
    epoch_free(&f1);
    epoch_free(&g1);
    loader_destroy(l3);
    loader_destroy(l2);
    loader_destroy(l1);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* ---- training loader ---- */

/* Each epoch: exactly floor(n/batch)*batch samples, each at most once, each image a crop/flip of
 * the sample its label names; epochs differ in order; no allocation per batch; no leak. */
static void test_train_epochs(void **state) {
    size_t live = mem_live_bytes();
    Dataset d;
    enum { N = 103, BATCH = 10, EPOCHS = 4 };
    ds_make(&d, N, 4, 4, 3);
    Augment a = aug_make(1, true);
    Loader *l = NULL;
    assert_int_equal(loader_create(&l, &d, BATCH, true, &a, 42), 0);
    assert_int_equal(loader_batches(l), N / BATCH);
    Epoch e[EPOCHS];
    int variant[EPOCHS][N];
    for (int ep = 0; ep < EPOCHS; ep++) {
        epoch_alloc(&e[ep], l, &d, BATCH);
        size_t allocs = mem_n_allocs();
        assert_int_equal(loader_start_epoch(l, ep), 0);
        for (long b = 0; b < e[ep].n_batches; b++) {
            int nv = -1;
            assert_int_equal(loader_next(l, e[ep].x + (size_t)b * BATCH * e[ep].sample, e[ep].y + (size_t)b * BATCH, &nv), 0);
            assert_int_equal(nv, BATCH);
        }
        assert_int_equal(mem_n_allocs(), allocs); /* nothing allocated per batch */
        int nv = -1;
        float xs[BATCH * 48];
        int32_t ys[BATCH];
        assert_int_equal(loader_next(l, xs, ys, &nv), 0);
        assert_int_equal(nv, 0);

        bool seen[N] = {0};
        for (int k = 0; k < (N / BATCH) * BATCH; k++) {
            int32_t s = e[ep].y[k];
            assert_in_range(s, 0, N - 1);
            if (seen[s]) fail_msg("epoch %d: sample %d appears twice", ep, s);
            seen[s] = true;
            variant[ep][k] = find_variant(&a, ds_image(&d, s), 4, 4, 3, 1, true, e[ep].x + (size_t)k * e[ep].sample);
            if (variant[ep][k] < 0) fail_msg("epoch %d position %d: image is no crop/flip of sample %d", ep, k, s);
        }
    }
    for (int i = 0; i < EPOCHS; i++)
        for (int j = i + 1; j < EPOCHS; j++) {
            if (memcmp(e[i].y, e[j].y, (size_t)(N / BATCH) * BATCH * sizeof *e[i].y) == 0)
                fail_msg("epochs %d and %d have the same order", i, j);
            /* augmentation streams are fresh per epoch: the same position agrees about 1 time in 18 */
            int agree = 0;
            for (int k = 0; k < (N / BATCH) * BATCH; k++) agree += variant[i][k] == variant[j][k];
            if (agree > (N / BATCH) * BATCH / 3)
                fail_msg("epochs %d and %d: %d of %d positions have the same crop/flip", i, j, agree, (N / BATCH) * BATCH);
        }
    for (int ep = 0; ep < EPOCHS; ep++) epoch_free(&e[ep]);
    loader_destroy(l);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* Without augmentation the training images are the plain normalised samples their labels name. */
static void test_train_plain(void **state) {
    size_t live = mem_live_bytes();
    Dataset d;
    ds_make(&d, 20, 3, 5, 2);
    Augment a = aug_make(0, false);
    Loader *l = NULL;
    assert_int_equal(loader_create(&l, &d, 20, true, &a, 5), 0); /* n == batch: one batch */
    assert_int_equal(loader_batches(l), 1);
    Epoch e;
    epoch_alloc(&e, l, &d, 20);
    epoch_read(&e, l, 3, 0, 0);
    assert_int_equal(e.n_valid[0], 20);
    float ref[MAX_SAMPLE];
    for (int k = 0; k < 20; k++) {
        augment_sample(&a, ds_image(&d, e.y[k]), 3, 5, 2, ref, NULL);
        assert_memory_equal(e.x + (size_t)k * e.sample, ref, e.sample * sizeof *ref);
    }
    epoch_free(&e);
    loader_destroy(l);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* Same seed: identical bytes, also when the consumer sleeps randomly between batches (timing
 * independence) and when it is a second loader; another seed: different order and pixels. */
static void test_train_deterministic(void **state) {
    size_t live = mem_live_bytes();
    Dataset d;
    enum { N = 64, BATCH = 6 };
    ds_make(&d, N, 6, 6, 3);
    Augment a = aug_make(2, true);
    Loader *l1 = NULL, *l2 = NULL, *l3 = NULL;
    assert_int_equal(loader_create(&l1, &d, BATCH, true, &a, 2024), 0);
    assert_int_equal(loader_create(&l2, &d, BATCH, true, &a, 2024), 0);
    assert_int_equal(loader_create(&l3, &d, BATCH, true, &a, 2025), 0);
    for (int ep = 0; ep < 2; ep++) {
        Epoch e1, e2, e3, e4;
        epoch_alloc(&e1, l1, &d, BATCH);
        epoch_alloc(&e2, l2, &d, BATCH);
        epoch_alloc(&e3, l3, &d, BATCH);
        epoch_alloc(&e4, l1, &d, BATCH);
        epoch_read(&e1, l1, ep, 0, 0);       /* as fast as possible */
        epoch_read(&e2, l2, ep, 2000, 11);   /* sleeps up to 2 ms between batches */
        epoch_read(&e3, l3, ep, 0, 0);
        epoch_read(&e4, l1, ep, 300, 12);    /* the same loader, the same epoch again */
        assert_true(epoch_equal(&e1, &e2));
        assert_true(epoch_equal(&e1, &e4));
        assert_false(epoch_equal(&e1, &e3));
        assert_memory_not_equal(e1.y, e3.y, (size_t)e1.n_batches * BATCH * sizeof *e1.y);
        epoch_free(&e1);
        epoch_free(&e2);
        epoch_free(&e3);
        epoch_free(&e4);
    }
    assert_true(loader_wait_ms(l1) >= 0 && isfinite(loader_wait_ms(l1)));
    assert_true(loader_wait_ms(l2) >= 0 && isfinite(loader_wait_ms(l2)));
    loader_destroy(l3);
    loader_destroy(l2);
    loader_destroy(l1);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* Starting at epoch 2 directly gives the batches of epoch 2 after epochs 0 and 1. */
static void test_train_resume(void **state) {
    size_t live = mem_live_bytes();
    Dataset d;
    ds_make(&d, 50, 4, 4, 3);
    Augment a = aug_make(1, true);
    Loader *full = NULL, *resumed = NULL;
    assert_int_equal(loader_create(&full, &d, 8, true, &a, 77), 0);
    assert_int_equal(loader_create(&resumed, &d, 8, true, &a, 77), 0);
    Epoch e0, e1, e2, r2;
    epoch_alloc(&e0, full, &d, 8);
    epoch_alloc(&e1, full, &d, 8);
    epoch_alloc(&e2, full, &d, 8);
    epoch_alloc(&r2, resumed, &d, 8);
    epoch_read(&e0, full, 0, 0, 0);
    epoch_read(&e1, full, 1, 0, 0);
    epoch_read(&e2, full, 2, 0, 0);
    epoch_read(&r2, resumed, 2, 0, 0);
    assert_true(epoch_equal(&e2, &r2));
    assert_false(epoch_equal(&e1, &e2));
    epoch_free(&e0);
    epoch_free(&e1);
    epoch_free(&e2);
    epoch_free(&r2);
    loader_destroy(resumed);
    loader_destroy(full);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* loader_start_epoch while an epoch is half consumed (or not consumed at all, or just started):
 * the new epoch is exactly what a fresh loader gives. */
static void test_train_restart_mid_epoch(void **state) {
    size_t live = mem_live_bytes();
    Dataset d;
    enum { N = 90, BATCH = 7 };
    ds_make(&d, N, 5, 5, 3);
    Augment a = aug_make(2, true);
    Loader *ref = NULL, *l = NULL;
    assert_int_equal(loader_create(&ref, &d, BATCH, true, &a, 3), 0);
    assert_int_equal(loader_create(&l, &d, BATCH, true, &a, 3), 0);
    Epoch want[3], got;
    for (int ep = 0; ep < 3; ep++) {
        epoch_alloc(&want[ep], ref, &d, BATCH);
        epoch_read(&want[ep], ref, ep, 0, 0);
    }
    epoch_alloc(&got, l, &d, BATCH);
    Rng r;
    rng_init(&r, 8);
    for (int round = 0; round < 30; round++) {
        int ep = (int)rng_below(&r, 3);
        long half = (long)rng_below(&r, (uint64_t)got.n_batches);
        assert_int_equal(loader_start_epoch(l, ep), 0);
        if (round % 3 == 0) assert_int_equal(loader_start_epoch(l, (ep + 1) % 3), 0); /* twice in a row */
        if (round % 3 == 0) assert_int_equal(loader_start_epoch(l, ep), 0);
        for (long b = 0; b < half; b++) {
            int nv = -1;
            assert_int_equal(loader_next(l, got.x + (size_t)b * BATCH * got.sample, got.y + (size_t)b * BATCH, &nv), 0);
            assert_int_equal(nv, BATCH);
        }
        if (round % 2) jitter(&r, 500); /* let the worker fill the ring (or not) */
        /* abandon the epoch here; now read one in full */
        int ep2 = (int)rng_below(&r, 3);
        epoch_read(&got, l, ep2, round % 4 == 0 ? 200 : 0, (uint64_t)round);
        if (!epoch_equal(&got, &want[ep2])) fail_msg("round %d: epoch %d after abandoning %d differs", round, ep2, ep);
    }
    epoch_free(&got);
    for (int ep = 0; ep < 3; ep++) epoch_free(&want[ep]);
    loader_destroy(l);
    loader_destroy(ref);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* ---- evaluation loader ---- */

static void check_eval(int n, int batch) {
    size_t live = mem_live_bytes();
    Dataset d;
    ds_make(&d, n, 4, 3, 3);
    Augment a = aug_make(2, true); /* ignored: evaluation never augments */
    Loader *l = NULL;
    assert_int_equal(loader_create(&l, &d, batch, false, &a, 9), 0);
    long nb = (n + batch - 1) / batch;
    assert_int_equal(loader_batches(l), nb);
    Epoch e;
    epoch_alloc(&e, l, &d, batch);
    for (int pass = 0; pass < 2; pass++) { /* an epoch number changes nothing */
        epoch_read(&e, l, pass * 5, pass ? 300 : 0, 4);
        float ref[MAX_SAMPLE];
        for (long b = 0; b < nb; b++) {
            int want_valid = b < nb - 1 ? batch : n - (int)(b * batch);
            assert_int_equal(e.n_valid[b], want_valid);
            for (int i = 0; i < batch; i++) {
                size_t k = (size_t)b * batch + i;
                /* real samples in order; padding repeats the batch's first image and label */
                int s = i < want_valid ? (int)k : (int)(b * batch);
                assert_int_equal(e.y[k], s);
                augment_sample(&a, ds_image(&d, s), 4, 3, 3, ref, NULL);
                if (memcmp(e.x + k * e.sample, ref, e.sample * sizeof *ref) != 0)
                    fail_msg("n %d batch %d: batch %ld slot %d is not image %d", n, batch, b, i, s);
            }
        }
    }
    epoch_free(&e);
    loader_destroy(l);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

static void test_eval(void **state) {
    check_eval(23, 5); /* 5 batches, the last with 3 real images */
    check_eval(20, 5); /* exact: no padding */
    check_eval(3, 8);  /* fewer images than a batch is fine for evaluation */
    check_eval(9, 1);
}

/* ---- lifetime ---- */

/* Destroy right after create, after start, mid-epoch with a full ring, mid-fill of a large batch:
 * joins without hanging (alarm) and frees everything. */
static void test_destroy_any_time(void **state) {
    size_t live = mem_live_bytes();
    Dataset d;
    ds_make(&d, 400, 8, 8, 3);
    Augment a = aug_make(2, true);
    float *x = mem_alloc((size_t)200 * 192 * sizeof *x);
    int32_t y[200];
    assert_non_null(x);
    Rng r;
    rng_init(&r, 5);
    for (int k = 0; k < 60; k++) {
        Loader *l = NULL;
        int batch = k % 2 ? 200 : 16;
        assert_int_equal(loader_create(&l, &d, batch, k % 5 != 4, &a, (uint64_t)k), 0);
        int mode = k % 4;
        if (mode >= 1) assert_int_equal(loader_start_epoch(l, k), 0);
        if (mode >= 2) {
            int nv = -1;
            assert_int_equal(loader_next(l, x, y, &nv), 0);
            assert_int_equal(nv, batch);
        }
        if (mode == 3) jitter(&r, 2000); /* ring full, worker waiting for a free slot */
        loader_destroy(l);
    }
    loader_destroy(NULL);
    mem_free(x);
    ds_free(&d);
    assert_int_equal(mem_live_bytes(), live);
}

/* ---- bad configurations ---- */

static void expect_config_error(const Dataset *d, int batch, bool train, const Augment *a, const char *needle) {
    size_t live = mem_live_bytes();
    TuCapture cap;
    Loader *l = (Loader *)&live; /* must be overwritten with NULL */
    int rc = 0;
    TU_CAPTURE_ECHO(&cap, rc = loader_create(&l, d, batch, train, a, 1));
    assert_int_equal(rc, ERR_CONFIG);
    assert_null(l);
    assert_int_equal(mem_live_bytes(), live);
    assert_log_has(cap.text, needle);
}

static void test_bad_config(void **state) {
    Dataset d;
    ds_make(&d, 5, 4, 4, 3);
    Augment a = aug_make(1, true);
    expect_config_error(&d, 10, true, &a, "5 images, fewer than one batch of 10");
    expect_config_error(&d, 0, false, &a, "batch size 0");
    expect_config_error(&d, -3, true, &a, "batch size -3");
    Augment bad = aug_make(5, true);
    expect_config_error(&d, 2, true, &bad, "padding 5");
    bad = aug_make(1, true);
    bad.std[2] = 0;
    expect_config_error(&d, 2, true, &bad, "channel 2");
    bad = aug_make(1, true);
    bad.mean[1] = NAN;
    expect_config_error(&d, 2, true, &bad, "channel 1");
    Dataset wide = d;
    wide.c = 5;
    expect_config_error(&wide, 2, false, &a, "5 channels");
    Dataset empty = {0};
    expect_config_error(&empty, 2, false, &a, "empty");

    /* an evaluation set smaller than a batch, and aug NULL, are fine */
    Loader *l = NULL;
    assert_int_equal(loader_create(&l, &d, 10, false, NULL, 1), 0);
    assert_int_equal(loader_batches(l), 1);
    float x[10 * 48];
    int32_t y[10];
    int nv = -1;
    TuCapture cap;
    int rc = 0;
    TU_CAPTURE_ECHO(&cap, rc = loader_next(l, x, y, &nv)); /* before loader_start_epoch */
    assert_int_equal(rc, ERR_CONFIG);
    assert_int_equal(nv, 0);
    TU_CAPTURE_ECHO(&cap, rc = loader_start_epoch(l, -1));
    assert_int_equal(rc, ERR_CONFIG);
    assert_int_equal(loader_start_epoch(l, 0), 0);
    assert_int_equal(loader_next(l, x, y, &nv), 0);
    assert_int_equal(nv, 5);
    for (int i = 0; i < 48; i++) assert_float_equal(x[i], ds_image(&d, 0)[i] / 255.0f, 1e-6); /* mean 0, std 1 */
    loader_destroy(l);
    ds_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_augment_normalise, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_augment_hand_variant, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_augment_variants, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_augment_pure, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rrc_constant, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rrc_gradient, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rrc_window, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rrc_reference, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rrc_deterministic, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_train_epochs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_train_plain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_train_deterministic, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_train_resume, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_train_restart_mid_epoch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_eval, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_any_time, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
