/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Webhook requests with libcurl; see webhook.h for the contract.
 *
 * A request owns its easy handle, the header list, the body of a batch
 * (a single row's body is sent from the row itself, no copy), the first
 * OUTBOX_SNIPPET_MAX bytes of the response and the last Retry-After seen.
 * Everything is rebuilt by webhook_req_prepare(), so a request object is
 * recycled for any route.
 *
 * Headers arrive as the JSON object text the rules engine rendered. A JSON
 * string may carry "\u0000", which cJSON silently cuts at, so the raw text
 * is scanned for that escape first; decoded values are then checked for
 * CR and LF. A user header named like ours (Idempotency-Key, the signature)
 * is replaced, never sent twice; Content-Length and Transfer-Encoding are
 * libcurl's to set and are ignored.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "deliver/backoff.h"
#include "deliver/webhook.h"
#include "err.h"
#include "log.h"
#include "mem.h"

#define WEBHOOK_KEY_MAX		160	/* Idempotency-Key bytes */
#define WEBHOOK_ERR_MAX		256

struct webhook_req {
	CURL			*easy;
	struct curl_slist	*headers;	/* owned list */
	char			*body;		/* owned batch body or NULL */
	size_t			 body_len;
	size_t			 body_cap;
	char			 key[WEBHOOK_KEY_MAX];
	char			 error[WEBHOOK_ERR_MAX];
	char			 curl_err[CURL_ERROR_SIZE];
	char			 snippet[OUTBOX_SNIPPET_MAX + 1];
	size_t			 snippet_len;
	char			 retry_after[64]; /* last value seen */
	bool			 json_ct;	/* default Content-Type */
	enum webhook_format	 format;
	bool			 batch;
};

static size_t	webhook_write_cb(char *, size_t, size_t, void *);
static size_t	webhook_header_cb(char *, size_t, size_t, void *);
static int	webhook_add_header(struct webhook_req *, const char *,
		    const char *);
static int	webhook_headers(struct webhook_req *, const char *);
static bool	webhook_has_nul_escape(const char *);
static bool	webhook_is_token(const char *);
static int	webhook_body_append(struct webhook_req *, const void *,
		    size_t);
static int	webhook_batch_body(struct webhook_req *,
		    const struct outbox_row *, size_t);

/* New request with its own easy handle. Any thread. */
struct webhook_req *
webhook_req_new(void)
{
	struct webhook_req *req;

	if ((req = gw_calloc(1, sizeof *req)) == NULL)
		return NULL;
	if ((req->easy = curl_easy_init()) == NULL) {
		gw_free(req);
		return NULL;
	}
	return req;
}

/* Frees req. Its thread. NULL ok. */
void
webhook_req_free(struct webhook_req *req)
{
	if (req == NULL)
		return;
	curl_easy_cleanup(req->easy);
	curl_slist_free_all(req->headers);
	gw_free(req->body);
	gw_free(req);
}

/* The easy handle, borrowed. */
void *
webhook_req_easy(struct webhook_req *req)
{
	return req->easy;
}

/* Why prepare failed, borrowed. */
const char *
webhook_req_error(const struct webhook_req *req)
{
	return req->error;
}

/* The Idempotency-Key, borrowed. */
const char *
webhook_req_key(const struct webhook_req *req)
{
	return req->key;
}

/* Keeps the first OUTBOX_SNIPPET_MAX bytes of the body, drops the rest. */
static size_t
webhook_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct webhook_req *req = arg;
	size_t n = size * nmemb, room;

	room = OUTBOX_SNIPPET_MAX - req->snippet_len;
	if (room > n)
		room = n;
	memcpy(req->snippet + req->snippet_len, data, room);
	req->snippet_len += room;
	req->snippet[req->snippet_len] = '\0';
	return n;
}

/* Watches for Retry-After; a new status line starts a new response. */
static size_t
webhook_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	static const char name[] = "retry-after:";
	struct webhook_req *req = arg;
	size_t n = size * nmemb, len;
	const char *v;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		req->retry_after[0] = '\0';
		req->snippet_len = 0;
		req->snippet[0] = '\0';
		return n;
	}
	if (n <= sizeof name - 1 || strncasecmp(data, name,
	    sizeof name - 1) != 0)
		return n;
	v = data + sizeof name - 1;
	len = n - (sizeof name - 1);
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
	    v[len - 1] == ' '))
		len--;
	if (len < sizeof req->retry_after) {
		memcpy(req->retry_after, v, len);
		req->retry_after[len] = '\0';
	}
	return n;
}

