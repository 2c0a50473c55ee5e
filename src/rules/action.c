/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The webhook action: loading and checking its settings (the delivery
 * thread reads them from struct rule_webhook) and rendering one request
 * per matched publish on the store thread (the mqtt action is in
 * action_mqtt.c).
 *
 * A webhook body is the default envelope, a string template, or a JSON
 * value whose string leaves are templates; it is built as a cJSON tree and
 * printed by cJSON, so no value can break the JSON. A leaf that is one
 * placeholder keeps its type (numbers stay numbers, exactly: they go in as
 * raw number text, not through a double; a payload object stays an object).
 * Non-UTF-8 bytes go in as base64. When a template holds an environment
 * value the rendered text is sealed (rules.h): the secret stays a ${NAME}
 * reference and every other '$' is doubled, so the outbox never stores it.
 * The envelope of a message with MQTT 5.0 properties also carries them,
 * as "properties" (absent otherwise, so 3.1.1 envelopes do not change).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "broker/msg.h"
#include "mqtt/props.h"
#include "mqtt/utf8.h"
#include "rules/rules_int.h"

/* ---- The webhook action. ---- */

static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) &&
		    strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return false;
	}
	return true;
}

/* Literal text of t holding CR, LF or NUL? (interpolations: at render) */
static bool
tmpl_has_crlf(const struct rule_tmpl *t)
{
	size_t	i;

	for (i = 0; i < t->nsegs; i++) {
		if (t->segs[i].kind != SEG_PH &&
		    (strlen(t->segs[i].text) != t->segs[i].len ||
		    strpbrk(t->segs[i].text, "\r\n") != NULL))
			return true;
	}
	return false;
}

/* Compiles the string leaves of a JSON body, in tree order. */
static void
body_leaves(struct loader *ld, struct rule_body *b, const cJSON *j,
    const char *path, const struct rule_caps *caps)
{
	struct rule_tmpl	**nl, *t;
	const cJSON		*it;
	char			  p[PATH_LEN];
	int			  i = 0;

	if (cJSON_IsString(j)) {
		t = load_tmpl(ld, j, path, caps);
		if ((nl = gw_realloc(b->leaves, (b->nleaves + 1) *
		    sizeof *nl)) == NULL) {
			tmpl_free(t);
			load_oom(ld, path);
			return;
		}
		b->leaves = nl;
		b->leaves[b->nleaves++] = t;
		return;
	}
	cJSON_ArrayForEach(it, j) {
		if (cJSON_IsArray(j))
			load_pathf(p, "%s[%d]", path, i++);
		else
			load_path(p, path, it->string);
		body_leaves(ld, b, it, p, caps);
	}
}

static void
load_body(struct loader *ld, struct rule_webhook *w, const cJSON *j,
    const char *path, const struct rule_caps *caps)
{
	struct rule_body	*b;

	if (!cJSON_IsString(j) && !cJSON_IsObject(j) && !cJSON_IsArray(j)) {
		load_err(ld, path,
		    "expected a template string or a JSON object "
		    "or array, got %s", jsonfile_type_name(j));
		return;
	}
	if ((b = w->body = gw_calloc(1, sizeof *b)) == NULL) {
		load_oom(ld, path);
		return;
	}
	if (cJSON_IsString(j)) {
		b->str = load_tmpl(ld, j, path, caps);
		return;
	}
	if ((b->json = cJSON_Duplicate(j, 1)) == NULL) {
		load_oom(ld, path);
		return;
	}
	body_leaves(ld, b, b->json, path, caps);
}

static void
body_free(struct rule_body *b)
{
	size_t	i;

	if (b == NULL)
		return;
	tmpl_free(b->str);
	cJSON_Delete(b->json);
	for (i = 0; i < b->nleaves; i++)
		tmpl_free(b->leaves[i]);
	gw_free(b->leaves);
	gw_free(b);
}

