/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rule filters ("where"). A filter is a tree: the leaves compare a template
 * with constants, the inner nodes combine leaves.
 *
 *   {"value": "{payload.temp}", "op": ">", "to": 30}
 *   {"value": "{site}", "op": "in", "to": ["a", "b"]}
 *   {"value": "{payload.alarm}", "op": "exists"}
 *   {"all": [ ... ]}   {"any": [ ... ]}   {"not": { ... }}
 *
 * Semantics (also in rules/README.md): the value side is evaluated like a
 * column value (a lone placeholder keeps its type). When both sides are
 * numbers the comparison is numeric (exact between two integers), else
 * both sides are compared as text, bytewise. A missing value (missing
 * field, JSON null, payload not JSON) makes every comparison false,
 * including "!=" and "in"; "exists" is true exactly when the value is not
 * missing, and {"not": ...} inverts any of these. "all" of nothing cannot
 * be written: arrays are non-empty. Compiled at load, evaluated on the
 * store thread.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rules/rules_int.h"

typedef void (*where_err_fn)(void *, const char *, const char *);

static const struct {
	const char	*name;
	uint8_t		 op;
} ops[] = {
	{ "=", WOP_EQ }, { "!=", WOP_NE }, { "<", WOP_LT }, { "<=", WOP_LE },
	{ ">", WOP_GT }, { ">=", WOP_GE }, { "exists", WOP_EXISTS },
	{ "in", WOP_IN },
};
#define NOPS	(sizeof ops / sizeof ops[0])

/* Frees w and its subtree; accepts NULL. */
void
where_free(struct rule_where *w)
{
	size_t	i;

	if (w == NULL)
		return;
	for (i = 0; i < w->nkids; i++)
		where_free(w->kids[i]);
	gw_free(w->kids);
	tmpl_free(w->value);
	for (i = 0; i < w->nto; i++)
		rule_value_clear(&w->to[i]);
	gw_free(w->to);
	gw_free(w);
}

/* A constant from the rules file; 0, GW_ECONFIG (bad type), GW_ENOMEM. */
static int
constant(const cJSON *j, struct rule_value *v)
{
	double	 d;
	char	*s;

	if (cJSON_IsBool(j)) {
		rule_value_int(v, cJSON_IsTrue(j));
		return 0;
	}
	if (cJSON_IsNumber(j)) {
		d = j->valuedouble;
		if (d == floor(d) && fabs(d) < 9.2e18)
			rule_value_int(v, (int64_t)d);
		else
			rule_value_real(v, d);
		return 0;
	}
	if (cJSON_IsString(j)) {
		if ((s = gw_strdup(j->valuestring)) == NULL)
			return GW_ENOMEM;
		rule_value_bytes(v, RULE_VTEXT, s, strlen(s), true);
		return 0;
	}
	return GW_ECONFIG;
}

static void
subpath(char *buf, size_t len, const char *path, const char *key, int idx)
{
	if (idx >= 0)
		snprintf(buf, len, "%s.%s[%d]", path, key, idx);
	else
		snprintf(buf, len, "%s.%s", path, key);
}

/* Compiles a comparison; returns 0, GW_ECONFIG or GW_ENOMEM. */
static int
where_cmp(const cJSON *j, const struct rule_caps *caps, const char *path,
    struct rule_where *w, where_err_fn error, void *ectx)
{
	struct gw_error	 e;
	const cJSON	*it, *value, *op, *to;
	char		 p[256];
	size_t		 i;
	int		 rc, bad = 0, k;

