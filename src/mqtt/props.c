/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * MQTT 5.0 property blocks (section numbers refer to the 5.0 standard).
 *
 * A block is a variable byte integer length followed by that many bytes of
 * properties, each an identifier (itself a variable byte integer) and a
 * value whose type the identifier fixes. One table, indexed by identifier,
 * says for each property its type, the packets that may carry it and where
 * its slot lives in struct props; decode and encode are both driven by it,
 * so adding a property is one table line.
 *
 * Decoding validates the whole block in one pass and fills the slots with
 * values that borrow from the input; nothing is allocated. Repeatable
 * properties (user properties, subscription identifiers in PUBLISH) are
 * only counted: the caller walks them later over the validated block.
 *
 * Refusals and their reason codes follow the standard: a bad variable byte
 * integer, a length past the end, a truncated value, bad UTF-8, an unknown
 * identifier or one not allowed on this packet make a Malformed Packet
 * (0x81, GW_EMALFORMED; 2.2.2.2 says an identifier invalid for the packet
 * type is malformed); a second copy of a single-valued property or a value
 * out of its range is a Protocol Error (0x82, GW_EPROTO), except a Topic
 * Alias of 0 which is Topic Alias invalid (0x94, GW_EPROTO).
 */
#include <stddef.h>
#include <string.h>

#include "err.h"
#include "mqtt/props.h"
#include "mqtt/reason.h"
#include "mqtt/utf8.h"

enum ptype {
	PT_NONE = 0,
	PT_BYTE,	/* uint8_t slot */
	PT_U16,		/* uint16_t slot */
	PT_U32,		/* uint32_t slot */
	PT_VARINT,	/* uint32_t slot */
	PT_STR,		/* struct codec_str slot, UTF-8 */
	PT_BIN,		/* struct codec_str slot, binary */
	PT_PAIR,	/* no slot: repeatable */
};

#define PK(t)		((uint32_t)1 << (t))
#define PK_CONNECT	PK(CODEC_CONNECT)
#define PK_CONNACK	PK(CODEC_CONNACK)
#define PK_PUBLISH	PK(CODEC_PUBLISH)
#define PK_PUBACKS	(PK(CODEC_PUBACK) | PK(CODEC_PUBREC) | \
			    PK(CODEC_PUBREL) | PK(CODEC_PUBCOMP))
#define PK_SUBSCRIBE	PK(CODEC_SUBSCRIBE)
#define PK_SUBACK	PK(CODEC_SUBACK)
#define PK_UNSUBSCRIBE	PK(CODEC_UNSUBSCRIBE)
#define PK_UNSUBACK	PK(CODEC_UNSUBACK)
#define PK_DISCONNECT	PK(CODEC_DISCONNECT)
#define PK_AUTH		PK(CODEC_AUTH)
#define PK_WILL		PK(PROPS_WILL)
#define PK_ALL		(PK_CONNECT | PK_CONNACK | PK_PUBLISH | PK_PUBACKS | \
			    PK_SUBSCRIBE | PK_SUBACK | PK_UNSUBSCRIBE | \
			    PK_UNSUBACK | PK_DISCONNECT | PK_AUTH | PK_WILL)

/* Value rules beyond the type. */
#define PR_BOOL		0x01	/* 0 or 1 */
#define PR_NONZERO	0x02	/* 0 refused */

struct pdef {
	uint8_t		 type;		/* enum ptype, PT_NONE: unknown id */
	uint8_t		 rule;		/* PR_* */
	uint32_t	 packets;	/* PK_* that may carry it */
	size_t		 off;		/* slot in struct props */
	const char	*name;
};

#define SLOT(f)	offsetof(struct props, f)

