/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading a shared library on first use: the common part of curl_shim.c
 * and crypto_shim.c, which define a library's functions themselves and
 * forward them to the real ones resolved here.
 */
#ifndef GW_DLSHIM_H
#define GW_DLSHIM_H

#include <stddef.h>

/* One function to resolve: its name and where its address goes. */
struct dlshim_sym {
	const char	*name;
	void		**slot;
};

/*
 * dlopen()s soname and resolves every symbol of syms[0..n) into its slot.
 * Returns 0, or -1 after logging the failure and consequence ("webhooks
 * cannot be sent"). Call once (pthread_once in the caller).
 */
int	dlshim_load(const char *soname, const struct dlshim_sym *syms,
	    size_t n, const char *consequence);

#endif
