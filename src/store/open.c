/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Opening and closing the store's database: the connection, migrations,
 * journal and synchronous modes, the prepared statements and everything
 * store_open() builds around them. The thread that uses them is writer.c.
 *
 * DESIGN
 *
 * store_open() runs on the main thread before the store thread exists, so
 * nothing here locks. Any failure frees what was built (store_free) and
 * reports the database path and SQLite's reason through gw_error; the
 * caller decides whether that ends the daemon. Before connecting it lets
 * heal.c check the file (and move a damaged one aside); damage found while
 * connecting is healed once more, then it gives up.
 *
 * store_connect() / store_disconnect() build and tear down everything tied
 * to the connection, so that store_heal() can, on the store thread, swap a
 * file damaged at run time for a fresh one while the queue, the batch in
 * memory and the counters stay. The two objects other threads read (the
 * outbox's fullness, the retention counters) are published through atomic
 * pointers and the replaced ones kept until store_free().
 */

#include <sys/eventfd.h>

#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "broker/msg.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "mqtt/utf8.h"
#include "queue.h"
#include "rules/rules.h"
#include "sink/sqlite.h"
#include "store/checkpoint.h"
#include "store/forward.h"
#include "store/heal.h"
#include "store/iostat.h"
#include "store/retention.h"
#include "store/rollup.h"
#include "store/schema.h"
#include "store/store.h"
#include "store/store_int.h"

const char *const store_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_MSG_INSERT] = "INSERT INTO messages"
	    " (received_ms, topic, client_id, qos, retain, payload)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_RETAIN_UPSERT] = "INSERT INTO retained"
	    " (topic, payload, qos, received_ms, client_id, props)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload,"
	    " qos = excluded.qos, received_ms = excluded.received_ms,"
	    " client_id = excluded.client_id, props = excluded.props",
	[ST_RETAIN_DELETE] = "DELETE FROM retained WHERE topic = ?1",
	[ST_QOS2_INSERT] = "INSERT OR IGNORE INTO qos2_inflight"
	    " (client_id, packet_id) VALUES (?1, ?2)",
	[ST_QOS2_DELETE] = "DELETE FROM qos2_inflight"
	    " WHERE client_id = ?1 AND (?2 = 0 OR packet_id = ?2)",
	[ST_SESSION_UPSERT] = "INSERT INTO sessions (client_id, subs,"
	    " connected_ms, disconnected_ms, protocol, expiry_s)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (client_id) DO UPDATE SET subs = excluded.subs,"
	    " disconnected_ms = excluded.disconnected_ms,"
	    " protocol = excluded.protocol, expiry_s = excluded.expiry_s",
	[ST_SESSION_DELETE] = "DELETE FROM sessions WHERE client_id = ?1",
	[ST_SMSG_DELETE_CLIENT] = "DELETE FROM session_msgs"
	    " WHERE client_id = ?1",
	[ST_SMSG_INSERT] = "INSERT OR REPLACE INTO session_msgs (id,"
	    " client_id, state, topic, qos, retain, received_ms, payload,"
	    " props) VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_SMSG_DELETE] = "DELETE FROM session_msgs WHERE id = ?1",
	[ST_SMSG_PUBREL] = "UPDATE session_msgs SET packet_id = ?2,"
	    " state = 2 WHERE id = ?1",
	[ST_REJECTED_INSERT] = "INSERT INTO rejected (received_ms,"
	    " rejected_ms, rule, topic, client_id, qos, reason, payload)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_RETAIN_EXPIRE] = "DELETE FROM retained WHERE topic = ?1"
	    " AND received_ms = ?2",
};

static int	store_wal_hook(void *, sqlite3 *, const char *, int);
static int	store_prepare_multi(struct store *);
static bool	store_stop_signalled(void *);
static bool	store_past_deadline(void *);
static int	store_busy(void *, int);

