/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epoll event loop; see ev.h. Fd callbacks live in a table indexed by fd
 * (grown on demand). Timers are a binary min-heap of pointers into their
 * owners, each timer remembering its heap slot so cancel and re-arm are
 * O(log n). One iteration: run expired timers, call the before-sleep hook,
 * wait until the earliest deadline, dispatch the ready fds.
 */
#include <sys/epoll.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
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
	struct ev_timer	**heap;
	size_t		  nheap, capheap;
	ev_hook_cb	  before_sleep;
	void		 *before_sleep_arg;
	int		  stop;
	long long	  now;
};

static void	heap_swap(struct ev_loop *, size_t, size_t);
static void	heap_up(struct ev_loop *, size_t);
static void	heap_down(struct ev_loop *, size_t);
static void	heap_remove(struct ev_loop *, size_t);

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
	gw_free(loop->heap);
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

static void
heap_swap(struct ev_loop *loop, size_t a, size_t b)
{
	struct ev_timer *t = loop->heap[a];

	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_index = a + 1;
	loop->heap[b]->heap_index = b + 1;
}

static void
heap_up(struct ev_loop *loop, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (loop->heap[p]->deadline_ms <= loop->heap[i]->deadline_ms)
			break;
		heap_swap(loop, p, i);
		i = p;
	}
}

static void
heap_down(struct ev_loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < loop->nheap &&
		    loop->heap[l]->deadline_ms < loop->heap[m]->deadline_ms)
			m = l;
		if (r < loop->nheap &&
		    loop->heap[r]->deadline_ms < loop->heap[m]->deadline_ms)
			m = r;
		if (m == i)
			break;
		heap_swap(loop, i, m);
		i = m;
	}
}

static void
heap_remove(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	loop->nheap--;
	if (i != loop->nheap) {
		loop->heap[i] = loop->heap[loop->nheap];
		loop->heap[i]->heap_index = i + 1;
		heap_down(loop, i);
		heap_up(loop, i);
	}
	t->heap_index = 0;
}

int
ev_timer_set(struct ev_loop *loop, struct ev_timer *t, long long deadline_ms,
    ev_timer_cb cb, void *arg)
{
	struct ev_timer **nh;
	size_t n;

	t->cb = cb;
	t->arg = arg;
	if (t->heap_index != 0) {
		t->deadline_ms = deadline_ms;
		heap_down(loop, t->heap_index - 1);
		heap_up(loop, t->heap_index - 1);
		return 0;
	}
	if (loop->nheap == loop->capheap) {
		n = loop->capheap ? loop->capheap * 2 : 64;
		if ((nh = gw_realloc(loop->heap, n * sizeof *nh)) == NULL)
			return GW_ENOMEM;
		loop->heap = nh;
		loop->capheap = n;
	}
	t->deadline_ms = deadline_ms;
	loop->heap[loop->nheap] = t;
	t->heap_index = ++loop->nheap;
	heap_up(loop, loop->nheap - 1);
	return 0;
}

void
ev_timer_cancel(struct ev_loop *loop, struct ev_timer *t)
{
	if (t->heap_index != 0)
		heap_remove(loop, t->heap_index - 1);
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

	while (loop->nheap > 0 && loop->heap[0]->deadline_ms <= loop->now) {
		t = loop->heap[0];
		heap_remove(loop, 0);
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
		if (loop->nheap > 0) {
			wait = loop->heap[0]->deadline_ms - clock_mono_ms();
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
