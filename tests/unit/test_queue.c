/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the bounded inter-thread queue: FIFO order across the ring
 * wrap, full, pop timeout, close, sequence stamping and a two-producer
 * stress run checked for loss, duplication and per-producer order.
 */
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "clock.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "queue.h"

struct elem {
	uint32_t	producer;
	uint32_t	n;
	uint64_t	seq;
};

static void
test_push_pop(void)
{
	struct queue *q;
	int in[8], out[8], i, round;
	size_t n;

	q = queue_new(sizeof(int), 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(queue_cap(q), 5);
	CU_ASSERT_EQUAL(queue_len(q), 0);
	/* Several rounds so head and tail wrap around the ring. */
	for (round = 0; round < 7; round++) {
		for (i = 0; i < 3; i++) {
			in[i] = round * 10 + i;
			CU_ASSERT_EQUAL(queue_push(q, &in[i]), 0);
		}
		CU_ASSERT_EQUAL(queue_len(q), 3);
		memset(out, 0, sizeof out);
		n = queue_pop(q, out, 2, 0);
		CU_ASSERT_EQUAL(n, 2);
		CU_ASSERT_EQUAL(out[0], round * 10);
		CU_ASSERT_EQUAL(out[1], round * 10 + 1);
		n = queue_pop(q, out, 8, 0);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_EQUAL(out[0], round * 10 + 2);
	}
	CU_ASSERT_EQUAL(queue_pop(q, out, 0, 0), 0);
	queue_free(q);
	queue_free(NULL);
	CU_ASSERT_PTR_NULL(queue_new(0, 4));
	CU_ASSERT_PTR_NULL(queue_new(4, 0));
}

static void
test_full(void)
{
	struct queue *q;
	int v, out[4];

	q = queue_new(sizeof(int), 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	for (v = 0; v < 3; v++)
		CU_ASSERT_EQUAL(queue_push(q, &v), 0);
	v = 99;
	CU_ASSERT_EQUAL(queue_push(q, &v), GW_EFULL);
	CU_ASSERT_EQUAL(queue_len(q), 3);
	CU_ASSERT_EQUAL(queue_pop(q, out, 1, 0), 1);
	CU_ASSERT_EQUAL(out[0], 0);
	CU_ASSERT_EQUAL(queue_push(q, &v), 0);
	CU_ASSERT_EQUAL(queue_pop(q, out, 4, 0), 3);
	CU_ASSERT_EQUAL(out[0], 1);
	CU_ASSERT_EQUAL(out[1], 2);
	CU_ASSERT_EQUAL(out[2], 99);
	queue_free(q);
}

static void
test_timeout(void)
{
	struct queue *q;
	long long t0, dt;
	int out;

	q = queue_new(sizeof(int), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	t0 = clock_mono_ms();
	CU_ASSERT_EQUAL(queue_pop(q, &out, 1, 0), 0);
	dt = clock_mono_ms() - t0;
	/* Does not wait: far below the 120 ms wait below, even when busy. */
	CU_ASSERT(dt < 100);
	t0 = clock_mono_ms();
	CU_ASSERT_EQUAL(queue_pop(q, &out, 1, 120), 0);
	dt = clock_mono_ms() - t0;
	CU_ASSERT(dt >= 110);
	CU_ASSERT(dt < 2000);
	queue_free(q);
}

static void *
closer(void *arg)
{
	struct timespec ts = { 0, 100 * 1000000L };

	nanosleep(&ts, NULL);
	queue_close(arg);
	return NULL;
}

static void
test_close(void)
{
	struct queue *q;
	pthread_t t;
	long long t0, dt;
	int v, out[4];

	q = queue_new(sizeof(int), 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	/* A consumer waiting forever is woken by close. */
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, closer, q), 0);
	t0 = clock_mono_ms();
	CU_ASSERT_EQUAL(queue_pop(q, out, 4, -1), 0);
	dt = clock_mono_ms() - t0;
	CU_ASSERT(dt >= 90);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(queue_push(q, &v), GW_EFULL);
	queue_free(q);

	/* What was inside before close is still popped, then 0. */
	q = queue_new(sizeof(int), 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	v = 1;
	CU_ASSERT_EQUAL(queue_push(q, &v), 0);
	v = 2;
	CU_ASSERT_EQUAL(queue_push(q, &v), 0);
	queue_close(q);
	CU_ASSERT_EQUAL(queue_pop(q, out, 4, -1), 2);
	CU_ASSERT_EQUAL(out[0], 1);
	CU_ASSERT_EQUAL(out[1], 2);
	CU_ASSERT_EQUAL(queue_pop(q, out, 4, -1), 0);
	CU_ASSERT_EQUAL(queue_pop(q, out, 4, 1000), 0);
	queue_free(q);
}

static void
test_seq(void)
{
	struct queue *q;
	struct elem e, out[4];
	uint64_t seq;

	q = queue_new(sizeof e, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	memset(&e, 0, sizeof e);
	CU_ASSERT_EQUAL(queue_push_seq(q, &e, offsetof(struct elem, seq),
	    &seq), 0);
	CU_ASSERT_EQUAL(seq, 1);
	CU_ASSERT_EQUAL(e.seq, 1);
	CU_ASSERT_EQUAL(queue_push_seq(q, &e, offsetof(struct elem, seq),
	    NULL), 0);
	CU_ASSERT_EQUAL(e.seq, 2);
	seq = 77;
	CU_ASSERT_EQUAL(queue_push_seq(q, &e, offsetof(struct elem, seq),
	    &seq), GW_EFULL);
	CU_ASSERT_EQUAL(seq, 77);
	CU_ASSERT_EQUAL(e.seq, 2);
	CU_ASSERT_EQUAL(queue_pop(q, out, 4, 0), 2);
	CU_ASSERT_EQUAL(out[0].seq, 1);
	CU_ASSERT_EQUAL(out[1].seq, 2);
	CU_ASSERT_EQUAL(queue_push_seq(q, &e, offsetof(struct elem, seq),
	    &seq), 0);
	CU_ASSERT_EQUAL(seq, 3);
	/* An offset that does not leave room for a uint64_t is refused. */
	CU_ASSERT_EQUAL(queue_push_seq(q, &e, sizeof e - 4, NULL),
	    GW_EMALFORMED);
	queue_free(q);
}

#define STRESS_PER_PRODUCER	200000

struct producer {
	struct queue	*q;
	uint32_t	 id;
	unsigned long	 full;		/* GW_EFULL answers seen */
};

static void *
producer_run(void *arg)
{
	struct producer *p = arg;
	struct elem e;
	uint32_t i;

	memset(&e, 0, sizeof e);
	e.producer = p->id;
	for (i = 0; i < STRESS_PER_PRODUCER; i++) {
		e.n = i;
		while (queue_push_seq(p->q, &e, offsetof(struct elem, seq),
		    NULL) == GW_EFULL) {
			p->full++;
			sched_yield();
		}
	}
	return NULL;
}

static void
test_stress(void)
{
	struct producer p[2];
	pthread_t t[2];
	struct elem out[64];
	uint32_t next[2] = { 0, 0 };
	uint64_t last_seq = 0;
	unsigned long total = 0, errors = 0;
	size_t n, i;
	int k;

	memset(p, 0, sizeof p);
	p[0].q = queue_new(sizeof(struct elem), 128);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p[0].q);
	p[1].q = p[0].q;
	p[0].id = 0;
	p[1].id = 1;
	for (k = 0; k < 2; k++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[k], NULL, producer_run,
		    &p[k]), 0);
	while (total < 2UL * STRESS_PER_PRODUCER) {
		n = queue_pop(p[0].q, out, 64, 2000);
		if (n == 0) {
			errors++;
			break;
		}
		for (i = 0; i < n; i++) {
			if (out[i].producer > 1 ||
			    out[i].n != next[out[i].producer] ||
			    out[i].seq != last_seq + 1)
				errors++;
			else
				next[out[i].producer]++;
			last_seq = out[i].seq;
		}
		total += n;
	}
	for (k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	CU_ASSERT_EQUAL(errors, 0);
	CU_ASSERT_EQUAL(total, 2UL * STRESS_PER_PRODUCER);
	CU_ASSERT_EQUAL(next[0], STRESS_PER_PRODUCER);
	CU_ASSERT_EQUAL(next[1], STRESS_PER_PRODUCER);
	CU_ASSERT_EQUAL(queue_len(p[0].q), 0);
	queue_free(p[0].q);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("queue", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "push/pop and wrap", test_push_pop) == NULL ||
	    CU_add_test(s, "full", test_full) == NULL ||
	    CU_add_test(s, "timeout", test_timeout) == NULL ||
	    CU_add_test(s, "close", test_close) == NULL ||
	    CU_add_test(s, "seq stamping", test_seq) == NULL ||
	    CU_add_test(s, "two producers stress", test_stress) == NULL) {
		return cutest_setup_failed();
	}
	return cutest_run();
}
