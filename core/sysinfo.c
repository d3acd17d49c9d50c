#include "core/sysinfo.h"

#include <stdio.h>
#include <string.h>

#include <cblas.h>
#include <hdf5.h>
#include <oneapi/dnnl/dnnl.h>

/* The value of the first /proc/cpuinfo line starting with `key`, or "" */
static void cpuinfo_field(const char *key, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192];
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0) continue;
        char *p = strchr(line, ':');
        if (!p) continue;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(buf, cap, "%s", p);
        break;
    }
    fclose(f);
}

void sysinfo_cpu_model(char *buf, size_t cap) {
    cpuinfo_field("model name", buf, cap);
    if (!buf[0]) snprintf(buf, cap, "unknown");
}

void sysinfo_cpu_isa(char *buf, size_t cap) {
    static const char *const wanted[] = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                                         "avx512_bf16", "amx_tile", "amx_bf16", NULL};
    char flags[8192];
    cpuinfo_field("flags", flags, sizeof flags);
    buf[0] = 0;
    size_t used = 0;
    for (int i = 0; wanted[i]; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, " %s ", wanted[i]);
        char padded[8200];
        snprintf(padded, sizeof padded, " %s ", flags);
        if (!strstr(padded, pat)) continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? " " : "", wanted[i]);
        if (n < 0 || (size_t)n >= cap - used) break;
        used += (size_t)n;
    }
    if (!used) snprintf(buf, cap, "unknown");
}

void sysinfo_dnnl_version(char *buf, size_t cap) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, cap, "%d.%d.%d", v->major, v->minor, v->patch);
}

void sysinfo_hdf5_version(char *buf, size_t cap) {
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(buf, cap, "%u.%u.%u", maj, min, rel);
}

const char *sysinfo_openblas_config(void) { return openblas_get_config(); }
