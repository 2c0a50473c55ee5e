/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DESIGN. TLS sits under the connection's byte streams and nowhere else:
 * conn_read() and conn_flush() call tls_read() and tls_write() instead of
 * read(2) and send(2) when the connection came in on a TLS listener, and
 * the broker parses the same decrypted bytes it would read from a plain
 * socket. Everything is non-blocking on the loop thread:
 *
 * - The handshake runs inside tls_read(): the socket is readable, OpenSSL
 *   answers WANT_READ (wait for more) or WANT_WRITE (the socket buffer is
 *   full: the caller adds EV_WRITE interest and calls tls_read() again
 *   when writable). The broker's connect timer is armed at accept, so the
 *   handshake counts inside limits.connect_timeout.
 * - SSL_write() that must be repeated is repeated with the same bytes:
 *   the output buffer only grows at its end until a write succeeds, and
 *   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets it move in memory. The
 *   retried length is remembered, so a write is never shortened.
 * - OpenSSL may hold decrypted bytes that epoll cannot see (tls_pending):
 *   the broker keeps reading while there are some, and reads them when it
 *   resumes a connection it had paused, so a TLS client never stalls.
 *
 * Policy: TLS 1.2 and newer only, whatever the system's OpenSSL defaults;
 * TLS 1.2 ciphers limited to forward-secret AEAD suites (TLS 1.3 suites
 * are OpenSSL's defaults, all AEAD); no renegotiation, no compression.
 * With require_client_cert the client must present a certificate that
 * chains to the listener's CA; use_identity_as_username makes its common
 * name the MQTT username.
 *
 * Outgoing connections (sources, contexts from tls_client.c) share the
 * policy, the file checks and the session code: tls_session_connect()
 * sets the host to verify (an address or a DNS name, sent as SNI when it
 * is a name) and tls_handshake() drives the client handshake before the
 * first MQTT byte, so a verification failure is reported as such.
 *
 * Reload: a listener's SSL_CTX is rebuilt from its files and swapped in
 * only when every file loaded and matched; open connections hold their
 * own reference to the old SSL_CTX (OpenSSL counts them), so nothing open
 * is disturbed. libssl itself is loaded by tls_shim.c on first use.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "mem.h"
#include "net/tls.h"
#include "net/tls_int.h"

/* Forward-secret AEAD suites for TLS 1.2 (TLS 1.3 keeps its defaults). */
#define TLS12_CIPHERS	"ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
#define SID_CONTEXT	"mqlite"
#define SESSION_CACHE	1024	/* TLS sessions kept for resumption */

struct tls_session {
	SSL		*ssl;
	bool		 client;	/* we connected (a source) */
	bool		 handshake_done;
	bool		 failed;	/* fatal error: no close_notify */
	bool		 read_wants_write;
	bool		 write_wants_read;
	bool		 use_identity;
	int		 retry_len;	/* SSL_write to repeat, 0 none */
	int		 fd;		/* for log lines */
	char		*identity;	/* certificate CN or NULL */
	char		 failure[192];	/* why failed, "" if not */
};

static void	 handshake_done(struct tls_session *);
static int	 io_result(struct tls_session *, int, bool);
static bool	 read_alert(struct tls_session *);

/* See tls_int.h. */
const char *
tls_ssl_reason(char *buf, size_t len)
{
	unsigned long e, first = 0;
	const char *r;

	while ((e = ERR_get_error()) != 0) {
		if (first == 0)
			first = e;
	}
	if (first == 0)
		return "unknown error";
	if ((r = ERR_reason_error_string(first)) != NULL)
		return r;
	snprintf(buf, len, "OpenSSL error %lx", first);
	return buf;
}

/* Fills err for SECTION[index].tls.KEY. Returns GW_ECONFIG. */
static int
file_error(struct gw_error *err, const struct tls_ctx *t, const char *key,
    const char *file, const char *fmt, const char *reason)
{
	char path[64], what[160];

	snprintf(path, sizeof path, "%s[%zu].tls.%s", t->section, t->index,
	    key);
	snprintf(what, sizeof what, fmt, reason);
	return gw_error_set(err, path, "%s: %s", file, what);
}

/* The file can be opened for reading; else err says why. */
static int
check_readable(const struct tls_ctx *t, const char *file, const char *key,
    struct gw_error *err)
{
	FILE *f;

	if (file == NULL)
		return 0;
	if ((f = fopen(file, "r")) == NULL)
		return file_error(err, t, key, file, "cannot open: %s",
		    strerror(errno));
	fclose(f);
	return 0;
}

/* Loads t's certificate chain and key into ctx; else err says why. */
static int
use_keypair(SSL_CTX *ctx, const struct tls_ctx *t, struct gw_error *err)
{
	X509 *x;
	const char *reason;
	char rb[64];

	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1)
		return file_error(err, t, "cert", t->cert,
		    "not a usable PEM certificate (%s)", tls_ssl_reason(rb,
		    sizeof rb));
	x = SSL_CTX_get0_certificate(ctx);
	if (x != NULL && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		return file_error(err, t, "cert", t->cert, "%s",
		    "the certificate has expired");
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL compares the key with the certificate here. */
		reason = tls_ssl_reason(rb, sizeof rb);
		return file_error(err, t, "key", t->key, strstr(reason,
		    "mismatch") != NULL ? "the key does not match the "
		    "certificate (%s)" : "not a usable PEM private key (%s)",
		    reason);
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		return file_error(err, t, "key", t->key, "%s",
		    "the key does not match the certificate");
	}
	return 0;
}

