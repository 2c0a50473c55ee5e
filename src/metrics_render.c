/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Renders the daemon's metrics (see metrics_render.h). Every family is
 * written as # HELP, # TYPE and its samples together, as the text format
 * requires, so per-rule counters walk the rule set once per family and the
 * webhook and mqtt routes are first copied out of their thread's table (one
 * locked pass, copies_push()) and then written family by family
 * (render_copies()). Counter names end in _total; everything is prefixed
 * mqlite_. Reads only atomics and snapshots: nothing here waits for the
 * store or the delivery thread.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "buf.h"
#include "build_config.h"
#include "clock.h"
#include "deliver/loop.h"
#include "deliver/setup.h"
#include "err.h"
#include "log_recent.h"
#include "mem.h"
#include "metrics.h"
#include "metrics_hist.h"
#include "metrics_process.h"
#include "metrics_render.h"
#include "rules/rules.h"
#include "source/source.h"
#include "store/retention.h"
#include "store/store.h"

#define ROUTES_MAX	4096	/* routes rendered; more are left out */

struct scalar {
	const char	*name;
	const char	*type;
	const char	*help;
	uint64_t	 v;
};

struct family {
	const char	*name;
	const char	*type;
	const char	*help;
};

/* Which counter of a route a per-route family reports. */
enum route_field {
	ROUTE_UP,		/* 1 while state is BRIDGE_UP */
	ROUTE_CONNECTS,
	ROUTE_SENT,
	ROUTE_DELIVERED,
	ROUTE_RETRIED,
	ROUTE_DEAD,
	ROUTE_DROPPED,
	ROUTE_EXPIRED,
	ROUTE_DEPTH,
	ROUTE_AGE,		/* seconds since oldest_ms, with a fraction */
	ROUTE_IN_FLIGHT,
};

struct route_family {
	const char	*name;
	const char	*type;
	const char	*help;
	enum route_field field;
};

/*
 * Per-route stats copied out of a thread's table under its lock, each with
 * its route name replaced by a copy of its own.
 */
struct copies {
	struct results_route_stats *v;
	size_t		 n;
	size_t		 cap;
	int		 rc;
};

static int
one(struct buf *out, const struct scalar *s)
{
	int rc;

	if ((rc = metrics_family(out, s->name, s->type, s->help)) != 0)
		return rc;
	return metrics_sample_u64(out, s->name, NULL, NULL, s->v);
}

static int
scalars(struct buf *out, const struct scalar *s, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if ((rc = one(out, &s[i])) != 0)
			return rc;
	return 0;
}

