/* test_arch.c: the accelerator architecture (accel/arch.h): every shipped preset loads, validates
 * and sets every key; gscn-iso-1080ti has the GTX 1080 Ti's peak multiply-add rate and DRAM
 * bandwidth; the table defaults are that preset's numbers; the derived quantities by hand; bad
 * presets written here (unknown key, zero PEs, zero and negative bandwidth, a non-number, a syntax
 * error, inconsistent keys, a wrong name, a missing file, an unknown name) are ERR_CONFIG / ERR_IO
 * with a message naming the key, the file and the line; listing and printing presets; a loaded
 * preset round-trips through config_to_text. Every test checks that nothing leaks (core/mem.h).
 *
 * The shipped presets are read from accel/presets/ relative to the repository root; `make unit`
 * runs the tests from there, and the group setup also finds the root when the binary is started
 * from a directory below it (tests/, build/...). */
#include "tests/testutil.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel/arch.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"

/* GTX 1080 Ti: 28 SMs x 128 f32 lanes at the 1.582 GHz boost clock; 352-bit GDDR5X at 11 Gbit/s. */
#define GTX1080TI_MACS_PER_S (3584 * 1.582e9)
#define GTX1080TI_DRAM_BYTES_PER_S 484e9

/* The presets the repository ships (more may be added; these must stay). */
static const char *const shipped[] = {"gscn-iso-1080ti", "gscn-small", "gscn-large"};
#define N_SHIPPED (int)(sizeof shipped / sizeof shipped[0])

#define MAX_FILES 16

typedef struct {
    AccelArch a, b;
    char dir[64];              /* temporary directory, removed by fx_teardown */
    char files[MAX_FILES][160];
    int n_files;
    TuCapture cap;
} Fx;

/* Group setup: makes the repository root the current directory (walking up at most 4 levels). */
static int group_setup(void **state) {
    (void)state;
    for (int up = 0; up <= 4; up++) {
        if (access(ARCH_PRESET_DIR "/gscn-iso-1080ti.ini", R_OK) == 0) return 0;
        if (chdir("..") != 0) break;
    }
    fprintf(stderr, "test_arch: cannot find %s/gscn-iso-1080ti.ini from the current directory or 4 levels "
            "above: run the test from the repository root\n", ARCH_PRESET_DIR);
    return -1;
}

