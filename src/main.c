/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mqlite: the daemon. Reads the command line and the config file, opens
 * the database (applying the schema), starts the store thread, listens and
 * runs the event loop on this thread until SIGTERM or SIGINT. Shutdown is
 * ordered: stop accepting and reading, let the store commit everything it
 * accepted, send the acknowledgements that commit released, close, exit 0.
 */
#include <sys/signalfd.h>

#include <pthread.h>

#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "build_config.h"
#include "broker/acl.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/passwd.h"
#include "clock.h"
#include "config.h"
#include "deliver/setup.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "metrics_render.h"
#include "net/ev.h"
#include "net/tls.h"
#include "notify.h"
#include "passwd_cli.h"
#include "routecheck.h"
#include "rules/devtime.h"
#include "rules/rules.h"
#include "source/source.h"
#include "store/store.h"
#include "sys.h"

struct daemon {
	struct gw_config *cfg;		/* SIGHUP updates the live keys */
	struct rule_set	*rules;		/* NULL: the built-in default rule */
	struct ev_loop	*loop;
	struct broker	*broker;
	struct store	*store;
	struct delivery	*delivery;	/* store-and-forward wiring */
	struct sources	*sources;	/* external brokers (config) */
	struct metrics	*metrics;	/* NULL: no metrics endpoint */
	struct metrics_sources msrc;	/* what the endpoint reads */
	struct sys	*sys;		/* NULL: no $SYS topics */
	struct passwd_db *pw;		/* loaded at start, until the broker */
	struct acl	*acl;		/* takes them */
	struct notify	*notify;	/* NULL: not under systemd */
	int		 sigfd;
	int		 stop_signal;
	struct ev_timer	 status;	/* the periodic status line */
};

#define STATUS_INTERVAL_MS	(5 * 60 * 1000)

static void
report_error(const char *file, const struct gw_error *e, void *ctx)
{
	int *count = ctx;

	fprintf(stderr, "%s: %s%s%s\n", file != NULL ? file : "mqlite",
	    e->path, e->path[0] != '\0' ? ": " : "", e->msg);
	(*count)++;
}

static void
log_load_error(const char *file, const struct gw_error *e, void *ctx)
{
	(void)ctx;
	log_error("%s: %s%s%s", file != NULL ? file : "rules", e->path,
	    e->path[0] != '\0' ? ": " : "", e->msg);
}

/*
 * Loads the configured rules: -r / "rules": "FILE", an inline "rules"
 * array, or none (NULL in *out: the built-in default rule). Every error
 * goes to report. 0 or GW_ECONFIG / GW_ENOMEM.
 */
static int
load_rules(const struct gw_config *cfg, rules_report_fn report, void *ctx,
    struct rule_set **out)
{
	char *dir = NULL;
	int rc = 0;

	*out = NULL;
	if (cfg->rules_path != NULL)
		*out = rules_load_file(cfg->rules_path, report, ctx, &rc);
	else if (cfg->rules_inline != NULL) {
		if (cfg->config_path != NULL &&
		    (dir = gw_strdup(cfg->config_path)) == NULL)
			return GW_ENOMEM;
		*out = rules_load_json(cfg->rules_inline,
		    strlen(cfg->rules_inline), cfg->config_path != NULL ?
		    cfg->config_path : "config", dir != NULL ? dirname(dir) :
		    NULL, report, ctx, &rc);
		gw_free(dir);
	}
	if (rc == 0)
		rule_set_default_unmatched(*out, cfg->unmatched_messages ?
		    RULES_UNMATCHED_MESSAGES : RULES_UNMATCHED_DROP);
	return rc;
}

static void
log_changed_key(const char *key, int live, void *ctx)
{
	const char *file = ctx;

	if (live)
		log_info("SIGHUP: %s: %s changed: applied", file, key);
	else
		log_warn("SIGHUP: %s: %s changed: needs a restart, keeping "
		    "the running value", file, key);
}

