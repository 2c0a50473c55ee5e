/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/config.c: defaults, every config key, each kind of
 * error (with its JSON path, all of them reported), relative paths, the
 * size and duration parsers and the command line. Config files are written
 * into a fresh mkdtemp() folder removed at the end.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "config.h"
#include "cfgtest.h"
#include "cutest.h"
#include "mem.h"
#include "seen.h"
#include "units.h"

/* Returns the index of the first error at path, or -1. */
static int
seen_at(const struct seen *s, const char *path)
{
	int	i;

	for (i = 0; i < s->n && i < SEEN_MAX; i++) {
		if (strcmp(s->path[i], path) == 0)
			return i;
	}
	return -1;
}

/* One error at path whose reason has needle (cfgtest.h). */
static void
expect_one(const char *text, const char *path, const char *needle)
{
	cfgtest_expect_one(text, path, needle);
}

static void
test_defaults(void)
{
	struct gw_config	cfg;

	CU_ASSERT_EQUAL_FATAL(config_init(&cfg), 0);
	CU_ASSERT_EQUAL(cfg.nlisteners, 1);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "0.0.0.0");
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1883);
	CU_ASSERT_FALSE(cfg.listeners[0].tls);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, "telemetry.db");
	CU_ASSERT_TRUE(cfg.durability_full);
	CU_ASSERT_EQUAL(cfg.db_max_bytes, 0);
	CU_ASSERT_EQUAL(cfg.db_retention_max_age_ms, 0);
	CU_ASSERT_EQUAL(cfg.commit_max_items, 1024);
	CU_ASSERT_EQUAL(cfg.commit_max_ms, 10);
	CU_ASSERT_EQUAL(cfg.qos0_commit_ms, 1000);
	CU_ASSERT_EQUAL(cfg.ack_window_ms, 0);
	CU_ASSERT_EQUAL(cfg.store_queue_items, 8192);
	CU_ASSERT_EQUAL(cfg.outbox_max_bytes, 256ULL * 1024 * 1024);
	CU_ASSERT_EQUAL(cfg.outbox_overflow, CONFIG_OVERFLOW_DROP_OLDEST);
	CU_ASSERT_TRUE(cfg.allow_anonymous);
	CU_ASSERT_PTR_NULL(cfg.password_file);
	CU_ASSERT_PTR_NULL(cfg.acl_file);
	CU_ASSERT_EQUAL(cfg.max_connections, 10000);
	CU_ASSERT_EQUAL(cfg.max_packet_bytes, 1048576);
	CU_ASSERT_EQUAL(cfg.max_inflight, 20);
	CU_ASSERT_EQUAL(cfg.topic_alias_maximum, 10);
	CU_ASSERT_EQUAL(cfg.max_keepalive_ms, 0);
	CU_ASSERT_EQUAL(cfg.max_queued, 1000);
	CU_ASSERT_EQUAL(cfg.max_sessions, 100000);
	CU_ASSERT_EQUAL(cfg.connect_timeout_ms, 10000);
	CU_ASSERT_PTR_NULL(cfg.rules_path);
	CU_ASSERT_PTR_NULL(cfg.rules_inline);
	CU_ASSERT_EQUAL(cfg.nsources, 0);
	CU_ASSERT_FALSE(cfg.metrics_enabled);
	CU_ASSERT_STRING_EQUAL(cfg.log_level, "info");
	CU_ASSERT_FALSE(cfg.log_syslog);
	CU_ASSERT_FALSE(cfg.check_only);
	CU_ASSERT_EQUAL(cfg.verbose, 0);
	CU_ASSERT_EQUAL(cfg.cli_port, -1);
	CU_ASSERT_PTR_NULL(cfg.cli_db_path);
	CU_ASSERT_PTR_NULL(cfg.cli_rules_path);
	CU_ASSERT_PTR_NULL(cfg.config_path);
	config_free(&cfg);
	config_free(&cfg);	/* a freed config frees again harmlessly */
}

