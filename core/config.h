/* config.h: table-driven configuration. One table of keys {name, type, offset, default, min, max,
 * help} drives defaults, `--key=value` / `--key value` flags, INI files, bounds checks, the generated
 * --help and the text copy stored in every record. The machinery is generic (any struct with a
 * table: run configs, accelerator presets); core/runconfig.h holds the training run's table.
 * Precedence: defaults < file < command line. Unknown keys and out-of-range values are ERR_CONFIG
 * with a message naming the key, where it came from (flag or file:line) and what was expected. */
#ifndef RESPROP_CONFIG_H
#define RESPROP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    CFG_INT,    /* int field; min/max bound it */
    CFG_LONG,   /* long field */
    CFG_DOUBLE, /* double field; min/max bound it; NaN/Inf rejected */
    CFG_BOOL,   /* bool field; accepts 1/0, true/false, yes/no, on/off; a bare --flag means true */
    CFG_STRING, /* char[CFG_STR_MAX] field; `choices` (if non-NULL) is a '|'-separated list of allowed values */
} CfgType;

#define CFG_STR_MAX 1024

typedef struct {
    const char *name;    /* "lr", "data-dir", ...: the flag is --name, the INI key is name */
    CfgType type;
    size_t offset;       /* offsetof(the struct, field) */
    const char *def;     /* default as text, parsed like any value */
    double min, max;     /* numeric bounds (inclusive); min = DBL_MIN means "greater than 0" and is
                          * printed as (0, max] */
    const char *choices; /* CFG_STRING: "a|b|c" or NULL (any text) */
    const char *help;    /* one line, with the unit */
} CfgKey;

typedef struct {
    const CfgKey *keys;
    int n_keys;
    /* keys with this prefix (e.g. "scheme.") are accepted unchecked and kept as text in `extra` for
     * a later owner to validate; NULL: none. In INI files, a section [P.NAME] (P the prefix without
     * its dot) maps key K to "P.K" and records NAME in `extra_section`. */
    const char *extra_prefix;
} CfgTable;

#define CFG_MAX_EXTRA 64

/* Pass-through keys (see extra_prefix), in the order set; a later setting of a key replaces it. */
typedef struct {
    int n;
    char key[CFG_MAX_EXTRA][64];
    char value[CFG_MAX_EXTRA][256];
    char section[64]; /* NAME of the last [P.NAME] INI section, "" if none */
} CfgExtra;

/* Sets every key of `obj` to its default. Returns 0 or ERR_CONFIG (a bad table default). */
int config_defaults(const CfgTable *t, void *obj);

/* Sets one key from text. `origin` names where it came from for messages ("--lr", "run.ini:12").
 * Unknown keys, unparsable or out-of-range values, values not among `choices`: ERR_CONFIG, logged as
 * "<origin>: key 'lr' value 'abc': expected a number in (0, 100]"; an unknown key's message suggests
 * the closest known name within edit distance 2. Extra-prefix keys go to `extra` (NULL: rejected).
 * Values an INI line could not carry back (control characters, leading/trailing blanks, a ';' at the
 * start or after a blank, "name = value" longer than libinih's line) are rejected too, so everything
 * set round-trips through config_to_text. On error nothing is changed. String fields are
 * zero-padded, so two configs that started zeroed and hold equal values are equal under memcmp. */
int config_set(const CfgTable *t, void *obj, CfgExtra *extra, const char *key, const char *value,
               const char *origin);

/* One physical line for a libinih ini_parse_stream reader (its fgets-like callback): leading blanks
 * removed, "\r\n" taken as a line end, ++*lineno. A line longer than num - 3 characters is replaced
 * by an empty one (so line numbers stay right) and *too_long is set: the caller reports it. *text
 * points at the line's content, past a UTF-8 byte order mark on line 1. Returns str, NULL at EOF. */
char *config_ini_read_line(FILE *f, int *lineno, char *str, int num, bool *too_long, const char **text);

/* Reads an INI file (libinih) into obj: keys at top level or in a [run] section; [P.NAME] sections
 * as described for extra_prefix; top-level `P.KEY = VALUE` lines go to `extra` too. Comments start
 * with ';' or '#' (inline: ' ;'); leading blanks are ignored (no multi-line values); a later
 * setting of a key wins. Missing/unreadable file: ERR_IO; syntax error, unknown section, bad key or
 * value: ERR_CONFIG with file:line (keys set before the error stay set). */
int config_load_ini(const CfgTable *t, void *obj, CfgExtra *extra, const char *path);

/* Parses argv[first..argc): --key=value, --key value, bare --boolkey, --no-boolkey, and --config FILE
 * (applied first, whatever its position, so the command line wins over the file; several are read in
 * order). A bare --boolkey never takes the next argument as its value; `--key VALUE` refuses a VALUE
 * starting with "--" (write --key=VALUE). `--help` anywhere sets *help and returns 0 with nothing
 * applied (help NULL: --help is an error). Positional arguments and unknown keys are errors, found
 * before any file is read. Returns 0 or ERR_CONFIG / ERR_IO. */
int config_parse_args(const CfgTable *t, void *obj, CfgExtra *extra, int argc, char **argv, int first,
                      bool *help);

/* Prints one line per key: --name TYPE/choices  help (default D, range [min, max]), then the generic
 * flags (--no-KEY, --P.KEY=VALUE, --config FILE, --help). */
void config_print_help(const CfgTable *t, FILE *f);

/* The effective configuration as INI text ("name = value\n" per key, then the extra keys under
 * [P.NAME] with NAME = extra->section, or as top-level "P.KEY = value" lines when that is ""),
 * readable back by config_load_ini into an identical struct and CfgExtra. extra may be NULL.
 * Returns the length, or ERR_NOMEM (buf left "") if it does not fit in cap. */
int config_to_text(const CfgTable *t, const void *obj, const CfgExtra *extra, char *buf, size_t cap);

/* Value of one table key as text (for records and messages). Returns its length, ERR_CONFIG for an
 * unknown key, ERR_NOMEM if it does not fit in cap. */
int config_get_text(const CfgTable *t, const void *obj, const char *key, char *buf, size_t cap);

#endif
