/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscription trie (see subs.h). Every node is one filter level. A
 * node's literal children sit in a level hash table (topic.h), so a node
 * with 10,000 children ("dev/<id>/temp") is still a couple of comparisons
 * per lookup; '+' and '#' children have their own pointers. The node where
 * a filter ends keeps a small vector of (owner, qos).
 *
 * Matching is a depth-first walk that needs no stack and no allocation: a
 * node at depth d has matched topic levels 0..d-1, so the topic offset of
 * level d is all the state needed besides the node. Going down follows the
 * literal child first, then '+'; going back up recovers the offset by
 * scanning back over one level, and the kind of child we came from says
 * whether the '+' branch is still to try. '#' children are leaves and are
 * reported on the way down. A topic of 30,000 empty levels therefore costs
 * time proportional to the nodes visited and no stack depth at all.
 *
 * Invariants: every node but the root has a parent and is reachable from it
 * (in kids, plus or hash according to kind); every non-root node has at
 * least one subscription or one child (subs_prune keeps it so); '#' nodes
 * have no children. Owners within one node are distinct.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "broker/subs.h"
#include "broker/topic.h"
#include "err.h"
#include "mem.h"

enum subs_kind {
	SUBS_LITERAL,
	SUBS_PLUS,
	SUBS_HASH,
};

struct subs_ent {
	void			*owner;		/* opaque, as added */
	uint8_t			 qos;		/* granted QoS */
};

struct subs_node {
	struct topic_lnode	 ln;		/* key in parent's kids */
	struct subs_node	*parent;	/* NULL for the root */
	struct topic_ltab	 kids;		/* literal children by text */
	struct subs_node	*plus;		/* '+' child or NULL */
	struct subs_node	*hash;		/* '#' child or NULL */
	struct subs_ent		*ents;		/* filters ending here */
	uint32_t		 nents;		/* used entries */
	uint32_t		 cap;		/* allocated entries */
	uint8_t			 kind;		/* enum subs_kind */
	char			 text[];	/* level text (literal nodes) */
};

/* Table entries are cast back to nodes. */
_Static_assert(offsetof(struct subs_node, ln) == 0, "ln must come first");

struct subs {
	struct subs_node	*root;		/* empty level, never pruned */
	size_t			 count;		/* (filter, owner) pairs */
};

static struct subs_node	*subs_node_new(struct subs_node *, const char *,
			    size_t);
static struct subs_node	*subs_child(const struct subs_node *, const char *,
			    size_t);
static struct subs_node	*subs_first_kid(const struct subs_node *);
static struct subs_node	*subs_next_kid(const struct subs_node *);
static struct subs_node	*subs_find(const struct subs *, const char *, size_t);
static void		 subs_prune(struct subs *, struct subs_node *);
static size_t		 subs_emit(const struct subs_node *, subs_match_cb,
			    void *);

/*
 * Returns a new trie holding only its root, or NULL.
 */
struct subs *
subs_new(void)
{
	struct subs *s;

	if ((s = gw_calloc(1, sizeof *s)) == NULL)
		return NULL;
	if ((s->root = gw_calloc(1, sizeof *s->root)) == NULL) {
		gw_free(s);
		return NULL;
	}
	topic_lnode_init(&s->root->ln, s->root->text, 0);
	return s;
}

/* First child of n in teardown order (literals, '+', '#'), or NULL. */
static struct subs_node *
subs_first_kid(const struct subs_node *n)
{
	struct subs_node *c;

	if ((c = (struct subs_node *)topic_ltab_first(&n->kids)) != NULL)
		return c;
	return n->plus != NULL ? n->plus : n->hash;
}

/* The sibling after n in teardown order, or NULL; n has a parent. */
static struct subs_node *
subs_next_kid(const struct subs_node *n)
{
	const struct subs_node *p = n->parent;
	struct subs_node *c;

	switch (n->kind) {
	case SUBS_LITERAL:
		c = (struct subs_node *)topic_ltab_next(&p->kids, &n->ln);
		if (c != NULL)
			return c;
		return p->plus != NULL ? p->plus : p->hash;
	case SUBS_PLUS:
		return p->hash;
	default:
		return NULL;
	}
}

