/* config.c: the generic table-driven configuration of config.h.
 *
 * Every value that config_set accepts can be written by config_to_text and read back by
 * config_load_ini unchanged, so the text copy in a record is always complete: values that an INI
 * file could not carry (control characters, leading/trailing blanks, a ';' that would start a
 * comment, lines longer than libinih reads) are rejected when they are set, not when the record is
 * written. Doubles are printed with the fewest digits (15..17) that parse back to the same bits.
 *
 * INI files go through libinih with our own line reader (ini_parse_stream) because the library's
 * handler gets no line number (INI_HANDLER_LINENO is 0 in the distribution build), and because the
 * reader can (a) report over-long lines instead of letting libinih split them, (b) strip leading
 * blanks so an indented line is never taken for a multi-line continuation, and (c) see section
 * headers, so an empty [scheme.NAME] still records NAME and an unknown section is an error even
 * when it holds no keys. No library settings (libinih's ini_* globals) are touched. */
#include "core/config.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "core/err.h"
#include "core/log.h"

/* Longest INI line (line end excluded) libinih reads in one piece: its buffer holds INI_MAX_LINE
 * bytes including "\r\n\0". */
#define CFG_INI_LINE_MAX (INI_MAX_LINE - 3)
/* Longest key name we compare or suggest (longer names are simply unknown). */
#define CFG_NAME_MAX 128
/* Room for a number, bound or bool as text. */
#define CFG_NUM_TEXT 40

/* ---- small helpers ----------------------------------------------------------------------------- */

static const CfgKey *cfg_find(const CfgTable *t, const char *name) {
    for (int i = 0; i < t->n_keys; i++)
        if (t->keys[i].name && strcmp(t->keys[i].name, name) == 0) return &t->keys[i];
    return NULL;
}

static bool cfg_is_extra_key(const CfgTable *t, const char *key) {
    return t->extra_prefix && t->extra_prefix[0] &&
           strncmp(key, t->extra_prefix, strlen(t->extra_prefix)) == 0;
}

/* Letters, digits, '-', '_', '.': what an extra key name or a section NAME may contain. */
static bool cfg_name_ok(const char *s) {
    if (!*s) return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

/* Shortest of %.15g..%.17g that parses back to exactly v. */
static void cfg_fmt_double(double v, char *buf, size_t cap) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* "[min, max]", or "(0, max]" for min == DBL_MIN (the table's spelling of "greater than 0"). */
static void cfg_fmt_range(const CfgKey *k, char *buf, size_t cap) {
    char lo[CFG_NUM_TEXT], hi[CFG_NUM_TEXT];
    cfg_fmt_double(k->max, hi, sizeof hi);
    if (k->min == DBL_MIN) {
        snprintf(buf, cap, "(0, %s]", hi);
    } else {
        cfg_fmt_double(k->min, lo, sizeof lo);
        snprintf(buf, cap, "[%s, %s]", lo, hi);
    }
}

/* Optimal-string-alignment distance (insert, delete, substitute, swap neighbours), or cap + 1 when
 * it is larger than cap or a string is too long to compare. */
static int cfg_edit_distance(const char *a, const char *b, int cap) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (abs(la - lb) > cap || la >= CFG_NAME_MAX || lb >= CFG_NAME_MAX) return cap + 1;
    int rows[3][CFG_NAME_MAX + 1]; /* rows i-2, i-1, i of the DP table, used cyclically */
    for (int j = 0; j <= lb; j++) rows[0][j] = j;
    for (int i = 1; i <= la; i++) {
        int *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d) d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
    }
    int d = rows[la % 3][lb];
    return d > cap ? cap + 1 : d;
}

/* Logs "<origin>: unknown key 'K'" with the closest known name within edit distance 2, if any.
 * A misspelt extra prefix ("schem.margin") is suggested with the right prefix. */