static const char full_config[] =
"{\n"
"  \"listeners\": [ { \"port\": 1884, \"bind\": \"127.0.0.1\" },\n"
"                 { \"port\": 0 } ],\n"
"  \"database\": { \"path\": \"data/t.db\", \"durability\": \"normal\",\n"
"                \"max_bytes\": \"2GB\", \"retention\": { \"max_age\": "
"\"30d\" },\n"
"                \"commit_max_items\": 500, \"commit_max_ms\": \"20ms\",\n"
"                \"queue_items\": 4096 },\n"
"  \"outbox\":   { \"max_bytes\": \"64MB\", \"overflow\": \"reject\" },\n"
"  \"auth\":     { \"allow_anonymous\": true, \"password_file\": "
"\"passwd\",\n"
"                \"acl_file\": \"/etc/mqlite/acl.json\" },\n"
"  \"limits\":   { \"max_connections\": 500, \"max_packet_bytes\": "
"\"64KB\",\n"
"                \"max_inflight\": 10, \"max_queued\": 0,\n"
"                \"connect_timeout\": \"5s\" },\n"
"  \"sources\":  [ { \"name\": \"a\", \"url\": \"tcp://127.0.0.1:1883\", "
"\"topics\": [\"site/#\"] },\n"
"                { \"name\": \"b\", \"url\": \"tcp://10.0.0.1:1883\", "
"\"topics\": [\"#\"] } ],\n"
"  \"rules\": \"rules/site.json\",\n"
"  \"metrics\":  { \"bind\": \"0.0.0.0\", \"port\": 9100 },\n"
"  \"log\":      { \"level\": \"debug\", \"syslog\": true }\n"
"}\n";

static void
test_full_file(void)
{
	struct gw_config	cfg;
	struct seen		s;
	char			want[256];

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, full_config), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	if (s.n > 0)
		fprintf(stderr, "\n  %s: %s\n", s.path[0], s.msg[0]);
	CU_ASSERT_STRING_EQUAL(cfg.config_path, cfgtest_file);
	CU_ASSERT_EQUAL(cfg.nlisteners, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1884);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "127.0.0.1");
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 0);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].bind, "0.0.0.0");
	snprintf(want, sizeof want, "%s/data/t.db", cfgtest_dir);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, want);
	CU_ASSERT_FALSE(cfg.durability_full);
	CU_ASSERT_EQUAL(cfg.db_max_bytes, 2ULL << 30);
	CU_ASSERT_EQUAL(cfg.db_retention_max_age_ms, 30ULL * 86400000);
	CU_ASSERT_EQUAL(cfg.commit_max_items, 500);
	CU_ASSERT_EQUAL(cfg.commit_max_ms, 20);
	CU_ASSERT_EQUAL(cfg.store_queue_items, 4096);
	CU_ASSERT_EQUAL(cfg.outbox_max_bytes, 64ULL << 20);
	CU_ASSERT_EQUAL(cfg.outbox_overflow, CONFIG_OVERFLOW_REJECT);
	CU_ASSERT_TRUE(cfg.allow_anonymous);
	snprintf(want, sizeof want, "%s/passwd", cfgtest_dir);
	CU_ASSERT_STRING_EQUAL(cfg.password_file, want);
	CU_ASSERT_STRING_EQUAL(cfg.acl_file, "/etc/mqlite/acl.json");
	CU_ASSERT_EQUAL(cfg.max_connections, 500);
	CU_ASSERT_EQUAL(cfg.max_packet_bytes, 65536);
	CU_ASSERT_EQUAL(cfg.max_inflight, 10);
	CU_ASSERT_EQUAL(cfg.max_queued, 0);
	CU_ASSERT_EQUAL(cfg.connect_timeout_ms, 5000);
	CU_ASSERT_EQUAL(cfg.nsources, 2);
	CU_ASSERT_PTR_NOT_NULL(cfg.sources_json);
	snprintf(want, sizeof want, "%s/rules/site.json", cfgtest_dir);
	CU_ASSERT_STRING_EQUAL(cfg.rules_path, want);
	CU_ASSERT_PTR_NULL(cfg.rules_inline);
	CU_ASSERT_TRUE(cfg.metrics_enabled);
	CU_ASSERT_STRING_EQUAL(cfg.metrics_bind, "0.0.0.0");
	CU_ASSERT_EQUAL(cfg.metrics_port, 9100);
	CU_ASSERT_STRING_EQUAL(cfg.log_level, "debug");
	CU_ASSERT_TRUE(cfg.log_syslog);
	config_free(&cfg);
}

static void
test_empty_object_keeps_defaults(void)
{
	struct gw_config	cfg;
	struct seen		s;

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{}"), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	CU_ASSERT_EQUAL(cfg.nlisteners, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1883);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, "telemetry.db");
	CU_ASSERT_TRUE(cfg.allow_anonymous);
	config_free(&cfg);
	/* The MQTT 5.0 keys: a count and a duration. */
	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"limits\": "
	    "{\"topic_alias_maximum\": 0, \"max_keepalive\": \"90s\"}}"), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	CU_ASSERT_EQUAL(cfg.topic_alias_maximum, 0);
	CU_ASSERT_EQUAL(cfg.max_keepalive_ms, 90000);
	config_free(&cfg);
}

