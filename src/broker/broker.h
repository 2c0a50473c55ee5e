/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded MQTT broker as seen from main: create it on an event loop
 * with the config and the store, add listeners, load persisted state, and
 * shut it down in order (stop intake, let the store commit, release the
 * last acknowledgements, close). Loop thread only.
 */
#ifndef GW_BROKER_H
#define GW_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct acl;
struct broker;
struct ev_loop;
struct passwd_db;
struct gw_config;
struct metrics_hist;
struct msg;
struct rule_set;
struct store;
struct tls_ctx;

struct broker_stats {
	uint64_t	connections;		/* currently connected */
	uint64_t	accepted_total;		/* TCP connections accepted */
	uint64_t	refused_total;		/* over max_connections */
	uint64_t	publish_in;		/* PUBLISH packets accepted */
	uint64_t	publish_out;		/* PUBLISH packets sent */
	uint64_t	dropped_qos0;		/* QoS 0 to a full client */
	uint64_t	dropped_queue_full;	/* QoS 1/2 over max_queued */
	uint64_t	dropped_too_large;	/* over a client's Maximum
						 * Packet Size (MQTT 5.0) */
	uint64_t	expired;		/* Message Expiry passed */
	uint64_t	retained_expired;	/* of them retained ones */
	uint64_t	protocol_errors;	/* connections closed on errors */
	uint64_t	store_pauses;		/* reads paused on a full store */
	uint64_t	output_pauses;		/* paused: output_bytes */
	uint64_t	input_pauses;		/* paused: input_budget */
	uint64_t	input_shed;		/* closed for input_budget */
	uint64_t	stall_closed;		/* closed: stall_timeout */
	uint64_t	store_share_pauses;	/* paused: store share */
	uint64_t	subs_refused;		/* filters over limits */
	uint64_t	retained_refused;	/* not kept as retained */
	uint64_t	retained;		/* retained topics now */
	uint64_t	retained_bytes;		/* their payload bytes */
	uint64_t	sessions_expired;	/* after session_expiry */
	uint64_t	bytes_in;		/* bytes read from clients */
	uint64_t	bytes_out;		/* bytes written to clients */
	uint64_t	packets_in;		/* MQTT packets received */
	uint64_t	subscriptions;		/* subscriptions now */
	uint64_t	sessions;		/* sessions kept now */
	uint64_t	unmatched;		/* publishes no rule matched */
	uint64_t	shared_out;		/* copies for $share groups */
	uint64_t	shared_moved;		/* handed to another member */
};

/* Logins and ACL decisions, for /metrics. */
struct broker_access_stats {
	uint64_t	logins_ok;		/* password logins accepted */
	uint64_t	logins_failed;		/* logins refused */
	uint64_t	login_cache_hits;	/* accepted without hashing */
	uint64_t	logins_busy;		/* refused: checker saturated */
	uint64_t	logins_delayed;		/* refusals answered late */
	uint64_t	publish_denied;		/* PUBLISH denied (ACL, $SYS) */
	uint64_t	subscribe_denied;	/* filters refused (0x80) */
	uint64_t	deliver_denied;		/* deliveries withheld */
};

/* Returns a new broker (borrows loop, cfg and store), NULL on ENOMEM. */
struct broker	*broker_new(struct ev_loop *loop, const struct gw_config *cfg,
		    struct store *store);

/*
 * Opens a listener, TLS when tls is not NULL (takes ownership of tls, also
 * on failure); returns the bound port (> 0) or a GW_E* code with err.
 */
int		 broker_listen(struct broker *b, const char *bind_addr,
		    int port, struct tls_ctx *tls, struct gw_error *err);

/*
 * Makes the listener last opened by broker_listen() speak MQTT over
 * WebSockets at path (copied). 0, GW_ENOTFOUND or GW_ENOMEM.
 */
int		 broker_listen_websocket(struct broker *b, const char *path);

/* SIGHUP: re-reads the certificates of every TLS listener, logging. */
void		 broker_reload_tls(struct broker *b);

/*
 * Takes fd, a connected non-blocking stream socket, as a new client
 * connection from peer (text for logs, borrowed), as if accepted: the
 * CONNECT is awaited within connect_timeout. The accept path and the
 * connection fuzz target use it. Returns 0 (the broker owns fd), or
 * GW_ENOMEM / GW_EIO (the caller still owns fd).
 */
