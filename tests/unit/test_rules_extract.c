/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/rules/extract.c: typed values of placeholders, at the
 * level of what SQLite's typeof() will show: big integers exact, reals
 * round-trip, booleans 0/1, null and missing NULL, nested paths, quoted
 * keys, arrays, bare numbers, non-JSON payloads and invalid UTF-8 as BLOB.
 * Also: the payload is parsed once per publish, and memory returns to its
 * baseline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cutest.h"
#include "mem.h"
#include "rules/rules.h"

/* One rule whose columns are the placeholders under test. */
static const char rules_text[] =
    "[{\"name\": \"x\", \"topic\": \"site/{site}/dev/{device}/#\", "
    "\"sqlite\": {\"table\": \"t\", \"columns\": {"
    "\"c0\": \"{payload.n}\","			/* 0 */
    "\"c1\": \"{payload.a.b[1]}\","		/* 1 */
    "\"c2\": \"{payload[\\\"key.with.dots\\\"]}\","	/* 2 */
    "\"c3\": \"{payload}\","			/* 3 */
    "\"c4\": \"{payload_raw}\","		/* 4 */
    "\"c5\": \"{site}\","			/* 5 */
    "\"c6\": \"{device}\","			/* 6 */
    "\"c7\": \"{topic}\","			/* 7 */
    "\"c8\": \"{client_id}\","			/* 8 */
    "\"c9\": \"{username}\","			/* 9 */
    "\"c10\": \"{qos}\","			/* 10 */
    "\"c11\": \"{retain}\","			/* 11 */
    "\"c12\": \"{received_ms}\","		/* 12 */
    "\"c13\": \"{payload.obj}\","		/* 13 */
    "\"c14\": \"{payload.s}\","			/* 14 */
    "\"c15\": \"{payload.t}\","			/* 15 */
    "\"c16\": \"{payload.f}\","			/* 16 */
    "\"c17\": \"{payload.z}\","			/* 17 */
    "\"c18\": \"{payload.missing.deeper}\","	/* 18 */
    "\"c19\": \"{payload.arr}\","		/* 19 */
    "\"c20\": \"{payload.esc}\","		/* 20 */
    "\"c21\": \"{payload.r}\","			/* 21 */
    "\"c22\": \"{payload.big}\","		/* 22 */
    "\"c23\": \"{payload.neg}\","		/* 23 */
    "\"c24\": \"{payload.e}\","			/* 24 */
    "\"c25\": \"{payload.a-b}\","		/* 25 */
    "\"c26\": \"{payload.arr[5]}\","		/* 26 */
    "\"c27\": \"{source}\""			/* 27 */
    "}}}]";
#define NCOLS	28

static struct rule_set	*set;
static struct rule_value vals[NCOLS];

static struct msg *
mk(const char *topic, const void *payload, size_t plen, const char *user)
{
	return msg_new(topic, strlen(topic), "cid-1", 5, user,
	    user != NULL ? strlen(user) : 0, payload, plen, 1, 1,
	    1700000000123LL);
}

/* Evaluates all columns for (topic, payload). */
static void
eval(struct msg *m)
{
	struct rule_payload	pc;
	int			i;

	for (i = 0; i < NCOLS; i++)
		rule_value_clear(&vals[i]);
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_sqlite_values(rule_set_rule(set, 0), m, &pc,
	    vals), 0);
	rule_payload_clear(&pc);
}

static void
clear_all(void)
{
	int	i;

	for (i = 0; i < NCOLS; i++)
		rule_value_clear(&vals[i]);
}

static int
is_text(int i, const char *s)
{
	return vals[i].type == RULE_VTEXT && vals[i].u.s.len == strlen(s) &&
	    memcmp(vals[i].u.s.p, s, strlen(s)) == 0;
}

static int
is_int(int i, int64_t v)
{
	return vals[i].type == RULE_VINTEGER && vals[i].u.i == v;
}

