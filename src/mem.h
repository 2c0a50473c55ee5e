/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation wrappers used everywhere instead of malloc/free. They count live
 * bytes (for metrics) and, in builds with GW_FAULT_INJECTION, can be told to
 * fail after N more allocations so tests walk every out-of-memory path. They
 * return NULL on failure; callers handle it (never abort on a client's input).
 */
#ifndef GW_MEM_H
#define GW_MEM_H

#include <stddef.h>

void	*gw_malloc(size_t n);
void	*gw_calloc(size_t nmemb, size_t size);
void	*gw_realloc(void *p, size_t n);
char	*gw_strdup(const char *s);
char	*gw_strndup(const char *s, size_t n);
void	 gw_free(void *p);		/* accepts NULL */

/* Bytes currently allocated through these wrappers (all threads). */
size_t	 gw_mem_used(void);

/*
 * Test hook: the (n+1)th allocation from now fails, and every later one until
 * reset with n < 0. No effect without GW_FAULT_INJECTION.
 */
void	 gw_mem_fail_after(long n);

#endif
