/* imagenet.c: the ILSVRC-2012 JPEG tree -> HDF5 shard converter and the shard reader.
 * See imagenet.h for the layouts, the image pipeline and the error contract. */
#include "datasets/imagenet.h"

#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>
#include <jerror.h>
#include <jpeglib.h>
#include <zlib.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timer.h"

#define IMAGENET_PATH_BYTES 4096
#define IMAGENET_MAX_PIXELS ((uint64_t)1 << 28)  /* larger JPEGs are skipped */
#define IMAGENET_MAX_SIDE 65535                   /* JPEG's own limit, and the reader's bound */
#define IMAGENET_MAX_CLASSES (1 << 20)
#define IMAGENET_CHUNK_BYTES 65536                /* target bytes of an /images chunk */
#define IMAGENET_LABEL_CHUNK 16384                /* labels per /labels chunk (at most) */
#define IMAGENET_DEFLATE_LEVEL 4
#define IMAGENET_PROGRESS_EVERY 10000             /* images between progress lines */
#define IMAGENET_CRC_BUF_BYTES ((size_t)1 << 20)
#define IMAGENET_RESIZE_NOTE                                                                       \
    "shorter side to S (longer floor(S*long/short)), centre crop SxS; area averaging when "        \
    "shrinking an axis, bilinear when enlarging"

/* ---- HDF5 status checks: our own log line naming the file, with HDF5's messages ---- */

typedef struct {
    char inner[256]; /* the most specific message (where the error was detected) */
    char outer[256]; /* the API-level message */
    int n;
} ImagenetH5Msg;

static herr_t imagenet_h5_walk(unsigned n, const H5E_error2_t *e, void *data) {
    ImagenetH5Msg *m = data;
    const char *desc = e->desc && e->desc[0] ? e->desc : "(no description)";
    if (m->n == 0) snprintf(m->inner, sizeof m->inner, "%s", desc);
    snprintf(m->outer, sizeof m->outer, "%s", desc);
    m->n++;
    return 0;
}

static void imagenet_h5_report(const char *file, int line, const char *call, const char *path) {
    ImagenetH5Msg m = {{0}, {0}, 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, imagenet_h5_walk, &m);
    H5Eclear2(H5E_DEFAULT);
    char msg[600];
    if (m.n == 0) snprintf(msg, sizeof msg, "%s: no HDF5 error message", path);
    else if (m.n == 1 || strcmp(m.inner, m.outer) == 0) snprintf(msg, sizeof msg, "%s: %s", path, m.inner);
    else snprintf(msg, sizeof msg, "%s: %s: %s", path, m.outer, m.inner);
    err_report(file, line, call, msg);
}

/* Run an HDF5 call (herr_t or hid_t); on a negative result log it with `path` and HDF5's own
 * messages, set rc = code and jump to fail. */
#define IMAGENET_H5(call, code, path)                                                  \
    do {                                                                               \
        if ((call) < 0) {                                                              \
            imagenet_h5_report(__FILE__, __LINE__, #call, path);                       \
            rc = (code);                                                               \
            goto fail;                                                                 \
        }                                                                              \
    } while (0)

static void imagenet_h5_close(hid_t *id, herr_t (*close_fn)(hid_t)) {
    if (*id >= 0) close_fn(*id);
    *id = H5I_INVALID_HID;
}

/* ---- small helpers: paths, growing buffers, sorted name lists ---- */

/* out = a/b (no doubled '/'); ERR_CONFIG when it does not fit. */
static int imagenet_join(char *out, const char *a, const char *b) {
    return dataset_join_path(out, IMAGENET_PATH_BYTES, a, b, "imagenet");
}

/* Grows *buf (elements of elem bytes, capacity *cap) to hold at least need elements. */
static int imagenet_grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > ((size_t)-1 / 2) / elem) return ERR_NOMEM;
        ncap *= 2;
    }
    void *nb = mem_alloc(ncap * elem);
    if (!nb) return ERR_NOMEM;
    if (*buf) memcpy(nb, *buf, *cap * elem);
    mem_free(*buf);
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Names kept back to back in one pool (a directory of 1300 JPEGs or 50000 val files costs two
 * allocations, not one per name). v is built by imagenet_names_sort. */
typedef struct {
    char *pool;   /* NUL-terminated names back to back */
    size_t used, cap;
    size_t *offs; /* (n) offsets into pool */
    size_t n, offs_cap;
    char **v;     /* (n) pointers into pool, sorted; valid after imagenet_names_sort */
} ImagenetNames;

static void imagenet_names_free(ImagenetNames *l) {
    mem_free(l->pool);
    mem_free(l->offs);
    mem_free(l->v);
    *l = (ImagenetNames){0};
}

static int imagenet_names_add(ImagenetNames *l, const char *name) {
    size_t len = strlen(name) + 1;
    if (imagenet_grow((void **)&l->pool, &l->cap, l->used + len, 1) < 0 ||
        imagenet_grow((void **)&l->offs, &l->offs_cap, l->n + 1, sizeof *l->offs) < 0)
        return ERR_NOMEM;
    memcpy(l->pool + l->used, name, len);
    l->offs[l->n++] = l->used;
    l->used += len;
    return 0;
}

static int imagenet_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Shard names share their prefix, so shorter = smaller number; then byte order. */
static int imagenet_cmp_shard(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t lx = strlen(x), ly = strlen(y);
    if (lx != ly) return lx < ly ? -1 : 1;
    return strcmp(x, y);
}

static int imagenet_names_sort(ImagenetNames *l, int (*cmp)(const void *, const void *)) {
    mem_free(l->v);
    l->v = mem_alloc((l->n ? l->n : 1) * sizeof *l->v);
    if (!l->v) return ERR_NOMEM;
    for (size_t i = 0; i < l->n; i++) l->v[i] = l->pool + l->offs[i];
    qsort(l->v, l->n, sizeof *l->v, cmp);
    return 0;
}

/* Index of name in a list sorted by imagenet_cmp_str, or -1. */
static int imagenet_names_find(const ImagenetNames *l, const char *name) {
    char *const *hit = bsearch(&name, l->v, l->n, sizeof *l->v, imagenet_cmp_str);
    return hit ? (int)(hit - l->v) : -1;
}

/* Length of name without a .JPEG/.jpeg/.jpg extension (any case); *is_jpeg says whether it had one. */
static size_t imagenet_stem_len(const char *name, int *is_jpeg) {
    const char *dot = strrchr(name, '.');
    int j = dot && dot != name && (strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".jpg") == 0);
    if (is_jpeg) *is_jpeg = j;
    return j ? (size_t)(dot - name) : strlen(name);
}

typedef enum { IMAGENET_LIST_DIRS, IMAGENET_LIST_JPEGS, IMAGENET_LIST_FILES } ImagenetListKind;

/* The entries of dir of one kind (subdirectories; regular files named *.JPEG etc.; any regular
 * file), names starting with '.' excluded, sorted in byte order. Symlinks are followed.
 * ERR_IO (naming dir) when it cannot be opened or read. */
static int imagenet_list(ImagenetNames *out, const char *dir, ImagenetListKind kind) {
    int rc = 0;
    char path[IMAGENET_PATH_BYTES];
    struct dirent *e;
    *out = (ImagenetNames){0};
    errno = 0;
    DIR *dh = opendir(dir);
    if (!dh) FAIL(ERR_IO, "imagenet: cannot open directory %s: %s", dir, strerror(errno));
    for (;;) {
        errno = 0;
        if (!(e = readdir(dh))) {
            if (errno) FAIL(ERR_IO, "imagenet: cannot read directory %s: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') continue;
        int is_jpeg = 0;
        imagenet_stem_len(e->d_name, &is_jpeg);
        if (kind == IMAGENET_LIST_JPEGS && !is_jpeg) continue;
        int is_dir = e->d_type == DT_DIR, is_reg = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat st;
            TRY(imagenet_join(path, dir, e->d_name));
            if (stat(path, &st) != 0) continue; /* a dangling link: not an entry we can use */
            is_dir = S_ISDIR(st.st_mode);
            is_reg = S_ISREG(st.st_mode);
        }
        if (kind == IMAGENET_LIST_DIRS ? !is_dir : !is_reg) continue;
        if (imagenet_names_add(out, e->d_name) < 0)
            FAIL(ERR_NOMEM, "imagenet: out of memory listing %s", dir);
    }
    if (imagenet_names_sort(out, imagenet_cmp_str) < 0)
        FAIL(ERR_NOMEM, "imagenet: out of memory listing %s", dir);
fail:
    if (dh) closedir(dh);
    if (rc < 0) imagenet_names_free(out);
    return rc;
}

/* ---- JPEG decoding: libjpeg with a setjmp error manager, so bad files never end the process ---- */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg passes &pub */
    jmp_buf jump;
    const char *path;          /* the file being decoded, for warnings */
    char msg[JMSG_LENGTH_MAX]; /* why the decode stopped */
} ImagenetJpegErr;

