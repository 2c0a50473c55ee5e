/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the unit tests of the configuration loader share (test_config.c,
 * test_config_sources.c): a private folder with a config file in it,
 * loading a text over the defaults, the one-error check, and main()'s
 * set-up, run and clean-up. Header-only, like cutest.h and seen.h.
 */
#ifndef GW_CFGTEST_H
#define GW_CFGTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "config.h"
#include "cutest.h"
#include "seen.h"

static char	cfgtest_dir[64];	/* made by cfgtest_main() */
static char	cfgtest_file[128];	/* cfgtest_dir/mqlite.json */

/* One test of the suite. */
struct cfgtest_case {
	const char	*name;
	CU_TestFunc	 fn;
};

/* Writes text to path (a failed open fails the test). */
static inline void
cfgtest_write(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* Writes text to the config file and loads it over the defaults. */
static inline int
cfgtest_load(struct gw_config *cfg, struct seen *s, const char *text)
{
	memset(s, 0, sizeof *s);
	CU_ASSERT_FATAL(config_init(cfg) == 0);
	cfgtest_write(cfgtest_file, text);
	return config_load_file(cfg, cfgtest_file, seen_collect, s);
}

/*
 * Loads text expecting exactly one error, at path, whose reason contains
 * needle; says on stderr what came instead.
 */
static inline void
cfgtest_expect_one(const char *text, const char *path, const char *needle)
{
	struct gw_config	cfg;
	struct seen		s;
	int			rc, i, at = -1;

	rc = cfgtest_load(&cfg, &s, text);
	CU_ASSERT_EQUAL(rc, GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 1);
	for (i = 0; i < s.n && i < SEEN_MAX && at < 0; i++)
		if (strcmp(s.path[i], path) == 0)
			at = i;
	CU_ASSERT(at >= 0);
	if (at >= 0 && strstr(s.msg[at], needle) == NULL) {
		fprintf(stderr, "\n  %s: %s (wanted \"%s\")\n", s.path[at],
		    s.msg[at], needle);
		CU_FAIL("message lacks expected text");
	}
	for (i = 0; i < s.n && i < SEEN_MAX; i++)
		if (i != at)
			fprintf(stderr, "\n  got %s: %s (wanted %s: %s)\n",
			    s.path[i], s.msg[i], path, needle);
	CU_ASSERT_STRING_EQUAL(s.file, cfgtest_file);
	config_free(&cfg);
}

/*
 * main() of a config test program: makes /tmp/NAME.XXXXXX, runs the n
 * cases as suite name, removes the folder. Returns the exit status.
 */
static inline int
cfgtest_main(const char *name, const struct cfgtest_case *cases, size_t n)
{
	CU_pSuite	suite;
	char		cmd[128];
	size_t		i;
	int		status;

	snprintf(cfgtest_dir, sizeof cfgtest_dir, "/tmp/%s.XXXXXX", name);
	if (mkdtemp(cfgtest_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(cfgtest_file, sizeof cfgtest_file, "%s/mqlite.json",
	    cfgtest_dir);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	if ((suite = CU_add_suite(name, NULL, NULL)) == NULL)
		return cutest_setup_failed();
	for (i = 0; i < n; i++)
		if (CU_add_test(suite, cases[i].name, cases[i].fn) == NULL)
			return cutest_setup_failed();
	status = cutest_run();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cfgtest_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", cfgtest_dir);
	return status;
}

#endif