static void
test_json_values(void)
{
	static const char p[] = "{ \"n\": 9007199254740993, "
	    "\"a\": {\"b\": [1, 21.123456789]}, \"key.with.dots\": \"kd\", "
	    "\"obj\": {\"x\" : [1, 2.50, {\"y\": \"a b\"}], \"w\":  null},"
	    "\"s\": \"str\", \"t\": true, \"f\": false, \"z\": null, "
	    "\"arr\": [ 1 , \"two\" ], \"esc\": "
	    "\"a\\\"b\\u00e9\\ud83d\\ude00\","
	    " \"r\": 1e2, \"big\": 123456789012345678901234567890, "
	    "\"neg\": -42, \"e\": -0.5E-3, \"a-b\": 7 }";
	struct msg	*m;
	size_t		 before = gw_mem_used();

	m = mk("site/s1/dev/d9/telemetry", p, strlen(p), "alice");
	eval(m);
	CU_ASSERT(is_int(0, 9007199254740993LL));
	CU_ASSERT_EQUAL(vals[1].type, RULE_VREAL);
	CU_ASSERT(vals[1].u.d == 21.123456789);
	CU_ASSERT(is_text(2, "kd"));
	CU_ASSERT_EQUAL(vals[3].type, RULE_VTEXT);	/* object: JSON */
	CU_ASSERT(vals[3].json);
	CU_ASSERT_EQUAL(vals[4].type, RULE_VTEXT);
	CU_ASSERT_EQUAL(vals[4].u.s.len, strlen(p));
	CU_ASSERT(is_text(5, "s1"));
	CU_ASSERT(is_text(6, "d9"));
	CU_ASSERT(is_text(7, "site/s1/dev/d9/telemetry"));
	CU_ASSERT(is_text(8, "cid-1"));
	CU_ASSERT(is_text(9, "alice"));
	CU_ASSERT(is_int(10, 1));
	CU_ASSERT(is_int(11, 1));
	CU_ASSERT(is_int(12, 1700000000123LL));
	CU_ASSERT(is_text(13, "{\"x\":[1,2.50,{\"y\":\"a b\"}],\"w\":null}"));
	CU_ASSERT(vals[13].json);
	CU_ASSERT(is_text(14, "str"));
	CU_ASSERT(is_int(15, 1));
	CU_ASSERT(is_int(16, 0));
	CU_ASSERT_EQUAL(vals[17].type, RULE_VNULL);
	CU_ASSERT_EQUAL(vals[18].type, RULE_VNULL);
	CU_ASSERT(is_text(19, "[1,\"two\"]"));
	CU_ASSERT(is_text(20, "a\"b\xc3\xa9\xf0\x9f\x98\x80"));
	CU_ASSERT_EQUAL(vals[21].type, RULE_VREAL);
	CU_ASSERT(vals[21].u.d == 100.0);
	CU_ASSERT_EQUAL(vals[22].type, RULE_VREAL);	/* past int64 */
	CU_ASSERT(vals[22].u.d == 123456789012345678901234567890.0);
	CU_ASSERT(is_int(23, -42));
	CU_ASSERT(vals[24].type == RULE_VREAL && vals[24].u.d == -0.5E-3);
	CU_ASSERT(is_int(25, 7));
	CU_ASSERT_EQUAL(vals[26].type, RULE_VNULL);	/* index too big */
	clear_all();
	msg_unref(&m);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_int64_edges(void)
{
	static const char p[] = "{\"n\": -9223372036854775808, "
	    "\"big\": 9223372036854775808, \"r\": -0}";
	struct msg	*m;

	m = mk("site/a/dev/b", p, strlen(p), NULL);
	eval(m);
	CU_ASSERT(is_int(0, INT64_MIN));
	CU_ASSERT_EQUAL(vals[22].type, RULE_VREAL);
	CU_ASSERT(vals[22].u.d == 9223372036854775808.0);
	CU_ASSERT(is_int(21, 0));
	CU_ASSERT_EQUAL(vals[9].type, RULE_VNULL);	/* no username */
	CU_ASSERT_EQUAL(vals[27].type, RULE_VNULL);	/* local publish */
	clear_all();
	msg_unref(&m);
}

/*
 * Numbers short enough for the parser's own conversion come out exactly as
 * strtoll/strtod give them: integers up to 18 digits (and the longer ones
 * that take the library path), and reals with up to 15 significant digits,
 * negative ones, leading zeros in the fraction, against 17-digit ones.
 */
static void
test_number_forms(void)
{
	static const char *nums[] = { "0", "-0", "7", "-7",
	    "123456789012345678",
	    "-999999999999999999", "1234567890123456789", "21.5", "-21.5",
	    "0.1", "0.30000000000000004", "0.001", "-0.0", "123456.789012345",
	    "99999999999999.9", "1.7976931348623157", "3.14159265358979",
	    "1e3", "2.5E-3", "-0.000000000000001", "100.0", "5e-324" };
	char p[128], num[48];
	struct msg *m;
	double d;
	size_t i;
	int j;

	for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		snprintf(p, sizeof p, "{\"n\": %s}", nums[i]);
		m = mk("site/a/dev/b", p, strlen(p), NULL);
		eval(m);
		if (strpbrk(nums[i], ".eE") == NULL &&
		    strlen(nums[i]) < 20) {
			CU_ASSERT(is_int(0, strtoll(nums[i], NULL, 10)));
		} else {
			d = strtod(nums[i], NULL);
			CU_ASSERT_EQUAL(vals[0].type, RULE_VREAL);
			CU_ASSERT(memcmp(&vals[0].u.d, &d, sizeof d) == 0);
		}
		clear_all();
		msg_unref(&m);
	}
	/* Many random short decimals: bit-exact with strtod. */
	srand(12);
	for (j = 0; j < 2000; j++) {
		snprintf(num, sizeof num, "%s%d.%0*d", j % 2 ? "-" : "",
		    rand() % 10000000, 1 + j % 8, rand() % 100000000);
		snprintf(p, sizeof p, "{\"n\": %s}", num);
		m = mk("site/a/dev/b", p, strlen(p), NULL);
		eval(m);
		d = strtod(num, NULL);
		CU_ASSERT_FATAL(vals[0].type == RULE_VREAL &&
		    memcmp(&vals[0].u.d, &d, sizeof d) == 0);
		clear_all();
		msg_unref(&m);
	}
}

