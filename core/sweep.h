/* sweep.h: a sweep file (bench/configs/NAME.ini) read, validated and expanded into its points: the
 * run configurations of `resprop sweep`. Running the points is the command's job (bench/cmd_sweep.c).
 *
 * File format (INI; comments start with ';' or '#', inline after a blank):
 *   [sweep]            name = NAME   (required; letters, digits, '-', '_', '.'; records go to
 *                                     <runs dir>/NAME/)
 *   [base]             run keys given to every point: any `resprop train` key and scheme.KEY
 *   [grid] / [grid G]  one or more: run keys whose values are comma-separated lists; the section's
 *                      points are the cross product of its lists (last key varying fastest), layered
 *                      on [base] (a grid key overrides base). A list item holding a comma is written
 *                      in double quotes: schedule = "step:30,60", cosine. [base] values are never split.
 * Command-line overrides (--KEY=VALUE) apply to every point after the file.
 * The points are the union of the grids' cross products in file order; a point whose full key set
 * equals an earlier one's is dropped. The keys out and resume belong to the sweep (rejected in files).
 *
 * Scheme options: a scheme.KEY applies to the points whose scheme takes option KEY and is dropped from
 * the others (so [base] scheme.warmup = ... serves a sweep over dense and resprop); a scheme.KEY that
 * no point's scheme takes is an error. Every key and value is validated before anything runs: unknown
 * keys, values out of range or not among the choices, unknown schemes, models and schedules, bad
 * scheme option values: ERR_CONFIG, logged as "FILE:LINE [SECTION]: key 'K' ...".
 *
 * Point names come from the keys that vary across the sweep's points and that the point's own grid
 * section sets, in run-table order with the scheme options after `reuse`: dataset, model and scheme
 * as their bare value, every other key as KEY-VALUE (scheme options without "scheme."), joined by
 * '_', characters other than letters, digits, '.', '+', '-' replaced by '-'. E.g.
 * resprop_reuse-0.9_seed-1, dense_seed-2, resprop_reuse-0.9_warmup-none_seed-1. A point with no such
 * key is named by its scheme. Names that still coincide get _pN (N = the point's 1-based number). */
#ifndef RESPROP_SWEEP_H
#define RESPROP_SWEEP_H

#include <stdbool.h>

#include "core/config.h"
#include "core/runconfig.h"

#define SWEEP_NAME_MAX 200   /* longest sweep or point name (bytes, without the terminator) */
#define SWEEP_MAX_POINTS 4096 /* largest number of points before dropping duplicates */

typedef struct {
    char **value;    /* (n_keys) the point's value of each sweep key as text; NULL: not set (a scheme
                      * option its scheme does not take) */
    bool *from_grid; /* (n_keys) the point's grid section set this key (and no override replaced it) */
    int grid;        /* index of its grid section (Sweep.grid_names) */
    char name[SWEEP_NAME_MAX + 1];
} SweepPoint;

typedef struct {
    char name[SWEEP_NAME_MAX + 1]; /* [sweep] name */
    int n_keys;
    char **keys;       /* (n_keys) the run table's keys in table order, then every scheme.KEY used */
    int n_grids;
    char **grid_names; /* (n_grids) "" for [grid] */
    int n_points;
    SweepPoint *points; /* (n_points) after dropping duplicates, in file order */
    int n_duplicates;  /* points dropped as identical to an earlier one */
    bool threads_set;  /* the file or an override sets the key `threads` */
} Sweep;

/* Reads and expands the sweep file at path, with overrides over[0..n_over) ("KEY=VALUE", as given
 * after "--" on the command line) applied to every point. Returns 0; ERR_IO for a missing or
 * unreadable file; ERR_CONFIG for anything else wrong (logged with file, line, section and key);
 * ERR_NOMEM. On failure *s is left empty (sweep_deinit not needed, but allowed). */
int sweep_load(Sweep *s, const char *path, int n_over, const char *const *over);

/* The run configuration of point i: defaults, then every key the point sets. Returns 0 or ERR_CONFIG
 * (cannot happen for a point of a loaded sweep). */
int sweep_point_config(const Sweep *s, int i, RunConfig *cfg, CfgExtra *extra);

/* Index of key in s->keys, -1 if absent. */
int sweep_key_index(const Sweep *s, const char *key);

/* Frees everything and zeroes *s; accepts a zeroed struct. */
void sweep_deinit(Sweep *s);

#endif