/*
 * Whom the peer must prove to be: a listener asks for client certificates
 * signed by its CA (required or not); a client verifies the server's
 * chain against ca_file or the system's store, unless insecure.
 */
static int
set_verify(SSL_CTX *ctx, const struct tls_ctx *t, struct gw_error *err)
{
	STACK_OF(X509_NAME) *names = NULL;
	const char *cakey = t->client ? "ca_file" : "ca";
	char rb[64];
	int mode;

	mode = SSL_VERIFY_NONE;
	if (t->ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1 ||
		    (!t->client &&
		    (names = SSL_load_client_CA_file(t->ca)) == NULL))
			return file_error(err, t, cakey, t->ca,
			    "not a usable PEM CA bundle (%s)", tls_ssl_reason(rb,
			    sizeof rb));
		if (!t->client)
			SSL_CTX_set_client_CA_list(ctx, names);
	} else if (t->client && !t->insecure &&
	    SSL_CTX_set_default_verify_paths(ctx) != 1)
		return gw_error_set(err, t->section, "cannot load the "
		    "system's CA certificates: %s", tls_ssl_reason(rb,
		    sizeof rb));
	if (t->client && !t->insecure)
		mode = SSL_VERIFY_PEER;
	if (t->require_cert)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	return 0;
}

/* See tls_int.h. */
SSL_CTX *
tls_ctx_build(const struct tls_ctx *t, struct gw_error *err)
{
	SSL_CTX *ctx;
	char rb[64];

	if (tls_shim_load() != 0) {
		gw_error_set(err, t->section, "TLS needs OpenSSL 3 "
		    "(libssl.so.3), which cannot be loaded");
		return NULL;
	}
	if (check_readable(t, t->cert, "cert", err) != 0 ||
	    check_readable(t, t->key, "key", err) != 0 ||
	    check_readable(t, t->ca, t->client ? "ca_file" : "ca", err) != 0)
		return NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(t->client ? TLS_client_method() :
	    TLS_server_method())) == NULL) {
		gw_error_set(err, t->section, "cannot create a TLS context: "
		    "%s", tls_ssl_reason(rb, sizeof rb));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		gw_error_set(err, t->section, "no usable TLS 1.2 cipher: %s",
		    tls_ssl_reason(rb, sizeof rb));
		goto fail;
	}
	if (!t->client) {
		SSL_CTX_set_session_id_context(ctx,
		    (const unsigned char *)SID_CONTEXT, sizeof SID_CONTEXT - 1);
		/* Resumption is welcome; its memory is bounded. */
		SSL_CTX_sess_set_cache_size(ctx, SESSION_CACHE);
	}
	if ((t->cert != NULL && use_keypair(ctx, t, err) != 0) ||
	    set_verify(ctx, t, err) != 0)
		goto fail;
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* See tls_int.h. */
struct tls_ctx *
tls_ctx_alloc(bool client, size_t index, const char *cert, const char *key,
    const char *ca)
{
	struct tls_ctx *t;

	if ((t = gw_calloc(1, sizeof *t)) == NULL)
		return NULL;
	t->client = client;
	t->section = client ? "sources" : "listeners";
	t->index = index;
	if ((cert != NULL && (t->cert = gw_strdup(cert)) == NULL) ||
	    (key != NULL && (t->key = gw_strdup(key)) == NULL) ||
	    (ca != NULL && (t->ca = gw_strdup(ca)) == NULL)) {
		tls_ctx_free(t);
		return NULL;
	}
	return t;
}

