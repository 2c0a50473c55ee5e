/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rules engine: a JSON rules file compiled into an immutable,
 * reference-counted rule set, matched against topics on the loop thread and
 * evaluated (filters, payload extraction, templates) on the store thread.
 * The rule language is documented in rules/README.md and
 * rules/mqlite-rules.schema.json; this header is the contract for the code
 * that uses it.
 *
 * Life cycle and threads:
 *
 *   loop thread (load / reload)        set = rules_load_file(...)  [or
 *                                      rules_load_json, rules_default]
 *   store thread (before the swap)     for each rule with rule_sqlite():
 *                                      create table / add columns / prepare
 *   loop thread, per publish           n = rules_match(set, topic, len, ids)
 *                                      enqueue (msg_ref(m), rule_set_ref(set),
 *                                      ids[0..n)) to the store thread
 *   store thread, per queued publish   rule_payload_init(&pc, m);
 *                                      for each id: r = rule_set_rule(set, id)
 *                                        if (rule_filter(r, m, &pc) != 1)
 *                                          continue;
 *                                        rule_sqlite_values(r, m, &pc, vals)
 *                                        -> bind vals[i] to column i, step;
 *                                        rule_count(r, RULE_CWRITTEN or
 *                                          RULE_CREJECTED, 1)
 *                                        rule_render_webhook / _mqtt
 *                                        -> outbox
 *                                        (an action with a foreach: the
 *                                        same, once per element, between
 *                                        rule_items_begin and _end)
 *                                      rule_payload_clear(&pc);
 *                                      rule_set_unref(&set); msg_unref(&m);
 *
 * A rule set never changes after loading, so any thread may read it; the
 * reference count and the per-rule counters are atomic. SIGHUP loads a new
 * set and swaps the pointer; publishes already queued keep (and finally
 * release) the set that matched them.
 *
 * Nothing here touches SQLite, the network or the log. Errors are negative
 * GW_E* codes (err.h); load errors go to a report callback, one per
 * problem, as (file, JSON path, reason).
 */
#ifndef GW_RULES_H
#define GW_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/msg.h"
#include "err.h"
#include "rules/value.h"

struct rule_set;
struct rule;
struct rule_tmpl;
struct rule_body;

/* Limits (documented in rules/README.md). */
#define RULES_MAX_FILE		(4 * 1024 * 1024)	/* rules file bytes */
#define RULES_MAX_RULES		100000			/* rules per set */
#define RULES_MAX_COLUMNS	1000			/* per sqlite action */
#define RULES_MAX_WHERE_DEPTH	32		/* all/any/not nesting */
#define RULES_MAX_JSON_DEPTH	128	/* payload nesting parsed */
#define RULES_IDENT_MAX		64	/* table, column, capture names */

/*
 * Reports one load problem: file is the origin given to the loader, e->path
 * the JSON path inside it ("rules[2].sqlite.columns.temp", "" for the whole
 * file) and e->msg the reason. Same shape as config_report_fn, so --check
 * can pass the same printer to both. Never receives a secret's value.
 */
typedef void (*rules_report_fn)(const char *file, const struct gw_error *e,
		    void *ctx);

/* ---- Loading (load.c). Any thread; usually the loop thread. ---- */

/*
 * Reads, validates and compiles the rules file at path. Every problem is
 * reported through report (may be NULL), not just the first. Returns a new
 * rule set with one reference, or NULL with *rc (may be NULL) set to
 * GW_ECONFIG (something was reported) or GW_ENOMEM. Relative file names
 * inside actions (tls files) resolve against path's folder. ${NAME}
 * references are expanded from the environment now.
 */
struct rule_set	*rules_load_file(const char *path, rules_report_fn report,
		    void *ctx, int *rc);

/*
 * Same for rules given as JSON text (len bytes, need not be
 * NUL-terminated): either {"rules": [...]} or a bare array [...] (the
 * config's inline "rules"). origin names the text in reports ("config.json"
 * for inline rules) and base_dir (may be NULL = cwd) is the folder for
 * relative file names. Borrows everything.
 */
struct rule_set	*rules_load_json(const char *text, size_t len,
		    const char *origin, const char *base_dir,
		    rules_report_fn report, void *ctx, int *rc);

