/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading a rules file: read, parse (cJSON), validate every key and compile
 * it into an immutable rule set: topic patterns into the match trie, every
 * value into a template, filters into where trees, action settings into the
 * structs the sinks and the delivery thread read (rules.h).
 *
 * Like the config loader, this never stops at the first problem: every
 * unknown key, wrong type, bad identifier, unknown placeholder or unset
 * environment variable goes to the report callback as (file, JSON path,
 * reason) and checking goes on, so `mqlite --check` shows them all. A set
 * is returned only when nothing was reported.
 *
 * Names: rule names are required and unique. Table and column names must
 * match [A-Za-z_][A-Za-z0-9_]* (at most 64 bytes) and are compared without
 * case, as SQLite does. The gateway's own tables are reserved, except
 * `messages`, which a rule may fill as long as it only uses the columns of
 * the default table (received_ms, topic, client_id, qos, retain, payload;
 * the NOT NULL ones required) with their types: that is how
 * rules/default.json writes the same rows as the built-in default rule.
 * Two rules writing the same column of one table must agree on its type.
 *
 * The set's reference count is atomic: it is loaded on the loop thread
 * and released by whichever thread drops the last queued publish.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/subs.h"
#include "broker/topic.h"
#include "rules/rules_int.h"
#include "units.h"

static const char *const reserved[] = {
	"outbox", "outbox_dead", "rejected", "retained", "sessions",
	"session_msgs", "qos2_inflight", "mqlite_meta", "mqlite_rollup_state",
	NULL
};

/* The default table's columns (schema/001_init.sql) and their types. */
static const struct {
	const char	*name;
	const char	*decl;
	bool		 required;
} messages_cols[] = {
	{ "received_ms", "INTEGER", true },
	{ "topic", "TEXT", true },
	{ "client_id", "TEXT", false },
	{ "qos", "INTEGER", true },
	{ "retain", "INTEGER", true },
	{ "payload", "", false },
};
#define NMESSAGES_COLS	(sizeof messages_cols / sizeof messages_cols[0])

/* Reports one problem (path, printf reason) and counts it. */
void
load_err(struct loader *ld, const char *path, const char *fmt, ...)
{
	struct gw_error	e;
	va_list		ap;

	snprintf(e.path, sizeof e.path, "%s", path);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	ld->nerrors++;
	if (ld->report != NULL)
		ld->report(ld->file, &e, ld->ctx);
}

/* Reports an allocation failure once; loading then stops. */
void
load_oom(struct loader *ld, const char *path)
{
	if (!ld->oom)
		load_err(ld, path, "out of memory");
	ld->oom = 1;
}

/* where.c reports through this. */
static void
where_report(void *ctx, const char *path, const char *msg)
{
	load_err(ctx, path, "%s", msg);
}

/* Formats a JSON path into buf (PATH_LEN bytes; long paths truncate). */
void
load_pathf(char *buf, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_LEN, fmt, ap);
	va_end(ap);
}

/* Writes base.key (or key at the root) into buf (PATH_LEN bytes). */
void
load_path(char *buf, const char *base, const char *key)
{
	if (base[0] == '\0')
		load_pathf(buf, "%s", key);
	else
		load_pathf(buf, "%s.%s", base, key);
}

/*
 * Reports unknown and duplicate keys of obj (allowed is NULL-terminated).
 * Returns false when obj is not an object (reported).
 */
bool
load_keys(struct loader *ld, const cJSON *obj, const char *path,
    const char *const *allowed)
{
	const cJSON	*it, *prev;
	char		 p[PATH_LEN];
	size_t		 i;

	if (!cJSON_IsObject(obj)) {
		load_err(ld, path, "expected an object, got %s",
		    jsonfile_type_name(obj));
		return false;
	}
	cJSON_ArrayForEach(it, obj) {
		load_path(p, path, it->string);
		for (prev = obj->child; prev != it; prev = prev->next) {
			if (strcmp(prev->string, it->string) == 0)
				break;
		}
		if (prev != it) {
			load_err(ld, p, "duplicate key");
			continue;
		}
		for (i = 0; allowed[i] != NULL; i++) {
			if (strcmp(allowed[i], it->string) == 0)
				break;
		}
		if (allowed[i] == NULL)
			load_err(ld, p, "unknown key");
	}
	return true;
}

