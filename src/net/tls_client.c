/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * The TLS contexts of outgoing connections: one per source broker whose
 * url says mqtts:// or ssl:// (or that has a "tls" object).
 *
 * DESIGN
 *
 * A source is mqlite acting as a client, so the checks run the other way
 * round from a listener's: by default the broker's certificate must chain
 * to the source's tls.ca_file (or, without one, to the system's CA store)
 * and must name the host the url names (an address is matched against the
 * certificate's IP entries, a name against its DNS entries, no partial
 * wildcards); tls.insecure turns both checks off and the start says so
 * with a warning. A client certificate (tls.cert and tls.key) is offered
 * when the broker asks for one. The policy is the listeners': TLS 1.2 and
 * newer, forward-secret AEAD suites for TLS 1.2.
 *
 * The files are opened and checked when the context is built, so --check
 * and the start report a missing file, a file that is not PEM, a key of
 * another certificate or an expired client certificate with the file and
 * its key path. What only the broker can tell (a CA that did not sign its
 * certificate, another host name, its certificate expired, an alert) ends
 * the handshake on the loop thread (tls_handshake(), tls.c) and the source
 * logs it and retries with its backoff. libssl is loaded on the first
 * TLS source; a gateway without TLS sources or listeners never maps it.
 */
#include <string.h>

#include "config.h"
#include "log.h"
#include "net/tls.h"
#include "net/tls_int.h"

/* See tls_int.h. */
struct tls_ctx *
tls_client_alloc(const struct config_source *s, size_t index)
{
	struct tls_ctx *t;

	t = tls_ctx_alloc(true, index, s->tls_cert, s->tls_key,
	    s->tls_ca_file);
	if (t != NULL)
		t->insecure = s->tls_insecure;
	return t;
}

/* A context for source s, or NULL with err filled. */
static struct tls_ctx *
client_new(const struct config_source *s, size_t index, struct gw_error *err)
{
	return tls_ctx_finish(tls_client_alloc(s, index), "sources", err);
}

/* See tls.h. */
struct tls_ctx *
tls_client_ctx_new(const struct config_source *s, size_t index,
    struct gw_error *err)
{
	struct tls_ctx *t;

	if ((t = client_new(s, index, err)) != NULL && t->insecure)
		log_warn("source %s: tls.insecure: the broker's certificate "
		    "and host name are not verified", s->name);
	return t;
}
