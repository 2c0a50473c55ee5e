/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the ACL: the pattern matcher (topics and filter
 * coverage), the JSON loader's errors with their key paths, and the
 * decisions: default deny, deny wins, users versus anonymous, %u / %c
 * substitution with values holding wildcards never matching.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "broker/acl.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"

struct ccase {
	const char	*p;
	const char	*s;
	int		 m;
};

static const struct ccase covers[] = {
	/* Topics: the MQTT matching rules. */
	{ "a/b", "a/b", 1 }, { "a/b", "a/c", 0 }, { "a/+", "a/b", 1 },
	{ "a/+", "a/b/c", 0 }, { "a/#", "a", 1 }, { "a/#", "a/b/c", 1 },
	{ "#", "a/b", 1 }, { "#", "$SYS/x", 0 }, { "+/x", "$SYS/x", 0 },
	{ "$SYS/#", "$SYS/x", 1 }, { "a//b", "a//b", 1 }, { "a/+", "a/", 1 },
	{ "+", "/", 0 }, { "a", "a/b", 0 }, { "a/b", "a", 0 },
	/* Filters: covered only when every match is a match of p. */
	{ "a/#", "a/#", 1 }, { "a/#", "a/+/c", 1 }, { "a/+", "a/+", 1 },
	{ "a/+", "a/#", 0 }, { "a/b", "a/+", 0 }, { "#", "#", 1 },
	{ "#", "+/+", 1 }, { "a/+/c", "a/+/c", 1 }, { "a/+/c", "a/b/#", 0 },
	{ "+", "#", 0 }, { "a/b/#", "a/#", 0 }, { "site/#", "site", 1 },
};

static void
test_covers(void)
{
	size_t i;
	bool m;

	for (i = 0; i < sizeof covers / sizeof covers[0]; i++) {
		m = acl_pattern_covers(covers[i].p, strlen(covers[i].p),
		    covers[i].s, strlen(covers[i].s));
		if (m != (bool)covers[i].m)
			printf("\n  covers(%s, %s) = %d\n", covers[i].p,
			    covers[i].s, m);
		CU_ASSERT_EQUAL(m, (bool)covers[i].m);
	}
}

static struct acl *
parse(const char *text, struct gw_error *err)
{
	memset(err, 0, sizeof *err);
	return acl_parse(text, strlen(text), "acl.json", err);
}

#define W(acl, u, c, t)	acl_check(acl, u, c, t, strlen(t), ACL_WRITE)
#define R(acl, u, c, t)	acl_check(acl, u, c, t, strlen(t), ACL_READ)
#define S(acl, u, c, f)	acl_check_subscribe(acl, u, c, f, strlen(f))

static const char example[] =
    "{\"users\": {\"alice\": ["
    "  {\"topic\": \"site/alice/#\", \"access\": \"readwrite\"},"
    "  {\"topic\": \"site/alice/secret/#\", \"access\": \"deny\"},"
    "  {\"topic\": \"feed/#\", \"access\": \"read\"}],"
    " \"bob\": [{\"topic\": \"feed/in\", \"access\": \"write\"}]},"
    " \"anonymous\": [{\"topic\": \"public/#\", \"access\": \"read\"}],"
    " \"patterns\": [{\"topic\": \"dev/%c/#\", \"access\": \"write\"},"
    "  {\"topic\": \"home/%u/#\", \"access\": \"readwrite\"}]}";