/* Runs a PRAGMA, copying its first result column (if any) into out. */
int
store_pragma(struct store *s, const char *sql, char *out, size_t outlen,
    struct gw_error *err)
{
	sqlite3_stmt *st;
	const unsigned char *v;
	int rc;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		gw_error_set(err, s->path, "%s: %s", sql,
		    sqlite3_errmsg(s->db));
		return GW_EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_text(st, 0);
		if (out != NULL && outlen > 0 && out[0] == '\0' && v != NULL)
			snprintf(out, outlen, "%s", (const char *)v);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		gw_error_set(err, s->path, "%s: %s", sql,
		    sqlite3_errmsg(s->db));
		return GW_EIO;
	}
	return 0;
}

/*
 * Waits for a lock up to busy_timeout (none while s->busy_off), 10 ms at
 * a time, and not past the shutdown deadline. 1: try again.
 */
static int
store_busy(void *arg, int n)
{
	struct store *s = arg;
	struct timespec ts = { 0, 10 * 1000000L };

	if (s->busy_off || n * 10 >= s->busy_ms || store_past_deadline(s))
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

/* SQLite calls this after every commit with the WAL size in frames. */
static int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *s = arg;

	(void)db;
	(void)name;
	if (frames < s->wal_frames)
		s->ckpt_runs_from = 0;	/* the WAL started over */
	s->wal_frames = frames;
	atomic_store_explicit(&s->wal_bytes,
	    (uint64_t)frames * (uint64_t)s->page_size, memory_order_relaxed);
	return SQLITE_OK;
}

/*
 * Opens or creates the database at opts->path, applies the migrations,
 * switches to WAL with the configured durability and prepares the
 * statements. Returns a new store (thread not started) or NULL with err
 * filled: err->path is the database path, err->msg says why (e.g.
 * "cannot open database: unable to open database file (No such file or
 * directory)"). Main thread.
 */
struct store *
store_open(const struct store_opts *opts, struct gw_error *err)
{
	struct store *s;
	size_t qcap;
	char why[256];

	if (opts == NULL || opts->path == NULL || opts->path[0] == '\0') {
		gw_error_set(err, "database.path", "no database path");
		return NULL;
	}
	if ((s = gw_calloc(1, sizeof *s)) == NULL) {
		gw_error_set(err, opts->path, "out of memory");
		return NULL;
	}
	s->efd = -1;
	s->max_items = opts->commit_max_items != 0 ?
	    opts->commit_max_items : STORE_DEF_ITEMS;
	s->max_ms = opts->commit_max_ms;
	s->qos0_ms = opts->qos0_commit_ms;
	s->ack_window_ms = opts->ack_window_ms;
	s->new_page_size = opts->page_size != 0 ? opts->page_size : 4096;
	if (s->new_page_size < 512 || s->new_page_size > 65536 ||
	    (s->new_page_size & (s->new_page_size - 1)) != 0) {
		gw_error_set(err, "database.page_size", "%u is not a power "
		    "of 2 from 512 to 65536", s->new_page_size);
		goto fail;
	}
	s->max_queued_bytes = opts->queue_bytes != 0 ? opts->queue_bytes :
	    STORE_DEF_QUEUE_BYTES;
	s->busy_ms = opts->busy_timeout_ms != 0 &&
	    opts->busy_timeout_ms < 3600000 ?
	    (int)opts->busy_timeout_ms : STORE_BUSY_MS;
	qcap = opts->queue_cap != 0 ? opts->queue_cap : STORE_DEF_QUEUE;
	if ((s->path = gw_strdup(opts->path)) == NULL ||
	    (s->q = queue_new(sizeof(struct store_item), qcap)) == NULL ||
	    (s->batch = gw_calloc(s->max_items, sizeof *s->batch)) == NULL) {
		gw_error_set(err, opts->path, "out of memory");
		goto fail;
	}
	if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		gw_error_set(err, opts->path, "eventfd: %s", strerror(errno));
		goto fail;
	}

	s->durability = opts->durability;
	s->max_bytes = opts->max_bytes;
	s->max_age_ms = opts->max_age_ms;
	s->refuse = opts->on_corrupt_refuse;

	/*
	 * Memory statistics cost a global mutex on every SQLite allocation;
	 * nothing here reads them. Only effective before SQLite initialises
	 * (the first store opened), harmless afterwards.
	 */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* Counts flushes for the metrics; without it they read 0. */
	if (iostat_init() != 0)
		log_warn("store: cannot count flushes: no wrappable VFS");
	if (heal_check(s->path, s->refuse, store_stop_signalled, NULL,
	    err) != 0)
		goto fail;
	if (store_connect(s, err) != 0) {
		/* Damage the check did not reach (a page it did not read). */
		if (!s->damaged || s->refuse)
			goto fail;
		store_disconnect(s, false);
		snprintf(why, sizeof why, "%s", err != NULL ? err->msg :
		    "damaged");
		log_error("store: %s is damaged: %s", s->path, why);
		if (heal_quarantine(s->path, why, store_stop_signalled,
		    NULL, err) != 0 || store_connect(s, err) != 0)
			goto fail;
	}
	heal_mark(s->path);
	return s;

