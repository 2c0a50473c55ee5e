/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The exit status of every CUnit test program, decided in one place.
 *
 * Automake's test driver reads a program's exit status: 0 is PASS, 77 SKIP,
 * 99 ERROR, anything else FAIL. Returning CUnit's failure count from main()
 * is wrong on two counts: 77 failed assertions read as SKIP and 256 wrap to
 * 0, PASS. So a program registers its suites, then returns cutest_run(),
 * which is 0 only when every registered test ran and no assertion, suite
 * set-up or tear-down failed, and 1 otherwise (a registry error included).
 * The verdict and its reason are printed last, so a log says why.
 */
#ifndef GW_CUTEST_H
#define GW_CUTEST_H

#include <stddef.h>
#include <stdio.h>

#include <CUnit/Basic.h>

/*
 * Runs every registered test (verbose), cleans the registry up and returns
 * the exit status for main(): 0 when all passed, 1 otherwise. Call it after
 * a successful CU_initialize_registry() and registration.
 */
static inline int
cutest_run(void)
{
	CU_pRunSummary	 sum;
	CU_ErrorCode	 rc;
	unsigned int	 registered, failures;
	const char	*why;

	why = NULL;
	registered = CU_get_registry()->uiNumberOfTests;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	rc = CU_basic_run_tests();
	sum = CU_get_run_summary();
	failures = CU_get_number_of_failures();
	if (rc != CUE_SUCCESS)
		why = CU_get_error_msg();
	else if (failures != 0 || sum->nAssertsFailed != 0 ||
	    sum->nTestsFailed != 0)
		why = "assertions failed";
	else if (sum->nSuitesFailed != 0)
		why = "a suite set-up or tear-down failed";
	else if (registered == 0)
		why = "no test registered";
	else if (sum->nTestsRun != registered)
		why = "not every registered test ran";
	if (why != NULL)
		fprintf(stderr, "\nFAIL: %s (%u of %u tests run, %u failed, "
		    "%u failure records)\n", why, sum->nTestsRun, registered,
		    sum->nTestsFailed, failures);
	else
		fprintf(stderr, "\nPASS: %u tests, %u assertions\n",
		    sum->nTestsRun, sum->nAsserts);
	CU_cleanup_registry();
	return why != NULL;
}

/*
 * The exit status when the registry could not be set up: prints CUnit's
 * error, cleans up what exists and returns 1 (never 0 or 77).
 */
static inline int
cutest_setup_failed(void)
{
	fprintf(stderr, "FAIL: CUnit registry set-up: %s\n",
	    CU_get_error_msg());
	CU_cleanup_registry();
	return 1;
}

/* One test of a suite: its name in the log and its function. */
struct cutest_case {
	const char	*name;
	CU_TestFunc	 fn;
};

/* The number of cases in a static array of them. */
#define CUTEST_COUNT(a)	(sizeof (a) / sizeof (a)[0])

/*
 * main() of a test program of one suite: registers suite name with set-up
 * init and tear-down clean (either may be NULL) and the n cases, runs them
 * and returns the exit status (cutest_run(), or 1 when the registry could
 * not be set up).
 */
static inline int
cutest_main(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
    const struct cutest_case *cases, size_t n)
{
	CU_pSuite	suite;
	size_t		i;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	if ((suite = CU_add_suite(name, init, clean)) == NULL)
		return cutest_setup_failed();
	for (i = 0; i < n; i++) {
		if (CU_add_test(suite, cases[i].name, cases[i].fn) == NULL)
			return cutest_setup_failed();
	}
	return cutest_run();
}

#endif
