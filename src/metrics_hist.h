/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A latency histogram any thread may feed and the metrics endpoint reads:
 * fixed buckets from 100 us to 10 s, each an atomic counter, plus the sum
 * in microseconds (the count is the sum of the buckets). Observing is a few
 * relaxed atomic adds, no lock and no allocation, so it can sit on the
 * commit and ack paths. The owner embeds the struct, zero-initialised.
 */
#ifndef GW_METRICS_HIST_H
#define GW_METRICS_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define METRICS_HIST_BUCKETS	16	/* finite upper bounds */

struct buf;

struct metrics_hist {
	atomic_uint_fast64_t	 bucket[METRICS_HIST_BUCKETS + 1]; /* +Inf last,
							   * not cumulative */
	atomic_uint_fast64_t	 sum_us;	/* sum of observations */
};

/* Adds one observation of us microseconds (negative counts as 0). */
void	metrics_hist_observe(struct metrics_hist *h, long long us);

/*
 * Appends the family name (HELP, TYPE histogram, cumulative _bucket lines
 * with le in seconds, _sum in seconds, _count) to out. h is read without
 * a lock: a sample may be a few observations behind another.
 * 0, GW_EMALFORMED (bad name) or GW_ENOMEM.
 */
int	metrics_hist_render(struct buf *out, const char *name,
	    const char *help, const struct metrics_hist *h);

#endif
