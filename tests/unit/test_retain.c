/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the retained-message trie: set, replace, delete by empty
 * payload, reference counts, count and bytes, wildcard lookups with the '$'
 * rule, a randomized comparison with the reference matcher, 10,000 siblings,
 * 30,000-level topics, allocation failures, and memory back to baseline;
 * the expiry heap (earliest first through sets, replacements, deletes and
 * removals, against a reference table) and its allocation failure.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "build_config.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/topic.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "mqtt/props.h"

#define MAXSEEN	64

struct seen {
	size_t		 n;
	const char	*topic[MAXSEEN];	/* first MAXSEEN topics */
};

static void
on_msg(struct msg *m, void *ctx)
{
	struct seen *s = ctx;

	CU_ASSERT_TRUE(atomic_load(&m->refs) >= 1);
	if (s->n < MAXSEEN)
		s->topic[s->n] = m->topic;
	s->n++;
}

static struct msg *
mk(const char *topic, const char *payload)
{
	return msg_new(topic, strlen(topic), "cid", 3, NULL, 0, payload,
	    strlen(payload), 1, 1, 1234);
}

static unsigned int
refs(struct msg *m)
{
	return atomic_load(&m->refs);
}

/* Sets topic to payload through a temporary message. */
static int
put(struct retain *r, const char *topic, const char *payload)
{
	struct msg *m;
	int rc;

	if ((m = mk(topic, payload)) == NULL)
		return GW_ENOMEM;
	rc = retain_set(r, m);
	msg_unref(&m);
	return rc;
}

static size_t
look(struct retain *r, const char *filter, struct seen *s)
{
	memset(s, 0, sizeof *s);
	return retain_match(r, filter, strlen(filter), on_msg, s);
}

static int
saw(const struct seen *s, const char *topic)
{
	size_t i;

	for (i = 0; i < s->n && i < MAXSEEN; i++) {
		if (strcmp(s->topic[i], topic) == 0)
			return 1;
	}
	return 0;
}

static void
test_set_replace_delete(void)
{
	struct retain *r;
	struct msg *m1, *m2, *del;
	struct seen s;
	size_t base = gw_mem_used(), after_new;

	m1 = mk("a/b", "hello");
	m2 = mk("a/b", "hi");
	del = mk("a/b", "");
	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	after_new = gw_mem_used();
	CU_ASSERT_PTR_NOT_NULL_FATAL(m1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(del);

	CU_ASSERT_EQUAL(retain_set(r, m1), 0);
	CU_ASSERT_EQUAL(refs(m1), 2);
	CU_ASSERT_EQUAL(retain_count(r), 1);
	CU_ASSERT_EQUAL(retain_bytes(r), 5);
	CU_ASSERT_EQUAL(look(r, "a/b", &s), 1);
	CU_ASSERT_PTR_EQUAL(s.topic[0], m1->topic);

	/* Setting the same message again keeps one reference. */
	CU_ASSERT_EQUAL(retain_set(r, m1), 0);
	CU_ASSERT_EQUAL(refs(m1), 2);
	CU_ASSERT_EQUAL(retain_count(r), 1);

	/* Replace: the old message loses the trie's reference. */
	CU_ASSERT_EQUAL(retain_set(r, m2), 0);
	CU_ASSERT_EQUAL(refs(m1), 1);
	CU_ASSERT_EQUAL(refs(m2), 2);
	CU_ASSERT_EQUAL(retain_count(r), 1);
	CU_ASSERT_EQUAL(retain_bytes(r), 2);
	CU_ASSERT_EQUAL(look(r, "a/b", &s), 1);
	CU_ASSERT_PTR_EQUAL(s.topic[0], m2->topic);

	/* Empty payload deletes, takes no reference, prunes. */
	CU_ASSERT_EQUAL(retain_set(r, del), 0);
	CU_ASSERT_EQUAL(refs(m2), 1);
	CU_ASSERT_EQUAL(refs(del), 1);
	CU_ASSERT_EQUAL(retain_count(r), 0);
	CU_ASSERT_EQUAL(retain_bytes(r), 0);
	CU_ASSERT_EQUAL(look(r, "#", &s), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);
	/* Deleting what is not there is fine. */
	CU_ASSERT_EQUAL(retain_set(r, del), 0);
	CU_ASSERT_EQUAL(put(r, "x/y/z", ""), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);

	/* Deleting a parent keeps the child and vice versa. */
	CU_ASSERT_EQUAL(retain_set(r, m1), 0);
	CU_ASSERT_EQUAL(put(r, "a", "p"), 0);
	CU_ASSERT_EQUAL(put(r, "a/b/c", "pq"), 0);
	CU_ASSERT_EQUAL(retain_count(r), 3);
	CU_ASSERT_EQUAL(retain_bytes(r), 8);
	CU_ASSERT_EQUAL(put(r, "a/b", ""), 0);
	CU_ASSERT_EQUAL(refs(m1), 1);
	CU_ASSERT_EQUAL(look(r, "a/#", &s), 2);
	CU_ASSERT_TRUE(saw(&s, "a"));
	CU_ASSERT_TRUE(saw(&s, "a/b/c"));
	CU_ASSERT_EQUAL(put(r, "a/b/c", ""), 0);
	CU_ASSERT_EQUAL(put(r, "a", ""), 0);
	CU_ASSERT_EQUAL(retain_count(r), 0);
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);

	/* retain_free drops the trie's references. */
	CU_ASSERT_EQUAL(retain_set(r, m1), 0);
	CU_ASSERT_EQUAL(refs(m1), 2);
	retain_free(r);
	CU_ASSERT_EQUAL(refs(m1), 1);
	msg_unref(&m1);
	msg_unref(&m2);
	msg_unref(&del);
	CU_ASSERT_PTR_NULL(m1);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
	retain_free(NULL);
}

