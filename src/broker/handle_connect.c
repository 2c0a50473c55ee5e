/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CONNECT: protocol checks and CONNACK return codes, client identifiers
 * (assigned when empty with clean session 1), takeover of a connected
 * client id, clean versus persistent sessions (session-present flag,
 * resending what was in flight), the will message and the keepalive timer.
 * Credentials are checked by access.c between decoding and accepting; a
 * login it parks comes back through handle_connect_resume().
 *
 * The CONNECT fixes the connection's protocol level (c->version). A 5.0
 * CONNECT is decoded with its properties: the session lives as long as its
 * Session Expiry Interval says (0: ends with the connection; a 3.1.1
 * persistent session has only limits.session_expiry), Clean Start discards
 * an old one, an empty client id is assigned whatever Clean Start says and
 * returned as Assigned Client Identifier, and the CONNACK announces what
 * this server supports and limits (connack5()). Refusals carry 5.0 reason
 * codes (proto5.c); a CONNECT naming an Authentication Method is refused
 * with 0x8C, enhanced authentication not being offered.
 */
#include <sys/random.h>

#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/share.h"
#include "broker/subs.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "mem.h"
#include "mqtt/codec5.h"
#include "mqtt/reason.h"
#include "net/tls.h"

/* Answers CONNACK rc (3.1.1) or its 5.0 reason and closes after it. */
static int
connack_refuse(struct client *c, uint8_t rc, const char *why)
{
	return proto5_connack_refuse(c, rc, 0, why);
}

static void
assign_client_id(char *out, size_t outlen)
{
	uint8_t r[8];
	size_t i;

	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
		memset(r, 0, sizeof r);
	snprintf(out, outlen, "mqlite-");
	for (i = 0; i < sizeof r; i++)
		snprintf(out + 7 + 2 * i, outlen - 7 - 2 * i, "%02x", r[i]);
}

/*
 * use_identity_as_username: *used tells whether the listener makes the
 * client certificate's CN the username; if so the username is replaced
 * by it. Returns 0, GW_ENOTFOUND (no certificate CN) or GW_ENOMEM.
 */
static int
client_cert_username(struct client *c, bool *used)
{
	const char *cn;
	char *u;

	*used = tls_uses_identity(c->conn.tls);
	if (!*used)
		return 0;
	if ((cn = tls_identity(c->conn.tls)) == NULL)
		return GW_ENOTFOUND;
	if ((u = gw_strdup(cn)) == NULL)
		return GW_ENOMEM;
	gw_free(c->username);
	c->username = u;
	return 0;
}

/* Disconnects the client currently holding session s (takeover). */
static void
takeover(struct client *c, struct session *s)
{
	struct client *old = s->client;

	if (old == NULL || old == c)
		return;
	client_log(LOG_LVL_INFO, old, "taken over by a new connection from %s",
	    c->conn.peer);
	s->client = NULL;
	old->sess = NULL;
	/* A will waiting for its delay is cancelled by the new connection. */
	if (old->will_delay > 0)
		msg_unref(&old->will);
	proto5_disconnect(old, REASON_SESSION_TAKEN_OVER, NULL);
}

static int	connect_accept(struct client *,
		    const struct codec5_connect *);

/*
 * Decodes a CONNECT of any level into cc (3.1.1 ones into cc->c, without
 * properties) and sets c's version from it. Returns the codec's result;
 * *reason is the 5.0 reason code of a refusal.
 */
static int
connect_decode(struct client *c, const uint8_t *body, size_t len,
    struct codec5_connect *cc, uint8_t *reason)
{
	size_t n = len >= 2 ? (size_t)(body[0] << 8 | body[1]) : 0;
	int rc;

	*reason = 0;
	if (len > 2 + n && body[2 + n] == CODEC5_LEVEL) {
		c->version = CODEC5_LEVEL;
		return codec5_decode_connect(body, len, cc, reason);
	}
	memset(cc, 0, sizeof *cc);
	rc = codec_decode_connect(body, len, &cc->c);
	if (rc == 0)
		c->version = cc->c.protocol_level;
	/* A level newer than 5 reads the 5.0 CONNACK layout. */
	else if (rc == GW_EUNSUPPORTED && cc->c.protocol_level > CODEC5_LEVEL)
		c->version = CODEC5_LEVEL;
	return rc;
}

/* Takes what c must know of a 5.0 CONNECT's properties before CONNACK. */
static void
connect_props(struct client *c, const struct props *p)
{
	c->problem_info = !props_has(p, PROPS_REQUEST_PROBLEM_INFO) ||
	    p->request_problem_info != 0;
	c->recv_max = props_has(p, PROPS_RECEIVE_MAXIMUM) ?
	    p->receive_maximum : UINT16_MAX;
	c->max_packet = props_has(p, PROPS_MAXIMUM_PACKET_SIZE) ?
	    p->maximum_packet_size : 0;
	c->peer_alias_max = props_has(p, PROPS_TOPIC_ALIAS_MAXIMUM) ?
	    p->topic_alias_maximum : 0;
}