static int
render_broker(struct buf *out, const struct broker_stats *st)
{
	const struct scalar s[] = {
		{ "mqlite_connections", "gauge",
		    "MQTT clients connected now", st->connections },
		{ "mqlite_connections_accepted_total", "counter",
		    "TCP connections accepted", st->accepted_total },
		{ "mqlite_connections_refused_total", "counter",
		    "Connections closed at once over max_connections",
		    st->refused_total },
		{ "mqlite_publish_received_total", "counter",
		    "PUBLISH packets accepted from clients", st->publish_in },
		{ "mqlite_publish_sent_total", "counter",
		    "PUBLISH packets sent to subscribers", st->publish_out },
		{ "mqlite_qos0_dropped_total", "counter",
		    "QoS 0 messages dropped for a client that could not keep "
		    "up", st->dropped_qos0 },
		{ "mqlite_queue_full_dropped_total", "counter",
		    "QoS 1/2 messages dropped over max_queued",
		    st->dropped_queue_full },
		{ "mqlite_packet_too_large_dropped_total", "counter",
		    "Messages not sent to a client: larger than its MQTT 5.0 "
		    "Maximum Packet Size", st->dropped_too_large },
		{ "mqlite_messages_expired_total", "counter",
		    "Queued or retained messages dropped when their MQTT 5.0 "
		    "Message Expiry Interval passed", st->expired },
		{ "mqlite_retained_expired_total", "counter",
		    "Retained messages removed when their MQTT 5.0 Message "
		    "Expiry Interval passed", st->retained_expired },
		{ "mqlite_protocol_errors_total", "counter",
		    "Connections closed on protocol errors",
		    st->protocol_errors },
		{ "mqlite_store_pauses_total", "counter",
		    "Times client reads were paused on a full store queue",
		    st->store_pauses },
		{ "mqlite_output_pauses_total", "counter",
		    "Times a client was not read over limits.output_bytes",
		    st->output_pauses },
		{ "mqlite_input_pauses_total", "counter",
		    "Times a client was not read over limits.input_budget",
		    st->input_pauses },
		{ "mqlite_input_shed_total", "counter",
		    "Connections closed to free limits.input_budget",
		    st->input_shed },
		{ "mqlite_store_share_pauses_total", "counter",
		    "Times a client was not read holding 1/32 of a busy store "
		    "queue", st->store_share_pauses },
		{ "mqlite_stall_closed_total", "counter",
		    "Connections closed after limits.stall_timeout",
		    st->stall_closed },
		{ "mqlite_subscriptions_refused_total", "counter",
		    "Subscription filters refused over the limits",
		    st->subs_refused },
		{ "mqlite_retained_refused_total", "counter",
		    "Retained publishes not kept over limits.max_retained or "
		    "limits.retained_bytes", st->retained_refused },
		{ "mqlite_retained", "gauge", "Retained topics kept now",
		    st->retained },
		{ "mqlite_retained_bytes", "gauge",
		    "Payload bytes of the retained messages kept now",
		    st->retained_bytes },
		{ "mqlite_sessions_expired_total", "counter",
		    "Persistent sessions dropped after limits.session_expiry",
		    st->sessions_expired },
		{ "mqlite_sessions", "gauge",
		    "Sessions kept now (connected and persistent)",
		    st->sessions },
		{ "mqlite_subscriptions", "gauge",
		    "Subscriptions of all sessions now", st->subscriptions },
		{ "mqlite_packets_received_total", "counter",
		    "MQTT packets received from clients", st->packets_in },
		{ "mqlite_bytes_received_total", "counter",
		    "Bytes read from MQTT clients", st->bytes_in },
		{ "mqlite_bytes_sent_total", "counter",
		    "Bytes written to MQTT clients", st->bytes_out },
		{ "mqlite_unmatched_total", "counter",
		    "Publishes that no rule's topic pattern matched",
		    st->unmatched },
		{ "mqlite_shared_deliveries_total", "counter",
		    "Copies given to one member of a shared subscription "
		    "group", st->shared_out },
		{ "mqlite_shared_moved_total", "counter",
		    "Unacknowledged shared messages handed to another member "
		    "after a disconnect", st->shared_moved },
	};

	return scalars(out, s, sizeof s / sizeof s[0]);
}

static int
render_access(struct buf *out, const struct broker_access_stats *st)
{
	const struct scalar s[] = {
		{ "mqlite_logins_ok_total", "counter",
		    "Password logins accepted", st->logins_ok },
		{ "mqlite_logins_failed_total", "counter",
		    "Logins refused (bad credentials, anonymous not allowed)",
		    st->logins_failed },
		{ "mqlite_login_cache_hits_total", "counter",
		    "Password logins accepted from the verified-login cache",
		    st->login_cache_hits },
		{ "mqlite_logins_busy_total", "counter",
		    "Logins refused because too many were being checked",
		    st->logins_busy },
		{ "mqlite_logins_delayed_total", "counter",
		    "Refused logins answered after the failure delay",
		    st->logins_delayed },
		{ "mqlite_acl_publish_denied_total", "counter",
		    "PUBLISH packets denied by the ACL or for $SYS",
		    st->publish_denied },
		{ "mqlite_acl_subscribe_denied_total", "counter",
		    "Subscription filters denied by the ACL",
		    st->subscribe_denied },
		{ "mqlite_acl_deliver_denied_total", "counter",
		    "Messages withheld from a subscriber the ACL does not let "
		    "read them", st->deliver_denied },
	};

	return scalars(out, s, sizeof s / sizeof s[0]);
}

