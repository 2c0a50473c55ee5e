/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * The mqtt (upstream bridge) action: loading and checking its settings,
 * which the bridge (src/deliver/bridge.c) reads from struct rule_mqtt, and
 * rendering the upstream topic and payload of one matched publish on the
 * store thread.
 *
 * DESIGN
 *
 * Only the topic and the payload travel through the outbox; the broker
 * addresses, the client identity, the credentials and the TLS files are
 * route settings kept in memory, so a ${NAME} password is never written to
 * the database. "url" is the first broker, "urls" more brokers tried in
 * turn after it (failover). A payload template renders like a webhook
 * body template (sealed when it holds a secret); without one the payload
 * is forwarded byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/topic.h"
#include "mqtt/utf8.h"
#include "rules/rules_int.h"

#define MQTT_DEF_KEEPALIVE	60
#define MQTT_DEF_MAX_IN_FLIGHT	32
#define MQTT_MAX_URLS		16

static void	mqtt_url_check(struct loader *, const struct rule_str *,
		    const char *);
static void	mqtt_load_tls(struct loader *, struct rule_mqtt *,
		    const cJSON *, const char *);

static const char *const mqtt_schemes[] = { "tcp://", "ssl://", "mqtt://",
    "mqtts://", "ws://", "wss://", NULL };

/* Whether url names a TLS scheme (ssl://, mqtts://, wss://). */
static bool
mqtt_url_tls(const char *url)
{
	return strncmp(url, "ssl://", 6) == 0 ||
	    strncmp(url, "mqtts://", 8) == 0 || strncmp(url, "wss://", 6) == 0;
}

/* Reports a url that is not scheme://host. */
static void
mqtt_url_check(struct loader *ld, const struct rule_str *u, const char *p)
{
	size_t	i, n;

	if (u->s == NULL)
		return;
	for (i = 0; mqtt_schemes[i] != NULL; i++) {
		n = strlen(mqtt_schemes[i]);
		if (strncmp(u->s, mqtt_schemes[i], n) == 0 && u->s[n] != '\0' &&
		    u->s[n] != ':' && u->s[n] != '/')
			return;
	}
	load_err(ld, p, "expected tcp://, ssl://, mqtt://, mqtts://, ws:// "
	    "or wss:// and a host");
}

/* The "tls" object: files resolved against the rules file's folder. */
static void
mqtt_load_tls(struct loader *ld, struct rule_mqtt *mq, const cJSON *sub,
    const char *p)
{
	static const char *const tkeys[] = { "ca_file", "cert", "key",
	    "insecure", NULL };
	size_t	i;
	bool	tls = false;

	if (!load_keys(ld, sub, p, tkeys))
		return;
	load_str(ld, sub, "ca_file", p, false, &mq->tls_ca_file);
	load_str(ld, sub, "cert", p, false, &mq->tls_cert);
	load_str(ld, sub, "key", p, false, &mq->tls_key);
	load_bool(ld, sub, "insecure", p, &mq->tls_insecure);
	if ((mq->tls_cert.s == NULL) != (mq->tls_key.s == NULL))
		load_err(ld, p, "\"cert\" and \"key\" go together");
	load_resolve(ld, &mq->tls_ca_file, p);
	load_resolve(ld, &mq->tls_cert, p);
	load_resolve(ld, &mq->tls_key, p);
	for (i = 0; i < mq->nurls; i++)
		tls = tls || (mq->urls[i].s != NULL &&
		    mqtt_url_tls(mq->urls[i].s));
	if (!tls)
		load_err(ld, p, "TLS settings need an ssl://, mqtts:// or "
		    "wss:// url");
}

/*
 * The host and port url names ("scheme://host[:port][/...]", "[v6]"),
 * into h (a new host string, NULL when there is none); a url without a
 * port means 1883, or 8883 for ssl:// and mqtts://. GW_ENOMEM or 0.
 */
static int
mqtt_url_host(const char *url, struct rule_mqtt_host *h)
{
	const char	*a, *end, *colon;
	size_t		 n;

	h->host = NULL;
	h->port = strncmp(url, "ssl:", 4) == 0 ||
	    strncmp(url, "mqtts:", 6) == 0 ? 8883 : 1883;
	if ((a = strstr(url, "://")) == NULL)
		return 0;
	a += 3;
	end = a + strcspn(a, "/");
	if (*a == '[') {
		a++;
		if ((colon = memchr(a, ']', (size_t)(end - a))) == NULL)
			return 0;
		n = (size_t)(colon - a);
		if (colon + 1 < end && colon[1] == ':')
			h->port = atoi(colon + 2);
	} else {
		colon = memchr(a, ':', (size_t)(end - a));
		n = (size_t)((colon != NULL ? colon : end) - a);
		if (colon != NULL)
			h->port = atoi(colon + 1);
	}
	if (n == 0 || n > 255)
		return 0;
	if ((h->host = gw_malloc(n + 1)) == NULL)
		return GW_ENOMEM;
	memcpy(h->host, a, n);
	h->host[n] = '\0';
	return 0;
}

