/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading the "rollups" of a sqlite action (rules/README.md, "rollups"):
 * every name is checked here, at load, so the store thread can build its
 * SQL from identifiers only (store/rollup.c).
 *
 * DESIGN
 *
 * A rollup is parsed into struct rule_rollup (rules.h). Its table name
 * follows the rule table rules and must be neither reserved, nor a rule's
 * table, nor another rollup's table (checked against the rules loaded
 * before this one, both ways, so every pair of rules is seen once). Each
 * column is "fn(col)" with fn one of avg, min, max, sum, count, first,
 * last (count also takes "*") and col a column of this rule; group_by names
 * columns of this rule; the time column is the rollup's "time_column" or
 * else the table's retention.time_column. The window start column
 * (RULES_ROLLUP_WINDOW) is the rollup table's own, so no other column may
 * take its name.
 *
 * Declared types of the rollup columns: the window start and count are
 * INTEGER, avg is REAL, group_by, min, max, sum, first and last take the
 * raw column's type (none stays none, so values keep their own).
 *
 * Windows are read through the raw table's time column: when no index
 * of the rule starts with it, one is added (<table>_<column>_idx), so a
 * window costs a range scan, never a scan of the table.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "mem.h"
#include "rules/rules_int.h"

#define ROLLUP_MIN_EVERY_MS	1000ULL
#define ROLLUP_MAX_EVERY_MS	(366ULL * 86400 * 1000)
#define ROLLUP_MAX_GRACE_MS	(7ULL * 86400 * 1000)
#define ROLLUP_DEF_GRACE_CAP_MS	60000ULL

static const struct {
	const char	*name;
	enum rule_agg	 agg;
} rollup_fns[] = {
	{ "avg", RULE_AGG_AVG },
	{ "min", RULE_AGG_MIN },
	{ "max", RULE_AGG_MAX },
	{ "sum", RULE_AGG_SUM },
	{ "count", RULE_AGG_COUNT },
	{ "first", RULE_AGG_FIRST },
	{ "last", RULE_AGG_LAST },
};

/* Is name taken in ro already (window start, group_by, columns)? */
static bool
rollup_name_taken(const struct rule_rollup *ro, const char *name)
{
	size_t	i;

	if (strcasecmp(name, RULES_ROLLUP_WINDOW) == 0)
		return true;
	for (i = 0; i < ro->ngroup; i++) {
		if (strcasecmp(ro->group_by[i]->name, name) == 0)
			return true;
	}
	for (i = 0; i < ro->ncols; i++) {
		if (ro->cols[i].name != NULL &&
		    strcasecmp(ro->cols[i].name, name) == 0)
			return true;
	}
	return false;
}

/*
 * Parses "fn(col)" / "count(*)" into c; false with the reason in why.
 * Spaces are allowed around the parentheses' content.
 */
static bool
rollup_parse_agg(const struct rule_sqlite *sq, const char *s,
    struct rule_rollup_col *c, char *why, size_t whylen)
{
	const struct rule_column	*col;
	char				 fn[16], arg[RULES_IDENT_MAX + 2];
	size_t				 n, i;

	for (n = 0; isalpha((unsigned char)s[n]) && n + 1 < sizeof fn; n++)
		fn[n] = (char)tolower((unsigned char)s[n]);
	fn[n] = '\0';
	for (i = 0; i < sizeof rollup_fns / sizeof rollup_fns[0]; i++) {
		if (strcmp(fn, rollup_fns[i].name) == 0)
			break;
	}
	if (n == 0 || i == sizeof rollup_fns / sizeof rollup_fns[0]) {
		snprintf(why, whylen, "expected fn(column) with fn one of avg, "
		    "min, max, sum, count, first, last");
		return false;
	}
	c->agg = rollup_fns[i].agg;
	s += n;
	while (*s == ' ')
		s++;
	if (*s++ != '(') {
		snprintf(why, whylen, "expected '(' after %s", fn);
		return false;
	}
	while (*s == ' ')
		s++;
	for (n = 0; (isalnum((unsigned char)s[n]) || s[n] == '_' ||
	    s[n] == '*') && n + 1 < sizeof arg; n++)
		arg[n] = s[n];
	arg[n] = '\0';
	s += n;
	while (*s == ' ')
		s++;
	if (*s != ')' || s[1] != '\0') {
		snprintf(why, whylen, "expected one column name and ')' "
		    "after %s(", fn);
		return false;
	}
	if (strcmp(arg, "*") == 0) {
		if (c->agg != RULE_AGG_COUNT) {
			snprintf(why, whylen, "only count takes *");
			return false;
		}
		c->src = NULL;
		c->decl = "INTEGER";
		return true;
	}
	if (!load_is_ident(arg) || (col = load_find_col(sq, arg)) == NULL) {
		snprintf(why, whylen, "%s is not a column of this rule", arg);
		return false;
	}
	c->src = col->name;
	switch (c->agg) {
	case RULE_AGG_COUNT:
		c->decl = "INTEGER";
		break;
	case RULE_AGG_AVG:
		c->decl = "REAL";
		break;
	default:
		c->decl = col->decl;
		break;
	}
	return true;
}

