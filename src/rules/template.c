/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Templates: every value in a rule (column values, webhook url, headers and
 * body, the upstream topic, where operands) is compiled once at load into a
 * list of segments: literal text, text from a ${NAME} environment variable
 * (a secret), and placeholders ({topic}, {payload.a[0]}, a capture...).
 * Evaluation never parses the template again.
 *
 * A template that is exactly one placeholder evaluates to that
 * placeholder's typed value; anything else renders to TEXT, numbers written
 * exactly (integers in full, reals in the shortest form that reads back to
 * the same double). "{{" and "}}" are literal braces, "$$" a literal '$'.
 *
 * Rendering has two modes on top of plain text. TMPL_URL percent-encodes
 * every interpolated value (not the literal text), so a value cannot change
 * the shape of a URL. TMPL_SEAL writes secrets as ${NAME} and doubles every
 * other '$', producing text that can be stored in the outbox without the
 * secret and turned back into the final value by rules_unseal() at send
 * time. This file also renders the webhook request and the bridge topic.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/topic.h"
#include "mqtt/utf8.h"
#include "rules/rules_int.h"

static int	ph_parse(const char *, size_t, const struct rule_caps *,
		    struct rule_ph *);
static int	ph_parse_item(const char *, size_t, size_t,
		    const struct rule_caps *, struct rule_ph *);
static int	seg_add(struct rule_tmpl *, size_t *, uint8_t, const char *,
		    size_t);
static int	append_real(struct buf *, double);
static bool	is_ident(const char *, size_t);

static const struct {
	const char	*name;
	uint8_t		 kind;
} builtins[] = {
	{ "topic", PH_TOPIC },
	{ "client_id", PH_CLIENT_ID },
	{ "username", PH_USERNAME },
	{ "source", PH_SOURCE },
	{ "qos", PH_QOS },
	{ "retain", PH_RETAIN },
	{ "received_ms", PH_RECEIVED_MS },
	{ "payload", PH_PAYLOAD },
	{ "payload_raw", PH_PAYLOAD_RAW },
	{ "time_skew_ms", PH_TIME_SKEW },
	{ "content_type", PH_CONTENT_TYPE },
	{ "response_topic", PH_RESPONSE_TOPIC },
	{ "correlation_data", PH_CORRELATION_DATA },
};
#define NBUILTINS	(sizeof builtins / sizeof builtins[0])

static bool
is_ident(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	}
	return true;
}

/* Frees what ph owns. */
void
ph_free(struct rule_ph *ph)
{
	size_t	i;

	for (i = 0; i < ph->nsteps; i++)
		gw_free(ph->steps[i].key);
	gw_free(ph->steps);
	ph->steps = NULL;
	ph->nsteps = 0;
	transform_free(ph);
}

static int
step_add(struct rule_ph *ph, const char *key, size_t keylen, uint32_t index)
{
	struct rule_step	*ns;

	ns = gw_realloc(ph->steps, (ph->nsteps + 1) * sizeof *ns);
	if (ns == NULL)
		return GW_ENOMEM;
	ph->steps = ns;
	ns[ph->nsteps].key = NULL;
	ns[ph->nsteps].keylen = keylen;
	ns[ph->nsteps].index = index;
	if (key != NULL && (ns[ph->nsteps].key = gw_malloc(keylen + 1)) ==
	    NULL)
		return GW_ENOMEM;
	if (key != NULL) {
		memcpy(ns[ph->nsteps].key, key, keylen);
		ns[ph->nsteps].key[keylen] = '\0';
	}
	ph->nsteps++;
	return 0;
}

/*
 * Parses a payload path after "payload": .key, [N] and ["key"] steps.
 * Returns 0, GW_EMALFORMED or GW_ENOMEM.
 */