/* Member key of obj (case-sensitive), or NULL. */
const cJSON *
load_item(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static bool
is_ident_n(const char *s, size_t n)
{
	size_t	i;

	if (n == 0 || n > RULES_IDENT_MAX ||
	    !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	}
	return true;
}

static bool
is_ident(const char *s)
{
	return is_ident_n(s, strlen(s));
}

/* A table or column name the loader accepts? (rollup_load.c) */
bool
load_is_ident(const char *s)
{
	return is_ident(s);
}

/* A gateway table name (reserved[], sqlite_*)? Ignores case. */
bool
load_is_reserved(const char *s)
{
	size_t	i;

	for (i = 0; reserved[i] != NULL; i++) {
		if (strcasecmp(s, reserved[i]) == 0)
			return true;
	}
	return strncasecmp(s, "sqlite_", 7) == 0;
}

/*
 * Reads a setting string (with ${NAME} expansion) into *out. Missing: an
 * error when required, else out stays unset. Returns true when set.
 */
bool
load_str(struct loader *ld, const cJSON *obj, const char *key,
    const char *path, bool required, struct rule_str *out)
{
	struct gw_error	 e;
	const cJSON	*j = load_item(obj, key);
	char		 p[PATH_LEN];
	int		 rc;

	load_path(p, path, key);
	if (j == NULL) {
		if (required)
			load_err(ld, path, "missing \"%s\"", key);
		return false;
	}
	if (!cJSON_IsString(j)) {
		load_err(ld, p, "expected a string, got %s", jsonfile_type_name(j));
		return false;
	}
	rc = tmpl_expand_env(j->valuestring, &out->s, &out->secret, &e);
	if (rc == GW_ENOMEM)
		load_oom(ld, p);
	else if (rc != 0)
		load_err(ld, p, "%s", e.msg);
	return rc == 0;
}

/* Reads an integer in [min, max] into *out (default kept if missing). */
void
load_uint(struct loader *ld, const cJSON *obj, const char *key,
    const char *path, double min, double max, unsigned *out)
{
	const cJSON	*j = load_item(obj, key);
	char		 p[PATH_LEN];

	if (j == NULL)
		return;
	load_path(p, path, key);
	if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble))
		load_err(ld, p, "expected an integer, got %s",
		    cJSON_IsNumber(j) ? "a fraction" : jsonfile_type_name(j));
	else if (j->valuedouble < min || j->valuedouble > max)
		load_err(ld, p, "must be between %.0f and %.0f", min, max);
	else
		*out = (unsigned)j->valuedouble;
}

/* Reads a boolean into *out (default kept if missing). */
void
load_bool(struct loader *ld, const cJSON *obj, const char *key,
    const char *path, bool *out)
{
	const cJSON	*j = load_item(obj, key);
	char		 p[PATH_LEN];

	if (j == NULL)
		return;
	load_path(p, path, key);
	if (!cJSON_IsBool(j))
		load_err(ld, p, "expected true or false, got %s",
		    jsonfile_type_name(j));
	else
		*out = cJSON_IsTrue(j);
}

/* A duration: "30d", "250ms" or an integer of milliseconds. */
bool
load_duration(struct loader *ld, const cJSON *obj, const char *key,
    const char *path, bool required, uint64_t *out)
{
	const cJSON	*j = load_item(obj, key);
	char		 p[PATH_LEN];

	load_path(p, path, key);
	if (j == NULL) {
		if (required)
			load_err(ld, path, "missing \"%s\"", key);
		return false;
	}
	if (cJSON_IsNumber(j) && j->valuedouble >= 0 &&
	    j->valuedouble == floor(j->valuedouble) && j->valuedouble < 1e18) {
		*out = (uint64_t)j->valuedouble;
		return true;
	}
	if (cJSON_IsString(j) && units_parse_duration(j->valuestring,
	    out) == 0)
		return true;
	load_err(ld, p,
	    "expected a duration such as \"30d\", \"12h\", \"250ms\" "
	    "or a number of milliseconds");
	return false;
}