fail:
	store_free(s);
	return NULL;
}

/*
 * Opens s->path (creating it), applies the migrations, sets the journal
 * and synchronous modes and prepares everything that uses the connection.
 * 0, or GW_EIO with err filled and s->damaged set when SQLite said the
 * file is damaged; the caller then calls store_disconnect(). Store thread
 * or main thread before it starts.
 */
int
store_connect(struct store *s, struct gw_error *err)
{
	struct retention_opts ro;
	char mode[32], size[32];
	int rc, i, sys, persist;

	s->damaged = false;
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sys = s->db != NULL ? sqlite3_system_errno(s->db) : 0;
		gw_error_set(err, s->path, "cannot open database: %s%s%s%s",
		    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
		    sys != 0 ? " (" : "", sys != 0 ? strerror(sys) : "",
		    sys != 0 ? ")" : "");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		gw_error_set(err, s->path, "cannot open database: file is "
		    "not writable");
		goto fail;
	}
	sqlite3_busy_handler(s->db, store_busy, s);

	/*
	 * Takes effect when the first table of a new file is created (or by
	 * the VACUUM schema.c runs on an empty file not in WAL mode yet); an
	 * existing database keeps its page size.
	 */
	snprintf(size, sizeof size, "PRAGMA page_size = %u", s->new_page_size);
	if (store_pragma(s, size, NULL, 0, err) != 0)
		goto fail;
	/* Migrations first: auto_vacuum must precede page 1 (WAL writes it). */
	if (schema_apply(s->db, err) != 0) {
		if (err != NULL)
			snprintf(err->path, sizeof err->path, "%s", s->path);
		goto fail;
	}
	if (store_pragma(s, "PRAGMA journal_mode = WAL", mode, sizeof mode,
	    err) != 0)
		goto fail;
	s->wal = strcmp(mode, "wal") == 0;
	if (!s->wal)
		log_warn("store: %s: journal_mode is %s, not wal: readers "
		    "will block the writer", s->path, mode);
	/*
	 * Keep -wal and -shm at close: a reader that may not create files in
	 * the folder (a member of the database's group) can open a WAL
	 * database read-only only while both exist.
	 */
	persist = 1;
	(void)sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL,
	    &persist);
	if (store_pragma(s, s->durability == STORE_DURABILITY_NORMAL ?
	    "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
	    NULL, 0, err) != 0 ||
	    store_pragma(s, "PRAGMA wal_autocheckpoint = 0", NULL, 0,
	    err) != 0 ||
	    store_pragma(s, "PRAGMA page_size", size, sizeof size, err) != 0)
		goto fail;
	s->relaxed = false;
	s->page_size = strtoll(size, NULL, 10);
	if (s->page_size <= 0)
		s->page_size = 4096;
	if (s->page_size != s->new_page_size)
		log_info("store: %s keeps its page size of %lld bytes "
		    "(database.page_size %u applies to new databases)",
		    s->path, s->page_size, s->new_page_size);
	/* After wal_autocheckpoint, which installs its own hook. */
	sqlite3_wal_hook(s->db, store_wal_hook, s);

	for (i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, store_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
			gw_error_set(err, s->path, "prepare %s: %s",
			    store_sql[i], sqlite3_errmsg(s->db));
			goto fail;
		}
	}
	if (store_prepare_multi(s) != 0) {
		gw_error_set(err, s->path, "prepare: %s",
		    sqlite3_errmsg(s->db));
		goto fail;
	}
	if ((s->fw = forward_new(s->db)) == NULL) {
		gw_error_set(err, s->path, "cannot prepare the outbox");
		goto fail;
	}
	memset(&ro, 0, sizeof ro);
	ro.max_bytes = s->max_bytes;
	ro.max_age_ms = s->max_age_ms;
	if ((s->ret = retention_new(s->db, s->path, &ro, err)) == NULL)
		goto fail;
	if ((s->roll = rollup_new(s->db, &s->roll_count)) == NULL) {
		gw_error_set(err, s->path, "cannot prepare rollups");
		goto fail;
	}
	atomic_store(&s->fw_pub, s->fw);
	atomic_store(&s->ret_pub, s->ret);
	log_info("store: opened %s (journal %s, synchronous %s)", s->path,
	    mode, s->durability == STORE_DURABILITY_NORMAL ?
	    "normal" : "full");
	return 0;

