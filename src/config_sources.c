/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "sources" array of the config file: external brokers mqlite
 * subscribes to as an MQTT 3.1.1 client (src/source/ runs them).
 *
 * DESIGN
 *
 * Each entry is walked against its own option table, so a misspelt key, a
 * wrong type or a value out of range is reported with its JSON path like
 * any other setting. What a table row cannot check is done here after the
 * walk: a required, unique name; exactly one of "url" and "host"; the URL
 * scheme and port; each topic filter's syntax; ${NAME} references in the
 * credentials (expanded now, so --check reports an unset variable); TLS
 * settings that agree with the url (an mqtts:// or ssl:// url, or a "tls"
 * object with host and port, turns TLS on; port 8883 by default then).
 * Every problem is reported and the walk carries on, so one --check run
 * lists them all. The TLS files themselves are opened and checked by
 * src/net/tls_client.c (tls_check_config), which needs libssl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/topic.h"
#include "config.h"
#include "config_int.h"
#include "jsonfile.h"
#include "mem.h"
#include "rules/rules.h"

#define SOURCE_NAME_MAX		64

static void	ignore_key(struct load *, const cJSON *, const char *);

#define SOPT(k, t, f, lo, hi, def, doc) \
	{ k, t, offsetof(struct config_source, f), \
	    sizeof(((struct config_source *)0)->f), lo, hi, NULL, def, NULL, \
	    doc }

static const struct config_option source_options[] = {
	SOPT("name", OPT_STRING, name, 0, 0, NULL, "unique name (required)"),
	SOPT("url", OPT_STRING, url, 0, 0, NULL,
	    "tcp://host:port or mqtts://host:port"),
	SOPT("host", OPT_STRING, host, 0, 0, NULL, "broker host (or url)"),
	SOPT("port", OPT_INT, port, 1, 65535, "1883",
	    "broker port, 8883 with TLS"),
	SOPT("client_id", OPT_STRING, client_id, 0, 0, NULL,
	    "client id, default mqlite-NAME"),
	SOPT("username", OPT_STRING, username, 0, 0, NULL, "${ENV} allowed"),
	SOPT("password", OPT_STRING, password, 0, 0, NULL, "${ENV} allowed"),
	SOPT("qos", OPT_INT, qos, 0, 2, "1", "QoS of string topics"),
	SOPT("keepalive", OPT_DURATION, keepalive_ms, 1000, 65535000, "60s",
	    "MQTT keepalive"),
	SOPT("reconnect.min", OPT_DURATION, reconnect_min_ms, 10, 3600000,
	    "1s", "first reconnect delay"),
	SOPT("reconnect.max", OPT_DURATION, reconnect_max_ms, 10, 86400000,
	    "60s", "reconnect delay cap"),
	{ "topics", OPT_SPECIAL, 0, 0, 0, 0, NULL, NULL, ignore_key,
	    "filters: \"a/#\" or {\"topic\", \"qos\"}" },
	SOPT("tls.ca_file", OPT_PATH, tls_ca_file, 0, 0, NULL,
	    "CA bundle (PEM), default the system's"),
	SOPT("tls.cert", OPT_PATH, tls_cert, 0, 0, NULL,
	    "client certificate (PEM)"),
	SOPT("tls.key", OPT_PATH, tls_key, 0, 0, NULL, "its private key (PEM)"),
	SOPT("tls.insecure", OPT_BOOL, tls_insecure, 0, 0, "false",
	    "skip certificate and host name checks"),
};
static const size_t nsource_options = sizeof source_options /
    sizeof source_options[0];

/* "topics" is read after the walk, into the entry. */
static void
ignore_key(struct load *ld, const cJSON *it, const char *path)
{
	(void)ld;
	(void)it;
	(void)path;
}

void
config_source_clear(struct config_source *s)
{
	size_t	i;

	cfgload_free_strings(source_options, nsource_options, s);
	for (i = 0; i < s->ntopics; i++)
		gw_free(s->topics[i]);
	memset(s, 0, sizeof *s);
}

/* Splits "tcp://host:port" (or mqtt://, [v6]:port) into s->host, port. */
static void
parse_url(struct load *ld, struct config_source *s, const char *path)
{
	const char	*u = s->url, *h, *e, *colon;
	char		*host, *end;
	long		 port = 1883;
	size_t		 hlen;

	if (strncmp(u, "tcp://", 6) == 0)
		h = u + 6;
	else if (strncmp(u, "mqtt://", 7) == 0)
		h = u + 7;
	else if (strncmp(u, "ssl://", 6) == 0 ||
	    strncmp(u, "mqtts://", 8) == 0) {
		h = strstr(u, "://") + 3;
		s->tls = true;
		port = 8883;
	} else {
		cfgload_error(ld, path, "expected tcp://HOST:PORT, "
		    "mqtt://HOST:PORT or mqtts://HOST:PORT, got \"%s\"", u);
		return;
	}
	if (*h == '[') {
		if ((e = strchr(h, ']')) == NULL)
			goto bad;
		h++;
		hlen = (size_t)(e - h);
		colon = e[1] == ':' ? e + 1 : NULL;
		if (e[1] != '\0' && colon == NULL)
			goto bad;
	} else {
		colon = strchr(h, ':');
		hlen = colon != NULL ? (size_t)(colon - h) : strlen(h);
		if (memchr(h, '/', hlen) != NULL)
			goto bad;
	}
	if (hlen == 0)
		goto bad;
	if (colon != NULL) {
		port = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || port < 1 ||
		    port > 65535)
			goto bad;
	}
	if ((host = gw_malloc(hlen + 1)) == NULL) {
		cfgload_oom(ld, path);
		return;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	cfgload_store_str(&s->host, host);
	s->port = (int)port;
	return;
bad:
	cfgload_error(ld, path, "expected tcp://HOST:PORT or "
	    "mqtts://HOST:PORT, got \"%s\"", u);
}