/* A context with t's settings from l, without an SSL_CTX yet. */
static struct tls_ctx *
ctx_alloc(const struct config_listener *l, size_t index)
{
	struct tls_ctx *t;

	/* A listener always has both files (--check says so if not). */
	t = tls_ctx_alloc(false, index, l->tls_cert != NULL ? l->tls_cert :
	    "", l->tls_key != NULL ? l->tls_key : "", l->tls_ca);
	if (t != NULL) {
		t->require_cert = l->tls_require_client_cert;
		t->use_identity = l->tls_use_identity;
	}
	return t;
}

/* Builds and frees t; 1 after reporting why it failed, else 0. */
static int
check_ctx(const struct gw_config *cfg, struct tls_ctx *t,
    const char *section, tls_report_fn report, void *arg)
{
	struct gw_error err;

	memset(&err, 0, sizeof err);
	if ((t = tls_ctx_finish(t, section, &err)) == NULL) {
		report(cfg->config_path, &err, arg);
		return 1;
	}
	tls_ctx_free(t);
	return 0;
}

/* See tls.h. */
int
tls_check_config(const struct gw_config *cfg, tls_report_fn report,
    void *arg)
{
	size_t i;
	int n = 0;

	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].tls)
			n += check_ctx(cfg, ctx_alloc(&cfg->listeners[i], i),
			    "listeners", report, arg);
	for (i = 0; i < cfg->nsources; i++)
		if (cfg->sources[i].tls)
			n += check_ctx(cfg, tls_client_alloc(&cfg->sources[i],
			    i), "sources", report, arg);
	return n;
}

/* See tls.h. */
struct tls_ctx *
tls_ctx_new(const struct config_listener *l, size_t index,
    struct gw_error *err)
{
	return tls_ctx_finish(ctx_alloc(l, index), "listeners", err);
}

/* See tls_int.h. */
struct tls_ctx *
tls_ctx_finish(struct tls_ctx *t, const char *section, struct gw_error *err)
{
	if (t == NULL) {
		gw_error_set(err, section, "out of memory");
		return NULL;
	}
	if ((t->ssl_ctx = tls_ctx_build(t, err)) == NULL) {
		tls_ctx_free(t);
		return NULL;
	}
	return t;
}

/* See tls.h. */
int
tls_ctx_reload(struct tls_ctx *t, struct gw_error *err)
{
	SSL_CTX *ctx;

	if ((ctx = tls_ctx_build(t, err)) == NULL)
		return GW_ECONFIG;
	SSL_CTX_free(t->ssl_ctx);
	t->ssl_ctx = ctx;
	return 0;
}

/* See tls.h. */
void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	if (t->ssl_ctx != NULL)
		SSL_CTX_free(t->ssl_ctx);
	gw_free(t->cert);
	gw_free(t->key);
	gw_free(t->ca);
	gw_free(t);
}