static void cfg_report_unknown(const CfgTable *t, const char *key, const char *origin) {
    const char *best = NULL;
    int best_d = 3;
    for (int i = 0; i < t->n_keys; i++) {
        if (!t->keys[i].name) continue;
        int d = cfg_edit_distance(key, t->keys[i].name, 2);
        if (d < best_d) {
            best_d = d;
            best = t->keys[i].name;
        }
    }
    char fixed[CFG_NAME_MAX * 2] = "";
    const char *dot = strchr(key, '.');
    if (t->extra_prefix && t->extra_prefix[0] && dot && dot[1] && (size_t)(dot - key) < CFG_NAME_MAX) {
        char head[CFG_NAME_MAX + 1];
        size_t n = (size_t)(dot - key) + 1; /* the part before the first dot, dot included */
        memcpy(head, key, n);
        head[n] = '\0';
        int d = cfg_edit_distance(head, t->extra_prefix, 2);
        if (d < best_d && snprintf(fixed, sizeof fixed, "%s%s", t->extra_prefix, dot + 1) < (int)sizeof fixed) {
            best_d = d;
            best = fixed;
        }
    }
    if (best)
        log_msg(LOG_ERROR, "%s: unknown key '%s' (did you mean '%s'?)", origin, key, best);
    else
        log_msg(LOG_ERROR, "%s: unknown key '%s' (--help lists the keys)", origin, key);
}

/* Whether `value` survives a trip through an INI line "NAME = value"; if not, logs why. */
static int cfg_check_ini_text(const char *name, const char *value, const char *origin) {
    int rc = 0;
    size_t n = strlen(value);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            FAIL(ERR_CONFIG, "%s: key '%s': the value contains a control character (byte %zu)", origin, name, i);
        if (c == ';' && (i == 0 || value[i - 1] == ' ' || value[i - 1] == '\t'))
            FAIL(ERR_CONFIG, "%s: key '%s' value '%s': a ';' at the start or after a blank would start an "
                 "INI comment", origin, name, value);
    }
    if (n && (value[0] == ' ' || value[0] == '\t' || value[n - 1] == ' ' || value[n - 1] == '\t'))
        FAIL(ERR_CONFIG, "%s: key '%s' value '%s': leading or trailing blanks are not kept in an INI file",
             origin, name, value);
    if (strlen(name) + 3 + n > CFG_INI_LINE_MAX)
        FAIL(ERR_CONFIG, "%s: key '%s': the value is %zu characters long; an INI line holds at most %d "
             "characters (\"%s = \" included)", origin, name, n, CFG_INI_LINE_MAX, name);
fail:
    return rc;
}

/* The value of k in obj as text. */
static void cfg_value_text(const CfgKey *k, const void *obj, char *buf, size_t cap) {
    const char *p = (const char *)obj + k->offset;
    switch (k->type) {
    case CFG_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case CFG_LONG: snprintf(buf, cap, "%ld", *(const long *)p); break;
    case CFG_DOUBLE: cfg_fmt_double(*(const double *)p, buf, cap); break;
    case CFG_BOOL: snprintf(buf, cap, "%s", *(const bool *)p ? "true" : "false"); break;
    case CFG_STRING: snprintf(buf, cap, "%.*s", (int)strnlen(p, CFG_STR_MAX - 1), p); break;
    default: snprintf(buf, cap, "?"); break;
    }
}

static bool cfg_in_choices(const char *choices, const char *value) {
    size_t n = strlen(value);
    for (const char *c = choices;;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && memcmp(c, value, n) == 0) return true;
        if (!bar) return false;
        c = bar + 1;
    }
}

/* ---- setting keys ------------------------------------------------------------------------------ */

