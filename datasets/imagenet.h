/* imagenet.h: ILSVRC-2012 (ImageNet-1k) as fixed-size HDF5 shards: the one-off converter from the
 * JPEG tree, and the reader of its shards into a Dataset.
 *
 * This module only converts and reads. Training-time augmentation (random-resized-crop for S >= 128,
 * flips) is the loader's job (datasets/loader.h), working on the S x S images stored here.
 *
 * Shard format (plain HDF5, readable by h5dump/h5py): DST/<split>-NNNNN.h5, NNNNN = 00000, 00001, ...
 * contiguous, at most shard_images images each:
 *   /images   uint8 (n, S, S, 3) RGB NHWC, chunked (64 KiB or one image per chunk), deflate level 4
 *   /labels   int32 (n), index into /classes
 *   /classes  fixed-length strings (classes): the wnids, sorted (byte order); identical in every
 *             shard of both splits
 *   attributes on /: image_size (int S), split (string), resize (string, the method below)
 * No timestamps are stored: the same tree and arguments give byte-identical shards (and checksums).
 *
 * Image pipeline: libjpeg decode (ISLOW DCT) to RGB: grayscale and YCbCr JPEGs through libjpeg's own
 * conversion; CMYK/YCCK JPEGs decoded as CMYK and converted here: with an Adobe marker the values are
 * stored inverted (Photoshop convention) and R = C*K/255, G = M*K/255, B = Y*K/255; without one,
 * R = (255-C)*(255-K)/255 etc. Then the shorter side is resized to S (the longer to floor(S*long/short),
 * as torchvision's Resize(S)) and the centre S x S is cut out (offset floor((long'-S)/2)). Resampling
 * is separable: area averaging (exact fractional pixel coverage) when shrinking an axis, bilinear
 * (half-pixel centres, edge clamped) when enlarging it; an axis already S long is copied unchanged.
 * Only the crop is computed. */
#ifndef RESPROP_IMAGENET_H
#define RESPROP_IMAGENET_H

#include <stdint.h>

#include "datasets/dataset.h"

#define IMAGENET_MAX_SIZE 4096 /* largest S */

/* Converts the ILSVRC-2012 tree under src into shards in dst (created if missing; its parent must
 * exist) at S = size, at most shard_images images per shard.
 *
 * Source layout:
 *   src/train/<wnid>/<name>.JPEG   one folder per class; the class list is the sorted folder names
 *   src/val/                       either the same class folders, or flat JPEGs labelled by the first
 *                                  label file found of: src/val/LOC_val_solution.csv,
 *                                  src/LOC_val_solution.csv, src/val/val_labels.txt, src/val_labels.txt.
 *                                  Both may be mixed: a JPEG in a class folder takes that class, a flat
 *                                  one its label-file entry. No src/val: only train shards (a warning).
 *   LOC_val_solution.csv: header "ImageId,PredictionString", rows "ID,WNID x0 y0 x1 y1 ..."; the first
 *     token of PredictionString is the class. val_labels.txt: lines "FILENAME WNID" or "FILENAME INDEX"
 *     (INDEX 0-based into the sorted wnid list, Caffe's val.txt); blank lines and '#' lines ignored.
 *     Images and entries are matched by file name without directory and .JPEG/.jpeg/.jpg extension.
 * Images are regular files named *.JPEG / *.jpeg / *.jpg (any case); other files and names starting
 * with '.' are ignored. Order: classes in wnid order, files by name (byte order): deterministic.
 *
 * Skipped and counted (each logged as a warning naming the file and libjpeg's message): files that
 * cannot be opened, are not JPEGs or fail to decode, JPEGs whose data ends early or is damaged
 * (libjpeg's "premature end" / "must resync" warnings: the pixels would be filler), and images larger
 * than 2^28 pixels. Other libjpeg warnings (e.g. extraneous bytes) are logged and the image kept.
 * CMYK/YCCK images are converted (counted in the final summary, not skipped).
 * *n_skipped (may be NULL) receives the skipped count of both splits (so far, on failure).
 *
 * Shards are written as NAME.h5.part and all renamed to NAME.h5 only when both splits are complete;
 * on failure every file this call created is removed. Returns 0, or
 *   ERR_CONFIG  size outside [1, IMAGENET_MAX_SIZE], shard_images < 1, a path too long;
 *   ERR_IO      src or src/train missing or unreadable, src/train without class folders, dst not
 *               creatable, dst already holding train-*.h5 / val-*.h5 shards (never overwritten);
 *   ERR_FORMAT  no decodable train image; a val folder that is not a train class; flat val JPEGs
 *               without a label file, or one without an entry; a label-file line not in the format,
 *               with an unknown wnid or an index out of range (file:line), a name listed twice;
 *   ERR_HDF5    writing a shard failed;
 *   ERR_NOMEM.
 * Progress is logged every 10000 images; the summary (images per split, shards, skipped, CMYK) at
 * info level. */
int imagenet_convert(const char *src, const char *dst, int size, int shard_images, int *n_skipped);

/* Reads every dir/<split>-NNNNN.h5 shard (numeric order) into d: c = 3, h x w as stored, classes =
 * number of wnids, class_names = the wnids (owned, freed by dataset_deinit), source = dir,
 * file_bytes and checksum (zlib crc32) over the shard files' bytes in load order. split is "train"
 * or "val"; "test" is accepted as "val" (ImageNet's labelled held-out set), so callers can use the
 * other readers' split names. *d is overwritten without being freed; on failure it is zeroed.
 * Returns 0, or
 *   ERR_CONFIG  another split name, dir too long;
 *   ERR_IO      dir missing or unreadable, no shards for the split, a shard unreadable;
 *   ERR_FORMAT  a gap in the shard numbers (the missing name), a shard that is not HDF5 or lacks
 *               /images, /labels or /classes, wrong ranks/types, images not (n, h, w, 3), label count
 *               != image count, shapes or class lists differing from the first shard's, a label out
 *               of range (shard, index, value), no images at all;
 *   ERR_NOMEM.
 * Every message names the shard. */
int dataset_load_imagenet(Dataset *d, const char *dir, const char *split);

/* The resize + centre-crop step on its own: src (h, w, 3) uint8 -> dst (size, size, 3), as described
 * above. Exposed for tests and tools. ERR_CONFIG for sizes < 1 (or size > IMAGENET_MAX_SIZE),
 * ERR_NOMEM. */
int imagenet_resize_crop(const uint8_t *src, int h, int w, int size, uint8_t *dst);

#endif
