/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OpenSSL's libssl (and through it libcrypto), loaded when the first TLS
 * listener or TLS source is set up. Like src/deliver/curl_shim.c and
 * crypto_shim.c: the daemon does not link libssl, so a gateway without
 * TLS listeners or sources never maps it and keeps its small idle
 * footprint. This file defines the OpenSSL functions tls.c and
 * tls_client.c call and forwards each to the real one,
 * resolved with dlopen("libssl.so.3") by tls_shim_load(). tls.c calls
 * tls_shim_load() before anything else and gives up on TLS when it fails,
 * so the forwarders below only guard against misuse: without the library
 * they fail the way OpenSSL reports failure (NULL, 0, -1).
 *
 * The list of functions is written once (SHIM_FUNCS) and expanded three
 * times: into the table of pointers, the dlsym list and the forwarders.
 * A function tls.c calls but the list lacks is a link error, not a crash.
 */
#include <pthread.h>
#include <stddef.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "deliver/dlshim.h"
#include "net/tls.h"

#define SSL_SONAME	"libssl.so.3"

/*
 * F(ret, name, params, args, fail) for functions returning a value,
 * V(name, params, args) for void ones.
 */
#define SHIM_FUNCS(F, V)						\
	F(const SSL_METHOD *, TLS_server_method, (void), (), NULL)	\
	F(const SSL_METHOD *, TLS_client_method, (void), (), NULL)	\
	F(int, SSL_CTX_set_default_verify_paths, (SSL_CTX *x), (x), 0)	\
	F(long, SSL_ctrl, (SSL *s, int cmd, long l, void *p),		\
	    (s, cmd, l, p), 0)						\
	V(SSL_set_connect_state, (SSL *s), (s))				\
	F(X509_VERIFY_PARAM *, SSL_get0_param, (SSL *s), (s), NULL)	\
	V(X509_VERIFY_PARAM_set_hostflags, (X509_VERIFY_PARAM *p,	\
	    unsigned int f), (p, f))					\
	F(int, X509_VERIFY_PARAM_set1_host, (X509_VERIFY_PARAM *p,	\
	    const char *n, size_t l), (p, n, l), 0)			\
	F(int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM *p,	\
	    const char *a), (p, a), 0)					\
	F(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *m), (m), NULL)	\
	V(SSL_CTX_free, (SSL_CTX *x), (x))				\
	F(long, SSL_CTX_ctrl, (SSL_CTX *x, int cmd, long l, void *p),	\
	    (x, cmd, l, p), 0)						\
	F(uint64_t, SSL_CTX_set_options, (SSL_CTX *x, uint64_t o),	\
	    (x, o), 0)							\
	F(int, SSL_CTX_set_cipher_list, (SSL_CTX *x, const char *s),	\
	    (x, s), 0)							\
	F(int, SSL_CTX_use_certificate_chain_file, (SSL_CTX *x,	\
	    const char *f), (x, f), 0)					\
	F(int, SSL_CTX_use_PrivateKey_file, (SSL_CTX *x, const char *f,	\
	    int t), (x, f, t), 0)					\
	F(int, SSL_CTX_check_private_key, (const SSL_CTX *x), (x), 0)	\
	F(int, SSL_CTX_load_verify_locations, (SSL_CTX *x,		\
	    const char *f, const char *d), (x, f, d), 0)		\
	F(STACK_OF(X509_NAME) *, SSL_load_client_CA_file,		\
	    (const char *f), (f), NULL)					\
	V(SSL_CTX_set_client_CA_list, (SSL_CTX *x,			\
	    STACK_OF(X509_NAME) *l), (x, l))				\
	V(SSL_CTX_set_verify, (SSL_CTX *x, int m, SSL_verify_cb cb),	\
	    (x, m, cb))							\
	F(int, SSL_CTX_set_session_id_context, (SSL_CTX *x,		\
	    const unsigned char *s, unsigned int l), (x, s, l), 0)	\
	F(X509 *, SSL_CTX_get0_certificate, (const SSL_CTX *x), (x),	\
	    NULL)							\
	F(SSL *, SSL_new, (SSL_CTX *x), (x), NULL)			\
	V(SSL_free, (SSL *s), (s))					\
	F(int, SSL_set_fd, (SSL *s, int fd), (s, fd), 0)		\
	V(SSL_set_accept_state, (SSL *s), (s))				\
	F(int, SSL_do_handshake, (SSL *s), (s), -1)			\
	F(int, SSL_read, (SSL *s, void *b, int n), (s, b, n), -1)	\
	F(int, SSL_write, (SSL *s, const void *b, int n), (s, b, n), -1) \
	F(int, SSL_get_error, (const SSL *s, int r), (s, r),		\
	    SSL_ERROR_SSL)						\
	F(int, SSL_pending, (const SSL *s), (s), 0)			\
	F(int, SSL_shutdown, (SSL *s), (s), -1)				\
	F(X509 *, SSL_get1_peer_certificate, (const SSL *s), (s), NULL)	\
	F(long, SSL_get_verify_result, (const SSL *s), (s), -1)		\
	F(const char *, SSL_get_version, (const SSL *s), (s), "?")	\
	F(const SSL_CIPHER *, SSL_get_current_cipher, (const SSL *s),	\
	    (s), NULL)							\
	F(const char *, SSL_CIPHER_get_name, (const SSL_CIPHER *c), (c), \
	    "?")							\
	F(unsigned long, ERR_get_error, (void), (), 0)			\
	F(const char *, ERR_reason_error_string, (unsigned long e),	\
	    (e), NULL)							\
	V(ERR_clear_error, (void), ())					\
	F(X509_NAME *, X509_get_subject_name, (const X509 *x), (x),	\
	    NULL)							\
	F(int, X509_NAME_get_text_by_NID, (const X509_NAME *n, int nid,	\
	    char *b, int l), (n, nid, b, l), -1)			\
	V(X509_free, (X509 *x), (x))					\
	F(const char *, X509_verify_cert_error_string, (long n), (n),	\
	    "?")							\
	F(const ASN1_TIME *, X509_get0_notAfter, (const X509 *x), (x),	\
	    NULL)							\
	F(int, X509_cmp_current_time, (const ASN1_TIME *t), (t), 0)

/* The table of real functions, filled by dlshim_load(). */
#define PTR_F(ret, name, params, args, fail)	ret (*name) params;
#define PTR_V(name, params, args)		void (*name) params;
static struct {
	SHIM_FUNCS(PTR_F, PTR_V)
} api;

#define SYM_F(ret, name, params, args, fail)	{ #name, (void **)&api.name },
#define SYM_V(name, params, args)		{ #name, (void **)&api.name },
static const struct dlshim_sym syms[] = {
	SHIM_FUNCS(SYM_F, SYM_V)
};

static pthread_once_t	api_once = PTHREAD_ONCE_INIT;
static int		api_ok;

static void
api_load(void)
{
	api_ok = dlshim_load(SSL_SONAME, syms, sizeof syms / sizeof syms[0],
	    "TLS listeners and TLS sources cannot start") == 0;
}

/* See tls.h. */
int
tls_shim_load(void)
{
	pthread_once(&api_once, api_load);
	return api_ok ? 0 : -1;
}

#define FWD_F(ret, name, params, args, fail)				\
ret name params								\
{									\
	return tls_shim_load() == 0 ? api.name args : fail;		\
}
#define FWD_V(name, params, args)					\
void name params							\
{									\
	if (tls_shim_load() == 0)					\
		api.name args;						\
}
SHIM_FUNCS(FWD_F, FWD_V)