static int
render_store(struct buf *out, const struct store_stats *st,
    const struct retention_stats *rt, uint64_t max_bytes)
{
	const struct scalar s[] = {
		{ "mqlite_store_rows_total", "counter",
		    "Rows inserted into messages and rule tables", st->rows },
		{ "mqlite_store_commits_total", "counter",
		    "Transactions committed", st->batches },
		{ "mqlite_store_commit_failures_total", "counter",
		    "Failed COMMITs (retried)", st->commit_failures },
		{ "mqlite_store_committed_seq", "gauge",
		    "Highest store sequence number committed",
		    st->committed_seq },
		{ "mqlite_store_wal_bytes", "gauge",
		    "WAL size after the last commit", st->wal_bytes },
		{ "mqlite_store_checkpoints_total", "counter",
		    "Completed WAL checkpoints", st->checkpoints },
		{ "mqlite_store_failing", "gauge",
		    "Failed tries of the batch being retried (0: healthy)",
		    st->failing },
		{ "mqlite_store_queue_items", "gauge",
		    "Items waiting for the store thread", st->queue_items },
		{ "mqlite_outbox_dead_pruned_total", "counter",
		    "Oldest dead letters deleted over outbox.dead_max_bytes",
		    st->dead_pruned },
		{ "mqlite_storage_write_bytes_total", "counter",
		    "Bytes the process made the kernel write to storage",
		    st->write_bytes },
		{ "mqlite_storage_fsyncs_total", "counter",
		    "Flushes (fsync/fdatasync) of the database files",
		    st->fsyncs },
		{ "mqlite_retention_deletes_total", "counter",
		    "Retention DELETE statements run", rt->chunks },
		{ "mqlite_retention_vacuum_pages_total", "counter",
		    "Pages given back to the filesystem", rt->vacuum_pages },
		{ "mqlite_retention_checkpoints_total", "counter",
		    "WAL checkpoints run for max_bytes", rt->checkpoints },
		{ "mqlite_retention_errors_total", "counter",
		    "Failed retention statements (retried later)", rt->errors },
		{ "mqlite_database_used_bytes", "gauge",
		    "Database pages in use, last measured", rt->used_bytes },
		{ "mqlite_database_file_bytes", "gauge",
		    "Database file size, last measured", rt->file_bytes },
		{ "mqlite_database_wal_file_bytes", "gauge",
		    "WAL file size on disk, last measured", rt->wal_bytes },
		{ "mqlite_retention_high_bytes", "gauge",
		    "Pruning starts above this many bytes in use (0: off)",
		    rt->high_bytes },
		{ "mqlite_retention_low_bytes", "gauge",
		    "Pruning stops at this many bytes in use", rt->low_bytes },
		{ "mqlite_database_max_bytes", "gauge",
		    "database.max_bytes (0: unbounded)", max_bytes },
		{ "mqlite_rollup_windows_total", "counter",
		    "Rollup windows written", st->rollup_windows },
		{ "mqlite_rollup_rows_total", "counter",
		    "Rollup rows written", st->rollup_rows },
		{ "mqlite_rollup_errors_total", "counter",
		    "Failed rollup transactions (retried)", st->rollup_errors },
		{ "mqlite_rollup_windows_given_up_total", "counter",
		    "Rollup windows whose aggregate SQLite refused",
		    st->rollup_skipped },
	};
	static const char pruned[] = "mqlite_retention_pruned_rows_total";
	int rc;

	if ((rc = scalars(out, s, sizeof s / sizeof s[0])) != 0 ||
	    (rc = metrics_family(out, pruned, "counter",
	    "Rows deleted by retention, by reason")) != 0 ||
	    (rc = metrics_sample_u64(out, pruned, "reason", "max_age",
	    rt->age_rows)) != 0)
		return rc;
	return metrics_sample_u64(out, pruned, "reason", "max_bytes",
	    rt->size_rows);
}