int
handle_connect(struct client *c, const uint8_t *body, size_t len)
{
	struct codec5_connect cc5;
	struct codec_connect *cc = &cc5.c;
	uint8_t reason;
	int rc;

	rc = connect_decode(c, body, len, &cc5, &reason);
	if (rc == GW_EUNSUPPORTED)
		return connack_refuse(c, CODEC_CONNACK_BAD_PROTOCOL,
		    "unsupported protocol level");
	if (rc != 0) {
		client_log(LOG_LVL_INFO, c, "malformed CONNECT from %s",
		    c->conn.peer);
		if (!CLIENT_V5(c))
			return rc;
		/* 5.0: CONNACK names the reason, then the close. */
		return proto5_connack_refuse(c, 0, reason != 0 ? reason :
		    reason_from_error(rc), "malformed CONNECT");
	}
	if (CLIENT_V5(c)) {
		connect_props(c, &cc5.props);
		/* Enhanced authentication (AUTH exchanges) is not offered. */
		if (props_has(&cc5.props, PROPS_AUTH_METHOD))
			return proto5_connack_refuse(c, 0,
			    REASON_BAD_AUTH_METHOD,
			    "enhanced authentication is not supported");
	}
	if (cc->protocol_level == 3 && (cc->client_id.len == 0 ||
	    cc->client_id.len > 23))
		return connack_refuse(c, CODEC_CONNACK_ID_REJECTED,
		    "MQTT 3.1 client id must be 1 to 23 characters");
	/* 5.0 assigns an id whatever Clean Start says (3.1.3.1). */
	if (cc->client_id.len == 0 && !cc->clean_session && !CLIENT_V5(c))
		return connack_refuse(c, CODEC_CONNACK_ID_REJECTED,
		    "empty client id with clean session 0");
	/* TLS use_identity_as_username: the certificate CN, nothing else. */
	if ((rc = client_cert_username(c, &c->cert_identity)) == GW_ENOMEM)
		return rc;
	if (rc != 0)
		return connack_refuse(c, CODEC_CONNACK_BAD_CREDENTIALS,
		    "client certificate without a common name");
	/* A certificate's identity (cert_identity) is kept. */
	if (cc->has_username && c->username == NULL &&
	    (c->username = gw_strndup(cc->username.ptr, cc->username.len)) ==
	    NULL)
		return GW_ENOMEM;
	if ((rc = access_login(c, cc, body, len)) != ACCESS_GO)
		return rc == ACCESS_WAIT ? 0 : rc;
	return connect_accept(c, &cc5);
}

int
handle_connect_resume(struct client *c, const uint8_t *body, size_t len)
{
	struct codec5_connect cc5;
	uint8_t reason;
	int rc;

	if ((rc = connect_decode(c, body, len, &cc5, &reason)) != 0)
		return rc;
	return connect_accept(c, &cc5);
}

/*
 * The Session Expiry Interval c asks for: a 3.1.1 persistent session
 * keeps limits.session_expiry (SESSION_EXPIRY_LIMIT), a clean one ends
 * with the connection (0); 5.0 says it in a property, 0 when absent.
 */
static uint32_t
connect_expiry(const struct client *c, const struct codec5_connect *cc)
{
	if (!CLIENT_V5(c))
		return cc->c.clean_session ? 0 : SESSION_EXPIRY_LIMIT;
	if (!props_has(&cc->props, PROPS_SESSION_EXPIRY))
		return 0;
	return cc->props.session_expiry;
}

/*
 * The keepalive c gets: the one it asked for, but with limits.max_keepalive
 * set a 5.0 client asking for more (or for none) gets the cap, announced
 * as Server Keep Alive in *announce.
 */
static uint16_t
connect_keepalive(const struct client *c, uint16_t asked, bool *announce)
{
	unsigned cap = c->b->cfg->max_keepalive_ms / 1000;

	*announce = false;
	if (!CLIENT_V5(c) || cap == 0 || (asked != 0 && asked <= cap))
		return asked;
	*announce = true;
	return (uint16_t)(cap > UINT16_MAX ? UINT16_MAX : cap);
}

/*
 * Appends the 5.0 CONNACK accepting c: what this server supports and
 * limits, the identifier it assigned (assigned, or NULL) and the keepalive
 * it imposes (when announce).
 */