/* RFC 9110 token characters. */
static bool
webhook_is_token(const char *s)
{
	const unsigned char *p;

	if (*s == '\0')
		return false;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (isalnum(*p))
			continue;
		if (strchr("!#$%&'*+-.^_`|~", *p) == NULL)
			return false;
	}
	return true;
}

/* Does the JSON text contain a \u0000 escape (not an escaped backslash)? */
static bool
webhook_has_nul_escape(const char *s)
{
	const char *p, *q;
	size_t bs;

	for (p = s; (p = strstr(p, "u0000")) != NULL; p++) {
		bs = 0;
		for (q = p; q > s && q[-1] == '\\'; q--)
			bs++;
		if (bs % 2 == 1)
			return true;
	}
	return false;
}

/* Appends "name: value" to the list. */
static int
webhook_add_header(struct webhook_req *req, const char *name,
    const char *value)
{
	struct curl_slist *l;
	size_t len;
	char *line;

	len = strlen(name) + strlen(value) + 3;
	if ((line = gw_malloc(len)) == NULL)
		return GW_ENOMEM;
	/* curl drops "Name: " (that is how a default header is removed);
	 * "Name;" sends a header with an empty value. */
	if (*value == '\0' && strcmp(name, "Expect") != 0)
		snprintf(line, len, "%s;", name);
	else
		snprintf(line, len, "%s: %s", name, value);
	l = curl_slist_append(req->headers, line);
	gw_free(line);
	if (l == NULL)
		return GW_ENOMEM;
	req->headers = l;
	return 0;
}

/* Adds the user's headers from the JSON object text json (may be NULL). */
static int
webhook_headers(struct webhook_req *req, const char *json)
{
	cJSON *obj, *it;
	char num[64];
	const char *v;
	int rc = 0;

	if (json == NULL || *json == '\0')
		return 0;
	if (webhook_has_nul_escape(json)) {
		snprintf(req->error, sizeof req->error,
		    "header value contains NUL");
		return GW_EMALFORMED;
	}
	if ((obj = cJSON_Parse(json)) == NULL || !cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		snprintf(req->error, sizeof req->error,
		    "headers are not a JSON object");
		return GW_EMALFORMED;
	}
	cJSON_ArrayForEach(it, obj) {
		if (it->string == NULL || !webhook_is_token(it->string)) {
			snprintf(req->error, sizeof req->error,
			    "bad header name");
			rc = GW_EMALFORMED;
			break;
		}
		if (cJSON_IsString(it))
			v = it->valuestring;
		else if (cJSON_IsNumber(it)) {
			snprintf(num, sizeof num, "%.17g", it->valuedouble);
			v = num;
		} else if (cJSON_IsBool(it))
			v = cJSON_IsTrue(it) ? "true" : "false";
		else {
			snprintf(req->error, sizeof req->error,
			    "header %.64s: not a string", it->string);
			rc = GW_EMALFORMED;
			break;
		}
		if (strpbrk(v, "\r\n") != NULL) {
			snprintf(req->error, sizeof req->error,
			    "header %.64s: value contains CR or LF",
			    it->string);
			rc = GW_EMALFORMED;
			break;
		}
		/* Ours, or framing that libcurl must own. */
		if (strcasecmp(it->string, WEBHOOK_KEY_HEADER) == 0 ||
		    strcasecmp(it->string, WEBHOOK_SIG_HEADER) == 0 ||
		    strcasecmp(it->string, "Content-Length") == 0 ||
		    strcasecmp(it->string, "Transfer-Encoding") == 0)
			continue;
		if (strcasecmp(it->string, "Content-Type") == 0)
			req->json_ct = false;
		if ((rc = webhook_add_header(req, it->string, v)) != 0)
			break;
	}
	cJSON_Delete(obj);
	return rc;
}

/* Appends bytes to the batch body. */
static int
webhook_body_append(struct webhook_req *req, const void *p, size_t n)
{
	size_t cap;
	char *b;

	if (req->body_len + n + 1 > req->body_cap) {
		cap = req->body_cap == 0 ? 1024 : req->body_cap;
		while (cap < req->body_len + n + 1)
			cap *= 2;
		if ((b = gw_realloc(req->body, cap)) == NULL)
			return GW_ENOMEM;
		req->body = b;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, p, n);
	req->body_len += n;
	req->body[req->body_len] = '\0';
	return 0;
}