static int
path_parse(const char *s, size_t len, struct rule_ph *ph)
{
	size_t		 i = 0, j, k;
	char		*key;
	unsigned long	 n;
	int		 rc;

	while (i < len) {
		if (s[i] == '.') {
			for (j = i + 1; j < len && s[j] != '.'
			    && s[j] != '['; j++)
				if (!isalnum((unsigned char)s[j]) &&
				    s[j] != '_' && s[j] != '-')
					return GW_EMALFORMED;
			if (j == i + 1)
				return GW_EMALFORMED;
			if ((rc = step_add(ph, s + i + 1, j - i - 1, 0)) != 0)
				return rc;
			i = j;
		} else if (s[i] == '[' && i + 1 < len && s[i + 1] == '"') {
			/* ["key"]: \" and \\ are the only escapes. */
			if ((key = gw_malloc(len)) == NULL)
				return GW_ENOMEM;
			for (j = i + 2, k = 0; j < len && s[j] != '"'; j++) {
				if (s[j] == '\\' && j + 1 < len &&
				    (s[j + 1] == '"' || s[j + 1] == '\\'))
					j++;
				key[k++] = s[j];
			}
			if (j + 1 >= len || s[j + 1] != ']') {
				gw_free(key);
				return GW_EMALFORMED;
			}
			rc = step_add(ph, key, k, 0);
			gw_free(key);
			if (rc != 0)
				return rc;
			i = j + 2;
		} else if (s[i] == '[') {
			n = 0;
			for (j = i + 1; j < len && isdigit((unsigned char)s[j]);
			    j++) {
				n = n * 10 + (unsigned long)(s[j] - '0');
				if (n > UINT32_MAX)
					return GW_EMALFORMED;
			}
			if (j == i + 1 || j >= len || s[j] != ']')
				return GW_EMALFORMED;
			if ((rc = step_add(ph, NULL, 0, (uint32_t)n)) != 0)
				return rc;
			i = j + 1;
		} else
			return GW_EMALFORMED;
	}
	return 0;
}

/*
 * {item}, {item.a[0]...} and {item_index}, the current foreach element,
 * unless a capture of that name takes them. Returns 0, GW_EUNSUPPORTED
 * when the action has no foreach, GW_ENOTFOUND when s is something else.
 */
static int
ph_parse_item(const char *s, size_t n, size_t len,
    const struct rule_caps *caps, struct rule_ph *ph)
{
	size_t	i;
	int	rc;

	if (!(n == 4 && memcmp(s, "item", 4) == 0) && !(n == len &&
	    n == 10 && memcmp(s, "item_index", 10) == 0))
		return GW_ENOTFOUND;
	for (i = 0; n == len && caps != NULL && i < caps->n; i++) {
		if (strlen(caps->names[i]) == n &&
		    memcmp(caps->names[i], s, n) == 0)
			return GW_ENOTFOUND;
	}
	if (caps == NULL || !caps->items)
		return GW_EUNSUPPORTED;
	ph->kind = n == 4 ? PH_ITEM : PH_ITEM_INDEX;
	if (n < len && (rc = path_parse(s + n, len - n, ph)) != 0) {
		ph_free(ph);
		return rc == GW_ENOMEM ? rc : GW_ENOTFOUND;
	}
	return 0;
}

/*
 * Parses the text between '{' and '}'. 0, GW_ENOTFOUND, GW_EUNSUPPORTED
 * ({item...} outside a foreach) or GW_ENOMEM.
 */
static int
ph_parse(const char *s, size_t len, const struct rule_caps *caps,
    struct rule_ph *ph)
{
	size_t	i, n;
	int	rc;

	memset(ph, 0, sizeof *ph);
	for (n = 0; n < len && (isalnum((unsigned char)s[n]) || s[n] == '_');
	    n++)
		;
	if (!is_ident(s, n))
		return GW_ENOTFOUND;
	if ((rc = ph_parse_item(s, n, len, caps, ph)) != GW_ENOTFOUND)
		return rc;
	if (n == 15 && memcmp(s, "user_properties", 15) == 0 && n + 1 < len &&
	    s[n] == '.') {
		/* The rest, whatever it holds, is the property's name. */
		ph->kind = PH_USER_PROPERTY;
		return step_add(ph, s + n + 1, len - n - 1, 0);
	}
	if (n < len) {
		/* Only payload takes a path. */
		if (n != 7 || memcmp(s, "payload", 7) != 0)
			return GW_ENOTFOUND;
		ph->kind = PH_PAYLOAD_PATH;
		if ((rc = path_parse(s + n, len - n, ph)) != 0) {
			ph_free(ph);
			return rc == GW_ENOMEM ? rc : GW_ENOTFOUND;
		}
		return 0;
	}
	for (i = 0; caps != NULL && i < caps->n; i++) {
		if (strlen(caps->names[i]) == n &&
		    memcmp(caps->names[i], s, n) == 0) {
			ph->kind = PH_CAPTURE;
			ph->level = caps->levels[i];
			return 0;
		}
	}
	for (i = 0; i < NBUILTINS; i++) {
		if (strlen(builtins[i].name) == n &&
		    memcmp(builtins[i].name, s, n) == 0) {
			ph->kind = builtins[i].kind;
			return 0;
		}
	}
	return GW_ENOTFOUND;
}