/*
 * SIGHUP, step 1: the config file (when there is one), then the files it
 * names: passwords, ACL and rules. Nothing is applied unless all of them
 * load; each problem is logged as FILE: JSON.PATH: REASON. Returns 0 with
 * the new configuration in next (or next->config_path NULL: no config
 * file), the new access files and rules (*set NULL: the built-in rule).
 */
static int
reload_load(struct daemon *d, struct gw_config *next, struct passwd_db **pw,
    struct acl **acl, struct rule_set **set)
{
	const struct gw_config *cfg = d->cfg;

	*pw = NULL;
	*acl = NULL;
	*set = NULL;
	memset(next, 0, sizeof *next);
	if (cfg->config_path != NULL) {
		if (config_reload_load(cfg, next, log_load_error, NULL) != 0) {
			log_error("SIGHUP: %s not reloaded, keeping the "
			    "current configuration", cfg->config_path);
			return -1;
		}
		cfg = next;
	}
	if (auth_load_files(cfg, pw, acl, log_load_error, NULL) != 0) {
		log_error("SIGHUP: password file and ACL not reloaded: "
		    "nothing reloaded, keeping the current configuration");
		return -1;
	}
	if (load_rules(cfg, log_load_error, NULL, set) != 0) {
		log_error("SIGHUP: rules not reloaded: nothing reloaded, "
		    "keeping the current configuration");
		passwd_free(*pw);
		acl_free(*acl);
		*pw = NULL;
		*acl = NULL;
		return -1;
	}
	return 0;
}

/*
 * SIGHUP: reload the config file and what it names (TLS certificates,
 * passwords, ACL, rules and their webhook routes, log level, limits). A
 * key only a restart can change is logged and keeps its running value; a
 * broken file keeps everything as it was.
 */
static void
reload(struct daemon *d)
{
	struct gw_config next;
	struct passwd_db *pw;
	struct acl *acl;
	struct rule_set *set;
	enum log_level lvl;

	if (reload_load(d, &next, &pw, &acl, &set) != 0) {
		config_free(&next);
		return;
	}
	if (next.config_path != NULL) {
		config_reload_apply(d->cfg, &next, log_changed_key,
		    d->cfg->config_path);
		if (log_level_parse(d->cfg->log_level, &lvl) == 0)
			log_set_level(lvl);
		log_use_syslog(d->cfg->log_syslog);
		if (!d->cfg->log_syslog)
			log_detect_journal();
		log_info("SIGHUP: %s reloaded", d->cfg->config_path);
	}
	config_free(&next);
	broker_reload_tls(d->broker);
	if (broker_set_access(d->broker, pw, acl) != 0)
		log_error("SIGHUP: out of memory reloading the password file "
		    "and ACL, keeping the current ones");
	else if (pw != NULL || acl != NULL)
		log_info("SIGHUP: reloaded%s%s%s%s", pw != NULL ? " " : "",
		    pw != NULL ? d->cfg->password_file : "",
		    acl != NULL ? " " : "",
		    acl != NULL ? d->cfg->acl_file : "");
	if (set == NULL && broker_rules(d->broker) == NULL)
		return;		/* the built-in rule, as before */
	if (set == NULL && (set = rules_default()) == NULL) {
		log_error("SIGHUP: out of memory, rules not reloaded");
		return;
	}
	if (broker_reload_rules(d->broker, set) != 0)
		log_error("SIGHUP: store busy, rules not reloaded");
	else if (delivery_apply_rules(d->delivery, set) != 0)
		log_error("SIGHUP: webhook and bridge routes not updated");
	rule_set_unref(&set);
}

/* Every STATUS_INTERVAL_MS: the store's wear figures. */
static void
status_cb(struct ev_loop *loop, void *arg)
{
	struct daemon *d = arg;

	store_log_status(d->store, "status");
	(void)ev_timer_set(loop, &d->status, clock_mono_ms() +
	    STATUS_INTERVAL_MS, status_cb, d);
}