static void imagenet_jpeg_error_exit(j_common_ptr cinfo) {
    ImagenetJpegErr *e = (ImagenetJpegErr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings that mean pixel data is missing (libjpeg would fill it in) end the decode like errors;
 * other warnings are logged once per file and the image is kept. */
static void imagenet_jpeg_emit(j_common_ptr cinfo, int level) {
    ImagenetJpegErr *e = (ImagenetJpegErr *)cinfo->err;
    if (level >= 0) return; /* trace messages */
    int code = e->pub.msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC) {
        cinfo->err->format_message(cinfo, e->msg);
        longjmp(e->jump, 1);
    }
    if (e->pub.num_warnings++ == 0) {
        char text[JMSG_LENGTH_MAX];
        cinfo->err->format_message(cinfo, text);
        log_msg(LOG_WARN, "imagenet: %s: libjpeg warning (image kept): %s", e->path, text);
    }
}

typedef struct {
    uint8_t *rgb; /* (h, w, 3) owned; for CMYK images w*4 scratch bytes follow */
    int h, w;
    int cmyk;     /* was CMYK/YCCK, converted here */
} ImagenetPic;

/* Decodes path into pic. Returns 0, 1 when the file is skipped (logged with the reason: cannot be
 * opened, not a JPEG, corrupt, damaged, too large), or ERR_NOMEM. On anything but 0 pic is empty. */
static int imagenet_decode(const char *path, ImagenetPic *pic) {
    volatile int rc = 0; /* set after setjmp, read after a longjmp */
    struct jpeg_decompress_struct cinfo;
    ImagenetJpegErr jerr;
    *pic = (ImagenetPic){0};
    memset(&cinfo, 0, sizeof cinfo);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_msg(LOG_WARN, "imagenet: skipping %s: cannot open: %s", path, strerror(errno));
        return 1;
    }
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = imagenet_jpeg_error_exit;
    jerr.pub.emit_message = imagenet_jpeg_emit;
    jerr.path = path;
    jerr.msg[0] = '\0';
    if (setjmp(jerr.jump)) {
        /* only structs reached through pointers are used past this point */
        log_msg(LOG_WARN, "imagenet: skipping %s: %s", path, jerr.msg);
        rc = 1;
        goto fail;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if ((uint64_t)cinfo.image_width * cinfo.image_height > IMAGENET_MAX_PIXELS) {
        log_msg(LOG_WARN, "imagenet: skipping %s: %ux%u pixels, more than the %llu allowed", path,
                (unsigned)cinfo.image_width, (unsigned)cinfo.image_height,
                (unsigned long long)IMAGENET_MAX_PIXELS);
        rc = 1;
        goto fail;
    }
    pic->cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = pic->cmyk ? JCS_CMYK : JCS_RGB; /* libjpeg: gray/YCbCr -> RGB, YCCK -> CMYK */
    cinfo.dct_method = JDCT_ISLOW;                          /* exact integer IDCT: reproducible */
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (pic->cmyk ? 4 : 3)) {
        log_msg(LOG_WARN, "imagenet: skipping %s: libjpeg gave %d components, expected %d", path,
                cinfo.output_components, pic->cmyk ? 4 : 3);
        rc = 1;
        goto fail;
    }
    pic->w = (int)cinfo.output_width;
    pic->h = (int)cinfo.output_height;
    size_t row_bytes = (size_t)pic->w * 3;
    pic->rgb = mem_alloc(row_bytes * (size_t)pic->h + (pic->cmyk ? (size_t)pic->w * 4 : 0));
    if (!pic->rgb) FAIL(ERR_NOMEM, "imagenet: %s: cannot allocate a %dx%d image", path, pic->w, pic->h);
    int inverted = cinfo.saw_Adobe_marker; /* Adobe (Photoshop) CMYK is stored inverted */
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = pic->rgb + row_bytes * cinfo.output_scanline;
        JSAMPROW row = pic->cmyk ? pic->rgb + row_bytes * (size_t)pic->h : dst;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            log_msg(LOG_WARN, "imagenet: skipping %s: libjpeg returned no scanline at row %u", path,
                    (unsigned)cinfo.output_scanline);
            rc = 1;
            goto fail;
        }
        if (!pic->cmyk) continue;
        for (int x = 0; x < pic->w; x++) {
            const uint8_t *p = row + 4 * x;
            unsigned k = inverted ? p[3] : 255u - p[3];
            for (int ch = 0; ch < 3; ch++) {
                unsigned c = inverted ? p[ch] : 255u - p[ch];
                dst[3 * x + ch] = (uint8_t)((c * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
fail:
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    if (rc != 0) {
        mem_free(pic->rgb);
        *pic = (ImagenetPic){0};
    }
    return rc;
}

/* ---- resize + centre crop ---- */

/* The taps of `size` outputs of one axis: n_src pixels resized to n_dst, outputs off .. off+size-1.
 * Output j reads count[j] source pixels from first[j] with weights w[j*max_taps ..] (summing to 1).
 * Area averaging (each source pixel weighted by the length of its overlap with the output pixel's
 * footprint) when n_dst <= n_src, bilinear with half-pixel centres and clamped edges otherwise. */
static void imagenet_taps(int n_src, int n_dst, int off, int size, int max_taps, int *first,
                          int *count, float *w) {
    double s = (double)n_src / n_dst;
    for (int j = 0; j < size; j++) {
        float *wj = w + (size_t)j * (size_t)max_taps;
        int k = 0;
        if (n_dst <= n_src) {
            double lo = (off + j) * s, hi = lo + s, sum = 0;
            int i0 = (int)floor(lo), i1 = (int)ceil(hi);
            if (i1 > n_src) i1 = n_src;
            if (i0 > i1 - 1) i0 = i1 - 1;
            first[j] = i0;
            for (int i = i0; i < i1 && k < max_taps; i++) {
                double a = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                if (a < 0) a = 0;
                wj[k++] = (float)a;
                sum += a;
            }
            for (int t = 0; t < k; t++) wj[t] = sum > 0 ? (float)(wj[t] / sum) : 1.0f / (float)k;
        } else {
            double x = (off + j + 0.5) * s - 0.5;
            if (x < 0) x = 0;
            if (x > n_src - 1) x = n_src - 1;
            int i0 = (int)floor(x);
            double t = x - i0;
            first[j] = i0;
            wj[k++] = (float)(1.0 - t);
            if (i0 + 1 < n_src && t > 0) wj[k++] = (float)t;
        }
        count[j] = k;
    }
}

int imagenet_resize_crop(const uint8_t *src, int h, int w, int size, uint8_t *dst) {
    int rc = 0;
    void *taps = NULL;
    float *tmp = NULL; /* (rows, size, 3) the horizontally resampled source rows */
    ASSERT(src && dst);
    if (h < 1 || w < 1 || size < 1 || size > IMAGENET_MAX_SIZE)
        FAIL(ERR_CONFIG, "imagenet: cannot resize a %dx%d image to %d (expected sizes >= 1, S <= %d)",
             w, h, size, IMAGENET_MAX_SIZE);
    int nh, nw; /* the resized image before the crop */
    if (w >= h) {
        nh = size;
        nw = (int)((int64_t)size * w / h);
    } else {
        nw = size;
        nh = (int)((int64_t)size * h / w);
    }
    int ox = (nw - size) / 2, oy = (nh - size) / 2;
    int mx = nw <= w ? (int)ceil((double)w / nw) + 2 : 2, my = nh <= h ? (int)ceil((double)h / nh) + 2 : 2;
    size_t ints = 4 * (size_t)size, floats = (size_t)size * (size_t)(mx + my);
    taps = mem_alloc(ints * sizeof(int) + floats * sizeof(float));
    if (!taps) FAIL(ERR_NOMEM, "imagenet: cannot allocate resize tables for %dx%d -> %d", w, h, size);
    int *fx = taps, *cx = fx + size, *fy = cx + size, *cy = fy + size;
    float *wx = (float *)(cy + size), *wy = wx + (size_t)size * (size_t)mx;
    imagenet_taps(w, nw, ox, size, mx, fx, cx, wx);
    imagenet_taps(h, nh, oy, size, my, fy, cy, wy);
    int y0 = fy[0], y1 = fy[0];
    for (int j = 0; j < size; j++) {
        if (fy[j] < y0) y0 = fy[j];
        if (fy[j] + cy[j] - 1 > y1) y1 = fy[j] + cy[j] - 1;
    }
    size_t rows = (size_t)(y1 - y0 + 1), row_floats = (size_t)size * 3;
    tmp = mem_alloc(rows * row_floats * sizeof *tmp);
    if (!tmp) FAIL(ERR_NOMEM, "imagenet: cannot allocate resize rows for %dx%d -> %d", w, h, size);
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *s = src + ((size_t)y0 + r) * (size_t)w * 3;
        float *t = tmp + r * row_floats;
        for (int x = 0; x < size; x++) {
            const float *wt = wx + (size_t)x * (size_t)mx;
            const uint8_t *p = s + (size_t)fx[x] * 3;
            float a0 = 0, a1 = 0, a2 = 0;
            for (int k = 0; k < cx[x]; k++, p += 3) {
                a0 += wt[k] * p[0];
                a1 += wt[k] * p[1];
                a2 += wt[k] * p[2];
            }
            t[3 * x] = a0;
            t[3 * x + 1] = a1;
            t[3 * x + 2] = a2;
        }
    }
    for (int y = 0; y < size; y++) {
        const float *wt = wy + (size_t)y * (size_t)my;
        uint8_t *o = dst + (size_t)y * row_floats;
        for (size_t i = 0; i < row_floats; i++) {
            const float *t = tmp + (size_t)(fy[y] - y0) * row_floats + i;
            float a = 0;
            for (int k = 0; k < cy[y]; k++, t += row_floats) a += wt[k] * *t;
            a += 0.5f;
            o[i] = a <= 0 ? 0 : a >= 255 ? 255 : (uint8_t)a;
        }
    }
fail:
    mem_free(tmp);
    mem_free(taps);
    return rc;
}

/* ---- shard writer ---- */

/* The shards of one split. A shard is opened at its first image, filled through a buffer of whole
 * chunks, and closed (with /classes and the attributes) when full or at the end. */
typedef struct {
    const char *dst, *split;
    int size, shard_images, chunk_images;
    const ImagenetNames *wnids;
    hid_t file, images, labels; /* the open shard, when is_open */
    int is_open;
    int n_shards;               /* shards started, the open one included: DST/split-00000 .. */
    int n_renamed;              /* shards renamed to their final name */
    long n_in_shard;            /* images already written to the open shard */
    uint8_t *buf;               /* (chunk_images, size, size, 3) images waiting to be written */
    int32_t *buf_labels;        /* (chunk_images) */
    int n_buf;
    long n_images;              /* images added in this split */
    char path[IMAGENET_PATH_BYTES]; /* the open shard's .part name */
} ImagenetShards;

static int imagenet_shard_path(char *out, const char *dst, const char *split, int k, int part) {
    char name[64];
    snprintf(name, sizeof name, "%s-%05d.h5%s", split, k, part ? ".part" : "");
    return imagenet_join(out, dst, name);
}

static int imagenet_shards_init(ImagenetShards *w, const char *dst, const char *split, int size,
                                int shard_images, const ImagenetNames *wnids) {
    int rc = 0;
    size_t img_bytes = (size_t)size * (size_t)size * 3;
    *w = (ImagenetShards){0};
    w->file = w->images = w->labels = H5I_INVALID_HID;
    w->dst = dst;
    w->split = split;
    w->size = size;
    w->shard_images = shard_images;
    w->wnids = wnids;
    w->chunk_images = img_bytes >= IMAGENET_CHUNK_BYTES ? 1 : (int)(IMAGENET_CHUNK_BYTES / img_bytes);
    if (w->chunk_images > shard_images) w->chunk_images = shard_images;
    w->buf = mem_alloc(img_bytes * (size_t)w->chunk_images);
    w->buf_labels = mem_alloc(sizeof *w->buf_labels * (size_t)w->chunk_images);
    if (!w->buf || !w->buf_labels)
        FAIL(ERR_NOMEM, "imagenet: cannot allocate a %d-image write buffer", w->chunk_images);
fail:
    return rc;
}

static int imagenet_shards_open(ImagenetShards *w) {
    int rc = 0;
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    hsize_t S = (hsize_t)w->size;
    hsize_t dims[4] = {0, S, S, 3}, maxd[4] = {H5S_UNLIMITED, S, S, 3};
    hsize_t chunk[4] = {(hsize_t)w->chunk_images, S, S, 3};
    hsize_t ldims[1] = {0}, lmax[1] = {H5S_UNLIMITED};
    hsize_t lchunk[1] = {(hsize_t)(w->shard_images < IMAGENET_LABEL_CHUNK ? w->shard_images : IMAGENET_LABEL_CHUNK)};
    TRY(imagenet_shard_path(w->path, w->dst, w->split, w->n_shards, 1));
    w->n_shards++; /* from here on the .part may exist: discard removes it */
    w->n_in_shard = 0;
    IMAGENET_H5(w->file = H5Fcreate(w->path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), ERR_IO, w->path);
    w->is_open = 1;
    IMAGENET_H5(space = H5Screate_simple(4, dims, maxd), ERR_HDF5, w->path);
    IMAGENET_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE), ERR_HDF5, w->path);
    IMAGENET_H5(H5Pset_obj_track_times(dcpl, 0), ERR_HDF5, w->path); /* no timestamps: same bytes each run */
    IMAGENET_H5(H5Pset_chunk(dcpl, 4, chunk), ERR_HDF5, w->path);
    IMAGENET_H5(H5Pset_deflate(dcpl, IMAGENET_DEFLATE_LEVEL), ERR_HDF5, w->path);
    IMAGENET_H5(w->images = H5Dcreate2(w->file, "images", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                ERR_HDF5, w->path);
    imagenet_h5_close(&space, H5Sclose);
    imagenet_h5_close(&dcpl, H5Pclose);
    IMAGENET_H5(space = H5Screate_simple(1, ldims, lmax), ERR_HDF5, w->path);
    IMAGENET_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE), ERR_HDF5, w->path);
    IMAGENET_H5(H5Pset_obj_track_times(dcpl, 0), ERR_HDF5, w->path);
    IMAGENET_H5(H5Pset_chunk(dcpl, 1, lchunk), ERR_HDF5, w->path);
    IMAGENET_H5(H5Pset_deflate(dcpl, IMAGENET_DEFLATE_LEVEL), ERR_HDF5, w->path);
    IMAGENET_H5(w->labels = H5Dcreate2(w->file, "labels", H5T_STD_I32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                ERR_HDF5, w->path);
fail:
    imagenet_h5_close(&space, H5Sclose);
    imagenet_h5_close(&dcpl, H5Pclose);
    return rc;
}