static void
test_relative_paths(void)
{
	struct gw_config	cfg;
	struct seen		s;
	char			rel[160], want[256];
	char			cwd[256];

	/* A file named without a folder: paths stay relative to cwd. */
	CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
	CU_ASSERT_FATAL(chdir(cfgtest_dir) == 0);
	memset(&s, 0, sizeof s);
	CU_ASSERT_FATAL(config_init(&cfg) == 0);
	cfgtest_write("plain.json", "{\"database\": {\"path\": \"x.db\"}, "
	    "\"rules\": \"r.json\"}");
	CU_ASSERT_EQUAL(config_load_file(&cfg, "plain.json", seen_collect,
	    &s), 0);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, "x.db");
	CU_ASSERT_STRING_EQUAL(cfg.rules_path, "r.json");
	config_free(&cfg);
	CU_ASSERT_FATAL(chdir(cwd) == 0);

	/* A file in a folder: relative paths join that folder. */
	snprintf(rel, sizeof rel, "%s/sub", cfgtest_dir);
	mkdir(rel, 0700);
	snprintf(rel, sizeof rel, "%s/sub/c.json", cfgtest_dir);
	cfgtest_write(rel, "{\"database\": {\"path\": \"../d.db\"}, "
	    "\"auth\": {\"acl_file\": \"acl.json\"}}");
	memset(&s, 0, sizeof s);
	CU_ASSERT_FATAL(config_init(&cfg) == 0);
	CU_ASSERT_EQUAL(config_load_file(&cfg, rel, seen_collect, &s), 0);
	snprintf(want, sizeof want, "%s/sub/../d.db", cfgtest_dir);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, want);
	snprintf(want, sizeof want, "%s/sub/acl.json", cfgtest_dir);
	CU_ASSERT_STRING_EQUAL(cfg.acl_file, want);
	config_free(&cfg);
}

static void
test_unknown_keys(void)
{
	expect_one("{\"limits\": {\"max_inflght\": 5}}",
	    "limits.max_inflght", "unknown key");
	expect_one("{\"limitz\": {}}", "limitz", "unknown key");
	expect_one("{\"database\": {\"retention\": {\"max_rows\": 5}}}",
	    "database.retention.max_rows", "unknown key");
	expect_one("{\"listeners\": [{\"port\": 1}, {\"port\": 2, "
	    "\"adress\": \"x\"}]}", "listeners[1].adress", "unknown key");
	expect_one("{\"database.path\": \"x\"}", "database.path",
	    "unknown key");
	expect_one("{\"log\": {\"level\": \"info\", \"level\": \"warn\"}}",
	    "log.level", "duplicate key");
}

static void
test_wrong_types(void)
{
	expect_one("{\"limits\": {\"max_inflight\": \"ten\"}}",
	    "limits.max_inflight", "expected an integer, got a string");
	expect_one("{\"limits\": {\"max_inflight\": 2.5}}",
	    "limits.max_inflight", "expected an integer");
	expect_one("{\"database\": {\"path\": 5}}", "database.path",
	    "expected a string, got a number");
	expect_one("{\"log\": {\"syslog\": \"yes\"}}", "log.syslog",
	    "expected true or false");
	expect_one("{\"database\": 1}", "database",
	    "expected an object, got a number");
	expect_one("{\"listeners\": {\"port\": 1}}", "listeners",
	    "expected an array");
	expect_one("{\"listeners\": [5]}", "listeners[0]",
	    "expected a listener object");
	expect_one("{\"sources\": {}}", "sources", "expected an array");
	expect_one("{\"sources\": [{}, 3]}", "sources[1]",
	    "expected an object");
	expect_one("{\"rules\": 7}", "rules",
	    "expected a rules file name or an array");
	expect_one("{\"database\": {\"max_bytes\": true}}",
	    "database.max_bytes", "expected a size");
	expect_one("{\"database\": {\"path\": \"\"}}", "database.path",
	    "empty");
	expect_one("[1, 2]", "", "expected a JSON object at the top level");
}

