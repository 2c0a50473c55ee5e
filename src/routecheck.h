/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `mqlite --check`, beyond parsing: what the routes of a rule set will
 * need at run time. The libraries a webhook (libcurl, and libcrypto for
 * HMAC signatures) or an upstream MQTT route (Paho C) loads on first use
 * are loaded now, and every file a route names (tls.ca_file, tls.cert,
 * tls.key) is opened, so a missing package or an unreadable certificate is
 * found before the gateway runs, not at its first delivery.
 */
#ifndef GW_ROUTECHECK_H
#define GW_ROUTECHECK_H

#include "rules/rules.h"

/*
 * Checks set (NULL: nothing to check), reporting each problem as
 * (origin, JSON path, reason) through report; a missing library's reason
 * names the Debian package to install. Returns the number reported.
 * Borrows everything. Main thread, before any thread starts.
 */
int	routecheck_run(const struct rule_set *set, rules_report_fn report,
	    void *ctx);

#endif
