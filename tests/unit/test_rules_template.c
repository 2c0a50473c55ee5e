/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/rules/template.c and the renderers in action.c:
 * literal braces and dollars, mixed text with exact numbers, typed lone
 * placeholders, percent-encoded URLs, the default webhook envelope (JSON,
 * text and base64 payloads), JSON body templates, headers, sealed secrets
 * and rules_unseal(), the bridge topic, and inferred column types.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include "cutest.h"
#include "mem.h"
#include "mqtt/props.h"
#include "rules/rules.h"

static struct msg *
mk(const char *topic, const void *payload, size_t plen)
{
	return msg_new(topic, strlen(topic), "dev-7", 5, "bob", 3, payload,
	    plen, 2, 0, 1700000000123LL);
}

static struct rule_set *
load(const char *text)
{
	struct rule_set	*set;

	set = rules_load_json(text, strlen(text), "t", NULL, NULL, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL(set);
	return set;
}

/* Evaluates column i of rule 0 for m into v. */
static void
col(struct rule_set *set, struct msg *m, size_t i, struct rule_value *v)
{
	const struct rule	*r = rule_set_rule(set, 0);
	struct rule_payload	 pc;

	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_tmpl_eval(rule_sqlite(r)->cols[i].tmpl, r, m, &pc,
	    v), 0);
	rule_payload_clear(&pc);
}

static int
text_is(const struct rule_value *v, const char *s)
{
	if (v->type != RULE_VTEXT || v->u.s.len != strlen(s) ||
	    memcmp(v->u.s.p, s, v->u.s.len) != 0) {
		fprintf(stderr, "\n got type %d \"%.*s\" want \"%s\"\n",
		    v->type, v->type == RULE_VTEXT ? (int)v->u.s.len : 0,
		    v->type == RULE_VTEXT ? v->u.s.p : "", s);
		return 0;
	}
	return 1;
}

static void
test_text(void)
{
	static const char p[] = "{\"t\": 21.123456789, \"n\": "
	    "9007199254740993, \"x\": 0.1, \"s\": \"$5\", \"o\": {\"a\": 1}}";
	struct rule_set		*set;
	struct rule_value	 v = RULE_VALUE_INIT;
	struct msg		*m;
	size_t			 before = gw_mem_used();

	set = load("[{\"name\": \"r\", \"topic\": \"a/{dev}\", \"sqlite\": "
	    "{\"table\": \"t\", \"columns\": {"
	    "\"c0\": \"{{literal}} and }} {dev}\","
	    "\"c1\": \"t={payload.t} n={payload.n} x={payload.x}\","
	    "\"c2\": \"{qos}/{retain}/{received_ms}/{username}/{client_id}\","
	    "\"c3\": \"plain $$ text $ ok\","
	    "\"c4\": \"{payload.missing}-{payload.o}\","
	    "\"c5\": \"\","
	    "\"c6\": \"{payload.s}{topic}\""
	    "}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("a/d1", p, strlen(p));
	col(set, m, 0, &v);
	CU_ASSERT(text_is(&v, "{literal} and } d1"));
	rule_value_clear(&v);
	col(set, m, 1, &v);
	CU_ASSERT(text_is(&v, "t=21.123456789 n=9007199254740993 x=0.1"));
	rule_value_clear(&v);
	col(set, m, 2, &v);
	CU_ASSERT(text_is(&v, "2/0/1700000000123/bob/dev-7"));
	rule_value_clear(&v);
	col(set, m, 3, &v);
	CU_ASSERT(text_is(&v, "plain $ text $ ok"));
	CU_ASSERT_FALSE(v.owned);
	rule_value_clear(&v);
	col(set, m, 4, &v);
	CU_ASSERT(text_is(&v, "-{\"a\":1}"));
	rule_value_clear(&v);
	col(set, m, 5, &v);
	CU_ASSERT(text_is(&v, ""));
	rule_value_clear(&v);
	col(set, m, 6, &v);
	CU_ASSERT(text_is(&v, "$5a/d1"));
	rule_value_clear(&v);
	msg_unref(&m);
	rule_set_unref(&set);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static char *
render_url(const char *tmpl, const char *topic, const char *payload)
{
	char			 text[512];
	struct rule_set		*set;
	struct rule_http	 h;
	struct rule_payload	 pc;
	struct msg		*m;
	char			*out;

	snprintf(text, sizeof text, "[{\"name\": \"w\", \"topic\": "
	    "\"+/{dev}\", \"webhook\": {\"url\": \"%s\"}}]", tmpl);
	if ((set = load(text)) == NULL)
		return NULL;
	m = mk(topic, payload, strlen(payload));
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_render_webhook(rule_set_rule(set, 0), m, &pc,
	    &h), 0);
	out = strdup(h.url.text);
	CU_ASSERT_FALSE(h.url.sealed);
	rule_http_free(&h);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
	return out;
}

static void
test_url_encoding(void)
{
	char	*u;

	u = render_url("http://h:1/x?dev={dev}&v={payload.v}&t={topic}",
	    "a/d 1&x=é", "{\"v\": \"a/b?c#d\"}");
	CU_ASSERT_STRING_EQUAL(u, "http://h:1/x?dev=d%201%26x%3D%C3%A9"
	    "&v=a%2Fb%3Fc%23d&t=a%2Fd%201%26x%3D%C3%A9");
	free(u);
	u = render_url("https://h/{dev}/{payload.n}", "a/A-z_0.~", "{\"n\": "
	    "1.5}");
	CU_ASSERT_STRING_EQUAL(u, "https://h/A-z_0.~/1.5");
	free(u);
}


/* Renders the webhook of rule 0 of set for m. */
static void
render(struct rule_set *set, struct msg *m, struct rule_http *h)
{
	struct rule_payload	pc;

	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_render_webhook(rule_set_rule(set, 0), m, &pc, h),
	    0);
	rule_payload_clear(&pc);
}

