/* cifar.c: the CIFAR-10 and CIFAR-100 binary versions into a Dataset (planar RGB -> NHWC).
 * Both formats are a plain sequence of fixed-size records; one reader serves both, told the record
 * layout by a CifarFormat. Files are read with stdio in chunks of whole records (about 1 MiB), the
 * crc32 identity computed over the same bytes as they arrive. */
#include "datasets/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define CIFAR_SIDE 32
#define CIFAR_C 3
#define CIFAR_IMAGE_BYTES (CIFAR_C * CIFAR_SIDE * CIFAR_SIDE) /* 3072: R plane, G plane, B plane */
#define CIFAR_CHUNK_BYTES ((size_t)1 << 20)
#define CIFAR_MAX_FILES 5
#define CIFAR_PATH_BYTES 4096

/* One binary format: each record is n_labels label bytes, then the planar 32x32 RGB image. */
typedef struct {
    const char *name;            /* "cifar10", for messages */
    int n_labels;                /* label bytes per record: 1 or 2 */
    const char *label_names[2];  /* per label byte, for messages */
    int label_classes[2];        /* each label byte must be < this */
    int use;                     /* which label byte becomes Dataset.labels */
} CifarFormat;

static size_t cifar_record_bytes(const CifarFormat *fmt) { return (size_t)fmt->n_labels + CIFAR_IMAGE_BYTES; }

/* path = dir/name; ERR_CONFIG when it does not fit. */
static int cifar_path(char *out, const char *dir, const char *name) {
    return dataset_join_path(out, CIFAR_PATH_BYTES, dir, name, "cifar");
}

/* The number of records in a file, from its size: ERR_IO when it is missing or not a regular file,
 * ERR_FORMAT when it is empty or not a whole number of records. */
static int cifar_count(const CifarFormat *fmt, const char *path, size_t *n_records) {
    int rc = 0;
    struct stat st;
    size_t rec = cifar_record_bytes(fmt);
    if (stat(path, &st) != 0) FAIL(ERR_IO, "%s: file %s: %s", fmt->name, path, strerror(errno));
    if (!S_ISREG(st.st_mode)) FAIL(ERR_IO, "%s: file %s: not a regular file", fmt->name, path);
    if (st.st_size == 0)
        FAIL(ERR_FORMAT, "%s: file %s: empty file, expected %zu-byte records", fmt->name, path, rec);
    size_t size = (size_t)st.st_size, rem = size % rec;
    if (rem)
        FAIL(ERR_FORMAT,
             "%s: file %s: size %zu bytes is not a multiple of the %zu-byte record: %zu whole "
             "records and a remainder of %zu bytes (truncated or not a %s binary file?)",
             fmt->name, path, size, rec, size / rec, rem, fmt->name);
    *n_records = size / rec;
fail:
    return rc;
}

/* Reads the n_records records of path into images (n_records,32,32,3) NHWC and labels (n_records),
 * continuing *crc over the bytes read. buf holds CIFAR_CHUNK_BYTES. */
static int cifar_read_file(const CifarFormat *fmt, const char *path, size_t n_records, uint8_t *images,
                           int32_t *labels, unsigned char *buf, uint32_t *crc) {
    int rc = 0;
    size_t rec = cifar_record_bytes(fmt), per_chunk = CIFAR_CHUNK_BYTES / rec;
    uLong c = *crc;
    FILE *f = fopen(path, "rb");
    if (!f) FAIL(ERR_IO, "%s: file %s: cannot open: %s", fmt->name, path, strerror(errno));
    for (size_t r0 = 0; r0 < n_records; r0 += per_chunk) {
        size_t m = n_records - r0 < per_chunk ? n_records - r0 : per_chunk;
        size_t got = fread(buf, 1, m * rec, f);
        if (got < m * rec) {
            if (ferror(f)) FAIL(ERR_IO, "%s: file %s: read error: %s", fmt->name, path, strerror(errno));
            FAIL(ERR_FORMAT, "%s: file %s: truncated while reading: expected %zu bytes, found %zu",
                 fmt->name, path, n_records * rec, r0 * rec + got);
        }
        c = crc32(c, buf, (uInt)got);
        for (size_t i = 0; i < m; i++) {
            const unsigned char *src = buf + i * rec;
            for (int k = 0; k < fmt->n_labels; k++)
                if (src[k] >= fmt->label_classes[k])
                    FAIL(ERR_FORMAT, "%s: file %s: record %zu has %s %d, expected 0..%d", fmt->name,
                         path, r0 + i, fmt->label_names[k], src[k], fmt->label_classes[k] - 1);
            labels[r0 + i] = src[fmt->use];
            const unsigned char *planes = src + fmt->n_labels; /* (3,32,32) planar */
            uint8_t *dst = images + (r0 + i) * CIFAR_IMAGE_BYTES; /* (32,32,3) NHWC */
            for (int p = 0; p < CIFAR_SIDE * CIFAR_SIDE; p++)
                for (int ch = 0; ch < CIFAR_C; ch++) dst[p * CIFAR_C + ch] = planes[ch * CIFAR_SIDE * CIFAR_SIDE + p];
        }
    }
    *crc = (uint32_t)c;
fail:
    if (f) fclose(f);
    return rc;
}

