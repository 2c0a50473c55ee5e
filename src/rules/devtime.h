/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device time: the timestamps devices put in their payloads turned into
 * Unix milliseconds (the |time transform), and the check of the gateway's
 * own clock at start. Pure functions on values; any thread. The forms and
 * thresholds are documented in rules/README.md ("Device time").
 */
#ifndef GW_RULES_DEVTIME_H
#define GW_RULES_DEVTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * Magnitude thresholds telling epoch units apart (absolute values): below
 * DEVTIME_S_LIMIT seconds, below DEVTIME_MS_LIMIT milliseconds, below
 * DEVTIME_US_LIMIT microseconds, else nanoseconds. 1e11 s is the year 5138;
 * 1e11 ms, 1e14 us and 1e17 ns are all 1973-03-03.
 */
#define DEVTIME_S_LIMIT		100000000000LL		/* 1e11 */
#define DEVTIME_MS_LIMIT	100000000000000LL	/* 1e14 */
#define DEVTIME_US_LIMIT	100000000000000000LL	/* 1e17 */

/*
 * An integer epoch (seconds, ms, us or ns by magnitude) into Unix ms,
 * rounded down. Always succeeds; returns 0.
 */
int	devtime_from_int(int64_t v, int64_t *ms);

/*
 * A real epoch (seconds with a fraction, or ms, us, ns by magnitude) into
 * Unix ms, rounded to the nearest. GW_EMALFORMED for NaN, infinities and
 * values beyond the nanosecond range of an int64.
 */
int	devtime_from_real(double v, int64_t *ms);

/*
 * An RFC 3339 / ISO 8601 date-time (s[0..len), not NUL-terminated):
 * YYYY-MM-DD, optionally followed by 'T', 't' or ' ' and hh:mm[:ss[.frac]]
 * and an offset Z, +hh:mm, +hhmm or +hh (none means UTC). Fractions
 * beyond milliseconds are truncated. Returns 0 with *ms set, or
 * GW_EMALFORMED.
 */
int	devtime_parse_iso(const char *s, size_t len, int64_t *ms);

/*
 * Checks a |time:FORMAT format at load. Returns 0, or GW_ECONFIG with err
 * filled (msg only) naming the directive it does not know.
 */
int	devtime_format_check(const char *fmt, struct gw_error *err);

/*
 * Parses s[0..len) with a checked strptime-style format (see README for
 * the directives). Fields left out default to 1970-01-01 00:00:00; a time
 * without %z or %s is UTC (the process TZ is never read). Returns 0 with
 * *ms set, or GW_EMALFORMED.
 */
int	devtime_parse_format(const char *fmt, const char *s, size_t len,
	    int64_t *ms);

/*
 * The build time of this binary in Unix ms (configure time; honours
 * SOURCE_DATE_EPOCH), 0 when unknown.
 */
int64_t	devtime_build_ms(void);

/*
 * True when now_ms is before build_ms: the clock of a box without a
 * battery-backed clock that booted without NTP.
 */
bool	devtime_clock_behind(int64_t now_ms, int64_t build_ms);

#endif