static void
test_envelope(void)
{
	static const char bin[] = "\x00\xff\x10";
	struct rule_set		*set;
	struct rule_http	 h;
	struct msg		*m;

	set = load("[{\"name\": \"w\", \"topic\": \"#\", \"webhook\": "
	    "{\"url\": \"http://h/\"}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("a/b", "{ \"n\": 9007199254740993, \"s\": \"x\" }", 35);
	render(set, m, &h);
	CU_ASSERT_STRING_EQUAL(h.method, "POST");
	CU_ASSERT_STRING_EQUAL(h.body.text, "{\"topic\":\"a/b\",\"payload\":"
	    "{\"n\":9007199254740993,\"s\":\"x\"},\"received_ms\":"
	    "1700000000123,\"client_id\":\"dev-7\",\"username\":\"bob\","
	    "\"qos\":2,\"retain\":false}");
	CU_ASSERT_FALSE(h.body.sealed);
	CU_ASSERT_PTR_NULL(h.invalid);
	rule_http_free(&h);
	msg_unref(&m);

	m = mk("a/b", "not \"json\"", 10);
	render(set, m, &h);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.body.text,
	    "\"payload\":\"not \\\"json\\\"\""));
	CU_ASSERT_PTR_NULL(strstr(h.body.text, "payload_encoding"));
	rule_http_free(&h);
	msg_unref(&m);

	m = mk("a/b", bin, 3);
	render(set, m, &h);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.body.text, "\"payload_encoding\":"
	    "\"base64\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(h.body.text, "\"payload\":\"AP8Q\""));
	rule_http_free(&h);
	msg_unref(&m);
	rule_set_unref(&set);
}