/* Appends n_buf rows of buf to one of the open shard's datasets. */
static int imagenet_shards_append(ImagenetShards *w, hid_t ds, int rank, hid_t mem_type, const void *buf) {
    int rc = 0;
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    hsize_t S = (hsize_t)w->size;
    hsize_t ext[4] = {(hsize_t)(w->n_in_shard + w->n_buf), S, S, 3};
    hsize_t start[4] = {(hsize_t)w->n_in_shard, 0, 0, 0}, count[4] = {(hsize_t)w->n_buf, S, S, 3};
    IMAGENET_H5(H5Dset_extent(ds, ext), ERR_HDF5, w->path);
    IMAGENET_H5(fspace = H5Dget_space(ds), ERR_HDF5, w->path);
    IMAGENET_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL), ERR_HDF5, w->path);
    IMAGENET_H5(mspace = H5Screate_simple(rank, count, NULL), ERR_HDF5, w->path);
    IMAGENET_H5(H5Dwrite(ds, mem_type, mspace, fspace, H5P_DEFAULT, buf), ERR_HDF5, w->path);
fail:
    imagenet_h5_close(&mspace, H5Sclose);
    imagenet_h5_close(&fspace, H5Sclose);
    return rc;
}

static int imagenet_shards_flush(ImagenetShards *w) {
    int rc = 0;
    if (w->n_buf == 0) return 0;
    TRY(imagenet_shards_append(w, w->images, 4, H5T_NATIVE_UINT8, w->buf));
    TRY(imagenet_shards_append(w, w->labels, 1, H5T_NATIVE_INT32, w->buf_labels));
    w->n_in_shard += w->n_buf;
    w->n_buf = 0;
fail:
    return rc;
}