int		 broker_adopt(struct broker *b, int fd, const char *peer);

/* Loads retained messages and inbound QoS 2 state from the store; call
 * before store_start(). 0 or GW_E*. */
int		 broker_load_state(struct broker *b);

/*
 * Routes publishes through set from now on (takes a reference; NULL keeps
 * the built-in default: every non-$ publish into messages). The store must
 * have prepared set (store_prepare_rules). 0 or GW_ENOMEM.
 */
int		 broker_set_rules(struct broker *b, struct rule_set *set);

/*
 * Reload, two-phase: asks the store thread to prepare set's tables and
 * statements, and swaps it in once that is committed; if preparing fails
 * the current rules stay (the store logs why). Takes a reference on set.
 */
int		 broker_reload_rules(struct broker *b, struct rule_set *set);

/*
 * Puts a password database and an ACL in force (takes ownership of both;
 * NULL: no password file / everything allowed), replacing the previous
 * ones: cached logins are forgotten and every subscription is checked
 * against the new ACL. Connections stay. 0 or GW_ENOMEM (both freed).
 */
int		 broker_set_access(struct broker *b, struct passwd_db *pw,
		    struct acl *acl);

void		 broker_get_access_stats(const struct broker *b,
		    struct broker_access_stats *st);

/* Watches the store's commit notifications. 0 or GW_E*. */
int		 broker_attach_store(struct broker *b);

/* Stops accepting and reading: the first step of an orderly shutdown. */
void		 broker_stop_intake(struct broker *b);

/*
 * Final step, after the store committed everything queued: sends every
 * acknowledgement held for data committed up to store sequence committed
 * (UINT64_MAX: all of them), never one for data the store abandoned;
 * tells MQTT 5.0 clients the server is shutting down (DISCONNECT 0x8B);
 * flushes what the sockets take, closes all connections.
 */
void		 broker_finish(struct broker *b, uint64_t committed);

void		 broker_get_stats(const struct broker *b,
		    struct broker_stats *st);

/* The rule set in force (borrowed; NULL: the built-in default rule). */
const struct rule_set *broker_rules(const struct broker *b);

/*
 * Publishes payload (len bytes, borrowed) on topic, which must start with
 * "$SYS/", as a retained QoS 0 message from the broker itself: it goes to
 * the subscribers the ACL lets read it and replaces the value a later
 * subscription receives. Never stored in the database and not counted as
 * a retained message. 0, GW_ENOMEM, or GW_EMALFORMED (not under $SYS/).
 */
int		 broker_sys_publish(struct broker *b, const char *topic,
		    const void *payload, size_t len);

/* The PUBLISH to PUBACK/PUBREC latency histogram (borrowed). */
const struct metrics_hist *broker_ack_hist(const struct broker *b);

/*
 * Sources (src/source/): feeds m, received from an external broker, into
 * the rules like a local publish (no fan-out to local subscribers, no
 * retained copy). For QoS 2 with qos2_key set, (qos2_key, pid) is recorded
 * in the same transaction, as for a local client. Borrows m (takes its own
 * reference). On 0, *seq is the store sequence number after which the
 * message is durable (see broker_committed_seq()). GW_EFULL: the store
 * queue or a rejecting outbox is full, try again later; GW_EIO: the
 * broker is shutting down; GW_ENOMEM.
 */
int		 broker_source_publish(struct broker *b, struct msg *m,
		    const char *qos2_key, uint16_t pid, uint64_t *seq);

/* Queues the removal of (qos2_key, pid); *seq as above. 0 or GW_E*. */
int		 broker_source_qos2_del(struct broker *b,
		    const char *qos2_key, uint16_t pid, uint64_t *seq);

/* The highest store sequence number committed. */
uint64_t	 broker_committed_seq(const struct broker *b);

/*
 * Calls cb(arg) on the loop thread after every commit notification, once
 * the broker released its own acknowledgements. One hook; NULL removes.
 */
void		 broker_set_commit_hook(struct broker *b,
		    void (*cb)(void *), void *arg);

/*
 * Client ids starting with this are sources' QoS 2 keys: the broker does
 * not make sessions of them when it loads its state.
 */
#define BROKER_SOURCE_KEY_PREFIX	"$source/"

/* Frees the broker and everything it owns. NULL ok. */
void		 broker_free(struct broker *b);

#endif
