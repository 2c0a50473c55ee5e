/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/rules/match.c: every matching rule comes back once,
 * in file order; 1,000 rules in one trie; the '$' rule; captures; a
 * too-small output buffer; repeated topics answered from the match cache
 * exactly as from the trie (collisions, long topics, many ids, small
 * buffers); and the cost of matching against 1,000 rules compared with one
 * (loose bound, so sanitizer builds pass).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "broker/topic.h"
#include "cutest.h"
#include "mem.h"
#include "rules/rules.h"

/* Builds a rule set from topic patterns, one sqlite rule each. */
static struct rule_set *
build(const char *const *topics, size_t n)
{
	struct rule_set	*set;
	char		*text, *p;
	size_t		 i, cap = 256 + n * 160;

	p = text = malloc(cap);
	p += sprintf(p, "{\"rules\": [");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s{\"name\": \"r%zu\", \"topic\": \"%s\", "
		    "\"sqlite\": {\"table\": \"t\", \"columns\": {\"v\": "
		    "\"{payload}\"}}}", i > 0 ? "," : "", i, topics[i]);
	sprintf(p, "]}");
	set = rules_load_json(text, strlen(text), "t", NULL, NULL, NULL, NULL);
	free(text);
	return set;
}

static size_t
match(const struct rule_set *set, const char *t, uint32_t *ids, size_t cap)
{
	return rules_match(set, t, strlen(t), ids, cap);
}

static void
test_file_order(void)
{
	static const char *const topics[] = { "#", "a/b", "+/b", "a/+",
	    "a/{x}", "a/#", "b/#", "{y}/{z}", "a/b/#" };
	struct rule_set	*set;
	uint32_t	 ids[16];
	size_t		 n;

	set = build(topics, 9);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	n = match(set, "a/b", ids, 16);
	CU_ASSERT_EQUAL_FATAL(n, 8);
	CU_ASSERT(ids[0] == 0 && ids[1] == 1 && ids[2] == 2 && ids[3] == 3 &&
	    ids[4] == 4 && ids[5] == 5 && ids[6] == 7 && ids[7] == 8);
	n = match(set, "b", ids, 16);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT(ids[0] == 0 && ids[1] == 6);
	/* A small buffer: the count still comes back. */
	CU_ASSERT_EQUAL(match(set, "a/b", ids, 2), 8);
	CU_ASSERT_EQUAL(match(set, "a/b", NULL, 0), 8);
	rule_set_unref(&set);
}