static void
load_headers(struct loader *ld, struct rule_webhook *w, const cJSON *j,
    const char *path, const struct rule_caps *caps)
{
	const cJSON	*it;
	char		 p[PATH_LEN];
	size_t		 i;

	if (!cJSON_IsObject(j)) {
		load_err(ld, path,
		    "expected an object of header name: template");
		return;
	}
	if (cJSON_GetArraySize(j) == 0)
		return;
	if ((w->headers = gw_calloc((size_t)cJSON_GetArraySize(j),
	    sizeof *w->headers)) == NULL) {
		load_oom(ld, path);
		return;
	}
	cJSON_ArrayForEach(it, j) {
		load_path(p, path, it->string);
		if (!is_token(it->string)) {
			load_err(ld, p, "not a valid header name");
			continue;
		}
		for (i = 0; i < w->nheaders; i++) {
			if (strcasecmp(w->headers[i].name, it->string) == 0)
				break;
		}
		if (i < w->nheaders) {
			load_err(ld, p, "duplicate header (names ignore case)");
			continue;
		}
		if ((w->headers[w->nheaders].name = gw_strdup(it->string)) ==
		    NULL) {
			load_oom(ld, p);
			return;
		}
		w->headers[w->nheaders].value = load_tmpl(ld, it, p, caps);
		if (w->headers[w->nheaders].value != NULL &&
		    tmpl_has_crlf(w->headers[w->nheaders].value))
			load_err(ld, p,
			    "a header value cannot hold CR, LF or NUL");
		w->nheaders++;
	}
}

