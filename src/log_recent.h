/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The last warnings and errors the daemon logged, kept in memory for the
 * status page (/errors on the metrics listener): a ring of LOG_RECENT_MAX
 * lines of at most LOG_RECENT_LEN bytes each, so it never grows. Any
 * thread; a mutex guards the ring and is never held across I/O.
 */
#ifndef GW_LOG_RECENT_H
#define GW_LOG_RECENT_H

#include "log.h"

#define LOG_RECENT_MAX	16	/* lines kept */
#define LOG_RECENT_LEN	256	/* bytes of each line kept */

struct buf;

/* Keeps text (borrowed, truncated) as the newest line of level lvl. */
void	log_recent_add(enum log_level lvl, const char *text);

/*
 * Appends the lines kept, oldest first, one per line as
 * "2026-01-31T12:00:00Z warn: text" with control characters escaped.
 * 0 or GW_ENOMEM.
 */
int	log_recent_render(struct buf *out);

#endif
