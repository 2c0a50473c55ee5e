/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store-and-forward wiring; see setup.h. The store thread reaches the
 * delivery thread only through the callbacks installed here, which read
 * the delivery pointer atomically: it is set once, by the main thread,
 * when the first webhook route appears.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "config.h"
#include "deliver/bridge.h"
#include "deliver/loop.h"
#include "deliver/setup.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "rules/rules.h"
#include "store/forward.h"
#include "store/outbox.h"
#include "store/store.h"

#define DELIVERY_RESULTS	8192	/* results waiting for the store */
#define DELIVERY_NAME_MAX	160

struct delivery {
	struct store		*store;
	const struct gw_config	*cfg;
	struct queue		*results;
	_Atomic(struct deliver *) d;
	_Atomic(struct bridge *) br;	/* mqtt routes, set once */
};

static struct bridge *
br_get(void *ctx)
{
	struct delivery *dl = ctx;

	return atomic_load_explicit(&dl->br, memory_order_acquire);
}

static struct deliver *
dl_get(void *ctx)
{
	struct delivery *dl = ctx;

	return atomic_load_explicit(&dl->d, memory_order_acquire);
}

static void
cb_wake(void *ctx)
{
	struct deliver *d = dl_get(ctx);
	struct bridge *br = br_get(ctx);

	if (d != NULL)
		deliver_wake(d);
	if (br != NULL)
		bridge_wake(br);
}

static int
cb_held_ids(void *ctx, int64_t **ids, size_t *n)
{
	struct deliver *d = dl_get(ctx);
	struct bridge *br = br_get(ctx);
	int64_t *a = NULL, *b = NULL, *m;
	size_t na = 0, nb = 0, i = 0, j = 0, k = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (d != NULL && (rc = deliver_held_ids(d, &a, &na)) != 0)
		return rc;
	if (br != NULL && (rc = bridge_held_ids(br, &b, &nb)) != 0) {
		gw_free(a);
		return rc;
	}
	if (nb == 0 || na == 0) {
		*ids = na > 0 ? a : b;
		*n = na + nb;
		gw_free(na > 0 ? b : a);
		return 0;
	}
	/* Both sorted: merge. */
	if ((m = gw_malloc((na + nb) * sizeof *m)) == NULL) {
		gw_free(a);
		gw_free(b);
		return GW_ENOMEM;
	}
	while (i < na || j < nb)
		m[k++] = j == nb || (i < na && a[i] < b[j]) ? a[i++] : b[j++];
	gw_free(a);
	gw_free(b);
	*ids = m;
	*n = k;
	return 0;
}

static void
cb_drop_mark(void *ctx)
{
	struct deliver *d = dl_get(ctx);
	struct bridge *br = br_get(ctx);

	if (d != NULL)
		deliver_drop_mark(d);
	if (br != NULL)
		bridge_drop_mark(br);
}

static void
cb_dropped(void *ctx, const char *route, uint64_t n)
{
	struct deliver *d = dl_get(ctx);
	struct bridge *br = br_get(ctx);
	size_t len = strlen(route);

	if (len > 5 && strcmp(route + len - 5, "/mqtt") == 0) {
		if (br != NULL)
			bridge_count_dropped(br, route, n);
	} else if (d != NULL)
		deliver_count_dropped(d, route, n);
}

/* Store thread: results were committed; the bridge frees their slots. */
static void
cb_committed(void *ctx, const struct outbox_result *res, size_t n)
{
	struct bridge *br = br_get(ctx);

	if (br != NULL)
		bridge_results_committed(br, res, n);
}

/* Delivery thread: results are waiting; make the store run a batch. */
static void
cb_results(void *ctx)
{
	struct delivery *dl = ctx;

	store_nudge(dl->store);
}

struct delivery *
delivery_new(struct store *store, const struct gw_config *cfg)
{
	struct delivery *dl;
	struct forward_opts o;

	if ((dl = gw_calloc(1, sizeof *dl)) == NULL)
		return NULL;
	dl->store = store;
	dl->cfg = cfg;
	if ((dl->results = queue_new(sizeof(struct outbox_result),
	    DELIVERY_RESULTS)) == NULL) {
		gw_free(dl);
		return NULL;
	}
	memset(&o, 0, sizeof o);
	o.max_bytes = cfg->outbox_max_bytes;
	o.dead_max_bytes = cfg->outbox_dead_max_bytes;
	o.overflow = cfg->outbox_overflow == CONFIG_OVERFLOW_REJECT ?
	    FORWARD_REJECT : FORWARD_DROP_OLDEST;
	o.results = dl->results;
	o.wake = cb_wake;
	o.held_ids = cb_held_ids;
	o.drop_mark = cb_drop_mark;
	o.dropped = cb_dropped;
	o.committed = cb_committed;
	o.ctx = dl;
	store_set_forward(store, &o);
	return dl;
}

