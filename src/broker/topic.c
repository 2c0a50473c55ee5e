/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic name and filter rules (see topic.h) and the level hash table the
 * tries use for their children.
 *
 * topic_matches() is the reference matcher: a plain level-by-level walk of
 * filter and topic together. The tries (subs.c, retain.c) must give the same
 * answers; the unit tests check all three against one table.
 *
 * The level table chains nodes in a power-of-two bucket array. Level text is
 * hashed with the keyed hash of keyhash.h: its low bits, used as the bucket
 * index, depend on every byte, and a client cannot pick levels that all
 * land in one bucket.
 */
#include <string.h>

#include "broker/topic.h"
#include "err.h"
#include "keyhash.h"
#include "mem.h"

#define LTAB_MIN	4	/* first bucket array */

static uint32_t	topic_level_hash(const char *s, size_t len);
static void	topic_ltab_resize(struct topic_ltab *t, uint32_t nb);
static void	topic_ltab_unlink(struct topic_ltab *t, struct topic_lnode *ln);

/*
 * A topic name: 1..65535 bytes, no wildcard characters, no NUL.
 */
bool
topic_name_valid(const char *t, size_t len)
{
	size_t i;

	if (len == 0 || len > TOPIC_MAX_LEN)
		return false;
	for (i = 0; i < len; i++) {
		if (t[i] == '+' || t[i] == '#' || t[i] == '\0')
			return false;
	}
	return true;
}

/*
 * A filter: 1..65535 bytes, no NUL; '+' and '#' only as a whole level, '#'
 * only in the last level.
 */
bool
topic_filter_valid(const char *f, size_t len)
{
	size_t i, start = 0;

	if (len == 0 || len > TOPIC_MAX_LEN)
		return false;
	for (i = 0; i < len; i++) {
		switch (f[i]) {
		case '\0':
			return false;
		case '/':
			start = i + 1;
			break;
		case '+':
			if (i != start || (i + 1 < len && f[i + 1] != '/'))
				return false;
			break;
		case '#':
			if (i != start || i + 1 != len)
				return false;
			break;
		}
	}
	return true;
}

/*
 * Walks filter and topic one level at a time. A '#' level matches whatever
 * is left of the topic, including nothing (so "a/#" matches "a"); '+'
 * matches exactly one level, which may be empty.
 */
bool
topic_matches(const char *f, size_t flen, const char *t, size_t tlen)
{
	size_t fp = 0, tp = 0, fe, te;
	const char *s;
	bool tdone = false;

	if (flen == 0 || tlen == 0)
		return false;
	if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	for (;;) {
		s = memchr(f + fp, '/', flen - fp);
		fe = s != NULL ? (size_t)(s - f) : flen;
		if (fe - fp == 1 && f[fp] == '#')
			return true;
		if (tdone)
			return false;
		s = memchr(t + tp, '/', tlen - tp);
		te = s != NULL ? (size_t)(s - t) : tlen;
		if (!(fe - fp == 1 && f[fp] == '+')) {
			if (fe - fp != te - tp ||
			    memcmp(f + fp, t + tp, fe - fp) != 0)
				return false;
		}
		if (fe == flen)
			return te == tlen;
		fp = fe + 1;
		if (te == tlen)
			tdone = true;
		else
			tp = te + 1;
	}
}

/*
 * End of the level starting at pos: the index of the next '/' or len.
 */
size_t
topic_level_end(const char *s, size_t len, size_t pos)
{
	const char *e;

	e = memchr(s + pos, '/', len - pos);
	return e != NULL ? (size_t)(e - s) : len;
}

/*
 * Start of the level before the one starting at pos (pos >= 1). The level
 * before ends at pos - 1, which is the '/' or, for pos == len + 1, len.
 */
size_t
topic_level_prev(const char *s, size_t pos)
{
	size_t i = pos - 1;

	while (i > 0 && s[i - 1] != '/')
		i--;
	return i;
}

static uint32_t
topic_level_hash(const char *s, size_t len)
{
	return (uint32_t)keyhash(s, len);
}

/*
 * Initialises a node's key; text is borrowed (normally the node's own copy).
 */
void
topic_lnode_init(struct topic_lnode *ln, const char *text, size_t len)
{
	ln->next = NULL;
	ln->text = text;
	ln->len = (uint32_t)len;
	ln->hash = topic_level_hash(text, len);
}

