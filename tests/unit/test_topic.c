/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the topic rules: validity tables for names and filters,
 * and one table of (filter, topic, expected) cases checked three ways -
 * with the reference matcher topic_matches(), with the subscription trie
 * (subs_match) and with the retained trie (retain_match) - which must all
 * agree. Also the level cursors and the level hash table.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "cutest.h"
#include "err.h"
#include "keyhash.h"
#include "mem.h"

struct validity {
	const char	*s;
	int		 ok;
};

static const struct validity names[] = {
	{ "a", 1 }, { "a/b", 1 }, { "/", 1 }, { "//", 1 }, { "/a", 1 },
	{ "a/", 1 }, { "$SYS/x", 1 }, { "$", 1 }, { " ", 1 },
	{ "a b/c", 1 }, { "sport/tennis/player1", 1 },
	{ "", 0 }, { "+", 0 }, { "#", 0 }, { "a/+", 0 }, { "a/#", 0 },
	{ "a+", 0 }, { "a#b", 0 }, { "+/a", 0 },
};

static const struct validity filters[] = {
	{ "a", 1 }, { "#", 1 }, { "+", 1 }, { "/", 1 }, { "//", 1 },
	{ "a/#", 1 }, { "a/+", 1 }, { "+/+", 1 }, { "+/#", 1 },
	{ "/#", 1 }, { "//#", 1 }, { "#", 1 }, { "a/+/b", 1 },
	{ "+/", 1 }, { "/+", 1 }, { "$SYS/#", 1 }, { "a//+//#", 1 },
	{ "", 0 }, { "a#", 0 }, { "#a", 0 }, { "#/", 0 }, { "#/a", 0 },
	{ "a/#/b", 0 }, { "a/b#", 0 }, { "a+", 0 }, { "+a", 0 },
	{ "a/+b", 0 }, { "a/b+/c", 0 }, { "##", 0 }, { "++", 0 },
	{ "+#", 0 }, { "#+", 0 }, { "a/##", 0 }, { "sport/tennis#", 0 },
	{ "sport+", 0 },
};

struct mcase {
	const char	*f;
	const char	*t;
	int		 m;
};

static const struct mcase cases[] = {
	{ "#", "a", 1 }, { "#", "a/b", 1 }, { "#", "/", 1 },
	{ "#", "/a", 1 }, { "#", "$SYS", 0 }, { "#", "$SYS/a", 0 },
	{ "+", "a", 1 }, { "+", "a/b", 0 }, { "+", "/", 0 },
	{ "+", "$SYS", 0 }, { "+", "$", 0 }, { "+/+", "/", 1 },
	{ "+/+", "a", 0 }, { "+/x", "$SYS/x", 0 }, { "+/#", "$SYS/a", 0 },
	{ "$SYS/#", "$SYS/a", 1 }, { "$SYS/#", "$SYS", 1 },
	{ "$SYS/#", "$SYS/a/b", 1 }, { "$SYS/+", "$SYS/a", 1 },
	{ "$SYS/+", "$SYS", 0 }, { "$SYS", "$SYS", 1 }, { "$", "$", 1 },
	{ "a/#", "a", 1 }, { "a/#", "a/b", 1 }, { "a/#", "a/b/c", 1 },
	{ "a/#", "ab", 0 }, { "a/#", "b", 0 }, { "a/#", "a/", 1 },
	{ "a/#", "a/$x", 1 }, { "a/+", "a/$x", 1 },
	{ "a/+", "a", 0 }, { "a/+", "a/", 1 }, { "a/+", "a/b", 1 },
	{ "a/+", "a/b/c", 0 }, { "a/+/c", "a/b/c", 1 },
	{ "a/+/c", "a//c", 1 }, { "a/+/c", "a/b/d", 0 },
	{ "a/b", "a/b", 1 }, { "a/b", "a/b/", 0 }, { "a/b", "a", 0 },
	{ "a/b", "A/b", 0 }, { "a/b", "ab", 0 }, { "/", "/", 1 },
	{ "//", "//", 1 }, { "//", "/", 0 }, { "/", "//", 0 },
	{ "/a", "/a", 1 }, { "/a", "a", 0 }, { "a/", "a", 0 },
	{ "a/", "a/", 1 }, { "+/", "a/", 1 }, { "+/", "a", 0 },
	{ "/+", "/a", 1 }, { "/+", "/", 1 }, { "/#", "/", 1 },
	{ "/#", "/a/b", 1 }, { "/#", "a", 0 }, { "//#", "/", 1 },
	{ "+/+/+", "a/b/c", 1 }, { "+/+/+", "a/b", 0 }, { "+/#", "a", 1 },
	{ "+/#", "/", 1 }, { "+/+/#", "a", 0 }, { "a/+/#", "a/b", 1 },
	{ "a/+/#", "a", 0 }, { "a//b", "a//b", 1 }, { "a/+/b", "a//b", 1 },
	{ "a/+/+/b", "a//b", 0 }, { "a/+/c/#", "a/x/c", 1 },
	{ "a/+/c/#", "a/x/c/d/e", 1 }, { "a/+/c/#", "a/x/d", 0 },
	{ "sport/tennis/player1/#", "sport/tennis/player1", 1 },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", 1 },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", 0 },
	{ "sport/#", "sport", 1 }, { "sport/+", "sport/", 1 },
	{ "+/tennis/#", "sport/tennis", 1 }, { "+/+", "/finance", 1 },
	{ "/+", "/finance", 1 }, { "+", "/finance", 0 },
};

