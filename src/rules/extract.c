/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placeholder values: topic captures, message fields and payload fields.
 *
 * The payload is parsed at most once per publish, on the first placeholder
 * that needs it, into a flat "tape" of nodes (simdjson's idea): each node
 * records its type, where its token starts and ends in the payload, how
 * many children it has and the index of the node after its subtree, so a
 * path like a.b[3] is answered by skipping siblings, never by scanning text
 * again. The parser is our own rather than cJSON because numbers must be
 * read from their token: cJSON keeps only a double, which would turn
 * 9007199254740993 into ...992. Strings without escapes are returned as
 * pointers into the payload (no copy); objects and arrays become their
 * compact JSON text, copied from the token with whitespace removed, so
 * numbers inside them stay exactly as sent.
 *
 * The parser is strict RFC 8259 (any value at the top level, UTF-8 text)
 * with a nesting limit; anything else is "not JSON" and every payload path
 * is NULL for that publish. Store thread.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "broker/topic.h"
#include "mqtt/props.h"
#include "mqtt/utf8.h"
#include "rules/rules_int.h"

enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_OBJ, J_ARR };

#define JF_INT		0x1	/* number without fraction or exponent */
#define JF_ESC		0x2	/* string with escapes */

struct jnode {
	uint8_t		 type;		/* enum jtype */
	uint8_t		 flags;		/* JF_* */
	uint32_t	 start;		/* token start (strings: after '"') */
	uint32_t	 end;		/* token end (strings: at '"') */
	uint32_t	 count;	/* children (objects: key/value pairs) */
	uint32_t	 next;		/* node after this subtree */
};

struct jdoc {
	struct jnode	*n;
	uint32_t	 nn;
	uint32_t	 cap;
	const char	*s;		/* the payload */
	size_t		 len;
	size_t		 pos;		/* parse position */
	int		 err;		/* 1 syntax, GW_ENOMEM */
};

static int	jvalue(struct jdoc *, int);

static void
jws(struct jdoc *d)
{
	while (d->pos < d->len && (d->s[d->pos] == ' ' ||
	    d->s[d->pos] == '\t' || d->s[d->pos] == '\n' ||
	    d->s[d->pos] == '\r'))
		d->pos++;
}

/* Appends a node; returns its index or -1. */
static int
jadd(struct jdoc *d, uint8_t type)
{
	struct jnode	*nn;
	uint32_t	 cap;

	if (d->nn == d->cap) {
		cap = d->cap == 0 ? 16 : d->cap * 2;
		if ((nn = gw_realloc(d->n, cap * sizeof *nn)) == NULL) {
			d->err = GW_ENOMEM;
			return -1;
		}
		d->n = nn;
		d->cap = cap;
	}
	memset(&d->n[d->nn], 0, sizeof d->n[0]);
	d->n[d->nn].type = type;
	d->n[d->nn].start = (uint32_t)d->pos;
	return (int)d->nn++;
}

static int
jsyntax(struct jdoc *d)
{
	if (d->err == 0)
		d->err = 1;
	return -1;
}

static int
jstring(struct jdoc *d)
{
	int		 i;
	size_t		 k;
	unsigned char	 c;

	if ((i = jadd(d, J_STR)) < 0)
		return -1;
	d->n[i].start = (uint32_t)++d->pos;
	while (d->pos < d->len) {
		c = (unsigned char)d->s[d->pos];
		if (c == '"') {
			d->n[i].end = (uint32_t)d->pos++;
			d->n[i].next = d->nn;
			return i;
		}
		if (c < 0x20)
			return jsyntax(d);
		if (c == '\\') {
			d->n[i].flags |= JF_ESC;
			if (++d->pos >= d->len)
				return jsyntax(d);
			c = (unsigned char)d->s[d->pos];
			if (c == 'u') {
				for (k = 1; k <= 4; k++) {
					if (d->pos + k >= d->len ||
					    !isxdigit((unsigned char)
					    d->s[d->pos + k]))
						return jsyntax(d);
				}
				d->pos += 4;
			} else if (strchr("\"\\/bfnrt", c) == NULL || c == 0)
				return jsyntax(d);
		}
		d->pos++;
	}
	return jsyntax(d);
}

static size_t
jdigits(struct jdoc *d)
{
	size_t	start = d->pos;

	while (d->pos < d->len && d->s[d->pos] >= '0' && d->s[d->pos] <= '9')
		d->pos++;
	return d->pos - start;
}

