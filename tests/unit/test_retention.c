/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of retention (src/store/retention.c) on real SQLite files in a
 * mkdtemp directory, created by the real schema and rule sinks: age pruning
 * removes exactly the old rows of each table that has a max_age (indexed
 * or not), in chunks, and leaves tables without retention alone; size
 * pruning brings the pages in use under the bound, gives pages back with
 * incremental vacuum, deletes the oldest rows and counts them; nothing is
 * deleted under the bound; the broker's own tables are never touched.
 */
#include <sys/stat.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sqlite3.h>

#include "clock.h"
#include "cutest.h"
#include "err.h"
#include "rules/rules.h"
#include "sink/sqlite.h"
#include "store/retention.h"
#include "store/schema.h"

#define HOUR_MS		3600000LL

static char	tmpdir[64];
static int	db_counter;
static char	db_path[128];

/* A fresh database with the schema, in WAL mode. */
static sqlite3 *
open_db(void)
{
	struct gw_error err;
	sqlite3 *db = NULL;

	snprintf(db_path, sizeof db_path, "%s/r%d.db", tmpdir, ++db_counter);
	memset(&err, 0, sizeof err);
	CU_ASSERT_FATAL(sqlite3_open(db_path, &db) == SQLITE_OK);
	CU_ASSERT_FATAL(schema_apply(db, &err) == 0);
	CU_ASSERT_FATAL(sqlite3_exec(db, "PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) == SQLITE_OK);
	return db;
}

static long long
scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL) ==
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, msg);
		sqlite3_free(msg);
		CU_FAIL_FATAL("exec");
	}
}

/* Inserts n rows into messages received at ms, payload of plen bytes. */
static void
add_messages(sqlite3 *db, int n, long long ms, int plen)
{
	sqlite3_stmt *st;
	char *p;
	int i;

	p = malloc((size_t)plen);
	CU_ASSERT_FATAL(p != NULL);
	memset(p, 'x', (size_t)plen);
	exec(db, "BEGIN");
	CU_ASSERT_FATAL(sqlite3_prepare_v2(db, "INSERT INTO messages"
	    " (received_ms, topic, client_id, qos, retain, payload)"
	    " VALUES (?1, 't/x', 'c', 1, 0, ?2)", -1, &st, NULL) ==
	    SQLITE_OK);
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ms + i);
		sqlite3_bind_text(st, 2, p, plen, SQLITE_STATIC);
		CU_ASSERT(sqlite3_step(st) == SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	exec(db, "COMMIT");
	free(p);
}

/* Inserts n rows (ts = ms + i) into table tb (columns ts, v). */
static void
add_rows(sqlite3 *db, const char *tb, int n, long long ms)
{
	sqlite3_stmt *st;
	char sql[128];
	int i;

	snprintf(sql, sizeof sql, "INSERT INTO %s (ts, v) VALUES (?1, ?2)",
	    tb);
	exec(db, "BEGIN");
	CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL) ==
	    SQLITE_OK);
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ms + i);
		sqlite3_bind_int(st, 2, i);
		CU_ASSERT(sqlite3_step(st) == SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	exec(db, "COMMIT");
}

static struct retention *
new_ret(sqlite3 *db, uint64_t max_bytes, uint64_t max_age, unsigned chunk)
{
	struct retention_opts o;
	struct gw_error err;
	struct retention *r;

	memset(&o, 0, sizeof o);
	memset(&err, 0, sizeof err);
	o.max_bytes = max_bytes;
	o.max_age_ms = max_age;
	o.chunk_rows = chunk;
	r = retention_new(db, db_path, &o, &err);
	if (r == NULL)
		fprintf(stderr, "retention_new: %s\n", err.msg);
	CU_ASSERT_FATAL(r != NULL);
	return r;
}

