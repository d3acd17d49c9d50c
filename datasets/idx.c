/* idx.c: the IDX reader (MNIST, Fashion-MNIST), gzipped or plain, into a Dataset. */
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

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dims */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dim */
#define IDX_MAX_SIDE 4096
#define IDX_MAX_CLASSES 256 /* labels are bytes */
/* A payload buffer starts at this size (or the claimed size if smaller) and doubles only as data
 * actually arrives, so a corrupt header claiming terabytes fails as "truncated", not as a huge
 * allocation. */
#define IDX_FIRST_CHUNK_BYTES ((size_t)4 << 20)
/* gzread takes an unsigned length and returns an int: read at most this much per call. */
#define IDX_MAX_READ_BYTES ((size_t)1 << 30)
#define IDX_PATH_BYTES 4096
/* The identity pass reads the stored file in chunks of this size. */
#define IDX_CRC_CHUNK_BYTES ((size_t)1 << 20)

static uint32_t idx_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int idx_open(gzFile *out, const char *path, const char *kind) {
    int rc = 0;
    errno = 0;
    *out = gzopen(path, "rb");
    if (!*out)
        FAIL(errno ? ERR_IO : ERR_NOMEM, "%s file %s: cannot open: %s", kind, path,
             errno ? strerror(errno) : "out of memory");
    gzbuffer(*out, 1u << 17);
fail:
    return rc;
}

/* Reads up to `bytes` into buf; *got receives how many arrived, fewer only at the end of the input.
 * *cut is set when that end is a gzip stream cut short (a truncated .gz file), which callers report
 * with their own expected/found counts. An unreadable file is ERR_IO, corrupt gzip data ERR_FORMAT. */
static int idx_read(gzFile f, const char *path, const char *kind, void *buf, size_t bytes,
                    size_t *got, int *cut) {
    int rc = 0;
    size_t have = 0;
    *got = 0;
    *cut = 0;
    while (have < bytes) {
        size_t want = bytes - have;
        if (want > IDX_MAX_READ_BYTES) want = IDX_MAX_READ_BYTES;
        int r = gzread(f, (unsigned char *)buf + have, (unsigned)want);
        if (r <= 0) break;
        have += (size_t)r;
    }
    *got = have;
    int zerr = Z_OK;
    const char *zmsg = gzerror(f, &zerr);
    size_t plen = strlen(path); /* zlib's message repeats "path: " */
    if (strncmp(zmsg, path, plen) == 0 && zmsg[plen] == ':' && zmsg[plen + 1] == ' ') zmsg += plen + 2;
    switch (zerr) {
    case Z_OK: break;
    case Z_BUF_ERROR: *cut = 1; break;
    case Z_ERRNO: FAIL(ERR_IO, "%s file %s: read error: %s", kind, path, zmsg);
    case Z_MEM_ERROR: FAIL(ERR_NOMEM, "%s file %s: out of memory while decompressing", kind, path);
    default: FAIL(ERR_FORMAT, "%s file %s: corrupt gzip data: %s", kind, path, zmsg);
    }
fail:
    return rc;
}

/* The identity of one file as stored (compressed when it is a .gz): adds its bytes to *crc (zlib
 * crc32, continued) and their count to *bytes. A separate plain-stdio pass over the raw file, run
 * once the file has been decoded and checked. */
static int idx_crc_file(const char *path, const char *kind, uint32_t *crc, uint64_t *bytes) {
    int rc = 0;
    FILE *f = NULL;
    unsigned char *buf = mem_alloc(IDX_CRC_CHUNK_BYTES);
    uLong c = *crc;
    if (!buf) FAIL(ERR_NOMEM, "%s file %s: cannot allocate %zu bytes", kind, path, IDX_CRC_CHUNK_BYTES);
    f = fopen(path, "rb");
    if (!f) FAIL(ERR_IO, "%s file %s: cannot open: %s", kind, path, strerror(errno));
    for (;;) {
        size_t got = fread(buf, 1, IDX_CRC_CHUNK_BYTES, f);
        c = crc32(c, buf, (uInt)got);
        *bytes += got;
        if (got < IDX_CRC_CHUNK_BYTES) break;
    }
    if (ferror(f)) FAIL(ERR_IO, "%s file %s: read error: %s", kind, path, strerror(errno));
    *crc = (uint32_t)c;
fail:
    if (f) fclose(f);
    mem_free(buf);
    return rc;
}

#define IDX_CUT_NOTE(cut) ((cut) ? " (the gzip stream is cut short: truncated .gz file)" : "")

