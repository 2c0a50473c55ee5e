/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/rules/foreach.c: walking a foreach array element by
 * element ({item...}, {item_index}, the publish's own placeholders beside
 * them), what a missing, null, non-array or oversized array gives, a where
 * that tests the element, the default webhook envelope and mqtt payload of
 * a foreach action, the load errors, and that nothing leaks.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cutest.h"
#include "mem.h"
#include "rules/rules.h"
#include "seen.h"

#define RULE_SQL(extra, cols) "[{\"name\": \"r\", \"topic\": " \
	"\"s/{site}\", " extra "\"sqlite\": {\"table\": \"t\", " \
	"\"foreach\": \"{payload.readings}\", " cols "}}]"

static struct rule_set *
load(const char *text)
{
	struct rule_set	*set;
	struct seen	 s;

	memset(&s, 0, sizeof s);
	set = rules_load_json(text, strlen(text), "t", NULL, seen_collect, &s,
	    NULL);
	if (set == NULL)
		fprintf(stderr, "\ndoes not load (%d): [%s] %s\n", s.n,
		    s.path[0], s.msg[0]);
	return set;
}

static struct msg *
pub(const char *topic, const char *payload)
{
	return msg_new(topic, strlen(topic), "c", 1, NULL, 0, payload,
	    strlen(payload), 1, 0, 1234);
}