/*
 * Frees every node in post-order without recursion or allocation: go down
 * to a leaf, free it, continue with its next sibling or, after the last,
 * with the parent. Tables are read but never changed on the way, so the
 * sibling walk stays valid and the whole teardown is linear.
 */
void
subs_free(struct subs *s)
{
	struct subs_node *n, *c, *p, *next;

	if (s == NULL)
		return;
	n = s->root;
	for (;;) {
		while ((c = subs_first_kid(n)) != NULL)
			n = c;
		for (;;) {
			/* Every child of n is freed already. */
			p = n->parent;
			next = p != NULL ? subs_next_kid(n) : NULL;
			topic_ltab_free(&n->kids);
			gw_free(n->ents);
			gw_free(n);
			if (p == NULL) {
				gw_free(s);
				return;
			}
			if (next != NULL) {
				n = next;
				break;
			}
			n = p;
		}
	}
}

/* Returns the child of n for one filter level, or NULL. */
static struct subs_node *
subs_child(const struct subs_node *n, const char *lv, size_t len)
{
	if (len == 1 && lv[0] == '+')
		return n->plus;
	if (len == 1 && lv[0] == '#')
		return n->hash;
	return (struct subs_node *)topic_ltab_find(&n->kids, lv, len);
}

/* Creates and links the child of parent for level lv; NULL on ENOMEM. */
static struct subs_node *
subs_node_new(struct subs_node *parent, const char *lv, size_t len)
{
	struct subs_node *n;

	if ((n = gw_calloc(1, sizeof *n + len)) == NULL)
		return NULL;
	n->parent = parent;
	if (len == 1 && lv[0] == '+') {
		n->kind = SUBS_PLUS;
		parent->plus = n;
	} else if (len == 1 && lv[0] == '#') {
		n->kind = SUBS_HASH;
		parent->hash = n;
	} else {
		n->kind = SUBS_LITERAL;
		memcpy(n->text, lv, len);
		topic_lnode_init(&n->ln, n->text, len);
		if (topic_ltab_add(&parent->kids, &n->ln) != 0) {
			gw_free(n);
			return NULL;
		}
	}
	return n;
}

/* Unlinks and frees n and its ancestors while they carry nothing. */
static void
subs_prune(struct subs *s, struct subs_node *n)
{
	struct subs_node *p;

	while (n != s->root && n->nents == 0 && n->kids.n == 0 &&
	    n->plus == NULL && n->hash == NULL) {
		p = n->parent;
		switch (n->kind) {
		case SUBS_PLUS:
			p->plus = NULL;
			break;
		case SUBS_HASH:
			p->hash = NULL;
			break;
		default:
			topic_ltab_remove(&p->kids, &n->ln);
			break;
		}
		gw_free(n->ents);
		gw_free(n);
		n = p;
	}
}

/* Returns the node where filter f ends, or NULL if there is none. */
static struct subs_node *
subs_find(const struct subs *s, const char *f, size_t len)
{
	struct subs_node *n = s->root;
	size_t pos = 0, le;

	for (;;) {
		le = topic_level_end(f, len, pos);
		if ((n = subs_child(n, f + pos, le - pos)) == NULL)
			return NULL;
		if (le == len)
			return n;
		pos = le + 1;
	}
}

/*
 * Adds or updates (filter, owner). Borrows filter; owner is opaque and not
 * owned. Returns 0, GW_EMALFORMED for an invalid filter or GW_ENOMEM (the
 * trie is then as before).
 */
int
subs_add(struct subs *s, const char *filter, size_t len, void *owner,
    uint8_t qos, int *replaced)
{
	struct subs_node *n = s->root, *c;
	struct subs_ent *ne;
	size_t pos = 0, le;
	uint32_t i, ncap;

	if (replaced != NULL)
		*replaced = 0;
	if (!topic_filter_valid(filter, len))
		return GW_EMALFORMED;
	for (;;) {
		le = topic_level_end(filter, len, pos);
		c = subs_child(n, filter + pos, le - pos);
		if (c == NULL &&
		    (c = subs_node_new(n, filter + pos, le - pos)) == NULL) {
			subs_prune(s, n);
			return GW_ENOMEM;
		}
		n = c;
		if (le == len)
			break;
		pos = le + 1;
	}
	for (i = 0; i < n->nents; i++) {
		if (n->ents[i].owner == owner) {
			n->ents[i].qos = qos;
			if (replaced != NULL)
				*replaced = 1;
			return 0;
		}
	}
	if (n->nents == n->cap) {
		ncap = n->cap == 0 ? 1 : n->cap * 2;
		ne = gw_realloc(n->ents, ncap * sizeof *ne);
		if (ne == NULL) {
			subs_prune(s, n);
			return GW_ENOMEM;
		}
		n->ents = ne;
		n->cap = ncap;
	}
	n->ents[n->nents].owner = owner;
	n->ents[n->nents].qos = qos;
	n->nents++;
	s->count++;
	return 0;
}

