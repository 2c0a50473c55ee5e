/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Broker internals shared by broker.c, dispatch.c, handle_*.c and
 * outbound.c: the broker state, one struct client per connection and the
 * functions the packet handlers call. Not for other modules.
 *
 * Acknowledgement rule: every PUBLISH that produces store items gets the
 * seq of its last item; a connection's held acks (PUBACK, PUBREC, PUBCOMP)
 * form a FIFO tagged with the highest seq submitted by that connection at
 * the time, so releasing "head while head.seq <= committed_seq" keeps acks
 * in receive order and sends none before its data is durable.
 */
#ifndef GW_BROKER_INT_H
#define GW_BROKER_INT_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/session.h"
#include "log.h"
#include "metrics_hist.h"
#include "mqtt/codec.h"
#include "net/conn.h"
#include "net/ev.h"

struct acl;
struct alias_out;
struct alias_table;
struct auth;
struct msg;
struct retain;
struct share_tab;
struct store_item;
struct subs;
struct tls_ctx;

enum client_state {
	CLIENT_NEW = 0,		/* accepted, waiting for CONNECT */
	CLIENT_CONNECTED,	/* CONNACK sent */
	CLIENT_CLOSING,		/* flush what is queued, then close */
};

/* An acknowledgement waiting for its data to be committed. */
struct held_ack {
	uint64_t	 seq;		/* release when committed >= seq */
	struct msg	*fanout;	/* QoS 2: deliver after commit (owned) */
	uint8_t		*data;		/* SUBACK: packet + SUBSCRIBE body;
					 * 5.0 UNSUBACK: the packet */
	uint32_t	 data_len;	/* bytes in data */
	uint32_t	 pkt_len;	/* SUBACK packet bytes at data's start */
	uint32_t	 bytes;		/* packet bytes it stands for */
	long long	 t_us;		/* held at (monotonic us) */
	uint16_t	 pid;
	uint8_t		 type;		/* CODEC_PUBACK / PUBREC / PUBCOMP */
	uint8_t		 reason;	/* 5.0 reason code (0 success) */
};

struct client {
	struct conn	 conn;
	struct broker	*b;
	struct ev_timer	 timer;		/* connect timeout, then keepalive */
	struct session	*sess;		/* NULL before CONNECT */
	struct msg	*will;		/* will message or NULL */
	char		*username;	/* owned or NULL */
	bool		 auth_wait;	/* login being decided: do not read */
	bool		 auth_parked;	/* auth_slot holds our login */
	uint32_t	 auth_slot;
	uint8_t		*parked;	/* CONNECT body while parked (owned) */
	size_t		 parked_len;
	long long	 last_rx_ms;	/* monotonic time of last packet */
	uint16_t	 keepalive;	/* seconds, 0 = off */
	uint8_t		 state;		/* enum client_state */
	uint8_t		 version;	/* protocol level 3, 4 or 5 (0 before
					 * CONNECT) */
	uint8_t		 disc_reason;	/* 5.0: reason of the refusal being
					 * handled (0: from the error) */
	bool		 problem_info;	/* 5.0: reason strings allowed */
	uint16_t	 recv_max;	/* 5.0: the client's Receive Maximum
					 * (65535 when absent) */
	uint16_t	 alias_max;	/* 5.0: Topic Alias Maximum we
					 * advertised, 0 = none */
	uint16_t	 peer_alias_max; /* 5.0: the client's Topic Alias
					 * Maximum (aliases we may send) */
	uint32_t	 will_delay;	/* 5.0: Will Delay Interval (s) */
	uint32_t	 max_packet;	/* 5.0: the client's Maximum Packet
					 * Size, 0 = no limit */
	struct alias_table *aliases;	/* 5.0: inbound topic aliases
					 * (alias.c), NULL until the first */
	struct alias_out *aliases_out;	/* 5.0: aliases we send, NULL
					 * until the first */
	bool		 read_paused;	/* EV_READ removed by backpressure */
	bool		 clean_disconnect; /* DISCONNECT received */
	bool		 outbox_wait;	/* a publish waits for outbox room */
	bool		 peer_eof;	/* peer closed its side; close when
					 * held acks are written */
	bool		 in_flush;	/* on the flush list */
	bool		 in_acks;	/* on the held-ack list */
	bool		 cert_identity;	/* username is the verified client
					 * certificate's CN (TLS) */
	uint64_t	 last_seq;	/* last store seq of this connection */
	struct held_ack	*acks;		/* ring of held acks */
	size_t		 ack_head, ack_len, ack_cap;
	size_t		 held_bytes;	/* sum of the held acks' bytes */
	unsigned	 held_quota;	/* held PUBACKs and PUBCOMPs: publishes
					 * the client still counts as unacked */
	uint32_t	 pkt_bytes;	/* size of the packet being handled */
	unsigned	 ev_mask;	/* current epoll interest */
	struct ev_timer	 stall_timer;	/* limits.stall_timeout (guard.c) */
	long long	 stall_since;	/* last progress while stalled */
	size_t		 in_counted;	/* bytes of in counted in input_bytes */
	bool		 out_blocked;	/* not read: output over output_bytes */
	bool		 in_blocked;	/* not read: input_budget spent */
	bool		 out_progress;	/* output moved since the last check */
	uint64_t	 win_last;	/* store share: window's last seq */
	uint64_t	 win_items;	/* store items submitted in it */
	bool		 in_turns;	/* on the turns list: input left */
	unsigned	 turn_work;	/* retained messages sent in this turn */
	LIST_ENTRY(client) turns_link;	/* clients with input to parse */
	LIST_ENTRY(client) link;	/* all clients */
	TAILQ_ENTRY(client) flush_link;	/* pending output or close */
	LIST_ENTRY(client) acks_link;	/* clients holding acks */
};

