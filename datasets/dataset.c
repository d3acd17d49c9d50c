/* dataset.c: what every Dataset shares whichever reader filled it: freeing, truncation,
 * per-channel statistics and path joining. The readers live in idx.c, cifar.c and synthetic.c. */
#include "datasets/dataset.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

void dataset_deinit(Dataset *d) {
    if (!d) return;
    if (d->class_names) {
        for (int k = 0; k < d->classes; k++) mem_free(d->class_names[k]);
        mem_free(d->class_names);
    }
    mem_free(d->images);
    mem_free(d->labels);
    *d = (Dataset){0};
}

/* The buffers keep their size until dataset_deinit: shrinking them would need an allocation that
 * could fail in a function that cannot. The identity fields still describe the files read. */
void dataset_truncate(Dataset *d, int n) {
    ASSERT(d && n >= 0);
    if (n < d->n) d->n = n;
}

/* Sums are exact integers (a uint64 holds 255^2 * 2^40 pixels' worth), turned into doubles once:
 * no rounding drift however large the set. Population std (divided by the pixel count); 0 for a
 * constant channel, and mean = std = 0 for an empty set. */
void dataset_channel_stats(const Dataset *d, double *mean, double *std) {
    ASSERT(d && mean && std && d->c >= 0);
    size_t n_pix = (size_t)d->n * (size_t)d->h * (size_t)d->w; /* pixels per channel */
    for (int ch = 0; ch < d->c; ch++) {
        if (n_pix == 0) {
            mean[ch] = std[ch] = 0;
            continue;
        }
        uint64_t s = 0, s2 = 0;
        const uint8_t *p = d->images + ch;
        for (size_t i = 0; i < n_pix; i++, p += d->c) {
            s += *p;
            s2 += (uint64_t)*p * *p;
        }
        double m = (double)s / (double)n_pix;              /* in 0..255 */
        double var = (double)s2 / (double)n_pix - m * m;  /* in 0..255^2 */
        mean[ch] = m / 255.0;
        std[ch] = sqrt(var > 0 ? var : 0) / 255.0;
    }
}

int dataset_join_path(char *out, size_t cap, const char *dir, const char *name, const char *who) {
    int rc = 0;
    size_t len = strlen(dir);
    const char *sep = len && dir[len - 1] == '/' ? "" : "/";
    int w = snprintf(out, cap, "%s%s%s", dir, sep, name);
    if (w < 0 || (size_t)w >= cap) FAIL(ERR_CONFIG, "%s: path %s%s%s is longer than %zu bytes", who, dir, sep, name, cap - 1);
fail:
    return rc;
}
