#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* Process-wide logging sink, set once at start-up (the one piece of global state). */
static const char *log_ident = "mailcanary";
static enum log_level log_level_max = LOG_LEVEL_INFO;
static bool log_syslog;

void log_init(const char *ident, enum log_level verbosity, bool use_syslog, int facility)
{
	log_ident = ident ? ident : "mailcanary";
	log_level_max = verbosity;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, facility);
}

void log_set_level(enum log_level verbosity) { log_level_max = verbosity; }
enum log_level log_get_level(void) { return log_level_max; }

static void log_vemit(enum log_level lvl, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_vemit(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[2048];

	if (lvl > log_level_max)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (err) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof msg - n, ": %s", strerror(err));
	}
	if (log_syslog)
		syslog(prio[lvl], "%s", msg);
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, names[lvl], msg);
}

#define LOG_BODY(lvl, err)                 \
	do {                               \
		va_list ap;                \
		va_start(ap, fmt);         \
		log_vemit(lvl, err, fmt, ap); \
		va_end(ap);                \
	} while (0)

void log_warn(const char *fmt, ...) { int e = errno; LOG_BODY(LOG_LEVEL_WARN, e); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_WARN, 0); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_INFO, 0); }
void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_DEBUG, 0); }

noreturn void fatal(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(LOG_LEVEL_ERR, e);
	exit(1);
}

noreturn void fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERR, 0);
	exit(1);
}
