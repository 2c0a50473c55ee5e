/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the delivery thread shared by loop.c (the thread: claims,
 * requests, results) and state.c (what other threads touch too: the route
 * tables, counters, the held-id set; and the small helpers both use).
 * Nothing outside src/deliver/ includes this.
 */
#ifndef GW_DELIVER_LOOP_INT_H
#define GW_DELIVER_LOOP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "deliver/backoff.h"
#include "deliver/loop.h"
#include "deliver/results.h"
#include "deliver/webhook.h"
#include "log.h"
#include "store/outbox.h"

struct deliver_route_st;

/* One request: rows sent together, in flight or held for a retry. */
struct deliver_req {
	struct deliver_route_st	*route;
	struct outbox_row	*rows;		/* owned, n of them */
	size_t			 n;
	uint32_t		 attempts;	/* failed attempts so far */
	int64_t			 next_ms;	/* held: not before */
	struct webhook_req	*wr;		/* while in flight */
	struct deliver_req	*next;		/* held list */
	struct deliver_req	*iprev;		/* in-flight list */
	struct deliver_req	*inext;
};

/* A route's state, owned by the thread. */
struct deliver_route_st {
	struct deliver_route	 conf;		/* deep copy */
	struct results_ctr	*ctr;
	int64_t			 cursor;	/* highest id handed out */
	struct outbox_row	*buf;		/* read ahead, id order */
	size_t			 nbuf;
	size_t			 bufcap;
	size_t			 bufbytes;
	bool			 more;		/* a claim may find rows */
	struct deliver_req	*held;		/* RETRY, waiting */
	size_t			 nheld;
	unsigned		 inflight;
	unsigned		 max_in_flight;	/* effective */
	double			 tokens;	/* rate limiter */
	long long		 tb_ms;		/* last refill (mono) */
	bool			 gone;		/* removed by a reload */
	struct log_limit	 loglim;
};

struct deliver {
	/* Set at start, read-only after. */
	char			*db_path;
	uint32_t		 prefetch;
	uint32_t		 gauge_ms;
	pthread_t		 thread;
	CURLM			*multi;

	/* Cross-thread. */
	_Atomic bool		 woken;
	_Atomic bool		 stop;
	_Atomic uint32_t	 grace_ms;
	pthread_mutex_t		 mu;		/* guards the fields below */
	pthread_cond_t		 cond;		/* start handshake */
	int			 start_rc;	/* 1: pending, then 0/err */
	struct deliver_route	*pending;	/* new table, owned */
	size_t			 npending;
	bool			 have_pending;
	struct results_held	 held;		/* own lock */
	struct results_ctrs	 ctrs;		/* own lock */

	/* Delivery thread only. */
	struct outbox_reader	*reader;
	const char		*instance_id;	/* borrowed from reader */
	unsigned long long	 db_ino;	/* inode the reader opened */
	struct backoff_rng	 rng;
	struct deliver_route_st	**routes;
	size_t			 nroutes;
	struct webhook_req	**pool;		/* idle requests */
	size_t			 npool;
	size_t			 cappool;
	struct results		 res;		/* on their way to the store */
	long long		 gauge_next;	/* mono ms */
	struct deliver_req	*inflight;	/* every request in flight */
};

/* state.c: route tables (any thread). */
int	 deliver_copy_routes(const struct deliver_route *, size_t,
	    struct deliver_route **);
void	 deliver_free_routes(struct deliver_route *, size_t);
int	 deliver_route_copy(struct deliver_route *,
	    const struct deliver_route *);
void	 deliver_route_conf_free(struct deliver_route *);

/* state.c: results, requests, the handle pool (delivery thread). */
void	 deliver_result_rows(struct deliver *, struct deliver_req *,
	    enum outbox_verdict, int, int64_t, const char *, const char *,
	    bool);
void	 deliver_req_free(struct deliver *, struct deliver_req *, bool);
void	 deliver_hold(struct deliver_route_st *, struct deliver_req *);
void	 deliver_inflight_link(struct deliver *, struct deliver_req *);
void	 deliver_inflight_unlink(struct deliver *, struct deliver_req *);
struct webhook_req *deliver_pool_get(struct deliver *);
void	 deliver_pool_put(struct deliver *, struct webhook_req *);

#endif
