/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the share table (share.h): share-name parsing, well-formed
 * and malformed; the ACL filter of a share name; groups keyed by GROUP and
 * FILTER (two groups on one filter each get a copy, a normal filter is no
 * group); the member choice: each message to exactly one member, round
 * robin and balanced, an unavailable member passed over, all unavailable
 * still served in turn, a member that must not have it never chosen;
 * removal keeping the turn; picking another member
 * by group id; memory back to baseline and every allocation failure of
 * share_tab_add leaving the table as it was.
 */
#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "build_config.h"
#include "broker/share.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "oomtest.h"

#define OWNER(i)	((void *)(uintptr_t)(i))
#define NOWN		16

struct got {
	int		 n[NOWN];	/* deliveries per owner */
	uint8_t		 qos[NOWN];	/* last QoS per owner */
	uint32_t	 id[NOWN];	/* last group id per owner */
	uintptr_t	 last;		/* last owner */
	bool		 down[NOWN];	/* owners reported SHARE_LATER */
	bool		 never[NOWN];	/* owners reported SHARE_NEVER */
};

static int
avail(void *owner, void *ctx)
{
	struct got *g = ctx;

	if (g->never[(uintptr_t)owner])
		return SHARE_NEVER;
	return g->down[(uintptr_t)owner] ? SHARE_LATER : SHARE_NOW;
}

static void
deliver(void *owner, uint8_t qos, uint32_t id, void *ctx)
{
	struct got *g = ctx;
	uintptr_t i = (uintptr_t)owner;

	CU_ASSERT_FATAL(i < NOWN);
	g->n[i]++;
	g->qos[i] = qos;
	g->id[i] = id;
	g->last = i;
}

static size_t
match(struct share_tab *t, const char *topic, struct got *g)
{
	return share_tab_match(t, topic, strlen(topic), avail, deliver, g);
}

static int
add(struct share_tab *t, const char *f, uintptr_t owner, uint8_t qos)
{
	return share_tab_add(t, f, strlen(f), OWNER(owner), qos, NULL);
}

static int
del(struct share_tab *t, const char *f, uintptr_t owner)
{
	return share_tab_remove(t, f, strlen(f), OWNER(owner));
}

static int
parse(const char *f, struct share_name *sn, const char **why)
{
	return share_parse(f, strlen(f), sn, why);
}

static void
test_parse(void)
{
	static const char *bad[] = {
		"$share/", "$share/g", "$share//a", "$share/g/",
		"$share/g+/a", "$share/+/a", "$share/#/a", "$share/a#b/x",
		"$share/g/a/#/b", "$share/g/a+", "$share/g/#x",
	};
	static const char *normal[] = {
		"$share", "$sharex/g/a", "$SHARE/g/a", "share/g/a", "a/b",
		"#", "$SYS/#",
	};
	struct share_name sn;
	const char *why, *f;
	size_t i, flen;

	CU_ASSERT_EQUAL(parse("$share/g/a/b", &sn, NULL), 1);
	CU_ASSERT_EQUAL(sn.group_len, 1);
	CU_ASSERT_EQUAL(memcmp(sn.group, "g", 1), 0);
	CU_ASSERT_EQUAL(sn.filter_len, 3);
	CU_ASSERT_EQUAL(memcmp(sn.filter, "a/b", 3), 0);
	CU_ASSERT_EQUAL(parse("$share/workers/#", &sn, NULL), 1);
	CU_ASSERT_EQUAL(sn.group_len, 7);
	CU_ASSERT_EQUAL(sn.filter_len, 1);
	CU_ASSERT_EQUAL(parse("$share/g/+/x//", &sn, NULL), 1);
	CU_ASSERT_EQUAL(sn.filter_len, 5);
	CU_ASSERT_EQUAL(parse("$share/g//", &sn, NULL), 1);
	CU_ASSERT_EQUAL(sn.filter_len, 1);
	CU_ASSERT_EQUAL(parse("$share/g/$SYS/#", NULL, NULL), 1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		CU_ASSERT_EQUAL(parse(bad[i], &sn, &why), GW_EMALFORMED);
		CU_ASSERT_PTR_NOT_NULL(why);
		CU_ASSERT_TRUE(share_is(bad[i], strlen(bad[i])));
	}
	why = NULL;
	CU_ASSERT_EQUAL(parse("$share/g", NULL, &why), GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "without a topic filter"));
	CU_ASSERT_EQUAL(parse("$share//a", NULL, &why), GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "empty group"));
	CU_ASSERT_EQUAL(parse("$share/g+/a", NULL, &why), GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "wildcard"));
	CU_ASSERT_EQUAL(parse("$share/g/a#", NULL, &why), GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "invalid topic filter"));
	for (i = 0; i < sizeof normal / sizeof normal[0]; i++) {
		CU_ASSERT_EQUAL(parse(normal[i], &sn, NULL), 0);
		CU_ASSERT_FALSE(share_is(normal[i], strlen(normal[i])));
	}

	/* The ACL sees FILTER of a share name, the rest unchanged. */
	f = share_acl_filter("$share/g/site/#", 15, &flen);
	CU_ASSERT_EQUAL(flen, 6);
	CU_ASSERT_EQUAL(memcmp(f, "site/#", 6), 0);
	f = share_acl_filter("$share//site/#", 14, &flen);
	CU_ASSERT_EQUAL(flen, 14);
	f = share_acl_filter("a/b", 3, &flen);
	CU_ASSERT_EQUAL(flen, 3);
	CU_ASSERT_EQUAL(memcmp(f, "a/b", 3), 0);
}