static void
rollup_load_group(struct loader *ld, const struct rule_sqlite *sq,
    struct rule_rollup *ro, const cJSON *j, const char *path)
{
	const struct rule_column	*col;
	const cJSON			*it;
	char				 p[PATH_LEN];
	size_t				 n, k = 0;

	if (!cJSON_IsArray(j)) {
		load_err(ld, path, "expected an array of column names");
		return;
	}
	if ((n = (size_t)cJSON_GetArraySize(j)) == 0)
		return;
	if ((ro->group_by = gw_calloc(n, sizeof *ro->group_by)) == NULL) {
		load_oom(ld, path);
		return;
	}
	cJSON_ArrayForEach(it, j) {
		load_pathf(p, "%s[%zu]", path, k++);
		if (!cJSON_IsString(it) || (col = load_find_col(sq,
		    it->valuestring)) == NULL)
			load_err(ld, p, "not a column of this rule");
		else if (rollup_name_taken(ro, col->name))
			load_err(ld, p, "%s is already a column of this rollup",
			    col->name);
		else
			ro->group_by[ro->ngroup++] = col;
	}
}

static void
rollup_load_cols(struct loader *ld, const struct rule_sqlite *sq,
    struct rule_rollup *ro, const cJSON *j, const char *path)
{
	struct rule_rollup_col	*c;
	const cJSON		*it;
	char			 p[PATH_LEN], why[128];
	size_t			 n;

	if (j == NULL) {
		load_err(ld, path, "missing \"columns\"");
		return;
	}
	load_path(p, path, "columns");
	if (!cJSON_IsObject(j) || (n = (size_t)cJSON_GetArraySize(j)) == 0) {
		load_err(ld, p, "expected a non-empty object of column name: "
		    "\"fn(column)\"");
		return;
	}
	if (n > RULES_MAX_COLUMNS) {
		load_err(ld, p, "more than %d columns", RULES_MAX_COLUMNS);
		return;
	}
	if ((ro->cols = gw_calloc(n, sizeof *ro->cols)) == NULL) {
		load_oom(ld, p);
		return;
	}
	cJSON_ArrayForEach(it, j) {
		load_pathf(p, "%s.columns.%s", path, it->string);
		if (!load_is_ident(it->string)) {
			load_err(ld, p, "not a valid column name "
			    "([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)");
			continue;
		}
		if (rollup_name_taken(ro, it->string)) {
			load_err(ld, p, "duplicate column (names ignore case; "
			    "%s and the group_by columns are taken)",
			    RULES_ROLLUP_WINDOW);
			continue;
		}
		c = &ro->cols[ro->ncols];
		if (!cJSON_IsString(it)) {
			load_err(ld, p, "expected \"fn(column)\"");
			continue;
		}
		if (!rollup_parse_agg(sq, it->valuestring, c, why,
		    sizeof why)) {
			load_err(ld, p, "%s", why);
			continue;
		}
		if ((c->name = gw_strdup(it->string)) == NULL) {
			load_oom(ld, p);
			return;
		}
		ro->ncols++;
	}
}