fail:
	if (s->db != NULL && heal_is_corrupt(sqlite3_extended_errcode(s->db)))
		s->damaged = true;
	return GW_EIO;
}

/*
 * Closes the connection and everything prepared on it (statements, rule
 * sinks, outbox, retention), without a checkpoint: the file may be
 * damaged. The queue and counters stay. retire: the thread is running and
 * other threads may hold fw and ret; they are kept until store_free (the
 * connection lingers until then). Accepts a closed store.
 */
void
store_disconnect(struct store *s, bool retire)
{
	size_t j;
	int i;

	for (j = 0; j < s->nsinks; j++)
		sink_sqlite_free(s->sinks[j]);
	s->nsinks = 0;
	if (retire && s->nretired == STORE_MAX_RETIRED) {
		/* Long replaced: no reader still holds these. */
		forward_free(s->old_fw[0]);
		retention_free(s->old_ret[0]);
		memmove(s->old_fw, s->old_fw + 1,
		    (STORE_MAX_RETIRED - 1) * sizeof s->old_fw[0]);
		memmove(s->old_ret, s->old_ret + 1,
		    (STORE_MAX_RETIRED - 1) * sizeof s->old_ret[0]);
		s->nretired--;
	}
	if (retire && (s->fw != NULL || s->ret != NULL)) {
		s->old_fw[s->nretired] = s->fw;
		s->old_ret[s->nretired++] = s->ret;
	} else {
		atomic_store(&s->fw_pub, NULL);
		atomic_store(&s->ret_pub, NULL);
		retention_free(s->ret);
		forward_free(s->fw);
	}
	s->ret = NULL;
	s->fw = NULL;
	rollup_free(s->roll);
	s->roll = NULL;
	for (i = 0; i < ST__COUNT; i++) {
		sqlite3_finalize(s->st[i]);
		s->st[i] = NULL;
	}
	sqlite3_finalize(s->st_multi);
	s->st_multi = NULL;
	s->npend = 0;
	if (s->db == NULL)
		return;
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (retire)
		sqlite3_close_v2(s->db);	/* once those are freed */
	else if (sqlite3_close(s->db) != SQLITE_OK) {
		log_warn("store: %s: statements left open at close: %s",
		    s->path, sqlite3_errmsg(s->db));
		sqlite3_close_v2(s->db);
	}
	s->db = NULL;
}