static const struct pdef pdefs[PROPS_ID_MAX + 1] = {
	[PROPS_PAYLOAD_FORMAT] = { PT_BYTE, PR_BOOL, PK_PUBLISH | PK_WILL,
	    SLOT(payload_format), "Payload Format Indicator" },
	[PROPS_MESSAGE_EXPIRY] = { PT_U32, 0, PK_PUBLISH | PK_WILL,
	    SLOT(message_expiry), "Message Expiry Interval" },
	[PROPS_CONTENT_TYPE] = { PT_STR, 0, PK_PUBLISH | PK_WILL,
	    SLOT(content_type), "Content Type" },
	[PROPS_RESPONSE_TOPIC] = { PT_STR, 0, PK_PUBLISH | PK_WILL,
	    SLOT(response_topic), "Response Topic" },
	[PROPS_CORRELATION_DATA] = { PT_BIN, 0, PK_PUBLISH | PK_WILL,
	    SLOT(correlation_data), "Correlation Data" },
	[PROPS_SUBSCRIPTION_ID] = { PT_VARINT, PR_NONZERO,
	    PK_PUBLISH | PK_SUBSCRIBE, SLOT(subscription_id),
	    "Subscription Identifier" },
	[PROPS_SESSION_EXPIRY] = { PT_U32, 0,
	    PK_CONNECT | PK_CONNACK | PK_DISCONNECT, SLOT(session_expiry),
	    "Session Expiry Interval" },
	[PROPS_ASSIGNED_CLIENT_ID] = { PT_STR, 0, PK_CONNACK,
	    SLOT(assigned_client_id), "Assigned Client Identifier" },
	[PROPS_SERVER_KEEPALIVE] = { PT_U16, 0, PK_CONNACK,
	    SLOT(server_keepalive), "Server Keep Alive" },
	[PROPS_AUTH_METHOD] = { PT_STR, 0, PK_CONNECT | PK_CONNACK | PK_AUTH,
	    SLOT(auth_method), "Authentication Method" },
	[PROPS_AUTH_DATA] = { PT_BIN, 0, PK_CONNECT | PK_CONNACK | PK_AUTH,
	    SLOT(auth_data), "Authentication Data" },
	[PROPS_REQUEST_PROBLEM_INFO] = { PT_BYTE, PR_BOOL, PK_CONNECT,
	    SLOT(request_problem_info), "Request Problem Information" },
	[PROPS_WILL_DELAY] = { PT_U32, 0, PK_WILL, SLOT(will_delay),
	    "Will Delay Interval" },
	[PROPS_REQUEST_RESPONSE_INFO] = { PT_BYTE, PR_BOOL, PK_CONNECT,
	    SLOT(request_response_info), "Request Response Information" },
	[PROPS_RESPONSE_INFO] = { PT_STR, 0, PK_CONNACK, SLOT(response_info),
	    "Response Information" },
	[PROPS_SERVER_REFERENCE] = { PT_STR, 0, PK_CONNACK | PK_DISCONNECT,
	    SLOT(server_reference), "Server Reference" },
	[PROPS_REASON_STRING] = { PT_STR, 0, PK_CONNACK | PK_PUBACKS |
	    PK_SUBACK | PK_UNSUBACK | PK_DISCONNECT | PK_AUTH,
	    SLOT(reason_string), "Reason String" },
	[PROPS_RECEIVE_MAXIMUM] = { PT_U16, PR_NONZERO,
	    PK_CONNECT | PK_CONNACK, SLOT(receive_maximum),
	    "Receive Maximum" },
	[PROPS_TOPIC_ALIAS_MAXIMUM] = { PT_U16, 0, PK_CONNECT | PK_CONNACK,
	    SLOT(topic_alias_maximum), "Topic Alias Maximum" },
	[PROPS_TOPIC_ALIAS] = { PT_U16, PR_NONZERO, PK_PUBLISH,
	    SLOT(topic_alias), "Topic Alias" },
	[PROPS_MAXIMUM_QOS] = { PT_BYTE, PR_BOOL, PK_CONNACK,
	    SLOT(maximum_qos), "Maximum QoS" },
	[PROPS_RETAIN_AVAILABLE] = { PT_BYTE, PR_BOOL, PK_CONNACK,
	    SLOT(retain_available), "Retain Available" },
	[PROPS_USER_PROPERTY] = { PT_PAIR, 0, PK_ALL, 0, "User Property" },
	[PROPS_MAXIMUM_PACKET_SIZE] = { PT_U32, PR_NONZERO,
	    PK_CONNECT | PK_CONNACK, SLOT(maximum_packet_size),
	    "Maximum Packet Size" },
	[PROPS_WILDCARD_SUB_AVAILABLE] = { PT_BYTE, PR_BOOL, PK_CONNACK,
	    SLOT(wildcard_sub_available),
	    "Wildcard Subscription Available" },
	[PROPS_SUB_ID_AVAILABLE] = { PT_BYTE, PR_BOOL, PK_CONNACK,
	    SLOT(sub_id_available), "Subscription Identifier Available" },
	[PROPS_SHARED_SUB_AVAILABLE] = { PT_BYTE, PR_BOOL, PK_CONNACK,
	    SLOT(shared_sub_available), "Shared Subscription Available" },
};

