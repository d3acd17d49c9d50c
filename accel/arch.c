/* arch.c: the accelerator architecture's key table, preset loading and derived quantities.
 * Every parameter is declared here once; the defaults are gscn-iso-1080ti's numbers (see that
 * preset's file for the arithmetic). */
#include "accel/arch.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/log.h"

#define AK_INT(name, field, def, lo, hi, help) {name, CFG_INT, offsetof(AccelArch, field), def, lo, hi, NULL, help}
#define AK_NUM(name, field, def, lo, hi, help) {name, CFG_DOUBLE, offsetof(AccelArch, field), def, lo, hi, NULL, help}
#define AK_STR(name, field, def, help) {name, CFG_STRING, offsetof(AccelArch, field), def, 0, 0, NULL, help}

#define ARCH_KIB_MAX 4194304.0 /* 4 GiB of on-chip buffer: far beyond any design, catches unit slips */

static const CfgKey arch_keys[] = {
    AK_STR("name", name, "", "preset name (text; \"\" = the file name without .ini)"),
    AK_STR("description", description, "", "what the design represents (one line of text)"),
    AK_NUM("clock-ghz", clock_ghz, "1.38425", DBL_MIN, 10, "core clock (GHz)"),
    AK_INT("pes", pes, "256", 1, 1048576, "processing elements (PEs)"),
    AK_INT("mults-per-pe", mults_per_pe, "16", 1, 4096,
           "f32 multipliers per PE, one multiply-add each per cycle (multipliers)"),
    AK_INT("acc-banks-per-pe", acc_banks_per_pe, "32", 1, 4096,
           "accumulator banks per PE behind the crossbar (banks)"),
    AK_INT("grad-buf-kib", grad_buf_kib, "1024", 1, ARCH_KIB_MAX,
           "on-chip buffer for the sparse gradient S, chip total (KiB)"),
    AK_INT("weight-buf-kib", weight_buf_kib, "1024", 1, ARCH_KIB_MAX,
           "on-chip buffer for the weights W, chip total (KiB)"),
    AK_INT("act-buf-kib", act_buf_kib, "2048", 1, ARCH_KIB_MAX,
           "on-chip buffer for the activations X, chip total (KiB)"),
    AK_INT("psum-buf-kib", psum_buf_kib, "1024", 1, ARCH_KIB_MAX,
           "partial-sum buffer split over all accumulator banks, chip total (KiB)"),
    AK_NUM("dram-gbps", dram_gbps, "484", DBL_MIN, 1e5, "DRAM bandwidth (GB/s, 1e9 bytes per second)"),
    AK_NUM("mac-pj", mac_pj, "4.6", 0, 1e6, "energy of one f32 multiply-add (pJ; 0 = not given)"),
    AK_NUM("buf-pj-per-byte", buf_pj_per_byte, "1.25", 0, 1e6,
           "on-chip buffer access energy (pJ per byte; 0 = not given)"),
    AK_NUM("dram-pj-per-byte", dram_pj_per_byte, "160", 0, 1e6, "DRAM access energy (pJ per byte; 0 = not given)"),
};

const CfgTable arch_table = {
    .keys = arch_keys,
    .n_keys = (int)(sizeof arch_keys / sizeof arch_keys[0]),
    .extra_prefix = NULL,
};

/* ---- derived quantities ------------------------------------------------------------------------ */

long arch_mults(const AccelArch *a) { return (long)a->pes * (long)a->mults_per_pe; }
double arch_peak_macs_per_cycle(const AccelArch *a) { return (double)arch_mults(a); }
double arch_peak_macs_per_s(const AccelArch *a) { return arch_peak_macs_per_cycle(a) * a->clock_ghz * 1e9; }
double arch_peak_flops(const AccelArch *a) { return 2.0 * arch_peak_macs_per_s(a); }
double arch_dram_bytes_per_cycle(const AccelArch *a) { return a->dram_gbps / a->clock_ghz; }
double arch_dram_bytes_per_s(const AccelArch *a) { return a->dram_gbps * 1e9; }
double arch_macs_per_dram_byte(const AccelArch *a) { return arch_peak_macs_per_s(a) / arch_dram_bytes_per_s(a); }
double arch_cycle_ns(const AccelArch *a) { return 1.0 / a->clock_ghz; }

long arch_buffer_bytes(const AccelArch *a) {
    return 1024L * ((long)a->grad_buf_kib + a->weight_buf_kib + a->act_buf_kib + a->psum_buf_kib);
}

long arch_psum_entries_per_bank(const AccelArch *a) {
    long banks = (long)a->pes * a->acc_banks_per_pe;
    return 1024L * a->psum_buf_kib / 4 / banks;
}

