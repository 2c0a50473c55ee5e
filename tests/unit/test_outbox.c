/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of outbox.c on real SQLite files (WAL, the real schema): the
 * test plays the store thread (its own writer connection and transactions)
 * and the delivery thread (an outbox_reader). Covered: byte accounting
 * across commit, rollback and reopen; claims in id order above a cursor
 * that never return a row twice and stop at a row scheduled later;
 * reschedule; dead letter with status, snippet and attempts; results
 * applied in a transaction; the drop_oldest cap skipping held rows, its
 * counting on commit only; has_room; binary bodies; routes, depth and the
 * instance id. Dead letters keep a row's 5.0 property block and expiry
 * (both ways in: a delivery result and a direct dead letter), a replay
 * back to the outbox restores them, a database at schema version 5 gains
 * the columns and keeps its dead letters, and the salvage of a damaged
 * database carries them over (from a version 5 file too).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sqlite3.h>

#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "testdb.h"
#include "store/heal.h"
#include "store/outbox.h"
#include "store/schema.h"

static char	tmpdir[64];
static int	db_counter;
static char	db_path[128];

struct drop_seen {
	char		route[32];
	uint64_t	n;
	int		calls;
};

static sqlite3 *
open_db(void)
{
	struct gw_error err;
	sqlite3 *db = NULL;

	snprintf(db_path, sizeof db_path, "%s/o%d.db", tmpdir, ++db_counter);
	memset(&err, 0, sizeof err);
	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		return NULL;
	sqlite3_busy_timeout(db, 5000);
	if (schema_apply(db, &err) != 0) {
		fprintf(stderr, "schema: %s\n", err.msg);
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	return db;
}

static void
exec(sqlite3 *db, const char *sql)
{
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db, sql, NULL, NULL, NULL),
	    SQLITE_OK);
}

/* Enqueues one committed row with a body of body_len 'x's. */
static int64_t
put(sqlite3 *db, struct outbox *ob, const char *route, size_t body_len,
    int64_t created)
{
	char body[256];
	int64_t id = 0;

	memset(body, 'x', sizeof body);
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enqueue(ob, route, "http://127.0.0.1:1/h",
	    NULL, body, body_len, created, &id), 0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	return id;
}

static void
clear_rows(struct outbox_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		outbox_row_clear(&rows[i]);
}

static void
on_drop(const char *route, uint64_t n, void *ctx)
{
	struct drop_seen *s = ctx;

	snprintf(s->route, sizeof s->route, "%s", route);
	s->n += n;
	s->calls++;
}

static void
test_bytes(void)
{
	sqlite3 *db = open_db();
	struct outbox *ob;
	uint64_t b;
	int64_t id;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	CU_ASSERT_EQUAL(outbox_bytes(ob), 0);
	CU_ASSERT_EQUAL(outbox_row_bytes("http://a", "{\"k\":\"v\"}", 5),
	    8 + 9 + 5);

	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enqueue(ob, "r/webhook", "http://a",
	    "{\"k\":\"v\"}", "hello", 5, 1000, &id), 0);
	CU_ASSERT(id > 0);
	CU_ASSERT_EQUAL(outbox_enqueue(ob, "r/webhook", "http://a", NULL,
	    "", 0, 1000, NULL), 0);
	b = outbox_bytes(ob);
	CU_ASSERT_EQUAL(b, 22 + 8);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	CU_ASSERT_EQUAL(outbox_bytes(ob), b);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT sum(bytes) FROM outbox"),
	    (long long)b);

	/* A rolled-back transaction leaves the total alone. */
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enqueue(ob, "r/webhook", "http://a", NULL,
	    "0123456789", 10, 1000, NULL), 0);
	CU_ASSERT_EQUAL(outbox_delete(ob, id), 0);
	CU_ASSERT_EQUAL(outbox_bytes(ob), b + 18 - 22);
	exec(db, "ROLLBACK");
	outbox_txn_rolled_back(ob);
	CU_ASSERT_EQUAL(outbox_bytes(ob), b);

	/* Reopen: the SUM at open agrees. */
	outbox_close(ob);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	CU_ASSERT_EQUAL(outbox_bytes(ob), b);

	/* Missing ids are fine everywhere. */
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_delete(ob, 999), 0);
	CU_ASSERT_EQUAL(outbox_reschedule(ob, 999, 5, "x"), 0);
	CU_ASSERT_EQUAL(outbox_dead_letter(ob, 999, 500, "x", NULL, true, 5),
	    0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	CU_ASSERT_EQUAL(outbox_bytes(ob), b);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"), 0);

	outbox_close(ob);
	sqlite3_close(db);
}

