/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leveled logging. The level is an atomic so any thread can read it without
 * a lock; a line is built in a stack buffer with a timestamp and level and
 * written with a single write(2), so lines from threads never interleave.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static atomic_int	log_level = LOG_LVL_INFO;
static atomic_int	log_syslog;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level lvl)
{
	atomic_store(&log_level, (int)lvl);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_level,
	    memory_order_relaxed);
}

int
log_level_parse(const char *s, enum log_level *out)
{
	unsigned i;

	for (i = 0; i < sizeof log_names / sizeof log_names[0]; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_use_syslog(int on)
{
	if (on)
		openlog("mqlite", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_syslog, on);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, m;
	ssize_t w;

	if ((int)lvl > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	if (atomic_load_explicit(&log_syslog, memory_order_relaxed)) {
		va_start(ap, fmt);
		vsyslog(prio[lvl], fmt, ap);
		va_end(ap);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_names[lvl]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)(n + m) > sizeof line - 2)
		m = (int)(sizeof line - 2 - n);
	line[n + m] = '\n';
	w = write(STDERR_FILENO, line, (size_t)(n + m + 1));
	(void)w;
}

int
log_ratelimited(struct log_limit *l, unsigned burst, long long period_ms)
{
	long long now = clock_mono_ms();

	if (now - l->window_start_ms >= period_ms) {
		if (l->suppressed > 0)
			log_msg(LOG_LVL_WARN, "(%u similar messages suppressed)",
			    l->suppressed);
		l->window_start_ms = now;
		l->count = 0;
		l->suppressed = 0;
	}
	if (l->count < burst) {
		l->count++;
		return 1;
	}
	l->suppressed++;
	return 0;
}