/* Loads and checks webhook object j at path into a new r->webhook. */
void
action_webhook_load(struct loader *ld, struct rule *r, const cJSON *j,
    const char *path)
{
	static const char *const keys[] = { "url", "method", "headers", "body",
	    "timeout_ms", "ordered", "max_in_flight", "batch", "retry",
	    "rate_limit_per_s", "tls", "hmac", "foreach", "max_items",
	    NULL };
	static const char *const bkeys[] = { "max_messages", "max_delay_ms",
	    "format", NULL };
	static const char *const rkeys[] = { "base_ms", "cap_ms",
	    "max_attempts", "max_age", NULL };
	static const char *const tkeys[] = { "ca_file", "cert", "key",
	    "insecure", NULL };
	static const char *const hkeys[] = { "secret", NULL };
	static const char *const methods[] = { "POST", "PUT", "PATCH",
	    "DELETE", "GET", NULL };
	struct rule_webhook	*w;
	const struct rule_seg	*s0;
	const cJSON		*it, *sub;
	char			 p[PATH_LEN], q[PATH_LEN];
	size_t			 i;

	if (!load_keys(ld, j, path, keys))
		return;
	if ((w = r->webhook = gw_calloc(1, sizeof *w)) == NULL) {
		load_oom(ld, path);
		return;
	}
	w->method = "POST";
	w->timeout_ms = 10000;
	w->ordered = true;
	w->max_in_flight = 8;
	w->batch_max_messages = 100;
	w->batch_max_delay_ms = 1000;
	w->retry_base_ms = 1000;
	w->retry_cap_ms = 300000;

	load_path(p, path, "url");
	if ((it = load_item(j, "url")) == NULL)
		load_err(ld, path, "missing \"url\"");
	else if ((w->url = load_tmpl(ld, it, p, &r->caps)) != NULL) {
		s0 = w->url->nsegs > 0 ? &w->url->segs[0] : NULL;
		if (s0 == NULL || s0->kind == SEG_PH ||
		    (strncasecmp(s0->text, "http://", 7) != 0 &&
		    strncasecmp(s0->text, "https://", 8) != 0))
			load_err(ld, p, "the url must start with http:// or "
			    "https://");
	}
	if ((it = load_item(j, "method")) != NULL) {
		load_path(p, path, "method");
		for (i = 0; cJSON_IsString(it) && methods[i] != NULL; i++) {
			if (strcmp(it->valuestring, methods[i]) == 0)
				break;
		}
		if (!cJSON_IsString(it) || methods[i] == NULL)
			load_err(ld, p,
			    "expected one of POST, PUT, PATCH, DELETE, "
			    "GET");
		else
			w->method = methods[i];
	}
	if ((it = load_item(j, "headers")) != NULL) {
		load_path(p, path, "headers");
		load_headers(ld, w, it, p, &r->caps);
	}
	if ((it = load_item(j, "body")) != NULL) {
		load_path(p, path, "body");
		load_body(ld, w, it, p, &r->caps);
	}
	load_uint(ld, j, "timeout_ms", path, 1, 600000, &w->timeout_ms);
	load_bool(ld, j, "ordered", path, &w->ordered);
	load_uint(ld, j, "max_in_flight", path, 1, 1024, &w->max_in_flight);
	if ((sub = load_item(j, "batch")) != NULL) {
		load_path(p, path, "batch");
		w->batch = load_keys(ld, sub, p, bkeys);
		load_uint(ld, sub, "max_messages", p, 1, 100000,
		    &w->batch_max_messages);
		load_uint(ld, sub, "max_delay_ms", p, 0, 3600000,
		    &w->batch_max_delay_ms);
		if ((it = load_item(sub, "format")) != NULL) {
			load_path(q, p, "format");
			if (cJSON_IsString(it) &&
			    strcmp(it->valuestring, "array") == 0)
				w->batch_format = RULE_BATCH_ARRAY;
			else if (cJSON_IsString(it) &&
			    strcmp(it->valuestring, "ndjson") == 0)
				w->batch_format = RULE_BATCH_NDJSON;
			else
				load_err(ld, q,
				    "expected \"array\" or \"ndjson\"");
		}
	}
	if ((sub = load_item(j, "retry")) != NULL) {
		load_path(p, path, "retry");
		if (load_keys(ld, sub, p, rkeys)) {
			load_uint(ld, sub, "base_ms", p, 1, 86400000,
			    &w->retry_base_ms);
			load_uint(ld, sub, "cap_ms", p, 1, 86400000,
			    &w->retry_cap_ms);
			load_uint(ld, sub, "max_attempts", p, 0, 1000000,
			    &w->retry_max_attempts);
			load_duration(ld, sub, "max_age", p, false,
			    &w->retry_max_age_ms);
			if (w->retry_cap_ms < w->retry_base_ms) {
				load_path(q, p, "cap_ms");
				load_err(ld, q, "must be at least base_ms");
			}
		}
	}
	if ((it = load_item(j, "rate_limit_per_s")) != NULL) {
		load_path(p, path, "rate_limit_per_s");
		if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
		    it->valuedouble > 1e6)
			load_err(ld, p,
			    "expected a number from 0 (unlimited) to "
			    "1000000");
		else
			w->rate_limit_per_s = it->valuedouble;
	}
	if ((sub = load_item(j, "tls")) != NULL) {
		load_path(p, path, "tls");
		if (load_keys(ld, sub, p, tkeys)) {
			load_str(ld, sub, "ca_file", p, false, &w->tls_ca_file);
			load_str(ld, sub, "cert", p, false, &w->tls_cert);
			load_str(ld, sub, "key", p, false, &w->tls_key);
			load_bool(ld, sub, "insecure", p, &w->tls_insecure);
			if ((w->tls_cert.s == NULL) != (w->tls_key.s == NULL))
				load_err(ld, p,
				    "\"cert\" and \"key\" go together");
			load_resolve(ld, &w->tls_ca_file, p);
			load_resolve(ld, &w->tls_cert, p);
			load_resolve(ld, &w->tls_key, p);
		}
	}
	if ((sub = load_item(j, "hmac")) != NULL) {
		load_path(p, path, "hmac");
		if (load_keys(ld, sub, p, hkeys) &&
		    load_str(ld, sub, "secret", p, true, &w->hmac_secret) &&
		    w->hmac_secret.s[0] == '\0') {
			load_path(q, p, "secret");
			load_err(ld, q, "must not be empty");
		}
	}
}

static void
rstr_free(struct rule_str *s)
{
	gw_free(s->s);
	s->s = NULL;
}

/* Frees a webhook action; accepts NULL. */
void
action_webhook_free(struct rule_webhook *w)
{
	size_t	i;

	if (w == NULL)
		return;
	tmpl_free(w->url);
	for (i = 0; i < w->nheaders; i++) {
		gw_free(w->headers[i].name);
		tmpl_free(w->headers[i].value);
	}
	gw_free(w->headers);
	body_free(w->body);
	rstr_free(&w->tls_ca_file);
	rstr_free(&w->tls_cert);
	rstr_free(&w->tls_key);
	rstr_free(&w->hmac_secret);
	gw_free(w);
}

