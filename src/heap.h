/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A binary min-heap of element pointers with removal of any element. The
 * owner embeds a struct heap and, in each element, a size_t index field
 * (slot + 1, 0 when the element is in no heap) whose offset it gives at
 * init; the heap keeps that field current, so removing or re-keying an
 * element needs no search. Used by the event loop's timers (net/ev.c) and
 * the expiry order of retained messages (broker/retain.c). Not thread
 * safe: one owner thread.
 */
#ifndef GW_HEAP_H
#define GW_HEAP_H

#include <stdbool.h>
#include <stddef.h>

/* Whether element a orders strictly before element b (both borrowed). */
typedef bool (*heap_less_cb)(const void *a, const void *b);

/*
 * Embedded in its owner; fields are private to heap.c (use the functions).
 * Zero-initialised memory is not a valid heap: call heap_init().
 */
struct heap {
	void		**slot;		/* elements; slot[0] the least */
	size_t		  n;		/* elements held */
	size_t		  cap;		/* slots allocated */
	size_t		  idx_off;	/* offset of the size_t index field
					 * in each element */
	heap_less_cb	  less;		/* the order */
};

/* Makes h an empty heap ordered by less; allocates nothing. */
void	 heap_init(struct heap *h, heap_less_cb less, size_t idx_off);
/*
 * Frees the slot array (never the elements, whose index fields are left
 * as they are) and leaves h empty. NULL ok.
 */
void	 heap_free(struct heap *h);

/*
 * Makes room for extra more elements, so that many heap_push() calls
 * cannot fail. 0 or GW_ENOMEM (h unchanged).
 */
int	 heap_reserve(struct heap *h, size_t extra);
/*
 * Adds e (borrowed; its index field must be 0) in O(log n), growing the
 * array when full. 0 or GW_ENOMEM (h and e unchanged).
 */
int	 heap_push(struct heap *h, void *e);
/* Takes e (in h) out in O(log n) and sets its index field to 0. */
void	 heap_remove(struct heap *h, void *e);
/* Restores the order after the key of e (in h) changed. O(log n). */
void	 heap_fix(struct heap *h, void *e);
/* The least element (borrowed), or NULL when h is empty. O(1). */
void	*heap_peek(const struct heap *h);
/* Removes and returns the least element, or NULL when h is empty. */
void	*heap_pop(struct heap *h);
/* Number of elements in h. */
size_t	 heap_count(const struct heap *h);
/* Whether e is in a heap (its index field is not 0). */
bool	 heap_contains(const struct heap *h, const void *e);
/*
 * Checks the invariants in O(n): every parent orders no later than its
 * children and every element's index field names its slot. For tests and
 * assert().
 */
bool	 heap_valid(const struct heap *h);

#endif