static void
test_out_of_range(void)
{
	expect_one("{\"limits\": {\"max_inflight\": 0}}",
	    "limits.max_inflight", "must be between 1 and 65535");
	expect_one("{\"limits\": {\"max_inflight\": 70000}}",
	    "limits.max_inflight", "out of range");
	expect_one("{\"database\": {\"commit_max_items\": 100001}}",
	    "database.commit_max_items", "must be between 1 and 100000");
	expect_one("{\"database\": {\"commit_max_ms\": \"11s\"}}",
	    "database.commit_max_ms", "out of range");
	expect_one("{\"database\": {\"queue_items\": 15}}",
	    "database.queue_items", "between 16 and 10000000");
	expect_one("{\"listeners\": [{\"port\": 65536}]}",
	    "listeners[0].port", "between 0 and 65535");
	expect_one("{\"listeners\": [{\"port\": -1}]}",
	    "listeners[0].port", "out of range");
	expect_one("{\"limits\": {\"max_packet_bytes\": \"1GB\"}}",
	    "limits.max_packet_bytes", "256MB");
	expect_one("{\"limits\": {\"max_queued\": 1e30}}",
	    "limits.max_queued", "out of range");
	expect_one("{\"limits\": {\"topic_alias_maximum\": 65536}}",
	    "limits.topic_alias_maximum", "out of range");
	expect_one("{\"limits\": {\"max_keepalive\": \"19h\"}}",
	    "limits.max_keepalive", "out of range");
	expect_one("{\"listeners\": []}", "listeners", "1 to 16");
	expect_one("{\"metrics\": {\"port\": 99999}}", "metrics.port",
	    "out of range");
}

static void
test_bad_sizes_durations_enums(void)
{
	expect_one("{\"database\": {\"max_bytes\": \"12XB\"}}",
	    "database.max_bytes", "bad size \"12XB\"");
	expect_one("{\"database\": {\"max_bytes\": \"-5MB\"}}",
	    "database.max_bytes", "bad size");
	expect_one("{\"database\": {\"max_bytes\": -1}}",
	    "database.max_bytes", "bad size");
	expect_one("{\"database\": {\"max_bytes\": "
	    "\"99999999999999999999\"}}", "database.max_bytes", "too large");
	expect_one("{\"limits\": {\"connect_timeout\": \"10y\"}}",
	    "limits.connect_timeout", "bad duration \"10y\"");
	expect_one("{\"limits\": {\"connect_timeout\": \"1.5s\"}}",
	    "limits.connect_timeout", "bad duration");
	expect_one("{\"database\": {\"durability\": \"sometimes\"}}",
	    "database.durability", "expected one of \"normal\", \"full\"");
	expect_one("{\"outbox\": {\"overflow\": \"drop\"}}",
	    "outbox.overflow", "\"drop_oldest\", \"reject\"");
	expect_one("{\"log\": {\"level\": \"loud\"}}", "log.level",
	    "\"debug\"");
}

static void
test_tls_listener(void)
{
	struct gw_config	 cfg;
	struct seen		 s;
	char			 want[512];

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"listeners\": [{\"port\": "
	    "8883, \"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\", "
	    "\"ca\": \"ca.crt\", \"require_client_cert\": true, "
	    "\"use_identity_as_username\": true}}, {\"port\": 1000}]}"), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	CU_ASSERT_TRUE(cfg.listeners[0].tls);
	CU_ASSERT_FALSE(cfg.listeners[1].tls);
	snprintf(want, sizeof want, "%s/s.key", cfgtest_dir);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].tls_key, want);
	CU_ASSERT_TRUE(cfg.listeners[0].tls_require_client_cert);
	CU_ASSERT_TRUE(cfg.listeners[0].tls_use_identity);
	/* -p is the first plain listener, not the TLS one. */
	cfg.cli_port = 1999;
	config_apply_cli(&cfg);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 8883);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 1999);
	CU_ASSERT_EQUAL(cfg.nlisteners, 2);
	config_free(&cfg);

	/* Only TLS listeners: -p adds a plain one. */
	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"listeners\": [{\"port\": "
	    "8883, \"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}}]}"),
	    0);
	cfg.cli_port = 1999;
	config_apply_cli(&cfg);
	CU_ASSERT_EQUAL(cfg.nlisteners, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 8883);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 1999);
	CU_ASSERT_FALSE(cfg.listeners[1].tls);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].bind, "0.0.0.0");
	config_free(&cfg);

	expect_one("{\"listeners\": [{\"port\": 8883, \"tls\": {\"key\": "
	    "\"s.key\"}}]}", "listeners[0].tls.cert", "required");
	expect_one("{\"listeners\": [{\"port\": 8883, \"tls\": {\"cert\": "
	    "\"s.crt\"}}]}", "listeners[0].tls.key", "required");
	expect_one("{\"listeners\": [{\"port\": 8883, \"tls\": {\"cert\": "
	    "\"s.crt\", \"key\": \"s.key\", \"require_client_cert\": "
	    "true}}]}", "listeners[0].tls.ca", "require_client_cert");
	expect_one("{\"listeners\": [{\"port\": 8883, \"tls\": {\"cert\": "
	    "\"s.crt\", \"key\": \"s.key\", \"use_identity_as_username\": "
	    "true}}]}", "listeners[0].tls.use_identity_as_username",
	    "require_client_cert");
	expect_one("{\"listeners\": [{\"port\": 8883, \"tls\": {\"cert\": "
	    "\"s.crt\", \"key\": \"s.key\", \"ciphers\": \"x\"}}]}",
	    "listeners[0].tls.ciphers", "unknown");
	expect_one("{\"listeners\": [{\"port\": 1883}, {\"bind\": \"::\"}]}",
	    "listeners[1].port", "required");
}

