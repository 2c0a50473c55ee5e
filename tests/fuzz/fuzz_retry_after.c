/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the webhook Retry-After parser
 * (backoff_parse_retry_after). The input is the header value as the
 * delivery thread hands it over: NUL-terminated text, here cut at the
 * first NUL. Invariants checked: a value that parses gives a delay that is
 * never negative; a delay in seconds parses the same with blanks around it
 * and does not depend on the clock; a date does not move earlier when the
 * clock moves earlier, and a future date written back as an IMF-fixdate
 * gives the same delay; and the delay handed to the scheduler never
 * exceeds the cap.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver/backoff.h"
#include "err.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

#define NOW_MS		1767225600000LL	/* 2026-01-01T00:00:00Z */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backoff_rng	 rng;
	char			*s, *padded;
	int64_t			 d1, d2, d3, next;
	struct tm		 tm;
	time_t			 when;
	char			 date[64];
	int			 rc;
	bool			 digits;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rc = backoff_parse_retry_after(s, NOW_MS, &d1);
	CHECK(rc == 0 || rc == GW_EMALFORMED);
	if (rc != 0) {
		free(s);
		return 0;
	}
	CHECK(d1 >= 0);
	digits = strspn(s, " \t") < strlen(s) &&
	    s[strspn(s, " \t")] >= '0' && s[strspn(s, " \t")] <= '9';
	CHECK(backoff_parse_retry_after(s, NOW_MS - 86400000LL, &d2) == 0);
	if (digits) {
		CHECK(d2 == d1);
		CHECK(d1 % 1000 == 0);
	} else
		CHECK(d2 >= d1);
	if (digits && strlen(s) < 40 && (padded = malloc(size + 8)) != NULL) {
		memcpy(padded, " \t", 2);
		memcpy(padded + 2, s, strlen(s));
		memcpy(padded + 2 + strlen(s), " \r\n", 4);
		CHECK(backoff_parse_retry_after(padded, NOW_MS, &d3) == 0);
		CHECK(d3 == d1);
		free(padded);
	}
	/* A future date written back as an IMF-fixdate gives the same delay. */
	if (!digits && d1 > 0 && d1 < 86400000LL * 365 * 7000) {
		when = (time_t)((NOW_MS + d1) / 1000);
		if (gmtime_r(&when, &tm) != NULL && strftime(date, sizeof date,
		    "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0) {
			CHECK(backoff_parse_retry_after(date, NOW_MS, &d3) ==
			    0);
			CHECK(d3 == d1);
		}
	}
	backoff_seed(&rng, 1);
	next = backoff_next_delay_ms(&rng, 1000, 300000, 3, d1);
	CHECK(next >= 0 && next <= 300000 && next <= d1);
	free(s);
	return 0;
}
