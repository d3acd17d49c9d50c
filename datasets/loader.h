/* loader.h: batches for training and evaluation, produced by a background thread.
 *
 * Training batches: the epoch's order is a Fisher-Yates permutation drawn from its own stream and
 * every sample's augmentation from a stream keyed by (epoch, position in the epoch), all split from
 * one base stream of the seed (keys in loader.c), so the batches are the same whatever the thread
 * timing, and resuming at epoch e reproduces them. The last partial batch is dropped. Evaluation
 * batches: in order, no augmentation, every image; the final batch is padded by repeating its first
 * image (and label) and reports n_valid < batch.
 * Images leave the loader as float NHWC normalised per channel: (pixel/255 - mean[c]) / std[c].
 *
 * Threads: each loader runs exactly one worker thread (pthreads, outside the OpenMP team of the
 * training step: count it as one extra thread). It prepares up to 3 batches ahead into buffers
 * allocated by loader_create (3 * batch*h*w*c floats + labels); nothing is allocated per batch, and
 * loader_next normally only copies a ready batch out. loader_start_epoch, loader_next and
 * loader_wait_ms must be called from one thread (the consumer). */
#ifndef RESPROP_LOADER_H
#define RESPROP_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rng.h"
#include "datasets/dataset.h"

typedef struct {
    int pad;           /* random crop: pad by `pad` pixels of value 0 (black, before normalisation,
                          as torchvision's RandomCrop), crop back to h x w at a random offset (0 = off);
                          ignored when rrc is set */
    bool rrc;          /* random-resized crop instead of the pad-crop, as torchvision's
                          RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)) for ImageNet-style
                          training (images >= 128 px): a window from augment_rrc_window, resized to
                          h x w by bilinear sampling (half-pixel centres, clamped to the window's edge,
                          no antialiasing) */
    bool flip;         /* random horizontal flip with probability 1/2 */
    double mean[4], std[4]; /* per-channel normalisation of pixel/255 (c <= 4) */
} Augment;

/* One sample (h,w,c) uint8 -> float (h,w,c), augmented when rng != NULL (crop + flip as set), plain
 * normalisation when rng == NULL (pad, rrc and flip ignored). Draws from rng, in order:
 *   pad-crop (rrc false): the crop's row offset and column offset (each rng_below(2*pad+1), only
 *     when pad > 0); output (y, x) = padded(y + oy, x' + ox), padded being src with `pad` zero
 *     pixels on every side;
 *   rrc: the window, drawn exactly as augment_rrc_window; output (y, x) = the window (wh x ww at
 *     (y0, x0)) bilinearly sampled at row (y + 0.5) * wh/h - 0.5 and column (x' + 0.5) * ww/w - 0.5,
 *     each clamped to 0..wh-1 / 0..ww-1;
 * then the flip (rng_below(2), only when flip), with x' = w-1-x when flipped, x otherwise.
 * c in 1..4 (ASSERT). Allocates nothing; pure apart from the rng it is given. */
void augment_sample(const Augment *a, const uint8_t *src, int h, int w, int c, float *dst, Rng *rng);

/* The random-resized-crop window of an h x w image (torchvision's RandomResizedCrop.get_params
 * with scale (0.08, 1), ratio (3/4, 4/3)): up to 10 attempts, each drawing the area fraction
 * s = 0.08 + 0.92 * rng_uniform and the aspect r = exp(log(3/4) + log(16/9) * rng_uniform), giving
 * *ww = round(sqrt(s*h*w*r)), *wh = round(sqrt(s*h*w/r)) (round half to even, as Python's round);
 * the first that fits (1..h by 1..w) takes *y0 = rng_below(h - *wh + 1), then *x0 =
 * rng_below(w - *ww + 1). If none fits: the centred window of the whole image with its aspect
 * w/h clamped to [3/4, 4/3] (*y0 = (h - *wh) / 2, *x0 = (w - *ww) / 2), no further draws.
 * The window is always inside the image. h, w >= 1 and rng != NULL (ASSERT). */
void augment_rrc_window(int h, int w, Rng *rng, int *y0, int *x0, int *wh, int *ww);

typedef struct Loader Loader;

/* A loader over d (borrowed; it must outlive the loader and not change) for batches of `batch`.
 * train selects shuffling, augmentation and drop-last; `seed` is the run's seed. aug is copied;
 * NULL means no augmentation and mean 0, std 1. Starts its worker thread, which idles until
 * loader_start_epoch. *out is NULL on failure. Returns 0, or
 *   ERR_CONFIG  a training set with fewer images than one batch, batch <= 0, an empty dataset,
 *               c outside 1..4, pad outside 0..min(h, w), a non-finite mean or std <= 0;
 *   ERR_NOMEM   buffers, or a pthread object/thread that cannot be created (logged with its errno). */
int loader_create(Loader **out, const Dataset *d, int batch, bool train, const Augment *aug, uint64_t seed);
/* Stops and joins the worker (abandoning any batch in preparation) and frees everything; callable
 * at any point, mid-epoch too; accepts NULL; cannot fail. */
void loader_destroy(Loader *l);

/* Batches per epoch (train: floor(n / batch); eval: ceil(n / batch)). */
long loader_batches(const Loader *l);

/* Begins epoch `epoch` (0-based); the worker starts preparing its first batches at once. Any epoch
 * in progress is abandoned (batches not yet taken are dropped, a batch in preparation is cancelled),
 * so it may be called at any point. ERR_CONFIG for epoch < 0. */
int loader_start_epoch(Loader *l, int epoch);

/* Copies the next batch of the current epoch into x (batch*h*w*c floats) and y (batch labels);
 * *n_valid = samples that are real (< batch only for the last evaluation batch), 0 when the epoch
 * is over (and on every call after that). Blocks until the batch is ready; the time blocked adds to
 * loader_wait_ms. ERR_CONFIG before the first loader_start_epoch. */
int loader_next(Loader *l, float *x, int32_t *y, int *n_valid);

/* Total milliseconds loader_next has spent waiting for the worker. */
double loader_wait_ms(const Loader *l);

#endif
