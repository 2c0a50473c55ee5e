/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic aliases of one connection (src/broker/alias.c): inbound set, use,
 * replace and the refusals with their reason codes; outbound assignment
 * up to the maximum, found again by topic, recorded only when added; no
 * leak, also on allocation failure.
 */
#include <stdio.h>
#include <string.h>

#include "broker/alias.h"
#include "err.h"
#include "mem.h"
#include "mqtt/reason.h"
#include "cutest.h"
#include "oomtest.h"

static struct codec_str
cs(const char *s)
{
	struct codec_str c = { s, (uint16_t)strlen(s) };

	return c;
}

/* Alias 2 of table *ctx set to "d/e" (for oomtest_run()). */
static int
oom_replace(void *ctx)
{
	struct codec_str topic = cs("d/e");
	uint8_t reason = 0;

	return alias_resolve(ctx, 3, 2, &topic, &reason);
}

/* After a failed replace alias 2 still means "c". */
static void
oom_replace_check(void *ctx)
{
	struct codec_str topic = cs("");
	uint8_t reason = 0;

	CU_ASSERT_EQUAL(alias_resolve(ctx, 3, 2, &topic, &reason), 0);
	CU_ASSERT(topic.len == 1 && topic.ptr[0] == 'c');
}

/* The first outbound alias, on table *ctx not made yet. */
static int
oom_out_find(void *ctx)
{
	bool known;

	return alias_out_find(ctx, 3, "a", 1, &known) == 1 ? 0 : GW_ENOMEM;
}

/* A failed first lookup leaves no table behind. */
static void
oom_out_check(void *ctx)
{
	struct alias_out **t = ctx;

	CU_ASSERT_PTR_NULL(*t);
}

static void
test_inbound(void)
{
	size_t base = gw_mem_used();
	struct alias_table *t = NULL;
	struct codec_str topic;
	uint8_t reason = 0;

	/* Out of range, before and after the table exists. */
	topic = cs("a/b");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 0, &topic, &reason), GW_EPROTO);
	CU_ASSERT_EQUAL(reason, REASON_TOPIC_ALIAS_INVALID);
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 4, &topic, &reason), GW_EPROTO);
	CU_ASSERT_EQUAL(reason, REASON_TOPIC_ALIAS_INVALID);
	/* Unknown alias with an empty topic. */
	topic = cs("");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 1, &topic, &reason), GW_EPROTO);
	CU_ASSERT_EQUAL(reason, REASON_PROTOCOL_ERROR);
	CU_ASSERT_PTR_NULL(t);
	/* Set, then use. */
	topic = cs("a/b");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 2, &topic, &reason), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	topic = cs("");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 2, &topic, &reason), 0);
	CU_ASSERT(topic.len == 3 && memcmp(topic.ptr, "a/b", 3) == 0);
	topic = cs("");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 1, &topic, &reason), GW_EPROTO);
	CU_ASSERT_EQUAL(reason, REASON_PROTOCOL_ERROR);
	/* Replace. */
	topic = cs("c");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 2, &topic, &reason), 0);
	topic = cs("");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 2, &topic, &reason), 0);
	CU_ASSERT(topic.len == 1 && topic.ptr[0] == 'c');
	topic = cs("x");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 4, &topic, &reason), GW_EPROTO);
	/* Out of memory keeps the old mapping; then the new one is set. */
	(void)oomtest_run(oom_replace, oom_replace_check, &t, 1);
	topic = cs("");
	CU_ASSERT_EQUAL(alias_resolve(&t, 3, 2, &topic, &reason), 0);
	CU_ASSERT(topic.len == 3 && memcmp(topic.ptr, "d/e", 3) == 0);
	alias_free(&t);
	CU_ASSERT_PTR_NULL(t);
	alias_free(&t);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static void
test_outbound(void)
{
	size_t base = gw_mem_used();
	struct alias_out *t = NULL;
	char name[16];
	bool known;
	uint16_t a;
	int i;

	CU_ASSERT_EQUAL(alias_out_find(&t, 0, "a", 1, &known), 0);
	CU_ASSERT_PTR_NULL(t);
	/* Not recorded until added. */
	CU_ASSERT_EQUAL(alias_out_find(&t, 3, "a", 1, &known), 1);
	CU_ASSERT_FALSE(known);
	CU_ASSERT_EQUAL(alias_out_find(&t, 3, "a", 1, &known), 1);
	CU_ASSERT_FALSE(known);
	CU_ASSERT_EQUAL(alias_out_add(t, 1, "a", 1), 0);
	CU_ASSERT_EQUAL(alias_out_find(&t, 3, "a", 1, &known), 1);
	CU_ASSERT_TRUE(known);
	CU_ASSERT_EQUAL(alias_out_find(&t, 3, "b", 1, &known), 2);
	CU_ASSERT_FALSE(known);
	/* Only the next alias may be added. */
	CU_ASSERT_NOT_EQUAL(alias_out_add(t, 3, "b", 1), 0);
	CU_ASSERT_EQUAL(alias_out_add(t, 2, "b", 1), 0);
	CU_ASSERT_EQUAL(alias_out_add(t, 3, "c", 1), 0);
	/* Full: later topics go without one, the first keep theirs. */
	CU_ASSERT_EQUAL(alias_out_find(&t, 3, "d", 1, &known), 0);
	CU_ASSERT_EQUAL(alias_out_find(&t, 3, "c", 1, &known), 3);
	CU_ASSERT_TRUE(known);
	CU_ASSERT_NOT_EQUAL(alias_out_add(t, 4, "d", 1), 0);
	alias_out_free(&t);
	CU_ASSERT_PTR_NULL(t);

	/* Many: every topic found again with its own alias. */
	for (i = 1; i <= 1000; i++) {
		snprintf(name, sizeof name, "t/%d", i);
		a = alias_out_find(&t, 1000, name, (uint16_t)strlen(name),
		    &known);
		CU_ASSERT_EQUAL(a, i);
		CU_ASSERT_EQUAL(alias_out_add(t, a, name,
		    (uint16_t)strlen(name)), 0);
	}
	for (i = 1; i <= 1000; i++) {
		snprintf(name, sizeof name, "t/%d", i);
		CU_ASSERT_EQUAL(alias_out_find(&t, 1000, name,
		    (uint16_t)strlen(name), &known), i);
		CU_ASSERT_TRUE(known);
	}
	alias_out_free(&t);

	(void)oomtest_run(oom_out_find, oom_out_check, &t, 2);
	CU_ASSERT_PTR_NOT_NULL(t);
	alias_out_free(&t);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static const struct cutest_case tests[] = {
	{ "inbound", test_inbound },
	{ "outbound", test_outbound },
};

int
main(void)
{
	return cutest_main("topic aliases", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
