/* synthetic.c: a learnable labelled image set generated from a seed, for smoke runs and tests
 * without data files.
 *
 * Class k has a smooth prototype per channel: a sum of SYN_WAVES plane waves of low spatial frequency
 * (at most SYN_MAX_CYCLES cycles across the image), with random direction, frequency and phase drawn
 * from the class's own stream. Sample i has label i % classes (balanced, also in every prefix, so
 * dataset_truncate keeps it balanced) and is its prototype evaluated at a random sub-pixel shift in
 * [-1, 1] pixels in each direction, plus per-pixel noise, rounded and clipped to [0, 255]. Every
 * sample comes from its own stream rng_split(split stream, i), so the first m samples are the same
 * for any n >= m, and train and test differ because their split streams do.
 *
 * Streams: root = rng_init(seed); prototypes from rng_split(rng_split(root, 1), class); samples from
 * rng_split(rng_split(rng_split(root, 2), split), i) with split 0 = train, 1 = test. */
#include "datasets/dataset.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"

#define SYN_WAVES 4             /* plane waves per prototype channel */
#define SYN_MAX_CYCLES 1.5      /* highest frequency, cycles across the image */
#define SYN_MEAN 128.0          /* pixel value the prototypes vary around */
#define SYN_CONTRAST 40.0       /* std of a prototype's pixels around SYN_MEAN */
#define SYN_NOISE 32.0          /* std of the per-pixel noise */
#define SYN_MAX_SIDE 4096
#define SYN_MAX_C 64
#define SYN_MAX_CLASSES 65536
#define SYN_KEY_PROTOS 1
#define SYN_KEY_SAMPLES 2

/* One plane wave: amp * cos(fy * y + fx * x + phase), y and x in pixels. */
typedef struct {
    double fy, fx, phase, amp;
} SynWave;

/* Approximately standard normal: the sum of four 16-bit uniforms (Irwin-Hall), centred and scaled
 * to unit variance. One rng draw per value, bounded at +-3.46: cheap enough for 150M pixels. */
static double syn_noise(Rng *r) {
    uint64_t u = rng_u64(r);
    double s = 0;
    for (int k = 0; k < 4; k++, u >>= 16) s += (double)(u & 0xffff) + 0.5;
    return (s / 65536.0 - 2.0) * 1.7320508075688772; /* var of the sum is 4/12 */
}

/* The SYN_WAVES waves of one prototype channel, from its stream. */
static void syn_waves(Rng *r, int h, int w, SynWave *waves) {
    double amp = SYN_CONTRAST * sqrt(2.0 / SYN_WAVES); /* each cos has variance 1/2 */
    for (int j = 0; j < SYN_WAVES; j++) {
        double cycles = SYN_MAX_CYCLES * (0.25 + 0.75 * rng_uniform(r)); /* 0.375..1.5 */
        double angle = 2.0 * M_PI * rng_uniform(r);
        waves[j].fy = 2.0 * M_PI * cycles * sin(angle) / h;
        waves[j].fx = 2.0 * M_PI * cycles * cos(angle) / w;
        waves[j].phase = 2.0 * M_PI * rng_uniform(r);
        waves[j].amp = amp;
    }
}

/* Row and column factors of every wave of a class (c * SYN_WAVES waves) at shift (dy, dx):
 * cos(fy(y-dy) + fx(x-dx) + ph) = cy[y] cx[x] - sy[y] sx[x]. f holds syn_factor_doubles. */
static size_t syn_factor_doubles(int c, int h, int w) { return (size_t)c * SYN_WAVES * 2 * ((size_t)h + (size_t)w); }

static void syn_factors(const SynWave *waves, int c, int h, int w, double dy, double dx, double *f) {
    for (int k = 0; k < c * SYN_WAVES; k++) {
        double *cy = f + (size_t)k * 2 * (h + w), *sy = cy + h, *cx = sy + h, *sx = cx + w;
        for (int y = 0; y < h; y++) {
            double a = waves[k].fy * (y - dy) + waves[k].phase;
            cy[y] = waves[k].amp * cos(a);
            sy[y] = waves[k].amp * sin(a);
        }
        for (int x = 0; x < w; x++) {
            double b = waves[k].fx * (x - dx);
            cx[x] = cos(b);
            sx[x] = sin(b);
        }
    }
}

