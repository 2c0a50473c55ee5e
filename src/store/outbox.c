/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox tables; see outbox.h for the contract.
 *
 * DESIGN
 *
 * Every statement is prepared once when a handle opens, every value is
 * bound, and each statement is reset right after use, so no call leaves a
 * statement (and with it a read transaction) open.
 *
 * Writer: byte accounting is two counters, the committed total and the
 * delta of the open transaction; the cap and has_room look at their sum.
 * Removals learn the bytes of the row they removed from DELETE ...
 * RETURNING, so the total stays exact without reading rows first. Drops
 * made by the cap are remembered per route until the transaction ends:
 * after COMMIT they are counted, logged and handed to the drop callback,
 * after ROLLBACK they are forgotten (the store retries the batch, which
 * drops again).
 *
 * The cap walks the table in id order (the primary key) a chunk at a time:
 * it reads a chunk of (id, route, bytes), resets the read, then deletes the
 * rows of the chunk that the delivery thread does not hold (a binary
 * search in the sorted skip list) until the total is under the cap.
 *
 * Reader: claims read a route through the (route, id) index from the
 * route's cursor. The list of routes is an index skip-scan: "the smallest
 * route above the last one", one seek per route.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "rules/rules.h"
#include "store/outbox.h"

#define OUTBOX_CAP_CHUNK	64	/* rows read per cap step */
#define OUTBOX_BUSY_MS		5000	/* reader busy timeout */

enum outbox_wstmt {
	OW_INSERT,
	OW_DELETE,
	OW_RESCHEDULE,
	OW_DEAD_COPY,
	OW_OLDEST,
	OW__COUNT
};

static const char *const outbox_wsql[OW__COUNT] = {
	[OW_INSERT] = "INSERT INTO outbox"
	    " (route, url, headers, body, bytes, created_ms, props, expire_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[OW_DELETE] = "DELETE FROM outbox WHERE id = ?1 RETURNING bytes",
	[OW_RESCHEDULE] = "UPDATE outbox SET attempts = attempts + 1,"
	    " next_ms = ?2, last_error = ?3 WHERE id = ?1",
	[OW_DEAD_COPY] = "INSERT OR REPLACE INTO outbox_dead"
	    " (id, route, url, headers, body, created_ms, attempts, dead_ms,"
	    " status, last_error, response, props, expire_ms)"
	    " SELECT id, route, url, headers, body, created_ms,"
	    " attempts + ?2, ?3, ?4, ?5, ?6, props, expire_ms"
	    " FROM outbox WHERE id = ?1",
	[OW_OLDEST] = "SELECT id, route, bytes FROM outbox WHERE id > ?1"
	    " ORDER BY id LIMIT ?2",
};

enum outbox_rstmt {
	OR_CLAIM,
	OR_READ,
	OR_NEXT_ROUTE,
	OR_DEPTH,
	OR_OLDEST,
	OR__COUNT
};

#define OUTBOX_ROW_COLS "id, url, headers, body, bytes, created_ms," \
	" attempts, next_ms, props, expire_ms"

static const char *const outbox_rsql[OR__COUNT] = {
	[OR_CLAIM] = "SELECT " OUTBOX_ROW_COLS " FROM outbox"
	    " WHERE route = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
	[OR_READ] = "SELECT " OUTBOX_ROW_COLS " FROM outbox WHERE id = ?1",
	[OR_NEXT_ROUTE] = "SELECT route FROM outbox WHERE route > ?1"
	    " ORDER BY route LIMIT 1",
	[OR_DEPTH] = "SELECT count(*) FROM outbox WHERE route = ?1",
	[OR_OLDEST] = "SELECT created_ms FROM outbox WHERE route = ?1"
	    " ORDER BY id LIMIT 1",
};

/* Rows of one route dropped in the open transaction. */
struct outbox_drop {
	char		*route;		/* owned */
	uint64_t	 n;
};