static void
test_iterate(void)
{
	struct rule_set		*set;
	const struct rule	*r;
	struct rule_payload	 pc;
	struct rule_items	 it;
	struct rule_value	 v[6];
	struct msg		*m;
	char			 why[256];
	int			 n, k = 0, i;

	set = load(RULE_SQL("", "\"columns\": {\"i\": \"{item_index}\", "
	    "\"v\": \"{item.v}\", \"deep\": \"{item.a[0].b}\", \"all\": "
	    "\"{item}\", \"site\": \"{site}\", \"top\": \"{payload.id}\"}"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	CU_ASSERT(rule_has_foreach(r, RULE_ASQLITE));
	CU_ASSERT(!rule_has_foreach(r, RULE_AWEBHOOK));
	m = pub("s/north", "{\"id\": 7, \"readings\": [{\"v\": 1.5}, "
	    "{\"v\": 9007199254740993, \"a\": [{\"b\": \"x\"}]}, 42, "
	    "\"s\", null]}");
	memset(v, 0, sizeof v);
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_payload_item_index(&pc), -1);
	n = rule_items_begin(r, RULE_ASQLITE, &pc, &it, why, sizeof why);
	CU_ASSERT_EQUAL(n, 5);
	while (rule_items_next(&it, &pc)) {
		CU_ASSERT_EQUAL(rule_payload_item_index(&pc), k);
		CU_ASSERT_EQUAL(rule_sqlite_values(r, m, &pc, v), 0);
		CU_ASSERT_EQUAL(v[0].type, RULE_VINTEGER);
		CU_ASSERT_EQUAL(v[0].u.i, k);
		CU_ASSERT_EQUAL(v[4].type, RULE_VTEXT);
		CU_ASSERT(v[4].u.s.len == 5 && !memcmp(v[4].u.s.p, "north", 5));
		CU_ASSERT_EQUAL(v[5].type, RULE_VINTEGER);
		CU_ASSERT_EQUAL(v[5].u.i, 7);
		switch (k) {
		case 0:
			CU_ASSERT_EQUAL(v[1].type, RULE_VREAL);
			CU_ASSERT_DOUBLE_EQUAL(v[1].u.d, 1.5, 0);
			CU_ASSERT_EQUAL(v[2].type, RULE_VNULL);
			CU_ASSERT_EQUAL(v[3].type, RULE_VTEXT);
			CU_ASSERT(v[3].json && v[3].u.s.len == 9 &&
			    !memcmp(v[3].u.s.p, "{\"v\":1.5}", 9));
			break;
		case 1:
			CU_ASSERT_EQUAL(v[1].type, RULE_VINTEGER);
			CU_ASSERT(v[1].u.i == 9007199254740993LL);
			CU_ASSERT_EQUAL(v[2].type, RULE_VTEXT);
			CU_ASSERT(v[2].u.s.len == 1 && v[2].u.s.p[0] == 'x');
			break;
		case 2:
			CU_ASSERT_EQUAL(v[1].type, RULE_VNULL);
			CU_ASSERT_EQUAL(v[3].type, RULE_VINTEGER);
			CU_ASSERT_EQUAL(v[3].u.i, 42);
			break;
		case 3:
			CU_ASSERT_EQUAL(v[3].type, RULE_VTEXT);
			CU_ASSERT(v[3].u.s.len == 1 && v[3].u.s.p[0] == 's');
			break;
		default:
			CU_ASSERT_EQUAL(v[3].type, RULE_VNULL);
		}
		for (i = 0; i < 6; i++)
			rule_value_clear(&v[i]);
		k++;
	}
	CU_ASSERT_EQUAL(k, 5);
	CU_ASSERT_EQUAL(rule_payload_item_index(&pc), -1);
	rule_items_end(&it, &pc);
	/* Outside the loop the element is gone: NULL, not the last one. */
	CU_ASSERT_EQUAL(rule_sqlite_values(r, m, &pc, v), 0);
	CU_ASSERT_EQUAL(v[0].type, RULE_VNULL);
	CU_ASSERT_EQUAL(v[3].type, RULE_VNULL);
	CU_ASSERT_EQUAL(v[5].u.i, 7);
	for (i = 0; i < 6; i++)
		rule_value_clear(&v[i]);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
}

/* rule_items_begin's result for payload p, why copied to out. */
static int
begin(const struct rule *r, const char *p, char *out, size_t outlen)
{
	struct rule_payload	 pc;
	struct rule_items	 it;
	struct msg		*m = pub("s/a", p);
	int			 n, k = 0;

	out[0] = '\0';
	rule_payload_init(&pc, m);
	n = rule_items_begin(r, RULE_ASQLITE, &pc, &it, out, outlen);
	while (n >= 0 && rule_items_next(&it, &pc))
		k++;
	if (n >= 0)
		CU_ASSERT_EQUAL(k, n);
	rule_items_end(&it, &pc);
	rule_payload_clear(&pc);
	msg_unref(&m);
	return n;
}

static void
test_outcomes(void)
{
	struct rule_set		*set;
	const struct rule	*r;
	char			 why[256];

	set = load("[{\"name\": \"r\", \"topic\": \"s/+\", \"sqlite\": {"
	    "\"table\": \"t\", \"foreach\": \"{payload.readings}\", "
	    "\"max_items\": 3, \"columns\": {\"v\": \"{item}\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	CU_ASSERT_EQUAL(begin(r, "{\"readings\": []}", why, sizeof why), 0);
	CU_ASSERT_EQUAL(begin(r, "{\"readings\": [1, 2, 3]}", why,
	    sizeof why), 3);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CITEMS_MISSING), 0);
	CU_ASSERT_EQUAL(begin(r, "{\"other\": [1]}", why, sizeof why),
	    GW_ENOTFOUND);
	CU_ASSERT_EQUAL(begin(r, "{\"readings\": null}", why, sizeof why),
	    GW_ENOTFOUND);
	CU_ASSERT_EQUAL(begin(r, "", why, sizeof why), GW_ENOTFOUND);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CITEMS_MISSING), 3);
	CU_ASSERT_EQUAL(begin(r, "{\"readings\": {\"v\": 1}}", why,
	    sizeof why), GW_EMALFORMED);
	CU_ASSERT_STRING_EQUAL(why, "foreach {payload.readings}: not an "
	    "array (an object)");
	CU_ASSERT_EQUAL(begin(r, "{\"readings\": 5}", why, sizeof why),
	    GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "(a number)"));
	CU_ASSERT_EQUAL(begin(r, "not json", why, sizeof why),
	    GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "(the payload is not JSON)"));
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CITEMS_OVER), 0);
	CU_ASSERT_EQUAL(begin(r, "{\"readings\": [1, 2, 3, 4]}", why,
	    sizeof why), GW_ETOOBIG);
	CU_ASSERT_STRING_EQUAL(why, "foreach {payload.readings}: 4 elements, "
	    "more than max_items 3");
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CITEMS_OVER), 1);
	rule_set_unref(&set);

	/* {payload}: the payload itself is the array; default max 1,000. */
	set = load("[{\"name\": \"r\", \"topic\": \"s/+\", \"sqlite\": {"
	    "\"table\": \"t\", \"foreach\": \"{payload}\", \"columns\": "
	    "{\"v\": \"{item}\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	CU_ASSERT_EQUAL(begin(r, "[[1], [2]]", why, sizeof why), 2);
	rule_set_unref(&set);
}

