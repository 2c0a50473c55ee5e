/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Clocks the benchmark tools share: a monotonic one for durations and the
 * wall clock for timestamps compared across processes.
 */
#ifndef BENCHCLOCK_H
#define BENCHCLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic nanoseconds, for measuring durations. */
static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Wall-clock milliseconds, comparable between the tools of one run. */
static inline long long
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* BENCHCLOCK_H */
