/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * fsynclat DIR [N]: measures the flush latency of the filesystem holding
 * DIR, the cost a durable commit pays. It creates a scratch file there,
 * then N times (200 by default) overwrites its first 4 KB and calls
 * fdatasync(), timing each call; the first ten are warm-up. It prints one
 * line: "fsync_us p50 P mean M max X" in microseconds, and removes the
 * file. Run it under the slowsync shim to check the shim.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	char path[4096], block[4096];
	double *lat, t, sum = 0;
	long n = 200, i;
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: fsynclat dir [count]\n");
		return 1;
	}
	if (argc == 3 && ((n = strtol(argv[2], NULL, 10)) < 1 ||
	    n > 100000)) {
		fprintf(stderr, "fsynclat: count must be 1..100000\n");
		return 1;
	}
	snprintf(path, sizeof path, "%s/fsynclat.%ld", argv[1],
	    (long)getpid());
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1) {
		fprintf(stderr, "fsynclat: %s: %s\n", path, strerror(errno));
		return 1;
	}
	unlink(path);
	if ((lat = calloc((size_t)n, sizeof *lat)) == NULL) {
		fprintf(stderr, "fsynclat: out of memory\n");
		return 1;
	}
	memset(block, 'x', sizeof block);
	for (i = -10; i < n; i++) {
		block[0] = (char)('a' + (i & 15));
		if (pwrite(fd, block, sizeof block, 0) != sizeof block) {
			fprintf(stderr, "fsynclat: write: %s\n",
			    strerror(errno));
			return 1;
		}
		t = now_us();
		if (fdatasync(fd) == -1) {
			fprintf(stderr, "fsynclat: fdatasync: %s\n",
			    strerror(errno));
			return 1;
		}
		if (i >= 0) {
			lat[i] = now_us() - t;
			sum += lat[i];
		}
	}
	close(fd);
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	printf("fsync_us p50 %.0f mean %.0f max %.0f\n", lat[n / 2],
	    sum / (double)n, lat[n - 1]);
	free(lat);
	return 0;
}