static int
jnumber(struct jdoc *d)
{
	int	i;

	if ((i = jadd(d, J_NUM)) < 0)
		return -1;
	d->n[i].flags = JF_INT;
	if (d->s[d->pos] == '-')
		d->pos++;
	if (d->pos < d->len && d->s[d->pos] == '0')
		d->pos++;
	else if (jdigits(d) == 0)
		return jsyntax(d);
	if (d->pos < d->len && d->s[d->pos] == '.') {
		d->pos++;
		d->n[i].flags = 0;
		if (jdigits(d) == 0)
			return jsyntax(d);
	}
	if (d->pos < d->len && (d->s[d->pos] == 'e' || d->s[d->pos] == 'E')) {
		d->pos++;
		d->n[i].flags = 0;
		if (d->pos < d->len && (d->s[d->pos] == '+' ||
		    d->s[d->pos] == '-'))
			d->pos++;
		if (jdigits(d) == 0)
			return jsyntax(d);
	}
	d->n[i].end = (uint32_t)d->pos;
	d->n[i].next = d->nn;
	return i;
}

static int
jliteral(struct jdoc *d, const char *word, uint8_t type)
{
	size_t	n = strlen(word);
	int	i;

	if (d->len - d->pos < n || memcmp(d->s + d->pos, word, n) != 0)
		return jsyntax(d);
	if ((i = jadd(d, type)) < 0)
		return -1;
	d->pos += n;
	d->n[i].end = (uint32_t)d->pos;
	d->n[i].next = d->nn;
	return i;
}

/* Objects and arrays. */
static int
jcontainer(struct jdoc *d, int depth)
{
	int	i;
	char	close;

	close = d->s[d->pos] == '{' ? '}' : ']';
	if (depth >= RULES_MAX_JSON_DEPTH)
		return jsyntax(d);
	if ((i = jadd(d, close == '}' ? J_OBJ : J_ARR)) < 0)
		return -1;
	d->pos++;
	jws(d);
	if (d->pos < d->len && d->s[d->pos] == close)
		goto done;
	for (;;) {
		jws(d);
		if (close == '}') {
			if (d->pos >= d->len || d->s[d->pos] != '"' ||
			    jstring(d) < 0)
				return jsyntax(d);
			jws(d);
			if (d->pos >= d->len || d->s[d->pos] != ':')
				return jsyntax(d);
			d->pos++;
			jws(d);
		}
		if (jvalue(d, depth + 1) < 0)
			return -1;
		d->n[i].count++;
		jws(d);
		if (d->pos < d->len && d->s[d->pos] == ',') {
			d->pos++;
			continue;
		}
		if (d->pos < d->len && d->s[d->pos] == close)
			break;
		return jsyntax(d);
	}
done:
	d->pos++;
	d->n[i].end = (uint32_t)d->pos;
	d->n[i].next = d->nn;
	return i;
}

static int
jvalue(struct jdoc *d, int depth)
{
	if (d->pos >= d->len)
		return jsyntax(d);
	switch (d->s[d->pos]) {
	case '{':
	case '[':
		return jcontainer(d, depth);
	case '"':
		return jstring(d);
	case 't':
		return jliteral(d, "true", J_TRUE);
	case 'f':
		return jliteral(d, "false", J_FALSE);
	case 'n':
		return jliteral(d, "null", J_NULL);
	default:
		if (d->s[d->pos] == '-' || (d->s[d->pos] >= '0' &&
		    d->s[d->pos] <= '9'))
			return jnumber(d);
		return jsyntax(d);
	}
}

/* Parses pc's payload once. Returns 0 (state set) or GW_ENOMEM. */
static int
payload_parse(struct rule_payload *pc)
{
	struct jdoc	*d;

	if (pc->state != 0)
		return 0;
	if (pc->m->payload_len == 0 ||
	    !utf8_valid(pc->m->payload, pc->m->payload_len, true)) {
		pc->state = -1;
		return 0;
	}
	if ((d = gw_calloc(1, sizeof *d)) == NULL)
		return GW_ENOMEM;
	d->s = (const char *)pc->m->payload;
	d->len = pc->m->payload_len;
	jws(d);
	if (jvalue(d, 0) >= 0) {
		jws(d);
		if (d->pos != d->len)
			d->err = 1;
	}
	if (d->err == GW_ENOMEM) {
		gw_free(d->n);
		gw_free(d);
		return GW_ENOMEM;
	}
	if (d->err != 0) {
		gw_free(d->n);
		gw_free(d);
		pc->state = -1;
		return 0;
	}
	pc->doc = d;
	pc->state = 1;
	return 0;
}

