/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * Row buffer of the sqlite action; see rowbuf.h.
 *
 * DESIGN
 *
 * Cells are stored row-major (cap x ncols). A TEXT or BLOB cell keeps an
 * offset into the arena rather than a pointer, since the arena may move
 * when it grows; rowbuf_value() turns it back into a pointer. The arena
 * doubles from ROWBUF_ARENA_MIN and is kept across clears unless it grew
 * past ROWBUF_ARENA_KEEP (one large payload does not pin its memory). The
 * message references are released on clear, so a buffer never keeps a
 * message alive past the flush of its rows.
 */
#include <stdint.h>
#include <string.h>

#include "broker/msg.h"
#include "err.h"
#include "mem.h"
#include "rules/value.h"
#include "sink/rowbuf.h"

#define ROWBUF_ARENA_MIN	4096
#define ROWBUF_ARENA_KEEP	(16 * 1024)

struct rowbuf_cell {
	uint8_t			 type;	/* enum rule_vtype */
	union {
		int64_t		 i;
		double		 d;
		struct {
			size_t	 off;	/* into the arena */
			size_t	 len;
		} s;
	} u;
};

struct rowbuf {
	size_t			 ncols;
	size_t			 cap;		/* rows */
	size_t			 max_bytes;	/* full at this arena use */
	size_t			 len;		/* rows held */
	struct rowbuf_cell	*cells;		/* cap * ncols */
	struct msg		**msgs;		/* cap, referenced */
	int64_t			*items;		/* cap: foreach element, or -1 */
	char			*arena;		/* TEXT and BLOB bytes */
	size_t			 alen;		/* bytes used */
	size_t			 acap;		/* bytes allocated */
};

struct rowbuf *
rowbuf_new(size_t ncols, size_t cap, size_t max_bytes)
{
	struct rowbuf *b;

	if (ncols == 0 || cap == 0 || cap > SIZE_MAX / ncols /
	    sizeof *b->cells)
		return NULL;
	if ((b = gw_calloc(1, sizeof *b)) == NULL)
		return NULL;
	b->ncols = ncols;
	b->cap = cap;
	b->max_bytes = max_bytes;
	if ((b->cells = gw_calloc(cap * ncols, sizeof *b->cells)) == NULL ||
	    (b->msgs = gw_calloc(cap, sizeof *b->msgs)) == NULL ||
	    (b->items = gw_calloc(cap, sizeof *b->items)) == NULL) {
		rowbuf_free(b);
		return NULL;
	}
	return b;
}

/* Makes room for need more arena bytes. 0 or GW_ENOMEM. */
static int
rowbuf_reserve(struct rowbuf *b, size_t need)
{
	size_t ncap;
	char *p;

	if (need <= b->acap - b->alen)
		return 0;
	if (need > SIZE_MAX / 2 - b->alen)
		return GW_ENOMEM;
	ncap = b->acap > 0 ? b->acap : ROWBUF_ARENA_MIN;
	while (ncap - b->alen < need)
		ncap *= 2;
	if ((p = gw_realloc(b->arena, ncap)) == NULL)
		return GW_ENOMEM;
	b->arena = p;
	b->acap = ncap;
	return 0;
}

int
rowbuf_add(struct rowbuf *b, const struct rule_value *vals,
    const struct msg *m, int64_t item)
{
	struct rowbuf_cell *c;
	size_t i, need = 0, off;

	if (b->len >= b->cap)
		return GW_EFULL;
	for (i = 0; i < b->ncols; i++) {
		if (vals[i].type != RULE_VTEXT && vals[i].type != RULE_VBLOB)
			continue;
		if (vals[i].u.s.len > SIZE_MAX / 2 - need)
			return GW_ENOMEM;
		need += vals[i].u.s.len;
	}
	if (rowbuf_reserve(b, need) != 0)
		return GW_ENOMEM;
	c = b->cells + b->len * b->ncols;
	off = b->alen;
	for (i = 0; i < b->ncols; i++) {
		c[i].type = vals[i].type;
		switch (vals[i].type) {
		case RULE_VINTEGER:
			c[i].u.i = vals[i].u.i;
			break;
		case RULE_VREAL:
			c[i].u.d = vals[i].u.d;
			break;
		case RULE_VTEXT:
		case RULE_VBLOB:
			c[i].u.s.off = off;
			c[i].u.s.len = vals[i].u.s.len;
			if (vals[i].u.s.len > 0)
				memcpy(b->arena + off, vals[i].u.s.p,
				    vals[i].u.s.len);
			off += vals[i].u.s.len;
			break;
		default:
			c[i].type = RULE_VNULL;
			break;
		}
	}
	b->alen = off;
	/* The refcount is atomic; the message itself stays read-only. */
	b->msgs[b->len] = m != NULL ? msg_ref((struct msg *)(uintptr_t)m) :
	    NULL;
	b->items[b->len] = item;
	b->len++;
	return 0;
}

size_t
rowbuf_len(const struct rowbuf *b)
{
	return b->len;
}

bool
rowbuf_full(const struct rowbuf *b)
{
	return b->len >= b->cap || (b->len > 0 && b->alen >= b->max_bytes);
}

void
rowbuf_value(const struct rowbuf *b, size_t row, size_t col,
    struct rule_value *out)
{
	const struct rowbuf_cell *c = &b->cells[row * b->ncols + col];
	static const char empty[1];

	out->owned = 0;
	out->json = 0;
	out->type = c->type;
	switch (c->type) {
	case RULE_VINTEGER:
		out->u.i = c->u.i;
		break;
	case RULE_VREAL:
		out->u.d = c->u.d;
		break;
	case RULE_VTEXT:
	case RULE_VBLOB:
		/* An empty string stays a string, never a NULL pointer. */
		out->u.s.p = c->u.s.len > 0 ? b->arena + c->u.s.off : empty;
		out->u.s.len = c->u.s.len;
		break;
	default:
		out->type = RULE_VNULL;
		out->u.i = 0;
		break;
	}
}

const struct msg *
rowbuf_msg(const struct rowbuf *b, size_t row)
{
	return row < b->len ? b->msgs[row] : NULL;
}

int64_t
rowbuf_item(const struct rowbuf *b, size_t row)
{
	return row < b->len ? b->items[row] : -1;
}

void
rowbuf_clear(struct rowbuf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		msg_unref(&b->msgs[i]);
	b->len = 0;
	b->alen = 0;
	if (b->acap > ROWBUF_ARENA_KEEP) {
		gw_free(b->arena);
		b->arena = NULL;
		b->acap = 0;
	}
}

void
rowbuf_free(struct rowbuf *b)
{
	if (b == NULL)
		return;
	if (b->msgs != NULL)
		rowbuf_clear(b);
	gw_free(b->cells);
	gw_free(b->msgs);
	gw_free(b->items);
	gw_free(b->arena);
	gw_free(b);
}