static void
test_invalid(void)
{
	struct retain *r;
	struct seen s;

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(put(r, "a/+", "x"), GW_EMALFORMED);
	CU_ASSERT_EQUAL(put(r, "#", "x"), GW_EMALFORMED);
	CU_ASSERT_EQUAL(put(r, "", "x"), GW_EMALFORMED);
	CU_ASSERT_EQUAL(retain_count(r), 0);
	CU_ASSERT_EQUAL(put(r, "a", "x"), 0);
	CU_ASSERT_EQUAL(look(r, "a/#/b", &s), 0);
	CU_ASSERT_EQUAL(look(r, "", &s), 0);
	CU_ASSERT_EQUAL(look(r, "a+", &s), 0);
	CU_ASSERT_EQUAL(look(r, "a", &s), 1);
	retain_free(r);
}

static void
test_wildcards(void)
{
	static const char *t[] = {
		"a", "a/b", "a/b/c", "a/c", "a/", "/", "/a", "//", "b",
		"$SYS", "$SYS/x", "$SYS/x/y", "a/$x",
	};
	struct retain *r;
	struct seen s;
	size_t i;

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		CU_ASSERT_EQUAL(put(r, t[i], t[i]), 0);
	CU_ASSERT_EQUAL(retain_count(r), sizeof t / sizeof t[0]);
	CU_ASSERT_EQUAL(look(r, "#", &s), 10);
	CU_ASSERT_FALSE(saw(&s, "$SYS"));
	CU_ASSERT_EQUAL(look(r, "+", &s), 2);
	CU_ASSERT_TRUE(saw(&s, "a"));
	CU_ASSERT_TRUE(saw(&s, "b"));
	CU_ASSERT_EQUAL(look(r, "a/+", &s), 4);
	CU_ASSERT_TRUE(saw(&s, "a/"));
	CU_ASSERT_TRUE(saw(&s, "a/$x"));
	CU_ASSERT_EQUAL(look(r, "a/#", &s), 6);
	CU_ASSERT_EQUAL(look(r, "+/+", &s), 6);
	CU_ASSERT_EQUAL(look(r, "+/#", &s), 10);
	CU_ASSERT_EQUAL(look(r, "$SYS/#", &s), 3);
	CU_ASSERT_EQUAL(look(r, "$SYS/+", &s), 1);
	CU_ASSERT_EQUAL(look(r, "+/x", &s), 0);
	CU_ASSERT_EQUAL(look(r, "/#", &s), 3);
	CU_ASSERT_EQUAL(look(r, "/+", &s), 2);
	CU_ASSERT_EQUAL(look(r, "+/", &s), 2);
	CU_ASSERT_EQUAL(look(r, "+/+/+", &s), 2);
	CU_ASSERT_TRUE(saw(&s, "//"));
	CU_ASSERT_EQUAL(look(r, "a/b/c/#", &s), 1);
	CU_ASSERT_EQUAL(look(r, "a/b/c/+", &s), 0);
	CU_ASSERT_EQUAL(look(r, "q/#", &s), 0);
	retain_free(r);
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dull;

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
	if (len == 0)
		snprintf(buf, size, "a");
}

