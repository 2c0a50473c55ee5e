/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the persisted-session state read back at start
 * (store_load_sessions() in src/store/state.c feeding load_session_cb() in
 * src/broker/persist.c, and store_load_session_msgs() feeding
 * load_smsg_cb()). A store is opened once on a database in a temporary
 * folder (its thread is never started: loading happens before it, as in
 * mqlite). Per input, the sessions table gets one row and session_msgs at
 * most one: the input's first line is the client id, its second line the
 * topic of a queued QoS 1 message for that client, the rest the "subs"
 * JSON text, all bound as they are (NUL bytes included). A new broker then
 * loads them.
 *
 * Invariants: a row whose client id is empty or holds a NUL is skipped,
 * any other becomes one offline session under that id; its subscriptions
 * are exactly the entries of the JSON array that have a valid filter (a
 * well-formed share name if it is one) and a QoS from 0 to 2, with their
 * 5.0 options (a repeated filter keeping the last ones), computed here
 * independently from cJSON; the queued message comes back with its topic
 * unless that topic is empty or holds a NUL (not a topic a client may be
 * sent); and the subscriptions written back as JSON in the format mqlite
 * saves load again to the same list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/share.h"
#include "broker/topic.h"
#include "config.h"
#include "net/ev.h"
#include "store/store.h"

#include "fuzz_store.h"
#include "fuzz_tmpdir.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static char		 tmpdir[] = "/tmp/mqlite-fuzz-session-XXXXXX";
static struct gw_config	 cfg;
static struct store	*store;
static struct ev_loop	*loop;
static unsigned long	 inputs;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char			 path[96];

	(void)argc;
	(void)argv;
	log_set_level(LOG_LVL_ERROR);	/* invalid rows are expected */
	fuzz_tmpdir_make(tmpdir);
	if (config_init(&cfg) != 0)
		abort();
	snprintf(path, sizeof path, "%s/state.db", tmpdir);
	store = fuzz_store_open(&cfg, path, 0);
	if ((loop = ev_new()) == NULL)
		abort();
	return 0;
}

/* Replaces the sessions table with one row (id, subs). */
static void
put_row(const char *id, size_t idlen, const char *subs, size_t slen)
{
	sqlite3		*db = store_db(store);
	sqlite3_stmt	*st;

	CHECK(sqlite3_exec(db, "DELETE FROM sessions", NULL, NULL, NULL) ==
	    SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "INSERT INTO sessions (client_id, subs)"
	    " VALUES (?, ?)", -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, id, (int)idlen, SQLITE_TRANSIENT);
	if (subs != NULL)
		sqlite3_bind_text(st, 2, subs, (int)slen, SQLITE_TRANSIENT);
	CHECK(sqlite3_step(st) == SQLITE_DONE);
	sqlite3_finalize(st);
}

