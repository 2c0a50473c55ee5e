/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * One bridge route's Paho MQTTAsync client: creating it, connecting,
 * sending a row, closing; and the callbacks Paho runs on its own threads.
 *
 * DESIGN
 *
 * The callbacks never touch route state: they record what happened in the
 * route's tag (struct bridge_tag, alive as long as the bridge) under the
 * bridge's mutex and signal its condition; the bridge thread reads the
 * tags each time it wakes. A connection event overwrites the previous one
 * (the latest says where the connection stands); finished sends go to an
 * array sized for the route's window, so a callback never allocates.
 * Paho's automatic reconnection is off: the bridge thread decides when to
 * connect again (backoff with jitter). A client whose connection was lost
 * is destroyed and a new one connects; the bridge resends the rows that
 * were not acknowledged.
 *
 * A route with mqtt_version 5 creates its client for MQTT 5.0 and uses
 * Paho's 5.0 callbacks (Paho refuses the 3.1.1 ones on such a client).
 * Each row's stored property block is decoded and handed to Paho as
 * MQTTProperties (Paho copies them into its own command), with the Message
 * Expiry Interval rewritten to what is left of it at send time. A PUBACK
 * or PUBREC with a reason code >= 0x80 is a failed send carrying that
 * code; the bridge thread decides what becomes of the row. Its session
 * ends with its connection (Session Expiry Interval 0): the bridge sends
 * every unacknowledged row again after a reconnection anyway.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <MQTTAsync.h>

#include "deliver/bridge_int.h"
#include "log.h"
#include "mem.h"
#include "mqtt/props.h"
#include "mqtt/reason.h"

#define BRIDGE_CONNECT_TIMEOUT	10	/* seconds */

static void	link_lost(void *, char *);
static int	link_arrived(void *, char *, int, MQTTAsync_message *);
static void	link_connected(void *, MQTTAsync_successData *);
static void	link_connect_failed(void *, MQTTAsync_failureData *);
static void	link_sent(void *, MQTTAsync_successData *);
static void	link_send_failed(void *, MQTTAsync_failureData *);
static void	link_connected5(void *, MQTTAsync_successData5 *);
static void	link_connect_failed5(void *, MQTTAsync_failureData5 *);
static void	link_sent5(void *, MQTTAsync_successData5 *);
static void	link_send_failed5(void *, MQTTAsync_failureData5 *);

/* Paho's spelling of url (mqtt:// is tcp://, mqtts:// is ssl://): new. */
char *
bridge_link_url(const char *url)
{
	char	*s;
	size_t	 n;

	if (strncmp(url, "mqtt://", 7) == 0 || strncmp(url, "mqtts://", 8) ==
	    0) {
		n = strlen(url) + 2;
		if ((s = gw_malloc(n)) == NULL)
			return NULL;
		snprintf(s, n, "%s://%s", url[4] == 's' ? "ssl" : "tcp",
		    url + (url[4] == 's' ? 8 : 7));
		return s;
	}
	return gw_strdup(url);
}

static void
tag_event(struct bridge_tag *t, enum bridge_conn_ev ev, int code,
    const char *text)
{
	struct bridge *b = t->b;

	pthread_mutex_lock(&b->mu);
	t->ev = ev;
	t->ev_code = code;
	snprintf(t->ev_text, sizeof t->ev_text, "%s", text != NULL ? text :
	    "");
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->mu);
}

static void
tag_done(struct bridge_tag *t, MQTTAsync_token token, bool ok, int reason)
{
	struct bridge *b = t->b;

	pthread_mutex_lock(&b->mu);
	if (t->ndone < t->capdone) {
		t->done[t->ndone].token = token;
		t->done[t->ndone].ok = ok;
		t->done[t->ndone].reason = reason >= 0x80 && reason <= 0xff ?
		    (uint8_t)reason : 0;
		t->ndone++;
	} else
		t->lostdone++;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->mu);
}

static void
link_lost(void *ctx, char *cause)
{
	tag_event(ctx, BRIDGE_EV_LOST, 0, cause != NULL ? cause :
	    "connection lost");
}