static void
test_body_template(void)
{
	static const char p[] = "{\"level\": 12.25, \"id\": 9007199254740993, "
	    "\"o\": {\"k\": [1, 2]}, \"s\": \"q\\\"uote\"}";
	struct rule_set		*set;
	struct rule_http	 h;
	struct msg		*m;

	set = load("[{\"name\": \"w\", \"topic\": \"tank/{tank}\", "
	    "\"webhook\": {\"url\": \"http://h/\", \"headers\": {\"X-Tank\": "
	    "\"{tank}\", \"X-Fixed\": \"1\"}, \"body\": {\"tank\": \"{tank}\", "
	    "\"level\": \"{payload.level}\", \"id\": \"{payload.id}\", "
	    "\"o\": \"{payload.o}\", \"none\": \"{payload.nope}\", "
	    "\"s\": \"{payload.s}\", \"note\": \"t {tank}: {payload.level}\", "
	    "\"n\": [1, true, null, \"{qos}\"], \"$k\": \"$$\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("tank/t1", p, strlen(p));
	render(set, m, &h);
	CU_ASSERT_STRING_EQUAL(h.body.text, "{\"tank\":\"t1\",\"level\":12.25,"
	    "\"id\":9007199254740993,\"o\":{\"k\":[1,2]},\"none\":null,"
	    "\"s\":\"q\\\"uote\",\"note\":\"t t1: 12.25\",\"n\":[1,true,null,"
	    "2],\"$k\":\"$\"}");
	CU_ASSERT_EQUAL(h.nheaders, 2);
	CU_ASSERT_STRING_EQUAL(h.headers[0].name, "X-Tank");
	CU_ASSERT_STRING_EQUAL(h.headers[0].value.text, "t1");
	CU_ASSERT_STRING_EQUAL(h.headers[1].value.text, "1");
	rule_http_free(&h);
	msg_unref(&m);
	rule_set_unref(&set);

	/* A string body template renders as text. */
	set = load("[{\"name\": \"w\", \"topic\": \"#\", \"webhook\": "
	    "{\"url\": \"http://h/\", \"body\": \"{topic}={payload}\"}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("a", "5", 1);
	render(set, m, &h);
	CU_ASSERT_STRING_EQUAL(h.body.text, "a=5");
	rule_http_free(&h);
	msg_unref(&m);
	rule_set_unref(&set);
}

static void
test_header_injection(void)
{
	static const char p[] = "{\"v\": \"a\\r\\nX-Evil: 1\"}";
	struct rule_set		*set;
	struct rule_http	 h;
	struct msg		*m;

	set = load("[{\"name\": \"w\", \"topic\": \"#\", \"webhook\": "
	    "{\"url\": \"http://h/\", \"headers\": {\"X-V\": "
	    "\"{payload.v}\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("a", p, strlen(p));
	render(set, m, &h);
	CU_ASSERT_PTR_NOT_NULL(h.invalid);
	rule_http_free(&h);
	msg_unref(&m);
	rule_set_unref(&set);
}

static void
test_secrets_sealed(void)
{
	static const char p[] = "{\"v\": \"$HOME ${HOME}\"}";
	struct rule_set		*set;
	struct rule_http	 h;
	struct msg		*m;
	char			*out;
	size_t			 len;

	setenv("MQLITE_T_TOKEN", "tok$en", 1);
	set = load("[{\"name\": \"w\", \"topic\": \"#\", \"webhook\": "
	    "{\"url\": \"http://h/?k=${MQLITE_T_TOKEN}&v={payload.v}\", "
	    "\"headers\": {\"Authorization\": \"Bearer ${MQLITE_T_TOKEN} "
	    "{payload.v}\", \"X-Plain\": \"{payload.v}\"}, \"body\": {\"k\": "
	    "\"${MQLITE_T_TOKEN}\", \"v\": \"{payload.v}\", \"w\": \"$$\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("a", p, strlen(p));
	render(set, m, &h);
	/* Sealed: no secret in the text, other '$' doubled. */
	CU_ASSERT(h.url.sealed);
	CU_ASSERT_PTR_NULL(strstr(h.url.text, "tok"));
	CU_ASSERT_STRING_EQUAL(h.url.text, "http://h/?k=${MQLITE_T_TOKEN}&v="
	    "%24HOME%20%24%7BHOME%7D");
	CU_ASSERT(h.headers[0].value.sealed);
	CU_ASSERT_STRING_EQUAL(h.headers[0].value.text,
	    "Bearer ${MQLITE_T_TOKEN} $$HOME $${HOME}");
	CU_ASSERT_FALSE(h.headers[1].value.sealed);
	CU_ASSERT_STRING_EQUAL(h.headers[1].value.text, "$HOME ${HOME}");
	CU_ASSERT(h.body.sealed);
	CU_ASSERT_PTR_NULL(strstr(h.body.text, "tok"));
	/* Unsealed at send time. */
	CU_ASSERT_EQUAL(rules_unseal(h.headers[0].value.text,
	    h.headers[0].value.len, &out, &len), 0);
	CU_ASSERT_STRING_EQUAL(out, "Bearer tok$en $HOME ${HOME}");
	CU_ASSERT_EQUAL(len, strlen(out));
	gw_free(out);
	CU_ASSERT_EQUAL(rules_unseal(h.body.text, h.body.len, &out, NULL), 0);
	CU_ASSERT_STRING_EQUAL(out, "{\"k\":\"tok$en\",\"v\":\"$HOME ${HOME}\","
	    "\"w\":\"$\"}");
	gw_free(out);
	CU_ASSERT_EQUAL(rules_unseal(h.url.text, h.url.len, &out, NULL), 0);
	CU_ASSERT_STRING_EQUAL(out, "http://h/?k=tok$en&v=%24HOME%20%24%7BHOME"
	    "%7D");
	gw_free(out);
	rule_http_free(&h);
	unsetenv("MQLITE_T_TOKEN");
	CU_ASSERT_EQUAL(rules_unseal("${MQLITE_T_TOKEN}", 17, &out, NULL),
	    GW_ENOTFOUND);
	msg_unref(&m);
	rule_set_unref(&set);
}

static void
test_mqtt_topic(void)
{
	struct rule_set		*set;
	struct rule_rendered	 t;
	struct rule_payload	 pc;
	struct msg		*m;

	set = load("[{\"name\": \"u\", \"topic\": \"site/#\", \"mqtt\": "
	    "{\"url\": \"tcp://h:1883\", \"topic\": \"edge/gw1/{topic}\", "
	    "\"qos\": 1}}, {\"name\": \"v\", \"topic\": \"x/#\", \"mqtt\": "
	    "{\"url\": \"tcp://h\", \"topic\": \"up/{payload.t}\"}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("site/a/b", "{\"t\": \"#\"}", 10);
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_render_mqtt_topic(rule_set_rule(set, 0), m, &pc,
	    &t), 0);
	CU_ASSERT_STRING_EQUAL(t.text, "edge/gw1/site/a/b");
	CU_ASSERT_EQUAL(rule_mqtt(rule_set_rule(set, 0))->qos, 1);
	gw_free(t.text);
	/* An interpolated '#' makes an invalid topic name. */
	CU_ASSERT_EQUAL(rule_render_mqtt_topic(rule_set_rule(set, 1), m, &pc,
	    &t), GW_EMALFORMED);
	gw_free(t.text);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
}

static void
test_typed_single(void)
{
	struct rule_set		*set;
	struct rule_value	 v = RULE_VALUE_INIT;
	struct msg		*m;

	set = load("[{\"name\": \"r\", \"topic\": \"#\", \"sqlite\": "
	    "{\"table\": \"t\", \"columns\": {\"a\": \"{qos}\", "
	    "\"b\": \"{payload.x}\", \"c\": \"{{qos}}\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("a", "{\"x\": 2.5}", 10);
	col(set, m, 0, &v);
	CU_ASSERT(v.type == RULE_VINTEGER && v.u.i == 2);
	col(set, m, 1, &v);
	CU_ASSERT(v.type == RULE_VREAL && v.u.d == 2.5);
	col(set, m, 2, &v);
	CU_ASSERT(text_is(&v, "{qos}"));
	rule_value_clear(&v);
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(set, 0), 0),
	    "INTEGER");
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(set, 0), 1),
	    "");
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(set, 0), 2),
	    "TEXT");
	msg_unref(&m);
	rule_set_unref(&set);
}

