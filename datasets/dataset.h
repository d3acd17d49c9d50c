/* dataset.h: a whole labelled image set held in memory, and the readers that fill one.
 * A Dataset is a value object the caller owns: a loader fills it, dataset_deinit frees it. Loaders
 * build into a private copy and move it into *d only on success, so on failure *d is zeroed and
 * nothing is allocated; every load error is logged naming the file and what was expected. */
#ifndef RESPROP_DATASET_H
#define RESPROP_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n, c, h, w, classes; /* images are (n,h,w,c) uint8 NHWC */
    uint8_t *images;         /* owned, n*h*w*c */
    int32_t *labels;         /* owned, n, each in [0, classes) */
    /* identity, for run records: what was read */
    char source[1024];       /* the directory or file(s) read, or "synthetic(seed=..)" */
    uint64_t file_bytes;     /* bytes of the files as stored on disk (0 for synthetic) */
    uint32_t checksum;       /* zlib crc32 over those stored bytes, file by file in load order */
    char **class_names;      /* optional (ImageNet): `classes` owned strings, or NULL */
} Dataset;

/* Frees images, labels and class_names and zeroes *d. Accepts a zeroed struct (and NULL); cannot fail. */
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

/* CIFAR-10 binary version in dir: split "train" reads data_batch_1.bin .. data_batch_5.bin, "test"
 * reads test_batch.bin; 3073-byte records (label 0..9, then 1024 R, 1024 G, 1024 B bytes, row-major
 * 32x32), converted to NHWC. ERR_IO: missing/unreadable file or directory; ERR_FORMAT: size not a
 * multiple of the record (say the size and the remainder), a truncated file, a label out of range
 * (file, record, value), an empty file. */
int dataset_load_cifar10(Dataset *d, const char *dir, const char *split);

/* CIFAR-100 binary version in dir: "train" -> train.bin, "test" -> test.bin; 3074-byte records
 * (coarse label 0..19, fine label 0..99, then the image as CIFAR-10). coarse selects the 20 coarse
 * classes instead of the 100 fine ones. Errors as CIFAR-10. */
int dataset_load_cifar100(Dataset *d, const char *dir, const char *split, bool coarse);

/* A learnable synthetic set: `classes` random prototype images (from seed) plus per-sample noise and
 * a random shift; train and test (split "train"/"test") share the prototypes and differ in their
 * samples. Deterministic in (seed, split, n, shape). ERR_CONFIG for bad sizes. */
int dataset_synthetic(Dataset *d, const char *split, int n, int c, int h, int w, int classes, uint64_t seed);

/* out = dir/name without a doubled '/' (cap bytes); ERR_CONFIG, logged with `who`, when it does not
 * fit. */
int dataset_join_path(char *out, size_t cap, const char *dir, const char *name, const char *who);

/* Keeps the first n images (n < d->n); a no-op otherwise. */
void dataset_truncate(Dataset *d, int n);

/* Per-channel mean and standard deviation of the pixels scaled to [0, 1] (c entries each). */
void dataset_channel_stats(const Dataset *d, double *mean, double *std);

#endif