/*
 * Returns a new set holding only the built-in default rule (name "default",
 * topic "#", every non-$ publish into table messages with received_ms,
 * topic, client_id, qos, retain and payload = {payload_raw}), exactly what
 * rules/default.json loads to. NULL on ENOMEM.
 */
struct rule_set	*rules_default(void);

/* What becomes of a publish no rule's topic pattern matched. */
enum rules_unmatched {
	RULES_UNMATCHED_UNSET = 0,	/* not given: the default, drop */
	RULES_UNMATCHED_DROP,		/* "drop": counted and logged */
	RULES_UNMATCHED_MESSAGES,	/* "messages": the default rule's row */
};

/* Parses "drop" or "messages"; returns the mode or -1. */
int		 rules_unmatched_parse(const char *s);

/* The set's "unmatched" mode (DROP when unset; NULL set: DROP). */
enum rules_unmatched rule_set_unmatched(const struct rule_set *set);

/*
 * Sets the mode of a set whose file did not give "unmatched" (the config's
 * key beside inline rules). Only before the set is shared.
 */
void		 rule_set_default_unmatched(struct rule_set *set,
		    enum rules_unmatched mode);

/* Takes another reference; returns set. Any thread. */
struct rule_set	*rule_set_ref(struct rule_set *set);

/* Drops the reference in *setp, sets it to NULL, frees the set at zero. */
void		 rule_set_unref(struct rule_set **setp);

/* Number of rules (file order; ids are 0..count-1). */
size_t		 rule_set_count(const struct rule_set *set);

/* Rule id i (< count), borrowed from the set. */
const struct rule *rule_set_rule(const struct rule_set *set, size_t i);

/* The origin given at load ("rules.json", "<default>"). */
const char	*rule_set_origin(const struct rule_set *set);

/* ---- Matching (match.c). Loop thread; no allocation. ---- */

/*
 * Writes the ids of every rule whose topic pattern matches topic name
 * (len bytes, valid, no wildcards) into ids, ascending (file order), and
 * returns how many. Each rule matches at most once, so cap >=
 * rule_set_count(set) always suffices; with a smaller cap the return value
 * may exceed cap and ids then holds an unspecified subset. '$' topics only
 * match patterns whose first level is a literal starting with '$'.
 */
size_t		 rules_match(const struct rule_set *set, const char *topic,
		    size_t len, uint32_t *ids, size_t cap);

/*
 * Copies the text of capture k (0-based, pattern order) of rule r out of
 * topic (which r matched) as a borrowed pointer into topic: *p, *len.
 * Returns 0, or GW_ENOTFOUND when r has no capture k.
 */
int		 rule_capture(const struct rule *r, size_t k, const char *topic,
		    size_t topic_len, const char **p, size_t *len);

/* ---- One rule: identity and counters. ---- */

/* Rule name (unique in its set), file position, topic pattern as written. */
const char	*rule_name(const struct rule *r);
size_t		 rule_id(const struct rule *r);
const char	*rule_topic(const struct rule *r);

/* Capture count and names ("site" for "{site}"), pattern order. */
size_t		 rule_ncaptures(const struct rule *r);
const char	*rule_capture_name(const struct rule *r, size_t k);

/* True when the rule has a where filter. */
bool		 rule_has_where(const struct rule *r);

enum rule_counter {
	RULE_CMATCHED = 0, /* publishes whose topic matched (rule_filter) */
	RULE_CFILTERED,		/* of those, dropped by where */
	RULE_CWRITTEN,		/* rows inserted (the sqlite sink counts) */
	RULE_CREJECTED,		/* rows that went to `rejected` (sink) */
	RULE_CITEMS_FILTERED,	/* foreach elements dropped by where */
	RULE_CITEMS_MISSING,	/* foreach array missing or null */
	RULE_CITEMS_OVER,	/* foreach array over max_items */
	RULE_CXFORM_NULL,	/* transforms that gave NULL on bad input */
	RULE_CTIME_INVALID,	/* |time values it could not read */
	RULE_CTIME_SKEW,	/* publishes beyond max_time_skew */
	RULE_NCOUNTERS
};

