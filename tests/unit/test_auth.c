/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of password files: lines written by mosquitto_passwd ($7$
 * PBKDF2-SHA512 and $6$ SHA-512, fixed here as mosquitto 2.0 wrote them)
 * verify with the right password only; lines we write verify and have the
 * promised shape; bad files are refused naming the line; unknown users
 * are checked against a dummy that nothing matches and that costs what
 * the most expensive line costs; cheaper lines are padded to that cost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "broker/auth.h"
#include "broker/passwd.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"

/* mosquitto_passwd -b: alice/secret (sha512-pbkdf2), bob/pw6 (-H sha512). */
static const char mosq_file[] =
    "alice:$7$101$PHKJuxpQTYgwj6g5$nMUdT/tfWr31Xgy9JfcnJUiyz9KyP1JgY7Llsx"
    "\n";
static const char alice7[] = "$7$101$PHKJuxpQTYgwj6g5$nMUdT/tfWr31Xgy9Jfcn"
    "JUiyz9KyP1JgY7LlsBf+r/wQQ4+53mooNmubT80AL5bOWEvDQbelxj/XfZgB8ezdBg==";
static const char bob6[] = "$6$kfcQFFRZIILi0Cwh$02ZtFy7JMQb6jRNL0pR3qWyHiWHn"
    "2zwb21sSSLTwe9bFbXdVtnLfTHBTdFjNpZ2980v0RLi7POqstbbpWLn99Q==";

static char tmpdir[] = "/tmp/mqlite-test-auth-XXXXXX";