/* See rules.h. */
void
rule_payload_init(struct rule_payload *pc, const struct msg *m)
{
	pc->m = m;
	pc->doc = NULL;
	pc->state = 0;
	pc->item = -1;
	pc->item_index = 0;
}

/* See rules.h. */
void
rule_payload_clear(struct rule_payload *pc)
{
	struct jdoc	*d = pc->doc;

	if (d != NULL) {
		gw_free(d->n);
		gw_free(d);
	}
	pc->doc = NULL;
	pc->state = 0;
	pc->item = -1;
	pc->item_index = 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

static size_t
utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static uint32_t
hex4(const char *p)
{
	return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 |
	    hexval(p[2]) << 4 | hexval(p[3]));
}

/*
 * Decodes the escaped string s[0..len) (valid, checked by the parser) into
 * o, which has room for len bytes (decoding never grows). Lone surrogates
 * become U+FFFD. Returns the decoded length.
 */
static size_t
junescape(const char *s, size_t len, char *o)
{
	size_t		i = 0, k = 0;
	uint32_t	cp, lo;

	while (i < len) {
		if (s[i] != '\\') {
			o[k++] = s[i++];
			continue;
		}
		switch (s[i + 1]) {
		case 'b': o[k++] = '\b'; break;
		case 'f': o[k++] = '\f'; break;
		case 'n': o[k++] = '\n'; break;
		case 'r': o[k++] = '\r'; break;
		case 't': o[k++] = '\t'; break;
		case 'u':
			cp = hex4(s + i + 2);
			i += 6;
			if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= len &&
			    s[i] == '\\' && s[i + 1] == 'u' &&
			    (lo = hex4(s + i + 2)) >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
				i += 6;
			} else if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;
			k += utf8_put(o + k, cp);
			continue;
		default: o[k++] = s[i + 1]; break;
		}
		i += 2;
	}
	return k;
}

/* Does string node n equal key? */
static bool
jkey_eq(const struct jdoc *d, const struct jnode *n, const char *key,
    size_t keylen)
{
	size_t	 len = n->end - n->start, dl;
	char	 small[128], *o;
	bool	 eq;

	if (!(n->flags & JF_ESC))
		return len == keylen && memcmp(d->s + n->start, key, len) == 0;
	if (keylen > len)
		return false;
	o = len <= sizeof small ? small : gw_malloc(len);
	if (o == NULL)
		return false;
	dl = junescape(d->s + n->start, len, o);
	eq = dl == keylen && memcmp(o, key, dl) == 0;
	if (o != small)
		gw_free(o);
	return eq;
}

/* Follows ph's path from node i; returns the node index or -1. */
static int
jfind(const struct jdoc *d, uint32_t i, const struct rule_ph *ph)
{
	const struct rule_step	*st;
	uint32_t		 c, k;
	size_t			 s;

	for (s = 0; s < ph->nsteps; s++) {
		st = &ph->steps[s];
		if (st->key != NULL) {
			if (d->n[i].type != J_OBJ)
				return -1;
			for (c = i + 1, k = 0; k < d->n[i].count; k++) {
				if (jkey_eq(d, &d->n[c], st->key, st->keylen))
					break;
				c = d->n[c + 1].next;
			}
			if (k == d->n[i].count)
				return -1;
			i = c + 1;
		} else {
			if (d->n[i].type != J_ARR || st->index >= d->n[i].count)
				return -1;
			for (c = i + 1, k = 0; k < st->index; k++)
				c = d->n[c].next;
			i = c;
		}
	}
	return (int)i;
}

/* Appends the compact JSON text of node n. */
static int
jcompact(const struct jdoc *d, const struct jnode *n, struct buf *b)
{
	const char	*s = d->s;
	size_t		 i, run;
	int		 instr = 0, rc;

	if (n->type == J_STR)
		return buf_append(b, s + n->start - 1, n->end - n->start + 2);
	for (i = n->start, run = i; i < n->end; i++) {
		if (instr) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				instr = 0;
		} else if (s[i] == '"')
			instr = 1;
		else if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' ||
		    s[i] == '\r') {
			if ((rc = buf_append(b, s + run, i - run)) != 0)
				return rc;
			run = i + 1;
		}
	}
	return buf_append(b, s + run, n->end - run);
}

