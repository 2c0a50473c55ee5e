/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the binary min-heap (heap.h): random pushes, removals of
 * any element, key changes and pops checked step by step against a sorted
 * reference array, draining in order, and every allocation failure of a
 * growing heap (nothing changes, the run goes on once memory is back).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "build_config.h"
#include "cutest.h"
#include "err.h"
#include "heap.h"
#include "mem.h"

#define POOL	300		/* elements of the random runs */

struct item {
	long	 key;
	int	 id;
	size_t	 hidx;		/* the heap's index field */
};

/* The reference: the keys and ids of the items in the heap, sorted. */
struct ref {
	struct item	*v[POOL];
	size_t		 n;
};

static uint64_t	rng_state;

static uint32_t
rng(void)
{
	/* xorshift64*: deterministic for a given seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static bool
item_less(const void *a, const void *b)
{
	return ((const struct item *)a)->key < ((const struct item *)b)->key;
}

static void
ref_add(struct ref *r, struct item *it)
{
	size_t i = r->n;

	while (i > 0 && r->v[i - 1]->key > it->key) {
		r->v[i] = r->v[i - 1];
		i--;
	}
	r->v[i] = it;
	r->n++;
}

static void
ref_del(struct ref *r, const struct item *it)
{
	size_t i;

	for (i = 0; i < r->n && r->v[i] != it; i++)
		;
	CU_ASSERT_FATAL(i < r->n);
	memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof r->v[0]);
	r->n--;
}

static bool
ref_has(const struct ref *r, const struct item *it)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->v[i] == it)
			return true;
	return false;
}

/* The heap and the reference hold the same items; the least comes first. */
static void
check(const struct heap *h, const struct ref *r, struct item *pool)
{
	const struct item *top;
	int i;

	CU_ASSERT_TRUE(heap_valid(h));
	CU_ASSERT_EQUAL(heap_count(h), r->n);
	top = heap_peek(h);
	if (r->n == 0) {
		CU_ASSERT_PTR_NULL(top);
	} else {
		CU_ASSERT_PTR_NOT_NULL_FATAL(top);
		CU_ASSERT_EQUAL(top->key, r->v[0]->key);
	}
	for (i = 0; i < POOL; i++) {
		CU_ASSERT_EQUAL(heap_contains(h, &pool[i]),
		    ref_has(r, &pool[i]));
		if (!ref_has(r, &pool[i]))
			CU_ASSERT_EQUAL(pool[i].hidx, 0);
	}
}

/*
 * Random operations (few distinct keys, so ties are common) against the
 * sorted reference, checked after every step, then a drain in order.
 */
static void
run_random(uint64_t seed, long keys, int steps)
{
	static struct item pool[POOL];
	static struct ref r;
	struct heap h;
	struct item *it, *p;
	long last;
	int i, s, ops[5] = { 0 };

	rng_state = seed;
	memset(pool, 0, sizeof pool);
	memset(&r, 0, sizeof r);
	for (i = 0; i < POOL; i++)
		pool[i].id = i;
	heap_init(&h, item_less, offsetof(struct item, hidx));
	check(&h, &r, pool);
	for (s = 0; s < steps; s++) {
		it = &pool[rng() % POOL];
		switch (rng() % 5) {
		case 0:
		case 1:		/* push (when idle) or remove (when in) */
			if (it->hidx == 0) {
				it->key = (long)(rng() % keys) - keys / 2;
				CU_ASSERT_EQUAL_FATAL(heap_push(&h, it), 0);
				ref_add(&r, it);
				ops[0]++;
			} else {
				heap_remove(&h, it);
				ref_del(&r, it);
				ops[1]++;
			}
			break;
		case 2:		/* key change, either way */
			if (it->hidx == 0)
				break;
			ref_del(&r, it);
			it->key = (long)(rng() % keys) - keys / 2;
			heap_fix(&h, it);
			ref_add(&r, it);
			ops[2]++;
			break;
		case 3:		/* pop: one of the least keys */
			p = heap_pop(&h);
			if (r.n == 0) {
				CU_ASSERT_PTR_NULL(p);
				break;
			}
			CU_ASSERT_PTR_NOT_NULL_FATAL(p);
			CU_ASSERT_EQUAL(p->key, r.v[0]->key);
			CU_ASSERT_EQUAL(p->hidx, 0);
			ref_del(&r, p);
			ops[3]++;
			break;
		default:	/* fix without a change moves nothing */
			if (it->hidx == 0)
				break;
			heap_fix(&h, it);
			ops[4]++;
			break;
		}
		check(&h, &r, pool);
	}
	/* Every kind of step ran. */
	for (i = 0; i < 5; i++)
		CU_ASSERT_TRUE(ops[i] > 0);
	last = -keys;
	while ((p = heap_pop(&h)) != NULL) {
		CU_ASSERT_TRUE(p->key >= last);
		CU_ASSERT_EQUAL(p->key, r.v[0]->key);
		last = p->key;
		ref_del(&r, p);
	}
	CU_ASSERT_EQUAL(r.n, 0);
	check(&h, &r, pool);
	heap_free(&h);
	heap_free(&h);
	heap_free(NULL);
}

static void
test_random_small_keys(void)
{
	run_random(0x9e3779b97f4a7c15ULL, 8, 4000);
}

static void
test_random_wide_keys(void)
{
	run_random(12345, 1000000, 6000);
	run_random(777, 100, 6000);
}

/* Edge cases: one element, the last slot, two heaps over one element type. */
static void
test_edges(void)
{
	struct item a = { 5, 0, 0 }, b = { 3, 1, 0 }, c = { 4, 2, 0 };
	struct heap h, g;

	heap_init(&h, item_less, offsetof(struct item, hidx));
	heap_init(&g, item_less, offsetof(struct item, hidx));
	CU_ASSERT_PTR_NULL(heap_peek(&h));
	CU_ASSERT_PTR_NULL(heap_pop(&h));
	CU_ASSERT_EQUAL(heap_push(&h, &a), 0);
	CU_ASSERT_EQUAL(a.hidx, 1);
	CU_ASSERT_PTR_EQUAL(heap_peek(&h), &a);
	heap_remove(&h, &a);
	CU_ASSERT_EQUAL(a.hidx, 0);
	CU_ASSERT_EQUAL(heap_count(&h), 0);
	CU_ASSERT_FALSE(heap_contains(&h, &a));

	CU_ASSERT_EQUAL(heap_push(&h, &a), 0);
	CU_ASSERT_EQUAL(heap_push(&h, &b), 0);
	CU_ASSERT_EQUAL(heap_push(&g, &c), 0);
	CU_ASSERT_PTR_EQUAL(heap_peek(&h), &b);
	/* c's index is 1, but h's slot 0 holds b. */
	CU_ASSERT_FALSE(heap_contains(&h, &c));
	CU_ASSERT_TRUE(heap_contains(&g, &c));
	/* The element in the last slot. */
	heap_remove(&h, &a);
	CU_ASSERT_TRUE(heap_valid(&h));
	CU_ASSERT_PTR_EQUAL(heap_peek(&h), &b);
	b.key = 10;
	heap_fix(&h, &b);
	CU_ASSERT_EQUAL(heap_push(&h, &a), 0);
	CU_ASSERT_PTR_EQUAL(heap_pop(&h), &a);
	CU_ASSERT_PTR_EQUAL(heap_pop(&h), &b);
	CU_ASSERT_PTR_NULL(heap_pop(&h));
	CU_ASSERT_EQUAL(heap_reserve(&h, 0), 0);
	CU_ASSERT_EQUAL(heap_reserve(&h, SIZE_MAX / 2), GW_ENOMEM);
	CU_ASSERT_EQUAL(heap_reserve(&h, SIZE_MAX), GW_ENOMEM);
	CU_ASSERT_TRUE(heap_valid(&h));
	heap_free(&h);
	heap_free(&g);
}

/*
 * Allocation k fails, for each k until a run needs no more: the push (or
 * reserve) that needed it returns GW_ENOMEM and changes nothing, and the
 * run completes once allocation works again. Nothing leaks.
 */
static void
test_alloc_failure(void)
{
	static struct item pool[POOL];
	struct heap h;
	struct item *p;
	size_t base = gw_mem_used(), used, n, i, nfail = 0;
	long k, last;
	bool failed;
	int rc;

	for (k = 0; k < 64; k++) {
		memset(pool, 0, sizeof pool);
		heap_init(&h, item_less, offsetof(struct item, hidx));
		failed = false;
		gw_mem_fail_after(k);
		for (i = 0; i < POOL; i++) {
			pool[i].key = (long)((i * 7919) % POOL);
			n = heap_count(&h);
			used = gw_mem_used();
			if (i == POOL / 2)
				rc = heap_reserve(&h, POOL);
			else
				rc = heap_push(&h, &pool[i]);
			if (rc != 0) {
				/* The failed call changed nothing. */
				CU_ASSERT_EQUAL(rc, GW_ENOMEM);
				CU_ASSERT_EQUAL(heap_count(&h), n);
				CU_ASSERT_EQUAL(gw_mem_used(), used);
				CU_ASSERT_EQUAL(pool[i].hidx, 0);
				CU_ASSERT_TRUE(heap_valid(&h));
				failed = true;
				nfail++;
				/* Memory is back: the run goes on. */
				gw_mem_fail_after(-1);
			}
			if (i == POOL / 2)
				CU_ASSERT_EQUAL_FATAL(heap_reserve(&h, POOL), 0);
			if (pool[i].hidx == 0)
				CU_ASSERT_EQUAL_FATAL(heap_push(&h, &pool[i]),
				    0);
		}
		gw_mem_fail_after(-1);
		CU_ASSERT_EQUAL(heap_count(&h), POOL);
		CU_ASSERT_TRUE(heap_valid(&h));
		last = -1;
		while ((p = heap_pop(&h)) != NULL) {
			CU_ASSERT_TRUE(p->key >= last);
			last = p->key;
		}
		heap_free(&h);
		CU_ASSERT_EQUAL(gw_mem_used(), base);
		if (!failed)
			break;
	}
	CU_ASSERT_TRUE(k < 64);
#ifdef GW_FAULT_INJECTION
	/* 16 to 256 slots by push, then 512 by the reserve at 150. */
	CU_ASSERT_EQUAL(nfail, 6);
#endif
}

/* A steady number of elements costs no allocation per operation. */
static void
test_no_alloc_when_steady(void)
{
	static struct item pool[64];
	struct heap h;
	int i, round;

	memset(pool, 0, sizeof pool);
	heap_init(&h, item_less, offsetof(struct item, hidx));
	for (i = 0; i < 64; i++)
		CU_ASSERT_EQUAL_FATAL(heap_push(&h, &pool[i]), 0);
	/* Every allocation from here on fails. */
	gw_mem_fail_after(0);
	rng_state = 42;
	for (round = 0; round < 2000; round++) {
		i = (int)(rng() % 64);
		if (round % 3 == 0) {
			heap_remove(&h, &pool[i]);
			pool[i].key = rng() % 1000;
			CU_ASSERT_EQUAL(heap_push(&h, &pool[i]), 0);
		} else {
			pool[i].key = rng() % 1000;
			heap_fix(&h, &pool[i]);
		}
	}
	gw_mem_fail_after(-1);
	CU_ASSERT_TRUE(heap_valid(&h));
	CU_ASSERT_EQUAL(heap_count(&h), 64);
	heap_free(&h);
}

#define T(fn)	{ #fn, fn }
static const struct cutest_case tests[] = {
	T(test_random_small_keys), T(test_random_wide_keys), T(test_edges),
	T(test_alloc_failure), T(test_no_alloc_when_steady),
};

int
main(void)
{
	return cutest_main("heap", NULL, NULL, tests, CUTEST_COUNT(tests));
}
