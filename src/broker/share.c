/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared subscriptions (see share.h). A group is keyed by its whole share
 * name "$share/GROUP/FILTER" in a level hash table (topic.h; the key is
 * one "level" that may contain slashes) and indexed by FILTER in a
 * subscription trie of its own whose owners are the groups, so matching
 * a topic finds every group at the cost of one more trie walk. A group
 * keeps its members in subscription order with a round-robin cursor; the
 * member chosen for a message is the first available one from the
 * cursor, and the cursor moves past it. Removing a member keeps the
 * order, so the turn of the others is unchanged.
 *
 * Every group has an id, unique for the table's life, that outbound
 * messages carry (out_msg.share): when their member goes away the id
 * finds the group again, if it still exists, to give the message to
 * another member. A second level hash table keys the groups by the four
 * bytes of their id.
 *
 * Invariants: a group is in both hash tables and in the trie under its
 * FILTER exactly while it has at least one member; owners within a group
 * are distinct; next < nmem (or 0).
 */
#include <stddef.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/share.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "config.h"
#include "err.h"
#include "mem.h"

struct share_member {
	void			*owner;		/* opaque, as added */
	uint8_t			 qos;		/* granted QoS */
};

struct share_group {
	struct topic_lnode	 ln;		/* key: the share name */
	struct topic_lnode	 idln;		/* key: the bytes of id */
	struct share_member	*mem;		/* members in order */
	uint32_t		 nmem, cap;
	uint32_t		 next;		/* round-robin cursor */
	uint32_t		 id;		/* > 0, unique in the table */
	uint32_t		 filter_off;	/* FILTER's offset in key */
	char			 key[];		/* "$share/GROUP/FILTER" */
};

_Static_assert(offsetof(struct share_group, ln) == 0, "ln must come first");

struct share_tab {
	struct topic_ltab	 byname;	/* groups by share name */
	struct topic_ltab	 byid;		/* groups by id */
	struct subs		*trie;		/* FILTER -> groups */
	uint32_t		 next_id;	/* last id given */
	size_t			 count;		/* (group, member) pairs */
};

/* State of one share_tab_match() walk. */
struct share_walk {
	share_avail_cb		 avail;
	share_deliver_cb	 deliver;
	void			*ctx;
	size_t			 n;		/* deliveries made */
};

static struct share_group *share_group_find(const struct share_tab *,
			    const char *, size_t);
static struct share_group *share_group_byid(const struct share_tab *,
			    uint32_t);
static void		 share_group_free(struct share_tab *,
			    struct share_group *);
static int		 share_group_pick(struct share_group *, const void *,
			    share_avail_cb, void *, bool);
static void		 share_match_cb(void *, uint8_t, void *);

int
share_parse(const char *f, size_t len, struct share_name *sn,
    const char **why)
{
	const char *g, *slash;
	size_t glen, i;

	if (!share_is(f, len))
		return 0;
	g = f + SHARE_PREFIX_LEN;
	if ((slash = memchr(g, '/', len - SHARE_PREFIX_LEN)) == NULL) {
		if (why != NULL)
			*why = "shared subscription without a topic filter";
		return GW_EMALFORMED;
	}
	if ((glen = (size_t)(slash - g)) == 0) {
		if (why != NULL)
			*why = "shared subscription with an empty group name";
		return GW_EMALFORMED;
	}
	for (i = 0; i < glen; i++) {
		if (g[i] == '+' || g[i] == '#' || g[i] == '\0') {
			if (why != NULL)
				*why = "shared subscription group name "
				    "with a wildcard";
			return GW_EMALFORMED;
		}
	}
	if (!topic_filter_valid(slash + 1, len - SHARE_PREFIX_LEN - glen - 1)) {
		if (why != NULL)
			*why = "shared subscription with an invalid topic "
			    "filter";
		return GW_EMALFORMED;
	}
	if (sn != NULL) {
		sn->group = g;
		sn->group_len = glen;
		sn->filter = slash + 1;
		sn->filter_len = len - SHARE_PREFIX_LEN - glen - 1;
	}
	return 1;
}

