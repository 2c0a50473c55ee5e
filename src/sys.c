/* SPDX-License-Identifier: Apache-2.0 */
/*
 * $SYS/broker/... publishing; see sys.h.
 *
 * DESIGN
 *
 * Mosquitto users know these topics, so the names are Mosquitto 2's where
 * the value means the same thing (version, uptime, clients, messages,
 * bytes, publish counts, subscriptions, retained count, heap) and sit under
 * $SYS/broker/database/ and $SYS/broker/outbox/<route>/ for what only
 * mqlite has (the store queue, committed rows, outbox depth and age per
 * route). A timer on the loop thread reads the same snapshots as the
 * metrics endpoint (atomics and copies, nothing that waits) and hands each
 * value to broker_sys_publish(), which keeps it retained apart from the
 * clients' retained messages, sends it only when it changed, checks each
 * subscriber's read access, and never stores it in the database. Routes are
 * walked generically from the delivery thread's per-route table, so a new
 * kind of route (a bridge) appears without changes here. A topic level
 * cannot hold '+' or '#', so those characters of a route name become '_'.
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "build_config.h"
#include "clock.h"
#include "deliver/loop.h"
#include "deliver/setup.h"
#include "log.h"
#include "mem.h"
#include "metrics_render.h"
#include "net/ev.h"
#include "store/retention.h"
#include "store/store.h"
#include "sys.h"

#define SYS_TOPIC_MAX	256	/* longer route topics are left out */

struct sys {
	struct ev_loop			*loop;
	const struct metrics_sources	*src;
	uint64_t			 interval_ms;
	long long			 start_mono_ms;
	struct ev_timer			 timer;
	struct log_limit		 lim;
};

static void	sys_timer_cb(struct ev_loop *, void *);

/* Publishes one value given as text. */
static void
put(struct sys *sy, const char *topic, const char *value)
{
	int rc;

	rc = broker_sys_publish(sy->src->broker, topic, value, strlen(value));
	if (rc != 0 && log_ratelimited(&sy->lim, 1, 60000))
		log_warn("$SYS: cannot publish %s: %s", topic, gw_strerror(rc));
}

static void
put_u64(struct sys *sy, const char *topic, uint64_t v)
{
	char text[32];

	snprintf(text, sizeof text, "%llu", (unsigned long long)v);
	put(sy, topic, text);
}

/* The value of one route under $SYS/broker/outbox/<route>/. */
static void
route_cb(const struct results_route_stats *st, void *ctx)
{
	static const char *const leaf[] = { "depth", "oldest", "delivered",
	    "dead", "dropped" };
	struct sys *sy = ctx;
	char name[SYS_TOPIC_MAX], topic[SYS_TOPIC_MAX];
	long long now = clock_wall_ms();
	uint64_t v[5];
	size_t i;
	int n;

	n = snprintf(name, sizeof name, "%s", st->route != NULL ?
	    st->route : "");
	if (n <= 0 || (size_t)n >= sizeof name)
		return;
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == '+' || name[i] == '#')
			name[i] = '_';
	v[0] = st->depth;
	v[1] = st->oldest_ms > 0 && st->oldest_ms < now ?
	    (uint64_t)(now - st->oldest_ms) / 1000 : 0;
	v[2] = st->delivered;
	v[3] = st->dead;
	v[4] = st->dropped;
	for (i = 0; i < sizeof leaf / sizeof leaf[0]; i++) {
		n = snprintf(topic, sizeof topic, "$SYS/broker/outbox/%s/%s",
		    name, leaf[i]);
		if (n > 0 && (size_t)n < sizeof topic)
			put_u64(sy, topic, v[i]);
	}
}

/* See sys.h. */
void
sys_publish_all(struct sys *sy)
{
	const struct metrics_sources *src = sy->src;
	struct broker_stats bst;
	struct store_stats sst;
	struct retention_stats rst;
	char text[64];
	uint64_t up;

	broker_get_stats(src->broker, &bst);
	store_get_stats(src->store, &sst);
	store_get_retention_stats(src->store, &rst);
	up = (uint64_t)(clock_mono_ms() - sy->start_mono_ms) / 1000;

	put(sy, "$SYS/broker/version", "mqlite version " PACKAGE_VERSION);
	snprintf(text, sizeof text, "%llu seconds", (unsigned long long)up);
	put(sy, "$SYS/broker/uptime", text);
	put_u64(sy, "$SYS/broker/clients/connected", bst.connections);
	put_u64(sy, "$SYS/broker/clients/total", bst.sessions);
	put_u64(sy, "$SYS/broker/clients/disconnected",
	    bst.sessions > bst.connections ? bst.sessions - bst.connections :
	    0);
	put_u64(sy, "$SYS/broker/clients/expired", bst.sessions_expired);
	put_u64(sy, "$SYS/broker/messages/received", bst.packets_in);
	put_u64(sy, "$SYS/broker/bytes/received", bst.bytes_in);
	put_u64(sy, "$SYS/broker/bytes/sent", bst.bytes_out);
	put_u64(sy, "$SYS/broker/publish/messages/received", bst.publish_in);
	put_u64(sy, "$SYS/broker/publish/messages/sent", bst.publish_out);
	put_u64(sy, "$SYS/broker/publish/messages/dropped",
	    bst.dropped_qos0 + bst.dropped_queue_full);
	put_u64(sy, "$SYS/broker/subscriptions/count", bst.subscriptions);
	put_u64(sy, "$SYS/broker/retained messages/count", bst.retained);
	put_u64(sy, "$SYS/broker/heap/current", (uint64_t)gw_mem_used());
	put_u64(sy, "$SYS/broker/database/queue", sst.queue_items);
	put_u64(sy, "$SYS/broker/database/rows", sst.rows);
	put_u64(sy, "$SYS/broker/database/commits", sst.batches);
	put_u64(sy, "$SYS/broker/database/commit_failures",
	    sst.commit_failures);
	put_u64(sy, "$SYS/broker/database/bytes", rst.file_bytes);
	if (src->delivery != NULL)
		delivery_stats(src->delivery, route_cb, sy);
}

static void
sys_timer_cb(struct ev_loop *loop, void *arg)
{
	struct sys *sy = arg;

	sys_publish_all(sy);
	if (ev_timer_set(loop, &sy->timer, ev_now(loop) +
	    (long long)sy->interval_ms, sys_timer_cb, sy) != 0)
		log_error("$SYS: cannot re-arm the timer; topics no longer "
		    "updated");
}

/* See sys.h. */
struct sys *
sys_start(struct ev_loop *loop, const struct metrics_sources *src,
    uint64_t interval_ms)
{
	struct sys *sy;

	if ((sy = gw_calloc(1, sizeof *sy)) == NULL)
		return NULL;
	sy->loop = loop;
	sy->src = src;
	sy->interval_ms = interval_ms;
	sy->start_mono_ms = clock_mono_ms();
	sys_publish_all(sy);
	if (ev_timer_set(loop, &sy->timer, ev_now(loop) +
	    (long long)interval_ms, sys_timer_cb, sy) != 0) {
		gw_free(sy);
		return NULL;
	}
	return sy;
}

/* See sys.h. */
void
sys_stop(struct sys *sy)
{
	if (sy == NULL)
		return;
	ev_timer_cancel(sy->loop, &sy->timer);
	gw_free(sy);
}
