/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strict MQTT 3.1.1 packet codec: pure functions over byte buffers, no I/O,
 * no globals, no allocation on decode. Decoders validate every normative
 * rule that can be checked from the bytes alone and return pointers that
 * BORROW from the input buffer (valid until the caller consumes those bytes).
 * Encoders append to a struct buf.
 *
 * Return codes: 0 ok; GW_EMORE need more bytes; GW_EMALFORMED malformed
 * (close the connection); GW_ETOOBIG packet larger than the limit;
 * GW_EUNSUPPORTED (CONNECT only) protocol name ok but level unsupported:
 * answer CONNACK 0x01 and close; GW_ENOMEM (encoders).
 */
#ifndef GW_CODEC_H
#define GW_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum codec_type {
	CODEC_CONNECT = 1,
	CODEC_CONNACK = 2,
	CODEC_PUBLISH = 3,
	CODEC_PUBACK = 4,
	CODEC_PUBREC = 5,
	CODEC_PUBREL = 6,
	CODEC_PUBCOMP = 7,
	CODEC_SUBSCRIBE = 8,
	CODEC_SUBACK = 9,
	CODEC_UNSUBSCRIBE = 10,
	CODEC_UNSUBACK = 11,
	CODEC_PINGREQ = 12,
	CODEC_PINGRESP = 13,
	CODEC_DISCONNECT = 14,
	CODEC_AUTH = 15,		/* MQTT 5.0 only (codec5.h) */
};

#define CODEC_MAX_REMAINING	268435455u	/* 4-byte varint maximum */

/* CONNACK return codes (MQTT 3.1.1 table 3.1). */
enum codec_connack_rc {
	CODEC_CONNACK_ACCEPTED = 0,
	CODEC_CONNACK_BAD_PROTOCOL = 1,
	CODEC_CONNACK_ID_REJECTED = 2,
	CODEC_CONNACK_UNAVAILABLE = 3,
	CODEC_CONNACK_BAD_CREDENTIALS = 4,
	CODEC_CONNACK_NOT_AUTHORIZED = 5,
};

#define CODEC_SUBACK_FAILURE	0x80

/* A length-prefixed string or binary field, borrowed from the input. */
struct codec_str {
	const char	*ptr;	/* not NUL-terminated */
	uint16_t	 len;
};

/* Fixed header of one packet. */
struct codec_header {
	uint8_t		type;		/* enum codec_type */
	uint8_t		flags;		/* low nibble of byte 1 */
	uint32_t	remaining;	/* remaining length */
	uint32_t	header_len;	/* bytes of fixed header (2..5) */
	/* whole packet = header_len + remaining bytes */
};

struct codec_connect {
	uint8_t		 protocol_level;	/* 4 for 3.1.1, 3 for 3.1 */
	bool		 clean_session;
	uint16_t	 keepalive;		/* seconds, 0 = off */
	struct codec_str client_id;		/* may be empty */
	bool		 will_flag;
	uint8_t		 will_qos;
	bool		 will_retain;
	struct codec_str will_topic;
	struct codec_str will_payload;		/* binary */
	bool		 has_username;
	struct codec_str username;
	bool		 has_password;
	struct codec_str password;		/* binary */
};

struct codec_connack {
	bool	session_present;
	uint8_t	return_code;
};

struct codec_publish {
	uint8_t		 qos;
	bool		 retain;
	bool		 dup;
	struct codec_str topic;
	uint16_t	 packet_id;	/* 0 for QoS 0 */
	const uint8_t	*payload;	/* borrowed */
	uint32_t	 payload_len;
};

/* SUBSCRIBE/UNSUBSCRIBE/SUBACK entries are walked with an iterator. */
struct codec_iter {
	const uint8_t	*p;	/* next entry */
	const uint8_t	*end;
};

struct codec_subscribe {
	uint16_t	 packet_id;
	unsigned	 count;		/* number of filters (>= 1) */
	struct codec_iter entries;	/* for codec_subscribe_next() */
};

struct codec_unsubscribe {
	uint16_t	 packet_id;
	unsigned	 count;		/* >= 1 */
	struct codec_iter entries;	/* for codec_unsubscribe_next() */
};

struct codec_suback {
	uint16_t	 packet_id;
	unsigned	 count;
	const uint8_t	*codes;		/* borrowed, count bytes */
};

/*
 * Parses the fixed header at buf[0..len). Checks the varint (at most 4
 * bytes: GW_EMALFORMED beyond), that header_len + remaining <= max_packet
 * (GW_ETOOBIG; 0 = only the protocol maximum) — this check happens as soon
 * as the length is known, before the body arrives — the packet type (0 and
 * 15 are malformed) and the fixed flags that 3.1.1 reserves for each type
 * (PUBREL/SUBSCRIBE/UNSUBSCRIBE must be 0x2, others except PUBLISH 0x0,
 * PUBLISH QoS 3 malformed). GW_EMORE until the whole header is present;
 * it does not wait for the body.
 */