static void
test_syntax_error_line(void)
{
	struct gw_config	cfg;
	struct seen		s;

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s,
	    "{\n  \"log\": {\n    \"level\": \"info\"\n    \"syslog\": true\n"
	    "  }\n}\n"), GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_STRING_EQUAL(s.path[0], "");
	CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[0], "JSON syntax error"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[0], "line 4"));
	config_free(&cfg);

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"a\": 1} x"), GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[0], "line 1"));
	config_free(&cfg);

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, ""), GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 1);
	config_free(&cfg);
}

static void
test_all_errors_reported(void)
{
	struct gw_config	cfg;
	struct seen		s;

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s,
	    "{ \"limits\": { \"max_inflght\": 1, \"max_queued\": -3 },\n"
	    "  \"database\": { \"durability\": \"fast\", \"max_bytes\": "
	    "\"1TB\" },\n"
	    "  \"log\": { \"level\": 3 },\n"
	    "  \"bogus\": true,\n"
	    "  \"listeners\": [ { \"port\": \"x\" } ] }"), GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 7);
	CU_ASSERT(seen_at(&s, "limits.max_inflght") >= 0);
	CU_ASSERT(seen_at(&s, "limits.max_queued") >= 0);
	CU_ASSERT(seen_at(&s, "database.durability") >= 0);
	CU_ASSERT(seen_at(&s, "database.max_bytes") >= 0);
	CU_ASSERT(seen_at(&s, "log.level") >= 0);
	CU_ASSERT(seen_at(&s, "bogus") >= 0);
	CU_ASSERT(seen_at(&s, "listeners[0].port") >= 0);
	config_free(&cfg);
}

static void
test_missing_file(void)
{
	struct gw_config	cfg;
	struct seen		s;
	char			path[160];

	memset(&s, 0, sizeof s);
	CU_ASSERT_FATAL(config_init(&cfg) == 0);
	snprintf(path, sizeof path, "%s/nope.json", cfgtest_dir);
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, seen_collect, &s),
	    GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_STRING_EQUAL(s.path[0], "");
	CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[0], "cannot open"));
	/* A NULL callback is allowed. */
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, NULL, NULL), GW_ECONFIG);
	config_free(&cfg);
}

static void
test_rules_and_auth(void)
{
	struct gw_config	cfg;
	struct seen		s;

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"rules\": [ "
	    "{\"name\": \"a\", \"topic\": \"#\"} ]}"), 0);
	CU_ASSERT_PTR_NULL(cfg.rules_path);
	CU_ASSERT_STRING_EQUAL(cfg.rules_inline,
	    "[{\"name\":\"a\",\"topic\":\"#\"}]");
	config_free(&cfg);

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"rules\": []}"), 0);
	CU_ASSERT_STRING_EQUAL(cfg.rules_inline, "[]");
	config_free(&cfg);

	expect_one("{\"rules\": [1]}", "rules[0]", "expected an object");

	/* No explicit allow_anonymous: off once a password file is set. */
	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"auth\": {\"password_file\": "
	    "\"/p\"}}"), 0);
	CU_ASSERT_FALSE(cfg.allow_anonymous);
	config_free(&cfg);
	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"auth\": {\"password_file\": "
	    "\"/p\", \"allow_anonymous\": true}}"), 0);
	CU_ASSERT_TRUE(cfg.allow_anonymous);
	config_free(&cfg);

	/* Metrics section present: on, with defaults filled in. */
	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, "{\"metrics\": {}}"), 0);
	CU_ASSERT_TRUE(cfg.metrics_enabled);
	CU_ASSERT_STRING_EQUAL(cfg.metrics_bind, "127.0.0.1");
	CU_ASSERT_EQUAL(cfg.metrics_port, 9883);
	config_free(&cfg);
}