static void
test_has_room(void)
{
	sqlite3 *db = open_db();
	struct outbox *ob;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	CU_ASSERT(outbox_has_room(ob, 1000000, 0));
	CU_ASSERT(outbox_has_room(ob, 100, 100));
	CU_ASSERT(!outbox_has_room(ob, 101, 100));
	put(db, ob, "a", 80, 1);		/* 20 + 80 = 100 bytes */
	CU_ASSERT_EQUAL(outbox_bytes(ob), 100);
	CU_ASSERT(outbox_has_room(ob, 50, 150));
	CU_ASSERT(!outbox_has_room(ob, 51, 150));
	CU_ASSERT(!outbox_has_room(ob, 1, 99));
	outbox_close(ob);
	sqlite3_close(db);
}

static void
test_claim_cursor(void)
{
	struct outbox_row rows[8], blocked;
	struct outbox_reader *r;
	sqlite3 *db = open_db();
	struct outbox *ob;
	int64_t a1, a2, a3, b1, a4;
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	a1 = put(db, ob, "a", 10, 100);
	b1 = put(db, ob, "b", 10, 100);
	a2 = put(db, ob, "a", 11, 101);
	a3 = put(db, ob, "a", 12, 102);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = outbox_reader_open(db_path));

	/* Route a, from the start, in id order, limited. */
	CU_ASSERT_EQUAL(outbox_claim_due(r, "a", 0, 1000, 2, rows, &n,
	    &blocked), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(rows[0].id, a1);
	CU_ASSERT_EQUAL(rows[1].id, a2);
	CU_ASSERT_EQUAL(rows[1].body_len, 11);
	CU_ASSERT_EQUAL(rows[1].created_ms, 101);
	CU_ASSERT_STRING_EQUAL(rows[1].url, "http://127.0.0.1:1/h");
	CU_ASSERT_PTR_NULL(rows[1].headers);
	CU_ASSERT_EQUAL(blocked.id, 0);
	clear_rows(rows, n);
	/* Above the cursor: only what was not handed out. */
	CU_ASSERT_EQUAL(outbox_claim_due(r, "a", a2, 1000, 8, rows, &n,
	    NULL), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(rows[0].id, a3);
	clear_rows(rows, n);
	CU_ASSERT_EQUAL(outbox_claim_due(r, "a", a3, 1000, 8, rows, &n,
	    NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	/* Rows committed later show up above the cursor. */
	a4 = put(db, ob, "a", 13, 103);
	CU_ASSERT_EQUAL(outbox_claim_due(r, "a", a3, 1000, 8, rows, &n,
	    NULL), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(rows[0].id, a4);
	clear_rows(rows, n);
	/* Other routes are separate. */
	CU_ASSERT_EQUAL(outbox_claim_due(r, "b", 0, 1000, 8, rows, &n,
	    NULL), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(rows[0].id, b1);
	clear_rows(rows, n);
	CU_ASSERT_EQUAL(outbox_claim_due(r, "zz", 0, 1000, 8, rows, &n,
	    NULL), 0);
	CU_ASSERT_EQUAL(n, 0);

	/* A rescheduled row stops the claim and is reported. */
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_reschedule(ob, a2, 5000, "HTTP 503"), 0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	CU_ASSERT_EQUAL(outbox_claim_due(r, "a", 0, 1000, 8, rows, &n,
	    &blocked), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(rows[0].id, a1);
	CU_ASSERT_EQUAL(blocked.id, a2);
	CU_ASSERT_EQUAL(blocked.next_ms, 5000);
	CU_ASSERT_EQUAL(blocked.attempts, 1);
	clear_rows(rows, n);
	outbox_row_clear(&blocked);
	CU_ASSERT_EQUAL(outbox_claim_due(r, "a", a1, 1000, 8, rows, &n,
	    &blocked), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(blocked.id, a2);
	outbox_row_clear(&blocked);
	/* Past its next_ms it is due again, in order. */
	CU_ASSERT_EQUAL(outbox_claim_due(r, "a", 0, 5000, 8, rows, &n,
	    &blocked), 0);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(rows[1].id, a2);
	CU_ASSERT_EQUAL(rows[1].attempts, 1);
	CU_ASSERT_EQUAL(blocked.id, 0);
	clear_rows(rows, n);

	/* Read by id. */
	CU_ASSERT_EQUAL(outbox_read_row(r, a3, &rows[0]), 0);
	CU_ASSERT_EQUAL(rows[0].id, a3);
	CU_ASSERT_EQUAL(rows[0].body_len, 12);
	outbox_row_clear(&rows[0]);
	CU_ASSERT_EQUAL(outbox_read_row(r, 9999, &rows[0]), GW_ENOTFOUND);

	outbox_reader_close(r);
	outbox_close(ob);
	sqlite3_close(db);
}

static void
test_binary_body(void)
{
	static const unsigned char body[] = { 'a', 0, 0xff, 0x80, '\n', 'z' };
	struct outbox_reader *r;
	struct outbox_row row;
	sqlite3 *db = open_db();
	struct outbox *ob;
	int64_t id;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enqueue(ob, "a", "http://x/", "{\"A\":\"1\"}",
	    body, sizeof body, 7, &id), 0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = outbox_reader_open(db_path));
	CU_ASSERT_EQUAL_FATAL(outbox_read_row(r, id, &row), 0);
	CU_ASSERT_EQUAL(row.body_len, sizeof body);
	CU_ASSERT_EQUAL(memcmp(row.body, body, sizeof body), 0);
	CU_ASSERT_STRING_EQUAL(row.headers, "{\"A\":\"1\"}");
	CU_ASSERT_EQUAL(row.bytes, 9 + 9 + sizeof body);
	outbox_row_clear(&row);
	outbox_row_clear(NULL);
	outbox_reader_close(r);
	outbox_close(ob);
	sqlite3_close(db);
}

/* A 5.0 property block and its deadline come back as stored. */
static void
test_props(void)
{
	static const unsigned char pb[] = { 5, 0x03, 0, 2, 'a', 0 };
	struct outbox_reader *r;
	struct outbox_row row;
	sqlite3 *db = open_db();
	struct outbox *ob;
	int64_t id, id2;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enqueue_props(ob, "a/mqtt", "t", NULL, "p", 1,
	    pb, sizeof pb, 123456, 7, &id), 0);
	CU_ASSERT_EQUAL(outbox_enqueue_props(ob, "a/mqtt", "t", NULL, "p", 1,
	    NULL, 0, 0, 7, &id2), 0);
	CU_ASSERT_EQUAL(outbox_enqueue_props(ob, "a/mqtt", "t", NULL, "p", 1,
	    NULL, 3, 0, 7, NULL), GW_EMALFORMED);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	CU_ASSERT_EQUAL(outbox_bytes(ob), (1 + 1 + sizeof pb) + (1 + 1));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = outbox_reader_open(db_path));
	CU_ASSERT_EQUAL_FATAL(outbox_read_row(r, id, &row), 0);
	CU_ASSERT_EQUAL_FATAL(row.props_len, sizeof pb);
	CU_ASSERT_EQUAL(memcmp(row.props, pb, sizeof pb), 0);
	CU_ASSERT_EQUAL(row.expire_ms, 123456);
	outbox_row_clear(&row);
	CU_ASSERT_PTR_NULL(row.props);
	CU_ASSERT_EQUAL_FATAL(outbox_read_row(r, id2, &row), 0);
	CU_ASSERT_PTR_NULL(row.props);
	CU_ASSERT_EQUAL(row.props_len, 0);
	CU_ASSERT_EQUAL(row.expire_ms, 0);
	outbox_row_clear(&row);
	outbox_reader_close(r);
	outbox_close(ob);
	sqlite3_close(db);
}

/* The 5.0 block of the props tests: Content Type "a", a user property. */
static const unsigned char dead_pb[] = { 11, 0x03, 0, 1, 'a',
	0x26, 0, 1, 'k', 0, 1, 'v' };

/* Enqueues a 5.0 row (dead_pb, expire_ms) and a webhook row, committed. */
static void
put_props_pair(sqlite3 *db, struct outbox *ob, int64_t expire_ms,
    int64_t *id5, int64_t *idw)
{
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enqueue_props(ob, "b/mqtt", "up/t", NULL,
	    "pay", 3, dead_pb, sizeof dead_pb, expire_ms, 70, id5), 0);
	CU_ASSERT_EQUAL(outbox_enqueue(ob, "w/webhook", "http://127.0.0.1:1/h",
	    NULL, "body", 4, 80, idw), 0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
}

/* put_props_pair, then the 5.0 row dead-lettered by the store, committed. */
static void
dead_letter_5(sqlite3 *db, struct outbox *ob, int64_t expire_ms,
    int64_t *id5, int64_t *idw)
{
	put_props_pair(db, ob, expire_ms, id5, idw);
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_dead_letter(ob, *id5, 0, "x", NULL, false, 3),
	    0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
}

/* hex(props) of dead letter id into out ("" when NULL). */
static void
dead_props_hex(sqlite3 *db, int64_t id, char *out, size_t len)
{
	char sql[128];

	snprintf(sql, sizeof sql, "SELECT coalesce(hex(props), '') FROM"
	    " outbox_dead WHERE id = %lld", (long long)id);
	out[0] = '\0';
	CU_ASSERT(testdb_text(db, sql, out, len));
}

/* The hex of dead_pb, as SQLite's hex() writes it. */
static void
pb_hex(char *out, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof dead_pb && 2 * i + 2 < len; i++)
		snprintf(out + 2 * i, 3, "%02X", dead_pb[i]);
}

/*
 * A 5.0 row keeps its property block and deadline in outbox_dead, whether
 * a delivery result (an upstream 0x99, say) or the store itself (a topic
 * that renders invalid) dead-letters it; a webhook row has NULL in both.
 * Moved back to the outbox as the README's replay does, the row reads
 * back as it was enqueued, bytes included.
 */
static void
test_dead_props(void)
{
	struct outbox_result res;
	struct outbox_reader *r;
	struct outbox_row row;
	sqlite3 *db = open_db();
	struct outbox *ob;
	int64_t a, aw, b, bw, back;
	char want[64], got[64];
	char why[] = "refused upstream: Payload format invalid (0x99)";
	long long bytes5;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	pb_hex(want, sizeof want);
	put_props_pair(db, ob, 987654321, &a, &aw);
	put_props_pair(db, ob, 0, &b, &bw);
	bytes5 = testdb_int(db, "SELECT bytes FROM outbox WHERE route ="
	    " 'b/mqtt' ORDER BY id LIMIT 1");
	CU_ASSERT_EQUAL(bytes5, 4 + 3 + (long long)sizeof dead_pb);

	/* Way 1: a FAIL result, as the bridge pushes for 0x90/0x99. */
	memset(&res, 0, sizeof res);
	res.id = a;
	res.verdict = OUTBOX_FAIL;
	res.sent = true;
	res.error = why;
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_apply_results(ob, &res, 1, 1000), 0);
	/* Way 2: straight from the store, in the same transaction. */
	CU_ASSERT_EQUAL(outbox_dead_letter(ob, b, 0, "not a valid topic name",
	    NULL, false, 1001), 0);
	CU_ASSERT_EQUAL(outbox_dead_letter(ob, aw, 400, "HTTP 400", "no",
	    true, 1002), 0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);

	dead_props_hex(db, a, got, sizeof got);
	CU_ASSERT_STRING_EQUAL(got, want);
	dead_props_hex(db, b, got, sizeof got);
	CU_ASSERT_STRING_EQUAL(got, want);
	dead_props_hex(db, aw, got, sizeof got);
	CU_ASSERT_STRING_EQUAL(got, "");
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT expire_ms FROM outbox_dead"
	    " WHERE route = 'b/mqtt' ORDER BY id LIMIT 1"), 987654321);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"
	    " WHERE route = 'b/mqtt' AND expire_ms IS NULL"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"
	    " WHERE route = 'w/webhook' AND props IS NULL AND"
	    " expire_ms IS NULL"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"),
	    3);

	/* The README's replay, for the 5.0 route. */
	exec(db, "BEGIN IMMEDIATE;"
	    "INSERT INTO outbox (route, url, headers, body, bytes,"
	    " created_ms, props, expire_ms)"
	    " SELECT route, url, headers, body,"
	    " length(CAST(url AS BLOB)) +"
	    " coalesce(length(CAST(headers AS BLOB)), 0) +"
	    " coalesce(length(CAST(body AS BLOB)), 0) +"
	    " coalesce(length(props), 0), created_ms, props, expire_ms"
	    " FROM outbox_dead WHERE route = 'b/mqtt' ORDER BY id;"
	    "DELETE FROM outbox_dead WHERE route = 'b/mqtt';"
	    "COMMIT");
	back = testdb_int(db, "SELECT min(id) FROM outbox WHERE route ="
	    " 'b/mqtt'");
	CU_ASSERT(back > bw);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox WHERE"
	    " route = 'b/mqtt' AND bytes = (SELECT bytes FROM outbox"
	    " WHERE route = 'b/mqtt' ORDER BY id LIMIT 1)"), 2);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT bytes FROM outbox WHERE"
	    " route = 'b/mqtt' ORDER BY id LIMIT 1"), bytes5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = outbox_reader_open(db_path));
	CU_ASSERT_EQUAL_FATAL(outbox_read_row(r, back, &row), 0);
	CU_ASSERT_EQUAL_FATAL(row.props_len, sizeof dead_pb);
	CU_ASSERT_EQUAL(memcmp(row.props, dead_pb, sizeof dead_pb), 0);
	CU_ASSERT_EQUAL(row.expire_ms, 987654321);
	CU_ASSERT_EQUAL(row.attempts, 0);
	CU_ASSERT_EQUAL(row.body_len, 3);
	CU_ASSERT_STRING_EQUAL(row.url, "up/t");
	outbox_row_clear(&row);
	CU_ASSERT_EQUAL_FATAL(outbox_read_row(r, back + 1, &row), 0);
	CU_ASSERT_EQUAL(row.props_len, sizeof dead_pb);
	CU_ASSERT_EQUAL(row.expire_ms, 0);
	outbox_row_clear(&row);
	outbox_reader_close(r);
	outbox_close(ob);
	sqlite3_close(db);
}