LIST_HEAD(client_list, client);
TAILQ_HEAD(client_tailq, client);

#define BROKER_MAX_LISTENERS	16

/* One listening socket; arg of its accept callback. */
struct broker_listener {
	struct broker	*b;
	int		 fd;
	struct tls_ctx	*tls;		/* owned; NULL: plain TCP */
	char		*ws_path;	/* owned; NULL: no WebSocket */
};

struct broker {
	struct ev_loop		*loop;
	const struct gw_config	*cfg;
	struct store		*store;
	struct subs		*subs;
	struct share_tab	*shares;	/* $share/ groups (share.c) */
	struct retain		*retain;
	struct retain		*sys_retain;	/* $SYS values (sys.c) */
	struct session_table	*sessions;
	struct broker_listener	 lst[BROKER_MAX_LISTENERS];
	size_t			 nlst;
	bool			 intake_stopped;
	struct client_list	 clients;
	struct client_tailq	 flush;
	struct client_list	 ack_clients;
	size_t			 nclients;
	size_t			 out_limit;	/* bytes of output per client */
	uint64_t		 match_gen;
	struct session		**matched;	/* fan-out scratch vector */
	size_t			 nmatched, capmatched;
	struct rule_set		*rules;		/* NULL: built-in default */
	uint32_t		*rule_ids;	/* match scratch, one per rule */
	struct rule_set		*pending_rules;	/* reload awaiting the store */
	uint64_t		 pending_seq;
	uint64_t		 last_seq;	/* newest store seq submitted */
	uint64_t		 lazy_seq;	/* newest QoS 0 one (lazy) */
	uint64_t		 smsg_seq;	/* last session message key */
	struct held_ack		*orphans;	/* QoS 2 fan-outs of closed */
	size_t			 norphans, caporphans; /* connections */
	struct broker_stats	 stats;
	struct log_limit	 drop_log;
	struct log_limit	 err_log;
	struct log_limit	 tls_log;	/* failed TLS handshakes */
	struct auth		*auth;		/* logins; NULL until needed */
	struct acl		*acl;		/* NULL: everything allowed */
	struct broker_access_stats access_stats;
	struct log_limit	 acl_log;
	uint64_t		 input_bytes;	/* partial input, all clients */
	size_t			 nin_blocked;	/* clients with in_blocked */
	struct log_limit	 guard_log;	/* guard.c and limit refusals */
	struct log_limit	 unmatched_log;	/* topics no rule matched */
	struct ev_timer		 log_timer;	/* summaries of held lines */
	struct ev_timer		 expire_timer;	/* expire.c sweep */
	struct ev_timer		 retain_timer;	/* retain_sweep.c */
	struct client_list	 turns;		/* parse more next iteration */
	struct ev_timer		 turns_timer;	/* zero delay, for turns */
	struct metrics_hist	 ack_hist;	/* PUBLISH to PUBACK/PUBREC */
	void			(*commit_hook)(void *); /* sources */
	void			*commit_arg;
};

