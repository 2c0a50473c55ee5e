/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway configuration: defaults, the JSON config file (a declarative
 * option table: key, type, default, where it goes, doc) and the command
 * line. Unknown keys are errors reported with their JSON path. Sizes accept
 * B/KB/MB/GB (1024-based) or a plain number of bytes; durations accept
 * ms/s/m/h/d or a plain number of milliseconds. Relative paths in a config
 * file resolve against the config file's folder.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define CONFIG_MAX_LISTENERS	16

struct config_listener {
	char		*bind;		/* address, default "0.0.0.0" */
	int		 port;		/* 0 = pick a free port (tests) */
	bool		 tls;		/* a "tls" object was given */
	char		*tls_cert;	/* tls.cert (resolved path) or NULL */
	char		*tls_key;	/* tls.key (resolved path) or NULL */
	char		*tls_ca;	/* tls.ca (resolved path) or NULL */
	bool		 tls_require_client_cert; /* default false */
	bool		 tls_use_identity; /* tls.use_identity_as_username */
	bool		 websocket;	/* MQTT over WebSockets */
	char		*websocket_path; /* upgrade path, default "/mqtt" */
};

#define CONFIG_MAX_SOURCES	16
#define CONFIG_SOURCE_MAX_TOPICS 64

/* One entry of "sources": a subscription to an external broker. */
struct config_source {
	char		*name;		/* required, unique */
	char		*url;		/* "tcp://host:port" as given, or NULL */
	char		*host;		/* from url or "host" */
	int		 port;		/* default 1883, 8883 with TLS */
	char		*client_id;	/* default "mqlite-<name>" */
	char		*username;	/* ${ENV} expanded, or NULL */
	char		*password;	/* ${ENV} expanded, or NULL */
	int		 qos;		/* default for string topics, 1 */
	unsigned	 keepalive_ms;	/* default 60 s */
	unsigned	 reconnect_min_ms; /* first retry delay, default 1 s */
	unsigned	 reconnect_max_ms; /* backoff cap, default 60 s */
	bool		 tls;		/* mqtts:// or ssl:// url, or "tls" */
	char		*tls_ca_file;	/* tls.ca_file, NULL: system CAs */
	char		*tls_cert;	/* tls.cert: client certificate */
	char		*tls_key;	/* tls.key: its private key */
	bool		 tls_insecure;	/* tls.insecure: no verification */
	size_t		 ntopics;
	char		*topics[CONFIG_SOURCE_MAX_TOPICS]; /* filters */
	uint8_t		 topic_qos[CONFIG_SOURCE_MAX_TOPICS];
};

/* What a full outbox does (outbox.overflow). */
enum config_overflow {
	CONFIG_OVERFLOW_DROP_OLDEST = 0,	/* "drop_oldest" (default) */
	CONFIG_OVERFLOW_REJECT = 1,		/* "reject" */
};

struct gw_config {
	char		*config_path;	/* -c FILE, NULL if none */
	struct config_listener listeners[CONFIG_MAX_LISTENERS];
	size_t		 nlisteners;	/* always >= 1 */

	char		*db_path;	/* default "telemetry.db" */
	bool		 durability_full; /* "full" (default) / "normal" */
	uint64_t	 db_max_bytes;	/* 0 = unbounded */
	unsigned	 commit_max_items;	/* default 1024 */
	unsigned	 commit_max_ms;		/* default 10 */
	unsigned	 qos0_commit_ms;	/* default 1000 */
	unsigned	 ack_window_ms;		/* default 0 */
	uint64_t	 db_page_size;		/* new databases; 4096 */
	unsigned	 store_queue_items;	/* default 8192 */
	uint64_t	 store_queue_bytes;	/* default 16 MB */
	uint64_t	 db_retention_max_age_ms; /* 0 = keep forever */
	bool		 db_on_corrupt_refuse; /* "refuse" / "quarantine" */
	unsigned	 shutdown_timeout_ms;	/* default 30000 */

	uint64_t	 outbox_max_bytes;	/* default 256 MB */
	int		 outbox_overflow;	/* enum config_overflow */
	uint64_t	 outbox_dead_max_bytes;	/* default 16 MB */

	bool		 allow_anonymous;	/* default: no password_file */
	char		*password_file;	/* auth.password_file or NULL */
	char		*acl_file;	/* auth.acl_file or NULL */

