/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared subscriptions: "$share/GROUP/FILTER" (MQTT 5.0 section 4.8.2,
 * honoured for 3.1.1 clients as well). The sessions subscribed with the
 * same GROUP and FILTER form one group; each message matching FILTER goes
 * to one member of each group, chosen round robin among the members,
 * preferring one that can take it now (connected). A session's normal
 * subscriptions are independent of its shared ones.
 *
 * Two layers. The share table (share_tab_*) keeps the groups and their
 * members with opaque owners, like the subscription trie, and makes the
 * member choice; it knows nothing of sessions and is unit tested alone.
 * The broker side (share_sub_*, share_fanout, share_requeue) routes a
 * session's filters to the trie or the table, delivers and hands a gone
 * member's unacknowledged messages to another member. Loop thread only.
 */
#ifndef GW_SHARE_H
#define GW_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHARE_PREFIX		"$share/"
#define SHARE_PREFIX_LEN	7

/*
 * The value of CONNACK's Shared Subscription Available property (MQTT
 * 5.0): 1, the broker supports them.
 */
#define SHARE_AVAILABLE		1

/* A parsed share name; both parts point into the parsed string. */
struct share_name {
	const char	*group;		/* GROUP, not NUL-terminated */
	size_t		 group_len;
	const char	*filter;	/* FILTER, to the end of the string */
	size_t		 filter_len;
};

/*
 * Parses subscription filter f (len bytes). Returns 0 when f does not
 * start with "$share/" (a normal filter, not checked here), 1 with *sn
 * filled when it is a well-formed share name (GROUP non-empty without
 * '+', '#' or '/', FILTER a valid filter), GW_EMALFORMED when it starts
 * with "$share/" but is malformed, with *why (may be NULL) saying why:
 * MQTT 5.0 answers 0x8F (Topic Filter invalid), 3.1.1 0x80. sn may be
 * NULL.
 */
int		 share_parse(const char *f, size_t len, struct share_name *sn,
		    const char **why);

/* Whether f starts with "$share/" (well-formed or not). */
bool		 share_is(const char *f, size_t len);

/*
 * The filter an ACL checks for f: FILTER for a well-formed share name,
 * f itself otherwise. Borrows f; *flen receives the length.
 */
const char	*share_acl_filter(const char *f, size_t len, size_t *flen);

/* The share table. */
struct share_tab;

/* What a member can do with the message at hand (share_avail_cb). */
enum share_avail {
	SHARE_NEVER = 0,	/* must not get it (say, the ACL denies it) */
	SHARE_LATER,		/* may get it, but cannot take it now */
	SHARE_NOW,		/* can take it now: preferred */
};

/* Returns an enum share_avail for owner. */
typedef int	(*share_avail_cb)(void *owner, void *ctx);
/* One delivery: the chosen member, its granted QoS, its group's id. */
typedef void	(*share_deliver_cb)(void *owner, uint8_t qos, uint32_t id,
		    void *ctx);

/* Returns a new empty table, NULL on ENOMEM. */
struct share_tab *share_tab_new(void);
/* Frees the table (not the owners); accepts NULL. */
void		 share_tab_free(struct share_tab *t);

/*
 * Makes owner a member of the group of share name f (len bytes) with
 * granted qos, or updates its qos if it is one already (*replaced, may be
 * NULL, is then 1). Borrows f. Returns 0, GW_EMALFORMED (not a well-formed
 * share name) or GW_ENOMEM (the table is then as before).
 */
int		 share_tab_add(struct share_tab *t, const char *f, size_t len,
		    void *owner, uint8_t qos, int *replaced);

/*
 * Removes owner from the group of share name f; a group left without
 * members is freed. Returns 0 or GW_ENOTFOUND.
 */
int		 share_tab_remove(struct share_tab *t, const char *f,
		    size_t len, void *owner);

/* Number of (group, member) pairs. */
size_t		 share_tab_count(const struct share_tab *t);

/* The id of the group of share name f (len bytes), 0 if there is none. */
uint32_t	 share_tab_id(const struct share_tab *t, const char *f,
		    size_t len);

/*
 * For topic name t (valid), chooses one member of each group whose FILTER
 * matches and calls deliver for it. The choice goes round robin from the
 * member after the group's last choice, taking the first for which avail
 * says SHARE_NOW; when none does, the first that says SHARE_LATER; a group
 * whose members all say SHARE_NEVER gets no delivery. avail NULL means
 * SHARE_NOW for all. deliver must not change the table. Returns the number
 * of deliveries.
 */
size_t		 share_tab_match(struct share_tab *t, const char *topic,
		    size_t len, share_avail_cb avail, share_deliver_cb deliver,
		    void *ctx);

/*
 * Chooses a member of group id other than except, as share_tab_match
 * does; when none says SHARE_NOW and !any, chooses nobody. Returns 0 with
 * *owner and *qos set, or GW_ENOTFOUND (no such group, no other member,
 * or none available).
 */
int		 share_tab_pick(struct share_tab *t, uint32_t id,
		    const void *except, share_avail_cb avail, void *ctx,
		    bool any, void **owner, uint8_t *qos);

/* Broker side. */
struct broker;
struct msg;
struct session;

/*
 * Adds filter f (len bytes, borrowed, valid as a filter or a share name)
 * of session s with granted qos to the broker's subscription trie or, for
 * a share name, to its group. Returns 0, GW_EMALFORMED or GW_ENOMEM.
 */
int		 share_sub_add(struct broker *b, struct session *s,
		    const char *f, size_t len, uint8_t qos);
/* Removes filter f of s from where share_sub_add put it. 0/GW_ENOTFOUND. */
int		 share_sub_remove(struct broker *b, struct session *s,
		    const char *f, size_t len);
/* Subscriptions of every kind now. */
size_t		 share_sub_count(const struct broker *b);

/* Sends m (borrowed) to one member of every group whose filter matches. */
void		 share_fanout(struct broker *b, struct msg *m);

/*
 * Member s lost its connection (ending: its session ends too). Its
 * unacknowledged shared messages (queued, or sent and awaiting PUBACK or
 * PUBREC) go to another member of their group that is connected; when
 * the session ends and none is, to any other member. A message nobody
 * else can take stays with a persistent session that goes on, and is
 * dropped (counted) with a session that ends.
 */
void		 share_requeue(struct broker *b, struct session *s,
		    bool ending);

#endif
