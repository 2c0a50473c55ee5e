/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to src/net/tls.c (listeners, sessions) and tls_client.c (the
 * contexts of outgoing connections): the context both build and the
 * OpenSSL error text they report. Nothing else includes this.
 */
#ifndef GW_TLS_INT_H
#define GW_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "err.h"

struct tls_ctx {
	SSL_CTX		*ssl_ctx;	/* current settings, NULL never */
	char		*cert;		/* certificate chain (PEM) or NULL */
	char		*key;		/* private key (PEM) or NULL */
	char		*ca;		/* CA bundle or NULL */
	bool		 require_cert;	/* listener: client certificate */
	bool		 use_identity;	/* listener: CN becomes username */
	bool		 client;	/* outgoing connections (sources) */
	bool		 insecure;	/* client: no peer verification */
	const char	*section;	/* "listeners" or "sources" */
	size_t		 index;		/* section[index] in the config */
};

/*
 * Returns a new context without an SSL_CTX: a client's (a source's) or
 * a listener's, number index in its config section, with copies of the
 * file names (each may be NULL). NULL on ENOMEM.
 */
struct tls_ctx	*tls_ctx_alloc(bool client, size_t index, const char *cert,
		    const char *key, const char *ca);

/*
 * Builds an SSL_CTX from t's files and settings (libssl loaded first).
 * Returns it, or NULL with err naming the file and SECTION[N].tls.KEY at
 * fault.
 */
SSL_CTX		*tls_ctx_build(const struct tls_ctx *t,
		    struct gw_error *err);

/*
 * Builds the SSL_CTX of t (takes ownership of t; NULL means allocating
 * it failed). Returns t, or NULL with err filled and t freed.
 */
struct tls_ctx	*tls_ctx_finish(struct tls_ctx *t, const char *section,
		    struct gw_error *err);

/* tls_client.c: a context with source s's settings, no SSL_CTX yet. */
struct config_source;
struct tls_ctx	*tls_client_alloc(const struct config_source *s, size_t index);

#endif
