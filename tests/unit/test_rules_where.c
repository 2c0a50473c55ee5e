/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/rules/where.c: every operator on numbers and text,
 * all/any/not nesting, missing values, counters, and the load errors of
 * malformed filters (with their JSON paths).
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cutest.h"
#include "mem.h"
#include "rules/rules.h"

/* Evaluates a where filter (JSON text) against payload p on topic t. */
static int
check(const char *where, const char *t, const char *p)
{
	char			 text[2048];
	struct rule_set		*set;
	struct rule_payload	 pc;
	struct msg		*m;
	int			 rc;

	snprintf(text, sizeof text, "[{\"name\": \"r\", \"topic\": "
	    "\"s/{site}/#\", \"where\": %s, \"sqlite\": {\"table\": \"t\", "
	    "\"columns\": {\"v\": \"{payload}\"}}}]", where);
	set = rules_load_json(text, strlen(text), "t", NULL, NULL, NULL, NULL);
	if (set == NULL) {
		fprintf(stderr, "\ndoes not load: %s\n", where);
		return -100;
	}
	m = msg_new(t, strlen(t), "c", 1, NULL, 0, p, strlen(p), 0, 0, 5);
	rule_payload_init(&pc, m);
	rc = rule_filter(rule_set_rule(set, 0), m, &pc);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
	return rc;
}

#define T(w, p)		CU_ASSERT_EQUAL(check(w, "s/a/x", p), 1)
#define F(w, p)		CU_ASSERT_EQUAL(check(w, "s/a/x", p), 0)
#define CMP(v, op, to)	"{\"value\": \"" v "\", \"op\": \"" op "\", " \
			"\"to\": " to "}"

static void
test_numeric(void)
{
	const char	*p = "{\"temp\": 31.5, \"n\": 9007199254740993, "
	    "\"i\": 30}";

	T(CMP("{payload.temp}", ">", "30"), p);
	F(CMP("{payload.temp}", ">", "31.5"), p);
	T(CMP("{payload.temp}", ">=", "31.5"), p);
	T(CMP("{payload.temp}", "<", "32"), p);
	F(CMP("{payload.temp}", "<=", "31.4"), p);
	T(CMP("{payload.temp}", "=", "31.5"), p);
	T(CMP("{payload.temp}", "!=", "31"), p);
	T(CMP("{payload.i}", "=", "30"), p);
	T(CMP("{payload.i}", "=", "30.0"), p);
	/* Integer against integer is exact. */
	F(CMP("{payload.n}", "=", "9007199254740992"), p);
	T(CMP("{payload.n}", ">", "9007199254740992"), p);
	T(CMP("{qos}", "=", "0"), p);
	T(CMP("{payload.b}", "=", "true"), "{\"b\": true}");
	F(CMP("{payload.b}", "=", "true"), "{\"b\": false}");
	/* A bare numeric payload is a number. */
	T(CMP("{payload}", ">", "21"), "21.5");
}

static void
test_text(void)
{
	const char	*p = "{\"s\": \"abc\", \"n\": \"10\"}";

	T(CMP("{payload.s}", "=", "\"abc\""), p);
	F(CMP("{payload.s}", "=", "\"ab\""), p);
	T(CMP("{payload.s}", ">", "\"ab\""), p);
	T(CMP("{payload.s}", "<", "\"abd\""), p);
	T(CMP("{site}", "=", "\"a\""), p);
	T(CMP("{site}-{payload.s}", "=", "\"a-abc\""), p);
	/* Text against a number compares as text: "10" < "9". */
	T(CMP("{payload.n}", "<", "9"), p);
	T(CMP("{payload.n}", "=", "10"), p);
	T(CMP("{topic}", "!=", "\"s/b/x\""), p);
}

