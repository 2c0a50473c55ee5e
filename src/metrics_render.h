/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's numbers in the Prometheus text format: the broker's
 * connection and publish counters, the store's commits and WAL, retention,
 * memory, each rule's counters, each webhook route's delivery counters
 * and gauges, and each source's connection state and counters. metrics_render() is the render callback the daemon gives
 * metrics_start(). Loop thread.
 */
#ifndef GW_METRICS_RENDER_H
#define GW_METRICS_RENDER_H

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
	struct sources	*sources;	/* NULL: no sources */
};

/*
 * Appends the exposition to out; ctx is a struct metrics_sources. Returns
 * 0 or GW_ENOMEM.
 */
int	metrics_render(struct buf *out, void *ctx);

#endif