/* One sample dst (h,w,c) NHWC: the class's waves at a random shift plus noise, from stream r. */
static void syn_sample(const SynWave *waves, int c, int h, int w, Rng *r, double *f, uint8_t *dst) {
    double dy = 2.0 * rng_uniform(r) - 1.0, dx = 2.0 * rng_uniform(r) - 1.0;
    syn_factors(waves, c, h, w, dy, dx, f);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                double v = SYN_MEAN + SYN_NOISE * syn_noise(r);
                for (int j = 0; j < SYN_WAVES; j++) {
                    const double *cy = f + ((size_t)ch * SYN_WAVES + j) * 2 * (h + w);
                    const double *sy = cy + h, *cx = sy + h, *sx = cx + w;
                    v += cy[y] * cx[x] - sy[y] * sx[x];
                }
                v = floor(v + 0.5);
                *dst++ = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

/* crc32 of the labels as 4-byte little-endian integers, continuing crc. */
static uLong syn_crc_labels(uLong crc, const int32_t *labels, int n) {
    unsigned char b[256];
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)labels[i];
        for (int s = 0; s < 4; s++) b[k++] = (unsigned char)(v >> (8 * s));
        if (k == (int)sizeof b || i == n - 1) {
            crc = crc32(crc, b, (uInt)k);
            k = 0;
        }
    }
    return crc;
}

int dataset_synthetic(Dataset *d, const char *split, int n, int c, int h, int w, int classes, uint64_t seed) {
    int rc = 0;
    Dataset t = {0};
    SynWave *waves = NULL; /* (classes, c, SYN_WAVES) */
    double *f = NULL;      /* syn_factor_doubles */
    uint64_t split_key = 0;
    Rng root, protos, samples;
    ASSERT(d && split);
    *d = (Dataset){0};
    if (strcmp(split, "train") == 0) split_key = 0;
    else if (strcmp(split, "test") == 0) split_key = 1;
    else FAIL(ERR_CONFIG, "synthetic: unknown split \"%s\", expected \"train\" or \"test\"", split);
    if (n < 1) FAIL(ERR_CONFIG, "synthetic: n = %d images, expected at least 1", n);
    if (c < 1 || c > SYN_MAX_C) FAIL(ERR_CONFIG, "synthetic: c = %d channels, expected 1..%d", c, SYN_MAX_C);
    if (h < 1 || h > SYN_MAX_SIDE || w < 1 || w > SYN_MAX_SIDE)
        FAIL(ERR_CONFIG, "synthetic: image size %dx%d (h x w), expected 1..%d each", h, w, SYN_MAX_SIDE);
    if (classes < 1 || classes > SYN_MAX_CLASSES)
        FAIL(ERR_CONFIG, "synthetic: classes = %d, expected 1..%d", classes, SYN_MAX_CLASSES);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if ((size_t)n > ((size_t)-1 / 2) / per)
        FAIL(ERR_CONFIG, "synthetic: %d images of %zu bytes do not fit in memory", n, per);

    t.n = n;
    t.c = c;
    t.h = h;
    t.w = w;
    t.classes = classes;
    t.images = mem_alloc((size_t)n * per);
    t.labels = mem_alloc((size_t)n * sizeof *t.labels);
    waves = mem_alloc((size_t)classes * (size_t)c * SYN_WAVES * sizeof *waves);
    f = mem_alloc(syn_factor_doubles(c, h, w) * sizeof *f);
    if (!t.images || !t.labels || !waves || !f)
        FAIL(ERR_NOMEM, "synthetic: cannot allocate %d images of %dx%dx%d", n, c, h, w);

    rng_init(&root, seed);
    protos = rng_split(&root, SYN_KEY_PROTOS);
    for (int k = 0; k < classes; k++) {
        Rng r = rng_split(&protos, (uint64_t)k);
        for (int ch = 0; ch < c; ch++) syn_waves(&r, h, w, waves + ((size_t)k * c + ch) * SYN_WAVES);
    }
    Rng all = rng_split(&root, SYN_KEY_SAMPLES);
    samples = rng_split(&all, split_key);
    for (int i = 0; i < n; i++) {
        Rng r = rng_split(&samples, (uint64_t)i);
        int k = i % classes;
        t.labels[i] = k;
        syn_sample(waves + (size_t)k * c * SYN_WAVES, c, h, w, &r, f, t.images + (size_t)i * per);
    }

    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0, total = (size_t)n * per; off < total;) { /* crc32 takes a 32-bit length */
        size_t len = total - off < ((size_t)1 << 30) ? total - off : (size_t)1 << 30;
        crc = crc32(crc, t.images + off, (uInt)len);
        off += len;
    }
    t.checksum = (uint32_t)syn_crc_labels(crc, t.labels, n);
    t.file_bytes = 0;
    snprintf(t.source, sizeof t.source, "synthetic(seed=%llu,shape=%dx%dx%d,classes=%d,split=%s)",
             (unsigned long long)seed, c, h, w, classes, split);
    log_msg(LOG_INFO, "synthetic: %d %s images of %dx%dx%d, %d classes, seed %llu", n, split, c, h, w,
            classes, (unsigned long long)seed);
    *d = t;
    t = (Dataset){0};
fail:
    mem_free(f);
    mem_free(waves);
    dataset_deinit(&t);
    return rc;
}
