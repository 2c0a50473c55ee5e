/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leveled logging to stderr (or syslog when configured). Thread-safe: each
 * line is formatted into a local buffer and written with one write(2).
 * log_ratelimited() lets callers drop repeats of per-peer errors.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the threshold; lines above it are dropped cheaply. */
void	log_set_level(enum log_level lvl);
enum log_level log_get_level(void);

/* Parses "error|warn|info|debug"; returns 0 or -1. */
int	log_level_parse(const char *s, enum log_level *out);

/* Sends lines to syslog (ident "mqlite") instead of stderr. */
void	log_use_syslog(int on);

/*
 * Checks whether stderr is the systemd journal (JOURNAL_STREAM holds its
 * "device:inode"); if so, stderr lines get a "<N>" priority prefix and no
 * timestamp from now on. Returns 1 when it is. Call once at start.
 */
int	log_detect_journal(void);

void	log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Copies the NUL-terminated src into dst (size bytes, always terminated)
 * with every control character but tab written as \xNN. Returns the length
 * written; src is truncated when dst is too small. log_msg() applies it to
 * every line.
 */
size_t	log_escape(char *dst, size_t size, const char *src);

#define log_error(...)	log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	do { if (log_get_level() >= LOG_LVL_DEBUG) \
	log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/*
 * Rate limiter state for one kind of repeated message: allows at most
 * `burst` lines per `period_ms`, then counts suppressed ones. Zeroed to
 * start. Not locked: one thread uses a given limiter.
 */
struct log_limit {
	long long	window_start_ms;
	unsigned	count;		/* lines logged in this window */
	unsigned	suppressed;	/* lines held back in this window */
	int		level;		/* first's level (log_limited) */
	char		first[200];	/* first held back line, or "" */
};

/*
 * Returns 1 if a line may be logged now; else counts it. A window that
 * ended with lines held back is first summarised in one line.
 */
int	log_ratelimited(struct log_limit *l, unsigned burst,
	    long long period_ms);

/*
 * Logs a line that can repeat once per message through l: the first
 * `burst` of a window are written; of the rest the first is kept and the
 * others counted, and "FIRST ... (repeated N times)" is logged when the
 * window ends (at the next line of the kind, or log_limit_flush()).
 */
void	log_limited(struct log_limit *l, unsigned burst, long long period_ms,
	    enum log_level lvl, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/*
 * Logs l's summary when its window has ended. Returns 1 while lines are
 * held back in a window not yet over (call again later), else 0.
 */
int	log_limit_flush(struct log_limit *l, long long period_ms);

#endif
