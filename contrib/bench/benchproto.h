/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * The packets mqbench exchanges with a broker, in MQTT 3.1.1 (protocol
 * level 4) or 5.0 (level 5): one function per packet the load generator
 * sends, and one decoder that reduces whatever the broker sends to the few
 * fields the load generator acts on. See benchproto.c.
 */
#ifndef GW_BENCHPROTO_H
#define GW_BENCHPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mqtt/codec.h"

#define BENCHPROTO_V311		4	/* level of MQTT 3.1.1 */
#define BENCHPROTO_V5		5	/* level of MQTT 5.0 */

/* A packet from the broker, as far as mqbench cares. */
struct benchproto_in {
	uint8_t		type;		/* enum codec_type */
	uint16_t	packet_id;	/* acks, SUBACK, PUBLISH QoS > 0 */
	uint8_t		qos;		/* PUBLISH */
	uint8_t		code;		/* CONNACK return code or
					 * reason, ack reason (0 in
					 * the short form), first
					 * SUBACK code, DISCONNECT
					 * reason */
	unsigned	count;		/* SUBACK codes */
	uint16_t	receive_max;	/* 5.0 CONNACK, 0 when absent */
	int		max_qos;	/* 5.0 CONNACK Maximum QoS, or -1 */
	uint32_t	max_packet;	/* 5.0 CONNACK, 0 when absent */
	bool		legacy;		/* 3.1.1 CONNACK to 5.0 */
	char		why[96];	/* 5.0 Reason String, or empty */
};

/*
 * Encoders: each appends one whole packet of protocol level version to out
 * and returns 0, GW_ENOMEM or GW_EMALFORMED; arguments are borrowed.
 */

/* CONNECT, clean session (3.1.1) or Clean Start without a session expiry
 * (5.0, no properties), keepalive 0. */
int	benchproto_connect(struct buf *out, uint8_t version, const char *id);
/* SUBSCRIBE, packet id 1, one filter at qos. */
int	benchproto_subscribe(struct buf *out, uint8_t version,
	    const char *filter, uint8_t qos);
/* PUBLISH, not retained, not DUP, without properties in 5.0. */
int	benchproto_publish(struct buf *out, uint8_t version,
	    const char *topic, size_t topic_len, const uint8_t *payload,
	    size_t len, uint8_t qos, uint16_t packet_id);
/* PUBACK, PUBREC, PUBREL or PUBCOMP (type), Success: 2 bytes in 5.0. */
int	benchproto_ack(struct buf *out, uint8_t version, uint8_t type,
	    uint16_t packet_id);
/* DISCONNECT, Normal disconnection: empty in both levels. */
int	benchproto_disconnect(struct buf *out, uint8_t version);

/*
 * Parses a fixed header with the rules of version (5.0 admits AUTH and
 * insists on minimal lengths); codec_parse_header()'s return codes.
 */
int	benchproto_header(uint8_t version, const uint8_t *buf, size_t len,
	    size_t max_packet, struct codec_header *h);

/*
 * Decodes the body of a packet from the broker (h from
 * benchproto_header()) into out. Returns 0, or GW_EMALFORMED /
 * GW_EPROTO with out->why saying what was wrong when it can. A 3.1.1
 * CONNACK refusing a 5.0 CONNECT (a broker that does not speak 5.0) is
 * decoded, with out->code its return code and out->legacy set.
 */
int	benchproto_decode(uint8_t version, const struct codec_header *h,
	    const uint8_t *body, struct benchproto_in *out);

/* The name of 5.0 reason code for packet type, "" for 3.1.1. */
const char *benchproto_reason(uint8_t version, uint8_t code, uint8_t type);

#endif
