/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The libcrypto functions password checking needs (PBKDF2-SHA512, SHA-512,
 * HMAC-SHA256, constant-time comparison, random bytes), loaded on first use
 * like crypto_shim.c: the daemon does not link libcrypto, so a gateway
 * without a password file never maps it and keeps its small idle
 * footprint. Each function forwards to the real one resolved with dlopen()
 * the first time; when the library cannot be loaded they fail the way
 * OpenSSL reports failure (0, NULL), and CRYPTO_memcmp() answers "differ",
 * so every password check fails closed.
 */
#include <pthread.h>
#include <stddef.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "deliver/dlshim.h"

#define CRYPTO_SONAME	"libcrypto.so.3"

static struct {
	int		 (*pbkdf2)(const char *, int, const unsigned char *,
			    int, int, const EVP_MD *, int, unsigned char *);
	const EVP_MD	*(*sha512)(void);
	const EVP_MD	*(*sha256)(void);
	int		 (*digest)(const void *, size_t, unsigned char *,
			    unsigned int *, const EVP_MD *, ENGINE *);
	unsigned char	*(*hmac)(const EVP_MD *, const void *, int,
			    const unsigned char *, size_t, unsigned char *,
			    unsigned int *);
	int		 (*memcmp)(const void *, const void *, size_t);
	int		 (*rand)(unsigned char *, int);
} api;

static pthread_once_t	api_once = PTHREAD_ONCE_INIT;
static int		api_ok;

#define SYM(field, name)	{ name, (void **)&api.field }

static const struct dlshim_sym syms[] = {
	SYM(pbkdf2, "PKCS5_PBKDF2_HMAC"),
	SYM(sha512, "EVP_sha512"),
	SYM(sha256, "EVP_sha256"),
	SYM(digest, "EVP_Digest"),
	SYM(hmac, "HMAC"),
	SYM(memcmp, "CRYPTO_memcmp"),
	SYM(rand, "RAND_bytes"),
};

static void
api_load(void)
{
	api_ok = dlshim_load(CRYPTO_SONAME, syms, sizeof syms / sizeof syms[0],
	    "password logins fail") == 0;
}

static int
api_ready(void)
{
	pthread_once(&api_once, api_load);
	return api_ok;
}

int
PKCS5_PBKDF2_HMAC(const char *pass, int passlen, const unsigned char *salt,
    int saltlen, int iter, const EVP_MD *digest, int keylen,
    unsigned char *out)
{
	return api_ready() ? api.pbkdf2(pass, passlen, salt, saltlen, iter,
	    digest, keylen, out) : 0;
}

const EVP_MD *
EVP_sha512(void)
{
	return api_ready() ? api.sha512() : NULL;
}

const EVP_MD *
EVP_sha256(void)
{
	return api_ready() ? api.sha256() : NULL;
}

int
EVP_Digest(const void *data, size_t count, unsigned char *md,
    unsigned int *size, const EVP_MD *type, ENGINE *impl)
{
	return api_ready() ? api.digest(data, count, md, size, type, impl) : 0;
}

unsigned char *
HMAC(const EVP_MD *evp_md, const void *key, int key_len,
    const unsigned char *d, size_t n, unsigned char *md,
    unsigned int *md_len)
{
	return api_ready() ? api.hmac(evp_md, key, key_len, d, n, md, md_len) :
	    NULL;
}

int
CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
	return api_ready() ? api.memcmp(a, b, len) : 1;
}

int
RAND_bytes(unsigned char *buf, int num)
{
	return api_ready() ? api.rand(buf, num) : 0;
}