static void
signal_cb(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			notify_reloading(d->notify);
			reload(d);
			notify_ready(d->notify, "ready");
			continue;
		}
		log_info("%s from pid %u received: shutting down",
		    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
		    (unsigned)si.ssi_pid);
		d->stop_signal = (int)si.ssi_signo;
		ev_stop(loop);
	}
}

static int
setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The metrics endpoint on the loop, reading broker, store and delivery. */
static int
start_metrics(struct daemon *d, const struct gw_config *cfg)
{
	struct gw_error err;
	const char *addr = cfg->metrics_bind;
	int v6 = strchr(addr, ':') != NULL;

	const struct metrics_pages pages = { metrics_render, metrics_health,
	    metrics_errors, &d->msrc };

	memset(&err, 0, sizeof err);
	d->metrics = metrics_start(d->loop, addr, cfg->metrics_port, &pages,
	    &err);
	if (d->metrics == NULL) {
		log_error("metrics: %s", err.msg);
		return -1;
	}
	log_info("metrics on http://%s%s%s:%d/metrics", v6 ? "[" : "", addr,
	    v6 ? "]" : "", metrics_port(d->metrics));
	return 0;
}

static int
start(struct daemon *d, struct gw_config *cfg)
{
	struct store_opts so;
	struct gw_error err;
	struct tls_ctx *tls;
	size_t i;
	int port;

	memset(&so, 0, sizeof so);
	so.path = cfg->db_path;
	so.durability = cfg->durability_full ? STORE_DURABILITY_FULL :
	    STORE_DURABILITY_NORMAL;
	so.commit_max_items = cfg->commit_max_items;
	so.commit_max_ms = cfg->commit_max_ms;
	so.qos0_commit_ms = cfg->qos0_commit_ms;
	so.ack_window_ms = cfg->ack_window_ms;
	so.page_size = (unsigned)cfg->db_page_size;
	so.queue_cap = cfg->store_queue_items;
	so.queue_bytes = cfg->store_queue_bytes;
	so.max_bytes = cfg->db_max_bytes;
	so.max_age_ms = cfg->db_retention_max_age_ms;
	so.on_corrupt_refuse = cfg->db_on_corrupt_refuse;
	memset(&err, 0, sizeof err);
	if ((d->store = store_open(&so, &err)) == NULL) {
		log_error("cannot open database %s: %s", cfg->db_path,
		    err.msg);
		return -1;
	}
	if ((d->loop = ev_new()) == NULL ||
	    (d->broker = broker_new(d->loop, cfg, d->store)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (broker_set_access(d->broker, d->pw, d->acl) != 0) {
		d->pw = NULL;
		d->acl = NULL;
		log_error("out of memory");
		return -1;
	}
	d->pw = NULL;
	d->acl = NULL;
	if (broker_load_state(d->broker) != 0) {
		log_error("cannot load broker state from %s", cfg->db_path);
		return -1;
	}
	if (d->rules != NULL) {
		if (store_prepare_rules(d->store, d->rules, &err) != 0) {
			log_error("rules: %s%s%s", err.path,
			    err.path[0] != '\0' ? ": " : "", err.msg);
			return -1;
		}
		if (broker_set_rules(d->broker, d->rules) != 0)
			return -1;
		log_info("%zu rules loaded from %s; a publish no rule matches "
		    "is %s", rule_set_count(d->rules),
		    rule_set_origin(d->rules),
		    rule_set_unmatched(d->rules) == RULES_UNMATCHED_MESSAGES ?
		    "stored in messages (\"unmatched\": \"messages\")" :
		    "dropped (\"unmatched\": \"drop\")");
	}
	if ((d->delivery = delivery_new(d->store, cfg)) == NULL ||
	    delivery_apply_rules(d->delivery, d->rules) != 0) {
		log_error("cannot set up webhook and bridge delivery");
		return -1;
	}
	for (i = 0; i < cfg->nlisteners; i++) {
		tls = NULL;
		if (cfg->listeners[i].tls &&
		    (tls = tls_ctx_new(&cfg->listeners[i], i, &err)) == NULL) {
			log_error("%s: %s", err.path, err.msg);
			return -1;
		}
		port = broker_listen(d->broker, cfg->listeners[i].bind,
		    cfg->listeners[i].port, tls, &err);
		if (port < 0) {
			log_error("%s", err.msg);
			return -1;
		}
		if (cfg->listeners[i].websocket &&
		    broker_listen_websocket(d->broker,
		    cfg->listeners[i].websocket_path) != 0) {
			log_error("out of memory");
			return -1;
		}
		log_info("listening on %s:%d%s%s%s", cfg->listeners[i].bind,
		    port, tls != NULL ? " (TLS)" : "",
		    cfg->listeners[i].websocket ? " WebSocket " : "",
		    cfg->listeners[i].websocket ?
		    cfg->listeners[i].websocket_path : "");
	}
	if (cfg->nsources > 0 && (d->sources = sources_new(d->loop,
	    d->broker, d->store, cfg)) == NULL) {
		log_error("cannot set up the sources");
		return -1;
	}
	d->msrc.broker = d->broker;
	d->msrc.store = d->store;
	d->msrc.delivery = d->delivery;
	d->msrc.sources = d->sources;
	d->msrc.max_bytes = cfg->db_max_bytes;
	if (cfg->metrics_enabled && start_metrics(d, cfg) != 0)
		return -1;
	if (cfg->sys_interval_ms > 0 && (d->sys = sys_start(d->loop, &d->msrc,
	    cfg->sys_interval_ms)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (store_start(d->store) != 0 ||
	    broker_attach_store(d->broker) != 0) {
		log_error("cannot start the store thread");
		return -1;
	}
	sources_start(d->sources);
	if (ev_add_fd(d->loop, d->sigfd, EV_READ, signal_cb, d) != 0)
		return -1;
	if (ev_timer_set(d->loop, &d->status, clock_mono_ms() +
	    STATUS_INTERVAL_MS, status_cb, d) != 0)
		return -1;
	log_info("mqlite %s ready, database %s", PACKAGE_VERSION, cfg->db_path);
	if (devtime_clock_behind(clock_wall_ms(), devtime_build_ms()))
		log_warn("the system clock is before this build's date: "
		    "received_ms will be wrong until the clock is set (no "
		    "battery-backed clock and no NTP yet?)");
	return 0;
}

/* Ends the process if stopping outlives shutdown_timeout (arg: ms). */
static void *
shutdown_watchdog(void *arg)
{
	unsigned ms = (unsigned)(uintptr_t)arg;
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1)
		;
	log_error("still stopping after shutdown_timeout (%u ms): exiting "
	    "now; what was not committed was not acknowledged", ms);
	_exit(1);
	return NULL;
}

/*
 * Bounds the rest of stop() by shutdown_timeout: the store gives up on a
 * failing batch a second before it, the watchdog ends the process at it.
 */
static void
bound_shutdown(struct daemon *d)
{
	unsigned ms = d->cfg->shutdown_timeout_ms;
	pthread_t t;

	if (ms == 0)
		return;
	if (pthread_create(&t, NULL, shutdown_watchdog,
	    (void *)(uintptr_t)ms) == 0)
		pthread_detach(t);
	if (d->store != NULL)
		store_set_shutdown_timeout(d->store, ms > 1500 ? ms - 1000 :
		    ms / 2);
}

static void
stop(struct daemon *d)
{
	uint64_t committed = UINT64_MAX;

	bound_shutdown(d);
	sys_stop(d->sys);
	d->sys = NULL;
	metrics_stop(d->metrics);
	d->metrics = NULL;
	sources_stop_intake(d->sources);
	if (d->broker != NULL)
		broker_stop_intake(d->broker);
	delivery_stop(d->delivery, d->cfg->shutdown_timeout_ms > 4000 ?
	    2000 : d->cfg->shutdown_timeout_ms / 4);
	if (d->store != NULL) {
		ev_timer_cancel(d->loop, &d->status);
		/* logs its last status line */
		store_close_committed(d->store, &committed);
	}
	delivery_free(d->delivery);
	sources_finish(d->sources);
	sources_free(d->sources);
	if (d->broker != NULL) {
		broker_finish(d->broker, committed);
		broker_free(d->broker);
	}
	ev_free(d->loop);
}

int
main(int argc, char **argv)
{
	struct gw_config cfg;
	struct daemon d;
	enum log_level lvl;
	int rc, errors = 0;

	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return passwd_cli_main(argc - 1, argv + 1);
	if (config_init(&cfg) != 0) {
		fprintf(stderr, "mqlite: out of memory\n");
		return 1;
	}
	rc = config_parse_args(&cfg, argc, argv);
	if (rc != 0) {
		config_free(&cfg);
		return rc > 0 ? 0 : 1;
	}
	if (cfg.config_path != NULL &&
	    config_load_file(&cfg, cfg.config_path, report_error,
	    &errors) != 0) {
		if (errors == 0)
			fprintf(stderr, "%s: invalid configuration\n",
			    cfg.config_path);
		config_free(&cfg);
		return 1;
	}
	config_apply_cli(&cfg);
	if (tls_check_config(&cfg, report_error, &errors) > 0) {
		config_free(&cfg);
		return 1;
	}
	memset(&d, 0, sizeof d);
	d.cfg = &cfg;
	d.msrc.start_ms = clock_wall_ms();
	/* Fail closed: a broken password or ACL file stops the start. */
	if (auth_load_files(&cfg, &d.pw, &d.acl, report_error, &errors) !=
	    0) {
		config_free(&cfg);
		return 1;
	}
	if (load_rules(&cfg, report_error, &errors, &d.rules) != 0) {
		if (errors == 0)
			fprintf(stderr, "mqlite: cannot load the rules\n");
		passwd_free(d.pw);
		acl_free(d.acl);
		config_free(&cfg);
		return 1;
	}
	if (cfg.check_only && routecheck_run(d.rules, report_error,
	    &errors) > 0) {
		passwd_free(d.pw);
		acl_free(d.acl);
		rule_set_unref(&d.rules);
		config_free(&cfg);
		return 1;
	}
	if (cfg.check_only) {
		if (d.pw != NULL)
			printf("%s: %zu users OK\n", cfg.password_file,
			    passwd_count(d.pw));
		if (d.acl != NULL)
			printf("%s: ACL OK\n", cfg.acl_file);
		passwd_free(d.pw);
		acl_free(d.acl);
		if (cfg.verbose > 0)
			config_dump(&cfg, stdout);
		printf("%s: configuration OK\n",
		    cfg.config_path ? cfg.config_path : "(defaults)");
		if (d.rules != NULL) {
			printf("%s: %zu rules OK\n", rule_set_origin(d.rules),
			    rule_set_count(d.rules));
			rule_set_unref(&d.rules);
		}
		config_free(&cfg);
		return 0;
	}
	if (log_level_parse(cfg.log_level, &lvl) == 0)
		log_set_level(lvl);
	if (cfg.verbose > 0)
		log_set_level(LOG_LVL_DEBUG);
	if (cfg.log_syslog)
		log_use_syslog(1);
	else
		log_detect_journal();

	if ((d.sigfd = setup_signals()) == -1) {
		log_error("cannot set up signal handling");
		return 1;
	}
	if (start(&d, &cfg) != 0) {
		passwd_free(d.pw);
		acl_free(d.acl);
		stop(&d);
		if (d.rules != NULL)
			rule_set_unref(&d.rules);
		curl_global_cleanup();
		config_free(&cfg);
		return 1;
	}
	d.notify = notify_new(d.loop);
	notify_ready(d.notify, "ready");
	rc = ev_run(d.loop);
	if (rc != 0)
		log_error("event loop failed: %s", gw_strerror(rc));
	notify_stopping(d.notify);
	notify_free(d.notify);
	stop(&d);
	if (d.rules != NULL)
		rule_set_unref(&d.rules);
	close(d.sigfd);
	curl_global_cleanup();
	config_free(&cfg);
	log_info("stopped");
	return rc == 0 ? 0 : 1;
}
