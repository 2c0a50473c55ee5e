/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration's option tables (every key, its type, range, default
 * and doc) and the handlers of the sections a table row cannot express:
 * the listener array, sources and inline rules. The walking, checking and
 * reporting machinery they use is config.c.
 *
 * DESIGN
 *
 * A new plain setting is one row in config_root_options (or in
 * config_listener_options for a per-listener key); a new section with its
 * own shape is a SPECIAL row plus a handler here, reporting every problem
 * through cfgload_error() with its JSON path and carrying on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "config_int.h"
#include "jsonfile.h"
#include "mem.h"

static void	load_listeners(struct load *, const cJSON *, const char *);
static void	load_sources(struct load *, const cJSON *, const char *);
static void	load_rules(struct load *, const cJSON *, const char *);

static const char *const durability_choices[] = { "normal", "full", NULL };
static const char *const corrupt_choices[] = { "quarantine", "refuse",
	NULL };
static const char *const overflow_choices[] = { "drop_oldest", "reject",
	NULL };
static const char *const unmatched_choices[] = { "drop", "messages",
	NULL };
static const char *const level_choices[] = { "error", "warn", "info",
	"debug", NULL };

#define CFG_FIELD(m) \
	offsetof(struct gw_config, m), sizeof(((struct gw_config *)0)->m)
#define LST_FIELD(m) \
	offsetof(struct config_listener, m), \
	sizeof(((struct config_listener *)0)->m)
#define OPT(k, t, f, lo, hi, ch, def, doc) \
	{ k, t, CFG_FIELD(f), lo, hi, ch, def, NULL, doc }
#define LOPT(k, t, f, lo, hi, def, doc) \
	{ k, t, LST_FIELD(f), lo, hi, NULL, def, NULL, doc }
#define SPECIAL(k, h, doc) \
	{ k, OPT_SPECIAL, 0, 0, 0, 0, NULL, NULL, h, doc }

#define KIB	1024LL
#define MIB	(1024LL * KIB)
#define GIB	(1024LL * MIB)

