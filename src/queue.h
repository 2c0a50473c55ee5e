/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounded multi-producer single-consumer queue of fixed-size elements
 * between threads. Producers never block: a full queue answers GW_EFULL and
 * the producer applies backpressure. The consumer waits with a timeout on a
 * condition variable. Elements are copied in and out by value; whatever they
 * point to is owned by the receiver once popped.
 */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct queue;

/* Returns a new queue of cap elements of elem_size bytes; NULL on ENOMEM. */
struct queue	*queue_new(size_t elem_size, size_t cap);
/* Frees the queue (elements still inside are dropped as bytes). NULL ok. */
void		 queue_free(struct queue *q);

/*
 * Copies elem in. 0, or GW_EFULL (nothing copied) when full or closed.
 * Never blocks.
 */
int		 queue_push(struct queue *q, const void *elem);

/*
 * Like queue_push(), but also stamps the element with the queue's own
 * sequence counter (1, 2, ...) under the queue lock, so sequence order is
 * queue order even with several producers: the uint64_t at byte offset
 * seq_off inside elem is set (in elem and in the copy) and returned in *seq
 * (may be NULL). On GW_EFULL neither elem nor the counter changes.
 */
int		 queue_push_seq(struct queue *q, void *elem, size_t seq_off,
		    uint64_t *seq);

/*
 * Copies up to max elements into out (max * elem_size bytes), waiting up to
 * timeout_ms (-1 forever, 0 not at all) for the first one. Returns the
 * number popped (0 on timeout or after queue_close() once empty).
 */
size_t		 queue_pop(struct queue *q, void *out, size_t max,
		    int timeout_ms);

/* Wakes a waiting consumer; later pops return what is left then 0. */
void		 queue_close(struct queue *q);

size_t		 queue_len(struct queue *q);	/* elements inside now */
size_t		 queue_cap(const struct queue *q);

#endif
