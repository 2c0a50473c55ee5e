/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/rules/load.c (and the action settings in action.c):
 * the shipped default rule and examples load; every kind of load error is
 * reported with its exact JSON path, all of them, not just the first;
 * ${NAME} expansion; the messages reservation; allocation failures at
 * every step leave no leak. Files are found through $top_srcdir, falling
 * back to a path relative to this source file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "cutest.h"
#include "mem.h"
#include "rules/rules.h"
#include "seen.h"

/* Index of the first error at path whose message contains needle, or -1. */
static int
seen_at(const struct seen *s, const char *path, const char *needle)
{
	int	i;

	for (i = 0; i < s->n && i < SEEN_MAX; i++) {
		if (strcmp(s->path[i], path) == 0 &&
		    strstr(s->msg[i], needle) != NULL)
			return i;
	}
	return -1;
}

static void
dump(const struct seen *s)
{
	int	i;

	for (i = 0; i < s->n && i < SEEN_MAX; i++)
		fprintf(stderr, "  [%s] %s\n", s->path[i], s->msg[i]);
}

/* Loads text; returns the set (or NULL) and fills s. */
static struct rule_set *
load(struct seen *s, const char *text)
{
	memset(s, 0, sizeof *s);
	return rules_load_json(text, strlen(text), "rules.json", NULL,
	    seen_collect, s, NULL);
}

/* Expects text to fail with an error at path containing needle. */
static void
expect_error(const char *text, const char *path, const char *needle)
{
	struct rule_set	*set;
	struct seen	 s;

	set = load(&s, text);
	CU_ASSERT_PTR_NULL(set);
	if (seen_at(&s, path, needle) < 0) {
		fprintf(stderr, "\nwanted [%s] ~ %s, got:\n", path, needle);
		dump(&s);
		CU_FAIL("error not reported");
	}
	rule_set_unref(&set);
}

static char *
src_path(const char *rel)
{
	static char	 buf[1024];
	const char	*top = getenv("top_srcdir");
	char		 here[1024], *slash;

	if (top != NULL) {
		snprintf(buf, sizeof buf, "%s/%s", top, rel);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	snprintf(here, sizeof here, "%s", __FILE__);
	if ((slash = strstr(here, "tests/unit/")) != NULL)
		*slash = '\0';
	else
		snprintf(here, sizeof here, "../../");
	snprintf(buf, sizeof buf, "%s%s", here, rel);
	return buf;
}

static const char *const shipped[] = {
	"rules/default.json",
	"rules/examples/readings-with-captures.json",
	"rules/examples/per-metric-topics.json",
	"rules/examples/filtered-alarms.json",
	"rules/examples/webhook.json",
	"rules/examples/batched-readings.json",
	"rules/examples/rollups.json",
};

static void
test_examples_load(void)
{
	struct rule_set	*set;
	struct seen	 s;
	size_t		 i, before = gw_mem_used();
	int		 rc;

	setenv("HOOK_TOKEN", "t0ken", 1);
	for (i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
		memset(&s, 0, sizeof s);
		set = rules_load_file(src_path(shipped[i]), seen_collect, &s,
		    &rc);
		if (set == NULL) {
			fprintf(stderr, "\n%s:\n", src_path(shipped[i]));
			dump(&s);
		}
		CU_ASSERT_PTR_NOT_NULL(set);
		CU_ASSERT_EQUAL(s.n, 0);
		CU_ASSERT_EQUAL(rc, 0);
		if (set != NULL)
			CU_ASSERT(rule_set_count(set) >= 1);
		rule_set_unref(&set);
	}
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_default_equals_file(void)
{
	struct rule_set			*a, *b;
	const struct rule_sqlite	*x, *y;
	size_t				 i;

	a = rules_default();
	b = rules_load_file(src_path("rules/default.json"), NULL, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(rule_set_count(a), 1);
	CU_ASSERT_EQUAL(rule_set_count(b), 1);
	CU_ASSERT_STRING_EQUAL(rule_name(rule_set_rule(a, 0)), "default");
	CU_ASSERT_STRING_EQUAL(rule_topic(rule_set_rule(b, 0)), "#");
	x = rule_sqlite(rule_set_rule(a, 0));
	y = rule_sqlite(rule_set_rule(b, 0));
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	CU_ASSERT_PTR_NOT_NULL_FATAL(y);
	CU_ASSERT_STRING_EQUAL(x->table, "messages");
	CU_ASSERT_STRING_EQUAL(y->table, "messages");
	CU_ASSERT_EQUAL_FATAL(x->ncols, 6);
	CU_ASSERT_EQUAL_FATAL(y->ncols, 6);
	for (i = 0; i < 6; i++) {
		CU_ASSERT_STRING_EQUAL(x->cols[i].name, y->cols[i].name);
		CU_ASSERT_STRING_EQUAL(x->cols[i].decl, y->cols[i].decl);
	}
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(a, 0), 0),
	    "INTEGER");
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(a, 0), 1),
	    "TEXT");
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(a, 0), 5),
	    "");
	CU_ASSERT_PTR_NULL(rule_column_decl_type(rule_set_rule(a, 0), 6));
	CU_ASSERT_STRING_EQUAL(rule_set_origin(a), "<default>");
	rule_set_unref(&a);
	rule_set_unref(&b);
	CU_ASSERT_PTR_NULL(a);
}