static int fx_setup(void **state) {
    Fx *fx = mem_calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (tu_mkdtemp(fx->dir, sizeof fx->dir, "test_arch") != 0) {
        mem_free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state) {
    Fx *fx = *state;
    int rc = 0;
    if (fx) {
        tu_capture_abort(&fx->cap);
        rc = tu_rmtree(fx->dir);
    }
    mem_free(fx);
    return rc == 0 && mem_live_bytes() == 0 ? 0 : -1;
}

/* Writes text to fx->dir/name and returns the path (owned by the fixture). */
static const char *fx_file(Fx *fx, const char *name, const char *text) {
    assert_true(fx->n_files < MAX_FILES);
    char *path = fx->files[fx->n_files++];
    snprintf(path, sizeof fx->files[0], "%s/%s", fx->dir, name);
    tu_write_file(path, text, strlen(text));
    return path;
}

/* rc = call with stderr captured into fx->cap.text. */
#define QUIET(rc, call) TU_CAPTURE(&fx->cap, (rc) = (call))

static void assert_rel(double got, double want, double tol, const char *what) {
    double rel = fabs(got - want) / fabs(want);
    if (!(rel <= tol)) fail_msg("%s: %.6g, expected %.6g within %.2g (relative error %.3g)", what, got, want, tol, rel);
}

/* ---- shipped presets --------------------------------------------------------------------------- */

static void test_shipped_presets_load(void **state) {
    Fx *fx = *state;
    char list[1024];
    int n = arch_list_presets(NULL, list, sizeof list);
    assert_true(n >= N_SHIPPED);
    for (int i = 0; i < N_SHIPPED; i++)
        if (!strstr(list, shipped[i])) fail_msg("preset %s is not listed: %s", shipped[i], list);
    /* every listed preset loads, by name and by path, and validates */
    char *save = NULL;
    for (char *name = strtok_r(list, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
        int rc;
        QUIET(rc, arch_load_preset(&fx->a, name));
        if (rc != 0) fail_msg("preset %s: %s\n%s", name, err_str(rc), fx->cap.text);
        assert_string_equal(fx->a.name, name);
        assert_true(strlen(fx->a.description) > 10);
        assert_int_equal(arch_validate(&fx->a, name), 0);
        assert_true(arch_peak_macs_per_s(&fx->a) > 0 && arch_dram_bytes_per_s(&fx->a) > 0);
        assert_true(arch_psum_entries_per_bank(&fx->a) >= 1);
        char path[256];
        snprintf(path, sizeof path, "%s/%s.ini", ARCH_PRESET_DIR, name);
        QUIET(rc, arch_load_preset(&fx->b, path));
        assert_int_equal(rc, 0);
        assert_memory_equal(&fx->a, &fx->b, sizeof fx->a);
    }
}

/* Each shipped preset sets every key: read over two different starting values, it gives the same
 * result (a key the file leaves out would keep its two different starting values). */
static void test_shipped_presets_complete(void **state) {
    Fx *fx = *state;
    for (int i = 0; i < N_SHIPPED; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s.ini", ARCH_PRESET_DIR, shipped[i]);
        AccelArch *base[2] = {&fx->a, &fx->b};
        for (int s = 0; s < 2; s++) {
            memset(base[s], 0, sizeof *base[s]);
            const char *v = s ? "2" : "3";
            for (int k = 0; k < arch_table.n_keys; k++) {
                const CfgKey *key = &arch_table.keys[k];
                const char *value = key->type == CFG_STRING ? (s ? "x" : "y") : v;
                assert_int_equal(config_set(&arch_table, base[s], NULL, key->name, value, "test"), 0);
            }
            assert_int_equal(config_load_ini(&arch_table, base[s], NULL, path), 0);
        }
        for (int k = 0; k < arch_table.n_keys; k++) {
            char x[CFG_STR_MAX], y[CFG_STR_MAX];
            const char *name = arch_table.keys[k].name;
            assert_true(config_get_text(&arch_table, &fx->a, name, x, sizeof x) >= 0);
            assert_true(config_get_text(&arch_table, &fx->b, name, y, sizeof y) >= 0);
            if (strcmp(x, y) != 0) fail_msg("%s does not set the key '%s'", path, name);
        }
    }
}

static void test_iso_1080ti(void **state) {
    Fx *fx = *state;
    int rc;
    QUIET(rc, arch_load_preset(&fx->a, "gscn-iso-1080ti"));
    assert_int_equal(rc, 0);
    const AccelArch *a = &fx->a;
    assert_rel(arch_peak_macs_per_s(a), GTX1080TI_MACS_PER_S, 0.01, "peak multiply-adds per second");
    assert_rel(arch_peak_flops(a), 2 * GTX1080TI_MACS_PER_S, 0.01, "peak FLOP/s");
    assert_rel(arch_dram_bytes_per_s(a), GTX1080TI_DRAM_BYTES_PER_S, 0.01, "DRAM bytes per second");
    assert_rel(arch_macs_per_dram_byte(a), GTX1080TI_MACS_PER_S / GTX1080TI_DRAM_BYTES_PER_S, 0.02,
               "multiply-adds per DRAM byte");
    /* the file's arithmetic: 256 x 16 at 1.38425 GHz, 484 / 1.38425 = 349.6 bytes per cycle */
    assert_int_equal(arch_mults(a), 4096);
    assert_rel(arch_dram_bytes_per_cycle(a), 349.6, 1e-3, "DRAM bytes per cycle");
    assert_true(arch_has_energy(a));
    /* the smaller and the larger design are smaller and larger */
    QUIET(rc, arch_load_preset(&fx->b, "gscn-small"));
    assert_int_equal(rc, 0);
    assert_true(arch_peak_macs_per_s(&fx->b) < arch_peak_macs_per_s(a) / 4);
    assert_true(arch_dram_bytes_per_s(&fx->b) < arch_dram_bytes_per_s(a));
    assert_rel(arch_peak_macs_per_s(&fx->b), 2.56e11, 1e-9, "gscn-small peak");
    QUIET(rc, arch_load_preset(&fx->b, "gscn-large"));
    assert_int_equal(rc, 0);
    assert_rel(arch_peak_macs_per_s(&fx->b), 4 * arch_peak_macs_per_s(a), 1e-9, "gscn-large peak");
    assert_true(arch_dram_bytes_per_s(&fx->b) > arch_dram_bytes_per_s(a));
    assert_true(arch_buffer_bytes(&fx->b) == 4 * arch_buffer_bytes(a));
}

/* The table defaults are gscn-iso-1080ti's numbers (arch.h); only name and description differ. */
static void test_defaults_are_iso(void **state) {
    Fx *fx = *state;
    int rc;
    memset(&fx->a, 0, sizeof fx->a);
    assert_int_equal(config_defaults(&arch_table, &fx->a), 0);
    assert_string_equal(fx->a.name, "");
    QUIET(rc, arch_load_preset(&fx->b, "gscn-iso-1080ti"));
    assert_int_equal(rc, 0);
    memcpy(fx->a.name, fx->b.name, sizeof fx->a.name);
    memcpy(fx->a.description, fx->b.description, sizeof fx->a.description);
    assert_memory_equal(&fx->a, &fx->b, sizeof fx->a);
}

/* ---- derived quantities by hand ---------------------------------------------------------------- */

static void test_derived(void **state) {
    Fx *fx = *state;
    AccelArch *a = &fx->a;
    memset(a, 0, sizeof *a);
    assert_int_equal(config_defaults(&arch_table, a), 0);
    strcpy(a->name, "hand");
    a->clock_ghz = 2.0;
    a->pes = 8;
    a->mults_per_pe = 4;
    a->acc_banks_per_pe = 8;
    a->grad_buf_kib = 1;
    a->weight_buf_kib = 2;
    a->act_buf_kib = 3;
    a->psum_buf_kib = 4;
    a->dram_gbps = 64;
    assert_int_equal(arch_validate(a, "hand"), 0);
    assert_int_equal(arch_mults(a), 32);
    assert_true(arch_peak_macs_per_cycle(a) == 32.0);
    assert_true(arch_peak_macs_per_s(a) == 64e9);     /* 32 x 2e9 */
    assert_true(arch_peak_flops(a) == 128e9);
    assert_true(arch_dram_bytes_per_cycle(a) == 32.0); /* 64 GB/s / 2 GHz */
    assert_true(arch_dram_bytes_per_s(a) == 64e9);
    assert_true(arch_macs_per_dram_byte(a) == 1.0);
    assert_true(arch_cycle_ns(a) == 0.5);
    assert_true(arch_buffer_bytes(a) == 10 * 1024);
    assert_true(arch_psum_entries_per_bank(a) == 16); /* 4096 bytes / 4 = 1024 entries over 8 x 8 banks */
    a->mac_pj = a->buf_pj_per_byte = a->dram_pj_per_byte = 0;
    assert_false(arch_has_energy(a));
    assert_int_equal(arch_validate(a, "hand"), 0); /* no energy table: allowed */
}

/* ---- bad presets ------------------------------------------------------------------------------- */

typedef struct {
    const char *what;
    const char *text;   /* the file bad.ini */
    int rc;
    const char *needle[3];
} BadCase;

static void test_bad_presets(void **state) {
    Fx *fx = *state;
    static const BadCase cases[] = {
        {"unknown key", "pes = 8\npe = 4\n", ERR_CONFIG, {"bad.ini:2", "unknown key 'pe'", "did you mean 'pes'"}},
        {"underscore spelling", "clock_ghz = 1\n", ERR_CONFIG,
         {"bad.ini:1", "'clock_ghz'", "did you mean 'clock-ghz'"}},
        {"zero PEs", "# comment\npes = 0\n", ERR_CONFIG,
         {"bad.ini:2", "key 'pes' value '0'", "expected an integer in [1,"}},
        {"negative PEs", "pes = -4\n", ERR_CONFIG, {"bad.ini:1", "key 'pes' value '-4'", NULL}},
        {"negative bandwidth", "pes = 4\n\ndram-gbps = -100\n", ERR_CONFIG,
         {"bad.ini:3", "key 'dram-gbps' value '-100'", "expected a number in (0,"}},
        {"zero bandwidth", "dram-gbps = 0\n", ERR_CONFIG, {"bad.ini:1", "key 'dram-gbps' value '0'", "(0, 100000]"}},
        {"zero clock", "clock-ghz = 0\n", ERR_CONFIG, {"bad.ini:1", "key 'clock-ghz' value '0'", NULL}},
        {"a non-number", "clock-ghz = fast\n", ERR_CONFIG,
         {"bad.ini:1", "key 'clock-ghz' value 'fast'", "expected a number"}},
        {"a number with a unit", "dram-gbps = 484GB/s\n", ERR_CONFIG,
         {"bad.ini:1", "key 'dram-gbps' value '484GB/s'", NULL}},
        {"a fractional count", "mults-per-pe = 1.5\n", ERR_CONFIG,
         {"bad.ini:1", "key 'mults-per-pe' value '1.5'", "integer"}},
        {"NaN", "mac-pj = nan\n", ERR_CONFIG, {"bad.ini:1", "key 'mac-pj' value 'nan'", NULL}},
        {"negative energy", "dram-pj-per-byte = -1\n", ERR_CONFIG, {"bad.ini:1", "key 'dram-pj-per-byte'", NULL}},
        {"syntax error", "pes = 4\nthis is not a key\n", ERR_CONFIG, {"bad.ini:2", "syntax error", NULL}},
        {"a section", "[arch]\npes = 4\n", ERR_CONFIG, {"bad.ini:1", "unknown section [arch]", NULL}},
        {"part of an energy table", "mac-pj = 1\nbuf-pj-per-byte = 0\n", ERR_CONFIG,
         {"bad.ini", "'buf-pj-per-byte' = 0", "all three energies"}},
        {"too few partial sums", "pes = 1024\nacc-banks-per-pe = 4096\npsum-buf-kib = 1\n", ERR_CONFIG,
         {"bad.ini", "key 'psum-buf-kib' = 1 KiB", "expected at least 16384 KiB"}},
        {"too many multipliers", "pes = 1048576\nmults-per-pe = 4096\npsum-buf-kib = 4194304\n", ERR_CONFIG,
         {"bad.ini", "'pes' x 'mults-per-pe'", NULL}},
        {"a name other than the file's", "name = other\n", ERR_CONFIG,
         {"bad.ini", "key 'name' value 'other'", "expected the file name without .ini, 'bad'"}},
        {"a bad name", "name = a/b\n", ERR_CONFIG, {"bad.ini", "key 'name' value 'a/b'", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const BadCase *c = &cases[i];
        fx->n_files = 0;
        const char *path = fx_file(fx, "bad.ini", c->text);
        /* *a is unchanged on error */
        memset(&fx->a, 0x5a, sizeof fx->a);
        memcpy(&fx->b, &fx->a, sizeof fx->b);
        int rc;
        QUIET(rc, arch_load_preset(&fx->a, path));
        if (rc != c->rc) fail_msg("%s: rc %d (%s), expected %d\n%s", c->what, rc, err_str(rc), c->rc, fx->cap.text);
        for (int k = 0; k < 3; k++) assert_log_has(fx->cap.text, c->needle[k]);
        assert_log_has(fx->cap.text, path);
        assert_memory_equal(&fx->a, &fx->b, sizeof fx->a);
    }
    /* a partial file is a variant of the defaults; no energy table is fine */
    int rc;
    const char *ok = fx_file(fx, "ok2.ini", "# a variant of the defaults\npes = 8\nmac-pj = 0\nbuf-pj-per-byte = 0\n"
                              "dram-pj-per-byte = 0\n");
    QUIET(rc, arch_load_preset(&fx->a, ok));
    assert_int_equal(rc, 0);
    assert_string_equal(fx->a.name, "ok2");
    assert_int_equal(fx->a.pes, 8);
    assert_false(arch_has_energy(&fx->a));
}

static void test_missing_and_unknown(void **state) {
    Fx *fx = *state;
    int rc;
    char path[160];
    snprintf(path, sizeof path, "%s/nothere.ini", fx->dir);
    QUIET(rc, arch_load_preset(&fx->a, path));
    assert_int_equal(rc, ERR_IO);
    assert_log_has(fx->cap.text, path);
    assert_log_has(fx->cap.text, "cannot open");
    /* an unknown name lists the shipped presets */
    QUIET(rc, arch_load_preset(&fx->a, "gscn-iso-1080"));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(fx->cap.text, "unknown accelerator preset 'gscn-iso-1080'");
    for (int i = 0; i < N_SHIPPED; i++) assert_log_has(fx->cap.text, shipped[i]);
    /* in a directory of our own: exactly its presets, sorted */
    fx_file(fx, "zeta.ini", "pes = 2\n");
    fx_file(fx, "alpha.ini", "pes = 4\n");
    fx_file(fx, "notes.txt", "not a preset\n");
    fx_file(fx, ".hidden.ini", "pes = 4\n");
    QUIET(rc, arch_load_preset_dir(&fx->a, fx->dir, "beta"));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(fx->cap.text, "available presets: alpha, zeta (or a path ending in .ini)");
    QUIET(rc, arch_load_preset_dir(&fx->a, fx->dir, "zeta"));
    assert_int_equal(rc, 0);
    assert_string_equal(fx->a.name, "zeta");
    assert_int_equal(fx->a.pes, 2);
    /* names that are not names */
    static const char *const bad_names[] = {"", "../accel/presets/gscn-small", "a b", "gscn-small.txt/x"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        QUIET(rc, arch_load_preset(&fx->a, bad_names[i]));
        assert_int_equal(rc, ERR_CONFIG);
    }
    QUIET(rc, arch_load_preset(&fx->a, NULL));
    assert_int_equal(rc, ERR_CONFIG);
}

static void test_list_presets(void **state) {
    Fx *fx = *state;
    char list[256];
    fx_file(fx, "b.ini", "pes = 2\n");
    fx_file(fx, "a.ini", "pes = 2\n");
    fx_file(fx, "broken.ini", "pes = 0\n");
    fx_file(fx, "readme.md", "text\n");
    assert_int_equal(arch_list_presets(fx->dir, list, sizeof list), 3);
    assert_string_equal(list, "a, b, broken");
    int rc;
    QUIET(rc, arch_list_presets(fx->dir, list, 8));
    assert_int_equal(rc, ERR_NOMEM);
    assert_string_equal(list, "");
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing", fx->dir);
    QUIET(rc, arch_list_presets(missing, list, sizeof list));
    assert_int_equal(rc, ERR_IO);
    assert_log_has(fx->cap.text, missing);
    QUIET(rc, arch_load_preset_dir(&fx->a, missing, "x"));
    assert_int_equal(rc, ERR_CONFIG);
    assert_log_has(fx->cap.text, "unknown accelerator preset 'x'");
    /* the --help listing: one line per preset, a broken one says so */
    FILE *f = tmpfile();
    assert_non_null(f);
    QUIET(rc, arch_print_presets(fx->dir, f));
    assert_int_equal(rc, 3);
    char text[2048];
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_log_has(text, "  a ");
    assert_log_has(text, "0.044 T MAC/s"); /* 2 PEs x 16 x 1.38425 GHz */
    assert_log_has(text, "broken");
    assert_log_has(text, "does not load");
    f = tmpfile();
    assert_non_null(f);
    QUIET(rc, arch_print_presets(NULL, f));
    assert_true(rc >= N_SHIPPED);
    rewind(f);
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    for (int i = 0; i < N_SHIPPED; i++) assert_log_has(text, shipped[i]);
    assert_log_lacks(text, "does not load");
}

/* A loaded preset written by config_to_text and read back is the same preset. */
static void test_round_trip_and_help(void **state) {
    Fx *fx = *state;
    char text[8192];
    for (int i = 0; i < N_SHIPPED; i++) {
        int rc;
        QUIET(rc, arch_load_preset(&fx->a, shipped[i]));
        assert_int_equal(rc, 0);
        assert_true(config_to_text(&arch_table, &fx->a, NULL, text, sizeof text) > 0);
        char name[96];
        snprintf(name, sizeof name, "%s.ini", shipped[i]);
        const char *path = fx_file(fx, name, text);
        QUIET(rc, arch_load_preset(&fx->b, path));
        if (rc != 0) fail_msg("%s: %s\n%s", path, err_str(rc), fx->cap.text);
        assert_memory_equal(&fx->a, &fx->b, sizeof fx->a);
    }
    FILE *f = tmpfile();
    assert_non_null(f);
    config_print_help(&arch_table, f);
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    for (int k = 0; k < arch_table.n_keys; k++) assert_log_has(text, arch_table.keys[k].name);
    assert_log_has(text, "core clock (GHz)");
    assert_log_has(text, "DRAM bandwidth (GB/s");
    assert_log_has(text, "range (0, 100000]");
}

/* --arch.KEY=VALUE: one key changed under its own bounds, then the whole design validated; bad ones
 * leave the preset as it was. */
static void test_override(void **state) {
    Fx *fx = *state;
    int rc;
    QUIET(rc, arch_load_preset(&fx->a, "gscn-iso-1080ti"));
    assert_int_equal(rc, 0);
    fx->b = fx->a;
    QUIET(rc, arch_override(&fx->a, "pes", "128"));
    assert_int_equal(rc, 0);
    assert_int_equal(fx->a.pes, 128);
    assert_true(fabs(arch_peak_macs_per_s(&fx->a) - arch_peak_macs_per_s(&fx->b) / 2) < 1);
    QUIET(rc, arch_override(&fx->a, "dram-gbps", "242"));
    assert_int_equal(rc, 0);
    assert_true(fx->a.dram_gbps == 242);
    assert_string_equal(fx->a.name, "gscn-iso-1080ti");
    AccelArch before = fx->a;
    /* bad: unknown key (with the close match), zero PEs, negative bandwidth, the name, an inconsistent design */
    static const char *const bad[][3] = {
        {"pez", "4", "did you mean 'pes'"},
        {"pes", "0", "--arch.pes"},
        {"dram-gbps", "-1", "--arch.dram-gbps"},
        {"name", "other", "cannot be overridden"},
        {"mac-pj", "0", "all three"},
        {"psum-buf-kib", "1", "psum-buf-kib"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        QUIET(rc, arch_override(&fx->a, bad[i][0], bad[i][1]));
        assert_int_equal(rc, ERR_CONFIG);
        assert_log_has(fx->cap.text, bad[i][2]);
        assert_memory_equal(&fx->a, &before, sizeof before);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shipped_presets_load, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shipped_presets_complete, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_iso_1080ti, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_defaults_are_iso, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_derived, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_presets, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_unknown, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_presets, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_and_help, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_override, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