const struct config_option config_root_options[] = {
	SPECIAL("listeners", load_listeners,
	    "1 to 16 listener objects {port, bind, tls}"),
	OPT("database.path", OPT_PATH, db_path, 0, 0, NULL, "telemetry.db",
	    "SQLite database file"),
	OPT("database.durability", OPT_ENUM, durability_full, 0, 1,
	    durability_choices, "full",
	    "full: fsync each commit; normal: may lose last commits on power loss"),
	OPT("database.on_corrupt", OPT_ENUM, db_on_corrupt_refuse, 0, 1,
	    corrupt_choices, "quarantine",
	    "a damaged database: move it aside and start fresh, or refuse"),
	OPT("database.max_bytes", OPT_SIZE, db_max_bytes, 0, INT64_MAX, NULL,
	    "0", "database size cap, 0 = unbounded"),
	OPT("database.retention.max_age", OPT_DURATION,
	    db_retention_max_age_ms, 0, INT64_MAX, NULL, "0",
	    "delete telemetry rows older than this, 0 = keep"),
	OPT("database.commit_max_items", OPT_UINT, commit_max_items, 1,
	    100000, NULL, "1024", "items per group commit at most"),
	OPT("database.commit_max_ms", OPT_DURATION, commit_max_ms, 0, 10000,
	    NULL, "10", "a batch commits this long after its first item"),
	OPT("database.qos0_commit_ms", OPT_DURATION, qos0_commit_ms, 0,
	    60000, NULL, "1000",
	    "a batch of QoS 0 work only waits this long for company"),
	OPT("database.ack_window_ms", OPT_DURATION, ack_window_ms, 0, 1000,
	    NULL, "0", "QoS 1/2 acks wait this long for work to share "
	    "their commit"),
	OPT("database.page_size", OPT_SIZE, db_page_size, 512, 65536, NULL,
	    "4KB", "page size of a new database: 512 to 65536, a power of 2"),
	OPT("database.queue_items", OPT_UINT, store_queue_items, 16, 10000000,
	    NULL, "8192", "store queue bound (items)"),
	OPT("database.queue_bytes", OPT_SIZE, store_queue_bytes, 64 * KIB,
	    INT64_MAX, NULL, "16MB",
	    "store queue bound (message bytes waiting to be committed)"),
	OPT("outbox.max_bytes", OPT_SIZE, outbox_max_bytes, KIB, INT64_MAX,
	    NULL, "256MB", "outbox cap: url + headers + body"),
	OPT("outbox.overflow", OPT_ENUM, outbox_overflow, 0, 1,
	    overflow_choices, "drop_oldest", "what a full outbox does"),
	OPT("outbox.dead_max_bytes", OPT_SIZE, outbox_dead_max_bytes, 0,
	    INT64_MAX, NULL, "16MB", "outbox_dead cap, 0 = unbounded"),
	OPT("auth.allow_anonymous", OPT_BOOL, allow_anonymous, 0, 0, NULL,
	    "true", "accept clients without a username"),
	OPT("auth.password_file", OPT_PATH, password_file, 0, 0, NULL, NULL,
	    "mosquitto_passwd-format password file"),
	OPT("auth.acl_file", OPT_PATH, acl_file, 0, 0, NULL, NULL,
	    "JSON ACL file"),
	OPT("limits.max_connections", OPT_UINT, max_connections, 1, 1000000,
	    NULL, "10000", "concurrent client connections"),
	OPT("limits.max_packet_bytes", OPT_SIZE, max_packet_bytes, 16,
	    256 * MIB, NULL, "1MB", "largest MQTT packet accepted"),
	OPT("limits.max_inflight", OPT_UINT, max_inflight, 1, 65535, NULL,
	    "20", "outbound QoS 1/2 window per connection"),
	OPT("limits.receive_maximum", OPT_UINT, receive_maximum, 1, 65535,
	    NULL, "1024", "acks a connection may have held for the store"),
	OPT("limits.topic_alias_maximum", OPT_UINT, topic_alias_maximum, 0,
	    65535, NULL, "10", "MQTT 5.0 topic aliases per connection"),
	OPT("limits.max_keepalive", OPT_DURATION, max_keepalive_ms, 0,
	    65535000, NULL, "0", "MQTT 5.0 keepalive cap, 0 = none"),
	OPT("limits.held_bytes", OPT_SIZE, held_bytes, KIB, INT64_MAX, NULL,
	    "4MB", "bytes of packets behind a connection's held acks"),
	OPT("limits.max_queued", OPT_UINT, max_queued, 0, 10000000, NULL,
	    "1000", "messages queued per session"),
	OPT("limits.max_sessions", OPT_UINT, max_sessions, 1, 10000000, NULL,
	    "100000", "sessions kept at once (persistent and connected)"),
	OPT("limits.connect_timeout", OPT_DURATION, connect_timeout_ms, 100,
	    3600000, NULL, "10s", "accept to complete CONNECT"),
	OPT("limits.output_bytes", OPT_SIZE, output_bytes, 1024, 256 * MIB,
	    NULL, "256KB", "pending output before a connection is not read"),
	OPT("limits.stall_timeout", OPT_DURATION, stall_timeout_ms, 100,
	    86400000, NULL, "30s", "close a connection stuck this long"),
	OPT("limits.input_budget", OPT_SIZE, input_budget, 64 * KIB,
	    INT64_MAX, NULL, "8MB", "bytes of all partial packets together"),
	OPT("limits.max_subscriptions", OPT_UINT, max_subscriptions, 1,
	    10000000, NULL, "1000", "subscriptions per session"),
	OPT("limits.max_retained", OPT_UINT, max_retained, 0, 100000000,
	    NULL, "10000", "retained topics kept"),
	OPT("limits.retained_bytes", OPT_SIZE, retained_bytes, 0, INT64_MAX,
	    NULL, "8MB", "payload bytes of retained messages"),
	OPT("limits.session_expiry", OPT_DURATION, session_expiry_ms, 1000,
	    INT64_MAX, NULL, "7d", "drop persistent sessions unseen this long"),
	SPECIAL("sources", load_sources, "subscriptions to external brokers"),
	SPECIAL("rules", load_rules, "rules file name or inline rule array"),
	OPT("unmatched", OPT_ENUM, unmatched_messages, 0, 1,
	    unmatched_choices, "drop",
	    "publishes no rule matches: drop or store in messages"),
	OPT("metrics.bind", OPT_STRING, metrics_bind, 0, 0, NULL, "127.0.0.1",
	    "metrics HTTP address"),
	OPT("metrics.port", OPT_INT, metrics_port, 0, 65535, NULL, "9883",
	    "metrics HTTP port"),
	OPT("sys_interval", OPT_DURATION, sys_interval_ms, 0, 86400000,
	    NULL, "10s", "$SYS/broker topics published this often, 0 = off"),
	OPT("shutdown_timeout", OPT_DURATION, shutdown_timeout_ms, 100,
	    86400000, NULL, "30s", "SIGTERM ends the daemon within this"),
	OPT("log.level", OPT_STRING, log_level, 0, 0, level_choices, "info",
	    "error, warn, info or debug"),
	OPT("log.syslog", OPT_BOOL, log_syslog, 0, 0, NULL, "false",
	    "log to syslog instead of stderr"),
};

