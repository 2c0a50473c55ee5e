/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Route checks for --check; see routecheck.h.
 *
 * DESIGN
 *
 * A library is tried with dlopen(RTLD_NOW) under the soname the delivery
 * code loads (curl_shim.c, crypto_shim.c) and closed again; it is reported
 * once, at the first route that needs it, with dlerror()'s reason and the
 * package that ships it. A file is opened read-only and one byte read, so
 * a missing file, a folder, a permission problem or an empty file each
 * gets its own reason; nothing is parsed here (the TLS code says what is
 * wrong with a certificate's contents when it loads it).
 */
#include <sys/stat.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "routecheck.h"

struct routecheck_lib {
	const char	*soname;
	const char	*package;	/* Debian 12 */
	const char	*what;		/* what cannot work without it */
	bool		 done;		/* tried (and reported if missing) */
};

enum { LIB_CURL, LIB_CRYPTO, LIB_PAHO, LIB__COUNT };

struct routecheck {
	const struct rule_set	*set;
	rules_report_fn		 report;
	void			*ctx;
	int			 n;
	struct routecheck_lib	 libs[LIB__COUNT];
};

static void
rc_report(struct routecheck *rc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
rc_report(struct routecheck *rc, const char *path, const char *fmt, ...)
{
	struct gw_error e;
	va_list ap;

	memset(&e, 0, sizeof e);
	snprintf(e.path, sizeof e.path, "%s", path);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	if (rc->report != NULL)
		rc->report(rule_set_origin(rc->set), &e, rc->ctx);
	rc->n++;
}

/* Loads library k once; reports it at path when it cannot be loaded. */
static void
rc_library(struct routecheck *rc, int k, const char *path)
{
	struct routecheck_lib *l = &rc->libs[k];
	const char *why;
	void *h;

	if (l->done)
		return;
	l->done = true;
	dlerror();
	if ((h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL)) != NULL) {
		dlclose(h);
		return;
	}
	why = dlerror();
	rc_report(rc, path, "%s cannot be loaded (%s): %s; install the Debian "
	    "package %s", l->soname, why != NULL ? why : "unknown error",
	    l->what, l->package);
}

/* Opens file (a route's tls.* key at path) and reads a byte. */
static void
rc_file(struct routecheck *rc, const char *file, const char *path)
{
	struct stat st;
	char c;
	ssize_t n;
	int fd;

	if (file == NULL)
		return;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		rc_report(rc, path, "cannot open %s: %s", file,
		    strerror(errno));
		return;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		rc_report(rc, path, "%s is a folder, not a file", file);
	else if ((n = read(fd, &c, 1)) == -1)
		rc_report(rc, path, "cannot read %s: %s", file,
		    strerror(errno));
	else if (n == 0)
		rc_report(rc, path, "%s is empty", file);
	close(fd);
}

/* See routecheck.h. */
int
routecheck_run(const struct rule_set *set, rules_report_fn report, void *ctx)
{
	struct routecheck rc = {
		.set = set, .report = report, .ctx = ctx,
		.libs = {
			[LIB_CURL] = { "libcurl.so.4", "libcurl4",
			    "webhooks cannot be sent", false },
			[LIB_CRYPTO] = { "libcrypto.so.3", "libssl3",
			    "webhooks cannot be signed (hmac)", false },
			[LIB_PAHO] = { "libpaho-mqtt3as.so.1",
			    "libpaho-mqtt1.3",
			    "messages cannot be forwarded upstream", false },
		},
	};
	const struct rule_webhook *w;
	const struct rule *r;
	char p[128];
	size_t i;

	for (i = 0; set != NULL && i < rule_set_count(set); i++) {
		r = rule_set_rule(set, i);
		if ((w = rule_webhook(r)) != NULL) {
			snprintf(p, sizeof p, "rules[%zu].webhook", i);
			rc_library(&rc, LIB_CURL, p);
			if (w->hmac_secret.s != NULL) {
				snprintf(p, sizeof p, "rules[%zu].webhook.hmac",
				    i);
				rc_library(&rc, LIB_CRYPTO, p);
			}
			snprintf(p, sizeof p, "rules[%zu].webhook.tls.ca_file",
			    i);
			rc_file(&rc, w->tls_ca_file.s, p);
			snprintf(p, sizeof p, "rules[%zu].webhook.tls.cert", i);
			rc_file(&rc, w->tls_cert.s, p);
			snprintf(p, sizeof p, "rules[%zu].webhook.tls.key", i);
			rc_file(&rc, w->tls_key.s, p);
		}
		if (rule_mqtt(r) != NULL) {
			snprintf(p, sizeof p, "rules[%zu].mqtt", i);
			rc_library(&rc, LIB_PAHO, p);
		}
	}
	return rc.n;
}