static void
test_decisions(void)
{
	struct gw_error err;
	struct acl *acl;
	long base = (long)gw_mem_used();

	acl = parse(example, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(acl);
	/* Users' own entries, default deny. */
	CU_ASSERT_TRUE(W(acl, "alice", "c1", "site/alice/t"));
	CU_ASSERT_TRUE(R(acl, "alice", "c1", "site/alice/t"));
	CU_ASSERT_FALSE(W(acl, "alice", "c1", "site/bob/t"));
	CU_ASSERT_FALSE(W(acl, "alice", "c1", "feed/x"));
	CU_ASSERT_TRUE(R(acl, "alice", "c1", "feed/x"));
	CU_ASSERT_FALSE(R(acl, "bob", "c2", "feed/in"));
	CU_ASSERT_TRUE(W(acl, "bob", "c2", "feed/in"));
	CU_ASSERT_FALSE(W(acl, "carol", "c3", "site/alice/t"));
	/* Deny wins over the allow that covers it. */
	CU_ASSERT_FALSE(W(acl, "alice", "c1", "site/alice/secret/k"));
	CU_ASSERT_FALSE(R(acl, "alice", "c1", "site/alice/secret"));
	/* Subscriptions: covered by a read entry, not covered by a deny. */
	CU_ASSERT_TRUE(S(acl, "alice", "c1", "site/alice/#"));
	CU_ASSERT_TRUE(S(acl, "alice", "c1", "site/alice/+/x"));
	CU_ASSERT_FALSE(S(acl, "alice", "c1", "site/#"));
	CU_ASSERT_FALSE(S(acl, "alice", "c1", "#"));
	CU_ASSERT_FALSE(S(acl, "alice", "c1", "site/alice/secret/#"));
	CU_ASSERT_FALSE(S(acl, "bob", "c2", "feed/in"));
	/* Anonymous entries apply only without a user name. */
	CU_ASSERT_TRUE(R(acl, NULL, "c4", "public/news"));
	CU_ASSERT_FALSE(R(acl, "alice", "c1", "public/news"));
	CU_ASSERT_FALSE(W(acl, NULL, "c4", "public/news"));
	/* Patterns for everyone; %c and %u substituted. */
	CU_ASSERT_TRUE(W(acl, NULL, "sensor7", "dev/sensor7/temp"));
	CU_ASSERT_FALSE(W(acl, NULL, "sensor7", "dev/sensor8/temp"));
	CU_ASSERT_TRUE(W(acl, "bob", "c2", "home/bob/light"));
	CU_ASSERT_TRUE(S(acl, "bob", "c2", "home/bob/#"));
	CU_ASSERT_FALSE(W(acl, NULL, "c2", "home//light"));
	/* A value with a wildcard never matches (no widening). */
	CU_ASSERT_FALSE(W(acl, NULL, "#", "dev/x/temp"));
	CU_ASSERT_FALSE(W(acl, NULL, "+", "dev/x/temp"));
	CU_ASSERT_FALSE(W(acl, NULL, "a+b", "dev/a+b/t"));
	CU_ASSERT_FALSE(S(acl, "#", "c", "home/x/y"));
	CU_ASSERT_FALSE(W(acl, "+", "c", "home/x/y"));
	/* No ACL: everything allowed. */
	CU_ASSERT_TRUE(W(NULL, NULL, "c", "anything"));
	acl_free(acl);
	CU_ASSERT_EQUAL((long)gw_mem_used(), base);
}

static void
test_long_substitution(void)
{
	struct gw_error err;
	struct acl *acl;
	char cid[2000], topic[4100];

	acl = parse("{\"patterns\": [{\"topic\": \"d/%c/%c\", \"access\": "
	    "\"write\"}]}", &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(acl);
	memset(cid, 'x', sizeof cid - 1);
	cid[sizeof cid - 1] = '\0';
	snprintf(topic, sizeof topic, "d/%s/%s", cid, cid);
	/* Substituted into a heap buffer. */
	CU_ASSERT_TRUE(W(acl, NULL, cid, topic));
	snprintf(topic, sizeof topic, "d/%s/y", cid);
	CU_ASSERT_FALSE(W(acl, NULL, cid, topic));
	cid[900] = '\0';
	snprintf(topic, sizeof topic, "d/%s/%s", cid, cid);
	CU_ASSERT_TRUE(W(acl, NULL, cid, topic));
	acl_free(acl);
}

struct ecase {
	const char	*text;
	const char	*path;	/* expected in err.path */
	const char	*msg;	/* expected in err.msg */
};

static const struct ecase errors[] = {
	{ "[]", "acl.json", "expected an object" },
	{ "{\"user\": {}}", "acl.json", "user: unknown key" },
	{ "{\"users\": []}", "acl.json", "users: expected an object" },
	{ "{\"users\": {\"a\": {}}}", "acl.json",
	    "users.a: expected an array" },
	{ "{\"anonymous\": [{\"topic\": \"a/#/b\", \"access\": \"read\"}]}",
	    "acl.json", "anonymous[0].topic: expected a topic filter" },
	{ "{\"patterns\": [{\"topic\": \"a\", \"access\": \"all\"}]}",
	    "acl.json", "patterns[0].access: expected" },
	{ "{\"patterns\": [{\"topic\": \"a\", \"access\": \"read\", "
	    "\"qos\": 1}]}", "acl.json", "patterns[0].qos: unknown key" },
	{ "{\"users\": {\"a\": [{\"topic\": \"x\", \"access\": \"read\"},"
	    " 3]}}", "acl.json", "users.a[1]: expected an object" },
	{ "{\n\"users\": {,}}", "acl.json:2:", "JSON syntax error" },
	{ "{\"users\": {\"a\": [], \"a\": []}}", "acl.json",
	    "users.a: appears twice" },
};

static void
test_errors(void)
{
	struct gw_error err;
	struct acl *acl;
	size_t i;

	for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
		acl = parse(errors[i].text, &err);
		CU_ASSERT_PTR_NULL(acl);
		acl_free(acl);
		if (strstr(err.path, errors[i].path) == NULL ||
		    strstr(err.msg, errors[i].msg) == NULL)
			printf("\n  %s -> %s: %s\n", errors[i].text, err.path,
			    err.msg);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.path, errors[i].path));
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, errors[i].msg));
	}
}

static void
test_oom(void)
{
	struct gw_error err;
	struct acl *acl;
	long n;

	/* Every allocation failure is a clean error, never a crash or leak. */
	for (n = 0; n < 200; n++) {
		gw_mem_fail_after(n);
		acl = parse(example, &err);
		gw_mem_fail_after(-1);
		if (acl != NULL) {
			acl_free(acl);
			break;
		}
	}
	CU_ASSERT_TRUE(n < 200);
	CU_ASSERT_EQUAL(gw_mem_used(), 0);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("acl", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "pattern covers", test_covers) == NULL ||
	    CU_add_test(s, "decisions", test_decisions) == NULL ||
	    CU_add_test(s, "long substitution", test_long_substitution) ==
	    NULL ||
	    CU_add_test(s, "load errors", test_errors) == NULL ||
	    CU_add_test(s, "allocation failures", test_oom) == NULL)
		return cutest_setup_failed();
	return cutest_run();
}
