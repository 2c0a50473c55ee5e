/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epoll event loop; see ev.h. Fd callbacks live in a table indexed by fd
 * (grown on demand). Timers live in their owners and are ordered by
 * deadline in a heap (heap.h) whose index field is the timer's
 * heap_index, so cancel and re-arm are O(log n) and allocate nothing once
 * the heap's array has grown to the number of armed timers; re-arming at
 * the same deadline does no work. One iteration: run expired timers, call
 * the before-sleep hook, wait until the earliest deadline, dispatch the
 * ready fds.
 */
#include <sys/epoll.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "heap.h"
#include "mem.h"
#include "net/ev.h"

#define EV_BATCH	256

struct ev_fd {
	ev_fd_cb	 cb;
	void		*arg;
	unsigned	 mask;
	int		 active;
};

struct ev_loop {
	int		  epfd;
	struct ev_fd	 *fds;		/* indexed by fd */
	size_t		  nfds;
	struct heap	  timers;	/* struct ev_timer, earliest first */
	ev_hook_cb	  before_sleep;
	void		 *before_sleep_arg;
	int		  stop;
	long long	  now;
};

static bool	ev_timer_less(const void *, const void *);

struct ev_loop *
ev_new(void)
{
	struct ev_loop *loop;

	if ((loop = gw_calloc(1, sizeof *loop)) == NULL)
		return NULL;
	if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		gw_free(loop);
		return NULL;
	}
	heap_init(&loop->timers, ev_timer_less,
	    offsetof(struct ev_timer, heap_index));
	loop->now = clock_mono_ms();
	return loop;
}

void
ev_free(struct ev_loop *loop)
{
	if (loop == NULL)
		return;
	close(loop->epfd);
	gw_free(loop->fds);
	heap_free(&loop->timers);
	gw_free(loop);
}

static uint32_t
ev_to_epoll(unsigned mask)
{
	uint32_t e = 0;

	if (mask & EV_READ)
		e |= EPOLLIN;
	if (mask & EV_WRITE)
		e |= EPOLLOUT;
	return e;
}

int
ev_add_fd(struct ev_loop *loop, int fd, unsigned mask, ev_fd_cb cb,
    void *arg)
{
	struct epoll_event ee;
	struct ev_fd *nf;
	size_t n;

	if (fd < 0)
		return GW_EIO;
	if ((size_t)fd >= loop->nfds) {
		n = loop->nfds ? loop->nfds : 64;
		while (n <= (size_t)fd)
			n *= 2;
		if ((nf = gw_realloc(loop->fds, n * sizeof *nf)) == NULL)
			return GW_ENOMEM;
		memset(nf + loop->nfds, 0, (n - loop->nfds) * sizeof *nf);
		loop->fds = nf;
		loop->nfds = n;
	}
	memset(&ee, 0, sizeof ee);
	ee.events = ev_to_epoll(mask);
	ee.data.fd = fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) == -1)
		return GW_EIO;
	loop->fds[fd].cb = cb;
	loop->fds[fd].arg = arg;
	loop->fds[fd].mask = mask;
	loop->fds[fd].active = 1;
	return 0;
}

int
ev_mod_fd(struct ev_loop *loop, int fd, unsigned mask)
{
	struct epoll_event ee;

	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].active)
		return GW_EIO;
	if (loop->fds[fd].mask == mask)
		return 0;
	memset(&ee, 0, sizeof ee);
	ee.events = ev_to_epoll(mask);
	ee.data.fd = fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ee) == -1)
		return GW_EIO;
	loop->fds[fd].mask = mask;
	return 0;
}

void
ev_del_fd(struct ev_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].active)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&loop->fds[fd], 0, sizeof loop->fds[fd]);
}

/* Timers order by deadline. */
static bool
ev_timer_less(const void *a, const void *b)
{
	return ((const struct ev_timer *)a)->deadline_ms <
	    ((const struct ev_timer *)b)->deadline_ms;
}

/*
 * Arms or re-arms t (borrowed, stays in the heap until it fires or is
 * cancelled). Returns 0 or GW_ENOMEM when the heap could not grow (t is
 * then unchanged and idle).
 */
int
ev_timer_set(struct ev_loop *loop, struct ev_timer *t, long long deadline_ms,
    ev_timer_cb cb, void *arg)
{
	long long old = t->deadline_ms;

	if (t->heap_index != 0) {
		t->cb = cb;
		t->arg = arg;
		t->deadline_ms = deadline_ms;
		if (deadline_ms != old)
			heap_fix(&loop->timers, t);
		return 0;
	}
	t->deadline_ms = deadline_ms;
	if (heap_push(&loop->timers, t) != 0) {
		t->deadline_ms = old;
		return GW_ENOMEM;
	}
	t->cb = cb;
	t->arg = arg;
	return 0;
}

/*
 * Disarms t when armed; never fails.
 */
void
ev_timer_cancel(struct ev_loop *loop, struct ev_timer *t)
{
	if (t->heap_index != 0)
		heap_remove(&loop->timers, t);
}

void
ev_set_before_sleep(struct ev_loop *loop, ev_hook_cb cb, void *arg)
{
	loop->before_sleep = cb;
	loop->before_sleep_arg = arg;
}

void
ev_stop(struct ev_loop *loop)
{
	loop->stop = 1;
}

long long
ev_now(const struct ev_loop *loop)
{
	return loop->now;
}

static void
ev_run_timers(struct ev_loop *loop)
{
	struct ev_timer *t;

	while ((t = heap_peek(&loop->timers)) != NULL &&
	    t->deadline_ms <= loop->now) {
		heap_remove(&loop->timers, t);
		t->cb(loop, t->arg);
		if (loop->stop)
			return;
	}
}

int
ev_run(struct ev_loop *loop)
{
	struct epoll_event evs[EV_BATCH];
	struct ev_fd *f;
	struct ev_timer *t;
	long long wait;
	unsigned m;
	int i, n, fd;

	loop->stop = 0;
	while (!loop->stop) {
		loop->now = clock_mono_ms();
		ev_run_timers(loop);
		if (loop->stop)
			break;
		if (loop->before_sleep != NULL)
			loop->before_sleep(loop, loop->before_sleep_arg);
		if (loop->stop)
			break;
		wait = -1;
		if ((t = heap_peek(&loop->timers)) != NULL) {
			wait = t->deadline_ms - clock_mono_ms();
			if (wait < 0)
				wait = 0;
			if (wait > 3600 * 1000)
				wait = 3600 * 1000;
		}
		n = epoll_wait(loop->epfd, evs, EV_BATCH, (int)wait);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return GW_EIO;
		}
		loop->now = clock_mono_ms();
		for (i = 0; i < n && !loop->stop; i++) {
			fd = evs[i].data.fd;
			if ((size_t)fd >= loop->nfds || !loop->fds[fd].active)
				continue;
			f = &loop->fds[fd];
			m = 0;
			if (evs[i].events & EPOLLIN)
				m |= EV_READ;
			if (evs[i].events & EPOLLOUT)
				m |= EV_WRITE;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				m |= EV_ERROR;
			f->cb(loop, fd, m, f->arg);
		}
	}
	return 0;
}