/* Rules: a (indexed ts, 1h), b (ts not indexed, 1h), c (no retention). */
static const char rules_json[] = "{\"rules\": ["
    "{\"name\": \"ra\", \"topic\": \"a/#\", \"sqlite\": {\"table\": \"a\","
    " \"columns\": {\"ts\": \"{received_ms}\", \"v\": \"{payload}\"},"
    " \"indexes\": [\"ts\"],"
    " \"retention\": {\"max_age\": \"1h\", \"time_column\": \"ts\"}}},"
    "{\"name\": \"rb\", \"topic\": \"b/#\", \"sqlite\": {\"table\": \"b\","
    " \"columns\": {\"ts\": \"{received_ms}\", \"v\": \"{payload}\"},"
    " \"retention\": {\"max_age\": \"1h\", \"time_column\": \"ts\"}}},"
    "{\"name\": \"rc\", \"topic\": \"c/#\", \"sqlite\": {\"table\": \"c\","
    " \"columns\": {\"ts\": \"{received_ms}\", \"v\": \"{payload}\"}}}"
    "]}";

static struct rule_set *
load_rules(sqlite3 *db, struct sink_sqlite **kp)
{
	struct gw_error err;
	struct rule_set *set;
	int rc = 0;

	set = rules_load_json(rules_json, sizeof rules_json - 1, "test",
	    NULL, NULL, NULL, &rc);
	CU_ASSERT_FATAL(set != NULL);
	memset(&err, 0, sizeof err);
	*kp = sink_sqlite_prepare(db, set, &err);
	if (*kp == NULL)
		fprintf(stderr, "sink: %s: %s\n", err.path, err.msg);
	CU_ASSERT_FATAL(*kp != NULL);
	return set;
}

/* Runs retention until nothing is due now; returns the calls made. */
static int
run_until_idle(struct retention *r, const struct rule_set *set, int max)
{
	int i;

	for (i = 0; i < max; i++) {
		CU_ASSERT(retention_run(r, set) == 0);
		if (retention_timeout_ms(r) != 0)
			return i + 1;
	}
	return i;
}

static void
test_age_tables(void)
{
	struct retention_stats st;
	struct sink_sqlite *k;
	struct rule_set *set;
	struct retention *r;
	sqlite3 *db;
	long long now = clock_wall_ms(), before;
	int calls, i;

	db = open_db();
	set = load_rules(db, &k);
	/* 2500 old then 300 new rows in each table; messages likewise. */
	add_rows(db, "a", 2500, now - 3 * HOUR_MS);
	add_rows(db, "a", 300, now);
	add_rows(db, "b", 2500, now - 3 * HOUR_MS);
	add_rows(db, "b", 300, now);
	add_rows(db, "c", 2500, now - 3 * HOUR_MS);
	add_rows(db, "c", 300, now);
	add_messages(db, 2500, now - 3 * HOUR_MS, 20);
	add_messages(db, 300, now, 20);
	exec(db, "INSERT INTO retained (topic, payload, qos, received_ms)"
	    " VALUES ('old', 'x', 0, 1)");

	r = new_ret(db, 0, HOUR_MS, 1000);
	/* One chunk per call at most, in its own transaction. */
	before = scalar(db, "SELECT (SELECT count(*) FROM a) +"
	    " (SELECT count(*) FROM b) + (SELECT count(*) FROM messages)");
	CU_ASSERT(retention_run(r, set) == 0);
	CU_ASSERT(sqlite3_get_autocommit(db));
	CU_ASSERT(before - scalar(db, "SELECT (SELECT count(*) FROM a) +"
	    " (SELECT count(*) FROM b) + (SELECT count(*) FROM messages)")
	    <= 1000);
	calls = run_until_idle(r, set, 100);
	CU_ASSERT(calls >= 8);		/* 3 x 2500 rows by 1000 at most */
	CU_ASSERT(calls < 100);

	CU_ASSERT(scalar(db, "SELECT count(*) FROM a") == 300);
	CU_ASSERT(scalar(db, "SELECT min(ts) FROM a") == now);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM b") == 300);
	CU_ASSERT(scalar(db, "SELECT min(ts) FROM b") == now);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM messages") == 300);
	CU_ASSERT(scalar(db, "SELECT min(received_ms) FROM messages") ==
	    now);
	/* No retention: untouched, and the broker's tables too. */
	CU_ASSERT(scalar(db, "SELECT count(*) FROM c") == 2800);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM retained") == 1);

	retention_get_stats(r, &st);
	CU_ASSERT(st.age_rows == 7500);
	CU_ASSERT(st.size_rows == 0);
	CU_ASSERT(st.errors == 0);
	CU_ASSERT(st.chunks >= 8);
	/* Nothing due for a while now (at least the 1 s floor). */
	i = retention_timeout_ms(r);
	CU_ASSERT(i >= 900 && i <= 60000);

	retention_free(r);
	sink_sqlite_free(k);
	rule_set_unref(&set);
	CU_ASSERT(sqlite3_close(db) == SQLITE_OK);
}

