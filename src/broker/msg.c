/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reference-counted messages; see msg.h. One allocation holds the header and
 * all variable parts, laid out as: struct, payload, topic, client id, user
 * and, for a message from a source, the source's name and address.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "broker/msg.h"
#include "mem.h"

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
 * The one allocator behind msg_new() and msg_new_source(): username,
 * source and origin may be NULL (source and origin go together).
 */
static struct msg *
msg_alloc(const char *topic, size_t topic_len, const char *client_id,
    size_t client_id_len, const char *username, size_t username_len,
    const void *payload, size_t payload_len, uint8_t qos, uint8_t retain,
    long long received_ms, const char *source, const char *origin)
{
	struct msg *m;
	uint8_t *p;
	size_t slen, olen, total;

	slen = source != NULL ? strlen(source) : 0;
	olen = origin != NULL ? strlen(origin) : 0;
	if (topic_len > UINT16_MAX || client_id_len > UINT16_MAX ||
	    username_len > UINT16_MAX || payload_len > UINT32_MAX ||
	    slen > UINT16_MAX || olen > UINT16_MAX)
		return NULL;
	total = sizeof *m + payload_len + topic_len + 1 + client_id_len + 1 +
	    (username != NULL ? username_len + 1 : 0) +
	    (source != NULL ? slen + 1 + olen + 1 : 0);
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
	    NULL);
}

struct msg *
msg_new_source(const char *topic, size_t topic_len, const char *client_id,
    size_t client_id_len, const void *payload, size_t payload_len,
    uint8_t qos, uint8_t retain, long long received_ms, const char *source,
    const char *origin)
{
	return msg_alloc(topic, topic_len, client_id, client_id_len, NULL, 0,
	    payload, payload_len, qos, retain, received_ms, source, origin);
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