static int
render_rules(struct buf *out, const struct rule_set *set)
{
	static const struct {
		const char		*name;
		const char		*help;
		enum rule_counter	 c;
	} fam[] = {
		{ "mqlite_rule_matched_total",
		    "Publishes whose topic matched the rule", RULE_CMATCHED },
		{ "mqlite_rule_filtered_total",
		    "Matched publishes dropped by the rule's where",
		    RULE_CFILTERED },
		{ "mqlite_rule_written_total",
		    "Rows the rule inserted", RULE_CWRITTEN },
		{ "mqlite_rule_rejected_total",
		    "Rows the rule sent to the rejected table",
		    RULE_CREJECTED },
		{ "mqlite_rule_items_filtered_total",
		    "Foreach elements dropped by the rule's where",
		    RULE_CITEMS_FILTERED },
		{ "mqlite_rule_foreach_missing_total",
		    "Publishes whose foreach array was missing or null",
		    RULE_CITEMS_MISSING },
		{ "mqlite_rule_items_over_max_total",
		    "Publishes whose foreach array exceeded max_items",
		    RULE_CITEMS_OVER },
		{ "mqlite_rule_transform_null_total",
		    "Transforms that gave NULL: wrong type or unreadable "
		    "input", RULE_CXFORM_NULL },
		{ "mqlite_rule_device_time_invalid_total",
		    "Device times (|time) that could not be read",
		    RULE_CTIME_INVALID },
		{ "mqlite_rule_time_skew_total",
		    "Publishes whose device time was beyond max_time_skew",
		    RULE_CTIME_SKEW },
	};
	const struct rule *r;
	size_t f, i, n = set != NULL ? rule_set_count(set) : 0;
	int rc;

	if (n == 0)
		return 0;
	for (f = 0; f < sizeof fam / sizeof fam[0]; f++) {
		if ((rc = metrics_family(out, fam[f].name, "counter",
		    fam[f].help)) != 0)
			return rc;
		for (i = 0; i < n; i++) {
			r = rule_set_rule(set, i);
			if ((rc = metrics_sample_u64(out, fam[f].name, "rule",
			    rule_name(r), rule_counter(r, fam[f].c))) != 0)
				return rc;
		}
	}
	return 0;
}

/* Appends a copy of st; called under a thread's lock: copy, never block. */
static void
copies_push(const struct results_route_stats *st, void *ctx)
{
	struct copies *c = ctx;
	struct results_route_stats *v;
	char *name;
	size_t cap;

	if (c->rc != 0 || c->n >= ROUTES_MAX)
		return;
	if (c->n == c->cap) {
		cap = c->cap == 0 ? 8 : c->cap * 2;
		if ((v = gw_realloc(c->v, cap * sizeof *v)) == NULL) {
			c->rc = GW_ENOMEM;
			return;
		}
		c->v = v;
		c->cap = cap;
	}
	if ((name = gw_strdup(st->route != NULL ? st->route : "")) == NULL) {
		c->rc = GW_ENOMEM;
		return;
	}
	c->v[c->n] = *st;
	c->v[c->n++].route = name;
}

/* Seconds since oldest_ms (0: none or in the future). */
static double
age_seconds(int64_t oldest_ms, long long now)
{
	if (oldest_ms <= 0 || oldest_ms >= now)
		return 0;
	return (double)(now - oldest_ms) / 1000.0;
}

/* The counter f of the route stats st. */
static uint64_t
route_value(const struct results_route_stats *st, enum route_field f)
{
	switch (f) {
	case ROUTE_UP:
		return st->state == BRIDGE_UP;
	case ROUTE_CONNECTS:
		return st->connects;
	case ROUTE_SENT:
		return st->sent;
	case ROUTE_DELIVERED:
		return st->delivered;
	case ROUTE_RETRIED:
		return st->retried;
	case ROUTE_DEAD:
		return st->dead;
	case ROUTE_DROPPED:
		return st->dropped;
	case ROUTE_EXPIRED:
		return st->expired;
	case ROUTE_DEPTH:
		return st->depth;
	case ROUTE_IN_FLIGHT:
	default:
		return st->in_flight;
	}
}

/*
 * Writes the nfam families, one sample per copied route labelled with its
 * name (ROUTE_AGE as seconds with a fraction, the others as integers),
 * then frees the copies.
 */
