/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the payload JSON extractor (src/rules/extract.c).
 * The input is a payload path and a payload: the bytes up to the first
 * newline are appended to "payload" to form a placeholder
 * ("{payload.a[0]}"), the rest is the payload of a message. Every
 * placeholder kind is then evaluated against that message.
 *
 * The extractor is checked against cJSON as a second opinion. When the
 * extractor takes the payload for JSON, its compact text must parse with
 * cJSON, be no longer than the payload and come out unchanged when
 * compacted again. The value the path selects must agree with what cJSON
 * finds by walking the same steps: a string is TEXT with the same bytes, a
 * number the same double, true/false the integers 1/0, null or a missing
 * member NULL, and an object or array JSON text that cJSON reads back as
 * the same kind of container.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/msg.h"
#include "buf.h"
#include "rules/rules_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

/* Walks ph's steps in doc as cJSON sees them; NULL when absent. */
static const cJSON *
walk(const cJSON *doc, const struct rule_ph *ph)
{
	const cJSON	*j = doc, *e;
	size_t		 s;
	uint32_t	 k;

	for (s = 0; s < ph->nsteps && j != NULL; s++) {
		if (ph->steps[s].key != NULL) {
			if (!cJSON_IsObject(j) ||
			    strlen(ph->steps[s].key) != ph->steps[s].keylen)
				return NULL;
			j = cJSON_GetObjectItemCaseSensitive(j,
			    ph->steps[s].key);
		} else {
			if (!cJSON_IsArray(j))
				return NULL;
			k = 0;
			e = j->child;
			while (e != NULL && k < ph->steps[s].index) {
				e = e->next;
				k++;
			}
			j = e;
		}
	}
	return j;
}

/* Compares the extracted value v with cJSON's node j. */
static void
agree(const struct rule_value *v, const cJSON *j)
{
	cJSON	*back;

	if (j == NULL || cJSON_IsNull(j)) {
		CHECK(v->type == RULE_VNULL);
		return;
	}
	if (cJSON_IsBool(j)) {
		CHECK(v->type == RULE_VINTEGER);
		CHECK(v->u.i == (cJSON_IsTrue(j) ? 1 : 0));
	} else if (cJSON_IsNumber(j)) {
		CHECK(v->type == RULE_VINTEGER || v->type == RULE_VREAL);
		if (v->type == RULE_VINTEGER)
			CHECK((double)v->u.i == j->valuedouble);
		else
			CHECK(v->u.d == j->valuedouble);
	} else if (cJSON_IsString(j)) {
		CHECK(v->type == RULE_VTEXT && !v->json);
		/* cJSON cuts a string at an escaped NUL. */
		if (memchr(v->u.s.p, '\0', v->u.s.len) == NULL)
			CHECK(strlen(j->valuestring) == v->u.s.len &&
			    memcmp(j->valuestring, v->u.s.p, v->u.s.len) == 0);
	} else {
		CHECK(v->type == RULE_VTEXT && v->json);
		back = cJSON_ParseWithLength(v->u.s.p, v->u.s.len);
		CHECK(back != NULL);
		CHECK(cJSON_IsObject(back) == cJSON_IsObject(j));
		CHECK(cJSON_GetArraySize(back) == cJSON_GetArraySize(j));
		cJSON_Delete(back);
	}
}

/* True when b holds a \\u escape of a UTF-16 surrogate. */
static bool
lone_surrogate(const struct buf *b)
{
	const char	*p = (const char *)buf_head(b);
	size_t		 i, n = buf_used(b);

	for (i = 0; i + 3 < n; i++)
		if (p[i] == '\\' && p[i + 1] == 'u' &&
		    (p[i + 2] == 'd' || p[i + 2] == 'D') &&
		    p[i + 3] != '\0' &&
		    strchr("89abcdefABCDEF", p[i + 3]) != NULL)
			return true;
	return false;
}

