/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MQTT 5.0 packet codec beside the 3.1.1 one (codec.h): the same contract
 * (pure functions, decoders borrow from the input and allocate nothing,
 * encoders append whole packets to a struct buf and leave it unchanged on
 * failure), plus properties (props.h) and reason codes (reason.h).
 *
 * Decoders return 0, GW_EMALFORMED or GW_EPROTO and, on failure, set
 * *reason (if not NULL) to the reason code the standard names for the
 * refusal: 0x81 Malformed Packet, 0x82 Protocol Error, 0x94 Topic Alias
 * invalid. codec5_decode() selects the 3.1.1 or the 5.0 decoders by
 * protocol level, so callers keep one path for both.
 */
#ifndef GW_CODEC5_H
#define GW_CODEC5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mqtt/codec.h"
#include "mqtt/props.h"

#define CODEC5_LEVEL	5	/* protocol level of MQTT 5.0 */

struct codec5_connect {
	struct codec_connect	c;	/* protocol_level 5; clean_session
					 * is Clean Start */
	struct props		props;
	struct props		will_props;	/* if c.will_flag */
};

struct codec5_connack {
	bool		session_present;
	uint8_t		reason;
	struct props	props;
};

struct codec5_publish {
	struct codec_publish	p;	/* topic may be empty with an alias */
	struct props		props;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct codec5_ack {
	uint16_t	packet_id;
	uint8_t		reason;		/* 0 in the short form */
	struct props	props;
};

/* Subscription options byte (3.8.3.1). */
struct codec5_subopts {
	uint8_t		qos;		/* 0..2 */
	bool		no_local;
	bool		retain_as_published;
	uint8_t		retain_handling;	/* 0..2 */
};

struct codec5_subscribe {
	uint16_t		packet_id;
	unsigned		count;		/* >= 1 */
	struct codec_iter	entries;	/* codec5_subscribe_next() */
	struct props		props;
};

struct codec5_unsubscribe {
	uint16_t		packet_id;
	unsigned		count;		/* >= 1 */
	struct codec_iter	entries;	/* codec_unsubscribe_next() */
	struct props		props;
};

/* SUBACK and UNSUBACK. */
struct codec5_suback {
	uint16_t		packet_id;
	unsigned		count;		/* >= 1 */
	const uint8_t		*codes;		/* borrowed, count bytes */
	struct props		props;
};

/* DISCONNECT and AUTH. */
struct codec5_disconnect {
	uint8_t		reason;		/* 0 in the short form */
	struct props	props;
};

/* Any decoded packet, for codec5_decode(). */
struct codec5_packet {
	uint8_t		type;		/* enum codec_type */
	uint8_t		version;	/* protocol level decoded with */
	union {
		struct codec_connect		connect;	/* 3/4 */
		struct codec_connack		connack;
		struct codec_publish		publish;
		struct codec_subscribe		subscribe;
		struct codec_unsubscribe	unsubscribe;
		struct codec_suback		suback;
		uint16_t			packet_id;	/* acks */
		struct codec5_connect		connect5;	/* 5 */
		struct codec5_connack		connack5;
		struct codec5_publish		publish5;
		struct codec5_ack		ack5;
		struct codec5_subscribe		subscribe5;
		struct codec5_unsubscribe	unsubscribe5;
		struct codec5_suback		suback5;
		struct codec5_disconnect	disconnect5;	/* and AUTH */
	} u;
};

int	codec5_parse_header(const uint8_t *buf, size_t len, size_t max_packet,
	    struct codec_header *h);
int	codec5_parse_frame(const uint8_t *buf, size_t len, size_t max_packet,
	    struct codec_header *h);
int	codec5_decode(uint8_t version, const struct codec_header *h,
	    const uint8_t *body, size_t len, struct codec5_packet *out,
	    uint8_t *reason);

int	codec5_decode_connect(const uint8_t *body, size_t len,
	    struct codec5_connect *out, uint8_t *reason);
int	codec5_decode_connack(const uint8_t *body, size_t len,
	    struct codec5_connack *out, uint8_t *reason);
int	codec5_decode_publish(uint8_t flags, const uint8_t *body, size_t len,
	    struct codec5_publish *out, uint8_t *reason);
int	codec5_decode_ack(uint8_t type, const uint8_t *body, size_t len,
	    struct codec5_ack *out, uint8_t *reason);
int	codec5_decode_subscribe(const uint8_t *body, size_t len,
	    struct codec5_subscribe *out, uint8_t *reason);
int	codec5_subscribe_next(struct codec_iter *it, struct codec_str *filter,
	    struct codec5_subopts *opts);
int	codec5_decode_unsubscribe(const uint8_t *body, size_t len,
	    struct codec5_unsubscribe *out, uint8_t *reason);
int	codec5_decode_suback(uint8_t type, const uint8_t *body, size_t len,
	    struct codec5_suback *out, uint8_t *reason);
int	codec5_decode_disconnect(uint8_t type, const uint8_t *body,
	    size_t len, struct codec5_disconnect *out, uint8_t *reason);

int	codec5_encode_connect(struct buf *out, const struct codec5_connect *c);
int	codec5_encode_connack(struct buf *out, bool session_present,
	    uint8_t reason, const struct props *props);
int	codec5_encode_publish(struct buf *out, const struct codec_publish *p,
	    const struct props *props);
int	codec5_encode_ack(struct buf *out, uint8_t type, uint16_t packet_id,
	    uint8_t reason, const struct props *props);
int	codec5_encode_subscribe(struct buf *out, uint16_t packet_id,
	    const struct codec_str *filters, const struct codec5_subopts *opts,
	    size_t n, const struct props *props);
int	codec5_encode_unsubscribe(struct buf *out, uint16_t packet_id,
	    const struct codec_str *filters, size_t n,
	    const struct props *props);
int	codec5_encode_suback(struct buf *out, uint8_t type, uint16_t packet_id,
	    const uint8_t *codes, size_t n, const struct props *props);
int	codec5_encode_disconnect(struct buf *out, uint8_t type, uint8_t reason,
	    const struct props *props);

#endif