const struct config_option config_listener_options[] = {
	LOPT("port", OPT_INT, port, 0, 65535, "1883", "TCP port (required)"),
	LOPT("bind", OPT_STRING, bind, 0, 0, "0.0.0.0", "address to bind"),
	LOPT("tls.cert", OPT_PATH, tls_cert, 0, 0, NULL, "certificate (PEM)"),
	LOPT("tls.key", OPT_PATH, tls_key, 0, 0, NULL, "private key (PEM)"),
	LOPT("tls.ca", OPT_PATH, tls_ca, 0, 0, NULL, "CA bundle (PEM)"),
	LOPT("tls.require_client_cert", OPT_BOOL, tls_require_client_cert, 0,
	    0, "false", "ask clients for a certificate"),
	LOPT("tls.use_identity_as_username", OPT_BOOL, tls_use_identity, 0,
	    0, "false", "client certificate CN becomes the username"),
	LOPT("websocket", OPT_BOOL, websocket, 0, 0, "false",
	    "MQTT over WebSockets (sub-protocol mqtt)"),
	LOPT("websocket_path", OPT_STRING, websocket_path, 0, 0, "/mqtt",
	    "HTTP path of the WebSocket upgrade"),
};

const size_t config_nroot = sizeof config_root_options /
    sizeof config_root_options[0];
const size_t config_nlistener = sizeof config_listener_options /
    sizeof config_listener_options[0];

/* Frees a listener's strings and zeroes it. */
void
config_listener_clear(struct config_listener *l)
{
	cfgload_free_strings(config_listener_options, config_nlistener, l);
	memset(l, 0, sizeof *l);
}

/* A "tls" object: cert and key, and a CA where client certs are used. */
static void
check_tls(struct load *ld, struct config_listener *l, const char *shown)
{
	char	 sub[CONFIG_PATH_MAX];

	l->tls = true;
	if (l->tls_cert == NULL) {
		cfgload_join_path(sub, sizeof sub, shown, "tls.cert");
		cfgload_error(ld, sub, "required key is missing");
	}
	if (l->tls_key == NULL) {
		cfgload_join_path(sub, sizeof sub, shown, "tls.key");
		cfgload_error(ld, sub, "required key is missing");
	}
	if (l->tls_require_client_cert && l->tls_ca == NULL) {
		cfgload_join_path(sub, sizeof sub, shown, "tls.ca");
		cfgload_error(ld, sub, "required with require_client_cert (the "
		    "CA that signs client certificates)");
	}
	if (l->tls_use_identity && !l->tls_require_client_cert) {
		cfgload_join_path(sub, sizeof sub, shown,
		    "tls.use_identity_as_username");
		cfgload_error(ld, sub, "needs require_client_cert: true");
	}
}

