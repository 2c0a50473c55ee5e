/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the template engine (src/rules/template.c). The
 * input up to the first newline is a template, compiled with two topic
 * captures and ${NAME} references allowed (FUZZ_A and FUZZ_B are set, one
 * of them holding '$', '{' and '}'); the rest is the payload of the
 * message it is rendered for.
 *
 * Invariants: compiling either succeeds or reports a reason; rendering in
 * the three modes succeeds; the sealed text (secrets as ${NAME}, '$'
 * doubled) turns back into exactly the plain text through rules_unseal()
 * and never holds a secret's value; the URL form, percent-decoded, is the
 * plain text whenever the template's literal text has no '%' of its own;
 * and evaluating a template that is not a lone placeholder gives TEXT equal
 * to the plain rendering.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "buf.h"
#include "mem.h"
#include "rules/rules_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

#define SECRET_B	"s3cr$t{x}"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("FUZZ_A", "alpha", 1);
	setenv("FUZZ_B", SECRET_B, 1);
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into a new buffer; *out_len its length. */
static char *
pct_decode(const char *s, size_t len, size_t *out_len)
{
	char	*o;
	size_t	 i, k = 0;

	if ((o = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len &&
		    hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			o[k++] = (char)(hexval(s[i + 1]) * 16 +
			    hexval(s[i + 2]));
			i += 2;
		} else
			o[k++] = s[i];
	}
	*out_len = k;
	return o;
}

/* True when a literal (SEG_TEXT) segment of t holds c. */
static bool
literal_has(const struct rule_tmpl *t, char c)
{
	size_t	i;

	for (i = 0; i < t->nsegs; i++)
		if (t->segs[i].kind != SEG_PH &&
		    memchr(t->segs[i].text, c, t->segs[i].len) != NULL)
			return true;
	return false;
}

static void
check(const struct rule_tmpl *t, const struct rule_ctx *c)
{
	struct rule_rendered	 plain, sealed, url;
	struct rule_value	 v = RULE_VALUE_INIT;
	char			*back, *dec;
	size_t			 blen, dlen;

	CHECK(tmpl_render(t, c, 0, &plain) == 0);
	CHECK(!plain.sealed && strlen(plain.text) <= plain.len);
	CHECK(tmpl_render(t, c, TMPL_SEAL, &sealed) == 0);
	CHECK(sealed.sealed == t->secret);
	if (sealed.sealed) {
		CHECK(rules_unseal(sealed.text, sealed.len, &back, &blen) ==
		    0);
		CHECK(blen == plain.len &&
		    memcmp(back, plain.text, blen) == 0);
		gw_free(back);
		CHECK(memmem(sealed.text, sealed.len, SECRET_B,
		    strlen(SECRET_B)) == NULL);
	} else
		CHECK(sealed.len == plain.len &&
		    memcmp(sealed.text, plain.text, plain.len) == 0);
	CHECK(tmpl_render(t, c, TMPL_URL, &url) == 0);
	if (!literal_has(t, '%')) {
		dec = pct_decode(url.text, url.len, &dlen);
		CHECK(dec != NULL);
		CHECK(dlen == plain.len && memcmp(dec, plain.text, dlen) == 0);
		free(dec);
	}
	if (!(t->nsegs == 1 && t->segs[0].kind == SEG_PH)) {
		CHECK(tmpl_eval(t, c, &v) == 0);
		CHECK(v.type == RULE_VTEXT && v.u.s.len == plain.len &&
		    memcmp(v.u.s.p, plain.text, plain.len) == 0);
		rule_value_clear(&v);
	}
	CHECK(tmpl_infer_type(t) != NULL);
	gw_free(plain.text);
	gw_free(sealed.text);
	gw_free(url.text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rule_payload	 pc;
	struct rule_tmpl	*t;
	struct rule_caps	 caps;
	struct rule_ctx		 c;
	struct gw_error		 err;
	struct msg		*m;
	const uint8_t		*nl;
	char			*text;
	char			*names[2] = { "site", "dev" };
	uint32_t		 levels[2] = { 1, 3 };
	size_t			 tlen;
	int			 rc;

	if ((nl = memchr(data, '\n', size)) == NULL)
		nl = data + size;
	tlen = (size_t)(nl - data);
	if (tlen > 4096 || memchr(data, '\0', tlen) != NULL)
		return 0;
	if ((text = malloc(tlen + 1)) == NULL)
		return 0;
	memcpy(text, data, tlen);
	text[tlen] = '\0';
	memset(&caps, 0, sizeof caps);
	caps.names = names;
	caps.levels = levels;
	caps.n = 2;
	caps.items = true;	/* {item...} compiles (NULL outside foreach) */
	memset(&err, 0, sizeof err);
	rc = tmpl_compile(text, &caps, true, &t, &err);
	CHECK(rc == 0 || (rc == GW_ECONFIG && err.msg[0] != '\0'));
	CHECK(rc != 0 || t != NULL);
	if (rc == 0) {
		m = msg_new("site/s 1/dev/d%9/x", 18, "cid/$", 5, "us er", 5,
		    nl < data + size ? nl + 1 : nl,
		    nl < data + size ? size - tlen - 1 : 0, 2, 1,
		    1767225600000LL);
		if (m != NULL) {
			rule_payload_init(&pc, m);
			c.r = NULL;
			c.m = m;
			c.pc = &pc;
			check(t, &c);
			rule_payload_clear(&pc);
			msg_unref(&m);
		}
		tmpl_free(t);
	}
	free(text);
	return 0;
}