static void
test_parse_size(void)
{
	static const struct {
		const char	*s;
		int		 rc;
		uint64_t	 v;
	} t[] = {
		{ "0", 0, 0 },
		{ "512", 0, 512 },
		{ "10B", 0, 10 },
		{ "10b", 0, 10 },
		{ "64KB", 0, 65536 },
		{ "64kb", 0, 65536 },
		{ "1MB", 0, 1048576 },
		{ "1Mb", 0, 1048576 },
		{ "2GB", 0, 2147483648ULL },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", GW_ETOOBIG, 0 },
		{ "17179869184GB", GW_ETOOBIG, 0 },
		{ "", GW_EMALFORMED, 0 },
		{ "-1", GW_EMALFORMED, 0 },
		{ "+1", GW_EMALFORMED, 0 },
		{ " 1", GW_EMALFORMED, 0 },
		{ "1 MB", GW_EMALFORMED, 0 },
		{ "1.5MB", GW_EMALFORMED, 0 },
		{ "MB", GW_EMALFORMED, 0 },
		{ "12XB", GW_EMALFORMED, 0 },
		{ "1TB", GW_EMALFORMED, 0 },
		{ "1MBx", GW_EMALFORMED, 0 },
	};
	uint64_t	v;
	size_t		i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		v = 12345;
		CU_ASSERT_EQUAL(units_parse_size(t[i].s, &v), t[i].rc);
		if (t[i].rc == 0)
			CU_ASSERT_EQUAL(v, t[i].v);
	}
	CU_ASSERT_EQUAL(units_parse_size(NULL, &v), GW_EMALFORMED);
}

static void
test_parse_duration(void)
{
	static const struct {
		const char	*s;
		int		 rc;
		uint64_t	 v;
	} t[] = {
		{ "0", 0, 0 },
		{ "250", 0, 250 },
		{ "250ms", 0, 250 },
		{ "250MS", 0, 250 },
		{ "10s", 0, 10000 },
		{ "5m", 0, 300000 },
		{ "2h", 0, 7200000 },
		{ "30d", 0, 2592000000ULL },
		{ "30D", 0, 2592000000ULL },
		{ "999999999999999999d", GW_ETOOBIG, 0 },
		{ "", GW_EMALFORMED, 0 },
		{ "-5s", GW_EMALFORMED, 0 },
		{ "5 s", GW_EMALFORMED, 0 },
		{ "5sec", GW_EMALFORMED, 0 },
		{ "1.5s", GW_EMALFORMED, 0 },
		{ "s", GW_EMALFORMED, 0 },
		{ "10y", GW_EMALFORMED, 0 },
		{ "5us", GW_EMALFORMED, 0 },
	};
	uint64_t	v;
	size_t		i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		v = 12345;
		CU_ASSERT_EQUAL(units_parse_duration(t[i].s, &v), t[i].rc);
		if (t[i].rc == 0)
			CU_ASSERT_EQUAL(v, t[i].v);
	}
}