/*
 * The common short forms of a JSON number without the C library: an
 * integer of up to 18 digits, or up to 15 significant digits with a
 * fraction and no exponent, whose digits and power of ten are both exact
 * doubles, so one division rounds exactly like strtod (Clinger's fast
 * path). True when *out was set.
 */
static bool
jnum_fast(const char *s, size_t len, bool is_int, struct rule_value *out)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
	    1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	uint64_t	 mant = 0;
	size_t		 i = 0, digits = 0, frac = 0;
	bool		 neg = false, dot = false;

	if (len > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	for (; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			mant = mant * 10 + (uint64_t)(s[i] - '0');
			digits++;
			frac += dot;
		} else if (s[i] == '.' && !dot && !is_int)
			dot = true;
		else
			return false;
	}
	if (digits == 0 || digits > (is_int ? 18 : 15))
		return false;
	if (is_int)
		rule_value_int(out, neg ? -(int64_t)mant : (int64_t)mant);
	else
		rule_value_real(out, (neg ? -(double)mant : (double)mant) /
		    pow10[frac]);
	return true;
}

/* Converts number token s[0..len): INTEGER when it fits, else REAL. */
static int
jnum_value(const char *s, size_t len, bool is_int, struct rule_value *out)
{
	char		 small[64], *t, *end;
	long long	 ll;
	double		 dd;

	if (jnum_fast(s, len, is_int, out))
		return 0;
	t = len < sizeof small ? small : gw_malloc(len + 1);
	if (t == NULL)
		return GW_ENOMEM;
	memcpy(t, s, len);
	t[len] = '\0';
	errno = 0;
	if (is_int) {
		ll = strtoll(t, &end, 10);
		if (errno == 0 && *end == '\0') {
			rule_value_int(out, ll);
			goto out;
		}
	}
	dd = strtod(t, NULL);
	rule_value_real(out, dd);
out:
	if (t != small)
		gw_free(t);
	return 0;
}

/* The typed value of node n (see rules.h "Values"). */
static int
jnode_value(const struct jdoc *d, const struct jnode *n,
    struct rule_value *out)
{
	struct buf	 b = BUF_INIT;
	char		*o;
	size_t		 len;
	int		 rc;

	switch (n->type) {
	case J_TRUE:
	case J_FALSE:
		rule_value_int(out, n->type == J_TRUE);
		return 0;
	case J_NUM:
		return jnum_value(d->s + n->start, n->end - n->start,
		    (n->flags & JF_INT) != 0, out);
	case J_STR:
		len = n->end - n->start;
		if (!(n->flags & JF_ESC)) {
			rule_value_bytes(out, RULE_VTEXT, d->s + n->start, len,
			    false);
			return 0;
		}
		if ((o = gw_malloc(len + 1)) == NULL)
			return GW_ENOMEM;
		len = junescape(d->s + n->start, len, o);
		o[len] = '\0';
		rule_value_bytes(out, RULE_VTEXT, o, len, true);
		return 0;
	case J_OBJ:
	case J_ARR:
		if ((rc = jcompact(d, n, &b)) != 0 ||
		    (rc = buf_take_string(&b, &o, &len)) != 0) {
			buf_free(&b);
			return rc;
		}
		rule_value_bytes(out, RULE_VTEXT, o, len, true);
		out->json = 1;
		return 0;
	default:
		rule_value_clear(out);
		return 0;
	}
}

/*
 * {payload_raw}: as the MQTT 5.0 Payload Format Indicator says when the
 * publisher set it (1 TEXT, 0 BLOB); else TEXT when valid UTF-8 without
 * NUL, else BLOB.
 */
static void
payload_raw(const struct msg *m, struct rule_value *out)
{
	struct props p;
	bool text;

	if (msg_props(m, &p) && props_has(&p, PROPS_PAYLOAD_FORMAT))
		text = p.payload_format == 1;
	else
		text = utf8_valid(m->payload, m->payload_len, false);
	rule_value_bytes(out, text ? RULE_VTEXT : RULE_VBLOB,
	    (const char *)m->payload, m->payload_len, false);
}

/*
 * The MQTT 5.0 properties of m a placeholder names: content type,
 * response topic and user properties are TEXT (the first user property
 * of that name), correlation data TEXT when valid UTF-8 without NUL, else
 * BLOB; NULL when m does not carry it (every 3.1.1 message).
 */
static void
message_prop(const struct rule_ph *ph, const struct msg *m,
    struct rule_value *out)
{
	struct props p;
	struct codec_iter it;
	struct codec_str n, v;

