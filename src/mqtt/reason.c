/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * MQTT 5.0 reason codes. One table, indexed by code, holds the name and
 * the set of packet types that may carry the code (table 2-6 of the 5.0
 * standard); the decoders refuse a code outside its packet's set and the
 * encoders refuse to send one. Code 0x00 has three names depending on the
 * packet (Success, Normal disconnection, Granted QoS 0), so the name
 * lookup takes the packet too.
 */
#include <stddef.h>

#include "err.h"
#include "mqtt/codec.h"
#include "mqtt/reason.h"

#define PK(t)		((uint16_t)(1u << (t)))
#define CONNACK		PK(CODEC_CONNACK)
#define PUBACK		PK(CODEC_PUBACK)
#define PUBREC		PK(CODEC_PUBREC)
#define PUBREL		PK(CODEC_PUBREL)
#define PUBCOMP		PK(CODEC_PUBCOMP)
#define SUBACK		PK(CODEC_SUBACK)
#define UNSUBACK	PK(CODEC_UNSUBACK)
#define DISCONNECT	PK(CODEC_DISCONNECT)
#define AUTH		PK(CODEC_AUTH)

struct rdef {
	uint16_t	 packets;	/* PK() of the packets carrying it */
	const char	*name;
};

static const struct rdef rdefs[256] = {
	[0x00] = { CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | SUBACK |
	    UNSUBACK | DISCONNECT | AUTH, "Success" },
	[0x01] = { SUBACK, "Granted QoS 1" },
	[0x02] = { SUBACK, "Granted QoS 2" },
	[0x04] = { DISCONNECT, "Disconnect with Will Message" },
	[0x10] = { PUBACK | PUBREC, "No matching subscribers" },
	[0x11] = { UNSUBACK, "No subscription existed" },
	[0x18] = { AUTH, "Continue authentication" },
	[0x19] = { AUTH, "Re-authenticate" },
	[0x80] = { CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT,
	    "Unspecified error" },
	[0x81] = { CONNACK | DISCONNECT, "Malformed Packet" },
	[0x82] = { CONNACK | DISCONNECT, "Protocol Error" },
	[0x83] = { CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT,
	    "Implementation specific error" },
	[0x84] = { CONNACK, "Unsupported Protocol Version" },
	[0x85] = { CONNACK, "Client Identifier not valid" },
	[0x86] = { CONNACK, "Bad User Name or Password" },
	[0x87] = { CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT,
	    "Not authorized" },
	[0x88] = { CONNACK, "Server unavailable" },
	[0x89] = { CONNACK | DISCONNECT, "Server busy" },
	[0x8a] = { CONNACK, "Banned" },
	[0x8b] = { DISCONNECT, "Server shutting down" },
	[0x8c] = { CONNACK | DISCONNECT, "Bad authentication method" },
	[0x8d] = { DISCONNECT, "Keep Alive timeout" },
	[0x8e] = { DISCONNECT, "Session taken over" },
	[0x8f] = { SUBACK | UNSUBACK | DISCONNECT, "Topic Filter invalid" },
	[0x90] = { CONNACK | PUBACK | PUBREC | DISCONNECT,
	    "Topic Name invalid" },
	[0x91] = { PUBACK | PUBREC | SUBACK | UNSUBACK,
	    "Packet Identifier in use" },
	[0x92] = { PUBREL | PUBCOMP, "Packet Identifier not found" },
	[0x93] = { DISCONNECT, "Receive Maximum exceeded" },
	[0x94] = { DISCONNECT, "Topic Alias invalid" },
	[0x95] = { CONNACK | DISCONNECT, "Packet too large" },
	[0x96] = { DISCONNECT, "Message rate too high" },
	[0x97] = { CONNACK | PUBACK | PUBREC | SUBACK | DISCONNECT,
	    "Quota exceeded" },
	[0x98] = { DISCONNECT, "Administrative action" },
	[0x99] = { CONNACK | PUBACK | PUBREC | DISCONNECT,
	    "Payload format invalid" },
	[0x9a] = { CONNACK | DISCONNECT, "Retain not supported" },
	[0x9b] = { CONNACK | DISCONNECT, "QoS not supported" },
	[0x9c] = { CONNACK | DISCONNECT, "Use another server" },
	[0x9d] = { CONNACK | DISCONNECT, "Server moved" },
	[0x9e] = { SUBACK | DISCONNECT, "Shared Subscriptions not supported" },
	[0x9f] = { CONNACK | DISCONNECT, "Connection rate exceeded" },
	[0xa0] = { DISCONNECT, "Maximum connect time" },
	[0xa1] = { SUBACK | DISCONNECT,
	    "Subscription Identifiers not supported" },
	[0xa2] = { SUBACK | DISCONNECT,
	    "Wildcard Subscriptions not supported" },
};

/*
 * Whether reason code code may be carried by packet (an enum codec_type).
 * Packets without reason codes (CONNECT, PUBLISH, SUBSCRIBE, ...) allow
 * none.
 */
bool
reason_allowed(uint8_t code, int packet)
{
	if (packet < CODEC_CONNECT || packet > CODEC_AUTH)
		return false;
	return (rdefs[code].packets & PK(packet)) != 0;
}

/*
 * Static name of code as packet would mean it ("Normal disconnection" for
 * 0x00 on DISCONNECT, "Granted QoS 0" on SUBACK); packet 0 gives the
 * generic name. "Unknown reason code" for a code the standard lacks.
 */
const char *
reason_name(uint8_t code, int packet)
{
	if (code == 0x00 && packet == CODEC_DISCONNECT)
		return "Normal disconnection";
	if (code == 0x00 && packet == CODEC_SUBACK)
		return "Granted QoS 0";
	if (rdefs[code].name == NULL)
		return "Unknown reason code";
	return rdefs[code].name;
}

/*
 * The reason code for a codec error when the decoder gave none:
 * GW_EMALFORMED is 0x81, GW_EPROTO 0x82, GW_ETOOBIG 0x95,
 * GW_EUNSUPPORTED 0x84, anything else 0x80.
 */
uint8_t
reason_from_error(int err)
{
	switch (err) {
	case GW_EMALFORMED:
		return REASON_MALFORMED;
	case GW_EPROTO:
		return REASON_PROTOCOL_ERROR;
	case GW_ETOOBIG:
		return REASON_PACKET_TOO_LARGE;
	case GW_EUNSUPPORTED:
		return REASON_UNSUPPORTED_VERSION;
	default:
		return REASON_UNSPECIFIED;
	}
}