static void
test_in_exists(void)
{
	const char	*p = "{\"s\": \"b\", \"n\": 2, \"z\": null}";

	T(CMP("{payload.s}", "in", "[\"a\", \"b\"]"), p);
	F(CMP("{payload.s}", "in", "[\"a\", \"c\"]"), p);
	T(CMP("{payload.n}", "in", "[1, 2, 3]"), p);
	F(CMP("{payload.n}", "in", "[1, 3]"), p);
	T(CMP("{site}", "in", "[\"a\"]"), p);
	T("{\"value\": \"{payload.s}\", \"op\": \"exists\"}", p);
	F("{\"value\": \"{payload.q}\", \"op\": \"exists\"}", p);
	F("{\"value\": \"{payload.z}\", \"op\": \"exists\"}", p);
	T("{\"not\": {\"value\": \"{payload.q}\", \"op\": \"exists\"}}", p);
}

static void
test_missing(void)
{
	/* A missing value makes every comparison false, "!=" included. */
	F(CMP("{payload.t}", ">", "0"), "{}");
	F(CMP("{payload.t}", "<", "0"), "{}");
	F(CMP("{payload.t}", "!=", "0"), "{}");
	F(CMP("{payload.t}", "=", "0"), "{}");
	F(CMP("{payload.t}", "in", "[0]"), "{}");
	F(CMP("{payload.t}", "!=", "0"), "not json");
	F(CMP("{payload.t}", "=", "0"), "{\"t\": null}");
	T("{\"not\": " CMP("{payload.t}", "=", "0") "}", "{}");
}

static void
test_nesting(void)
{
	const char	*p = "{\"t\": 35, \"h\": 20}";

	T("{\"all\": [" CMP("{payload.t}", ">", "30") ", "
	    CMP("{payload.h}", "<", "50") "]}", p);
	F("{\"all\": [" CMP("{payload.t}", ">", "30") ", "
	    CMP("{payload.h}", ">", "50") "]}", p);
	T("{\"any\": [" CMP("{payload.t}", ">", "40") ", "
	    CMP("{payload.h}", "<", "50") "]}", p);
	F("{\"any\": [" CMP("{payload.t}", ">", "40") ", "
	    CMP("{payload.h}", ">", "50") "]}", p);
	T("{\"all\": [{\"any\": [" CMP("{payload.x}", "=", "1") ", "
	    "{\"not\": {\"all\": [" CMP("{payload.h}", "=", "20") ", "
	    CMP("{payload.t}", "=", "0") "]}}]}, "
	    CMP("{site}", "in", "[\"a\", \"b\"]") "]}", p);
}

static void
test_counters(void)
{
	const char		*text = "[{\"name\": \"r\", \"topic\": \"#\", "
	    "\"where\": {\"value\": \"{payload}\", \"op\": \">\", \"to\": 1}, "
	    "\"sqlite\": {\"table\": \"t\", \"columns\": {\"v\": "
	    "\"{payload}\"}}}]";
	const char		*pl[] = { "0", "2", "3", "x" };
	struct rule_set		*set;
	const struct rule	*r;
	struct rule_payload	 pc;
	struct msg		*m;
	size_t			 i;

	set = rules_load_json(text, strlen(text), "t", NULL, NULL, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	CU_ASSERT(rule_has_where(r));
	for (i = 0; i < 4; i++) {
		m = msg_new("a", 1, "c", 1, NULL, 0, pl[i], strlen(pl[i]), 0,
		    0, 5);
		rule_payload_init(&pc, m);
		rule_filter(r, m, &pc);
		rule_payload_clear(&pc);
		msg_unref(&m);
	}
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CMATCHED), 4);
	/* "x" is text: "x" > "1" as text passes. */
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CFILTERED), 1);
	rule_count(r, RULE_CWRITTEN, 3);
	rule_count(r, RULE_CREJECTED, 1);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CWRITTEN), 3);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CREJECTED), 1);
	rule_set_unref(&set);
}

struct seen {
	int	n;
	char	path[16][128];
	char	msg[16][256];
};