/*
 * Looks up level (s, len). Returns the linked node or NULL.
 */
struct topic_lnode *
topic_ltab_find(const struct topic_ltab *t, const char *s, size_t len)
{
	struct topic_lnode *ln;
	uint32_t h;

	if (t->n == 0)
		return NULL;
	h = topic_level_hash(s, len);
	for (ln = t->b[h & (t->nb - 1)]; ln != NULL; ln = ln->next) {
		if (ln->hash == h && ln->len == len &&
		    memcmp(ln->text, s, len) == 0)
			return ln;
	}
	return NULL;
}

/* Rehashes into nb buckets; keeps the old array when allocation fails. */
static void
topic_ltab_resize(struct topic_ltab *t, uint32_t nb)
{
	struct topic_lnode **nbk, *ln, *next;
	uint32_t i;

	if ((nbk = gw_calloc(nb, sizeof *nbk)) == NULL)
		return;
	for (i = 0; i < t->nb; i++) {
		for (ln = t->b[i]; ln != NULL; ln = next) {
			next = ln->next;
			ln->next = nbk[ln->hash & (nb - 1)];
			nbk[ln->hash & (nb - 1)] = ln;
		}
	}
	gw_free(t->b);
	t->b = nbk;
	t->nb = nb;
}

/*
 * Links ln at the head of its bucket, growing the array past load 1.
 * Returns 0, or GW_ENOMEM when there is no bucket array and none can be made.
 */
int
topic_ltab_add(struct topic_ltab *t, struct topic_lnode *ln)
{
	uint32_t i;

	if (t->nb == 0) {
		if ((t->b = gw_calloc(LTAB_MIN, sizeof *t->b)) == NULL)
			return GW_ENOMEM;
		t->nb = LTAB_MIN;
	} else if (t->n >= t->nb && t->nb <= UINT32_MAX / 2)
		topic_ltab_resize(t, t->nb * 2);
	i = ln->hash & (t->nb - 1);
	ln->next = t->b[i];
	t->b[i] = ln;
	t->n++;
	return 0;
}

/* Unlinks ln from its bucket chain; ln must be linked in t. */
static void
topic_ltab_unlink(struct topic_ltab *t, struct topic_lnode *ln)
{
	struct topic_lnode **pp;

	pp = &t->b[ln->hash & (t->nb - 1)];
	while (*pp != ln)
		pp = &(*pp)->next;
	*pp = ln->next;
	ln->next = NULL;
	t->n--;
}

/*
 * Unlinks ln; frees the bucket array when the table empties and halves it
 * when it falls under a quarter full (best effort).
 */
void
topic_ltab_remove(struct topic_ltab *t, struct topic_lnode *ln)
{
	topic_ltab_unlink(t, ln);
	if (t->n == 0)
		topic_ltab_free(t);
	else if (t->nb > LTAB_MIN && t->n < t->nb / 4)
		topic_ltab_resize(t, t->nb / 2);
}

/*
 * Returns the first node in bucket order, NULL when empty.
 */
struct topic_lnode *
topic_ltab_first(const struct topic_ltab *t)
{
	uint32_t i;

	if (t->n == 0)
		return NULL;
	for (i = 0; i < t->nb; i++) {
		if (t->b[i] != NULL)
			return t->b[i];
	}
	return NULL;
}

/*
 * Returns the node after ln in bucket order, NULL after the last.
 */
struct topic_lnode *
topic_ltab_next(const struct topic_ltab *t, const struct topic_lnode *ln)
{
	uint32_t i;

	if (ln->next != NULL)
		return ln->next;
	for (i = (ln->hash & (t->nb - 1)) + 1; i < t->nb; i++) {
		if (t->b[i] != NULL)
			return t->b[i];
	}
	return NULL;
}

/*
 * Frees the bucket array; the nodes are the caller's.
 */
void
topic_ltab_free(struct topic_ltab *t)
{
	gw_free(t->b);
	t->b = NULL;
	t->nb = 0;
	t->n = 0;
}

size_t
topic_levels(const char *s, size_t len)
{
	size_t i, n = 1;

	for (i = 0; i < len; i++)
		n += s[i] == '/';
	return n;
}
