/* sysinfo.h: what machine and libraries a run executes on (for records and `resprop version`). */
#ifndef RESPROP_SYSINFO_H
#define RESPROP_SYSINFO_H

#include <stddef.h>

extern const char resprop_version[]; /* git describe --dirty at build time */

/* "model name" of /proc/cpuinfo, or "unknown". */
void sysinfo_cpu_model(char *buf, size_t cap);
/* The SIMD extensions relevant here that the CPU reports, e.g. "avx2 avx512f avx512bw amx_tile". */
void sysinfo_cpu_isa(char *buf, size_t cap);
/* "2.6.3", "1.10.8", OpenBLAS's config string. */
void sysinfo_dnnl_version(char *buf, size_t cap);
void sysinfo_hdf5_version(char *buf, size_t cap);
const char *sysinfo_openblas_config(void);

#endif
