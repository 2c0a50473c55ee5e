/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS listeners and TLS connections to source brokers (OpenSSL 3, libssl
 * loaded on first use by tls_shim.c). A struct tls_ctx belongs to one
 * listener or one source: its certificate, key and CA files and the
 * SSL_CTX built from them. A struct tls_session belongs to one accepted
 * or outgoing connection; conn.c reads and writes through it instead of
 * read(2)/send(2) when a connection has one, so the broker and the
 * sources see the same byte streams with and without TLS.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct config_listener;
struct gw_config;
struct tls_ctx;
struct tls_session;

/* Same shape as the config and rules error reporters. */
typedef void (*tls_report_fn)(const char *file, const struct gw_error *e,
	    void *arg);

/*
 * Opens and validates the certificate, key and CA files of every TLS
 * listener and every TLS source of cfg the way the daemon would load them
 * (readable, PEM, key matching the certificate, certificate not expired),
 * reporting each problem as file cfg->config_path, path
 * "listeners[N].tls.KEY" or "sources[N].tls.KEY". Returns the number of
 * problems reported. Loads libssl only if cfg has something TLS.
 */
int	tls_check_config(const struct gw_config *cfg, tls_report_fn report,
	    void *arg);

/*
 * Returns a new context for listener number index (borrows l for the
 * call; the paths are copied), or NULL with err filled (err->path names
 * the key at fault).
 */
struct tls_ctx	*tls_ctx_new(const struct config_listener *l, size_t index,
		    struct gw_error *err);

/*
 * Re-reads the files of t. On success new connections use them (open
 * connections keep theirs); on failure t keeps the files it had and err
 * says why. 0 or GW_ECONFIG.
 */
int	tls_ctx_reload(struct tls_ctx *t, struct gw_error *err);

/* Frees t; open sessions keep what they use. NULL is fine. */
void	tls_ctx_free(struct tls_ctx *t);

/*
 * Starts the server side of a TLS connection on the connected socket fd
 * (borrowed: the caller closes it after tls_session_free). The handshake
 * runs inside the first tls_read() calls. NULL on failure.
 */
struct tls_session *tls_session_new(struct tls_ctx *t, int fd);

/* Sends close_notify when possible and frees s. NULL is fine. */
void	tls_session_free(struct tls_session *s);

/*
 * Reads up to len decrypted bytes, finishing the handshake first. Returns
 * bytes read (> 0), 0 on orderly EOF, GW_ERETRY when it must wait for the
 * socket (see tls_read_wants_write), GW_EIO on failure (tls_failure()).
 */
ssize_t	tls_read(struct tls_session *s, void *buf, size_t len);

/*
 * Writes up to len bytes of buf. After GW_ERETRY the next call must pass
 * the same bytes again (buf may have moved, len may have grown). Returns
 * bytes written (> 0), GW_ERETRY or GW_EIO.
 */
ssize_t	tls_write(struct tls_session *s, const void *buf, size_t len);

/* Decrypted bytes held inside OpenSSL, readable without the socket. */
size_t	tls_pending(const struct tls_session *s);

/* The last tls_read() waits for the socket to become writable. */
bool	tls_read_wants_write(const struct tls_session *s);

/* The last tls_write() waits for the socket to become readable. */
bool	tls_write_wants_read(const struct tls_session *s);

/* Why the session failed ("TLS handshake failed: ..."), or NULL. */
const char *tls_failure(const struct tls_session *s);

/* The listener uses the certificate's CN as the MQTT username. */
bool	tls_uses_identity(const struct tls_session *s);

/* The verified client certificate's CN, or NULL if there is none. */
const char *tls_identity(const struct tls_session *s);

/*
 * Starts the client side of a TLS connection to host (a name or an
 * address, borrowed) on the connected socket fd (borrowed), with t from
 * tls_client_ctx_new(). Unless t is insecure, the server's certificate
 * must chain to t's CA and name host. Run tls_handshake() until it
 * returns 0 before reading or writing. NULL on failure.
 */
struct tls_session *tls_session_connect(struct tls_ctx *t, int fd,
		    const char *host);

/*
 * Advances the handshake of s. Returns 0 once done, GW_ERETRY when it
 * waits for the socket (readable, or writable if tls_read_wants_write),
 * GW_EIO on failure (tls_failure() says why: a certificate that does not
 * verify, a host name that does not match, an alert from the peer).
 */
int	tls_handshake(struct tls_session *s);

/* tls_client.c */
struct config_source;

/*
 * Returns a new client context for source number index (borrows s for
 * the call; the paths are copied): its CA file or the system's CA store,
 * its client certificate and key. NULL with err filled (err->path names
 * "sources[N].tls.KEY" at fault). Loads libssl.
 */
struct tls_ctx	*tls_client_ctx_new(const struct config_source *s,
		    size_t index, struct gw_error *err);

/* tls_shim.c: loads libssl once. 0, or -1 after logging why. */
int	tls_shim_load(void);

#endif