static void
test_thousand(void)
{
	struct rule_set		*set;
	const struct rule	*r;
	struct rule_payload	 pc;
	struct rule_items	 it;
	struct rule_value	 v[2];
	struct msg		*m;
	char			 why[64], *p;
	size_t			 off = 0, cap = 1000 * 32 + 64;
	int			 i, n, ok = 0;

	set = load(RULE_SQL("", "\"columns\": {\"i\": \"{item_index}\", "
	    "\"v\": \"{item.v}\"}"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	p = gw_malloc(cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	off += (size_t)snprintf(p + off, cap - off, "{\"readings\": [");
	for (i = 0; i < 1000; i++)
		off += (size_t)snprintf(p + off, cap - off, "%s{\"v\": %d}",
		    i > 0 ? ", " : "", i * 3 - 7);
	snprintf(p + off, cap - off, "]}");
	m = pub("s/a", p);
	memset(v, 0, sizeof v);
	rule_payload_init(&pc, m);
	n = rule_items_begin(r, RULE_ASQLITE, &pc, &it, why, sizeof why);
	CU_ASSERT_EQUAL(n, 1000);
	for (i = 0; rule_items_next(&it, &pc); i++) {
		if (rule_sqlite_values(r, m, &pc, v) == 0 &&
		    v[0].type == RULE_VINTEGER && v[0].u.i == i &&
		    v[1].type == RULE_VINTEGER && v[1].u.i == i * 3 - 7)
			ok++;
		rule_value_clear(&v[0]);
		rule_value_clear(&v[1]);
	}
	CU_ASSERT_EQUAL(ok, 1000);
	rule_items_end(&it, &pc);
	rule_payload_clear(&pc);
	msg_unref(&m);
	gw_free(p);
	rule_set_unref(&set);
}

static void
test_item_where(void)
{
	struct rule_set		*set;
	const struct rule	*r;
	struct rule_payload	 pc;
	struct rule_items	 it;
	struct msg		*m;
	char			 why[64];
	int			 kept = 0, f;

	set = load(RULE_SQL("\"where\": {\"all\": [{\"value\": "
	    "\"{item.v}\", \"op\": \">\", \"to\": 0}, {\"value\": \"{site}\", "
	    "\"op\": \"=\", \"to\": \"a\"}]}, ",
	    "\"columns\": {\"v\": \"{item.v}\"}"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	m = pub("s/a", "{\"readings\": [{\"v\": 1}, {\"v\": -1}, {}, "
	    "{\"v\": 5}]}");
	rule_payload_init(&pc, m);
	/* The publish passes; the elements are filtered one by one. */
	CU_ASSERT_EQUAL(rule_filter(r, m, &pc), 1);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CFILTERED), 0);
	CU_ASSERT_EQUAL(rule_items_begin(r, RULE_ASQLITE, &pc, &it, why,
	    sizeof why), 4);
	while (rule_items_next(&it, &pc)) {
		f = rule_item_filter(r, m, &pc);
		CU_ASSERT(f == 0 || f == 1);
		kept += f == 1;
	}
	rule_items_end(&it, &pc);
	CU_ASSERT_EQUAL(kept, 2);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CITEMS_FILTERED), 2);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
}

static void
test_forward_defaults(void)
{
	struct rule_set		*set;
	const struct rule	*r;
	struct rule_payload	 pc;
	struct rule_items	 it;
	struct rule_http	 h;
	struct rule_rendered	 topic, payload;
	struct msg		*m;
	char			 why[64];

	set = load("[{\"name\": \"r\", \"topic\": \"s/{site}\", "
	    "\"webhook\": {\"url\": \"http://127.0.0.1:9/{item_index}\", "
	    "\"foreach\": \"{payload.r}\"}, \"mqtt\": {\"url\": "
	    "\"tcp://127.0.0.1:9\", \"topic\": \"up/{site}/{item.k}\", "
	    "\"foreach\": \"{payload.r}\"}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	m = pub("s/a", "{\"r\": [{\"k\": \"x\", \"v\": [1, 2]}]}");
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_items_begin(r, RULE_AWEBHOOK, &pc, &it, why,
	    sizeof why), 1);
	CU_ASSERT(rule_items_next(&it, &pc));
	CU_ASSERT_EQUAL(rule_render_webhook(r, m, &pc, &h), 0);
	CU_ASSERT_STRING_EQUAL(h.url.text, "http://127.0.0.1:9/0");
	CU_ASSERT_PTR_NOT_NULL(strstr(h.body.text, "\"item\":{\"k\":\"x\","
	    "\"v\":[1,2]},\"item_index\":0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(h.body.text, "\"payload\":{\"r\":"));
	rule_http_free(&h);
	CU_ASSERT_EQUAL(rule_render_mqtt(r, m, &pc, &topic, &payload), 0);
	CU_ASSERT_STRING_EQUAL(topic.text, "up/a/x");
	CU_ASSERT_STRING_EQUAL(payload.text, "{\"k\":\"x\",\"v\":[1,2]}");
	gw_free(topic.text);
	gw_free(payload.text);
	rule_items_end(&it, &pc);
	/* Without an element the envelope is the plain one. */
	CU_ASSERT_EQUAL(rule_render_webhook(r, m, &pc, &h), 0);
	CU_ASSERT_PTR_NULL(strstr(h.body.text, "\"item\""));
	rule_http_free(&h);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
}

/* Loading text fails with needle at path. */
static void
expect(const char *text, const char *path, const char *needle)
{
	struct rule_set	*set;
	struct seen	 s;
	int		 i, found = 0;

	memset(&s, 0, sizeof s);
	set = rules_load_json(text, strlen(text), "t", NULL, seen_collect, &s,
	    NULL);
	CU_ASSERT_PTR_NULL(set);
	rule_set_unref(&set);
	for (i = 0; i < s.n && i < SEEN_MAX; i++) {
		if (strcmp(s.path[i], path) == 0 && strstr(s.msg[i], needle))
			found = 1;
	}
	if (!found) {
		fprintf(stderr, "\nwanted [%s] ~ %s in:\n", path, needle);
		for (i = 0; i < s.n && i < SEEN_MAX; i++)
			fprintf(stderr, "  [%s] %s\n", s.path[i], s.msg[i]);
	}
	CU_ASSERT(found);
}

static void
test_errors(void)
{
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": {\"table\": "
	    "\"t\", \"columns\": {\"v\": \"{item.v}\"}}}]",
	    "rules[0].sqlite.columns.v", "{item.v} needs \"foreach\"");
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": {\"table\": "
	    "\"t\", \"columns\": {\"v\": \"x{item_index}\"}}}]",
	    "rules[0].sqlite.columns.v", "{item_index} needs \"foreach\"");
	/* One action without foreach: the where cannot test the element. */
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"where\": {\"value\": "
	    "\"{item}\", \"op\": \"exists\"}, \"sqlite\": {\"table\": \"t\", "
	    "\"foreach\": \"{payload}\", \"columns\": {\"v\": \"{item}\"}}, "
	    "\"webhook\": {\"url\": \"http://127.0.0.1:9/\"}}]",
	    "rules[0].where.value", "on every action of the rule");
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": {\"table\": "
	    "\"t\", \"foreach\": \"{topic}\", \"columns\": {\"v\": "
	    "\"{item}\"}}}]", "rules[0].sqlite.foreach",
	    "one payload placeholder");
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": {\"table\": "
	    "\"t\", \"foreach\": \"x{payload.a}\", \"columns\": {\"v\": "
	    "\"{item}\"}}}]", "rules[0].sqlite.foreach",
	    "one payload placeholder");
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": {\"table\": "
	    "\"t\", \"foreach\": \"{item.a}\", \"columns\": {\"v\": "
	    "\"{item}\"}}}]", "rules[0].sqlite.foreach", "needs \"foreach\"");
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": {\"table\": "
	    "\"t\", \"foreach\": 5, \"columns\": {\"v\": \"{item}\"}}}]",
	    "rules[0].sqlite.foreach", "expected a template string");
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": {\"table\": "
	    "\"t\", \"max_items\": 5, \"columns\": {\"v\": \"{payload}\"}}}]",
	    "rules[0].sqlite.max_items", "needs \"foreach\"");
	expect("[{\"name\": \"r\", \"topic\": \"a\", \"mqtt\": {\"url\": "
	    "\"tcp://h:1\", \"foreach\": \"{payload}\", \"max_items\": 0}}]",
	    "rules[0].mqtt.max_items", "between 1 and 100000");
	expect("[{\"name\": \"r\", \"topic\": \"a/{item}\", \"webhook\": {"
	    "\"url\": \"http://h/\", \"foreach\": \"{payload}\"}}]",
	    "rules[0].webhook.foreach", "hides the element");
}

