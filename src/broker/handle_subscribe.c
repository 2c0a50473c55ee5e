/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SUBSCRIBE and UNSUBSCRIBE. Each filter is checked (an invalid one gets
 * return code 0x80 in the SUBACK), added to the session and the trie with
 * the requested QoS granted, and then the matching retained messages are
 * sent after the SUBACK, with the retain flag set.
 */
#include "broker/broker_int.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "err.h"

#define SUB_MAX_FILTERS	4096	/* per packet; bounded by packet size too */

int
handle_subscribe(struct client *c, const uint8_t *body, size_t len)
{
	struct broker *b = c->b;
	struct session *s = c->sess;
	struct codec_subscribe sub;
	struct codec_str f;
	struct codec_iter it;
	uint8_t codes[SUB_MAX_FILTERS], qos;
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
	if ((rc = codec_encode_suback(&c->conn.out, sub.packet_id, codes,
	    n)) != 0)
		return rc;
	client_want_flush(c);
	it = sub.entries;
	n = 0;
	while (codec_subscribe_next(&it, &f, &qos) == 1) {
		if (codes[n++] != CODEC_SUBACK_FAILURE)
			outbound_send_retained(b, s, f.ptr, f.len, qos);
	}
	return 0;
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
	if ((rc = codec_encode_ack(&c->conn.out, CODEC_UNSUBACK,
	    un.packet_id)) != 0)
		return rc;
	client_want_flush(c);
	return 0;
}