struct outbox {
	sqlite3			*db;		/* borrowed writer */
	sqlite3_stmt		*st[OW__COUNT];
	int64_t			 committed;	/* bytes after last COMMIT */
	int64_t			 delta;		/* bytes changed since */
	struct outbox_drop	*drops;		/* this transaction's */
	size_t			 ndrops;
	size_t			 capdrops;
	outbox_drop_cb		 drop_cb;
	void			*drop_ctx;
	_Atomic uint64_t	 dropped;	/* committed drops, total */
};

struct outbox_reader {
	sqlite3			*db;		/* own read-only connection */
	sqlite3_stmt		*st[OR__COUNT];
	char			*instance_id;	/* owned */
};

static int	outbox_step_done(struct outbox *, sqlite3_stmt *,
		    const char *);
static int	outbox_remove(struct outbox *, int64_t, bool *);
static int	outbox_note_drop(struct outbox *, const char *);
static void	outbox_drops_clear(struct outbox *);
static int	outbox_cmp_id(const void *, const void *);
static int	outbox_read_cols(sqlite3_stmt *, struct outbox_row *);
static char	*outbox_col_dup(sqlite3_stmt *, int, size_t *);

/* Steps st to completion and resets it; logs and returns GW_EIO on error. */
static int
outbox_step_done(struct outbox *ob, sqlite3_stmt *st, const char *what)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		log_error("outbox: %s: %s", what, sqlite3_errmsg(ob->db));
		return GW_EIO;
	}
	return 0;
}

/*
 * Opens the writer side on db (borrowed). Store thread (or before it
 * starts), outside a transaction. Returns a new outbox or NULL.
 */
struct outbox *
outbox_open(struct sqlite3 *db)
{
	struct outbox *ob;
	sqlite3_stmt *sum = NULL;
	int i;

	if ((ob = gw_calloc(1, sizeof *ob)) == NULL)
		return NULL;
	ob->db = db;
	for (i = 0; i < OW__COUNT; i++) {
		if (sqlite3_prepare_v3(db, outbox_wsql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &ob->st[i], NULL) != SQLITE_OK) {
			log_error("outbox: prepare: %s", sqlite3_errmsg(db));
			goto fail;
		}
	}
	if (sqlite3_prepare_v2(db, "SELECT total(bytes) FROM outbox", -1, &sum,
	    NULL) != SQLITE_OK || sqlite3_step(sum) != SQLITE_ROW) {
		log_error("outbox: sum: %s", sqlite3_errmsg(db));
		goto fail;
	}
	ob->committed = (int64_t)sqlite3_column_double(sum, 0);
	sqlite3_finalize(sum);
	atomic_init(&ob->dropped, 0);
	return ob;

fail:
	sqlite3_finalize(sum);
	outbox_close(ob);
	return NULL;
}

/* Frees ob; the connection stays open. Accepts NULL. */
void
outbox_close(struct outbox *ob)
{
	int i;

	if (ob == NULL)
		return;
	for (i = 0; i < OW__COUNT; i++)
		sqlite3_finalize(ob->st[i]);
	outbox_drops_clear(ob);
	gw_free(ob->drops);
	gw_free(ob);
}

/* Sets the committed-drop callback. Store thread. */
void
outbox_set_drop_cb(struct outbox *ob, outbox_drop_cb cb, void *ctx)
{
	ob->drop_cb = cb;
	ob->drop_ctx = ctx;
}

/* Bytes a row counts for: url + headers + body. Pure. */
size_t
outbox_row_bytes(const char *url, const char *headers_json, size_t body_len)
{
	return strlen(url) + (headers_json != NULL ? strlen(headers_json) : 0) +
	    body_len;
}

/* Inserts one row inside the open transaction. Store thread. */
int
outbox_enqueue(struct outbox *ob, const char *route, const char *url,
    const char *headers_json, const void *body, size_t body_len,
    int64_t created_ms, int64_t *id)
{
	return outbox_enqueue_props(ob, route, url, headers_json, body,
	    body_len, NULL, 0, 0, created_ms, id);
}