/* Loads "url" and "urls" into mq->urls. */
static void
mqtt_load_urls(struct loader *ld, struct rule_mqtt *mq, const cJSON *j,
    const char *path)
{
	struct gw_error	 e;
	const cJSON	*list, *it;
	char		 p[PATH_LEN], q[PATH_LEN];
	int		 n = 0, i = 0, rc;

	list = load_item(j, "urls");
	if (list != NULL && (!cJSON_IsArray(list) ||
	    (n = cJSON_GetArraySize(list)) < 1 || n > MQTT_MAX_URLS)) {
		load_path(p, path, "urls");
		load_err(ld, p, "expected an array of 1 to %d urls",
		    MQTT_MAX_URLS);
		n = 0;
	}
	if ((mq->urls = gw_calloc((size_t)n + 1, sizeof *mq->urls)) == NULL) {
		load_oom(ld, path);
		return;
	}
	mq->nurls = 1;
	load_path(p, path, "url");
	if (load_str(ld, j, "url", path, true, &mq->urls[0]))
		mqtt_url_check(ld, &mq->urls[0], p);
	if (n == 0)
		return;
	load_path(p, path, "urls");
	cJSON_ArrayForEach(it, list) {
		load_pathf(q, "%s[%d]", p, i++);
		if (!cJSON_IsString(it)) {
			load_err(ld, q, "expected a string, got %s",
			    jsonfile_type_name(it));
			continue;
		}
		rc = tmpl_expand_env(it->valuestring, &mq->urls[mq->nurls].s,
		    &mq->urls[mq->nurls].secret, &e);
		if (rc == GW_ENOMEM)
			load_oom(ld, q);
		else if (rc != 0)
			load_err(ld, q, "%s", e.msg);
		else {
			mqtt_url_check(ld, &mq->urls[mq->nurls], q);
			mq->nurls++;
		}
	}
}

/* Loads and checks mqtt object j at path into a new r->mqtt. */
void
action_mqtt_load(struct loader *ld, struct rule *r, const cJSON *j,
    const char *path)
{
	static const char *const keys[] = { "url", "urls", "topic",
	    "payload", "qos", "retain", "client_id", "username", "password",
	    "tls", "keepalive", "max_in_flight", "foreach", "max_items",
	    "mqtt_version", NULL };
	struct rule_mqtt	*mq;
	const cJSON		*it;
	char			 p[PATH_LEN];
	unsigned		 qos = 0;
	size_t			 i;

	if (!load_keys(ld, j, path, keys))
		return;
	if ((mq = r->mqtt = gw_calloc(1, sizeof *mq)) == NULL) {
		load_oom(ld, path);
		return;
	}
	mq->keepalive = MQTT_DEF_KEEPALIVE;
	mq->max_in_flight = MQTT_DEF_MAX_IN_FLIGHT;
	mq->mqtt_version = 4;
	mqtt_load_urls(ld, mq, j, path);
	if (mq->urls == NULL)
		return;
	/* Parsed once here: the store compares them with every message. */
	if ((mq->hosts = gw_calloc(mq->nurls, sizeof *mq->hosts)) == NULL) {
		load_oom(ld, path);
		return;
	}
	for (i = 0; i < mq->nurls; i++) {
		if (mq->urls[i].s != NULL &&
		    mqtt_url_host(mq->urls[i].s, &mq->hosts[i]) != 0) {
			load_oom(ld, path);
			return;
		}
	}
	load_path(p, path, "topic");
	if ((it = load_item(j, "topic")) == NULL) {
		if (tmpl_compile("{topic}", NULL, false, &mq->topic, NULL) != 0)
			load_oom(ld, p);
	} else if ((mq->topic = load_tmpl(ld, it, p, &r->caps)) != NULL) {
		for (i = 0; i < mq->topic->nsegs; i++) {
			if (mq->topic->segs[i].kind != SEG_PH &&
			    strpbrk(mq->topic->segs[i].text, "+#") != NULL)
				load_err(ld, p, "a topic to publish to cannot "
				    "hold '+' or '#'");
		}
		if (mq->topic->nsegs == 0)
			load_err(ld, p, "must not be empty");
	}
	if ((it = load_item(j, "payload")) != NULL) {
		load_path(p, path, "payload");
		mq->payload = load_tmpl(ld, it, p, &r->caps);
	}
	load_uint(ld, j, "qos", path, 0, 2, &qos);
	mq->qos = (uint8_t)qos;
	load_bool(ld, j, "retain", path, &mq->retain);
	if (load_str(ld, j, "client_id", path, false, &mq->client_id) &&
	    (mq->client_id.s[0] == '\0' ||
	    !utf8_valid(mq->client_id.s, strlen(mq->client_id.s), false) ||
	    strlen(mq->client_id.s) > 65535)) {
		load_path(p, path, "client_id");
		load_err(ld, p, "must be a non-empty UTF-8 string");
	}
	load_str(ld, j, "username", path, false, &mq->username);
	if (load_str(ld, j, "password", path, false, &mq->password) &&
	    mq->username.s == NULL) {
		load_path(p, path, "password");
		load_err(ld, p, "needs a \"username\" (MQTT 3.1.1)");
	}
	load_uint(ld, j, "keepalive", path, 5, 65535, &mq->keepalive);
	load_uint(ld, j, "max_in_flight", path, 1, 65535, &mq->max_in_flight);
	if ((it = load_item(j, "mqtt_version")) != NULL) {
		load_path(p, path, "mqtt_version");
		if (cJSON_IsString(it) && strcmp(it->valuestring, "5") == 0)
			mq->mqtt_version = 5;
		else if (!cJSON_IsString(it) ||
		    strcmp(it->valuestring, "3.1.1") != 0)
			load_err(ld, p, "expected \"3.1.1\" or \"5\"");
	}
	if ((it = load_item(j, "tls")) != NULL) {
		load_path(p, path, "tls");
		mqtt_load_tls(ld, mq, it, p);
	}
}

