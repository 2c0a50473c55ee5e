/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the MQTT codec tests share (test_codec.c, test_codec5.c,
 * test_props.c and the fuzz target tests/fuzz/fuzz_codec.c): exact heap
 * copies of inputs, so AddressSanitizer reports any read past the end;
 * the packet fixtures in tests/fixtures/packets; and encoding a decoded
 * 5.0 packet again. Header-only, like cutest.h; no CUnit in here, so the
 * fuzz target can use it too.
 */
#ifndef GW_CODECTEST_H
#define GW_CODECTEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mqtt/codec.h"
#include "mqtt/codec5.h"

#define CODECTEST_MAX_ENTRIES	64	/* (UN)SUBSCRIBE entries re-encoded */
#define CODECTEST_SKIP		(-1000)	/* no 5.0 encoder for it */
#define CODECTEST_MISCOUNT	(-1001)	/* iterator and count disagree */

static char	codectest_dir[1024];	/* set by codectest_find_dir() */

/* Copies p[0..n) into a heap block of exactly n bytes (never NULL). */
static inline uint8_t *
codectest_dup(const void *p, size_t n)
{
	uint8_t	*d = malloc(n == 0 ? 1 : n);

	if (d == NULL)
		abort();
	if (n != 0)
		memcpy(d, p, n);
	return d;
}

/*
 * Finds the fixtures: $top_srcdir/tests/fixtures/packets, or without
 * top_srcdir the tests/ folder of file (the caller's __FILE__).
 */
static inline void
codectest_find_dir(const char *file)
{
	const char	*top = getenv("top_srcdir"), *cut = NULL, *s;

	if (top != NULL) {
		snprintf(codectest_dir, sizeof codectest_dir,
		    "%s/tests/fixtures/packets", top);
		return;
	}
	for (s = file; (s = strstr(s, "tests/")) != NULL; s++)
		cut = s;
	snprintf(codectest_dir, sizeof codectest_dir,
	    "%.*stests/fixtures/packets", cut == NULL ? 0 : (int)(cut - file),
	    file);
}

/* Reads a fixture into a heap block of exactly its size; NULL if absent. */
static inline uint8_t *
codectest_load(const char *name, size_t *len)
{
	char		 path[1200];
	uint8_t		 tmp[4096];
	FILE		*fp;
	size_t		 n;

	snprintf(path, sizeof path, "%s/%s", codectest_dir, name);
	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "missing fixture %s\n", path);
		return NULL;
	}
	n = fread(tmp, 1, sizeof tmp, fp);
	fclose(fp);
	*len = n;
	return codectest_dup(tmp, n);
}

/*
 * Encodes a decoded 5.0 packet again into b: the encoder's result,
 * CODECTEST_SKIP for PINGREQ, PINGRESP (the 3.1.1 encoder serves) and
 * (UN)SUBSCRIBE of more than CODECTEST_MAX_ENTRIES entries, or
 * CODECTEST_MISCOUNT when walking the entries gives another count than
 * the decoder's.
 */
static inline int
codectest_reencode5(const struct codec5_packet *pk, struct buf *b)
{
	struct codec_str	f[CODECTEST_MAX_ENTRIES];
	struct codec5_subopts	o[CODECTEST_MAX_ENTRIES];
	struct codec_iter	it;
	size_t			n = 0;

	switch (pk->type) {
	case CODEC_CONNECT:
		return codec5_encode_connect(b, &pk->u.connect5);
	case CODEC_CONNACK:
		return codec5_encode_connack(b, pk->u.connack5.session_present,
		    pk->u.connack5.reason, &pk->u.connack5.props);
	case CODEC_PUBLISH:
		return codec5_encode_publish(b, &pk->u.publish5.p,
		    &pk->u.publish5.props);
	case CODEC_SUBSCRIBE:
		if (pk->u.subscribe5.count > CODECTEST_MAX_ENTRIES)
			return CODECTEST_SKIP;
		it = pk->u.subscribe5.entries;
		while (n < CODECTEST_MAX_ENTRIES &&
		    codec5_subscribe_next(&it, &f[n], &o[n]) == 1)
			n++;
		if (n != pk->u.subscribe5.count)
			return CODECTEST_MISCOUNT;
		return codec5_encode_subscribe(b, pk->u.subscribe5.packet_id,
		    f, o, n, &pk->u.subscribe5.props);
	case CODEC_UNSUBSCRIBE:
		if (pk->u.unsubscribe5.count > CODECTEST_MAX_ENTRIES)
			return CODECTEST_SKIP;
		it = pk->u.unsubscribe5.entries;
		while (n < CODECTEST_MAX_ENTRIES &&
		    codec_unsubscribe_next(&it, &f[n]) == 1)
			n++;
		if (n != pk->u.unsubscribe5.count)
			return CODECTEST_MISCOUNT;
		return codec5_encode_unsubscribe(b,
		    pk->u.unsubscribe5.packet_id, f, n,
		    &pk->u.unsubscribe5.props);
	case CODEC_SUBACK:
	case CODEC_UNSUBACK:
		return codec5_encode_suback(b, pk->type,
		    pk->u.suback5.packet_id, pk->u.suback5.codes,
		    pk->u.suback5.count, &pk->u.suback5.props);
	case CODEC_DISCONNECT:
	case CODEC_AUTH:
		return codec5_encode_disconnect(b, pk->type,
		    pk->u.disconnect5.reason, &pk->u.disconnect5.props);
	case CODEC_PINGREQ:
	case CODEC_PINGRESP:
		return CODECTEST_SKIP;
	default:
		return codec5_encode_ack(b, pk->type, pk->u.ack5.packet_id,
		    pk->u.ack5.reason, &pk->u.ack5.props);
	}
}

#endif