/* As outbox_enqueue(), with a 5.0 property block. Store thread. */
int
outbox_enqueue_props(struct outbox *ob, const char *route, const char *url,
    const char *headers_json, const void *body, size_t body_len,
    const void *props, size_t props_len, int64_t expire_ms,
    int64_t created_ms, int64_t *id)
{
	sqlite3_stmt *st = ob->st[OW_INSERT];
	size_t bytes;
	int rc;

	if (route == NULL || url == NULL || (body == NULL && body_len != 0) ||
	    (props == NULL && props_len != 0))
		return GW_EMALFORMED;
	bytes = outbox_row_bytes(url, headers_json, body_len) + props_len;
	sqlite3_bind_text(st, 1, route, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
	if (headers_json != NULL)
		sqlite3_bind_text(st, 3, headers_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_text64(st, 4, body != NULL ? body : "", body_len,
	    SQLITE_STATIC, SQLITE_UTF8);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)bytes);
	sqlite3_bind_int64(st, 6, created_ms);
	if (props_len > 0)
		sqlite3_bind_blob64(st, 7, props, props_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	if (expire_ms != 0)
		sqlite3_bind_int64(st, 8, expire_ms);
	else
		sqlite3_bind_null(st, 8);
	if ((rc = outbox_step_done(ob, st, "enqueue")) != 0)
		return rc;
	ob->delta += (int64_t)bytes;
	if (id != NULL)
		*id = sqlite3_last_insert_rowid(ob->db);
	return 0;
}

/* Total bytes including the open transaction. Store thread. */
uint64_t
outbox_bytes(const struct outbox *ob)
{
	int64_t total = ob->committed + ob->delta;

	return total > 0 ? (uint64_t)total : 0;
}

/* Would bytes more fit under max_bytes (0: unlimited)? Store thread. */
bool
outbox_has_room(const struct outbox *ob, size_t bytes, uint64_t max_bytes)
{
	if (max_bytes == 0)
		return true;
	if (bytes > max_bytes)
		return false;
	return outbox_bytes(ob) <= max_bytes - bytes;
}

/* Deletes row id; *found says whether it was there. */
static int
outbox_remove(struct outbox *ob, int64_t id, bool *found)
{
	sqlite3_stmt *st = ob->st[OW_DELETE];
	int64_t bytes = 0;
	int rc;

	*found = false;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bytes += sqlite3_column_int64(st, 0);
		*found = true;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		log_error("outbox: delete %lld: %s", (long long)id,
		    sqlite3_errmsg(ob->db));
		return GW_EIO;
	}
	ob->delta -= bytes;
	return 0;
}

/* Deletes a delivered row. Store thread, in the transaction. */
int
outbox_delete(struct outbox *ob, int64_t id)
{
	bool found;

	return outbox_remove(ob, id, &found);
}

/* Reschedules row id. Store thread, in the transaction. */
int
outbox_reschedule(struct outbox *ob, int64_t id, int64_t next_ms,
    const char *error)
{
	sqlite3_stmt *st = ob->st[OW_RESCHEDULE];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, next_ms);
	if (error != NULL)
		sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	return outbox_step_done(ob, st, "reschedule");
}

/* Moves row id to outbox_dead. Store thread, in the transaction. */
int
outbox_dead_letter(struct outbox *ob, int64_t id, int status,
    const char *error, const char *response, bool sent, int64_t now_ms)
{
	sqlite3_stmt *st = ob->st[OW_DEAD_COPY];
	bool found;
	int rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, sent ? 1 : 0);
	sqlite3_bind_int64(st, 3, now_ms);
	if (status != 0)
		sqlite3_bind_int(st, 4, status);
	else
		sqlite3_bind_null(st, 4);
	if (error != NULL)
		sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	if (response != NULL)
		sqlite3_bind_text(st, 6, response, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	if ((rc = outbox_step_done(ob, st, "dead letter")) != 0)
		return rc;
	return outbox_remove(ob, id, &found);
}

