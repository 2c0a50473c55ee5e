/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the subscription trie: add, QoS replacement, remove and
 * pruning (memory back to baseline), count, a randomized comparison with
 * the reference matcher over thousands of filters and topics, a node with
 * 10,000 children, topics of 30,000 levels (no recursion) and every
 * allocation failure of subs_add leaving the trie unchanged; and a
 * session's own filter list with its hash index against a plain array.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "build_config.h"
#include "broker/session.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "oomtest.h"

#define OWNER(i)	((void *)(uintptr_t)(i))

struct hits {
	int	*n;		/* calls per owner number */
	size_t	 max;		/* entries in n */
	int	 qos[4];	/* calls per QoS */
};

static void
on_match(void *owner, uint8_t qos, void *ctx)
{
	struct hits *h = ctx;
	uintptr_t i = (uintptr_t)owner;

	CU_ASSERT_FATAL(i < h->max && qos < 4);
	h->n[i]++;
	h->qos[qos]++;
}

static size_t
match(struct subs *s, const char *t, struct hits *h)
{
	memset(h->n, 0, h->max * sizeof *h->n);
	memset(h->qos, 0, sizeof h->qos);
	return subs_match(s, t, strlen(t), on_match, h);
}

static int
add(struct subs *s, const char *f, uintptr_t owner, uint8_t qos)
{
	return subs_add(s, f, strlen(f), OWNER(owner), qos, NULL);
}

static int
del(struct subs *s, const char *f, uintptr_t owner)
{
	return subs_remove(s, f, strlen(f), OWNER(owner));
}

