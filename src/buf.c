/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable byte buffer; see buf.h for the layout and ownership rules.
 */
#include <string.h>

#include "buf.h"
#include "err.h"
#include "mem.h"

#define BUF_MIN_CAP	256

int
buf_reserve(struct buf *b, size_t extra, size_t limit)
{
	size_t used = buf_used(b), need, ncap;
	uint8_t *nd;

	if (limit != 0 && (extra > limit || used > limit - extra))
		return GW_ETOOBIG;
	if (b->cap - b->len >= extra)
		return 0;
	need = used + extra;
	if (b->off != 0 && b->cap >= need) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		return 0;
	}
	ncap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (ncap < need)
		ncap *= 2;
	if (b->off != 0) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
	}
	if ((nd = gw_realloc(b->data, ncap)) == NULL)
		return GW_ENOMEM;
	b->data = nd;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if ((rc = buf_reserve(b, n, 0)) != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
}

void
buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void
buf_reset(struct buf *b)
{
	b->off = b->len = 0;
}

void
buf_free(struct buf *b)
{
	gw_free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

void
buf_shrink(struct buf *b, size_t keep)
{
	if (buf_used(b) == 0 && b->cap > keep)
		buf_free(b);
}
