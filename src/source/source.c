/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The set of sources: creation from the config, the QoS 2 packet ids each
 * source recorded before a restart, the broker's commit notifications and
 * the orderly shutdown. The connection itself is link.c.
 *
 * DESIGN
 *
 * A source is a client of someone else's broker, so its promise runs the
 * other way round from a listener's: the broker delivering to us resends
 * until we acknowledge, and we acknowledge only what SQLite holds. A
 * received PUBLISH goes through broker_source_publish() (the rules the
 * local publishes use, the same store queue and group commit), and its
 * PUBACK or PUBREC waits in the link's FIFO, stamped with the store
 * sequence number, until the commit notification reaches it. Acks leave
 * in receive order.
 *
 * Exactly once for QoS 2: the packet id is recorded in qos2_inflight
 * under the key "$source/NAME" in the transaction that stores the
 * message, and the in-memory bitmap here mirrors the table. A resend of
 * a recorded id (after a lost connection or a kill -9 of mqlite) is
 * answered with PUBREC without storing it again; PUBREL removes the
 * record and PUBCOMP follows that removal's commit. The bitmap is loaded
 * from the table at start.
 *
 * QoS 1 is at least once: a message stored but not yet acknowledged when
 * the connection or mqlite dies is delivered again and stored again.
 *
 * No loops: every message carries the source's name and "host:port"
 * (struct msg source, origin) so that an upstream mqtt action can refuse
 * to send it back to the broker it came from. Messages from sources are
 * not fanned out to local subscribers and never become retained here.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "config.h"
#include "mem.h"
#include "mqtt/codec.h"
#include "net/tls.h"
#include "source/source_int.h"
#include "store/store.h"

static void	commit_hook(void *);
static void	load_qos2_cb(const char *, uint16_t, void *);

bool
source_qos2_has(const struct source_link *l, uint16_t pid)
{
	return l->qos2 != NULL && (l->qos2[pid >> 3] & (1u << (pid & 7)));
}

int
source_qos2_add(struct source_link *l, uint16_t pid)
{
	if (l->qos2 == NULL && (l->qos2 = gw_calloc(65536 / 8, 1)) == NULL)
		return GW_ENOMEM;
	if (!source_qos2_has(l, pid)) {
		l->qos2[pid >> 3] |= (uint8_t)(1u << (pid & 7));
		l->nqos2++;
	}
	return 0;
}

void
source_qos2_del(struct source_link *l, uint16_t pid)
{
	if (!source_qos2_has(l, pid))
		return;
	l->qos2[pid >> 3] &= (uint8_t)~(1u << (pid & 7));
	if (--l->nqos2 == 0) {
		gw_free(l->qos2);
		l->qos2 = NULL;
	}
}

/* store_load_qos2() callback: keeps the ids of our sources. */
static void
load_qos2_cb(const char *client_id, uint16_t pid, void *arg)
{
	struct sources *ss = arg;
	size_t i;

	for (i = 0; i < ss->n; i++) {
		if (strcmp(ss->links[i].key, client_id) == 0) {
			if (source_qos2_add(&ss->links[i], pid) != 0)
				log_error("source %s: out of memory loading "
				    "QoS 2 state", ss->links[i].cfg->name);
			return;
		}
	}
}

