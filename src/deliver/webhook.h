/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One webhook request: an outbox row (or a batch of consecutive rows of one
 * route) turned into a libcurl easy handle, and the response turned into a
 * verdict (Fluent Bit's tri-state):
 *
 *	2xx				OK	delete the row(s)
 *	408, 429, 5xx, network errors,
 *	timeouts			RETRY	backoff, Retry-After honoured
 *	3xx (never followed), other 4xx,
 *	a malformed url or header	FAIL	dead letter, with status and
 *						a response snippet
 *
 * The request carries the rendered url and headers of its first row, an
 * Idempotency-Key of "<instance_id>-<id>" ("<instance_id>-<first>-<last>"
 * for a batch of several rows), and, when a secret is configured,
 *
 *	X-Mqlite-Signature: t=<unix seconds>,sha256=<hex HMAC-SHA256 of
 *	                    "<t>.<body>" keyed with the secret>
 *
 * The secret is given at send time and is never stored or logged. Header
 * values with CR, LF or NUL, or header names that are not HTTP tokens, make
 * the request FAIL before anything is sent.
 *
 * Handles are reusable (curl_easy_reset keeps nothing of the previous
 * request but the handle); connections are kept alive and reused by the
 * connection cache of the multi handle the caller adds them to. Proxies
 * come from the usual environment variables (libcurl's default). Only
 * http and https are allowed; redirects are not followed.
 *
 * Thread: a webhook_req belongs to the thread that uses it (the delivery
 * thread); nothing here has global state.
 */
#ifndef GW_WEBHOOK_H
#define GW_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store/outbox.h"

#define WEBHOOK_DEF_TIMEOUT_MS	10000
#define WEBHOOK_SIG_HEADER	"X-Mqlite-Signature"
#define WEBHOOK_KEY_HEADER	"Idempotency-Key"

enum webhook_format {
	WEBHOOK_FORMAT_ARRAY,	/* [body1,body2,...]: bodies are JSON texts */
	WEBHOOK_FORMAT_NDJSON,	/* body1\nbody2\n... */
};

/* Per-route request settings; strings are borrowed for a prepare call. */
struct webhook_conf {
	const char	*method;	/* NULL: POST */
	uint32_t	 timeout_ms;	/* whole request; 0: 10000 */
	bool		 batch;		/* body is array/ndjson, even of 1 */
	enum webhook_format format;	/* when batch */
	const char	*ca_file;	/* NULL: system CA store */
	const char	*cert;		/* client certificate (PEM) or NULL */
	const char	*key;		/* its private key or NULL */
	bool		 insecure;	/* skip peer/host verification */
	const char	*hmac_secret;	/* NULL or "": no signature */
};

/* What a finished request means; strings borrowed from the request. */
struct webhook_outcome {
	enum outbox_verdict verdict;
	int		 status;	/* HTTP status, 0 if no response */
	int64_t		 retry_after_ms; /* -1: none or unparsable */
	const char	*error;		/* "HTTP 503", curl's message, ... */
	const char	*response;	/* FAIL: first <= 512 body bytes */
};

struct webhook_req;

/* Returns a new request with its own curl easy handle, or NULL. */
struct webhook_req *webhook_req_new(void);

/* Frees req and its easy handle (remove it from any multi first). NULL ok. */
void		 webhook_req_free(struct webhook_req *req);

/*
 * Sets req up to send rows[0..n) (n >= 1, consecutive rows of one route
 * with the same url and headers; borrowed and must stay unchanged until the
 * request finishes) with conf (borrowed for this call only) at now_ms (the
 * wall clock, for the signature). instance_id is the database's.
 * Returns 0; GW_EMALFORMED when the row(s) can never be sent (bad header,
 * bad url, unsupported method: webhook_req_error() says why, the caller
 * dead-letters without sending); GW_ENOMEM.
 */
int		 webhook_req_prepare(struct webhook_req *req,
		    const struct webhook_conf *conf, const char *instance_id,
		    const struct outbox_row *rows, size_t n, int64_t now_ms);

/* The easy handle (CURL *), borrowed; add it to a multi handle. */
void		*webhook_req_easy(struct webhook_req *req);

/* The reason prepare failed; borrowed. */
const char	*webhook_req_error(const struct webhook_req *req);

/* The Idempotency-Key of the prepared request; borrowed. */
const char	*webhook_req_key(const struct webhook_req *req);

/*
 * Classifies the finished transfer: curl_code is the CURLcode from
 * curl_multi_info_read(). Fills out (strings valid until the next prepare
 * or free).
 */
void		 webhook_req_finish(struct webhook_req *req, int curl_code,
		    struct webhook_outcome *out);

/* The verdict for an HTTP status (curl_code CURLE_OK) or a curl error. */
enum outbox_verdict webhook_classify(long status, int curl_code);

/*
 * Writes the lowercase hex HMAC-SHA256 of "<t>.<body>" keyed with secret
 * into hex (65 bytes with the NUL). 0 or GW_EIO (OpenSSL failure).
 */
int		 webhook_hmac_hex(const char *secret, int64_t t,
		    const void *body, size_t body_len, char hex[65]);

/*
 * Writes the Idempotency-Key for rows first..last into buf:
 * "<instance>-<first>" when first == last, else "<instance>-<first>-<last>".
 * Returns 0 or GW_ETOOBIG.
 */
int		 webhook_idempotency_key(char *buf, size_t len,
		    const char *instance_id, int64_t first, int64_t last);

#endif