/* Counts one drop of route in the open transaction. */
static int
outbox_note_drop(struct outbox *ob, const char *route)
{
	struct outbox_drop *d;
	size_t i, cap;

	for (i = 0; i < ob->ndrops; i++) {
		if (strcmp(ob->drops[i].route, route) == 0) {
			ob->drops[i].n++;
			return 0;
		}
	}
	if (ob->ndrops == ob->capdrops) {
		cap = ob->capdrops == 0 ? 4 : ob->capdrops * 2;
		d = gw_realloc(ob->drops, cap * sizeof *d);
		if (d == NULL)
			return GW_ENOMEM;
		ob->drops = d;
		ob->capdrops = cap;
	}
	if ((ob->drops[ob->ndrops].route = gw_strdup(route)) == NULL)
		return GW_ENOMEM;
	ob->drops[ob->ndrops++].n = 1;
	return 0;
}

static void
outbox_drops_clear(struct outbox *ob)
{
	size_t i;

	for (i = 0; i < ob->ndrops; i++)
		gw_free(ob->drops[i].route);
	ob->ndrops = 0;
}

static int
outbox_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Deletes the oldest rows not in skip until under max_bytes. Store thread. */
int
outbox_enforce_cap(struct outbox *ob, uint64_t max_bytes,
    const int64_t *skip, size_t nskip, uint64_t *dropped)
{
	sqlite3_stmt *st = ob->st[OW_OLDEST];
	int64_t ids[OUTBOX_CAP_CHUNK], after = 0, id;
	char *routes[OUTBOX_CAP_CHUNK];
	size_t n, seen, i;
	uint64_t count = 0;
	bool found;
	int rc = 0, src;

	while (max_bytes != 0 && outbox_bytes(ob) > max_bytes) {
		/* Read a chunk of the oldest rows, then let go of the read. */
		sqlite3_bind_int64(st, 1, after);
		sqlite3_bind_int(st, 2, OUTBOX_CAP_CHUNK);
		n = seen = 0;
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			seen++;
			after = id = sqlite3_column_int64(st, 0);
			if (nskip != 0 && bsearch(&id, skip, nskip,
			    sizeof *skip, outbox_cmp_id) != NULL)
				continue;
			routes[n] = gw_strdup((const char *)
			    sqlite3_column_text(st, 1));
			if (routes[n] == NULL) {
				rc = GW_ENOMEM;
				break;
			}
			ids[n++] = id;
		}
		sqlite3_reset(st);
		if (rc == 0 && src != SQLITE_DONE) {
			log_error("outbox: cap: %s", sqlite3_errmsg(ob->db));
			rc = GW_EIO;
		}
		for (i = 0; i < n; i++) {
			if (rc == 0 && outbox_bytes(ob) > max_bytes) {
				rc = outbox_remove(ob, ids[i], &found);
				if (rc == 0 && found) {
					count++;
					rc = outbox_note_drop(ob, routes[i]);
				}
			}
			gw_free(routes[i]);
		}
		if (rc != 0 || seen < OUTBOX_CAP_CHUNK)
			break;		/* error, or the table is walked */
	}
	if (dropped != NULL)
		*dropped = count;
	return rc;
}

/* Applies delivery results in the open transaction. Store thread. */
int
outbox_apply_results(struct outbox *ob, const struct outbox_result *results,
    size_t n, int64_t now_ms)
{
	const struct outbox_result *r;
	size_t i;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		r = &results[i];
		switch (r->verdict) {
		case OUTBOX_OK:
			rc = outbox_delete(ob, r->id);
			break;
		case OUTBOX_RETRY:
			rc = outbox_reschedule(ob, r->id, r->next_ms, r->error);
			break;
		case OUTBOX_FAIL:
			rc = outbox_dead_letter(ob, r->id, r->status, r->error,
			    r->response, r->sent, now_ms);
			break;
		default:
			log_warn("outbox: result for %lld has verdict %d",
			    (long long)r->id, r->verdict);
			break;
		}
	}
	return rc;
}