static int cfg_set_extra(const CfgTable *t, CfgExtra *extra, const char *key, const char *value,
                         const char *origin) {
    int rc = 0;
    const char *rest = key + strlen(t->extra_prefix);
    if (!extra) FAIL(ERR_CONFIG, "%s: key '%s': %s keys are not accepted here", origin, key, t->extra_prefix);
    if (!cfg_name_ok(rest))
        FAIL(ERR_CONFIG, "%s: key '%s': expected %sNAME with NAME made of letters, digits, '-', '_' and '.'",
             origin, key, t->extra_prefix);
    if (strlen(key) >= sizeof extra->key[0])
        FAIL(ERR_CONFIG, "%s: key '%s' is longer than %zu characters", origin, key, sizeof extra->key[0] - 1);
    if (strlen(value) >= sizeof extra->value[0])
        FAIL(ERR_CONFIG, "%s: key '%s': the value is longer than %zu characters", origin, key,
             sizeof extra->value[0] - 1);
    TRY(cfg_check_ini_text(key, value, origin));
    int i = 0;
    while (i < extra->n && strcmp(extra->key[i], key) != 0) i++;
    if (i == extra->n) {
        if (extra->n >= CFG_MAX_EXTRA)
            FAIL(ERR_CONFIG, "%s: key '%s': more than %d %s keys", origin, key, CFG_MAX_EXTRA, t->extra_prefix);
        memset(extra->key[i], 0, sizeof extra->key[i]);
        memcpy(extra->key[i], key, strlen(key));
        extra->n++;
    }
    memset(extra->value[i], 0, sizeof extra->value[i]);
    memcpy(extra->value[i], value, strlen(value));
fail:
    return rc;
}

int config_set(const CfgTable *t, void *obj, CfgExtra *extra, const char *key, const char *value,
               const char *origin) {
    int rc = 0;
    if (!origin) origin = "config";
    if (!key || !value) FAIL(ERR_CONFIG, "%s: missing key or value", origin);
    const CfgKey *k = cfg_find(t, key);
    if (!k) {
        if (cfg_is_extra_key(t, key)) return cfg_set_extra(t, extra, key, value, origin);
        cfg_report_unknown(t, key, origin);
        rc = ERR_CONFIG;
        goto fail;
    }
    char range[2 * CFG_NUM_TEXT + 8];
    cfg_fmt_range(k, range, sizeof range);
    char *field = (char *)obj + k->offset;
    char *end = NULL;
    switch (k->type) {
    case CFG_INT:
    case CFG_LONG: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        bool ok = end != value && *end == '\0' && errno == 0 && (double)v >= k->min && (double)v <= k->max;
        if (k->type == CFG_INT) ok = ok && v >= INT_MIN && v <= INT_MAX;
        else ok = ok && v >= LONG_MIN && v <= LONG_MAX;
        if (!ok) FAIL(ERR_CONFIG, "%s: key '%s' value '%s': expected an integer in %s", origin, key, value, range);
        if (k->type == CFG_INT) *(int *)field = (int)v;
        else *(long *)field = (long)v;
        break;
    }
    case CFG_DOUBLE: {
        double v = strtod(value, &end);
        if (end == value || *end != '\0' || !isfinite(v) || !(v >= k->min && v <= k->max))
            FAIL(ERR_CONFIG, "%s: key '%s' value '%s': expected a number in %s", origin, key, value, range);
        *(double *)field = v;
        break;
    }
    case CFG_BOOL: {
        static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
        int v = -1;
        for (int i = 0; i < 4 && v < 0; i++) {
            if (strcasecmp(value, yes[i]) == 0) v = 1;
            else if (strcasecmp(value, no[i]) == 0) v = 0;
        }
        if (v < 0)
            FAIL(ERR_CONFIG, "%s: key '%s' value '%s': expected true or false (also 1/0, yes/no, on/off)", origin,
                 key, value);
        *(bool *)field = v == 1;
        break;
    }
    case CFG_STRING: {
        size_t n = strlen(value);
        if (n >= CFG_STR_MAX)
            FAIL(ERR_CONFIG, "%s: key '%s': the value is longer than %d characters", origin, key, CFG_STR_MAX - 1);
        if (k->choices && !cfg_in_choices(k->choices, value))
            FAIL(ERR_CONFIG, "%s: key '%s' value '%s': expected one of %s", origin, key, value, k->choices);
        TRY(cfg_check_ini_text(key, value, origin));
        memset(field, 0, CFG_STR_MAX); /* zero-padded: equal configs compare equal byte for byte */
        memcpy(field, value, n);
        break;
    }
    default: FAIL(ERR_CONFIG, "%s: key '%s' has an unknown type %d in its table", origin, key, (int)k->type);
    }
fail:
    return rc;
}

