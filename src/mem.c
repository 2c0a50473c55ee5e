/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counting allocator. Each block carries a small header holding its size so
 * gw_free() can keep gw_mem_used() exact; the counter and the fault-injection
 * countdown are atomics because every thread allocates.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "mem.h"

#define MEM_HDR	16	/* keeps the returned pointer 16-byte aligned */

static atomic_size_t	mem_used;
static atomic_long	mem_fail_countdown = -1;

static int
mem_should_fail(void)
{
#ifdef GW_FAULT_INJECTION
	long n = atomic_load_explicit(&mem_fail_countdown, memory_order_relaxed);

	if (n < 0)
		return 0;
	if (n == 0)
		return 1;
	atomic_fetch_sub_explicit(&mem_fail_countdown, 1, memory_order_relaxed);
	return 0;
#else
	return 0;
#endif
}

void
gw_mem_fail_after(long n)
{
	atomic_store(&mem_fail_countdown, n);
}

size_t
gw_mem_used(void)
{
	return atomic_load_explicit(&mem_used, memory_order_relaxed);
}

void *
gw_malloc(size_t n)
{
	unsigned char *p;

	if (mem_should_fail() || n > SIZE_MAX - MEM_HDR)
		return NULL;
	if ((p = malloc(n + MEM_HDR)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof n);
	atomic_fetch_add_explicit(&mem_used, n, memory_order_relaxed);
	return p + MEM_HDR;
}

void *
gw_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		return NULL;
	if ((p = gw_malloc(nmemb * size)) != NULL)
		memset(p, 0, nmemb * size);
	return p;
}

void *
gw_realloc(void *ptr, size_t n)
{
	unsigned char *p, *np;
	size_t old;

	if (ptr == NULL)
		return gw_malloc(n);
	if (mem_should_fail() || n > SIZE_MAX - MEM_HDR)
		return NULL;
	p = (unsigned char *)ptr - MEM_HDR;
	memcpy(&old, p, sizeof old);
	if ((np = realloc(p, n + MEM_HDR)) == NULL)
		return NULL;
	memcpy(np, &n, sizeof n);
	if (n >= old)
		atomic_fetch_add_explicit(&mem_used, n - old,
		    memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&mem_used, old - n,
		    memory_order_relaxed);
	return np + MEM_HDR;
}

char *
gw_strndup(const char *s, size_t n)
{
	char *d;

	if ((d = gw_malloc(n + 1)) == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *
gw_strdup(const char *s)
{
	return gw_strndup(s, strlen(s));
}

void
gw_free(void *ptr)
{
	unsigned char *p;
	size_t n;

	if (ptr == NULL)
		return;
	p = (unsigned char *)ptr - MEM_HDR;
	memcpy(&n, p, sizeof n);
	atomic_fetch_sub_explicit(&mem_used, n, memory_order_relaxed);
	free(p);
}