static void
test_age_messages_off(void)
{
	struct retention *r;
	sqlite3 *db;
	long long now = clock_wall_ms();

	db = open_db();
	add_messages(db, 50, now - 300 * 24 * HOUR_MS, 10);
	r = new_ret(db, 0, 0, 0);
	CU_ASSERT(retention_run(r, NULL) == 0);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM messages") == 50);
	/* Nothing scheduled at all: the store thread may sleep. */
	CU_ASSERT(retention_timeout_ms(r) == -1);
	retention_free(r);
	CU_ASSERT(sqlite3_close(db) == SQLITE_OK);
}

static void
test_size_bound(void)
{
	struct retention_stats st;
	struct sink_sqlite *k;
	struct rule_set *set;
	struct retention *r;
	sqlite3 *db;
	long long now = clock_wall_ms(), ps, n0, max_id, calls;
	const uint64_t bound = 1 << 20;

	db = open_db();
	set = load_rules(db, &k);
	ps = scalar(db, "PRAGMA page_size");
	/* About 4 MB of rows in messages, plus some in c (no time). */
	add_messages(db, 16000, now - 1000000, 200);
	add_rows(db, "c", 2000, now);
	exec(db, "INSERT INTO retained (topic, payload, qos, received_ms)"
	    " VALUES ('keep', 'x', 0, 1)");
	exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	n0 = scalar(db, "SELECT count(*) FROM messages");
	max_id = scalar(db, "SELECT max(id) FROM messages");
	CU_ASSERT(scalar(db, "PRAGMA page_count") * ps > 3 * (long long)bound);

	r = new_ret(db, bound, 0, 1000);
	retention_get_stats(r, &st);
	CU_ASSERT(st.high_bytes > 0 && st.high_bytes < bound);
	CU_ASSERT(st.low_bytes < st.high_bytes);
	calls = run_until_idle(r, set, 1000);
	CU_ASSERT(calls < 1000);
	retention_get_stats(r, &st);

	/* Pages in use and the file (after vacuum) are under the bound. */
	CU_ASSERT((scalar(db, "PRAGMA page_count") -
	    scalar(db, "PRAGMA freelist_count")) * ps <=
	    (long long)st.high_bytes);
	CU_ASSERT(scalar(db, "PRAGMA page_count") * ps <=
	    (long long)st.high_bytes);
	CU_ASSERT(st.vacuum_pages > 0);
	CU_ASSERT(st.size_rows > 0);
	CU_ASSERT(st.age_rows == 0);
	CU_ASSERT(st.errors == 0);
	/* Every deleted row is counted; the newest are kept. */
	CU_ASSERT(n0 + 2000 - scalar(db, "SELECT count(*) FROM messages") -
	    scalar(db, "SELECT count(*) FROM c") == (long long)st.size_rows);
	CU_ASSERT(scalar(db, "SELECT max(id) FROM messages") == max_id);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM messages") > 1000);
	CU_ASSERT(scalar(db, "SELECT max(id) - min(id) + 1 FROM messages") ==
	    scalar(db, "SELECT count(*) FROM messages"));
	/* The broker's tables are kept. */
	CU_ASSERT(scalar(db, "SELECT count(*) FROM retained") == 1);

	/* After a checkpoint the file on disk shrinks too. */
	exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	{
		struct stat sb;

		CU_ASSERT(stat(db_path, &sb) == 0);
		CU_ASSERT(sb.st_size <= (off_t)bound);
	}

	/* Under the bound: further calls delete nothing. */
	add_messages(db, 100, now, 200);
	CU_ASSERT(retention_run(r, set) == 0);
	retention_get_stats(r, &st);
	{
		uint64_t before = st.size_rows;

		CU_ASSERT(retention_run(r, set) == 0);
		retention_get_stats(r, &st);
		CU_ASSERT(st.size_rows == before);
	}

	retention_free(r);
	sink_sqlite_free(k);
	rule_set_unref(&set);
	CU_ASSERT(sqlite3_close(db) == SQLITE_OK);
}