/* Builds the batch body: a JSON array of the bodies, or NDJSON. */
static int
webhook_batch_body(struct webhook_req *req, const struct outbox_row *rows,
    size_t n)
{
	size_t i;
	int rc = 0;

	req->body_len = 0;
	if (req->format == WEBHOOK_FORMAT_ARRAY)
		rc = webhook_body_append(req, "[", 1);
	for (i = 0; i < n && rc == 0; i++) {
		if (req->format == WEBHOOK_FORMAT_ARRAY && i > 0)
			rc = webhook_body_append(req, ",", 1);
		if (rc == 0 && rows[i].body_len == 0 &&
		    req->format == WEBHOOK_FORMAT_ARRAY)
			rc = webhook_body_append(req, "null", 4);
		else if (rc == 0)
			rc = webhook_body_append(req, rows[i].body,
			    rows[i].body_len);
		if (rc == 0 && req->format == WEBHOOK_FORMAT_NDJSON)
			rc = webhook_body_append(req, "\n", 1);
	}
	if (rc == 0 && req->format == WEBHOOK_FORMAT_ARRAY)
		rc = webhook_body_append(req, "]", 1);
	return rc;
}

/* Idempotency-Key text. Pure. */
int
webhook_idempotency_key(char *buf, size_t len, const char *instance_id,
    int64_t first, int64_t last)
{
	int n;

	if (first == last)
		n = snprintf(buf, len, "%s-%lld", instance_id,
		    (long long)first);
	else
		n = snprintf(buf, len, "%s-%lld-%lld", instance_id,
		    (long long)first, (long long)last);
	return n < 0 || (size_t)n >= len ? GW_ETOOBIG : 0;
}

/* HMAC-SHA256 of "<t>.<body>" as hex. Any thread. */
int
webhook_hmac_hex(const char *secret, int64_t t, const void *body,
    size_t body_len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	char digest_name[] = "SHA256", ts[32];
	unsigned char out[EVP_MAX_MD_SIZE];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *mac;
	size_t outlen = 0, i;
	int rc = GW_EIO, n;

	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return GW_EIO;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    digest_name, 0);
	params[1] = OSSL_PARAM_construct_end();
	n = snprintf(ts, sizeof ts, "%lld.", (long long)t);
	if ((ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
	    params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)n) ||
	    (body_len != 0 && !EVP_MAC_update(ctx, body, body_len)) ||
	    !EVP_MAC_final(ctx, out, &outlen, sizeof out) || outlen != 32)
		goto out;
	for (i = 0; i < outlen; i++) {
		hex[2 * i] = digits[out[i] >> 4];
		hex[2 * i + 1] = digits[out[i] & 0xf];
	}
	hex[64] = '\0';
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