/*
 * Creates path as a database of schema version 5 (the embedded files up
 * to 005 only) holding one dead letter of that time. The open handle.
 */
static sqlite3 *
make_v5_db(const char *path)
{
	const struct schema_file *f;
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return NULL;
	for (f = schema_files; f->name != NULL && atoi(f->name) <= 5; f++)
		exec(db, f->sql);
	exec(db, "PRAGMA user_version = 5");
	exec(db, "INSERT INTO outbox_dead (id, route, url, body, created_ms,"
	    " attempts, dead_ms, last_error) VALUES (9, 'old/mqtt', 'up/x',"
	    " 'b', 1, 1, 2, 'refused upstream')");
	return db;
}

/* A version 5 database gains props and expire_ms, its dead letters kept. */
static void
test_dead_props_migrate(void)
{
	struct gw_error err;
	struct outbox *ob;
	sqlite3 *db;
	int64_t a, aw;
	char want[64], got[64];

	snprintf(db_path, sizeof db_path, "%s/o%d.db", tmpdir, ++db_counter);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db = make_v5_db(db_path));
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM"
	    " pragma_table_info('outbox_dead') WHERE name = 'props'"), 0);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL_FATAL(schema_apply(db, &err), 0);
	CU_ASSERT(testdb_int(db, "PRAGMA user_version") >= 6);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM"
	    " pragma_table_info('outbox_dead') WHERE name = 'props' AND"
	    " type = 'BLOB'"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM"
	    " pragma_table_info('outbox_dead') WHERE name = 'expire_ms' AND"
	    " type = 'INTEGER'"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"
	    " WHERE id = 9 AND route = 'old/mqtt' AND props IS NULL AND"
	    " expire_ms IS NULL AND last_error = 'refused upstream'"), 1);
	/* And the migrated file takes a 5.0 dead letter whole. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	dead_letter_5(db, ob, 5555, &a, &aw);
	pb_hex(want, sizeof want);
	dead_props_hex(db, a, got, sizeof got);
	CU_ASSERT_STRING_EQUAL(got, want);
	outbox_close(ob);
	sqlite3_close(db);
}

/*
 * The salvage of a damaged database copies outbox_dead by the columns
 * both files have: a current file's props and expire_ms come through, a
 * version 5 file's dead letters come through without them.
 */
