/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leveled logging. The level is an atomic so any thread can read it without
 * a lock; a line is built in a stack buffer with a timestamp and level and
 * written with a single write(2), so lines from threads never interleave.
 * Control characters in a line (CR, LF, ESC, ...) are written as \xNN, so a
 * client id, username, topic or filter logged as given by a peer cannot
 * forge log lines or terminal escapes.
 *
 * Under systemd, stderr is the journal's stream socket (JOURNAL_STREAM
 * names its device and inode): lines then start with the syslog priority
 * as "<N>" (sd-daemon(3)) and carry no timestamp, the journal keeping its
 * own. With log.syslog, lines go to syslog(3) with their priority.
 *
 * Lines that can repeat once per message (a slow subscriber's drops, an
 * unmatched topic) go through a struct log_limit: a burst per window, then
 * the rest are counted and the first of them is kept, to be logged at the
 * end of the window as "LINE ... (repeated N times)".
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "log_recent.h"

static atomic_int	log_level = LOG_LVL_INFO;
static atomic_int	log_syslog;
static atomic_int	log_journal;	/* stderr is the journal */

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

int
log_detect_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int on = 0;

	if (env != NULL && sscanf(env, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		on = 1;
	atomic_store(&log_journal, on);
	return on;
}

size_t
log_escape(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)src;
	size_t n = 0;

	if (size == 0)
		return 0;
	for (; *p != '\0'; p++) {
		if ((*p >= 0x20 && *p != 0x7f) || *p == '\t') {
			if (n + 1 >= size)
				break;
			dst[n++] = (char)*p;
			continue;
		}
		if (n + 4 >= size)
			break;
		dst[n++] = '\\';
		dst[n++] = 'x';
		dst[n++] = hex[*p >> 4];
		dst[n++] = hex[*p & 0xf];
	}
	dst[n] = '\0';
	return n;
}

/* Writes one formatted line (text) at lvl to syslog or stderr. */
static void
log_text(enum log_level lvl, const char *text)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	int n;
	size_t m;
	ssize_t w;

	if (lvl <= LOG_LVL_WARN)
		log_recent_add(lvl, text);
	if (atomic_load_explicit(&log_syslog, memory_order_relaxed)) {
		log_escape(line, sizeof line, text);
		syslog(prio[lvl], "%s", line);
		return;
	}
	if (atomic_load_explicit(&log_journal, memory_order_relaxed))
		n = snprintf(line, sizeof line, "<%d>%s: ", prio[lvl],
		    log_names[lvl]);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof line,
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_names[lvl]);
	}
	if (n < 0 || (size_t)n >= sizeof line - 2)
		n = 0;
	m = log_escape(line + n, sizeof line - (size_t)n - 1, text);
	line[(size_t)n + m] = '\n';
	w = write(STDERR_FILENO, line, (size_t)n + m + 1);
	(void)w;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if ((int)lvl > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	if (vsnprintf(text, sizeof text, fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	log_text(lvl, text);
}

/* Logs the window's summary, if lines were suppressed, and resets it. */
static void
limit_summary(struct log_limit *l)
{
	if (l->suppressed == 0)
		return;
	if (l->first[0] != '\0')
		log_msg((enum log_level)l->level, "%s ... (repeated %u times)",
		    l->first, l->suppressed);
	else
		log_msg(LOG_LVL_WARN, "... (%u similar lines suppressed)",
		    l->suppressed);
	l->suppressed = 0;
	l->first[0] = '\0';
}

int
log_ratelimited(struct log_limit *l, unsigned burst, long long period_ms)
{
	long long now = clock_mono_ms();

	if (now - l->window_start_ms >= period_ms) {
		limit_summary(l);
		l->window_start_ms = now;
		l->count = 0;
	}
	if (l->count < burst) {
		l->count++;
		return 1;
	}
	l->suppressed++;
	return 0;
}

void
log_limited(struct log_limit *l, unsigned burst, long long period_ms,
    enum log_level lvl, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	size_t n;
	int now;

	if ((int)lvl > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	now = log_ratelimited(l, burst, period_ms);
	if (!now && l->suppressed != 1)
		return;		/* counted; only the first is kept */
	va_start(ap, fmt);
	if (vsnprintf(text, sizeof text, fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	if (now)
		log_text(lvl, text);
	else {
		n = strlen(text);
		if (n >= sizeof l->first)
			n = sizeof l->first - 1;
		memcpy(l->first, text, n);
		l->first[n] = '\0';
		l->level = (int)lvl;
	}
}

int
log_limit_flush(struct log_limit *l, long long period_ms)
{
	if (l->suppressed == 0)
		return 0;
	if (clock_mono_ms() - l->window_start_ms < period_ms)
		return 1;
	limit_summary(l);
	l->window_start_ms = clock_mono_ms();
	l->count = 0;
	return 0;
}
