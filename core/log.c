#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static LogLevel log_level = LOG_INFO;

void log_set_level(LogLevel level) { log_level = level; }
LogLevel log_get_level(void) { return log_level; }

void log_msg(LogLevel level, const char *fmt, ...) {
    static const char *const tags[] = {"error", "warning", "info", "debug"};
    if (level > log_level) return;
    va_list ap;
    va_start(ap, fmt);
    if (level <= LOG_WARN) fprintf(stderr, "resprop: %s: ", tags[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