static void
test_dead_props_heal(void)
{
	struct gw_error err;
	struct outbox *ob;
	sqlite3 *db = open_db();
	int64_t a, aw;
	char want[64], got[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	dead_letter_5(db, ob, 4242, &a, &aw);
	outbox_close(ob);
	sqlite3_close(db);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL_FATAL(heal_quarantine(db_path, "unit test", NULL,
	    NULL, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(db_path, &db), SQLITE_OK);
	pb_hex(want, sizeof want);
	dead_props_hex(db, a, got, sizeof got);
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT expire_ms FROM outbox_dead"),
	    4242);
	/* The webhook row is still in the outbox, the 5.0 one dead. */
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox"), 1);
	sqlite3_close(db);

	snprintf(db_path, sizeof db_path, "%s/o%d.db", tmpdir, ++db_counter);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db = make_v5_db(db_path));
	sqlite3_close(db);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL_FATAL(heal_quarantine(db_path, "unit test", NULL,
	    NULL, &err), 0);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(db_path, &db), SQLITE_OK);
	CU_ASSERT(testdb_int(db, "PRAGMA user_version") >= 6);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"
	    " WHERE id = 9 AND url = 'up/x' AND props IS NULL AND"
	    " expire_ms IS NULL"), 1);
	sqlite3_close(db);
}

