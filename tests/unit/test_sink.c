/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/sink/sqlite.c on real SQLite files: tables created
 * from a rule's columns with declared and inferred types, indexes, a later
 * rule set adding a column with ALTER TABLE, a declared type conflicting
 * with an existing column refused without changing anything, typed rows
 * written, and a row the database refuses going to `rejected`. The row
 * buffer (rowbuf.c) on its own: values copied, full by rows and by bytes,
 * message references released; and through the sink: multi-row inserts in
 * order with exact types, one bad row among many rejected alone, rows of
 * two rules of one table in write order, discarded rows never inserted.
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
#include "sink/rowbuf.h"
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
	/* 1 when the flush inserted the row, 0 when it was rejected. */
	return rc < 0 ? rc : sink_sqlite_flush(k);
}

/* Buffers a row of rule id for topic and payload; sink_sqlite_write's rc. */
static int
buffer_one(struct sink_sqlite *k, size_t id, const char *topic,
    const char *payload)
{
	struct rule_payload pc;
	struct msg *m;
	int rc;

	m = msg_new(topic, strlen(topic), "dev1", 4, NULL, 0, payload,
	    strlen(payload), 1, 0, 1700000000123LL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	rule_payload_init(&pc, m);
	rc = sink_sqlite_write(k, id, m, &pc);
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

static void
test_rowbuf(void)
{
	struct rule_value v[5], out;
	struct rowbuf *b;
	struct msg *m;
	char *text;

	m = msg_new("t", 1, "c", 1, NULL, 0, "p", 1, 0, 0, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	b = rowbuf_new(5, 3, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(rowbuf_len(b), 0);
	CU_ASSERT_FALSE(rowbuf_full(b));

	/* Every type; the text's memory is freed after the add. */
	text = gw_malloc(6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	memcpy(text, "ab\0cd", 5);
	rule_value_int(&v[0], -42);
	rule_value_real(&v[1], 2.5);
	rule_value_bytes(&v[2], RULE_VTEXT, text, 5, true);
	rule_value_bytes(&v[3], RULE_VBLOB, "\x01\x02", 2, false);
	v[4].type = RULE_VNULL;
	CU_ASSERT_EQUAL(rowbuf_add(b, v, m, -1), 0);
	rule_value_clear(&v[2]);
	CU_ASSERT_EQUAL(m->refs, 2);

	/* An empty text stays a text. */
	rule_value_bytes(&v[2], RULE_VTEXT, "", 0, false);
	CU_ASSERT_EQUAL(rowbuf_add(b, v, m, -1), 0);
	CU_ASSERT_EQUAL(rowbuf_len(b), 2);
	CU_ASSERT_FALSE(rowbuf_full(b));

	rowbuf_value(b, 0, 0, &out);
	CU_ASSERT(out.type == RULE_VINTEGER && out.u.i == -42);
	rowbuf_value(b, 0, 1, &out);
	CU_ASSERT(out.type == RULE_VREAL && out.u.d == 2.5);
	rowbuf_value(b, 0, 2, &out);
	CU_ASSERT(out.type == RULE_VTEXT && out.u.s.len == 5 &&
	    memcmp(out.u.s.p, "ab\0cd", 5) == 0 && !out.owned);
	rowbuf_value(b, 0, 3, &out);
	CU_ASSERT(out.type == RULE_VBLOB && out.u.s.len == 2 &&
	    memcmp(out.u.s.p, "\x01\x02", 2) == 0);
	rowbuf_value(b, 0, 4, &out);
	CU_ASSERT(out.type == RULE_VNULL);
	rowbuf_value(b, 1, 2, &out);
	CU_ASSERT(out.type == RULE_VTEXT && out.u.s.len == 0 &&
	    out.u.s.p != NULL);
	CU_ASSERT_PTR_EQUAL(rowbuf_msg(b, 1), m);

	/* Full at its row capacity; adding then fails, nothing changes. */
	CU_ASSERT_EQUAL(rowbuf_add(b, v, m, -1), 0);
	CU_ASSERT_TRUE(rowbuf_full(b));
	CU_ASSERT_EQUAL(rowbuf_add(b, v, m, -1), GW_EFULL);
	CU_ASSERT_EQUAL(rowbuf_len(b), 3);
	CU_ASSERT_EQUAL(m->refs, 4);

	/* Clear drops the rows and the message references. */
	rowbuf_clear(b);
	CU_ASSERT_EQUAL(rowbuf_len(b), 0);
	CU_ASSERT_FALSE(rowbuf_full(b));
	CU_ASSERT_EQUAL(m->refs, 1);
	rowbuf_free(b);

	/* Full by bytes: one row past max_bytes fills it, whatever its size. */
	b = rowbuf_new(1, 32, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	text = gw_calloc(1, 200000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	rule_value_bytes(&v[0], RULE_VBLOB, text, 60, false);
	CU_ASSERT_EQUAL(rowbuf_add(b, v, m, -1), 0);
	CU_ASSERT_FALSE(rowbuf_full(b));
	CU_ASSERT_EQUAL(rowbuf_add(b, v, m, -1), 0);
	CU_ASSERT_TRUE(rowbuf_full(b));
	rowbuf_clear(b);
	rule_value_bytes(&v[0], RULE_VBLOB, text, 200000, false);
	CU_ASSERT_EQUAL(rowbuf_add(b, v, m, -1), 0);
	CU_ASSERT_TRUE(rowbuf_full(b));
	rowbuf_value(b, 0, 0, &out);
	CU_ASSERT_EQUAL(out.u.s.len, 200000);
	gw_free(text);
	rowbuf_free(b);
	CU_ASSERT_EQUAL(m->refs, 1);
	CU_ASSERT_PTR_NULL(rowbuf_new(0, 1, 1));
	CU_ASSERT_PTR_NULL(rowbuf_new(1, 0, 1));
	rowbuf_free(NULL);
	msg_unref(&m);
}

static const char *rules_multi =
    "{\"rules\": [{\"name\": \"a\", \"topic\": \"a/{n}\","
    " \"sqlite\": {\"table\": \"t\", \"columns\": {"
    " \"n\": \"{n}\", \"i\": \"{payload.i}\", \"r\": \"{payload.r}\","
    " \"s\": \"{payload.s}\", \"o\": \"{payload.o}\","
    " \"z\": \"{payload.missing}\"}}},"
    " {\"name\": \"b\", \"topic\": \"b/{n}\","
    " \"sqlite\": {\"table\": \"t\", \"columns\": {\"n\": \"{n}\"}}}]}";

static void
test_multi_row(void)
{
	sqlite3 *db = new_db();
	struct rule_set *set = load(rules_multi);
	struct sink_sqlite *k;
	struct gw_error err;
	char topic[32], payload[128], buf[128];
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	memset(&err, 0, sizeof err);
	k = sink_sqlite_prepare(db, set, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	/* 100 rows: three full buffers went in, 4 rows wait for the flush. */
	for (i = 0; i < 100; i++) {
		snprintf(topic, sizeof topic, "a/%d", i);
		snprintf(payload, sizeof payload, "{\"i\": %d, \"r\": %d.5,"
		    " \"s\": \"v%d\", \"o\": {\"k\": [%d]}}", i, i, i, i);
		CU_ASSERT_EQUAL(buffer_one(k, 0, topic, payload), 1);
	}
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t"), 96);
	CU_ASSERT_EQUAL(sink_sqlite_flush(k), 100);
	CU_ASSERT_EQUAL(sink_sqlite_flush(k), 0);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t"), 100);
	/* In order, each value exact and typed. */
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t WHERE"
	    " n = CAST(id - 1 AS TEXT) AND i = id - 1 AND r = id - 0.5 AND"
	    " s = 'v' || (id - 1) AND o = '{\"k\":[' || (id - 1) || ']}'"
	    " AND typeof(n) = 'text' AND typeof(i) = 'integer' AND"
	    " typeof(r) = 'real' AND typeof(s) = 'text' AND"
	    " typeof(o) = 'text' AND typeof(z) = 'null'"), 100);
	CU_ASSERT_EQUAL(rule_counter(rule_set_rule(set, 0), RULE_CWRITTEN),
	    100);

	/* Two rules of one table, interleaved: ids follow the writes. */
	for (i = 0; i < 10; i++) {
		snprintf(topic, sizeof topic, "%c/x%d", i % 3 == 0 ? 'b' : 'a',
		    i);
		CU_ASSERT_EQUAL(buffer_one(k, i % 3 == 0 ? 1 : 0, topic, "{}"),
		    1);
	}
	CU_ASSERT_EQUAL(sink_sqlite_flush(k), 10);
	testdb_text(db, "SELECT group_concat(n, ',') FROM (SELECT n FROM t"
	    " WHERE id > 100 ORDER BY id)", buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "x0,x1,x2,x3,x4,x5,x6,x7,x8,x9");

	/* Discarded rows are never inserted, not even by a later flush. */
	for (i = 0; i < 40; i++)
		CU_ASSERT_EQUAL(buffer_one(k, 0, "a/gone", "{}"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t WHERE"
	    " n = 'gone'"), 32);
	sink_sqlite_discard(k);
	CU_ASSERT_EQUAL(sink_sqlite_flush(k), 0);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t WHERE"
	    " n = 'gone'"), 32);
	sink_sqlite_free(k);
	rule_set_unref(&set);
	sqlite3_close(db);
}

static void
test_multi_row_rejected(void)
{
	sqlite3 *db = new_db();
	struct rule_set *set;
	struct sink_sqlite *k;
	struct gw_error err;
	char payload[64];
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY"
	    " KEY, v INTEGER CHECK (v <> 17))", NULL, NULL, NULL), SQLITE_OK);
	set = load("{\"rules\": [{\"name\": \"chk\", \"topic\": \"x\","
	    " \"sqlite\": {\"table\": \"t\", \"columns\": {"
	    " \"v\": \"{payload.v}\"}}}]}");
	memset(&err, 0, sizeof err);
	k = sink_sqlite_prepare(db, set, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL),
	    SQLITE_OK);
	/* 17 sits in the first 32-row statement, 41 rows in all. */
	for (i = 0; i < 41; i++) {
		snprintf(payload, sizeof payload, "{\"v\": %d}", i);
		CU_ASSERT_EQUAL(buffer_one(k, 0, "x", payload), 1);
	}
	CU_ASSERT_EQUAL(sink_sqlite_flush(k), 40);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t"), 40);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t WHERE v = 17"),
	    0);
	/* The others in order: v grows with id. */
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t a JOIN t b"
	    " ON b.id > a.id AND b.v < a.v"), 0);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM rejected"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM rejected WHERE"
	    " rule = 'chk' AND CAST(payload AS TEXT) = '{\"v\": 17}'"), 1);
	CU_ASSERT_EQUAL(rule_counter(rule_set_rule(set, 0), RULE_CWRITTEN),
	    40);
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
	    test_rejected) == NULL ||
	    CU_add_test(s, "row buffer", test_rowbuf) == NULL ||
	    CU_add_test(s, "multi-row inserts in order, typed",
	    test_multi_row) == NULL ||
	    CU_add_test(s, "one bad row of a multi-row insert rejected alone",
	    test_multi_row_rejected) == NULL)
		return cutest_setup_failed();
	status = cutest_run();
	testdb_rmdir(dir);
	return status;
}
