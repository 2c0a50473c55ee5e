/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * UTF-8 validation for MQTT strings and for the store's TEXT-or-BLOB choice.
 *
 * The decoder follows RFC 3629 / Unicode table 3-7 ("well-formed UTF-8 byte
 * sequences"): the lead byte selects the allowed range of the second byte,
 * which is how overlongs (C0, C1, E0 80..9F, F0 80..8F), surrogates
 * (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF) are refused
 * without computing the code point. Every trailing byte is bounds-checked,
 * so a sequence cut by the end of the input is invalid, never over-read.
 *
 * Payloads are mostly ASCII, and this runs for every payload in the store
 * thread, so ASCII runs are skipped 8 bytes at a time: one load and one mask
 * test for the high bit, plus the classic "has a zero byte" test when U+0000
 * is not allowed. The load goes through memcpy, so it is alignment-safe and
 * compiles to a single move.
 */
#include <stdint.h>
#include <string.h>

#include "mqtt/utf8.h"

#define UTF8_HIGH	0x8080808080808080ULL
#define UTF8_ONES	0x0101010101010101ULL

static size_t	utf8_seq(const uint8_t *s, size_t n);

/*
 * Length of the well-formed multi-byte sequence at s (n bytes available,
 * s[0] >= 0x80), or 0 if it is ill-formed or truncated.
 */
static size_t
utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t	c = s[0], lo = 0x80, hi = 0xbf;
	size_t	need, i;

	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates U+D800..DFFF */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;	/* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;	/* 80..C1 (continuation, overlong), F5..FF */

	if (n < need)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return need;
}

/*
 * Returns true if p[0..len) is well-formed UTF-8 (RFC 3629). With allow_nul
 * false, U+0000 (a zero byte) also makes it invalid, as MQTT requires for
 * every string. Borrows p; pure, thread-safe. len 0 is valid.
 */
bool
utf8_valid(const void *p, size_t len, bool allow_nul)
{
	const uint8_t	*s = p, *end;
	uint64_t	 w, bad;
	size_t		 n;

	if (len == 0)
		return true;	/* p may be NULL */
	end = s + len;
	while (s < end) {
		/* ASCII fast path: 8 bytes at a time. */
		while ((size_t)(end - s) >= 8) {
			memcpy(&w, s, sizeof w);
			bad = w & UTF8_HIGH;
			if (!allow_nul)
				bad |= (w - UTF8_ONES) & ~w & UTF8_HIGH;
			if (bad != 0)
				break;
			s += 8;
		}
		if (s == end)
			break;
		if (*s < 0x80) {
			if (*s == 0 && !allow_nul)
				return false;
			s++;
			continue;
		}
		if ((n = utf8_seq(s, (size_t)(end - s))) == 0)
			return false;
		s += n;
	}
	return true;
}