/* Replaces session_msgs with one QoS 1 message on topic for id. */
static void
put_msg(const char *id, size_t idlen, const char *topic, size_t tlen)
{
	sqlite3		*db = store_db(store);
	sqlite3_stmt	*st;

	CHECK(sqlite3_exec(db, "DELETE FROM session_msgs", NULL, NULL,
	    NULL) == SQLITE_OK);
	if (topic == NULL)
		return;
	CHECK(sqlite3_prepare_v2(db, "INSERT INTO session_msgs (id,"
	    " client_id, topic, qos, received_ms, payload) VALUES"
	    " (7, ?, ?, 1, 1, x'3432')", -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, id, (int)idlen, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, topic, (int)tlen, SQLITE_TRANSIENT);
	CHECK(sqlite3_step(st) == SQLITE_DONE);
	sqlite3_finalize(st);
}

/* The subscriptions the loader should keep: [{"filter","qos"}] deduped. */
static cJSON *
expected(const char *subs)
{
	const cJSON	*e, *f, *q, *x, *op;
	cJSON		*arr, *want, *o;
	int		 qos;

	if ((want = cJSON_CreateArray()) == NULL)
		return NULL;
	if ((arr = cJSON_Parse(subs)) == NULL)
		return want;
	for (e = cJSON_IsArray(arr) || cJSON_IsObject(arr) ? arr->child :
	    NULL; e != NULL; e = e->next) {
		f = cJSON_GetObjectItemCaseSensitive(e, "filter");
		q = cJSON_GetObjectItemCaseSensitive(e, "qos");
		if (!cJSON_IsString(f) || !cJSON_IsNumber(q) ||
		    q->valueint < 0 || q->valueint > 2 ||
		    !topic_filter_valid(f->valuestring,
		    strlen(f->valuestring)) ||
		    share_parse(f->valuestring, strlen(f->valuestring), NULL,
		    NULL) < 0)
			continue;
		/* The QoS byte holds the 5.0 options kept with it. */
		qos = q->valueint;
		op = cJSON_GetObjectItemCaseSensitive(e, "opts");
		if (cJSON_IsNumber(op))
			qos |= op->valueint & (SESSION_SUB_NO_LOCAL |
			    SESSION_SUB_RAP);
		for (x = want->child; x != NULL; x = x->next)
			if (strcmp(f->valuestring, cJSON_GetObjectItem(x,
			    "filter")->valuestring) == 0)
				break;
		if (x != NULL) {
			cJSON_GetObjectItem(x, "qos")->valueint = qos;
			continue;
		}
		o = cJSON_CreateObject();
		CHECK(o != NULL);
		cJSON_AddStringToObject(o, "filter", f->valuestring);
		cJSON_AddNumberToObject(o, "qos", qos);
		cJSON_AddItemToArray(want, o);
	}
	cJSON_Delete(arr);
	return want;
}

/* Loads the table into a new broker; checks s against want; returns the
 * session's subscriptions as saved JSON text (new) or NULL. */
static char *
load_and_check(const char *id, bool id_ok, const cJSON *want,
    const char *topic, size_t tlen)
{
	struct broker	*b;
	struct session	*s;
	const cJSON	*x;
	cJSON		*arr, *o;
	char		*txt = NULL;
	size_t		 i, n = 0;

	CHECK((b = broker_new(loop, &cfg, store)) != NULL);
	CHECK(persist_load(b) == 0);
	if (!id_ok) {
		CHECK(session_count(b->sessions) == 0);
		broker_free(b);
		return NULL;
	}
	CHECK(session_count(b->sessions) == 1);
	s = session_find(b->sessions, id, strlen(id));
	CHECK(s != NULL && s->client == NULL);
	if (topic != NULL && tlen > 0 && memchr(topic, '\0', tlen) == NULL) {
		CHECK(s->qlen == 1);
		CHECK(s->queue[s->qhead].m->topic_len == tlen);
		CHECK(memcmp(s->queue[s->qhead].m->topic, topic, tlen) == 0);
		CHECK(s->queue[s->qhead].key == 7);
	} else
		CHECK(s->qlen == 0);
	for (x = want->child; x != NULL; x = x->next)
		n++;
	CHECK(s->nsubs == n);
	for (i = 0, x = want->child; i < s->nsubs; i++, x = x->next) {
		CHECK(strcmp(s->subs[i].filter,
		    cJSON_GetObjectItem(x, "filter")->valuestring) == 0);
		CHECK(s->subs[i].len == strlen(s->subs[i].filter));
		CHECK(s->subs[i].qos ==
		    cJSON_GetObjectItem(x, "qos")->valueint);
	}
	/* The format persist.c writes. */
	CHECK((arr = cJSON_CreateArray()) != NULL);
	for (i = 0; i < s->nsubs; i++) {
		CHECK((o = cJSON_CreateObject()) != NULL);
		cJSON_AddStringToObject(o, "filter", s->subs[i].filter);
		cJSON_AddNumberToObject(o, "qos", s->subs[i].qos &
		    SESSION_SUB_QOS);
		cJSON_AddNumberToObject(o, "opts", s->subs[i].qos &
		    ~SESSION_SUB_QOS);
		cJSON_AddItemToArray(arr, o);
	}
	txt = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	broker_free(b);
	return txt;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*nl, *nl2, *end = data + size;
	char		*id, *topic = NULL, *subs = NULL, *again;
	cJSON		*want;
	size_t		 idlen, tlen = 0, slen = 0;
	bool		 id_ok;

	if ((nl = memchr(data, '\n', size)) == NULL)
		nl = end;
	if ((idlen = (size_t)(nl - data)) > 512)
		return 0;
	if ((id = malloc(idlen + 1)) == NULL)
		return 0;
	memcpy(id, data, idlen);
	id[idlen] = '\0';
	if (nl < end) {
		if ((nl2 = memchr(nl + 1, '\n', (size_t)(end - nl - 1))) ==
		    NULL)
			nl2 = end;
		tlen = (size_t)(nl2 - nl - 1);
		if ((topic = malloc(tlen + 1)) != NULL) {
			memcpy(topic, nl + 1, tlen);
			topic[tlen] = '\0';
		}
		if (nl2 < end && (subs = malloc((size_t)(end - nl2))) !=
		    NULL) {
			slen = (size_t)(end - nl2 - 1);
			memcpy(subs, nl2 + 1, slen);
			subs[slen] = '\0';
		}
	}
	/* The store thread, whose checkpoints bound the WAL, never runs. */
	if (++inputs % 256 == 0)
		CHECK(sqlite3_wal_checkpoint_v2(store_db(store), NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) == SQLITE_OK);
	put_row(id, idlen, subs, slen);
	put_msg(id, idlen, topic, tlen);
	want = expected(subs != NULL ? subs : "");
	CHECK(want != NULL);
	id_ok = idlen > 0 && strlen(id) == idlen;
	again = load_and_check(id, id_ok, want, topic, tlen);
	if (again != NULL) {
		put_row(id, strlen(id), again, strlen(again));
		put_msg(id, idlen, NULL, 0);
		free(load_and_check(id, id_ok, want, NULL, 0));
		cJSON_free(again);
	}
	cJSON_Delete(want);
	free(subs);
	free(topic);
	free(id);
	return 0;
}
