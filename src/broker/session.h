/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MQTT sessions, keyed by client id. A session outlives its connection
 * when the client asked for a persistent session (clean session 0): it
 * keeps the subscriptions, the outbound QoS 1/2 messages in flight and
 * queued while offline, and the inbound QoS 2 packet ids awaiting PUBREL.
 * Every per-session collection is bounded: in flight by max_inflight,
 * queued by max_queued, inbound QoS 2 ids by the 16-bit id space.
 * Loop thread only.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct msg;

enum out_state {
	OUT_QUEUED = 0,		/* not sent yet */
	OUT_WAIT_PUBACK,	/* QoS 1 sent */
	OUT_WAIT_PUBREC,	/* QoS 2 sent */
	OUT_WAIT_PUBCOMP,	/* QoS 2 PUBREL sent */
};

/* One outbound message for this session. */
struct out_msg {
	struct msg	*m;		/* owned reference */
	uint16_t	 pid;		/* packet id once sent */
	uint8_t		 qos;		/* delivery QoS (after downgrade) */
	uint8_t		 state;		/* enum out_state */
	uint8_t		 retain;	/* retain flag to send */
	uint8_t		 resend;	/* in flight from before a resume,
					 * not sent again yet (Receive
					 * Maximum full) */
	uint64_t	 key;		/* session_msgs id, 0 if not persisted */
	uint32_t	 share;		/* shared subscription group id or 0
					 * (share.h) */
	uint32_t	 sub_id;	/* 0: identifiers of the matching
					 * subscriptions at delivery; else
					 * only this one (OUT_SUB_ID_NONE:
					 * none), for retained messages */
};

/* out_msg.sub_id of a retained message for a subscription without id. */
#define OUT_SUB_ID_NONE		UINT32_MAX

struct sub_entry {
	char		*filter;	/* owned, NUL-terminated */
	uint64_t	 hash;		/* keyhash(filter): cheap compares */
	uint16_t	 len;
	uint8_t		 qos;		/* granted maximum QoS (bits 0-1) and
					 * the 5.0 options SESSION_SUB_* */
	uint32_t	 id;		/* 5.0 Subscription Identifier or 0 */
};

/* 5.0 subscription options kept with a subscription's QoS (3.8.3.1). */
#define SESSION_SUB_QOS		0x03
#define SESSION_SUB_NO_LOCAL	0x04	/* not the client's own publishes */
#define SESSION_SUB_RAP		0x08	/* Retain As Published */

struct session {
	char		*client_id;	/* owned, NUL-terminated */
	uint16_t	 id_len;
	bool		 clean;		/* clean session requested */
	uint8_t		 version;	/* protocol level of its last client */
	uint32_t	 expiry_s;	/* Session Expiry Interval (s): 0 ends
					 * at disconnect; SESSION_EXPIRY_LIMIT
					 * means limits.session_expiry only */
	struct client	*client;	/* connected client or NULL */

	struct sub_entry *subs;		/* this session's filters */
	size_t		  nsubs, capsubs;
	uint32_t	 *subidx;	/* open-addressing index of subs
					 * (position + 1, 0 empty) or NULL */
	size_t		  subidx_cap;	/* slots, a power of 2, or 0 */
	size_t		  nsub_ids;	/* subs with a Subscription
					 * Identifier */
	uint32_t	 *ids;		/* scratch for a PUBLISH's identifiers
					 * (capids of them) or NULL */
	size_t		  capids;

	struct out_msg	 *inflight;	/* sent, awaiting ack, send order */
	size_t		  ninflight, capinflight;
	size_t		  nresend;	/* of them with resend set */
	struct out_msg	 *queue;	/* ring of messages waiting */
	size_t		  qhead, qlen, qcap;
	uint16_t	  next_pid;

	uint8_t		 *qos2_in;	/* bitmap of inbound QoS 2 ids or NULL */
	unsigned	  qos2_in_count;

	char		 *username;	/* last client's user name (owned) */
	bool		  ident_known;	/* username is set: a client of this
					 * run connected */

	uint64_t	  match_gen;	/* fan-out dedupe stamp */
	uint8_t		  match_qos;
	bool		  match_rap;	/* a match has Retain As Published */
	long long	  offline_ms;	/* wall ms client left, 0 = online */
	struct msg	 *will;		/* delayed will (owned ref) or NULL */
	long long	  will_due;	/* wall ms it is published at */

	struct session	 *hnext;	/* hash chain */
};

/* expiry_s of a 3.1.1 persistent session: only the global limit. */
#define SESSION_EXPIRY_LIMIT	UINT32_MAX

struct session_table;

struct session_table *session_table_new(void);
/* Frees the table; sessions must have been destroyed by the caller. */
void		 session_table_free(struct session_table *t);
struct session	*session_find(struct session_table *t, const char *id,
		    size_t len);
/* Returns a new session added to t, NULL on ENOMEM. */
struct session	*session_create(struct session_table *t, const char *id,
		    size_t len, bool clean);
/* Removes s from t and frees it with everything it owns (drops message
 * references; the caller must already have removed its subscriptions). */
void		 session_destroy(struct session_table *t, struct session *s);
size_t		 session_count(const struct session_table *t);
/* Calls fn for each session (fn must not destroy other sessions). */
void		 session_foreach(struct session_table *t,
		    void (*fn)(struct session *, void *), void *arg);

/*
 * Subscriptions list: add/replace (with 5.0 Subscription Identifier id, 0
 * for none) returns 0/GW_ENOMEM; remove 0/GW_ENOTFOUND.
 */
int		 session_sub_set(struct session *s, const char *f, size_t len,
		    uint8_t qos, uint32_t id);
int		 session_sub_remove(struct session *s, const char *f, size_t len);
/* Whether s holds filter f already. */
bool		 session_sub_has(const struct session *s, const char *f,
		    size_t len);

/* Inbound QoS 2 ids awaiting PUBREL. add returns 0 or GW_ENOMEM. */
bool		 session_qos2_has(const struct session *s, uint16_t pid);
int		 session_qos2_add(struct session *s, uint16_t pid);
void		 session_qos2_del(struct session *s, uint16_t pid);
void		 session_qos2_clear(struct session *s);

/* Outbound queue: push takes the reference in o; GW_EFULL at cap. */
int		 session_queue_push(struct session *s, const struct out_msg *o,
		    size_t cap);
/* Pops the oldest into o; returns false when empty. */
bool		 session_queue_pop(struct session *s, struct out_msg *o);
/* The oldest queued message (borrowed), NULL when empty. */
const struct out_msg *session_queue_peek(const struct session *s);

/* In-flight window (cap fixed at first use). */
int		 session_inflight_add(struct session *s, const struct out_msg *o,
		    size_t cap);
struct out_msg	*session_inflight_find(struct session *s, uint16_t pid);
/* Removes the entry and drops its message reference. */
void		 session_inflight_remove(struct session *s, struct out_msg *o);

/* Next free outbound packet id (skips 0 and ids in flight). */
uint16_t	 session_next_pid(struct session *s);

#endif