/* Compiles a template value at path; NULL when reported. */
struct rule_tmpl *
load_tmpl(struct loader *ld, const cJSON *j, const char *p,
    const struct rule_caps *caps)
{
	struct rule_tmpl	*t;
	struct gw_error		 e;
	int			 rc;

	if (!cJSON_IsString(j)) {
		load_err(ld, p, "expected a template string, got %s",
		    jsonfile_type_name(j));
		return NULL;
	}
	rc = tmpl_compile(j->valuestring, caps, true, &t, &e);
	if (rc == GW_ENOMEM)
		load_oom(ld, p);
	else if (rc != 0)
		load_err(ld, p, "%s", e.msg);
	return rc == 0 ? t : NULL;
}

/* Makes a relative file name relative to the rules file's folder. */
void
load_resolve(struct loader *ld, struct rule_str *s, const char *p)
{
	char	*n;
	size_t	 dl;

	if (s->s == NULL || s->s[0] == '/' || ld->dir == NULL)
		return;
	dl = strlen(ld->dir);
	if ((n = gw_malloc(dl + strlen(s->s) + 2)) == NULL) {
		load_oom(ld, p);
		return;
	}
	snprintf(n, dl + strlen(s->s) + 2, "%s/%s", ld->dir, s->s);
	gw_free(s->s);
	s->s = n;
}

/* ---- Topic patterns. ---- */

static bool
builtin_name(const char *s, size_t n)
{
	static const char *const names[] = { "topic", "client_id", "username",
	    "source", "qos", "retain", "received_ms", "payload", "payload_raw",
	    "time_skew_ms", NULL };
	size_t	i;

	for (i = 0; names[i] != NULL; i++) {
		if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
			return true;
	}
	return false;
}

/* Compiles r->topic into r->filter and r->caps. */
static void
compile_topic(struct loader *ld, struct rule *r, const char *p)
{
	const char	*t = r->topic, *lv;
	size_t		 len = strlen(t), pos = 0, end, n, i, fl = 0;
	uint32_t	 level = 0;
	char		*f, **nn, *name;
	uint32_t	*nl;
	bool		 bad = false;

	if (len == 0 || len > TOPIC_MAX_LEN) {
		load_err(ld, p, "a topic pattern is 1 to 65535 bytes");
		return;
	}
	if ((f = r->filter = gw_malloc(len + 1)) == NULL) {
		load_oom(ld, p);
		return;
	}
	for (;;) {
		end = topic_level_end(t, len, pos);
		lv = t + pos;
		n = end - pos;
		if (n >= 2 && lv[0] == '{' && lv[n - 1] == '}') {
			if (!is_ident_n(lv + 1, n - 2)) {
				load_err(ld, p,
				    "capture %.*s: a capture name is "
				    "a letter or _ then letters, digits, _",
				    (int)n, lv);
				bad = true;
			} else if (builtin_name(lv + 1, n - 2)) {
				load_err(ld, p,
				    "capture %.*s has the name of a "
				    "built-in placeholder", (int)n, lv);
				bad = true;
			}
			for (i = 0; i < r->caps.n; i++) {
				if (strlen(r->caps.names[i]) == n - 2 &&
				    memcmp(r->caps.names[i], lv + 1, n - 2) ==
				    0) {
					load_err(ld, p,
					    "capture %.*s appears twice",
					    (int)n, lv);
					bad = true;
				}
			}
			nn = gw_realloc(r->caps.names, (r->caps.n + 1) *
			    sizeof *nn);
			if (nn != NULL)
				r->caps.names = nn;
			nl = gw_realloc(r->caps.levels, (r->caps.n + 1) *
			    sizeof *nl);
			if (nl != NULL)
				r->caps.levels = nl;
			if (nn == NULL || nl == NULL ||
			    (name = gw_strndup(lv + 1, n - 2)) == NULL) {
				load_oom(ld, p);
				return;
			}
			r->caps.names[r->caps.n] = name;
			r->caps.levels[r->caps.n++] = level;
			f[fl++] = '+';
		} else {
			if (memchr(lv, '{', n) != NULL ||
			    memchr(lv, '}', n) != NULL) {
				load_err(ld, p, "a capture is a whole level "
				    "written {name}");
				bad = true;
			}
			memcpy(f + fl, lv, n);
			fl += n;
		}
		if (end >= len)
			break;
		f[fl++] = '/';
		pos = end + 1;
		level++;
	}
	f[fl] = '\0';
	if (!bad && !topic_filter_valid(f, fl))
		load_err(ld, p,
		    "not a valid MQTT topic filter ('#' only as the "
		    "last level, '+' only as a whole level)");
}

