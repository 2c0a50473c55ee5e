/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The standard Prometheus process metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds) read
 * from /proc/self when asked. Linux only; a value /proc does not give is
 * left out rather than reported as 0.
 */
#ifndef GW_METRICS_PROCESS_H
#define GW_METRICS_PROCESS_H

struct buf;

/*
 * Appends the process families to out. start_ms is the wall-clock time
 * the daemon started (ms). 0 or GW_ENOMEM. Any thread.
 */
int	metrics_process_render(struct buf *out, long long start_ms);

/* Open file descriptors of this process, or -1. */
long	metrics_process_open_fds(void);

#endif