/* One publish through a foreach webhook and mqtt action; 0 or an error. */
static int
forward_pass(const struct rule_set *set)
{
	const struct rule	*r = rule_set_rule(set, 0);
	struct rule_payload	 pc;
	struct rule_items	 it;
	struct rule_http	 h;
	struct rule_rendered	 topic, payload;
	struct msg		*m;
	char			 why[64];
	int			 rc = 0, n;

	if ((m = pub("s/a", "{\"r\": [{\"k\": \"x\\u00e9\"}, 2, [3]]}")) ==
	    NULL)
		return GW_ENOMEM;
	rule_payload_init(&pc, m);
	n = rule_items_begin(r, RULE_AWEBHOOK, &pc, &it, why, sizeof why);
	if (n < 0)
		rc = n;
	while (rc == 0 && rule_items_next(&it, &pc)) {
		memset(&topic, 0, sizeof topic);
		memset(&payload, 0, sizeof payload);
		if ((rc = rule_item_filter(r, m, &pc)) != 1)
			break;
		rc = rule_render_webhook(r, m, &pc, &h);
		rule_http_free(&h);
		if (rc == 0 || rc == GW_EMALFORMED)
			rc = rule_render_mqtt(r, m, &pc, &topic, &payload);
		gw_free(topic.text);
		gw_free(payload.text);
	}
	rule_items_end(&it, &pc);
	rule_payload_clear(&pc);
	msg_unref(&m);
	return rc;
}