/* Checks the table name of ro against reserved names and other tables. */
static void
rollup_check_table(struct loader *ld, const struct rule *r,
    const struct rule_rollup *ro, const char *path)
{
	const struct rule_sqlite	*o;
	size_t				 i, k;

	if (!load_is_ident(ro->table)) {
		load_err(ld, path, "%s is not a valid table name "
		    "([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)", ro->table);
		return;
	}
	if (load_is_reserved(ro->table) ||
	    strcasecmp(ro->table, "messages") == 0) {
		load_err(ld, path, "table %s is reserved for the gateway",
		    ro->table);
		return;
	}
	for (i = 0; i < ld->set->nrules; i++) {
		if ((o = ld->set->rules[i]->sqlite) == NULL ||
		    o->table == NULL)
			continue;
		if (strcasecmp(o->table, ro->table) == 0) {
			load_err(ld, path, "table %s is the table of rule "
			    "\"%s\"; a rollup needs a table of its own",
			    ro->table, ld->set->rules[i]->name);
			return;
		}
		for (k = 0; k < o->nrollups; k++) {
			if (&o->rollups[k] == ro)
				break;
			if (o->rollups[k].table != NULL &&
			    strcasecmp(o->rollups[k].table, ro->table) == 0) {
				load_err(ld, path, "table %s is already a "
				    "rollup of rule \"%s\"", ro->table,
				    ld->set->rules[i]->name);
				return;
			}
		}
		if (ld->set->rules[i] == r)
			break;
	}
}

/* r's table must not be a rollup table of the rules before it. */
static void
rollup_check_raw(struct loader *ld, const struct rule *r, const char *path)
{
	const struct rule_sqlite	*o;
	char				 p[PATH_LEN];
	size_t				 i, k;

	load_path(p, path, "table");
	for (i = 0; i + 1 < ld->set->nrules; i++) {
		if ((o = ld->set->rules[i]->sqlite) == NULL)
			continue;
		for (k = 0; k < o->nrollups; k++) {
			if (o->rollups[k].table != NULL &&
			    strcasecmp(o->rollups[k].table,
			    r->sqlite->table) == 0)
				load_err(ld, p, "table %s is a rollup of rule "
				    "\"%s\"", r->sqlite->table,
				    ld->set->rules[i]->name);
		}
	}
}

static void
rollup_load_one(struct loader *ld, struct rule *r, struct rule_rollup *ro,
    const cJSON *j, const char *path)
{
	static const char *const keys[] = { "table", "every", "grace",
	    "group_by", "columns", "time_column", "retention", NULL };
	static const char *const rkeys[] = { "max_age", NULL };
	struct rule_sqlite		*sq = r->sqlite;
	const struct rule_column	*col;
	const cJSON			*it;
	char				 p[PATH_LEN];

	if (!cJSON_IsObject(j)) {
		load_err(ld, path, "expected an object");
		return;
	}
	if (!load_keys(ld, j, path, keys))
		return;
	load_path(p, path, "table");
	if ((it = load_item(j, "table")) == NULL)
		load_err(ld, path, "missing \"table\"");
	else if (!cJSON_IsString(it))
		load_err(ld, p, "expected a table name");
	else if ((ro->table = gw_strdup(it->valuestring)) == NULL) {
		load_oom(ld, p);
		return;
	} else
		rollup_check_table(ld, r, ro, p);

	load_path(p, path, "every");
	if (load_duration(ld, j, "every", path, true, &ro->every_ms) &&
	    (ro->every_ms < ROLLUP_MIN_EVERY_MS ||
	    ro->every_ms > ROLLUP_MAX_EVERY_MS))
		load_err(ld, p, "expected a duration from 1s to 366d");
	ro->grace_ms = ro->every_ms / 2;
	if (ro->grace_ms > ROLLUP_DEF_GRACE_CAP_MS)
		ro->grace_ms = ROLLUP_DEF_GRACE_CAP_MS;
	load_path(p, path, "grace");
	if (load_duration(ld, j, "grace", path, false, &ro->grace_ms) &&
	    ro->grace_ms > ROLLUP_MAX_GRACE_MS)
		load_err(ld, p, "expected a duration up to 7d");

	load_path(p, path, "time_column");
	col = NULL;
	if ((it = load_item(j, "time_column")) != NULL) {
		if (!cJSON_IsString(it) || (col = load_find_col(sq,
		    it->valuestring)) == NULL)
			load_err(ld, p, "not a column of this rule");
	} else if (sq->time_column != NULL)
		col = load_find_col(sq, sq->time_column);
	else
		load_err(ld, path, "missing \"time_column\" (the table's "
		    "retention names none)");
	if (col != NULL && strcmp(col->decl, "TEXT") == 0)
		load_err(ld, p, "%s is a TEXT column; the time column holds "
		    "Unix milliseconds (INTEGER, REAL or no type)", col->name);
	else if (col != NULL)
		ro->time_column = col->name;

	if ((it = load_item(j, "group_by")) != NULL) {
		load_path(p, path, "group_by");
		rollup_load_group(ld, sq, ro, it, p);
	}
	rollup_load_cols(ld, sq, ro, load_item(j, "columns"), path);

	if ((it = load_item(j, "retention")) != NULL) {
		load_path(p, path, "retention");
		if (!cJSON_IsObject(it))
			load_err(ld, p, "expected an object");
		else if (load_keys(ld, it, p, rkeys))
			load_duration(ld, it, "max_age", p, true,
			    &ro->max_age_ms);
	}
}