int config_defaults(const CfgTable *t, void *obj) {
    int rc = 0;
    for (int i = 0; i < t->n_keys; i++) {
        const CfgKey *k = &t->keys[i];
        if (!k->name || !k->def) FAIL(ERR_CONFIG, "config table: key %d has no name or no default", i);
        char origin[CFG_NAME_MAX + 32];
        snprintf(origin, sizeof origin, "default of --%s", k->name);
        TRY(config_set(t, obj, NULL, k->name, k->def, origin));
    }
fail:
    return rc;
}

/* ---- INI files --------------------------------------------------------------------------------- */

typedef enum { INI_SEC_RUN, INI_SEC_EXTRA, INI_SEC_BAD } IniSection;

typedef struct {
    const CfgTable *t;
    void *obj;
    CfgExtra *extra;
    const char *path;
    FILE *f;
    int lineno;         /* the line the reader last returned (= the line the handler is called for) */
    IniSection section; /* where keys of the current section go */
    int rc;             /* first error found by the reader or the handler */
    int first_key_err;  /* line of the first key the handler rejected (0: none) */
} IniCtx;

/* Records an error of the reader or the handler. */
static void ini_fail(IniCtx *c, int rc) {
    if (c->rc == 0) c->rc = rc;
}

/* A section header [NAME]: "run" takes run keys, "P.NAME" (P = extra prefix without its dot)
 * takes extra keys; anything else is an error. */
static void ini_section(IniCtx *c, const char *line) {
    const char *p = line + 1, *q = strchr(p, ']');
    if (!q) return; /* libinih reports the missing ']' as a syntax error */
    while (p < q && (*p == ' ' || *p == '\t')) p++;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t')) q--;
    char name[CFG_NAME_MAX];
    size_t n = (size_t)(q - p);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, p, n);
    name[n] = '\0';
    if (strcmp(name, "run") == 0) {
        c->section = INI_SEC_RUN;
        return;
    }
    const char *prefix = c->t->extra_prefix;
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen && prefix[plen - 1] == '.') plen--; /* "scheme." -> sections [scheme.NAME] */
    if (plen && strncmp(name, prefix, plen) == 0 && name[plen] == '.') {
        const char *sub = name + plen + 1;
        if (!c->extra) {
            log_msg(LOG_ERROR, "%s:%d: section [%s]: %s keys are not accepted here", c->path, c->lineno, name,
                    prefix);
        } else if (!cfg_name_ok(sub) || strlen(sub) >= sizeof c->extra->section) {
            log_msg(LOG_ERROR, "%s:%d: section [%s]: expected [%.*s.NAME] with NAME of at most %zu letters, "
                    "digits, '-', '_' or '.'", c->path, c->lineno, name, (int)plen, prefix,
                    sizeof c->extra->section - 1);
        } else {
            memset(c->extra->section, 0, sizeof c->extra->section);
            memcpy(c->extra->section, sub, strlen(sub));
            c->section = INI_SEC_EXTRA;
            return;
        }
    } else if (plen) {
        log_msg(LOG_ERROR, "%s:%d: unknown section [%s]: expected [run] or [%.*s.NAME]", c->path, c->lineno, name,
                (int)plen, prefix);
    } else {
        log_msg(LOG_ERROR, "%s:%d: unknown section [%s]: expected [run]", c->path, c->lineno, name);
    }
    c->section = INI_SEC_BAD;
    ini_fail(c, ERR_CONFIG);
}

