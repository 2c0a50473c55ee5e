/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ring of recent warnings and errors; see log_recent.h.
 *
 * DESIGN
 *
 * log_msg() hands every warning and error line here before it is written,
 * whatever the destination (stderr, syslog, the journal), so the status
 * page shows what went wrong even when nobody reads the log. The ring is
 * fixed-size and preallocated (no allocation on the logging path, which
 * also runs when memory is short); the text is copied raw and escaped only
 * when rendered. Only this file touches the ring.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "log_recent.h"

struct recent_line {
	time_t		 t;			/* wall clock, seconds */
	enum log_level	 lvl;
	char		 text[LOG_RECENT_LEN];
};

static pthread_mutex_t		recent_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct recent_line	recent[LOG_RECENT_MAX];
static size_t			recent_next;	/* slot written next */
static size_t			recent_n;	/* slots in use */

void
log_recent_add(enum log_level lvl, const char *text)
{
	struct recent_line *l;

	pthread_mutex_lock(&recent_mtx);
	l = &recent[recent_next];
	l->t = time(NULL);
	l->lvl = lvl;
	snprintf(l->text, sizeof l->text, "%s", text);
	recent_next = (recent_next + 1) % LOG_RECENT_MAX;
	if (recent_n < LOG_RECENT_MAX)
		recent_n++;
	pthread_mutex_unlock(&recent_mtx);
}

int
log_recent_render(struct buf *out)
{
	static const char *const names[] = { "error", "warn", "info",
	    "debug" };
	struct recent_line copy[LOG_RECENT_MAX];
	char line[LOG_RECENT_LEN * 4 + 64], esc[LOG_RECENT_LEN * 4];
	struct tm tm;
	size_t i, n, first;
	int len, rc;

	pthread_mutex_lock(&recent_mtx);
	n = recent_n;
	first = (recent_next + LOG_RECENT_MAX - n) % LOG_RECENT_MAX;
	for (i = 0; i < n; i++)
		copy[i] = recent[(first + i) % LOG_RECENT_MAX];
	pthread_mutex_unlock(&recent_mtx);
	for (i = 0; i < n; i++) {
		gmtime_r(&copy[i].t, &tm);
		log_escape(esc, sizeof esc, copy[i].text);
		len = snprintf(line, sizeof line,
		    "%04d-%02d-%02dT%02d:%02d:%02dZ %s: %s\n",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, names[copy[i].lvl], esc);
		if (len < 0)
			continue;
		if ((size_t)len >= sizeof line)
			len = (int)sizeof line - 1;
		if ((rc = buf_append(out, line, (size_t)len)) != 0)
			return rc;
	}
	return 0;
}