/* Nothing is subscribed; a stray message is dropped. */
static int
link_arrived(void *ctx, char *topic, int len, MQTTAsync_message *m)
{
	struct bridge_tag *t = ctx;

	(void)len;
	t->b->api->free_message(&m);
	t->b->api->free(topic);
	return 1;
}

static void
link_connected(void *ctx, MQTTAsync_successData *r)
{
	tag_event(ctx, BRIDGE_EV_CONNECTED, 0, r != NULL &&
	    r->alt.connect.serverURI != NULL ? r->alt.connect.serverURI : "");
}

/* Why a connection attempt failed, from Paho's message or code. */
static void
failure_text(const struct bridge_tag *t, char *why, size_t len, bool known,
    int code, const char *message)
{
	if (known && message != NULL)
		snprintf(why, len, "%s", message);
	else if (known)
		snprintf(why, len, "%s (%d)", code > 0 ?
		    "refused by the broker" : t->b->api->strerror(code), code);
	else
		snprintf(why, len, "failed");
}

static void
link_connect_failed(void *ctx, MQTTAsync_failureData *r)
{
	struct bridge_tag *t = ctx;
	char why[128];

	failure_text(t, why, sizeof why, r != NULL, r != NULL ? r->code : 0,
	    r != NULL ? r->message : NULL);
	tag_event(t, BRIDGE_EV_FAILED, r != NULL ? r->code : 0, why);
}

static void
link_sent(void *ctx, MQTTAsync_successData *r)
{
	tag_done(ctx, r != NULL ? r->token : 0, true, 0);
}

static void
link_send_failed(void *ctx, MQTTAsync_failureData *r)
{
	tag_done(ctx, r != NULL ? r->token : 0, false, 0);
}

static void
link_connected5(void *ctx, MQTTAsync_successData5 *r)
{
	tag_event(ctx, BRIDGE_EV_CONNECTED, 0, r != NULL &&
	    r->alt.connect.serverURI != NULL ? r->alt.connect.serverURI : "");
}

static void
link_connect_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
	struct bridge_tag *t = ctx;
	char why[128];

	if (r != NULL && r->reasonCode >= 0x80)
		snprintf(why, sizeof why, "refused by the broker: %s (0x%02x)",
		    reason_name((uint8_t)r->reasonCode, CODEC_CONNACK),
		    (unsigned)r->reasonCode);
	else
		failure_text(t, why, sizeof why, r != NULL,
		    r != NULL ? r->code : 0, r != NULL ? r->message : NULL);
	tag_event(t, BRIDGE_EV_FAILED, r != NULL ? r->code : 0, why);
}

/* A 5.0 acknowledgement may still carry a failure reason code. */
static void
link_sent5(void *ctx, MQTTAsync_successData5 *r)
{
	int reason = r != NULL ? (int)r->reasonCode : 0;

	tag_done(ctx, r != NULL ? r->token : 0, reason < 0x80, reason);
}

static void
link_send_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
	tag_done(ctx, r != NULL ? r->token : 0, false, r != NULL ?
	    (int)r->reasonCode : 0);
}

/* The client id: configured, else mqlite-<instance prefix>-<route>. */
static int
link_client_id(struct bridge *b, struct bridge_rt *rt, char *buf,
    size_t len)
{
	const char *id = rt->conf.client_id, *inst = b->instance_id;
	char name[64];
	size_t i;

	if (id != NULL)
		return snprintf(buf, len, "%s", id) >= (int)len ? GW_ETOOBIG :
		    0;
	/* Route "<rule>/mqtt": the rule's name, safe characters only. */
	for (i = 0; i + 1 < sizeof name && rt->conf.name[i] != '\0' &&
	    rt->conf.name[i] != '/'; i++)
		name[i] = (char)(((unsigned char)rt->conf.name[i] < 0x80 &&
		    rt->conf.name[i] > ' ') ? rt->conf.name[i] : '_');
	name[i] = '\0';
	snprintf(buf, len, "mqlite-%.8s-%s", inst != NULL ? inst : "", name);
	return 0;
}