#define NTOP	2000
#define NFILT	1000

struct flags {
	char	(*top)[64];
	int	 *hit;
};

static void
on_flag(struct msg *m, void *ctx)
{
	struct flags *f = ctx;
	size_t i;

	for (i = 0; i < NTOP; i++) {
		if (strcmp(f->top[i], m->topic) == 0) {
			f->hit[i]++;
			return;
		}
	}
	CU_FAIL("unknown topic reported");
}

/*
 * retain_match against the reference matcher over random topics (stored
 * once each; duplicates replace) and random filters.
 */
static void
test_random_vs_reference(void)
{
	static char top[NTOP][64], filt[64];
	static int hit[NTOP], first[NTOP];
	struct flags fl = { top, hit };
	struct retain *r;
	size_t i, j, got, want, bad = 0, total = 0, distinct = 0;
	size_t base = gw_mem_used();

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; i < NTOP; i++) {
		rnd_topic(top[i], sizeof top[i], 0);
		first[i] = 1;
		for (j = 0; j < i; j++) {
			if (strcmp(top[i], top[j]) == 0) {
				first[i] = 0;
				break;
			}
		}
		distinct += (size_t)first[i];
		CU_ASSERT_EQUAL(put(r, top[i], "v"), 0);
	}
	CU_ASSERT_EQUAL(retain_count(r), distinct);
	CU_ASSERT_EQUAL(retain_bytes(r), distinct);
	for (i = 0; i < NFILT; i++) {
		rnd_topic(filt, sizeof filt, 1);
		memset(hit, 0, sizeof hit);
		got = retain_match(r, filt, strlen(filt), on_flag, &fl);
		want = 0;
		for (j = 0; j < NTOP; j++) {
			int m;

			if (!first[j])
				continue;
			m = topic_matches(filt, strlen(filt), top[j],
			    strlen(top[j]));
			want += (size_t)m;
			if (hit[j] != m && bad++ < 10)
				fprintf(stderr, "\"%s\" on \"%s\": %d, want "
				    "%d\n", filt, top[j], hit[j], m);
		}
		total += want;
		CU_ASSERT_EQUAL(got, want);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_TRUE(total > NFILT);
	for (i = 0; i < NTOP; i++)
		CU_ASSERT_EQUAL(put(r, top[i], ""), 0);
	CU_ASSERT_EQUAL(retain_count(r), 0);
	CU_ASSERT_EQUAL(retain_bytes(r), 0);
	retain_free(r);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

#define NDEV	10000

static void
test_wide(void)
{
	struct retain *r;
	struct seen s;
	char t[64];
	size_t i, after_new, base = gw_mem_used();

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	after_new = gw_mem_used();
	for (i = 0; i < NDEV; i++) {
		snprintf(t, sizeof t, "dev/%zu/temp", i);
		CU_ASSERT_EQUAL(put(r, t, "21.5"), 0);
	}
	CU_ASSERT_EQUAL(retain_count(r), NDEV);
	CU_ASSERT_EQUAL(retain_bytes(r), 4 * NDEV);
	CU_ASSERT_EQUAL(look(r, "dev/+/temp", &s), NDEV);
	CU_ASSERT_EQUAL(look(r, "dev/#", &s), NDEV);
	CU_ASSERT_EQUAL(look(r, "#", &s), NDEV);
	CU_ASSERT_EQUAL(look(r, "+/+/+", &s), NDEV);
	CU_ASSERT_EQUAL(look(r, "dev/4321/temp", &s), 1);
	CU_ASSERT_STRING_EQUAL(s.topic[0], "dev/4321/temp");
	CU_ASSERT_EQUAL(look(r, "dev/4321/+", &s), 1);
	CU_ASSERT_EQUAL(look(r, "dev/+/hum", &s), 0);
	for (i = 0; i < NDEV; i++) {
		snprintf(t, sizeof t, "dev/%zu/temp", i);
		CU_ASSERT_EQUAL(put(r, t, ""), 0);
	}
	CU_ASSERT_EQUAL(gw_mem_used(), after_new);
	/* Teardown of a full trie (linear, not per-bucket rescans). */
	for (i = 0; i < 10 * NDEV; i++) {
		snprintf(t, sizeof t, "dev/%zu%s", i, i % 2 ? "/a" : "");
		CU_ASSERT_EQUAL(put(r, t, "x"), 0);
	}
	CU_ASSERT_EQUAL(retain_count(r), 10 * NDEV);
	retain_free(r);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* Topics and filters of 30,001 levels: no recursion anywhere. */
static void
test_deep(void)
{
	static char topic[30001], plus[60002];
	struct retain *r;
	struct seen s;
	size_t i, base = gw_mem_used();

	memset(topic, '/', 30000);
	for (i = 0; i < 30001; i++) {
		plus[2 * i] = '+';
		plus[2 * i + 1] = '/';
	}
	plus[60001] = '\0';
	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(put(r, topic, "deep"), 0);
	topic[15000] = '\0';
	CU_ASSERT_EQUAL(put(r, topic, "half"), 0);
	topic[15000] = '/';
	CU_ASSERT_EQUAL(look(r, "#", &s), 2);
	CU_ASSERT_EQUAL(look(r, "+/#", &s), 2);
	CU_ASSERT_EQUAL(look(r, plus, &s), 1);
	CU_ASSERT_EQUAL(look(r, topic, &s), 1);
	plus[30001] = '\0';	/* 15,001 levels */
	CU_ASSERT_EQUAL(look(r, plus, &s), 1);
	plus[30000] = '#';	/* "+/" x 15,000 then "#" */
	CU_ASSERT_EQUAL(look(r, plus, &s), 2);
	retain_free(r);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* Each allocation of retain_set failing in turn leaves the trie as is. */
static void
test_oom(void)
{
	static const char *t[] = { "a/b/c/d", "a/x", "z", "a/x/y/z" };
	struct retain *r;
	struct msg *m;
	struct seen s;
	size_t i, used, nfail = 0;
	long k;
	int rc = -1;

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(put(r, "a/x/y", "1"), 0);
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		m = mk(t[i], "v");
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		for (k = 0; k < 32; k++) {
			used = gw_mem_used();
			gw_mem_fail_after(k);
			rc = retain_set(r, m);
			gw_mem_fail_after(-1);
			if (rc == 0)
				break;
			nfail++;
			CU_ASSERT_EQUAL(rc, GW_ENOMEM);
			CU_ASSERT_EQUAL(gw_mem_used(), used);
			CU_ASSERT_EQUAL(refs(m), 1);
			CU_ASSERT_EQUAL(retain_count(r), i + 1);
		}
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_EQUAL(refs(m), 2);
		msg_unref(&m);
	}
#ifdef GW_FAULT_INJECTION
	CU_ASSERT_TRUE(nfail >= 6);
#endif
	CU_ASSERT_EQUAL(retain_count(r), 5);
	CU_ASSERT_EQUAL(look(r, "a/#", &s), 4);
	retain_free(r);
}

/* A 5.0 message on topic received at 0 with expiry seconds (0: none). */
static struct msg *
mkexp(const char *topic, uint32_t expiry)
{
	struct props p;

	memset(&p, 0, sizeof p);
	if (expiry != 0) {
		p.message_expiry = expiry;
		props_set(&p, PROPS_MESSAGE_EXPIRY);
	}
	return msg_new5(topic, strlen(topic), "cid", 3, NULL, 0, "v", 1, 1, 1,
	    0, expiry != 0 ? &p : NULL);
}

#define NEXP	300

/*
 * Checks the heap against the reference: want[i] is -1 (topic i absent),
 * 0 (no expiry) or its expiry in seconds.
 */
static void
check_heap(struct retain *r, const long *want)
{
	struct msg *m;
	size_t i, n = 0, held = 0;
	long min = -1;

	for (i = 0; i < NEXP; i++) {
		if (want[i] >= 0)
			held++;
		if (want[i] > 0) {
			n++;
			if (min < 0 || want[i] < min)
				min = want[i];
		}
	}
	CU_ASSERT_EQUAL(retain_count(r), held);
	CU_ASSERT_EQUAL(retain_expiring(r), n);
	m = retain_next_expiring(r);
	if (n == 0) {
		CU_ASSERT_PTR_NULL(m);
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->expire_ms, min * 1000);
}

/*
 * Random sets with and without an expiry, replacements, deletes by empty
 * payload and removals keep the heap in step with the trie; popping it
 * gives the expiring messages earliest first and leaves the others.
 */
static void
test_expiry_heap(void)
{
	static long want[NEXP];
	static struct msg *cur[NEXP];
	struct retain *r;
	struct msg *m;
	char t[32];
	size_t base = gw_mem_used(), i, step, left;
	long last = 0;
	uint32_t e;

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; i < NEXP; i++)
		want[i] = -1;
	check_heap(r, want);
	for (step = 0; step < 20000; step++) {
		i = rnd(NEXP);
		snprintf(t, sizeof t, "exp/%zu/x", i);
		switch (rnd(5)) {
		case 0:		/* delete by an empty payload */
			CU_ASSERT_EQUAL(put(r, t, ""), 0);
			want[i] = -1;
			msg_unref(&cur[i]);
			break;
		case 1:		/* removal of the message held (expiry) */
			if (cur[i] != NULL) {
				CU_ASSERT_TRUE(retain_remove(r, cur[i]));
				want[i] = -1;
				msg_unref(&cur[i]);
			}
			break;
		default:	/* set: no expiry one time in four */
			e = rnd(4) == 0 ? 0 : 1 + rnd(1000);
			m = mkexp(t, e);
			CU_ASSERT_PTR_NOT_NULL_FATAL(m);
			CU_ASSERT_EQUAL(retain_set(r, m), 0);
			msg_unref(&cur[i]);
			cur[i] = m;
			want[i] = e;
			break;
		}
		if (step % 97 == 0)
			check_heap(r, want);
	}
	check_heap(r, want);
	/* Popping: earliest first; what has no expiry stays. */
	while ((m = retain_next_expiring(r)) != NULL) {
		CU_ASSERT_TRUE(m->expire_ms >= last);
		last = m->expire_ms;
		i = (size_t)strtoul(m->topic + 4, NULL, 10);
		CU_ASSERT_PTR_EQUAL(m, cur[i]);
		CU_ASSERT_TRUE_FATAL(retain_remove(r, m));
		want[i] = -1;
		msg_unref(&cur[i]);
	}
	check_heap(r, want);
	left = 0;
	for (i = 0; i < NEXP; i++)
		left += want[i] == 0;
	CU_ASSERT_TRUE(left > 0);
	CU_ASSERT_EQUAL(retain_count(r), left);
	/* Freed with expiring messages still in the heap. */
	CU_ASSERT_EQUAL(put(r, "exp/late", ""), 0);
	m = mkexp("exp/late", 5);
	CU_ASSERT_EQUAL(retain_set(r, m), 0);
	msg_unref(&m);
	CU_ASSERT_EQUAL(retain_expiring(r), 1);
	retain_free(r);
	for (i = 0; i < NEXP; i++)
		msg_unref(&cur[i]);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* A failed heap growth leaves the trie and the heap as they were. */
static void
test_expiry_oom(void)
{
	struct retain *r;
	struct msg *m;
	char t[32];
	size_t i;
	int rc;

	r = retain_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; i < 16; i++) {
		snprintf(t, sizeof t, "o/%zu", i);
		m = mkexp(t, 10 + (uint32_t)i);
		CU_ASSERT_EQUAL(retain_set(r, m), 0);
		msg_unref(&m);
	}
	m = mkexp("o/new", 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	gw_mem_fail_after(0);
	rc = retain_set(r, m);
	gw_mem_fail_after(-1);
#ifdef GW_FAULT_INJECTION
	CU_ASSERT_EQUAL(rc, GW_ENOMEM);
	CU_ASSERT_EQUAL(retain_count(r), 16);
	CU_ASSERT_EQUAL(retain_expiring(r), 16);
	CU_ASSERT_EQUAL(retain_next_expiring(r)->expire_ms, 10000);
	CU_ASSERT_PTR_NULL(retain_get(r, "o/new", 5));
	CU_ASSERT_EQUAL(refs(m), 1);
	rc = retain_set(r, m);
#endif
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(retain_expiring(r), 17);
	CU_ASSERT_PTR_EQUAL(retain_next_expiring(r), m);
	msg_unref(&m);
	retain_free(r);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("retain", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "set, replace, delete",
	    test_set_replace_delete) == NULL ||
	    CU_add_test(s, "invalid input", test_invalid) == NULL ||
	    CU_add_test(s, "wildcards", test_wildcards) == NULL ||
	    CU_add_test(s, "random vs reference",
	    test_random_vs_reference) == NULL ||
	    CU_add_test(s, "10k siblings", test_wide) == NULL ||
	    CU_add_test(s, "30k levels", test_deep) == NULL ||
	    CU_add_test(s, "allocation failures", test_oom) == NULL ||
	    CU_add_test(s, "expiry heap", test_expiry_heap) == NULL ||
	    CU_add_test(s, "expiry heap allocation failure",
	    test_expiry_oom) == NULL) {
		return cutest_setup_failed();
	}
	return cutest_run();
}
