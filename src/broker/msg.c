/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reference-counted messages; see msg.h. One allocation holds the header and
 * all variable parts, laid out as: struct, payload, topic, client id, user
 * and, for a message from a source, the source's name and address, then
 * the forwardable 5.0 properties as one encoded block. That block is
 * written once, from the decoded PUBLISH, by the property encoder with
 * only the forwardable slots set, so a Topic Alias or a Subscription
 * Identifier can never leak into it; readers decode it again on demand
 * (a 5.0 subscriber's PUBLISH, the rules on the store thread).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "broker/msg.h"
#include "mem.h"
#include "mqtt/props.h"

/* The properties a server forwards with a PUBLISH (3.3.2.3). */
static const int fw_ids[] = {
	PROPS_PAYLOAD_FORMAT, PROPS_MESSAGE_EXPIRY, PROPS_CONTENT_TYPE,
	PROPS_RESPONSE_TOPIC, PROPS_CORRELATION_DATA,
};

/* No subscription identifiers: points props_size() away from a block. */
static const uint32_t fw_no_sub_ids[1];

/* Appends len bytes of s and a NUL at *p; returns where they start. */
static char *
put_str(uint8_t **p, const char *s, size_t len)
{
	char *at = (char *)*p;

	if (len != 0)
		memcpy(at, s, len);
	at[len] = '\0';
	*p += len + 1;
	return at;
}

/*
 * Fills *fw with the forwardable properties of pp (borrowing its strings
 * and user properties). Returns the encoded block's size (length varint
 * included), 0 when there is nothing to forward, or (size_t)-1 when pp
 * cannot be encoded.
 */
static size_t
fw_props(const struct props *pp, struct props *fw, size_t *body)
{
	size_t i, len;

	memset(fw, 0, sizeof *fw);
	if (pp == NULL)
		return 0;
	for (i = 0; i < sizeof fw_ids / sizeof fw_ids[0]; i++)
		if (props_has(pp, fw_ids[i]))
			props_set(fw, fw_ids[i]);
	fw->payload_format = pp->payload_format;
	fw->message_expiry = pp->message_expiry;
	fw->content_type = pp->content_type;
	fw->response_topic = pp->response_topic;
	fw->correlation_data = pp->correlation_data;
	fw->n_user = pp->n_user;
	fw->user = pp->user;
	fw->block = pp->block;
	fw->sub_ids = fw_no_sub_ids;
	if (fw->present == 0 && fw->n_user == 0)
		return 0;
	if (props_size(fw, CODEC_PUBLISH, &len) != 0 || len > UINT32_MAX - 8)
		return (size_t)-1;
	if (len == 0)
		return 0;
	*body = len;
	return props_varint_size((uint32_t)len) + len;
}

/*
 * The one allocator behind msg_new(), msg_new5() and msg_new_source():
 * username, source, origin and pp may be NULL (source and origin go
 * together).
 */
static struct msg *
msg_alloc(const char *topic, size_t topic_len, const char *client_id,
    size_t client_id_len, const char *username, size_t username_len,
    const void *payload, size_t payload_len, uint8_t qos, uint8_t retain,
    long long received_ms, const char *source, const char *origin,
    const struct props *pp)
{
	struct props fw;
	struct msg *m;
	uint8_t *p;
	size_t slen, olen, plen, pbody = 0, total;

	slen = source != NULL ? strlen(source) : 0;
	olen = origin != NULL ? strlen(origin) : 0;
	if ((plen = fw_props(pp, &fw, &pbody)) == (size_t)-1)
		return NULL;
	if (topic_len > UINT16_MAX || client_id_len > UINT16_MAX ||
	    username_len > UINT16_MAX || payload_len > UINT32_MAX ||
	    slen > UINT16_MAX || olen > UINT16_MAX ||
	    plen > UINT32_MAX - payload_len)
		return NULL;
	total = sizeof *m + payload_len + topic_len + 1 + client_id_len + 1 +
	    (username != NULL ? username_len + 1 : 0) +
	    (source != NULL ? slen + 1 + olen + 1 : 0) + plen;
	if ((m = gw_malloc(total)) == NULL)
		return NULL;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic_len;
	m->client_id_len = (uint16_t)client_id_len;
	m->username_len = username != NULL ? (uint16_t)username_len : 0;
	m->payload_len = (uint32_t)payload_len;
	m->received_ms = received_ms;
	p = (uint8_t *)(m + 1);
	m->payload = p;
	if (payload_len != 0)
		memcpy(p, payload, payload_len);
	p += payload_len;
	m->topic = put_str(&p, topic, topic_len);
	m->client_id = put_str(&p, client_id, client_id_len);
	m->username = username != NULL ? put_str(&p, username, username_len) :
	    NULL;
	m->source_len = (uint16_t)slen;
	m->source = source != NULL ? put_str(&p, source, slen) : NULL;
	m->origin = source != NULL ? put_str(&p, origin, olen) : NULL;
	m->props_len = (uint32_t)plen;
	m->props = NULL;
	m->expire_ms = 0;
	if (plen != 0) {
		m->props = p;
		props_write(p, &fw, CODEC_PUBLISH, pbody);
		if (props_has(&fw, PROPS_MESSAGE_EXPIRY))
			m->expire_ms = received_ms +
			    (long long)fw.message_expiry * 1000;
	}
	return m;
}

struct msg *
msg_new(const char *topic, size_t topic_len, const char *client_id,
    size_t client_id_len, const char *username, size_t username_len,
    const void *payload, size_t payload_len, uint8_t qos, uint8_t retain,
    long long received_ms)
{
	return msg_alloc(topic, topic_len, client_id, client_id_len, username,
	    username_len, payload, payload_len, qos, retain, received_ms, NULL,
	    NULL, NULL);
}

struct msg *
msg_new5(const char *topic, size_t topic_len, const char *client_id,
    size_t client_id_len, const char *username, size_t username_len,
    const void *payload, size_t payload_len, uint8_t qos, uint8_t retain,
    long long received_ms, const struct props *pp)
{
	return msg_alloc(topic, topic_len, client_id, client_id_len, username,
	    username_len, payload, payload_len, qos, retain, received_ms, NULL,
	    NULL, pp);
}

bool
msg_props(const struct msg *m, struct props *out)
{
	size_t used;

	if (m->props == NULL) {
		memset(out, 0, sizeof *out);
		return false;
	}
	return props_decode(m->props, m->props_len, CODEC_PUBLISH, out,
	    &used, NULL) == 0;
}

bool
msg_expired(const struct msg *m, long long now_ms)
{
	return m->props != NULL && m->expire_ms != 0 && now_ms >= m->expire_ms;
}

uint32_t
msg_expiry_left(const struct msg *m, long long now_ms)
{
	long long left = m->expire_ms - now_ms;

	if (left <= 0)
		return 0;
	return (uint32_t)((left + 999) / 1000);
}

struct msg *
msg_new_source(const char *topic, size_t topic_len, const char *client_id,
    size_t client_id_len, const void *payload, size_t payload_len,
    uint8_t qos, uint8_t retain, long long received_ms, const char *source,
    const char *origin)
{
	return msg_alloc(topic, topic_len, client_id, client_id_len, NULL, 0,
	    payload, payload_len, qos, retain, received_ms, source, origin,
	    NULL);
}

bool
msg_from_broker(const struct msg *m, const char *host, int port)
{
	char want[300];
	bool v6 = strchr(host, ':') != NULL;
	int n;

	if (m->origin == NULL)
		return false;
	n = snprintf(want, sizeof want, "%s%s%s:%d", v6 ? "[" : "", host,
	    v6 ? "]" : "", port);
	return n > 0 && (size_t)n < sizeof want &&
	    strcasecmp(m->origin, want) == 0;
}

void
msg_restamp(struct msg *m, long long now_ms)
{
	if (m->expire_ms != 0)
		m->expire_ms += now_ms - m->received_ms;
	m->received_ms = now_ms;
}

struct msg *
msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void
msg_unref(struct msg **mp)
{
	struct msg *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		gw_free(m);
}