/* Writes the remaining images, /classes and the attributes, and closes the shard. */
static int imagenet_shards_close(ImagenetShards *w) {
    int rc = 0;
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hid_t dcpl = H5I_INVALID_HID;
    char *names = NULL; /* (classes, len) fixed-length strings */
    if (!w->is_open) return 0;
    TRY(imagenet_shards_flush(w));
    size_t len = 1;
    for (size_t k = 0; k < w->wnids->n; k++)
        if (strlen(w->wnids->v[k]) + 1 > len) len = strlen(w->wnids->v[k]) + 1;
    names = mem_calloc(w->wnids->n, len);
    if (!names) FAIL(ERR_NOMEM, "imagenet: cannot allocate the class list of %s", w->path);
    for (size_t k = 0; k < w->wnids->n; k++) memcpy(names + k * len, w->wnids->v[k], strlen(w->wnids->v[k]));
    hsize_t n_classes = w->wnids->n;
    IMAGENET_H5(type = H5Tcopy(H5T_C_S1), ERR_HDF5, w->path);
    IMAGENET_H5(H5Tset_size(type, len), ERR_HDF5, w->path);
    IMAGENET_H5(H5Tset_strpad(type, H5T_STR_NULLTERM), ERR_HDF5, w->path);
    IMAGENET_H5(space = H5Screate_simple(1, &n_classes, NULL), ERR_HDF5, w->path);
    IMAGENET_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE), ERR_HDF5, w->path);
    IMAGENET_H5(H5Pset_obj_track_times(dcpl, 0), ERR_HDF5, w->path);
    IMAGENET_H5(ds = H5Dcreate2(w->file, "classes", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                ERR_HDF5, w->path);
    IMAGENET_H5(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, names), ERR_HDF5, w->path);
    IMAGENET_H5(H5LTset_attribute_int(w->file, "/", "image_size", &w->size, 1), ERR_HDF5, w->path);
    IMAGENET_H5(H5LTset_attribute_string(w->file, "/", "split", w->split), ERR_HDF5, w->path);
    IMAGENET_H5(H5LTset_attribute_string(w->file, "/", "resize", IMAGENET_RESIZE_NOTE), ERR_HDF5, w->path);
    imagenet_h5_close(&ds, H5Dclose);
    imagenet_h5_close(&w->images, H5Dclose);
    imagenet_h5_close(&w->labels, H5Dclose);
    w->is_open = 0;
    herr_t st = H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    IMAGENET_H5(st, ERR_HDF5, w->path);
fail:
    imagenet_h5_close(&ds, H5Dclose);
    imagenet_h5_close(&dcpl, H5Pclose);
    imagenet_h5_close(&space, H5Sclose);
    imagenet_h5_close(&type, H5Tclose);
    mem_free(names);
    return rc;
}

/* img is (size, size, 3). */
static int imagenet_shards_add(ImagenetShards *w, const uint8_t *img, int32_t label) {
    int rc = 0;
    size_t img_bytes = (size_t)w->size * (size_t)w->size * 3;
    if (!w->is_open) TRY(imagenet_shards_open(w));
    memcpy(w->buf + img_bytes * (size_t)w->n_buf, img, img_bytes);
    w->buf_labels[w->n_buf++] = label;
    w->n_images++;
    if (w->n_buf == w->chunk_images) TRY(imagenet_shards_flush(w));
    if (w->n_in_shard + w->n_buf == w->shard_images) TRY(imagenet_shards_close(w));
fail:
    return rc;
}

static int imagenet_shards_rename(ImagenetShards *w) {
    int rc = 0;
    char part[IMAGENET_PATH_BYTES], final[IMAGENET_PATH_BYTES];
    ASSERT(!w->is_open);
    for (; w->n_renamed < w->n_shards; w->n_renamed++) {
        TRY(imagenet_shard_path(part, w->dst, w->split, w->n_renamed, 1));
        TRY(imagenet_shard_path(final, w->dst, w->split, w->n_renamed, 0));
        if (rename(part, final) != 0)
            FAIL(ERR_IO, "imagenet: cannot rename %s to %s: %s", part, final, strerror(errno));
    }
fail:
    return rc;
}

/* Closes without finishing and removes every file of this split written so far. */
static void imagenet_shards_discard(ImagenetShards *w) {
    char path[IMAGENET_PATH_BYTES];
    imagenet_h5_close(&w->images, H5Dclose);
    imagenet_h5_close(&w->labels, H5Dclose);
    imagenet_h5_close(&w->file, H5Fclose);
    w->is_open = 0;
    for (int k = 0; k < w->n_shards; k++) {
        if (imagenet_shard_path(path, w->dst, w->split, k, k >= w->n_renamed) == 0) remove(path);
    }
    w->n_shards = w->n_renamed = 0;
}

static void imagenet_shards_deinit(ImagenetShards *w) {
    imagenet_h5_close(&w->images, H5Dclose);
    imagenet_h5_close(&w->labels, H5Dclose);
    imagenet_h5_close(&w->file, H5Fclose);
    mem_free(w->buf);
    mem_free(w->buf_labels);
    *w = (ImagenetShards){0};
}

/* ---- the val label file ---- */

typedef struct {
    const char *stem; /* points into the file text */
    int label;
    int line;
} ImagenetLabel;

typedef struct {
    char path[IMAGENET_PATH_BYTES];
    char *text;      /* the whole file, NUL-terminated; tokens are cut in place */
    ImagenetLabel *e; /* (n) sorted by stem */
    size_t n;
} ImagenetLabels;

static void imagenet_labels_free(ImagenetLabels *l) {
    mem_free(l->text);
    mem_free(l->e);
    *l = (ImagenetLabels){0};
}

/* Next whitespace-delimited token of *p, NUL-terminated in place; NULL at the end. */
static char *imagenet_token(char **p) {
    char *s = *p;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) {
        *p = s;
        return NULL;
    }
    char *t = s;
    while (*s && *s != ' ' && *s != '\t') s++;
    if (*s) *s++ = '\0';
    *p = s;
    return t;
}

static int imagenet_cmp_label(const void *a, const void *b) {
    return strcmp(((const ImagenetLabel *)a)->stem, ((const ImagenetLabel *)b)->stem);
}

/* Reads a whole file into a new NUL-terminated buffer. */
static int imagenet_read_text(const char *path, char **out) {
    int rc = 0;
    struct stat st;
    char *buf = NULL;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) FAIL(ERR_IO, "imagenet: cannot open label file %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0) FAIL(ERR_IO, "imagenet: cannot stat %s: %s", path, strerror(errno));
    size_t size = (size_t)st.st_size;
    buf = mem_alloc(size + 1);
    if (!buf) FAIL(ERR_NOMEM, "imagenet: cannot allocate %zu bytes for %s", size + 1, path);
    if (fread(buf, 1, size, f) != size) FAIL(ERR_IO, "imagenet: cannot read %s: %s", path, strerror(errno));
    buf[size] = '\0';
    if (strlen(buf) != size) FAIL(ERR_FORMAT, "imagenet: label file %s contains a NUL byte: not text", path);
    *out = buf;
    buf = NULL;
fail:
    mem_free(buf);
    if (f) fclose(f);
    return rc;
}

