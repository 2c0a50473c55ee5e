/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keyed hashing for hash tables whose keys come from clients (client ids,
 * topic levels): SipHash with a random 128-bit key drawn once per process,
 * so a peer cannot choose keys that collide in one bucket and turn lookups
 * into list walks.
 */
#ifndef GW_KEYHASH_H
#define GW_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * SipHash-1-3 of p (len bytes) under the process key, drawn from
 * getrandom(2) on first use. Any thread.
 */
uint64_t	keyhash(const void *p, size_t len);

/*
 * SipHash-2-4 of p under the given 16-byte key: the reference function of
 * the SipHash paper, for checking the implementation against its vectors.
 */
uint64_t	keyhash_siphash24(const uint8_t key[16], const void *p,
		    size_t len);

#endif