/* Loads names[0..n_files) of dir in order: every size is checked before anything is allocated. */
static int cifar_load(Dataset *d, const CifarFormat *fmt, const char *dir, const char *split,
                      const char *const *names, int n_files, const char *variant) {
    int rc = 0;
    Dataset t = {0};
    char paths[CIFAR_MAX_FILES][CIFAR_PATH_BYTES];
    size_t counts[CIFAR_MAX_FILES], total = 0;
    unsigned char *buf = NULL;
    struct stat st;
    ASSERT(n_files >= 1 && n_files <= CIFAR_MAX_FILES);

    if (stat(dir, &st) != 0) FAIL(ERR_IO, "%s: directory %s: %s", fmt->name, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) FAIL(ERR_IO, "%s: %s is not a directory", fmt->name, dir);
    for (int k = 0; k < n_files; k++) {
        TRY(cifar_path(paths[k], dir, names[k]));
        TRY(cifar_count(fmt, paths[k], &counts[k]));
        total += counts[k];
    }
    if (total > INT_MAX)
        FAIL(ERR_FORMAT, "%s: %s holds %zu records, expected at most %d", fmt->name, dir, total, INT_MAX);

    t.n = (int)total;
    t.c = CIFAR_C;
    t.h = t.w = CIFAR_SIDE;
    t.classes = fmt->label_classes[fmt->use];
    t.images = mem_alloc(total * CIFAR_IMAGE_BYTES);
    t.labels = mem_alloc(total * sizeof *t.labels);
    buf = mem_alloc(CIFAR_CHUNK_BYTES);
    if (!t.images || !t.labels || !buf)
        FAIL(ERR_NOMEM, "%s: cannot allocate %zu images for %s", fmt->name, total, dir);
    t.checksum = (uint32_t)crc32(0L, Z_NULL, 0);
    for (int k = 0, at = 0; k < n_files; at += (int)counts[k], k++) {
        TRY(cifar_read_file(fmt, paths[k], counts[k], t.images + (size_t)at * CIFAR_IMAGE_BYTES,
                            t.labels + at, buf, &t.checksum));
        t.file_bytes += counts[k] * cifar_record_bytes(fmt);
    }
    snprintf(t.source, sizeof t.source, "%s (%s%s)", dir, split, variant);
    log_msg(LOG_INFO, "%s: %s: %d %s images, %d classes, %llu bytes, crc32 %08x", fmt->name, dir, t.n,
            split, t.classes, (unsigned long long)t.file_bytes, (unsigned)t.checksum);
    *d = t;
    t = (Dataset){0};
fail:
    mem_free(buf);
    dataset_deinit(&t);
    return rc;
}

int dataset_load_cifar10(Dataset *d, const char *dir, const char *split) {
    int rc = 0;
    static const CifarFormat fmt = {"cifar10", 1, {"label", NULL}, {10, 0}, 0};
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const test[] = {"test_batch.bin"};
    ASSERT(d && dir && split);
    *d = (Dataset){0};
    if (strcmp(split, "train") == 0) TRY(cifar_load(d, &fmt, dir, split, train, 5, ""));
    else if (strcmp(split, "test") == 0) TRY(cifar_load(d, &fmt, dir, split, test, 1, ""));
    else FAIL(ERR_CONFIG, "cifar10: unknown split \"%s\" for %s, expected \"train\" or \"test\"", split, dir);
fail:
    return rc;
}

int dataset_load_cifar100(Dataset *d, const char *dir, const char *split, bool coarse) {
    int rc = 0;
    static const CifarFormat fine_fmt = {"cifar100", 2, {"coarse label", "fine label"}, {20, 100}, 1};
    CifarFormat fmt = fine_fmt;
    const char *name = NULL;
    ASSERT(d && dir && split);
    *d = (Dataset){0};
    if (coarse) fmt.use = 0;
    if (strcmp(split, "train") == 0) name = "train.bin";
    else if (strcmp(split, "test") == 0) name = "test.bin";
    else FAIL(ERR_CONFIG, "cifar100: unknown split \"%s\" for %s, expected \"train\" or \"test\"", split, dir);
    TRY(cifar_load(d, &fmt, dir, split, &name, 1, coarse ? ", coarse labels" : ", fine labels"));
fail:
    return rc;
}