static void
test_apply_results(void)
{
	struct outbox_result res[3];
	sqlite3 *db = open_db();
	struct outbox *ob;
	int64_t a, b, c;
	char text[600];
	uint64_t before;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	a = put(db, ob, "r", 10, 100);
	b = put(db, ob, "r", 20, 200);
	c = put(db, ob, "r", 30, 300);
	before = outbox_bytes(ob);

	memset(res, 0, sizeof res);
	res[0].id = a;
	res[0].verdict = OUTBOX_OK;
	res[1].id = b;
	res[1].verdict = OUTBOX_RETRY;
	res[1].next_ms = 777;
	res[1].error = gw_strdup("HTTP 503");
	res[2].id = c;
	res[2].verdict = OUTBOX_FAIL;
	res[2].status = 400;
	res[2].sent = true;
	res[2].error = gw_strdup("HTTP 400");
	res[2].response = gw_strdup("{\"error\":\"bad field\"}");

	/* Rolled back, then applied again: the store's batch retry. */
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_apply_results(ob, res, 3, 12345), 0);
	exec(db, "ROLLBACK");
	outbox_txn_rolled_back(ob);
	CU_ASSERT_EQUAL(outbox_bytes(ob), before);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox"), 3);
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_apply_results(ob, res, 3, 12345), 0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	outbox_results_free(res, 3);
	CU_ASSERT_PTR_NULL(res[1].error);

	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox"), 1);
	CU_ASSERT_EQUAL(outbox_bytes(ob), 20 + 20);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT attempts FROM outbox"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT next_ms FROM outbox"), 777);
	CU_ASSERT(testdb_text(db, "SELECT last_error FROM outbox", text,
	    sizeof text));
	CU_ASSERT_STRING_EQUAL(text, "HTTP 503");

	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT id FROM outbox_dead"), c);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT status FROM outbox_dead"), 400);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT attempts FROM outbox_dead"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT dead_ms FROM outbox_dead"),
	    12345);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT created_ms FROM outbox_dead"),
	    300);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT length(body) FROM outbox_dead"),
	    30);
	CU_ASSERT(testdb_text(db, "SELECT response FROM outbox_dead", text,
	    sizeof text));
	CU_ASSERT_STRING_EQUAL(text, "{\"error\":\"bad field\"}");
	CU_ASSERT(testdb_text(db, "SELECT route || ' ' || url || ' ' ||"
	    " last_error FROM outbox_dead", text, sizeof text));
	CU_ASSERT_STRING_EQUAL(text, "r http://127.0.0.1:1/h HTTP 400");

	/* Dead-lettering without a request keeps attempts as they were. */
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_dead_letter(ob, b, 0, "bad header", NULL,
	    false, 5), 0);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT attempts FROM outbox_dead"
	    " WHERE id = (SELECT min(id) FROM outbox_dead)"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox_dead"
	    " WHERE status IS NULL AND response IS NULL"), 1);
	CU_ASSERT_EQUAL(outbox_bytes(ob), 0);

	outbox_close(ob);
	sqlite3_close(db);
}

