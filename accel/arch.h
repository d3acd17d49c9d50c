/* arch.h: the architecture of GSCN-sim's generic sparse-convolution accelerator (../shared/GSCN.md):
 * clock, PEs, multipliers and accumulator banks per PE, on-chip buffers, DRAM bandwidth and an
 * optional energy table. Every parameter is a key of one CfgTable (arch.c) with its unit, bounds
 * and help line, so presets, overrides, --help and the text copy in records all come from it.
 *
 * Presets are INI files accel/presets/NAME.ini ("key = value" lines at top level; comments with
 * '#' or ';'), read relative to the current directory (the repository root). The table defaults are
 * the numbers of gscn-iso-1080ti, so a preset file that sets only some keys describes a variant of
 * that design; every shipped preset sets every key (tests/test_arch.c checks it).
 *
 * Buffer sizes are totals over the chip. The partial-sum buffer is split evenly over the PEs'
 * accumulator banks (arch_psum_entries_per_bank). Energies are per operation; 0 means "not given",
 * and a preset gives either all three or none.
 *
 * AccelArch is a value object the caller owns; it holds no allocated memory (nothing to free). */
#ifndef RESPROP_ARCH_H
#define RESPROP_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/config.h"

/* Where arch_load_preset looks for NAME.ini, relative to the current directory. */
#define ARCH_PRESET_DIR "accel/presets"
/* Most presets a directory may hold (arch_list_presets). */
#define ARCH_MAX_PRESETS 64
/* Longest preset name (characters). */
#define ARCH_NAME_MAX 63

typedef struct {
    char name[CFG_STR_MAX];        /* key name: the preset's name = its file name without .ini */
    char description[CFG_STR_MAX]; /* key description: one line, what the design represents */
    double clock_ghz;              /* clock-ghz: core clock (GHz) */
    int pes;                       /* pes: processing elements */
    int mults_per_pe;              /* mults-per-pe: f32 multipliers per PE (one multiply-add each per cycle) */
    int acc_banks_per_pe;          /* acc-banks-per-pe: accumulator banks per PE behind the crossbar */
    int grad_buf_kib;              /* grad-buf-kib: on-chip buffer for the sparse gradient S (KiB, chip total) */
    int weight_buf_kib;            /* weight-buf-kib: weights W (KiB, chip total) */
    int act_buf_kib;               /* act-buf-kib: activations X (KiB, chip total) */
    int psum_buf_kib;              /* psum-buf-kib: partial sums, split over all accumulator banks (KiB) */
    double dram_gbps;              /* dram-gbps: DRAM bandwidth (GB/s, 1e9 bytes per second) */
    double mac_pj;                 /* mac-pj: energy of one f32 multiply-add (pJ; 0 = not given) */
    double buf_pj_per_byte;        /* buf-pj-per-byte: on-chip buffer access energy (pJ per byte; 0 = not given) */
    double dram_pj_per_byte;       /* dram-pj-per-byte: DRAM access energy (pJ per byte; 0 = not given) */
} AccelArch;

/* The key table (name, type, field, default, bounds, help). */
extern const CfgTable arch_table;

/* Loads a preset into *a: NAME (letters, digits, '-', '_', '.') from ARCH_PRESET_DIR/NAME.ini, or an
 * explicit path ending in ".ini". Starts from the table defaults, reads the file, then: an unset
 * name becomes the file name without .ini, a set one must equal it; then arch_validate.
 * Errors (logged naming the preset or file, and the key and line where there is one): an unknown
 * NAME -> ERR_CONFIG listing the available presets; a missing/unreadable explicit path -> ERR_IO;
 * unknown key, bad or out-of-range value, syntax error, inconsistent keys -> ERR_CONFIG.
 * On error *a is unchanged. */
int arch_load_preset(AccelArch *a, const char *name_or_path);
/* The same with NAMEs looked up in `dir` instead of ARCH_PRESET_DIR. */
int arch_load_preset_dir(AccelArch *a, const char *dir, const char *name_or_path);

/* Overrides one key of a loaded preset (sensitivity studies: `--arch.KEY=VALUE`): the key's own bounds
 * (config_set, origin "--arch.KEY"), then arch_validate of the whole design. The key 'name' cannot be
 * overridden (a record names the preset it started from; the overrides are listed apart). Errors:
 * unknown key (the message lists the close match), bad or out-of-range value, an inconsistent design
 * -> ERR_CONFIG. On error *a is unchanged. */
int arch_override(AccelArch *a, const char *key, const char *value);

/* Checks what single-key bounds cannot: a non-empty valid name, energies all given or all 0, at
 * least one f32 partial-sum entry per accumulator bank, total multipliers within int range.
 * `origin` (file or "preset NAME") prefixes the messages. Returns 0 or ERR_CONFIG. */
int arch_validate(const AccelArch *a, const char *origin);

/* Writes the preset names found in dir (NULL: ARCH_PRESET_DIR), sorted, as "a, b, c" into buf
 * (cap bytes; "" when there are none). Returns the number of presets, ERR_IO when dir cannot be
 * read, ERR_NOMEM when the list does not fit in cap, ERR_CONFIG beyond ARCH_MAX_PRESETS. */
int arch_list_presets(const char *dir, char *buf, size_t cap);
/* For --help texts: one line per preset of dir (NULL: ARCH_PRESET_DIR) with its peak rate, DRAM
 * bandwidth and description; a preset that does not load is printed with its error code. Returns
 * the number of presets or a negative ERR_* from arch_list_presets. */
int arch_print_presets(const char *dir, FILE *f);

/* Derived quantities (pure functions of the parameters). */
long arch_mults(const AccelArch *a);                      /* pes x mults_per_pe */
double arch_peak_macs_per_cycle(const AccelArch *a);      /* = arch_mults (multiply-adds per cycle) */
double arch_peak_macs_per_s(const AccelArch *a);          /* x clock (multiply-adds per second) */
double arch_peak_flops(const AccelArch *a);               /* 2 x peak MAC/s (FLOP/s) */
double arch_dram_bytes_per_cycle(const AccelArch *a);     /* DRAM bytes per clock cycle */
double arch_dram_bytes_per_s(const AccelArch *a);         /* dram_gbps x 1e9 */
double arch_macs_per_dram_byte(const AccelArch *a);       /* machine balance (MACs per DRAM byte) */
double arch_cycle_ns(const AccelArch *a);                 /* one clock cycle (ns) */
long arch_buffer_bytes(const AccelArch *a);               /* all four buffers (bytes) */
long arch_psum_entries_per_bank(const AccelArch *a);      /* f32 partial sums per accumulator bank */
bool arch_has_energy(const AccelArch *a);                 /* the energy table is given */

#endif
