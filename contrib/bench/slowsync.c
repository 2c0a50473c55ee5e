/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * slowsync: an LD_PRELOAD shim that makes every fsync() and fdatasync() of
 * the process it is loaded into take SLOWSYNC_US microseconds longer (5000
 * by default), the flush latency of an SD card or cheap eMMC, on a machine
 * whose disk flushes far faster. The delay is a sleep before the real call,
 * so the data is still flushed and nothing else changes: a program that
 * commits once per message pays the delay per message, one that commits a
 * group of messages at a time pays it per group.
 *
 * With SLOWSYNC_COUNT=FILE the number of delayed calls is written to FILE
 * when the process exits normally (a clean SIGTERM shutdown does).
 *
 * The bench script loads it into both sides of a comparison; it is built
 * by 'make bench' as contrib/bench/slowsync.so, without the sanitizers.
 */

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef int (*slowsync_fn)(int);

static atomic_ulong	slowsync_calls;

static void
slowsync_wait(void)
{
	static long us = -1;
	struct timespec ts;
	const char *s;
	int saved = errno;

	if (us < 0) {
		s = getenv("SLOWSYNC_US");
		us = s != NULL ? strtol(s, NULL, 10) : 5000;
		if (us < 0)
			us = 0;
	}
	atomic_fetch_add(&slowsync_calls, 1);
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	errno = saved;
}

/* Sleeps SLOWSYNC_US, then calls the C library's fsync(). */
int
fsync(int fd)
{
	static slowsync_fn real;

	if (real == NULL)
		real = (slowsync_fn)dlsym(RTLD_NEXT, "fsync");
	slowsync_wait();
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd);
}

/* Sleeps SLOWSYNC_US, then calls the C library's fdatasync(). */
int
fdatasync(int fd)
{
	static slowsync_fn real;

	if (real == NULL)
		real = (slowsync_fn)dlsym(RTLD_NEXT, "fdatasync");
	slowsync_wait();
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd);
}

__attribute__((destructor)) static void
slowsync_report(void)
{
	const char *path = getenv("SLOWSYNC_COUNT");
	FILE *f;

	if (path == NULL || (f = fopen(path, "w")) == NULL)
		return;
	fprintf(f, "%lu\n", (unsigned long)atomic_load(&slowsync_calls));
	fclose(f);
}