	if (!msg_props(m, &p))
		return;
	switch (ph->kind) {
	case PH_CONTENT_TYPE:
		if (props_has(&p, PROPS_CONTENT_TYPE))
			rule_value_bytes(out, RULE_VTEXT, p.content_type.ptr,
			    p.content_type.len, false);
		return;
	case PH_RESPONSE_TOPIC:
		if (props_has(&p, PROPS_RESPONSE_TOPIC))
			rule_value_bytes(out, RULE_VTEXT,
			    p.response_topic.ptr, p.response_topic.len, false);
		return;
	case PH_CORRELATION_DATA:
		if (props_has(&p, PROPS_CORRELATION_DATA))
			rule_value_bytes(out, utf8_valid(
			    p.correlation_data.ptr, p.correlation_data.len,
			    false) ? RULE_VTEXT : RULE_VBLOB,
			    p.correlation_data.ptr, p.correlation_data.len,
			    false);
		return;
	default:
		it = p.block;
		while (props_next_user(&it, &n, &v) == 1) {
			if (n.len == ph->steps[0].keylen && memcmp(n.ptr,
			    ph->steps[0].key, n.len) == 0) {
				rule_value_bytes(out, RULE_VTEXT, v.ptr, v.len,
				    false);
				return;
			}
		}
	}
}

/* Finds level number level of topic t: *p, *len. false if absent. */
static bool
topic_level_at(const char *t, size_t tlen, uint32_t level, const char **p,
    size_t *len)
{
	size_t		pos = 0, end;
	uint32_t	i;

	for (i = 0;; i++) {
		end = topic_level_end(t, tlen, pos);
		if (i == level) {
			*p = t + pos;
			*len = end - pos;
			return true;
		}
		if (end >= tlen)
			return false;
		pos = end + 1;
	}
}

/* See rules.h. */
int
rule_capture(const struct rule *r, size_t k, const char *topic,
    size_t topic_len, const char **p, size_t *len)
{
	if (k >= r->caps.n || !topic_level_at(topic, topic_len,
	    r->caps.levels[k], p, len))
		return GW_ENOTFOUND;
	return 0;
}

/*
 * Evaluates one placeholder for c's message into out (which holds nothing
 * owned). Returns 0 or GW_ENOMEM.
 */
int
extract_ph(const struct rule_ph *ph, const struct rule_ctx *c,
    struct rule_value *out)
{
	const struct msg	*m = c->m;
	const struct jdoc	*d;
	const char		*p;
	size_t			 len;
	int			 rc, i;

	rule_value_clear(out);
	switch (ph->kind) {
	case PH_CAPTURE:
		if (topic_level_at(m->topic, m->topic_len, ph->level, &p, &len))
			rule_value_bytes(out, RULE_VTEXT, p, len, false);
		return 0;
	case PH_TOPIC:
		rule_value_bytes(out, RULE_VTEXT, m->topic, m->topic_len,
		    false);
		return 0;
	case PH_CLIENT_ID:
		rule_value_bytes(out, RULE_VTEXT, m->client_id,
		    m->client_id_len, false);
		return 0;
	case PH_USERNAME:
		if (m->username != NULL)
			rule_value_bytes(out, RULE_VTEXT, m->username,
			    m->username_len, false);
		return 0;
	case PH_SOURCE:
		if (m->source != NULL)
			rule_value_bytes(out, RULE_VTEXT, m->source,
			    m->source_len, false);
		return 0;
	case PH_QOS:
		rule_value_int(out, m->qos);
		return 0;
	case PH_RETAIN:
		rule_value_int(out, m->retain);
		return 0;
	case PH_RECEIVED_MS:
		rule_value_int(out, m->received_ms);
		return 0;
	case PH_PAYLOAD_RAW:
		payload_raw(m, out);
		return 0;
	case PH_ITEM_INDEX:
		if (c->pc->item >= 0)
			rule_value_int(out, c->pc->item_index);
		return 0;
	case PH_ITEM:
		d = c->pc->doc;
		if (c->pc->item < 0 || d == NULL || (i = jfind(d,
		    (uint32_t)c->pc->item, ph)) < 0)
			return 0;
		return jnode_value(d, &d->n[i], out);
	case PH_TIME_SKEW:		/* transform.c */
		return 0;
	case PH_CONTENT_TYPE:
	case PH_RESPONSE_TOPIC:
	case PH_CORRELATION_DATA:
	case PH_USER_PROPERTY:
		message_prop(ph, m, out);
		return 0;
	default:
		break;
	}
	if ((rc = payload_parse(c->pc)) != 0)
		return rc;
	d = c->pc->doc;
	if (ph->kind == PH_PAYLOAD) {
		if (d == NULL || (d->n[0].type != J_NUM &&
		    d->n[0].type != J_STR && d->n[0].type != J_OBJ)) {
			payload_raw(m, out);
			return 0;
		}
		return jnode_value(d, &d->n[0], out);
	}
	if (d == NULL || (i = jfind(d, 0, ph)) < 0)
		return 0;
	return jnode_value(d, &d->n[i], out);
}