/* Logs with the "client <id> fd <n>:" prefix. */
#define client_log(lvl, c, fmt, ...) log_msg(lvl, "client %s fd %d: " fmt, \
	(c)->sess != NULL ? (c)->sess->client_id : "-", (c)->conn.fd, \
	##__VA_ARGS__)

/* broker.c */
void	client_want_flush(struct client *c);
void	client_close_after_write(struct client *c, const char *why);
void	client_close_now(struct client *c, const char *why);
/* Holds an ack with its 5.0 reason code (ignored for 3.1.1 clients). */
int	client_hold_ack(struct client *c, uint8_t type, uint16_t pid,
	    struct msg *fanout, uint8_t reason);
/*
 * Holds an encoded packet of pkt_len bytes at data's start (owned): a
 * SUBACK, followed by its SUBSCRIBE body (subscribe_release()), or a 5.0
 * UNSUBACK sent as it is.
 */
int	client_hold_packet(struct client *c, uint8_t type, uint8_t *data,
	    uint32_t data_len, uint32_t pkt_len);
bool	client_should_pause(struct client *c);
void	client_arm_keepalive(struct client *c);
void	client_resume(struct client *c);
void	client_set_events(struct client *c);
/*
 * Parses what c has buffered, then reads what TLS holds decrypted (epoll
 * cannot report it), and sets c's events: after anything that stopped
 * reading c lets it go again.
 */
void	client_input_resume(struct client *c);
void	broker_release_acks(struct broker *b);

/* acks.c: the held-acknowledgement ring (see client_hold_ack()) */
/* Sends c's acks whose data is committed (all of them if force). */
void	acks_release_client(struct client *c, uint64_t committed, bool force);
/* Keeps held ack a's QoS 2 fan-out (c is closing); takes a->fanout. */
void	acks_orphan(struct broker *b, struct held_ack *a);
/* Delivers the orphans committed by now (all of them if force). */
void	acks_release_orphans(struct broker *b, uint64_t committed,
	    bool force);

/* guard.c: output, input and stall bounds of one connection */
bool	guard_output_full(struct client *c);
bool	guard_output_drained(struct client *c);
void	guard_input_account(struct client *c);
bool	guard_input_blocked(struct client *c);
void	guard_store_count(struct client *c, uint64_t before);
bool	guard_store_hog(struct client *c);
bool	guard_input_balance(struct broker *b);
void	guard_stall_update(struct client *c, bool progress);
void	guard_forget(struct client *c);
bool	guard_retain_admit(struct broker *b, const struct msg *m);

/* broker.c: per-message lines (log_limited) and their summaries. */
#define BROKER_LOG_BURST	10
#define BROKER_LOG_PERIOD_MS	10000
void	broker_log_later(struct broker *b);

/* expire.c: limits.session_expiry */
void	expire_session_offline(struct broker *b, struct session *s,
	    long long now);
void	expire_session_online(struct broker *b, struct session *s);
void	expire_loaded(struct broker *b);
/* Sets s's Session Expiry Interval (seconds) and saves it. */
void	expire_session_set(struct broker *b, struct session *s,
	    uint32_t expiry);

/* retain_sweep.c: expired retained messages leave without a subscriber. */
void	retain_sweep_arm(struct broker *b);

/* proto5.c: what differs between 3.1.1 and 5.0 on the wire. */
#define CLIENT_V5(c)	((c)->version == 5)
int	proto5_parse_header(const struct client *c, const uint8_t *buf,
	    size_t len, struct codec_header *h);
int	proto5_send_ack(struct client *c, uint8_t type, uint16_t pid,
	    uint8_t reason);
int	proto5_send_empty(struct client *c, uint8_t type);
int	proto5_connack_refuse(struct client *c, uint8_t rc311,
	    uint8_t reason, const char *why);
void	proto5_disconnect(struct client *c, uint8_t reason, const char *why);
void	proto5_close_error(struct client *c, int err, const char *why);
size_t	proto5_window(const struct broker *b, const struct session *s);