static void
test_cap(void)
{
	struct drop_seen seen;
	sqlite3 *db = open_db();
	struct outbox *ob;
	int64_t ids[10], skip[3];
	uint64_t dropped;
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	memset(&seen, 0, sizeof seen);
	outbox_set_drop_cb(ob, on_drop, &seen);
	for (i = 0; i < 10; i++)		/* 100 bytes each */
		ids[i] = put(db, ob, i < 5 ? "a" : "b", 80, i);
	CU_ASSERT_EQUAL(outbox_bytes(ob), 1000);

	/* Under the cap: nothing happens. */
	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enforce_cap(ob, 1000, NULL, 0, &dropped), 0);
	CU_ASSERT_EQUAL(dropped, 0);
	CU_ASSERT_EQUAL(outbox_enforce_cap(ob, 0, NULL, 0, &dropped), 0);
	CU_ASSERT_EQUAL(dropped, 0);

	/* Over it: the oldest rows go, except the held ones. Rolled back. */
	skip[0] = ids[0];
	skip[1] = ids[1];
	skip[2] = ids[3];
	CU_ASSERT_EQUAL(outbox_enforce_cap(ob, 550, skip, 3, &dropped), 0);
	CU_ASSERT_EQUAL(dropped, 5);
	CU_ASSERT_EQUAL(outbox_bytes(ob), 500);
	exec(db, "ROLLBACK");
	outbox_txn_rolled_back(ob);
	CU_ASSERT_EQUAL(seen.calls, 0);
	CU_ASSERT_EQUAL(outbox_bytes(ob), 1000);
	CU_ASSERT_EQUAL(outbox_dropped_total(ob), 0);

	exec(db, "BEGIN IMMEDIATE");
	CU_ASSERT_EQUAL(outbox_enforce_cap(ob, 550, skip, 3, &dropped), 0);
	CU_ASSERT_EQUAL(dropped, 5);
	exec(db, "COMMIT");
	outbox_txn_committed(ob);
	CU_ASSERT_EQUAL(outbox_dropped_total(ob), 5);
	CU_ASSERT_EQUAL(seen.n, 5);
	CU_ASSERT_EQUAL(seen.calls, 2);		/* routes a and b */
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox"), 5);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT group_concat(id) = '1,2,4,9,10'"
	    " FROM (SELECT id FROM outbox ORDER BY id)"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT sum(bytes) FROM outbox"), 500);

	/* Only held rows left: stays over, drops nothing, no error. */
	{
		int64_t all[5] = { ids[0], ids[1], ids[3], ids[8], ids[9] };

		exec(db, "BEGIN IMMEDIATE");
		CU_ASSERT_EQUAL(outbox_enforce_cap(ob, 100, all, 5, &dropped),
		    0);
		CU_ASSERT_EQUAL(dropped, 0);
		exec(db, "COMMIT");
		outbox_txn_committed(ob);
		CU_ASSERT_EQUAL(outbox_bytes(ob), 500);
	}

	/* Many rows: the cap walks past several chunks of held ones. */
	for (i = 0; i < 200; i++)
		put(db, ob, "c", 80, 1000 + i);
	{
		int64_t *held = gw_malloc(150 * sizeof *held);
		long long first;

		CU_ASSERT_PTR_NOT_NULL_FATAL(held);
		first = testdb_int(db, "SELECT min(id) FROM outbox"
		    " WHERE route = 'c'");
		held[0] = ids[0];
		held[1] = ids[1];
		held[2] = ids[3];
		held[3] = ids[8];
		held[4] = ids[9];
		for (i = 5; i < 150; i++)
			held[i] = first + i - 5;
		exec(db, "BEGIN IMMEDIATE");
		CU_ASSERT_EQUAL(outbox_enforce_cap(ob, 16000, held, 150,
		    &dropped), 0);
		exec(db, "COMMIT");
		outbox_txn_committed(ob);
		CU_ASSERT_EQUAL(dropped, 45);
		CU_ASSERT_EQUAL(outbox_bytes(ob), 16000);
		CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM outbox"),
		    160);
		gw_free(held);
	}
	outbox_close(ob);
	sqlite3_close(db);
}