/* Creates the client on first use. 0 or an error (logged by caller). */
static int
link_create(struct bridge *b, struct bridge_rt *rt)
{
	char id[512];
	int rc;

	if (rt->cli != NULL)
		return 0;
	if (link_client_id(b, rt, id, sizeof id) != 0)
		return GW_ECONFIG;
	if (rt->conf.mqtt_version == 5) {
		MQTTAsync_createOptions o =
		    MQTTAsync_createOptions_initializer5;

		rc = b->api->create_opts(&rt->cli, rt->urls[0], id,
		    MQTTCLIENT_PERSISTENCE_NONE, NULL, &o);
	} else
		rc = b->api->create(&rt->cli, rt->urls[0], id,
		    MQTTCLIENT_PERSISTENCE_NONE, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		rt->cli = NULL;
		if (log_ratelimited(&rt->loglim, 5, 60000))
			log_error("bridge: route %s: cannot create the "
			    "client: %s", rt->conf.name, b->api->strerror(rc));
		return GW_EIO;
	}
	if (b->api->set_callbacks(rt->cli, rt->tag, link_lost, link_arrived,
	    NULL) != MQTTASYNC_SUCCESS) {
		b->api->destroy(&rt->cli);
		rt->cli = NULL;
		return GW_EIO;
	}
	return 0;
}

/*
 * Starts a connection attempt; the outcome arrives through the tag.
 * 0 or an error (the caller waits a backoff and tries again).
 */
int
bridge_link_connect(struct bridge *b, struct bridge_rt *rt)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
	const struct bridge_route *c = &rt->conf;
	size_t i;
	bool tls = false;
	int rc;

	if ((rc = link_create(b, rt)) != 0)
		return rc;
	if (c->mqtt_version == 5)
		co = co5;
	co.keepAliveInterval = (int)c->keepalive;
	/* A new client of a QoS 2 route starts clean: see bridge.h. */
	if (c->mqtt_version == 5)
		co.cleanstart = 1;	/* and its session ends with it */
	else
		co.cleansession = c->qos == 2 && !rt->connected_once ? 1 : 0;
	co.maxInflight = (int)c->max_in_flight;
	co.connectTimeout = BRIDGE_CONNECT_TIMEOUT;
	co.automaticReconnect = 0;
	co.MQTTVersion = c->mqtt_version == 5 ? MQTTVERSION_5 :
	    MQTTVERSION_3_1_1;
	co.username = c->username;
	co.password = c->password;
	if (c->mqtt_version == 5) {
		co.onSuccess5 = link_connected5;
		co.onFailure5 = link_connect_failed5;
	} else {
		co.onSuccess = link_connected;
		co.onFailure = link_connect_failed;
	}
	co.context = rt->tag;
	if (c->nurls > 1) {
		co.serverURIs = rt->urls;
		co.serverURIcount = (int)c->nurls;
	}
	for (i = 0; i < c->nurls; i++)
		tls = tls || strncmp(rt->urls[i], "ssl://", 6) == 0 ||
		    strncmp(rt->urls[i], "wss://", 6) == 0;
	if (tls) {
		so.trustStore = c->ca_file;
		so.keyStore = c->cert;
		so.privateKey = c->key;
		so.enableServerCertAuth = !c->insecure;
		so.verify = !c->insecure;
		so.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
		co.ssl = &so;
	}
	if ((rc = b->api->connect(rt->cli, &co)) != MQTTASYNC_SUCCESS) {
		if (log_ratelimited(&rt->loglim, 5, 60000))
			log_warn("bridge: route %s: cannot start a connection: "
			    "%s", rt->conf.name, b->api->strerror(rc));
		return GW_EIO;
	}
	return 0;
}

/* Paho's view of a borrowed string or binary value. */
static MQTTLenString
link_str(struct codec_str s)
{
	MQTTLenString l;

	l.len = s.len;
	l.data = (char *)(uintptr_t)s.ptr;	/* Paho copies it */
	return l;
}

/* Adds one property to out; false when Paho cannot take it. */
static bool
link_prop_add(struct bridge *b, MQTTProperties *out, MQTTProperty *p)
{
	return b->api->props_add(out, p) == 0;
}

/*
 * Fills out (empty) with the forwardable properties of row: those of its
 * stored block, the Message Expiry Interval as what is left of it at
 * now_wall (rounded up). 0, GW_EMALFORMED (the block cannot be read) or
 * GW_ENOMEM; out is to be freed with props_free in every case.
 */