bool
share_is(const char *f, size_t len)
{
	return len >= SHARE_PREFIX_LEN &&
	    memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0;
}

const char *
share_acl_filter(const char *f, size_t len, size_t *flen)
{
	struct share_name sn;

	if (share_parse(f, len, &sn, NULL) != 1) {
		*flen = len;
		return f;
	}
	*flen = sn.filter_len;
	return sn.filter;
}

struct share_tab *
share_tab_new(void)
{
	struct share_tab *t;

	if ((t = gw_calloc(1, sizeof *t)) == NULL)
		return NULL;
	if ((t->trie = subs_new()) == NULL) {
		gw_free(t);
		return NULL;
	}
	return t;
}

void
share_tab_free(struct share_tab *t)
{
	struct topic_lnode *ln, *next;
	struct share_group *g;

	if (t == NULL)
		return;
	for (ln = topic_ltab_first(&t->byname); ln != NULL; ln = next) {
		next = topic_ltab_next(&t->byname, ln);
		g = (struct share_group *)ln;
		gw_free(g->mem);
		gw_free(g);
	}
	topic_ltab_free(&t->byname);
	topic_ltab_free(&t->byid);
	subs_free(t->trie);
	gw_free(t);
}

/* The group of share name f, or NULL. */
static struct share_group *
share_group_find(const struct share_tab *t, const char *f, size_t len)
{
	return (struct share_group *)topic_ltab_find(&t->byname, f, len);
}

/* The group with id, or NULL. */
static struct share_group *
share_group_byid(const struct share_tab *t, uint32_t id)
{
	struct topic_lnode *ln;

	if ((ln = topic_ltab_find(&t->byid, (const char *)&id,
	    sizeof id)) == NULL)
		return NULL;
	return (struct share_group *)((char *)ln -
	    offsetof(struct share_group, idln));
}

/*
 * The id of the group of share name f, 0 if none: outbound.c finds the
 * subscription a shared message came through by it.
 */
uint32_t
share_tab_id(const struct share_tab *t, const char *f, size_t len)
{
	const struct share_group *g;

	if ((g = share_group_find(t, f, len)) == NULL)
		return 0;
	return g->id;
}

/* Unlinks and frees g (which has no members left). */
static void
share_group_free(struct share_tab *t, struct share_group *g)
{
	subs_remove(t->trie, g->key + g->filter_off,
	    g->ln.len - g->filter_off, g);
	topic_ltab_remove(&t->byname, &g->ln);
	topic_ltab_remove(&t->byid, &g->idln);
	gw_free(g->mem);
	gw_free(g);
}

int
share_tab_add(struct share_tab *t, const char *f, size_t len, void *owner,
    uint8_t qos, int *replaced)
{
	struct share_name sn;
	struct share_group *g;
	struct share_member *nm;
	uint32_t i, ncap;

	if (replaced != NULL)
		*replaced = 0;
	if (share_parse(f, len, &sn, NULL) != 1)
		return GW_EMALFORMED;
	if ((g = share_group_find(t, f, len)) == NULL) {
		/*
		 * Everything that can fail comes before the group is
		 * linked anywhere but the trie, which a removal restores.
		 */
		if ((g = gw_calloc(1, sizeof *g + len)) == NULL)
			return GW_ENOMEM;
		if ((g->mem = gw_malloc(2 * sizeof *g->mem)) == NULL) {
			gw_free(g);
			return GW_ENOMEM;
		}
		g->cap = 2;
		memcpy(g->key, f, len);
		topic_lnode_init(&g->ln, g->key, len);
		g->filter_off = (uint32_t)(sn.filter - f);
		if (subs_add(t->trie, sn.filter, sn.filter_len, g, 0,
		    NULL) != 0) {
			gw_free(g->mem);
			gw_free(g);
			return GW_ENOMEM;
		}
		if (++t->next_id == 0)
			t->next_id = 1;
		g->id = t->next_id;
		topic_lnode_init(&g->idln, (const char *)&g->id, sizeof g->id);
		if (topic_ltab_add(&t->byname, &g->ln) != 0) {
			subs_remove(t->trie, sn.filter, sn.filter_len, g);
			gw_free(g->mem);
			gw_free(g);
			return GW_ENOMEM;
		}
		if (topic_ltab_add(&t->byid, &g->idln) != 0) {
			topic_ltab_remove(&t->byname, &g->ln);
			subs_remove(t->trie, sn.filter, sn.filter_len, g);
			gw_free(g->mem);
			gw_free(g);
			return GW_ENOMEM;
		}
	}
	for (i = 0; i < g->nmem; i++) {
		if (g->mem[i].owner == owner) {
			g->mem[i].qos = qos;
			if (replaced != NULL)
				*replaced = 1;
			return 0;
		}
	}
	if (g->nmem == g->cap) {
		ncap = g->cap == 0 ? 2 : g->cap * 2;
		if ((nm = gw_realloc(g->mem, ncap * sizeof *nm)) == NULL)
			return GW_ENOMEM;
		g->mem = nm;
		g->cap = ncap;
	}
	g->mem[g->nmem].owner = owner;
	g->mem[g->nmem].qos = qos;
	g->nmem++;
	t->count++;
	return 0;
}

