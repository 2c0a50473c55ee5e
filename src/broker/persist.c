/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Persistent-session state in the database: the session row with its
 * subscriptions, and every QoS 1/2 message queued for or in flight to a
 * persistent session (session_msgs), so a restart loses neither. The loop
 * thread turns each change into a store item; items go through the same
 * group commit as the publishes, and a publisher's acknowledgement waits
 * for the queued copies its publish produced. A QoS 2 copy whose PUBREC
 * arrived is marked (state 2 with its packet id) before the PUBREL goes
 * out. At startup the rows are loaded back into offline sessions before
 * any client connects; a marked one waits in the in-flight window for its
 * PUBCOMP, and the reconnecting client gets only the PUBREL again.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/share.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "config.h"
#include "err.h"
#include "mem.h"
#include "mqtt/props.h"
#include "store/store.h"

int
broker_submit(struct broker *b, struct store_item *it)
{
	uint64_t seq;
	bool lazy = store_item_lazy(it);	/* the store owns it after */
	int rc;

	if ((rc = store_submit(b->store, it, &seq)) == 0) {
		b->last_seq = seq;
		if (lazy)
			b->lazy_seq = seq;
	}
	return rc;
}

/* Submits it or frees what it owns; logs a store-full failure. */
static void
submit_or_drop(struct broker *b, struct store_item *it, const char *what)
{
	if (broker_submit(b, it) == 0)
		return;
	msg_unref(&it->msg);
	gw_free(it->client_id);
	gw_free(it->text);
	if (log_ratelimited(&b->err_log, 5, 10000))
		log_warn("store queue full: %s not persisted", what);
}