/* will.c: will messages, delayed ones kept on the session. */
/* Publishes will (takes the reference) unless the ACL refuses it. */
void	will_publish(struct broker *b, struct msg *will);
/* c is closing: publishes its will now, later (delay) or never. */
void	will_client_gone(struct client *c);
/* A new connection for s: its delayed will is not published. */
void	will_cancel(struct session *s);
/* expire.c: makes the sweep run by due (wall ms) for a delayed will. */
void	expire_will_arm(struct broker *b, long long due);

/* dispatch.c: handles one whole packet; nonzero return closes. */
int	dispatch_packet(struct client *c, const struct codec_header *h,
	    const uint8_t *body);

/* handle_*.c */
int	handle_connect(struct client *c, const uint8_t *body, size_t len);
int	handle_connect_resume(struct client *c, const uint8_t *body,
	    size_t len);
int	handle_publish(struct client *c, uint8_t flags, const uint8_t *body,
	    size_t len);
int	handle_puback(struct client *c, const uint8_t *body, size_t len);
int	handle_pubrec(struct client *c, const uint8_t *body, size_t len);
int	handle_pubrel(struct client *c, const uint8_t *body, size_t len);
int	handle_pubcomp(struct client *c, const uint8_t *body, size_t len);
int	handle_subscribe(struct client *c, const uint8_t *body, size_t len);
void	subscribe_release(struct client *c, const uint8_t *data, size_t len,
	    size_t pkt_len);
int	handle_unsubscribe(struct client *c, const uint8_t *body, size_t len);
int	handle_pingreq(struct client *c, size_t len);
int	handle_disconnect(struct client *c, const uint8_t *body,
	    size_t len);
int	handle_auth(struct client *c, const uint8_t *body, size_t len);

/* handle_publish.c: the publish pipeline shared with wills. */
int	broker_accept_publish(struct broker *b, struct client *c,
	    struct msg *m, uint16_t pid);
void	broker_store_qos2_clear(struct broker *b, const char *client_id);

/* persist.c: persistent sessions in the store */
int	broker_submit(struct broker *b, struct store_item *it);
void	persist_session_save(struct broker *b, struct session *s);
void	persist_session_delete(struct broker *b, struct session *s);
uint64_t persist_msg_add(struct broker *b, struct session *s, struct msg *m,
	    uint8_t qos, bool retain);
void	persist_msg_delete(struct broker *b, uint64_t key);
int	persist_msg_pubrel(struct broker *b, uint64_t key, uint16_t pid);
int	persist_load(struct broker *b);

/* access.c: logins and ACL checks (see there). */
enum { ACCESS_GO = 0, ACCESS_WAIT = 1 };
int	access_login(struct client *c, const struct codec_connect *cc,
	    const uint8_t *body, size_t len);
void	access_client_gone(struct client *c);
bool	access_may_publish(struct broker *b, const char *user,
	    const char *cid, const char *topic, size_t len);
bool	access_publish(struct client *c, const char *topic, size_t len);
bool	access_subscribe(struct client *c, const char *filter, size_t len);
bool	access_deliver(struct broker *b, struct session *s,
	    const struct msg *m, bool when_unknown);
/* access_deliver() without counting a denial (a shared member's choice). */
bool	access_may_read(const struct broker *b, const struct session *s,
	    const struct msg *m, bool when_unknown);
int	access_session_ident(struct session *s, const char *user);
void	access_free(struct broker *b);

/* outbound.c */
void	outbound_fanout(struct broker *b, struct msg *m);
void	outbound_deliver(struct broker *b, struct session *s, struct msg *m,
	    uint8_t qos, bool retain);
/* outbound_deliver() of a copy for shared subscription group share. */
void	outbound_deliver_shared(struct broker *b, struct session *s,
	    struct msg *m, uint8_t qos, bool retain, uint32_t share);
void	outbound_pump(struct broker *b, struct session *s);
void	outbound_resume(struct broker *b, struct session *s);
/* The retained messages for a new subscription of s to filter with
 * granted qos and Subscription Identifier sub_id (0: none). */
void	outbound_send_retained(struct broker *b, struct session *s,
	    const char *filter, size_t len, uint8_t qos, uint32_t sub_id);
void	outbound_drop_session(struct broker *b, struct session *s);
/*
 * Removes retained message m (borrowed), whose expiry passed, from the
 * retained trie and, through the store, from the database; nothing when
 * the topic holds another message by now.
 */
void	outbound_retained_expire(struct broker *b, struct msg *m);

#endif
