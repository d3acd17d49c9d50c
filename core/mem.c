#include "core/mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MEM_ALIGN 64
/* The header before each block keeps its size so mem_free can account for it. */
#define MEM_HEADER MEM_ALIGN

static _Atomic size_t mem_live;
static _Atomic size_t mem_peak;
static _Atomic size_t mem_allocs;

void *mem_alloc(size_t bytes) {
    if (bytes > (size_t)-1 - 2 * MEM_HEADER) return NULL;
    size_t total = (bytes + MEM_HEADER + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
    unsigned char *base = aligned_alloc(MEM_ALIGN, total);
    if (!base) return NULL;
    memcpy(base, &bytes, sizeof bytes);
    atomic_fetch_add(&mem_allocs, 1);
    size_t now = atomic_fetch_add(&mem_live, bytes) + bytes;
    size_t peak = atomic_load(&mem_peak);
    while (now > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, now)) {
    }
    return base + MEM_HEADER;
}

void *mem_calloc(size_t count, size_t size) {
    if (size && count > (size_t)-1 / size) return NULL;
    void *p = mem_alloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void mem_free(void *p) {
    if (!p) return;
    unsigned char *base = (unsigned char *)p - MEM_HEADER;
    size_t bytes;
    memcpy(&bytes, base, sizeof bytes);
    atomic_fetch_sub(&mem_live, bytes);
    free(base);
}

char *mem_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

size_t mem_live_bytes(void) { return atomic_load(&mem_live); }
size_t mem_peak_bytes(void) { return atomic_load(&mem_peak); }
size_t mem_n_allocs(void) { return atomic_load(&mem_allocs); }
