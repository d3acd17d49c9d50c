#include "core/checkpoint.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define CKPT_KIND "resprop-checkpoint"
#define CKPT_VERSION 1

/* HDF5 calls return negative on failure; log the call and the file. */
#define H5_CHECK(call, path)                                                                        \
    do {                                                                                            \
        if ((call) < 0) {                                                                           \
            err_report(__FILE__, __LINE__, #call, path);                                            \
            rc = ERR_HDF5;                                                                          \
            goto fail;                                                                              \
        }                                                                                           \
    } while (0)

void ckpt_meta_deinit(CkptMeta *m) {
    mem_free(m->history);
    mem_free(m->config_text);
    memset(m, 0, sizeof *m);
}

static int group_path(char *buf, size_t cap, const char *family, int layer, const char *name) {
    int n = snprintf(buf, cap, "/%s/L%03d/%s", family, layer, name);
    return n > 0 && (size_t)n < cap ? 0 : ERR_FORMAT;
}

static int write_floats(hid_t f, hid_t lcpl, const char *path, const float *data, size_t n, const char *file) {
    int rc = 0;
    hsize_t dims[1] = {n};
    hid_t space = -1, ds = -1;
    H5_CHECK(space = H5Screate_simple(1, dims, NULL), file);
    H5_CHECK(ds = H5Dcreate2(f, path, H5T_NATIVE_FLOAT, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), file);
    H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), file);
fail:
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    return rc;
}

static int read_floats(hid_t f, const char *path, float *data, size_t n, const char *file) {
    int rc = 0;
    hsize_t dims[1] = {0};
    H5T_class_t cls;
    size_t tsize;
    int rank = 0;
    if (H5LTget_dataset_ndims(f, path, &rank) < 0 || rank != 1 || H5LTget_dataset_info(f, path, dims, &cls, &tsize) < 0)
        FAIL(ERR_FORMAT, "checkpoint %s: missing or malformed tensor %s", file, path);
    if (dims[0] != n)
        FAIL(ERR_FORMAT, "checkpoint %s: tensor %s has %llu values, the model expects %zu", file, path,
             (unsigned long long)dims[0], n);
    H5_CHECK(H5LTread_dataset_float(f, path, data), file);
fail:
    return rc;
}

