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
 * connect again (backoff with jitter), with the same client object, so the
 * session (clean session false) keeps what was in flight.
 */
#include <stdio.h>
#include <string.h>

#include <MQTTAsync.h>

#include "deliver/bridge_int.h"
#include "log.h"
#include "mem.h"

#define BRIDGE_CONNECT_TIMEOUT	10	/* seconds */

static void	link_lost(void *, char *);
static int	link_arrived(void *, char *, int, MQTTAsync_message *);
static void	link_connected(void *, MQTTAsync_successData *);
static void	link_connect_failed(void *, MQTTAsync_failureData *);
static void	link_sent(void *, MQTTAsync_successData *);
static void	link_send_failed(void *, MQTTAsync_failureData *);

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
tag_done(struct bridge_tag *t, MQTTAsync_token token, bool ok)
{
	struct bridge *b = t->b;

	pthread_mutex_lock(&b->mu);
	if (t->ndone < t->capdone) {
		t->done[t->ndone].token = token;
		t->done[t->ndone].ok = ok;
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

static void
link_connect_failed(void *ctx, MQTTAsync_failureData *r)
{
	struct bridge_tag *t = ctx;
	char why[128];

	if (r != NULL && r->message != NULL)
		snprintf(why, sizeof why, "%s", r->message);
	else if (r != NULL)
		snprintf(why, sizeof why, "%s (%d)", r->code > 0 ?
		    "refused by the broker" : t->b->api->strerror(r->code),
		    r->code);
	else
		snprintf(why, sizeof why, "failed");
	tag_event(t, BRIDGE_EV_FAILED, r != NULL ? r->code : 0, why);
}

static void
link_sent(void *ctx, MQTTAsync_successData *r)
{
	tag_done(ctx, r != NULL ? r->token : 0, true);
}

static void
link_send_failed(void *ctx, MQTTAsync_failureData *r)
{
	tag_done(ctx, r != NULL ? r->token : 0, false);
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
	if ((rc = b->api->create(&rt->cli, rt->urls[0], id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL)) != MQTTASYNC_SUCCESS) {
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
	MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
	const struct bridge_route *c = &rt->conf;
	size_t i;
	bool tls = false;
	int rc;

	if ((rc = link_create(b, rt)) != 0)
		return rc;
	co.keepAliveInterval = (int)c->keepalive;
	/* A QoS 2 route starts clean once: see bridge.h. */
	co.cleansession = c->qos == 2 && !rt->connected_once ? 1 : 0;
	co.maxInflight = (int)c->max_in_flight;
	co.connectTimeout = BRIDGE_CONNECT_TIMEOUT;
	co.automaticReconnect = 0;
	co.MQTTVersion = MQTTVERSION_3_1_1;
	co.username = c->username;
	co.password = c->password;
	co.onSuccess = link_connected;
	co.onFailure = link_connect_failed;
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

/*
 * Hands one row to Paho. 0 (sent: f->token set), GW_ERETRY (not now: not
 * connected or the window is full; the row waits) or GW_EMALFORMED (the
 * row can never be sent).
 */
int
bridge_link_send(struct bridge *b, struct bridge_rt *rt, struct bridge_fl *f)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	int rc;

	if (f->row.url == NULL || f->row.body_len > 268435455)
		return GW_EMALFORMED;
	m.payload = f->row.body;
	m.payloadlen = (int)f->row.body_len;
	m.qos = rt->conf.qos;
	m.retained = rt->conf.retain;
	ro.onSuccess = link_sent;
	ro.onFailure = link_send_failed;
	ro.context = rt->tag;
	rc = b->api->send_message(rt->cli, f->row.url, &m, &ro);
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
