/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wiring of store-and-forward for the daemon: the results queue between
 * the delivery thread and the store thread, the store's forwarding
 * callbacks, and the delivery thread's routes built from the rule set's
 * webhook actions (one route per rule, "<rule name>/webhook") and the
 * bridge's routes from its mqtt actions ("<rule name>/mqtt"). Each thread
 * starts only when some rule needs it. Main (loop) thread.
 */
#ifndef GW_DELIVER_SETUP_H
#define GW_DELIVER_SETUP_H

#include "deliver/bridge.h"
#include "deliver/loop.h"

struct gw_config;
struct rule_set;
struct store;
struct delivery;

/*
 * Creates the results queue and connects the store to it; call before
 * store_start(). Borrows store and cfg. NULL on ENOMEM.
 */
struct delivery	*delivery_new(struct store *store,
		    const struct gw_config *cfg);

/*
 * Makes the routes match set's webhook actions (NULL: none), starting the
 * delivery thread the first time one is needed. 0 or an error (logged).
 */
int		 delivery_apply_rules(struct delivery *dl,
		    const struct rule_set *set);

/*
 * Calls cb for each webhook route's counters (deliver_stats()); nothing
 * when the delivery thread was never started or is stopped.
 */
void		 delivery_stats(struct delivery *dl, results_route_stats_cb cb,
		    void *ctx);

/* Calls cb for each mqtt route's counters; nothing without the bridge. */
void		 delivery_bridge_stats(struct delivery *dl,
		    results_route_stats_cb cb, void *ctx);

/*
 * Stops the bridge and the delivery thread (what is in flight gets
 * grace_ms to finish) and has the store apply the last results. Before
 * store_close().
 */
void		 delivery_stop(struct delivery *dl, unsigned grace_ms);

/* Frees everything; after store_close(). NULL ok. */
void		 delivery_free(struct delivery *dl);

#endif
