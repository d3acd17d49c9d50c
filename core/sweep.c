/* sweep.c: reading, validating and expanding a sweep file (core/sweep.h).
 *
 * The file goes through libinih with our own line reader (as core/config.c does) so that every key
 * is known with its line, leading blanks never make a continuation line, over-long lines are
 * reported, and section headers are seen even when the section holds no keys. The whole file is
 * read into sections first; then every value is validated against the run table (and the extra
 * checks below) before any point is built. */
#include "core/sweep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/optim.h"
#include "core/scheme.h"

#define SW_ORIGIN_MAX 1200
#define SW_TRUNC_NAME 180 /* names longer than this are cut (then made unique with _pN) */
#define SW_MAX_KEYS 256   /* run keys + scheme options of one sweep */ /* names longer than this are cut (then made unique with _pN) */
#define SCHEME_KEY_PREFIX (runconfig_table.extra_prefix) /* "scheme." */

typedef struct {
    char *key, *value;
    int line;
} SwEntry;

typedef enum { SW_SEC_SWEEP, SW_SEC_BASE, SW_SEC_GRID } SwSecKind;

typedef struct {
    SwSecKind kind;
    char name[72]; /* grid NAME ("" for [grid]) */
    int line;
    int n, cap;
    SwEntry *e;
} SwSection;

typedef struct {
    const char *path;
    FILE *f;
    int lineno;
    int rc;
    int n_sec, cap_sec;
    SwSection *sec;
    int cur; /* section the keys go to; -1 before the first header, -2 after a bad header */
} SwFile;

/* ---- small helpers ----------------------------------------------------------------------------- */

static char *sw_strndup(const char *s, size_t n) {
    char *p = mem_alloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static bool sw_name_ok(const char *s) {
    if (!*s || *s == '.') return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return true;
}

static void sw_section_label(const SwSection *sec, char *buf, size_t cap) {
    if (sec->kind == SW_SEC_SWEEP) snprintf(buf, cap, "[sweep]");
    else if (sec->kind == SW_SEC_BASE) snprintf(buf, cap, "[base]");
    else if (sec->name[0]) snprintf(buf, cap, "[grid %s]", sec->name);
    else snprintf(buf, cap, "[grid]");
}

static void sw_origin(const char *path, const SwSection *sec, int line, char *buf, size_t cap) {
    char label[96];
    sw_section_label(sec, label, sizeof label);
    snprintf(buf, cap, "%s:%d %s", path, line, label);
}

static bool sw_is_extra(const char *key) {
    return strncmp(key, SCHEME_KEY_PREFIX, strlen(SCHEME_KEY_PREFIX)) == 0;
}

static bool sw_scheme_takes(const Scheme *sch, const char *full_key) {
    const char *opt = full_key + strlen(SCHEME_KEY_PREFIX);
    if (!sch->options) return false;
    for (int i = 0; i < sch->options->n_keys; i++)
        if (sch->options->keys[i].name && strcmp(sch->options->keys[i].name, opt) == 0) return true;
    return false;
}

/* ---- reading the file -------------------------------------------------------------------------- */

static void sw_file_fail(SwFile *c, int rc) {
    if (c->rc == 0) c->rc = rc;
}

static void sw_file_free(SwFile *c) {
    for (int i = 0; i < c->n_sec; i++) {
        for (int j = 0; j < c->sec[i].n; j++) {
            mem_free(c->sec[i].e[j].key);
            mem_free(c->sec[i].e[j].value);
        }
        mem_free(c->sec[i].e);
    }
    mem_free(c->sec);
    c->sec = NULL;
    c->n_sec = c->cap_sec = 0;
}

static void sw_header(SwFile *c, const char *line) {
    const char *p = line + 1, *q = strchr(p, ']');
    if (!q) return; /* libinih reports the missing ']' */
    while (p < q && (*p == ' ' || *p == '\t')) p++;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t')) q--;
    char name[128];
    size_t n = (size_t)(q - p);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, p, n);
    name[n] = '\0';
    SwSection sec = {.line = c->lineno};
    if (strcmp(name, "sweep") == 0) sec.kind = SW_SEC_SWEEP;
    else if (strcmp(name, "base") == 0) sec.kind = SW_SEC_BASE;
    else if (strcmp(name, "grid") == 0) sec.kind = SW_SEC_GRID;
    else if (strncmp(name, "grid ", 5) == 0 || strncmp(name, "grid\t", 5) == 0) {
        const char *g = name + 5;
        while (*g == ' ' || *g == '\t') g++;
        if (!sw_name_ok(g) || strlen(g) >= sizeof sec.name) {
            log_msg(LOG_ERROR, "%s:%d: section [%s]: expected [grid NAME] with NAME of at most %zu letters, digits, "
                    "'-', '_' or '.'", c->path, c->lineno, name, sizeof sec.name - 1);
            goto bad;
        }
        sec.kind = SW_SEC_GRID;
        snprintf(sec.name, sizeof sec.name, "%s", g);
    } else {
        log_msg(LOG_ERROR, "%s:%d: unknown section [%s]: expected [sweep], [base], [grid] or [grid NAME]", c->path,
                c->lineno, name);
        goto bad;
    }
    for (int i = 0; i < c->n_sec; i++) {
        const SwSection *o = &c->sec[i];
        if (o->kind == sec.kind && (sec.kind != SW_SEC_GRID || strcmp(o->name, sec.name) == 0)) {
            char label[96];
            sw_section_label(&sec, label, sizeof label);
            log_msg(LOG_ERROR, "%s:%d: section %s appears twice (first at line %d)", c->path, c->lineno, label, o->line);
            goto bad;
        }
    }
    if (c->n_sec == c->cap_sec) {
        int cap = c->cap_sec ? 2 * c->cap_sec : 8;
        SwSection *ns = mem_calloc((size_t)cap, sizeof *ns);
        if (!ns) {
            sw_file_fail(c, ERR_NOMEM);
            c->cur = -2;
            return;
        }
        if (c->n_sec) memcpy(ns, c->sec, (size_t)c->n_sec * sizeof *ns);
        mem_free(c->sec);
        c->sec = ns;
        c->cap_sec = cap;
    }
    c->sec[c->n_sec] = sec;
    c->cur = c->n_sec++;
    return;
bad:
    c->cur = -2;
    sw_file_fail(c, ERR_CONFIG);
}

