/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the store: schema migrations on real SQLite files in a
 * mkdtemp directory, the group-commit thread (bulk rows, TEXT/BLOB
 * payloads, retained and QoS 2 state, barriers), backpressure (GW_EFULL),
 * close draining the queue, WAL checkpoints and the retry of a batch while
 * another connection holds the write lock. Results are read back through a
 * separate sqlite3 connection, as a user's shell would.
 */
#include <sys/stat.h>

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sqlite3.h>

#include "broker/msg.h"
#include "clock.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "testdb.h"
#include "mqtt/utf8.h"
#include "rules/rules.h"
#include "store/schema.h"
#include "store/store.h"

static char	tmpdir[64];
static int	db_counter;

/* Returns a new path (static buffer) of a fresh database file. */
static const char *
new_db_path(void)
{
	static char path[128];

	snprintf(path, sizeof path, "%s/t%d.db", tmpdir, ++db_counter);
	return path;
}

static struct store *
open_store(const char *path, unsigned max_items, size_t cap)
{
	struct store_opts o;
	struct gw_error err;
	struct store *s;

	memset(&o, 0, sizeof o);
	memset(&err, 0, sizeof err);
	o.path = path;
	o.durability = STORE_DURABILITY_FULL;
	o.commit_max_items = max_items;
	o.commit_max_ms = 10;
	o.queue_cap = cap;
	s = store_open(&o, &err);
	if (s == NULL)
		fprintf(stderr, "store_open: %s: %s\n", err.path, err.msg);
	return s;
}

static sqlite3 *
open_raw(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static struct msg *
mk(const char *topic, const char *cid, const void *payload, size_t plen,
    uint8_t qos, uint8_t retain, long long ms)
{
	return msg_new(topic, strlen(topic), cid, strlen(cid), NULL, 0,
	    payload, plen, qos, retain, ms);
}

/* Submits, retrying while the queue is full; returns the seq. */
static uint64_t
submit(struct store *s, uint8_t op, uint8_t flags, struct msg *m,
    const char *cid, uint16_t pid)
{
	struct store_item it;
	struct timespec ts = { 0, 1000000L };
	uint64_t seq = 0;
	int rc;

	memset(&it, 0, sizeof it);
	it.op = op;
	it.flags = flags;
	it.msg = m;
	it.packet_id = pid;
	it.client_id = cid != NULL ? gw_strdup(cid) : NULL;
	while ((rc = store_submit(s, &it, &seq)) == GW_EFULL)
		nanosleep(&ts, NULL);
	CU_ASSERT_EQUAL(rc, 0);
	return seq;
}

static bool
wait_seq(struct store *s, uint64_t seq, long long ms)
{
	struct timespec ts = { 0, 2000000L };
	long long end = clock_mono_ms() + ms;

	while (store_committed_seq(s) < seq) {
		if (clock_mono_ms() > end)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

static int
schema_version_max(void)
{
	const struct schema_file *f;
	int v = 0;

	for (f = schema_files; f->name != NULL; f++)
		v = atoi(f->name);
	return v;
}

static void
test_schema_new(void)
{
	static const char *tables[] = { "messages", "outbox", "outbox_dead",
	    "rejected", "retained", "sessions", "session_msgs",
	    "qos2_inflight", "mqlite_meta", "mqlite_rollup_state" };
	const char *path = new_db_path();
	struct store *s;
	sqlite3 *db;
	char sql[256], id[64], mode[16];
	size_t i;

	s = open_store(path, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_close(s);
	db = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT(schema_version_max() >= 1);
	CU_ASSERT_EQUAL(testdb_int(db, "PRAGMA user_version"),
	    schema_version_max());
	CU_ASSERT_EQUAL(testdb_int(db, "PRAGMA auto_vacuum"), 2);
	CU_ASSERT(testdb_text(db, "PRAGMA journal_mode", mode, sizeof mode));
	CU_ASSERT_STRING_EQUAL(mode, "wal");
	for (i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema"
		    " WHERE type = 'table' AND name = '%s'", tables[i]);
		CU_ASSERT_EQUAL(testdb_int(db, sql), 1);
	}
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM sqlite_schema"
	    " WHERE type = 'index' AND name = 'messages_received_ms'"), 1);
	/* No topic index: it costs half the ingest rate. */
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM sqlite_schema"
	    " WHERE type = 'index' AND tbl_name = 'messages'"), 1);
	CU_ASSERT(testdb_text(db, "SELECT value FROM mqlite_meta"
	    " WHERE key = 'instance_id'", id, sizeof id));
	CU_ASSERT_EQUAL(strlen(id), 32);
	CU_ASSERT_EQUAL(strspn(id, "0123456789abcdef"), 32);
	/* The messages table is exactly the documented one. */
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM"
	    " pragma_table_info('messages')"), 7);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT pk FROM"
	    " pragma_table_info('messages') WHERE name = 'id'"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM"
	    " pragma_table_info('messages') WHERE name = 'payload'"
	    " AND type = ''"), 1);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT \"notnull\" FROM"
	    " pragma_table_info('messages') WHERE name = 'topic'"), 1);
	sqlite3_close(db);
}