/* Appends a segment (text copied); merges adjacent literal text. */
static int
seg_add(struct rule_tmpl *t, size_t *cap, uint8_t kind, const char *p,
    size_t len)
{
	struct rule_seg	*sg, *ns;
	char		*nt;

	if (kind == SEG_TEXT && t->nsegs > 0 &&
	    t->segs[t->nsegs - 1].kind == SEG_TEXT) {
		sg = &t->segs[t->nsegs - 1];
		if ((nt = gw_realloc(sg->text, sg->len + len + 1)) == NULL)
			return GW_ENOMEM;
		memcpy(nt + sg->len, p, len);
		sg->len += len;
		nt[sg->len] = '\0';
		sg->text = nt;
		return 0;
	}
	if (t->nsegs == *cap) {
		*cap = *cap == 0 ? 2 : *cap * 2;
		if ((ns = gw_realloc(t->segs, *cap * sizeof *ns)) == NULL)
			return GW_ENOMEM;
		t->segs = ns;
	}
	sg = &t->segs[t->nsegs];
	memset(sg, 0, sizeof *sg);
	sg->kind = kind;
	if (kind != SEG_PH) {
		if ((sg->text = gw_malloc(len + 1)) == NULL)
			return GW_ENOMEM;
		memcpy(sg->text, p, len);
		sg->text[len] = '\0';
		sg->len = len;
	}
	t->nsegs++;
	return 0;
}

/*
 * Compiles template text (NUL-terminated). caps gives the capture names
 * (may be NULL). allow_env turns ${NAME} into environment values. Returns
 * 0 with a new template in *out, GW_ECONFIG with err filled (msg only; the
 * caller knows the path), or GW_ENOMEM.
 */
int
tmpl_compile(const char *text, const struct rule_caps *caps, bool allow_env,
    struct rule_tmpl **out, struct gw_error *err)
{
	struct rule_tmpl	*t;
	struct rule_seg		*sg;
	const char		*p = text, *q, *v;
	size_t			 cap = 0;
	int			 rc = GW_ENOMEM, inq;

	*out = NULL;
	if ((t = gw_calloc(1, sizeof *t)) == NULL ||
	    (t->text = gw_strdup(text)) == NULL)
		goto fail;
	while (*p != '\0') {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' &&
		    p[1] == '}') || (p[0] == '$' && p[1] == '$')) {
			if (seg_add(t, &cap, SEG_TEXT, p, 1) != 0)
				goto fail;
			p += 2;
		} else if (p[0] == '$' && p[1] == '{' && allow_env) {
			if ((q = strchr(p + 2, '}')) == NULL ||
			    !is_ident(p + 2, (size_t)(q - p - 2))) {
				rc = gw_error_set(err, NULL, "bad environment "
				    "reference (write ${NAME}, or $$ for a "
				    "literal $)");
				goto fail;
			}
			/* getenv needs the name NUL-terminated. */
			if (seg_add(t, &cap, SEG_ENV, p + 2,
			    (size_t)(q - p - 2)) != 0)
				goto fail;
			sg = &t->segs[t->nsegs - 1];
			sg->env = sg->text;
			sg->text = NULL;
			if ((v = getenv(sg->env)) == NULL) {
				rc = gw_error_set(err, NULL, "environment "
				    "variable %s is not set", sg->env);
				goto fail;
			}
			if ((sg->text = gw_strdup(v)) == NULL)
				goto fail;
			sg->len = strlen(v);
			t->secret = true;
			p = q + 1;
		} else if (p[0] == '{') {
			for (q = p + 1, inq = 0; *q != '\0'; q++) {
				if (inq && q[0] == '\\' && q[1] != '\0')
					q++;
				else if (*q == '"')
					inq = !inq;
				else if (!inq && (*q == '}' || *q == '{'))
					break;
			}
			if (*q != '}') {
				rc = gw_error_set(err, NULL, "unterminated "
				    "placeholder (write {{ for a literal {)");
				goto fail;
			}
			if (seg_add(t, &cap, SEG_PH, NULL, 0) != 0)
				goto fail;
			sg = &t->segs[t->nsegs - 1];
			/* {name|transform|...}: transform.c. */
			rc = ph_parse(p + 1, transform_split(p + 1,
			    (size_t)(q - p - 1)), caps, &sg->ph);
			if (rc == GW_ENOTFOUND) {
				rc = gw_error_set(err, NULL, "unknown "
				    "placeholder %.*s", (int)(q - p + 1), p);
				goto fail;
			}
			if (rc == GW_EUNSUPPORTED) {
				rc = gw_error_set(err, NULL, "%.*s needs "
				    "\"foreach\" on the action (in a where: "
				    "on every action of the rule)",
				    (int)(q - p + 1), p);
				goto fail;
			}
			if (rc != 0 || (rc = transform_compile(p + 1,
			    (size_t)(q - p - 1), &sg->ph, err)) != 0)
				goto fail;
			p = q + 1;
		} else if (p[0] == '}') {
			rc = gw_error_set(err, NULL, "unmatched } (write }} "
			    "for a literal })");
			goto fail;
		} else {
			for (q = p + 1; *q != '\0' && *q != '{' && *q != '}' &&
			    *q != '$'; q++)
				;
			if (seg_add(t, &cap, SEG_TEXT, p, (size_t)(q - p)) != 0)
				goto fail;
			p = q;
		}
	}
	*out = t;
	return 0;