static void
test_empty_and_bare_array(void)
{
	struct rule_set	*set, *other;
	struct seen	 s;

	set = load(&s, "{\"rules\": []}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(rule_set_count(set), 0);
	rule_set_unref(&set);

	set = load(&s, "[{\"name\": \"a\", \"topic\": \"x/#\", \"sqlite\": "
	    "{\"table\": \"t\", \"columns\": {\"v\": \"{payload}\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(rule_set_count(set), 1);
	CU_ASSERT_EQUAL(rule_id(rule_set_rule(set, 0)), 0);
	CU_ASSERT_PTR_NULL(rule_webhook(rule_set_rule(set, 0)));
	CU_ASSERT_PTR_NULL(rule_mqtt(rule_set_rule(set, 0)));
	CU_ASSERT_FALSE(rule_has_where(rule_set_rule(set, 0)));
	/* References. */
	other = rule_set_ref(set);
	CU_ASSERT_PTR_EQUAL(other, set);
	rule_set_unref(&set);
	CU_ASSERT_PTR_NULL(set);
	CU_ASSERT_EQUAL(rule_set_count(other), 1);
	rule_set_unref(&other);
}

#define R0(body) "{\"rules\": [" body "]}"
#define SQ(cols) "\"sqlite\": {\"table\": \"t\", \"columns\": " cols "}"

static void
test_unknown_placeholder(void)
{
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a/#\", "
	    SQ("{\"temp\": \"{payloud.temp}\"}") "}"),
	    "rules[0].sqlite.columns.temp", "unknown placeholder "
	    "{payloud.temp}");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a/#\", "
	    SQ("{\"x\": \"{nocapture}\"}") "}"),
	    "rules[0].sqlite.columns.x", "unknown placeholder {nocapture}");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a/#\", "
	    SQ("{\"x\": \"{payload.a[x]}\"}") "}"),
	    "rules[0].sqlite.columns.x", "unknown placeholder");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a/#\", "
	    SQ("{\"x\": \"{topic\"}") "}"),
	    "rules[0].sqlite.columns.x", "unterminated");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a/#\", "
	    SQ("{\"x\": \"a}b\"}") "}"),
	    "rules[0].sqlite.columns.x", "unmatched }");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a/#\", "
	    SQ("{\"x\": 5}") "}"),
	    "rules[0].sqlite.columns.x", "expected a template string");
}

static void
test_all_errors_reported(void)
{
	struct rule_set	*set;
	struct seen	 s;

	set = load(&s, R0(
	    "{\"name\": \"a\", \"topic\": \"a/#\", \"bogus\": 1, "
	    SQ("{\"temp\": \"{payloud.temp}\", \"ok\": \"{qos}\"}") "},"
	    "{\"name\": \"a\", \"topic\": \"b/#/c\", "
	    "\"sqlite\": {\"table\": \"1bad\", \"columns\": {\"x\": \"{y}\"},"
	    " \"extra\": true}},"
	    "{\"topic\": \"c\", \"webhook\": {\"url\": \"ftp://x\"}}"));
	CU_ASSERT_PTR_NULL(set);
	CU_ASSERT(seen_at(&s, "rules[0].bogus", "unknown key") >= 0);
	CU_ASSERT(seen_at(&s, "rules[0].sqlite.columns.temp",
	    "unknown placeholder {payloud.temp}") >= 0);
	CU_ASSERT(seen_at(&s, "rules[1].name", "duplicate rule name") >= 0);
	CU_ASSERT(seen_at(&s, "rules[1].topic", "not a valid MQTT topic "
	    "filter") >= 0);
	CU_ASSERT(seen_at(&s, "rules[1].sqlite.table", "not a valid table "
	    "name") >= 0);
	CU_ASSERT(seen_at(&s, "rules[1].sqlite.extra", "unknown key") >= 0);
	CU_ASSERT(seen_at(&s, "rules[1].sqlite.columns.x",
	    "unknown placeholder {y}") >= 0);
	CU_ASSERT(seen_at(&s, "rules[2]", "missing \"name\"") >= 0);
	CU_ASSERT(seen_at(&s, "rules[2].webhook.url", "http://") >= 0);
	CU_ASSERT_EQUAL(s.n, 9);
	if (s.n != 9)
		dump(&s);
	CU_ASSERT_STRING_EQUAL(s.file, "rules.json");
}