char *config_ini_read_line(FILE *f, int *lineno, char *str, int num, bool *too_long, const char **text) {
    int ch = getc(f);
    *too_long = false;
    if (ch == EOF) return NULL;
    ++*lineno;
    while (ch == ' ' || ch == '\t') ch = getc(f);
    int keep = num - 3 < 0 ? 0 : num - 3, n = 0;
    while (ch != EOF && ch != '\n') {
        if (ch == '\r') {
            int next = getc(f);
            if (next == '\n' || next == EOF) break;
            ungetc(next, f);
        }
        if (n < keep) str[n++] = (char)ch;
        else *too_long = true;
        ch = getc(f);
    }
    if (*too_long) n = 0;
    str[n++] = '\n';
    str[n] = '\0';
    const char *s = str;
    if (*lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3; /* UTF-8 byte order mark, which libinih skips too */
    *text = s;
    return str;
}

/* fgets-like reader for ini_parse_stream (config_ini_read_line), tracking the section. */
static char *ini_read_line(char *str, int num, void *stream) {
    IniCtx *c = stream;
    bool too_long;
    const char *s;
    if (!config_ini_read_line(c->f, &c->lineno, str, num, &too_long, &s)) return NULL;
    if (too_long) {
        log_msg(LOG_ERROR, "%s:%d: line longer than %d characters", c->path, c->lineno, num - 3);
        ini_fail(c, ERR_CONFIG);
    }
    if (*s == '[') ini_section(c, s);
    return str;
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value) {
    IniCtx *c = user;
    if (c->section == INI_SEC_BAD) return 1; /* reported once at the section header */
    char origin[CFG_STR_MAX];
    snprintf(origin, sizeof origin, "%s:%d", c->path, c->lineno);
    int rc;
    if (c->section == INI_SEC_EXTRA) {
        char key[CFG_NAME_MAX * 2];
        if (snprintf(key, sizeof key, "%s%s", c->t->extra_prefix, name) >= (int)sizeof key) {
            log_msg(LOG_ERROR, "%s: key '%s' is too long", origin, name);
            rc = ERR_CONFIG;
        } else {
            rc = config_set(c->t, c->obj, c->extra, key, value, origin);
        }
    } else {
        rc = config_set(c->t, c->obj, c->extra, name, value, origin);
    }
    if (rc < 0) {
        ini_fail(c, rc);
        if (!c->first_key_err) c->first_key_err = c->lineno;
        return 0;
    }
    return 1;
}

/* Copies line `lineno` of f (blanks trimmed, at most cap - 1 bytes) into buf, for messages. */
static void ini_line_text(FILE *f, int lineno, char *buf, size_t cap) {
    buf[0] = '\0';
    if (fseek(f, 0, SEEK_SET) != 0) return;
    int line = 1, ch;
    size_t n = 0;
    while ((ch = getc(f)) != EOF) {
        if (ch == '\n') {
            if (line == lineno) break;
            line++;
            continue;
        }
        if (line == lineno && n + 1 < cap && ch != '\r' && !(n == 0 && (ch == ' ' || ch == '\t'))) buf[n++] = (char)ch;
    }
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t')) n--;
    buf[n] = '\0';
}

int config_load_ini(const CfgTable *t, void *obj, CfgExtra *extra, const char *path) {
    int rc = 0;
    IniCtx c = {.t = t, .obj = obj, .extra = extra, .path = path, .section = INI_SEC_RUN};
    c.f = fopen(path, "r");
    if (!c.f) FAIL(ERR_IO, "%s: cannot open config file: %s", path, strerror(errno));
    int bad_line = ini_parse_stream(ini_read_line, &c, ini_on_key, &c);
    if (ferror(c.f)) FAIL(ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (bad_line < 0) FAIL(ERR_NOMEM, "%s: libinih failed (%d)", path, bad_line);
    if (bad_line > 0 && bad_line != c.first_key_err) {
        char text[81];
        ini_line_text(c.f, bad_line, text, sizeof text);
        FAIL(ERR_CONFIG, "%s:%d: syntax error in '%s': expected 'key = value', '[section]' or a comment", path,
             bad_line, text);
    }
    rc = c.rc;
fail:
    if (c.f) fclose(c.f);
    return rc;
}

/* ---- command line ------------------------------------------------------------------------------ */

typedef enum { ARG_KEY, ARG_CONFIG } ArgKind;

typedef struct {
    ArgKind kind;
    char name[CFG_NAME_MAX];       /* table or extra key (for --no-KEY: KEY) */
    char origin[CFG_NAME_MAX + 8]; /* the flag as typed, without "=value" */
    const char *value;             /* points into argv or at a literal */
} ArgTok;

/* Reads the option at argv[*i] (and its value when that is the next argument), advancing *i. */
static int args_next(const CfgTable *t, int argc, char **argv, int *i, ArgTok *tok) {
    int rc = 0;
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
        FAIL(ERR_CONFIG, "unexpected argument '%s': options are --key=VALUE or --key VALUE (see --help)", a);
    const char *body = a + 2, *eq = strchr(body, '=');
    size_t nlen = eq ? (size_t)(eq - body) : strlen(body);
    if (nlen == 0) FAIL(ERR_CONFIG, "'%s': missing key name before '='", a);
    if (nlen >= sizeof tok->name) FAIL(ERR_CONFIG, "'%.40s...': unknown key (name too long)", a);
    memcpy(tok->name, body, nlen);
    tok->name[nlen] = '\0';
    snprintf(tok->origin, sizeof tok->origin, "--%s", tok->name);
    (*i)++;
    tok->kind = strcmp(tok->name, "config") == 0 ? ARG_CONFIG : ARG_KEY;
    const CfgKey *k = tok->kind == ARG_KEY ? cfg_find(t, tok->name) : NULL;
    if (tok->kind == ARG_KEY && !k && !cfg_is_extra_key(t, tok->name)) {
        const CfgKey *neg = strncmp(tok->name, "no-", 3) == 0 ? cfg_find(t, tok->name + 3) : NULL;
        if (!neg) {
            cfg_report_unknown(t, tok->name, tok->origin);
            rc = ERR_CONFIG;
            goto fail;
        }
        if (neg->type != CFG_BOOL) FAIL(ERR_CONFIG, "%s: '%s' is not a boolean key", tok->origin, neg->name);
        if (eq) FAIL(ERR_CONFIG, "%s takes no value (use --%s=VALUE)", tok->origin, neg->name);
        memmove(tok->name, tok->name + 3, strlen(tok->name + 3) + 1);
        tok->value = "false";
        return 0;
    }
    if (eq) {
        tok->value = eq + 1;
    } else if (k && k->type == CFG_BOOL) {
        tok->value = "true";
    } else {
        if (*i >= argc || strncmp(argv[*i], "--", 2) == 0)
            FAIL(ERR_CONFIG, "%s: missing value (use %s=VALUE for a value starting with --)", tok->origin,
                 tok->origin);
        tok->value = argv[(*i)++];
    }
fail:
    return rc;
}

int config_parse_args(const CfgTable *t, void *obj, CfgExtra *extra, int argc, char **argv, int first,
                      bool *help) {
    int rc = 0;
    ArgTok tok;
    if (first < 0) first = 0;
    /* --help wins over everything else, even over bad options */
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            if (!help) FAIL(ERR_CONFIG, "--help is not accepted here");
            *help = true;
            return 0;
        }
    }
    /* pass 1: the whole command line is well formed and names only known keys */
    for (int i = first; i < argc;) TRY(args_next(t, argc, argv, &i, &tok));
    /* pass 2: config files, in the order given; pass 3: the other options, in the order given */
    for (int pass = 2; pass <= 3; pass++) {
        for (int i = first; i < argc;) {
            TRY(args_next(t, argc, argv, &i, &tok));
            if (pass == 2 && tok.kind == ARG_CONFIG) TRY(config_load_ini(t, obj, extra, tok.value));
            if (pass == 3 && tok.kind == ARG_KEY) TRY(config_set(t, obj, extra, tok.name, tok.value, tok.origin));
        }
    }
fail:
    return rc;
}