/* {source}: the source's name for a message from an external broker. */
static void
test_source(void)
{
	struct msg	*m;

	m = msg_new_source("site/a/dev/b", 12, "gw", 2, "{}", 2, 1, 0, 5,
	    "plant-2", "10.0.0.1:1883");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	eval(m);
	CU_ASSERT(is_text(27, "plant-2"));
	CU_ASSERT(is_text(8, "gw"));
	CU_ASSERT_EQUAL(vals[9].type, RULE_VNULL);
	clear_all();
	msg_unref(&m);
}

static void
test_bare_payloads(void)
{
	struct msg	*m;

	m = mk("site/a/dev/b", "21.5", 4, NULL);
	eval(m);
	CU_ASSERT(vals[3].type == RULE_VREAL && vals[3].u.d == 21.5);
	CU_ASSERT(is_text(4, "21.5"));
	CU_ASSERT_EQUAL(vals[0].type, RULE_VNULL);
	clear_all();
	msg_unref(&m);

	m = mk("site/a/dev/b", " 42 ", 4, NULL);
	eval(m);
	CU_ASSERT(is_int(3, 42));
	clear_all();
	msg_unref(&m);

	m = mk("site/a/dev/b", "\"quoted\"", 8, NULL);
	eval(m);
	CU_ASSERT(is_text(3, "quoted"));
	clear_all();
	msg_unref(&m);

	/* true, null and arrays are not number/string/object: raw. */
	m = mk("site/a/dev/b", "true", 4, NULL);
	eval(m);
	CU_ASSERT(is_text(3, "true"));
	clear_all();
	msg_unref(&m);
	m = mk("site/a/dev/b", "[1, 2]", 6, NULL);
	eval(m);
	CU_ASSERT(is_text(3, "[1, 2]"));
	CU_ASSERT_FALSE(vals[3].json);
	clear_all();
	msg_unref(&m);
}

static void
test_not_json(void)
{
	static const char *const bad[] = { "hello", "{\"a\": 1", "{\"a\": 01}",
	    "{\"a\": 1,}", "[1 2]", "{\"a\": \"\x01\"}", "-", "1.", "1e",
	    "{\"a\": tru}", "{\"n\": 1} x", "", "\"\\x\"" };
	struct msg	*m;
	size_t		 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		m = mk("site/a/dev/b", bad[i], strlen(bad[i]), NULL);
		eval(m);
		CU_ASSERT_EQUAL(vals[0].type, RULE_VNULL);
		CU_ASSERT(is_text(3, bad[i]));	/* {payload} = raw */
		CU_ASSERT(is_text(4, bad[i]));
		clear_all();
		msg_unref(&m);
	}
}