bool arch_has_energy(const AccelArch *a) {
    return a->mac_pj > 0 && a->buf_pj_per_byte > 0 && a->dram_pj_per_byte > 0;
}

/* ---- validation -------------------------------------------------------------------------------- */

/* Letters, digits, '-', '_', '.', at most ARCH_NAME_MAX characters, not starting with '.'. */
static bool arch_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > ARCH_NAME_MAX || s[0] == '.') return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

int arch_validate(const AccelArch *a, const char *origin) {
    int rc = 0;
    if (!origin) origin = "accelerator";
    if (!arch_name_ok(a->name))
        FAIL(ERR_CONFIG, "%s: key 'name' value '%s': expected 1 to %d letters, digits, '-', '_' or '.'", origin,
             a->name, ARCH_NAME_MAX);
    if (a->pes < 1 || a->mults_per_pe < 1 || a->acc_banks_per_pe < 1 || !(a->clock_ghz > 0) || !(a->dram_gbps > 0))
        FAIL(ERR_CONFIG, "%s: pes, mults-per-pe, acc-banks-per-pe, clock-ghz and dram-gbps must be > 0", origin);
    if (arch_mults(a) > INT_MAX)
        FAIL(ERR_CONFIG, "%s: keys 'pes' x 'mults-per-pe' = %d x %d = %ld multipliers: expected at most %d", origin,
             a->pes, a->mults_per_pe, arch_mults(a), INT_MAX);
    int n_energy = (a->mac_pj > 0) + (a->buf_pj_per_byte > 0) + (a->dram_pj_per_byte > 0);
    if (n_energy != 0 && n_energy != 3)
        FAIL(ERR_CONFIG, "%s: keys 'mac-pj' = %g, 'buf-pj-per-byte' = %g, 'dram-pj-per-byte' = %g: expected all "
             "three energies > 0 or all three 0 (not given)", origin, a->mac_pj, a->buf_pj_per_byte,
             a->dram_pj_per_byte);
    if (arch_psum_entries_per_bank(a) < 1)
        FAIL(ERR_CONFIG, "%s: key 'psum-buf-kib' = %d KiB holds less than one 4-byte partial sum per accumulator "
             "bank ('pes' x 'acc-banks-per-pe' = %ld banks): expected at least %ld KiB", origin, a->psum_buf_kib,
             (long)a->pes * a->acc_banks_per_pe, ((long)a->pes * a->acc_banks_per_pe * 4 + 1023) / 1024);
fail:
    return rc;
}

/* ---- listing presets --------------------------------------------------------------------------- */

static int arch_cmp_names(const void *x, const void *y) { return strcmp((const char *)x, (const char *)y); }

/* The sorted names NAME of dir/NAME.ini into names[ARCH_MAX_PRESETS][ARCH_NAME_MAX + 1]; returns the
 * count. Files whose NAME is not a valid preset name are skipped. */
static int arch_scan(const char *dir, char names[][ARCH_NAME_MAX + 1]) {
    int rc = 0, n = 0;
    DIR *d = opendir(dir);
    if (!d) FAIL(ERR_IO, "%s: cannot read the preset directory: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".ini") != 0 || len - 4 > ARCH_NAME_MAX) continue;
        char stem[ARCH_NAME_MAX + 1];
        memcpy(stem, e->d_name, len - 4);
        stem[len - 4] = '\0';
        if (!arch_name_ok(stem)) continue;
        if (n >= ARCH_MAX_PRESETS) FAIL(ERR_CONFIG, "%s: more than %d presets", dir, ARCH_MAX_PRESETS);
        memcpy(names[n++], stem, len - 3);
    }
    qsort(names, (size_t)n, ARCH_NAME_MAX + 1, arch_cmp_names);
    rc = n;
fail:
    if (d) closedir(d);
    return rc;
}

int arch_list_presets(const char *dir, char *buf, size_t cap) {
    int rc = 0;
    char names[ARCH_MAX_PRESETS][ARCH_NAME_MAX + 1];
    if (!dir) dir = ARCH_PRESET_DIR;
    if (cap) buf[0] = '\0';
    int n;
    TRY(n = arch_scan(dir, names));
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + len, cap > len ? cap - len : 0, "%s%s", i ? ", " : "", names[i]);
        len += (size_t)w;
        if (len >= cap) {
            if (cap) buf[0] = '\0';
            FAIL(ERR_NOMEM, "%s: the list of %d presets does not fit in %zu bytes", dir, n, cap);
        }
    }
    rc = n;
fail:
    return rc;
}

