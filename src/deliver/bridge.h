/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * The bridge: forwards the outbox rows of mqtt actions to upstream MQTT
 * brokers with Eclipse Paho C (MQTTAsync, loaded on first use through
 * mqtt_shim.c), and reports each row's outcome to the store thread on the
 * same results queue as the webhook delivery thread (deliver/loop.h).
 *
 * THREADS AND OWNERSHIP
 *
 *   bridge thread  (this module) owns a read-only outbox connection, one
 *                  Paho client per route and every row it has read. It
 *                  never writes the database.
 *   Paho threads   run the callbacks, which only record what happened
 *                  under the bridge's mutex and signal its condition.
 *   any thread     bridge_wake(), bridge_update_routes(),
 *                  bridge_held_ids(), bridge_drop_mark(),
 *                  bridge_count_dropped() and bridge_stats().
 *
 * SEMANTICS
 *
 * One route per mqtt action ("<rule>/mqtt"), one upstream connection per
 * route (client id, credentials and TLS from the action; "urls" are tried
 * in turn on each connection attempt). Rows go out in id order with up to
 * max_in_flight unacknowledged; a row leaves the outbox only when it is
 * acknowledged (PUBACK for QoS 1, PUBCOMP for QoS 2, written to the socket
 * for QoS 0). The upstream session is persistent (clean session false).
 * A row keeps its place in the window from its send until the store has
 * committed its delete, so after a crash at most max_in_flight rows that
 * were sent are sent again. When a connection drops, the rows not
 * acknowledged yet are sent again, in order, by a new client after the
 * reconnection. A QoS 2 route's new
 * client starts clean: packet ids of an earlier client must not make the
 * broker take new messages for resends (the unacknowledged rows are sent
 * again anyway). Reconnection waits a full-jitter exponential backoff
 * (1 s doubling up to 60 s).
 *
 * After a restart every row still in the outbox is sent again: duplicates
 * upstream are possible only for rows in the window when mqlite stopped.
 */
#ifndef GW_BRIDGE_H
#define GW_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/results.h"
#include "err.h"

struct outbox_result;
struct queue;
struct bridge;

#define BRIDGE_BASE_MS	1000		/* first reconnect within [0, 1 s] */
#define BRIDGE_CAP_MS	60000		/* longest reconnect delay */

/* One route's settings; strings are borrowed and copied by the callee. */
struct bridge_route {
	const char	*name;		/* outbox.route this serves */
	const char *const *urls;	/* tcp://, ssl://, mqtt://, ... */
	size_t		 nurls;		/* >= 1 */
	const char	*client_id;	/* NULL: mqlite-<instance>-<route> */
	const char	*username;	/* or NULL */
	const char	*password;	/* or NULL; never logged */
	const char	*ca_file;	/* NULL: system CA store */
	const char	*cert;		/* client certificate or NULL */
	const char	*key;		/* its key or NULL */
	bool		 insecure;	/* no peer verification */
	uint8_t		 qos;		/* 0, 1 or 2 */
	bool		 retain;
	uint32_t	 keepalive;	/* seconds */
	uint32_t	 max_in_flight;	/* >= 1 */
	uint8_t		 mqtt_version;	/* 5: MQTT 5.0, rows' properties
					 * sent; else 3.1.1 */
};

/* Connection state of a route. */
enum bridge_state {
	BRIDGE_DOWN = 0,	/* waiting to (re)connect */
	BRIDGE_CONNECTING,
	BRIDGE_UP,
};

/* Called on the bridge thread after results were pushed. */
typedef void (*bridge_results_cb)(void *ctx);

struct bridge_opts {
	const char	*db_path;	/* database the store created */
	const struct bridge_route *routes;	/* borrowed, copied */
	size_t		 nroutes;
	struct queue	*results;	/* of struct outbox_result, borrowed */
	bridge_results_cb results_cb;	/* or NULL */
	void		*results_ctx;
	uint64_t	 seed;		/* jitter PRNG seed; 0: random */
};

/* The name of a state ("down", "connecting", "up"). */
const char	*bridge_state_name(enum bridge_state st);

/*
 * The reconnect delay after `failures` failed attempts in a row: full
 * jitter in [0, min(cap, base * 2^failures)] drawn from *rng_state.
 */
int64_t		 bridge_reconnect_delay(uint64_t *rng_state,
		    uint32_t failures);

/*
 * Loads Paho and starts the thread. Returns a new handle, or NULL with err
 * (may be NULL) filled: Paho missing, bad route table (duplicate or empty
 * names), the database cannot be opened. Caller's thread.
 */
struct bridge	*bridge_start(const struct bridge_opts *opts,
		    struct gw_error *err);

/* Says "new outbox rows are committed"; never blocks. Any thread. */
void		 bridge_wake(struct bridge *b);

/*
 * Replaces the route table (reload). A route kept with the same settings
 * keeps its connection and rows; a changed or removed one is disconnected
 * and its unacknowledged rows stay in the outbox (a changed route sends
 * them again). 0, GW_ECONFIG or GW_ENOMEM. Any thread.
 */
int		 bridge_update_routes(struct bridge *b,
		    const struct bridge_route *routes, size_t n);

/*
 * The ids of every row the bridge holds (read ahead or in flight), sorted,
 * in a new array (gw_free it). 0 or GW_ENOMEM. Any thread.
 */
int		 bridge_held_ids(struct bridge *b, int64_t **ids, size_t *n);

/*
 * The store committed these results (borrowed): the window slots of the
 * bridge's rows among them are free again. Store thread; never blocks on
 * I/O.
 */
void		 bridge_results_committed(struct bridge *b,
		    const struct outbox_result *res, size_t n);

/* As deliver_drop_mark(). Store thread. */
void		 bridge_drop_mark(struct bridge *b);

/* Adds n to route's dropped counter if the route is a bridge route. */
void		 bridge_count_dropped(struct bridge *b, const char *route,
		    uint64_t n);

/* Calls cb for each route ever configured, under a lock. Any thread. */
void		 bridge_stats(struct bridge *b, results_route_stats_cb cb,
		    void *ctx);

/*
 * Stops the thread: waits up to grace_ms for acknowledgements of what is
 * in flight, disconnects, joins and frees. Unacknowledged rows stay in the
 * outbox. Accepts NULL.
 */
void		 bridge_stop(struct bridge *b, uint32_t grace_ms);

#endif