/* Reads "topics": a non-empty array of filters or {topic, qos} objects. */
static void
load_topics(struct load *ld, struct config_source *s, const cJSON *arr,
    const char *shown)
{
	const cJSON	*el, *t, *q, *k;
	char		 path[CONFIG_PATH_MAX], sub[CONFIG_PATH_MAX + 16];
	const char	*f;
	int		 i = 0, qos;

	cfgload_join_path(path, sizeof path, shown, "topics");
	if (arr == NULL) {
		cfgload_error(ld, path, "required key is missing");
		return;
	}
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
		cfgload_error(ld, path, "expected a non-empty array of topic "
		    "filters");
		return;
	}
	if (cJSON_GetArraySize(arr) > CONFIG_SOURCE_MAX_TOPICS) {
		cfgload_error(ld, path, "at most %d topics",
		    CONFIG_SOURCE_MAX_TOPICS);
		return;
	}
	cJSON_ArrayForEach(el, arr) {
		snprintf(sub, sizeof sub, "%s[%d]", path, i++);
		qos = s->qos;
		if (cJSON_IsObject(el)) {
			cJSON_ArrayForEach(k, el) {
				if (strcmp(k->string, "topic") != 0 &&
				    strcmp(k->string, "qos") != 0)
					cfgload_error(ld, sub, "unknown key "
					    "\"%s\"", k->string);
			}
			t = cJSON_GetObjectItemCaseSensitive(el, "topic");
			q = cJSON_GetObjectItemCaseSensitive(el, "qos");
			if (q != NULL) {
				if (!cJSON_IsNumber(q) || q->valuedouble < 0 ||
				    q->valuedouble > 2 || q->valuedouble !=
				    (double)q->valueint) {
					cfgload_error(ld, sub, "qos: expected "
					    "0, 1 or 2");
					continue;
				}
				qos = q->valueint;
			}
		} else
			t = el;
		if (!cJSON_IsString(t)) {
			cfgload_error(ld, sub, "expected a topic filter or "
			    "{\"topic\": FILTER, \"qos\": N}");
			continue;
		}
		f = t->valuestring;
		if (!topic_filter_valid(f, strlen(f)) || strlen(f) > 65535) {
			cfgload_error(ld, sub, "invalid topic filter \"%s\"",
			    f);
			continue;
		}
		if ((s->topics[s->ntopics] = gw_strdup(f)) == NULL) {
			cfgload_oom(ld, sub);
			return;
		}
		s->topic_qos[s->ntopics++] = (uint8_t)qos;
	}
}

/* Replaces *field by its ${NAME} expansion, reporting at key. */
static void
expand_secret(struct load *ld, char **field, const char *shown,
    const char *key)
{
	struct gw_error	 e;
	char		 path[CONFIG_PATH_MAX], *out;
	bool		 secret;
	int		 rc;

	if (*field == NULL)
		return;
	memset(&e, 0, sizeof e);
	cfgload_join_path(path, sizeof path, shown, key);
	if ((rc = tmpl_expand_env(*field, &out, &secret, &e)) != 0) {
		if (rc == GW_ENOMEM)
			cfgload_oom(ld, path);
		else
			cfgload_error(ld, path, "%s", e.msg);
		return;
	}
	cfgload_store_str(field, out);
}