	unsigned	 max_connections;	/* default 10000 */
	size_t		 max_packet_bytes;	/* default 1 MB */
	unsigned	 max_inflight;		/* default 20 */
	unsigned	 receive_maximum;	/* held acks, default 1024 */
	unsigned	 topic_alias_maximum;	/* MQTT 5.0, default 10 */
	unsigned	 max_keepalive_ms;	/* MQTT 5.0 cap, 0 = none */
	uint64_t	 held_bytes;		/* their packets, default 4 MB */
	unsigned	 max_queued;		/* default 1000 */
	unsigned	 max_sessions;		/* default 100000 */
	unsigned	 connect_timeout_ms;	/* default 10000 */
	size_t		 output_bytes;		/* default 256 KB */
	unsigned	 stall_timeout_ms;	/* default 30000 */
	uint64_t	 input_budget;		/* default 8 MB */
	unsigned	 max_subscriptions;	/* default 1000 */
	unsigned	 max_retained;		/* default 10000 */
	uint64_t	 retained_bytes;	/* default 8 MB */
	uint64_t	 session_expiry_ms;	/* default 7 days */

	char		*rules_path;	/* -r or "rules"; NULL = default rule */
	/*
	 * "rules" given inline as an array: its compact JSON text (the array
	 * itself, e.g. "[{...}]"), else NULL. At most one of rules_path and
	 * rules_inline is set; neither means the built-in default rule.
	 */
	char		*rules_inline;
	int		 unmatched_messages; /* "unmatched": 1 = "messages" */
	size_t		 nsources;	/* entries in "sources" */
	char		*sources_json;	/* "sources" array as JSON text or NULL */
	struct config_source sources[CONFIG_MAX_SOURCES]; /* validated */

	bool		 metrics_enabled; /* a "metrics" object was given */
	char		*metrics_bind;	/* default "127.0.0.1" */
	int		 metrics_port;	/* default 9883 */
	uint64_t	 sys_interval_ms; /* $SYS publishing, 0 = off */

	char		*log_level;	/* "info" */
	bool		 log_syslog;	/* log.syslog, default false */

	bool		 check_only;	/* --check */
	int		 verbose;	/* -v count */

	/* Command-line overrides kept for config_apply_cli(). */
	int		 cli_port;	/* -p, -1 if not given */
	char		*cli_db_path;	/* -d or NULL */
	char		*cli_rules_path; /* -r or NULL */
};

/*
 * Reports one error (file: path: reason); used by load and --check. e->path
 * is the JSON key path ("limits.max_inflight", "listeners[1].port"), or ""
 * for an error about the whole file (cannot read it, JSON syntax error: then
 * e->msg says the line and column).
 */
typedef void (*config_report_fn)(const char *file, const struct gw_error *e,
		    void *ctx);

/* Fills cfg with the defaults (allocates the default strings). */
int	config_init(struct gw_config *cfg);

/*
 * Parses argv. Returns 0 to continue, 1 when it printed --help or
 * --version (exit 0), -1 on a usage error (message printed to stderr).
 * Command-line values override the config file: main calls this, then
 * config_load_file() if -c was given, then config_apply_cli() again.
 */
int	config_parse_args(struct gw_config *cfg, int argc, char **argv);

/*
 * Reads and validates the JSON config at path into cfg, reporting every
 * error through report (all of them, not just the first). Returns 0, or
 * GW_ECONFIG if anything was reported.
 */
int	config_load_file(struct gw_config *cfg, const char *path,
	    config_report_fn report, void *ctx);

/*
 * Applies the -p/-d/-r/-v overrides remembered by config_parse_args(): -p
 * sets the port of the first listener, -d db_path, -r rules_path (and drops
 * rules_inline), -v sets the log level to "debug". Idempotent. On an
 * allocation failure the old value is kept.
 */
void	config_apply_cli(struct gw_config *cfg);

/*
 * Prints the effective settings to out, one "key = value" line each in
 * config-file syntax (used by --check -v). Borrows cfg.
 */
void	config_dump(const struct gw_config *cfg, FILE *out);

/*
 * SIGHUP (config_reload.c): reads cur->config_path again into next, which
 * this initialises (free it with config_free() whatever the result), with
 * cur's command-line overrides applied as at start. Every problem goes to
 * report. Returns 0, GW_ECONFIG or GW_ENOMEM. Borrows cur.
 */
int	config_reload_load(const struct gw_config *cur,
	    struct gw_config *next, config_report_fn report, void *ctx);

/*
 * Called with the key of each setting a reload changed: live (applied) or
 * not (only a restart applies it; the running value is kept).
 */
typedef void (*config_change_fn)(const char *key, int live, void *ctx);

/*
 * Moves the settings that may change while running (auth, log, limits but
 * max_inflight and output_bytes, unmatched, rules) from next into cur,
 * keeps cur's value of every other one, and passes each changed key to
 * change. Returns the number of live settings that changed.
 */
int	config_reload_apply(struct gw_config *cur, struct gw_config *next,
	    config_change_fn change, void *ctx);

/* Frees what cfg owns. */
void	config_free(struct gw_config *cfg);

#endif
