/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CONNECT: protocol checks and CONNACK return codes, client identifiers
 * (assigned when empty with clean session 1), takeover of a connected
 * client id, clean versus persistent sessions (session-present flag,
 * resending what was in flight), the will message and the keepalive timer.
 * Credentials are checked by access.c between decoding and accepting; a
 * login it parks comes back through handle_connect_resume().
 */
#include <sys/random.h>

#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/subs.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "mem.h"
#include "net/tls.h"

/* Answers CONNACK rc and closes the connection after writing it. */
static int
connack_refuse(struct client *c, uint8_t rc, const char *why)
{
	codec_encode_connack(&c->conn.out, false, rc);
	client_close_after_write(c, why);
	return 0;
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
	client_close_now(old, NULL);
}

static int	connect_accept(struct client *, const struct codec_connect *);

int
handle_connect(struct client *c, const uint8_t *body, size_t len)
{
	struct codec_connect cc;
	int rc;

	rc = codec_decode_connect(body, len, &cc);
	if (rc == GW_EUNSUPPORTED)
		return connack_refuse(c, CODEC_CONNACK_BAD_PROTOCOL,
		    "unsupported protocol level");
	if (rc != 0) {
		client_log(LOG_LVL_INFO, c, "malformed CONNECT from %s",
		    c->conn.peer);
		return rc;
	}
	if (cc.protocol_level == 3 && (cc.client_id.len == 0 ||
	    cc.client_id.len > 23))
		return connack_refuse(c, CODEC_CONNACK_ID_REJECTED,
		    "MQTT 3.1 client id must be 1 to 23 characters");
	if (cc.client_id.len == 0 && !cc.clean_session)
		return connack_refuse(c, CODEC_CONNACK_ID_REJECTED,
		    "empty client id with clean session 0");
	/* TLS use_identity_as_username: the certificate CN, nothing else. */
	if ((rc = client_cert_username(c, &c->cert_identity)) == GW_ENOMEM)
		return rc;
	if (rc != 0)
		return connack_refuse(c, CODEC_CONNACK_BAD_CREDENTIALS,
		    "client certificate without a common name");
	/* A certificate's identity (cert_identity) is kept. */
	if (cc.has_username && c->username == NULL &&
	    (c->username = gw_strndup(cc.username.ptr, cc.username.len)) ==
	    NULL)
		return GW_ENOMEM;
	if ((rc = access_login(c, &cc, body, len)) != ACCESS_GO)
		return rc == ACCESS_WAIT ? 0 : rc;
	return connect_accept(c, &cc);
}

int
handle_connect_resume(struct client *c, const uint8_t *body, size_t len)
{
	struct codec_connect cc;
	int rc;

	if ((rc = codec_decode_connect(body, len, &cc)) != 0)
		return rc;
	return connect_accept(c, &cc);
}

/* The credentials are good: take the session and answer CONNACK 0. */
static int
connect_accept(struct client *c, const struct codec_connect *cc)
{
	struct broker *b = c->b;
	struct session *s;
	char idbuf[32];
	const char *id = cc->client_id.ptr;
	size_t idlen = cc->client_id.len;
	bool present = false;
	int rc;

	if (idlen == 0) {
		assign_client_id(idbuf, sizeof idbuf);
		id = idbuf;
		idlen = strlen(idbuf);
	}
	s = session_find(b->sessions, id, idlen);
	if (s != NULL)
		takeover(c, s);
	if (s != NULL && (cc->clean_session || s->clean)) {
		outbound_drop_session(b, s);
		s = NULL;
	}
	if (s != NULL) {
		present = true;
		s->clean = false;
	} else {
		/* Persistent sessions outlive connections: bound them. */
		if (!cc->clean_session &&
		    session_count(b->sessions) >= b->cfg->max_sessions) {
			if (log_ratelimited(&b->err_log, 5, 10000))
				log_warn("refusing a new persistent session "
				    "from %s: max_sessions (%u) reached",
				    c->conn.peer, b->cfg->max_sessions);
			c->sess = NULL;
			return connack_refuse(c, CODEC_CONNACK_UNAVAILABLE,
			    NULL);
		}
		if ((s = session_create(b->sessions, id, idlen,
		    cc->clean_session)) == NULL)
			return GW_ENOMEM;
		persist_session_save(b, s);
	}
	if (access_session_ident(s, c->username) != 0)
		return GW_ENOMEM;
	s->client = c;
	c->sess = s;
	expire_session_online(b, s);

	if (cc->will_flag) {
		c->will = msg_new(cc->will_topic.ptr, cc->will_topic.len,
		    s->client_id, s->id_len, c->username,
		    c->username ? strlen(c->username) : 0,
		    cc->will_payload.ptr, cc->will_payload.len, cc->will_qos,
		    cc->will_retain, 0);
		if (c->will == NULL)
			return GW_ENOMEM;
	}
	c->keepalive = cc->keepalive;
	c->state = CLIENT_CONNECTED;
	c->last_rx_ms = ev_now(b->loop);
	client_arm_keepalive(c);
	if ((rc = codec_encode_connack(&c->conn.out, present,
	    CODEC_CONNACK_ACCEPTED)) != 0)
		return rc;
	client_want_flush(c);
	client_log(LOG_LVL_INFO, c, "connected from %s (%s session%s, "
	    "keepalive %us)", c->conn.peer,
	    cc->clean_session ? "clean" : "persistent",
	    present ? ", resumed" : "", c->keepalive);
	if (present)
		outbound_resume(b, s);
	return 0;
}