static void
test_schema_wal_first(void)
{
	const char *path = new_db_path();
	char p[128];
	struct store *s;
	sqlite3 *db = NULL;

	/* An empty file already switched to WAL (page 1 written). */
	snprintf(p, sizeof p, "%s", path);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(p, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_store(p, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_close(s);
	db = open_raw(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "PRAGMA auto_vacuum"), 2);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM mqlite_meta"), 1);
	sqlite3_close(db);
}

static void
test_schema_reopen(void)
{
	const char *path = new_db_path();
	char p[128], id1[64], id2[64];
	struct store *s;
	sqlite3 *db;
	struct gw_error err;
	struct store_opts o;

	snprintf(p, sizeof p, "%s", path);
	s = open_store(p, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_close(s);
	db = open_raw(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT(testdb_text(db, "SELECT value FROM mqlite_meta"
	    " WHERE key = 'instance_id'", id1, sizeof id1));
	/* If the migration ran again it would recreate this index. */
	CU_ASSERT_EQUAL(sqlite3_exec(db, "DROP INDEX messages_received_ms",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	s = open_store(p, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_close(s);
	db = open_raw(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT(testdb_text(db, "SELECT value FROM mqlite_meta"
	    " WHERE key = 'instance_id'", id2, sizeof id2));
	CU_ASSERT_STRING_EQUAL(id1, id2);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name = 'messages_received_ms'"), 0);
	CU_ASSERT_EQUAL(testdb_int(db, "PRAGMA user_version"),
	    schema_version_max());
	/* A database from a newer mqlite is refused. */
	CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version = 999", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	memset(&o, 0, sizeof o);
	memset(&err, 0, sizeof err);
	o.path = p;
	CU_ASSERT_PTR_NULL(store_open(&o, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "newer"));
	CU_ASSERT_STRING_EQUAL(err.path, p);
}

/* Opens path with database.page_size ps; NULL and err filled on failure. */
static struct store *
open_store_ps(const char *path, unsigned ps, struct gw_error *err)
{
	struct store_opts o;

	memset(&o, 0, sizeof o);
	memset(err, 0, sizeof *err);
	o.path = path;
	o.durability = STORE_DURABILITY_FULL;
	o.commit_max_items = 1024;
	o.commit_max_ms = 10;
	o.page_size = ps;
	return store_open(&o, err);
}

/* Stores n rows (every 100th QoS 1), waits for them; the last seq. */
static void
store_rows(struct store *s, int from, int n)
{
	char topic[32], payload[96];
	uint64_t seq = 0;
	int i;

	for (i = from; i < from + n; i++) {
		snprintf(topic, sizeof topic, "site/%d/t", i % 7);
		snprintf(payload, sizeof payload, "{\"v\":%d,\"pad\":"
		    "\"%060d\"}", i, i);
		seq = submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk(topic, "dev-1", payload, strlen(payload),
		    i % 100 == 0, 0, 1700000000000LL + i), NULL, 0);
	}
	CU_ASSERT(wait_seq(s, seq, 20000));
}

/*
 * database.page_size: a new file gets it, an existing one keeps its own
 * and works on; a size that is not a power of 2 is refused by name. The
 * rows go through the WAL writes the VFS joins (transactions of 1,024
 * rows, more than its 64 KB buffer) and are read back by another
 * connection while the store is open, then checked whole.
 */
static void
test_page_size(void)
{
	const char *path = new_db_path();
	char p[128], ok[16];
	struct gw_error err;
	struct store *s;
	sqlite3 *db;

	snprintf(p, sizeof p, "%s", path);
	s = open_store_ps(p, 1024, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	store_rows(s, 0, 3000);
	db = open_raw(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "PRAGMA page_size"), 1024);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"), 3000);
	/* Each 4 + 1 + 8 + 60 + 2 bytes and the digits of its number. */
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT sum(length(payload))"
	    " FROM messages"), 75 * 3000 + 10 + 90 * 2 + 900 * 3 + 2000 * 4);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages WHERE"
	    " payload = printf('{\"v\":%d,\"pad\":\"%060d\"}',"
	    " received_ms - 1700000000000, received_ms - 1700000000000)"),
	    3000);
	sqlite3_close(db);
	store_close(s);

	/* Reopened with the default: keeps 1024. */
	s = open_store_ps(p, 0, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	store_rows(s, 3000, 500);
	store_close(s);
	db = open_raw(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "PRAGMA page_size"), 1024);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"), 3500);
	CU_ASSERT(testdb_text(db, "PRAGMA integrity_check", ok, sizeof ok));
	CU_ASSERT_STRING_EQUAL(ok, "ok");
	sqlite3_close(db);

	/* A 4 KB database opened with 2048 stays 4 KB. */
	path = new_db_path();
	snprintf(p, sizeof p, "%s", path);
	s = open_store_ps(p, 0, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_close(s);
	s = open_store_ps(p, 2048, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	store_rows(s, 0, 200);
	store_close(s);
	db = open_raw(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "PRAGMA page_size"), 4096);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"), 200);
	sqlite3_close(db);

	CU_ASSERT_PTR_NULL(open_store_ps(new_db_path(), 1000, &err));
	CU_ASSERT_STRING_EQUAL(err.path, "database.page_size");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "power of 2"));
}

static void
test_open_fails(void)
{
	struct store_opts o;
	struct gw_error err;
	struct store *s;
	char p[128], q[256];

	memset(&o, 0, sizeof o);
	memset(&err, 0, sizeof err);
	snprintf(p, sizeof p, "%s/no/such/dir/x.db", tmpdir);
	o.path = p;
	CU_ASSERT_PTR_NULL(store_open(&o, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot open database"));
	CU_ASSERT_STRING_EQUAL(err.path, p);

	/* Not a database at all. */
	snprintf(p, sizeof p, "%s/garbage.db", tmpdir);
	{
		FILE *f = fopen(p, "w");

		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs("this is not an SQLite database, but long enough to "
		    "have a header of one hundred bytes...................."
		    "...............................................", f);
		fclose(f);
	}
	/* database.on_corrupt "refuse": left alone, a clear error. */
	memset(&err, 0, sizeof err);
	o.on_corrupt_refuse = true;
	CU_ASSERT_PTR_NULL(store_open(&o, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "refuse"));
	CU_ASSERT_EQUAL(access(p, F_OK), 0);
	/* "quarantine" (the default): moved aside, a fresh file opened. */
	o.on_corrupt_refuse = false;
	memset(&err, 0, sizeof err);
	s = store_open(&o, &err);
	CU_ASSERT_PTR_NOT_NULL(s);
	store_close(s);
	snprintf(q, sizeof q, "ls %s/garbage.db.corrupt-* >/dev/null 2>&1",
	    tmpdir);
	CU_ASSERT_EQUAL(system(q), 0);
	memset(&o, 0, sizeof o);
	CU_ASSERT_PTR_NULL(store_open(&o, &err));
	store_close(NULL);
}

#define BULK	5000
/*
 * test_checkpoint: rows of 1 KB, and the WAL bound: 16 MB, past which the
 * store checkpoints between batches (writer.c), plus what arrives while it
 * waits 50 ms between two checkpoint attempts, with a wide margin. Without
 * that checkpoint the WAL would hold all the rows, about 40 MB.
 */
#define CKPT_ROWS	30000
#define CKPT_WAL_BOUND	(24ULL << 20)

static void
test_bulk(void)
{
	const char *path = new_db_path();
	struct store_stats st;
	struct store *s;
	struct pollfd pfd;
	sqlite3 *db;
	sqlite3_stmt *q;
	char topic[32], payload[32];
	uint64_t seq = 0, prev = 0;
	int i, bad = 0;

	s = open_store(path, 256, 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_queue_free(s), 1024);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	for (i = 0; i < BULK; i++) {
		snprintf(topic, sizeof topic, "site/%d/t", i);
		snprintf(payload, sizeof payload, "{\"v\":%d}", i);
		seq = submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk(topic, "dev-1", payload, strlen(payload), i % 3,
		    i % 2, 1700000000000LL + i), NULL, 0);
		if (seq != prev + 1)
			bad++;
		prev = seq;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(seq, BULK);
	CU_ASSERT_FATAL(wait_seq(s, seq, 10000));
	pfd.fd = store_event_fd(s);
	pfd.events = POLLIN;
	CU_ASSERT_EQUAL(poll(&pfd, 1, 0), 1);
	store_ack_event(s);
	CU_ASSERT_EQUAL(poll(&pfd, 1, 0), 0);
	store_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.rows, BULK);
	CU_ASSERT_EQUAL(st.committed_seq, BULK);
	/* No transaction holds more than commit_max_items (256). */
	CU_ASSERT(st.batches >= (BULK + 255) / 256);
	CU_ASSERT_EQUAL(st.commit_failures, 0);

	/* Read while the store is open: WAL readers see the commits. */
	db = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"), BULK);
	CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, "SELECT received_ms,"
	    " topic, client_id, qos, retain, payload, typeof(payload)"
	    " FROM messages ORDER BY id", -1, &q, NULL), SQLITE_OK);
	bad = 0;
	for (i = 0; sqlite3_step(q) == SQLITE_ROW; i++) {
		snprintf(topic, sizeof topic, "site/%d/t", i);
		snprintf(payload, sizeof payload, "{\"v\":%d}", i);
		if (sqlite3_column_int64(q, 0) != 1700000000000LL + i ||
		    strcmp((const char *)sqlite3_column_text(q, 1), topic) ||
		    strcmp((const char *)sqlite3_column_text(q, 2), "dev-1") ||
		    sqlite3_column_int(q, 3) != i % 3 ||
		    sqlite3_column_int(q, 4) != i % 2 ||
		    strcmp((const char *)sqlite3_column_text(q, 5), payload) ||
		    strcmp((const char *)sqlite3_column_text(q, 6), "text"))
			bad++;
	}
	sqlite3_finalize(q);
	CU_ASSERT_EQUAL(i, BULK);
	CU_ASSERT_EQUAL(bad, 0);
	sqlite3_close(db);
	store_close(s);
}

