/* registry.c: the list of sparsity schemes (core/scheme.h), lookup by name, and the validation of a
 * scheme's options from the run's pass-through "scheme.KEY" values. Adding a scheme = one line in
 * scheme_registry (and its extern declaration here). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/scheme.h"

extern const Scheme scheme_dense;
extern const Scheme scheme_resprop;
extern const Scheme scheme_resprop_vec;
extern const Scheme scheme_meprop;
extern const Scheme scheme_threshold;
extern const Scheme scheme_random;

const Scheme *const scheme_registry[] = {
    &scheme_dense, &scheme_resprop, &scheme_resprop_vec, &scheme_meprop, &scheme_threshold, &scheme_random, NULL,
};

#define SCHEME_KEY_PREFIX "scheme."

const Scheme *scheme_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; scheme_registry[i]; i++)
        if (strcmp(scheme_registry[i]->name, name) == 0) return scheme_registry[i];
    return NULL;
}

static bool scheme_has_options(const Scheme *s) { return s->options && s->options->n_keys > 0; }

/* "a, b, c" of a scheme's option names, or "none". */
static void scheme_key_list(const Scheme *s, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    if (!scheme_has_options(s)) {
        snprintf(buf, cap, "none");
        return;
    }
    for (int i = 0; i < s->options->n_keys; i++) {
        const char *name = s->options->keys[i].name;
        if (!name) continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", name);
        if (w < 0 || (size_t)w >= cap - used) break;
        used += (size_t)w;
    }
}

static bool scheme_has_key(const Scheme *s, const char *key) {
    for (int i = 0; scheme_has_options(s) && i < s->options->n_keys; i++)
        if (s->options->keys[i].name && strcmp(s->options->keys[i].name, key) == 0) return true;
    return false;
}

int scheme_options(const Scheme *s, void *cfg, const CfgExtra *extra) {
    int rc = 0;
    char keys[512];
    ASSERT(s);
    if (scheme_has_options(s)) TRY(config_defaults(s->options, cfg));
    if (!extra) return 0;
    if (extra->section[0] && strcmp(extra->section, s->name) != 0)
        FAIL(ERR_CONFIG, "[scheme.%s]: options given for scheme %s but the run uses %s", extra->section,
             extra->section, s->name);
    for (int i = 0; i < extra->n && i < CFG_MAX_EXTRA; i++) {
        const char *full = extra->key[i];
        size_t plen = strlen(SCHEME_KEY_PREFIX);
        if (strncmp(full, SCHEME_KEY_PREFIX, plen) != 0)
            FAIL(ERR_CONFIG, "key '%s': expected a scheme option (scheme.KEY)", full);
        const char *key = full + plen;
        scheme_key_list(s, keys, sizeof keys);
        if (!scheme_has_options(s))
            FAIL(ERR_CONFIG, "--%s: scheme %s takes no options", full, s->name);
        if (!scheme_has_key(s, key))
            FAIL(ERR_CONFIG, "--%s: scheme %s has no option '%s' (its options: %s)", full, s->name, key, keys);
        char origin[sizeof extra->key[0] + 2];
        snprintf(origin, sizeof origin, "--%s", full);
        TRY(config_set(s->options, cfg, NULL, key, extra->value[i], origin));
    }
fail:
    return rc;
}
