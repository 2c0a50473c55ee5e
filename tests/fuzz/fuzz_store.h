/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The throwaway store the broker-level fuzz targets run against: opened
 * on a file in the target's temporary folder with the configuration's
 * queue and batch settings, synchronous off (nothing here must survive a
 * power cut; only speed matters). Aborts when it cannot be opened.
 */
#ifndef FUZZ_STORE_H
#define FUZZ_STORE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "config.h"
#include "err.h"
#include "store/store.h"

static inline struct store *
fuzz_store_open(const struct gw_config *cfg, const char *path,
    uint64_t max_bytes)
{
	struct store_opts	 so;
	struct gw_error		 err;
	struct store		*s;

	memset(&so, 0, sizeof so);
	so.path = path;
	so.durability = STORE_DURABILITY_NORMAL;
	so.commit_max_items = cfg->commit_max_items;
	so.commit_max_ms = cfg->commit_max_ms;
	so.queue_cap = cfg->store_queue_items;
	so.queue_bytes = cfg->store_queue_bytes;
	so.max_bytes = max_bytes;
	memset(&err, 0, sizeof err);
	if ((s = store_open(&so, &err)) == NULL)
		abort();
	sqlite3_exec(store_db(s), "PRAGMA synchronous = OFF", NULL, NULL,
	    NULL);
	return s;
}

#endif /* FUZZ_STORE_H */
