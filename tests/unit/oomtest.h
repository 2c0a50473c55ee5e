/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation failure, tried at every allocation of one operation.
 *
 * oomtest_run() calls the operation with gw_mem_fail_after(k) for k = 0, 1,
 * 2, ... so its first k allocations succeed and every later one fails, until
 * the operation succeeds. Each failed try must return GW_ENOMEM and give
 * back every byte it took (gw_mem_used() as before the try); the caller's
 * check then asserts that the module's own state (a count, a mapping) is
 * what it was. An operation that records that state keeps it in its
 * context before doing the work. The loop is bounded by OOMTEST_MAX tries;
 * reaching it is a failure. The caller says how many tries must fail at
 * least, so a hook that stopped failing cannot pass unnoticed; that floor
 * is waived in a build configured --disable-fault-injection, where the
 * first try succeeds.
 *
 * Header-only like cutest.h, which holds the CUnit parts shared by every
 * test; this one is for the tests of modules that allocate through mem.h.
 */
#ifndef GW_OOMTEST_H
#define GW_OOMTEST_H

#include <CUnit/Basic.h>

#include "build_config.h"
#include "err.h"
#include "mem.h"

#define OOMTEST_MAX	64	/* tries before the loop gives up */

/*
 * The operation under test: 0 on success, a negative GW_E* error (the
 * caller maps a NULL return to GW_ENOMEM) on failure.
 */
typedef int	(*oomtest_op)(void *ctx);

/* Asserts, after a failed try, that nothing changed. */
typedef void	(*oomtest_check)(void *ctx);

/*
 * Runs op(ctx) failing allocation k = 0, 1, ... until it returns 0; after
 * each failed try asserts rc is GW_ENOMEM and the memory in use unchanged,
 * then calls check(ctx) (check may be NULL). Asserts the last try
 * succeeded and, with GW_FAULT_INJECTION, that at least min_fail tries
 * failed. Returns the number of failed tries; the success's result stays
 * in ctx for the caller to inspect and free.
 */
static inline long
oomtest_run(oomtest_op op, oomtest_check check, void *ctx, long min_fail)
{
	size_t	used;
	long	k;
	int	rc = -1;

	for (k = 0; k < OOMTEST_MAX; k++) {
		used = gw_mem_used();
		gw_mem_fail_after(k);
		rc = op(ctx);
		gw_mem_fail_after(-1);
		if (rc == 0)
			break;
		CU_ASSERT_EQUAL(rc, GW_ENOMEM);
		CU_ASSERT_EQUAL(gw_mem_used(), used);
		if (check != NULL)
			check(ctx);
	}
	CU_ASSERT_EQUAL(rc, 0);
#ifdef GW_FAULT_INJECTION
	CU_ASSERT_TRUE(k >= min_fail);
#else
	(void)min_fail;
#endif
	return k;
}

#endif