/* Groups: keyed by GROUP and FILTER; QoS per member; ids. */
static void
test_groups(void)
{
	struct share_tab *t;
	struct got g;
	size_t base = gw_mem_used();
	int replaced;

	t = share_tab_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	memset(&g, 0, sizeof g);
	CU_ASSERT_EQUAL(match(t, "a/b", &g), 0);
	CU_ASSERT_EQUAL(add(t, "a/b", 1, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(add(t, "$share//a", 1, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(share_tab_count(t), 0);

	CU_ASSERT_EQUAL(share_tab_add(t, "$share/g1/a/+", 13, OWNER(1), 1,
	    &replaced), 0);
	CU_ASSERT_EQUAL(replaced, 0);
	CU_ASSERT_EQUAL(share_tab_add(t, "$share/g1/a/+", 13, OWNER(1), 2,
	    &replaced), 0);
	CU_ASSERT_EQUAL(replaced, 1);
	CU_ASSERT_EQUAL(add(t, "$share/g2/a/+", 2, 0), 0);
	CU_ASSERT_EQUAL(add(t, "$share/g3/#", 3, 1), 0);
	CU_ASSERT_EQUAL(share_tab_count(t), 3);

	/* Three groups match: one copy each, at the member's QoS. */
	CU_ASSERT_EQUAL(match(t, "a/b", &g), 3);
	CU_ASSERT_EQUAL(g.n[1], 1);
	CU_ASSERT_EQUAL(g.qos[1], 2);
	CU_ASSERT_EQUAL(g.n[2], 1);
	CU_ASSERT_EQUAL(g.qos[2], 0);
	CU_ASSERT_EQUAL(g.n[3], 1);
	CU_ASSERT_NOT_EQUAL(g.id[1], 0);
	CU_ASSERT_NOT_EQUAL(g.id[1], g.id[2]);
	CU_ASSERT_NOT_EQUAL(g.id[2], g.id[3]);
	CU_ASSERT_EQUAL(match(t, "a", &g), 1);		/* "#" only */
	CU_ASSERT_EQUAL(match(t, "$SYS/x", &g), 0);	/* '$' rule */
	CU_ASSERT_EQUAL(match(t, "b/c/d", &g), 1);

	CU_ASSERT_EQUAL(del(t, "$share/g1/a/+", 2), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(del(t, "$share/gx/a/+", 1), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(del(t, "$share/g1/a/+", 1), 0);
	CU_ASSERT_EQUAL(del(t, "$share/g1/a/+", 1), GW_ENOTFOUND);
	memset(&g, 0, sizeof g);
	CU_ASSERT_EQUAL(match(t, "a/b", &g), 2);
	CU_ASSERT_EQUAL(g.n[1], 0);
	CU_ASSERT_EQUAL(del(t, "$share/g2/a/+", 2), 0);
	CU_ASSERT_EQUAL(del(t, "$share/g3/#", 3), 0);
	CU_ASSERT_EQUAL(share_tab_count(t), 0);
	CU_ASSERT_EQUAL(match(t, "a/b", &g), 0);

	/* A group re-created gets a new id. */
	CU_ASSERT_EQUAL(add(t, "$share/g1/a/+", 1, 1), 0);
	memset(&g, 0, sizeof g);
	CU_ASSERT_EQUAL(match(t, "a/b", &g), 1);
	CU_ASSERT_TRUE(g.id[1] > 3);
	share_tab_free(t);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
	share_tab_free(NULL);
}

/*
 * Round robin: 3 members and 300 messages give each member 100, in
 * turn; a member reported unavailable is passed over while another is
 * available; with none available the turn still goes round.
 */
static void
test_choice(void)
{
	struct share_tab *t;
	struct got g;
	uintptr_t prev = 0;
	int i;

	t = share_tab_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 1; i <= 3; i++)
		CU_ASSERT_EQUAL(add(t, "$share/w/job/#", (uintptr_t)i, 1), 0);
	memset(&g, 0, sizeof g);
	for (i = 0; i < 300; i++) {
		CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
		CU_ASSERT_EQUAL(g.last, (uintptr_t)(i % 3) + 1);
	}
	CU_ASSERT_EQUAL(g.n[1], 100);
	CU_ASSERT_EQUAL(g.n[2], 100);
	CU_ASSERT_EQUAL(g.n[3], 100);

	/* 2 unavailable: 1 and 3 alternate. */
	memset(&g, 0, sizeof g);
	g.down[2] = true;
	for (i = 0; i < 100; i++) {
		CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
		CU_ASSERT_NOT_EQUAL(g.last, prev);
		prev = g.last;
	}
	CU_ASSERT_EQUAL(g.n[2], 0);
	CU_ASSERT_EQUAL(g.n[1], 50);
	CU_ASSERT_EQUAL(g.n[3], 50);

	/* None available: still each message once, in turn. */
	memset(&g, 0, sizeof g);
	g.down[1] = g.down[2] = g.down[3] = true;
	for (i = 0; i < 30; i++)
		CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.n[1], 10);
	CU_ASSERT_EQUAL(g.n[2], 10);
	CU_ASSERT_EQUAL(g.n[3], 10);

	/* A member that must not get the message never does, even when
	 * the others cannot take it now; when none may, nobody gets it. */
	memset(&g, 0, sizeof g);
	g.never[1] = true;
	g.down[2] = g.down[3] = true;
	for (i = 0; i < 30; i++)
		CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.n[1], 0);
	CU_ASSERT_EQUAL(g.n[2], 15);
	CU_ASSERT_EQUAL(g.n[3], 15);
	g.never[2] = g.never[3] = true;
	CU_ASSERT_EQUAL(match(t, "job/1", &g), 0);
	CU_ASSERT_EQUAL(g.n[1] + g.n[2] + g.n[3], 30);

	/* Removing a member keeps the others' turn: after 1 got a
	 * message, removing 1 leaves 2 next. */
	memset(&g, 0, sizeof g);
	CU_ASSERT_EQUAL(add(t, "$share/w/job/#", 4, 1), 0);
	do
		match(t, "job/1", &g);
	while (g.last != 1);
	CU_ASSERT_EQUAL(del(t, "$share/w/job/#", 1), 0);
	CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.last, 2);
	CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.last, 3);
	CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.last, 4);
	/* Removing the last member while its turn is next wraps. */
	CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.last, 2);
	CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.last, 3);
	CU_ASSERT_EQUAL(del(t, "$share/w/job/#", 4), 0);
	CU_ASSERT_EQUAL(match(t, "job/1", &g), 1);
	CU_ASSERT_EQUAL(g.last, 2);
	share_tab_free(t);
}