static const struct pdef *pdef_get(uint32_t);
static bool	repeatable(int, int);
static int	rd_varint(const uint8_t **, const uint8_t *, uint32_t *);
static int	rd_value(const struct pdef *, const uint8_t **,
		    const uint8_t *, uint32_t *, struct codec_str *,
		    struct codec_str *);
static int	value_ok(int, const struct pdef *, uint32_t, uint8_t *);
static int	fail(uint8_t *, uint8_t);
static size_t	value_size(const struct pdef *, const struct props *);
static int	next_of(struct codec_iter *, uint32_t, uint32_t *,
		    struct codec_str *, struct codec_str *);
static uint8_t	*wr_varint(uint8_t *, uint32_t);
static uint8_t	*wr_str(uint8_t *, const struct codec_str *);
static uint8_t	*wr_value(uint8_t *, const struct pdef *,
		    const struct props *);

static const struct pdef *
pdef_get(uint32_t id)
{
	if (id == 0 || id > PROPS_ID_MAX || pdefs[id].type == PT_NONE)
		return NULL;
	return &pdefs[id];
}

/* Whether property id may appear more than once on packet. */
static bool
repeatable(int id, int packet)
{
	return id == PROPS_USER_PROPERTY ||
	    (id == PROPS_SUBSCRIPTION_ID && packet == CODEC_PUBLISH);
}

static int
fail(uint8_t *reason, uint8_t code)
{
	if (reason != NULL)
		*reason = code;
	return code == REASON_MALFORMED ? GW_EMALFORMED : GW_EPROTO;
}

/*
 * Reads a variable byte integer (1.5.5) from [*pp, end): at most four
 * bytes, minimal encoding [MQTT-1.5.5-1]. GW_EMALFORMED otherwise or if it
 * runs past end.
 */
static int
rd_varint(const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
	const uint8_t	*p = *pp;
	uint32_t	 val = 0;
	int		 i;

	for (i = 0; i < 4; i++) {
		if (p + i >= end)
			return GW_EMALFORMED;
		val |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			if (i > 0 && p[i] == 0)
				return GW_EMALFORMED;	/* not minimal */
			*v = val;
			*pp = p + i + 1;
			return 0;
		}
	}
	return GW_EMALFORMED;
}

/*
 * Reads one value of d's type: numbers into *num, a string or binary into
 * *s, a pair into *s and *s2. Checks bounds and UTF-8; GW_EMALFORMED on
 * failure.
 */
static int
rd_value(const struct pdef *d, const uint8_t **pp, const uint8_t *end,
    uint32_t *num, struct codec_str *s, struct codec_str *s2)
{
	const uint8_t	*p = *pp;
	size_t		 n;

	switch (d->type) {
	case PT_BYTE:
		if (end - p < 1)
			return GW_EMALFORMED;
		*num = *p++;
		break;
	case PT_U16:
		if (end - p < 2)
			return GW_EMALFORMED;
		*num = (uint32_t)p[0] << 8 | p[1];
		p += 2;
		break;
	case PT_U32:
		if (end - p < 4)
			return GW_EMALFORMED;
		*num = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
		p += 4;
		break;
	case PT_VARINT:
		if (rd_varint(&p, end, num) != 0)
			return GW_EMALFORMED;
		break;
	case PT_PAIR:
	case PT_STR:
	case PT_BIN:
		if (end - p < 2)
			return GW_EMALFORMED;
		n = (size_t)p[0] << 8 | p[1];
		if ((size_t)(end - p) - 2 < n)
			return GW_EMALFORMED;
		s->ptr = (const char *)p + 2;
		s->len = (uint16_t)n;
		p += 2 + n;
		if (d->type != PT_BIN && !utf8_valid(s->ptr, s->len, false))
			return GW_EMALFORMED;
		if (d->type == PT_PAIR) {
			if (end - p < 2)
				return GW_EMALFORMED;
			n = (size_t)p[0] << 8 | p[1];
			if ((size_t)(end - p) - 2 < n)
				return GW_EMALFORMED;
			s2->ptr = (const char *)p + 2;
			s2->len = (uint16_t)n;
			p += 2 + n;
			if (!utf8_valid(s2->ptr, s2->len, false))
				return GW_EMALFORMED;
		}
		break;
	default:
		return GW_EMALFORMED;
	}
	*pp = p;
	return 0;
}