#define NCASES	(sizeof cases / sizeof cases[0])

static void
test_name_valid(void)
{
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (topic_name_valid(names[i].s, strlen(names[i].s)) !=
		    (names[i].ok != 0))
			fprintf(stderr, "name \"%s\" expected %d\n",
			    names[i].s, names[i].ok);
		CU_ASSERT_EQUAL(topic_name_valid(names[i].s,
		    strlen(names[i].s)), names[i].ok != 0);
	}
	/* Explicit lengths: only the first len bytes count. */
	CU_ASSERT_TRUE(topic_name_valid("a/b+", 3));
	CU_ASSERT_FALSE(topic_name_valid("a\0b", 3));
	CU_ASSERT_FALSE(topic_name_valid("a", 0));
}

static void
test_filter_valid(void)
{
	size_t i;

	for (i = 0; i < sizeof filters / sizeof filters[0]; i++) {
		if (topic_filter_valid(filters[i].s, strlen(filters[i].s)) !=
		    (filters[i].ok != 0))
			fprintf(stderr, "filter \"%s\" expected %d\n",
			    filters[i].s, filters[i].ok);
		CU_ASSERT_EQUAL(topic_filter_valid(filters[i].s,
		    strlen(filters[i].s)), filters[i].ok != 0);
	}
	CU_ASSERT_TRUE(topic_filter_valid("a/#/b", 3));
	CU_ASSERT_TRUE(topic_filter_valid("a/+b", 3));
	CU_ASSERT_FALSE(topic_filter_valid("a\0", 2));
}

static void
test_length_limits(void)
{
	static char big[TOPIC_MAX_LEN + 2];

	memset(big, 'x', sizeof big);
	CU_ASSERT_TRUE(topic_name_valid(big, TOPIC_MAX_LEN));
	CU_ASSERT_FALSE(topic_name_valid(big, TOPIC_MAX_LEN + 1));
	CU_ASSERT_TRUE(topic_filter_valid(big, TOPIC_MAX_LEN));
	CU_ASSERT_FALSE(topic_filter_valid(big, TOPIC_MAX_LEN + 1));
}

static void
test_matches_table(void)
{
	size_t i;
	bool got;

	for (i = 0; i < NCASES; i++) {
		CU_ASSERT_TRUE(topic_filter_valid(cases[i].f,
		    strlen(cases[i].f)));
		CU_ASSERT_TRUE(topic_name_valid(cases[i].t,
		    strlen(cases[i].t)));
		got = topic_matches(cases[i].f, strlen(cases[i].f),
		    cases[i].t, strlen(cases[i].t));
		if (got != (cases[i].m != 0))
			fprintf(stderr, "topic_matches(\"%s\", \"%s\") = %d\n",
			    cases[i].f, cases[i].t, got);
		CU_ASSERT_EQUAL(got, cases[i].m != 0);
	}
	/* Explicit lengths: the strings need not be NUL-terminated. */
	CU_ASSERT_TRUE(topic_matches("a/bXX", 3, "a/bYY", 3));
	CU_ASSERT_FALSE(topic_matches("a/b", 3, "a/bc", 4));
	CU_ASSERT_FALSE(topic_matches("", 0, "a", 1));
}

/* Callback for the subs cross-check: sets hit[case index]. */
static void
on_sub(void *owner, uint8_t qos, void *ctx)
{
	int *hit = ctx;

	CU_ASSERT_EQUAL(qos, 1);
	hit[(uintptr_t)owner - 1]++;
}

/*
 * All filters of the table in one trie (owner = case index + 1); matching
 * each case's topic must report exactly the cases whose filter matches.
 */
