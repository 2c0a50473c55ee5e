/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/sink/sqlite.c on real SQLite files: tables created
 * from a rule's columns with declared and inferred types, indexes, a later
 * rule set adding a column with ALTER TABLE, a declared type conflicting
 * with an existing column refused without changing anything, typed rows
 * written, and a row the database refuses going to `rejected`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sqlite3.h>

#include "broker/msg.h"
#include "cutest.h"
#include "mem.h"
#include "rules/rules.h"
#include "sink/sqlite.h"
#include "store/schema.h"
#include "testdb.h"

static char	dir[64];
static int	counter;

static sqlite3 *
new_db(void)
{
	char path[128];
	sqlite3 *db;
	struct gw_error err;

	snprintf(path, sizeof path, "%s/s%d.db", dir, ++counter);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return NULL;
	memset(&err, 0, sizeof err);
	if (schema_apply(db, &err) != 0) {
		fprintf(stderr, "schema: %s\n", err.msg);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static struct rule_set *
load(const char *text)
{
	struct rule_set *set;

	set = rules_load_json(text, strlen(text), "t.json", NULL, NULL, NULL,
	    NULL);
	CU_ASSERT_PTR_NOT_NULL(set);
	return set;
}

/* Writes rule 0 of k's set for a message on topic with payload. */
static int
write_one(struct sink_sqlite *k, const char *topic, const char *payload)
{
	struct rule_payload pc;
	struct msg *m;
	int rc;

	m = msg_new(topic, strlen(topic), "dev1", 4, NULL, 0, payload,
	    strlen(payload), 1, 0, 1700000000123LL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	rule_payload_init(&pc, m);
	rc = sink_sqlite_write(k, 0, m, &pc);
	rule_payload_clear(&pc);
	msg_unref(&m);
	return rc;
}

static const char *rules_v1 =
    "{\"rules\": [{\"name\": \"r\", \"topic\": \"s/{site}/t\","
    " \"sqlite\": {\"table\": \"readings\", \"columns\": {"
    " \"ts\": \"{received_ms}\", \"site\": \"{site}\","
    " \"temp\": \"{payload.temp}\", \"raw\": \"{payload}\"},"
    " \"types\": {\"temp\": \"REAL\"}, \"indexes\": [[\"site\", \"ts\"]]}}]}";

static void
test_create_and_write(void)
{
	sqlite3 *db = new_db();
	struct rule_set *set = load(rules_v1);
	struct sink_sqlite *k;
	struct gw_error err;
	char buf[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	memset(&err, 0, sizeof err);
	k = sink_sqlite_prepare(db, set, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	testdb_text(db, "SELECT type FROM pragma_table_info('readings')"
	    " WHERE name = 'ts'", buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "INTEGER");
	testdb_text(db, "SELECT type FROM pragma_table_info('readings')"
	    " WHERE name = 'site'", buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "TEXT");
	testdb_text(db, "SELECT type FROM pragma_table_info('readings')"
	    " WHERE name = 'temp'", buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "REAL");
	testdb_text(db, "SELECT type FROM pragma_table_info('readings')"
	    " WHERE name = 'raw'", buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "");
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM sqlite_master WHERE"
	    " type = 'index' AND tbl_name = 'readings'"), 1);

	CU_ASSERT_EQUAL(write_one(k, "s/north/t",
	    "{\"temp\": 21.123456789}"), 1);
	CU_ASSERT_EQUAL(write_one(k, "s/south/t", "not json"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM readings"), 2);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT ts FROM readings WHERE"
	    " site = 'north'"), 1700000000123LL);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT temp = 21.123456789 FROM readings"
	    " WHERE site = 'north'"), 1);
	testdb_text(db, "SELECT typeof(temp) FROM readings WHERE site = 'south'",
	    buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "null");
	testdb_text(db, "SELECT raw FROM readings WHERE site = 'south'", buf,
	    sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "not json");
	CU_ASSERT_EQUAL(rule_counter(rule_set_rule(set, 0), RULE_CWRITTEN), 2);
	sink_sqlite_free(k);
	rule_set_unref(&set);
	sqlite3_close(db);
}

static void
test_add_column_and_conflict(void)
{
	sqlite3 *db = new_db();
	struct rule_set *v1 = load(rules_v1), *v2, *bad;
	struct sink_sqlite *k;
	struct gw_error err;
	char buf[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	memset(&err, 0, sizeof err);
	k = sink_sqlite_prepare(db, v1, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	sink_sqlite_free(k);

	v2 = load("{\"rules\": [{\"name\": \"r\", \"topic\": \"s/{site}/t\","
	    " \"sqlite\": {\"table\": \"readings\", \"columns\": {"
	    " \"ts\": \"{received_ms}\", \"site\": \"{site}\","
	    " \"hum\": \"{payload.hum}\"}, \"types\": {\"hum\": \"REAL\"}}}]}");
	k = sink_sqlite_prepare(db, v2, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	testdb_text(db, "SELECT type FROM pragma_table_info('readings')"
	    " WHERE name = 'hum'", buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "REAL");
	CU_ASSERT_EQUAL(write_one(k, "s/x/t", "{\"hum\": 40}"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT hum FROM readings"), 40);
	sink_sqlite_free(k);

	/* temp exists as REAL: declaring TEXT is refused, nothing changes. */
	bad = load("{\"rules\": [{\"name\": \"r\", \"topic\": \"s/{site}/t\","
	    " \"sqlite\": {\"table\": \"readings\", \"columns\": {"
	    " \"temp\": \"{payload.temp}\", \"extra\": \"{topic}\"},"
	    " \"types\": {\"temp\": \"TEXT\"}}}]}");
	memset(&err, 0, sizeof err);
	CU_ASSERT_PTR_NULL(sink_sqlite_prepare(db, bad, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "temp"));
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM"
	    " pragma_table_info('readings') WHERE name = 'extra'"), 0);
	rule_set_unref(&bad);
	rule_set_unref(&v2);
	rule_set_unref(&v1);
	sqlite3_close(db);
}

static void
test_rejected(void)
{
	sqlite3 *db = new_db();
	struct rule_set *set;
	struct sink_sqlite *k;
	struct gw_error err;
	char buf[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY"
	    " KEY, v REAL CHECK (v < 100))", NULL, NULL, NULL), SQLITE_OK);
	set = load("{\"rules\": [{\"name\": \"chk\", \"topic\": \"x\","
	    " \"sqlite\": {\"table\": \"t\", \"columns\": {"
	    " \"v\": \"{payload.v}\"}}}]}");
	memset(&err, 0, sizeof err);
	k = sink_sqlite_prepare(db, set, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	/* Refused by the CHECK: 0, and a row in rejected. */
	CU_ASSERT_EQUAL(write_one(k, "x", "{\"v\": 500}"), 0);
	CU_ASSERT_EQUAL(write_one(k, "x", "{\"v\": 5}"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM rejected"), 1);
	testdb_text(db, "SELECT rule || ' ' || topic || ' ' || payload FROM rejected",
	    buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "chk x {\"v\": 500}");
	testdb_text(db, "SELECT reason FROM rejected", buf, sizeof buf);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "CHECK"));
	CU_ASSERT_EQUAL(rule_counter(rule_set_rule(set, 0), RULE_CREJECTED),
	    1);
	sink_sqlite_free(k);
	rule_set_unref(&set);
	sqlite3_close(db);
}

int
main(void)
{
	CU_pSuite s;
	int status;

	if (testdb_tmpdir(dir, sizeof dir, "sink") != 0)
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("sink_sqlite", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "create tables and write typed rows",
	    test_create_and_write) == NULL ||
	    CU_add_test(s, "add column, refuse a conflicting type",
	    test_add_column_and_conflict) == NULL ||
	    CU_add_test(s, "refused rows go to rejected",
	    test_rejected) == NULL)
		return cutest_setup_failed();
	status = cutest_run();
	testdb_rmdir(dir);
	return status;
}
