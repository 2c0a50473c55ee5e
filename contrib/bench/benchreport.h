/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * The state of an mqbench run, shared by the load generator (mqbench.c),
 * its command line (benchopts.c) and its latency histogram and report
 * (benchreport.c). One thread owns all of it.
 */
#ifndef GW_BENCHREPORT_H
#define GW_BENCHREPORT_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Latency histogram: exact below 128, then 64 buckets per power of two. */
#define HIST_SUB		64
#define HIST_BUCKETS		(HIST_SUB * 40)

enum conn_state {
	CS_CONNECTING,		/* non-blocking connect() in progress */
	CS_CONNACK,		/* CONNECT sent, waiting for CONNACK */
	CS_SUBACK,		/* subscriber: SUBSCRIBE sent */
	CS_READY,		/* waiting for the others before starting */
	CS_RUN,			/* publishing / receiving */
	CS_DRAIN,		/* DISCONNECT sent, waiting for the close */
	CS_DONE,		/* socket closed */
};

struct bench;

struct conn {
	struct bench	*b;
	int		 fd;
	int		 idx;		/* publisher number, -1 = subscriber */
	enum conn_state	 state;
	uint32_t	 events;	/* epoll events registered */
	struct buf	 in;		/* bytes read, not yet parsed */
	struct buf	 out;		/* bytes to write */

	char		 topic[256];
	size_t		 topic_len;
	uint64_t	 quota;		/* messages this publisher sends */
	uint64_t	 sent;		/* PUBLISHes queued in out or written */
	uint64_t	 acked;		/* PUBACKs received (QoS 1) */
	uint64_t	 received;	/* subscriber: PUBLISHes received */
	unsigned	 inflight;	/* QoS 1/2 unacknowledged */
	unsigned	 window;	/* -w or Receive Maximum */
	uint16_t	 next_id;	/* next packet id to try */
	uint64_t	*sent_ns;	/* QoS 1/2: sent by id, 0 free */
	uint8_t		*rec;		/* QoS 2: PUBREC seen, by id */
	struct buf	 tmpl;		/* QoS 0: one encoded PUBLISH */
	uint64_t	 done_ns;	/* last write (QoS 0) or ack */
	uint64_t	 drain_ns;	/* when DISCONNECT was queued */
	bool		 shut;		/* write side shut down */
};

struct bench {
	/* Options. */
	uint8_t		 version;	/* -V: level 4 or 5 */
	const char	*host;
	const char	*port;
	unsigned	 nconns;
	uint64_t	 total;
	int		 qos;
	size_t		 size;
	unsigned	 window;
	const char	*prefix;
	const char	*suffix;	/* -x: topic PREFIX/i/SUFFIX, or NULL */
	const char	*literal;	/* -P: payload text, or NULL */
	bool		 sub;
	uint8_t		 sub_qos;	/* -Q */
	const char	*filter;	/* -F, or NULL for PREFIX/# */
	unsigned	 hold_s;	/* -H */
	const char	*ready_file;	/* -R, or NULL */
	bool		 json;
	unsigned	 timeout_s;
	unsigned	 idle_s;

	/* State. */
	struct addrinfo	*ai;
	int		 ep;
	struct conn	*conns;		/* nconns publishers */
	struct conn	*subc;		/* subscriber or NULL */
	uint8_t		*payload;
	unsigned	 opened;	/* connections opened so far */
	unsigned	 ready;		/* connections in CS_READY */
	uint64_t	 hold_end_ns;	/* -H: end of the hold, 0 before */
	unsigned	 open;		/* connections not CS_DONE */
	unsigned	 pubs_done;	/* publishers with done_ns set */
	uint64_t	 begin_ns;	/* program start (deadline base) */
	uint64_t	 start_ns;	/* load started (all ready) */
	long long	 start_wall_ms;
	uint64_t	 pub_end_ns;	/* last publisher done */
	long long	 pub_end_wall_ms;
	uint64_t	 last_rx_ns;	/* subscriber: last PUBLISH */
	uint64_t	 closed_ns;	/* last publisher closed by the broker */
	uint64_t	 unexpected;	/* acks for ids not in flight */
	uint16_t	 receive_max;	/* least Receive Maximum, 0 */
	uint64_t	 hist[HIST_BUCKETS];
	uint64_t	 hist_n;
	uint64_t	 lat_max;
	const char	*status;	/* "ok", "timeout", "error" */
	char		 error[256];
};

/*
 * Fills b, zeroed first, with the defaults and the command line's options
 * (benchopts.c); prints the usage or the bad option and exits 1 on error.
 */
void	benchopts_parse(struct bench *b, int argc, char **argv);

/* Adds one publish-to-ack latency (microseconds) to b's histogram. */
void	benchreport_add_latency(struct bench *b, uint64_t us);

/* Prints the run's figures to stdout: one JSON line with -j, else text. */
void	benchreport_print(struct bench *b);

#endif