/* Parses path (LOC_val_solution.csv when it ends in .csv, else "FILENAME WNID|INDEX" lines). */
static int imagenet_labels_read(ImagenetLabels *l, const char *path, const ImagenetNames *wnids) {
    int rc = 0;
    *l = (ImagenetLabels){0};
    snprintf(l->path, sizeof l->path, "%s", path);
    TRY(imagenet_read_text(path, &l->text));
    size_t n_lines = 1;
    for (const char *c = l->text; *c; c++) n_lines += *c == '\n';
    l->e = mem_alloc(n_lines * sizeof *l->e);
    if (!l->e) FAIL(ERR_NOMEM, "imagenet: cannot allocate %zu label entries for %s", n_lines, path);
    const char *dot = strrchr(path, '.');
    int csv = dot && strcasecmp(dot, ".csv") == 0;
    char *next = l->text;
    for (int line_no = 1; next; line_no++) {
        char *line = next, *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = '\0';
        char *p = line, *name = NULL, *cls = NULL;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        if (csv) {
            if (line_no == 1 && strncmp(p, "ImageId", 7) == 0) continue; /* the header */
            char *comma = strchr(p, ',');
            if (!comma)
                FAIL(ERR_FORMAT, "imagenet: %s:%d: expected \"ImageId,PredictionString\" (e.g. "
                     "\"ILSVRC2012_val_00000001,n01751748 1 2 3 4\"), found \"%s\"", path, line_no, line);
            *comma = '\0';
            char *rest = comma + 1;
            name = imagenet_token(&p);
            cls = imagenet_token(&rest);
            if (!name || imagenet_token(&p) || !cls)
                FAIL(ERR_FORMAT, "imagenet: %s:%d: expected an ImageId and a PredictionString starting "
                     "with a wnid", path, line_no);
        } else {
            name = imagenet_token(&p);
            cls = imagenet_token(&p);
            if (!cls || imagenet_token(&p))
                FAIL(ERR_FORMAT, "imagenet: %s:%d: expected \"FILENAME WNID\" or \"FILENAME INDEX\"",
                     path, line_no);
        }
        int label = -1;
        size_t digits = strspn(cls, "0123456789");
        if (!csv && digits == strlen(cls)) {
            if (digits > 9 || atol(cls) >= (long)wnids->n)
                FAIL(ERR_FORMAT, "imagenet: %s:%d: class index %s out of range, expected 0..%zu "
                     "(0-based into the %zu sorted wnids)", path, line_no, cls, wnids->n - 1, wnids->n);
            label = (int)atol(cls);
        } else if ((label = imagenet_names_find(wnids, cls)) < 0) {
            FAIL(ERR_FORMAT, "imagenet: %s:%d: unknown wnid \"%s\" (not a folder of train/)", path,
                 line_no, cls);
        }
        char *base = strrchr(name, '/');
        if (base) name = base + 1;
        name[imagenet_stem_len(name, NULL)] = '\0';
        if (!*name) FAIL(ERR_FORMAT, "imagenet: %s:%d: empty file name", path, line_no);
        l->e[l->n++] = (ImagenetLabel){name, label, line_no};
    }
    qsort(l->e, l->n, sizeof *l->e, imagenet_cmp_label);
    for (size_t i = 1; i < l->n; i++)
        if (strcmp(l->e[i - 1].stem, l->e[i].stem) == 0)
            FAIL(ERR_FORMAT, "imagenet: %s: %s is listed twice (lines %d and %d)", path, l->e[i].stem,
                 l->e[i - 1].line < l->e[i].line ? l->e[i - 1].line : l->e[i].line,
                 l->e[i - 1].line < l->e[i].line ? l->e[i].line : l->e[i - 1].line);
    log_msg(LOG_INFO, "imagenet: %s: %zu val labels", path, l->n);
fail:
    if (rc < 0) imagenet_labels_free(l);
    return rc;
}

/* The label of a val file name (its stem), or -1. */
static int imagenet_labels_find(const ImagenetLabels *l, const char *file_name) {
    char stem[NAME_MAX + 1];
    size_t len = imagenet_stem_len(file_name, NULL);
    if (len > NAME_MAX) return -1;
    memcpy(stem, file_name, len);
    stem[len] = '\0';
    ImagenetLabel key = {stem, 0, 0};
    const ImagenetLabel *hit = bsearch(&key, l->e, l->n, sizeof *l->e, imagenet_cmp_label);
    return hit ? hit->label : -1;
}

/* ---- the converter ---- */

typedef struct {
    const char *src, *dst;
    int size;
    ImagenetNames wnids;
    uint8_t *out;   /* (size, size, 3) the resized image */
    long n_done;    /* images written, both splits */
    long n_skipped;
    long n_cmyk;
    double t0_ms;
} ImagenetConv;

/* Decodes, resizes and appends one file; a file that cannot be decoded is counted and skipped. */
static int imagenet_convert_file(ImagenetConv *cv, ImagenetShards *w, const char *path, int label) {
    int rc = 0;
    ImagenetPic pic = {0};
    int st = imagenet_decode(path, &pic);
    if (st < 0) TRY(st);
    if (st > 0) {
        cv->n_skipped++;
        goto fail;
    }
    cv->n_cmyk += pic.cmyk;
    TRY(imagenet_resize_crop(pic.rgb, pic.h, pic.w, cv->size, cv->out));
    TRY(imagenet_shards_add(w, cv->out, label));
    if (++cv->n_done % IMAGENET_PROGRESS_EVERY == 0) {
        double s = (timer_now_ms() - cv->t0_ms) / 1e3;
        log_msg(LOG_INFO, "imagenet: %ld images converted (%s: %ld), %ld skipped, %.0f img/s", cv->n_done,
                w->split, w->n_images, cv->n_skipped, s > 0 ? cv->n_done / s : 0.0);
    }
fail:
    mem_free(pic.rgb);
    return rc;
}

/* Every JPEG of dir, in name order, with one label. */
static int imagenet_convert_dir(ImagenetConv *cv, ImagenetShards *w, const char *dir, int label) {
    int rc = 0;
    ImagenetNames files = {0};
    char path[IMAGENET_PATH_BYTES];
    TRY(imagenet_list(&files, dir, IMAGENET_LIST_JPEGS));
    if (files.n == 0) log_msg(LOG_WARN, "imagenet: %s holds no JPEG files", dir);
    for (size_t i = 0; i < files.n; i++) {
        TRY(imagenet_join(path, dir, files.v[i]));
        TRY(imagenet_convert_file(cv, w, path, label));
    }
fail:
    imagenet_names_free(&files);
    return rc;
}

static int imagenet_convert_train(ImagenetConv *cv, ImagenetShards *w) {
    int rc = 0;
    char train[IMAGENET_PATH_BYTES], dir[IMAGENET_PATH_BYTES];
    TRY(imagenet_join(train, cv->src, "train"));
    for (size_t k = 0; k < cv->wnids.n; k++) {
        TRY(imagenet_join(dir, train, cv->wnids.v[k]));
        TRY(imagenet_convert_dir(cv, w, dir, (int)k));
    }
    TRY(imagenet_shards_close(w));
    if (w->n_images == 0)
        FAIL(ERR_FORMAT, "imagenet: no decodable JPEG under %s (%ld skipped): nothing to convert", train,
             cv->n_skipped);
fail:
    return rc;
}