static void
test_dollar(void)
{
	static const char *const topics[] = { "#", "+/x", "{c}/x", "$SYS/#",
	    "$SYS/x", "$other/+" };
	struct rule_set	*set;
	uint32_t	 ids[8];
	size_t		 n;

	set = build(topics, 6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	n = match(set, "$SYS/x", ids, 8);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT(ids[0] == 3 && ids[1] == 4);
	n = match(set, "$other/x", ids, 8);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(ids[0], 5);
	n = match(set, "sys/x", ids, 8);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT(ids[0] == 0 && ids[1] == 1 && ids[2] == 2);
	rule_set_unref(&set);
}

static void
test_captures(void)
{
	static const char *const topics[] = {
	    "site/{site}/dev/{device}/telemetry", "home/{room}/{metric}",
	    "x/{a}/#" };
	struct rule_set		*set;
	const struct rule	*r;
	const char		*p;
	size_t			 len;
	uint32_t		 ids[4];

	set = build(topics, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(match(set, "site/s-1/dev/d/telemetry", ids, 4), 1);
	CU_ASSERT_EQUAL(ids[0], 0);
	r = rule_set_rule(set, 0);
	CU_ASSERT_EQUAL(rule_capture(r, 0, "site/s-1/dev/d/telemetry", 24, &p,
	    &len), 0);
	CU_ASSERT(len == 3 && memcmp(p, "s-1", 3) == 0);
	CU_ASSERT_EQUAL(rule_capture(r, 1, "site/s-1/dev/d/telemetry", 24, &p,
	    &len), 0);
	CU_ASSERT(len == 1 && memcmp(p, "d", 1) == 0);
	CU_ASSERT_EQUAL(match(set, "home/kitchen/temp", ids, 4), 1);
	CU_ASSERT_EQUAL(ids[0], 1);
	CU_ASSERT_EQUAL(match(set, "home/kitchen", ids, 4), 0);
	/* An empty level is a level. */
	r = rule_set_rule(set, 2);
	CU_ASSERT_EQUAL(match(set, "x//y", ids, 4), 1);
	CU_ASSERT_EQUAL(rule_capture(r, 0, "x//y", 4, &p, &len), 0);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(match(set, "x", ids, 4), 0);
	rule_set_unref(&set);
}

static void
test_cache(void)
{
	static const char *const topics[] = { "s/+/t", "s/{a}/t", "x/#",
	    "s/x/t", "#" };
	struct rule_set	*set, *all;
	uint32_t	 ids[8];
	char		 t[128];
	size_t		 n;
	int		 i, k, pass;

	set = build(topics, 4);
	all = build(topics, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	/* 600 topics over 256 slots, three passes: misses, hits, evictions. */
	for (pass = 0; pass < 3; pass++) {
		for (k = 0; k < 600; k++) {
			i = pass == 1 ? 599 - k : k;
			snprintf(t, sizeof t, "s/%d/t", i);
			memset(ids, 0xff, sizeof ids);
			n = match(set, t, ids, 8);
			CU_ASSERT_FATAL(n == 2 && ids[0] == 0 && ids[1] == 1);
			n = match(set, t, ids, 8);
			CU_ASSERT_FATAL(n == 2 && ids[0] == 0 && ids[1] == 1);
			snprintf(t, sizeof t, "x/%d", i);
			CU_ASSERT_FATAL(match(set, t, ids, 8) == 1 &&
			    ids[0] == 2);
			CU_ASSERT_FATAL(match(set, "s/x/t", ids, 8) == 3 &&
			    ids[0] == 0 && ids[1] == 1 && ids[2] == 3);
			CU_ASSERT_FATAL(match(set, "q", ids, 8) == 0);
		}
	}
	/* Cached with room for 3: a smaller buffer still gets the count. */
	CU_ASSERT_EQUAL(match(set, "s/x/t", ids, 2), 3);
	CU_ASSERT_EQUAL(match(set, "s/x/t", NULL, 0), 3);
	/* Five ids (more than a slot holds), every time. */
	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(match(all, "s/x/t", ids, 8), 4);
		CU_ASSERT(ids[0] == 0 && ids[1] == 1 && ids[2] == 3 &&
		    ids[3] == 4);
	}
	/* A topic longer than a slot, every time. */
	memset(t, 'a', 100);
	memcpy(t, "x/", 2);
	t[100] = '\0';
	for (i = 0; i < 3; i++)
		CU_ASSERT(match(set, t, ids, 8) == 1 && ids[0] == 2);
	rule_set_unref(&set);
	rule_set_unref(&all);
}

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Time for iters matches of topic against set, in seconds. */
static double
time_match(const struct rule_set *set, const char *t, uint32_t *ids,
    size_t cap, int iters)
{
	double	t0 = now();
	size_t	total = 0;
	int	i;

	for (i = 0; i < iters; i++)
		total += rules_match(set, t, strlen(t), ids, cap);
	CU_ASSERT(total > 0);
	return now() - t0;
}

static void
test_thousand_rules(void)
{
	char		*topics[1000], buf[64];
	struct rule_set	*set, *one;
	uint32_t	*ids;
	size_t		 i, n, before = gw_mem_used();
	double		 t, t1, t1000;
	const char	*single[] = { "dev/{id}/temp" };

	for (i = 0; i < 1000; i++) {
		if (i % 100 == 99)
			snprintf(buf, sizeof buf, "dev/+/#");
		else
			snprintf(buf, sizeof buf, "dev/d%zu/{metric}", i);
		topics[i] = strdup(buf);
	}
	set = build((const char *const *)topics, 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(rule_set_count(set), 1000);
	ids = calloc(rule_set_count(set), sizeof *ids);
	n = rules_match(set, "dev/d500/temp", 13, ids, 1000);
	CU_ASSERT_EQUAL_FATAL(n, 11);
	CU_ASSERT_EQUAL(ids[0], 99);
	CU_ASSERT_EQUAL(ids[4], 499);
	CU_ASSERT_EQUAL(ids[5], 500);
	CU_ASSERT_EQUAL(ids[6], 599);
	CU_ASSERT_EQUAL(ids[10], 999);
	for (i = 1; i < n; i++)
		CU_ASSERT(ids[i - 1] < ids[i]);
	n = rules_match(set, "dev/d7/x", 8, ids, 1000);
	CU_ASSERT_EQUAL(n, 11);
	CU_ASSERT_EQUAL(ids[0], 7);

	/* The walk is per topic level, not per rule: with 1,000 rules (11
	 * of which match here) a match costs about what it does with one. */
	one = build(single, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(one);
	/* The best of three runs each: a busy machine only adds time. */
	t1 = t1000 = 1e9;
	for (i = 0; i < 3; i++) {
		t = time_match(one, "dev/d5/temp", ids, 1000, 200000);
		t1 = t < t1 ? t : t1;
		t = time_match(set, "dev/d5/temp", ids, 1000, 200000);
		t1000 = t < t1000 ? t : t1000;
	}
	fprintf(stderr, " [1 rule %.0f ns, 1000 rules %.0f ns per match] ",
	    t1 / 200000 * 1e9, t1000 / 200000 * 1e9);
	CU_ASSERT(t1000 < t1 * 20);
	rule_set_unref(&one);
	rule_set_unref(&set);
	free(ids);
	for (i = 0; i < 1000; i++)
		free(topics[i]);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static const struct cutest_case tests[] = {
	{ "file order", test_file_order },
	{ "$ topics", test_dollar },
	{ "captures", test_captures },
	{ "match cache", test_cache },
	{ "1,000 rules", test_thousand_rules },
};

int
main(void)
{
	return cutest_main("rules_match", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
