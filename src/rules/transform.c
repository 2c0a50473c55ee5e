/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Value transforms: the "|op:arg" steps after a placeholder, as in
 * {payload.raw|mul:0.1|round:2} or {payload_raw|u16be:2}.
 *
 * DESIGN
 *
 * The set is small and closed. A chain is parsed once, when its template
 * compiles, into an array of steps hung on the placeholder (struct
 * rule_ph); arguments are parsed then too (numbers, offsets, the |default
 * value, the |time format, the |json path), so evaluation only switches on
 * the step and never reads rule text again. Nothing here runs code or
 * builds SQL from message data.
 *
 * Types. Each step takes a value of some storage classes and gives one of
 * others (rules/README.md "Transforms" has the table). At load a
 * placeholder's possible types are known ({topic} is TEXT, {qos} INTEGER,
 * {payload_raw} raw bytes, a payload path any JSON value), so a step that
 * can never receive a type it takes ({topic|mul:2}, {payload_raw|lower},
 * {payload.x|u16be}) is a load error that --check reports. At run time a
 * value of a type the step does not take, or data it cannot read (odd-
 * length hex, bad base64, an offset past the end, a number out of range,
 * NaN or infinity), becomes NULL and counts in the rule's
 * mqlite_rule_transform_null_total; an unreadable |time counts in
 * mqlite_rule_device_time_invalid_total instead. NULL goes through every
 * step unchanged (a missing field is not an error) until a |default
 * replaces it.
 *
 * Ownership. A step either keeps borrowing what the value borrowed (the
 * message, the payload cache, the rule set) or produces new bytes that the
 * value owns; a step that would borrow from bytes the value owned copies
 * them first, since the input is freed.
 *
 * Device time. The rule's device time is its first |time placeholder
 * (transform_rule_time picks it at load); {time_skew_ms} and the
 * max_time_skew counter evaluate that placeholder's steps up to its |time.
 * This file parses and checks chains at load (any thread, usually the
 * loop thread); transform_run.c runs them on the store thread.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/devtime.h"
#include "rules/transform_int.h"