/* ---- The sqlite action. ---- */

static const char *
type_name(const char *s)
{
	static const char *const types[] = { "INTEGER", "REAL", "TEXT",
	    "BLOB", "NUMERIC", NULL };
	size_t	i;

	if (strcasecmp(s, "ANY") == 0)
		return "";
	for (i = 0; types[i] != NULL; i++) {
		if (strcasecmp(s, types[i]) == 0)
			return types[i];
	}
	return NULL;
}

/* The column of sq named name (any case), or NULL. */
struct rule_column *
load_find_col(const struct rule_sqlite *sq, const char *name)
{
	size_t	i;

	for (i = 0; i < sq->ncols; i++) {
		if (sq->cols[i].name != NULL &&
		    strcasecmp(sq->cols[i].name, name) == 0)
			return &sq->cols[i];
	}
	return NULL;
}

/* Checks the table name; for messages, the fixed column layout. */
static void
check_table(struct loader *ld, struct rule_sqlite *sq, const char *path)
{
	struct rule_column	*c;
	char			 p[PATH_LEN];
	size_t			 i, k;

	load_path(p, path, "table");
	for (i = 0; reserved[i] != NULL; i++) {
		if (strcasecmp(sq->table, reserved[i]) == 0) {
			load_err(ld, p, "table %s is reserved for the gateway",
			    sq->table);
			return;
		}
	}
	if (strncasecmp(sq->table, "sqlite_", 7) == 0) {
		load_err(ld, p,
		    "table names starting with sqlite_ are reserved");
		return;
	}
	if (strcasecmp(sq->table, "messages") != 0)
		return;
	for (i = 0; i < sq->ncols; i++) {
		c = &sq->cols[i];
		for (k = 0; k < NMESSAGES_COLS; k++) {
			if (strcmp(c->name, messages_cols[k].name) == 0)
				break;
		}
		load_pathf(p, "%s.columns.%s", path, c->name);
		if (k == NMESSAGES_COLS) {
			load_err(ld, p, "table messages only has the columns "
			    "received_ms, topic, client_id, qos, retain, "
			    "payload");
			continue;
		}
		if (c->declared && strcmp(c->decl, messages_cols[k].decl) != 0)
			load_err(ld, p, "column messages.%s has type %s",
			    c->name, messages_cols[k].decl[0] != '\0' ?
			    messages_cols[k].decl : "ANY");
		c->decl = messages_cols[k].decl;
	}
	for (k = 0; k < NMESSAGES_COLS; k++) {
		if (messages_cols[k].required &&
		    load_find_col(sq, messages_cols[k].name) == NULL) {
			load_pathf(p, "%s.columns", path);
			load_err(ld, p,
			    "table messages needs column %s (NOT NULL)",
			    messages_cols[k].name);
		}
	}
}

/* Two rules filling the same column must declare the same type. */
static void
check_cross(struct loader *ld, const struct rule *r, const char *path)
{
	const struct rule_sqlite	*sq = r->sqlite, *o;
	const struct rule_column	*oc;
	char				 p[PATH_LEN];
	size_t				 i, k;

	/*
	 * The rules before r (one with bad keys is not stored); a table
	 * missing here or there has been reported already.
	 */
	if (sq->table == NULL)
		return;
	for (i = 0; i + 1 < ld->set->nrules; i++) {
		if ((o = ld->set->rules[i]->sqlite) == NULL ||
		    o->table == NULL || strcasecmp(o->table, sq->table) != 0)
			continue;
		for (k = 0; k < sq->ncols; k++) {
			if ((oc = load_find_col(o, sq->cols[k].name)) == NULL ||
			    strcmp(oc->decl, sq->cols[k].decl) == 0)
				continue;
			load_pathf(p, "%s.columns.%s", path,
			    sq->cols[k].name);
			load_err(ld, p, "column %s of table %s has type %s in "
			    "rule \"%s\" but %s here (declare one type in "
			    "\"types\")", sq->cols[k].name, sq->table,
			    oc->decl[0] ? oc->decl : "ANY",
			    ld->set->rules[i]->name,
			    sq->cols[k].decl[0] ? sq->cols[k].decl : "ANY");
		}
	}
}