/*
 * Finds the array that ph ({payload} or a payload path) names: returns 1
 * with its first element's node in *first and its length in *count, 0
 * when it is missing or null (or the payload is empty), GW_EMALFORMED
 * with *what naming what was found instead, GW_ENOMEM.
 */
int
extract_array(struct rule_payload *pc, const struct rule_ph *ph,
    uint32_t *first, uint32_t *count, const char **what)
{
	static const char *const names[] = { "null", "a boolean",
	    "a boolean", "a number", "a string", "an object", "an array" };
	const struct jdoc	*d;
	int			 rc, i;

	*first = *count = 0;
	if ((rc = payload_parse(pc)) != 0)
		return rc;
	if ((d = pc->doc) == NULL) {
		*what = "the payload is not JSON";
		return pc->m->payload_len == 0 ? 0 : GW_EMALFORMED;
	}
	if ((i = jfind(d, 0, ph)) < 0 || d->n[i].type == J_NULL)
		return 0;
	if (d->n[i].type != J_ARR) {
		*what = names[d->n[i].type];
		return GW_EMALFORMED;
	}
	*first = (uint32_t)i + 1;
	*count = d->n[i].count;
	return 1;
}

/* The node after element node's subtree: the next element. */
uint32_t
extract_next(const struct rule_payload *pc, uint32_t node)
{
	const struct jdoc	*d = pc->doc;

	return d->n[node].next;
}

/*
 * Appends the compact JSON text of pc's current item to b (nothing when
 * there is none). 0 or GW_ENOMEM.
 */
int
extract_item_json(struct rule_payload *pc, struct buf *b)
{
	const struct jdoc	*d = pc->doc;

	if (pc->item < 0 || d == NULL)
		return 0;
	return jcompact(d, &d->n[pc->item], b);
}

/*
 * Appends the payload's compact JSON text to b and sets *is_json, or sets
 * *is_json to 0 (b untouched) when it is not JSON. 0 or GW_ENOMEM.
 */
int
extract_payload_json(struct rule_payload *pc, struct buf *b, int *is_json)
{
	const struct jdoc	*d;
	int			 rc;

	*is_json = 0;
	if ((rc = payload_parse(pc)) != 0)
		return rc;
	if ((d = pc->doc) == NULL)
		return 0;
	*is_json = 1;
	return jcompact(d, &d->n[0], b);
}

/*
 * Parses s[0..len) as JSON (the |json transform) and evaluates the path
 * steps[0..nsteps) in it (none: the whole value) into out, typed as a
 * payload path is. *is_json is false (out NULL) when s is not JSON; a
 * missing path is NULL. Strings may borrow from s. 0 or GW_ENOMEM.
 */
int
extract_json_text(const char *s, size_t len, const struct rule_step *steps,
    size_t nsteps, struct rule_value *out, bool *is_json)
{
	struct jdoc	d;
	struct rule_ph	ph;
	int		i, rc = 0;

	rule_value_clear(out);
	*is_json = false;
	if (len == 0 || len > UINT32_MAX || !utf8_valid(s, len, true))
		return 0;
	memset(&d, 0, sizeof d);
	d.s = s;
	d.len = len;
	jws(&d);
	if (jvalue(&d, 0) >= 0) {
		jws(&d);
		if (d.pos != d.len)
			d.err = 1;
	}
	if (d.err == 0) {
		*is_json = true;
		memset(&ph, 0, sizeof ph);
		ph.steps = (struct rule_step *)steps;
		ph.nsteps = nsteps;
		if ((i = jfind(&d, 0, &ph)) >= 0)
			rc = jnode_value(&d, &d.n[i], out);
	} else if (d.err == GW_ENOMEM)
		rc = GW_ENOMEM;
	gw_free(d.n);
	return rc;
}