/* The first label file that exists (see imagenet.h), or "" . */
static int imagenet_find_label_file(const ImagenetConv *cv, char *out) {
    int rc = 0;
    static const char *const where[][2] = {
        {"val", "LOC_val_solution.csv"}, {"", "LOC_val_solution.csv"},
        {"val", "val_labels.txt"},       {"", "val_labels.txt"},
    };
    char dir[IMAGENET_PATH_BYTES];
    struct stat st;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        if (where[i][0][0]) TRY(imagenet_join(dir, cv->src, where[i][0]));
        else snprintf(dir, sizeof dir, "%s", cv->src);
        TRY(imagenet_join(out, dir, where[i][1]));
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) goto fail; /* found */
    }
    out[0] = '\0';
fail:
    return rc;
}

static int imagenet_convert_val(ImagenetConv *cv, ImagenetShards *w) {
    int rc = 0;
    char val[IMAGENET_PATH_BYTES], path[IMAGENET_PATH_BYTES], lpath[IMAGENET_PATH_BYTES];
    ImagenetNames dirs = {0}, flat = {0};
    ImagenetLabels labels = {0};
    struct stat st;
    TRY(imagenet_join(val, cv->src, "val"));
    errno = 0;
    if (stat(val, &st) != 0 && errno == ENOENT) {
        log_msg(LOG_WARN, "imagenet: %s does not exist: writing train shards only", val);
        goto fail;
    }
    TRY(imagenet_list(&dirs, val, IMAGENET_LIST_DIRS));
    for (size_t i = 0; i < dirs.n; i++) {
        int label = imagenet_names_find(&cv->wnids, dirs.v[i]);
        if (label < 0)
            FAIL(ERR_FORMAT, "imagenet: %s/%s: a val folder that is not a class (expected one of the "
                 "%zu folders of %s/train)", val, dirs.v[i], cv->wnids.n, cv->src);
        TRY(imagenet_join(path, val, dirs.v[i]));
        TRY(imagenet_convert_dir(cv, w, path, label));
    }
    TRY(imagenet_list(&flat, val, IMAGENET_LIST_JPEGS));
    if (flat.n > 0) {
        TRY(imagenet_find_label_file(cv, lpath));
        if (!lpath[0])
            FAIL(ERR_FORMAT, "imagenet: %s holds %zu JPEG files outside class folders (e.g. %s) but "
                 "no label file: expected val/LOC_val_solution.csv, LOC_val_solution.csv, "
                 "val/val_labels.txt or val_labels.txt under %s", val, flat.n, flat.v[0], cv->src);
        TRY(imagenet_labels_read(&labels, lpath, &cv->wnids));
        for (size_t i = 0; i < flat.n; i++) {
            int label = imagenet_labels_find(&labels, flat.v[i]);
            if (label < 0)
                FAIL(ERR_FORMAT, "imagenet: %s/%s has no entry in the label file %s", val, flat.v[i], lpath);
            TRY(imagenet_join(path, val, flat.v[i]));
            TRY(imagenet_convert_file(cv, w, path, label));
        }
    }
    TRY(imagenet_shards_close(w));
    if (w->n_images == 0) log_msg(LOG_WARN, "imagenet: no val image converted from %s", val);
fail:
    imagenet_labels_free(&labels);
    imagenet_names_free(&flat);
    imagenet_names_free(&dirs);
    return rc;
}

/* Index of a canonical shard name "<prefix>-NNNNN.h5" (%05d), or -1. */
static int imagenet_shard_index(const char *name, const char *prefix) {
    size_t lp = strlen(prefix);
    if (strncmp(name, prefix, lp) != 0 || name[lp] != '-') return -1;
    const char *num = name + lp + 1;
    size_t digits = strspn(num, "0123456789");
    if (digits < 5 || digits > 9 || strcmp(num + digits, ".h5") != 0) return -1;
    int idx = atoi(num);
    char canon[16];
    snprintf(canon, sizeof canon, "%05d", idx);
    return strlen(canon) == digits && strncmp(canon, num, digits) == 0 ? idx : -1;
}

/* ERR_IO when dst already holds shards of either split: a conversion never mixes with another. */
static int imagenet_check_dst_empty(const char *dst) {
    int rc = 0;
    ImagenetNames files = {0};
    TRY(imagenet_list(&files, dst, IMAGENET_LIST_FILES));
    for (size_t i = 0; i < files.n; i++)
        if (imagenet_shard_index(files.v[i], "train") >= 0 || imagenet_shard_index(files.v[i], "val") >= 0)
            FAIL(ERR_IO, "imagenet: %s already holds shards (e.g. %s): remove them or choose another "
                 "directory", dst, files.v[i]);
fail:
    imagenet_names_free(&files);
    return rc;
}

int imagenet_convert(const char *src, const char *dst, int size, int shard_images, int *n_skipped) {
    int rc = 0;
    ImagenetConv cv = {0};
    ImagenetShards train = {0}, val = {0};
    char path[IMAGENET_PATH_BYTES];
    struct stat st;
    int made_dst = 0;
    ASSERT(src && dst);
    train.file = train.images = train.labels = H5I_INVALID_HID;
    val.file = val.images = val.labels = H5I_INVALID_HID;
    if (n_skipped) *n_skipped = 0;
    cv.src = src;
    cv.dst = dst;
    cv.size = size;
    cv.t0_ms = timer_now_ms();
    if (size < 1 || size > IMAGENET_MAX_SIZE)
        FAIL(ERR_CONFIG, "imagenet: image size %d for %s, expected 1..%d", size, dst, IMAGENET_MAX_SIZE);
    if (shard_images < 1)
        FAIL(ERR_CONFIG, "imagenet: %d images per shard for %s, expected at least 1", shard_images, dst);
    errno = 0;
    if (stat(src, &st) != 0) FAIL(ERR_IO, "imagenet: source %s: %s", src, strerror(errno));
    if (!S_ISDIR(st.st_mode)) FAIL(ERR_IO, "imagenet: source %s is not a directory", src);
    TRY(imagenet_join(path, src, "train"));
    TRY(imagenet_list(&cv.wnids, path, IMAGENET_LIST_DIRS));
    if (cv.wnids.n == 0)
        FAIL(ERR_IO, "imagenet: %s has no class folders, expected one folder per wnid (e.g. n01440764/)",
             path);
    if (cv.wnids.n > IMAGENET_MAX_CLASSES)
        FAIL(ERR_FORMAT, "imagenet: %s has %zu class folders, expected at most %d", path, cv.wnids.n,
             IMAGENET_MAX_CLASSES);

    errno = 0;
    if (mkdir(dst, 0777) == 0) made_dst = 1;
    else if (errno != EEXIST) FAIL(ERR_IO, "imagenet: cannot create %s: %s", dst, strerror(errno));
    if (stat(dst, &st) != 0 || !S_ISDIR(st.st_mode)) FAIL(ERR_IO, "imagenet: destination %s is not a directory", dst);
    TRY(imagenet_check_dst_empty(dst));

    cv.out = mem_alloc((size_t)size * (size_t)size * 3);
    if (!cv.out) FAIL(ERR_NOMEM, "imagenet: cannot allocate a %dx%d image", size, size);
    TRY(imagenet_shards_init(&train, dst, "train", size, shard_images, &cv.wnids));
    TRY(imagenet_shards_init(&val, dst, "val", size, shard_images, &cv.wnids));
    log_msg(LOG_INFO, "imagenet: converting %s -> %s: %zu classes, S = %d, %d images per shard", src, dst,
            cv.wnids.n, size, shard_images);
    TRY(imagenet_convert_train(&cv, &train));
    TRY(imagenet_convert_val(&cv, &val));
    TRY(imagenet_shards_rename(&train));
    TRY(imagenet_shards_rename(&val));
    log_msg(LOG_INFO, "imagenet: %s: train %ld images in %d shards, val %ld images in %d shards, %zu "
            "classes, %dx%d; %ld files skipped, %ld CMYK images converted to RGB, %.1f s", dst,
            train.n_images, train.n_shards, val.n_images, val.n_shards, cv.wnids.n, size, size,
            cv.n_skipped, cv.n_cmyk, (timer_now_ms() - cv.t0_ms) / 1e3);
fail:
    if (rc < 0) {
        imagenet_shards_discard(&val);
        imagenet_shards_discard(&train);
        if (made_dst) rmdir(dst); /* only if empty */
    }
    if (n_skipped) *n_skipped = cv.n_skipped > INT_MAX ? INT_MAX : (int)cv.n_skipped;
    imagenet_shards_deinit(&val);
    imagenet_shards_deinit(&train);
    mem_free(cv.out);
    imagenet_names_free(&cv.wnids);
    return rc;
}