static char *
write_tmp(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_mosquitto_lines(void)
{
	struct passwd_entry e;
	const char *why = NULL;

	CU_ASSERT_EQUAL_FATAL(passwd_parse_hash(alice7, strlen(alice7), &e,
	    &why), 0);
	CU_ASSERT_EQUAL(e.kind, 7);
	CU_ASSERT_EQUAL(e.iterations, 101);
	CU_ASSERT_EQUAL(e.salt_len, 12);
	CU_ASSERT_TRUE(passwd_verify(&e, "secret", 6));
	CU_ASSERT_FALSE(passwd_verify(&e, "secreT", 6));
	CU_ASSERT_FALSE(passwd_verify(&e, "secret", 5));
	CU_ASSERT_FALSE(passwd_verify(&e, "", 0));

	CU_ASSERT_EQUAL_FATAL(passwd_parse_hash(bob6, strlen(bob6), &e, &why),
	    0);
	CU_ASSERT_EQUAL(e.kind, 6);
	CU_ASSERT_TRUE(passwd_verify(&e, "pw6", 3));
	CU_ASSERT_FALSE(passwd_verify(&e, "pw7", 3));
}

static void
test_file_and_lookup(void)
{
	struct gw_error err;
	struct passwd_db *db;
	const struct passwd_entry *e;
	char text[1024];
	long base = (long)gw_mem_used();

	snprintf(text, sizeof text, "# users\n\nalice:%s\r\nbob:%s\n", alice7,
	    bob6);
	memset(&err, 0, sizeof err);
	db = passwd_load(write_tmp("ok", text), &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(passwd_count(db), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e = passwd_find(db, "bob", 3));
	CU_ASSERT_TRUE(passwd_verify(e, "pw6", 3));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e = passwd_find(db, "alice", 5));
	CU_ASSERT_TRUE(passwd_verify(e, "secret", 6));
	CU_ASSERT_PTR_NULL(passwd_find(db, "alic", 4));
	CU_ASSERT_PTR_NULL(passwd_find(db, "alicee", 6));
	CU_ASSERT_PTR_NULL(passwd_find(db, "carol", 5));
	/* The dummy costs what a real entry costs and matches nothing. */
	e = passwd_dummy(db);
	CU_ASSERT_EQUAL(e->kind, 7);
	CU_ASSERT_EQUAL(e->iterations, 101);
	CU_ASSERT_FALSE(passwd_verify(e, "secret", 6));
	CU_ASSERT_FALSE(passwd_verify(e, "", 0));
	passwd_free(db);
	CU_ASSERT_EQUAL((long)gw_mem_used(), base);
}

struct bad {
	const char	*text;
	const char	*where;		/* suffix of err.path */
	const char	*msg;
};

static void
test_bad_files(void)
{
	char l3[512], dup[1024];
	const struct bad cases[] = {
		{ "alice:secret\n", ":1", "unsupported password hash" },
		{ l3, ":3", "iterations" },
		{ "nocolon\n", ":1", "expected USER:HASH" },
		{ ":$6$a$b\n", ":1", "expected USER:HASH" },
		{ "x:$6$!!!!$AAAA\n", ":1", "bad salt" },
		{ "x:$6$AAAA$AAAA\n", ":1", "bad hash" },
		{ "x:$7$abc$AAAA$AAAA\n", ":1", "iterations" },
		{ "x:$7$99999999999$AAAA$AAAA\n", ":1", "iterations" },
		{ dup, "", "appears twice" },
	};
	struct gw_error err;
	struct passwd_db *db;
	size_t i, n;

	snprintf(l3, sizeof l3, "bob:%s\n# c\nalice:$7$0$%s\n", bob6,
	    alice7 + 7);
	snprintf(dup, sizeof dup, "bob:%s\nbob:%s\n", bob6, bob6);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(&err, 0, sizeof err);
		db = passwd_load(write_tmp("bad", cases[i].text), &err);
		CU_ASSERT_PTR_NULL(db);
		passwd_free(db);
		n = strlen(err.path);
		if (n < strlen(cases[i].where) || strcmp(err.path + n -
		    strlen(cases[i].where), cases[i].where) != 0 ||
		    strstr(err.msg, cases[i].msg) == NULL)
			printf("\n  case %zu: %s: %s\n", i, err.path, err.msg);
		CU_ASSERT_TRUE(n >= strlen(cases[i].where) &&
		    strcmp(err.path + n - strlen(cases[i].where),
		    cases[i].where) == 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].msg));
	}
	memset(&err, 0, sizeof err);
	CU_ASSERT_PTR_NULL(passwd_load("/nonexistent/mqlite/pw", &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot open"));
	(void)mosq_file;
}

static void
test_make_line(void)
{
	struct passwd_entry e, e2;
	const char *why = NULL, *h;
	char line[PASSWD_LINE_MAX], line2[PASSWD_LINE_MAX];

	CU_ASSERT_EQUAL_FATAL(passwd_make_line("dev1", "s3cr:t", 6, 1000,
	    line, sizeof line), 0);
	CU_ASSERT_EQUAL(strncmp(line, "dev1:$7$1000$", 13), 0);
	h = strchr(line, ':') + 1;
	CU_ASSERT_EQUAL_FATAL(passwd_parse_hash(h, strlen(h), &e, &why), 0);
	CU_ASSERT_EQUAL(e.iterations, 1000);
	CU_ASSERT_EQUAL(e.salt_len, PASSWD_SALT_LEN);
	CU_ASSERT_TRUE(passwd_verify(&e, "s3cr:t", 6));
	CU_ASSERT_FALSE(passwd_verify(&e, "s3cr:T", 6));
	/* A random salt: the same password hashes differently. */
	CU_ASSERT_EQUAL_FATAL(passwd_make_line("dev1", "s3cr:t", 6, 1000,
	    line2, sizeof line2), 0);
	CU_ASSERT_NOT_EQUAL(strcmp(line, line2), 0);
	h = strchr(line2, ':') + 1;
	CU_ASSERT_EQUAL_FATAL(passwd_parse_hash(h, strlen(h), &e2, &why), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(e.salt, e2.salt, e.salt_len), 0);
	CU_ASSERT_EQUAL(passwd_make_line("dev1", "x", 1, 10, line, 20),
	    GW_ETOOBIG);
}

static void
test_failure_delays(void)
{
	const unsigned want[] = { 0, 0, 0, 0, 0, 250, 500, 1000, 2000, 4000,
	    5000, 5000 };
	struct auth *a;
	char peer[64];
	long long now = 1000000;
	long used;
	size_t i;

	a = auth_new(NULL, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (i = 0; i < sizeof want / sizeof want[0]; i++)
		CU_ASSERT_EQUAL(auth_failed(a, "10.0.0.1:4000", "u", now + 10 *
		    (long long)i), want[i]);
	/* Per address: another one starts free. */
	CU_ASSERT_EQUAL(auth_failed(a, "10.0.0.2:4000", NULL, now), 0);
	/* A success clears the count (whatever the port). */
	auth_succeeded(a, "10.0.0.1:5999");
	for (i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(auth_failed(a, "10.0.0.1:4001", "u", now + 200),
		    0);
	CU_ASSERT_EQUAL(auth_failed(a, "10.0.0.1:4001", "u", now + 300), 250);
	/* A new minute starts free again. */
	CU_ASSERT_EQUAL(auth_failed(a, "10.0.0.1:4001", "u", now + 61000), 0);
	/* IPv6 peers are keyed by address too. */
	for (i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(auth_failed(a, "::1:1", NULL, now), 0);
	CU_ASSERT_EQUAL(auth_failed(a, "::1:2", NULL, now), 250);
	/* Many addresses: the table stays bounded (no allocation). */
	used = (long)gw_mem_used();
	for (i = 0; i < 20000; i++) {
		snprintf(peer, sizeof peer, "10.%zu.%zu.%zu:1", i >> 16,
		    (i >> 8) & 255, i & 255);
		(void)auth_failed(a, peer, "u", now + 1000);
	}
	CU_ASSERT_EQUAL((long)gw_mem_used(), used);
	auth_free(a);
}

/*
 * Mixed files: the dummy costs what the most expensive line costs wherever
 * that line is, and every cheaper line is padded up to that cost, so no
 * user (known of either kind, or unknown) can be told apart by timing.
 */
static void
test_mixed_costs(void)
{
	struct gw_error err;
	struct passwd_db *db;
	const struct passwd_entry *e, *d;
	struct passwd_entry pad;
	char text[2 * PASSWD_LINE_MAX], carol[PASSWD_LINE_MAX];

	CU_ASSERT_EQUAL_FATAL(passwd_make_line("carol", "c", 1, 40, carol,
	    sizeof carol), 0);
	/* The $6$ line first: the dummy must not copy the first line. */
	snprintf(text, sizeof text, "bob:%s\n%s\nalice:%s\n", bob6, carol,
	    alice7);
	memset(&err, 0, sizeof err);
	db = passwd_parse(text, strlen(text), "mixed", &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	d = passwd_dummy(db);
	CU_ASSERT_EQUAL(d->kind, 7);
	CU_ASSERT_EQUAL(d->iterations, 101);
	CU_ASSERT_FALSE(passwd_pad(db, d, &pad));
	/* The most expensive line is not padded. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(e = passwd_find(db, "alice", 5));
	CU_ASSERT_FALSE(passwd_pad(db, e, &pad));
	/* A $6$ line is padded with a whole dummy check. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(e = passwd_find(db, "bob", 3));
	CU_ASSERT_TRUE_FATAL(passwd_pad(db, e, &pad));
	CU_ASSERT_EQUAL(pad.kind, 7);
	CU_ASSERT_EQUAL(pad.iterations, 101);
	CU_ASSERT_FALSE(passwd_verify(&pad, "pw6", 3));
	CU_ASSERT_TRUE(passwd_cost(e) + passwd_cost(&pad) >= passwd_cost(d));
	/* A cheaper $7$ line is padded with the difference. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(e = passwd_find(db, "carol", 5));
	CU_ASSERT_TRUE_FATAL(passwd_pad(db, e, &pad));
	CU_ASSERT_EQUAL(pad.iterations, 61);
	CU_ASSERT_EQUAL(passwd_cost(e) + passwd_cost(&pad), passwd_cost(d));
	CU_ASSERT_FALSE(passwd_verify(&pad, "c", 1));
	passwd_free(db);

	/* Only $6$ lines: the dummy is a $6$ check, nothing is padded. */
	snprintf(text, sizeof text, "bob:%s\n", bob6);
	db = passwd_parse(text, strlen(text), "six", &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(passwd_dummy(db)->kind, 6);
	CU_ASSERT_FALSE(passwd_pad(db, passwd_find(db, "bob", 3), &pad));
	passwd_free(db);
}

int
main(void)
{
	CU_pSuite s;
	char cmd[300];
	int status;

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("auth", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "mosquitto lines", test_mosquitto_lines) == NULL ||
	    CU_add_test(s, "file and lookup", test_file_and_lookup) == NULL ||
	    CU_add_test(s, "bad files", test_bad_files) == NULL ||
	    CU_add_test(s, "make line", test_make_line) == NULL ||
	    CU_add_test(s, "mixed costs", test_mixed_costs) == NULL ||
	    CU_add_test(s, "failure delays", test_failure_delays) == NULL)
		return cutest_setup_failed();
	status = cutest_run();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		status = 1;
	return status;
}