static void
test_add_replace(void)
{
	struct subs *s;
	int n[8], replaced;
	struct hits h = { n, 8, { 0 } };
	size_t base = gw_mem_used();

	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(subs_count(s), 0);
	CU_ASSERT_EQUAL(subs_add(s, "a/b", 3, OWNER(1), 0, &replaced), 0);
	CU_ASSERT_EQUAL(replaced, 0);
	CU_ASSERT_EQUAL(subs_add(s, "a/b", 3, OWNER(1), 2, &replaced), 0);
	CU_ASSERT_EQUAL(replaced, 1);
	CU_ASSERT_EQUAL(subs_count(s), 1);
	CU_ASSERT_EQUAL(match(s, "a/b", &h), 1);
	CU_ASSERT_EQUAL(h.qos[2], 1);
	CU_ASSERT_EQUAL(h.n[1], 1);

	/* Another owner, same filter; same owner, another filter. */
	CU_ASSERT_EQUAL(subs_add(s, "a/b", 3, OWNER(2), 1, &replaced), 0);
	CU_ASSERT_EQUAL(replaced, 0);
	CU_ASSERT_EQUAL(add(s, "a/+", 1, 0), 0);
	CU_ASSERT_EQUAL(add(s, "#", 1, 1), 0);
	CU_ASSERT_EQUAL(subs_count(s), 4);
	CU_ASSERT_EQUAL(match(s, "a/b", &h), 4);
	CU_ASSERT_EQUAL(h.n[1], 3);
	CU_ASSERT_EQUAL(h.n[2], 1);
	CU_ASSERT_EQUAL(h.qos[0], 1);
	CU_ASSERT_EQUAL(h.qos[1], 2);
	CU_ASSERT_EQUAL(h.qos[2], 1);
	CU_ASSERT_EQUAL(match(s, "a/c", &h), 2);
	CU_ASSERT_EQUAL(match(s, "b", &h), 1);
	CU_ASSERT_EQUAL(match(s, "$SYS/b", &h), 0);

	/* Invalid filters are refused, not stored. */
	CU_ASSERT_EQUAL(add(s, "a/#/b", 1, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(add(s, "", 1, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(add(s, "a+", 1, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(subs_count(s), 4);
	CU_ASSERT_EQUAL(subs_match(s, "", 0, on_match, &h), 0);
	subs_free(s);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
	subs_free(NULL);
}

static void
test_remove_prune(void)
{
	static const char *f[] = {
		"a", "a/b", "a/b/c", "a/+/c", "a/#", "+", "#", "/", "//",
		"+/+", "a//b/", "$SYS/#", "x/y/z/w", "x/y/+/#",
	};
	size_t nf = sizeof f / sizeof f[0], i, after_new, base;
	struct subs *s;
	int n[8];
	struct hits h = { n, 8, { 0 } };

	base = gw_mem_used();
	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	after_new = gw_mem_used();
	for (i = 0; i < nf; i++) {
		CU_ASSERT_EQUAL(add(s, f[i], 1, 0), 0);
		CU_ASSERT_EQUAL(add(s, f[i], 2, 1), 0);
	}
	CU_ASSERT_EQUAL(subs_count(s), 2 * nf);

	/* Not found: unknown filter, wrong owner, prefix, invalid. */
	CU_ASSERT_EQUAL(del(s, "q", 1), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(del(s, "a", 3), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(del(s, "x/y", 1), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(del(s, "x/y/z/w/v", 1), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(del(s, "a/#/b", 1), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(subs_count(s), 2 * nf);

	/* Removing a leaf keeps the parent's own subscription. */
	CU_ASSERT_EQUAL(del(s, "a/b/c", 1), 0);
	CU_ASSERT_EQUAL(del(s, "a/b/c", 1), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(match(s, "a/b/c", &h), 7);
	CU_ASSERT_EQUAL(h.n[1], 3);
	CU_ASSERT_EQUAL(h.n[2], 4);
	CU_ASSERT_EQUAL(match(s, "a/b", &h), 8);

	for (i = 0; i < nf; i++) {
		CU_ASSERT_EQUAL(del(s, f[i], 2), 0);
		if (i != 2)
			CU_ASSERT_EQUAL(del(s, f[i], 1), 0);
	}
	CU_ASSERT_EQUAL(subs_count(s), 0);
	CU_ASSERT_EQUAL(match(s, "a/b", &h), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);

	/* Again in reverse order. */
	for (i = 0; i < nf; i++)
		CU_ASSERT_EQUAL(add(s, f[i], 1, 0), 0);
	for (i = nf; i-- > 0;)
		CU_ASSERT_EQUAL(del(s, f[i], 1), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);
	subs_free(s);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* Many owners on one filter: the entry vector grows and shrinks back. */
static void
test_many_owners(void)
{
	struct subs *s;
	static int n[2001];
	struct hits h = { n, 2001, { 0 } };
	size_t after_new, i;

	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	after_new = gw_mem_used();
	for (i = 1; i <= 2000; i++)
		CU_ASSERT_EQUAL(add(s, "#", i, i % 3), 0);
	CU_ASSERT_EQUAL(match(s, "any/thing", &h), 2000);
	CU_ASSERT_EQUAL(h.n[1234], 1);
	for (i = 1; i <= 1990; i++)
		CU_ASSERT_EQUAL(del(s, "#", i), 0);
	CU_ASSERT_EQUAL(match(s, "x", &h), 10);
	CU_ASSERT_EQUAL(h.n[1995], 1);
	CU_ASSERT_EQUAL(h.n[5], 0);
	for (i = 1991; i <= 2000; i++)
		CU_ASSERT_EQUAL(del(s, "#", i), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);
	subs_free(s);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(uint32_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state % n);
}

/* Random topic name (or filter when wild) of 1..5 levels into buf. */
static void
rnd_topic(char *buf, size_t size, int wild)
{
	static const char *lv[] = { "a", "b", "c", "", "dd", "$s" };
	size_t len = 0, nl, i;
	const char *l;

	nl = 1 + rnd(5);
	buf[0] = '\0';
	for (i = 0; i < nl; i++) {
		if (wild && i == nl - 1 && rnd(4) == 0)
			l = "#";
		else if (wild && rnd(3) == 0)
			l = "+";
		else
			l = lv[rnd(i == 0 ? 6 : 5)];
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
		    i == 0 ? "" : "/", l);
	}
	if (len == 0)			/* "" is neither name nor filter */
		snprintf(buf, size, "a");
}

#define NRAND	2500

/*
 * subs_match against brute force topic_matches: every owner the reference
 * matcher accepts is reported exactly once, and nothing else.
 */
static void
test_random_vs_reference(void)
{
	static char filt[NRAND][64], top[NRAND][64];
	static int n[NRAND + 1];
	struct hits h = { n, NRAND + 1, { 0 } };
	struct subs *s;
	size_t i, j, got, want, bad = 0, total = 0, after_new;

	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	after_new = gw_mem_used();
	for (i = 0; i < NRAND; i++) {
		rnd_topic(filt[i], sizeof filt[i], 1);
		rnd_topic(top[i], sizeof top[i], 0);
		CU_ASSERT_TRUE(topic_filter_valid(filt[i], strlen(filt[i])));
		CU_ASSERT_TRUE(topic_name_valid(top[i], strlen(top[i])));
		CU_ASSERT_EQUAL(add(s, filt[i], i + 1, 0), 0);
	}
	CU_ASSERT_EQUAL(subs_count(s), NRAND);
	for (i = 0; i < NRAND; i++) {
		got = match(s, top[i], &h);
		want = 0;
		for (j = 0; j < NRAND; j++) {
			int m = topic_matches(filt[j], strlen(filt[j]),
			    top[i], strlen(top[i]));

			want += (size_t)m;
			if (h.n[j + 1] != m && bad++ < 10)
				fprintf(stderr, "\"%s\" on \"%s\": %d, want "
				    "%d\n", filt[j], top[i], h.n[j + 1], m);
		}
		total += want;
		CU_ASSERT_EQUAL(got, want);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_TRUE(total > NRAND);	/* the test exercises matches */

	/* Remove every other filter and compare again. */
	for (i = 0; i < NRAND; i += 2)
		CU_ASSERT_EQUAL(del(s, filt[i], i + 1), 0);
	for (i = 0; i < NRAND; i += 7) {
		got = match(s, top[i], &h);
		want = 0;
		for (j = 1; j < NRAND; j += 2) {
			int m = topic_matches(filt[j], strlen(filt[j]),
			    top[i], strlen(top[i]));

			want += (size_t)m;
			CU_ASSERT_EQUAL(h.n[j + 1], m);
		}
		CU_ASSERT_EQUAL(got, want);
	}
	for (i = 1; i < NRAND; i += 2)
		CU_ASSERT_EQUAL(del(s, filt[i], i + 1), 0);
	CU_ASSERT_EQUAL(subs_count(s), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);
	subs_free(s);
}

#define NDEV	10000

/* One node with 10,000 literal children, plus wildcard siblings. */
static void
test_wide_node(void)
{
	static int n[NDEV + 4];
	struct hits h = { n, NDEV + 4, { 0 } };
	struct subs *s;
	char f[64];
	size_t i, after_new, base;

	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	after_new = gw_mem_used();
	for (i = 0; i < NDEV; i++) {
		snprintf(f, sizeof f, "dev/%zu/temp", i);
		CU_ASSERT_EQUAL(add(s, f, i, 1), 0);
	}
	CU_ASSERT_EQUAL(add(s, "dev/+/temp", NDEV, 1), 0);
	CU_ASSERT_EQUAL(add(s, "dev/#", NDEV + 1, 1), 0);
	CU_ASSERT_EQUAL(subs_count(s), NDEV + 2);
	for (i = 0; i < NDEV; i += 97) {
		snprintf(f, sizeof f, "dev/%zu/temp", i);
		CU_ASSERT_EQUAL(match(s, f, &h), 3);
		CU_ASSERT_EQUAL(h.n[i], 1);
		CU_ASSERT_EQUAL(h.n[NDEV], 1);
		CU_ASSERT_EQUAL(h.n[NDEV + 1], 1);
	}
	CU_ASSERT_EQUAL(match(s, "dev/99999/temp", &h), 2);
	CU_ASSERT_EQUAL(match(s, "dev/5/hum", &h), 1);
	for (i = 0; i < NDEV; i++) {
		snprintf(f, sizeof f, "dev/%zu/temp", i);
		CU_ASSERT_EQUAL(del(s, f, i), 0);
	}
	CU_ASSERT_EQUAL(match(s, "dev/5/temp", &h), 2);
	CU_ASSERT_EQUAL(del(s, "dev/+/temp", NDEV), 0);
	CU_ASSERT_EQUAL(del(s, "dev/#", NDEV + 1), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);
	subs_free(s);

	/* Teardown of a full trie (linear, not per-bucket rescans). */
	base = gw_mem_used();
	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < 10 * NDEV; i++) {
		snprintf(f, sizeof f, "dev/%zu/%s", i, i % 2 ? "a" : "b");
		CU_ASSERT_EQUAL(add(s, f, i, 1), 0);
		if (i % 3 == 0)
			CU_ASSERT_EQUAL(add(s, "dev/+/#", i, 1), 0);
	}
	subs_free(s);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/*
 * A topic of 30,000 slashes (30,001 empty levels) against filters just as
 * deep: matching and freeing must not recurse.
 */
static void
test_deep(void)
{
	static char topic[30001], plus[60002], lit[30001];
	static int n[8];
	struct hits h = { n, 8, { 0 } };
	struct subs *s;
	size_t i, base = gw_mem_used();

	memset(topic, '/', 30000);
	memset(lit, '/', 30000);
	for (i = 0; i < 30001; i++) {
		plus[2 * i] = '+';
		plus[2 * i + 1] = '/';
	}
	plus[60001] = '\0';		/* "+/+/.../+": 30,001 levels */
	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(add(s, "#", 1, 0), 0);
	CU_ASSERT_EQUAL(add(s, "+/#", 2, 0), 0);
	CU_ASSERT_EQUAL(add(s, plus, 3, 0), 0);
	CU_ASSERT_EQUAL(add(s, lit, 4, 0), 0);
	lit[29999] = '\0';
	CU_ASSERT_EQUAL(add(s, lit, 5, 0), 0);
	lit[29999] = '/';
	CU_ASSERT_EQUAL(match(s, topic, &h), 4);
	CU_ASSERT_EQUAL(h.n[5], 0);
	CU_ASSERT_EQUAL(match(s, "a", &h), 2);
	CU_ASSERT_EQUAL(h.n[1], 1);
	CU_ASSERT_EQUAL(h.n[2], 1);
	topic[29999] = '\0';
	CU_ASSERT_EQUAL(match(s, topic, &h), 3);
	CU_ASSERT_EQUAL(h.n[5], 1);
	CU_ASSERT_EQUAL(del(s, plus, 3), 0);
	CU_ASSERT_EQUAL(subs_count(s), 4);
	subs_free(s);	/* deep literal chains freed without recursion */
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* One subs_add under allocation failure, with what it must not change. */
struct oom_add {
	struct subs	*s;
	const char	*filter;
	uintptr_t	 owner;
	struct hits	 h;
	size_t		 count;		/* subs_count() before the try */
	size_t		 matched;	/* matches of "a/x/y" before it */
};

static int
oom_add(void *ctx)
{
	struct oom_add *a = ctx;

	a->count = subs_count(a->s);
	a->matched = match(a->s, "a/x/y", &a->h);
	return add(a->s, a->filter, a->owner, 1);
}

static void
oom_add_check(void *ctx)
{
	struct oom_add *a = ctx;

	CU_ASSERT_EQUAL(subs_count(a->s), a->count);
	CU_ASSERT_EQUAL(match(a->s, "a/x/y", &a->h), a->matched);
}

/*
 * Fails each allocation of subs_add in turn: every failure returns
 * GW_ENOMEM and leaves matches, count and memory as they were.
 */
static void
test_oom(void)
{
	static const char *f[] = { "a/b/c/d", "a/x", "a/+/#", "z", "a/x" };
	static int n[16];
	struct hits h = { n, 16, { 0 } };
	struct oom_add a;
	struct subs *s;
	size_t i;
	long nfail = 0;

	s = subs_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(add(s, "a/x/y", 9, 0), 0);
	for (i = 0; i < sizeof f / sizeof f[0]; i++) {
		a = (struct oom_add){ s, f[i], i + 1, h, 0, 0 };
		nfail += oomtest_run(oom_add, oom_add_check, &a, 0);
	}
#ifdef GW_FAULT_INJECTION
	CU_ASSERT_TRUE(nfail >= 8);
#endif
	(void)nfail;
	CU_ASSERT_EQUAL(subs_count(s), 6);
	CU_ASSERT_EQUAL(match(s, "a/x/y", &h), 2);
	CU_ASSERT_EQUAL(h.n[3], 1);
	CU_ASSERT_EQUAL(match(s, "a/b/c/d", &h), 2);
	CU_ASSERT_EQUAL(match(s, "a/x", &h), 3);
	subs_free(s);
}

/*
 * A session's own filter list and its hash index: random sets, replaces
 * and removes over a pool of 3,000 filters, checked against a plain array
 * after every step (membership of every pool filter every 500 steps), then
 * everything removed leaves the list and its index empty. Subscription
 * Identifiers ride along (every fifth set clears one): nsub_ids must count
 * the entries holding one through replaces and removes.
 */
static void
test_session_filters(void)
{
	struct session_table *t;
	struct session *s;
	static char pool[3000][24];
	static int8_t ref[3000];	/* granted QoS, -1 when absent */
	static uint32_t refid[3000];	/* Subscription Identifier or 0 */
	size_t i, k, n = 0, nids = 0, len;
	uint32_t id;
	unsigned seed = 7;
	int rc;

	t = session_table_new();
	CU_ASSERT_FATAL(t != NULL);
	s = session_create(t, "idx", 3, true);
	CU_ASSERT_FATAL(s != NULL);
	for (i = 0; i < 3000; i++) {
		snprintf(pool[i], sizeof pool[i], "d/%zu/t", i * 7919 % 100003);
		ref[i] = -1;
	}
	for (k = 0; k < 40000; k++) {
		i = (size_t)rand_r(&seed) % 3000;
		len = strlen(pool[i]);
		if (rand_r(&seed) % 3 != 0) {
			id = k % 5 == 0 ? 0 : (uint32_t)k;
			CU_ASSERT_EQUAL(session_sub_set(s, pool[i], len,
			    (uint8_t)(k % 3), id), 0);
			if (ref[i] < 0)
				n++;
			if (refid[i] != 0)
				nids--;
			if (id != 0)
				nids++;
			refid[i] = id;
			ref[i] = (int8_t)(k % 3);
		} else {
			rc = session_sub_remove(s, pool[i], len);
			CU_ASSERT_EQUAL(rc, ref[i] < 0 ? GW_ENOTFOUND : 0);
			if (ref[i] >= 0)
				n--;
			if (refid[i] != 0)
				nids--;
			ref[i] = -1;
			refid[i] = 0;
		}
		CU_ASSERT_EQUAL_FATAL(s->nsubs, n);
		CU_ASSERT_EQUAL_FATAL(s->nsub_ids, nids);
		if (k % 500 != 0)
			continue;
		for (i = 0; i < 3000; i++)
			CU_ASSERT_EQUAL(session_sub_has(s, pool[i],
			    strlen(pool[i])), ref[i] >= 0);
		for (i = 0; i < s->nsubs; i++)
			CU_ASSERT_TRUE(s->subs[i].qos < 3);
	}
	CU_ASSERT_TRUE(s->subidx_cap >= 2 * s->nsubs);
	for (i = 0; i < 3000; i++) {
		if (ref[i] >= 0)
			CU_ASSERT_EQUAL(session_sub_remove(s, pool[i],
			    strlen(pool[i])), 0);
		CU_ASSERT_FALSE(session_sub_has(s, pool[i], strlen(pool[i])));
	}
	CU_ASSERT_EQUAL(s->nsubs, 0);
	CU_ASSERT_EQUAL(s->nsub_ids, 0);
	for (i = 0; i < s->subidx_cap; i++)
		CU_ASSERT_EQUAL(s->subidx[i], 0);
	session_destroy(t, s);
	session_table_free(t);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("subs", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "add and replace", test_add_replace) == NULL ||
	    CU_add_test(s, "remove and prune", test_remove_prune) == NULL ||
	    CU_add_test(s, "many owners", test_many_owners) == NULL ||
	    CU_add_test(s, "random vs reference",
	    test_random_vs_reference) == NULL ||
	    CU_add_test(s, "10k children", test_wide_node) == NULL ||
	    CU_add_test(s, "30k levels", test_deep) == NULL ||
	    CU_add_test(s, "allocation failures", test_oom) == NULL ||
	    CU_add_test(s, "session filter index",
	    test_session_filters) == NULL) {
		return cutest_setup_failed();
	}
	return cutest_run();
}
