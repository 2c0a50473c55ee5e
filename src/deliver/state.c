/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery state: the part of the delivery thread's data that other
 * threads reach through loop.h (route tables posted for a reload, the
 * per-route counters, the held-id set the store thread's cap skips), all
 * behind a lock or atomics (the counters, the held-id set and the results
 * queue are those of results.c, shared with the bridge), plus the helpers
 * the thread uses to make results and recycle requests. See loop.c for
 * the design of the thread itself.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/loop.h"
#include "deliver/loop_int.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "store/outbox.h"

static int	deliver_dup(const char **, const char *);

/* Defaults of a webhook route. Any thread. */
void
deliver_route_defaults(struct deliver_route *r)
{
	memset(r, 0, sizeof *r);
	r->http.timeout_ms = WEBHOOK_DEF_TIMEOUT_MS;
	r->http.format = WEBHOOK_FORMAT_ARRAY;
	r->ordered = true;
	r->batch.max_messages = 1;
	r->batch.format = WEBHOOK_FORMAT_ARRAY;
	r->retry.base_ms = DELIVER_DEF_BASE_MS;
	r->retry.cap_ms = DELIVER_DEF_CAP_MS;
}

static int
deliver_dup(const char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	return (*dst = gw_strdup(src)) == NULL ? GW_ENOMEM : 0;
}

/* Deep-copies src into dst (strings owned by dst). */
int
deliver_route_copy(struct deliver_route *dst, const struct deliver_route *src)
{
	*dst = *src;
	dst->name = dst->http.method = dst->http.ca_file = NULL;
	dst->http.cert = dst->http.key = dst->http.hmac_secret = NULL;
	if (deliver_dup(&dst->name, src->name) != 0 ||
	    deliver_dup(&dst->http.method, src->http.method) != 0 ||
	    deliver_dup(&dst->http.ca_file, src->http.ca_file) != 0 ||
	    deliver_dup(&dst->http.cert, src->http.cert) != 0 ||
	    deliver_dup(&dst->http.key, src->http.key) != 0 ||
	    deliver_dup(&dst->http.hmac_secret, src->http.hmac_secret) != 0) {
		deliver_route_conf_free(dst);
		return GW_ENOMEM;
	}
	dst->http.batch = dst->batch.max_messages > 1;
	dst->http.format = dst->batch.format;
	if (dst->batch.max_messages == 0)
		dst->batch.max_messages = 1;
	if (dst->max_in_flight == 0)
		dst->max_in_flight = dst->ordered ? 1 :
		    DELIVER_DEF_MAX_IN_FLIGHT;
	if (dst->ordered)
		dst->max_in_flight = 1;
	return 0;
}

/* Frees the strings of a copied route. */
void
deliver_route_conf_free(struct deliver_route *r)
{
	gw_free((char *)r->name);
	gw_free((char *)r->http.method);
	gw_free((char *)r->http.ca_file);
	gw_free((char *)r->http.cert);
	gw_free((char *)r->http.key);
	if (r->http.hmac_secret != NULL) {
		explicit_bzero((char *)r->http.hmac_secret,
		    strlen(r->http.hmac_secret));
		gw_free((char *)r->http.hmac_secret);
	}
	memset(r, 0, sizeof *r);
}

/* Validates and deep-copies a route table. */
int
deliver_copy_routes(const struct deliver_route *src, size_t n,
    struct deliver_route **out)
{
	struct deliver_route *t;
	size_t i, j;
	int rc;

	*out = NULL;
	for (i = 0; i < n; i++) {
		if (src[i].name == NULL || src[i].name[0] == '\0')
			return GW_ECONFIG;
		for (j = 0; j < i; j++)
			if (strcmp(src[i].name, src[j].name) == 0)
				return GW_ECONFIG;
	}
	if (n == 0)
		return 0;
	if ((t = gw_calloc(n, sizeof *t)) == NULL)
		return GW_ENOMEM;
	for (i = 0; i < n; i++) {
		if ((rc = deliver_route_copy(&t[i], &src[i])) != 0) {
			deliver_free_routes(t, i);
			return rc;
		}
	}
	*out = t;
	return 0;
}

/* Frees a table made by deliver_copy_routes(). NULL ok. */
void
deliver_free_routes(struct deliver_route *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		deliver_route_conf_free(&t[i]);
	gw_free(t);
}

/* Sorted copy of the held ids. Any thread. */
int
deliver_held_ids(struct deliver *d, int64_t **ids, size_t *n)
{
	return results_held_ids(&d->held, ids, n);
}

void
deliver_drop_mark(struct deliver *d)
{
	results_held_drop_mark(&d->held);
}

/* Drops counted by the store's cap. Any thread. */
void
deliver_count_dropped(struct deliver *d, const char *route, uint64_t n)
{
	results_ctr_dropped(&d->ctrs, route, n, true);
}

/* Reports every route's counters. Any thread. */
void
deliver_stats(struct deliver *d, results_route_stats_cb cb, void *ctx)
{
	results_ctrs_stats(&d->ctrs, cb, ctx);
}

/* One result per row of req. Strings are copied. */
void
deliver_result_rows(struct deliver *d, struct deliver_req *req,
    enum outbox_verdict v, int status, int64_t next_ms, const char *error,
    const char *response, bool sent)
{
	struct outbox_result res;
	size_t i;

	for (i = 0; i < req->n; i++) {
		memset(&res, 0, sizeof res);
		res.id = req->rows[i].id;
		res.verdict = (uint8_t)v;
		res.sent = sent;
		res.status = status;
		res.next_ms = next_ms;
		if (error != NULL)
			res.error = gw_strdup(error);
		if (response != NULL && *response != '\0')
			res.response = gw_strdup(response);
		(void)results_push(&d->res, &res);
	}
}

/* An idle request object, or a new one (NULL on ENOMEM). Thread. */
struct webhook_req *
deliver_pool_get(struct deliver *d)
{
	if (d->npool > 0)
		return d->pool[--d->npool];
	return webhook_req_new();
}

/* Returns a request object to the pool. Delivery thread. */
void
deliver_pool_put(struct deliver *d, struct webhook_req *wr)
{
	struct webhook_req **p;
	size_t cap;

	if (d->npool == d->cappool) {
		cap = d->cappool == 0 ? 16 : d->cappool * 2;
		if ((p = gw_realloc(d->pool, cap * sizeof *p)) == NULL) {
			webhook_req_free(wr);
			return;
		}
		d->pool = p;
		d->cappool = cap;
	}
	d->pool[d->npool++] = wr;
}

/* Frees req; release: its rows leave the held set. */
void
deliver_req_free(struct deliver *d, struct deliver_req *req, bool release)
{
	size_t i;

	if (req == NULL)
		return;
	if (release)
		results_held_del(&d->held, req->rows, req->n);
	for (i = 0; i < req->n; i++)
		outbox_row_clear(&req->rows[i]);
	gw_free(req->rows);
	gw_free(req);
}

/* Adds req to the route's held list, kept in next_ms order. */
void
deliver_hold(struct deliver_route_st *r, struct deliver_req *req)
{
	struct deliver_req **pp;

	for (pp = &r->held; *pp != NULL && (*pp)->next_ms <= req->next_ms;
	    pp = &(*pp)->next)
		;
	req->next = *pp;
	*pp = req;
	r->nheld++;
}

/* Links req into the in-flight list (for the final cleanup). Thread. */
void
deliver_inflight_link(struct deliver *d, struct deliver_req *req)
{
	req->iprev = NULL;
	req->inext = d->inflight;
	if (d->inflight != NULL)
		d->inflight->iprev = req;
	d->inflight = req;
}

/* Unlinks req from the in-flight list. Delivery thread. */
void
deliver_inflight_unlink(struct deliver *d, struct deliver_req *req)
{
	if (req->iprev != NULL)
		req->iprev->inext = req->inext;
	else
		d->inflight = req->inext;
	if (req->inext != NULL)
		req->inext->iprev = req->iprev;
	req->iprev = req->inext = NULL;
}