static char *sw_read_line(char *str, int num, void *stream) {
    SwFile *c = stream;
    bool too_long;
    const char *s;
    if (!config_ini_read_line(c->f, &c->lineno, str, num, &too_long, &s)) return NULL;
    if (too_long) {
        log_msg(LOG_ERROR, "%s:%d: line longer than %d characters", c->path, c->lineno, num - 3);
        sw_file_fail(c, ERR_CONFIG);
    }
    if (*s == '[') sw_header(c, s);
    return str;
}

static int sw_on_key(void *user, const char *section, const char *name, const char *value) {
    SwFile *c = user;
    (void)section;
    if (c->cur == -2) return 1; /* reported at the header */
    if (c->cur < 0) {
        log_msg(LOG_ERROR, "%s:%d: key '%s' before the first section (expected [sweep], [base] or [grid ...])",
                c->path, c->lineno, name);
        sw_file_fail(c, ERR_CONFIG);
        return 1;
    }
    SwSection *sec = &c->sec[c->cur];
    for (int j = 0; j < sec->n; j++) {
        if (strcmp(sec->e[j].key, name) == 0) {
            char label[96];
            sw_section_label(sec, label, sizeof label);
            log_msg(LOG_ERROR, "%s:%d %s: key '%s' set twice (first at line %d)", c->path, c->lineno, label, name,
                    sec->e[j].line);
            sw_file_fail(c, ERR_CONFIG);
            return 1;
        }
    }
    if (sec->n == sec->cap) {
        int cap = sec->cap ? 2 * sec->cap : 16;
        SwEntry *ne = mem_calloc((size_t)cap, sizeof *ne);
        if (!ne) {
            sw_file_fail(c, ERR_NOMEM);
            return 1;
        }
        if (sec->n) memcpy(ne, sec->e, (size_t)sec->n * sizeof *ne);
        mem_free(sec->e);
        sec->e = ne;
        sec->cap = cap;
    }
    SwEntry *e = &sec->e[sec->n];
    e->key = sw_strndup(name, strlen(name));
    e->value = sw_strndup(value, strlen(value));
    e->line = c->lineno;
    if (!e->key || !e->value) {
        mem_free(e->key);
        mem_free(e->value);
        sw_file_fail(c, ERR_NOMEM);
        return 1;
    }
    sec->n++;
    return 1;
}