static void
test_payload_types(void)
{
	static const struct {
		const char	*p;
		size_t		 len;
		const char	*type;
	} cases[] = {
		{ "hello", 5, "text" },
		{ "", 0, "text" },
		{ "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, "text" },
		{ "\xff\xfe\x00\x01", 4, "blob" },
		{ "a\0b", 3, "blob" },
		{ "\xc0\xaf", 2, "blob" },		/* overlong '/' */
		{ "\xed\xa0\x80", 3, "blob" },		/* surrogate */
		{ "abc\xe2\x82", 5, "blob" },		/* truncated */
	};
	const char *path = new_db_path();
	struct store *s;
	sqlite3 *db;
	sqlite3_stmt *q;
	uint64_t seq = 0;
	size_t i;

	s = open_store(path, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		seq = submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk("p", i == 0 ? "" : "c", cases[i].p, cases[i].len, 1, 0,
		    5), NULL, 0);
	CU_ASSERT_FATAL(wait_seq(s, seq, 10000));
	db = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, "SELECT typeof(payload),"
	    " payload, client_id IS NULL FROM messages ORDER BY id", -1, &q,
	    NULL), SQLITE_OK);
	for (i = 0; sqlite3_step(q) == SQLITE_ROW; i++) {
		if (i >= sizeof cases / sizeof cases[0])
			break;
		CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 0),
		    cases[i].type);
		CU_ASSERT_EQUAL((size_t)sqlite3_column_bytes(q, 1),
		    cases[i].len);
		if (cases[i].len > 0)
			CU_ASSERT(memcmp(sqlite3_column_blob(q, 1), cases[i].p,
			    cases[i].len) == 0);
		CU_ASSERT_EQUAL(sqlite3_column_int(q, 2), i == 0);
	}
	CU_ASSERT_EQUAL(i, sizeof cases / sizeof cases[0]);
	sqlite3_finalize(q);
	sqlite3_close(db);
	store_close(s);
}