/* Adds n to counter c of r (relaxed atomic; any thread). */
void		 rule_count(const struct rule *r, enum rule_counter c,
		    uint64_t n);
/* Reads counter c of r (relaxed atomic; any thread). */
uint64_t	 rule_counter(const struct rule *r, enum rule_counter c);

/* ---- Evaluation (store thread). ---- */

/*
 * The per-publish payload cache: the payload is parsed as JSON at most once,
 * on the first placeholder that needs it, and remembered as "not JSON" when
 * it does not parse. Stack-allocate it, rule_payload_init() it with the
 * message, evaluate any number of rules against that same message, then
 * rule_payload_clear() it. Values borrowed from it (strings without escapes)
 * point into the message payload. Fields are private.
 */
struct rule_payload {
	const struct msg	*m;	/* borrowed message */
	void			*doc;	/* parsed document, or NULL */
	int			 state;	/* 0 unparsed, 1 JSON, -1 not JSON */
	int64_t			 item;	/* foreach element's node, -1 none */
	uint32_t		 item_index;	/* its position, from 0 */
};

/* Prepares pc for message m (borrowed; must outlive pc's use). */
void		 rule_payload_init(struct rule_payload *pc,
		    const struct msg *m);
/* Frees what pc holds; pc may be initialised again. */
void		 rule_payload_clear(struct rule_payload *pc);

/*
 * Evaluates r's where filter for message m (r's pattern must match
 * m->topic). Counts RULE_CMATCHED, and RULE_CFILTERED when it fails;
 * when the rule fires and has max_time_skew, RULE_CTIME_SKEW when its
 * device time is beyond it.
 * Returns 1 when the rule fires (no filter, or the filter passes), 0 when
 * filtered out, GW_ENOMEM. Call once per (rule, publish), before the
 * actions. A where that tests {item...} is left to rule_item_filter():
 * the publish passes here.
 */
int		 rule_filter(const struct rule *r, const struct msg *m,
		    struct rule_payload *pc);

/* Evaluates one compiled template to a typed value (see rules/README.md:
 * one placeholder keeps its type, anything else is TEXT). out must be
 * cleared by the caller. Returns 0 or GW_ENOMEM. */
int		 rule_tmpl_eval(const struct rule_tmpl *t, const struct rule *r,
		    const struct msg *m, struct rule_payload *pc,
		    struct rule_value *out);

/* ---- One row per array element (foreach.c). ---- */

#define RULES_MAX_ITEMS_DEFAULT	1000	/* foreach max_items */
#define RULES_MAX_ITEMS_LIMIT	100000	/* highest max_items accepted */

/* The actions of a rule, in the order they run. */
enum rule_action {
	RULE_ASQLITE = 0,
	RULE_AWEBHOOK,
	RULE_AMQTT,
	RULE_NACTIONS
};

/*
 * Iterates the elements of one action's "foreach" array for one publish:
 *
 *	n = rule_items_begin(r, a, &pc, &it, why, sizeof why);
 *	while (n >= 0 && rule_items_next(&it, &pc))
 *		if (rule_item_filter(r, m, &pc) == 1)
 *			run the action (templates see {item...})
 *	rule_items_end(&it, &pc);
 *
 * Fields are private.
 */
struct rule_items {
	uint32_t	 node;		/* next element's node */
	uint32_t	 left;		/* elements not yet visited */
	uint32_t	 index;		/* next element's position */
};

/* True when action a of r has a "foreach". */
bool		 rule_has_foreach(const struct rule *r, enum rule_action a);

/*
 * Finds the foreach array of action a of r in pc's payload and prepares it
 * for rule_items_next(). Returns the element count (0 for an empty array),
 * or, with nothing to iterate: GW_ENOTFOUND when the array is missing or
 * null (counted in RULE_CITEMS_MISSING), GW_EMALFORMED when it is not an
 * array (an object, a scalar, a payload that is not JSON), GW_ETOOBIG when
 * it holds more than max_items elements (counted in RULE_CITEMS_OVER);
 * these two write the reason into why (whylen bytes). GW_ENOMEM.
 */