/* While closing, past the shutdown deadline: a full-disk retry gives up. */
static bool
store_past_deadline(void *ctx)
{
	struct store *s = ctx;

	long long dl = atomic_load(&s->deadline_ms);

	return atomic_load(&s->closing) && dl != 0 && clock_mono_ms() >= dl;
}

/*
 * The store thread found its database damaged (s->damaged) or has none
 * (an earlier heal failed): closes it, moves it aside with what can be
 * salvaged and opens a fresh one, where the batch still in memory is then
 * retried. With on_corrupt "refuse" the damage is logged and the batch
 * retried on the same file (acks stay held). 0 when a fresh database is
 * open, GW_EIO otherwise. Store thread.
 */
int
store_heal(struct store *s)
{
	struct gw_error err;
	char why[256];

	memset(&err, 0, sizeof err);
	if (s->refuse && s->db != NULL) {
		if (log_ratelimited(&s->errlim, 5, 60000))
			log_error("store: %s is damaged (%s) and "
			    "database.on_corrupt is \"refuse\": publishes "
			    "stay unacknowledged", s->path, s->damage);
		s->damaged = false;
		return GW_EIO;
	}
	if (s->db != NULL) {
		snprintf(why, sizeof why, "%s at run time", s->damage);
		log_error("store: %s is damaged: %s", s->path, why);
		store_disconnect(s, true);
		if (heal_quarantine(s->path, why, store_past_deadline, s,
		    &err) != 0) {
			log_error("store: %s: %s", s->path, err.msg);
			return GW_EIO;
		}
		/* The checkpointer still has the old file open. */
		s->healed = true;
	}
	s->damaged = false;
	if (store_connect(s, &err) != 0) {
		log_error("store: %s: %s", err.path, err.msg);
		store_disconnect(s, true);
		return GW_EIO;
	}
	if (s->fwo_set)
		forward_configure(s->fw, &s->fwo);
	heal_mark(s->path);
	log_error("store: now writing to a fresh %s; what was waiting in "
	    "memory is committed there", s->path);
	return 0;
}

/* At start, a SIGTERM or SIGINT waiting stops a retry on a full disk. */
static bool
store_stop_signalled(void *ctx)
{
	sigset_t set;

	(void)ctx;
	return sigpending(&set) == 0 && (sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGINT) == 1);
}

/* Prepares the STORE_ROWS_MULTI-row insert into messages. 0 or GW_EIO. */
static int
store_prepare_multi(struct store *s)
{
	char sql[STORE_ROWS_MULTI * 24 + 128];
	size_t i, n;

	n = (size_t)snprintf(sql, sizeof sql, "INSERT INTO messages"
	    " (received_ms, topic, client_id, qos, retain, payload) VALUES ");
	for (i = 0; i < STORE_ROWS_MULTI; i++)
		n += (size_t)snprintf(sql + n, sizeof sql - n,
		    "%s(?,?,?,?,?,?)", i > 0 ? "," : "");
	return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &s->st_multi, NULL) == SQLITE_OK ? 0 : GW_EIO;
}

/* Releases everything s holds; the thread must not be running. */
void
store_free(struct store *s)
{
	struct store_item it;
	size_t i;

	store_disconnect(s, false);
	for (i = 0; i < s->nretired; i++) {
		forward_free(s->old_fw[i]);
		retention_free(s->old_ret[i]);
	}
	if (s->q != NULL) {
		/* Only reachable with a database that failed: drop refs. */
		while (queue_pop(s->q, &it, 1, 0) == 1)
			store_item_free(&it);
		queue_free(s->q);
	}
	if (s->efd != -1)
		close(s->efd);
	gw_free(s->batch);
	gw_free(s->path);
	gw_free(s);
}