int arch_print_presets(const char *dir, FILE *f) {
    int rc = 0;
    char names[ARCH_MAX_PRESETS][ARCH_NAME_MAX + 1];
    if (!dir) dir = ARCH_PRESET_DIR;
    int n;
    TRY(n = arch_scan(dir, names));
    for (int i = 0; i < n; i++) {
        AccelArch a;
        int lrc = arch_load_preset_dir(&a, dir, names[i]);
        if (lrc < 0) {
            fprintf(f, "  %-20s (does not load: %s)\n", names[i], err_str(lrc));
            continue;
        }
        fprintf(f, "  %-20s %7.3f T MAC/s, %7.1f GB/s  %s\n", names[i], arch_peak_macs_per_s(&a) / 1e12, a.dram_gbps,
                a.description);
    }
    rc = n;
fail:
    return rc;
}

/* ---- loading ----------------------------------------------------------------------------------- */

static bool arch_ends_with_ini(const char *s) {
    size_t n = strlen(s);
    return n >= 4 && strcmp(s + n - 4, ".ini") == 0;
}

int arch_load_preset_dir(AccelArch *a, const char *dir, const char *name_or_path) {
    int rc = 0;
    AccelArch t;
    char path[CFG_STR_MAX], stem[CFG_STR_MAX], origin[CFG_STR_MAX + 16];
    if (!dir) dir = ARCH_PRESET_DIR;
    if (!name_or_path || !name_or_path[0])
        FAIL(ERR_CONFIG, "accelerator preset: expected a preset name or a path ending in .ini, got nothing");
    memset(&t, 0, sizeof t); /* zero padding: equal presets compare equal byte for byte */
    TRY(config_defaults(&arch_table, &t));
    if (arch_ends_with_ini(name_or_path)) {
        if (strlen(name_or_path) >= sizeof path)
            FAIL(ERR_CONFIG, "accelerator preset path '%.60s...' is longer than %zu characters", name_or_path,
                 sizeof path - 1);
        strcpy(path, name_or_path);
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t n = strlen(base) - 4;
        memcpy(stem, base, n);
        stem[n] = '\0';
    } else {
        if (!arch_name_ok(name_or_path) || strchr(name_or_path, '/'))
            FAIL(ERR_CONFIG, "accelerator preset '%s': expected a NAME (letters, digits, '-', '_', '.') from %s/ or "
                 "a path ending in .ini", name_or_path, dir);
        if (snprintf(path, sizeof path, "%s/%s.ini", dir, name_or_path) >= (int)sizeof path)
            FAIL(ERR_CONFIG, "accelerator preset '%s': the path is too long", name_or_path);
        strcpy(stem, name_or_path);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            char list[2048];
            int n = arch_list_presets(dir, list, sizeof list);
            if (n > 0)
                FAIL(ERR_CONFIG, "unknown accelerator preset '%s' (no file %s): available presets: %s (or a path "
                     "ending in .ini)", name_or_path, path, list);
            FAIL(ERR_CONFIG, "unknown accelerator preset '%s' (no file %s; %s holds no presets)", name_or_path, path,
                 dir);
        }
    }
    TRY(config_load_ini(&arch_table, &t, NULL, path));
    if (!t.name[0]) {
        if (!arch_name_ok(stem))
            FAIL(ERR_CONFIG, "%s: the file name '%s' is not a valid preset name (letters, digits, '-', '_', '.'); "
                 "set the key 'name'", path, stem);
        TRY(config_set(&arch_table, &t, NULL, "name", stem, path));
    } else if (strcmp(t.name, stem) != 0) {
        FAIL(ERR_CONFIG, "%s: key 'name' value '%s': expected the file name without .ini, '%s'", path, t.name, stem);
    }
    snprintf(origin, sizeof origin, "%s", path);
    TRY(arch_validate(&t, origin));
    *a = t;
fail:
    return rc;
}

int arch_load_preset(AccelArch *a, const char *name_or_path) {
    return arch_load_preset_dir(a, ARCH_PRESET_DIR, name_or_path);
}

int arch_override(AccelArch *a, const char *key, const char *value) {
    int rc = 0;
    AccelArch t = *a;
    char origin[192];
    snprintf(origin, sizeof origin, "--arch.%.60s", key);
    if (strcmp(key, "name") == 0)
        FAIL(ERR_CONFIG, "%s: the preset name cannot be overridden (choose another --preset)", origin);
    TRY(config_set(&arch_table, &t, NULL, key, value, origin));
    snprintf(origin, sizeof origin, "preset %.40s with --arch.%.40s=%.40s", a->name, key, value);
    TRY(arch_validate(&t, origin));
    *a = t;
fail:
    return rc;
}