static void
test_subs_agrees(void)
{
	struct subs *s;
	int hit[NCASES], rc;
	size_t i, j, n, want;
	size_t base = gw_mem_used();

	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < NCASES; i++) {
		rc = subs_add(s, cases[i].f, strlen(cases[i].f),
		    (void *)(uintptr_t)(i + 1), 1, NULL);
		CU_ASSERT_EQUAL(rc, 0);
	}
	CU_ASSERT_EQUAL(subs_count(s), NCASES);
	for (i = 0; i < NCASES; i++) {
		memset(hit, 0, sizeof hit);
		n = subs_match(s, cases[i].t, strlen(cases[i].t), on_sub, hit);
		want = 0;
		for (j = 0; j < NCASES; j++) {
			bool m = topic_matches(cases[j].f, strlen(cases[j].f),
			    cases[i].t, strlen(cases[i].t));

			if (hit[j] != (int)m)
				fprintf(stderr, "subs: \"%s\" on \"%s\": %d\n",
				    cases[j].f, cases[i].t, hit[j]);
			CU_ASSERT_EQUAL(hit[j], (int)m);
			want += m;
		}
		CU_ASSERT_EQUAL(n, want);
		CU_ASSERT_EQUAL(hit[i], cases[i].m);
	}
	/* The same cases one filter at a time. */
	for (i = 0; i < NCASES; i++) {
		CU_ASSERT_EQUAL(subs_remove(s, cases[i].f, strlen(cases[i].f),
		    (void *)(uintptr_t)(i + 1)), 0);
	}
	CU_ASSERT_EQUAL(subs_count(s), 0);
	for (i = 0; i < NCASES; i++) {
		memset(hit, 0, sizeof hit);
		subs_add(s, cases[i].f, strlen(cases[i].f),
		    (void *)(uintptr_t)(i + 1), 1, NULL);
		n = subs_match(s, cases[i].t, strlen(cases[i].t), on_sub, hit);
		CU_ASSERT_EQUAL(n, (size_t)cases[i].m);
		CU_ASSERT_EQUAL(hit[i], cases[i].m);
		subs_remove(s, cases[i].f, strlen(cases[i].f),
		    (void *)(uintptr_t)(i + 1));
	}
	subs_free(s);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* Callback for the retain cross-check: marks the topic's case rows. */
static void
on_retained(struct msg *m, void *ctx)
{
	int *hit = ctx;
	size_t j;

	for (j = 0; j < NCASES; j++) {
		if (strcmp(cases[j].t, m->topic) == 0)
			hit[j]++;
	}
}

/*
 * Every topic of the table retained in one trie; each case's filter must
 * find exactly the topics the reference matcher accepts.
 */
