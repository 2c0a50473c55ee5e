/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names for the GW_E* codes and the helper that fills a struct gw_error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

const char *
gw_strerror(int rc)
{
	switch (rc) {
	case GW_OK:		return "success";
	case GW_ENOMEM:		return "out of memory";
	case GW_EPROTO:		return "protocol error";
	case GW_EMALFORMED:	return "malformed input";
	case GW_EMORE:		return "incomplete input";
	case GW_EFULL:		return "queue or limit full";
	case GW_EIO:		return "I/O error";
	case GW_ECONFIG:	return "invalid configuration";
	case GW_ERETRY:		return "temporary failure";
	case GW_ETOOBIG:	return "too large";
	case GW_EUNSUPPORTED:	return "unsupported";
	case GW_ENOTFOUND:	return "not found";
	}
	return "unknown error";
}

int
gw_error_set(struct gw_error *err, const char *path, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return GW_ECONFIG;
	snprintf(err->path, sizeof err->path, "%s", path != NULL ? path : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return GW_ECONFIG;
}
