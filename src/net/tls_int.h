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
 * Builds an SSL_CTX from t's files and settings (libssl loaded first).
 * Returns it, or NULL with err naming the file and SECTION[N].tls.KEY at
 * fault.
 */
SSL_CTX		*tls_ctx_build(const struct tls_ctx *t, struct gw_error *err);

/*
 * The earliest queued OpenSSL error as text (clears the queue); buf holds
 * the text when OpenSSL has none.
 */
const char	*tls_ssl_reason(char *buf, size_t len);

#endif