static void
test_blob(void)
{
	static const char inv[] = "\xff\xfe{\"n\": 1}";
	static const char nul[] = "a\0b";
	struct msg	*m;

	m = mk("site/a/dev/b", inv, sizeof inv - 1, NULL);
	eval(m);
	CU_ASSERT_EQUAL(vals[4].type, RULE_VBLOB);
	CU_ASSERT_EQUAL(vals[4].u.s.len, sizeof inv - 1);
	CU_ASSERT_EQUAL(vals[3].type, RULE_VBLOB);
	CU_ASSERT_EQUAL(vals[0].type, RULE_VNULL);
	clear_all();
	msg_unref(&m);

	m = mk("site/a/dev/b", nul, 3, NULL);
	eval(m);
	CU_ASSERT_EQUAL(vals[4].type, RULE_VBLOB);
	clear_all();
	msg_unref(&m);

	m = mk("site/a/dev/b", "", 0, NULL);
	eval(m);
	CU_ASSERT(is_text(4, ""));
	CU_ASSERT(is_text(3, ""));
	clear_all();
	msg_unref(&m);
}

static void
test_deep_nesting(void)
{
	char		 p[4096];
	struct msg	*m;
	size_t		 i, n = 1000;

	for (i = 0; i < n; i++)
		p[i] = '[';
	for (i = 0; i < n; i++)
		p[n + i] = ']';
	m = mk("site/a/dev/b", p, 2 * n, NULL);
	eval(m);	/* too deep: not JSON, no crash */
	CU_ASSERT(is_text(3, "") == 0);
	CU_ASSERT_EQUAL(vals[3].type, RULE_VTEXT);
	clear_all();
	msg_unref(&m);
}

/* A payload is parsed once, then shared by every placeholder. */
static void
test_parse_once(void)
{
	static const char p[] = "{\"n\": 1}";
	struct rule_payload	 pc;
	struct msg		*m;
	void			*doc;

	m = mk("site/a/dev/b", p, strlen(p), NULL);
	rule_payload_init(&pc, m);
	CU_ASSERT_PTR_NULL(pc.doc);
	CU_ASSERT_EQUAL(rule_sqlite_values(rule_set_rule(set, 0), m, &pc,
	    vals), 0);
	doc = pc.doc;
	CU_ASSERT_PTR_NOT_NULL(doc);
	clear_all();
	CU_ASSERT_EQUAL(rule_sqlite_values(rule_set_rule(set, 0), m, &pc,
	    vals), 0);
	CU_ASSERT_PTR_EQUAL(pc.doc, doc);
	CU_ASSERT(is_int(0, 1));
	clear_all();
	rule_payload_clear(&pc);
	CU_ASSERT_PTR_NULL(pc.doc);
	msg_unref(&m);
}

static void
test_out_of_memory(void)
{
	static const char p[] = "{\"a\": {\"b\": [1, 2]}, \"esc\": \"\\n\", "
	    "\"obj\": {\"k\": 1}}";
	struct rule_payload	 pc;
	struct msg		*m;
	size_t			 before;
	long			 n;
	int			 rc;

	m = mk("site/a/dev/b", p, strlen(p), NULL);
	before = gw_mem_used();
	for (n = 0; n < 1000; n++) {
		rule_payload_init(&pc, m);
		gw_mem_fail_after(n);
		rc = rule_sqlite_values(rule_set_rule(set, 0), m, &pc, vals);
		gw_mem_fail_after(-1);
		clear_all();
		rule_payload_clear(&pc);
		CU_ASSERT_EQUAL_FATAL(gw_mem_used(), before);
		if (rc == 0)
			break;
		CU_ASSERT_EQUAL(rc, GW_ENOMEM);
	}
	CU_ASSERT(n > 0 && n < 1000);
	msg_unref(&m);
}

static int
setup(void)
{
	set = rules_load_json(rules_text, strlen(rules_text), "t", NULL, NULL,
	    NULL, NULL);
	return set == NULL;
}

static int
teardown(void)
{
	rule_set_unref(&set);
	return gw_mem_used() != 0;
}

static const struct cutest_case tests[] = {
	{ "JSON values", test_json_values },
	{ "int64 edges", test_int64_edges },
	{ "{source}", test_source },
	{ "bare payloads", test_bare_payloads },
	{ "not JSON", test_not_json },
	{ "BLOB", test_blob },
	{ "deep nesting", test_deep_nesting },
	{ "parse once", test_parse_once },
	{ "number forms", test_number_forms },
	{ "out of memory", test_out_of_memory },
};

int
main(void)
{
	return cutest_main("rules_extract", setup, teardown, tests,
	    CUTEST_COUNT(tests));
}