static void
test_oom(void)
{
	const char	*text = "[{\"name\": \"r\", \"topic\": \"s/{site}\", "
	    "\"where\": {\"value\": \"{item_index}\", \"op\": \">=\", "
	    "\"to\": 0}, \"webhook\": {\"url\": \"http://h/{item.k}\", "
	    "\"foreach\": \"{payload.r}\"}, \"mqtt\": {\"url\": "
	    "\"tcp://h:1\", \"topic\": \"u/{item_index}\", \"foreach\": "
	    "\"{payload.r}\"}}]";
	struct rule_set	*set = NULL;
	size_t		 before = gw_mem_used();
	long		 n;
	int		 rc = GW_ENOMEM;

	/* Every allocation failure is a clean error, never a crash or leak. */
	for (n = 0; n < 2000 && set == NULL; n++) {
		gw_mem_fail_after(n);
		set = rules_load_json(text, strlen(text), "t", NULL, NULL, NULL,
		    NULL);
		gw_mem_fail_after(-1);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	for (n = 0; n < 2000 && rc != 0; n++) {
		gw_mem_fail_after(n);
		rc = forward_pass(set);
		gw_mem_fail_after(-1);
		CU_ASSERT(rc == 0 || rc == GW_ENOMEM);
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(n > 3);	/* some allocations did fail */
	rule_set_unref(&set);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_memory(void)
{
	size_t	before = gw_mem_used();

	test_iterate();
	test_outcomes();
	test_forward_defaults();
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static const struct cutest_case tests[] = {
	{ "iterate", test_iterate },
	{ "missing, not an array, too many", test_outcomes },
	{ "1,000 elements", test_thousand },
	{ "where on the element", test_item_where },
	{ "webhook and mqtt defaults", test_forward_defaults },
	{ "load errors", test_errors },
	{ "allocation failures", test_oom },
	{ "memory", test_memory },
};

int
main(void)
{
	return cutest_main("rules_foreach", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
