/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounded queue between threads; see queue.h.
 *
 * A ring of cap fixed-size slots in one allocation, guarded by one mutex.
 * head is the slot the consumer reads next, len the number of full slots;
 * the producer writes at (head + len) % cap. Producers never wait: a full
 * (or closed) queue answers GW_EFULL at once. The consumer waits on a
 * condition variable bound to CLOCK_MONOTONIC, so a wall-clock jump cannot
 * stretch or shorten its timeout. Producers signal only when a consumer is
 * actually waiting, which keeps the uncontended push to a lock, a memcpy
 * and an unlock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "mem.h"
#include "queue.h"

struct queue {
	pthread_mutex_t	 lock;
	pthread_cond_t	 nonempty;	/* signalled on push and close */
	size_t		 elem_size;	/* bytes per slot */
	size_t		 cap;		/* slots */
	size_t		 head;		/* next slot to pop */
	size_t		 len;		/* full slots */
	unsigned	 waiting;	/* consumers blocked in queue_pop */
	bool		 closed;	/* queue_close() was called */
	uint64_t	 seq;		/* last seq given by queue_push_seq */
	unsigned char	*slots;		/* cap * elem_size bytes */
};

static int	queue_push_locked(struct queue *, const void *);
static void	queue_deadline(struct timespec *, int);

/* Returns a new empty queue of cap slots of elem_size bytes; NULL on ENOMEM
 * or a zero size. Any thread. */
struct queue *
queue_new(size_t elem_size, size_t cap)
{
	struct queue *q;
	pthread_condattr_t ca;

	if (elem_size == 0 || cap == 0 || cap > SIZE_MAX / elem_size)
		return NULL;
	if ((q = gw_calloc(1, sizeof *q)) == NULL)
		return NULL;
	q->elem_size = elem_size;
	q->cap = cap;
	if ((q->slots = gw_malloc(cap * elem_size)) == NULL)
		goto fail;
	if (pthread_mutex_init(&q->lock, NULL) != 0)
		goto fail;
	if (pthread_condattr_init(&ca) != 0) {
		pthread_mutex_destroy(&q->lock);
		goto fail;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&q->nonempty, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&q->lock);
		goto fail;
	}
	pthread_condattr_destroy(&ca);
	return q;

fail:
	gw_free(q->slots);
	gw_free(q);
	return NULL;
}

/* Frees q and the bytes still inside (not what they point to). NULL ok. */
void
queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->nonempty);
	pthread_mutex_destroy(&q->lock);
	gw_free(q->slots);
	gw_free(q);
}

/* Copies elem into the tail slot; the caller holds the lock. */
static int
queue_push_locked(struct queue *q, const void *elem)
{
	size_t tail;

	if (q->closed || q->len == q->cap)
		return GW_EFULL;
	tail = q->head + q->len;
	if (tail >= q->cap)
		tail -= q->cap;
	memcpy(q->slots + tail * q->elem_size, elem, q->elem_size);
	q->len++;
	if (q->waiting > 0)
		pthread_cond_signal(&q->nonempty);
	return 0;
}

/* Copies elem in; 0 or GW_EFULL (full or closed). Any producer thread. */
int
queue_push(struct queue *q, const void *elem)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = queue_push_locked(q, elem);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* queue_push() that stamps elem with the next queue seq; see queue.h. */
int
queue_push_seq(struct queue *q, void *elem, size_t seq_off, uint64_t *seq)
{
	uint64_t next;
	int rc;

	if (seq_off > q->elem_size || q->elem_size - seq_off < sizeof next)
		return GW_EMALFORMED;
	pthread_mutex_lock(&q->lock);
	if (q->closed || q->len == q->cap) {
		pthread_mutex_unlock(&q->lock);
		return GW_EFULL;
	}
	next = q->seq + 1;
	memcpy((unsigned char *)elem + seq_off, &next, sizeof next);
	rc = queue_push_locked(q, elem);
	if (rc == 0)
		q->seq = next;
	pthread_mutex_unlock(&q->lock);
	if (rc == 0 && seq != NULL)
		*seq = next;
	return rc;
}

/* Fills *ts with CLOCK_MONOTONIC now + ms. */
static void
queue_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Pops up to max elements, waiting up to timeout_ms for the first one.
 * Returns how many were copied to out. Consumer thread. */
size_t
queue_pop(struct queue *q, void *out, size_t max, int timeout_ms)
{
	struct timespec deadline;
	size_t n, first;
	int rc;

	if (max == 0)
		return 0;
	if (timeout_ms > 0)
		queue_deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (q->len == 0 && !q->closed && timeout_ms != 0) {
		q->waiting++;
		if (timeout_ms < 0)
			rc = pthread_cond_wait(&q->nonempty, &q->lock);
		else
			rc = pthread_cond_timedwait(&q->nonempty, &q->lock,
			    &deadline);
		q->waiting--;
		if (rc == ETIMEDOUT)
			break;
	}
	n = q->len < max ? q->len : max;
	if (n > 0) {
		/* At most two copies: up to the end of the ring, then 0.. */
		first = q->cap - q->head;
		if (first > n)
			first = n;
		memcpy(out, q->slots + q->head * q->elem_size,
		    first * q->elem_size);
		if (n > first)
			memcpy((unsigned char *)out + first * q->elem_size,
			    q->slots, (n - first) * q->elem_size);
		q->head += n;
		if (q->head >= q->cap)
			q->head -= q->cap;
		q->len -= n;
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* Refuses later pushes and wakes the consumer. Any thread. */
void
queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

/* Elements inside now (a snapshot). Any thread. */
size_t
queue_len(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len;
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* Slots, fixed at queue_new(). */
size_t
queue_cap(const struct queue *q)
{
	return q->cap;
}
