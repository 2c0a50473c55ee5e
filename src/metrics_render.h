/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's numbers in the Prometheus text format: the broker's
 * connection and publish counters, the store's commits and WAL, retention,
 * memory, each rule's counters, each webhook route's delivery counters
 * and gauges, each source's connection state and counters, the commit and
 * publish-to-ack latency histograms and the standard process_* families.
 * metrics_render() is the render callback the daemon gives
 * metrics_start(). Loop thread.
 */
#ifndef GW_METRICS_RENDER_H
#define GW_METRICS_RENDER_H

#include <stdint.h>

struct broker;
struct buf;
struct delivery;
struct sources;
struct store;

/* What metrics_render() reads; every pointer is borrowed. */
struct metrics_sources {
	struct broker	*broker;
	struct store	*store;
	struct delivery	*delivery;	/* NULL: no webhook routes */
	long long	 start_ms;	/* wall clock when the daemon started */
	uint64_t	 max_bytes;	/* database.max_bytes, 0: unbounded */
	struct sources	*sources;	/* NULL: no sources */
};

/*
 * Appends the exposition to out; ctx is a struct metrics_sources. Returns
 * 0 or GW_ENOMEM.
 */
int	metrics_render(struct buf *out, void *ctx);

/*
 * The /healthz answer (a metrics_health_fn; ctx is a struct
 * metrics_sources): unhealthy while the store thread keeps failing to
 * commit (METRICS_UNHEALTHY_TRIES tries of one batch in a row, a full or
 * failing disk), healthy otherwise. Appends one line saying why.
 */
#define METRICS_UNHEALTHY_TRIES	5
int	metrics_health(struct buf *out, void *ctx);

/* The /errors body: the last warnings and errors logged (log_recent.h). */
int	metrics_errors(struct buf *out, void *ctx);

#endif