fail:
	tmpl_free(t);
	return rc;
}

/* Frees t; accepts NULL. */
void
tmpl_free(struct rule_tmpl *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nsegs; i++) {
		gw_free(t->segs[i].text);
		gw_free(t->segs[i].env);
		ph_free(&t->segs[i].ph);
	}
	gw_free(t->segs);
	gw_free(t->text);
	gw_free(t);
}

/*
 * Expands ${NAME} and $$ in a plain setting string (no placeholders).
 * Returns 0 with a new string in *out and *secret set when an environment
 * value went in, GW_ECONFIG (err->msg filled) or GW_ENOMEM.
 */
int
tmpl_expand_env(const char *text, char **out, bool *secret,
    struct gw_error *err)
{
	struct buf	 b = BUF_INIT;
	const char	*p = text, *q, *v;
	char		 name[256];
	int		 rc = GW_ENOMEM;

	*out = NULL;
	*secret = false;
	while (*p != '\0') {
		if (p[0] == '$' && p[1] == '$') {
			if (buf_append(&b, "$", 1) != 0)
				goto fail;
			p += 2;
		} else if (p[0] == '$' && p[1] == '{') {
			if ((q = strchr(p + 2, '}')) == NULL ||
			    !is_ident(p + 2, (size_t)(q - p - 2)) ||
			    (size_t)(q - p - 2) >= sizeof name) {
				rc = gw_error_set(err, NULL, "bad environment "
				    "reference (write ${NAME}, or $$ for a "
				    "literal $)");
				goto fail;
			}
			memcpy(name, p + 2, (size_t)(q - p - 2));
			name[q - p - 2] = '\0';
			if ((v = getenv(name)) == NULL) {
				rc = gw_error_set(err, NULL, "environment "
				    "variable %s is not set", name);
				goto fail;
			}
			if (buf_append(&b, v, strlen(v)) != 0)
				goto fail;
			*secret = true;
			p = q + 1;
		} else {
			if (buf_append(&b, p, 1) != 0)
				goto fail;
			p++;
		}
	}
	return buf_take_string(&b, out, NULL);
fail:
	buf_free(&b);
	return rc;
}

/*
 * NUL-terminates b's bytes and hands them over as a new string (an empty
 * buffer gives ""). Returns 0 or GW_ENOMEM (b freed either way).
 */
int
buf_take_string(struct buf *b, char **out, size_t *len)
{
	size_t	n;

	if (buf_append(b, "", 1) != 0) {
		buf_free(b);
		*out = NULL;
		return GW_ENOMEM;
	}
	n = buf_used(b) - 1;
	if (b->off != 0)
		memmove(b->data, b->data + b->off, n + 1);
	*out = (char *)b->data;
	if (len != NULL)
		*len = n;
	b->data = NULL;
	b->off = b->len = b->cap = 0;
	return 0;
}

/* The type a column fed by t gets when "types" does not say. */
const char *
tmpl_infer_type(const struct rule_tmpl *t)
{
	const char	*d;

	if (t->nsegs != 1 || t->segs[0].kind != SEG_PH)
		return "TEXT";
	if ((d = transform_decl(&t->segs[0].ph)) != NULL)
		return d;
	switch (t->segs[0].ph.kind) {
	case PH_QOS:
	case PH_RETAIN:
	case PH_RECEIVED_MS:
	case PH_ITEM_INDEX:
		return "INTEGER";
	case PH_PAYLOAD:
	case PH_PAYLOAD_RAW:
	case PH_PAYLOAD_PATH:
	case PH_ITEM:
	case PH_CORRELATION_DATA:
		return "";
	default:
		return "TEXT";
	}
}

