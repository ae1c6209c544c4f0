/* Logging: one line per event, key=value, to stderr or syslog (OpenSMTPD log.h style). */
#ifndef MON_UTIL_LOG_H
#define MON_UTIL_LOG_H

#include <stdbool.h>
#include <stdnoreturn.h>

enum log_level { LOG_LEVEL_ERR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* ident: borrowed, must outlive logging. verbosity: max level printed. */
void log_init(const char *ident, enum log_level verbosity, bool use_syslog, int facility);
void log_set_level(enum log_level verbosity);
enum log_level log_get_level(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* appends strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
