/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/config_sources.c, the "sources" array of the config
 * file: a full entry and its defaults, and one --check error (with its
 * JSON path) for every kind of bad setting. Config files are written into
 * a fresh mkdtemp() folder removed at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cfgtest.h"
#include "config.h"
#include "seen.h"

/* Loads {"sources": [sources]} over the defaults. */
static int
load_sources(struct gw_config *cfg, struct seen *s, const char *sources)
{
	char	text[8192];

	snprintf(text, sizeof text, "{\"sources\": [%s]}\n", sources);
	return cfgtest_load(cfg, s, text);
}

/* Loads sources expecting no error at all. */
static void
load_ok(struct gw_config *cfg, const char *sources)
{
	struct seen	s;

	CU_ASSERT_EQUAL(load_sources(cfg, &s, sources), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	if (s.n > 0)
		fprintf(stderr, "\n  %s: %s\n", s.path[0], s.msg[0]);
}

/* Expects exactly one error, at path, whose message contains needle. */
static void
expect_one(const char *sources, const char *path, const char *needle)
{
	char	text[8192];

	snprintf(text, sizeof text, "{\"sources\": [%s]}\n", sources);
	cfgtest_expect_one(text, path, needle);
}

#define OK_TOPICS	"\"topics\": [\"a/#\"]"

static void
test_full_entry(void)
{
	struct gw_config	cfg;
	const struct config_source *a, *b;

	setenv("SRC_TEST_PASS", "s3cret", 1);
	load_ok(&cfg,
	    "{\"name\": \"site\", \"url\": \"tcp://192.0.2.1:1884\", "
	    "\"client_id\": \"gw-7\", \"username\": \"gw\", "
	    "\"password\": \"${SRC_TEST_PASS}\", \"qos\": 2, "
	    "\"keepalive\": \"30s\", \"reconnect\": {\"min\": \"200ms\", "
	    "\"max\": \"2m\"}, \"topics\": [\"site/#\", "
	    "{\"topic\": \"alarm/+\", \"qos\": 0}]},"
	    "{\"name\": \"plant-2\", \"host\": \"::1\", " OK_TOPICS "}");
	CU_ASSERT_EQUAL_FATAL(cfg.nsources, 2);
	a = &cfg.sources[0];
	CU_ASSERT_STRING_EQUAL(a->name, "site");
	CU_ASSERT_STRING_EQUAL(a->host, "192.0.2.1");
	CU_ASSERT_EQUAL(a->port, 1884);
	CU_ASSERT_STRING_EQUAL(a->client_id, "gw-7");
	CU_ASSERT_STRING_EQUAL(a->username, "gw");
	CU_ASSERT_STRING_EQUAL(a->password, "s3cret");
	CU_ASSERT_EQUAL(a->keepalive_ms, 30000);
	CU_ASSERT_EQUAL(a->reconnect_min_ms, 200);
	CU_ASSERT_EQUAL(a->reconnect_max_ms, 120000);
	CU_ASSERT_EQUAL_FATAL(a->ntopics, 2);
	CU_ASSERT_STRING_EQUAL(a->topics[0], "site/#");
	CU_ASSERT_EQUAL(a->topic_qos[0], 2);
	CU_ASSERT_STRING_EQUAL(a->topics[1], "alarm/+");
	CU_ASSERT_EQUAL(a->topic_qos[1], 0);
	/* Defaults. */
	b = &cfg.sources[1];
	CU_ASSERT_STRING_EQUAL(b->host, "::1");
	CU_ASSERT_EQUAL(b->port, 1883);
	CU_ASSERT_STRING_EQUAL(b->client_id, "mqlite-plant-2");
	CU_ASSERT_PTR_NULL(b->username);
	CU_ASSERT_PTR_NULL(b->password);
	CU_ASSERT_EQUAL(b->keepalive_ms, 60000);
	CU_ASSERT_EQUAL(b->reconnect_min_ms, 1000);
	CU_ASSERT_EQUAL(b->reconnect_max_ms, 60000);
	CU_ASSERT_EQUAL(b->topic_qos[0], 1);
	config_free(&cfg);
	unsetenv("SRC_TEST_PASS");
}

static void
test_urls(void)
{
	struct gw_config	cfg;
	struct seen		s;

	CU_ASSERT_EQUAL(load_sources(&cfg, &s, "{\"name\": \"a\", "
	    "\"url\": \"mqtt://[fe80::1]:1999\", " OK_TOPICS "}, "
	    "{\"name\": \"b\", \"url\": \"tcp://broker.lan\", " OK_TOPICS
	    "}"), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	CU_ASSERT_STRING_EQUAL(cfg.sources[0].host, "fe80::1");
	CU_ASSERT_EQUAL(cfg.sources[0].port, 1999);
	CU_ASSERT_STRING_EQUAL(cfg.sources[1].host, "broker.lan");
	CU_ASSERT_EQUAL(cfg.sources[1].port, 1883);
	config_free(&cfg);
}

static void
test_tls(void)
{
	struct gw_config	cfg;
	const struct config_source *a, *b, *c, *d;

	load_ok(&cfg, "{\"name\": \"a\", "
	    "\"url\": \"mqtts://broker.lan\", " OK_TOPICS "}, "
	    "{\"name\": \"b\", \"url\": \"ssl://[::1]:9883\", \"tls\": "
	    "{\"ca_file\": \"ca.pem\", \"cert\": \"/etc/c.pem\", "
	    "\"key\": \"c.key\", \"insecure\": true}, " OK_TOPICS "}, "
	    "{\"name\": \"c\", \"host\": \"h\", \"tls\": {}, " OK_TOPICS
	    "}, {\"name\": \"d\", \"host\": \"h\", \"port\": 18883, "
	    "\"tls\": {}, " OK_TOPICS "}");
	CU_ASSERT_EQUAL_FATAL(cfg.nsources, 4);
	a = &cfg.sources[0];
	CU_ASSERT(a->tls);
	CU_ASSERT_STRING_EQUAL(a->host, "broker.lan");
	CU_ASSERT_EQUAL(a->port, 8883);
	CU_ASSERT_PTR_NULL(a->tls_ca_file);
	CU_ASSERT_PTR_NULL(a->tls_cert);
	CU_ASSERT_FALSE(a->tls_insecure);
	b = &cfg.sources[1];
	CU_ASSERT(b->tls);
	CU_ASSERT_STRING_EQUAL(b->host, "::1");
	CU_ASSERT_EQUAL(b->port, 9883);
	/* Relative paths resolve against the config file's folder. */
	CU_ASSERT_PTR_NOT_NULL(b->tls_ca_file != NULL ?
	    strstr(b->tls_ca_file, cfgtest_dir) : NULL);
	CU_ASSERT_STRING_EQUAL(b->tls_cert, "/etc/c.pem");
	CU_ASSERT_PTR_NOT_NULL(b->tls_key != NULL ?
	    strstr(b->tls_key, "/c.key") : NULL);
	CU_ASSERT(b->tls_insecure);
	c = &cfg.sources[2];
	CU_ASSERT(c->tls);
	CU_ASSERT_EQUAL(c->port, 8883);
	d = &cfg.sources[3];
	CU_ASSERT(d->tls);
	CU_ASSERT_EQUAL(d->port, 18883);
	/* Plain sources stay plain. */
	config_free(&cfg);
	load_ok(&cfg, "{\"name\": \"a\", \"url\": \"tcp://h\", " OK_TOPICS
	    "}");
	CU_ASSERT_FALSE(cfg.sources[0].tls);
	CU_ASSERT_EQUAL(cfg.sources[0].port, 1883);
	config_free(&cfg);
}

static void
test_bad_settings(void)
{
	expect_one("{\"url\": \"tcp://h:1\", " OK_TOPICS "}",
	    "sources[0].name", "required key is missing");
	expect_one("{\"name\": \"a b\", \"url\": \"tcp://h:1\", " OK_TOPICS
	    "}", "sources[0].name", "letters, digits");
	expect_one("{\"name\": \"\", \"url\": \"tcp://h:1\", " OK_TOPICS "}",
	    "sources[0].name", "letters, digits");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://h:1\", " OK_TOPICS
	    "}, {\"name\": \"a\", \"url\": \"tcp://h:2\", " OK_TOPICS "}",
	    "sources[1].name", "duplicate source name \"a\"");
	expect_one("{\"name\": 5, \"url\": \"tcp://h:1\", " OK_TOPICS "}",
	    "sources[0].name", "expected a string");
	expect_one("{\"name\": \"a\", " OK_TOPICS "}", "sources[0].url",
	    "required key is missing");
	expect_one("{\"name\": \"a\", \"url\": 1883, " OK_TOPICS "}",
	    "sources[0].url", "expected a string");
	expect_one("{\"name\": \"a\", \"url\": \"http://h:1\", " OK_TOPICS
	    "}", "sources[0].url", "expected tcp://HOST:PORT");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://h:0\", " OK_TOPICS
	    "}", "sources[0].url", "expected tcp://HOST:PORT");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://h:99999\", " OK_TOPICS
	    "}", "sources[0].url", "expected tcp://HOST:PORT");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://:1883\", " OK_TOPICS
	    "}", "sources[0].url", "expected tcp://HOST:PORT");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://h/x\", " OK_TOPICS
	    "}", "sources[0].url", "expected tcp://HOST:PORT");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://h:1\", \"tls\": {}, "
	    OK_TOPICS "}", "sources[0].tls", "need an mqtts:// or ssl:// url");
	expect_one("{\"name\": \"a\", \"url\": \"mqtt://h:1\", \"tls\": "
	    "{\"insecure\": true}, " OK_TOPICS "}", "sources[0].tls",
	    "need an mqtts:// or ssl:// url");
	expect_one("{\"name\": \"a\", \"url\": \"mqtts://h\", \"tls\": 1, "
	    OK_TOPICS "}", "sources[0].tls", "expected an object");
	expect_one("{\"name\": \"a\", \"url\": \"mqtts://h\", \"tls\": "
	    "{\"ca\": \"x\"}, " OK_TOPICS "}", "sources[0].tls.ca",
	    "unknown key");
	expect_one("{\"name\": \"a\", \"url\": \"mqtts://h\", \"tls\": "
	    "{\"cert\": \"c.pem\"}, " OK_TOPICS "}", "sources[0].tls.key",
	    "go together");
	expect_one("{\"name\": \"a\", \"url\": \"mqtts://h\", \"tls\": "
	    "{\"key\": \"c.key\"}, " OK_TOPICS "}", "sources[0].tls.cert",
	    "go together");
	expect_one("{\"name\": \"a\", \"url\": \"mqtts://h\", \"tls\": "
	    "{\"insecure\": \"yes\"}, " OK_TOPICS "}",
	    "sources[0].tls.insecure", "expected true or false");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://h:1\", \"host\": "
	    "\"h\", " OK_TOPICS "}", "sources[0].host", "not both");
	expect_one("{\"name\": \"a\", \"url\": \"tcp://h:1\", \"port\": 2, "
	    OK_TOPICS "}", "sources[0].url", "the port goes into the url");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"port\": 0, "
	    OK_TOPICS "}", "sources[0].port", "between 1 and 65535");
	expect_one("{\"name\": \"a\", \"host\": \"\", " OK_TOPICS "}",
	    "sources[0].host", "expected a host");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"qos\": 3, "
	    OK_TOPICS "}", "sources[0].qos", "between 0 and 2");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"client_id\": \"\", "
	    OK_TOPICS "}", "sources[0].client_id", "non-empty client id");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"password\": \"p\", "
	    OK_TOPICS "}", "sources[0].password", "needs a username");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"username\": "
	    "\"${SRC_TEST_UNSET_VAR}\", " OK_TOPICS "}",
	    "sources[0].username", "SRC_TEST_UNSET_VAR is not set");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"username\": \"u\", "
	    "\"password\": \"${bad-name}\", " OK_TOPICS "}",
	    "sources[0].password", "bad environment reference");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"keepalive\": "
	    "\"100ms\", " OK_TOPICS "}", "sources[0].keepalive", "between");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"reconnect\": "
	    "{\"min\": \"1m\", \"max\": \"1s\"}, " OK_TOPICS "}",
	    "sources[0].reconnect.min", "greater than reconnect.max");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"reconnect\": "
	    "{\"every\": \"1s\"}, " OK_TOPICS "}",
	    "sources[0].reconnect.every", "unknown key");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"colour\": 1, "
	    OK_TOPICS "}", "sources[0].colour", "unknown key");
	expect_one("{\"name\": \"a\", \"host\": \"h\"}", "sources[0].topics",
	    "required key is missing");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": []}",
	    "sources[0].topics", "non-empty array");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": \"a\"}",
	    "sources[0].topics", "non-empty array");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": "
	    "[\"ok\", \"a/#/b\"]}", "sources[0].topics[1]",
	    "invalid topic filter");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": [\"\"]}",
	    "sources[0].topics[0]", "invalid topic filter");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": [7]}",
	    "sources[0].topics[0]", "expected a topic filter");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": "
	    "[{\"topic\": \"x\", \"qos\": 5}]}", "sources[0].topics[0]",
	    "qos: expected 0, 1 or 2");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": "
	    "[{\"topic\": \"x\", \"retain\": true}]}", "sources[0].topics[0]",
	    "unknown key \"retain\"");
	expect_one("{\"name\": \"a\", \"host\": \"h\", \"topics\": "
	    "[{\"qos\": 1}]}", "sources[0].topics[0]",
	    "expected a topic filter");
}

