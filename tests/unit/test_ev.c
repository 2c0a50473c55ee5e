/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the event loop's timers (net/ev.h) on a real epoll loop:
 * they fire in deadline order, a cancelled timer never fires, re-arming
 * moves a timer either way, a timer armed from a callback runs, a future
 * deadline is not run early, and a failed first arm (no memory) leaves the
 * timer idle. alarm() bounds every run, so a broken loop fails, never
 * hangs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "build_config.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "net/ev.h"

#define NT	200

struct fired {
	struct ev_timer	 t[NT];
	long long	 at[NT];	/* deadline of the i-th timer fired */
	int		 order[NT];	/* which timer fired i-th */
	int		 n;		/* fired so far */
	int		 stop_after;	/* ev_stop() after this many */
};

static struct fired	F;

static void
fire_cb(struct ev_loop *loop, void *arg)
{
	int i = (int)(intptr_t)arg;

	if (F.n < NT) {
		F.at[F.n] = F.t[i].deadline_ms;
		F.order[F.n] = i;
	}
	F.n++;
	if (F.n == F.stop_after)
		ev_stop(loop);
}

/* Shuffled deadlines in the past (ties included) fire earliest first. */
static void
test_order_cancel_rearm(void)
{
	struct ev_loop *loop;
	long long base;
	uint32_t s = 7;
	int i, cancelled = 0;

	memset(&F, 0, sizeof F);
	CU_ASSERT_PTR_NOT_NULL_FATAL(loop = ev_new());
	base = ev_now(loop) - 100000;
	for (i = 0; i < NT; i++) {
		s = s * 1103515245 + 12345;
		CU_ASSERT_EQUAL(ev_timer_set(loop, &F.t[i],
		    base + (s >> 8) % 500, fire_cb, (void *)(intptr_t)i), 0);
	}
	/* Every fifth cancelled, every seventh moved later or earlier. */
	for (i = 0; i < NT; i++) {
		if (i % 5 == 0) {
			ev_timer_cancel(loop, &F.t[i]);
			CU_ASSERT_EQUAL(F.t[i].heap_index, 0);
			cancelled++;
		} else if (i % 7 == 0)
			CU_ASSERT_EQUAL(ev_timer_set(loop, &F.t[i],
			    base + (i % 2 ? 1000 : -1000) + i, fire_cb,
			    (void *)(intptr_t)i), 0);
	}
	/* Cancelling an idle timer is harmless. */
	ev_timer_cancel(loop, &F.t[0]);
	F.stop_after = NT - cancelled;
	alarm(30);
	CU_ASSERT_EQUAL(ev_run(loop), 0);
	alarm(0);
	CU_ASSERT_EQUAL(F.n, NT - cancelled);
	for (i = 0; i < F.n && i < NT; i++) {
		CU_ASSERT_NOT_EQUAL(F.order[i] % 5, 0);
		CU_ASSERT_EQUAL(F.t[F.order[i]].heap_index, 0);
		if (i > 0)
			CU_ASSERT_TRUE(F.at[i] >= F.at[i - 1]);
	}
	ev_free(loop);
}

static void
rearm_cb(struct ev_loop *loop, void *arg)
{
	int *left = arg;

	if (--*left == 0) {
		ev_stop(loop);
		return;
	}
	/* Re-armed from its own callback, due at once. */
	CU_ASSERT_EQUAL(ev_timer_set(loop, &F.t[0], ev_now(loop), rearm_cb,
	    arg), 0);
}

static void
future_cb(struct ev_loop *loop, void *arg)
{
	long long *ran = arg;

	*ran = ev_now(loop);
	ev_stop(loop);
}

/*
 * A timer re-armed from its callback keeps running; one armed 30 ms ahead
 * does not run before its deadline.
 */
static void
test_rearm_from_cb_and_future(void)
{
	struct ev_loop *loop;
	long long ran = 0, due;
	int left = 50;

	memset(&F, 0, sizeof F);
	CU_ASSERT_PTR_NOT_NULL_FATAL(loop = ev_new());
	CU_ASSERT_EQUAL(ev_timer_set(loop, &F.t[0], ev_now(loop), rearm_cb,
	    &left), 0);
	alarm(30);
	CU_ASSERT_EQUAL(ev_run(loop), 0);
	CU_ASSERT_EQUAL(left, 0);

	due = ev_now(loop) + 30;
	CU_ASSERT_EQUAL(ev_timer_set(loop, &F.t[1], due, future_cb, &ran), 0);
	/* Same deadline again: nothing moves. */
	CU_ASSERT_EQUAL(ev_timer_set(loop, &F.t[1], due, future_cb, &ran), 0);
	CU_ASSERT_EQUAL(ev_run(loop), 0);
	alarm(0);
	CU_ASSERT_TRUE(ran >= due);
	ev_free(loop);
}

/* The first arm needs the heap's array: failing it leaves the timer idle. */
static void
test_arm_without_memory(void)
{
	struct ev_loop *loop;
	struct ev_timer t;
	long long ran = 0;

	memset(&t, 0, sizeof t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(loop = ev_new());
	gw_mem_fail_after(0);
#ifdef GW_FAULT_INJECTION
	CU_ASSERT_EQUAL(ev_timer_set(loop, &t, ev_now(loop), future_cb, &ran),
	    GW_ENOMEM);
	CU_ASSERT_EQUAL(t.heap_index, 0);
	CU_ASSERT_PTR_NULL(t.cb);
#endif
	gw_mem_fail_after(-1);
	CU_ASSERT_EQUAL(ev_timer_set(loop, &t, ev_now(loop), future_cb, &ran),
	    0);
	CU_ASSERT_NOT_EQUAL(t.heap_index, 0);
	alarm(30);
	CU_ASSERT_EQUAL(ev_run(loop), 0);
	alarm(0);
	CU_ASSERT_NOT_EQUAL(ran, 0);
	CU_ASSERT_EQUAL(t.heap_index, 0);
	ev_free(loop);
}

#define T(fn)	{ #fn, fn }
static const struct cutest_case tests[] = {
	T(test_order_cancel_rearm), T(test_rearm_from_cb_and_future),
	T(test_arm_without_memory),
};

int
main(void)
{
	return cutest_main("ev", NULL, NULL, tests, CUTEST_COUNT(tests));
}