/* Reads the magic and n_dims big-endian u32 dimensions (n_dims <= 3) and checks the magic. */
static int idx_read_header(gzFile f, const char *path, const char *kind, uint32_t magic_want,
                           uint32_t *dims, int n_dims) {
    int rc = 0;
    unsigned char hdr[16];
    size_t bytes = 4 + 4 * (size_t)n_dims, got = 0;
    int cut = 0;
    ASSERT(n_dims >= 1 && n_dims <= 3);
    TRY(idx_read(f, path, kind, hdr, bytes, &got, &cut));
    if (got >= 4) {
        uint32_t magic = idx_be32(hdr);
        if (magic != magic_want) {
            const char *hint = "";
            if (magic == IDX_MAGIC_IMAGES || magic == IDX_MAGIC_LABELS)
                hint = magic == IDX_MAGIC_IMAGES
                           ? " (that is an IDX image file: are the image and label paths swapped?)"
                           : " (that is an IDX label file: are the image and label paths swapped?)";
            FAIL(ERR_FORMAT,
                 "%s file %s: wrong magic 0x%08x, expected 0x%08x (IDX, unsigned byte, dims: %d)%s",
                 kind, path, (unsigned)magic, (unsigned)magic_want, n_dims, hint);
        }
    }
    if (got < bytes)
        FAIL(ERR_FORMAT,
             "%s file %s: truncated header: expected %zu bytes (4-byte magic + %d 4-byte dims), "
             "found %zu%s",
             kind, path, bytes, n_dims, got, IDX_CUT_NOTE(cut));
    for (int i = 0; i < n_dims; i++) dims[i] = idx_be32(hdr + 4 + 4 * i);
fail:
    return rc;
}

/* Reads exactly n_records * record_bytes payload bytes into a new buffer *out (caller frees with
 * mem_free) and checks that nothing follows them. */
static int idx_read_payload(gzFile f, const char *path, const char *kind, const char *record_name,
                            size_t n_records, size_t record_bytes, uint8_t **out) {
    int rc = 0;
    size_t total = n_records * record_bytes, have = 0, got = 0;
    int cut = 0;
    size_t cap = total < IDX_FIRST_CHUNK_BYTES ? total : IDX_FIRST_CHUNK_BYTES;
    uint8_t *buf = mem_alloc(cap), *bigger = NULL;
    unsigned char extra;
    *out = NULL;
    if (!buf) FAIL(ERR_NOMEM, "%s file %s: cannot allocate %zu bytes", kind, path, cap);
    for (;;) {
        TRY(idx_read(f, path, kind, buf + have, cap - have, &got, &cut));
        have += got;
        if (have < cap || cap == total) break;
        size_t next = cap > total / 2 ? total : 2 * cap;
        bigger = mem_alloc(next);
        if (!bigger) FAIL(ERR_NOMEM, "%s file %s: cannot allocate %zu bytes", kind, path, next);
        memcpy(bigger, buf, have);
        mem_free(buf);
        buf = bigger;
        bigger = NULL;
        cap = next;
    }
    if (have < total)
        FAIL(ERR_FORMAT,
             "%s file %s: truncated: the header promises %zu %ss (%zu bytes after the header), found "
             "%zu bytes (%zu whole %ss)%s",
             kind, path, n_records, record_name, total, have, have / record_bytes, record_name,
             IDX_CUT_NOTE(cut));
    TRY(idx_read(f, path, kind, &extra, 1, &got, &cut));
    if (cut)
        FAIL(ERR_FORMAT, "%s file %s: all %zu %ss are present but the gzip stream is cut short after "
             "them (truncated .gz file)", kind, path, n_records, record_name);
    if (got)
        FAIL(ERR_FORMAT, "%s file %s: unexpected data after the %zu %ss the header promises", kind,
             path, n_records, record_name);
    *out = buf;
    buf = NULL;
fail:
    mem_free(buf);
    return rc;
}