int		 rule_items_begin(const struct rule *r, enum rule_action a,
		    struct rule_payload *pc, struct rule_items *it,
		    char *why, size_t whylen);

/*
 * Makes the next element pc's current item ({item...}, {item_index});
 * returns true, or false (and no current item) after the last one.
 */
bool		 rule_items_next(struct rule_items *it,
		    struct rule_payload *pc);

/* Leaves the iteration: pc has no current item any more. */
void		 rule_items_end(struct rule_items *it, struct rule_payload *pc);

/*
 * Evaluates r's where for pc's current item when it tests {item...}
 * (rule_filter() let such a publish through). Returns 1 to keep the
 * element, 0 to skip it (counted in RULE_CITEMS_FILTERED), GW_ENOMEM.
 */
int		 rule_item_filter(const struct rule *r, const struct msg *m,
		    struct rule_payload *pc);

/* The current item's position, or -1 outside a foreach. */
int64_t		 rule_payload_item_index(const struct rule_payload *pc);

/* ---- The sqlite action. ---- */

struct rule_column {
	char			*name;	/* identifier, unique (no case) */
	const char		*decl;	/* "INTEGER", "REAL", "TEXT", "BLOB",
					 * "NUMERIC" or "" (no affinity) */
	bool			 declared; /* decl came from "types" */
	struct rule_tmpl	*tmpl;	/* the value template */
};

struct rule_index {
	char			*name;	/* "<table>_<col>[_<col>...]_idx" */
	char			**cols;	/* column names, in index order */
	size_t			 ncols;
};

/* A rollup's aggregate functions (rules/README.md, "rollups"). */
enum rule_agg {
	RULE_AGG_AVG,
	RULE_AGG_MIN,
	RULE_AGG_MAX,
	RULE_AGG_SUM,
	RULE_AGG_COUNT,		/* count(*) when src is NULL */
	RULE_AGG_FIRST,		/* value of the earliest row by time */
	RULE_AGG_LAST,		/* value of the latest row by time */
};

/* One column of a rollup table: name = agg(src). */
struct rule_rollup_col {
	char			*name;	/* identifier, unique in the rollup */
	enum rule_agg		 agg;
	const char		*src;	/* raw column (points into the
					 * action's cols), NULL: count(*) */
	const char		*decl;	/* declared type, "" = none */
};

/*
 * A rollup of a rule table: every every_ms, the closed window
 * [t, t + every_ms) of the raw table (by time_column) aggregated into
 * table, one row per group_by value combination (store/rollup.h).
 */
struct rule_rollup {
	char			*table;	/* identifier, not reserved, not a
					 * rule table, unique */
	uint64_t		 every_ms;
	uint64_t		 grace_ms;	/* wait after a window closes */
	uint64_t		 max_age_ms;	/* retention.max_age, 0: keep */
	const char		*time_column;	/* raw column (into cols) */
	const struct rule_column **group_by;	/* raw columns (into cols) */
	size_t			 ngroup;
	struct rule_rollup_col	*cols;
	size_t			 ncols;	/* >= 1 */
};

/* The window start column of every rollup table (Unix ms, INTEGER). */
#define RULES_ROLLUP_WINDOW	"window_start"
#define RULES_MAX_ROLLUPS	16	/* per sqlite action */

struct rule_sqlite {
	char			*table;	/* identifier, not reserved */
	struct rule_column	*cols;	/* file order */
	size_t			 ncols;	/* >= 1 */
	struct rule_index	*idx;	/* "indexes" */
	size_t			 nidx;
	uint64_t		 max_age_ms; /* retention.max_age, 0 = keep */
	const char		*time_column; /* retention.time_column or NULL
					       * (points into cols) */
	struct rule_rollup	*rollups;	/* "rollups" */
	size_t			 nrollups;
};

/* The rule's sqlite action, or NULL. Borrowed from the set. */
const struct rule_sqlite *rule_sqlite(const struct rule *r);

