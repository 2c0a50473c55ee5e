/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * What the webhook delivery thread (loop.c) and the bridge thread
 * (bridge.c) share in how they face the other threads: results on their
 * way to the store thread, the set of outbox ids they hold (which the
 * store's drop_oldest pass skips), and per-route counters. Each thread
 * embeds its own instances; see results.c for the design.
 */
#ifndef GW_DELIVER_RESULTS_H
#define GW_DELIVER_RESULTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outbox_result;
struct outbox_row;
struct queue;

/* Results for the store: owned by one thread, no lock. */
struct results {
	struct queue		*q;	/* of struct outbox_result */
	void			(*cb)(void *);	/* after pushes: nudge */
	void			*ctx;
	struct outbox_result	*unpushed;	/* the queue was full */
	size_t			 nunpushed;
	size_t			 capunpushed;
	size_t			 npushed;	/* since the last cb */
};

/* Outbox ids a thread holds (read ahead or in flight), own lock. */
struct results_held {
	pthread_mutex_t		 mu;
	_Atomic uint64_t	 drop_seq;	/* odd during a drop pass */
	int64_t			*ids;		/* unsorted */
	size_t			 n;
	size_t			 cap;
};

/* Counters of one route name; never freed before the list. */
struct results_ctr {
	char			*name;
	_Atomic int		 state;		/* bridge: its state */
	_Atomic uint64_t	 sent;		/* bridge: publishes */
	_Atomic uint64_t	 delivered;	/* 2xx, or acknowledged */
	_Atomic uint64_t	 retried;
	_Atomic uint64_t	 dead;
	_Atomic uint64_t	 dropped;	/* by the outbox cap */
	_Atomic uint64_t	 depth;		/* rows in the outbox */
	_Atomic int64_t		 oldest_ms;	/* created, 0: none */
	_Atomic uint32_t	 in_flight;
	_Atomic uint64_t	 connects;	/* bridge: connections made */
	_Atomic uint64_t	 expired;	/* bridge: 5.0 expiry passed */
	struct results_ctr	*next;
};

/* Every route's counters, own lock; entries are added, never removed. */
struct results_ctrs {
	pthread_mutex_t		 mu;
	struct results_ctr	*head;
};

/*
 * One route's counters as deliver_stats() and bridge_stats() report them:
 * a snapshot of a struct results_ctr. The bridge-only fields stay 0 for a
 * webhook route.
 */
struct results_route_stats {
	const char	*route;		/* borrowed for the callback */
	int		 state;		/* bridge: enum bridge_state */
	uint64_t	 sent;		/* bridge: publishes handed to the
					 * socket */
	uint64_t	 delivered;	/* rows delivered (2xx) or
					 * acknowledged upstream */
	uint64_t	 retried;	/* rows rescheduled, publishes sent
					 * again */
	uint64_t	 dead;		/* rows dead-lettered */
	uint64_t	 dropped;	/* rows dropped by the outbox cap */
	uint64_t	 depth;		/* rows in the outbox (gauge) */
	int64_t		 oldest_ms;	/* created_ms of the oldest, 0: none */
	uint32_t	 in_flight;	/* requests or unacknowledged
					 * publishes now */
	uint64_t	 connects;	/* bridge: successful connections */
	uint64_t	 expired;	/* bridge: rows deleted unsent, their
					 * 5.0 Message Expiry passed */
};

typedef void (*results_route_stats_cb)(const struct results_route_stats *st,
		    void *ctx);

/* Sets up r to push to q (borrowed); cb(ctx) after pushes, or NULL. */
void	 results_init(struct results *r, struct queue *q,
	    void (*cb)(void *), void *ctx);

/*
 * Queues one result, taking its strings; what the queue has no room for
 * waits in r until results_flush(). Never blocks. false when it was lost
 * to a lack of memory (logged; the row stays in the outbox and is sent
 * again after a restart).
 */
bool	 results_push(struct results *r, struct outbox_result *res);

/* Retries what waits, then calls cb if anything was queued since. */
void	 results_flush(struct results *r);

/* How many results wait for room in the queue. */
size_t	 results_waiting(const struct results *r);

/* At the thread's end: frees what never reached the queue (logged). */
void	 results_discard(struct results *r, const char *who);

/* The held-id set. Any thread; each call takes h->mu. */
void	 results_held_init(struct results_held *h);
void	 results_held_destroy(struct results_held *h);
void	 results_held_add(struct results_held *h,
	    const struct outbox_row *rows, size_t n);
void	 results_held_del(struct results_held *h,
	    const struct outbox_row *rows, size_t n);

/* The store's drop_oldest pass starts or ends (deliver_drop_mark()). */
void	 results_held_drop_mark(struct results_held *h);
/* Before reading rows: the drop pass sequence number. */
uint64_t results_held_seq(struct results_held *h);
/*
 * After reading rows (added to the set already): whether a drop pass ran
 * or began since seq, so they may be gone and must be read again.
 */
bool	 results_held_raced(struct results_held *h, uint64_t seq);
/* Adds n to name's dropped counter (created first when create). */
void	 results_ctr_dropped(struct results_ctrs *l, const char *name,
	    uint64_t n, bool create);

/* A sorted copy of the held ids (gw_free it). 0 or GW_ENOMEM. */
int	 results_held_ids(struct results_held *h, int64_t **ids, size_t *n);

/* The counter list. Any thread; each call takes l->mu. */
void	 results_ctrs_init(struct results_ctrs *l);
void	 results_ctrs_destroy(struct results_ctrs *l);

/* name's counters; created on first use when create. NULL: none/ENOMEM. */
struct results_ctr *results_ctr_get(struct results_ctrs *l,
	    const char *name, bool create);

/*
 * Calls cb with a snapshot of every route's counters, in the lock (cb
 * copies, never blocks).
 */
void	 results_ctrs_stats(struct results_ctrs *l, results_route_stats_cb cb,
	    void *ctx);

#endif
