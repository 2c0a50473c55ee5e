/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Startup loaders of the broker state kept in SQLite: retained messages,
 * the inbound QoS 2 packet ids awaiting PUBREL, persistent sessions and
 * the messages queued for them. They run on the main
 * thread before store_start(), through the writer connection, and hand
 * each row to a callback. The database is a file users can edit, so rows
 * that cannot be valid (bad QoS, oversize topic, packet id 0) are skipped
 * with a warning rather than trusted. A retained or queued message whose
 * MQTT 5.0 Message Expiry Interval ended (possibly while the gateway was
 * stopped: the deadline is received_ms plus the interval, both stored) is
 * not loaded and its row is deleted.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "broker/msg.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "mqtt/props.h"
#include "store/store.h"

/*
 * Decodes a stored 5.0 property block (column i of st) into *pp; returns
 * pp, or NULL when the column is NULL or does not decode (then the
 * message loads without properties, with a warning).
 */
static const struct props *
stored_props(sqlite3_stmt *st, int i, struct props *pp)
{
	const uint8_t *blob;
	size_t used;
	int len;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	blob = sqlite3_column_blob(st, i);
	len = sqlite3_column_bytes(st, i);
	if (blob == NULL || len <= 0 || props_decode(blob, (size_t)len,
	    CODEC_PUBLISH, pp, &used, NULL) != 0 || used != (size_t)len) {
		log_warn("store: ignoring unreadable MQTT 5 properties of a "
		    "stored message");
		return NULL;
	}
	return pp;
}

/* Appends id to the growing array *ids. 0 or GW_ENOMEM. */
static int
ids_add(int64_t **ids, size_t *n, size_t *cap, int64_t id)
{
	int64_t *nv;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if ((nv = gw_realloc(*ids, *cap * sizeof *nv)) == NULL)
			return GW_ENOMEM;
		*ids = nv;
	}
	(*ids)[(*n)++] = id;
	return 0;
}

/*
 * Deletes the rows of table ("retained" or "session_msgs") in ids, in one
 * transaction; what says why in the log. 0 or GW_EIO.
 */
static int
rows_drop(sqlite3 *db, const char *table, const int64_t *ids, size_t n,
    const char *what)
{
	char sql[64];
	sqlite3_stmt *st;
	size_t i;
	int rc = SQLITE_OK;

	if (n == 0)
		return 0;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return GW_EIO;
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE rowid = ?1", table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return GW_EIO;
	}
	for (i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("store: trimming %s: %s", table, sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return GW_EIO;
	}
	log_info("store: %zu %s deleted", n, what);
	return 0;
}

/*
 * Calls cb once per retained topic with a new message (qos, retain = 1,
 * received_ms and client_id as stored; cb takes the reference); the rows
 * cb refuses (a lowered max_retained or retained_bytes) are deleted.
 * Returns 0, GW_ENOMEM or GW_EIO. Main thread, before store_start().
 */