static void
test_top_level(void)
{
	struct rule_set	*set;
	struct seen	 s;

	expect_error("{\"rules\": [], \"x\": 1}", "x", "unknown key");
	expect_error("{}", "", "missing \"rules\"");
	expect_error("{\"rules\": {}}", "rules", "expected an array");
	expect_error("42", "", "expected {\"rules\"");
	expect_error("[1]", "rules[0]", "expected an object");
	/* Rules after ones that are not objects are still checked. */
	expect_error("[1, 2, {\"name\": \"a\", \"topic\": \"t\", "
	    "\"sqlite\": {\"table\": \"t\", \"columns\": "
	    "{\"a\": \"{topic}\"}}}, {\"name\": \"a\", \"topic\": \"u\", "
	    "\"sqlite\": {\"table\": \"t\", \"columns\": "
	    "{\"a\": \"{qos}\"}}}]", "rules[3].name", "also rules[2]");
	/* A sqlite action without a table, then another rule's. */
	expect_error("[{\"name\": \"a\", \"topic\": \"t\", \"sqlite\": "
	    "{\"columns\": {\"a\": \"{topic}\"}}}, {\"name\": \"b\", "
	    "\"topic\": \"t\", \"sqlite\": {\"table\": \"t\", "
	    "\"columns\": {\"a\": \"{topic}\"}}}]", "rules[0].sqlite",
	    "table");
	expect_error("[{\"name\": \"x\", \"topic\": \"a\"}]", "rules[0]",
	    "at least one action");
	set = load(&s, "{\"rules\": [\n  {\"name\": }\n]}");
	CU_ASSERT_PTR_NULL(set);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT(seen_at(&s, "", "line 2, column") >= 0);
}

