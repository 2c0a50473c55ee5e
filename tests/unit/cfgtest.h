/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the unit tests of the configuration loader share (test_config.c,
 * test_config_sources.c): a private folder with a config file in it, made
 * and removed by the suite's set-up and tear-down (main() passes them to
 * cutest_main()), loading a text over the defaults and the one-error
 * check. Header-only, like cutest.h and seen.h.
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

static char	cfgtest_dir[64];	/* made by cfgtest_setup() */
static char	cfgtest_file[128];	/* cfgtest_dir/mqlite.json */

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
 * Suite set-up: makes the folder /tmp/mqlite-cfgtest.XXXXXX. 0, or -1
 * (said on stderr; CUnit then fails the suite).
 */
static inline int
cfgtest_setup(void)
{
	snprintf(cfgtest_dir, sizeof cfgtest_dir,
	    "/tmp/mqlite-cfgtest.XXXXXX");
	if (mkdtemp(cfgtest_dir) == NULL) {
		perror("mkdtemp");
		cfgtest_dir[0] = '\0';
		return -1;
	}
	snprintf(cfgtest_file, sizeof cfgtest_file, "%s/mqlite.json",
	    cfgtest_dir);
	return 0;
}

/* Suite tear-down: removes the folder and what the tests left in it. */
static inline int
cfgtest_teardown(void)
{
	char	cmd[128];

	if (cfgtest_dir[0] == '\0')
		return 0;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cfgtest_dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot remove %s\n", cfgtest_dir);
		return -1;
	}
	return 0;
}

#endif
