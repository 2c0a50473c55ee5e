/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Latency histograms; see metrics_hist.h.
 *
 * DESIGN
 *
 * The bounds are fixed at compile time (1-2.5-5 steps from 100 us to 10 s)
 * rather than configured: they cover an fsync on a fast SSD as well as a
 * commit stuck behind an SD card's garbage collection, and a fixed set lets
 * the buckets be a plain array of atomics that the store and loop threads
 * bump without coordination. Buckets are kept non-cumulative and summed
 * when rendered, so an observation costs one add to one bucket.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "metrics.h"
#include "metrics_hist.h"

/* Upper bounds in microseconds, ascending. */
static const uint64_t bounds_us[METRICS_HIST_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000
};

void
metrics_hist_observe(struct metrics_hist *h, long long us)
{
	uint64_t v = us > 0 ? (uint64_t)us : 0;
	size_t i;

	for (i = 0; i < METRICS_HIST_BUCKETS && v > bounds_us[i]; i++)
		;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, v, memory_order_relaxed);
}

int
metrics_hist_render(struct buf *out, const char *name, const char *help,
    const struct metrics_hist *h)
{
	char bname[128], le[32];
	uint64_t cum = 0, n;
	size_t i;
	int rc;

	if (snprintf(bname, sizeof bname, "%s_bucket", name) >=
	    (int)sizeof bname)
		return GW_EMALFORMED;
	if ((rc = metrics_family(out, name, "histogram", help)) != 0)
		return rc;
	for (i = 0; i <= METRICS_HIST_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i],
		    memory_order_relaxed);
		if (i == METRICS_HIST_BUCKETS)
			snprintf(le, sizeof le, "+Inf");
		else
			snprintf(le, sizeof le, "%g",
			    (double)bounds_us[i] / 1e6);
		if ((rc = metrics_sample_u64(out, bname, "le", le, cum)) != 0)
			return rc;
	}
	/* _count equals the +Inf bucket, whatever raced in since. */
	n = cum;
	snprintf(bname, sizeof bname, "%s_sum", name);
	if ((rc = metrics_sample_double(out, bname, NULL, NULL,
	    (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) /
	    1e6)) != 0)
		return rc;
	snprintf(bname, sizeof bname, "%s_count", name);
	return metrics_sample_u64(out, bname, NULL, NULL, n);
}
