/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * Internals of the bridge shared by bridge.c (the thread, routes, rows),
 * bridge_state.c (route tables, counters, held ids, results) and
 * bridge_link.c (one route's Paho client: connect, send, callbacks).
 * Nothing outside src/deliver/ includes this.
 */
#ifndef GW_BRIDGE_INT_H
#define GW_BRIDGE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <MQTTAsync.h>

#include "deliver/backoff.h"
#include "deliver/bridge.h"
#include "deliver/mqtt_shim.h"
#include "deliver/results.h"
#include "log.h"
#include "store/outbox.h"

/* What the Paho callbacks last said about the connection. */
enum bridge_conn_ev {
	BRIDGE_EV_NONE = 0,
	BRIDGE_EV_CONNECTED,
	BRIDGE_EV_FAILED,	/* a connection attempt failed */
	BRIDGE_EV_LOST,		/* an established connection dropped */
};

/* A finished send, as a callback reports it. */
struct bridge_done {
	MQTTAsync_token	 token;
	bool		 ok;
	uint8_t		 reason;	/* failed: a 5.0 reason code
					 * >= 0x80 from upstream, or 0 */
};

/*
 * The callbacks' view of a route: lives as long as the handle (Paho may
 * call back until its client is destroyed), fields under b->mu.
 */
struct bridge_tag {
	struct bridge		*b;
	enum bridge_conn_ev	 ev;
	int			 ev_code;	/* FAILED: Paho's code */
	char			 ev_text[128];	/* cause or server */
	struct bridge_done	*done;		/* finished sends */
	size_t			 ndone;
	size_t			 capdone;
	size_t			 lostdone;	/* did not fit: see below */
	struct bridge_tag	*next;		/* every tag of b */
};

/* A row handed to Paho, or waiting to be (again). */
struct bridge_fl {
	struct outbox_row	 row;
	MQTTAsync_token		 token;
	bool			 sent;		/* Paho has it */
	bool			 acked;		/* result pushed */
	bool			 deleted;	/* ... and committed */
	bool			 resend;	/* sent once before */
	int64_t			 sent_ms;	/* mono ms of the last send */
	int64_t			 not_before;	/* mono ms: refused, sent
						 * again from then */
	uint32_t		 refusals;	/* 5.0 reason codes >= 0x80 */
};

/* A route's settings (deep copy) and state, owned by the thread. */
struct bridge_rt {
	struct bridge_route	 conf;
	char			**urls;		/* conf.urls, Paho spelling */
	struct bridge_tag	*tag;
	struct results_ctr	*ctr;
	MQTTAsync		 cli;		/* NULL until first connect */
	enum bridge_state	 state;
	int64_t			 next_connect;	/* DOWN: mono ms */
	uint32_t		 failures;	/* failed attempts in a row */
	bool			 connected_once;
	int64_t			 cursor;	/* highest id read */
	bool			 more;
	struct outbox_row	*buf;		/* read ahead, id order */
	size_t			 nbuf;
	size_t			 bufcap;
	struct bridge_fl	*fl;		/* in flight, id order */
	size_t			 nfl;
	struct log_limit	 loglim;
};

struct bridge {
	/* Set at start, read-only after. */
	char			*db_path;
	const struct mqtt_shim	*api;
	pthread_t		 thread;

	/* Cross-thread, under mu (the callbacks too). */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cond;		/* CLOCK_MONOTONIC */
	bool			 woken;
	bool			 stop;
	uint32_t		 grace_ms;
	int			 start_rc;	/* 1: pending */
	struct bridge_route	*pending;	/* new table, owned */
	size_t			 npending;
	bool			 have_pending;
	struct bridge_tag	*tags;
	int64_t			*await;		/* pushed, not committed */
	size_t			 nawait;
	size_t			 capawait;
	int64_t			*gone;		/* committed, not seen yet */
	size_t			 ngone;		/* capacity: capawait */
	struct results_held	 held;		/* own lock */
	struct results_ctrs	 ctrs;		/* own lock; added here only */

	/* Bridge thread only. */
	struct outbox_reader	*reader;
	const char		*instance_id;
	uint64_t		 rng;
	struct bridge_rt	**routes;
	size_t			 nroutes;
	int64_t			*seen;		/* gone ids taken */
	size_t			 capseen;
	struct results		 res;		/* on their way to the store */
	long long		 gauge_next;
};

/* bridge_state.c: route tables, results waiting for their commit. */
int	 bridge_routes_copy(const struct bridge_route *, size_t,
	    struct bridge_route **);
void	 bridge_routes_free(struct bridge_route *, size_t);
int	 bridge_route_conf_copy(struct bridge_route *,
	    const struct bridge_route *);
void	 bridge_route_conf_free(struct bridge_route *);
bool	 bridge_route_conf_eq(const struct bridge_route *,
	    const struct bridge_route *);
bool	 bridge_push(struct bridge *, int64_t, enum outbox_verdict,
	    const char *);
size_t	 bridge_take_gone(struct bridge *);

/* bridge_link.c: one route's client (bridge thread). */
int	 bridge_link_connect(struct bridge *, struct bridge_rt *);
int	 bridge_link_send(struct bridge *, struct bridge_rt *,
	    struct bridge_fl *, int64_t);
void	 bridge_link_close(struct bridge *, struct bridge_rt *);
char	*bridge_link_url(const char *);

#endif
