/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subscription trie: one node per topic level, children in a hash keyed by
 * level text, plus dedicated '+' and '#' children. Each node holds the
 * subscriptions whose filter ends there as (owner, qos) pairs. Matching a
 * topic walks at most the levels of the topic times the wildcard branches,
 * independent of the number of filters. Owners are opaque pointers (a broker
 * session, or a rule for the rules engine). Loop thread only.
 */
#ifndef GW_SUBS_H
#define GW_SUBS_H

#include <stddef.h>
#include <stdint.h>

struct subs;

/* Called once per matching subscription; owner and qos as added. */
typedef void (*subs_match_cb)(void *owner, uint8_t qos, void *ctx);

/* Returns a new empty trie, NULL on ENOMEM. */
struct subs	*subs_new(void);
/* Frees the trie (not the owners); accepts NULL. */
void		 subs_free(struct subs *s);

/*
 * Adds (filter, owner) with qos, or updates qos if that owner already has
 * that exact filter. filter must be valid (topic_filter_valid). Sets
 * *replaced to 1 when it existed (may be NULL). Returns 0 or GW_ENOMEM.
 */
int		 subs_add(struct subs *s, const char *filter, size_t len,
		    void *owner, uint8_t qos, int *replaced);

/* Removes (filter, owner); prunes empty nodes. 0 or GW_ENOTFOUND. */
int		 subs_remove(struct subs *s, const char *filter, size_t len,
		    void *owner);

/*
 * Calls cb for every subscription matching topic name t (valid, no
 * wildcards), following the '$' rule in topic.h. An owner with several
 * matching filters is reported once per filter. Returns the number of
 * callbacks made.
 */
size_t		 subs_match(const struct subs *s, const char *t, size_t len,
		    subs_match_cb cb, void *ctx);

/* Number of (filter, owner) pairs stored. */
size_t		 subs_count(const struct subs *s);

#endif