	cJSON_ArrayForEach(it, j) {
		if (strcmp(it->string, "value") != 0 &&
		    strcmp(it->string, "op") != 0 &&
		    strcmp(it->string, "to") != 0) {
			subpath(p, sizeof p, path, it->string, -1);
			error(ectx, p, "unknown key (a filter is {\"value\", "
			    "\"op\", \"to\"} or {\"all\"|\"any\"|\"not\": "
			    "...})");
			bad = 1;
		}
	}
	value = cJSON_GetObjectItemCaseSensitive(j, "value");
	op = cJSON_GetObjectItemCaseSensitive(j, "op");
	to = cJSON_GetObjectItemCaseSensitive(j, "to");
	subpath(p, sizeof p, path, "value", -1);
	if (value == NULL) {
		error(ectx, path, "missing \"value\"");
		bad = 1;
	} else if (!cJSON_IsString(value)) {
		error(ectx, p, "expected a template string");
		bad = 1;
	} else if ((rc = tmpl_compile(value->valuestring, caps, true,
	    &w->value, &e)) != 0) {
		if (rc == GW_ENOMEM)
			return rc;
		error(ectx, p, e.msg);
		bad = 1;
	}
	subpath(p, sizeof p, path, "op", -1);
	w->op = WOP_ALL;
	for (i = 0; cJSON_IsString(op) && i < NOPS; i++) {
		if (strcmp(op->valuestring, ops[i].name) == 0)
			w->op = ops[i].op;
	}
	if (op == NULL) {
		error(ectx, path, "missing \"op\"");
		return GW_ECONFIG;
	}
	if (w->op == WOP_ALL) {
		error(ectx, p, "expected one of =, !=, <, <=, >, >=, exists, "
		    "in");
		return GW_ECONFIG;
	}
	subpath(p, sizeof p, path, "to", -1);
	if (w->op == WOP_EXISTS) {
		if (to != NULL) {
			error(ectx, p, "\"exists\" takes no \"to\"");
			return GW_ECONFIG;
		}
		return bad ? GW_ECONFIG : 0;
	}
	if (to == NULL) {
		error(ectx, path, "missing \"to\"");
		return GW_ECONFIG;
	}
	if (w->op == WOP_IN) {
		if (!cJSON_IsArray(to) || cJSON_GetArraySize(to) == 0) {
			error(ectx, p, "\"in\" takes a non-empty array of "
			    "constants");
			return GW_ECONFIG;
		}
		w->nto = (size_t)cJSON_GetArraySize(to);
	} else
		w->nto = 1;
	if ((w->to = gw_calloc(w->nto, sizeof *w->to)) == NULL) {
		w->nto = 0;
		return GW_ENOMEM;
	}
	k = 0;
	if (w->op == WOP_IN) {
		cJSON_ArrayForEach(it, to) {
			if ((rc = constant(it, &w->to[k])) == GW_ENOMEM)
				return rc;
			if (rc != 0) {
				subpath(p, sizeof p, path, "to", k);
				error(ectx, p, "expected a number, string or "
				    "boolean");
				bad = 1;
			}
			k++;
		}
	} else if ((rc = constant(to, &w->to[0])) == GW_ENOMEM)
		return rc;
	else if (rc != 0) {
		error(ectx, p, "expected a number, string or boolean (use "
		    "\"exists\" to test for a missing value)");
		bad = 1;
	}
	return bad ? GW_ECONFIG : 0;
}

/*
 * Compiles where object j found at path. Every problem goes to error(ectx,
 * path, reason). Returns 0 with a new tree in *out, GW_ECONFIG (reported)
 * or GW_ENOMEM.
 */