/* See tls.h. */
struct tls_session *
tls_session_new(struct tls_ctx *t, int fd)
{
	struct tls_session *s;

	if ((s = gw_calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->fd = fd;
	s->use_identity = t->use_identity;
	ERR_clear_error();
	if ((s->ssl = SSL_new(t->ssl_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, fd) != 1) {
		ERR_clear_error();
		tls_session_free(s);
		return NULL;
	}
	SSL_set_accept_state(s->ssl);
	return s;
}

/* See tls.h. */
struct tls_session *
tls_session_connect(struct tls_ctx *t, int fd, const char *host)
{
	struct tls_session *s;
	X509_VERIFY_PARAM *vp;
	unsigned char addr[16];
	bool ip;

	if ((s = gw_calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->fd = fd;
	s->client = true;
	ip = inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
	ERR_clear_error();
	if ((s->ssl = SSL_new(t->ssl_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, fd) != 1)
		goto fail;
	/* SNI carries names only, never an address (RFC 6066). */
	if (!ip && SSL_set_tlsext_host_name(s->ssl, host) != 1)
		goto fail;
	if (!t->insecure) {
		vp = SSL_get0_param(s->ssl);
		X509_VERIFY_PARAM_set_hostflags(vp,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) :
		    X509_VERIFY_PARAM_set1_host(vp, host, 0)) != 1)
			goto fail;
	}
	SSL_set_connect_state(s->ssl);
	return s;

fail:
	ERR_clear_error();
	tls_session_free(s);
	return NULL;
}

/* See tls.h. */
int
tls_handshake(struct tls_session *s)
{
	int r;

	if (s->failed)
		return GW_EIO;
	if (s->handshake_done)
		return 0;
	s->read_wants_write = false;
	ERR_clear_error();
	errno = 0;
	if ((r = SSL_do_handshake(s->ssl)) == 1) {
		handshake_done(s);
		return 0;
	}
	if ((r = io_result(s, r, true)) != 0)
		return r;
	/* End of stream in the middle of the handshake. */
	if (s->failure[0] == '\0')
		snprintf(s->failure, sizeof s->failure, "TLS handshake failed: "
		    "the peer closed the connection");
	s->failed = true;
	return GW_EIO;
}

/* See tls.h. */
void
tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	if (s->ssl != NULL) {
		/* Best effort close_notify; never after a fatal error. */
		if (s->handshake_done && !s->failed)
			(void)SSL_shutdown(s->ssl);
		ERR_clear_error();
		SSL_free(s->ssl);
	}
	gw_free(s->identity);
	gw_free(s);
}

/* Keeps the client certificate's CN once the handshake is done. */
static void
handshake_done(struct tls_session *s)
{
	const SSL_CIPHER *c;
	X509 *x;
	char cn[256];
	int n;

	s->handshake_done = true;
	if (!s->client && (x = SSL_get1_peer_certificate(s->ssl)) != NULL) {
		n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_commonName, cn, sizeof cn);
		/* No CN, or one with a NUL inside: no identity. */
		if (n > 0 && (size_t)n == strlen(cn))
			s->identity = gw_strdup(cn);
		X509_free(x);
	}
	ERR_clear_error();
	c = SSL_get_current_cipher(s->ssl);
	log_debug("fd %d: TLS handshake done: %s %s%s%s", s->fd,
	    SSL_get_version(s->ssl), c != NULL ? SSL_CIPHER_get_name(c) : "?",
	    s->identity != NULL ? ", client certificate CN " : "",
	    s->identity != NULL ? s->identity : "");
}

/* Records a fatal error with OpenSSL's reason. Returns GW_EIO. */
static int
session_fail(struct tls_session *s, const char *what)
{
	char rb[64];
	const char *reason = tls_ssl_reason(rb, sizeof rb);
	long v;

	s->failed = true;
	v = SSL_get_verify_result(s->ssl);
	if (!s->handshake_done && v != X509_V_OK)
		snprintf(s->failure, sizeof s->failure, "%s: %s (%s)", what,
		    reason, X509_verify_cert_error_string(v));
	else
		snprintf(s->failure, sizeof s->failure, "%s: %s", what, reason);
	return GW_EIO;
}

/*
 * Maps the result r of an SSL call to GW_ERETRY (and what to wait for),
 * 0 (orderly or abrupt EOF while reading) or GW_EIO.
 */
static int
io_result(struct tls_session *s, int r, bool reading)
{
	int e = SSL_get_error(s->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (!reading)
			s->write_wants_read = true;
		return GW_ERETRY;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			s->read_wants_write = true;
		return GW_ERETRY;
	case SSL_ERROR_ZERO_RETURN:
		return reading ? 0 : GW_EIO;
	case SSL_ERROR_SYSCALL:
		s->failed = true;
		ERR_clear_error();
		if (r == 0 || errno == 0 || errno == ECONNRESET ||
		    errno == EPIPE)
			return reading ? 0 : GW_EIO;
		snprintf(s->failure, sizeof s->failure, "TLS: %s",
		    strerror(errno));
		return GW_EIO;
	default:
		return session_fail(s, s->handshake_done ? "TLS error" :
		    "TLS handshake failed");
	}
}

/* See tls.h. */
ssize_t
tls_read(struct tls_session *s, void *buf, size_t len)
{
	int r;

	if (s->failed)
		return GW_EIO;
	s->read_wants_write = false;
	if (!s->handshake_done) {
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_do_handshake(s->ssl)) != 1)
			return io_result(s, r, true);
		handshake_done(s);
	}
	if (len == 0)
		return GW_ERETRY;
	ERR_clear_error();
	errno = 0;
	r = SSL_read(s->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (r > 0)
		return r;
	return io_result(s, r, true);
}

/* See tls.h. */
ssize_t
tls_write(struct tls_session *s, const void *buf, size_t len)
{
	int n = len > INT_MAX ? INT_MAX : (int)len;
	int r;

	if (s->failed)
		return GW_EIO;
	s->write_wants_read = false;
	/* A repeated write passes exactly the bytes it passed before. */
	if (s->retry_len > 0 && n > s->retry_len)
		n = s->retry_len;
	ERR_clear_error();
	errno = 0;
	r = SSL_write(s->ssl, buf, n);
	if (r > 0) {
		s->retry_len = 0;
		return r;
	}
	if (s->client && SSL_get_error(s->ssl, r) == SSL_ERROR_SYSCALL &&
	    (errno == EPIPE || errno == ECONNRESET) && read_alert(s))
		return GW_EIO;
	if ((r = io_result(s, r, false)) == GW_ERETRY)
		s->retry_len = n;
	return r;
}

/*
 * After a write found the connection reset: whether the broker's reason
 * (an alert such as "certificate required", sent just before it closed
 * after our side of a TLS 1.3 handshake) still waits in the socket's
 * receive queue. If so, the session fails with it, not with a bare
 * "write failed".
 */
static bool
read_alert(struct tls_session *s)
{
	char scratch[256];
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_read(s->ssl, scratch, sizeof scratch);
	if (r > 0 || SSL_get_error(s->ssl, r) != SSL_ERROR_SSL) {
		ERR_clear_error();
		return false;
	}
	session_fail(s, "TLS error");
	return true;
}

/* See tls.h. */
size_t
tls_pending(const struct tls_session *s)
{
	int n;

	if (s == NULL || !s->handshake_done || s->failed)
		return 0;
	n = SSL_pending(s->ssl);
	return n > 0 ? (size_t)n : 0;
}

/* See tls.h. */
bool
tls_read_wants_write(const struct tls_session *s)
{
	return s != NULL && s->read_wants_write;
}

/* See tls.h. */
bool
tls_write_wants_read(const struct tls_session *s)
{
	return s != NULL && s->write_wants_read;
}

/* See tls.h. */
const char *
tls_failure(const struct tls_session *s)
{
	return s != NULL && s->failure[0] != '\0' ? s->failure : NULL;
}

/* See tls.h. */
bool
tls_uses_identity(const struct tls_session *s)
{
	return s != NULL && s->use_identity;
}

/* See tls.h. */
const char *
tls_identity(const struct tls_session *s)
{
	return s != NULL ? s->identity : NULL;
}
