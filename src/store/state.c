/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Startup loaders of the broker state kept in SQLite: retained messages,
 * the inbound QoS 2 packet ids awaiting PUBREL, persistent sessions and
 * the messages queued for them. They run on the main
 * thread before store_start(), through the writer connection, and hand
 * each row to a callback. The database is a file users can edit, so rows
 * that cannot be valid (bad QoS, oversize topic, packet id 0) are skipped
 * with a warning rather than trusted.
 */
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "broker/msg.h"
#include "err.h"
#include "log.h"
#include "store/store.h"

/*
 * Calls cb once per retained topic with a new message (qos, retain = 1,
 * received_ms and client_id as stored; cb takes the reference). Returns 0,
 * GW_ENOMEM or GW_EIO. Main thread, before store_start().
 */
int
store_load_retained(struct store *s, store_retained_cb cb, void *ctx)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	const char *topic, *cid;
	const void *payload;
	struct msg *m;
	int rc, tlen, clen, plen, qos, n = 0;

	if (sqlite3_prepare_v2(db, "SELECT topic, payload, qos, received_ms,"
	    " client_id FROM retained ORDER BY topic", -1, &st,
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
		m = msg_new(topic, (size_t)tlen, cid != NULL ? cid : "",
		    (size_t)clen, NULL, 0, payload, (size_t)plen,
		    (uint8_t)qos, 1, sqlite3_column_int64(st, 3));
		if (m == NULL) {
			sqlite3_finalize(st);
			return GW_ENOMEM;
		}
		cb(m, ctx);
		n++;
	}
	if (rc != SQLITE_DONE) {
		log_error("store: load retained: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return GW_EIO;
	}
	sqlite3_finalize(st);
	log_debug("store: loaded %d retained messages", n);
	return 0;
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
 * Calls cb once per persistent session row with its client id and the
 * subscriptions JSON (NULL if none); both borrowed for the call. 0 or
 * GW_EIO. Main thread, before store_start().
 */
int
store_load_sessions(struct store *s, store_session_cb cb, void *ctx)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	const char *cid;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT client_id, subs FROM sessions"
	    " ORDER BY client_id", -1, &st, NULL) != SQLITE_OK) {
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
		cb(cid, (const char *)sqlite3_column_text(st, 1), ctx);
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
	struct msg *m;
	int rc, tlen, clen, plen, qos;

	if (sqlite3_prepare_v2(db, "SELECT id, client_id, topic, qos, retain,"
	    " received_ms, payload FROM session_msgs ORDER BY id", -1, &st,
	    NULL) != SQLITE_OK) {
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
		/* No empty client id, no NUL in it or in the topic. */
		if (cid == NULL || topic == NULL || tlen == 0 || clen == 0 ||
		    tlen > UINT16_MAX || clen > UINT16_MAX || qos < 1 ||
		    qos > 2 || sqlite3_column_int64(st, 0) <= 0 ||
		    strlen(cid) != (size_t)clen ||
		    strlen(topic) != (size_t)tlen) {
			log_warn("store: skipping invalid session_msgs row");
			continue;
		}
		m = msg_new(topic, (size_t)tlen, cid, (size_t)clen, NULL, 0,
		    sqlite3_column_blob(st, 6), (size_t)plen, (uint8_t)qos,
		    sqlite3_column_int(st, 4) != 0,
		    sqlite3_column_int64(st, 5));
		if (m == NULL) {
			sqlite3_finalize(st);
			return GW_ENOMEM;
		}
		cb(cid, (uint64_t)sqlite3_column_int64(st, 0), m, (uint8_t)qos,
		    sqlite3_column_int(st, 4) != 0, ctx);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("store: load session messages: %s",
		    sqlite3_errmsg(db));
		return GW_EIO;
	}
	return 0;
}