int
share_tab_remove(struct share_tab *t, const char *f, size_t len,
    void *owner)
{
	struct share_group *g;
	uint32_t i;

	if ((g = share_group_find(t, f, len)) == NULL)
		return GW_ENOTFOUND;
	for (i = 0; i < g->nmem; i++) {
		if (g->mem[i].owner == owner)
			break;
	}
	if (i == g->nmem)
		return GW_ENOTFOUND;
	memmove(&g->mem[i], &g->mem[i + 1],
	    (g->nmem - i - 1) * sizeof *g->mem);
	g->nmem--;
	t->count--;
	if (i < g->next)
		g->next--;
	if (g->next >= g->nmem)
		g->next = 0;
	if (g->nmem == 0)
		share_group_free(t, g);
	return 0;
}

size_t
share_tab_count(const struct share_tab *t)
{
	return t->count;
}

/*
 * The index of the member of g to send to, -1 if none: the first from
 * the cursor that is not except and says SHARE_NOW, else (any) the first
 * that says SHARE_LATER. Moves the cursor past the chosen one.
 */
static int
share_group_pick(struct share_group *g, const void *except,
    share_avail_cb avail, void *ctx, bool any)
{
	uint32_t k, i;
	int fallback = -1, pick = -1, a;

	for (k = 0; k < g->nmem; k++) {
		i = (g->next + k) % g->nmem;
		if (g->mem[i].owner == except)
			continue;
		a = avail == NULL ? SHARE_NOW : avail(g->mem[i].owner, ctx);
		if (a == SHARE_NOW) {
			pick = (int)i;
			break;
		}
		if (a == SHARE_LATER && fallback == -1)
			fallback = (int)i;
	}
	if (pick == -1 && any)
		pick = fallback;
	if (pick != -1)
		g->next = ((uint32_t)pick + 1) % g->nmem;
	return pick;
}

static void
share_match_cb(void *owner, uint8_t qos, void *arg)
{
	struct share_group *g = owner;
	struct share_walk *w = arg;
	int i;

	(void)qos;
	if ((i = share_group_pick(g, NULL, w->avail, w->ctx, true)) < 0)
		return;
	w->deliver(g->mem[i].owner, g->mem[i].qos, g->id, w->ctx);
	w->n++;
}

size_t
share_tab_match(struct share_tab *t, const char *topic, size_t len,
    share_avail_cb avail, share_deliver_cb deliver, void *ctx)
{
	struct share_walk w = { avail, deliver, ctx, 0 };

	if (t->count == 0)
		return 0;
	subs_match(t->trie, topic, len, share_match_cb, &w);
	return w.n;
}

int
share_tab_pick(struct share_tab *t, uint32_t id, const void *except,
    share_avail_cb avail, void *ctx, bool any, void **owner, uint8_t *qos)
{
	struct share_group *g;
	int i;

	if ((g = share_group_byid(t, id)) == NULL ||
	    (i = share_group_pick(g, except, avail, ctx, any)) < 0)
		return GW_ENOTFOUND;
	*owner = g->mem[i].owner;
	*qos = g->mem[i].qos;
	return 0;
}
