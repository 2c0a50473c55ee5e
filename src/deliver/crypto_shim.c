/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OpenSSL's libcrypto, loaded on first use, for the webhook HMAC
 * signature (the only thing mqlite itself asks of it; TLS is libcurl's
 * business). Like curl_shim.c: the daemon does not link libcrypto, so a
 * gateway that signs nothing never maps it. This file defines the few
 * EVP_MAC / OSSL_PARAM functions webhook.c calls and forwards them to the
 * real ones, resolved with dlopen("libcrypto.so.3") the first time; if it
 * cannot be loaded they fail the way OpenSSL reports failure (NULL, 0), so
 * the signature fails and the request is retried later.
 */
#include <pthread.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/params.h>

#include "deliver/dlshim.h"

#define CRYPTO_SONAME	"libcrypto.so.3"

static struct {
	EVP_MAC		*(*mac_fetch)(OSSL_LIB_CTX *, const char *,
			    const char *);
	void		 (*mac_free)(EVP_MAC *);
	EVP_MAC_CTX	*(*ctx_new)(EVP_MAC *);
	void		 (*ctx_free)(EVP_MAC_CTX *);
	int		 (*init)(EVP_MAC_CTX *, const unsigned char *, size_t,
			    const OSSL_PARAM[]);
	int		 (*update)(EVP_MAC_CTX *, const unsigned char *,
			    size_t);
	int		 (*final)(EVP_MAC_CTX *, unsigned char *, size_t *,
			    size_t);
	OSSL_PARAM	 (*param_utf8)(const char *, char *, size_t);
	OSSL_PARAM	 (*param_end)(void);
} api;

static pthread_once_t	api_once = PTHREAD_ONCE_INIT;
static int		api_ok;

#define SYM(field, name)	{ name, (void **)&api.field }

static const struct dlshim_sym syms[] = {
	SYM(mac_fetch, "EVP_MAC_fetch"),
	SYM(mac_free, "EVP_MAC_free"),
	SYM(ctx_new, "EVP_MAC_CTX_new"),
	SYM(ctx_free, "EVP_MAC_CTX_free"),
	SYM(init, "EVP_MAC_init"),
	SYM(update, "EVP_MAC_update"),
	SYM(final, "EVP_MAC_final"),
	SYM(param_utf8, "OSSL_PARAM_construct_utf8_string"),
	SYM(param_end, "OSSL_PARAM_construct_end"),
};

static void
api_load(void)
{
	api_ok = dlshim_load(CRYPTO_SONAME, syms, sizeof syms / sizeof syms[0],
	    "webhook signatures fail") == 0;
}

static int
api_ready(void)
{
	pthread_once(&api_once, api_load);
	return api_ok;
}

EVP_MAC *
EVP_MAC_fetch(OSSL_LIB_CTX *libctx, const char *algorithm,
    const char *properties)
{
	return api_ready() ? api.mac_fetch(libctx, algorithm, properties) :
	    NULL;
}

void
EVP_MAC_free(EVP_MAC *mac)
{
	if (mac != NULL && api_ready())
		api.mac_free(mac);
}

EVP_MAC_CTX *
EVP_MAC_CTX_new(EVP_MAC *mac)
{
	return api_ready() ? api.ctx_new(mac) : NULL;
}

void
EVP_MAC_CTX_free(EVP_MAC_CTX *ctx)
{
	if (ctx != NULL && api_ready())
		api.ctx_free(ctx);
}

int
EVP_MAC_init(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen,
    const OSSL_PARAM params[])
{
	return api_ready() ? api.init(ctx, key, keylen, params) : 0;
}

int
EVP_MAC_update(EVP_MAC_CTX *ctx, const unsigned char *data, size_t datalen)
{
	return api_ready() ? api.update(ctx, data, datalen) : 0;
}

int
EVP_MAC_final(EVP_MAC_CTX *ctx, unsigned char *out, size_t *outl,
    size_t outsize)
{
	return api_ready() ? api.final(ctx, out, outl, outsize) : 0;
}

OSSL_PARAM
OSSL_PARAM_construct_utf8_string(const char *key, char *buf, size_t bsize)
{
	OSSL_PARAM none = { NULL, 0, NULL, 0, 0 };

	return api_ready() ? api.param_utf8(key, buf, bsize) : none;
}

OSSL_PARAM
OSSL_PARAM_construct_end(void)
{
	OSSL_PARAM none = { NULL, 0, NULL, 0, 0 };

	return api_ready() ? api.param_end() : none;
}
