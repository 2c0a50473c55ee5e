/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic names and filters (MQTT 3.1.1 section 4.7). The rules, written down:
 *  - a topic name is non-empty, at most 65535 bytes, and has no '+' or '#';
 *  - a filter is non-empty; '#' only as the whole last level; '+' only as a
 *    whole level; levels may be empty ("a//b", "/a");
 *  - "a/#" also matches "a" (the parent level);
 *  - a filter starting with '+' or '#' does not match a topic starting
 *    with '$'; "$SYS/#" does.
 * UTF-8 validity is checked by the codec, not here; a NUL byte is refused
 * here as well, since topics are kept NUL-terminated.
 *
 * Also here: the level hash table shared by the subscription and retained
 * tries (subs.c, retain.c), so both key their children the same way.
 */
#ifndef GW_TOPIC_H
#define GW_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOPIC_MAX_LEN	65535
#define TOPIC_MAX_LEVELS 200	/* levels of a filter or retained topic */

bool	topic_name_valid(const char *t, size_t len);
bool	topic_filter_valid(const char *f, size_t len);

/* Number of levels of a name or filter (slashes + 1). */
size_t	topic_levels(const char *s, size_t len);

/* Reference matcher: does filter f match topic name t? (Both valid.) */
bool	topic_matches(const char *f, size_t flen, const char *t, size_t tlen);

/*
 * Level cursors for walking a name or filter of len bytes without copying.
 * A string with k slashes has k + 1 levels. topic_level_end() returns the
 * end (the '/' or len) of the level starting at pos (pos <= len). For the
 * start pos of a level after the first, or len + 1 meaning "past the last
 * level", topic_level_prev() returns the start of the level before it.
 */
size_t		 topic_level_end(const char *s, size_t len, size_t pos);
size_t		 topic_level_prev(const char *s, size_t pos);

/*
 * Intrusive hash table of topic levels. A trie node embeds a struct
 * topic_lnode (as its first member) whose text points at the node's own
 * copy of the level; the table never allocates or frees nodes, only its
 * bucket array. Chains keep lookups short; the table grows at load 1 and
 * shrinks when a quarter full, so a node with 10,000 children costs a few
 * comparisons per lookup and an emptied table returns its memory.
 */
struct topic_lnode {
	struct topic_lnode	*next;	/* next node in the same bucket */
	const char		*text;	/* level text, not NUL-terminated */
	uint32_t		 len;	/* bytes in text */
	uint32_t		 hash;	/* topic_level_hash(text, len) */
};

struct topic_ltab {
	struct topic_lnode	**b;	/* buckets; NULL when empty */
	uint32_t		 nb;	/* bucket count, a power of two or 0 */
	uint32_t		 n;	/* nodes linked */
};

/* Fills ln for level text (borrowed: it must outlive the node's use). */
void		 topic_lnode_init(struct topic_lnode *ln, const char *text,
		    size_t len);

/* Returns the node keyed by (s, len), or NULL. */
struct topic_lnode *topic_ltab_find(const struct topic_ltab *t, const char *s,
		    size_t len);

/*
 * Links ln (not already present) into t. Only fails, with GW_ENOMEM, when
 * the first bucket array cannot be allocated; a failed growth is ignored.
 */
int		 topic_ltab_add(struct topic_ltab *t, struct topic_lnode *ln);

/* Unlinks ln (which must be in t); may shrink the bucket array. */
void		 topic_ltab_remove(struct topic_ltab *t,
		    struct topic_lnode *ln);

/* Iteration in bucket order: first node, or the node after ln; NULL at
 * the end. The table must not change during an iteration. */
struct topic_lnode *topic_ltab_first(const struct topic_ltab *t);
struct topic_lnode *topic_ltab_next(const struct topic_ltab *t,
		    const struct topic_lnode *ln);

/* Frees the bucket array (not the nodes); the table becomes empty. */
void		 topic_ltab_free(struct topic_ltab *t);

#endif