int dataset_load_idx(Dataset *d, const char *images_path, const char *labels_path, int classes) {
    int rc = 0;
    Dataset t = {0};
    gzFile fi = NULL, fl = NULL;
    uint8_t *raw_labels = NULL; /* (n) */
    uint32_t idims[3], ldims[1];
    ASSERT(d && images_path && labels_path);
    *d = (Dataset){0};
    if (classes < 1 || classes > IDX_MAX_CLASSES)
        FAIL(ERR_CONFIG, "idx: classes = %d for %s, expected 1..%d", classes, labels_path,
             IDX_MAX_CLASSES);

    TRY(idx_open(&fi, images_path, "images"));
    TRY(idx_read_header(fi, images_path, "images", IDX_MAGIC_IMAGES, idims, 3));
    if (idims[0] == 0) FAIL(ERR_FORMAT, "images file %s: zero images, expected at least one", images_path);
    if (idims[0] > INT_MAX)
        FAIL(ERR_FORMAT, "images file %s: absurd image count %u, expected at most %d", images_path,
             (unsigned)idims[0], INT_MAX);
    if (idims[1] < 1 || idims[1] > IDX_MAX_SIDE || idims[2] < 1 || idims[2] > IDX_MAX_SIDE)
        FAIL(ERR_FORMAT, "images file %s: absurd image size %ux%u (rows x cols), expected 1..%d each",
             images_path, (unsigned)idims[1], (unsigned)idims[2], IDX_MAX_SIDE);

    TRY(idx_open(&fl, labels_path, "labels"));
    TRY(idx_read_header(fl, labels_path, "labels", IDX_MAGIC_LABELS, ldims, 1));
    if (ldims[0] != idims[0])
        FAIL(ERR_FORMAT, "image and label counts differ: %s has %u images, %s has %u labels",
             images_path, (unsigned)idims[0], labels_path, (unsigned)ldims[0]);

    t.n = (int)idims[0];
    t.c = 1;
    t.h = (int)idims[1];
    t.w = (int)idims[2];
    t.classes = classes;
    TRY(idx_read_payload(fi, images_path, "images", "image", (size_t)t.n, (size_t)t.h * (size_t)t.w,
                         &t.images));
    TRY(idx_read_payload(fl, labels_path, "labels", "label", (size_t)t.n, 1, &raw_labels));
    t.labels = mem_alloc((size_t)t.n * sizeof *t.labels);
    if (!t.labels) FAIL(ERR_NOMEM, "labels file %s: cannot allocate %d labels", labels_path, t.n);
    for (int i = 0; i < t.n; i++) {
        if (raw_labels[i] >= classes)
            FAIL(ERR_FORMAT, "labels file %s: record %d has label %d, expected 0..%d (%d classes)",
                 labels_path, i, raw_labels[i], classes - 1, classes);
        t.labels[i] = raw_labels[i];
    }
    t.checksum = (uint32_t)crc32(0L, Z_NULL, 0);
    TRY(idx_crc_file(images_path, "images", &t.checksum, &t.file_bytes));
    TRY(idx_crc_file(labels_path, "labels", &t.checksum, &t.file_bytes));
    snprintf(t.source, sizeof t.source, "%s + %s", images_path, labels_path);
    log_msg(LOG_INFO, "idx: %s: %d images of %dx%d, %d classes, %llu bytes, crc32 %08x", images_path,
            t.n, t.h, t.w, classes, (unsigned long long)t.file_bytes, (unsigned)t.checksum);
    *d = t;
    t = (Dataset){0};
fail:
    mem_free(raw_labels);
    if (fl) gzclose(fl);
    if (fi) gzclose(fi);
    dataset_deinit(&t);
    return rc;
}

/* out = dir/name, or dir/name without its ".gz" when only that exists. */
static int idx_resolve(char *out, size_t cap, const char *dir, const char *name_gz) {
    int rc = 0;
    struct stat st;
    TRY(dataset_join_path(out, cap, dir, name_gz, "idx"));
    size_t w = strlen(out);
    if (stat(out, &st) == 0 || errno != ENOENT) goto fail; /* exists (or let open report why not) */
    out[w - 3] = '\0';                                      /* drop ".gz" */
    if (stat(out, &st) == 0 || errno != ENOENT) goto fail;
    FAIL(ERR_IO, "idx: neither %s.gz nor %s exists", out, out);
fail:
    return rc;
}

int dataset_load_idx_dir(Dataset *d, const char *dir, const char *split, int classes) {
    int rc = 0;
    char images_path[IDX_PATH_BYTES], labels_path[IDX_PATH_BYTES], name[64];
    const char *prefix = NULL;
    ASSERT(d && dir && split);
    *d = (Dataset){0};
    if (strcmp(split, "train") == 0) prefix = "train";
    else if (strcmp(split, "test") == 0) prefix = "t10k";
    else FAIL(ERR_CONFIG, "idx: unknown split \"%s\" for %s, expected \"train\" or \"test\"", split, dir);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    TRY(idx_resolve(images_path, sizeof images_path, dir, name));
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", prefix);
    TRY(idx_resolve(labels_path, sizeof labels_path, dir, name));
    TRY(dataset_load_idx(d, images_path, labels_path, classes));
    snprintf(d->source, sizeof d->source, "%s (%s)", dir, split);
fail:
    return rc;
}