static void
collect(const char *file, const struct gw_error *e, void *ctx)
{
	struct seen	*s = ctx;

	(void)file;
	if (s->n < 16) {
		snprintf(s->path[s->n], sizeof s->path[0], "%s", e->path);
		snprintf(s->msg[s->n], sizeof s->msg[0], "%s", e->msg);
	}
	s->n++;
}

static void
expect(const char *where, const char *path, const char *needle)
{
	char		 text[2048];
	struct rule_set	*set;
	struct seen	 s;
	int		 i, found = 0;

	memset(&s, 0, sizeof s);
	snprintf(text, sizeof text, "[{\"name\": \"r\", \"topic\": \"#\", "
	    "\"where\": %s, \"sqlite\": {\"table\": \"t\", \"columns\": "
	    "{\"v\": \"{payload}\"}}}]", where);
	set = rules_load_json(text, strlen(text), "t", NULL, collect, &s,
	    NULL);
	CU_ASSERT_PTR_NULL(set);
	rule_set_unref(&set);
	for (i = 0; i < s.n && i < 16; i++) {
		if (strcmp(s.path[i], path) == 0 && strstr(s.msg[i], needle))
			found = 1;
	}
	if (!found) {
		fprintf(stderr, "\nwanted [%s] ~ %s in:\n", path, needle);
		for (i = 0; i < s.n && i < 16; i++)
			fprintf(stderr, "  [%s] %s\n", s.path[i], s.msg[i]);
	}
	CU_ASSERT(found);
}

static void
test_errors(void)
{
	expect("5", "rules[0].where", "expected a filter object");
	expect("{\"value\": \"{payload}\", \"op\": \"~\", \"to\": 1}",
	    "rules[0].where.op", "expected one of");
	expect("{\"value\": \"{payload}\", \"to\": 1}", "rules[0].where",
	    "missing \"op\"");
	expect("{\"op\": \"=\", \"to\": 1}", "rules[0].where",
	    "missing \"value\"");
	expect("{\"value\": \"{payload}\", \"op\": \"=\"}", "rules[0].where",
	    "missing \"to\"");
	expect("{\"value\": \"{payload}\", \"op\": \"exists\", \"to\": 1}",
	    "rules[0].where.to", "takes no");
	expect("{\"value\": \"{payload}\", \"op\": \"in\", \"to\": []}",
	    "rules[0].where.to", "non-empty array");
	expect("{\"value\": \"{payload}\", \"op\": \"in\", \"to\": [1, {}]}",
	    "rules[0].where.to[1]", "number, string or boolean");
	expect("{\"value\": \"{payload}\", \"op\": \"=\", \"to\": null}",
	    "rules[0].where.to", "exists");
	expect("{\"value\": \"{paylod}\", \"op\": \"exists\"}",
	    "rules[0].where.value", "unknown placeholder {paylod}");
	expect("{\"value\": \"{payload}\", \"op\": \"exists\", \"x\": 1}",
	    "rules[0].where.x", "unknown key");
	expect("{\"all\": []}", "rules[0].where.all", "non-empty array");
	expect("{\"all\": [{\"value\": \"{payload}\", \"op\": \"exists\"}, "
	    "{\"any\": [{\"value\": \"{bad}\", \"op\": \"exists\"}]}]}",
	    "rules[0].where.all[1].any[0].value", "unknown placeholder");
	expect("{\"all\": [], \"any\": []}", "rules[0].where", "stand alone");
	expect("{\"not\": 1}", "rules[0].where.not", "filter object");
}

static void
test_memory(void)
{
	size_t	before = gw_mem_used();

	T(CMP("{payload.s}", "in", "[\"a\", \"b\"]"), "{\"s\": \"b\"}");
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static const struct cutest_case tests[] = {
	{ "numeric", test_numeric },
	{ "text", test_text },
	{ "in and exists", test_in_exists },
	{ "missing values", test_missing },
	{ "all/any/not", test_nesting },
	{ "counters", test_counters },
	{ "load errors", test_errors },
	{ "memory", test_memory },
};

int
main(void)
{
	return cutest_main("rules_where", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
