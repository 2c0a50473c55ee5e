/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The retained-message trie (see retain.h). Topic names have no wildcards,
 * so every node is a literal level; children sit in a level hash table
 * (topic.h) and each node may hold one message, on which the trie owns a
 * reference.
 *
 * A filter lookup walks the trie depth-first without a stack: a node at
 * depth d has matched filter levels 0..d-1, so the offset of filter level d
 * is the only state besides the node. A literal level descends into one
 * child; '+' iterates the children in table order (the next sibling is
 * found from the child's own bucket, so coming back up needs no saved
 * position); '#' reports the node itself ("a/#" matches "a") and its whole
 * subtree, walked the same stackless way. At the root, wildcards skip
 * children whose level starts with '$'.
 *
 * Messages carrying a Message Expiry Interval are also kept in a binary
 * min-heap (heap.h) of their nodes, keyed by expire_ms (each node's hidx
 * is its slot), so the broker's sweep (retain_sweep.c) finds the next one
 * to expire in O(1) and removes it in O(log n) without walking the trie,
 * and a store without such messages (every 3.1.1 one) has an empty heap
 * and costs nothing.
 *
 * Invariants: every non-root node holds a message or has children (pruned
 * otherwise); count and bytes sum the messages held; a node is in the heap
 * (hidx != 0) exactly when its message carries an expiry.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/topic.h"
#include "err.h"
#include "heap.h"
#include "mem.h"

struct retain_node {
	struct topic_lnode	 ln;		/* key in parent's kids */
	struct retain_node	*parent;	/* NULL for the root */
	size_t			 hidx;		/* slot + 1 in the expiry
						 * heap, 0 = not in it */
	struct topic_ltab	 kids;		/* children by level text */
	struct msg		*msg;		/* retained here (owned ref) */
	char			 text[];	/* level text */
};

/* Table entries are cast back to nodes. */
_Static_assert(offsetof(struct retain_node, ln) == 0, "ln must come first");

struct retain {
	struct retain_node	*root;		/* empty level, holds no msg */
	size_t			 count;		/* messages held */
	size_t			 bytes;		/* their payload bytes */
	struct heap		 expiring;	/* nodes whose message expires,
						 * earliest first */
};

static struct retain_node	*retain_first(const struct retain *,
				    const struct retain_node *);
static struct retain_node	*retain_next(const struct retain *,
				    const struct retain_node *);
static void			 retain_prune(struct retain *,
				    struct retain_node *);
static bool			 retain_expires(const struct msg *);
static bool			 retain_heap_less(const void *,
				    const void *);
static size_t			 retain_subtree(const struct retain *,
				    const struct retain_node *, retain_cb,
				    void *);

/*
 * Returns a new empty store, or NULL.
 */
struct retain *
retain_new(void)
{
	struct retain *r;

	if ((r = gw_calloc(1, sizeof *r)) == NULL)
		return NULL;
	if ((r->root = gw_calloc(1, sizeof *r->root)) == NULL) {
		gw_free(r);
		return NULL;
	}
	topic_lnode_init(&r->root->ln, r->root->text, 0);
	heap_init(&r->expiring, retain_heap_less,
	    offsetof(struct retain_node, hidx));
	return r;
}

/*
 * Drops every reference and frees the trie in post-order, without
 * recursion or allocation (as subs_free: tables are only read on the way,
 * so each sibling step is valid and the teardown is linear). Accepts NULL.
 */
