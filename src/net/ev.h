/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small epoll event loop: file descriptor callbacks, one-shot timers kept
 * in a binary min-heap (the epoll timeout is the time to the next deadline;
 * there is no fixed tick, so an idle gateway sleeps), and a before-sleep
 * hook where the broker flushes its write buffers in one pass. Single
 * threaded: everything here runs on the loop thread.
 */
#ifndef GW_EV_H
#define GW_EV_H

#include <stddef.h>

#define EV_READ		0x1
#define EV_WRITE	0x2
#define EV_ERROR	0x4	/* hang-up or error reported by epoll */

struct ev_loop;

typedef void (*ev_fd_cb)(struct ev_loop *loop, int fd, unsigned events,
		    void *arg);
typedef void (*ev_timer_cb)(struct ev_loop *loop, void *arg);
typedef void (*ev_hook_cb)(struct ev_loop *loop, void *arg);

/* A timer embedded in its owner; zero-initialise it before first use. */
struct ev_timer {
	long long	 deadline_ms;	/* monotonic ms */
	size_t		 heap_index;	/* slot + 1 in the loop's heap
					 * (heap.h), 0 = idle */
	ev_timer_cb	 cb;
	void		*arg;
};

/* Returns a new loop, NULL on failure. */
struct ev_loop	*ev_new(void);
/* Frees the loop (not the registered fds). NULL ok. */
void		 ev_free(struct ev_loop *loop);

/* Registers fd for mask (EV_READ|EV_WRITE). 0 or GW_EIO / GW_ENOMEM. */
int		 ev_add_fd(struct ev_loop *loop, int fd, unsigned mask,
		    ev_fd_cb cb, void *arg);
/* Changes the interest mask of a registered fd. 0 or GW_EIO. */
int		 ev_mod_fd(struct ev_loop *loop, int fd, unsigned mask);
/* Unregisters fd (call before close()). */
void		 ev_del_fd(struct ev_loop *loop, int fd);

/* Arms (or re-arms) t to fire once at deadline_ms (monotonic). */
int		 ev_timer_set(struct ev_loop *loop, struct ev_timer *t,
		    long long deadline_ms, ev_timer_cb cb, void *arg);
/* Disarms t if armed. */
void		 ev_timer_cancel(struct ev_loop *loop, struct ev_timer *t);

/* Called once per iteration just before waiting in epoll. */
void		 ev_set_before_sleep(struct ev_loop *loop, ev_hook_cb cb,
		    void *arg);

/* Runs until ev_stop(). Returns 0, or GW_EIO if epoll fails. */
int		 ev_run(struct ev_loop *loop);
void		 ev_stop(struct ev_loop *loop);

/* Current monotonic time cached at the start of this iteration. */
long long	 ev_now(const struct ev_loop *loop);

#endif