/* Range rules of a numeric value; 0 or the refusal with its reason. */
static int
value_ok(int id, const struct pdef *d, uint32_t v, uint8_t *reason)
{
	if ((d->rule & PR_BOOL) != 0 && v > 1)
		return fail(reason, REASON_PROTOCOL_ERROR);
	if ((d->rule & PR_NONZERO) != 0 && v == 0)
		return fail(reason, id == PROPS_TOPIC_ALIAS ?
		    REASON_TOPIC_ALIAS_INVALID : REASON_PROTOCOL_ERROR);
	return 0;
}

/*
 * Decodes the property block at buf[0..len) (its length varint first) of
 * a packet of type packet (enum codec_type or PROPS_WILL) into *out, which
 * borrows from buf. On 0, *used is the number of bytes the block took. On
 * failure returns GW_EMALFORMED or GW_EPROTO and, if reason is not NULL,
 * sets *reason to the reason code the standard names for it (0x81, 0x82,
 * 0x94); see the file comment.
 */
int
props_decode(const uint8_t *buf, size_t len, int packet, struct props *out,
    size_t *used, uint8_t *reason)
{
	const uint8_t		*p, *end;
	const struct pdef	*d;
	struct codec_str	 s, s2;
	uint32_t		 plen, id, num = 0;
	int			 rc;

	memset(out, 0, sizeof *out);
	if (len == 0)
		return fail(reason, REASON_MALFORMED);
	p = buf;
	if (rd_varint(&p, buf + len, &plen) != 0 ||
	    (size_t)(buf + len - p) < plen)
		return fail(reason, REASON_MALFORMED);
	end = p + plen;
	out->block.p = p;
	out->block.end = end;
	while (p < end) {
		if (rd_varint(&p, end, &id) != 0 || (d = pdef_get(id)) == NULL)
			return fail(reason, REASON_MALFORMED);
		if (packet < 0 || packet > PROPS_WILL ||
		    (d->packets & PK(packet)) == 0)
			return fail(reason, REASON_MALFORMED);
		if (!repeatable((int)id, packet) && props_has(out, (int)id))
			return fail(reason, REASON_PROTOCOL_ERROR);
		if (rd_value(d, &p, end, &num, &s, &s2) != 0)
			return fail(reason, REASON_MALFORMED);
		if (d->type != PT_STR && d->type != PT_BIN &&
		    d->type != PT_PAIR &&
		    (rc = value_ok((int)id, d, num, reason)) != 0)
			return rc;
		switch (d->type) {
		case PT_BYTE:
			*((uint8_t *)out + d->off) = (uint8_t)num;
			break;
		case PT_U16:
			memcpy((char *)out + d->off, &(uint16_t){ num }, 2);
			break;
		case PT_U32:
		case PT_VARINT:
			if (id == PROPS_SUBSCRIPTION_ID &&
			    out->n_sub_id++ != 0)
				break;		/* keep the first one */
			memcpy((char *)out + d->off, &num, 4);
			break;
		case PT_STR:
		case PT_BIN:
			memcpy((char *)out + d->off, &s, sizeof s);
			break;
		default:
			out->n_user++;
			break;
		}
		if (d->type != PT_PAIR)
			props_set(out, (int)id);
	}
	*used = (size_t)(end - buf);
	return 0;
}

/*
 * Walks a decoded block: *it starts as a copy of props->block. Moves *it
 * past the next property with identifier want; fills num/s/s2. Returns 1,
 * or 0 at the end (or at anything a validated block cannot hold).
 */
static int
next_of(struct codec_iter *it, uint32_t want, uint32_t *num,
    struct codec_str *s, struct codec_str *s2)
{
	const struct pdef	*d;
	uint32_t		 id;

	while (it->p != NULL && it->p < it->end) {
		if (rd_varint(&it->p, it->end, &id) != 0 ||
		    (d = pdef_get(id)) == NULL ||
		    rd_value(d, &it->p, it->end, num, s, s2) != 0) {
			it->p = it->end;
			return 0;
		}
		if (id == want)
			return 1;
	}
	return 0;
}

/*
 * Next user property of a decoded block (*it starts as props.block): 1
 * with *name and *value borrowed from the packet, 0 at the end.
 */
int
props_next_user(struct codec_iter *it, struct codec_str *name,
    struct codec_str *value)
{
	uint32_t	num;

	return next_of(it, PROPS_USER_PROPERTY, &num, name, value);
}

/*
 * Next subscription identifier of a decoded block (*it starts as
 * props.block): 1 with *id set, 0 at the end.
 */
int
props_next_sub_id(struct codec_iter *it, uint32_t *id)
{
	struct codec_str	s, s2;

	return next_of(it, PROPS_SUBSCRIPTION_ID, id, &s, &s2);
}

