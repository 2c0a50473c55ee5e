/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Acknowledgements held for the store's commit. A PUBACK, PUBREC, PUBCOMP,
 * SUBACK (persistent session) or UNSUBACK of a connection waits in that
 * connection's FIFO ring, stamped with the store sequence number of the
 * last item the connection had submitted when its packet was handled; a
 * commit that reaches that number releases it, in receive order. Clients
 * holding acks are on one list, so a commit visits only them. The ring is
 * bounded by limits.receive_maximum and limits.held_bytes (see
 * client_should_pause()). A QoS 2 publish is fanned out only when its
 * PUBREC is released; if its connection closes first, the fan-out is kept
 * as an orphan and delivered after the commit all the same.
 */
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "clock.h"
#include "mem.h"
#include "mqtt/codec.h"
#include "store/store.h"

/* Appends a zeroed entry to c's held-ack FIFO; NULL on ENOMEM. */
static struct held_ack *
ack_push(struct client *c)
{
	struct held_ack *na;
	size_t n, i;

	if (c->ack_len == c->ack_cap) {
		n = c->ack_cap ? c->ack_cap * 2 : 8;
		if ((na = gw_malloc(n * sizeof *na)) == NULL)
			return NULL;
		for (i = 0; i < c->ack_len; i++)
			na[i] = c->acks[(c->ack_head + i) % c->ack_cap];
		gw_free(c->acks);
		c->acks = na;
		c->ack_cap = n;
		c->ack_head = 0;
	}
	na = &c->acks[(c->ack_head + c->ack_len) % c->ack_cap];
	memset(na, 0, sizeof *na);
	na->seq = c->last_seq;
	na->bytes = c->pkt_bytes;
	c->held_bytes += na->bytes;
	c->ack_len++;
	return na;
}

/* Puts c on the held-ack list and releases what is durable already. */
static void
ack_track(struct client *c)
{
	if (!c->in_acks) {
		c->in_acks = true;
		LIST_INSERT_HEAD(&c->b->ack_clients, c, acks_link);
	}
	/* Usually the data is committed already only for no-op publishes. */
	if (c->last_seq <= store_committed_seq(c->b->store))
		broker_release_acks(c->b);
	else if (c->b->lazy_seq >= c->last_seq)
		store_nudge(c->b->store);	/* it may wait behind QoS 0 */
}

int
client_hold_ack(struct client *c, uint8_t type, uint16_t pid,
    struct msg *fanout, uint8_t reason)
{
	struct held_ack *a;

	if ((a = ack_push(c)) == NULL)
		return GW_ENOMEM;
	a->type = type;
	a->pid = pid;
	a->reason = reason;
	if (type == CODEC_PUBACK || type == CODEC_PUBCOMP)
		c->held_quota++;
	a->fanout = fanout;
	if (type == CODEC_PUBACK || type == CODEC_PUBREC)
		a->t_us = clock_mono_us();
	ack_track(c);
	return 0;
}

int
client_hold_packet(struct client *c, uint8_t type, uint8_t *data,
    uint32_t data_len, uint32_t pkt_len)
{
	struct held_ack *a;

	if ((a = ack_push(c)) == NULL)
		return GW_ENOMEM;
	a->type = type;
	a->data = data;
	a->data_len = data_len;
	a->pkt_len = pkt_len;
	ack_track(c);
	return 0;
}

/* Sends the acks of c that are durable now; all of them if force. */
void
acks_release_client(struct client *c, uint64_t committed, bool force)
{
	struct held_ack *a;

	while (c->ack_len > 0) {
		a = &c->acks[c->ack_head];
		if (!force && a->seq > committed)
			break;
		if (a->data != NULL) {
			if (c->state != CLIENT_CLOSING &&
			    a->type == CODEC_SUBACK)
				subscribe_release(c, a->data, a->data_len,
				    a->pkt_len);
			else if (c->state != CLIENT_CLOSING)
				(void)buf_append(&c->conn.out, a->data,
				    a->pkt_len);
			gw_free(a->data);
			a->data = NULL;
		} else if (c->state != CLIENT_CLOSING) {
			proto5_send_ack(c, a->type, a->pid, a->reason);
			if (a->type == CODEC_PUBACK || a->type == CODEC_PUBREC)
				metrics_hist_observe(&c->b->ack_hist,
				    clock_mono_us() - a->t_us);
		}
		if (a->fanout != NULL) {
			outbound_fanout(c->b, a->fanout);
			msg_unref(&a->fanout);
		}
		c->held_bytes -= a->bytes;
		if (a->data == NULL && (a->type == CODEC_PUBACK ||
		    a->type == CODEC_PUBCOMP))
			c->held_quota--;
		c->ack_head = (c->ack_head + 1) % c->ack_cap;
		c->ack_len--;
	}
	client_want_flush(c);
}

/*
 * Keeps the after-commit fan-out of a held QoS 2 publish whose connection
 * closed before the commit; broker_release_acks() delivers it later.
 */
void
acks_orphan(struct broker *b, struct held_ack *a)
{
	struct held_ack *n;
	size_t cap;

	if (b->norphans == b->caporphans) {
		cap = b->caporphans ? b->caporphans * 2 : 8;
		if ((n = gw_realloc(b->orphans, cap * sizeof *n)) == NULL) {
			outbound_fanout(b, a->fanout);
			msg_unref(&a->fanout);
			return;
		}
		b->orphans = n;
		b->caporphans = cap;
	}
	b->orphans[b->norphans++] = *a;
	a->fanout = NULL;
}

void
acks_release_orphans(struct broker *b, uint64_t committed, bool force)
{
	size_t i = 0;

	while (i < b->norphans) {
		if (!force && b->orphans[i].seq > committed) {
			i++;
			continue;
		}
		if (!b->intake_stopped)
			outbound_fanout(b, b->orphans[i].fanout);
		msg_unref(&b->orphans[i].fanout);
		b->orphans[i] = b->orphans[--b->norphans];
	}
}

void
broker_release_acks(struct broker *b)
{
	uint64_t committed = store_committed_seq(b->store);
	struct client *c, *next;

	if (b->norphans > 0)
		acks_release_orphans(b, committed, false);
	for (c = LIST_FIRST(&b->ack_clients); c != NULL; c = next) {
		next = LIST_NEXT(c, acks_link);
		acks_release_client(c, committed, false);
		if (c->ack_len == 0) {
			LIST_REMOVE(c, acks_link);
			c->in_acks = false;
			if (c->peer_eof)
				client_close_after_write(c, NULL);
		}
	}
}
