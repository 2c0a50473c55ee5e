/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error codes shared by every module. Functions that can fail return 0 on
 * success or one of the negative GW_E* codes below; gw_strerror() names them.
 * Config and rule loading also fill a struct gw_error saying where it failed.
 */
#ifndef GW_ERR_H
#define GW_ERR_H

#include <stddef.h>

enum gw_err {
	GW_OK = 0,
	GW_ENOMEM = -1,		/* allocation failed */
	GW_EPROTO = -2,		/* protocol violation by the peer */
	GW_EMALFORMED = -3,	/* malformed packet or value */
	GW_EMORE = -4,		/* need more bytes */
	GW_EFULL = -5,		/* bounded queue or limit reached */
	GW_EIO = -6,		/* I/O or database error */
	GW_ECONFIG = -7,	/* invalid configuration */
	GW_ERETRY = -8,		/* transient failure, try again */
	GW_ETOOBIG = -9,	/* over a configured size limit */
	GW_EUNSUPPORTED = -10,	/* valid but unsupported (e.g. protocol level) */
	GW_ENOTFOUND = -11,	/* no such item */
};

/* Where and why a load failed: "path" is a JSON path like rules[2].topic. */
struct gw_error {
	char	msg[256];	/* human-readable reason */
	char	path[128];	/* file or key path the reason refers to */
};

/* Returns a static string naming error code rc. */
const char *gw_strerror(int rc);

/*
 * Fills err (which may be NULL) with path and a printf-style message.
 * Returns GW_ECONFIG so callers can write "return gw_error_set(...)".
 */
int gw_error_set(struct gw_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