/* Whether property id may appear on packet (enum codec_type/PROPS_WILL). */
bool
props_allowed(int id, int packet)
{
	const struct pdef	*d;

	if (id < 0 || packet < 0 || packet > PROPS_WILL ||
	    (d = pdef_get((uint32_t)id)) == NULL)
		return false;
	return (d->packets & PK(packet)) != 0;
}

/* Static name of property id ("Topic Alias"), "unknown" otherwise. */
const char *
props_name(int id)
{
	const struct pdef	*d;

	if (id < 0 || (d = pdef_get((uint32_t)id)) == NULL)
		return "unknown";
	return d->name;
}

/* Bytes v takes as a variable byte integer (1..4), 0 if too large. */
size_t
props_varint_size(uint32_t v)
{
	if (v < 128)
		return 1;
	if (v < 16384)
		return 2;
	if (v < 2097152)
		return 3;
	if (v <= PROPS_VARINT_MAX)
		return 4;
	return 0;
}

static size_t
value_size(const struct pdef *d, const struct props *p)
{
	const struct codec_str	*s;
	uint32_t		 v;

	switch (d->type) {
	case PT_BYTE:
		return 1;
	case PT_U16:
		return 2;
	case PT_U32:
		return 4;
	case PT_VARINT:
		memcpy(&v, (const char *)p + d->off, 4);
		return props_varint_size(v);
	default:
		s = (const struct codec_str *)((const char *)p + d->off);
		return 2 + (size_t)s->len;
	}
}

/*
 * Computes the length of p's property block as packet would carry it
 * (without the leading length varint) into *len. Refuses (GW_EMALFORMED) a
 * property not allowed on packet, a value out of range, more than one
 * subscription identifier outside PUBLISH and a block past the varint
 * maximum.
 */
int
props_size(const struct props *p, int packet, size_t *len)
{
	const struct pdef	*d;
	struct codec_iter	 it;
	struct codec_str	 n, v;
	uint32_t		 num;
	uint16_t		 h;
	size_t			 total = 0, i;
	int			 id;

	for (id = 1; id <= PROPS_ID_MAX; id++) {
		if (!props_has(p, id) || id == PROPS_SUBSCRIPTION_ID)
			continue;
		if ((d = pdef_get((uint32_t)id)) == NULL ||
		    !props_allowed(id, packet))
			return GW_EMALFORMED;
		num = 0;
		if (d->type == PT_BYTE)
			num = *((const uint8_t *)p + d->off);
		else if (d->type == PT_U16) {
			memcpy(&h, (const char *)p + d->off, 2);
			num = h;
		}
		else if (d->type == PT_U32)
			memcpy(&num, (const char *)p + d->off, 4);
		if (d->type <= PT_U32 && value_ok(id, d, num, NULL) != 0)
			return GW_EMALFORMED;
		total += 1 + value_size(d, p);
	}
	/* Subscription identifiers: array, decoded block, or the slot. */
	if (p->sub_ids != NULL) {
		if (p->n_sub_id > 0 && !props_allowed(PROPS_SUBSCRIPTION_ID,
		    packet))
			return GW_EMALFORMED;
		if (p->n_sub_id > 1 && packet != CODEC_PUBLISH)
			return GW_EMALFORMED;
		for (i = 0; i < p->n_sub_id; i++) {
			if (p->sub_ids[i] == 0 ||
			    p->sub_ids[i] > PROPS_VARINT_MAX)
				return GW_EMALFORMED;
			total += 1 + props_varint_size(p->sub_ids[i]);
		}
	} else if (p->block.p != NULL) {
		if (p->n_sub_id > 0 && !props_allowed(PROPS_SUBSCRIPTION_ID,
		    packet))
			return GW_EMALFORMED;
		it = p->block;
		while (props_next_sub_id(&it, &num) == 1)
			total += 1 + props_varint_size(num);
	} else if (props_has(p, PROPS_SUBSCRIPTION_ID)) {
		if (!props_allowed(PROPS_SUBSCRIPTION_ID, packet) ||
		    p->subscription_id == 0 ||
		    p->subscription_id > PROPS_VARINT_MAX)
			return GW_EMALFORMED;
		total += 1 + props_varint_size(p->subscription_id);
	}
	/* User properties: array or decoded block. */
	if (p->user != NULL) {
		for (i = 0; i < p->n_user; i++)
			total += 1 + 4 + p->user[i].name.len +
			    p->user[i].value.len;
	} else if (p->block.p != NULL) {
		it = p->block;
		while (props_next_user(&it, &n, &v) == 1)
			total += 1 + 4 + n.len + v.len;
	}
	if (total > PROPS_VARINT_MAX)
		return GW_EMALFORMED;
	*len = total;
	return 0;
}

