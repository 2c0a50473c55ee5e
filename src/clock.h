/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Time helpers: monotonic milliseconds for timers and deadlines (and
 * microseconds for latency histograms), wall-clock
 * milliseconds for received_ms stamps.
 */
#ifndef GW_CLOCK_H
#define GW_CLOCK_H

#include <time.h>

static inline long long
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long long
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline long long
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
