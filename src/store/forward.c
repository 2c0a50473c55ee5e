/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store-thread forwarding; see forward.h. Rows are stored "sealed": text
 * that came from a ${NAME} secret keeps the ${NAME} reference and every
 * other '$' is doubled (rules.h), so no secret is ever written to the
 * database; the delivery side unseals at send time (outbox.c reader).
 * Plain text is sealed here by doubling its '$' so every row reads alike.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/msg.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "rules/rules.h"
#include "store/deadcap.h"
#include "store/forward.h"
#include "store/outbox.h"

#define FORWARD_MAX_RESULTS	1024	/* results applied per batch */

struct forward {
	struct outbox		*ob;
	struct deadcap		*dc;		/* outbox_dead bound */
	struct forward_opts	 o;
	struct outbox_result	*res;		/* taken, not yet committed */
	size_t			 nres;
	size_t			 applied;	/* res[0..applied) in this txn */
	uint64_t		 added;		/* rows enqueued this batch */
	atomic_bool		 full;		/* reject policy: no room */
	bool			 dropping;	/* drop_mark()ed, not ended */
	struct log_limit	 deadlog;
	struct log_limit	 looplog;	/* loop refusals */
};

struct forward *
forward_new(struct sqlite3 *db)
{
	struct forward *f;

	if ((f = gw_calloc(1, sizeof *f)) == NULL)
		return NULL;
	if ((f->res = gw_calloc(FORWARD_MAX_RESULTS, sizeof *f->res)) == NULL ||
	    (f->ob = outbox_open(db)) == NULL ||
	    (f->dc = deadcap_open(db)) == NULL) {
		outbox_close(f->ob);
		gw_free(f->res);
		gw_free(f);
		return NULL;
	}
	return f;
}

static void
forward_drop_cb(const char *route, uint64_t n, void *ctx)
{
	struct forward *f = ctx;

	/* outbox.c logs the drop; this only counts it per route. */
	if (f->o.dropped != NULL)
		f->o.dropped(f->o.ctx, route, n);
}

void
forward_configure(struct forward *f, const struct forward_opts *o)
{
	f->o = *o;
	outbox_set_drop_cb(f->ob, forward_drop_cb, f);
}

void
forward_free(struct forward *f)
{
	if (f == NULL)
		return;
	outbox_results_free(f->res, f->nres);
	gw_free(f->res);
	outbox_close(f->ob);
	deadcap_close(f->dc);
	gw_free(f);
}

bool
forward_take_results(struct forward *f)
{
	if (f->nres < FORWARD_MAX_RESULTS && f->o.results != NULL)
		f->nres += queue_pop(f->o.results, f->res + f->nres,
		    FORWARD_MAX_RESULTS - f->nres, 0);
	return f->applied < f->nres;
}

bool
forward_pending(const struct forward *f)
{
	return f->o.results != NULL && queue_len(f->o.results) > 0;
}

int
forward_apply_results(struct forward *f)
{
	size_t i;
	int rc;

	if (f->applied == f->nres)
		return 0;
	rc = outbox_apply_results(f->ob, f->res + f->applied,
	    f->nres - f->applied, clock_wall_ms());
	for (i = f->applied; rc == 0 && i < f->nres; i++)
		if (f->res[i].verdict == OUTBOX_FAIL)
			rc = deadcap_added(f->dc, f->res[i].id);
	if (rc == 0)
		f->applied = f->nres;
	return rc;
}

