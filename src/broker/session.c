/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sessions and their bounded collections; see session.h. The table is a
 * chained hash on the client id (keyed SipHash, keyhash.h) that doubles
 * when its load passes one entry per bucket.
 */
#include <string.h>

#include "broker/msg.h"
#include "broker/session.h"
#include "err.h"
#include "keyhash.h"
#include "mem.h"

struct session_table {
	struct session	**buckets;
	size_t		  nbuckets;
	size_t		  count;
};

static uint64_t
session_hash(const char *id, size_t len)
{
	return keyhash(id, len);
}

struct session_table *
session_table_new(void)
{
	struct session_table *t;

	if ((t = gw_calloc(1, sizeof *t)) == NULL)
		return NULL;
	t->nbuckets = 64;
	if ((t->buckets = gw_calloc(t->nbuckets, sizeof *t->buckets)) == NULL) {
		gw_free(t);
		return NULL;
	}
	return t;
}

void
session_table_free(struct session_table *t)
{
	if (t == NULL)
		return;
	gw_free(t->buckets);
	gw_free(t);
}

struct session *
session_find(struct session_table *t, const char *id, size_t len)
{
	struct session *s;

	s = t->buckets[session_hash(id, len) & (t->nbuckets - 1)];
	for (; s != NULL; s = s->hnext)
		if (s->id_len == len && memcmp(s->client_id, id, len) == 0)
			return s;
	return NULL;
}

static void
session_table_grow(struct session_table *t)
{
	struct session **nb, *s, *next;
	size_t n = t->nbuckets * 2, i, h;

	if ((nb = gw_calloc(n, sizeof *nb)) == NULL)
		return;		/* keep working with longer chains */
	for (i = 0; i < t->nbuckets; i++) {
		for (s = t->buckets[i]; s != NULL; s = next) {
			next = s->hnext;
			h = session_hash(s->client_id, s->id_len) & (n - 1);
			s->hnext = nb[h];
			nb[h] = s;
		}
	}
	gw_free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

struct session *
session_create(struct session_table *t, const char *id, size_t len,
    bool clean)
{
	struct session *s;
	size_t h;

	if ((s = gw_calloc(1, sizeof *s)) == NULL)
		return NULL;
	if ((s->client_id = gw_strndup(id, len)) == NULL) {
		gw_free(s);
		return NULL;
	}
	s->id_len = (uint16_t)len;
	s->clean = clean;
	s->expiry_s = clean ? 0 : SESSION_EXPIRY_LIMIT;
	s->version = 4;
	s->next_pid = 1;
	if (t->count >= t->nbuckets)
		session_table_grow(t);
	h = session_hash(id, len) & (t->nbuckets - 1);
	s->hnext = t->buckets[h];
	t->buckets[h] = s;
	t->count++;
	return s;
}

void
session_destroy(struct session_table *t, struct session *s)
{
	struct session **pp;
	struct out_msg o;
	size_t i;

	pp = &t->buckets[session_hash(s->client_id, s->id_len) &
	    (t->nbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			t->count--;
			break;
		}
	}
	for (i = 0; i < s->nsubs; i++)
		gw_free(s->subs[i].filter);
	gw_free(s->subs);
	gw_free(s->subidx);
	gw_free(s->ids);
	for (i = 0; i < s->ninflight; i++)
		msg_unref(&s->inflight[i].m);
	gw_free(s->inflight);
	while (session_queue_pop(s, &o))
		msg_unref(&o.m);
	gw_free(s->queue);
	gw_free(s->qos2_in);
	msg_unref(&s->will);
	gw_free(s->username);
	gw_free(s->client_id);
	gw_free(s);
}

size_t
session_count(const struct session_table *t)
{
	return t->count;
}

void
session_foreach(struct session_table *t, void (*fn)(struct session *, void *),
    void *arg)
{
	struct session *s, *next;
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		for (s = t->buckets[i]; s != NULL; s = next) {
			next = s->hnext;
			fn(s, arg);
		}
	}
}

/*
 * A session's filters are found through an open-addressing index beside the
 * vector: slots hold (position in s->subs) + 1, 0 is empty, probing is
 * linear from the filter's keyed hash and deletion shifts the following run
 * back, so no tombstones build up. The table is at most half full, so a
 * lookup costs a probe or two whatever the number of filters: a SUBSCRIBE
 * flood at limits.max_subscriptions does not scan the whole list per filter.
 */