struct retained_seen {
	int		 n;
	char		 topic[8][32];
	struct msg	*m[8];
};

static int
retained_cb(struct msg *m, void *ctx)
{
	struct retained_seen *r = ctx;

	if (r->n < 8) {
		snprintf(r->topic[r->n], sizeof r->topic[0], "%s", m->topic);
		r->m[r->n++] = m;
	} else
		msg_unref(&m);
	return 0;
}

static void
test_retained(void)
{
	const char *path = new_db_path();
	char p[128];
	struct retained_seen r;
	struct store *s;
	uint64_t seq;
	int i;

	snprintf(p, sizeof p, "%s", path);
	s = open_store(p, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	submit(s, STORE_OP_PUBLISH, STORE_F_RETAIN | STORE_F_ROW,
	    mk("a/b", "c1", "x", 1, 0, 1, 10), NULL, 0);
	submit(s, STORE_OP_PUBLISH, STORE_F_RETAIN,
	    mk("a/b", "c2", "\x00\xffy", 3, 1, 1, 20), NULL, 0);
	submit(s, STORE_OP_PUBLISH, STORE_F_RETAIN,
	    mk("c", "c1", "z", 1, 2, 1, 30), NULL, 0);
	submit(s, STORE_OP_PUBLISH, STORE_F_RETAIN,
	    mk("d", "", "w", 1, 1, 1, 40), NULL, 0);
	seq = submit(s, STORE_OP_PUBLISH, STORE_F_RETAIN,
	    mk("c", "c1", "", 0, 0, 1, 50), NULL, 0);
	CU_ASSERT(wait_seq(s, seq, 10000));
	store_close(s);

	s = open_store(p, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(&r, 0, sizeof r);
	CU_ASSERT_EQUAL(store_load_retained(s, retained_cb, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.n, 2);
	CU_ASSERT_STRING_EQUAL(r.topic[0], "a/b");
	CU_ASSERT_EQUAL(r.m[0]->payload_len, 3);
	CU_ASSERT(memcmp(r.m[0]->payload, "\x00\xffy", 3) == 0);
	CU_ASSERT_EQUAL(r.m[0]->qos, 1);
	CU_ASSERT_EQUAL(r.m[0]->retain, 1);
	CU_ASSERT_EQUAL(r.m[0]->received_ms, 20);
	CU_ASSERT_STRING_EQUAL(r.m[0]->client_id, "c2");
	CU_ASSERT_STRING_EQUAL(r.topic[1], "d");
	CU_ASSERT_EQUAL(r.m[1]->client_id_len, 0);
	CU_ASSERT_EQUAL(r.m[1]->received_ms, 40);
	for (i = 0; i < r.n; i++)
		msg_unref(&r.m[i]);
	store_close(s);
}

struct qos2_seen {
	int	n;
	char	cid[8][16];
	int	pid[8];
};

static void
qos2_cb(const char *cid, uint16_t pid, void *ctx)
{
	struct qos2_seen *q = ctx;

	if (q->n < 8) {
		snprintf(q->cid[q->n], sizeof q->cid[0], "%s", cid);
		q->pid[q->n++] = pid;
	}
}

static void
test_qos2(void)
{
	const char *path = new_db_path();
	char p[128];
	struct qos2_seen q;
	struct store *s;
	uint64_t seq;

	snprintf(p, sizeof p, "%s", path);
	s = open_store(p, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	submit(s, STORE_OP_PUBLISH, STORE_F_ROW | STORE_F_QOS2,
	    mk("t", "c1", "1", 1, 2, 0, 1), NULL, 7);
	submit(s, STORE_OP_PUBLISH, STORE_F_ROW | STORE_F_QOS2,
	    mk("t", "c1", "2", 1, 2, 0, 1), NULL, 8);
	/* A duplicate (resent after restart) is ignored, not an error. */
	submit(s, STORE_OP_PUBLISH, STORE_F_QOS2,
	    mk("t", "c1", "2", 1, 2, 0, 1), NULL, 8);
	submit(s, STORE_OP_PUBLISH, STORE_F_QOS2,
	    mk("t", "c2", "3", 1, 2, 0, 1), NULL, 7);
	submit(s, STORE_OP_QOS2_DEL, 0, NULL, "c1", 7);
	seq = submit(s, STORE_OP_QOS2_DEL, 0, NULL, "nobody", 9);
	CU_ASSERT(wait_seq(s, seq, 10000));
	store_close(s);

	s = open_store(p, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(&q, 0, sizeof q);
	CU_ASSERT_EQUAL(store_load_qos2(s, qos2_cb, &q), 0);
	CU_ASSERT_EQUAL_FATAL(q.n, 2);
	CU_ASSERT_STRING_EQUAL(q.cid[0], "c1");
	CU_ASSERT_EQUAL(q.pid[0], 8);
	CU_ASSERT_STRING_EQUAL(q.cid[1], "c2");
	CU_ASSERT_EQUAL(q.pid[1], 7);
	store_close(s);
}

static void
test_barrier(void)
{
	const char *path = new_db_path();
	struct store_stats st;
	struct store *s;
	uint64_t seq;

	s = open_store(path, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	submit(s, STORE_OP_BARRIER, 0, NULL, NULL, 0);
	/* A publish that produced nothing is a barrier too. */
	seq = submit(s, STORE_OP_PUBLISH, 0, mk("t", "c", "x", 1, 1, 0, 1),
	    NULL, 0);
	CU_ASSERT(wait_seq(s, seq, 10000));
	store_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.rows, 0);
	store_close(s);
}

/* The queue is also bounded by the bytes its messages hold. */
static void
test_queue_bytes_bound(void)
{
	struct store_opts o;
	struct gw_error err;
	struct store_item it;
	struct store *s;
	struct msg *m;
	char payload[40000];
	uint64_t seq;
	int i, taken = 0;

	memset(&o, 0, sizeof o);
	memset(&err, 0, sizeof err);
	memset(payload, 'p', sizeof payload);
	o.path = new_db_path();
	o.queue_cap = 1000;
	o.queue_bytes = 100000;	/* full after three 40 kB messages */
	s = store_open(&o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < 5; i++) {
		m = msg_new("t", 1, "c", 1, NULL, 0, payload, sizeof payload,
		    1, 0, i);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		memset(&it, 0, sizeof it);
		it.op = STORE_OP_PUBLISH;
		it.flags = STORE_F_ROW;
		it.msg = m;
		if (store_submit(s, &it, &seq) == 0)
			taken++;
		else
			msg_unref(&m);
	}
	CU_ASSERT_EQUAL(taken, 3);
	CU_ASSERT_EQUAL(store_queue_free(s), 0);
	/* Committing frees the bytes again. */
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	for (i = 0; i < 500 && store_committed_seq(s) < seq; i++)
		usleep(10000);
	for (i = 0; i < 500 && store_queue_free(s) == 0; i++)
		usleep(10000);
	CU_ASSERT(store_queue_free(s) > 0);
	store_close(s);
}

static void
test_full_and_close(void)
{
	const char *path = new_db_path();
	struct store_item it;
	struct store *s;
	struct msg *m;
	sqlite3 *db;
	uint64_t seq;
	int i;

	/* Thread never started: the queue fills, close commits it. */
	s = open_store(path, 0, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < 4; i++)
		submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk("t", "c", "x", 1, 1, 0, i), NULL, 0);
	CU_ASSERT_EQUAL(store_queue_free(s), 0);
	m = mk("t", "c", "y", 1, 1, 0, 99);
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_PUBLISH;
	it.flags = STORE_F_ROW;
	it.msg = m;
	seq = 12345;
	CU_ASSERT_EQUAL(store_submit(s, &it, &seq), GW_EFULL);
	CU_ASSERT_EQUAL(seq, 12345);
	CU_ASSERT_EQUAL(atomic_load(&m->refs), 1);	/* not taken */
	msg_unref(&m);
	it.op = 77;
	CU_ASSERT_EQUAL(store_submit(s, &it, &seq), GW_EMALFORMED);
	CU_ASSERT_EQUAL(store_committed_seq(s), 0);
	store_close(s);
	db = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"), 4);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"
	    " WHERE received_ms = 99"), 0);
	sqlite3_close(db);

	/* Thread running: close right after submitting drains it all. */
	path = new_db_path();
	s = open_store(path, 64, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	for (i = 0; i < 3000; i++)
		submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk("t", "c", "x", 1, 0, 0, i), NULL, 0);
	store_close(s);
	db = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"), 3000);
	sqlite3_close(db);
}

#define GROUP		1000
#define GROUP_MAX	256

/*
 * Group commit: items queued together share transactions. Queued before the
 * thread starts, 1,000 QoS 1 items commit in ceil(1000 / commit_max_items)
 * = 4 transactions, not one each.
 */
static void
test_group_commit(void)
{
	const char *path = new_db_path();
	const unsigned long long want = (GROUP + GROUP_MAX - 1) / GROUP_MAX;
	struct store_stats st;
	struct store *s;
	sqlite3 *db;
	uint64_t seq = 0;
	int i;

	s = open_store(path, GROUP_MAX, 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < GROUP; i++)
		seq = submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk("group/t", "dev-1", "x", 1, 1, 0, i), NULL, 0);
	CU_ASSERT_EQUAL(seq, GROUP);
	store_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.batches, 0);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	CU_ASSERT_FATAL(wait_seq(s, seq, 20000));
	store_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.rows, GROUP);
	CU_ASSERT_EQUAL(st.batches, want);
	if (st.batches != want)
		fprintf(stderr, "group commit: %llu batches for %d items, "
		    "expected %llu\n", (unsigned long long)st.batches, GROUP,
		    want);
	store_close(s);
	db = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM messages"),
	    GROUP);
	sqlite3_close(db);
}

