/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process metrics from /proc/self; see metrics_process.h.
 *
 * DESIGN
 *
 * Everything is read at scrape time, nothing is cached: getrusage() for
 * CPU time (user + system, all threads), /proc/self/statm for memory in
 * pages, a walk of /proc/self/fd for open descriptors (bounded by the
 * descriptor limit, which the walk cannot exceed) and getrlimit() for the
 * limit. The start time is the daemon's own record, passed in, so it does
 * not depend on the boot time arithmetic of /proc/self/stat.
 */
#include <sys/resource.h>
#include <sys/time.h>

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "metrics.h"
#include "metrics_process.h"

long
metrics_process_open_fds(void)
{
	struct dirent *de;
	DIR *d;
	long n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own descriptor */
}

/* One family with one unlabelled sample. */
static int
one(struct buf *out, const char *name, const char *type, const char *help,
    double v)
{
	int rc;

	if ((rc = metrics_family(out, name, type, help)) != 0)
		return rc;
	return metrics_sample_double(out, name, NULL, NULL, v);
}

int
metrics_process_render(struct buf *out, long long start_ms)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long vsz, rss;
	long page = sysconf(_SC_PAGESIZE), fds;
	double cpu;
	FILE *f;
	int rc, got = 0;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		    ((double)ru.ru_utime.tv_usec +
		    (double)ru.ru_stime.tv_usec) / 1e6;
		if ((rc = one(out, "process_cpu_seconds_total", "counter",
		    "User and system CPU time spent in seconds", cpu)) != 0)
			return rc;
	}
	if ((f = fopen("/proc/self/statm", "re")) != NULL) {
		got = fscanf(f, "%lu %lu", &vsz, &rss);
		fclose(f);
	}
	if (got == 2 && page > 0 &&
	    ((rc = one(out, "process_virtual_memory_bytes", "gauge",
	    "Virtual memory size in bytes", (double)vsz * page)) != 0 ||
	    (rc = one(out, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes", (double)rss * page)) != 0))
		return rc;
	if ((fds = metrics_process_open_fds()) >= 0 &&
	    (rc = one(out, "process_open_fds", "gauge",
	    "Number of open file descriptors", (double)fds)) != 0)
		return rc;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    (rc = one(out, "process_max_fds", "gauge",
	    "Maximum number of open file descriptors",
	    (double)rl.rlim_cur)) != 0)
		return rc;
	return one(out, "process_start_time_seconds", "gauge",
	    "Start time of the process since the Unix epoch in seconds",
	    (double)start_ms / 1000.0);
}
