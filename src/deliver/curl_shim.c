/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, loaded on first use. The daemon does not link libcurl: this
 * file defines the handful of curl functions the delivery code calls and
 * forwards each to the real one, resolved with dlopen("libcurl.so.4") the
 * first time any is called (curl_global_init, from the main thread, before
 * the delivery thread starts). A gateway without webhook rules therefore
 * never maps libcurl, OpenSSL and their dozen dependencies, which is most
 * of its idle memory. If the library cannot be loaded every call fails
 * the way libcurl reports failure (NULL handles, error codes) and the
 * delivery side dead-letters nothing: it logs and retries later.
 *
 * The variadic setters are forwarded by the argument type that libcurl's
 * option numbering encodes (long, pointer, curl_off_t).
 */
#define CURL_DISABLE_TYPECHECK 1

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#include <curl/curl.h>

#include "deliver/dlshim.h"

#define CURL_SONAME	"libcurl.so.4"

static struct {
	CURLcode	(*global_init)(long);
	void		(*global_cleanup)(void);
	CURL		*(*easy_init)(void);
	void		(*easy_cleanup)(CURL *);
	void		(*easy_reset)(CURL *);
	CURLcode	(*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode	(*easy_getinfo)(CURL *, CURLINFO, ...);
	const char	*(*easy_strerror)(CURLcode);
	CURLM		*(*multi_init)(void);
	CURLMcode	(*multi_cleanup)(CURLM *);
	CURLMcode	(*multi_add_handle)(CURLM *, CURL *);
	CURLMcode	(*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode	(*multi_perform)(CURLM *, int *);
	CURLMcode	(*multi_poll)(CURLM *, struct curl_waitfd[],
			    unsigned int, int, int *);
	CURLMcode	(*multi_wakeup)(CURLM *);
	CURLMsg		*(*multi_info_read)(CURLM *, int *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void		(*slist_free_all)(struct curl_slist *);
} api;

static pthread_once_t	api_once = PTHREAD_ONCE_INIT;
static int		api_ok;

#define SYM(field, name)	{ name, (void **)&api.field }

static const struct dlshim_sym syms[] = {
	SYM(global_init, "curl_global_init"),
	SYM(global_cleanup, "curl_global_cleanup"),
	SYM(easy_init, "curl_easy_init"),
	SYM(easy_cleanup, "curl_easy_cleanup"),
	SYM(easy_reset, "curl_easy_reset"),
	SYM(easy_setopt, "curl_easy_setopt"),
	SYM(easy_getinfo, "curl_easy_getinfo"),
	SYM(easy_strerror, "curl_easy_strerror"),
	SYM(multi_init, "curl_multi_init"),
	SYM(multi_cleanup, "curl_multi_cleanup"),
	SYM(multi_add_handle, "curl_multi_add_handle"),
	SYM(multi_remove_handle, "curl_multi_remove_handle"),
	SYM(multi_perform, "curl_multi_perform"),
	SYM(multi_poll, "curl_multi_poll"),
	SYM(multi_wakeup, "curl_multi_wakeup"),
	SYM(multi_info_read, "curl_multi_info_read"),
	SYM(slist_append, "curl_slist_append"),
	SYM(slist_free_all, "curl_slist_free_all"),
};

static void
api_load(void)
{
	api_ok = dlshim_load(CURL_SONAME, syms, sizeof syms / sizeof syms[0],
	    "webhooks cannot be sent") == 0;
}

static int
api_ready(void)
{
	pthread_once(&api_once, api_load);
	return api_ok;
}

CURLcode
curl_global_init(long flags)
{
	return api_ready() ? api.global_init(flags) : CURLE_FAILED_INIT;
}

void
curl_global_cleanup(void)
{
	/* Only if something loaded it: never dlopen just to clean up. */
	if (api_ok)
		api.global_cleanup();
}

CURL *
curl_easy_init(void)
{
	return api_ready() ? api.easy_init() : NULL;
}

void
curl_easy_cleanup(CURL *e)
{
	if (api_ready())
		api.easy_cleanup(e);
}

void
curl_easy_reset(CURL *e)
{
	if (api_ready())
		api.easy_reset(e);
}

CURLcode
curl_easy_setopt(CURL *e, CURLoption opt, ...)
{
	va_list ap;
	CURLcode rc;

	if (!api_ready())
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = api.easy_setopt(e, opt, va_arg(ap, long));
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		rc = api.easy_setopt(e, opt, va_arg(ap, curl_off_t));
	else
		rc = api.easy_setopt(e, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode
curl_easy_getinfo(CURL *e, CURLINFO info, ...)
{
	va_list ap;
	CURLcode rc;

	if (!api_ready())
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = api.easy_getinfo(e, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

const char *
curl_easy_strerror(CURLcode code)
{
	return api_ready() ? api.easy_strerror(code) : "libcurl not loaded";
}

CURLM *
curl_multi_init(void)
{
	return api_ready() ? api.multi_init() : NULL;
}

CURLMcode
curl_multi_cleanup(CURLM *m)
{
	return api_ready() ? api.multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_add_handle(CURLM *m, CURL *e)
{
	return api_ready() ? api.multi_add_handle(m, e) : CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_remove_handle(CURLM *m, CURL *e)
{
	return api_ready() ? api.multi_remove_handle(m, e) :
	    CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_perform(CURLM *m, int *running)
{
	return api_ready() ? api.multi_perform(m, running) :
	    CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned int n,
    int timeout_ms, int *ret)
{
	return api_ready() ? api.multi_poll(m, extra, n, timeout_ms, ret) :
	    CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_wakeup(CURLM *m)
{
	return api_ready() ? api.multi_wakeup(m) : CURLM_INTERNAL_ERROR;
}

CURLMsg *
curl_multi_info_read(CURLM *m, int *left)
{
	return api_ready() ? api.multi_info_read(m, left) : NULL;
}

struct curl_slist *
curl_slist_append(struct curl_slist *l, const char *s)
{
	return api_ready() ? api.slist_append(l, s) : NULL;
}

void
curl_slist_free_all(struct curl_slist *l)
{
	if (api_ready())
		api.slist_free_all(l);
}