/*
 * The WAL stays bounded under sustained ingest. Past 4 MB the store asks
 * for background checkpoints, which cannot start the WAL over while the
 * writer keeps appending; past 16 MB it checkpoints itself between two
 * batches and the next commit starts the WAL over. So 30,000 rows of 1 KB
 * (about 40 MB of WAL frames) never leave more than CKPT_WAL_BOUND in the
 * WAL, sampled after every submit. At close, the TRUNCATE checkpoint
 * empties it.
 */
static void
test_checkpoint(void)
{
	const char *path = new_db_path();
	char big[1024];
	struct store_stats st;
	struct store *s;
	struct stat sb;
	char wal[160];
	sqlite3 *reader;
	uint64_t seq = 0, peak = 0;
	int i;

	memset(big, 'x', sizeof big);
	s = open_store(path, 128, 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	for (i = 0; i < CKPT_ROWS; i++) {
		seq = submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk("t", "c", big, sizeof big, 0, 0, i), NULL, 0);
		store_get_stats(s, &st);
		if (st.wal_bytes > peak)
			peak = st.wal_bytes;
	}
	CU_ASSERT_FATAL(wait_seq(s, seq, 60000));
	store_get_stats(s, &st);
	if (st.wal_bytes > peak)
		peak = st.wal_bytes;
	fprintf(stderr, "checkpoint: WAL at most %llu bytes, %llu at the "
	    "end, %llu checkpoints\n", (unsigned long long)peak,
	    (unsigned long long)st.wal_bytes,
	    (unsigned long long)st.checkpoints);
	CU_ASSERT(st.checkpoints >= 1);
	CU_ASSERT(peak <= CKPT_WAL_BOUND);
	/*
	 * A reader keeps the WAL file from being deleted when the store's
	 * connections close, so only store_close()'s TRUNCATE checkpoint
	 * can leave it empty.
	 */
	reader = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(reader);
	CU_ASSERT_EQUAL(testdb_int(reader, "SELECT count(*) FROM messages"),
	    CKPT_ROWS);
	store_close(s);
	snprintf(wal, sizeof wal, "%s-wal", path);
	CU_ASSERT_EQUAL(stat(wal, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_size, 0);
	sqlite3_close(reader);
}

static void
test_retry_locked(void)
{
	const char *path = new_db_path();
	struct store_opts o;
	struct gw_error err;
	struct store_stats st;
	struct store *s;
	sqlite3 *lock;
	uint64_t seq = 0, before;
	long long t0;
	int i;

	memset(&o, 0, sizeof o);
	o.path = path;
	o.commit_max_items = 32;
	o.commit_max_ms = 5;
	o.queue_cap = 1024;
	o.busy_timeout_ms = 50;
	s = store_open(&o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(store_start(s), 0);
	before = submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
	    mk("t", "c", "first", 5, 1, 0, 0), NULL, 0);
	CU_ASSERT_FATAL(wait_seq(s, before, 10000));

	lock = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(lock);
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(lock, "BEGIN EXCLUSIVE; INSERT"
	    " INTO mqlite_meta (key, value) VALUES ('lock', 1)", NULL, NULL,
	    NULL), SQLITE_OK);
	for (i = 0; i < 200; i++)
		seq = submit(s, STORE_OP_PUBLISH, STORE_F_ROW,
		    mk("t", "c", "held", 4, 1, 0, i + 1), NULL, 0);
	t0 = clock_mono_ms();
	while (clock_mono_ms() - t0 < 1000) {
		CU_ASSERT_EQUAL(store_committed_seq(s), before);
		usleep(20000);
	}
	store_get_stats(s, &st);
	CU_ASSERT(st.commit_failures >= 1);
	CU_ASSERT_EQUAL(st.committed_seq, before);
	CU_ASSERT_EQUAL(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);

	CU_ASSERT_FATAL(wait_seq(s, seq, 10000));
	CU_ASSERT_EQUAL(testdb_int(lock, "SELECT count(*) FROM messages"),
	    201);
	CU_ASSERT_EQUAL(testdb_int(lock, "SELECT count(DISTINCT received_ms)"
	    " FROM messages"), 201);
	CU_ASSERT_EQUAL(testdb_int(lock, "SELECT count(*) FROM mqlite_meta"
	    " WHERE key = 'lock'"), 1);
	sqlite3_close(lock);
	store_close(s);
}