int
store_load_retained(struct store *s, store_retained_cb cb, void *ctx)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	const char *topic, *cid;
	const void *payload;
	struct props pp;
	struct msg *m;
	int64_t *drop = NULL, *gone = NULL;
	size_t ndrop = 0, capdrop = 0, ngone = 0, capgone = 0;
	long long now = clock_wall_ms();
	int rc, tlen, clen, plen, qos, n = 0;

	if (sqlite3_prepare_v2(db, "SELECT topic, payload, qos, received_ms,"
	    " client_id, rowid, props FROM retained ORDER BY topic", -1, &st,
	    NULL) != SQLITE_OK) {
		log_error("store: load retained: %s", sqlite3_errmsg(db));
		return GW_EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		topic = (const char *)sqlite3_column_text(st, 0);
		tlen = sqlite3_column_bytes(st, 0);
		payload = sqlite3_column_blob(st, 1);
		plen = sqlite3_column_bytes(st, 1);
		qos = sqlite3_column_int(st, 2);
		cid = (const char *)sqlite3_column_text(st, 4);
		clen = cid != NULL ? sqlite3_column_bytes(st, 4) : 0;
		if (topic == NULL || tlen == 0 || tlen > UINT16_MAX ||
		    clen > UINT16_MAX || qos < 0 || qos > 2 || plen == 0 ||
		    memchr(topic, '\0', (size_t)tlen) != NULL) {
			log_warn("store: skipping invalid retained row %s",
			    topic != NULL ? topic : "(null)");
			continue;
		}
		m = msg_new5(topic, (size_t)tlen, cid != NULL ? cid : "",
		    (size_t)clen, NULL, 0, payload, (size_t)plen,
		    (uint8_t)qos, 1, sqlite3_column_int64(st, 3),
		    stored_props(st, 6, &pp));
		if (m == NULL) {
			rc = GW_ENOMEM;
			goto fail;
		}
		if (msg_expired(m, now)) {
			msg_unref(&m);
			if (ids_add(&gone, &ngone, &capgone,
			    sqlite3_column_int64(st, 5)) != 0) {
				rc = GW_ENOMEM;
				goto fail;
			}
			continue;
		}
		if (cb(m, ctx) == 0) {
			n++;
			continue;
		}
		if (ids_add(&drop, &ndrop, &capdrop,
		    sqlite3_column_int64(st, 5)) != 0) {
			rc = GW_ENOMEM;
			goto fail;
		}
	}
	if (rc != SQLITE_DONE) {
		log_error("store: load retained: %s", sqlite3_errmsg(db));
		rc = GW_EIO;
		goto fail;
	}
	sqlite3_finalize(st);
	log_debug("store: loaded %d retained messages", n);
	rc = rows_drop(db, "retained", drop, ndrop,
	    "retained messages over the limits");
	if (rc == 0)
		rc = rows_drop(db, "retained", gone, ngone,
		    "expired retained messages");
	gw_free(drop);
	gw_free(gone);
	return rc;
fail:
	sqlite3_finalize(st);
	gw_free(drop);
	gw_free(gone);
	return rc;
}

/*
 * Calls cb once per (client_id, packet_id) recorded between PUBREC and
 * PUBREL; the strings are borrowed for the call. 0 or GW_EIO. Main
 * thread, before store_start().
 */
int
store_load_qos2(struct store *s, store_qos2_cb cb, void *ctx)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	const char *cid;
	long long pid;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT client_id, packet_id FROM"
	    " qos2_inflight ORDER BY client_id, packet_id", -1, &st,
	    NULL) != SQLITE_OK) {
		log_error("store: load qos2: %s", sqlite3_errmsg(db));
		return GW_EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cid = (const char *)sqlite3_column_text(st, 0);
		pid = sqlite3_column_int64(st, 1);
		if (cid == NULL || pid < 1 || pid > UINT16_MAX) {
			log_warn("store: skipping invalid qos2_inflight row");
			continue;
		}
		cb(cid, (uint16_t)pid, ctx);
	}
	if (rc != SQLITE_DONE) {
		log_error("store: load qos2: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return GW_EIO;
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * Calls cb once per persistent session row with its client id, the
 * subscriptions JSON (NULL if none; both borrowed for the call), the time
 * its client left and its Session Expiry Interval (UINT32_MAX for a 3.1.1
 * session: limits.session_expiry alone). 0 or
 * GW_EIO. Main thread, before store_start().
 */
int
store_load_sessions(struct store *s, store_session_cb cb, void *ctx)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	const char *cid;
	uint32_t expiry;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT client_id, subs,"
	    " coalesce(disconnected_ms, 0), protocol, expiry_s FROM sessions"
	    " ORDER BY client_id",
	    -1, &st, NULL) != SQLITE_OK) {
		log_error("store: load sessions: %s", sqlite3_errmsg(db));
		return GW_EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cid = (const char *)sqlite3_column_text(st, 0);
		if (cid == NULL || cid[0] == '\0' ||
		    sqlite3_column_bytes(st, 0) > UINT16_MAX ||
		    strlen(cid) != (size_t)sqlite3_column_bytes(st, 0)) {
			log_warn("store: skipping invalid sessions row");
			continue;
		}
		/* Rows of 3.1.1 sessions: only limits.session_expiry. */
		expiry = sqlite3_column_int(st, 3) == 5 &&
		    sqlite3_column_int64(st, 4) >= 0 &&
		    sqlite3_column_int64(st, 4) < UINT32_MAX ?
		    (uint32_t)sqlite3_column_int64(st, 4) : UINT32_MAX;
		cb(cid, (const char *)sqlite3_column_text(st, 1),
		    (long long)sqlite3_column_int64(st, 2), expiry, ctx);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("store: load sessions: %s", sqlite3_errmsg(db));
		return GW_EIO;
	}
	return 0;
}