struct route_list {
	char	names[4][16];
	int	n;
};

static void
collect_route(const char *route, void *ctx)
{
	struct route_list *l = ctx;

	if (l->n < 4)
		snprintf(l->names[l->n++], sizeof l->names[0], "%s", route);
}

static void
test_routes_depth_instance(void)
{
	struct route_list list;
	struct outbox_reader *r;
	sqlite3 *db = open_db();
	struct outbox *ob;
	char inst[80];
	uint64_t rows;
	int64_t oldest;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ob = outbox_open(db));
	put(db, ob, "beta/webhook", 1, 500);
	put(db, ob, "alpha/webhook", 1, 400);
	put(db, ob, "beta/webhook", 1, 600);
	put(db, ob, "beta/webhook", 1, 700);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = outbox_reader_open(db_path));

	memset(&list, 0, sizeof list);
	CU_ASSERT_EQUAL(outbox_routes(r, collect_route, &list), 0);
	CU_ASSERT_EQUAL_FATAL(list.n, 2);
	CU_ASSERT_STRING_EQUAL(list.names[0], "alpha/webhook");
	CU_ASSERT_STRING_EQUAL(list.names[1], "beta/webhook");

	CU_ASSERT_EQUAL(outbox_route_depth(r, "beta/webhook", &rows, &oldest),
	    0);
	CU_ASSERT_EQUAL(rows, 3);
	CU_ASSERT_EQUAL(oldest, 500);
	CU_ASSERT_EQUAL(outbox_route_depth(r, "none", &rows, &oldest), 0);
	CU_ASSERT_EQUAL(rows, 0);
	CU_ASSERT_EQUAL(oldest, 0);

	CU_ASSERT(testdb_text(db, "SELECT value FROM mqlite_meta"
	    " WHERE key = 'instance_id'", inst, sizeof inst));
	CU_ASSERT_EQUAL(strlen(inst), 32);
	CU_ASSERT_STRING_EQUAL(outbox_reader_instance_id(r), inst);

	outbox_reader_close(r);
	outbox_reader_close(NULL);
	outbox_close(ob);
	outbox_close(NULL);
	sqlite3_close(db);
	CU_ASSERT_PTR_NULL(outbox_reader_open("/nonexistent/dir/x.db"));
}

int
main(void)
{
	CU_pSuite s;
	int status;

	if (testdb_tmpdir(tmpdir, sizeof tmpdir, "outbox") != 0)
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("outbox", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "byte accounting", test_bytes) == NULL ||
	    CU_add_test(s, "has_room", test_has_room) == NULL ||
	    CU_add_test(s, "claim cursor", test_claim_cursor) == NULL ||
	    CU_add_test(s, "binary body", test_binary_body) == NULL ||
	    CU_add_test(s, "5.0 properties", test_props) == NULL ||
	    CU_add_test(s, "apply results", test_apply_results) == NULL ||
	    CU_add_test(s, "dead letters keep 5.0 properties",
	    test_dead_props) == NULL ||
	    CU_add_test(s, "schema 5 database gains outbox_dead.props",
	    test_dead_props_migrate) == NULL ||
	    CU_add_test(s, "heal copies outbox_dead.props",
	    test_dead_props_heal) == NULL ||
	    CU_add_test(s, "cap drop_oldest", test_cap) == NULL ||
	    CU_add_test(s, "routes, depth, instance id",
	    test_routes_depth_instance) == NULL) {
		return cutest_setup_failed();
	}
	status = cutest_run();
	testdb_rmdir(tmpdir);
	return status;
}