/* Submits a publish of n on topic r/x matched by rule 0 of set. */
static void
submit_rule_row(struct store *s, struct rule_set *set, int n)
{
	struct store_item it;
	struct timespec ts = { 0, 1000000L };
	char payload[32];
	uint64_t seq;
	int rc;

	snprintf(payload, sizeof payload, "{\"n\": %d}", n);
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_PUBLISH;
	it.msg = mk("r/x", "c", payload, strlen(payload), 1, 0, 1);
	it.rules = rule_set_ref(set);
	it.nrules = 1;
	it.rule_id[0] = 0;
	while ((rc = store_submit(s, &it, &seq)) == GW_EFULL)
		nanosleep(&ts, NULL);
	CU_ASSERT_EQUAL(rc, 0);
}

/*
 * Rule rows go in several per statement, buffered per rule set; across a
 * reload the older set's rows still come first in their table, also when
 * the newer set's buffer fills up in the same batch. All in one batch:
 * the store's thread never started, store_close() writes everything.
 */
static void
test_rule_rows_across_reload(void)
{
	static const char ja[] = "[{\"name\": \"a\", \"topic\": \"r/+\", "
	    "\"sqlite\": {\"table\": \"t\", \"columns\": "
	    "{\"n\": \"{payload.n}\"}}}]";
	static const char jb[] = "[{\"name\": \"b\", \"topic\": \"r/+\", "
	    "\"sqlite\": {\"table\": \"t\", \"columns\": "
	    "{\"n\": \"{payload.n}\", \"v\": \"b\"}}}]";
	const char *path = new_db_path();
	struct rule_set *a, *b;
	struct store_item it;
	struct store *s;
	sqlite3 *db;
	uint64_t seq;
	int i, n = 0;

	a = rules_load_json(ja, strlen(ja), "a.json", NULL, NULL, NULL, NULL);
	b = rules_load_json(jb, strlen(jb), "b.json", NULL, NULL, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	s = open_store(path, 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_prepare_rules(s, a, NULL), 0);
	for (i = 0; i < 10; i++)
		submit_rule_row(s, a, n++);
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_RULES;
	it.rules = rule_set_ref(b);
	CU_ASSERT_EQUAL(store_submit(s, &it, &seq), 0);
	/* Publishes matched before the switch, then after it. */
	for (i = 0; i < 5; i++)
		submit_rule_row(s, a, n++);
	for (i = 0; i < 40; i++)
		submit_rule_row(s, b, n++);
	for (i = 0; i < 3; i++)
		submit_rule_row(s, a, n++);
	store_close(s);

	db = open_raw(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t"), n);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t WHERE"
	    " n = id - 1"), n);
	CU_ASSERT_EQUAL(testdb_int(db, "SELECT count(*) FROM t WHERE"
	    " v = 'b'"), 40);
	sqlite3_close(db);
	rule_set_unref(&a);
	rule_set_unref(&b);
}