struct sources *
sources_new(struct ev_loop *loop, struct broker *b, struct store *store,
    const struct gw_config *cfg)
{
	struct sources *ss;
	struct source_link *l;
	struct gw_error err;
	struct timespec ts;
	size_t i;
	bool v6;

	ss = gw_calloc(1, sizeof *ss + cfg->nsources * sizeof ss->links[0]);
	if (ss == NULL)
		return NULL;
	ss->loop = loop;
	ss->broker = b;
	ss->store = store;
	ss->cfg = cfg;
	ss->n = cfg->nsources;
	clock_gettime(CLOCK_REALTIME, &ts);
	backoff_seed(&ss->rng, (uint64_t)ts.tv_nsec ^
	    ((uint64_t)getpid() << 32));
	for (i = 0; i < ss->n; i++) {
		l = &ss->links[i];
		l->ss = ss;
		l->cfg = &cfg->sources[i];
		l->conn.fd = -1;
		l->stats.name = l->cfg->name;
		snprintf(l->key, sizeof l->key, "%s%s",
		    BROKER_SOURCE_KEY_PREFIX, l->cfg->name);
		v6 = strchr(l->cfg->host, ':') != NULL;
		snprintf(l->origin, sizeof l->origin, "%s%s%s:%d",
		    v6 ? "[" : "", l->cfg->host, v6 ? "]" : "",
		    l->cfg->port);
	}
	for (i = 0; i < ss->n; i++) {
		l = &ss->links[i];
		memset(&err, 0, sizeof err);
		if (l->cfg->tls && (l->tls = tls_client_ctx_new(l->cfg, i,
		    &err)) == NULL) {
			log_error("%s: %s", err.path, err.msg);
			sources_free(ss);
			return NULL;
		}
	}
	if (ss->n > 0 && store_load_qos2(store, load_qos2_cb, ss) != 0) {
		sources_free(ss);
		return NULL;
	}
	for (i = 0; i < ss->n; i++)
		if (ss->links[i].nqos2 > 0)
			log_info("source %s: %u QoS 2 messages awaiting "
			    "PUBREL", ss->links[i].cfg->name,
			    ss->links[i].nqos2);
	return ss;
}

/* After each commit: release what is durable, resume blocked links. */
static void
commit_hook(void *arg)
{
	struct sources *ss = arg;
	struct source_link *l;
	uint64_t committed = broker_committed_seq(ss->broker);
	size_t i;

	for (i = 0; i < ss->n; i++) {
		l = &ss->links[i];
		if (l->conn.fd == -1)
			continue;
		link_release_acks(l, committed, false);
		if (l->blocked && !l->intake_stopped)
			link_resume(l);
	}
}

void
sources_start(struct sources *ss)
{
	size_t i;

	if (ss == NULL || ss->n == 0)
		return;
	broker_set_commit_hook(ss->broker, commit_hook, ss);
	for (i = 0; i < ss->n; i++)
		link_connect(&ss->links[i]);
}

void
sources_stop_intake(struct sources *ss)
{
	struct source_link *l;
	size_t i;

	for (i = 0; ss != NULL && i < ss->n; i++) {
		l = &ss->links[i];
		l->intake_stopped = true;
		ev_timer_cancel(ss->loop, &l->timer);
		ev_timer_cancel(ss->loop, &l->retry);
		if (l->conn.fd != -1 && l->state == LINK_UP) {
			l->ev_mask = 0;
			ev_mod_fd(ss->loop, l->conn.fd, 0);
		} else if (l->conn.fd != -1)
			link_drop(l, "shutting down");
		l->state = LINK_DONE;
	}
}

void
sources_finish(struct sources *ss)
{
	struct source_link *l;
	size_t i;

	for (i = 0; ss != NULL && i < ss->n; i++) {
		l = &ss->links[i];
		l->state = LINK_DONE;
		if (l->conn.fd == -1)
			continue;
		/* Everything submitted is committed by now. */
		link_release_acks(l, UINT64_MAX, true);
		codec_encode_empty(&l->conn.out, CODEC_DISCONNECT);
		(void)conn_flush(&l->conn);
		link_drop(l, "shutting down");
	}
}

size_t
sources_count(const struct sources *ss)
{
	return ss != NULL ? ss->n : 0;
}

void
sources_get_stats(const struct sources *ss, size_t i, struct source_stats *st)
{
	*st = ss->links[i].stats;
}

void
sources_free(struct sources *ss)
{
	size_t i;

	if (ss == NULL)
		return;
	if (ss->n > 0)
		broker_set_commit_hook(ss->broker, NULL, NULL);
	for (i = 0; i < ss->n; i++) {
		ev_timer_cancel(ss->loop, &ss->links[i].timer);
		ev_timer_cancel(ss->loop, &ss->links[i].retry);
		if (ss->links[i].conn.fd != -1) {
			ev_del_fd(ss->loop, ss->links[i].conn.fd);
			conn_close(&ss->links[i].conn);
		}
		gw_free(ss->links[i].qos2);
		gw_free(ss->links[i].acks);
		tls_ctx_free(ss->links[i].tls);
	}
	gw_free(ss);
}