/*
 * Removes (filter, owner) and prunes the nodes left empty, so removing
 * every subscription brings the trie back to its size after subs_new().
 * Returns 0 or GW_ENOTFOUND (also for an invalid filter).
 */
int
subs_remove(struct subs *s, const char *filter, size_t len, void *owner)
{
	struct subs_node *n;
	struct subs_ent *ne;
	uint32_t i;

	if (!topic_filter_valid(filter, len) ||
	    (n = subs_find(s, filter, len)) == NULL)
		return GW_ENOTFOUND;
	for (i = 0; i < n->nents; i++) {
		if (n->ents[i].owner == owner)
			break;
	}
	if (i == n->nents)
		return GW_ENOTFOUND;
	n->ents[i] = n->ents[--n->nents];
	s->count--;
	if (n->nents == 0) {
		gw_free(n->ents);
		n->ents = NULL;
		n->cap = 0;
	} else if (n->cap >= 8 && n->nents < n->cap / 4) {
		/* Best effort: a failed shrink keeps the larger vector. */
		if ((ne = gw_realloc(n->ents, (n->cap / 2) * sizeof *ne))
		    != NULL) {
			n->ents = ne;
			n->cap /= 2;
		}
	}
	subs_prune(s, n);
	return 0;
}

/* Reports every subscription ending at n. */
static size_t
subs_emit(const struct subs_node *n, subs_match_cb cb, void *ctx)
{
	uint32_t i;

	for (i = 0; i < n->nents; i++)
		cb(n->ents[i].owner, n->ents[i].qos, ctx);
	return n->nents;
}

/*
 * Reports the subscriptions matching topic t (see the walk described at
 * the top of the file). Never allocates. cb must not change the trie.
 * Returns the number of callbacks made.
 */
size_t
subs_match(const struct subs *s, const char *t, size_t len, subs_match_cb cb,
    void *ctx)
{
	const struct subs_node *root = s->root, *n = root;
	const struct topic_lnode *ln;
	size_t pos = 0, le, calls = 0;
	bool dollar;
	enum { ARRIVE, TRY_PLUS, UP } step = ARRIVE;

	if (len == 0 || len > TOPIC_MAX_LEN)
		return 0;
	dollar = t[0] == '$';
	for (;;) {
		switch (step) {
		case ARRIVE:
			if (pos > len) {
				/* Topic used up: filters ending here, and
				 * "x/#" which also matches "x". */
				calls += subs_emit(n, cb, ctx);
				if (n->hash != NULL)
					calls += subs_emit(n->hash, cb, ctx);
				step = UP;
				break;
			}
			if (n->hash != NULL && (n != root || !dollar))
				calls += subs_emit(n->hash, cb, ctx);
			le = topic_level_end(t, len, pos);
			ln = topic_ltab_find(&n->kids, t + pos, le - pos);
			if (ln != NULL) {
				n = (const struct subs_node *)ln;
				pos = le + 1;
			} else
				step = TRY_PLUS;
			break;
		case TRY_PLUS:
			step = UP;
			if (n->plus != NULL && (n != root || !dollar)) {
				pos = topic_level_end(t, len, pos) + 1;
				n = n->plus;
				step = ARRIVE;
			}
			break;
		case UP:
			if (n == root)
				return calls;
			pos = topic_level_prev(t, pos);
			step = n->kind == SUBS_LITERAL ? TRY_PLUS : UP;
			n = n->parent;
			break;
		}
	}
}

/*
 * Number of (filter, owner) pairs stored.
 */
size_t
subs_count(const struct subs *s)
{
	return s->count;
}