/* Returns a new copy of text (len bytes) with every '$' doubled. */
static char *
seal_plain(const char *text, size_t len, size_t *outlen)
{
	size_t i, n = 0, dollars = 0;
	char *out;

	for (i = 0; i < len; i++)
		dollars += text[i] == '$';
	if ((out = gw_malloc(len + dollars + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		out[n++] = text[i];
		if (text[i] == '$')
			out[n++] = '$';
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* The stored (sealed) form of a rendered string: borrowed or new. */
static const char *
stored_form(const struct rule_rendered *rr, char **owned, size_t *len)
{
	*owned = NULL;
	*len = rr->len;
	if (rr->sealed || memchr(rr->text, '$', rr->len) == NULL)
		return rr->text;
	*owned = seal_plain(rr->text, rr->len, len);
	return *owned;
}

/* The headers of h as a JSON object text in stored form (new). */
static char *
headers_json(const struct rule_http *h)
{
	cJSON *o;
	char *owned, *txt, *out = NULL;
	const char *v;
	size_t i, len;

	if (h->nheaders == 0)
		return NULL;
	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	for (i = 0; i < h->nheaders; i++) {
		v = stored_form(&h->headers[i].value, &owned, &len);
		if (v == NULL || cJSON_AddStringToObject(o, h->headers[i].name,
		    v) == NULL) {
			gw_free(owned);
			cJSON_Delete(o);
			return NULL;
		}
		gw_free(owned);
	}
	if ((txt = cJSON_PrintUnformatted(o)) != NULL) {
		out = gw_strdup(txt);
		cJSON_free(txt);
	}
	cJSON_Delete(o);
	return out;
}

int
forward_webhook(struct forward *f, const struct rule *r, const struct msg *m,
    struct rule_payload *pc)
{
	struct rule_http h;
	char route[160], *url_own = NULL, *body_own = NULL, *hdrs = NULL;
	const char *url, *body;
	size_t url_len, body_len;
	int64_t id, now = clock_wall_ms();
	int rc;

	memset(&h, 0, sizeof h);
	if ((rc = rule_render_webhook(r, m, pc, &h)) != 0) {
		rule_http_free(&h);
		return rc == GW_ENOTFOUND ? 0 : rc;
	}
	snprintf(route, sizeof route, "%s/webhook", rule_name(r));
	url = stored_form(&h.url, &url_own, &url_len);
	body = stored_form(&h.body, &body_own, &body_len);
	if (url == NULL || body == NULL ||
	    (h.nheaders > 0 && (hdrs = headers_json(&h)) == NULL)) {
		rc = GW_ENOMEM;
		goto out;
	}
	if ((rc = outbox_enqueue(f->ob, route, url, hdrs, body, body_len, now,
	    &id)) != 0)
		goto out;
	if (h.invalid != NULL) {
		log_limited(&f->deadlog, 5, 60000, LOG_LVL_WARN,
		    "rule %s: webhook for %s dead-lettered: %s",
		    rule_name(r), m->topic, h.invalid);
		if ((rc = outbox_dead_letter(f->ob, id, 0, h.invalid, NULL,
		    false, now)) == 0)
			rc = deadcap_added(f->dc, id);
		goto out;
	}
	f->added++;
out:
	gw_free(url_own);
	gw_free(body_own);
	gw_free(hdrs);
	rule_http_free(&h);
	return rc;
}

uint64_t
forward_dead_pruned(const struct forward *f)
{
	return deadcap_pruned(f->dc);
}

/*
 * True when m came from a source broker that one of mq's urls names
 * (same host and port, parsed at rule load): forwarding it there would
 * loop.
 */
static bool
mqtt_loops_back(const struct rule_mqtt *mq, const struct msg *m)
{
	size_t i;

	if (m->origin == NULL || mq == NULL)
		return false;
	for (i = 0; i < mq->nurls; i++) {
		if (mq->hosts[i].host != NULL &&
		    msg_from_broker(m, mq->hosts[i].host, mq->hosts[i].port))
			return true;
	}
	return false;
}

/* See forward.h. */
int
forward_mqtt(struct forward *f, const struct rule *r, const struct msg *m,
    struct rule_payload *pc)
{
	struct rule_rendered topic, payload;
	const struct rule_mqtt *mq;
	char route[160], *topic_own = NULL, *body_own = NULL;
	const char *t, *body;
	size_t t_len, body_len;
	int64_t id, now = clock_wall_ms();
	int rc, bad;

	if (mqtt_loops_back(rule_mqtt(r), m)) {
		/* Never back to the broker it came from (no loops). */
		if (log_ratelimited(&f->looplog, 1, 60000))
			log_info("rule %s: not forwarding %s back to %s, the "
			    "broker it came from", rule_name(r), m->topic,
			    m->origin);
		return 0;
	}
	bad = rule_render_mqtt(r, m, pc, &topic, &payload);
	if (bad != 0 && bad != GW_EMALFORMED) {
		rc = bad == GW_ENOTFOUND ? 0 : bad;
		goto out;
	}
	snprintf(route, sizeof route, "%s/mqtt", rule_name(r));
	t = stored_form(&topic, &topic_own, &t_len);
	body = stored_form(&payload, &body_own, &body_len);
	if (t == NULL || body == NULL) {
		rc = GW_ENOMEM;
		goto out;
	}
	/* A 5.0 route keeps the properties, sent on with the row. */
	mq = rule_mqtt(r);
	if ((rc = outbox_enqueue_props(f->ob, route, t, NULL, body, body_len,
	    mq->mqtt_version == 5 ? m->props : NULL,
	    mq->mqtt_version == 5 ? m->props_len : 0,
	    mq->mqtt_version == 5 && m->props != NULL ? m->expire_ms : 0,
	    now, &id)) != 0)
		goto out;
	if (bad == GW_EMALFORMED) {
		if (log_ratelimited(&f->deadlog, 5, 60000))
			log_warn("rule %s: mqtt for %s dead-lettered: the "
			    "upstream topic is not a valid topic name",
			    rule_name(r), m->topic);
		if ((rc = outbox_dead_letter(f->ob, id, 0,
		    "not a valid topic name", NULL, false, now)) == 0)
			rc = deadcap_added(f->dc, id);
		goto out;
	}
	f->added++;
out:
	gw_free(topic_own);
	gw_free(body_own);
	gw_free(topic.text);
	gw_free(payload.text);
	return rc;
}

bool
forward_full(const struct forward *f)
{
	return atomic_load_explicit(&f->full, memory_order_relaxed);
}

int
forward_finish(struct forward *f)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc;

	if ((rc = deadcap_enforce(f->dc, f->o.dead_max_bytes)) != 0)
		return rc;
	if (f->o.max_bytes == 0 || outbox_bytes(f->ob) <= f->o.max_bytes ||
	    f->o.overflow != FORWARD_DROP_OLDEST)
		return 0;
	if (f->o.drop_mark != NULL && !f->dropping) {
		f->o.drop_mark(f->o.ctx);
		f->dropping = true;
	}
	if (f->o.held_ids != NULL && f->o.held_ids(f->o.ctx, &ids, &n) != 0)
		n = 0;
	rc = outbox_enforce_cap(f->ob, f->o.max_bytes, ids, n, NULL);
	gw_free(ids);
	return rc;
}

/* Ends a drop window opened by forward_finish(). */
static void
forward_drop_end(struct forward *f)
{
	if (f->dropping) {
		f->dropping = false;
		if (f->o.drop_mark != NULL)
			f->o.drop_mark(f->o.ctx);
	}
}

void
forward_committed(struct forward *f)
{
	forward_drop_end(f);
	outbox_txn_committed(f->ob);
	deadcap_committed(f->dc);
	if (f->nres > 0 && f->o.committed != NULL)
		f->o.committed(f->o.ctx, f->res, f->nres);
	outbox_results_free(f->res, f->nres);
	f->nres = 0;
	f->applied = 0;
	atomic_store_explicit(&f->full, f->o.overflow == FORWARD_REJECT &&
	    f->o.max_bytes != 0 && outbox_bytes(f->ob) >= f->o.max_bytes,
	    memory_order_relaxed);
	if (f->added > 0 && f->o.wake != NULL)
		f->o.wake(f->o.ctx);
	f->added = 0;
}

void
forward_rolled_back(struct forward *f)
{
	forward_drop_end(f);
	outbox_txn_rolled_back(f->ob);
	deadcap_rolled_back(f->dc);
	f->applied = 0;		/* the retried batch applies them again */
	f->added = 0;
}
