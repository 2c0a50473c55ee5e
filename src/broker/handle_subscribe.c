/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SUBSCRIBE and UNSUBSCRIBE. Each filter is checked (an invalid one gets
 * return code 0x80 in the SUBACK; a 5.0 client gets the reason code:
 * 0x8F invalid, 0x87 not authorized by the ACL (access.c), 0x97 over
 * max_subscriptions), added to the session and the trie with the
 * requested QoS granted, and then the matching retained messages are sent
 * after the SUBACK, with the retain flag set. For a persistent session the
 * new subscription list is saved through the store first and the SUBACK
 * (and the retained messages after it) or UNSUBACK waits for that commit,
 * like a publish acknowledgement.
 *
 * 5.0 options: No Local and Retain As Published travel with the QoS in the
 * trie (SESSION_SUB_*, read by outbound.c) and in the saved session;
 * Retain Handling 1 and 2 hold back the retained messages. A 5.0 UNSUBACK
 * carries one reason code per filter (0x11: no such subscription).
 * A Subscription Identifier is kept with each subscription of the packet
 * (replacing or, when absent, clearing the one it had); outbound.c puts it
 * on the PUBLISH packets those subscriptions bring, the retained ones
 * included.
 * A "$share/GROUP/FILTER" filter joins a shared subscription group
 * (share.h): a malformed one is refused as invalid, the ACL checks its
 * FILTER, and it brings no retained messages.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/share.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "config.h"
#include "err.h"
#include "mem.h"
#include "mqtt/codec5.h"
#include "mqtt/reason.h"

#define SUB_MAX_FILTERS	4096	/* per packet; bounded by packet size too */

/* A decoded SUBSCRIBE of either version. */
struct sub_pkt {
	uint16_t		packet_id;
	unsigned		count;
	struct codec_iter	entries;
	uint32_t		id;	/* 5.0 Subscription Identifier or 0 */
};

/*
 * Decodes a SUBSCRIBE body of c's protocol version into *out; a 5.0
 * refusal's reason goes to c->disc_reason.
 */
static int
sub_decode(struct client *c, const uint8_t *body, size_t len,
    struct sub_pkt *out)
{
	struct codec5_subscribe s5;
	struct codec_subscribe s3;
	int rc;

	if (CLIENT_V5(c)) {
		if ((rc = codec5_decode_subscribe(body, len, &s5,
		    &c->disc_reason)) != 0)
			return rc;
		/* The codec refuses an identifier of 0 and a second one in a
		 * SUBSCRIBE (0x82, 3.8.2.1.2). */
		out->id = props_has(&s5.props, PROPS_SUBSCRIPTION_ID) ?
		    s5.props.subscription_id : 0;
		out->packet_id = s5.packet_id;
		out->count = s5.count;
		out->entries = s5.entries;
		return 0;
	}
	if ((rc = codec_decode_subscribe(body, len, &s3)) != 0)
		return rc;
	out->id = 0;
	out->packet_id = s3.packet_id;
	out->count = s3.count;
	out->entries = s3.entries;
	return 0;
}

/* Next filter and options of a SUBSCRIBE; 1, or 0 at the end. */
static int
sub_next(const struct client *c, struct codec_iter *it, struct codec_str *f,
    struct codec5_subopts *o)
{
	memset(o, 0, sizeof *o);
	if (CLIENT_V5(c))
		return codec5_subscribe_next(it, f, o);
	return codec_subscribe_next(it, f, &o->qos);
}

/* One filter of a SUBSCRIBE, for finding repeats. */
struct sub_ref {
	const char	*ptr;
	size_t		 len;
	size_t		 idx;		/* position in the packet */
};