int
where_compile(const cJSON *j, const struct rule_caps *caps, const char *path,
    int depth, struct rule_where **out, where_err_fn error, void *ectx)
{
	struct rule_where	*w;
	const cJSON		*it, *sub = NULL;
	const char		*key = NULL;
	char			 p[256];
	int			 rc = 0, r, k;

	*out = NULL;
	if (!cJSON_IsObject(j)) {
		error(ectx, path, "expected a filter object");
		return GW_ECONFIG;
	}
	if (depth >= RULES_MAX_WHERE_DEPTH) {
		error(ectx, path, "filters nested too deeply");
		return GW_ECONFIG;
	}
	if ((w = gw_calloc(1, sizeof *w)) == NULL)
		return GW_ENOMEM;
	cJSON_ArrayForEach(it, j) {
		if (strcmp(it->string, "all") == 0 ||
		    strcmp(it->string, "any") == 0 ||
		    strcmp(it->string, "not") == 0) {
			key = it->string;
			sub = it;
		}
	}
	if (key == NULL) {
		rc = where_cmp(j, caps, path, w, error, ectx);
		goto out;
	}
	if (cJSON_GetArraySize(j) != 1) {
		error(ectx, path, "\"all\", \"any\" and \"not\" stand alone in "
		    "their object");
		rc = GW_ECONFIG;
		goto out;
	}
	subpath(p, sizeof p, path, key, -1);
	if (strcmp(key, "not") == 0) {
		w->op = WOP_NOT;
		if ((w->kids = gw_calloc(1, sizeof *w->kids)) == NULL) {
			rc = GW_ENOMEM;
			goto out;
		}
		w->nkids = 1;
		rc = where_compile(sub, caps, p, depth + 1, &w->kids[0],
		    error, ectx);
		goto out;
	}
	w->op = strcmp(key, "all") == 0 ? WOP_ALL : WOP_ANY;
	if (!cJSON_IsArray(sub) || cJSON_GetArraySize(sub) == 0) {
		error(ectx, p, "expected a non-empty array of filters");
		rc = GW_ECONFIG;
		goto out;
	}
	if ((w->kids = gw_calloc((size_t)cJSON_GetArraySize(sub),
	    sizeof *w->kids)) == NULL) {
		rc = GW_ENOMEM;
		goto out;
	}
	k = 0;
	cJSON_ArrayForEach(it, sub) {
		subpath(p, sizeof p, path, key, k++);
		r = where_compile(it, caps, p, depth + 1, &w->kids[w->nkids++],
		    error, ectx);
		if (r == GW_ENOMEM) {
			rc = r;
			goto out;
		}
		if (r != 0)
			rc = r;
	}
out:
	if (rc != 0) {
		where_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Compares a and b (both not NULL): <0, 0, >0; text form for mixed types. */
static int
value_cmp(const struct rule_value *a, const struct rule_value *b)
{
	struct buf	 ta = BUF_INIT, tb = BUF_INIT;
	double		 x, y;
	size_t		 n;
	int		 c;

	if (a->type == RULE_VINTEGER && b->type == RULE_VINTEGER)
		return (a->u.i > b->u.i) - (a->u.i < b->u.i);
	if (rule_value_is_number(a) && rule_value_is_number(b)) {
		x = a->type == RULE_VINTEGER ? (double)a->u.i : a->u.d;
		y = b->type == RULE_VINTEGER ? (double)b->u.i : b->u.d;
		return (x > y) - (x < y);
	}
	if (value_append_text(&ta, a) != 0 || value_append_text(&tb, b) != 0) {
		c = 2;	/* out of memory: no comparison holds */
		goto out;
	}
	n = buf_used(&ta) < buf_used(&tb) ? buf_used(&ta) : buf_used(&tb);
	c = n == 0 ? 0 : memcmp(buf_head(&ta), buf_head(&tb), n);
	if (c == 0)
		c = (buf_used(&ta) > n) - (buf_used(&tb) > n);
	c = (c > 0) - (c < 0);
out:
	buf_free(&ta);
	buf_free(&tb);
	return c;
}

/* Returns 1 (true), 0 (false) or GW_ENOMEM. */
int
where_eval(const struct rule_where *w, const struct rule_ctx *c)
{
	struct rule_value	v = RULE_VALUE_INIT;
	size_t			i;
	int			r, cmp, res = 0;

	switch (w->op) {
	case WOP_ALL:
	case WOP_ANY:
		for (i = 0; i < w->nkids; i++) {
			if ((r = where_eval(w->kids[i], c)) < 0)
				return r;
			if (w->op == WOP_ALL && r == 0)
				return 0;
			if (w->op == WOP_ANY && r == 1)
				return 1;
		}
		return w->op == WOP_ALL;
	case WOP_NOT:
		if ((r = where_eval(w->kids[0], c)) < 0)
			return r;
		return !r;
	default:
		break;
	}
	if ((r = tmpl_eval(w->value, c, &v)) != 0)
		return r;
	if (v.type == RULE_VNULL)
		return 0;
	if (w->op == WOP_EXISTS) {
		rule_value_clear(&v);
		return 1;
	}
	for (i = 0; i < w->nto && res == 0; i++) {
		cmp = value_cmp(&v, &w->to[i]);
		switch (w->op) {
		case WOP_EQ:
		case WOP_IN:
			res = cmp == 0;
			break;
		case WOP_NE:
			res = cmp != 0 && cmp != 2;
			break;
		case WOP_LT:
			res = cmp == -1;
			break;
		case WOP_LE:
			res = cmp == -1 || cmp == 0;
			break;
		case WOP_GT:
			res = cmp == 1;
			break;
		case WOP_GE:
			res = cmp == 1 || cmp == 0;
			break;
		}
	}
	rule_value_clear(&v);
	return res;
}

/* See rules.h. Store thread. */
int
rule_filter(const struct rule *r, const struct msg *m,
    struct rule_payload *pc)
{
	struct rule_ctx	c = { r, m, pc };
	int		rc;

	rule_count(r, RULE_CMATCHED, 1);
	if (r->where != NULL && !r->where_items &&
	    (rc = where_eval(r->where, &c)) <= 0) {
		if (rc == 0)
			rule_count(r, RULE_CFILTERED, 1);
		return rc;
	}
	/* max_time_skew counts publishes that fire. */
	if ((rc = transform_count_skew(&c)) != 0)
		return rc;
	return 1;
}

/* See rules.h. Store thread. */
int
rule_item_filter(const struct rule *r, const struct msg *m,
    struct rule_payload *pc)
{
	struct rule_ctx	c = { r, m, pc };
	int		rc;

	if (r->where == NULL || !r->where_items)
		return 1;
	if ((rc = where_eval(r->where, &c)) == 0)
		rule_count(r, RULE_CITEMS_FILTERED, 1);
	return rc;
}