/* Slot holding s->subs[i] in the index. */
static size_t
sub_slot_of(const struct session *s, size_t i)
{
	size_t mask = s->subidx_cap - 1, j;

	for (j = s->subs[i].hash & mask; s->subidx[j] != i + 1;
	    j = (j + 1) & mask)
		;
	return j;
}

/* Records s->subs[i] in the index (which has a free slot). */
static void
sub_slot_put(struct session *s, size_t i)
{
	size_t mask = s->subidx_cap - 1, j;

	for (j = s->subs[i].hash & mask; s->subidx[j] != 0;
	    j = (j + 1) & mask)
		;
	s->subidx[j] = (uint32_t)(i + 1);
}

/* Empties slot j and moves back the entries probing past it. */
static void
sub_slot_del(struct session *s, size_t j)
{
	size_t mask = s->subidx_cap - 1, k, home;

	s->subidx[j] = 0;
	for (k = (j + 1) & mask; s->subidx[k] != 0; k = (k + 1) & mask) {
		home = s->subs[s->subidx[k] - 1].hash & mask;
		/* Entry at k may move to j unless its home lies in (j, k]. */
		if (j <= k ? (home > j && home <= k) :
		    (home > j || home <= k))
			continue;
		s->subidx[j] = s->subidx[k];
		s->subidx[k] = 0;
		j = k;
	}
}

/* Makes room for one more filter in the index: 0 or GW_ENOMEM. */
static int
sub_index_reserve(struct session *s)
{
	uint32_t *old = s->subidx;
	size_t cap, i;

	if ((s->nsubs + 1) * 2 <= s->subidx_cap)
		return 0;
	cap = s->subidx_cap ? s->subidx_cap * 2 : 8;
	if ((s->subidx = gw_calloc(cap, sizeof *s->subidx)) == NULL) {
		s->subidx = old;
		return GW_ENOMEM;
	}
	gw_free(old);
	s->subidx_cap = cap;
	for (i = 0; i < s->nsubs; i++)
		sub_slot_put(s, i);
	return 0;
}

/* Index of filter f (hash h) in s->subs, or s->nsubs when absent. */
static size_t
sub_index(const struct session *s, const char *f, size_t len, uint64_t h)
{
	const struct sub_entry *e;
	size_t mask = s->subidx_cap - 1, j;

	if (s->subidx_cap == 0)
		return s->nsubs;
	for (j = h & mask; s->subidx[j] != 0; j = (j + 1) & mask) {
		e = &s->subs[s->subidx[j] - 1];
		if (e->hash == h && e->len == len &&
		    memcmp(e->filter, f, len) == 0)
			return s->subidx[j] - 1;
	}
	return s->nsubs;
}

bool
session_sub_has(const struct session *s, const char *f, size_t len)
{
	return sub_index(s, f, len, keyhash(f, len)) < s->nsubs;
}

int
session_sub_set(struct session *s, const char *f, size_t len, uint8_t qos,
    uint32_t id)
{
	struct sub_entry *ns;
	uint64_t h = keyhash(f, len);
	size_t i, n;

	if ((i = sub_index(s, f, len, h)) < s->nsubs) {
		s->nsub_ids -= s->subs[i].id != 0;
		s->nsub_ids += id != 0;
		s->subs[i].qos = qos;
		s->subs[i].id = id;
		return 0;
	}
	if (sub_index_reserve(s) != 0)
		return GW_ENOMEM;
	if (s->nsubs == s->capsubs) {
		n = s->capsubs ? s->capsubs * 2 : 4;
		if ((ns = gw_realloc(s->subs, n * sizeof *ns)) == NULL)
			return GW_ENOMEM;
		s->subs = ns;
		s->capsubs = n;
	}
	if ((s->subs[s->nsubs].filter = gw_strndup(f, len)) == NULL)
		return GW_ENOMEM;
	s->subs[s->nsubs].hash = h;
	s->subs[s->nsubs].len = (uint16_t)len;
	s->subs[s->nsubs].qos = qos;
	s->subs[s->nsubs].id = id;
	s->nsub_ids += id != 0;
	sub_slot_put(s, s->nsubs);
	s->nsubs++;
	return 0;
}