static int
sub_ref_cmp(const void *a, const void *b)
{
	const struct sub_ref *x = a, *y = b;
	int d;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if ((d = memcmp(x->ptr, y->ptr, x->len)) != 0)
		return d;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Marks in skip[] every filter of the packet that appears again later in
 * it: repeats are one subscription (the last QoS wins) and get one retained
 * walk. Sorting keeps this O(n log n) for the 4096 filters a packet may
 * carry. Returns a new array of n flags, NULL on ENOMEM.
 */
static bool *
sub_repeats(const struct client *c, const struct sub_pkt *sub, size_t n)
{
	struct codec_iter it = sub->entries;
	struct codec_str f;
	struct codec5_subopts o;
	struct sub_ref *refs;
	bool *skip;
	size_t i = 0;

	if (n == 0 || (skip = gw_calloc(n, sizeof *skip)) == NULL)
		return NULL;
	if ((refs = gw_malloc(n * sizeof *refs)) == NULL) {
		gw_free(skip);
		return NULL;
	}
	while (i < n && sub_next(c, &it, &f, &o) == 1) {
		refs[i].ptr = f.ptr;
		refs[i].len = f.len;
		refs[i].idx = i;
		i++;
	}
	n = i;
	qsort(refs, n, sizeof *refs, sub_ref_cmp);
	for (i = 0; i + 1 < n; i++) {
		if (refs[i].len == refs[i + 1].len &&
		    memcmp(refs[i].ptr, refs[i + 1].ptr, refs[i].len) == 0)
			skip[refs[i].idx] = true;
	}
	gw_free(refs);
	return skip;
}

/*
 * Sends the retained messages for each granted filter of body, but not
 * for those marked in no_retained (5.0 Retain Handling; may be NULL).
 */
static void
send_retained(struct client *c, const uint8_t *body, size_t len,
    const uint8_t *codes, size_t ncodes, const uint8_t *no_retained)
{
	struct sub_pkt sub;
	struct codec_str f;
	struct codec_iter it;
	struct codec5_subopts o;
	bool *skip;
	size_t n = 0;

	if (c->sess == NULL || sub_decode(c, body, len, &sub) != 0)
		return;
	skip = sub_repeats(c, &sub, ncodes);
	it = sub.entries;
	while (n < ncodes && sub_next(c, &it, &f, &o) == 1) {
		/* No retained messages for a shared subscription (MQTT 5.0
		 * section 4.8.2). */
		if (codes[n] < 0x80 && (skip == NULL || !skip[n]) &&
		    (no_retained == NULL || !no_retained[n]) &&
		    !share_is(f.ptr, f.len))
			outbound_send_retained(c->b, c->sess, f.ptr, f.len,
			    codes[n], sub.id);
		n++;
	}
	gw_free(skip);
}

/*
 * Returns why filter f may not be added to c's session, NULL if it may;
 * *code is the 5.0 reason code for the refusal.
 */
static const char *
sub_refusal(struct client *c, const char *f, size_t len, uint8_t *code)
{
	struct session *s = c->sess;
	struct share_name sn = { NULL, 0, f, len };
	const char *why;

	*code = REASON_TOPIC_FILTER_INVALID;
	/* A share name's levels and ACL are those of its FILTER. */
	if (share_parse(f, len, &sn, &why) < 0)
		return why;
	if (!topic_filter_valid(f, len))
		return "invalid filter";
	*code = REASON_NOT_AUTHORIZED;
	if (!access_subscribe(c, f, len))
		return "not authorized by the ACL";
	*code = REASON_TOPIC_FILTER_INVALID;
	if (topic_levels(sn.filter, sn.filter_len) > TOPIC_MAX_LEVELS)
		return "more than 200 topic levels";
	*code = REASON_QUOTA_EXCEEDED;
	if (s->nsubs >= c->b->cfg->max_subscriptions &&
	    !session_sub_has(s, f, len))
		return "limits.max_subscriptions reached";
	return NULL;
}

/*
 * Sends a held SUBACK, then the retained messages for its subscriptions:
 * data holds the SUBACK (pkt_len bytes), the SUBSCRIBE body, and one
 * no-retained flag per filter (len bytes in all).
 */
void
subscribe_release(struct client *c, const uint8_t *data, size_t len,
    size_t pkt_len)
{
	struct codec_header h;
	struct codec_suback sa;
	struct codec5_suback sa5;

	if (buf_append(&c->conn.out, data, pkt_len) != 0)
		return;
	client_want_flush(c);
	if (codec_parse_header(data, pkt_len, 0, &h) != 0)
		return;
	if (CLIENT_V5(c)) {
		if (codec5_decode_suback(CODEC_SUBACK, data + h.header_len,
		    h.remaining, &sa5, NULL) != 0)
			return;
		sa.codes = sa5.codes;
		sa.count = sa5.count;
	} else if (codec_decode_suback(data + h.header_len, h.remaining,
	    &sa) != 0)
		return;
	if (len - pkt_len < sa.count)
		return;
	send_retained(c, data + pkt_len, len - pkt_len - sa.count, sa.codes,
	    sa.count, data + len - sa.count);
}

/* Appends c's SUBACK for packet_id with n codes to out. */
static int
suback_encode(struct client *c, struct buf *out, uint16_t packet_id,
    const uint8_t *codes, size_t n)
{
	if (CLIENT_V5(c))
		return codec5_encode_suback(out, CODEC_SUBACK, packet_id,
		    codes, n, NULL);
	return codec_encode_suback(out, packet_id, codes, n);
}

/*
 * Appends a copy of the encoded packet in ack followed by body (len bytes)
 * and tail (ntail bytes) to c's held acks; frees ack.
 */
static int
hold_copy(struct client *c, uint8_t type, struct buf *ack,
    const uint8_t *body, size_t len, const uint8_t *tail, size_t ntail)
{
	uint8_t *data;
	int rc;

	if ((data = gw_malloc(buf_used(ack) + len + ntail + 1)) == NULL) {
		buf_free(ack);
		return GW_ENOMEM;
	}
	memcpy(data, buf_head(ack), buf_used(ack));
	if (len > 0)
		memcpy(data + buf_used(ack), body, len);
	if (ntail > 0)
		memcpy(data + buf_used(ack) + len, tail, ntail);
	rc = client_hold_packet(c, type, data, (uint32_t)(buf_used(ack) +
	    len + ntail), (uint32_t)buf_used(ack));
	buf_free(ack);
	if (rc != 0)
		gw_free(data);
	return rc;
}

int
handle_subscribe(struct client *c, const uint8_t *body, size_t len)
{
	struct broker *b = c->b;
	struct session *s = c->sess;
	struct sub_pkt sub;
	struct codec_str f;
	struct codec_iter it;
	struct codec5_subopts o;
	struct buf ack = BUF_INIT;
	uint8_t codes[SUB_MAX_FILTERS], no_ret[SUB_MAX_FILTERS], code, q;
	const char *why;
	unsigned n = 0;
	int rc;

	if ((rc = sub_decode(c, body, len, &sub)) != 0) {
		client_log(LOG_LVL_INFO, c, "malformed SUBSCRIBE");
		return rc;
	}
	if (sub.count > SUB_MAX_FILTERS) {
		client_log(LOG_LVL_INFO, c, "SUBSCRIBE with %u filters",
		    sub.count);
		return GW_ETOOBIG;
	}
	/* No Local on a shared subscription is a Protocol Error (3.8.3.1). */
	it = sub.entries;
	while (sub_next(c, &it, &f, &o) == 1)
		if (o.no_local && share_is(f.ptr, f.len)) {
			client_log(LOG_LVL_INFO, c, "No Local on shared "
			    "subscription %.*s", (int)f.len, f.ptr);
			c->disc_reason = REASON_PROTOCOL_ERROR;
			return GW_EPROTO;
		}
	it = sub.entries;
	while (sub_next(c, &it, &f, &o) == 1) {
		codes[n] = CLIENT_V5(c) ? REASON_UNSPECIFIED :
		    CODEC_SUBACK_FAILURE;
		/* Retain Handling 2: never; 1: only for a new subscription. */
		no_ret[n] = o.retain_handling == 2 || (o.retain_handling == 1 &&
		    session_sub_has(s, f.ptr, f.len));
		q = o.qos | (o.no_local ? SESSION_SUB_NO_LOCAL : 0) |
		    (o.retain_as_published ? SESSION_SUB_RAP : 0);
		if ((why = sub_refusal(c, f.ptr, f.len, &code)) == NULL) {
			if (session_sub_set(s, f.ptr, f.len, q, sub.id) == 0 &&
			    share_sub_add(b, s, f.ptr, f.len, q) == 0)
				codes[n] = o.qos;
			else
				why = "out of memory";
		} else if (CLIENT_V5(c))
			codes[n] = code;
		if (why != NULL) {
			b->stats.subs_refused++;
			if (log_ratelimited(&b->guard_log, 10, 10000))
				client_log(LOG_LVL_INFO, c, "subscription to "
				    "%.*s refused: %s", (int)f.len, f.ptr,
				    why);
		}
		n++;
	}
	if (s->clean) {
		if ((rc = suback_encode(c, &c->conn.out, sub.packet_id,
		    codes, n)) != 0)
			return rc;
		client_want_flush(c);
		send_retained(c, body, len, codes, n, no_ret);
		return 0;
	}
	persist_session_save(b, s);
	/* The SUBACK waits for the commit of the saved subscriptions. */
	c->last_seq = b->last_seq;
	if ((rc = suback_encode(c, &ack, sub.packet_id, codes, n)) != 0) {
		buf_free(&ack);
		return rc;
	}
	return hold_copy(c, CODEC_SUBACK, &ack, body, len, no_ret, n);
}

int
handle_unsubscribe(struct client *c, const uint8_t *body, size_t len)
{
	struct session *s = c->sess;
	struct codec_unsubscribe un;
	struct codec5_unsubscribe un5;
	struct codec_str f;
	struct codec_iter it;
	struct buf ack = BUF_INIT;
	uint8_t codes[SUB_MAX_FILTERS];
	unsigned n = 0;
	int rc;

	if (CLIENT_V5(c)) {
		rc = codec5_decode_unsubscribe(body, len, &un5,
		    &c->disc_reason);
		un.packet_id = un5.packet_id;
		un.count = un5.count;
		un.entries = un5.entries;
	} else
		rc = codec_decode_unsubscribe(body, len, &un);
	if (rc != 0) {
		client_log(LOG_LVL_INFO, c, "malformed UNSUBSCRIBE");
		return rc;
	}
	if (un.count > SUB_MAX_FILTERS)
		return GW_ETOOBIG;
	it = un.entries;
	while (codec_unsubscribe_next(&it, &f) == 1) {
		codes[n] = REASON_NO_SUBSCRIPTION_EXISTED;
		if (session_sub_remove(s, f.ptr, f.len) == 0) {
			share_sub_remove(c->b, s, f.ptr, f.len);
			codes[n] = REASON_SUCCESS;
		}
		n++;
	}
	if (!s->clean)
		persist_session_save(c->b, s);
	if (CLIENT_V5(c)) {
		/* 5.0 UNSUBACK: one reason code per filter. */
		if ((rc = codec5_encode_suback(&ack, CODEC_UNSUBACK,
		    un.packet_id, codes, n, NULL)) != 0) {
			buf_free(&ack);
			return rc;
		}
		if (!s->clean) {
			c->last_seq = c->b->last_seq;
			return hold_copy(c, CODEC_UNSUBACK, &ack, NULL, 0, NULL,
			    0);
		}
		rc = buf_append(&c->conn.out, buf_head(&ack), buf_used(&ack));
		buf_free(&ack);
		if (rc == 0)
			client_want_flush(c);
		return rc;
	}
	if (!s->clean) {
		c->last_seq = c->b->last_seq;
		return client_hold_ack(c, CODEC_UNSUBACK, un.packet_id, NULL,
		    0);
	}
	return proto5_send_ack(c, CODEC_UNSUBACK, un.packet_id, 0);
}