/* Compacts payload p again and checks that nothing changes. */
static void
recompact(const struct buf *b)
{
	struct rule_payload	 pc;
	struct buf		 b2 = BUF_INIT;
	struct msg		*m;
	int			 is_json;

	if ((m = msg_new("t", 1, "c", 1, NULL, 0, buf_head(b), buf_used(b), 0,
	    0, 0)) == NULL)
		return;
	rule_payload_init(&pc, m);
	if (extract_payload_json(&pc, &b2, &is_json) == 0) {
		CHECK(is_json);
		CHECK(buf_used(&b2) == buf_used(b));
		CHECK(memcmp(buf_head(&b2), buf_head(b), buf_used(b)) == 0);
	}
	rule_payload_clear(&pc);
	buf_free(&b2);
	msg_unref(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const others[] = { "{payload}", "{payload_raw}",
	    "{topic}", "{client_id}", "{username}", "{qos}", "{retain}",
	    "{received_ms}", "{site}" };
	struct rule_value	 v = RULE_VALUE_INIT;
	struct rule_payload	 pc;
	struct rule_tmpl	*t = NULL, *o;
	struct rule_caps	 caps;
	struct rule_ctx		 c;
	struct gw_error		 err;
	struct buf		 b = BUF_INIT;
	struct msg		*m;
	const uint8_t		*nl;
	char			*text;
	char			*cap_names[1] = { "site" };
	uint32_t		 cap_levels[1] = { 0 };
	size_t			 plen, i;
	cJSON			*doc = NULL;
	int			 is_json;

	if ((nl = memchr(data, '\n', size)) == NULL || nl - data > 256)
		return 0;
	plen = (size_t)(nl - data);
	if ((text = malloc(plen + 10)) == NULL)
		return 0;
	memcpy(text, "{payload", 8);
	memcpy(text + 8, data, plen);
	memcpy(text + 8 + plen, "}", 2);
	memset(&caps, 0, sizeof caps);
	caps.items = true;	/* {item...} compiles (NULL outside foreach) */
	caps.names = cap_names;
	caps.levels = cap_levels;
	caps.n = 1;
	if (memchr(text, '\0', plen + 9) != NULL ||
	    tmpl_compile(text, &caps, false, &t, &err) != 0)
		t = NULL;
	else if (t->nsegs != 1 || t->segs[0].kind != SEG_PH) {
		tmpl_free(t);
		t = NULL;
	}
	m = msg_new("site/a/b", 8, "dev-1", 5, "user", 4, nl + 1,
	    size - plen - 1, 1, 0, 1767225600000LL);
	if (m == NULL)
		goto out;
	rule_payload_init(&pc, m);
	c.r = NULL;
	c.m = m;
	c.pc = &pc;

	if (extract_payload_json(&pc, &b, &is_json) == 0 && is_json) {
		CHECK(buf_used(&b) <= m->payload_len);
		doc = cJSON_ParseWithLength((const char *)buf_head(&b),
		    buf_used(&b));
		/*
		 * cJSON refuses a lone UTF-16 surrogate escape, which the
		 * extractor accepts (and decodes as U+FFFD).
		 */
		CHECK(doc != NULL || lone_surrogate(&b));
		recompact(&b);
	}
	if (t != NULL && t->segs[0].ph.kind == PH_PAYLOAD_PATH &&
	    tmpl_eval(t, &c, &v) == 0) {
		if (!is_json)
			CHECK(v.type == RULE_VNULL);
		else if (doc != NULL)
			agree(&v, walk(doc, &t->segs[0].ph));
		rule_value_clear(&v);
	}
	for (i = 0; i < sizeof others / sizeof others[0]; i++) {
		if (tmpl_compile(others[i], &caps, false, &o, &err) != 0)
			continue;
		if (tmpl_eval(o, &c, &v) == 0)
			CHECK(v.type <= RULE_VBLOB);
		rule_value_clear(&v);
		tmpl_free(o);
	}
	rule_payload_clear(&pc);
out:
	cJSON_Delete(doc);
	buf_free(&b);
	msg_unref(&m);
	tmpl_free(t);
	free(text);
	return 0;
}