static void
load_indexes(struct loader *ld, struct rule_sqlite *sq, const cJSON *j,
    const char *path)
{
	const cJSON		*it, *c;
	struct rule_index	*ix;
	char			 p[PATH_LEN], q[PATH_LEN];
	size_t			 n, k, len;
	int			 i = 0;

	if (!cJSON_IsArray(j)) {
		load_err(ld, path,
		    "expected an array of column names or arrays "
		    "of column names");
		return;
	}
	n = (size_t)cJSON_GetArraySize(j);
	if (n == 0 || (sq->idx = gw_calloc(n, sizeof *sq->idx)) == NULL) {
		if (n != 0)
			load_oom(ld, path);
		return;
	}
	cJSON_ArrayForEach(it, j) {
		load_pathf(p, "%s[%d]", path, i++);
		ix = &sq->idx[sq->nidx++];
		n = cJSON_IsArray(it) ? (size_t)cJSON_GetArraySize(it) : 1;
		if ((!cJSON_IsArray(it) && !cJSON_IsString(it)) || n == 0) {
			load_err(ld, p, "expected a column name or a non-empty "
			    "array of column names");
			continue;
		}
		if ((ix->cols = gw_calloc(n, sizeof *ix->cols)) == NULL) {
			load_oom(ld, p);
			return;
		}
		len = strlen(sq->table) + 5;
		k = 0;
		for (c = cJSON_IsArray(it) ? it->child : it; c != NULL;
		    c = cJSON_IsArray(it) ? c->next : NULL) {
			if (cJSON_IsArray(it))
				load_pathf(q, "%s[%zu]", p, k);
			else
				load_pathf(q, "%s", p);
			if (!cJSON_IsString(c) || load_find_col(sq,
			    c->valuestring) == NULL) {
				load_err(ld, q, "not a column of this rule");
				k++;
				continue;
			}
			ix->cols[ix->ncols++] = load_find_col(sq,
			    c->valuestring)->name;
			len += strlen(c->valuestring) + 1;
			k++;
		}
		if (ix->ncols != n)
			continue;
		if ((ix->name = gw_malloc(len + 1)) == NULL) {
			load_oom(ld, p);
			return;
		}
		strcpy(ix->name, sq->table);
		for (k = 0; k < ix->ncols; k++) {
			strcat(ix->name, "_");
			strcat(ix->name, ix->cols[k]);
		}
		strcat(ix->name, "_idx");
	}
}