static uint8_t *
wr_varint(uint8_t *out, uint32_t v)
{
	do {
		*out = v & 0x7f;
		v >>= 7;
		if (v != 0)
			*out |= 0x80;
		out++;
	} while (v != 0);
	return out;
}

static uint8_t *
wr_str(uint8_t *out, const struct codec_str *s)
{
	*out++ = (uint8_t)(s->len >> 8);
	*out++ = (uint8_t)(s->len & 0xff);
	if (s->len != 0)
		memcpy(out, s->ptr, s->len);
	return out + s->len;
}

static uint8_t *
wr_value(uint8_t *out, const struct pdef *d, const struct props *p)
{
	const char	*slot = (const char *)p + d->off;
	uint32_t	 v;
	uint16_t	 h;

	switch (d->type) {
	case PT_BYTE:
		*out++ = *(const uint8_t *)slot;
		return out;
	case PT_U16:
		memcpy(&h, slot, 2);
		*out++ = (uint8_t)(h >> 8);
		*out++ = (uint8_t)(h & 0xff);
		return out;
	case PT_U32:
		memcpy(&v, slot, 4);
		*out++ = (uint8_t)(v >> 24);
		*out++ = (uint8_t)(v >> 16);
		*out++ = (uint8_t)(v >> 8);
		*out++ = (uint8_t)v;
		return out;
	case PT_VARINT:
		memcpy(&v, slot, 4);
		return wr_varint(out, v);
	default:
		return wr_str(out, (const struct codec_str *)(const void *)
		    slot);
	}
}

/*
 * Writes p's block for packet at out: the length varint, then the
 * properties in identifier order, subscription identifiers, then user
 * properties in their order. len must come from a successful props_size()
 * for the same p and packet; out needs props_varint_size(len) + len bytes.
 * Returns the position after the block.
 */
uint8_t *
props_write(uint8_t *out, const struct props *p, int packet, size_t len)
{
	struct codec_iter	 it;
	struct codec_str	 n, v;
	uint32_t		 num;
	size_t			 i;
	int			 id;

	(void)packet;
	out = wr_varint(out, (uint32_t)len);
	for (id = 1; id <= PROPS_ID_MAX; id++) {
		if (!props_has(p, id) || id == PROPS_SUBSCRIPTION_ID)
			continue;
		*out++ = (uint8_t)id;
		out = wr_value(out, &pdefs[id], p);
	}
	if (p->sub_ids != NULL) {
		for (i = 0; i < p->n_sub_id; i++) {
			*out++ = PROPS_SUBSCRIPTION_ID;
			out = wr_varint(out, p->sub_ids[i]);
		}
	} else if (p->block.p != NULL) {
		it = p->block;
		while (props_next_sub_id(&it, &num) == 1) {
			*out++ = PROPS_SUBSCRIPTION_ID;
			out = wr_varint(out, num);
		}
	} else if (props_has(p, PROPS_SUBSCRIPTION_ID)) {
		*out++ = PROPS_SUBSCRIPTION_ID;
		out = wr_varint(out, p->subscription_id);
	}
	if (p->user != NULL) {
		for (i = 0; i < p->n_user; i++) {
			*out++ = PROPS_USER_PROPERTY;
			out = wr_str(out, &p->user[i].name);
			out = wr_str(out, &p->user[i].value);
		}
	} else if (p->block.p != NULL) {
		it = p->block;
		while (props_next_user(&it, &n, &v) == 1) {
			*out++ = PROPS_USER_PROPERTY;
			out = wr_str(out, &n);
			out = wr_str(out, &v);
		}
	}
	return out;
}

/*
 * Appends p's property block for packet (length varint included) to out.
 * Returns 0, GW_EMALFORMED (see props_size()) or GW_ENOMEM; a failure
 * leaves out as it was.
 */
int
props_encode(struct buf *out, const struct props *p, int packet)
{
	size_t	len;
	uint8_t	*end;
	int	rc;

	if ((rc = props_size(p, packet, &len)) != 0)
		return rc;
	if ((rc = buf_reserve(out, 4 + len, 0)) != 0)
		return rc;
	end = props_write(buf_tail(out), p, packet, len);
	buf_commit(out, (size_t)(end - buf_tail(out)));
	return 0;
}
