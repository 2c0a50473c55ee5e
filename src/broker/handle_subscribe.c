/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SUBSCRIBE and UNSUBSCRIBE. Each filter is checked (an invalid one gets
 * return code 0x80 in the SUBACK), added to the session and the trie with
 * the requested QoS granted, and then the matching retained messages are
 * sent after the SUBACK, with the retain flag set. For a persistent
 * session the new subscription list is saved through the store first and
 * the SUBACK (and the retained messages after it) or UNSUBACK waits for
 * that commit, like a publish acknowledgement.
 */
#include <string.h>

#include "broker/broker_int.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "err.h"
#include "mem.h"

#define SUB_MAX_FILTERS	4096	/* per packet; bounded by packet size too */

/* Sends the retained messages for each granted filter of body. */
static void
send_retained(struct client *c, const uint8_t *body, size_t len,
    const uint8_t *codes, size_t ncodes)
{
	struct codec_subscribe sub;
	struct codec_str f;
	struct codec_iter it;
	uint8_t qos;
	size_t n = 0;

	if (c->sess == NULL || codec_decode_subscribe(body, len, &sub) != 0)
		return;
	it = sub.entries;
	while (n < ncodes && codec_subscribe_next(&it, &f, &qos) == 1) {
		if (codes[n] != CODEC_SUBACK_FAILURE)
			outbound_send_retained(c->b, c->sess, f.ptr, f.len,
			    codes[n]);
		n++;
	}
}

void
subscribe_release(struct client *c, const uint8_t *data, size_t len,
    size_t pkt_len)
{
	struct codec_header h;
	struct codec_suback sa;

	if (buf_append(&c->conn.out, data, pkt_len) != 0)
		return;
	client_want_flush(c);
	if (codec_parse_header(data, pkt_len, 0, &h) != 0 ||
	    codec_decode_suback(data + h.header_len, h.remaining, &sa) != 0)
		return;
	send_retained(c, data + pkt_len, len - pkt_len, sa.codes, sa.count);
}

int
handle_subscribe(struct client *c, const uint8_t *body, size_t len)
{
	struct broker *b = c->b;
	struct session *s = c->sess;
	struct codec_subscribe sub;
	struct codec_str f;
	struct codec_iter it;
	struct buf ack = BUF_INIT;
	uint8_t codes[SUB_MAX_FILTERS], qos, *data;
	unsigned n = 0;
	int rc;

	if ((rc = codec_decode_subscribe(body, len, &sub)) != 0) {
		client_log(LOG_LVL_INFO, c, "malformed SUBSCRIBE");
		return rc;
	}
	if (sub.count > SUB_MAX_FILTERS) {
		client_log(LOG_LVL_INFO, c, "SUBSCRIBE with %u filters",
		    sub.count);
		return GW_ETOOBIG;
	}
	it = sub.entries;
	while (codec_subscribe_next(&it, &f, &qos) == 1) {
		codes[n] = CODEC_SUBACK_FAILURE;
		if (topic_filter_valid(f.ptr, f.len) &&
		    session_sub_set(s, f.ptr, f.len, qos) == 0 &&
		    subs_add(b->subs, f.ptr, f.len, s, qos, NULL) == 0)
			codes[n] = qos;
		else
			client_log(LOG_LVL_INFO, c, "subscription to %.*s "
			    "refused", (int)f.len, f.ptr);
		n++;
	}
	if (s->clean) {
		if ((rc = codec_encode_suback(&c->conn.out, sub.packet_id,
		    codes, n)) != 0)
			return rc;
		client_want_flush(c);
		send_retained(c, body, len, codes, n);
		return 0;
	}
	persist_session_save(b, s);
	c->last_seq = b->last_seq;	/* the SUBACK waits for that commit */
	if ((rc = codec_encode_suback(&ack, sub.packet_id, codes, n)) != 0)
		return rc;
	if ((data = gw_malloc(buf_used(&ack) + len)) == NULL) {
		buf_free(&ack);
		return GW_ENOMEM;
	}
	memcpy(data, buf_head(&ack), buf_used(&ack));
	memcpy(data + buf_used(&ack), body, len);
	rc = client_hold_suback(c, data, (uint32_t)(buf_used(&ack) + len),
	    (uint32_t)buf_used(&ack));
	buf_free(&ack);
	if (rc != 0)
		gw_free(data);
	return rc;
}

int
handle_unsubscribe(struct client *c, const uint8_t *body, size_t len)
{
	struct session *s = c->sess;
	struct codec_unsubscribe un;
	struct codec_str f;
	struct codec_iter it;
	int rc;

	if ((rc = codec_decode_unsubscribe(body, len, &un)) != 0) {
		client_log(LOG_LVL_INFO, c, "malformed UNSUBSCRIBE");
		return rc;
	}
	it = un.entries;
	while (codec_unsubscribe_next(&it, &f) == 1) {
		if (session_sub_remove(s, f.ptr, f.len) == 0)
			subs_remove(c->b->subs, f.ptr, f.len, s);
	}
	if (!s->clean) {
		persist_session_save(c->b, s);
		c->last_seq = c->b->last_seq;
		return client_hold_ack(c, CODEC_UNSUBACK, un.packet_id, NULL);
	}
	if ((rc = codec_encode_ack(&c->conn.out, CODEC_UNSUBACK,
	    un.packet_id)) != 0)
		return rc;
	client_want_flush(c);
	return 0;
}
