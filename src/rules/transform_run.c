/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running a compiled transform chain on a value (store thread); see the
 * DESIGN comment in transform.c for the types and the counters. Every
 * step leaves NULL, a value it borrowed from the message, payload cache or
 * rule set, or bytes it owns; data a step cannot read becomes NULL and is
 * counted once.
 */
#include <sys/types.h>

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "rules/devtime.h"
#include "rules/transform_int.h"

/* Makes v NULL and counts the failure (unless quiet). */
static void
fail(const struct rule_ctx *c, struct rule_value *v, enum rule_counter k,
    bool quiet)
{
	rule_value_clear(v);
	if (!quiet && c->r != NULL)
		rule_count(c->r, k, 1);
}

/* Replaces v with new bytes p[0..len) (owned). */
static void
set_owned(struct rule_value *v, uint8_t type, char *p, size_t len)
{
	rule_value_clear(v);
	rule_value_bytes(v, type, p, len, true);
}

static int
hexdigit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
b64digit(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/*
 * Decodes base64 (standard or URL-safe alphabet, padding optional but
 * complete when present) into o (room for len bytes). Returns the byte
 * count or -1.
 */
static ssize_t
unbase64(const char *s, size_t len, uint8_t *o)
{
	size_t		i, n = 0, pad = 0;
	uint32_t	acc = 0;
	int		d, bits = 0;

	while (pad < len && s[len - 1 - pad] == '=')
		pad++;
	if (pad > 2 || (pad > 0 && len % 4 != 0))
		return -1;
	len -= pad;
	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		if ((d = b64digit((unsigned char)s[i])) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	if (acc != 0)
		return -1;
	return (ssize_t)n;
}

/* Runs one |time step on v. */
static int
step_time(const struct transform_step *st, const struct rule_ctx *c,
    struct rule_value *v, bool quiet)
{
	struct rule_value	 num = RULE_VALUE_INIT;
	char			 t[32];
	int64_t			 ms;
	int			 rc = GW_EMALFORMED, n;

	if (st->fmt != NULL) {
		if (v->type == RULE_VINTEGER) {
			n = snprintf(t, sizeof t, "%" PRId64, v->u.i);
			rc = devtime_parse_format(st->fmt, t, (size_t)n, &ms);
		} else if (v->type == RULE_VTEXT)
			rc = devtime_parse_format(st->fmt, v->u.s.p,
			    v->u.s.len, &ms);
	} else if (v->type == RULE_VINTEGER)
		rc = devtime_from_int(v->u.i, &ms);
	else if (v->type == RULE_VREAL)
		rc = devtime_from_real(v->u.d, &ms);
	else if (v->type == RULE_VTEXT) {
		if (transform_number_text(v->u.s.p, v->u.s.len, &num) == 0)
			rc = num.type == RULE_VINTEGER ?
			    devtime_from_int(num.u.i, &ms) :
			    devtime_from_real(num.u.d, &ms);
		else
			rc = devtime_parse_iso(v->u.s.p, v->u.s.len, &ms);
	}
	if (rc != 0) {
		fail(c, v, RULE_CTIME_INVALID, quiet);
		return 0;
	}
	rule_value_clear(v);
	rule_value_int(v, ms);
	return 0;
}

/* Runs one binary decoding step on v (bytes). */
static void
step_bin(const struct transform_step *st, const struct rule_ctx *c,
    struct rule_value *v, bool quiet)
{
	const struct xf_def	*d = st->def;
	const uint8_t		*p = (const uint8_t *)v->u.s.p;
	uint64_t		 u = 0;
	uint32_t		 u32;
	float			 f;
	double			 x;
	size_t			 i;

	if ((uint64_t)st->n + d->width > v->u.s.len) {
		fail(c, v, RULE_CXFORM_NULL, quiet);
		return;
	}
	p += st->n;
	for (i = 0; i < d->width; i++)
		u |= (uint64_t)p[d->be ? i : d->width - 1 - i] <<
		    (8 * (d->width - 1 - i));
	rule_value_clear(v);
	if (d->kind == 'f') {
		if (d->width == 4) {
			u32 = (uint32_t)u;
			memcpy(&f, &u32, sizeof f);
			x = f;
		} else
			memcpy(&x, &u, sizeof x);
		if (!isfinite(x)) {
			fail(c, v, RULE_CXFORM_NULL, quiet);
			return;
		}
		rule_value_real(v, x);
	} else if (d->kind == 'i') {
		if (d->width < 8 && (u >> (8 * d->width - 1)) != 0)
			u |= ~(uint64_t)0 << (8 * d->width);
		rule_value_int(v, (int64_t)u);
	} else if (u > INT64_MAX)
		rule_value_real(v, (double)u);
	else
		rule_value_int(v, (int64_t)u);
}

/* |mul and |add. */
static void
step_arith(const struct transform_step *st, const struct rule_ctx *c,
    struct rule_value *v, bool quiet)
{
	bool	mul = st->def->op == XF_MUL;
	int64_t	r;
	double	x;

	if (v->type == RULE_VINTEGER && st->isint) {
		if (mul ? !__builtin_mul_overflow(v->u.i, st->n, &r) :
		    !__builtin_add_overflow(v->u.i, st->n, &r)) {
			v->u.i = r;
			return;
		}
	}
	x = v->type == RULE_VINTEGER ? (double)v->u.i : v->u.d;
	x = mul ? x * st->d : x + st->d;
	if (!isfinite(x)) {
		fail(c, v, RULE_CXFORM_NULL, quiet);
		return;
	}
	rule_value_real(v, x);
}

/* |round:N of a REAL: the decimal rounding printf does, read back. */
static void
step_round(const struct transform_step *st, struct rule_value *v)
{
	char	buf[400];

	if (v->type != RULE_VREAL)
		return;
	snprintf(buf, sizeof buf, "%.*f", (int)st->n, v->u.d);
	v->u.d = strtod(buf, NULL);
}

/* |int and |float. */
static void
step_number(const struct transform_step *st, const struct rule_ctx *c,
    struct rule_value *v, bool quiet)
{
	struct rule_value	n = RULE_VALUE_INIT;
	double			x;

	if (v->type == RULE_VTEXT || v->type == RULE_VBLOB) {
		if (v->type == RULE_VBLOB ||
		    transform_number_text(v->u.s.p, v->u.s.len, &n) != 0) {
			fail(c, v, RULE_CXFORM_NULL, quiet);
			return;
		}
		rule_value_clear(v);
		*v = n;
	}
	if (st->def->op == XF_FLOAT) {
		if (v->type == RULE_VINTEGER)
			rule_value_real(v, (double)v->u.i);
		return;
	}
	if (v->type == RULE_VINTEGER)
		return;
	x = trunc(v->u.d);
	if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) {
		fail(c, v, RULE_CXFORM_NULL, quiet);
		return;
	}
	rule_value_int(v, (int64_t)x);
}

/* Steps that make new bytes: str, lower, upper, hex, unhex, base64,
 * unbase64. */
static int
step_bytes(const struct transform_step *st, const struct rule_ctx *c,
    struct rule_value *v, bool quiet)
{
	static const char	 hx[] = "0123456789abcdef";
	struct buf		 b = BUF_INIT;
	const char		*p = v->u.s.p;
	size_t			 len = v->u.s.len, i, n;
	ssize_t			 bn;
	char			*o;
	int			 rc, hi, lo;

	switch (st->def->op) {
	case XF_STR:
		if (v->type == RULE_VTEXT) {
			v->json = 0;
			return 0;
		}
		if ((rc = value_append_text(&b, v)) != 0 ||
		    (rc = buf_take_string(&b, &o, &n)) != 0) {
			buf_free(&b);
			return rc;
		}
		set_owned(v, RULE_VTEXT, o, n);
		return 0;
	case XF_LOWER:
	case XF_UPPER:
		if (v->owned)
			o = (char *)p;
		else if ((o = gw_strndup(p, len)) == NULL)
			return GW_ENOMEM;
		for (i = 0; i < len; i++)
			o[i] = (char)(st->def->op == XF_LOWER ?
			    tolower((unsigned char)o[i]) :
			    toupper((unsigned char)o[i]));
		if (!v->owned)
			set_owned(v, RULE_VTEXT, o, len);
		v->json = 0;
		return 0;
	case XF_HEX:
		if (len > (SIZE_MAX - 1) / 2 || (o = gw_malloc(len * 2 + 1)) ==
		    NULL)
			return GW_ENOMEM;
		for (i = 0; i < len; i++) {
			o[2 * i] = hx[(unsigned char)p[i] >> 4];
			o[2 * i + 1] = hx[(unsigned char)p[i] & 15];
		}
		o[2 * len] = '\0';
		set_owned(v, RULE_VTEXT, o, len * 2);
		return 0;
	case XF_UNHEX:
		if (len % 2 != 0) {
			fail(c, v, RULE_CXFORM_NULL, quiet);
			return 0;
		}
		if ((o = gw_malloc(len / 2 + 1)) == NULL)
			return GW_ENOMEM;
		for (i = 0; i < len; i += 2) {
			hi = hexdigit((unsigned char)p[i]);
			lo = hexdigit((unsigned char)p[i + 1]);
			if (hi < 0 || lo < 0) {
				gw_free(o);
				fail(c, v, RULE_CXFORM_NULL, quiet);
				return 0;
			}
			o[i / 2] = (char)(hi << 4 | lo);
		}
		set_owned(v, RULE_VBLOB, o, len / 2);
		return 0;
	case XF_BASE64:
		if ((rc = value_append_base64(&b, p, len)) != 0 ||
		    (rc = buf_take_string(&b, &o, &n)) != 0) {
			buf_free(&b);
			return rc;
		}
		set_owned(v, RULE_VTEXT, o, n);
		return 0;
	case XF_UNBASE64:
		if ((o = gw_malloc(len + 1)) == NULL)
			return GW_ENOMEM;
		if ((bn = unbase64(p, len, (uint8_t *)o)) < 0) {
			gw_free(o);
			fail(c, v, RULE_CXFORM_NULL, quiet);
			return 0;
		}
		set_owned(v, RULE_VBLOB, o, (size_t)bn);
		return 0;
	default:
		return 0;
	}
}

/* |json[:path]. */
static int
step_json(const struct transform_step *st, const struct rule_ctx *c,
    struct rule_value *v, bool quiet)
{
	struct rule_value	 r = RULE_VALUE_INIT;
	bool			 is_json;
	char			*o;
	int			 rc;

	if ((rc = extract_json_text(v->u.s.p, v->u.s.len, st->path.steps,
	    st->path.nsteps, &r, &is_json)) != 0)
		return rc;
	if (!is_json) {
		fail(c, v, RULE_CXFORM_NULL, quiet);
		return 0;
	}
	if (v->owned && !r.owned && (r.type == RULE_VTEXT ||
	    r.type == RULE_VBLOB)) {
		if ((o = gw_strndup(r.u.s.p, r.u.s.len)) == NULL)
			return GW_ENOMEM;
		rule_value_bytes(&r, r.type, o, r.u.s.len, true);
	}
	rule_value_clear(v);
	*v = r;
	return 0;
}

/* Runs steps xf[0..n) on v. Returns 0 or GW_ENOMEM. */
static int
run(const struct transform_step *xf, size_t n, const struct rule_ctx *c,
    struct rule_value *v, bool quiet)
{
	const struct transform_step	*st;
	uint8_t				 accept;
	size_t				 i;
	int				 rc;

	for (i = 0; i < n; i++) {
		st = &xf[i];
		if (v->type == RULE_VNULL) {
			if (st->def->op == XF_DEFAULT) {
				/* Borrowed from the rule set. */
				*v = st->val;
				v->owned = 0;
			}
			continue;
		}
		accept = st->def->accept;
		if (accept & XFM_RAW)
			accept |= XFM_TEXT | XFM_BLOB;
		if (st->def->op == XF_TIME && st->fmt != NULL)
			accept &= ~(XFM_REAL | XFM_BLOB);
		if ((transform_value_mask(v) & accept) == 0) {
			fail(c, v, st->def->op == XF_TIME ?
			    RULE_CTIME_INVALID : RULE_CXFORM_NULL, quiet);
			continue;
		}
		rc = 0;
		switch (st->def->op) {
		case XF_MUL:
		case XF_ADD:
			step_arith(st, c, v, quiet);
			break;
		case XF_ROUND:
			step_round(st, v);
			break;
		case XF_INT:
		case XF_FLOAT:
			step_number(st, c, v, quiet);
			break;
		case XF_JSON:
			rc = step_json(st, c, v, quiet);
			break;
		case XF_DEFAULT:
			break;
		case XF_TIME:
			rc = step_time(st, c, v, quiet);
			break;
		case XF_BIN:
			step_bin(st, c, v, quiet);
			break;
		default:
			rc = step_bytes(st, c, v, quiet);
			break;
		}
		if (rc != 0) {
			rule_value_clear(v);
			return rc;
		}
	}
	return 0;
}

/*
 * The rule's device time for c's message: *ok false when the rule has
 * none or it is NULL (missing, unreadable). Never counts.
 */
static int
device_time(const struct rule_ctx *c, int64_t *t, bool *ok)
{
	struct rule_value	 v = RULE_VALUE_INIT;
	const struct rule	*r = c->r;
	int			 rc;

	*ok = false;
	if (r == NULL || r->time_ph == NULL)
		return 0;
	if ((rc = extract_ph(r->time_ph, c, &v)) == 0)
		rc = run(r->time_ph->xf, r->time_nxf, c, &v, true);
	if (rc == 0 && v.type == RULE_VINTEGER) {
		*t = v.u.i;
		*ok = true;
	}
	rule_value_clear(&v);
	return rc;
}

/* Device time minus received_ms when beyond max_time_skew. */
static int
skew(const struct rule_ctx *c, int64_t *d, bool *flagged)
{
	int64_t		t;
	uint64_t	a;
	bool		ok;
	int		rc;

	*flagged = false;
	if ((rc = device_time(c, &t, &ok)) != 0 || !ok)
		return rc;
	if (__builtin_sub_overflow(t, c->m->received_ms, d))
		*d = t < 0 ? INT64_MIN : INT64_MAX;
	a = *d < 0 ? -(uint64_t)*d : (uint64_t)*d;
	*flagged = c->r->has_max_skew && a > c->r->max_time_skew_ms;
	return 0;
}

/*
 * Evaluates placeholder ph with its transforms into out (holding nothing
 * owned). Returns 0 or GW_ENOMEM.
 */
int
transform_ph_eval(const struct rule_ph *ph, const struct rule_ctx *c,
    struct rule_value *out)
{
	int64_t	d;
	bool	flagged;
	int	rc;

	if (ph->kind == PH_TIME_SKEW) {
		rule_value_clear(out);
		if ((rc = skew(c, &d, &flagged)) == 0 && flagged)
			rule_value_int(out, d);
		return rc == 0 && ph->nxf > 0 ? run(ph->xf, ph->nxf, c, out,
		    false) : rc;
	}
	if ((rc = extract_ph(ph, c, out)) != 0 || ph->nxf == 0)
		return rc;
	return run(ph->xf, ph->nxf, c, out, false);
}

/* Counts c's publish when its device time is beyond max_time_skew. */
int
transform_count_skew(const struct rule_ctx *c)
{
	int64_t	d;
	bool	flagged;
	int	rc;

	if (!c->r->has_max_skew || c->r->time_ph == NULL)
		return 0;
	if ((rc = skew(c, &d, &flagged)) == 0 && flagged)
		rule_count(c->r, RULE_CTIME_SKEW, 1);
	return rc;
}