static int
render_copies(struct buf *out, struct copies *c,
    const struct route_family *fam, size_t nfam)
{
	long long now = clock_wall_ms();
	const struct results_route_stats *st;
	size_t f, i;
	int rc;

	if ((rc = c->rc) != 0 || c->n == 0)
		goto out;
	for (f = 0; f < nfam; f++) {
		if ((rc = metrics_family(out, fam[f].name, fam[f].type,
		    fam[f].help)) != 0)
			goto out;
		for (i = 0; i < c->n; i++) {
			st = &c->v[i];
			if (fam[f].field == ROUTE_AGE)
				rc = metrics_sample_double(out, fam[f].name,
				    "route", st->route,
				    age_seconds(st->oldest_ms, now));
			else
				rc = metrics_sample_u64(out, fam[f].name,
				    "route", st->route,
				    route_value(st, fam[f].field));
			if (rc != 0)
				goto out;
		}
	}
out:
	for (i = 0; i < c->n; i++)
		gw_free((char *)c->v[i].route);
	gw_free(c->v);
	memset(c, 0, sizeof *c);
	return rc;
}

/* Per webhook route: outbox counters. */
static int
render_routes(struct buf *out, struct delivery *dl)
{
	static const struct route_family fam[] = {
		{ "mqlite_webhook_delivered_total", "counter",
		    "Outbox rows delivered (2xx)", ROUTE_DELIVERED },
		{ "mqlite_webhook_retried_total", "counter",
		    "Outbox rows rescheduled after a failed attempt",
		    ROUTE_RETRIED },
		{ "mqlite_webhook_dead_total", "counter",
		    "Outbox rows dead-lettered", ROUTE_DEAD },
		{ "mqlite_webhook_dropped_total", "counter",
		    "Outbox rows dropped by the outbox cap", ROUTE_DROPPED },
		{ "mqlite_webhook_depth", "gauge",
		    "Rows waiting in the outbox (refreshed every few "
		    "seconds)", ROUTE_DEPTH },
		{ "mqlite_webhook_oldest_age_seconds", "gauge",
		    "Age of the oldest row waiting in the outbox (0: none)",
		    ROUTE_AGE },
		{ "mqlite_webhook_in_flight", "gauge",
		    "Requests in flight now", ROUTE_IN_FLIGHT },
	};
	struct copies c;

	memset(&c, 0, sizeof c);
	if (dl != NULL)
		delivery_stats(dl, copies_push, &c);
	return render_copies(out, &c, fam, sizeof fam / sizeof fam[0]);
}

/* Per source: connected, received, duplicates, connects, reconnects. */
static int
render_sources(struct buf *out, const struct sources *ss)
{
	static const struct family fam[] = {
		{ "mqlite_source_connected", "gauge",
		    "1 while connected to the source broker" },
		{ "mqlite_source_received_total", "counter",
		    "PUBLISH packets received from the source" },
		{ "mqlite_source_duplicates_total", "counter",
		    "QoS 2 resends recognised and not stored again" },
		{ "mqlite_source_connects_total", "counter",
		    "Connections accepted by the source broker" },
		{ "mqlite_source_reconnects_total", "counter",
		    "Connections lost or failed (each retried)" },
	};
	struct source_stats st;
	uint64_t v;
	size_t f, i, n = sources_count(ss);
	int rc;

	for (f = 0; n > 0 && f < sizeof fam / sizeof fam[0]; f++) {
		if ((rc = metrics_family(out, fam[f].name, fam[f].type,
		    fam[f].help)) != 0)
			return rc;
		for (i = 0; i < n; i++) {
			sources_get_stats(ss, i, &st);
			v = f == 0 ? st.connected : f == 1 ? st.received :
			    f == 2 ? st.duplicates : f == 3 ? st.connects :
			    st.reconnects;
			if ((rc = metrics_sample_u64(out, fam[f].name,
			    "source", st.name, v)) != 0)
				return rc;
		}
	}
	return 0;
}