/* ---- output ------------------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t cap, len; /* len counts what would have been written, even past cap */
} TextBuf;

__attribute__((format(printf, 2, 3))) static void tb_printf(TextBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
}

void config_print_help(const CfgTable *t, FILE *f) {
    enum { COL = 28 };
    for (int i = 0; i < t->n_keys; i++) {
        const CfgKey *k = &t->keys[i];
        if (!k->name) continue;
        char left[CFG_STR_MAX];
        const char *type = "";
        switch (k->type) {
        case CFG_INT:
        case CFG_LONG: type = " INT"; break;
        case CFG_DOUBLE: type = " NUM"; break;
        case CFG_BOOL: type = "[=BOOL]"; break;
        case CFG_STRING: type = k->choices ? " " : " TEXT"; break;
        }
        snprintf(left, sizeof left, "--%s%s%s", k->name, type,
                 k->type == CFG_STRING && k->choices ? k->choices : "");
        char range[2 * CFG_NUM_TEXT + 8] = "";
        if (k->type == CFG_INT || k->type == CFG_LONG || k->type == CFG_DOUBLE) cfg_fmt_range(k, range, sizeof range);
        const char *def = k->def ? k->def : "";
        bool quote = k->type == CFG_STRING && def[0] == '\0';
        if (strlen(left) > COL) fprintf(f, "  %s\n  %-*s  ", left, COL, "");
        else fprintf(f, "  %-*s  ", COL, left);
        fprintf(f, "%s (default %s%s%s%s%s)\n", k->help ? k->help : "", quote ? "\"" : "", def, quote ? "\"" : "",
                range[0] ? ", range " : "", range);
    }
    fprintf(f, "  %-*s  %s\n", COL, "--no-KEY", "set a boolean key to false");
    if (t->extra_prefix && t->extra_prefix[0]) {
        char left[CFG_NAME_MAX];
        snprintf(left, sizeof left, "--%sKEY=VALUE", t->extra_prefix);
        fprintf(f, "  %-*s  %s\n", COL, left, "passed to its owner, which checks it");
    }
    fprintf(f, "  %-*s  %s\n", COL, "--config FILE",
            "read keys from an INI file first; the command line wins (\"key = value\" lines, top level or [run])");
    fprintf(f, "  %-*s  %s\n", COL, "--help", "print this help");
}