/* Adds an index on the time column unless one starts with it. */
static void
rollup_time_index(struct loader *ld, struct rule_sqlite *sq,
    const char *tcol, const char *path)
{
	struct rule_index	*ni, *ix;
	size_t			 i, len;

	for (i = 0; i < sq->nidx; i++) {
		if (sq->idx[i].ncols > 0 && sq->idx[i].cols[0] != NULL &&
		    strcasecmp(sq->idx[i].cols[0], tcol) == 0)
			return;
	}
	if ((ni = gw_realloc(sq->idx, (sq->nidx + 1) * sizeof *ni)) == NULL) {
		load_oom(ld, path);
		return;
	}
	sq->idx = ni;
	ix = &sq->idx[sq->nidx];
	memset(ix, 0, sizeof *ix);
	len = strlen(sq->table) + strlen(tcol) + 6;
	if ((ix->cols = gw_calloc(1, sizeof *ix->cols)) == NULL ||
	    (ix->name = gw_malloc(len)) == NULL) {
		gw_free(ix->cols);
		load_oom(ld, path);
		return;
	}
	snprintf(ix->name, len, "%s_%s_idx", sq->table, tcol);
	ix->cols[0] = (char *)tcol;
	ix->ncols = 1;
	sq->nidx++;
}

/*
 * Loads the "rollups" array j (NULL: none) of r's sqlite action at path
 * (the action's path) into r->sqlite, reporting every problem; also
 * checks r's table against the rollups of the rules before it.
 */
void
rollup_load(struct loader *ld, struct rule *r, const cJSON *j,
    const char *path)
{
	struct rule_sqlite	*sq = r->sqlite;
	const cJSON		*it;
	char			 p[PATH_LEN], q[PATH_LEN];
	size_t			 n, k = 0;

	rollup_check_raw(ld, r, path);
	if (j == NULL)
		return;
	load_path(p, path, "rollups");
	if (!cJSON_IsArray(j)) {
		load_err(ld, p, "expected an array of rollup objects");
		return;
	}
	if ((n = (size_t)cJSON_GetArraySize(j)) == 0)
		return;
	if (n > RULES_MAX_ROLLUPS) {
		load_err(ld, p, "more than %d rollups", RULES_MAX_ROLLUPS);
		return;
	}
	if ((sq->rollups = gw_calloc(n, sizeof *sq->rollups)) == NULL) {
		load_oom(ld, p);
		return;
	}
	cJSON_ArrayForEach(it, j) {
		load_pathf(q, "%s[%zu]", p, k++);
		sq->nrollups++;
		rollup_load_one(ld, r, &sq->rollups[sq->nrollups - 1], it, q);
		if (ld->oom)
			return;
		if (sq->rollups[sq->nrollups - 1].time_column != NULL)
			rollup_time_index(ld, sq,
			    sq->rollups[sq->nrollups - 1].time_column, q);
	}
}

/* Frees the rollups of sq (names; the columns they point to stay). */
void
rollup_load_free(struct rule_sqlite *sq)
{
	struct rule_rollup	*ro;
	size_t			 i, k;

	for (i = 0; i < sq->nrollups; i++) {
		ro = &sq->rollups[i];
		gw_free(ro->table);
		gw_free(ro->group_by);
		for (k = 0; k < ro->ncols; k++)
			gw_free(ro->cols[k].name);
		gw_free(ro->cols);
	}
	gw_free(sq->rollups);
	sq->rollups = NULL;
	sq->nrollups = 0;
}