/* Frees the strings of n results. Any thread. */
void
outbox_results_free(struct outbox_result *results, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		gw_free(results[i].error);
		gw_free(results[i].response);
		results[i].error = NULL;
		results[i].response = NULL;
	}
}

/* After COMMIT. Store thread. */
void
outbox_txn_committed(struct outbox *ob)
{
	size_t i;

	ob->committed += ob->delta;
	if (ob->committed < 0)
		ob->committed = 0;
	ob->delta = 0;
	for (i = 0; i < ob->ndrops; i++) {
		log_warn("outbox: over outbox.max_bytes: dropped the %llu "
		    "oldest row(s) of route %s", (unsigned long long)
		    ob->drops[i].n, ob->drops[i].route);
		atomic_fetch_add(&ob->dropped, ob->drops[i].n);
		if (ob->drop_cb != NULL)
			ob->drop_cb(ob->drops[i].route, ob->drops[i].n,
			    ob->drop_ctx);
	}
	outbox_drops_clear(ob);
}

/* After ROLLBACK. Store thread. */
void
outbox_txn_rolled_back(struct outbox *ob)
{
	ob->delta = 0;
	outbox_drops_clear(ob);
}

/* Committed drops since open. Any thread. */
uint64_t
outbox_dropped_total(const struct outbox *ob)
{
	return atomic_load(&((struct outbox *)ob)->dropped);
}

/* ------------------------------------------------------------------ */

/*
 * Opens a read-only connection to path. Caller's thread (the one that
 * will use it). Returns a new reader or NULL.
 */