int	codec_parse_header(const uint8_t *buf, size_t len, size_t max_packet,
	    struct codec_header *h);

/*
 * Same checks as codec_parse_header(), but GW_EMORE until the whole packet
 * (h->header_len + h->remaining bytes) is in buf[0..len); on 0 the body
 * starts at buf + h->header_len.
 */
int	codec_parse_frame(const uint8_t *buf, size_t len, size_t max_packet,
	    struct codec_header *h);

/*
 * Body decoders: body points at the remaining-length bytes that follow the
 * fixed header (len == h->remaining), flags are h->flags. Each checks every
 * field and that no bytes are left over.
 */
int	codec_decode_connect(const uint8_t *body, size_t len,
	    struct codec_connect *out);
int	codec_decode_connack(const uint8_t *body, size_t len,
	    struct codec_connack *out);
/* PUBLISH: rejects empty topic, '+' or '#' in the topic, invalid UTF-8 or
 * U+0000, packet id 0 with QoS > 0, DUP with QoS 0. */
int	codec_decode_publish(uint8_t flags, const uint8_t *body, size_t len,
	    struct codec_publish *out);
/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: packet id, non-zero. */
int	codec_decode_ack(const uint8_t *body, size_t len, uint16_t *packet_id);
/* SUBSCRIBE: >= 1 entry, each a valid UTF-8 non-empty filter string and a
 * requested QoS byte whose upper 6 bits are 0 and QoS <= 2. Filter syntax
 * (wildcard placement) is NOT checked here: see topic_filter_valid(). */
int	codec_decode_subscribe(const uint8_t *body, size_t len,
	    struct codec_subscribe *out);
int	codec_subscribe_next(struct codec_iter *it, struct codec_str *filter,
	    uint8_t *qos);	/* returns 1 while an entry was produced, 0 at end */
int	codec_decode_unsubscribe(const uint8_t *body, size_t len,
	    struct codec_unsubscribe *out);
int	codec_unsubscribe_next(struct codec_iter *it, struct codec_str *filter);
int	codec_decode_suback(const uint8_t *body, size_t len,
	    struct codec_suback *out);
/* PINGREQ, PINGRESP, DISCONNECT: remaining length must be 0. */
int	codec_decode_empty(size_t len);

/*
 * Encoders: append one whole packet to out. Return 0 or GW_ENOMEM
 * (GW_EMALFORMED for arguments the protocol cannot carry).
 */
int	codec_encode_connack(struct buf *out, bool session_present,
	    uint8_t return_code);
int	codec_encode_publish(struct buf *out, const char *topic,
	    size_t topic_len, const void *payload, size_t payload_len,
	    uint8_t qos, bool retain, bool dup, uint16_t packet_id);
/* PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK (type selects; PUBREL gets 0x2). */
int	codec_encode_ack(struct buf *out, enum codec_type type,
	    uint16_t packet_id);
int	codec_encode_suback(struct buf *out, uint16_t packet_id,
	    const uint8_t *codes, size_t n);
/* PINGREQ, PINGRESP, DISCONNECT. */
int	codec_encode_empty(struct buf *out, enum codec_type type);
/* Client side (tests, benchmark, future bridge). */
int	codec_encode_connect(struct buf *out, const struct codec_connect *c);
int	codec_encode_subscribe(struct buf *out, uint16_t packet_id,
	    const struct codec_str *filters, const uint8_t *qos, size_t n);
int	codec_encode_unsubscribe(struct buf *out, uint16_t packet_id,
	    const struct codec_str *filters, size_t n);

/*
 * Writes the fixed header + topic + packet id of a PUBLISH into hdr (at
 * least CODEC_PUBLISH_HDR_MAX bytes) and returns its length; the caller
 * sends the payload after it without copying it into a buffer. Returns 0
 * for arguments codec_encode_publish() refuses (empty topic, QoS > 2, ...).
 */
#define CODEC_PUBLISH_HDR_MAX	(5 + 2 + 65535 + 2)
size_t	codec_publish_header(uint8_t *hdr, const char *topic, size_t topic_len,
	    size_t payload_len, uint8_t qos, bool retain, bool dup,
	    uint16_t packet_id);

/* Varint helpers (exposed for tests). Encode returns bytes written (1..4). */
size_t	codec_varint_encode(uint8_t *out, uint32_t v);
int	codec_varint_decode(const uint8_t *p, size_t len, uint32_t *v,
	    size_t *used);

/* Name of a packet type for logs ("PUBLISH"), "UNKNOWN" otherwise. */
const char *codec_type_name(int type);

#endif