int ckpt_save(const char *path, Trainer *t, const CkptMeta *meta) {
    int rc = 0;
    char tmp[4096], p[256];
    hid_t f = -1, lcpl = -1;
    float *plain = NULL;
    Net *net = t->net;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) FAIL(ERR_IO, "checkpoint path too long: %s", path);
    size_t max_plain = 0;
    for (int i = 1; i < net_n_layers(net); i++) {
        Layer *l = net_layer(net, i);
        for (int j = 0; j < layer_n_params(l); j++) {
            LayerParam lp = layer_param(l, j);
            if (lp.n_plain > max_plain) max_plain = lp.n_plain;
        }
    }
    plain = mem_alloc((max_plain ? max_plain : 1) * sizeof(float));
    if (!plain) FAIL(ERR_NOMEM, "checkpoint %s: out of memory", path);
    H5_CHECK(f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp);
    H5_CHECK(lcpl = H5Pcreate(H5P_LINK_CREATE), tmp);
    H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1), tmp);
    H5_CHECK(H5LTset_attribute_string(f, "/", "kind", CKPT_KIND), tmp);
    int ver = CKPT_VERSION;
    H5_CHECK(H5LTset_attribute_int(f, "/", "checkpoint_version", &ver, 1), tmp);
    H5_CHECK(H5LTset_attribute_int(f, "/", "epochs_done", &meta->epochs_done, 1), tmp);
    H5_CHECK(H5LTset_attribute_long(f, "/", "steps_done", &meta->steps_done, 1), tmp);
    H5_CHECK(H5LTset_attribute_long(f, "/", "step_rows", &meta->step_rows, 1), tmp);
    H5_CHECK(H5LTset_attribute_long(f, "/", "trainer_step", &t->step, 1), tmp);
    if (meta->config_text) H5_CHECK(H5LTset_attribute_string(f, "/", "config", meta->config_text), tmp);
    for (int i = 1; i < net_n_layers(net); i++) {
        Layer *l = net_layer(net, i);
        for (int j = 0; j < layer_n_params(l); j++) {
            LayerParam lp = layer_param(l, j);
            TRY(group_path(p, sizeof p, "params", i, lp.name));
            TRY(layer_param_get(l, j, plain));
            TRY(write_floats(f, lcpl, p, plain, lp.n_plain, tmp));
            TRY(group_path(p, sizeof p, "momentum", i, lp.name));
            size_t k = 0;
            for (int q = 0; q < net_n_params(net); q++)
                if (net_param(net, q).w == lp.w) k = (size_t)q;
            TRY(layer_param_to_plain(l, j, t->momentum + t->mom_off[k], plain));
            TRY(write_floats(f, lcpl, p, plain, lp.n_plain, tmp));
        }
        if (layer_bn_running_mean(l)) {
            size_t c = (size_t)layer_in_dims(l, 0).c;
            TRY(group_path(p, sizeof p, "bn", i, "running_mean"));
            TRY(write_floats(f, lcpl, p, layer_bn_running_mean(l), c, tmp));
            TRY(group_path(p, sizeof p, "bn", i, "running_var"));
            TRY(write_floats(f, lcpl, p, layer_bn_running_var(l), c, tmp));
        }
    }
    for (int j = 0; j < net_scheme_n(net); j++) { /* per-layer scheme state, as the scheme serialises it */
        size_t bytes = net_scheme_state_bytes(net, j);
        if (!bytes) continue;
        unsigned char *blob = mem_alloc(bytes);
        if (!blob) FAIL(ERR_NOMEM, "checkpoint %s: out of memory", path);
        net_scheme_state_save(net, j, blob);
        hsize_t dims[1] = {bytes};
        snprintf(p, sizeof p, "/scheme/S%03d", j);
        hid_t space = H5Screate_simple(1, dims, NULL), ds = -1;
        if (space >= 0) ds = H5Dcreate2(f, p, H5T_NATIVE_UCHAR, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        herr_t wr = ds >= 0 ? H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, blob) : -1;
        if (ds >= 0) H5Dclose(ds);
        if (space >= 0) H5Sclose(space);
        mem_free(blob);
        if (wr < 0) FAIL(ERR_HDF5, "checkpoint %s: cannot write %s", tmp, p);
    }
    if (meta->n_rows > 0) {
        hsize_t dims[2] = {(hsize_t)meta->n_rows, (hsize_t)meta->n_cols};
        H5_CHECK(H5LTmake_dataset_double(f, "/history", 2, dims, meta->history), tmp);
    }
    H5Pclose(lcpl);
    lcpl = -1;
    H5_CHECK(H5Fclose(f), tmp);
    f = -1;
    if (rename(tmp, path) != 0) FAIL(ERR_IO, "checkpoint: cannot rename %s to %s", tmp, path);
fail:
    if (lcpl >= 0) H5Pclose(lcpl);
    if (f >= 0) H5Fclose(f);
    if (rc) unlink(tmp);
    mem_free(plain);
    return rc;
}

static int read_meta(hid_t f, const char *path, CkptMeta *meta) {
    int rc = 0;
    char kind[64] = "";
    hsize_t dims[2];
    H5T_class_t cls;
    size_t tsize;
    int rank;
    memset(meta, 0, sizeof *meta);
    if (H5LTget_attribute_info(f, "/", "kind", dims, &cls, &tsize) < 0 || tsize >= sizeof kind ||
        H5LTget_attribute_string(f, "/", "kind", kind) < 0 || strcmp(kind, CKPT_KIND) != 0)
        FAIL(ERR_FORMAT, "%s: not a resprop checkpoint (root attribute kind = \"%s\" expected)", path, CKPT_KIND);
    H5_CHECK(H5LTget_attribute_int(f, "/", "epochs_done", &meta->epochs_done), path);
    H5_CHECK(H5LTget_attribute_long(f, "/", "steps_done", &meta->steps_done), path);
    H5_CHECK(H5LTget_attribute_long(f, "/", "step_rows", &meta->step_rows), path);
    if (H5LTfind_attribute(f, "config") == 1 && H5LTget_attribute_info(f, "/", "config", dims, &cls, &tsize) >= 0) {
        meta->config_text = mem_calloc(tsize + 1, 1);
        if (!meta->config_text) FAIL(ERR_NOMEM, "%s: out of memory", path);
        H5_CHECK(H5LTget_attribute_string(f, "/", "config", meta->config_text), path);
    }
    if (H5LTfind_dataset(f, "history") == 1) {
        if (H5LTget_dataset_ndims(f, "/history", &rank) < 0 || rank != 2 ||
            H5LTget_dataset_info(f, "/history", dims, &cls, &tsize) < 0 || dims[1] > CKPT_MAX_HIST_COLS)
            FAIL(ERR_FORMAT, "%s: malformed /history", path);
        meta->n_rows = (long)dims[0];
        meta->n_cols = (int)dims[1];
        meta->history = mem_alloc((size_t)(dims[0] * dims[1]) * sizeof(double) + 1);
        if (!meta->history) FAIL(ERR_NOMEM, "%s: out of memory", path);
        H5_CHECK(H5LTread_dataset_double(f, "/history", meta->history), path);
    }
    return 0;
fail:
    ckpt_meta_deinit(meta);
    return rc;
}