struct outbox_reader *
outbox_reader_open(const char *path)
{
	struct outbox_reader *r;
	sqlite3_stmt *st = NULL;
	const unsigned char *v;
	int i;

	if ((r = gw_calloc(1, sizeof *r)) == NULL)
		return NULL;
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_error("outbox: open %s: %s", path, r->db != NULL ?
		    sqlite3_errmsg(r->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(r->db, OUTBOX_BUSY_MS);
	for (i = 0; i < OR__COUNT; i++) {
		if (sqlite3_prepare_v3(r->db, outbox_rsql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL) != SQLITE_OK) {
			log_error("outbox: reader prepare: %s",
			    sqlite3_errmsg(r->db));
			goto fail;
		}
	}
	if (sqlite3_prepare_v2(r->db, "SELECT value FROM mqlite_meta"
	    " WHERE key = 'instance_id'", -1, &st, NULL) != SQLITE_OK) {
		log_error("outbox: instance_id: %s", sqlite3_errmsg(r->db));
		goto fail;
	}
	v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	r->instance_id = gw_strdup(v != NULL ? (const char *)v : "");
	sqlite3_finalize(st);
	if (r->instance_id == NULL)
		goto fail;
	return r;

fail:
	outbox_reader_close(r);
	return NULL;
}

/* Closes the reader. Its thread. Accepts NULL. */
void
outbox_reader_close(struct outbox_reader *r)
{
	int i;

	if (r == NULL)
		return;
	for (i = 0; i < OR__COUNT; i++)
		sqlite3_finalize(r->st[i]);
	sqlite3_close(r->db);
	gw_free(r->instance_id);
	gw_free(r);
}

/* The instance_id, borrowed. */
const char *
outbox_reader_instance_id(struct outbox_reader *r)
{
	return r->instance_id;
}

/* Copies column col (text or blob) into a new NUL-terminated string. */
static char *
outbox_col_dup(sqlite3_stmt *st, int col, size_t *len)
{
	const void *p;
	size_t n;
	char *s;

	p = sqlite3_column_blob(st, col);
	n = (size_t)sqlite3_column_bytes(st, col);
	if ((s = gw_malloc(n + 1)) == NULL)
		return NULL;
	if (n != 0)
		memcpy(s, p, n);
	s[n] = '\0';
	if (len != NULL)
		*len = n;
	return s;
}

/*
 * Rows are stored sealed (forward.c): a ${NAME} secret is filled in here,
 * at send time, and "$$" becomes "$". Replaces *s (len *len) with its
 * unsealed form. 0, GW_ENOTFOUND (a variable is no longer set), ENOMEM.
 */
static int
outbox_unseal(char **s, size_t *len)
{
	char *out;
	size_t n;
	int rc;

	if (*s == NULL)
		return 0;
	n = len != NULL ? *len : strlen(*s);
	/* memchr: a forwarded payload may hold NUL bytes. */
	if (memchr(*s, '$', n) == NULL)
		return 0;
	if ((rc = rules_unseal(*s, n, &out, &n)) != 0)
		return rc;
	gw_free(*s);
	*s = out;
	if (len != NULL)
		*len = n;
	return 0;
}

/* Unseals every header value of a stored headers object. */
static int
outbox_unseal_headers(char **headers)
{
	cJSON *o, *h;
	char *v, *txt;
	int rc = 0;

	if (*headers == NULL || strchr(*headers, '$') == NULL)
		return 0;
	if ((o = cJSON_Parse(*headers)) == NULL)
		return 0;	/* left as stored: the request fails on it */
	cJSON_ArrayForEach(h, o) {
		if (!cJSON_IsString(h) || strchr(h->valuestring, '$') == NULL)
			continue;
		v = gw_strdup(h->valuestring);
		if (v == NULL || (rc = outbox_unseal(&v, NULL)) != 0 ||
		    cJSON_SetValuestring(h, v) == NULL) {
			gw_free(v);
			rc = rc != 0 ? rc : GW_ENOMEM;
			break;
		}
		gw_free(v);
	}
	if (rc == 0) {
		if ((txt = cJSON_PrintUnformatted(o)) == NULL)
			rc = GW_ENOMEM;
		else {
			gw_free(*headers);
			if ((*headers = gw_strdup(txt)) == NULL)
				rc = GW_ENOMEM;
			cJSON_free(txt);
		}
	}
	cJSON_Delete(o);
	return rc;
}

/*
 * Turns a stored row into the request to send. A row whose secret can no
 * longer be filled in loses its url, so the delivery dead-letters it.
 */
static int
outbox_unseal_row(struct outbox_row *row)
{
	int rc;

	rc = outbox_unseal(&row->url, NULL);
	if (rc == 0)
		rc = outbox_unseal_headers(&row->headers);
	if (rc == 0)
		rc = outbox_unseal(&row->body, &row->body_len);
	if (rc == GW_ENOTFOUND) {
		gw_free(row->url);
		row->url = NULL;
		rc = 0;
	}
	return rc;
}

/* Fills row from the current result row of st (OUTBOX_ROW_COLS). */
static int
outbox_read_cols(sqlite3_stmt *st, struct outbox_row *row)
{
	memset(row, 0, sizeof *row);
	row->id = sqlite3_column_int64(st, 0);
	row->url = outbox_col_dup(st, 1, NULL);
	if (sqlite3_column_type(st, 2) != SQLITE_NULL)
		row->headers = outbox_col_dup(st, 2, NULL);
	row->body = outbox_col_dup(st, 3, &row->body_len);
	row->bytes = (size_t)sqlite3_column_int64(st, 4);
	row->created_ms = sqlite3_column_int64(st, 5);
	row->attempts = (uint32_t)sqlite3_column_int64(st, 6);
	row->next_ms = sqlite3_column_int64(st, 7);
	if (sqlite3_column_type(st, 8) != SQLITE_NULL &&
	    sqlite3_column_bytes(st, 8) > 0)
		row->props = (uint8_t *)outbox_col_dup(st, 8, &row->props_len);
	row->expire_ms = sqlite3_column_int64(st, 9);
	if (row->url == NULL || row->body == NULL ||
	    (sqlite3_column_type(st, 2) != SQLITE_NULL &&
	    row->headers == NULL) ||
	    (row->props == NULL && sqlite3_column_bytes(st, 8) > 0)) {
		outbox_row_clear(row);
		return GW_ENOMEM;
	}
	if (outbox_unseal_row(row) != 0) {
		outbox_row_clear(row);
		return GW_ENOMEM;
	}
	return 0;
}

/* Frees row's strings. NULL ok. */
void
outbox_row_clear(struct outbox_row *row)
{
	if (row == NULL)
		return;
	gw_free(row->url);
	gw_free(row->headers);
	gw_free(row->body);
	gw_free(row->props);
	memset(row, 0, sizeof *row);
}

/* Reads the due prefix of route above after_id. Reader's thread. */
int
outbox_claim_due(struct outbox_reader *r, const char *route,
    int64_t after_id, int64_t now_ms, size_t limit, struct outbox_row *rows,
    size_t *n, struct outbox_row *blocked)
{
	sqlite3_stmt *st = r->st[OR_CLAIM];
	size_t got = 0, i;
	int rc, err = 0;

	*n = 0;
	if (blocked != NULL)
		memset(blocked, 0, sizeof *blocked);
	if (limit == 0)
		return 0;
	sqlite3_bind_text(st, 1, route, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
	while (got < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 7) > now_ms) {
			if (blocked != NULL)
				err = outbox_read_cols(st, blocked);
			rc = SQLITE_DONE;
			break;
		}
		if ((err = outbox_read_cols(st, &rows[got])) != 0)
			break;
		got++;
	}
	if (got == limit)
		rc = SQLITE_DONE;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("outbox: claim %s: %s", route, sqlite3_errmsg(r->db));
		err = GW_EIO;
	}
	if (err != 0) {
		for (i = 0; i < got; i++)
			outbox_row_clear(&rows[i]);
		outbox_row_clear(blocked);
		return err;
	}
	*n = got;
	return 0;
}