static int sw_read_file(SwFile *c, const char *path) {
    int rc = 0;
    memset(c, 0, sizeof *c);
    c->path = path;
    c->cur = -1;
    c->f = fopen(path, "r");
    if (!c->f) FAIL(ERR_IO, "%s: cannot open sweep file: %s", path, strerror(errno));
    int bad_line = ini_parse_stream(sw_read_line, c, sw_on_key, c);
    if (ferror(c->f)) FAIL(ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (bad_line < 0) FAIL(ERR_NOMEM, "%s: libinih failed (%d)", path, bad_line);
    if (bad_line > 0)
        FAIL(ERR_CONFIG, "%s:%d: syntax error: expected 'key = value', '[section]' or a comment (is this a sweep "
             "file?)", path, bad_line);
    rc = c->rc;
fail:
    if (c->f) fclose(c->f);
    c->f = NULL;
    if (rc) sw_file_free(c);
    return rc;
}

/* ---- values ------------------------------------------------------------------------------------ */

/* Splits a grid value "a, b, "c,d"" into items (blanks around items dropped, double quotes let an item
 * hold commas). *items holds *n owned strings. */
static int sw_split_list(const char *v, const char *origin, const char *key, char ***items, int *n) {
    int rc = 0, cap = 0;
    *items = NULL;
    *n = 0;
    const char *p = v;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        const char *start, *end;
        if (*p == '"') {
            start = ++p;
            while (*p && *p != '"') p++;
            if (*p != '"') FAIL(ERR_CONFIG, "%s: key '%s' value '%s': unterminated '\"'", origin, key, v);
            end = p++;
            while (*p == ' ' || *p == '\t') p++;
            if (*p && *p != ',')
                FAIL(ERR_CONFIG, "%s: key '%s' value '%s': expected ',' after a quoted item", origin, key, v);
        } else {
            start = p;
            while (*p && *p != ',') p++;
            end = p;
            while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
            if (end == start)
                FAIL(ERR_CONFIG, "%s: key '%s' value '%s': empty item in the comma-separated list", origin, key, v);
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            char **ni = mem_calloc((size_t)cap, sizeof *ni);
            if (!ni) FAIL(ERR_NOMEM, "sweep: out of memory");
            if (*n) memcpy(ni, *items, (size_t)*n * sizeof *ni);
            mem_free(*items);
            *items = ni;
        }
        (*items)[*n] = sw_strndup(start, (size_t)(end - start));
        if (!(*items)[*n]) FAIL(ERR_NOMEM, "sweep: out of memory");
        (*n)++;
        if (!*p) break;
        p++; /* the comma */
    }
fail:
    if (rc) {
        for (int i = 0; i < *n; i++) mem_free((*items)[i]);
        mem_free(*items);
        *items = NULL;
        *n = 0;
    }
    return rc;
}

/* Checks one value of a key: the run table (bounds, choices, INI-safe text; scheme.KEY names), and
 * what the table cannot see: scheme, model, schedule and synthetic-shape. The keys out and resume
 * belong to the sweep. */
static int sw_check_value(RunConfig *scratch, CfgExtra *xscratch, const char *key, const char *value,
                          const char *origin) {
    int rc = 0;
    if (strcmp(key, "out") == 0 || strcmp(key, "resume") == 0)
        FAIL(ERR_CONFIG, "%s: key '%s': set by the sweep for each point (records go to <runs dir>/<sweep name>/)",
             origin, key);
    xscratch->n = 0;
    TRY(config_set(&runconfig_table, scratch, xscratch, key, value, origin));
    if (strcmp(key, "scheme") == 0 && !scheme_find(value)) {
        char names[512] = "";
        for (int i = 0; scheme_registry[i]; i++) {
            size_t l = strlen(names);
            snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "", scheme_registry[i]->name);
        }
        FAIL(ERR_CONFIG, "%s: key 'scheme' value '%s': unknown scheme (expected one of %s)", origin, value, names);
    }
    if (strcmp(key, "model") == 0) {
        bool known = false;
        char names[512] = "";
        for (int i = 0; model_names[i]; i++) {
            known |= strcmp(model_names[i], value) == 0;
            size_t l = strlen(names);
            snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "", model_names[i]);
        }
        if (!known) FAIL(ERR_CONFIG, "%s: key 'model' value '%s': unknown model (expected one of %s)", origin, value, names);
    }
    if (strcmp(key, "schedule") == 0) {
        Schedule sch = {0};
        if (sched_parse(&sch, value))
            FAIL(ERR_CONFIG, "%s: key 'schedule' value '%s': expected constant, cosine, onecycle or step:E1,E2,...",
                 origin, value);
    }
    if (strcmp(key, "synthetic-shape") == 0) {
        int c, h, w;
        char tail;
        if (sscanf(value, "%dx%dx%d%c", &c, &h, &w, &tail) != 3 || c < 1 || c > 4 || h < 1 || h > 4096 || w < 1 ||
            w > 4096)
            FAIL(ERR_CONFIG, "%s: key 'synthetic-shape' value '%s': expected CxHxW with C in 1..4, H and W in 1..4096",
                 origin, value);
    }