int ckpt_read_meta(const char *path, CkptMeta *meta) {
    int rc = 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    memset(meta, 0, sizeof *meta);
    if (access(path, R_OK) != 0) FAIL(ERR_IO, "checkpoint %s: cannot read it", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) FAIL(ERR_FORMAT, "checkpoint %s: not an HDF5 file", path);
    rc = read_meta(f, path, meta);
    H5Fclose(f);
fail:
    return rc;
}

int ckpt_load(const char *path, Trainer *t, CkptMeta *meta) {
    int rc = 0;
    char p[256];
    hid_t f = -1;
    float *plain = NULL;
    Net *net = t->net;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    memset(meta, 0, sizeof *meta);
    if (access(path, R_OK) != 0) FAIL(ERR_IO, "checkpoint %s: cannot read it", path);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) FAIL(ERR_FORMAT, "checkpoint %s: not an HDF5 file", path);
    TRY(read_meta(f, path, meta));
    long tstep = 0;
    H5_CHECK(H5LTget_attribute_long(f, "/", "trainer_step", &tstep), path);
    size_t max_plain = 1;
    for (int q = 0; q < net_n_params(net); q++)
        if (net_param(net, q).n_plain > max_plain) max_plain = net_param(net, q).n_plain;
    plain = mem_alloc(max_plain * sizeof(float));
    if (!plain) FAIL(ERR_NOMEM, "checkpoint %s: out of memory", path);
    for (int i = 1; i < net_n_layers(net); i++) {
        Layer *l = net_layer(net, i);
        for (int j = 0; j < layer_n_params(l); j++) {
            LayerParam lp = layer_param(l, j);
            TRY(group_path(p, sizeof p, "params", i, lp.name));
            TRY(read_floats(f, p, plain, lp.n_plain, path));
            TRY(layer_param_set(l, j, plain));
            TRY(group_path(p, sizeof p, "momentum", i, lp.name));
            TRY(read_floats(f, p, plain, lp.n_plain, path));
            size_t k = 0;
            for (int q = 0; q < net_n_params(net); q++)
                if (net_param(net, q).w == lp.w) k = (size_t)q;
            TRY(layer_param_from_plain(l, j, plain, t->momentum + t->mom_off[k]));
        }
        if (layer_bn_running_mean(l)) {
            size_t c = (size_t)layer_in_dims(l, 0).c;
            TRY(group_path(p, sizeof p, "bn", i, "running_mean"));
            TRY(read_floats(f, p, layer_bn_running_mean(l), c, path));
            TRY(group_path(p, sizeof p, "bn", i, "running_var"));
            TRY(read_floats(f, p, layer_bn_running_var(l), c, path));
        }
    }
    for (int j = 0; j < net_scheme_n(net); j++) {
        size_t bytes = net_scheme_state_bytes(net, j);
        if (!bytes) continue;
        snprintf(p, sizeof p, "/scheme/S%03d", j);
        hsize_t dims[1] = {0};
        H5T_class_t cls;
        size_t ts;
        if (H5LTget_dataset_info(f, p, dims, &cls, &ts) < 0 || dims[0] != bytes)
            FAIL(ERR_FORMAT, "checkpoint %s: scheme state %s missing or not %zu bytes (another scheme or model?)", path,
                 p, bytes);
        unsigned char *blob = mem_alloc(bytes);
        if (!blob) FAIL(ERR_NOMEM, "checkpoint %s: out of memory", path);
        hid_t ds = H5Dopen2(f, p, H5P_DEFAULT);
        herr_t r = ds >= 0 ? H5Dread(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, blob) : -1;
        if (ds >= 0) H5Dclose(ds);
        int lrc = r < 0 ? ERR_HDF5 : net_scheme_state_load(net, j, blob, bytes);
        mem_free(blob);
        if (lrc) FAIL(lrc, "checkpoint %s: cannot restore scheme state %s", path, p);
    }
    t->step = tstep;
fail:
    if (f >= 0) H5Fclose(f);
    mem_free(plain);
    if (rc) ckpt_meta_deinit(meta);
    return rc;
}