void
retain_free(struct retain *r)
{
	struct retain_node *n, *c, *p, *next;

	if (r == NULL)
		return;
	n = r->root;
	for (;;) {
		while ((c = (struct retain_node *)topic_ltab_first(&n->kids))
		    != NULL)
			n = c;
		for (;;) {
			p = n->parent;
			next = p == NULL ? NULL : (struct retain_node *)
			    topic_ltab_next(&p->kids, &n->ln);
			topic_ltab_free(&n->kids);
			msg_unref(&n->msg);
			gw_free(n);
			if (p == NULL) {
				heap_free(&r->expiring);
				gw_free(r);
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

/* Unlinks and frees n and its ancestors while they hold nothing. */
static void
retain_prune(struct retain *r, struct retain_node *n)
{
	struct retain_node *p;

	while (n != r->root && n->msg == NULL && n->kids.n == 0) {
		p = n->parent;
		topic_ltab_remove(&p->kids, &n->ln);
		gw_free(n);
		n = p;
	}
}

/* Whether m goes into the expiry heap (as msg_expired() reads it). */
static bool
retain_expires(const struct msg *m)
{
	return m->props != NULL && m->expire_ms != 0;
}

/* Expiring retained messages order by expiry. */
static bool
retain_heap_less(const void *a, const void *b)
{
	return ((const struct retain_node *)a)->msg->expire_ms <
	    ((const struct retain_node *)b)->msg->expire_ms;
}

/*
 * Stores m (taking a new reference) or, for an empty payload, deletes the
 * topic. Returns 0, GW_EMALFORMED when m->topic is not a valid topic name,
 * or GW_ENOMEM (nothing changed).
 */
int
retain_set(struct retain *r, struct msg *m)
{
	struct retain_node *n = r->root, *c;
	const char *t = m->topic;
	size_t len = m->topic_len, pos = 0, le;
	bool del = m->payload_len == 0;

	if (!topic_name_valid(t, len))
		return GW_EMALFORMED;
	/* Before any change, so a failure leaves the trie as it was. */
	if (!del && retain_expires(m) && heap_reserve(&r->expiring, 1) != 0)
		return GW_ENOMEM;
	for (;;) {
		le = topic_level_end(t, len, pos);
		c = (struct retain_node *)topic_ltab_find(&n->kids, t + pos,
		    le - pos);
		if (c == NULL) {
			if (del)
				return 0;
			c = gw_calloc(1, sizeof *c + (le - pos));
			if (c == NULL) {
				retain_prune(r, n);
				return GW_ENOMEM;
			}
			c->parent = n;
			memcpy(c->text, t + pos, le - pos);
			topic_lnode_init(&c->ln, c->text, le - pos);
			if (topic_ltab_add(&n->kids, &c->ln) != 0) {
				gw_free(c);
				retain_prune(r, n);
				return GW_ENOMEM;
			}
		}
		n = c;
		if (le == len)
			break;
		pos = le + 1;
	}
	if (n->msg != NULL) {
		if (n->hidx != 0)
			heap_remove(&r->expiring, n);
		r->count--;
		r->bytes -= n->msg->payload_len;
		msg_unref(&n->msg);
	}
	if (del) {
		retain_prune(r, n);
		return 0;
	}
	n->msg = msg_ref(m);
	r->count++;
	r->bytes += m->payload_len;
	/* Cannot fail: room was reserved above. */
	if (retain_expires(m))
		(void)heap_push(&r->expiring, n);
	return 0;
}

/* Whether wildcards skip child c: a '$' level right under the root. */
static bool
retain_skip(const struct retain *r, const struct retain_node *c)
{
	return c->parent == r->root && c->ln.len > 0 && c->text[0] == '$';
}

/* First child of n a wildcard may visit, or NULL. */
static struct retain_node *
retain_first(const struct retain *r, const struct retain_node *n)
{
	struct retain_node *c;

	c = (struct retain_node *)topic_ltab_first(&n->kids);
	while (c != NULL && retain_skip(r, c))
		c = (struct retain_node *)topic_ltab_next(&n->kids, &c->ln);
	return c;
}

/* Next sibling of c a wildcard may visit, or NULL. */
static struct retain_node *
retain_next(const struct retain *r, const struct retain_node *c)
{
	const struct topic_ltab *kids = &c->parent->kids;

	do
		c = (struct retain_node *)topic_ltab_next(kids, &c->ln);
	while (c != NULL && retain_skip(r, c));
	return (struct retain_node *)c;
}

/* Reports top and every message below it, in pre-order. */
static size_t
retain_subtree(const struct retain *r, const struct retain_node *top,
    retain_cb cb, void *ctx)
{
	const struct retain_node *n = top, *c;
	size_t calls = 0;

	for (;;) {
		if (n->msg != NULL) {
			cb(n->msg, ctx);
			calls++;
		}
		if ((c = retain_first(r, n)) != NULL) {
			n = c;
			continue;
		}
		for (;;) {
			if (n == top)
				return calls;
			if ((c = retain_next(r, n)) != NULL)
				break;
			n = n->parent;
		}
		n = c;
	}
}

/*
 * Reports each retained message matching filter (see the walk at the top
 * of the file). Never allocates; cb must not change the store. An invalid
 * filter matches nothing. Returns the number of callbacks made.
 */
size_t
retain_match(const struct retain *r, const char *filter, size_t len,
    retain_cb cb, void *ctx)
{
	const struct retain_node *n = r->root, *c;
	size_t pos = 0, ppos, le, calls = 0;
	bool up = false;

	if (!topic_filter_valid(filter, len))
		return 0;
	for (;;) {
		if (!up) {
			if (pos > len) {
				/* Filter used up: the topic ending here. */
				if (n->msg != NULL) {
					cb(n->msg, ctx);
					calls++;
				}
				up = true;
				continue;
			}
			le = topic_level_end(filter, len, pos);
			if (le - pos == 1 && filter[pos] == '#') {
				calls += retain_subtree(r, n, cb, ctx);
				up = true;
			} else if (le - pos == 1 && filter[pos] == '+') {
				if ((c = retain_first(r, n)) != NULL) {
					n = c;
					pos = le + 1;
				} else
					up = true;
			} else {
				c = (const struct retain_node *)topic_ltab_find(
				    &n->kids, filter + pos, le - pos);
				if (c != NULL) {
					n = c;
					pos = le + 1;
				} else
					up = true;
			}
			continue;
		}
		if (n == r->root)
			return calls;
		/* Back to the parent; under '+' try the next sibling. */
		ppos = topic_level_prev(filter, pos);
		if (ppos < len && filter[ppos] == '+' &&
		    (c = retain_next(r, n)) != NULL) {
			n = c;
			up = false;
			continue;
		}
		n = n->parent;
		pos = ppos;
	}
}

/*
 * Number of retained messages.
 */
size_t
retain_count(const struct retain *r)
{
	return r->count;
}

/*
 * Sum of the payload sizes of the retained messages.
 */
size_t
retain_bytes(const struct retain *r)
{
	return r->bytes;
}

/*
 * Number of retained messages carrying a Message Expiry Interval.
 */
size_t
retain_expiring(const struct retain *r)
{
	return heap_count(&r->expiring);
}

/*
 * The retained message whose Message Expiry Interval ends first
 * (borrowed), or NULL when none carries one. O(1).
 */
struct msg *
retain_next_expiring(const struct retain *r)
{
	struct retain_node *n = heap_peek(&r->expiring);

	return n != NULL ? n->msg : NULL;
}

/*
 * Returns the message retained under exactly topic t (borrowed), or NULL.
 */
const struct msg *
retain_get(const struct retain *r, const char *t, size_t len)
{
	const struct retain_node *n = r->root;
	size_t pos = 0, le;

	for (;;) {
		le = topic_level_end(t, len, pos);
		n = (const struct retain_node *)topic_ltab_find(&n->kids,
		    t + pos, le - pos);
		if (n == NULL)
			return NULL;
		if (le == len)
			return n->msg;
		pos = le + 1;
	}
}

/*
 * Removes the topic of m when it still holds m (see retain.h), pruning
 * the nodes left empty.
 */
bool
retain_remove(struct retain *r, const struct msg *m)
{
	struct retain_node *n = r->root;
	size_t pos = 0, le;

	for (;;) {
		le = topic_level_end(m->topic, m->topic_len, pos);
		n = (struct retain_node *)topic_ltab_find(&n->kids,
		    m->topic + pos, le - pos);
		if (n == NULL)
			return false;
		if (le == m->topic_len)
			break;
		pos = le + 1;
	}
	if (n->msg != m)
		return false;
	if (n->hidx != 0)
		heap_remove(&r->expiring, n);
	r->count--;
	r->bytes -= n->msg->payload_len;
	msg_unref(&n->msg);
	retain_prune(r, n);
	return true;
}