/* ---- Webhook requests. ---- */

/* A new string with every '$' doubled (seal) or a plain copy. */
static char *
seal_dup(const char *s, size_t len, bool seal)
{
	struct buf	 b = BUF_INIT;
	char		*out;

	if (tmpl_append_encoded(&b, s, len, seal ? TMPL_SEAL : 0) != 0 ||
	    buf_take_string(&b, &out, NULL) != 0) {
		buf_free(&b);
		return NULL;
	}
	return out;
}

/* A cJSON node holding raw JSON text (sealed if asked); NULL on ENOMEM. */
static cJSON *
json_raw(const char *s, size_t len, bool seal)
{
	char	*t;
	cJSON	*j;

	if ((t = seal_dup(s, len, seal)) == NULL)
		return NULL;
	j = cJSON_CreateRaw(t);
	gw_free(t);
	return j;
}

/* A cJSON string node; NULL on ENOMEM. */
static cJSON *
json_str(const char *s, size_t len, bool seal)
{
	char	*t;
	cJSON	*j;

	if ((t = seal_dup(s, len, seal)) == NULL)
		return NULL;
	j = cJSON_CreateString(t);
	gw_free(t);
	return j;
}

/* The JSON form of a typed value. */
static cJSON *
json_value(const struct rule_value *v, bool seal)
{
	struct buf	 b = BUF_INIT;
	cJSON		*j;

	switch (v->type) {
	case RULE_VINTEGER:
	case RULE_VREAL:
		if (v->type == RULE_VREAL && !isfinite(v->u.d))
			return cJSON_CreateNull();
		if (value_append_text(&b, v) != 0) {
			buf_free(&b);
			return NULL;
		}
		j = json_raw((char *)buf_head(&b), buf_used(&b), false);
		buf_free(&b);
		return j;
	case RULE_VTEXT:
		if (v->json)
			return json_raw(v->u.s.p, v->u.s.len, seal);
		return json_str(v->u.s.p, v->u.s.len, seal);
	case RULE_VBLOB:
		if (value_append_base64(&b, v->u.s.p, v->u.s.len) != 0) {
			buf_free(&b);
			return NULL;
		}
		j = json_str((char *)buf_head(&b), buf_used(&b), false);
		buf_free(&b);
		return j;
	default:
		return cJSON_CreateNull();
	}
}

/*
 * Builds the rendered copy of body template node n; *leaf counts string
 * leaves in tree order. NULL on ENOMEM.
 */
static cJSON *
body_node(const struct rule_body *body, const cJSON *n, size_t *leaf,
    const struct rule_ctx *c, bool seal)
{
	struct rule_rendered	 rr;
	struct rule_value	 v = RULE_VALUE_INIT;
	const struct rule_tmpl	*t;
	const cJSON		*it;
	cJSON			*o, *k;
	char			*key;

	if (cJSON_IsString(n)) {
		t = body->leaves[(*leaf)++];
		if (t->nsegs == 1 && t->segs[0].kind == SEG_PH) {
			if (transform_ph_eval(&t->segs[0].ph, c, &v) != 0)
				return NULL;
			o = json_value(&v, seal);
			rule_value_clear(&v);
			return o;
		}
		if (tmpl_render(t, c, seal ? TMPL_SEAL : 0, &rr) != 0)
			return NULL;
		/* An unsealed literal in a sealed body still needs '$$'. */
		o = json_str(rr.text, rr.len, seal && !rr.sealed);
		gw_free(rr.text);
		return o;
	}
	if (cJSON_IsArray(n) || cJSON_IsObject(n)) {
		o = cJSON_IsArray(n) ? cJSON_CreateArray() :
		    cJSON_CreateObject();
		if (o == NULL)
			return NULL;
		cJSON_ArrayForEach(it, n) {
			if ((k = body_node(body, it, leaf, c, seal)) == NULL)
				goto fail;
			if (cJSON_IsArray(n)) {
				cJSON_AddItemToArray(o, k);
				continue;
			}
			if ((key = seal_dup(it->string, strlen(it->string),
			    seal)) == NULL) {
				cJSON_Delete(k);
				goto fail;
			}
			cJSON_AddItemToObject(o, key, k);
			gw_free(key);
		}
		return o;
fail:
		cJSON_Delete(o);
		return NULL;
	}
	return cJSON_Duplicate(n, 1);
}