/* share_tab_pick: another member of a group, by id. */
static void
test_pick(void)
{
	struct share_tab *t;
	struct got g;
	void *owner;
	uint8_t qos;
	uint32_t id;

	t = share_tab_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(add(t, "$share/w/q", 1, 2), 0);
	memset(&g, 0, sizeof g);
	CU_ASSERT_EQUAL(match(t, "q", &g), 1);
	id = g.id[1];
	/* The only member is the one excepted. */
	CU_ASSERT_EQUAL(share_tab_pick(t, id, OWNER(1), avail, &g, true,
	    &owner, &qos), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(share_tab_pick(t, id + 100, NULL, avail, &g, true,
	    &owner, &qos), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(add(t, "$share/w/q", 2, 1), 0);
	CU_ASSERT_EQUAL(add(t, "$share/w/q", 3, 0), 0);
	g.down[2] = true;
	CU_ASSERT_EQUAL(share_tab_pick(t, id, OWNER(1), avail, &g, false,
	    &owner, &qos), 0);
	CU_ASSERT_PTR_EQUAL(owner, OWNER(3));
	CU_ASSERT_EQUAL(qos, 0);
	/* Only an unavailable one left: any decides. */
	g.down[3] = true;
	CU_ASSERT_EQUAL(share_tab_pick(t, id, OWNER(1), avail, &g, false,
	    &owner, &qos), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(share_tab_pick(t, id, OWNER(1), avail, &g, true,
	    &owner, &qos), 0);
	CU_ASSERT_TRUE(owner == OWNER(2) || owner == OWNER(3));
	CU_ASSERT_EQUAL(del(t, "$share/w/q", 1), 0);
	CU_ASSERT_EQUAL(del(t, "$share/w/q", 2), 0);
	CU_ASSERT_EQUAL(del(t, "$share/w/q", 3), 0);
	CU_ASSERT_EQUAL(share_tab_pick(t, id, NULL, avail, &g, true,
	    &owner, &qos), GW_ENOTFOUND);
	share_tab_free(t);
}

/*
 * Filter i of test_oom, added by owner i + 1: each a new member, so the
 * table holds i members before it.
 */
static const char *const oom_filter[] = { "$share/a/x/y", "$share/b/x/y",
    "$share/a/x/y", "$share/c/#", "$share/a/x/y" };

/* Adding oom_filter[i] to t under allocation failure. */
struct oom_add {
	struct share_tab	*t;
	size_t			 i;
};

static int
oom_add(void *ctx)
{
	struct oom_add *a = ctx;

	return add(a->t, oom_filter[a->i], a->i + 1, 1);
}

/* A failed add leaves the i members there were. */
static void
oom_add_check(void *ctx)
{
	struct oom_add *a = ctx;

	CU_ASSERT_EQUAL(share_tab_count(a->t), a->i);
}

/* Each allocation failure of share_tab_add: GW_ENOMEM, table unchanged. */
static void
test_oom(void)
{
	struct share_tab *t;
	struct oom_add a;
	struct got g;
	size_t i, base = gw_mem_used();
	long nfail = 0;

	t = share_tab_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < CUTEST_COUNT(oom_filter); i++) {
		a = (struct oom_add){ t, i };
		nfail += oomtest_run(oom_add, oom_add_check, &a, 0);
	}
#ifdef GW_FAULT_INJECTION
	CU_ASSERT_TRUE(nfail >= 4);
#endif
	(void)nfail;
	CU_ASSERT_EQUAL(share_tab_count(t), 5);
	memset(&g, 0, sizeof g);
	CU_ASSERT_EQUAL(match(t, "x/y", &g), 3);
	share_tab_free(t);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static const struct cutest_case tests[] = {
	{ "share names", test_parse },
	{ "groups", test_groups },
	{ "member choice", test_choice },
	{ "pick by id", test_pick },
	{ "allocation failures", test_oom },
};

int
main(void)
{
	return cutest_main("share", NULL, NULL, tests, CUTEST_COUNT(tests));
}