/* True when t has no placeholder. */
bool
tmpl_is_literal(const struct rule_tmpl *t)
{
	size_t	i;

	for (i = 0; i < t->nsegs; i++) {
		if (t->segs[i].kind == SEG_PH)
			return false;
	}
	return true;
}

/* Shortest "%.*g" that reads back as the same double. */
static int
append_real(struct buf *b, double d)
{
	char	s[40];
	int	prec, n = 0;

	if (isnan(d))
		return buf_append(b, "NaN", 3);
	if (isinf(d))
		return d > 0 ? buf_append(b, "Infinity", 8) :
		    buf_append(b, "-Infinity", 9);
	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(s, sizeof s, "%.*g", prec, d);
		if (strtod(s, NULL) == d)
			break;
	}
	return buf_append(b, s, (size_t)n);
}

/* Appends the base64 (RFC 4648, padded) of p[0..len) to b. */
int
value_append_base64(struct buf *b, const void *p, size_t len)
{
	static const char	 tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t		*s = p;
	char			 o[4];
	uint32_t		 v;
	size_t			 i;
	int			 rc;

	for (i = 0; i < len; i += 3) {
		v = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		o[0] = tab[(v >> 18) & 63];
		o[1] = tab[(v >> 12) & 63];
		o[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		o[3] = i + 2 < len ? tab[v & 63] : '=';
		if ((rc = buf_append(b, o, 4)) != 0)
			return rc;
	}
	return 0;
}

/* Appends value text: percent-encoded (TMPL_URL), '$' doubled (seal). */
int
tmpl_append_encoded(struct buf *b, const char *p, size_t len, int flags)
{
	static const char	hex[] = "0123456789ABCDEF";
	char			e[3];
	size_t			i, j;
	int			rc;

	for (i = 0; i < len; i = j) {
		for (j = i; j < len; j++) {
			if (flags & TMPL_URL) {
				if (!isalnum((unsigned char)p[j]) &&
				    p[j] != '-' && p[j] != '.' &&
				    p[j] != '_' && p[j] != '~')
					break;
			} else if ((flags & TMPL_SEAL) && p[j] == '$')
				break;
		}
		if ((rc = buf_append(b, p + i, j - i)) != 0)
			return rc;
		if (j == len)
			break;
		if (flags & TMPL_URL) {
			e[0] = '%';
			e[1] = hex[(unsigned char)p[j] >> 4];
			e[2] = hex[(unsigned char)p[j] & 15];
			rc = buf_append(b, e, 3);
		} else
			rc = buf_append(b, "$$", 2);
		if (rc != 0)
			return rc;
		j++;
	}
	return 0;
}

/*
 * Appends the text form of v: nothing for NULL, integers in full, reals
 * shortest round-trip, TEXT as is, BLOB as base64.
 */
int
value_append_text(struct buf *b, const struct rule_value *v)
{
	char	s[32];
	int	n;

	switch (v->type) {
	case RULE_VINTEGER:
		n = snprintf(s, sizeof s, "%" PRId64, v->u.i);
		return buf_append(b, s, (size_t)n);
	case RULE_VREAL:
		return append_real(b, v->u.d);
	case RULE_VTEXT:
		return buf_append(b, v->u.s.p, v->u.s.len);
	case RULE_VBLOB:
		return value_append_base64(b, v->u.s.p, v->u.s.len);
	default:
		return 0;
	}
}

/* Renders t as text onto b with flags (TMPL_URL, TMPL_SEAL). */
int
tmpl_render_buf(const struct rule_tmpl *t, const struct rule_ctx *c,
    int flags, struct buf *b)
{
	struct rule_value	 v = RULE_VALUE_INIT;
	struct buf		 tb = BUF_INIT;
	const struct rule_seg	*sg;
	size_t			 i;
	int			 rc = 0;

	for (i = 0; i < t->nsegs && rc == 0; i++) {
		sg = &t->segs[i];
		if (sg->kind == SEG_TEXT)
			rc = tmpl_append_encoded(b, sg->text, sg->len,
			    flags & TMPL_SEAL);
		else if (sg->kind == SEG_ENV && (flags & TMPL_SEAL)) {
			if ((rc = buf_append(b, "${", 2)) == 0 &&
			    (rc = buf_append(b, sg->env, strlen(sg->env))) ==
			    0)
				rc = buf_append(b, "}", 1);
		} else if (sg->kind == SEG_ENV)
			rc = buf_append(b, sg->text, sg->len);
		else {
			if ((rc = transform_ph_eval(&sg->ph, c, &v)) != 0)
				break;
			if (flags & (TMPL_URL | TMPL_SEAL)) {
				tb.off = tb.len = 0;
				/* A NULL value renders as nothing. */
				if ((rc = value_append_text(&tb, &v)) == 0 &&
				    buf_used(&tb) > 0)
					rc = tmpl_append_encoded(b,
					    (char *)buf_head(&tb),
					    buf_used(&tb), flags);
			} else
				rc = value_append_text(b, &v);
			rule_value_clear(&v);
		}
	}
	buf_free(&tb);
	return rc;
}

/* Renders t into out (a new string); sealed when TMPL_SEAL and secret. */
int
tmpl_render(const struct rule_tmpl *t, const struct rule_ctx *c, int flags,
    struct rule_rendered *out)
{
	struct buf	b = BUF_INIT;
	int		rc;

	memset(out, 0, sizeof *out);
	if (!t->secret)
		flags &= ~TMPL_SEAL;
	if ((rc = tmpl_render_buf(t, c, flags, &b)) != 0) {
		buf_free(&b);
		return rc;
	}
	out->sealed = (flags & TMPL_SEAL) != 0;
	return buf_take_string(&b, &out->text, &out->len);
}

/*
 * Evaluates t: a lone placeholder keeps its type, literal-only text is
 * borrowed from the template, anything else is new TEXT.
 */
int
tmpl_eval(const struct rule_tmpl *t, const struct rule_ctx *c,
    struct rule_value *out)
{
	struct buf	 b = BUF_INIT;
	char		*s;
	size_t		 len;
	int		 rc;

	rule_value_clear(out);
	if (t->nsegs == 1 && t->segs[0].kind == SEG_PH)
		return transform_ph_eval(&t->segs[0].ph, c, out);
	if (t->nsegs == 0) {
		rule_value_bytes(out, RULE_VTEXT, "", 0, false);
		return 0;
	}
	if (t->nsegs == 1) {
		rule_value_bytes(out, RULE_VTEXT, t->segs[0].text,
		    t->segs[0].len, false);
		return 0;
	}
	if ((rc = tmpl_render_buf(t, c, 0, &b)) != 0) {
		buf_free(&b);
		return rc;
	}
	if ((rc = buf_take_string(&b, &s, &len)) != 0)
		return rc;
	rule_value_bytes(out, RULE_VTEXT, s, len, true);
	return 0;
}

/* See rules.h. */
int
rule_tmpl_eval(const struct rule_tmpl *t, const struct rule *r,
    const struct msg *m, struct rule_payload *pc, struct rule_value *out)
{
	struct rule_ctx	c = { r, m, pc };

	return tmpl_eval(t, &c, out);
}

/* See rules.h. Any thread. */
int
rules_unseal(const char *in, size_t in_len, char **out, size_t *out_len)
{
	struct buf	 b = BUF_INIT;
	const char	*q, *v, *end = in + in_len;
	char		 name[256];
	int		 rc = GW_ENOMEM;

	while (in < end) {
		if (in + 1 < end && in[0] == '$' && in[1] == '$') {
			if (buf_append(&b, "$", 1) != 0)
				goto fail;
			in += 2;
		} else if (in + 1 < end && in[0] == '$' && in[1] == '{' &&
		    (q = memchr(in + 2, '}', (size_t)(end - in - 2))) != NULL &&
		    (size_t)(q - in - 2) < sizeof name) {
			memcpy(name, in + 2, (size_t)(q - in - 2));
			name[q - in - 2] = '\0';
			if ((v = getenv(name)) == NULL) {
				rc = GW_ENOTFOUND;
				goto fail;
			}
			if (buf_append(&b, v, strlen(v)) != 0)
				goto fail;
			in = q + 1;
		} else {
			if (buf_append(&b, in, 1) != 0)
				goto fail;
			in++;
		}
	}
	return buf_take_string(&b, out, out_len);
fail:
	buf_free(&b);
	*out = NULL;
	return rc;
}