/* Fills route r (name in name[]) from rule rr's webhook action. */
static void
route_from_rule(struct deliver_route *r, char *name,
    const struct rule *rr)
{
	const struct rule_webhook *w = rule_webhook(rr);

	deliver_route_defaults(r);
	snprintf(name, DELIVERY_NAME_MAX, "%s/webhook", rule_name(rr));
	r->name = name;
	r->http.method = w->method;
	r->http.timeout_ms = w->timeout_ms;
	r->http.batch = w->batch;
	r->http.format = w->batch_format == RULE_BATCH_NDJSON ?
	    WEBHOOK_FORMAT_NDJSON : WEBHOOK_FORMAT_ARRAY;
	r->http.ca_file = w->tls_ca_file.s;
	r->http.cert = w->tls_cert.s;
	r->http.key = w->tls_key.s;
	r->http.insecure = w->tls_insecure;
	r->http.hmac_secret = w->hmac_secret.s;
	r->ordered = w->ordered;
	r->max_in_flight = w->ordered ? 1 : w->max_in_flight;
	if (w->batch) {
		r->batch.max_messages = w->batch_max_messages;
		r->batch.max_delay_ms = w->batch_max_delay_ms;
		r->batch.format = r->http.format;
	}
	r->retry.base_ms = w->retry_base_ms;
	r->retry.cap_ms = w->retry_cap_ms;
	r->retry.max_attempts = w->retry_max_attempts;
	r->retry.max_age_ms = (int64_t)w->retry_max_age_ms;
	r->rate_limit_per_s = w->rate_limit_per_s;
}

/* Fills route r (name in name[]) from rule rr's mqtt action. */
static void
bridge_route_from_rule(struct bridge_route *r, char *name,
    const char **urls, const struct rule *rr)
{
	const struct rule_mqtt *m = rule_mqtt(rr);
	size_t i;

	memset(r, 0, sizeof *r);
	snprintf(name, DELIVERY_NAME_MAX, "%s/mqtt", rule_name(rr));
	r->name = name;
	for (i = 0; i < m->nurls; i++)
		urls[i] = m->urls[i].s;
	r->urls = urls;
	r->nurls = m->nurls;
	r->client_id = m->client_id.s;
	r->username = m->username.s;
	r->password = m->password.s;
	r->ca_file = m->tls_ca_file.s;
	r->cert = m->tls_cert.s;
	r->key = m->tls_key.s;
	r->insecure = m->tls_insecure;
	r->qos = m->qos;
	r->retain = m->retain;
	r->keepalive = m->keepalive;
	r->max_in_flight = m->max_in_flight;
	r->mqtt_version = m->mqtt_version;
}

/* What both threads start from. */
struct delivery_args {
	const char	*db_path;
	const void	*routes;	/* deliver_route or bridge_route */
	size_t		 n;
	struct queue	*results;
	void		*ctx;
};

typedef void	*(*delivery_start_fn)(const struct delivery_args *,
		    struct gw_error *);

