/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * The parts the webhook delivery thread and the bridge thread share; see
 * results.h.
 *
 * DESIGN
 *
 * Results: the store drains a bounded queue; a sender thread must never
 * block on it (it would stall its connections), so what does not fit
 * waits, in order, in an array the thread owns and retries on each turn
 * of its loop. Only a failed allocation loses a result, and then the row
 * merely stays in the outbox. The held-id set and the counter list are
 * read by other threads (the store's drop_oldest pass, /metrics), so each
 * has its own mutex, held only for copying: never across I/O or a
 * callback other than the stats copy.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/results.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "store/outbox.h"

static int	results_cmp_id(const void *, const void *);

/* See results.h. */
void
results_init(struct results *r, struct queue *q, void (*cb)(void *),
    void *ctx)
{
	memset(r, 0, sizeof *r);
	r->q = q;
	r->cb = cb;
	r->ctx = ctx;
}

/* See results.h. Owner thread. */
bool
results_push(struct results *r, struct outbox_result *res)
{
	struct outbox_result *p;
	size_t cap;

	if (r->nunpushed == 0 && queue_push(r->q, res) == 0) {
		r->npushed++;
		return true;
	}
	if (r->nunpushed == r->capunpushed) {
		cap = r->capunpushed == 0 ? 64 : r->capunpushed * 2;
		if ((p = gw_realloc(r->unpushed, cap * sizeof *p)) == NULL) {
			log_error("out of memory: the result of outbox row "
			    "%lld is lost (the row will be sent again after "
			    "a restart)", (long long)res->id);
			outbox_results_free(res, 1);
			return false;
		}
		r->unpushed = p;
		r->capunpushed = cap;
	}
	r->unpushed[r->nunpushed++] = *res;
	return true;
}

/* See results.h. Owner thread. */
void
results_flush(struct results *r)
{
	size_t i = 0;

	while (i < r->nunpushed && queue_push(r->q, &r->unpushed[i]) == 0)
		i++;
	r->npushed += i;
	if (i != 0) {
		memmove(r->unpushed, r->unpushed + i,
		    (r->nunpushed - i) * sizeof *r->unpushed);
		r->nunpushed -= i;
	}
	if (r->npushed != 0 && r->cb != NULL)
		r->cb(r->ctx);
	r->npushed = 0;
}

/* See results.h. */
size_t
results_waiting(const struct results *r)
{
	return r->nunpushed;
}

/* See results.h. Owner thread. */
void
results_discard(struct results *r, const char *who)
{
	if (r->nunpushed != 0)
		log_warn("%s: %zu result(s) not handed to the store; those "
		    "rows will be sent again", who, r->nunpushed);
	outbox_results_free(r->unpushed, r->nunpushed);
	gw_free(r->unpushed);
	r->unpushed = NULL;
	r->nunpushed = r->capunpushed = 0;
}

/* See results.h. */
void
results_held_init(struct results_held *h)
{
	memset(h, 0, sizeof *h);
	pthread_mutex_init(&h->mu, NULL);
}

/* See results.h. */
void
results_held_destroy(struct results_held *h)
{
	gw_free(h->ids);
	h->ids = NULL;
	h->n = h->cap = 0;
	pthread_mutex_destroy(&h->mu);
}

/* See results.h. */
void
results_held_add(struct results_held *h, const struct outbox_row *rows,
    size_t n)
{
	size_t cap, i;
	int64_t *p;

	pthread_mutex_lock(&h->mu);
	if (h->n + n > h->cap) {
		cap = h->cap == 0 ? 64 : h->cap;
		while (cap < h->n + n)
			cap *= 2;
		if ((p = gw_realloc(h->ids, cap * sizeof *p)) == NULL) {
			/* Only the cap's skip list suffers; log and go on. */
			pthread_mutex_unlock(&h->mu);
			log_warn("out of memory for the held-id set: the "
			    "outbox cap may drop rows being sent");
			return;
		}
		h->ids = p;
		h->cap = cap;
	}
	for (i = 0; i < n; i++)
		h->ids[h->n++] = rows[i].id;
	pthread_mutex_unlock(&h->mu);
}

/* See results.h. */
void
results_held_del(struct results_held *h, const struct outbox_row *rows,
    size_t n)
{
	size_t i, j;

	pthread_mutex_lock(&h->mu);
	for (i = 0; i < n; i++) {
		for (j = 0; j < h->n; j++) {
			if (h->ids[j] == rows[i].id) {
				h->ids[j] = h->ids[--h->n];
				break;
			}
		}
	}
	pthread_mutex_unlock(&h->mu);
}

/* See results.h. */
void
results_held_drop_mark(struct results_held *h)
{
	atomic_fetch_add(&h->drop_seq, 1);
}

/* See results.h. */
uint64_t
results_held_seq(struct results_held *h)
{
	return atomic_load(&h->drop_seq);
}

/* See results.h. */
bool
results_held_raced(struct results_held *h, uint64_t seq)
{
	return (seq & 1) != 0 || atomic_load(&h->drop_seq) != seq;
}

static int
results_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* See results.h. */
int
results_held_ids(struct results_held *h, int64_t **ids, size_t *n)
{
	int64_t *copy = NULL;
	size_t cnt;

	pthread_mutex_lock(&h->mu);
	cnt = h->n;
	if (cnt != 0 && (copy = gw_malloc(cnt * sizeof *copy)) != NULL)
		memcpy(copy, h->ids, cnt * sizeof *copy);
	pthread_mutex_unlock(&h->mu);
	*ids = NULL;
	*n = 0;
	if (cnt != 0 && copy == NULL)
		return GW_ENOMEM;
	if (cnt > 1)
		qsort(copy, cnt, sizeof *copy, results_cmp_id);
	*ids = copy;
	*n = cnt;
	return 0;
}

/* See results.h. */
void
results_ctrs_init(struct results_ctrs *l)
{
	l->head = NULL;
	pthread_mutex_init(&l->mu, NULL);
}

/* See results.h. */
void
results_ctrs_destroy(struct results_ctrs *l)
{
	struct results_ctr *c, *next;

	for (c = l->head; c != NULL; c = next) {
		next = c->next;
		gw_free(c->name);
		gw_free(c);
	}
	l->head = NULL;
	pthread_mutex_destroy(&l->mu);
}

/* See results.h. */
struct results_ctr *
results_ctr_get(struct results_ctrs *l, const char *name, bool create)
{
	struct results_ctr *c;

	pthread_mutex_lock(&l->mu);
	for (c = l->head; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0)
			break;
	if (c == NULL && create && (c = gw_calloc(1, sizeof *c)) != NULL) {
		if ((c->name = gw_strdup(name)) == NULL) {
			gw_free(c);
			c = NULL;
		} else {
			c->next = l->head;
			l->head = c;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return c;
}

/* See results.h. */
void
results_ctr_dropped(struct results_ctrs *l, const char *name, uint64_t n,
    bool create)
{
	struct results_ctr *c;

	if ((c = results_ctr_get(l, name, create)) != NULL)
		atomic_fetch_add(&c->dropped, n);
}

/* See results.h. */
void
results_ctrs_stats(struct results_ctrs *l, results_route_stats_cb cb,
    void *ctx)
{
	struct results_route_stats st;
	struct results_ctr *c;

	pthread_mutex_lock(&l->mu);
	for (c = l->head; c != NULL; c = c->next) {
		st.route = c->name;
		st.state = atomic_load(&c->state);
		st.sent = atomic_load(&c->sent);
		st.delivered = atomic_load(&c->delivered);
		st.retried = atomic_load(&c->retried);
		st.dead = atomic_load(&c->dead);
		st.dropped = atomic_load(&c->dropped);
		st.depth = atomic_load(&c->depth);
		st.oldest_ms = atomic_load(&c->oldest_ms);
		st.in_flight = atomic_load(&c->in_flight);
		st.connects = atomic_load(&c->connects);
		st.expired = atomic_load(&c->expired);
		cb(&st, ctx);
	}
	pthread_mutex_unlock(&l->mu);
}