static int
link_props(struct bridge *b, const struct outbox_row *row, int64_t now_wall,
    MQTTProperties *out)
{
	struct props pp;
	struct codec_iter it;
	struct codec_str name, value;
	MQTTProperty p;
	size_t used;
	int64_t left;
	bool ok = true;

	if (row->props == NULL)
		return 0;
	if (props_decode(row->props, row->props_len, CODEC_PUBLISH, &pp,
	    &used, NULL) != 0)
		return GW_EMALFORMED;
	memset(&p, 0, sizeof p);
	if (props_has(&pp, PROPS_PAYLOAD_FORMAT)) {
		p.identifier = MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR;
		p.value.byte = (unsigned char)pp.payload_format;
		ok = ok && link_prop_add(b, out, &p);
	}
	if (row->expire_ms != 0) {
		left = (row->expire_ms - now_wall + 999) / 1000;
		p.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL;
		p.value.integer4 = left < 1 ? 1 : left > UINT32_MAX ?
		    UINT32_MAX : (unsigned)left;
		ok = ok && link_prop_add(b, out, &p);
	}
	if (props_has(&pp, PROPS_CONTENT_TYPE)) {
		p.identifier = MQTTPROPERTY_CODE_CONTENT_TYPE;
		p.value.data = link_str(pp.content_type);
		ok = ok && link_prop_add(b, out, &p);
	}
	if (props_has(&pp, PROPS_RESPONSE_TOPIC)) {
		p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
		p.value.data = link_str(pp.response_topic);
		ok = ok && link_prop_add(b, out, &p);
	}
	if (props_has(&pp, PROPS_CORRELATION_DATA)) {
		p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
		p.value.data = link_str(pp.correlation_data);
		ok = ok && link_prop_add(b, out, &p);
	}
	it = pp.block;
	while (ok && props_next_user(&it, &name, &value) == 1) {
		p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
		p.value.data = link_str(name);
		p.value.value = link_str(value);
		ok = link_prop_add(b, out, &p);
	}
	return ok ? 0 : GW_ENOMEM;
}

/*
 * Hands one row to Paho. 0 (sent: f->token set), GW_ERETRY (not now: not
 * connected or the window is full; the row waits) or GW_EMALFORMED (the
 * row can never be sent). now_wall: wall ms, for the expiry left.
 */
int
bridge_link_send(struct bridge *b, struct bridge_rt *rt, struct bridge_fl *f,
    int64_t now_wall)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTProperties pr = MQTTProperties_initializer;
	int rc;

	if (f->row.url == NULL || f->row.body_len > 268435455)
		return GW_EMALFORMED;
	m.payload = f->row.body;
	m.payloadlen = (int)f->row.body_len;
	m.qos = rt->conf.qos;
	m.retained = rt->conf.retain;
	ro.context = rt->tag;
	if (rt->conf.mqtt_version == 5) {
		ro.onSuccess5 = link_sent5;
		ro.onFailure5 = link_send_failed5;
		if ((rc = link_props(b, &f->row, now_wall, &pr)) != 0) {
			b->api->props_free(&pr);
			return rc == GW_EMALFORMED ? rc : GW_ERETRY;
		}
		m.properties = pr;
	} else {
		ro.onSuccess = link_sent;
		ro.onFailure = link_send_failed;
	}
	rc = b->api->send_message(rt->cli, f->row.url, &m, &ro);
	if (rt->conf.mqtt_version == 5)
		b->api->props_free(&pr);
	if (rc == MQTTASYNC_SUCCESS) {
		f->token = ro.token;
		return 0;
	}
	if (rc == MQTTASYNC_BAD_UTF8_STRING || rc == MQTTASYNC_BAD_QOS ||
	    rc == MQTTASYNC_NULL_PARAMETER)
		return GW_EMALFORMED;
	return GW_ERETRY;
}

/* Disconnects (briefly) and destroys the client. Bridge thread. */
void
bridge_link_close(struct bridge *b, struct bridge_rt *rt)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;

	if (rt->cli == NULL)
		return;
	d.timeout = 100;
	if (rt->state == BRIDGE_UP)
		b->api->disconnect(rt->cli, &d);
	b->api->destroy(&rt->cli);
	rt->cli = NULL;
}