static void
test_topic_patterns(void)
{
	struct rule_set	*set;
	struct seen	 s;
	const char	*p;
	size_t		 len;

#define TOPIC(t) R0("{\"name\": \"r\", \"topic\": \"" t "\", " \
	SQ("{\"v\": \"{payload}\"}") "}")
	expect_error(TOPIC("a/x{b}/c"), "rules[0].topic", "whole level");
	expect_error(TOPIC("a/{1b}"), "rules[0].topic", "capture name");
	expect_error(TOPIC("a/{b}/{b}"), "rules[0].topic", "twice");
	expect_error(TOPIC("a/{topic}"), "rules[0].topic", "built-in");
	expect_error(TOPIC("a/#/b"), "rules[0].topic", "not a valid MQTT");
	expect_error(TOPIC("a+/b"), "rules[0].topic", "not a valid MQTT");
	expect_error(TOPIC(""), "rules[0].topic", "1 to 65535");
	expect_error(R0("{\"name\": \"r\", \"topic\": 5, "
	    SQ("{\"v\": \"{payload}\"}") "}"), "rules[0].topic",
	    "expected a string");

	set = load(&s, TOPIC("site/{site}/+/{dev}/#"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(rule_ncaptures(rule_set_rule(set, 0)), 2);
	CU_ASSERT_STRING_EQUAL(rule_capture_name(rule_set_rule(set, 0), 1),
	    "dev");
	CU_ASSERT_EQUAL(rule_capture(rule_set_rule(set, 0), 1,
	    "site/s1/x/d7/more", 17, &p, &len), 0);
	CU_ASSERT_EQUAL(len, 2);
	CU_ASSERT_NSTRING_EQUAL(p, "d7", 2);
	CU_ASSERT_EQUAL(rule_capture(rule_set_rule(set, 0), 2,
	    "site/s1/x/d7", 12, &p, &len), GW_ENOTFOUND);
	rule_set_unref(&set);
#undef TOPIC
}

static void
test_tables_and_columns(void)
{
	struct rule_set			*set;
	struct seen			 s;
	const struct rule_sqlite	*sq;

#define TBL(t, cols) R0("{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": " \
	"{\"table\": \"" t "\", \"columns\": " cols "}}")
	expect_error(TBL("outbox", "{\"v\": \"{topic}\"}"),
	    "rules[0].sqlite.table", "reserved");
	expect_error(TBL("Rejected", "{\"v\": \"{topic}\"}"),
	    "rules[0].sqlite.table", "reserved");
	expect_error(TBL("sqlite_x", "{\"v\": \"{topic}\"}"),
	    "rules[0].sqlite.table", "reserved");
	expect_error(TBL("a-b", "{\"v\": \"{topic}\"}"),
	    "rules[0].sqlite.table", "not a valid table name");
	expect_error(TBL("t", "{}"), "rules[0].sqlite.columns",
	    "non-empty");
	expect_error(TBL("t", "{\"a b\": \"{topic}\"}"),
	    "rules[0].sqlite.columns.a b", "not a valid column name");
	expect_error(TBL("t", "{\"v\": \"{topic}\", \"V\": \"{qos}\"}"),
	    "rules[0].sqlite.columns.V", "duplicate column");
	/* messages: only the default layout. */
	expect_error(TBL("messages", "{\"received_ms\": \"{received_ms}\", "
	    "\"topic\": \"{topic}\", \"qos\": \"{qos}\", \"retain\": "
	    "\"{retain}\", \"temp\": \"{payload.t}\"}"),
	    "rules[0].sqlite.columns.temp", "only has the columns");
	expect_error(TBL("messages", "{\"topic\": \"{topic}\"}"),
	    "rules[0].sqlite.columns", "needs column received_ms");
	set = load(&s, TBL("messages", "{\"received_ms\": \"{received_ms}\", "
	    "\"topic\": \"{topic}\", \"qos\": \"{qos}\", \"retain\": "
	    "\"{retain}\", \"payload\": \"{payload.data}\"}"));
	CU_ASSERT_PTR_NOT_NULL(set);
	rule_set_unref(&set);

	/* types */
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": "
	    "{\"table\": \"t\", \"columns\": {\"v\": \"{topic}\"}, "
	    "\"types\": {\"v\": \"FLOAT\", \"w\": \"REAL\"}}}"),
	    "rules[0].sqlite.types.v", "expected one of INTEGER");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": "
	    "{\"table\": \"t\", \"columns\": {\"v\": \"{topic}\"}, "
	    "\"types\": {\"w\": \"REAL\"}}}"),
	    "rules[0].sqlite.types.w", "not a column");
	set = load(&s, R0("{\"name\": \"r\", \"topic\": \"a/{c}\", "
	    "\"sqlite\": {\"table\": \"t\", \"columns\": {\"a\": \"{c}\", "
	    "\"b\": \"{qos}\", \"c\": \"{payload.x}\", \"d\": \"x{qos}\", "
	    "\"e\": \"{payload}\", \"f\": \"{retain}\"}, "
	    "\"types\": {\"e\": \"real\", \"f\": \"ANY\"}}}"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	sq = rule_sqlite(rule_set_rule(set, 0));
	CU_ASSERT_STRING_EQUAL(sq->cols[0].decl, "TEXT");
	CU_ASSERT_STRING_EQUAL(sq->cols[1].decl, "INTEGER");
	CU_ASSERT_STRING_EQUAL(sq->cols[2].decl, "");
	CU_ASSERT_STRING_EQUAL(sq->cols[3].decl, "TEXT");
	CU_ASSERT_STRING_EQUAL(sq->cols[4].decl, "REAL");
	CU_ASSERT(sq->cols[4].declared);
	CU_ASSERT_STRING_EQUAL(sq->cols[5].decl, "");
	rule_set_unref(&set);

	/* Two rules, one column, two types. */
	expect_error(R0("{\"name\": \"r1\", \"topic\": \"a\", "
	    SQ("{\"v\": \"{qos}\"}") "}, {\"name\": \"r2\", \"topic\": "
	    "\"b\", " SQ("{\"V\": \"{topic}\"}") "}"),
	    "rules[1].sqlite.columns.V", "INTEGER in rule \"r1\" but TEXT");
#undef TBL
}

static void
test_indexes_retention(void)
{
	struct rule_set			*set;
	struct seen			 s;
	const struct rule_sqlite	*sq;

#define IX(x) R0("{\"name\": \"r\", \"topic\": \"a\", \"sqlite\": " \
	"{\"table\": \"t\", \"columns\": {\"ts\": \"{received_ms}\", " \
	"\"v\": \"{payload}\"}, " x "}}")
	set = load(&s, IX("\"indexes\": [\"ts\", [\"v\", \"ts\"]], "
	    "\"retention\": {\"max_age\": \"7d\", \"time_column\": \"ts\"}"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	sq = rule_sqlite(rule_set_rule(set, 0));
	CU_ASSERT_EQUAL(sq->nidx, 2);
	CU_ASSERT_STRING_EQUAL(sq->idx[0].name, "t_ts_idx");
	CU_ASSERT_STRING_EQUAL(sq->idx[1].name, "t_v_ts_idx");
	CU_ASSERT_EQUAL(sq->idx[1].ncols, 2);
	CU_ASSERT_STRING_EQUAL(sq->idx[1].cols[1], "ts");
	CU_ASSERT_EQUAL(sq->max_age_ms, 7ULL * 86400000);
	CU_ASSERT_STRING_EQUAL(sq->time_column, "ts");
	rule_set_unref(&set);
	expect_error(IX("\"indexes\": [\"nope\"]"),
	    "rules[0].sqlite.indexes[0]",
	    "not a column");
	expect_error(IX("\"indexes\": [[\"ts\", \"nope\"]]"),
	    "rules[0].sqlite.indexes[0][1]", "not a column");
	expect_error(IX("\"indexes\": [[]]"), "rules[0].sqlite.indexes[0]",
	    "non-empty");
	expect_error(IX("\"retention\": {\"max_age\": \"7 weeks\", "
	    "\"time_column\": \"ts\"}"), "rules[0].sqlite.retention.max_age",
	    "duration");
	expect_error(IX("\"retention\": {\"max_age\": \"7d\", "
	    "\"time_column\": \"x\"}"),
	    "rules[0].sqlite.retention.time_column", "not a column");
	expect_error(IX("\"retention\": {\"max_age\": 1000}"),
	    "rules[0].sqlite.retention", "missing \"time_column\"");
	expect_error(IX("\"retention\": {\"max_age\": 1, \"time_column\": "
	    "\"ts\", \"size\": 1}"), "rules[0].sqlite.retention.size",
	    "unknown key");
#undef IX
}

static void
test_env(void)
{
	struct rule_set			*set;
	struct seen			 s;
	const struct rule_webhook	*w;
	const struct rule_mqtt		*mq;

	unsetenv("MQLITE_TEST_UNSET");
	setenv("MQLITE_TEST_SECRET", "s3cret", 1);
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a\", \"webhook\": "
	    "{\"url\": \"http://h/\", \"hmac\": {\"secret\": "
	    "\"${MQLITE_TEST_UNSET}\"}}}"),
	    "rules[0].webhook.hmac.secret",
	    "environment variable MQLITE_TEST_UNSET is not set");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a\", \"webhook\": "
	    "{\"url\": \"http://h/\", \"headers\": {\"X\": "
	    "\"${MQLITE_TEST_UNSET}\"}}}"), "rules[0].webhook.headers.X",
	    "MQLITE_TEST_UNSET is not set");
	expect_error(R0("{\"name\": \"r\", \"topic\": \"a\", \"webhook\": "
	    "{\"url\": \"http://h/${1x}\"}}"), "rules[0].webhook.url",
	    "bad environment reference");
	set = load(&s, R0("{\"name\": \"r\", \"topic\": \"a\", \"webhook\": "
	    "{\"url\": \"http://h/\", \"hmac\": {\"secret\": "
	    "\"${MQLITE_TEST_SECRET}\"}, \"tls\": {\"ca_file\": \"ca$$.pem\"}},"
	    "\"mqtt\": {\"url\": \"tcp://h:1883\", \"password\": "
	    "\"p-${MQLITE_TEST_SECRET}\", \"username\": \"u\"}}"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	w = rule_webhook(rule_set_rule(set, 0));
	CU_ASSERT_STRING_EQUAL(w->hmac_secret.s, "s3cret");
	CU_ASSERT(w->hmac_secret.secret);
	CU_ASSERT_STRING_EQUAL(w->tls_ca_file.s, "ca$.pem");
	CU_ASSERT_FALSE(w->tls_ca_file.secret);
	mq = rule_mqtt(rule_set_rule(set, 0));
	CU_ASSERT_STRING_EQUAL(mq->password.s, "p-s3cret");
	CU_ASSERT(mq->password.secret);
	CU_ASSERT_FALSE(mq->username.secret);
	rule_set_unref(&set);
}

static void
test_webhook_settings(void)
{
	struct rule_set			*set;
	struct seen			 s;
	const struct rule_webhook	*w;

#define WH(x) R0("{\"name\": \"r\", \"topic\": \"a\", \"webhook\": {" x "}}")
	set = load(&s, WH("\"url\": \"http://h/\""));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	w = rule_webhook(rule_set_rule(set, 0));
	CU_ASSERT_STRING_EQUAL(w->method, "POST");
	CU_ASSERT_EQUAL(w->timeout_ms, 10000);
	CU_ASSERT(w->ordered);
	CU_ASSERT_EQUAL(w->max_in_flight, 8);
	CU_ASSERT_FALSE(w->batch);
	CU_ASSERT_EQUAL(w->retry_base_ms, 1000);
	CU_ASSERT_EQUAL(w->retry_cap_ms, 300000);
	CU_ASSERT_EQUAL(w->retry_max_attempts, 0);
	CU_ASSERT_EQUAL(w->retry_max_age_ms, 0);
	CU_ASSERT_PTR_NULL(w->hmac_secret.s);
	rule_set_unref(&set);

	set = load(&s, WH("\"url\": \"https://h/{topic}\", \"method\": "
	    "\"PUT\", \"timeout_ms\": 500, \"ordered\": false, "
	    "\"max_in_flight\": 4, \"batch\": {\"max_messages\": 10, "
	    "\"max_delay_ms\": 50, \"format\": \"ndjson\"}, \"retry\": "
	    "{\"base_ms\": 10, \"cap_ms\": 20, \"max_attempts\": 3, "
	    "\"max_age\": \"1h\"}, \"rate_limit_per_s\": 2.5, \"tls\": "
	    "{\"ca_file\": \"/ca.pem\", \"cert\": \"c.pem\", \"key\": "
	    "\"k.pem\", \"insecure\": true}, \"body\": [\"{qos}\", 1, "
	    "{\"k\": \"{topic}\"}]"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	w = rule_webhook(rule_set_rule(set, 0));
	CU_ASSERT_STRING_EQUAL(w->method, "PUT");
	CU_ASSERT_EQUAL(w->timeout_ms, 500);
	CU_ASSERT_FALSE(w->ordered);
	CU_ASSERT_EQUAL(w->max_in_flight, 4);
	CU_ASSERT(w->batch);
	CU_ASSERT_EQUAL(w->batch_max_messages, 10);
	CU_ASSERT_EQUAL(w->batch_max_delay_ms, 50);
	CU_ASSERT_EQUAL(w->batch_format, RULE_BATCH_NDJSON);
	CU_ASSERT_EQUAL(w->retry_max_attempts, 3);
	CU_ASSERT_EQUAL(w->retry_max_age_ms, 3600000);
	CU_ASSERT_DOUBLE_EQUAL(w->rate_limit_per_s, 2.5, 1e-9);
	CU_ASSERT_STRING_EQUAL(w->tls_ca_file.s, "/ca.pem");
	CU_ASSERT_STRING_EQUAL(w->tls_cert.s, "c.pem");
	CU_ASSERT(w->tls_insecure);
	rule_set_unref(&set);

	expect_error(WH("\"url\": \"{topic}\""), "rules[0].webhook.url",
	    "must start with http");
	expect_error(WH("\"method\": \"GET\""), "rules[0].webhook",
	    "missing \"url\"");
	expect_error(WH("\"url\": \"http://h\", \"method\": \"FETCH\""),
	    "rules[0].webhook.method", "expected one of");
	expect_error(WH("\"url\": \"http://h\", \"timeout_ms\": 0"),
	    "rules[0].webhook.timeout_ms", "between 1 and");
	expect_error(WH("\"url\": \"http://h\", \"timeout_ms\": 1.5"),
	    "rules[0].webhook.timeout_ms", "expected an integer");
	expect_error(WH("\"url\": \"http://h\", \"ordered\": 1"),
	    "rules[0].webhook.ordered", "true or false");
	expect_error(WH("\"url\": \"http://h\", \"batch\": {\"format\": "
	    "\"csv\"}"), "rules[0].webhook.batch.format", "ndjson");
	expect_error(WH("\"url\": \"http://h\", \"retry\": {\"base_ms\": 10, "
	    "\"cap_ms\": 5}"), "rules[0].webhook.retry.cap_ms", "base_ms");
	expect_error(WH("\"url\": \"http://h\", \"tls\": {\"cert\": \"c\"}"),
	    "rules[0].webhook.tls", "go together");
	expect_error(WH("\"url\": \"http://h\", \"headers\": {\"Bad Name\": "
	    "\"x\"}"), "rules[0].webhook.headers.Bad Name", "header name");
	expect_error(WH("\"url\": \"http://h\", \"headers\": {\"X\": "
	    "\"a\\r\\nb\"}"), "rules[0].webhook.headers.X", "CR, LF");
	expect_error(WH("\"url\": \"http://h\", \"headers\": {\"X\": \"a\", "
	    "\"x\": \"b\"}"), "rules[0].webhook.headers.x", "duplicate");
	expect_error(WH("\"url\": \"http://h\", \"body\": 5"),
	    "rules[0].webhook.body", "expected a template string or");
	expect_error(WH("\"url\": \"http://h\", \"body\": {\"a\": [1, "
	    "\"{nope}\"]}"), "rules[0].webhook.body.a[1]",
	    "unknown placeholder {nope}");
	expect_error(WH("\"url\": \"http://h\", \"hmac\": {}"),
	    "rules[0].webhook.hmac", "missing \"secret\"");
	expect_error(WH("\"url\": \"http://h\", \"rate_limit_per_s\": -1"),
	    "rules[0].webhook.rate_limit_per_s", "expected a number");
	expect_error(WH("\"url\": \"http://h\", \"retries\": 3"),
	    "rules[0].webhook.retries", "unknown key");
#undef WH
}

static void
test_mqtt_settings(void)
{
	struct rule_set		*set;
	struct seen		 s;
	const struct rule_mqtt	*mq;

#define MQ(x) R0("{\"name\": \"r\", \"topic\": \"a\", \"mqtt\": {" x "}}")
	set = load(&s, MQ("\"url\": \"tcp://h:1883\""));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	mq = rule_mqtt(rule_set_rule(set, 0));
	CU_ASSERT_STRING_EQUAL(mq->urls[0].s, "tcp://h:1883");
	CU_ASSERT_EQUAL(mq->qos, 0);
	CU_ASSERT_FALSE(mq->retain);
	CU_ASSERT_PTR_NULL(mq->client_id.s);
	CU_ASSERT_PTR_NOT_NULL(mq->topic);
	CU_ASSERT_PTR_NULL(mq->payload);
	CU_ASSERT_EQUAL(mq->nurls, 1);
	CU_ASSERT_EQUAL(mq->keepalive, 60);
	CU_ASSERT_EQUAL(mq->max_in_flight, 32);
	rule_set_unref(&set);
	expect_error(MQ("\"url\": \"http://h\""), "rules[0].mqtt.url",
	    "tcp://");
	expect_error(MQ("\"url\": \"tcp://h\", \"qos\": 3"),
	    "rules[0].mqtt.qos", "between 0 and 2");
	expect_error(MQ("\"url\": \"tcp://h\", \"topic\": \"a/#\""),
	    "rules[0].mqtt.topic", "'+' or '#'");
	expect_error(MQ("\"topic\": \"a\""), "rules[0].mqtt",
	    "missing \"url\"");
	expect_error(MQ("\"url\": \"tcp://h\", \"keepalive\": 3"),
	    "rules[0].mqtt.keepalive", "between 5 and 65535");
	expect_error(MQ("\"url\": \"tcp://h\", \"max_in_flight\": 0"),
	    "rules[0].mqtt.max_in_flight", "between 1 and 65535");
	expect_error(MQ("\"url\": \"tcp://h\", \"urls\": [\"x\"]"),
	    "rules[0].mqtt.urls[0]", "tcp://");
	expect_error(MQ("\"url\": \"tcp://h\", \"urls\": []"),
	    "rules[0].mqtt.urls", "an array of 1 to 16");
	expect_error(MQ("\"url\": \"tcp://h\", \"tls\": {\"insecure\": "
	    "true}"), "rules[0].mqtt.tls", "ssl://");
	expect_error(MQ("\"url\": \"ssl://h\", \"tls\": {\"key\": \"k\"}"),
	    "rules[0].mqtt.tls", "go together");
	expect_error(MQ("\"url\": \"ssl://h\", \"tls\": {\"pem\": 1}"),
	    "rules[0].mqtt.tls.pem", "unknown key");
	expect_error(MQ("\"url\": \"tcp://h\", \"password\": \"p\""),
	    "rules[0].mqtt.password", "username");
	expect_error(MQ("\"url\": \"tcp://h\", \"client_id\": \"\""),
	    "rules[0].mqtt.client_id", "non-empty");
	expect_error(MQ("\"url\": \"tcp://h\", \"payload\": 5"),
	    "rules[0].mqtt.payload", "template string");
	expect_error(MQ("\"url\": \"tcp://h\", \"bogus\": 5"),
	    "rules[0].mqtt.bogus", "unknown key");
	set = load(&s, MQ("\"url\": \"mqtts://h:8883\", \"urls\": "
	    "[\"ssl://b:8883\"], \"payload\": \"{payload.v}\", \"qos\": 2, "
	    "\"tls\": {\"ca_file\": \"/ca.pem\"}, \"keepalive\": 30, "
	    "\"max_in_flight\": 5, \"username\": \"u\", \"password\": "
	    "\"p\""));
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	mq = rule_mqtt(rule_set_rule(set, 0));
	CU_ASSERT_EQUAL(mq->nurls, 2);
	CU_ASSERT_STRING_EQUAL(mq->urls[1].s, "ssl://b:8883");
	CU_ASSERT_PTR_NOT_NULL(mq->payload);
	CU_ASSERT_EQUAL(mq->keepalive, 30);
	CU_ASSERT_EQUAL(mq->max_in_flight, 5);
	CU_ASSERT_STRING_EQUAL(mq->tls_ca_file.s, "/ca.pem");
	rule_set_unref(&set);
#undef MQ
}

static void
test_missing_file(void)
{
	struct rule_set	*set;
	struct seen	 s;
	int		 rc;

	memset(&s, 0, sizeof s);
	set = rules_load_file("/nonexistent/rules.json", seen_collect, &s, &rc);
	CU_ASSERT_PTR_NULL(set);
	CU_ASSERT_EQUAL(rc, GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_STRING_EQUAL(s.file, "/nonexistent/rules.json");
	CU_ASSERT(seen_at(&s, "", "cannot open") >= 0);
}

/* Rollups: parsed fields, defaults, the time index added; no leak on OOM. */
static void
test_rollups(void)
{
	struct rule_set			*set;
	struct seen			 s;
	const struct rule_sqlite	*sq;
	const struct rule_rollup	*ro;
	size_t				 before = gw_mem_used();
	long				 n;
	int				 rc;

	set = load(&s, R0("{\"name\": \"r\", \"topic\": \"a/{d}\", "
	    "\"sqlite\": {\"table\": \"t\", \"columns\": {\"ts\": "
	    "\"{received_ms}\", \"d\": \"{d}\", \"v\": \"{payload}\", "
	    "\"x\": \"{payload.x}\"}, \"types\": {\"x\": \"REAL\"}, "
	    "\"indexes\": [[\"d\", \"ts\"]], "
	    "\"retention\": {\"max_age\": \"7d\", \"time_column\": \"ts\"}, "
	    "\"rollups\": [{\"table\": \"t_1h\", \"every\": \"1h\", "
	    "\"group_by\": [\"D\"], \"columns\": {\"a\": \"AVG( v )\", "
	    "\"n\": \"count(*)\", \"l\": \"last (x)\", \"c\": "
	    "\"count(v)\"}, \"retention\": {\"max_age\": \"730d\"}}, "
	    "{\"table\": \"t_1s\", \"every\": 1000, \"grace\": 0, "
	    "\"time_column\": \"ts\", \"columns\": {\"f\": \"first(d)\"}}]}}"));
	if (set == NULL)
		dump(&s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	sq = rule_sqlite(rule_set_rule(set, 0));
	CU_ASSERT_EQUAL_FATAL(sq->nrollups, 2);
	ro = &sq->rollups[0];
	CU_ASSERT_STRING_EQUAL(ro->table, "t_1h");
	CU_ASSERT_EQUAL(ro->every_ms, 3600000);
	CU_ASSERT_EQUAL(ro->grace_ms, 60000);	/* every / 2, capped */
	CU_ASSERT_EQUAL(ro->max_age_ms, 730ULL * 86400000);
	CU_ASSERT_STRING_EQUAL(ro->time_column, "ts");	/* retention's */
	CU_ASSERT_EQUAL_FATAL(ro->ngroup, 1);
	CU_ASSERT_STRING_EQUAL(ro->group_by[0]->name, "d");
	CU_ASSERT_EQUAL_FATAL(ro->ncols, 4);
	CU_ASSERT_EQUAL(ro->cols[0].agg, RULE_AGG_AVG);
	CU_ASSERT_STRING_EQUAL(ro->cols[0].src, "v");
	CU_ASSERT_STRING_EQUAL(ro->cols[0].decl, "REAL");
	CU_ASSERT_EQUAL(ro->cols[1].agg, RULE_AGG_COUNT);
	CU_ASSERT_PTR_NULL(ro->cols[1].src);
	CU_ASSERT_STRING_EQUAL(ro->cols[1].decl, "INTEGER");
	CU_ASSERT_EQUAL(ro->cols[2].agg, RULE_AGG_LAST);
	CU_ASSERT_STRING_EQUAL(ro->cols[2].decl, "REAL");
	CU_ASSERT_STRING_EQUAL(ro->cols[3].decl, "INTEGER");
	ro = &sq->rollups[1];
	CU_ASSERT_EQUAL(ro->every_ms, 1000);
	CU_ASSERT_EQUAL(ro->grace_ms, 0);
	CU_ASSERT_EQUAL(ro->ngroup, 0);
	CU_ASSERT_EQUAL(ro->max_age_ms, 0);
	CU_ASSERT_STRING_EQUAL(ro->cols[0].decl, "TEXT");
	/* (d, ts) does not start with ts: the time index is added, once. */
	CU_ASSERT_EQUAL_FATAL(sq->nidx, 2);
	CU_ASSERT_STRING_EQUAL(sq->idx[1].name, "t_ts_idx");
	CU_ASSERT_STRING_EQUAL(sq->idx[1].cols[0], "ts");
	rule_set_unref(&set);
	CU_ASSERT_EQUAL(gw_mem_used(), before);

	for (n = 0; n < 100000; n++) {
		gw_mem_fail_after(n);
		set = rules_load_file(src_path(
		    "rules/examples/rollups.json"), NULL, NULL, &rc);
		gw_mem_fail_after(-1);
		if (set != NULL) {
			rule_set_unref(&set);
			break;
		}
		CU_ASSERT_EQUAL_FATAL(rc, GW_ENOMEM);
		CU_ASSERT_EQUAL_FATAL(gw_mem_used(), before);
	}
	CU_ASSERT(n > 10);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

/* Every allocation failure is reported (or survived) and leaks nothing. */
static void
test_out_of_memory(void)
{
	struct rule_set	*set;
	size_t		 before = gw_mem_used();
	long		 n;
	int		 rc;

	setenv("HOOK_TOKEN", "t0ken", 1);
	for (n = 0; n < 100000; n++) {
		gw_mem_fail_after(n);
		set = rules_load_file(src_path(
		    "rules/examples/webhook.json"), NULL, NULL, &rc);
		gw_mem_fail_after(-1);
		if (set != NULL) {
			rule_set_unref(&set);
			break;
		}
		CU_ASSERT_EQUAL_FATAL(rc, GW_ENOMEM);
		CU_ASSERT_EQUAL_FATAL(gw_mem_used(), before);
	}
	CU_ASSERT(n > 10);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static const struct cutest_case tests[] = {
	{ "examples load", test_examples_load },
	{ "default.json = built-in", test_default_equals_file },
	{ "empty and bare array", test_empty_and_bare_array },
	{ "unknown placeholder", test_unknown_placeholder },
	{ "all errors reported", test_all_errors_reported },
	{ "top level", test_top_level },
	{ "topic patterns", test_topic_patterns },
	{ "tables and columns", test_tables_and_columns },
	{ "indexes and retention", test_indexes_retention },
	{ "environment", test_env },
	{ "webhook settings", test_webhook_settings },
	{ "mqtt settings", test_mqtt_settings },
	{ "rollups", test_rollups },
	{ "missing file", test_missing_file },
	{ "out of memory", test_out_of_memory },
};

int
main(void)
{
	return cutest_main("rules_load", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