static void
mqtt_str_free(struct rule_str *s)
{
	gw_free(s->s);
	s->s = NULL;
}

/* Frees an mqtt action; accepts NULL. */
void
action_mqtt_free(struct rule_mqtt *mq)
{
	size_t	i;

	if (mq == NULL)
		return;
	for (i = 0; mq->urls != NULL && i < mq->nurls; i++) {
		mqtt_str_free(&mq->urls[i]);
		if (mq->hosts != NULL)
			gw_free(mq->hosts[i].host);
	}
	gw_free(mq->urls);
	gw_free(mq->hosts);
	tmpl_free(mq->topic);
	tmpl_free(mq->payload);
	mqtt_str_free(&mq->client_id);
	mqtt_str_free(&mq->username);
	mqtt_str_free(&mq->password);
	mqtt_str_free(&mq->tls_ca_file);
	mqtt_str_free(&mq->tls_cert);
	mqtt_str_free(&mq->tls_key);
	gw_free(mq);
}

/* See rules.h. Store thread. */
int
rule_render_mqtt_topic(const struct rule *r, const struct msg *m,
    struct rule_payload *pc, struct rule_rendered *topic)
{
	struct rule_ctx	c = { r, m, pc };
	int		rc;

	memset(topic, 0, sizeof *topic);
	if (r->mqtt == NULL)
		return GW_ENOTFOUND;
	if ((rc = tmpl_render(r->mqtt->topic, &c, 0, topic)) != 0)
		return rc;
	if (!topic_name_valid(topic->text, topic->len) ||
	    !utf8_valid(topic->text, topic->len, false))
		return GW_EMALFORMED;
	return 0;
}

/* See rules.h. Store thread. */
int
rule_render_mqtt(const struct rule *r, const struct msg *m,
    struct rule_payload *pc, struct rule_rendered *topic,
    struct rule_rendered *payload)
{
	struct rule_ctx	c = { r, m, pc };
	int		rc;

	memset(payload, 0, sizeof *payload);
	if ((rc = rule_render_mqtt_topic(r, m, pc, topic)) != 0 &&
	    rc != GW_EMALFORMED)
		return rc;
	if (r->mqtt->payload != NULL) {
		if (tmpl_render(r->mqtt->payload, &c, TMPL_SEAL, payload) != 0)
			return GW_ENOMEM;
		return rc;
	}
	if (pc->item >= 0)	/* foreach: the element's JSON */
		return foreach_render_item(pc, payload) != 0 ? GW_ENOMEM : rc;
	if ((payload->text = gw_malloc(m->payload_len + 1)) == NULL)
		return GW_ENOMEM;
	if (m->payload_len > 0)
		memcpy(payload->text, m->payload, m->payload_len);
	payload->text[m->payload_len] = '\0';
	payload->len = m->payload_len;
	return rc;
}
