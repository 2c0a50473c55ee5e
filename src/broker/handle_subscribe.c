/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SUBSCRIBE and UNSUBSCRIBE. Each filter is checked (an invalid one gets
 * return code 0x80 in the SUBACK), added to the session and the trie with
 * the requested QoS granted, and then the matching retained messages are
 * sent after the SUBACK, with the retain flag set. For a persistent
 * session the new subscription list is saved through the store first and
 * the SUBACK (and the retained messages after it) or UNSUBACK waits for
 * that commit, like a publish acknowledgement. A filter the ACL does not
 * grant gets 0x80 too (access.c). A "$share/GROUP/FILTER" filter joins a
 * shared subscription group (share.h): a malformed one gets 0x80, the ACL
 * checks its FILTER, and it brings no retained messages.
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

#define SUB_MAX_FILTERS	4096	/* per packet; bounded by packet size too */

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
sub_repeats(const struct codec_subscribe *sub, size_t n)
{
	struct codec_iter it = sub->entries;
	struct codec_str f;
	struct sub_ref *refs;
	bool *skip;
	uint8_t qos;
	size_t i = 0;

	if (n == 0 || (skip = gw_calloc(n, sizeof *skip)) == NULL)
		return NULL;
	if ((refs = gw_malloc(n * sizeof *refs)) == NULL) {
		gw_free(skip);
		return NULL;
	}
	while (i < n && codec_subscribe_next(&it, &f, &qos) == 1) {
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

/* Sends the retained messages for each granted filter of body. */
static void
send_retained(struct client *c, const uint8_t *body, size_t len,
    const uint8_t *codes, size_t ncodes)
{
	struct codec_subscribe sub;
	struct codec_str f;
	struct codec_iter it;
	uint8_t qos;
	bool *skip;
	size_t n = 0;

	if (c->sess == NULL || codec_decode_subscribe(body, len, &sub) != 0)
		return;
	skip = sub_repeats(&sub, ncodes);
	it = sub.entries;
	while (n < ncodes && codec_subscribe_next(&it, &f, &qos) == 1) {
		/* No retained messages for a shared subscription (MQTT 5.0
		 * section 4.8.2). */
		if (codes[n] != CODEC_SUBACK_FAILURE &&
		    (skip == NULL || !skip[n]) && !share_is(f.ptr, f.len))
			outbound_send_retained(c->b, c->sess, f.ptr, f.len,
			    codes[n]);
		n++;
	}
	gw_free(skip);
}

/* Returns why filter f may not be added to c's session, NULL if it may. */
static const char *
sub_refusal(struct client *c, const char *f, size_t len)
{
	struct session *s = c->sess;
	struct share_name sn = { NULL, 0, f, len };
	const char *why;

	/* A share name's levels and ACL are those of its FILTER. */
	if (share_parse(f, len, &sn, &why) < 0)
		return why;
	if (!topic_filter_valid(f, len))
		return "invalid filter";
	if (!access_subscribe(c, f, len))
		return "not authorized by the ACL";
	if (topic_levels(sn.filter, sn.filter_len) > TOPIC_MAX_LEVELS)
		return "more than 200 topic levels";
	if (s->nsubs >= c->b->cfg->max_subscriptions &&
	    !session_sub_has(s, f, len))
		return "limits.max_subscriptions reached";
	return NULL;
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
	const char *why;
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
		if ((why = sub_refusal(c, f.ptr, f.len)) == NULL) {
			if (session_sub_set(s, f.ptr, f.len, qos) == 0 &&
			    share_sub_add(b, s, f.ptr, f.len, qos) == 0)
				codes[n] = qos;
			else
				why = "out of memory";
		}
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
		if ((rc = codec_encode_suback(&c->conn.out, sub.packet_id,
		    codes, n)) != 0)
			return rc;
		client_want_flush(c);
		send_retained(c, body, len, codes, n);
		return 0;
	}
	persist_session_save(b, s);
	/* The SUBACK waits for the commit of the saved subscriptions. */
	c->last_seq = b->last_seq;
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
			share_sub_remove(c->b, s, f.ptr, f.len);
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