/* ---- the reader ---- */

typedef struct {
    long n;
    int h, w;
} ImagenetShardShape;

/* CRC-32 and size of a file's bytes, chained onto *crc. */
static int imagenet_crc_file(const char *path, uint32_t *crc, uint64_t *bytes) {
    int rc = 0;
    unsigned char *buf = NULL;
    uLong c = *crc;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) FAIL(ERR_IO, "imagenet: cannot open shard %s: %s", path, strerror(errno));
    buf = mem_alloc(IMAGENET_CRC_BUF_BYTES);
    if (!buf) FAIL(ERR_NOMEM, "imagenet: cannot allocate a read buffer for %s", path);
    size_t got;
    while ((got = fread(buf, 1, IMAGENET_CRC_BUF_BYTES, f)) > 0) {
        c = crc32(c, buf, (uInt)got);
        *bytes += got;
    }
    if (ferror(f)) FAIL(ERR_IO, "imagenet: cannot read shard %s: %s", path, strerror(errno));
    *crc = (uint32_t)c;
fail:
    mem_free(buf);
    if (f) fclose(f);
    return rc;
}

static void imagenet_free_strs(char **v, int n) {
    if (!v) return;
    for (int k = 0; k < n; k++) mem_free(v[k]);
    mem_free(v);
}

/* Opens a dataset that must exist (ERR_FORMAT naming it otherwise) and checks its rank and type class. */
static int imagenet_open_ds(hid_t file, const char *path, const char *name, int rank, H5T_class_t cls,
                            hid_t *ds, hsize_t *dims) {
    int rc = 0;
    hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    htri_t have = H5Lexists(file, name, H5P_DEFAULT);
    if (have <= 0) {
        H5Eclear2(H5E_DEFAULT);
        FAIL(ERR_FORMAT, "imagenet: shard %s has no /%s dataset", path, name);
    }
    IMAGENET_H5(*ds = H5Dopen2(file, name, H5P_DEFAULT), ERR_FORMAT, path);
    IMAGENET_H5(space = H5Dget_space(*ds), ERR_FORMAT, path);
    int got = H5Sget_simple_extent_ndims(space);
    if (got != rank) FAIL(ERR_FORMAT, "imagenet: shard %s: /%s has rank %d, expected %d", path, name, got, rank);
    IMAGENET_H5(H5Sget_simple_extent_dims(space, dims, NULL), ERR_FORMAT, path);
    IMAGENET_H5(type = H5Dget_type(*ds), ERR_FORMAT, path);
    if (H5Tget_class(type) != cls)
        FAIL(ERR_FORMAT, "imagenet: shard %s: /%s has the wrong element type, expected %s", path, name,
             cls == H5T_STRING ? "strings" : "integers");
    if (strcmp(name, "images") == 0 && (H5Tget_size(type) != 1 || H5Tget_sign(type) != H5T_SGN_NONE))
        FAIL(ERR_FORMAT, "imagenet: shard %s: /images has %zu-byte %s elements, expected uint8", path,
             H5Tget_size(type), H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned" : "signed");
fail:
    imagenet_h5_close(&type, H5Tclose);
    imagenet_h5_close(&space, H5Sclose);
    return rc;
}

/* The /classes strings (fixed-length or variable-length) as owned copies. */
static int imagenet_read_classes(hid_t file, const char *path, char ***out, int *n_out) {
    int rc = 0;
    hid_t ds = H5I_INVALID_HID, ftype = H5I_INVALID_HID, mtype = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char *buf = NULL, **vl = NULL, **names = NULL;
    int vl_read = 0;
    hsize_t n = 0;
    *out = NULL;
    *n_out = 0;
    TRY(imagenet_open_ds(file, path, "classes", 1, H5T_STRING, &ds, &n));
    if (n < 1 || n > IMAGENET_MAX_CLASSES)
        FAIL(ERR_FORMAT, "imagenet: shard %s: /classes holds %llu names, expected 1..%d", path,
             (unsigned long long)n, IMAGENET_MAX_CLASSES);
    names = mem_calloc((size_t)n, sizeof *names);
    if (!names) FAIL(ERR_NOMEM, "imagenet: cannot allocate %llu class names", (unsigned long long)n);
    IMAGENET_H5(ftype = H5Dget_type(ds), ERR_FORMAT, path);
    IMAGENET_H5(mtype = H5Tcopy(H5T_C_S1), ERR_HDF5, path);
    if (H5Tis_variable_str(ftype) > 0) {
        IMAGENET_H5(H5Tset_size(mtype, H5T_VARIABLE), ERR_HDF5, path);
        IMAGENET_H5(space = H5Dget_space(ds), ERR_FORMAT, path);
        vl = mem_calloc((size_t)n, sizeof *vl);
        if (!vl) FAIL(ERR_NOMEM, "imagenet: cannot allocate %llu class names", (unsigned long long)n);
        IMAGENET_H5(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, vl), ERR_FORMAT, path);
        vl_read = 1;
        for (hsize_t k = 0; k < n; k++)
            if (!(names[k] = mem_strdup(vl[k] ? vl[k] : "")))
                FAIL(ERR_NOMEM, "imagenet: cannot copy the class names of %s", path);
    } else {
        size_t len = H5Tget_size(ftype) + 1; /* room for a terminator whatever the padding */
        IMAGENET_H5(H5Tset_size(mtype, len), ERR_HDF5, path);
        IMAGENET_H5(H5Tset_strpad(mtype, H5T_STR_NULLTERM), ERR_HDF5, path);
        buf = mem_calloc((size_t)n, len);
        if (!buf) FAIL(ERR_NOMEM, "imagenet: cannot allocate the class names of %s", path);
        IMAGENET_H5(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), ERR_FORMAT, path);
        for (hsize_t k = 0; k < n; k++) {
            buf[k * len + len - 1] = '\0';
            if (!(names[k] = mem_strdup(buf + k * len)))
                FAIL(ERR_NOMEM, "imagenet: cannot copy the class names of %s", path);
        }
    }
    for (hsize_t k = 0; k < n; k++)
        if (!names[k][0]) FAIL(ERR_FORMAT, "imagenet: shard %s: class %llu has an empty name", path,
                               (unsigned long long)k);
    *out = names;
    *n_out = (int)n;
    names = NULL;
fail:
    if (vl_read) {
#if H5_VERSION_GE(1, 12, 0)
        H5Treclaim(mtype, space, H5P_DEFAULT, vl);
#else
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, vl);
#endif
    }
    mem_free(vl);
    mem_free(buf);
    imagenet_free_strs(names, (int)n);
    imagenet_h5_close(&space, H5Sclose);
    imagenet_h5_close(&mtype, H5Tclose);
    imagenet_h5_close(&ftype, H5Tclose);
    imagenet_h5_close(&ds, H5Dclose);
    return rc;
}

/* Pass 1 over one shard: its shape, checked against the first shard's (ref->n < 0: this is the
 * first) and its class list against names (NULL: take them). */