int config_to_text(const CfgTable *t, const void *obj, const CfgExtra *extra, char *buf, size_t cap) {
    int rc = 0;
    TextBuf b = {.buf = buf, .cap = cap};
    if (cap) buf[0] = '\0';
    char value[CFG_STR_MAX];
    for (int i = 0; i < t->n_keys; i++) {
        if (!t->keys[i].name) continue;
        cfg_value_text(&t->keys[i], obj, value, sizeof value);
        tb_printf(&b, value[0] ? "%s = %s\n" : "%s =%s\n", t->keys[i].name, value); /* no trailing blank */
    }
    if (extra && t->extra_prefix && t->extra_prefix[0]) {
        size_t plen = strlen(t->extra_prefix);
        /* a section goes after every top-level key; without one, extra keys stay top-level */
        if (extra->section[0]) {
            size_t base = t->extra_prefix[plen - 1] == '.' ? plen - 1 : plen;
            tb_printf(&b, "\n[%.*s.%s]\n", (int)base, t->extra_prefix, extra->section);
        }
        for (int i = 0; i < extra->n && i < CFG_MAX_EXTRA; i++) {
            const char *key = extra->key[i];
            if (extra->section[0] && strncmp(key, t->extra_prefix, plen) == 0) key += plen;
            tb_printf(&b, "%s = %s\n", key, extra->value[i]);
        }
    }
    if (b.len >= cap) {
        if (cap) buf[0] = '\0';
        FAIL(ERR_NOMEM, "config text needs %zu bytes, the buffer has %zu", b.len + 1, cap);
    }
    rc = b.len > INT_MAX ? ERR_NOMEM : (int)b.len;
fail:
    return rc;
}

int config_get_text(const CfgTable *t, const void *obj, const char *key, char *buf, size_t cap) {
    int rc = 0;
    const CfgKey *k = cfg_find(t, key);
    if (!k) {
        cfg_report_unknown(t, key, "config_get_text");
        rc = ERR_CONFIG;
        goto fail;
    }
    char value[CFG_STR_MAX];
    cfg_value_text(k, obj, value, sizeof value);
    size_t n = strlen(value);
    if (n >= cap) FAIL(ERR_NOMEM, "key '%s': its value needs %zu bytes, the buffer has %zu", key, n + 1, cap);
    memcpy(buf, value, n + 1);
    rc = (int)n;
fail:
    return rc;
}
