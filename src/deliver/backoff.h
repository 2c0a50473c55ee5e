/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retry timing for deliveries: capped exponential backoff with full jitter
 * (AWS architecture blog, "Exponential Backoff And Jitter"):
 *
 *	delay = uniform(0, min(cap, base * 2^attempt))
 *
 * where attempt counts the failures before this one (0 for the first
 * retry). A server's Retry-After (delta seconds or an HTTP date) replaces
 * the computed delay, clamped to cap.
 *
 * Pure: no clock, no globals. The PRNG state is the caller's, seeded once
 * (never per call, which would correlate the jitter of concurrent routes);
 * the delivery thread owns one.
 */
#ifndef GW_BACKOFF_H
#define GW_BACKOFF_H

#include <stdint.h>

#include "err.h"

/* splitmix64 state. */
struct backoff_rng {
	uint64_t	s;
};

/* Seeds rng; any value, 0 included. */
void		backoff_seed(struct backoff_rng *rng, uint64_t seed);

/* Next 64 random bits. */
uint64_t	backoff_next(struct backoff_rng *rng);

/* Uniform integer in [0, max] (max inclusive). */
uint64_t	backoff_uniform(struct backoff_rng *rng, uint64_t max);

/*
 * The ceiling for attempt: min(cap_ms, base_ms * 2^attempt), without
 * overflow; base_ms <= 0 gives 0, cap_ms <= 0 means no cap.
 */
int64_t		backoff_ceiling_ms(int64_t base_ms, int64_t cap_ms,
		    uint32_t attempt);

/* Full-jitter delay in [0, backoff_ceiling_ms(...)]. */
int64_t		backoff_delay_ms(struct backoff_rng *rng, int64_t base_ms,
		    int64_t cap_ms, uint32_t attempt);

/*
 * Parses a Retry-After header value: delta-seconds ("120") or an HTTP date
 * (IMF-fixdate, RFC 850 or asctime form, GMT), relative to now_ms (wall
 * clock, ms). A date in the past gives 0. Surrounding blanks are allowed.
 * Returns 0 with *delay_ms set, or GW_EMALFORMED.
 */
int		backoff_parse_retry_after(const char *value, int64_t now_ms,
		    int64_t *delay_ms);

/*
 * The delay before the next attempt: retry_after_ms (>= 0: the server's
 * wish) clamped to cap_ms, else the full-jitter delay.
 */
int64_t		backoff_next_delay_ms(struct backoff_rng *rng, int64_t base_ms,
		    int64_t cap_ms, uint32_t attempt, int64_t retry_after_ms);

#endif