/* Checks name: 1..64 of [A-Za-z0-9_.-], not used by an earlier entry. */
static void
check_name(struct load *ld, struct config_source *s, size_t idx,
    const cJSON *el, const char *shown)
{
	char	 path[CONFIG_PATH_MAX];
	size_t	 i, n;

	cfgload_join_path(path, sizeof path, shown, "name");
	if (s->name == NULL) {
		if (cJSON_GetObjectItemCaseSensitive(el, "name") == NULL)
			cfgload_error(ld, path, "required key is missing");
		return;		/* else reported already: wrong type */
	}
	n = strlen(s->name);
	if (n == 0 || n > SOURCE_NAME_MAX ||
	    strspn(s->name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
		cfgload_error(ld, path, "expected 1 to %d letters, digits, "
		    "'_', '.' or '-'", SOURCE_NAME_MAX);
		return;
	}
	for (i = 0; i < idx; i++) {
		if (ld->cfg->sources[i].name != NULL &&
		    strcmp(ld->cfg->sources[i].name, s->name) == 0) {
			cfgload_error(ld, path, "duplicate source name \"%s\" "
			    "(also sources[%zu])", s->name, i);
			return;
		}
	}
}

/*
 * A "tls" object: it turns TLS on with "host" (with "url" the scheme
 * must say mqtts:// or ssl://); cert and key go together.
 */
static void
check_tls(struct load *ld, struct config_source *s, const cJSON *el,
    const char *shown)
{
	const cJSON	*t = cJSON_GetObjectItemCaseSensitive(el, "tls");
	char		 path[CONFIG_PATH_MAX];

	if (!cJSON_IsObject(t))
		return;		/* absent, or reported already */
	cfgload_join_path(path, sizeof path, shown, "tls");
	if (s->url != NULL && !s->tls && s->host != NULL)
		cfgload_error(ld, path, "TLS settings need an mqtts:// or "
		    "ssl:// url");
	if (s->host != NULL && s->url == NULL) {
		s->tls = true;
		if (cJSON_GetObjectItemCaseSensitive(el, "port") == NULL)
			s->port = 8883;
	}
	if ((s->tls_cert == NULL) != (s->tls_key == NULL)) {
		cfgload_join_path(path, sizeof path, shown, s->tls_cert ==
		    NULL ? "tls.cert" : "tls.key");
		cfgload_error(ld, path, "tls.cert and tls.key go together");
	}
}

/* Validates entry el into s (defaults applied already). */
static void
load_one(struct load *ld, struct config_source *s, size_t idx,
    const cJSON *el, const char *shown)
{
	char	 path[CONFIG_PATH_MAX], *id;
	size_t	 n;

	cfgload_object(ld, el, source_options, nsource_options, s, "", shown);
	check_name(ld, s, idx, el, shown);
	if (s->url != NULL && s->host != NULL) {
		cfgload_join_path(path, sizeof path, shown, "host");
		cfgload_error(ld, path, "give either url or host, not both");
	} else if (s->url != NULL) {
		cfgload_join_path(path, sizeof path, shown, "url");
		if (cJSON_GetObjectItemCaseSensitive(el, "port") != NULL)
			cfgload_error(ld, path, "the port goes into the url");
		else
			parse_url(ld, s, path);
	} else if (s->host == NULL) {
		/* Present with a wrong type: reported already. */
		if (cJSON_GetObjectItemCaseSensitive(el, "url") == NULL &&
		    cJSON_GetObjectItemCaseSensitive(el, "host") == NULL) {
			cfgload_join_path(path, sizeof path, shown, "url");
			cfgload_error(ld, path, "required key is missing (or "
			    "give host and port)");
		}
	} else if (s->host[0] == '\0') {
		cfgload_join_path(path, sizeof path, shown, "host");
		cfgload_error(ld, path, "expected a host name or address");
	}
	check_tls(ld, s, el, shown);
	if (s->client_id == NULL && s->name != NULL) {
		n = strlen(s->name) + sizeof "mqlite-";
		if ((id = gw_malloc(n)) == NULL) {
			cfgload_oom(ld, shown);
			return;
		}
		snprintf(id, n, "mqlite-%s", s->name);
		s->client_id = id;
	} else if (s->client_id != NULL && (s->client_id[0] == '\0' ||
	    strlen(s->client_id) > 65535)) {
		cfgload_join_path(path, sizeof path, shown, "client_id");
		cfgload_error(ld, path, "expected a non-empty client id (a "
		    "persistent session needs one)");
	}
	if (s->password != NULL && s->username == NULL) {
		cfgload_join_path(path, sizeof path, shown, "password");
		cfgload_error(ld, path, "a password needs a username");
	}
	expand_secret(ld, &s->username, shown, "username");
	expand_secret(ld, &s->password, shown, "password");
	if (s->reconnect_min_ms > s->reconnect_max_ms) {
		cfgload_join_path(path, sizeof path, shown, "reconnect.min");
		cfgload_error(ld, path, "greater than reconnect.max");
	}
	load_topics(ld, s, cJSON_GetObjectItemCaseSensitive(el, "topics"),
	    shown);
}

void
config_sources_load(struct load *ld, const cJSON *it, const char *path)
{
	struct gw_config	*cfg = ld->cfg;
	const cJSON		*el;
	char			 shown[CONFIG_PATH_MAX];
	size_t			 i = 0;

	for (i = 0; i < CONFIG_MAX_SOURCES; i++)
		config_source_clear(&cfg->sources[i]);
	cfg->nsources = 0;
	if (cJSON_GetArraySize(it) > CONFIG_MAX_SOURCES) {
		cfgload_error(ld, path, "at most %d sources",
		    CONFIG_MAX_SOURCES);
		return;
	}
	i = 0;
	cJSON_ArrayForEach(el, it) {
		snprintf(shown, sizeof shown, "%s[%zu]", path, i);
		if (cfgload_apply_defaults(source_options, nsource_options,
		    &cfg->sources[i]) != 0) {
			cfgload_oom(ld, shown);
			return;
		}
		load_one(ld, &cfg->sources[i], i, el, shown);
		i++;
		cfg->nsources = i;
	}
}
