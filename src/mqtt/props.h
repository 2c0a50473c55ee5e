/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MQTT 5.0 properties (section 2.2.2 of the 5.0 standard): decoding a
 * property block into a struct that borrows from the input, and encoding
 * one. See props.c for the design.
 */
#ifndef GW_PROPS_H
#define GW_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mqtt/codec.h"

/* Property identifiers (table 2-4). */
enum props_id {
	PROPS_PAYLOAD_FORMAT = 0x01,		/* byte */
	PROPS_MESSAGE_EXPIRY = 0x02,		/* four-byte integer */
	PROPS_CONTENT_TYPE = 0x03,		/* UTF-8 string */
	PROPS_RESPONSE_TOPIC = 0x08,		/* UTF-8 string */
	PROPS_CORRELATION_DATA = 0x09,		/* binary data */
	PROPS_SUBSCRIPTION_ID = 0x0b,		/* variable byte integer */
	PROPS_SESSION_EXPIRY = 0x11,		/* four-byte integer */
	PROPS_ASSIGNED_CLIENT_ID = 0x12,	/* UTF-8 string */
	PROPS_SERVER_KEEPALIVE = 0x13,		/* two-byte integer */
	PROPS_AUTH_METHOD = 0x15,		/* UTF-8 string */
	PROPS_AUTH_DATA = 0x16,			/* binary data */
	PROPS_REQUEST_PROBLEM_INFO = 0x17,	/* byte */
	PROPS_WILL_DELAY = 0x18,		/* four-byte integer */
	PROPS_REQUEST_RESPONSE_INFO = 0x19,	/* byte */
	PROPS_RESPONSE_INFO = 0x1a,		/* UTF-8 string */
	PROPS_SERVER_REFERENCE = 0x1c,		/* UTF-8 string */
	PROPS_REASON_STRING = 0x1f,		/* UTF-8 string */
	PROPS_RECEIVE_MAXIMUM = 0x21,		/* two-byte integer */
	PROPS_TOPIC_ALIAS_MAXIMUM = 0x22,	/* two-byte integer */
	PROPS_TOPIC_ALIAS = 0x23,		/* two-byte integer */
	PROPS_MAXIMUM_QOS = 0x24,		/* byte */
	PROPS_RETAIN_AVAILABLE = 0x25,		/* byte */
	PROPS_USER_PROPERTY = 0x26,		/* UTF-8 string pair */
	PROPS_MAXIMUM_PACKET_SIZE = 0x27,	/* four-byte integer */
	PROPS_WILDCARD_SUB_AVAILABLE = 0x28,	/* byte */
	PROPS_SUB_ID_AVAILABLE = 0x29,		/* byte */
	PROPS_SHARED_SUB_AVAILABLE = 0x2a,	/* byte */
};
#define PROPS_ID_MAX	0x2a

/*
 * The "packet" a property block belongs to: an enum codec_type value
 * (CODEC_CONNECT ... CODEC_AUTH), or PROPS_WILL for
 * the will properties inside a CONNECT payload.
 */
#define PROPS_WILL	16

/* Largest value of a variable byte integer (1.5.5). */
#define PROPS_VARINT_MAX	268435455u

/*
 * A decoded property block. Single-valued properties have one slot each
 * and are present when props_has() says so; repeatable ones (user
 * properties everywhere, subscription identifiers in PUBLISH) are counted
 * and walked with props_next_user() / props_next_sub_id() over "block".
 * Strings and binary data borrow from the decoded input.
 *
 * For encoding, set the slots, mark them with props_set(), and either
 * point user/sub_ids at arrays of n_user/n_sub_id items, or leave them
 * NULL to copy the repeatable properties of a decoded block (forwarding).
 */
struct props_pair {
	struct codec_str	name;
	struct codec_str	value;
};

struct props {
	uint64_t		 present;	/* bit id set: slot is valid */
	uint8_t			 payload_format;	/* 0 or 1 */
	uint32_t		 message_expiry;	/* seconds */
	struct codec_str	 content_type;
	struct codec_str	 response_topic;
	struct codec_str	 correlation_data;	/* binary */
	uint32_t		 subscription_id;	/* first one decoded */
	uint32_t		 session_expiry;	/* seconds */
	struct codec_str	 assigned_client_id;
	uint16_t		 server_keepalive;	/* seconds */
	struct codec_str	 auth_method;
	struct codec_str	 auth_data;		/* binary */
	uint8_t			 request_problem_info;	/* 0 or 1 */
	uint32_t		 will_delay;		/* seconds */
	uint8_t			 request_response_info;	/* 0 or 1 */
	struct codec_str	 response_info;
	struct codec_str	 server_reference;
	struct codec_str	 reason_string;
	uint16_t		 receive_maximum;	/* >= 1 */
	uint16_t		 topic_alias_maximum;
	uint16_t		 topic_alias;		/* >= 1 */
	uint8_t			 maximum_qos;		/* 0 or 1 */
	uint8_t			 retain_available;	/* 0 or 1 */
	uint32_t		 maximum_packet_size;	/* >= 1 */
	uint8_t			 wildcard_sub_available; /* 0 or 1 */
	uint8_t			 sub_id_available;	/* 0 or 1 */
	uint8_t			 shared_sub_available;	/* 0 or 1 */
	unsigned		 n_user;	/* user properties */
	unsigned		 n_sub_id;	/* subscription identifiers */
	struct codec_iter	 block;		/* decoded block (borrowed) */
	const struct props_pair	*user;		/* encode: n_user pairs */
	const uint32_t		*sub_ids;	/* encode: n_sub_id values */
};

/* True if single-valued property id is set in p. */
static inline bool
props_has(const struct props *p, int id)
{
	return id > 0 && id <= PROPS_ID_MAX && (p->present >> id & 1) != 0;
}

/* Marks single-valued property id as set in p (for encoding). */
static inline void
props_set(struct props *p, int id)
{
	if (id > 0 && id <= PROPS_ID_MAX)
		p->present |= (uint64_t)1 << id;
}

int		props_decode(const uint8_t *buf, size_t len, int packet,
		    struct props *out, size_t *used, uint8_t *reason);
int		props_next_user(struct codec_iter *it, struct codec_str *name,
		    struct codec_str *value);
int		props_next_sub_id(struct codec_iter *it, uint32_t *id);
bool		props_allowed(int id, int packet);
const char	*props_name(int id);
int		props_size(const struct props *p, int packet, size_t *len);
uint8_t		*props_write(uint8_t *out, const struct props *p, int packet,
		    size_t len);
int		props_encode(struct buf *out, const struct props *p,
		    int packet);
size_t		props_varint_size(uint32_t v);

#endif