/* Returns the subscriptions of s as JSON text (new), NULL on ENOMEM. */
static char *
subs_json(const struct session *s)
{
	cJSON *arr, *o;
	char *txt, *out;
	size_t i;

	if ((arr = cJSON_CreateArray()) == NULL)
		return NULL;
	for (i = 0; i < s->nsubs; i++) {
		if ((o = cJSON_CreateObject()) == NULL ||
		    cJSON_AddStringToObject(o, "filter", s->subs[i].filter) ==
		    NULL ||
		    cJSON_AddNumberToObject(o, "qos", s->subs[i].qos &
		    SESSION_SUB_QOS) == NULL ||
		    ((s->subs[i].qos & ~SESSION_SUB_QOS) != 0 &&
		    cJSON_AddNumberToObject(o, "opts", s->subs[i].qos &
		    ~SESSION_SUB_QOS) == NULL) ||
		    (s->subs[i].id != 0 && cJSON_AddNumberToObject(o, "id",
		    s->subs[i].id) == NULL)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddItemToArray(arr, o);
	}
	txt = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (txt == NULL)
		return NULL;
	out = gw_strdup(txt);
	cJSON_free(txt);
	return out;
}

void
persist_session_save(struct broker *b, struct session *s)
{
	struct store_item it;

	if (s->clean || b->intake_stopped)
		return;
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_SESSION_SAVE;
	it.key = s->offline_ms > 0 ? (uint64_t)s->offline_ms : 0;
	it.expiry_s = s->expiry_s;
	it.protocol = s->version;
	if ((it.client_id = gw_strdup(s->client_id)) == NULL ||
	    (it.text = subs_json(s)) == NULL) {
		gw_free(it.client_id);
		log_warn("client %s: out of memory saving its session",
		    s->client_id);
		return;
	}
	submit_or_drop(b, &it, "session");
}

void
persist_session_delete(struct broker *b, struct session *s)
{
	struct store_item it;

	if (b->intake_stopped)
		return;
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_SESSION_DEL;
	if ((it.client_id = gw_strdup(s->client_id)) == NULL)
		return;
	submit_or_drop(b, &it, "session removal");
}

uint64_t
persist_msg_add(struct broker *b, struct session *s, struct msg *m,
    uint8_t qos, bool retain)
{
	struct store_item it;

	if (s->clean || b->intake_stopped)
		return 0;
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_SMSG_ADD;
	it.key = ++b->smsg_seq;
	it.qos = qos;
	it.retain = retain;
	if ((it.client_id = gw_strdup(s->client_id)) == NULL)
		return 0;
	it.msg = msg_ref(m);
	if (broker_submit(b, &it) != 0) {
		msg_unref(&it.msg);
		gw_free(it.client_id);
		if (log_ratelimited(&b->err_log, 5, 10000))
			log_warn("store queue full: message for %s kept in "
			    "memory only", s->client_id);
		return 0;
	}
	return it.key;
}

void
persist_msg_delete(struct broker *b, uint64_t key)
{
	struct store_item it;

	if (key == 0 || b->intake_stopped)
		return;
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_SMSG_DEL;
	it.key = key;
	submit_or_drop(b, &it, "delivered session message removal");
}

/*
 * Records that session message key got its PUBREC and now waits for
 * PUBCOMP as pid, so that after a restart only its PUBREL is sent again.
 * 0, or GW_EFULL when the store queue is full (nothing recorded).
 */
int
persist_msg_pubrel(struct broker *b, uint64_t key, uint16_t pid)
{
	struct store_item it;

	if (key == 0 || b->intake_stopped)
		return GW_EFULL;
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_SMSG_PUBREL;
	it.key = key;
	it.packet_id = pid;
	return broker_submit(b, &it);
}

static void
load_session_cb(const char *client_id, const char *subs, long long seen_ms,
    uint32_t expiry_s, void *arg)
{
	struct broker *b = arg;
	struct session *s;
	const cJSON *e, *f, *q, *o, *id;
	cJSON *arr;
	size_t len = strlen(client_id), flen;
	uint32_t sid;
	uint8_t qos;

	if ((s = session_find(b->sessions, client_id, len)) == NULL &&
	    (s = session_create(b->sessions, client_id, len, false)) == NULL)
		return;
	s->offline_ms = seen_ms;
	s->expiry_s = expiry_s;
	s->version = expiry_s == SESSION_EXPIRY_LIMIT ? 4 : 5;
	if (subs == NULL || (arr = cJSON_Parse(subs)) == NULL)
		return;
	cJSON_ArrayForEach(e, arr) {
		f = cJSON_GetObjectItemCaseSensitive(e, "filter");
		q = cJSON_GetObjectItemCaseSensitive(e, "qos");
		if (!cJSON_IsString(f) || !cJSON_IsNumber(q) ||
		    q->valueint < 0 || q->valueint > 2)
			continue;
		flen = strlen(f->valuestring);
		if (!topic_filter_valid(f->valuestring, flen))
			continue;
		if (share_parse(f->valuestring, flen, NULL, NULL) < 0)
			continue;
		qos = (uint8_t)q->valueint;
		o = cJSON_GetObjectItemCaseSensitive(e, "opts");
		if (cJSON_IsNumber(o))
			qos |= (uint8_t)(o->valueint & (SESSION_SUB_NO_LOCAL |
			    SESSION_SUB_RAP));
		/* "id": the 5.0 Subscription Identifier; absent in rows
		 * saved before it was kept, and for none. */
		id = cJSON_GetObjectItemCaseSensitive(e, "id");
		sid = 0;
		if (cJSON_IsNumber(id) && id->valuedouble >= 1 &&
		    id->valuedouble <= PROPS_VARINT_MAX)
			sid = (uint32_t)id->valuedouble;
		if (session_sub_set(s, f->valuestring, flen, qos, sid) == 0)
			share_sub_add(b, s, f->valuestring, flen, qos);
	}
	cJSON_Delete(arr);
}

static void
load_smsg_cb(const char *client_id, uint64_t key, struct msg *m, uint8_t qos,
    uint8_t retain, uint16_t pubrel_pid, void *arg)
{
	struct broker *b = arg;
	struct session *s;
	struct out_msg o;
	size_t len = strlen(client_id);

	if (key > b->smsg_seq)
		b->smsg_seq = key;
	if ((s = session_find(b->sessions, client_id, len)) == NULL &&
	    (s = session_create(b->sessions, client_id, len, false)) == NULL) {
		msg_unref(&m);
		return;
	}
	memset(&o, 0, sizeof o);
	o.m = m;
	o.qos = qos;
	o.retain = retain;
	o.key = key;
	if (pubrel_pid != 0 && session_inflight_find(s, pubrel_pid) == NULL) {
		/* PUBREC received before the restart: only PUBREL is owed. */
		o.pid = pubrel_pid;
		o.state = OUT_WAIT_PUBCOMP;
		o.m = NULL;
		if (session_inflight_add(s, &o, b->cfg->max_inflight) == 0) {
			msg_unref(&m);
			return;
		}
		o.m = m;
		o.pid = 0;
		o.state = OUT_QUEUED;
	}
	if (session_queue_push(s, &o, (size_t)-1) != 0)
		msg_unref(&o.m);
}

int
persist_load(struct broker *b)
{
	int rc;

	if ((rc = store_load_sessions(b->store, load_session_cb, b)) != 0)
		return rc;
	return store_load_session_msgs(b->store, load_smsg_cb, b);
}
