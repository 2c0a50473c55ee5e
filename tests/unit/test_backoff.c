/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of backoff.c (pure): the splitmix64 stream is deterministic
 * per seed, uniform draws stay in bounds and spread evenly (a loose bucket
 * check and the mean), the exponential ceiling doubles up to the cap without
 * overflow, full-jitter delays stay within it, and Retry-After parses
 * delta-seconds and the three HTTP date forms, clamped to the cap.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cutest.h"
#include "deliver/backoff.h"
#include "err.h"

static void
test_seeded(void)
{
	struct backoff_rng a, b, c;
	int i, same = 0;

	backoff_seed(&a, 42);
	backoff_seed(&b, 42);
	backoff_seed(&c, 43);
	for (i = 0; i < 100; i++) {
		uint64_t x = backoff_next(&a), y = backoff_next(&b);

		CU_ASSERT_EQUAL(x, y);
		if (x == backoff_next(&c))
			same++;
	}
	CU_ASSERT_EQUAL(same, 0);
	/* Seed 0 is a valid seed, not a stuck state. */
	backoff_seed(&a, 0);
	CU_ASSERT_NOT_EQUAL(backoff_next(&a), backoff_next(&a));
}

static void
test_uniform(void)
{
	struct backoff_rng rng;
	unsigned buckets[10] = { 0 };
	double sum = 0;
	uint64_t v;
	int i;

	backoff_seed(&rng, 7);
	for (i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(backoff_uniform(&rng, 0), 0);
	for (i = 0; i < 1000; i++)
		CU_ASSERT(backoff_uniform(&rng, 1) <= 1);
	(void)backoff_uniform(&rng, UINT64_MAX);
	for (i = 0; i < 100000; i++) {
		v = backoff_uniform(&rng, 999);
		CU_ASSERT_FATAL(v <= 999);
		buckets[v / 100]++;
		sum += (double)v;
	}
	/* 10,000 expected per bucket; +-5% is > 15 sigma of slack. */
	for (i = 0; i < 10; i++)
		CU_ASSERT(buckets[i] > 9500 && buckets[i] < 10500);
	CU_ASSERT(sum / 100000 > 489.5 && sum / 100000 < 509.5);
}

static void
test_ceiling(void)
{
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1000, 300000, 0), 1000);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1000, 300000, 1), 2000);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1000, 300000, 8), 256000);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1000, 300000, 9), 300000);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1000, 300000, 63), 300000);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1000, 300000, 100000), 300000);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(500000, 300000, 0), 300000);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(0, 300000, 5), 0);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(-5, 300000, 5), 0);
	/* No cap: saturates instead of overflowing. */
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1, 0, 10), 1024);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(1, 0, 62), INT64_MAX);
	CU_ASSERT_EQUAL(backoff_ceiling_ms(INT64_MAX / 2, 0, 2), INT64_MAX);
}

static void
test_delay_bounds(void)
{
	struct backoff_rng rng;
	int64_t d, ceil, max_seen;
	uint32_t attempt;
	int i;

	backoff_seed(&rng, 12345);
	for (attempt = 0; attempt < 40; attempt++) {
		ceil = backoff_ceiling_ms(100, 60000, attempt);
		max_seen = 0;
		for (i = 0; i < 2000; i++) {
			d = backoff_delay_ms(&rng, 100, 60000, attempt);
			CU_ASSERT_FATAL(d >= 0 && d <= ceil);
			if (d > max_seen)
				max_seen = d;
		}
		/* Full jitter reaches near the top of its range. */
		CU_ASSERT(max_seen >= ceil * 9 / 10);
	}
	/* Two generators with different seeds do not move in lockstep. */
	{
		struct backoff_rng a, b;
		int equal = 0;

		backoff_seed(&a, 1);
		backoff_seed(&b, 2);
		for (i = 0; i < 100; i++)
			if (backoff_delay_ms(&a, 1000, 300000, 5) ==
			    backoff_delay_ms(&b, 1000, 300000, 5))
				equal++;
		CU_ASSERT(equal < 5);
	}
}

static void
test_retry_after(void)
{
	/* Wed, 21 Oct 2015 07:28:00 GMT */
	const int64_t now = 1445412480000LL;
	int64_t d;

	CU_ASSERT_EQUAL(backoff_parse_retry_after("120", now, &d), 0);
	CU_ASSERT_EQUAL(d, 120000);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("  5 \r\n", now, &d), 0);
	CU_ASSERT_EQUAL(d, 5000);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("0", now, &d), 0);
	CU_ASSERT_EQUAL(d, 0);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("99999999999999999999999",
	    now, &d), 0);
	CU_ASSERT(d > 0);

	CU_ASSERT_EQUAL(backoff_parse_retry_after(
	    "Wed, 21 Oct 2015 07:28:30 GMT", now, &d), 0);
	CU_ASSERT_EQUAL(d, 30000);
	CU_ASSERT_EQUAL(backoff_parse_retry_after(
	    "Wednesday, 21-Oct-15 07:29:00 GMT", now, &d), 0);
	CU_ASSERT_EQUAL(d, 60000);
	CU_ASSERT_EQUAL(backoff_parse_retry_after(
	    "Wed Oct 21 07:28:10 2015", now, &d), 0);
	CU_ASSERT_EQUAL(d, 10000);
	/* A date in the past: no wait. */
	CU_ASSERT_EQUAL(backoff_parse_retry_after(
	    "Tue, 20 Oct 2015 07:28:30 GMT", now, &d), 0);
	CU_ASSERT_EQUAL(d, 0);

	CU_ASSERT_EQUAL(backoff_parse_retry_after(NULL, now, &d),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("", now, &d), GW_EMALFORMED);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("  ", now, &d),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("-1", now, &d),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("1.5", now, &d),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("12abc", now, &d),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(backoff_parse_retry_after("soon", now, &d),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(backoff_parse_retry_after(
	    "Wed, 21 Oct 2015 07:28:30 GMT trailing", now, &d), GW_EMALFORMED);
}

static void
test_next_delay(void)
{
	struct backoff_rng rng;
	int64_t d;
	int i;

	backoff_seed(&rng, 99);
	/* The server's wish wins, clamped to the cap. */
	CU_ASSERT_EQUAL(backoff_next_delay_ms(&rng, 1000, 300000, 0, 5000),
	    5000);
	CU_ASSERT_EQUAL(backoff_next_delay_ms(&rng, 1000, 3000, 0, 5000),
	    3000);
	CU_ASSERT_EQUAL(backoff_next_delay_ms(&rng, 1000, 3000, 7, 0), 0);
	for (i = 0; i < 1000; i++) {
		d = backoff_next_delay_ms(&rng, 1000, 3000, 4, -1);
		CU_ASSERT_FATAL(d >= 0 && d <= 3000);
	}
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("backoff", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "seeded stream", test_seeded) == NULL ||
	    CU_add_test(s, "uniform bounds and spread", test_uniform) == NULL ||
	    CU_add_test(s, "exponential ceiling", test_ceiling) == NULL ||
	    CU_add_test(s, "full jitter bounds", test_delay_bounds) == NULL ||
	    CU_add_test(s, "Retry-After parsing", test_retry_after) == NULL ||
	    CU_add_test(s, "Retry-After vs jitter", test_next_delay) == NULL) {
		return cutest_setup_failed();
	}
	return cutest_run();
}
