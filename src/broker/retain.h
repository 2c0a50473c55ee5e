/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retained messages: a topic-level trie holding at most one message per
 * topic name. A filter lookup (on SUBSCRIBE) walks the trie with '+' and
 * '#' instead of scanning every retained topic. Holds a reference on each
 * stored message. Loop thread only; persistence is the store's job.
 */
#ifndef GW_RETAIN_H
#define GW_RETAIN_H

#include <stdbool.h>
#include <stddef.h>

struct msg;
struct retain;

typedef void (*retain_cb)(struct msg *m, void *ctx);	/* borrows m */

struct retain	*retain_new(void);
void		 retain_free(struct retain *r);	/* drops all refs; NULL ok */

/*
 * Stores m under m->topic, replacing (and unref'ing) any previous message;
 * a zero-length payload deletes the topic instead. Takes a new reference
 * on m (the caller keeps its own). Returns 0 or GW_ENOMEM.
 */
int		 retain_set(struct retain *r, struct msg *m);

/* Calls cb for each retained message whose topic matches the (valid)
 * filter, with the '$' rule of topic.h. Returns the number of calls. */
size_t		 retain_match(const struct retain *r, const char *filter,
		    size_t len, retain_cb cb, void *ctx);

/*
 * Removes the topic of m if it still holds m itself (not a newer
 * message); returns whether it did. Drops the trie's reference.
 */
bool		 retain_remove(struct retain *r, const struct msg *m);

/* The message retained under exactly topic t (borrowed) or NULL. */
const struct msg *retain_get(const struct retain *r, const char *t,
		    size_t len);
size_t		 retain_count(const struct retain *r);
/* How many retained messages carry a Message Expiry Interval. */
size_t		 retain_expiring(const struct retain *r);
/*
 * The retained message whose Message Expiry Interval ends first
 * (borrowed; remove it with retain_remove()), or NULL when none has one.
 */
struct msg	*retain_next_expiring(const struct retain *r);
size_t		 retain_bytes(const struct retain *r);	/* payload bytes */

#endif