static void
test_size_under_bound(void)
{
	struct retention_stats st;
	struct retention *r;
	sqlite3 *db;
	long long now = clock_wall_ms();

	db = open_db();
	add_messages(db, 2000, now - 100000, 200);
	r = new_ret(db, 64 << 20, 0, 0);
	CU_ASSERT(run_until_idle(r, NULL, 10) == 1);
	retention_get_stats(r, &st);
	CU_ASSERT(st.size_rows == 0);
	CU_ASSERT(st.vacuum_pages == 0);
	CU_ASSERT(st.used_bytes > 0);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM messages") == 2000);
	retention_free(r);
	CU_ASSERT(sqlite3_close(db) == SQLITE_OK);
}

/* Sustained: insert batches, run between them; stays near the bound. */
static void
test_size_sustained(void)
{
	struct retention_stats st;
	struct retention *r;
	sqlite3 *db;
	long long now = clock_wall_ms(), ps, peak = 0, used;
	const uint64_t bound = 512 << 10;
	int i;

	db = open_db();
	ps = scalar(db, "PRAGMA page_size");
	r = new_ret(db, bound, 0, 0);
	for (i = 0; i < 100; i++) {
		add_messages(db, 200, now + i * 200, 200);
		CU_ASSERT(retention_run(r, NULL) == 0);
		while (retention_timeout_ms(r) == 0)
			CU_ASSERT(retention_run(r, NULL) == 0);
		used = scalar(db, "PRAGMA page_count") * ps;
		if (used > peak)
			peak = used;
	}
	retention_get_stats(r, &st);
	CU_ASSERT(st.size_rows > 10000);
	/* One batch (about 60 KB) past the bound at most. */
	CU_ASSERT(peak <= (long long)bound + (96 << 10));
	CU_ASSERT(scalar(db, "SELECT max(received_ms) FROM messages") ==
	    now + 99 * 200 + 199);
	retention_free(r);
	CU_ASSERT(sqlite3_close(db) == SQLITE_OK);
}

/* Rule set changes rebuild the table list; a missing table is skipped. */
static void
test_rules_change(void)
{
	struct sink_sqlite *k;
	struct rule_set *set;
	struct retention *r;
	sqlite3 *db;
	long long now = clock_wall_ms();

	db = open_db();
	r = new_ret(db, 0, 0, 0);
	CU_ASSERT(retention_run(r, NULL) == 0);
	set = load_rules(db, &k);
	add_rows(db, "a", 10, now - 2 * HOUR_MS);
	CU_ASSERT(retention_run(r, set) == 0);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM a") == 0);
	/* Back to no rules: a is no longer a target. */
	add_rows(db, "a", 10, now - 2 * HOUR_MS);
	CU_ASSERT(retention_run(r, NULL) == 0);
	CU_ASSERT(scalar(db, "SELECT count(*) FROM a") == 10);
	retention_free(r);
	sink_sqlite_free(k);
	rule_set_unref(&set);
	CU_ASSERT(sqlite3_close(db) == SQLITE_OK);
}

static void
cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

int
main(void)
{
	CU_pSuite s;
	int status;

	snprintf(tmpdir, sizeof tmpdir, "/tmp/mqlite-ret-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("retention", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "age pruning per table, in chunks",
	    test_age_tables) == NULL ||
	    CU_add_test(s, "no max_age, nothing scheduled",
	    test_age_messages_off) == NULL ||
	    CU_add_test(s, "size bound, oldest first, vacuum",
	    test_size_bound) == NULL ||
	    CU_add_test(s, "nothing deleted under the bound",
	    test_size_under_bound) == NULL ||
	    CU_add_test(s, "sustained inserts stay near the bound",
	    test_size_sustained) == NULL ||
	    CU_add_test(s, "rule set change", test_rules_change) == NULL)
		return cutest_setup_failed();
	status = cutest_run();
	cleanup();
	return status;
}