static const struct xf_def defs[] = {
	{ "mul", XF_MUL, A_NUM, XFM_NUM, 0, 0, false },
	{ "add", XF_ADD, A_NUM, XFM_NUM, 0, 0, false },
	{ "round", XF_ROUND, A_DIGITS, XFM_NUM, 0, 0, false },
	{ "int", XF_INT, A_NONE, XFM_NUM | XFM_TEXT | XFM_RAW, 0, 0, false },
	{ "float", XF_FLOAT, A_NONE, XFM_NUM | XFM_TEXT | XFM_RAW, 0, 0,
	    false },
	{ "str", XF_STR, A_NONE, XFM_ALL, 0, 0, false },
	{ "lower", XF_LOWER, A_NONE, XFM_TEXT, 0, 0, false },
	{ "upper", XF_UPPER, A_NONE, XFM_TEXT, 0, 0, false },
	{ "hex", XF_HEX, A_NONE, XFM_TEXT | XFM_BLOB | XFM_RAW, 0, 0, false },
	{ "unhex", XF_UNHEX, A_NONE, XFM_TEXT | XFM_RAW, 0, 0, false },
	{ "base64", XF_BASE64, A_NONE, XFM_TEXT | XFM_BLOB | XFM_RAW, 0, 0,
	    false },
	{ "unbase64", XF_UNBASE64, A_NONE, XFM_TEXT | XFM_RAW, 0, 0, false },
	{ "json", XF_JSON, A_PATH, XFM_TEXT | XFM_RAW, 0, 0, false },
	{ "default", XF_DEFAULT, A_VALUE, XFM_ALL, 0, 0, false },
	{ "time", XF_TIME, A_FMT, XFM_NUM | XFM_TEXT | XFM_RAW, 0, 0, false },
	{ "u8", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 1, 'u', true },
	{ "i8", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 1, 'i', true },
	{ "u16be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 2, 'u', true },
	{ "u16le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 2, 'u', false },
	{ "i16be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 2, 'i', true },
	{ "i16le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 2, 'i', false },
	{ "u32be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 4, 'u', true },
	{ "u32le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 4, 'u', false },
	{ "i32be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 4, 'i', true },
	{ "i32le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 4, 'i', false },
	{ "u64be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 8, 'u', true },
	{ "u64le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 8, 'u', false },
	{ "i64be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 8, 'i', true },
	{ "i64le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 8, 'i', false },
	{ "f32be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 4, 'f', true },
	{ "f32le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 4, 'f', false },
	{ "f64be", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 8, 'f', true },
	{ "f64le", XF_BIN, A_OFF, XFM_BLOB | XFM_RAW, 8, 'f', false },
};
#define NDEFS		(sizeof defs / sizeof defs[0])
#define MAX_OFFSET	0x7fffffffLL
#define MAX_STEPS	32


/* The types a placeholder may give, before its transforms. */
static uint8_t
ph_mask(const struct rule_ph *ph)
{
	switch (ph->kind) {
	case PH_QOS:
	case PH_RETAIN:
	case PH_RECEIVED_MS:
	case PH_TIME_SKEW:
		return XFM_INT;
	case PH_PAYLOAD:
		return XFM_NUM | XFM_TEXT | XFM_RAW;
	case PH_PAYLOAD_RAW:
	case PH_CORRELATION_DATA:
		return XFM_RAW;
	case PH_PAYLOAD_PATH:
		return XFM_NUM | XFM_TEXT;
	case PH_CAPTURE:
	case PH_TOPIC:
	case PH_CLIENT_ID:
	case PH_USERNAME:
	case PH_SOURCE:
	case PH_CONTENT_TYPE:
	case PH_RESPONSE_TOPIC:
	case PH_USER_PROPERTY:
		return XFM_TEXT;
	default:
		/* A kind not listed here may be anything: check at run time. */
		return XFM_ALL;
	}
}

/* Words for a mask: "INTEGER or REAL". */
static void
mask_words(uint8_t m, char *buf, size_t len)
{
	static const struct {
		uint8_t		 bit;
		const char	*word;
	} w[] = {
		{ XFM_INT, "INTEGER" }, { XFM_REAL, "REAL" },
		{ XFM_TEXT, "TEXT" },
		{ XFM_BLOB, "BLOB" }, { XFM_RAW, "the raw payload bytes" },
	};
	size_t	i, n = 0, k = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof w / sizeof w[0]; i++)
		n += (m & w[i].bit) != 0;
	for (i = 0; i < sizeof w / sizeof w[0]; i++) {
		if (!(m & w[i].bit))
			continue;
		k++;
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
		    k == 1 ? "" : k == n ? " or " : ", ", w[i].word);
	}
}

/* Storage class of a value as a mask bit (0 for NULL). */
uint8_t
transform_value_mask(const struct rule_value *v)
{
	switch (v->type) {
	case RULE_VINTEGER:
		return XFM_INT;
	case RULE_VREAL:
		return XFM_REAL;
	case RULE_VTEXT:
		return XFM_TEXT;
	case RULE_VBLOB:
		return XFM_BLOB;
	default:
		return 0;
	}
}

/* See rules_int.h: the first '|' outside a quoted key, or len. */
size_t
transform_split(const char *s, size_t len)
{
	size_t	i;
	int	inq = 0;

	for (i = 0; i < len; i++) {
		if (inq && s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == '"')
			inq = !inq;
		else if (!inq && s[i] == '|')
			return i;
	}
	return len;
}

/*
 * Reads a number in JSON syntax (leading zeros allowed) from s[0..len)
 * into v: INTEGER when it has no fraction or exponent and fits in 64
 * bits, else REAL (finite). Returns 0 or GW_EMALFORMED.
 */
int
transform_number_text(const char *s, size_t len, struct rule_value *v)
{
	char		 t[64], *end;
	size_t		 i = 0, d;
	bool		 isint = true;
	long long	 ll;
	double		 x;

	if (len == 0 || len >= sizeof t)
		return GW_EMALFORMED;
	if (s[i] == '-')
		i++;
	for (d = i; i < len && isdigit((unsigned char)s[i]); i++)
		;
	if (i == d)
		return GW_EMALFORMED;
	if (i < len && s[i] == '.') {
		isint = false;
		for (d = ++i; i < len && isdigit((unsigned char)s[i]); i++)
			;
		if (i == d)
			return GW_EMALFORMED;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		isint = false;
		if (++i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < len && isdigit((unsigned char)s[i]); i++)
			;
		if (i == d)
			return GW_EMALFORMED;
	}
	if (i != len)
		return GW_EMALFORMED;
	memcpy(t, s, len);
	t[len] = '\0';
	errno = 0;
	if (isint) {
		ll = strtoll(t, &end, 10);
		if (errno == 0) {
			rule_value_int(v, ll);
			return 0;
		}
	}
	x = strtod(t, &end);
	if (!isfinite(x))
		return GW_EMALFORMED;
	rule_value_real(v, x);
	return 0;
}

/* The |default value: "quoted" TEXT, a number, else the text as is. */
static int
default_value(const char *a, size_t len, struct rule_value *v)
{
	char	*o;
	size_t	 i, k = 0;

	if (len >= 2 && a[0] == '"' && a[len - 1] == '"') {
		a++;
		len -= 2;
	} else if (transform_number_text(a, len, v) == 0)
		return 0;
	if ((o = gw_malloc(len + 1)) == NULL)
		return GW_ENOMEM;
	for (i = 0; i < len; i++) {
		if (a[i] == '\\' && i + 1 < len)
			i++;
		o[k++] = a[i];
	}
	o[k] = '\0';
	rule_value_bytes(v, RULE_VTEXT, o, k, true);
	return 0;
}

/* Compiles the |json path (".a[0]", "a.b", "[\"k\"]") into st->path. */
static int
json_path(const char *a, size_t len, struct transform_step *st,
    struct gw_error *err)
{
	struct rule_tmpl	*t = NULL;
	char			*text;
	int			 rc;

	if ((text = gw_malloc(len + 16)) == NULL)
		return GW_ENOMEM;
	snprintf(text, len + 16, "{payload%s%.*s}",
	    a[0] == '.' || a[0] == '[' ? "" : ".", (int)len, a);
	rc = tmpl_compile(text, NULL, false, &t, NULL);
	gw_free(text);
	if (rc == GW_ENOMEM)
		return rc;
	if (rc != 0 || t->nsegs != 1 || t->segs[0].kind != SEG_PH ||
	    t->segs[0].ph.kind != PH_PAYLOAD_PATH ||
	    t->segs[0].ph.nxf != 0) {
		tmpl_free(t);
		return gw_error_set(err, NULL, "|json:%.*s: not a path "
		    "(write .key, [N] or [\"key\"] steps)", (int)len, a);
	}
	st->path.steps = t->segs[0].ph.steps;
	st->path.nsteps = t->segs[0].ph.nsteps;
	t->segs[0].ph.steps = NULL;
	t->segs[0].ph.nsteps = 0;
	tmpl_free(t);
	return 0;
}

/* Parses the argument of st (a, len; a NULL when absent). */
static int
parse_arg(struct transform_step *st, const char *a, size_t len,
    struct gw_error *err)
{
	const struct xf_def	*d = st->def;
	struct rule_value	 v = RULE_VALUE_INIT;

	if (a == NULL && (d->arg == A_NUM || d->arg == A_VALUE))
		return gw_error_set(err, NULL, "|%s needs an argument: "
		    "|%s:%s", d->name, d->name, d->arg == A_NUM ? "N" : "V");
	if (a != NULL && d->arg == A_NONE)
		return gw_error_set(err, NULL, "|%s takes no argument",
		    d->name);
	if (a == NULL)
		return 0;
	switch (d->arg) {
	case A_NUM:
		if (transform_number_text(a, len, &v) != 0)
			return gw_error_set(err, NULL, "|%s:%.*s: not a "
			    "number", d->name, (int)len, a);
		st->isint = v.type == RULE_VINTEGER;
		st->n = st->isint ? v.u.i : 0;
		st->d = st->isint ? (double)v.u.i : v.u.d;
		return 0;
	case A_DIGITS:
	case A_OFF:
		if (transform_number_text(a, len, &v) != 0 ||
		    v.type != RULE_VINTEGER ||
		    v.u.i < 0 || v.u.i > (d->arg == A_DIGITS ? 15 :
		    MAX_OFFSET))
			return gw_error_set(err, NULL, "|%s:%.*s: expected %s",
			    d->name, (int)len, a, d->arg == A_DIGITS ?
			    "0 to 15 decimal places" : "a byte offset from 0");
		st->n = v.u.i;
		return 0;
	case A_VALUE:
		return default_value(a, len, &st->val);
	case A_FMT:
		if ((st->fmt = gw_strndup(a, len)) == NULL)
			return GW_ENOMEM;
		return devtime_format_check(st->fmt, err);
	case A_PATH:
		return json_path(a, len, st, err);
	default:
		return 0;
	}
}

/* The types step st may give for input types in. */
static uint8_t
out_mask(const struct transform_step *st, uint8_t in)
{
	switch (st->def->op) {
	case XF_MUL:
	case XF_ADD:
		return (in & XFM_INT) && st->isint ? XFM_NUM : XFM_REAL;
	case XF_ROUND:
		return in & XFM_NUM;
	case XF_INT:
	case XF_TIME:
		return XFM_INT;
	case XF_FLOAT:
		return XFM_REAL;
	case XF_UNHEX:
	case XF_UNBASE64:
		return XFM_BLOB;
	case XF_JSON:
		return XFM_NUM | XFM_TEXT;
	case XF_DEFAULT:
		return in | transform_value_mask(&st->val);
	case XF_BIN:
		if (st->def->kind == 'f')
			return XFM_REAL;
		return st->def->kind == 'u' && st->def->width == 8 ? XFM_NUM :
		    XFM_INT;
	default:
		return XFM_TEXT;
	}
}

/*
 * Compiles the transforms of placeholder text ph_text[0..len), whose
 * first '|' is at bar, onto ph (already parsed). Returns 0, GW_ECONFIG
 * with err->msg set, or GW_ENOMEM.
 */
int
transform_compile(const char *ph_text, size_t len, struct rule_ph *ph,
    struct gw_error *err)
{
	struct transform_step	*st, *nx;
	const char		*s, *colon;
	size_t			 bar, k, nlen, i;
	uint8_t			 mask = ph_mask(ph), accept;
	char			 have[96], want[96];
	int			 rc;

	bar = transform_split(ph_text, len);
	while (bar < len) {
		s = ph_text + bar + 1;
		k = transform_split(s, len - bar - 1);
		if (ph->nxf == MAX_STEPS)
			return gw_error_set(err, NULL, "more than %d "
			    "transforms in one placeholder", MAX_STEPS);
		colon = memchr(s, ':', k);
		nlen = colon != NULL ? (size_t)(colon - s) : k;
		for (i = 0; i < NDEFS; i++) {
			if (strlen(defs[i].name) == nlen &&
			    memcmp(defs[i].name, s, nlen) == 0)
				break;
		}
		if (i == NDEFS)
			return gw_error_set(err, NULL, "{%.*s}: unknown "
			    "transform |%.*s", (int)len, ph_text, (int)nlen, s);
		if ((nx = gw_realloc(ph->xf, (ph->nxf + 1) * sizeof *nx)) ==
		    NULL)
			return GW_ENOMEM;
		ph->xf = nx;
		st = &nx[ph->nxf++];
		memset(st, 0, sizeof *st);
		st->def = &defs[i];
		rc = parse_arg(st, colon != NULL ? colon + 1 : NULL,
		    colon != NULL ? k - nlen - 1 : 0, err);
		if (rc != 0)
			return rc;
		accept = st->def->accept;
		if (st->def->op == XF_TIME && st->fmt != NULL)
			accept = XFM_INT | XFM_TEXT | XFM_RAW;
		if ((mask & accept) == 0) {
			mask_words(mask, have, sizeof have);
			mask_words(accept, want, sizeof want);
			return gw_error_set(err, NULL, "{%.*s}: |%s takes %s, "
			    "but gets %s here%s", (int)len, ph_text,
			    st->def->name, want, have, st->def->op == XF_BIN ?
			    " (decode {payload_raw}, or the bytes of |unhex "
			    "or |unbase64)" : "");
		}
		mask = st->out = out_mask(st, mask & accept);
		bar += k + 1;
	}
	return 0;
}

/* See rules_int.h. Frees ph's transforms. */
void
transform_free(struct rule_ph *ph)
{
	size_t	i;

	for (i = 0; i < ph->nxf; i++) {
		rule_value_clear(&ph->xf[i].val);
		gw_free(ph->xf[i].fmt);
		ph_free(&ph->xf[i].path);
	}
	gw_free(ph->xf);
	ph->xf = NULL;
	ph->nxf = 0;
}

/* Column type for a placeholder with transforms; NULL when it has none. */
const char *
transform_decl(const struct rule_ph *ph)
{
	if (ph->kind == PH_TIME_SKEW)
		return "INTEGER";
	if (ph->nxf == 0)
		return NULL;
	switch (ph->xf[ph->nxf - 1].out) {
	case XFM_INT:
		return "INTEGER";
	case XFM_REAL:
		return "REAL";
	case XFM_TEXT:
		return "TEXT";
	default:
		return "";
	}
}

/* ---- Finding the rule's device time at load. ---- */

struct scan {
	const struct rule_ph	*time_ph;	/* first |time */
	size_t			 time_nxf;
	bool			 skew;		/* {time_skew_ms} used */
};

static void
scan_tmpl(const struct rule_tmpl *t, struct scan *s)
{
	const struct rule_ph	*ph;
	size_t			 i, k;

	for (i = 0; t != NULL && i < t->nsegs; i++) {
		if (t->segs[i].kind != SEG_PH)
			continue;
		ph = &t->segs[i].ph;
		if (ph->kind == PH_TIME_SKEW)
			s->skew = true;
		for (k = 0; s->time_ph == NULL && k < ph->nxf; k++) {
			if (ph->xf[k].def->op == XF_TIME) {
				s->time_ph = ph;
				s->time_nxf = k + 1;
			}
		}
	}
}

static void
scan_where(const struct rule_where *w, struct scan *s)
{
	size_t	i;

	if (w == NULL)
		return;
	scan_tmpl(w->value, s);
	for (i = 0; i < w->nkids; i++)
		scan_where(w->kids[i], s);
}

/*
 * Picks r's device time: the first |time placeholder in its sqlite
 * columns (file order), else the webhook body, url and headers, else the
 * mqtt payload and topic, else the where filter. Reports
 * {time_skew_ms} without max_time_skew, and max_time_skew without a
 * |time placeholder.
 */
void
transform_rule_time(struct loader *ld, struct rule *r, const char *path)
{
	struct scan	 s = { NULL, 0, false };
	char		 p[PATH_LEN];
	size_t		 i;

	for (i = 0; r->sqlite != NULL && i < r->sqlite->ncols; i++)
		scan_tmpl(r->sqlite->cols[i].tmpl, &s);
	if (r->webhook != NULL) {
		if (r->webhook->body != NULL) {
			scan_tmpl(r->webhook->body->str, &s);
			for (i = 0; i < r->webhook->body->nleaves; i++)
				scan_tmpl(r->webhook->body->leaves[i], &s);
		}
		scan_tmpl(r->webhook->url, &s);
		for (i = 0; i < r->webhook->nheaders; i++)
			scan_tmpl(r->webhook->headers[i].value, &s);
	}
	if (r->mqtt != NULL) {
		scan_tmpl(r->mqtt->payload, &s);
		scan_tmpl(r->mqtt->topic, &s);
	}
	scan_where(r->where, &s);
	r->time_ph = s.time_ph;
	r->time_nxf = s.time_nxf;
	if (s.skew && !r->has_max_skew)
		load_err(ld, path, "{time_skew_ms} needs \"max_time_skew\" "
		    "on the rule");
	if (r->has_max_skew && s.time_ph == NULL) {
		load_path(p, path, "max_time_skew");
		load_err(ld, p, "the rule has no device time: put a "
		    "{...|time} placeholder in it");
	}
}