static void
test_every_error_reported(void)
{
	struct gw_config	cfg;
	struct seen		s;

	/* One --check run lists every problem of every entry. */
	CU_ASSERT_EQUAL(load_sources(&cfg, &s,
	    "{\"url\": \"ftp://x\", \"topics\": []}, "
	    "{\"name\": \"b\", \"host\": \"h\", \"qos\": 9, "
	    "\"topics\": [\"#\", \"+/#/x\"]}"), GW_ECONFIG);
	CU_ASSERT_EQUAL(s.n, 5);
	CU_ASSERT_STRING_EQUAL(s.path[0], "sources[0].name");
	CU_ASSERT_STRING_EQUAL(s.path[1], "sources[0].url");
	CU_ASSERT_STRING_EQUAL(s.path[2], "sources[0].topics");
	CU_ASSERT_STRING_EQUAL(s.path[3], "sources[1].qos");
	CU_ASSERT_STRING_EQUAL(s.path[4], "sources[1].topics[1]");
	config_free(&cfg);
}

static void
test_too_many(void)
{
	char	buf[8192];
	size_t	len = 0;
	int	i;

	for (i = 0; i <= CONFIG_MAX_SOURCES; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len,
		    "%s{\"name\": \"s%d\", \"host\": \"h\", " OK_TOPICS "}",
		    i ? ", " : "", i);
	expect_one(buf, "sources", "at most 16 sources");
}

int
main(void)
{
	static const struct cutest_case cases[] = {
		{ "full entry", test_full_entry },
		{ "urls", test_urls },
		{ "tls", test_tls },
		{ "bad settings", test_bad_settings },
		{ "every error", test_every_error_reported },
		{ "too many", test_too_many },
	};

	unsetenv("SRC_TEST_UNSET_VAR");
	return cutest_main("test_cfgsrc", cfgtest_setup, cfgtest_teardown,
	    cases, CUTEST_COUNT(cases));
}