int
session_sub_remove(struct session *s, const char *f, size_t len)
{
	size_t i, last;

	if ((i = sub_index(s, f, len, keyhash(f, len))) == s->nsubs)
		return GW_ENOTFOUND;
	sub_slot_del(s, sub_slot_of(s, i));
	last = s->nsubs - 1;
	if (i != last)
		s->subidx[sub_slot_of(s, last)] = (uint32_t)(i + 1);
	gw_free(s->subs[i].filter);
	s->nsub_ids -= s->subs[i].id != 0;
	s->subs[i] = s->subs[last];
	s->nsubs--;
	return 0;
}

bool
session_qos2_has(const struct session *s, uint16_t pid)
{
	return s->qos2_in != NULL &&
	    (s->qos2_in[pid >> 3] & (1u << (pid & 7))) != 0;
}

int
session_qos2_add(struct session *s, uint16_t pid)
{
	if (s->qos2_in == NULL &&
	    (s->qos2_in = gw_calloc(65536 / 8, 1)) == NULL)
		return GW_ENOMEM;
	if (!session_qos2_has(s, pid)) {
		s->qos2_in[pid >> 3] |= (uint8_t)(1u << (pid & 7));
		s->qos2_in_count++;
	}
	return 0;
}

void
session_qos2_del(struct session *s, uint16_t pid)
{
	if (!session_qos2_has(s, pid))
		return;
	s->qos2_in[pid >> 3] &= (uint8_t)~(1u << (pid & 7));
	if (--s->qos2_in_count == 0) {
		gw_free(s->qos2_in);
		s->qos2_in = NULL;
	}
}

void
session_qos2_clear(struct session *s)
{
	gw_free(s->qos2_in);
	s->qos2_in = NULL;
	s->qos2_in_count = 0;
}

int
session_queue_push(struct session *s, const struct out_msg *o, size_t cap)
{
	struct out_msg *nq;
	size_t n, i;

	if (s->qlen >= cap)
		return GW_EFULL;
	if (s->qlen == s->qcap) {
		n = s->qcap ? s->qcap * 2 : 8;
		if (n > cap)
			n = cap;
		if ((nq = gw_malloc(n * sizeof *nq)) == NULL)
			return GW_ENOMEM;
		for (i = 0; i < s->qlen; i++)
			nq[i] = s->queue[(s->qhead + i) % s->qcap];
		gw_free(s->queue);
		s->queue = nq;
		s->qcap = n;
		s->qhead = 0;
	}
	s->queue[(s->qhead + s->qlen) % s->qcap] = *o;
	s->qlen++;
	return 0;
}

const struct out_msg *
session_queue_peek(const struct session *s)
{
	return s->qlen > 0 ? &s->queue[s->qhead] : NULL;
}

bool
session_queue_pop(struct session *s, struct out_msg *o)
{
	if (s->qlen == 0)
		return false;
	*o = s->queue[s->qhead];
	s->qhead = (s->qhead + 1) % s->qcap;
	if (--s->qlen == 0) {
		s->qhead = 0;
		if (s->qcap > 64) {
			gw_free(s->queue);
			s->queue = NULL;
			s->qcap = 0;
		}
	}
	return true;
}

int
session_inflight_add(struct session *s, const struct out_msg *o, size_t cap)
{
	if (s->inflight == NULL) {
		if ((s->inflight = gw_malloc(cap * sizeof *s->inflight)) ==
		    NULL)
			return GW_ENOMEM;
		s->capinflight = cap;
	}
	if (s->ninflight >= s->capinflight)
		return GW_EFULL;
	s->inflight[s->ninflight++] = *o;
	if (o->resend)
		s->nresend++;
	return 0;
}

struct out_msg *
session_inflight_find(struct session *s, uint16_t pid)
{
	size_t i;

	for (i = 0; i < s->ninflight; i++)
		if (s->inflight[i].pid == pid)
			return &s->inflight[i];
	return NULL;
}

void
session_inflight_remove(struct session *s, struct out_msg *o)
{
	size_t i = (size_t)(o - s->inflight);

	if (o->resend)
		s->nresend--;
	msg_unref(&o->m);
	memmove(&s->inflight[i], &s->inflight[i + 1],
	    (s->ninflight - i - 1) * sizeof *o);
	s->ninflight--;
}

uint16_t
session_next_pid(struct session *s)
{
	uint16_t pid;
	unsigned tries;

	for (tries = 0; tries < 65536; tries++) {
		pid = s->next_pid++;
		if (s->next_pid == 0)
			s->next_pid = 1;
		if (pid != 0 && session_inflight_find(s, pid) == NULL)
			return pid;
	}
	return 0;
}