/*
 * Calls cb once per queued session message, oldest first per client, with
 * a new message (cb takes the reference). 0, GW_ENOMEM or GW_EIO. Main
 * thread, before store_start().
 */
int
store_load_session_msgs(struct store *s, store_smsg_cb cb, void *ctx)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	const char *cid, *topic;
	struct props pp;
	struct msg *m;
	int64_t *gone = NULL;
	size_t ngone = 0, capgone = 0;
	long long now = clock_wall_ms();
	int rc, tlen, clen, plen, qos, pid;

	if (sqlite3_prepare_v2(db, "SELECT id, client_id, topic, qos, retain,"
	    " received_ms, payload, CASE WHEN state = 2 AND qos = 2 THEN"
	    " packet_id ELSE 0 END, props FROM session_msgs ORDER BY id", -1,
	    &st, NULL) != SQLITE_OK) {
		log_error("store: load session messages: %s",
		    sqlite3_errmsg(db));
		return GW_EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cid = (const char *)sqlite3_column_text(st, 1);
		clen = sqlite3_column_bytes(st, 1);
		topic = (const char *)sqlite3_column_text(st, 2);
		tlen = sqlite3_column_bytes(st, 2);
		qos = sqlite3_column_int(st, 3);
		plen = sqlite3_column_bytes(st, 6);
		pid = sqlite3_column_int(st, 7);
		/* No empty client id, no NUL in it or in the topic. */
		if (cid == NULL || topic == NULL || tlen == 0 || clen == 0 ||
		    tlen > UINT16_MAX || clen > UINT16_MAX || qos < 1 ||
		    qos > 2 || sqlite3_column_int64(st, 0) <= 0 || pid < 0 ||
		    pid > UINT16_MAX || strlen(cid) != (size_t)clen ||
		    strlen(topic) != (size_t)tlen) {
			log_warn("store: skipping invalid session_msgs row");
			continue;
		}
		m = msg_new5(topic, (size_t)tlen, cid, (size_t)clen, NULL, 0,
		    sqlite3_column_blob(st, 6), (size_t)plen, (uint8_t)qos,
		    sqlite3_column_int(st, 4) != 0,
		    sqlite3_column_int64(st, 5), stored_props(st, 8, &pp));
		if (m == NULL) {
			sqlite3_finalize(st);
			gw_free(gone);
			return GW_ENOMEM;
		}
		/* Expired before its PUBLISH went out: never sent. */
		if (pid == 0 && msg_expired(m, now)) {
			msg_unref(&m);
			if (ids_add(&gone, &ngone, &capgone,
			    sqlite3_column_int64(st, 0)) != 0) {
				sqlite3_finalize(st);
				gw_free(gone);
				return GW_ENOMEM;
			}
			continue;
		}
		cb(cid, (uint64_t)sqlite3_column_int64(st, 0), m, (uint8_t)qos,
		    sqlite3_column_int(st, 4) != 0, (uint16_t)pid, ctx);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("store: load session messages: %s",
		    sqlite3_errmsg(db));
		gw_free(gone);
		return GW_EIO;
	}
	rc = rows_drop(db, "session_msgs", gone, ngone,
	    "expired queued session messages");
	gw_free(gone);
	return rc;
}