/* Reads one row by id. Reader's thread. */
int
outbox_read_row(struct outbox_reader *r, int64_t id, struct outbox_row *row)
{
	sqlite3_stmt *st = r->st[OR_READ];
	int rc, err;

	memset(row, 0, sizeof *row);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = outbox_read_cols(st, row);
	else if (rc == SQLITE_DONE)
		err = GW_ENOTFOUND;
	else {
		log_error("outbox: read %lld: %s", (long long)id,
		    sqlite3_errmsg(r->db));
		err = GW_EIO;
	}
	sqlite3_reset(st);
	return err;
}

/* Calls cb for each route with rows. Reader's thread. */
int
outbox_routes(struct outbox_reader *r, outbox_route_cb cb, void *ctx)
{
	sqlite3_stmt *st = r->st[OR_NEXT_ROUTE];
	char *last;
	int rc;

	if ((last = gw_strdup("")) == NULL)
		return GW_ENOMEM;
	for (;;) {
		sqlite3_bind_text(st, 1, last, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		gw_free(last);
		last = gw_strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		if (last == NULL)
			return GW_ENOMEM;
		cb(last, ctx);
	}
	sqlite3_reset(st);
	gw_free(last);
	if (rc != SQLITE_DONE) {
		log_error("outbox: routes: %s", sqlite3_errmsg(r->db));
		return GW_EIO;
	}
	return 0;
}

/* Depth and oldest created_ms of route. Reader's thread. */
int
outbox_route_depth(struct outbox_reader *r, const char *route,
    uint64_t *rows, int64_t *oldest_created_ms)
{
	sqlite3_stmt *st;
	int rc;

	*rows = 0;
	*oldest_created_ms = 0;
	st = r->st[OR_DEPTH];
	sqlite3_bind_text(st, 1, route, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*rows = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		goto fail;
	st = r->st[OR_OLDEST];
	sqlite3_bind_text(st, 1, route, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*oldest_created_ms = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	return 0;
fail:
	log_error("outbox: depth %s: %s", route, sqlite3_errmsg(r->db));
	return GW_EIO;
}