/* The MQTT 5.0 property fields and the Payload Format Indicator. */
static void
test_mqtt5_fields(void)
{
	static const struct props_pair up[] = {
		{ { "unit", 4 }, { "C", 1 } },
		{ { "a.b", 3 }, { "dotted", 6 } },
		{ { "unit", 4 }, { "F", 1 } },
	};
	struct rule_set		*set;
	struct rule_value	 v = RULE_VALUE_INIT;
	struct props		 pp;
	struct msg		*m;
	size_t			 before = gw_mem_used();

	set = load("[{\"name\": \"r\", \"topic\": \"#\", \"sqlite\": "
	    "{\"table\": \"t\", \"columns\": {\"a\": \"{content_type}\", "
	    "\"b\": \"{response_topic}\", \"c\": \"{correlation_data}\", "
	    "\"d\": \"{user_properties.unit}\", "
	    "\"e\": \"{user_properties.a.b}\", \"f\": \"{payload_raw}\", "
	    "\"g\": \"{user_properties.none}\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	memset(&pp, 0, sizeof pp);
	pp.content_type = (struct codec_str){ "text/plain", 10 };
	props_set(&pp, PROPS_CONTENT_TYPE);
	pp.response_topic = (struct codec_str){ "r/1", 3 };
	props_set(&pp, PROPS_RESPONSE_TOPIC);
	pp.correlation_data = (struct codec_str){ "\xff\x01", 2 };
	props_set(&pp, PROPS_CORRELATION_DATA);
	pp.payload_format = 0;
	props_set(&pp, PROPS_PAYLOAD_FORMAT);
	pp.user = up;
	pp.n_user = 3;
	m = msg_new5("a", 1, "c", 1, NULL, 0, "text", 4, 1, 0, 1, &pp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	col(set, m, 0, &v);
	CU_ASSERT(text_is(&v, "text/plain"));
	col(set, m, 1, &v);
	CU_ASSERT(text_is(&v, "r/1"));
	col(set, m, 2, &v);
	CU_ASSERT(v.type == RULE_VBLOB && v.u.s.len == 2);
	col(set, m, 3, &v);
	CU_ASSERT(text_is(&v, "C"));	/* the first of that name */
	col(set, m, 4, &v);
	CU_ASSERT(text_is(&v, "dotted"));
	col(set, m, 5, &v);
	CU_ASSERT(v.type == RULE_VBLOB && v.u.s.len == 4);	/* PFI 0 */
	col(set, m, 6, &v);
	CU_ASSERT_EQUAL(v.type, RULE_VNULL);
	msg_unref(&m);
	/* A 3.1.1 message: every property field NULL, payload_raw TEXT. */
	m = mk("a", "text", 4);
	col(set, m, 0, &v);
	CU_ASSERT_EQUAL(v.type, RULE_VNULL);
	col(set, m, 3, &v);
	CU_ASSERT_EQUAL(v.type, RULE_VNULL);
	col(set, m, 5, &v);
	CU_ASSERT(text_is(&v, "text"));
	rule_value_clear(&v);
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(set, 0), 0),
	    "TEXT");
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(rule_set_rule(set, 0), 2),
	    "");
	msg_unref(&m);
	rule_set_unref(&set);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_out_of_memory(void)
{
	struct rule_set		*set;
	struct rule_http	 h;
	struct rule_payload	 pc;
	struct msg		*m;
	size_t			 before;
	long			 n;
	int			 rc;

	setenv("MQLITE_T_TOKEN", "x", 1);
	set = load("[{\"name\": \"w\", \"topic\": \"t/{a}\", \"webhook\": "
	    "{\"url\": \"http://h/{a}?${MQLITE_T_TOKEN}\", \"headers\": "
	    "{\"A\": \"{a} ${MQLITE_T_TOKEN}\"}, \"body\": {\"a\": \"{a}\", "
	    "\"p\": \"{payload}\", \"m\": \"x{payload.k}\"}}}]");
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = mk("t/1", "{\"k\": \"v\\n\"}", 12);
	before = gw_mem_used();
	for (n = 0; n < 1000; n++) {
		rule_payload_init(&pc, m);
		gw_mem_fail_after(n);
		rc = rule_render_webhook(rule_set_rule(set, 0), m, &pc, &h);
		gw_mem_fail_after(-1);
		rule_http_free(&h);
		rule_payload_clear(&pc);
		CU_ASSERT_EQUAL_FATAL(gw_mem_used(), before);
		if (rc == 0)
			break;
		CU_ASSERT_EQUAL(rc, GW_ENOMEM);
	}
	CU_ASSERT(n > 3 && n < 1000);
	msg_unref(&m);
	rule_set_unref(&set);
}

static const struct cutest_case tests[] = {
	{ "text", test_text },
	{ "url encoding", test_url_encoding },
	{ "envelope", test_envelope },
	{ "body template", test_body_template },
	{ "header injection", test_header_injection },
	{ "secrets sealed", test_secrets_sealed },
	{ "mqtt topic", test_mqtt_topic },
	{ "typed single", test_typed_single },
	{ "MQTT 5.0 property fields", test_mqtt5_fields },
	{ "out of memory", test_out_of_memory },
};

int
main(void)
{
	return cutest_main("rules_template", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