/*
 * Declared type of column i of r's sqlite action for CREATE TABLE / ALTER
 * TABLE: the "types" entry if given, else inferred: "INTEGER" for {qos},
 * {retain}, {received_ms}; "TEXT" for captures, {topic}, {client_id},
 * {username}, {source} and any text template; "" (no type, so values keep
 * their own storage class) for payload placeholders; for a placeholder
 * with transforms the type its last one always gives (INTEGER for |time
 * and {time_skew_ms}), else "". NULL when r has no
 * sqlite action or i is out of range.
 */
const char	*rule_column_decl_type(const struct rule *r, size_t i);

/*
 * Expands ${NAME} (environment) and $$ in a plain setting string, as rules
 * do; also used for the secrets of config "sources". Returns 0 with a new
 * string in *out and *secret set when an environment value went in,
 * GW_ECONFIG (err->msg filled) or GW_ENOMEM.
 */
int		 tmpl_expand_env(const char *text, char **out, bool *secret,
		    struct gw_error *err);

/*
 * Evaluates every column template of r for message m into out[0..ncols)
 * (same order as rule_sqlite(r)->cols), which must be cleared by the caller
 * with rule_value_clear() after binding, whatever this returns. Does not
 * apply the where filter (call rule_filter first). Returns 0 or GW_ENOMEM.
 */
int		 rule_sqlite_values(const struct rule *r, const struct msg *m,
		    struct rule_payload *pc, struct rule_value *out);

/* ---- Strings that may hold secrets. ---- */

/*
 * A setting string from the rules file. secret is set when any part of it
 * came from a ${NAME} expansion: never log it or store it.
 */
struct rule_str {
	char	*s;			/* NUL-terminated, or NULL if unset */
	bool	 secret;		/* contains an environment value */
};

/*
 * A rendered string (url, header value, body, topic). When sealed is false,
 * text is the final value. When sealed is true the template contained an
 * environment value: text then holds ${NAME} where that value goes and
 * every other '$' doubled, so it can be stored without the secret;
 * rules_unseal() turns it into the final value at send time.
 */
struct rule_rendered {
	char	*text;			/* NUL-terminated, owned */
	size_t	 len;			/* bytes in text */
	bool	 sealed;		/* see above */
};

/*
 * Turns sealed text (in_len bytes) into the final value: "$$" -> "$",
 * "${NAME}" -> getenv(NAME). Returns a new NUL-terminated string in *out
 * (length in *out_len, may be NULL), 0, GW_ENOTFOUND when a variable is
 * no longer set, GW_ENOMEM. Any thread.
 */
int		 rules_unseal(const char *in, size_t in_len, char **out,
		    size_t *out_len);

/* ---- The webhook action (settings for the delivery thread). ---- */

enum rule_batch_format {
	RULE_BATCH_ARRAY = 0,	/* one JSON array of bodies */
	RULE_BATCH_NDJSON,	/* bodies separated by '\n' */
};

struct rule_header {
	char			*name;	/* header name (RFC 7230 token) */
	struct rule_tmpl	*value;	/* value template */
};

struct rule_webhook {
	struct rule_tmpl	*url;	/* http:// or https:// template */
	const char		*method; /* "POST" (default), "PUT", ... */
	struct rule_header	*headers;	/* file order */
	size_t			 nheaders;
	struct rule_body	*body;	/* private: body template, or
					 * NULL for the default envelope */
	unsigned		 timeout_ms;	/* default 10000 */
	bool			 ordered;	/* default true */
	unsigned		 max_in_flight;	/* default 8 (unordered) */
	bool			 batch;		/* a "batch" object given */
	unsigned		 batch_max_messages; /* default 100 */
	unsigned		 batch_max_delay_ms; /* default 1000 */
	enum rule_batch_format	 batch_format;	/* default array */
	unsigned		 retry_base_ms;	/* default 1000 */
	unsigned		 retry_cap_ms;	/* default 300000 */
	unsigned		 retry_max_attempts; /* 0 = unbounded */
	uint64_t		 retry_max_age_ms;   /* 0 = unbounded */
	double			 rate_limit_per_s;   /* 0 = unlimited */
	struct rule_str		 tls_ca_file;	/* resolved paths or NULL */
	struct rule_str		 tls_cert;
	struct rule_str		 tls_key;
	bool			 tls_insecure;	/* skip verification */
	struct rule_str		 hmac_secret;	/* s NULL = no signature */
};

