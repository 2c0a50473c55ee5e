/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rows of one rule waiting for a multi-row INSERT. A row is a copy of the
 * column values the rule's templates produced (they may point into
 * per-message memory that is freed right after the message) plus a
 * reference on the message, which a row the database refuses needs for its
 * `rejected` entry. Bytes of TEXT and BLOB values go into one arena per
 * buffer, so adding a row allocates nothing once the buffer has warmed up.
 * The buffer is full at its row capacity or once its arena holds max_bytes;
 * a single row is always accepted into an empty buffer whatever its size.
 * One thread at a time (the store thread).
 */
#ifndef GW_SINK_ROWBUF_H
#define GW_SINK_ROWBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msg;
struct rowbuf;
struct rule_value;

/*
 * Returns a new empty buffer of up to cap rows (cap >= 1) of ncols values
 * (ncols >= 1), full early once its bytes reach max_bytes; NULL when out of
 * memory.
 */
struct rowbuf	*rowbuf_new(size_t ncols, size_t cap, size_t max_bytes);

/*
 * Appends a row: copies vals[0..ncols) (borrowed; the caller still clears
 * them) and takes a reference on m; item is the row's foreach element
 * index, or -1. The buffer must not be full. 0, or GW_ENOMEM with the
 * buffer unchanged.
 */
int		 rowbuf_add(struct rowbuf *b, const struct rule_value *vals,
		    const struct msg *m, int64_t item);

/* Rows held. */
size_t		 rowbuf_len(const struct rowbuf *b);

/* True when no further row may be added before the buffer is cleared. */
bool		 rowbuf_full(const struct rowbuf *b);

/*
 * Sets *out to value col of row (a borrowed view into the buffer, valid
 * until the next rowbuf_add, rowbuf_clear or rowbuf_free). Never owned.
 */
void		 rowbuf_value(const struct rowbuf *b, size_t row, size_t col,
		    struct rule_value *out);

/* The message of row (borrowed, as long as the row is held). */
const struct msg *rowbuf_msg(const struct rowbuf *b, size_t row);

/* The foreach element index of row, or -1 (none). */
int64_t		 rowbuf_item(const struct rowbuf *b, size_t row);

/* Drops every row and its message reference; keeps a small arena. */
void		 rowbuf_clear(struct rowbuf *b);

/* Clears and frees b. NULL ok. */
void		 rowbuf_free(struct rowbuf *b);

#endif
