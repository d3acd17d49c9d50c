/* log.h: leveled logging to stderr. The level is a value the caller sets once (log_set_level);
 * it is process-wide because stderr is. */
#ifndef RESPROP_LOG_H
#define RESPROP_LOG_H

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } LogLevel;

void log_set_level(LogLevel level);
LogLevel log_get_level(void);
void log_msg(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