static int imagenet_shard_meta(const char *path, ImagenetShardShape *shape, const ImagenetShardShape *ref,
                               const char *first, char ***names, int *classes) {
    int rc = 0;
    hid_t file = H5I_INVALID_HID, img = H5I_INVALID_HID, lab = H5I_INVALID_HID;
    char **mine = NULL;
    int n_mine = 0;
    hsize_t d[4], ld[1];
    IMAGENET_H5(file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), ERR_FORMAT, path);
    TRY(imagenet_open_ds(file, path, "images", 4, H5T_INTEGER, &img, d));
    TRY(imagenet_open_ds(file, path, "labels", 1, H5T_INTEGER, &lab, ld));
    if (d[3] != 3 || d[1] < 1 || d[1] > IMAGENET_MAX_SIDE || d[2] < 1 || d[2] > IMAGENET_MAX_SIDE ||
        d[0] > INT_MAX)
        FAIL(ERR_FORMAT, "imagenet: shard %s: /images is (%llu, %llu, %llu, %llu), expected (n, h, w, 3) "
             "with h, w in 1..%d", path, (unsigned long long)d[0], (unsigned long long)d[1],
             (unsigned long long)d[2], (unsigned long long)d[3], IMAGENET_MAX_SIDE);
    if (ld[0] != d[0])
        FAIL(ERR_FORMAT, "imagenet: shard %s: %llu images but %llu labels", path, (unsigned long long)d[0],
             (unsigned long long)ld[0]);
    shape->n = (long)d[0];
    shape->h = (int)d[1];
    shape->w = (int)d[2];
    if (ref && (shape->h != ref->h || shape->w != ref->w))
        FAIL(ERR_FORMAT, "imagenet: shard %s holds %dx%d images, but %s holds %dx%d: shards of different "
             "conversions?", path, shape->w, shape->h, first, ref->w, ref->h);
    TRY(imagenet_read_classes(file, path, &mine, &n_mine));
    if (!*names) {
        *names = mine;
        *classes = n_mine;
        mine = NULL;
    } else if (n_mine != *classes) {
        FAIL(ERR_FORMAT, "imagenet: shard %s lists %d classes, but %s lists %d: shards of different "
             "conversions?", path, n_mine, first, *classes);
    } else {
        for (int k = 0; k < n_mine; k++)
            if (strcmp(mine[k], (*names)[k]) != 0)
                FAIL(ERR_FORMAT, "imagenet: shard %s: class %d is %s, but %s has %s: shards of different "
                     "conversions?", path, k, mine[k], first, (*names)[k]);
    }
fail:
    imagenet_free_strs(mine, n_mine);
    imagenet_h5_close(&lab, H5Dclose);
    imagenet_h5_close(&img, H5Dclose);
    imagenet_h5_close(&file, H5Fclose);
    return rc;
}

/* Pass 2 over one shard: its images and labels into place, labels range-checked. */
static int imagenet_shard_read(const char *path, const ImagenetShardShape *shape, int classes,
                               uint8_t *images, int32_t *labels) {
    int rc = 0;
    hid_t file = H5I_INVALID_HID, img = H5I_INVALID_HID, lab = H5I_INVALID_HID;
    hsize_t d[4], ld[1];
    IMAGENET_H5(file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), ERR_FORMAT, path);
    TRY(imagenet_open_ds(file, path, "images", 4, H5T_INTEGER, &img, d));
    TRY(imagenet_open_ds(file, path, "labels", 1, H5T_INTEGER, &lab, ld));
    if ((long)d[0] != shape->n || (int)d[1] != shape->h || (int)d[2] != shape->w || ld[0] != d[0])
        FAIL(ERR_FORMAT, "imagenet: shard %s changed while being read", path);
    if (shape->n == 0) goto fail;
    IMAGENET_H5(H5Dread(img, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images), ERR_FORMAT, path);
    IMAGENET_H5(H5Dread(lab, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels), ERR_FORMAT, path);
    for (long i = 0; i < shape->n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            FAIL(ERR_FORMAT, "imagenet: shard %s: image %ld has label %d, expected 0..%d (%d classes)", path,
                 i, (int)labels[i], classes - 1, classes);
fail:
    imagenet_h5_close(&lab, H5Dclose);
    imagenet_h5_close(&img, H5Dclose);
    imagenet_h5_close(&file, H5Fclose);
    return rc;
}

int dataset_load_imagenet(Dataset *d, const char *dir, const char *split) {
    int rc = 0;
    Dataset t = {0};
    ImagenetNames files = {0};
    ImagenetShardShape *shapes = NULL; /* (n_shards) */
    char path[IMAGENET_PATH_BYTES];
    const char *prefix = NULL;
    size_t n_shards = 0;
    ASSERT(d && dir && split);
    *d = (Dataset){0};
    if (strcmp(split, "train") == 0) prefix = "train";
    else if (strcmp(split, "val") == 0 || strcmp(split, "test") == 0) prefix = "val";
    else FAIL(ERR_CONFIG, "imagenet: unknown split \"%s\" for %s, expected \"train\" or \"val\" (or "
              "\"test\", read as \"val\")", split, dir);
    if (strlen(dir) >= sizeof t.source)
        FAIL(ERR_CONFIG, "imagenet: directory %s is longer than %zu bytes", dir, sizeof t.source - 1);

    TRY(imagenet_list(&files, dir, IMAGENET_LIST_FILES));
    for (size_t i = 0; i < files.n; i++) /* keep only this split's shards */
        if (imagenet_shard_index(files.v[i], prefix) >= 0) files.v[n_shards++] = files.v[i];
    if (n_shards == 0)
        FAIL(ERR_IO, "imagenet: no %s shards (%s-NNNNN.h5) in %s: convert the JPEG tree first", prefix,
             prefix, dir);
    qsort(files.v, n_shards, sizeof *files.v, imagenet_cmp_shard);
    for (size_t i = 0; i < n_shards; i++)
        if (imagenet_shard_index(files.v[i], prefix) != (int)i)
            FAIL(ERR_FORMAT, "imagenet: %s/%s-%05d.h5 is missing (the shards must be numbered from 00000 "
                 "without gaps; found %s)", dir, prefix, (int)i, files.v[i]);

    shapes = mem_calloc(n_shards, sizeof *shapes);
    if (!shapes) FAIL(ERR_NOMEM, "imagenet: cannot allocate %zu shard records", n_shards);
    char first[IMAGENET_PATH_BYTES];
    TRY(imagenet_join(first, dir, files.v[0]));
    long total = 0;
    for (size_t i = 0; i < n_shards; i++) {
        TRY(imagenet_join(path, dir, files.v[i]));
        TRY(imagenet_shard_meta(path, &shapes[i], i ? &shapes[0] : NULL, first, &t.class_names, &t.classes));
        if (shapes[i].n > INT_MAX - total)
            FAIL(ERR_FORMAT, "imagenet: %s: more than %d images in the %s shards", dir, INT_MAX, prefix);
        total += shapes[i].n;
    }
    if (total == 0) FAIL(ERR_FORMAT, "imagenet: the %s shards in %s hold no images", prefix, dir);

    size_t img_bytes = (size_t)shapes[0].h * (size_t)shapes[0].w * 3;
    if ((size_t)total > ((size_t)-1 / 2) / img_bytes)
        FAIL(ERR_NOMEM, "imagenet: %ld images of %dx%d do not fit in memory", total, shapes[0].w, shapes[0].h);
    t.n = (int)total;
    t.c = 3;
    t.h = shapes[0].h;
    t.w = shapes[0].w;
    t.images = mem_alloc((size_t)total * img_bytes);
    t.labels = mem_alloc((size_t)total * sizeof *t.labels);
    if (!t.images || !t.labels)
        FAIL(ERR_NOMEM, "imagenet: cannot allocate %ld images of %dx%d (%.1f GiB) from %s", total, t.w, t.h,
             (double)total * (double)img_bytes / (1 << 30), dir);
    long at = 0;
    for (size_t i = 0; i < n_shards; i++) {
        TRY(imagenet_join(path, dir, files.v[i]));
        TRY(imagenet_crc_file(path, &t.checksum, &t.file_bytes));
        TRY(imagenet_shard_read(path, &shapes[i], t.classes, t.images + (size_t)at * img_bytes, t.labels + at));
        at += shapes[i].n;
    }
    snprintf(t.source, sizeof t.source, "%s", dir);
    log_msg(LOG_INFO, "imagenet: %s: %s: %d images of %dx%d in %zu shards, %d classes, %llu bytes, crc32 %08x",
            dir, prefix, t.n, t.w, t.h, n_shards, t.classes, (unsigned long long)t.file_bytes,
            (unsigned)t.checksum);
    *d = t;
    t = (Dataset){0};
fail:
    mem_free(shapes);
    imagenet_names_free(&files);
    dataset_deinit(&t);
    return rc;
}