/* Adds s (len bytes) to o as key, or to array o when key is NULL. */
static bool
add_str(cJSON *o, const char *key, const char *s, size_t len)
{
	cJSON *j;

	if ((j = json_str(s, len, false)) == NULL)
		return false;
	if (key == NULL)
		cJSON_AddItemToArray(o, j);
	else
		cJSON_AddItemToObject(o, key, j);
	return true;
}

/*
 * Adds m's MQTT 5.0 properties to envelope o as "properties": {
 * "payload_format_indicator", "message_expiry_interval" (as published),
 * "content_type", "response_topic", "correlation_data" (base64 with
 * "correlation_data_encoding": "base64" when not UTF-8), "user_properties"
 * ([[name, value], ...] in order) }, each only when set. Nothing when m has
 * none. 0 or GW_ENOMEM.
 */
static int
envelope_props(cJSON *o, const struct msg *m)
{
	struct props p;
	struct codec_iter it;
	struct codec_str n, v;
	struct buf b = BUF_INIT;
	cJSON *po, *ua, *pair;
	bool ok = true;

	if (!msg_props(m, &p))
		return 0;
	if ((po = cJSON_AddObjectToObject(o, "properties")) == NULL)
		return GW_ENOMEM;
	if (props_has(&p, PROPS_PAYLOAD_FORMAT))
		ok &= cJSON_AddNumberToObject(po, "payload_format_indicator",
		    p.payload_format) != NULL;
	if (props_has(&p, PROPS_MESSAGE_EXPIRY))
		ok &= cJSON_AddNumberToObject(po, "message_expiry_interval",
		    p.message_expiry) != NULL;
	if (props_has(&p, PROPS_CONTENT_TYPE))
		ok &= add_str(po, "content_type", p.content_type.ptr,
		    p.content_type.len);
	if (props_has(&p, PROPS_RESPONSE_TOPIC))
		ok &= add_str(po, "response_topic", p.response_topic.ptr,
		    p.response_topic.len);
	if (props_has(&p, PROPS_CORRELATION_DATA)) {
		if (utf8_valid(p.correlation_data.ptr, p.correlation_data.len,
		    false))
			ok &= add_str(po, "correlation_data",
			    p.correlation_data.ptr, p.correlation_data.len);
		else if (value_append_base64(&b, p.correlation_data.ptr,
		    p.correlation_data.len) != 0)
			ok = false;
		else
			ok &= add_str(po, "correlation_data",
			    (const char *)buf_head(&b), buf_used(&b)) &&
			    cJSON_AddStringToObject(po,
			    "correlation_data_encoding", "base64") != NULL;
		buf_free(&b);
	}
	if (ok && p.n_user > 0) {
		if ((ua = cJSON_AddArrayToObject(po, "user_properties")) ==
		    NULL)
			return GW_ENOMEM;
		it = p.block;
		while (ok && props_next_user(&it, &n, &v) == 1) {
			if ((pair = cJSON_CreateArray()) == NULL)
				return GW_ENOMEM;
			cJSON_AddItemToArray(ua, pair);
			ok &= add_str(pair, NULL, n.ptr, n.len);
			ok &= add_str(pair, NULL, v.ptr, v.len);
		}
	}
	return ok ? 0 : GW_ENOMEM;
}