static void *
start_webhooks(const struct delivery_args *a, struct gw_error *err)
{
	struct deliver_opts o = { .db_path = a->db_path, .routes = a->routes,
	    .nroutes = a->n, .results = a->results, .results_cb = cb_results,
	    .results_ctx = a->ctx };

	/* Loads libcurl (curl_shim.c); no other thread uses it yet. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		gw_error_set(err, "deliver", "cannot initialise libcurl, "
		    "which the webhook rules need");
		return NULL;
	}
	return deliver_start(&o, err);
}

static void *
start_bridge(const struct delivery_args *a, struct gw_error *err)
{
	struct bridge_opts o = { .db_path = a->db_path, .routes = a->routes,
	    .nroutes = a->n, .results = a->results, .results_cb = cb_results,
	    .results_ctx = a->ctx };

	return bridge_start(&o, err);
}

/*
 * Starts a thread with start for n routes; logs the outcome as what.
 * Returns the new handle or NULL (logged).
 */
static void *
delivery_start(struct delivery *dl, delivery_start_fn start,
    const void *routes, size_t n, const char *what)
{
	struct delivery_args a = { dl->cfg->db_path, routes, n, dl->results,
	    dl };
	struct gw_error err;
	void *h;

	memset(&err, 0, sizeof err);
	if ((h = start(&a, &err)) == NULL)
		log_error("cannot start the %s: %s", what, err.msg);
	else
		log_info("%s started: %zu routes", what, n);
	return h;
}

/* The bridge's half of delivery_apply_rules(). */
static int
delivery_apply_bridge(struct delivery *dl, const struct rule_set *set)
{
	struct bridge_route *routes = NULL;
	struct bridge *br;
	const struct rule_mqtt *m;
	char (*names)[DELIVERY_NAME_MAX] = NULL;
	const char **urls = NULL;
	size_t i, n = 0, nu = 0, count = set != NULL ? rule_set_count(set) : 0;
	int rc = 0;

	for (i = 0; i < count; i++) {
		if ((m = rule_mqtt(rule_set_rule(set, i))) != NULL) {
			n++;
			nu += m->nurls;
		}
	}
	br = br_get(dl);
	if (n == 0 && br == NULL)
		return 0;
	if (n > 0 && ((routes = gw_calloc(n, sizeof *routes)) == NULL ||
	    (names = gw_calloc(n, sizeof *names)) == NULL ||
	    (urls = gw_calloc(nu, sizeof *urls)) == NULL)) {
		rc = GW_ENOMEM;
		goto out;
	}
	for (i = 0, n = 0, nu = 0; i < count; i++) {
		if ((m = rule_mqtt(rule_set_rule(set, i))) == NULL)
			continue;
		bridge_route_from_rule(&routes[n], names[n], urls + nu,
		    rule_set_rule(set, i));
		nu += m->nurls;
		n++;
	}
	if (br != NULL)
		rc = bridge_update_routes(br, routes, n);
	else if ((br = delivery_start(dl, start_bridge, routes, n,
	    "bridge (mqtt)")) == NULL)
		rc = GW_EIO;
	else
		atomic_store_explicit(&dl->br, br, memory_order_release);
out:
	gw_free(routes);
	gw_free(names);
	gw_free(urls);
	return rc;
}

int
delivery_apply_rules(struct delivery *dl, const struct rule_set *set)
{
	struct deliver_route *routes = NULL;
	struct deliver *d;
	char (*names)[DELIVERY_NAME_MAX] = NULL;
	size_t i, n = 0, count = set != NULL ? rule_set_count(set) : 0;
	int rc = 0;

	for (i = 0; i < count; i++)
		n += rule_webhook(rule_set_rule(set, i)) != NULL;
	if (n > 0 && ((routes = gw_calloc(n, sizeof *routes)) == NULL ||
	    (names = gw_calloc(n, sizeof *names)) == NULL)) {
		gw_free(routes);
		return GW_ENOMEM;
	}
	for (i = 0, n = 0; i < count; i++) {
		if (rule_webhook(rule_set_rule(set, i)) == NULL)
			continue;
		route_from_rule(&routes[n], names[n], rule_set_rule(set, i));
		n++;
	}
	d = dl_get(dl);
	if (d != NULL)
		rc = deliver_update_routes(d, routes, n);
	else if (n > 0 && (d = delivery_start(dl, start_webhooks, routes, n,
	    "webhook delivery")) == NULL)
		rc = GW_EIO;
	else if (n > 0)
		atomic_store_explicit(&dl->d, d, memory_order_release);
	gw_free(routes);
	gw_free(names);
	if (rc == 0)
		rc = delivery_apply_bridge(dl, set);
	return rc;
}

void
delivery_stats(struct delivery *dl, results_route_stats_cb cb, void *ctx)
{
	struct deliver *d;

	if (dl != NULL && (d = dl_get(dl)) != NULL)
		deliver_stats(d, cb, ctx);
}

void
delivery_bridge_stats(struct delivery *dl, results_route_stats_cb cb,
    void *ctx)
{
	struct bridge *br;

	if (dl != NULL && (br = br_get(dl)) != NULL)
		bridge_stats(br, cb, ctx);
}

void
delivery_stop(struct delivery *dl, unsigned grace_ms)
{
	struct deliver *d;
	struct bridge *br;
	bool stopped = false;

	if (dl == NULL)
		return;
	/* The store thread's callbacks stop seeing it first. */
	if ((br = atomic_exchange(&dl->br, NULL)) != NULL) {
		bridge_stop(br, grace_ms);
		stopped = true;
	}
	if ((d = dl_get(dl)) != NULL) {
		deliver_stop(d, grace_ms);
		atomic_store(&dl->d, NULL);
		stopped = true;
	}
	if (stopped)
		store_nudge(dl->store);
}

void
delivery_free(struct delivery *dl)
{
	struct outbox_result r;

	if (dl == NULL)
		return;
	delivery_stop(dl, 0);
	while (queue_pop(dl->results, &r, 1, 0) == 1)
		outbox_results_free(&r, 1);
	queue_free(dl->results);
	gw_free(dl);
}