fail:
    return rc;
}

/* ---- building the sweep ------------------------------------------------------------------------ */

typedef struct {
    const char *value;  /* NULL: unset */
    const char *origin; /* where it was set (for messages) */
    bool from_grid;
} SwVal;

static int sw_add_key(Sweep *s, const char *key, int *cap) {
    if (sweep_key_index(s, key) >= 0) return 0;
    if (s->n_keys >= SW_MAX_KEYS) {
        log_msg(LOG_ERROR, "sweep: more than %d different keys", SW_MAX_KEYS);
        return ERR_CONFIG;
    }
    if (s->n_keys == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        char **nk = mem_calloc((size_t)nc, sizeof *nk);
        if (!nk) return ERR_NOMEM;
        if (s->n_keys) memcpy(nk, s->keys, (size_t)s->n_keys * sizeof *nk);
        mem_free(s->keys);
        s->keys = nk;
        *cap = nc;
    }
    s->keys[s->n_keys] = mem_strdup(key);
    if (!s->keys[s->n_keys]) return ERR_NOMEM;
    s->n_keys++;
    return 0;
}

static bool sw_same(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Appends the point vals unless an equal one exists. */
static int sw_add_point(Sweep *s, const SwVal *vals, int grid, int *cap) {
    for (int i = 0; i < s->n_points; i++) {
        int k = 0;
        while (k < s->n_keys && sw_same(s->points[i].value[k], vals[k].value)) k++;
        if (k == s->n_keys) {
            s->n_duplicates++;
            return 0;
        }
    }
    if (s->n_points == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        SweepPoint *np = mem_calloc((size_t)nc, sizeof *np);
        if (!np) return ERR_NOMEM;
        if (s->n_points) memcpy(np, s->points, (size_t)s->n_points * sizeof *np);
        mem_free(s->points);
        s->points = np;
        *cap = nc;
    }
    SweepPoint *p = &s->points[s->n_points];
    memset(p, 0, sizeof *p);
    p->grid = grid;
    p->value = mem_calloc((size_t)s->n_keys, sizeof *p->value);
    p->from_grid = mem_calloc((size_t)s->n_keys, sizeof *p->from_grid);
    s->n_points++; /* counted now so sweep_deinit frees a half-built point */
    if (!p->value || !p->from_grid) return ERR_NOMEM;
    for (int k = 0; k < s->n_keys; k++) {
        p->from_grid[k] = vals[k].from_grid;
        if (vals[k].value && !(p->value[k] = mem_strdup(vals[k].value))) return ERR_NOMEM;
    }
    return 0;
}

/* Filesystem-safe copy of v appended to buf. */
static void sw_append_safe(char *buf, size_t cap, const char *v) {
    size_t l = strlen(buf);
    for (; *v && l + 1 < cap; v++) {
        unsigned char ch = (unsigned char)*v;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '+' || ch == '-';
        buf[l++] = ok ? (char)ch : '-';
    }
    buf[l] = '\0';
}

static int sw_name_points(Sweep *s) {
    int n = s->n_keys;
    int order[SW_MAX_KEYS], n_order = 0;
    int n_table = runconfig_table.n_keys;
    /* run-table order, scheme options right after reuse */
    for (int k = 0; k < n_table && n_order < SW_MAX_KEYS; k++) {
        order[n_order++] = k;
        if (strcmp(s->keys[k], "reuse") == 0)
            for (int e = n_table; e < n && n_order < SW_MAX_KEYS; e++) order[n_order++] = e;
    }
    bool varies[SW_MAX_KEYS] = {false};
    for (int o = 0; o < n_order; o++) {
        int k = order[o];
        for (int i = 1; i < s->n_points && !varies[o]; i++)
            varies[o] = !sw_same(s->points[i].value[k], s->points[0].value[k]);
    }
    for (int i = 0; i < s->n_points; i++) {
        SweepPoint *p = &s->points[i];
        char name[4 * SWEEP_NAME_MAX] = "";
        for (int o = 0; o < n_order; o++) {
            int k = order[o];
            if (!varies[o] || !p->from_grid[k] || !p->value[k]) continue;
            const char *key = s->keys[k];
            if (sw_is_extra(key)) key += strlen(SCHEME_KEY_PREFIX);
            if (name[0] && strlen(name) + 1 < sizeof name) strcat(name, "_");
            bool bare = strcmp(key, "dataset") == 0 || strcmp(key, "model") == 0 || strcmp(key, "scheme") == 0;
            size_t l = strlen(name);
            if (!bare) {
                snprintf(name + l, sizeof name - l, "%s-", key);
                /* keys are letters, digits, '-', '_' and '.': keep '_' out of them (it separates keys) */
                for (char *c = name + l; *c; c++)
                    if (*c == '_') *c = '-';
            }
            sw_append_safe(name, sizeof name, p->value[k]);
        }
        if (!name[0]) {
            int ks = sweep_key_index(s, "scheme");
            sw_append_safe(name, sizeof name, ks >= 0 && p->value[ks] ? p->value[ks] : "run");
        }
        name[SW_TRUNC_NAME] = '\0';
        snprintf(p->name, sizeof p->name, "%s", name);
    }
    /* names that coincide (sanitised or cut values) get their point number */
    bool *clash = mem_calloc((size_t)s->n_points + 1, sizeof *clash);
    if (!clash) return ERR_NOMEM;
    for (int i = 0; i < s->n_points; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(s->points[i].name, s->points[j].name) == 0) clash[i] = clash[j] = true;
    for (int i = 0; i < s->n_points; i++)
        if (clash[i]) {
            size_t l = strlen(s->points[i].name);
            snprintf(s->points[i].name + l, sizeof s->points[i].name - l, "_p%d", i + 1);
        }
    mem_free(clash);
    return 0;
}

int sweep_key_index(const Sweep *s, const char *key) {
    for (int k = 0; k < s->n_keys; k++)
        if (strcmp(s->keys[k], key) == 0) return k;
    return -1;
}

void sweep_deinit(Sweep *s) {
    if (!s) return;
    for (int i = 0; i < s->n_points; i++) {
        for (int k = 0; s->points[i].value && k < s->n_keys; k++) mem_free(s->points[i].value[k]);
        mem_free(s->points[i].value);
        mem_free(s->points[i].from_grid);
    }
    mem_free(s->points);
    for (int k = 0; k < s->n_keys; k++) mem_free(s->keys[k]);
    mem_free(s->keys);
    for (int g = 0; s->grid_names && g < s->n_grids; g++) mem_free(s->grid_names[g]);
    mem_free(s->grid_names);
    memset(s, 0, sizeof *s);
}

int sweep_point_config(const Sweep *s, int i, RunConfig *cfg, CfgExtra *extra) {
    int rc = 0;
    memset(cfg, 0, sizeof *cfg);
    memset(extra, 0, sizeof *extra);
    TRY(config_defaults(&runconfig_table, cfg));
    for (int k = 0; k < s->n_keys; k++) {
        const char *v = s->points[i].value[k];
        if (v) TRY(config_set(&runconfig_table, cfg, extra, s->keys[k], v, s->points[i].name));
    }
fail:
    return rc;
}

int sweep_load(Sweep *s, const char *path, int n_over, const char *const *over) {
    int rc = 0, keys_cap = 0, points_cap = 0;
    SwFile file;
    bool file_read = false;
    RunConfig *scratch = NULL;
    CfgExtra *xs = NULL;
    SwVal *base = NULL, *vals = NULL;
    char **over_key = NULL, **over_origin = NULL, **defaults = NULL;
    char ***items = NULL;
    int *n_items = NULL, *idx = NULL, *gkey = NULL;
    char **gorigin = NULL;
    bool *used = NULL;
    char **first_origin = NULL; /* (n_keys) owned copies: where each scheme option was first set */
    char **base_origin = NULL;  /* (n_keys) owned: "FILE:LINE [base]" of the keys [base] sets */
    void *opts = NULL;
    int max_keys = 0;
    char origin[SW_ORIGIN_MAX];
    memset(s, 0, sizeof *s);

    TRY(sw_read_file(&file, path));
    file_read = true;
    scratch = mem_calloc(1, sizeof *scratch);
    xs = mem_calloc(1, sizeof *xs);
    if (!scratch || !xs) FAIL(ERR_NOMEM, "sweep: out of memory");
    TRY(config_defaults(&runconfig_table, scratch));

    /* [sweep], and the sections present */
    const SwSection *sweep_sec = NULL, *base_sec = NULL;
    for (int i = 0; i < file.n_sec; i++) {
        if (file.sec[i].kind == SW_SEC_SWEEP) sweep_sec = &file.sec[i];
        else if (file.sec[i].kind == SW_SEC_BASE) base_sec = &file.sec[i];
        else s->n_grids++;
    }
    if (!sweep_sec) FAIL(ERR_CONFIG, "%s: no [sweep] section (expected [sweep] with name = NAME)", path);
    for (int j = 0; j < sweep_sec->n; j++) {
        const SwEntry *e = &sweep_sec->e[j];
        sw_origin(path, sweep_sec, e->line, origin, sizeof origin);
        if (strcmp(e->key, "name") != 0) FAIL(ERR_CONFIG, "%s: unknown key '%s' (expected name)", origin, e->key);
        if (!sw_name_ok(e->value) || strlen(e->value) > 64)
            FAIL(ERR_CONFIG, "%s: key 'name' value '%s': expected at most 64 letters, digits, '-', '_' or '.' (not "
                 "starting with '.')", origin, e->value);
        snprintf(s->name, sizeof s->name, "%s", e->value);
    }
    if (!s->name[0]) FAIL(ERR_CONFIG, "%s:%d [sweep]: missing key 'name' (records go to <runs dir>/NAME/)", path,
                          sweep_sec->line);
    if (s->n_grids == 0) FAIL(ERR_CONFIG, "%s: no [grid] section (expected at least one [grid] or [grid NAME])", path);

    /* keys: the table's, then every scheme.KEY in order of first appearance */
    for (int k = 0; k < runconfig_table.n_keys; k++) TRY(sw_add_key(s, runconfig_table.keys[k].name, &keys_cap));
    for (int i = 0; i < file.n_sec; i++)
        for (int j = 0; file.sec[i].kind != SW_SEC_SWEEP && j < file.sec[i].n; j++)
            if (sw_is_extra(file.sec[i].e[j].key)) TRY(sw_add_key(s, file.sec[i].e[j].key, &keys_cap));

    /* overrides "KEY=VALUE" */
    over_key = mem_calloc((size_t)n_over + 1, sizeof *over_key);
    over_origin = mem_calloc((size_t)n_over + 1, sizeof *over_origin);
    if (!over_key || !over_origin) FAIL(ERR_NOMEM, "sweep: out of memory");
    for (int o = 0; o < n_over; o++) {
        const char *eq = strchr(over[o], '=');
        if (!eq || eq == over[o]) FAIL(ERR_CONFIG, "override '--%s': expected --KEY=VALUE", over[o]);
        over_key[o] = sw_strndup(over[o], (size_t)(eq - over[o]));
        if (!over_key[o]) FAIL(ERR_NOMEM, "sweep: out of memory");
        char o_origin[160];
        snprintf(o_origin, sizeof o_origin, "--%.120s", over_key[o]);
        over_origin[o] = mem_strdup(o_origin);
        if (!over_origin[o]) FAIL(ERR_NOMEM, "sweep: out of memory");
        TRY(sw_check_value(scratch, xs, over_key[o], eq + 1, over_origin[o]));
        if (sw_is_extra(over_key[o])) TRY(sw_add_key(s, over_key[o], &keys_cap));
        if (strcmp(over_key[o], "threads") == 0) s->threads_set = true;
    }
    int nk = s->n_keys;

    /* base: defaults, then [base] */
    base = mem_calloc((size_t)nk, sizeof *base);
    vals = mem_calloc((size_t)nk, sizeof *vals);
    defaults = mem_calloc((size_t)nk, sizeof *defaults);
    used = mem_calloc((size_t)nk, sizeof *used);
    first_origin = mem_calloc((size_t)nk, sizeof *first_origin);
    base_origin = mem_calloc((size_t)nk, sizeof *base_origin);
    if (!base || !vals || !defaults || !used || !first_origin || !base_origin) FAIL(ERR_NOMEM, "sweep: out of memory");
    TRY(config_defaults(&runconfig_table, scratch)); /* the checks above changed it */
    for (int k = 0; k < runconfig_table.n_keys; k++) {
        char text[CFG_STR_MAX];
        TRY(config_get_text(&runconfig_table, scratch, s->keys[k], text, sizeof text));
        if (!(defaults[k] = mem_strdup(text))) FAIL(ERR_NOMEM, "sweep: out of memory");
        base[k].value = defaults[k];
        base[k].origin = "default";
    }
    if (base_sec) {
        for (int j = 0; j < base_sec->n; j++) {
            const SwEntry *e = &base_sec->e[j];
            char o[SW_ORIGIN_MAX];
            sw_origin(path, base_sec, e->line, o, sizeof o);
            TRY(sw_check_value(scratch, xs, e->key, e->value, o));
            int k = sweep_key_index(s, e->key);
            ASSERT(k >= 0);
            base[k].value = e->value;
            if (!(base_origin[k] = mem_strdup(o))) FAIL(ERR_NOMEM, "sweep: out of memory");
            base[k].origin = base_origin[k];
            if (strcmp(e->key, "threads") == 0) s->threads_set = true;
        }
    }

    /* every grid's lists, checked before anything is expanded */
    for (int i = 0; i < file.n_sec; i++)
        if (file.sec[i].kind == SW_SEC_GRID && file.sec[i].n > max_keys) max_keys = file.sec[i].n;
    items = mem_calloc((size_t)max_keys + 1, sizeof *items);
    n_items = mem_calloc((size_t)max_keys + 1, sizeof *n_items);
    idx = mem_calloc((size_t)max_keys + 1, sizeof *idx);
    gkey = mem_calloc((size_t)max_keys + 1, sizeof *gkey);
    gorigin = mem_calloc((size_t)max_keys + 1, sizeof *gorigin);
    s->grid_names = mem_calloc((size_t)s->n_grids, sizeof *s->grid_names);
    if (!items || !n_items || !idx || !gkey || !gorigin || !s->grid_names) FAIL(ERR_NOMEM, "sweep: out of memory");
    long total = 0;
    int g = 0;
    for (int i = 0; i < file.n_sec; i++) {
        const SwSection *sec = &file.sec[i];
        if (sec->kind != SW_SEC_GRID) continue;
        if (!(s->grid_names[g] = mem_strdup(sec->name))) FAIL(ERR_NOMEM, "sweep: out of memory");
        long count = 1;
        for (int j = 0; j < sec->n; j++) {
            char o[SW_ORIGIN_MAX];
            sw_origin(path, sec, sec->e[j].line, o, sizeof o);
            char **it = NULL;
            int n_it = 0;
            TRY(sw_split_list(sec->e[j].value, o, sec->e[j].key, &it, &n_it));
            for (int m = 0; m < n_it && rc == 0; m++) rc = sw_check_value(scratch, xs, sec->e[j].key, it[m], o);
            if (rc && n_it > 1 && !strchr(sec->e[j].value, '"'))
                log_msg(LOG_ERROR, "%s: (a grid value is a comma-separated list; an item holding a comma is written "
                        "in double quotes: \"step:30,60\")", o);
            for (int m = 0; m < n_it; m++) mem_free(it[m]);
            mem_free(it);
            if (rc) goto fail;
            if (strcmp(sec->e[j].key, "threads") == 0) s->threads_set = true;
            count *= n_it;
            if (count > SWEEP_MAX_POINTS) break;
        }
        total += count;
        if (total > SWEEP_MAX_POINTS)
            FAIL(ERR_CONFIG, "%s: the grids up to %s line %d make more than %d points", path,
                 sec->name[0] ? sec->name : "[grid]", sec->line, SWEEP_MAX_POINTS);
        g++;
    }

    /* expansion */
    g = 0;
    for (int i = 0; i < file.n_sec; i++) {
        const SwSection *sec = &file.sec[i];
        if (sec->kind != SW_SEC_GRID) continue;
        for (int j = 0; j < sec->n; j++) {
            char o[SW_ORIGIN_MAX];
            sw_origin(path, sec, sec->e[j].line, o, sizeof o);
            if (!(gorigin[j] = mem_strdup(o))) FAIL(ERR_NOMEM, "sweep: out of memory");
            TRY(sw_split_list(sec->e[j].value, o, sec->e[j].key, &items[j], &n_items[j]));
            gkey[j] = sweep_key_index(s, sec->e[j].key);
            ASSERT(gkey[j] >= 0);
            idx[j] = 0;
        }
        for (;;) {
            memcpy(vals, base, (size_t)nk * sizeof *vals);
            for (int j = 0; j < sec->n; j++) {
                vals[gkey[j]].value = items[j][idx[j]];
                vals[gkey[j]].origin = gorigin[j];
                vals[gkey[j]].from_grid = true;
            }
            for (int o = 0; o < n_over; o++) {
                int k = sweep_key_index(s, over_key[o]);
                vals[k].value = strchr(over[o], '=') + 1;
                vals[k].origin = over_origin[o];
                vals[k].from_grid = false;
            }
            /* scheme options: dropped where the point's scheme does not take them, checked where it does */
            const Scheme *sch = scheme_find(vals[sweep_key_index(s, "scheme")].value);
            ASSERT(sch);
            mem_free(opts);
            opts = mem_calloc(1, sch->cfg_size + 1);
            if (!opts) FAIL(ERR_NOMEM, "sweep: out of memory");
            for (int k = runconfig_table.n_keys; k < nk; k++) {
                if (!vals[k].value) continue;
                if (!first_origin[k] && !(first_origin[k] = mem_strdup(vals[k].origin)))
                    FAIL(ERR_NOMEM, "sweep: out of memory");
                if (!sw_scheme_takes(sch, s->keys[k])) {
                    vals[k].value = NULL;
                    vals[k].from_grid = false;
                    continue;
                }
                used[k] = true;
                TRY(config_set(sch->options, opts, NULL, s->keys[k] + strlen(SCHEME_KEY_PREFIX), vals[k].value,
                               vals[k].origin));
            }
            TRY(sw_add_point(s, vals, g, &points_cap));
            /* odometer, last key fastest */
            int j = sec->n - 1;
            while (j >= 0 && ++idx[j] == n_items[j]) idx[j--] = 0;
            if (j < 0) break;
        }
        for (int j = 0; j < sec->n; j++) {
            for (int m = 0; m < n_items[j]; m++) mem_free(items[j][m]);
            mem_free(items[j]);
            items[j] = NULL;
            n_items[j] = 0;
            mem_free(gorigin[j]);
            gorigin[j] = NULL;
        }
        g++;
    }
    for (int k = runconfig_table.n_keys; k < nk; k++)
        if (!used[k])
            FAIL(ERR_CONFIG, "%s: key '%s': no point's scheme takes option '%s' (resprop schemes lists them)",
                 first_origin[k] ? first_origin[k] : path, s->keys[k], s->keys[k] + strlen(SCHEME_KEY_PREFIX));
    /* the run's own check of the options, on the points' final configs */
    for (int i = 0; i < s->n_points; i++) {
        TRY(sweep_point_config(s, i, scratch, xs));
        const Scheme *sch = scheme_find(scratch->scheme);
        mem_free(opts);
        opts = mem_calloc(1, sch->cfg_size + 1);
        if (!opts) FAIL(ERR_NOMEM, "sweep: out of memory");
        TRY(scheme_options(sch, opts, xs));
    }
    if (sw_name_points(s)) FAIL(ERR_NOMEM, "sweep: out of memory");
fail:
    if (items)
        for (int j = 0; j <= max_keys; j++) {
            for (int m = 0; m < n_items[j]; m++) mem_free(items[j][m]);
            mem_free(items[j]);
            mem_free(gorigin[j]);
        }
    mem_free(items);
    mem_free(n_items);
    mem_free(idx);
    mem_free(gkey);
    mem_free(gorigin);
    for (int o = 0; over_key && o < n_over; o++) {
        mem_free(over_key[o]);
        mem_free(over_origin[o]);
    }
    mem_free(over_key);
    mem_free(over_origin);
    for (int k = 0; defaults && k < s->n_keys; k++) mem_free(defaults[k]);
    mem_free(defaults);
    mem_free(base);
    mem_free(vals);
    mem_free(used);
    for (int k = 0; first_origin && k < s->n_keys; k++) mem_free(first_origin[k]);
    mem_free(first_origin);
    for (int k = 0; base_origin && k < s->n_keys; k++) mem_free(base_origin[k]);
    mem_free(base_origin);
    mem_free(opts);
    mem_free(scratch);
    mem_free(xs);
    if (file_read) sw_file_free(&file);
    if (rc) sweep_deinit(s);
    return rc;
}
