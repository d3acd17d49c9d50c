/* mem.h: every allocation of the project goes through here, 64-byte aligned, so tests can check for
 * leaks (mem_live_bytes) and oneDNN/AVX-512 get aligned buffers. mem_free(NULL) is a no-op. */
#ifndef RESPROP_MEM_H
#define RESPROP_MEM_H

#include <stddef.h>

/* Returns NULL on failure (callers map it to ERR_NOMEM). */
void *mem_alloc(size_t bytes);
/* Zero-filled. */
void *mem_calloc(size_t count, size_t size);
void mem_free(void *p);
/* Copy of a string, NULL on failure. */
char *mem_strdup(const char *s);
/* Bytes currently allocated through this module (for leak checks in tests). */
size_t mem_live_bytes(void);
/* Highest value mem_live_bytes has reached. */
size_t mem_peak_bytes(void);
/* Number of successful allocations so far (tests check that a training step makes none). */
size_t mem_n_allocs(void);

#endif
