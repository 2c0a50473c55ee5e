/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backoff arithmetic and Retry-After parsing; see backoff.h.
 *
 * The PRNG is splitmix64 (Steele, Lea, Flood 2014): one 64-bit word of
 * state, good enough statistically for jitter, and trivially seedable.
 * Uniform integers come from the high half of a 64x64 -> 128-bit product
 * (Lemire), whose bias is below 2^-64 per unit of range: irrelevant here.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver/backoff.h"

/* Seeds the generator. */
void
backoff_seed(struct backoff_rng *rng, uint64_t seed)
{
	rng->s = seed;
}

/* splitmix64 step. */
uint64_t
backoff_next(struct backoff_rng *rng)
{
	uint64_t z;

	z = (rng->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, max]. */
uint64_t
backoff_uniform(struct backoff_rng *rng, uint64_t max)
{
	unsigned __int128 p;

	if (max == UINT64_MAX)
		return backoff_next(rng);
	p = (unsigned __int128)backoff_next(rng) * (max + 1);
	return (uint64_t)(p >> 64);
}

/* min(cap, base * 2^attempt) without overflow. */
int64_t
backoff_ceiling_ms(int64_t base_ms, int64_t cap_ms, uint32_t attempt)
{
	int64_t limit = cap_ms > 0 ? cap_ms : INT64_MAX;

	if (base_ms <= 0)
		return 0;
	if (base_ms >= limit)
		return limit;
	if (attempt >= 62 || base_ms > (limit >> attempt))
		return limit;
	return base_ms << attempt;
}

/* Full jitter. */
int64_t
backoff_delay_ms(struct backoff_rng *rng, int64_t base_ms, int64_t cap_ms,
    uint32_t attempt)
{
	int64_t ceil = backoff_ceiling_ms(base_ms, cap_ms, attempt);

	return (int64_t)backoff_uniform(rng, (uint64_t)ceil);
}

/* Parses an HTTP date into seconds since the epoch; -1 if it is not one. */
static int64_t
backoff_http_date(const char *s)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",	/* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT",	/* RFC 850 */
		"%a %b %e %H:%M:%S %Y",		/* asctime */
	};
	struct tm tm;
	const char *end;
	size_t i;

	for (i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
		memset(&tm, 0, sizeof tm);
		end = strptime(s, fmts[i], &tm);
		if (end == NULL)
			continue;
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end != '\0')
			continue;
		return (int64_t)timegm(&tm);
	}
	return -1;
}

/* Retry-After: delta-seconds or HTTP date. */
int
backoff_parse_retry_after(const char *value, int64_t now_ms,
    int64_t *delay_ms)
{
	char buf[64];
	const char *p;
	size_t len;
	int64_t secs = 0, when;

	if (value == NULL)
		return GW_EMALFORMED;
	while (*value == ' ' || *value == '\t')
		value++;
	len = strlen(value);
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
	    value[len - 1] == '\r' || value[len - 1] == '\n'))
		len--;
	if (len == 0 || len >= sizeof buf)
		return GW_EMALFORMED;
	memcpy(buf, value, len);
	buf[len] = '\0';

	if (isdigit((unsigned char)buf[0])) {
		for (p = buf; *p != '\0'; p++) {
			if (!isdigit((unsigned char)*p))
				return GW_EMALFORMED;
			if (secs > (INT64_MAX / 1000 - 9) / 10)
				secs = INT64_MAX / 1000;	/* saturate */
			else
				secs = secs * 10 + (*p - '0');
		}
		*delay_ms = secs * 1000;
		return 0;
	}
	if ((when = backoff_http_date(buf)) < 0)
		return GW_EMALFORMED;
	if (when > INT64_MAX / 1000)
		when = INT64_MAX / 1000;
	*delay_ms = when * 1000 > now_ms ? when * 1000 - now_ms : 0;
	return 0;
}

/* Server's wish clamped to cap, else full jitter. */
int64_t
backoff_next_delay_ms(struct backoff_rng *rng, int64_t base_ms,
    int64_t cap_ms, uint32_t attempt, int64_t retry_after_ms)
{
	if (retry_after_ms >= 0) {
		if (cap_ms > 0 && retry_after_ms > cap_ms)
			return cap_ms;
		return retry_after_ms;
	}
	return backoff_delay_ms(rng, base_ms, cap_ms, attempt);
}