/* Sets up the easy handle for rows. Delivery thread. */
int
webhook_req_prepare(struct webhook_req *req, const struct webhook_conf *conf,
    const char *instance_id, const struct outbox_row *rows, size_t n,
    int64_t now_ms)
{
	const char *method, *body;
	char sig[128], hex[65];
	size_t body_len;
	CURL *e = req->easy;
	int64_t t;
	int rc;

	curl_easy_reset(e);
	curl_slist_free_all(req->headers);
	req->headers = NULL;
	req->error[0] = req->curl_err[0] = req->retry_after[0] = '\0';
	req->snippet_len = 0;
	req->snippet[0] = '\0';
	req->json_ct = true;
	req->batch = conf->batch;
	req->format = conf->format;
	if (n == 0 || rows[0].url == NULL) {
		snprintf(req->error, sizeof req->error, "no url (a variable "
		    "its secret needs is no longer set?)");
		return GW_EMALFORMED;
	}
	method = conf->method != NULL && *conf->method != '\0' ?
	    conf->method : "POST";
	if (!webhook_is_token(method)) {
		snprintf(req->error, sizeof req->error, "bad method");
		return GW_EMALFORMED;
	}

	/* Body: the row's own, or the batch built here. */
	if (conf->batch) {
		if ((rc = webhook_batch_body(req, rows, n)) != 0)
			return rc;
		body = req->body;
		body_len = req->body_len;
	} else {
		body = rows[0].body != NULL ? rows[0].body : "";
		body_len = rows[0].body_len;
	}

	/* Headers: the user's, then ours. */
	if ((rc = webhook_headers(req, rows[0].headers)) != 0)
		return rc;
	if (webhook_idempotency_key(req->key, sizeof req->key, instance_id,
	    rows[0].id, rows[n - 1].id) != 0) {
		snprintf(req->error, sizeof req->error, "instance id too long");
		return GW_EMALFORMED;
	}
	if ((rc = webhook_add_header(req, WEBHOOK_KEY_HEADER, req->key)) != 0)
		return rc;
	if (req->json_ct && (rc = webhook_add_header(req, "Content-Type",
	    conf->batch && conf->format == WEBHOOK_FORMAT_NDJSON ?
	    "application/x-ndjson" : "application/json")) != 0)
		return rc;
	if (conf->hmac_secret != NULL && *conf->hmac_secret != '\0') {
		t = now_ms / 1000;
		if (webhook_hmac_hex(conf->hmac_secret, t, body, body_len,
		    hex) != 0) {
			snprintf(req->error, sizeof req->error, "HMAC failed");
			return GW_ENOMEM;
		}
		snprintf(sig, sizeof sig, "t=%lld,sha256=%s", (long long)t,
		    hex);
		rc = webhook_add_header(req, WEBHOOK_SIG_HEADER, sig);
		if (rc != 0)
			return rc;
	}
	/* No "Expect: 100-continue" round trip for large bodies. */
	if ((rc = webhook_add_header(req, "Expect", "")) != 0)
		return rc;

	if (curl_easy_setopt(e, CURLOPT_URL, rows[0].url) != CURLE_OK) {
		snprintf(req->error, sizeof req->error, "bad url");
		return GW_EMALFORMED;
	}
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(conf->timeout_ms != 0 ?
	    conf->timeout_ms : WEBHOOK_DEF_TIMEOUT_MS));
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mqlite");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->curl_err);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, webhook_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, webhook_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);

	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}

	if (conf->ca_file != NULL && *conf->ca_file != '\0')
		curl_easy_setopt(e, CURLOPT_CAINFO, conf->ca_file);
	if (conf->cert != NULL && *conf->cert != '\0')
		curl_easy_setopt(e, CURLOPT_SSLCERT, conf->cert);
	if (conf->key != NULL && *conf->key != '\0')
		curl_easy_setopt(e, CURLOPT_SSLKEY, conf->key);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, conf->insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, conf->insecure ? 0L : 2L);
	return 0;
}

/* Tri-state classification. Pure. */
enum outbox_verdict
webhook_classify(long status, int curl_code)
{
	switch (curl_code) {
	case CURLE_OK:
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_NOT_BUILT_IN:
		return OUTBOX_FAIL;	/* will never work */
	default:
		return OUTBOX_RETRY;	/* network, TLS, timeout, ... */
	}
	if (status >= 200 && status <= 299)
		return OUTBOX_OK;
	if (status == 408 || status == 429 || (status >= 500 && status <= 599))
		return OUTBOX_RETRY;
	if (status < 100)
		return OUTBOX_RETRY;	/* no proper response */
	return OUTBOX_FAIL;		/* 1xx final, 3xx, other 4xx, 6xx+ */
}

/* Reads the result of the finished transfer. Delivery thread. */
void
webhook_req_finish(struct webhook_req *req, int curl_code,
    struct webhook_outcome *out)
{
	long status = 0;
	int64_t ra;

	if (curl_code == CURLE_OK)
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	memset(out, 0, sizeof *out);
	out->status = (int)status;
	out->verdict = webhook_classify(status, curl_code);
	out->retry_after_ms = -1;
	if (curl_code != CURLE_OK) {
		snprintf(req->error, sizeof req->error, "%s",
		    req->curl_err[0] != '\0' ? req->curl_err :
		    curl_easy_strerror((CURLcode)curl_code));
	} else
		snprintf(req->error, sizeof req->error, "HTTP %ld", status);
	out->error = req->error;
	if (out->verdict == OUTBOX_RETRY && req->retry_after[0] != '\0' &&
	    backoff_parse_retry_after(req->retry_after, curl_code == CURLE_OK ?
	    (int64_t)time(NULL) * 1000 : 0, &ra) == 0)
		out->retry_after_ms = ra;
	if (out->verdict == OUTBOX_FAIL && curl_code == CURLE_OK)
		out->response = req->snippet;
}
