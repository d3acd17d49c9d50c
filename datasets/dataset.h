/* dataset.h: a whole labelled image set held in memory, and the readers that fill one.
 * A Dataset is a value object the caller owns: a loader fills it, dataset_deinit frees it. Loaders
 * build into a private copy and move it into *d only on success, so on failure *d is zeroed and
 * nothing is allocated; every load error is logged naming the file and what was expected. */
#ifndef RESPROP_DATASET_H
#define RESPROP_DATASET_H

#include <stdint.h>

typedef struct {
    int n, c, h, w, classes; /* images are (n,h,w,c) uint8 NHWC */
    uint8_t *images;         /* owned, n*h*w*c */
    int32_t *labels;         /* owned, n, each in [0, classes) */
} Dataset;

/* Frees images and labels and zeroes *d. Accepts a zeroed struct (and NULL); cannot fail. */
void dataset_deinit(Dataset *d);

/* Reads an IDX image file (magic 0x00000803, big-endian u32 dims n, rows, cols, then n*rows*cols
 * pixel bytes) and an IDX label file (magic 0x00000801, n, then n label bytes) into d with c = 1,
 * h = rows, w = cols, classes = `classes` (1..256). Both files may be gzipped or plain (zlib's gzread
 * reads either). *d is overwritten without being freed: pass a zeroed or deinit'ed struct.
 * Returns 0, or
 *   ERR_IO      a file is missing or unreadable;
 *   ERR_FORMAT  wrong magic, truncated header/payload or gzip stream, trailing bytes after the last
 *               record, image and label counts differ, a label >= classes, zero images, or rows/cols
 *               outside [1, 4096];
 *   ERR_CONFIG  classes outside [1, 256];
 *   ERR_NOMEM.
 * On failure *d is zeroed. */
int dataset_load_idx(Dataset *d, const char *images_path, const char *labels_path, int classes);

/* The standard file names inside dir: split "train" -> train-images-idx3-ubyte.gz and
 * train-labels-idx1-ubyte.gz, "test" -> t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz;
 * for each file, if the .gz does not exist the name without .gz is tried. Errors as
 * dataset_load_idx, plus ERR_CONFIG for any other split and ERR_IO when neither name exists. */
int dataset_load_idx_dir(Dataset *d, const char *dir, const char *split, int classes);

#endif