/* Per mqtt route: connection state and counters. */
static int
render_bridge(struct buf *out, struct delivery *dl)
{
	static const struct route_family fam[] = {
		{ "mqlite_bridge_up", "gauge",
		    "1 while the route is connected upstream", ROUTE_UP },
		{ "mqlite_bridge_connects_total", "counter",
		    "Successful connections upstream", ROUTE_CONNECTS },
		{ "mqlite_bridge_sent_total", "counter",
		    "Publishes handed to the upstream connection",
		    ROUTE_SENT },
		{ "mqlite_bridge_acked_total", "counter",
		    "Outbox rows acknowledged upstream and deleted",
		    ROUTE_DELIVERED },
		{ "mqlite_bridge_retried_total", "counter",
		    "Publishes sent again after a failed send",
		    ROUTE_RETRIED },
		{ "mqlite_bridge_dead_total", "counter",
		    "Outbox rows dead-lettered", ROUTE_DEAD },
		{ "mqlite_bridge_dropped_total", "counter",
		    "Outbox rows dropped by the outbox cap", ROUTE_DROPPED },
		{ "mqlite_bridge_expired_total", "counter",
		    "Outbox rows dropped unsent: their MQTT 5.0 message "
		    "expiry passed", ROUTE_EXPIRED },
		{ "mqlite_bridge_depth", "gauge",
		    "Rows waiting in the outbox (refreshed every few "
		    "seconds)", ROUTE_DEPTH },
		{ "mqlite_bridge_oldest_age_seconds", "gauge",
		    "Age of the oldest row waiting in the outbox (0: none)",
		    ROUTE_AGE },
		{ "mqlite_bridge_in_flight", "gauge",
		    "Publishes sent and not yet acknowledged",
		    ROUTE_IN_FLIGHT },
	};
	struct copies c;

	memset(&c, 0, sizeof c);
	delivery_bridge_stats(dl, copies_push, &c);
	return render_copies(out, &c, fam, sizeof fam / sizeof fam[0]);
}

int
metrics_render(struct buf *out, void *ctx)
{
	struct metrics_sources *src = ctx;
	struct broker_stats bst;
	struct broker_access_stats ast;
	struct store_stats sst;
	struct retention_stats rst;
	const struct scalar mem = { "mqlite_memory_bytes", "gauge",
	    "Bytes allocated through the daemon's allocator",
	    (uint64_t)gw_mem_used() };
	int rc;

	broker_get_stats(src->broker, &bst);
	broker_get_access_stats(src->broker, &ast);
	store_get_stats(src->store, &sst);
	store_get_retention_stats(src->store, &rst);
	if ((rc = metrics_family(out, "mqlite_build_info", "gauge",
	    "Always 1; the version is a label")) != 0 ||
	    (rc = metrics_sample_u64(out, "mqlite_build_info", "version",
	    PACKAGE_VERSION, 1)) != 0 ||
	    (rc = one(out, &mem)) != 0 ||
	    (rc = render_broker(out, &bst)) != 0 ||
	    (rc = render_access(out, &ast)) != 0 ||
	    (rc = render_store(out, &sst, &rst, src->max_bytes)) != 0 ||
	    (rc = metrics_hist_render(out, "mqlite_store_commit_seconds",
	    "Transaction time, BEGIN to COMMIT done",
	    store_commit_hist(src->store))) != 0 ||
	    (rc = metrics_hist_render(out, "mqlite_publish_ack_seconds",
	    "QoS 1/2 PUBLISH received to PUBACK/PUBREC sent",
	    broker_ack_hist(src->broker))) != 0 ||
	    (rc = metrics_process_render(out, src->start_ms)) != 0 ||
	    (rc = render_rules(out, broker_rules(src->broker))) != 0 ||
	    (rc = render_sources(out, src->sources)) != 0)
		return rc;
	if ((rc = render_routes(out, src->delivery)) != 0)
		return rc;
	return render_bridge(out, src->delivery);
}

int
metrics_health(struct buf *out, void *ctx)
{
	struct metrics_sources *src = ctx;
	struct store_stats st;
	char line[160];
	int n;

	store_get_stats(src->store, &st);
	if (st.failing >= METRICS_UNHEALTHY_TRIES) {
		n = snprintf(line, sizeof line, "unhealthy: the database "
		    "cannot commit (%llu failed tries of the current batch)\n",
		    (unsigned long long)st.failing);
		if (n < 0 || (size_t)n >= sizeof line)
			return GW_ENOMEM;
		return buf_append(out, line, (size_t)n) != 0 ? GW_ENOMEM : 0;
	}
	return buf_append(out, "ok\n", 3) != 0 ? GW_ENOMEM : 1;
}

int
metrics_errors(struct buf *out, void *ctx)
{
	(void)ctx;
	return log_recent_render(out);
}