/* The default envelope for c's message. */
static cJSON *
envelope(const struct rule_ctx *c)
{
	const struct msg	*m = c->m;
	struct buf		 b = BUF_INIT;
	cJSON			*o, *p = NULL;
	char			 s[32];
	int			 is_json;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	if (cJSON_AddStringToObject(o, "topic", m->topic) == NULL)
		goto fail;
	if (extract_payload_json(c->pc, &b, &is_json) != 0)
		goto fail;
	if (is_json)
		p = json_raw((char *)buf_head(&b), buf_used(&b), false);
	else if (utf8_valid(m->payload, m->payload_len, false))
		p = json_str((const char *)m->payload, m->payload_len, false);
	else {
		b.off = b.len = 0;
		if (value_append_base64(&b, m->payload, m->payload_len) != 0)
			goto fail;
		p = json_str((char *)buf_head(&b), buf_used(&b), false);
		if (p != NULL && cJSON_AddStringToObject(o, "payload_encoding",
		    "base64") == NULL)
			goto fail;
	}
	if (p == NULL)
		goto fail;
	cJSON_AddItemToObject(o, "payload", p);
	p = NULL;
	if (foreach_envelope(o, c->pc) != 0)
		goto fail;
	snprintf(s, sizeof s, "%lld", m->received_ms);
	if (cJSON_AddRawToObject(o, "received_ms", s) == NULL ||
	    cJSON_AddStringToObject(o, "client_id", m->client_id) == NULL)
		goto fail;
	if (m->username != NULL) {
		if (cJSON_AddStringToObject(o, "username", m->username) ==
		    NULL)
			goto fail;
	} else if (cJSON_AddNullToObject(o, "username") == NULL)
		goto fail;
	if (cJSON_AddNumberToObject(o, "qos", m->qos) == NULL ||
	    cJSON_AddBoolToObject(o, "retain", m->retain) == NULL ||
	    envelope_props(o, m) != 0)
		goto fail;
	buf_free(&b);
	return o;
fail:
	buf_free(&b);
	cJSON_Delete(p);
	cJSON_Delete(o);
	return NULL;
}

static int
render_body(const struct rule_webhook *w, const struct rule_ctx *c,
    struct rule_rendered *out)
{
	const struct rule_body	*body = w->body;
	size_t			 leaf = 0, i;
	cJSON			*j;
	char			*s;
	bool			 seal = false;

	if (body != NULL && body->str != NULL)
		return tmpl_render(body->str, c, TMPL_SEAL, out);
	if (body != NULL) {
		for (i = 0; i < body->nleaves; i++)
			seal = seal || body->leaves[i]->secret;
		j = body_node(body, body->json, &leaf, c, seal);
	} else
		j = envelope(c);
	if (j == NULL)
		return GW_ENOMEM;
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (s == NULL)
		return GW_ENOMEM;
	out->len = strlen(s);
	out->text = gw_strndup(s, out->len);
	cJSON_free(s);
	out->sealed = seal;
	return out->text == NULL ? GW_ENOMEM : 0;
}

/* See rules.h. Store thread. */
int
rule_render_webhook(const struct rule *r, const struct msg *m,
    struct rule_payload *pc, struct rule_http *out)
{
	const struct rule_webhook	*w = r->webhook;
	struct rule_ctx			 c = { r, m, pc };
	struct rule_http_header		*h;
	size_t				 i;
	int				 rc;

	memset(out, 0, sizeof *out);
	if (w == NULL)
		return GW_ENOTFOUND;
	out->method = w->method;
	if ((rc = tmpl_render(w->url, &c, TMPL_URL | TMPL_SEAL,
	    &out->url)) != 0)
		return rc;
	if (w->nheaders > 0 &&
	    (out->headers = gw_calloc(w->nheaders, sizeof *h)) == NULL)
		return GW_ENOMEM;
	for (i = 0; i < w->nheaders; i++) {
		h = &out->headers[i];
		out->nheaders++;
		if ((h->name = gw_strdup(w->headers[i].name)) == NULL)
			return GW_ENOMEM;
		if ((rc = tmpl_render(w->headers[i].value, &c, TMPL_SEAL,
		    &h->value)) != 0)
			return rc;
		if (strlen(h->value.text) != h->value.len ||
		    strpbrk(h->value.text, "\r\n") != NULL)
			out->invalid = "a header value contains CR, LF or NUL";
	}
	return render_body(w, &c, &out->body);
}

/* See rules.h. */
void
rule_http_free(struct rule_http *out)
{
	size_t	i;

	if (out == NULL)
		return;
	gw_free(out->url.text);
	for (i = 0; i < out->nheaders; i++) {
		gw_free(out->headers[i].name);
		gw_free(out->headers[i].value.text);
	}
	gw_free(out->headers);
	gw_free(out->body.text);
	memset(out, 0, sizeof *out);
}
