/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable byte buffer. Data lives in data[off .. len); consuming from the
 * front only advances off, and the buffer compacts lazily when it needs room,
 * so reading a stream of packets costs no memmove per packet. Growth is
 * bounded by the caller's limit: buf_reserve() fails with GW_ETOOBIG instead
 * of growing past it. The buffer owns data; buf_free() releases it.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t	*data;	/* owned storage, NULL until first reserve */
	size_t	 off;	/* start of unconsumed bytes */
	size_t	 len;	/* end of valid bytes */
	size_t	 cap;	/* allocated bytes */
};

#define BUF_INIT { NULL, 0, 0, 0 }

/* Unconsumed bytes and their count. */
static inline uint8_t *
buf_head(const struct buf *b)
{
	return b->data + b->off;
}

static inline size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Free space after len (valid after buf_reserve). */
static inline uint8_t *
buf_tail(const struct buf *b)
{
	return b->data + b->len;
}

/*
 * Makes room for extra more bytes after len, compacting or growing; fails
 * with GW_ETOOBIG if the unconsumed bytes plus extra would exceed limit
 * (0 = no limit), GW_ENOMEM on allocation failure.
 */
int	buf_reserve(struct buf *b, size_t extra, size_t limit);

/* Appends n bytes (copies). Returns 0 or GW_ENOMEM. */
int	buf_append(struct buf *b, const void *p, size_t n);

/* Marks n bytes after buf_tail() as written (after a read() into it). */
void	buf_commit(struct buf *b, size_t n);

/* Drops n bytes from the front; resets to empty when all are consumed. */
void	buf_consume(struct buf *b, size_t n);

/* Empties the buffer, keeping its storage. */
void	buf_reset(struct buf *b);

/* Releases storage; the buffer is empty and reusable afterwards. */
void	buf_free(struct buf *b);

/* Releases storage if larger than keep bytes and empty (idle shrink). */
void	buf_shrink(struct buf *b, size_t keep);

#endif