static void
load_sqlite(struct loader *ld, struct rule *r, const cJSON *j,
    const char *path)
{
	static const char *const keys[] = { "table", "columns", "types",
	    "indexes", "retention", "foreach", "max_items", "rollups", NULL };
	static const char *const rkeys[] = { "max_age", "time_column", NULL };
	struct rule_sqlite	*sq;
	struct rule_column	*c;
	struct rule_str		 tbl = { NULL, false };
	const cJSON		*cols, *types, *it, *ret, *tc;
	char			 p[PATH_LEN];
	size_t			 n;

	if (!load_keys(ld, j, path, keys))
		return;
	if ((sq = r->sqlite = gw_calloc(1, sizeof *sq)) == NULL) {
		load_oom(ld, path);
		return;
	}
	load_path(p, path, "table");
	if (load_str(ld, j, "table", path, true, &tbl)) {
		sq->table = tbl.s;
		if (!is_ident(sq->table))
			load_err(ld, p, "%s is not a valid table name "
			    "([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)",
			    sq->table);
	}
	cols = load_item(j, "columns");
	load_path(p, path, "columns");
	if (cols == NULL)
		load_err(ld, path, "missing \"columns\"");
	else if (!cJSON_IsObject(cols) || cJSON_GetArraySize(cols) == 0)
		load_err(ld, p, "expected a non-empty object of column name: "
		    "template");
	else if ((n = (size_t)cJSON_GetArraySize(cols)) > RULES_MAX_COLUMNS)
		load_err(ld, p, "more than %d columns", RULES_MAX_COLUMNS);
	else if ((sq->cols = gw_calloc(n, sizeof *sq->cols)) == NULL)
		load_oom(ld, p);
	else {
		cJSON_ArrayForEach(it, cols) {
			load_pathf(p, "%s.columns.%s", path,
			    it->string);
			if (!is_ident(it->string)) {
				load_err(ld, p, "not a valid column name "
				    "([A-Za-z_][A-Za-z0-9_]*, at most 64 "
				    "bytes)");
				continue;
			}
			if (load_find_col(sq, it->string) != NULL) {
				load_err(ld, p,
				    "duplicate column (names ignore "
				    "case)");
				continue;
			}
			c = &sq->cols[sq->ncols++];
			if ((c->name = gw_strdup(it->string)) == NULL) {
				load_oom(ld, p);
				return;
			}
			c->tmpl = load_tmpl(ld, it, p, &r->caps);
			c->decl = c->tmpl != NULL ? tmpl_infer_type(c->tmpl) :
			    "";
		}
	}
	if ((types = load_item(j, "types")) != NULL) {
		load_path(p, path, "types");
		if (!cJSON_IsObject(types)) {
			load_err(ld, p,
			    "expected an object of column name: type");
			types = NULL;
		}
		cJSON_ArrayForEach(it, types) {
			load_pathf(p, "%s.types.%s", path, it->string);
			if ((c = load_find_col(sq, it->string)) == NULL)
				load_err(ld, p, "not a column of this rule");
			else if (!cJSON_IsString(it) ||
			    type_name(it->valuestring) == NULL)
				load_err(ld, p,
				    "expected one of INTEGER, REAL, "
				    "TEXT, BLOB, NUMERIC, ANY");
			else {
				c->decl = type_name(it->valuestring);
				c->declared = true;
			}
		}
	}
	if (sq->table == NULL || ld->oom)
		return;
	check_table(ld, sq, path);
	if ((it = load_item(j, "indexes")) != NULL) {
		load_path(p, path, "indexes");
		load_indexes(ld, sq, it, p);
	}
	if ((ret = load_item(j, "retention")) != NULL) {
		load_path(p, path, "retention");
		if (load_keys(ld, ret, p, rkeys)) {
			load_duration(ld, ret, "max_age", p, true,
			    &sq->max_age_ms);
			tc = load_item(ret, "time_column");
			if (tc == NULL)
				load_err(ld, p, "missing \"time_column\"");
			else if (!cJSON_IsString(tc) ||
			    (c = load_find_col(sq, tc->valuestring)) == NULL) {
				load_pathf(p, "%s.retention.time_column",
				    path);
				load_err(ld, p, "not a column of this rule");
			} else
				sq->time_column = c->name;
		}
	}
	check_cross(ld, r, path);
	rollup_load(ld, r, load_item(j, "rollups"), path);
}

/* ---- Rules and sets. ---- */

static void
sqlite_free(struct rule_sqlite *sq)
{
	size_t	i;

	if (sq == NULL)
		return;
	gw_free(sq->table);
	for (i = 0; i < sq->ncols; i++) {
		gw_free(sq->cols[i].name);
		tmpl_free(sq->cols[i].tmpl);
	}
	gw_free(sq->cols);
	for (i = 0; i < sq->nidx; i++) {
		gw_free(sq->idx[i].name);
		gw_free(sq->idx[i].cols);
	}
	gw_free(sq->idx);
	rollup_load_free(sq);
	gw_free(sq);
}

static void
rule_free(struct rule *r)
{
	size_t	i;

	if (r == NULL)
		return;
	gw_free(r->name);
	gw_free(r->topic);
	gw_free(r->filter);
	for (i = 0; i < r->caps.n; i++)
		gw_free(r->caps.names[i]);
	gw_free(r->caps.names);
	gw_free(r->caps.levels);
	where_free(r->where);
	sqlite_free(r->sqlite);
	action_webhook_free(r->webhook);
	action_mqtt_free(r->mqtt);
	foreach_free(r);
	gw_free(r);
}

