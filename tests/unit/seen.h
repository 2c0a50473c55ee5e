/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a loader's error callback reported, for the unit tests of the
 * configuration and rules loaders: seen_collect() is the callback (ctx is a
 * struct seen), and records the file named last and the path and message
 * of the first SEEN_MAX errors; n counts them all.
 */
#ifndef GW_SEEN_H
#define GW_SEEN_H

#include <stdio.h>

#include "err.h"

#define SEEN_MAX	32

struct seen {
	int		n;
	char		path[SEEN_MAX][128];
	char		msg[SEEN_MAX][256];
	char		file[256];
};

/* The error callback: records file and e into ctx, a struct seen. */
static inline void
seen_collect(const char *file, const struct gw_error *e, void *ctx)
{
	struct seen	*s = ctx;

	snprintf(s->file, sizeof s->file, "%s", file);
	if (s->n < SEEN_MAX) {
		snprintf(s->path[s->n], sizeof s->path[0], "%s", e->path);
		snprintf(s->msg[s->n], sizeof s->msg[0], "%s", e->msg);
	}
	s->n++;
}

#endif