static void
load_listeners(struct load *ld, const cJSON *it, const char *path)
{
	struct gw_config	*cfg = ld->cfg;
	struct config_listener	*l;
	const cJSON		*el;
	char			 shown[CONFIG_PATH_MAX], sub[CONFIG_PATH_MAX];
	int			 n, i;

	if (!cJSON_IsArray(it)) {
		cfgload_error(ld, path, "expected an array of listener objects, "
		    "got %s", jsonfile_type_name(it));
		return;
	}
	n = cJSON_GetArraySize(it);
	if (n < 1 || n > CONFIG_MAX_LISTENERS) {
		cfgload_error(ld, path, "expected 1 to %d listeners, got %d",
		    CONFIG_MAX_LISTENERS, n);
		return;
	}
	for (i = 0; i < CONFIG_MAX_LISTENERS; i++)
		config_listener_clear(&cfg->listeners[i]);
	cfg->nlisteners = 0;

	i = 0;
	cJSON_ArrayForEach(el, it) {
		snprintf(shown, sizeof shown, "%s[%d]", path, i);
		l = &cfg->listeners[i++];
		cfg->nlisteners++;
		if (cfgload_apply_defaults(config_listener_options,
		    config_nlistener, l) != 0) {
			cfgload_oom(ld, shown);
			continue;
		}
		if (!cJSON_IsObject(el)) {
			cfgload_error(ld, shown, "expected a listener object, "
			    "got %s", jsonfile_type_name(el));
			continue;
		}
		cfgload_object(ld, el, config_listener_options, config_nlistener, l, "",
		    shown);
		if (cJSON_GetObjectItemCaseSensitive(el, "port") == NULL) {
			cfgload_join_path(sub, sizeof sub, shown, "port");
			cfgload_error(ld, sub, "required key is missing");
		}
		if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(el,
		    "tls")))
			check_tls(ld, l, shown);
		if (l->websocket_path != NULL && (l->websocket_path[0] != '/' ||
		    strcspn(l->websocket_path, " ?#\t\r\n") !=
		    strlen(l->websocket_path))) {
			cfgload_join_path(sub, sizeof sub, shown,
			    "websocket_path");
			cfgload_error(ld, sub, "expected a path starting with /, "
			    "without spaces, ? or #");
		}
	}
}

/* Returns a new gw-allocated compact JSON text of it, or NULL. */
static char *
json_text(const cJSON *it)
{
	char	*t, *s;

	if ((t = cJSON_PrintUnformatted(it)) == NULL)
		return NULL;
	s = gw_strdup(t);
	cJSON_free(t);
	return s;
}

/* Reports every element of array it that is not an object. */
static int
check_objects(struct load *ld, const cJSON *it, const char *path)
{
	const cJSON	*el;
	char		 shown[CONFIG_PATH_MAX];
	int		 i = 0, bad = 0;

	cJSON_ArrayForEach(el, it) {
		if (!cJSON_IsObject(el)) {
			snprintf(shown, sizeof shown, "%s[%d]", path, i);
			cfgload_error(ld, shown, "expected an object, got %s",
			    jsonfile_type_name(el));
			bad = 1;
		}
		i++;
	}
	return bad ? -1 : 0;
}

/*
 * An array of objects at path (sources, inline rules): returns its new
 * compact JSON text, or NULL after reporting what is wrong ("expected
 * WANT, got ..." when it is no array).
 */
static char *
object_array_text(struct load *ld, const cJSON *it, const char *path,
    const char *want)
{
	char	*s;

	if (!cJSON_IsArray(it)) {
		cfgload_error(ld, path, "expected %s, got %s", want,
		    jsonfile_type_name(it));
		return NULL;
	}
	if (check_objects(ld, it, path) != 0)
		return NULL;
	if ((s = json_text(it)) == NULL)
		cfgload_oom(ld, path);
	return s;
}

static void
load_sources(struct load *ld, const cJSON *it, const char *path)
{
	char	*s;

	if ((s = object_array_text(ld, it, path,
	    "an array of source objects")) == NULL)
		return;
	cfgload_store_str(&ld->cfg->sources_json, s);
	config_sources_load(ld, it, path);
}

static void
load_rules(struct load *ld, const cJSON *it, const char *path)
{
	struct gw_config	*cfg = ld->cfg;
	char			*s;

	if (cJSON_IsString(it)) {
		if (it->valuestring[0] == '\0') {
			cfgload_error(ld, path, "expected a file name, got an "
			    "empty string");
			return;
		}
		if ((s = cfgload_resolve_path(ld, it->valuestring)) == NULL) {
			cfgload_oom(ld, path);
			return;
		}
		cfgload_store_str(&cfg->rules_path, s);
		cfgload_store_str(&cfg->rules_inline, NULL);
		return;
	}
	if ((s = object_array_text(ld, it, path,
	    "a rules file name or an array of rules")) == NULL)
		return;
	cfgload_store_str(&cfg->rules_inline, s);
	cfgload_store_str(&cfg->rules_path, NULL);
}