static int
connack5(struct client *c, bool present, const char *assigned,
    bool announce)
{
	const struct gw_config *cfg = c->b->cfg;
	struct props p;

	memset(&p, 0, sizeof p);
	p.receive_maximum = (uint16_t)cfg->receive_maximum;
	props_set(&p, PROPS_RECEIVE_MAXIMUM);
	p.maximum_packet_size = cfg->max_packet_bytes > PROPS_VARINT_MAX ?
	    PROPS_VARINT_MAX : (uint32_t)cfg->max_packet_bytes;
	props_set(&p, PROPS_MAXIMUM_PACKET_SIZE);
	if (c->alias_max > 0) {
		p.topic_alias_maximum = c->alias_max;
		props_set(&p, PROPS_TOPIC_ALIAS_MAXIMUM);
	}
	if (assigned != NULL) {
		p.assigned_client_id.ptr = assigned;
		p.assigned_client_id.len = (uint16_t)strlen(assigned);
		props_set(&p, PROPS_ASSIGNED_CLIENT_ID);
	}
	if (announce) {
		p.server_keepalive = c->keepalive;
		props_set(&p, PROPS_SERVER_KEEPALIVE);
	}
	p.retain_available = 1;
	props_set(&p, PROPS_RETAIN_AVAILABLE);
	p.wildcard_sub_available = 1;
	props_set(&p, PROPS_WILDCARD_SUB_AVAILABLE);
	p.sub_id_available = 1;
	props_set(&p, PROPS_SUB_ID_AVAILABLE);
	p.shared_sub_available = SHARE_AVAILABLE;
	props_set(&p, PROPS_SHARED_SUB_AVAILABLE);
	return codec5_encode_connack(&c->conn.out, present, REASON_SUCCESS,
	    &p);
}

/* The credentials are good: take the session and answer CONNACK 0. */
static int
connect_accept(struct client *c, const struct codec5_connect *cc5)
{
	const struct codec_connect *cc = &cc5->c;
	struct broker *b = c->b;
	struct session *s;
	char idbuf[32];
	const char *id = cc->client_id.ptr;
	size_t idlen = cc->client_id.len;
	uint32_t expiry = connect_expiry(c, cc5);
	bool present = false, announce;
	int rc;

	if (idlen == 0) {
		assign_client_id(idbuf, sizeof idbuf);
		id = idbuf;
		idlen = strlen(idbuf);
	}
	s = session_find(b->sessions, id, idlen);
	if (s != NULL)
		takeover(c, s);
	if (s != NULL)
		will_cancel(s);
	if (s != NULL && (cc->clean_session || s->clean)) {
		outbound_drop_session(b, s);
		s = NULL;
	}
	if (s != NULL) {
		present = true;
		s->clean = false;
	} else {
		/* Persistent sessions outlive connections: bound them. */
		if (expiry != 0 &&
		    session_count(b->sessions) >= b->cfg->max_sessions) {
			if (log_ratelimited(&b->err_log, 5, 10000))
				log_warn("refusing a new persistent session "
				    "from %s: max_sessions (%u) reached",
				    c->conn.peer, b->cfg->max_sessions);
			c->sess = NULL;
			return proto5_connack_refuse(c,
			    CODEC_CONNACK_UNAVAILABLE, REASON_QUOTA_EXCEEDED,
			    NULL);
		}
		if ((s = session_create(b->sessions, id, idlen,
		    expiry == 0)) == NULL)
			return GW_ENOMEM;
		s->expiry_s = expiry;
		s->version = c->version;
		persist_session_save(b, s);
	}
	s->version = c->version;
	s->expiry_s = expiry;
	if (access_session_ident(s, c->username) != 0)
		return GW_ENOMEM;
	s->client = c;
	c->sess = s;
	expire_session_online(b, s);

	if (cc->will_flag) {
		c->will = msg_new5(cc->will_topic.ptr, cc->will_topic.len,
		    s->client_id, s->id_len, c->username,
		    c->username ? strlen(c->username) : 0,
		    cc->will_payload.ptr, cc->will_payload.len, cc->will_qos,
		    cc->will_retain, 0, CLIENT_V5(c) ? &cc5->will_props :
		    NULL);
		if (c->will == NULL)
			return GW_ENOMEM;
		if (props_has(&cc5->will_props, PROPS_WILL_DELAY))
			c->will_delay = cc5->will_props.will_delay;
	}
	c->keepalive = connect_keepalive(c, cc->keepalive, &announce);
	c->state = CLIENT_CONNECTED;
	c->last_rx_ms = ev_now(b->loop);
	client_arm_keepalive(c);
	if (CLIENT_V5(c)) {
		c->alias_max = (uint16_t)b->cfg->topic_alias_maximum;
		rc = connack5(c, present, cc->client_id.len == 0 ? idbuf :
		    NULL, announce);
	} else
		rc = codec_encode_connack(&c->conn.out, present,
		    CODEC_CONNACK_ACCEPTED);
	if (rc != 0)
		return rc;
	client_want_flush(c);
	client_log(LOG_LVL_INFO, c, "connected from %s (MQTT %s, %s session%s, "
	    "keepalive %us)", c->conn.peer, CLIENT_V5(c) ? "5.0" : "3.1.1",
	    expiry == 0 ? "clean" : "persistent",
	    present ? ", resumed" : "", c->keepalive);
	if (present)
		outbound_resume(b, s);
	return 0;
}