/* Frees a set and every rule in it (load failures, last unref). */
void
load_set_free(struct rule_set *set)
{
	size_t	i;

	if (set == NULL)
		return;
	subs_free(set->trie);
	gw_free(set->mcache);
	for (i = 0; i < set->nrules; i++)
		rule_free(set->rules[i]);
	gw_free(set->rules);
	gw_free(set->origin);
	gw_free(set);
}

/* Loads rules[i] at path into ld->set->rules[i]. */
void
load_rule(struct loader *ld, const cJSON *j, const char *path, size_t id)
{
	static const char *const keys[] = { "name", "description", "topic",
	    "where", "sqlite", "webhook", "mqtt", "max_time_skew", NULL };
	struct rule		*r;
	struct rule_str		 s = { NULL, false };
	const cJSON		*it;
	char			 p[PATH_LEN];
	size_t			 i;

	if (!load_keys(ld, j, path, keys))
		return;
	if ((r = gw_calloc(1, sizeof *r)) == NULL) {
		load_oom(ld, path);
		return;
	}
	r->id = id;
	ld->set->rules[ld->set->nrules++] = r;
	load_path(p, path, "name");
	if ((it = load_item(j, "name")) == NULL)
		load_err(ld, path, "missing \"name\"");
	else if (!cJSON_IsString(it) || it->valuestring[0] == '\0' ||
	    strlen(it->valuestring) > 128)
		load_err(ld, p, "expected a name of 1 to 128 bytes");
	else {
		for (i = 0; i + 1 < ld->set->nrules; i++) {
			if (ld->set->rules[i]->name != NULL &&
			    strcmp(ld->set->rules[i]->name,
			    it->valuestring) == 0) {
				load_err(ld, p,
				    "duplicate rule name \"%s\" (also "
				    "rules[%zu])", it->valuestring,
				    ld->set->rules[i]->id);
				break;
			}
		}
		if ((r->name = gw_strdup(it->valuestring)) == NULL)
			load_oom(ld, p);
	}
	if ((it = load_item(j, "description")) != NULL && !cJSON_IsString(it)) {
		load_path(p, path, "description");
		load_err(ld, p, "expected a string");
	}
	load_path(p, path, "topic");
	if (load_str(ld, j, "topic", path, true, &s)) {
		r->topic = s.s;
		compile_topic(ld, r, p);
	}
	if (ld->oom)
		return;
	if ((it = load_item(j, "where")) != NULL) {
		load_path(p, path, "where");
		r->caps.items = foreach_all(j);	/* {item...} per element */
		if (where_compile(it, &r->caps, p, 0, &r->where, where_report,
		    ld) == GW_ENOMEM)
			load_oom(ld, p);
		r->where_items = foreach_where_item(r->where);
		r->caps.items = false;
	}
	if ((it = load_item(j, "sqlite")) != NULL) {
		load_path(p, path, "sqlite");
		foreach_load(ld, r, RULE_ASQLITE, it, p);
		load_sqlite(ld, r, it, p);
		r->caps.items = false;
	}
	if ((it = load_item(j, "webhook")) != NULL) {
		load_path(p, path, "webhook");
		foreach_load(ld, r, RULE_AWEBHOOK, it, p);
		action_webhook_load(ld, r, it, p);
		r->caps.items = false;
	}
	if ((it = load_item(j, "mqtt")) != NULL) {
		load_path(p, path, "mqtt");
		foreach_load(ld, r, RULE_AMQTT, it, p);
		action_mqtt_load(ld, r, it, p);
		r->caps.items = false;
	}
	if (load_item(j, "sqlite") == NULL && load_item(j, "webhook") == NULL &&
	    load_item(j, "mqtt") == NULL)
		load_err(ld, path,
		    "a rule needs at least one action: \"sqlite\", "
		    "\"webhook\" or \"mqtt\"");
	r->has_max_skew = load_duration(ld, j, "max_time_skew", path, false,
	    &r->max_time_skew_ms);
	if (!ld->oom)
		transform_rule_time(ld, r, path);
}