/* Runs config_parse_args on a NULL-terminated list of arguments. */
static int
run_args(struct gw_config *cfg, const char *first, ...)
{
	char		*argv[16];
	const char	*a;
	va_list		 ap;
	int		 argc = 0;

	argv[argc++] = (char *)"mqlite";
	va_start(ap, first);
	for (a = first; a != NULL && argc < 15; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return config_parse_args(cfg, argc, argv);
}

static void
test_cli(void)
{
	struct gw_config	cfg;
	struct seen		s;
	char			want[256];

	/* No arguments: nothing changes. */
	CU_ASSERT_FATAL(config_init(&cfg) == 0);
	CU_ASSERT_EQUAL(run_args(&cfg, NULL), 0);
	CU_ASSERT_EQUAL(cfg.cli_port, -1);
	config_apply_cli(&cfg);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1883);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, "telemetry.db");
	CU_ASSERT_STRING_EQUAL(cfg.log_level, "info");
	config_free(&cfg);

	/* -p/-d/-r override what the file says. */
	cfgtest_write(cfgtest_file, "{\"listeners\": [{\"port\": 1000}, "
	    "{\"port\": 2000}], \"database\": {\"path\": \"f.db\"}, "
	    "\"rules\": [{\"name\": \"x\"}]}");
	CU_ASSERT_FATAL(config_init(&cfg) == 0);
	CU_ASSERT_EQUAL(run_args(&cfg, "-c", cfgtest_file, "-p", "1999", "-d",
	    "cli.db", "--rules", "cli-rules.json", "--check", "-v", "-v",
	    NULL), 0);
	CU_ASSERT_STRING_EQUAL(cfg.config_path, cfgtest_file);
	CU_ASSERT_EQUAL(cfg.cli_port, 1999);
	CU_ASSERT_TRUE(cfg.check_only);
	CU_ASSERT_EQUAL(cfg.verbose, 2);
	memset(&s, 0, sizeof s);
	CU_ASSERT_EQUAL(config_load_file(&cfg, cfg.config_path, seen_collect,
	    &s), 0);
	snprintf(want, sizeof want, "%s/f.db", cfgtest_dir);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, want);
	CU_ASSERT_PTR_NOT_NULL(cfg.rules_inline);
	config_apply_cli(&cfg);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1999);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 2000);
	CU_ASSERT_STRING_EQUAL(cfg.db_path, "cli.db");
	CU_ASSERT_STRING_EQUAL(cfg.rules_path, "cli-rules.json");
	CU_ASSERT_PTR_NULL(cfg.rules_inline);
	CU_ASSERT_STRING_EQUAL(cfg.log_level, "debug");
	config_apply_cli(&cfg);	/* idempotent */
	CU_ASSERT_STRING_EQUAL(cfg.db_path, "cli.db");
	config_free(&cfg);

	/* Long forms with '='. */
	CU_ASSERT_FATAL(config_init(&cfg) == 0);
	CU_ASSERT_EQUAL(run_args(&cfg, "--config=a.json", "--port=0",
	    "--database=b.db", "--verbose", NULL), 0);
	CU_ASSERT_STRING_EQUAL(cfg.config_path, "a.json");
	CU_ASSERT_EQUAL(cfg.cli_port, 0);
	CU_ASSERT_STRING_EQUAL(cfg.cli_db_path, "b.db");
	CU_ASSERT_EQUAL(cfg.verbose, 1);
	config_free(&cfg);

	/* Usage errors. */
	CU_ASSERT_FATAL(config_init(&cfg) == 0);
	CU_ASSERT_EQUAL(run_args(&cfg, "-p", "65536", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "-p", "-1", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "-p", "80x", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "-p", "", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "--port", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "--bogus", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "-x", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "passwd", "f", "u", NULL), -1);
	CU_ASSERT_EQUAL(run_args(&cfg, "-d", "", NULL), -1);

	/* --help and --version print and ask the caller to exit 0. */
	CU_ASSERT_EQUAL(run_args(&cfg, "--help", NULL), 1);
	CU_ASSERT_EQUAL(run_args(&cfg, "-h", NULL), 1);
	CU_ASSERT_EQUAL(run_args(&cfg, "--version", NULL), 1);
	CU_ASSERT_EQUAL(run_args(&cfg, "-p", "1", NULL), 0);
	CU_ASSERT_EQUAL(cfg.cli_port, 1);
	config_free(&cfg);
}

static void
test_dump(void)
{
	struct gw_config	cfg;
	struct seen		s;
	FILE			*f;
	char			 buf[8192];
	size_t			 n;

	CU_ASSERT_EQUAL(cfgtest_load(&cfg, &s, full_config), 0);
	f = tmpfile();
	CU_ASSERT_FATAL(f != NULL);
	config_dump(&cfg, f);
	rewind(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "listeners[0].port = 1884\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf,
	    "listeners[1].bind = \"0.0.0.0\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf,
	    "database.durability = \"normal\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "database.max_bytes = \"2GB\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf,
	    "database.retention.max_age = \"30d\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf,
	    "limits.connect_timeout = \"5s\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "auth.acl_file = "
	    "\"/etc/mqlite/acl.json\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "metrics.port = 9100\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "log.syslog = true\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "rules = \""));
	config_free(&cfg);
}

/* What config_reload_apply() reported. */
struct changes {
	char	live[512];
	char	restart[512];
};

static void
note_change(const char *key, int live, void *ctx)
{
	struct changes	*c = ctx;
	char		*dst = live ? c->live : c->restart;
	size_t		 n = strlen(dst);

	snprintf(dst + n, sizeof c->live - n, "%s ", key);
}

