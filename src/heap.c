/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The binary min-heap of heap.h.
 *
 * DESIGN. The heap is an array of element pointers in the usual implicit
 * tree: the children of slot i are 2i+1 and 2i+2, and no child orders
 * before its parent, so slot 0 holds the least element. Each element
 * carries a size_t index field at a fixed offset that the owner chose,
 * holding its slot + 1 (0 means "in no heap", so a zeroed element starts
 * out of the heap). Keeping that field current is what lets the owner
 * remove or re-key any element in O(log n) without looking for it: the
 * event loop cancels and re-arms a connection's keepalive timer this way
 * on every packet, and the retained store drops a message that was
 * replaced before it expired.
 *
 * Sifting moves a hole instead of swapping: the element being placed is
 * held aside, the elements it passes move one step into the hole (each
 * index field written once), and it is written where it lands. An
 * element whose key changed, or the last element moved into a removed
 * one's slot, may have to go either way, so heap_fix() sifts up and, when
 * it did not move, down.
 *
 * Memory: the slot array is the only allocation. It doubles when full
 * (from HEAP_MIN_CAP) and never shrinks, so a steady number of elements
 * costs no allocation per operation; heap_reserve() lets an owner that must
 * not fail half-way (retain.c) get the room first. An allocation failure
 * returns GW_ENOMEM with the heap unchanged, never aborts.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "heap.h"
#include "mem.h"

#define HEAP_MIN_CAP	16

static size_t	*heap_idx(const struct heap *, const void *);
static void	 heap_place(struct heap *, size_t, void *);
static size_t	 heap_up(struct heap *, size_t, void *);
static size_t	 heap_down(struct heap *, size_t, void *);
static void	 heap_settle(struct heap *, size_t, void *);

/* The index field of e. */
static size_t *
heap_idx(const struct heap *h, const void *e)
{
	return (size_t *)((uintptr_t)e + h->idx_off);
}

/* Puts e in slot i and records it in e. */
static void
heap_place(struct heap *h, size_t i, void *e)
{
	h->slot[i] = e;
	*heap_idx(h, e) = i + 1;
}

/*
 * Moves the hole at slot i up while e orders before the hole's parent,
 * shifting each parent down. Returns where the hole stopped; e is not
 * written.
 */
static size_t
heap_up(struct heap *h, size_t i, void *e)
{
	size_t p;

	while (i > 0) {
		p = (i - 1) / 2;
		if (!h->less(e, h->slot[p]))
			break;
		heap_place(h, i, h->slot[p]);
		i = p;
	}
	return i;
}

/*
 * Moves the hole at slot i down while a child orders before e, shifting
 * the lesser child up. Returns where the hole stopped; e is not written.
 */
static size_t
heap_down(struct heap *h, size_t i, void *e)
{
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->less(h->slot[c + 1], h->slot[c]))
			c++;
		if (!h->less(h->slot[c], e))
			break;
		heap_place(h, i, h->slot[c]);
		i = c;
	}
	return i;
}

/* Places e, whose right slot is unknown, starting from the hole at i. */
static void
heap_settle(struct heap *h, size_t i, void *e)
{
	size_t j;

	if ((j = heap_up(h, i, e)) == i)
		j = heap_down(h, i, e);
	heap_place(h, j, e);
}

/*
 * Makes h an empty heap ordered by less, whose elements keep their slot
 * + 1 in the size_t at byte offset idx_off. Allocates nothing.
 */
void
heap_init(struct heap *h, heap_less_cb less, size_t idx_off)
{
	memset(h, 0, sizeof *h);
	h->less = less;
	h->idx_off = idx_off;
}

/*
 * Frees the slot array, not the elements (their index fields are not
 * reset), and leaves h empty and usable. Accepts NULL.
 */
void
heap_free(struct heap *h)
{
	if (h == NULL)
		return;
	gw_free(h->slot);
	h->slot = NULL;
	h->n = h->cap = 0;
}

/*
 * Grows the array so that extra more elements fit. Returns 0 or
 * GW_ENOMEM (h unchanged).
 */
int
heap_reserve(struct heap *h, size_t extra)
{
	void **ns;
	size_t cap;

	if (extra <= h->cap - h->n)
		return 0;
	if (extra > SIZE_MAX / sizeof *ns - h->n)
		return GW_ENOMEM;
	cap = h->cap != 0 ? h->cap : HEAP_MIN_CAP;
	while (cap - h->n < extra) {
		if (cap > SIZE_MAX / sizeof *ns / 2) {
			cap = h->n + extra;
			break;
		}
		cap *= 2;
	}
	if ((ns = gw_realloc(h->slot, cap * sizeof *ns)) == NULL)
		return GW_ENOMEM;
	h->slot = ns;
	h->cap = cap;
	return 0;
}

/*
 * Adds e (borrowed, index field 0). Returns 0 or GW_ENOMEM, in which case
 * neither h nor e changed.
 */
int
heap_push(struct heap *h, void *e)
{
	assert(*heap_idx(h, e) == 0);
	if (h->n == h->cap && heap_reserve(h, 1) != 0)
		return GW_ENOMEM;
	h->n++;
	heap_place(h, heap_up(h, h->n - 1, e), e);
	return 0;
}

/*
 * Takes e out of h and zeroes its index field; the last element fills
 * its slot and is settled from there.
 */
void
heap_remove(struct heap *h, void *e)
{
	size_t *idx = heap_idx(h, e), i = *idx - 1;
	void *last;

	assert(heap_contains(h, e));
	*idx = 0;
	last = h->slot[--h->n];
	if (i != h->n)
		heap_settle(h, i, last);
}

/*
 * Moves e (in h) to its right slot after its key changed.
 */
void
heap_fix(struct heap *h, void *e)
{
	assert(heap_contains(h, e));
	heap_settle(h, *heap_idx(h, e) - 1, e);
}

/*
 * The least element (borrowed), NULL when h is empty.
 */
void *
heap_peek(const struct heap *h)
{
	return h->n != 0 ? h->slot[0] : NULL;
}

/*
 * Removes the least element and returns it (borrowed, index field 0), or
 * NULL when h is empty.
 */
void *
heap_pop(struct heap *h)
{
	void *e;

	if (h->n == 0)
		return NULL;
	e = h->slot[0];
	heap_remove(h, e);
	return e;
}

/*
 * Number of elements held.
 */
size_t
heap_count(const struct heap *h)
{
	return h->n;
}

/*
 * Whether e is in h: its index field names a slot of h that holds e.
 */
bool
heap_contains(const struct heap *h, const void *e)
{
	size_t i = *heap_idx(h, e);

	return i != 0 && i <= h->n && h->slot[i - 1] == e;
}

/*
 * Checks the order and every index field. O(n).
 */
bool
heap_valid(const struct heap *h)
{
	size_t i;

	if (h->n > h->cap || (h->cap != 0 && h->slot == NULL))
		return false;
	for (i = 0; i < h->n; i++) {
		if (*heap_idx(h, h->slot[i]) != i + 1)
			return false;
		if (i > 0 && h->less(h->slot[i], h->slot[(i - 1) / 2]))
			return false;
	}
	return true;
}