int
main(void)
{
	CU_pSuite s;
	int status;

	if (testdb_tmpdir(tmpdir, sizeof tmpdir, "store") != 0)
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("store", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "schema on a new db", test_schema_new) == NULL ||
	    CU_add_test(s, "schema after WAL", test_schema_wal_first) == NULL ||
	    CU_add_test(s, "reopen keeps schema", test_schema_reopen) == NULL ||
	    CU_add_test(s, "open failures", test_open_fails) == NULL ||
	    CU_add_test(s, "page size", test_page_size) == NULL ||
	    CU_add_test(s, "5000 rows", test_bulk) == NULL ||
	    CU_add_test(s, "TEXT vs BLOB", test_payload_types) == NULL ||
	    CU_add_test(s, "retained", test_retained) == NULL ||
	    CU_add_test(s, "qos2 inflight", test_qos2) == NULL ||
	    CU_add_test(s, "barrier", test_barrier) == NULL ||
	    CU_add_test(s, "full and close", test_full_and_close) == NULL ||
	    CU_add_test(s, "queue bytes bound", test_queue_bytes_bound) ==
	    NULL ||
	    CU_add_test(s, "group commit", test_group_commit) == NULL ||
	    CU_add_test(s, "checkpoint", test_checkpoint) == NULL ||
	    CU_add_test(s, "retry while locked", test_retry_locked) == NULL ||
	    CU_add_test(s, "rule rows in order across a reload",
	    test_rule_rows_across_reload) == NULL) {
		return cutest_setup_failed();
	}
	status = cutest_run();
	testdb_rmdir(tmpdir);
	return status;
}