static void
test_retain_agrees(void)
{
	struct retain *r;
	struct msg *m;
	int hit[NCASES], dup[NCASES];
	size_t i, j, n, want, ntopics = 0;
	size_t base = gw_mem_used();

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; i < NCASES; i++) {
		dup[i] = 0;
		for (j = 0; j < i; j++) {
			if (strcmp(cases[i].t, cases[j].t) == 0)
				dup[i] = 1;
		}
		ntopics += !dup[i];
		m = msg_new(cases[i].t, strlen(cases[i].t), "c", 1, NULL, 0,
		    "p", 1, 0, 1, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL(retain_set(r, m), 0);
		msg_unref(&m);
	}
	CU_ASSERT_EQUAL(retain_count(r), ntopics);
	for (i = 0; i < NCASES; i++) {
		memset(hit, 0, sizeof hit);
		n = retain_match(r, cases[i].f, strlen(cases[i].f),
		    on_retained, hit);
		want = 0;
		for (j = 0; j < NCASES; j++) {
			bool m2 = topic_matches(cases[i].f, strlen(cases[i].f),
			    cases[j].t, strlen(cases[j].t));

			if (hit[j] != (int)m2)
				fprintf(stderr, "retain: \"%s\" on \"%s\": "
				    "%d\n", cases[i].f, cases[j].t, hit[j]);
			CU_ASSERT_EQUAL(hit[j], (int)m2);
			if (!dup[j])
				want += m2;
		}
		CU_ASSERT_EQUAL(n, want);
		CU_ASSERT_EQUAL(hit[i], cases[i].m);
	}
	retain_free(r);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static void
test_level_cursors(void)
{
	const char *t = "ab//c";
	size_t len = strlen(t);

	CU_ASSERT_EQUAL(topic_level_end(t, len, 0), 2);
	CU_ASSERT_EQUAL(topic_level_end(t, len, 3), 3);
	CU_ASSERT_EQUAL(topic_level_end(t, len, 4), 5);
	CU_ASSERT_EQUAL(topic_level_end(t, len, 5), 5);
	CU_ASSERT_EQUAL(topic_level_prev(t, 6), 4);
	CU_ASSERT_EQUAL(topic_level_prev(t, 4), 3);
	CU_ASSERT_EQUAL(topic_level_prev(t, 3), 0);
	CU_ASSERT_EQUAL(topic_level_prev("a/", 3), 2);
	CU_ASSERT_EQUAL(topic_level_prev("a/", 2), 0);
}

struct item {
	struct topic_lnode	ln;
	char			text[16];
};

static void
test_ltab(void)
{
	static struct item it[5000];
	struct topic_ltab t = { NULL, 0, 0 };
	struct topic_lnode *ln;
	size_t base = gw_mem_used(), i, seen;
	int len;

	for (i = 0; i < 5000; i++) {
		len = snprintf(it[i].text, sizeof it[i].text, "d%zu", i);
		topic_lnode_init(&it[i].ln, it[i].text, (size_t)len);
		CU_ASSERT_EQUAL(topic_ltab_add(&t, &it[i].ln), 0);
	}
	CU_ASSERT_EQUAL(t.n, 5000);
	CU_ASSERT_TRUE(t.nb >= 2048);
	for (i = 0; i < 5000; i++) {
		ln = topic_ltab_find(&t, it[i].text, strlen(it[i].text));
		CU_ASSERT_PTR_EQUAL(ln, &it[i].ln);
	}
	CU_ASSERT_PTR_NULL(topic_ltab_find(&t, "d5000", 5));
	CU_ASSERT_PTR_NULL(topic_ltab_find(&t, "d1", 1));
	seen = 0;
	for (ln = topic_ltab_first(&t); ln != NULL;
	    ln = topic_ltab_next(&t, ln))
		seen++;
	CU_ASSERT_EQUAL(seen, 5000);
	for (i = 0; i < 4990; i++)
		topic_ltab_remove(&t, &it[i].ln);
	CU_ASSERT_EQUAL(t.n, 10);
	CU_ASSERT_TRUE(t.nb <= 64);
	CU_ASSERT_PTR_EQUAL(topic_ltab_find(&t, "d4995", 5), &it[4995].ln);
	CU_ASSERT_PTR_NULL(topic_ltab_find(&t, "d17", 3));
	for (i = 4990; i < 5000; i++)
		topic_ltab_remove(&t, &it[i].ln);
	CU_ASSERT_EQUAL(t.n, 0);
	CU_ASSERT_PTR_NULL(t.b);
	CU_ASSERT_PTR_NULL(topic_ltab_first(&t));
	CU_ASSERT_EQUAL(gw_mem_used(), base);
	/* The empty key is a key like any other. */
	topic_lnode_init(&it[0].ln, "", 0);
	CU_ASSERT_EQUAL(topic_ltab_add(&t, &it[0].ln), 0);
	CU_ASSERT_PTR_EQUAL(topic_ltab_find(&t, "x", 0), &it[0].ln);
	topic_ltab_remove(&t, &it[0].ln);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* SipHash-2-4 against the paper's vectors; the keyed table hash. */
static void
test_keyhash(void)
{
	uint8_t key[16], msg[15];
	size_t i;

	for (i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)i;
	CU_ASSERT_EQUAL(keyhash_siphash24(key, msg, 0),
	    0x726fdb47dd0e0e31ULL);
	CU_ASSERT_EQUAL(keyhash_siphash24(key, msg, 15),
	    0xa129ca6149be45e5ULL);
	/* Stable within the process, different for different input. */
	CU_ASSERT_EQUAL(keyhash("dev/1", 5), keyhash("dev/1", 5));
	CU_ASSERT_NOT_EQUAL(keyhash("dev/1", 5), keyhash("dev/2", 5));
	CU_ASSERT_NOT_EQUAL(keyhash("", 0), keyhash("\0", 1));
}

static void
test_levels(void)
{
	CU_ASSERT_EQUAL(topic_levels("a", 1), 1);
	CU_ASSERT_EQUAL(topic_levels("/", 1), 2);
	CU_ASSERT_EQUAL(topic_levels("a/b/#", 5), 3);
	CU_ASSERT_EQUAL(topic_levels("//", 2), 3);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("topic", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "name validity", test_name_valid) == NULL ||
	    CU_add_test(s, "filter validity", test_filter_valid) == NULL ||
	    CU_add_test(s, "length limits", test_length_limits) == NULL ||
	    CU_add_test(s, "match table", test_matches_table) == NULL ||
	    CU_add_test(s, "subs agrees", test_subs_agrees) == NULL ||
	    CU_add_test(s, "retain agrees", test_retain_agrees) == NULL ||
	    CU_add_test(s, "level cursors", test_level_cursors) == NULL ||
	    CU_add_test(s, "level table", test_ltab) == NULL ||
	    CU_add_test(s, "keyed hash", test_keyhash) == NULL ||
	    CU_add_test(s, "level count", test_levels) == NULL) {
		return cutest_setup_failed();
	}
	return cutest_run();
}
