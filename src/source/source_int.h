/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Source internals shared by source.c (the set, start-up state, commit
 * notifications) and link.c (one connection's state machine). Not for
 * other modules.
 */
#ifndef GW_SOURCE_INT_H
#define GW_SOURCE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "deliver/backoff.h"
#include "log.h"
#include "net/conn.h"
#include "net/ev.h"
#include "source/source.h"

struct config_source;
struct tls_ctx;

enum link_state {
	LINK_IDLE = 0,		/* waiting to reconnect */
	LINK_CONNECTING,	/* TCP connect in progress */
	LINK_TLS,		/* TLS handshake in progress */
	LINK_CONNACK,		/* CONNECT sent, waiting for CONNACK */
	LINK_UP,		/* CONNACK accepted */
	LINK_DONE,		/* shut down */
};

/* An acknowledgement waiting for the store to commit through seq. */
struct link_ack {
	uint64_t	 seq;
	uint16_t	 pid;
	uint8_t		 type;		/* CODEC_PUBACK/PUBREC/PUBCOMP */
};

#define LINK_MAX_ACKS		65536	/* held acks before reads pause */
#define LINK_KEY_MAX		(sizeof "$source/" + 64)

struct source_link {
	struct sources	*ss;
	const struct config_source *cfg;	/* borrowed */
	char		 key[LINK_KEY_MAX];	/* QoS 2 key in the store */
	char		 origin[300];		/* "host:port" */
	uint8_t		 state;			/* enum link_state */
	struct conn	 conn;			/* fd -1 when not connected */
	struct tls_ctx	*tls;			/* owned; NULL: plain TCP */
	unsigned	 ev_mask;		/* epoll interest */
	struct ev_timer	 timer;			/* reconnect, connect and
						 * keepalive deadlines */
	struct ev_timer	 retry;			/* store full: parse again */
	bool		 blocked;		/* waiting for store room */
	bool		 ping_out;		/* PINGREQ unanswered */
	bool		 intake_stopped;
	bool		 subscribed;		/* SUBACK received */
	long long	 last_tx_ms;		/* monotonic, last packet sent */
	long long	 last_rx_ms;		/* monotonic, last packet read */
	uint32_t	 attempt;		/* failures since last success */
	unsigned	 addr_next;		/* address of the host to try */
	uint8_t		*qos2;			/* bitmap of recorded pids */
	uint32_t	 nqos2;
	uint64_t	 last_seq;		/* seq of the newest held ack */
	struct link_ack	*acks;			/* FIFO ring */
	size_t		 ack_head, ack_len, ack_cap;
	struct source_stats stats;
	struct log_limit err_log;
	char		 last_fail[200];	/* last failure logged */
};

struct sources {
	struct ev_loop	*loop;
	struct broker	*broker;
	struct store	*store;
	const struct gw_config *cfg;
	struct backoff_rng rng;			/* reconnect jitter */
	size_t		 n;
	struct source_link links[];		/* n of them */
};

/* link.c */
/* Starts (or restarts after the backoff) the connection of l. */
void	link_connect(struct source_link *l);
/* Tears the connection down; reconnects after a backoff unless done. */
void	link_drop(struct source_link *l, const char *why);
/* Sends the held acks of l that the store committed; all if force. */
void	link_release_acks(struct source_link *l, uint64_t committed,
	    bool force);
/* Parses what l has buffered (also after the store had room again). */
void	link_process_input(struct source_link *l);
/*
 * After the store had room again: parses what l has buffered, then reads
 * what TLS holds decrypted (epoll does not see those bytes).
 */
void	link_resume(struct source_link *l);
/* Writes l's output; arms EV_WRITE while some is left. */
void	link_flush(struct source_link *l);

/* source.c: the QoS 2 packet id bitmap of a link. */
bool	source_qos2_has(const struct source_link *l, uint16_t pid);
int	source_qos2_add(struct source_link *l, uint16_t pid);
void	source_qos2_del(struct source_link *l, uint16_t pid);

#endif