/* The rule's webhook action, or NULL. Borrowed from the set. */
const struct rule_webhook *rule_webhook(const struct rule *r);

struct rule_http_header {
	char			*name;	/* owned copy of the header name */
	struct rule_rendered	 value;	/* rendered value */
};

/* One rendered webhook request (rule_render_webhook). */
struct rule_http {
	struct rule_rendered	 url;	/* placeholders percent-encoded */
	const char		*method;	/* borrowed from the rule */
	struct rule_http_header	*headers;
	size_t			 nheaders;
	struct rule_rendered	 body;	/* JSON (or text for a string
					 * body template) */
	const char		*invalid;	/* static reason when the
						 * request must be dead-
						 * lettered (a header value
						 * holding CR, LF or NUL),
						 * else NULL */
};

/*
 * Renders r's webhook for message m: url with interpolated values
 * percent-encoded, every header, and the body: the body template, or the
 * default envelope {"topic","payload","received_ms","client_id",
 * "username","qos","retain"} with payload embedded as JSON when it is JSON,
 * else as a string, or base64 with "payload_encoding":"base64" when it is
 * not UTF-8. Fills *out (free with rule_http_free, also on failure).
 * Returns 0, GW_ENOTFOUND (no webhook action) or GW_ENOMEM.
 */
int		 rule_render_webhook(const struct rule *r, const struct msg *m,
		    struct rule_payload *pc, struct rule_http *out);

/* Frees what out owns; accepts a zeroed or partly filled struct. */
void		 rule_http_free(struct rule_http *out);

/* ---- The mqtt (bridge) action. ---- */

/* Where one url of an mqtt action points, parsed once at load. */
struct rule_mqtt_host {
	char			*host;	/* IPv6 without brackets; NULL if
					 * the url names none */
	int			 port;	/* 1883, 8883 for ssl:// and mqtts://
					 * when the url gives none */
};

struct rule_mqtt {
	struct rule_str		*urls;	/* "url" then "urls": tcp://,
					 * ssl://, mqtt://, mqtts://, ws://,
					 * wss://, tried in turn */
	size_t			 nurls;	/* >= 1 */
	struct rule_mqtt_host	*hosts;	/* nurls: each url's broker */
	struct rule_tmpl	*topic;	/* default "{topic}" */
	struct rule_tmpl	*payload;	/* NULL: the raw payload */
	uint8_t			 qos;	/* default 0 */
	bool			 retain;	/* default false */
	struct rule_str		 client_id;	/* NULL = generated */
	struct rule_str		 username;
	struct rule_str		 password;
	struct rule_str		 tls_ca_file;	/* NULL: system store */
	struct rule_str		 tls_cert;	/* client certificate */
	struct rule_str		 tls_key;	/* its key */
	bool			 tls_insecure;	/* no peer verification */
	unsigned		 keepalive;	/* seconds, default 60 */
	unsigned		 max_in_flight;	/* default 32 */
	uint8_t			 mqtt_version;	/* 4 (3.1.1, default)
						 * or 5 upstream */
};

/* The rule's mqtt action, or NULL. Borrowed from the set. */
const struct rule_mqtt *rule_mqtt(const struct rule *r);

/*
 * Renders the upstream topic of r's mqtt action for m into *topic (free
 * the text with gw_free). Returns 0,
 * GW_EMALFORMED when the rendered topic is not a valid topic name (empty,
 * '+' or '#', not UTF-8: the caller dead-letters it), GW_ENOTFOUND (no mqtt
 * action) or GW_ENOMEM.
 */
int		 rule_render_mqtt_topic(const struct rule *r,
		    const struct msg *m, struct rule_payload *pc,
		    struct rule_rendered *topic);

/*
 * Renders the topic and the payload of r's mqtt action: the payload
 * template (sealed like a webhook body when it holds a secret), else a
 * copy of m's raw bytes. Fills both (free the texts with gw_free, also on
 * failure); returns as rule_render_mqtt_topic().
 */
int		 rule_render_mqtt(const struct rule *r, const struct msg *m,
		    struct rule_payload *pc, struct rule_rendered *topic,
		    struct rule_rendered *payload);

#endif
