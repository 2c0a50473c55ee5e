/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SipHash (Aumasson and Bernstein, 2012) written from the paper: four
 * 64-bit lanes, each 8-byte little-endian word mixed in with c rounds, the
 * final word carrying the length in its top byte, d rounds to finish. The
 * tables use c = 1, d = 3 (the variant Python and Rust hash tables use):
 * their keys are short and hashing them sits on the publish path. The key
 * is the only state of the module, written once under pthread_once.
 */
#include <sys/random.h>

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyhash.h"

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static pthread_once_t	keyhash_once = PTHREAD_ONCE_INIT;
static uint64_t		keyhash_k0, keyhash_k1;

static uint64_t
load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
sip_rounds(uint64_t v[4], int n)
{
	while (n-- > 0) {
		v[0] += v[1];
		v[1] = ROTL(v[1], 13);
		v[1] ^= v[0];
		v[0] = ROTL(v[0], 32);
		v[2] += v[3];
		v[3] = ROTL(v[3], 16);
		v[3] ^= v[2];
		v[0] += v[3];
		v[3] = ROTL(v[3], 21);
		v[3] ^= v[0];
		v[2] += v[1];
		v[1] = ROTL(v[1], 17);
		v[1] ^= v[2];
		v[2] = ROTL(v[2], 32);
	}
}

static uint64_t
siphash(uint64_t k0, uint64_t k1, const uint8_t *p, size_t len, int c, int d)
{
	uint64_t v[4], m;
	size_t i, tail = len & 7;

	v[0] = k0 ^ 0x736f6d6570736575ULL;
	v[1] = k1 ^ 0x646f72616e646f6dULL;
	v[2] = k0 ^ 0x6c7967656e657261ULL;
	v[3] = k1 ^ 0x7465646279746573ULL;
	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(p + i);
		v[3] ^= m;
		sip_rounds(v, c);
		v[0] ^= m;
	}
	m = (uint64_t)(len & 0xff) << 56;
	while (tail-- > 0)
		m |= (uint64_t)p[i + tail] << (8 * tail);
	v[3] ^= m;
	sip_rounds(v, c);
	v[0] ^= m;
	v[2] ^= 0xff;
	sip_rounds(v, d);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void
keyhash_init(void)
{
	uint8_t k[16];
	struct timespec ts;
	size_t got = 0;
	ssize_t n;

	while (got < sizeof k) {
		n = getrandom(k + got, sizeof k - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof k) {
		/* No entropy source: still unpredictable enough per run. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		keyhash_k0 = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		keyhash_k1 = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
		return;
	}
	keyhash_k0 = load_le64(k);
	keyhash_k1 = load_le64(k + 8);
}

uint64_t
keyhash(const void *p, size_t len)
{
	pthread_once(&keyhash_once, keyhash_init);
	return siphash(keyhash_k0, keyhash_k1, p, len, 1, 3);
}

uint64_t
keyhash_siphash24(const uint8_t key[16], const void *p, size_t len)
{
	return siphash(load_le64(key), load_le64(key + 8), p, len, 2, 4);
}