/* SIGHUP: live keys move over, the others are reported and kept. */
static void
test_reload_apply(void)
{
	struct gw_config	cur, next;
	struct changes		ch;
	struct seen		s;

	CU_ASSERT_EQUAL(cfgtest_load(&cur, &s, "{\"listeners\": [{\"port\": "
	    "1000}], \"database\": {\"commit_max_ms\": 10}, \"limits\": "
	    "{\"max_connections\": 5}, \"unmatched\": \"drop\"}"), 0);
	cur.cli_port = -1;
	cfgtest_write(cfgtest_file, "{\"listeners\": [{\"port\": 2000}], "
	    "\"database\": {\"commit_max_ms\": 20}, \"limits\": "
	    "{\"max_connections\": 7, \"max_inflight\": 40}, \"log\": "
	    "{\"level\": \"debug\"}, \"auth\": {\"password_file\": \"pw\"}, "
	    "\"unmatched\": \"messages\", \"rules\": [], "
	    "\"metrics\": {}}");
	memset(&s, 0, sizeof s);
	CU_ASSERT_EQUAL_FATAL(config_reload_load(&cur, &next, seen_collect,
	    &s), 0);
	memset(&ch, 0, sizeof ch);
	CU_ASSERT_EQUAL(config_reload_apply(&cur, &next, note_change, &ch), 6);
	CU_ASSERT_STRING_EQUAL(ch.live, "auth.allow_anonymous "
	    "auth.password_file limits.max_connections unmatched log.level "
	    "rules ");
	CU_ASSERT_STRING_EQUAL(ch.restart, "database.commit_max_ms "
	    "limits.max_inflight listeners[0].port metrics ");
	CU_ASSERT_EQUAL(cur.max_connections, 7);
	CU_ASSERT_EQUAL(cur.unmatched_messages, 1);
	CU_ASSERT_STRING_EQUAL(cur.log_level, "debug");
	CU_ASSERT_FALSE(cur.allow_anonymous);
	CU_ASSERT(cur.password_file != NULL &&
	    strstr(cur.password_file, "/pw") != NULL);
	CU_ASSERT_STRING_EQUAL(cur.rules_inline, "[]");
	CU_ASSERT_EQUAL(cur.commit_max_ms, 10);
	CU_ASSERT_EQUAL(cur.max_inflight, 20);
	CU_ASSERT_EQUAL(cur.listeners[0].port, 1000);
	CU_ASSERT_FALSE(cur.metrics_enabled);
	config_free(&next);

	/* -p given at start: the port is not a change. */
	cur.cli_port = 1000;
	CU_ASSERT_EQUAL_FATAL(config_reload_load(&cur, &next, seen_collect,
	    &s), 0);
	memset(&ch, 0, sizeof ch);
	config_reload_apply(&cur, &next, note_change, &ch);
	CU_ASSERT(strstr(ch.restart, "listeners") == NULL);
	config_free(&next);

	/* A broken file: an error with its path, nothing to apply. */
	cfgtest_write(cfgtest_file,
	    "{\"limits\": {\"max_connections\": \"x\"}}");
	memset(&s, 0, sizeof s);
	CU_ASSERT_EQUAL(config_reload_load(&cur, &next, seen_collect, &s),
	    GW_ECONFIG);
	CU_ASSERT(seen_at(&s, "limits.max_connections") >= 0);
	config_free(&next);
	CU_ASSERT_EQUAL(cur.max_connections, 7);
	config_free(&cur);
}

int
main(void)
{
	static const struct cfgtest_case cases[] = {
		{ "defaults", test_defaults },
		{ "full file", test_full_file },
		{ "empty object", test_empty_object_keeps_defaults },
		{ "relative paths", test_relative_paths },
		{ "unknown keys", test_unknown_keys },
		{ "wrong types", test_wrong_types },
		{ "out of range", test_out_of_range },
		{ "bad size/duration/enum", test_bad_sizes_durations_enums },
		{ "tls listener", test_tls_listener },
		{ "syntax error line", test_syntax_error_line },
		{ "all errors reported", test_all_errors_reported },
		{ "missing file", test_missing_file },
		{ "rules, auth, metrics", test_rules_and_auth },
		{ "parse size", test_parse_size },
		{ "parse duration", test_parse_duration },
		{ "command line", test_cli },
		{ "dump", test_dump },
		{ "reload apply", test_reload_apply },
	};

	return cfgtest_main("test_config", cases, sizeof cases /
	    sizeof cases[0]);
}
