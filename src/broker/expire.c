/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Expiry of persistent sessions (limits.session_expiry). A persistent
 * session whose client went away keeps its subscriptions and queues
 * messages for it; one whose client has not come back for session_expiry
 * is dropped with everything it holds, in memory and in SQLite (the
 * session row and its session_msgs rows go in one store item).
 *
 * The time a client went offline is wall-clock milliseconds, saved in the
 * sessions row (disconnected_ms), so sessions loaded at start keep their
 * age across restarts; a session whose client was connected when the
 * gateway stopped counts as offline from the start.
 *
 * A 5.0 client names its own Session Expiry Interval (kept in the
 * sessions row, expiry_s); the smaller of it and limits.session_expiry
 * applies. A 3.1.1 session has only the limit.
 *
 * One broker timer, armed at the earliest expiry among offline sessions
 * (plus a little slack so expiries close together are dropped in one
 * sweep); with no offline session it is idle and the loop sleeps. A sweep
 * walks the session table once.
 */
#include <limits.h>

#include "broker/broker_int.h"
#include "clock.h"
#include "config.h"

static void	expire_cb(struct ev_loop *, void *);

struct sweep {
	struct broker	*b;
	long long	 now;		/* wall ms */
	long long	 next;		/* earliest expiry left, wall ms */
	long long	 next_after;	/* its offline time allowed, ms */
	size_t		 dropped;
};

/*
 * How long s is kept offline (ms): limits.session_expiry, or a 5.0
 * client's Session Expiry Interval when that is shorter.
 */
static long long
expire_after(const struct broker *b, const struct session *s)
{
	uint64_t ms = b->cfg->session_expiry_ms;

	if (s->expiry_s != SESSION_EXPIRY_LIMIT &&
	    (uint64_t)s->expiry_s * 1000 < ms)
		ms = (uint64_t)s->expiry_s * 1000;
	return ms > LLONG_MAX / 2 ? LLONG_MAX / 2 : (long long)ms;
}

/*
 * Arms the sweep timer for a session expiring at due (wall ms) after
 * being offline for after ms.
 */
static void
expire_arm(struct broker *b, long long due, long long after)
{
	long long slack, at;

	slack = after / 100;
	if (slack < 1000)
		slack = 1000;
	if (slack > 3600000)
		slack = 3600000;
	at = ev_now(b->loop) + (due - clock_wall_ms()) + slack;
	if (b->expire_timer.heap_index != 0 &&
	    b->expire_timer.deadline_ms <= at)
		return;
	ev_timer_set(b->loop, &b->expire_timer, at, expire_cb, b);
}

/*
 * Marks persistent session s offline since now (wall ms), saves that with
 * the session and arms the expiry. Loop thread.
 */
void
expire_session_offline(struct broker *b, struct session *s, long long now)
{
	if (s->clean || s->client != NULL)
		return;
	s->offline_ms = now > 0 ? now : 1;
	persist_session_save(b, s);
	expire_arm(b, s->offline_ms + expire_after(b, s), expire_after(b, s));
}

/* Marks s online again (its client is back); saves it if it was offline. */
void
expire_session_online(struct broker *b, struct session *s)
{
	if (s->offline_ms == 0)
		return;
	s->offline_ms = 0;
	persist_session_save(b, s);
}

/*
 * A delayed will of offline session s: published when due, else its due
 * time counts for the next sweep.
 */
static void
sweep_will(struct sweep *sw, struct session *s)
{
	struct msg *will = s->will;

	if (s->will_due > sw->now) {
		if (s->will_due < sw->next) {
			sw->next = s->will_due;
			sw->next_after = 0;
		}
		return;
	}
	s->will = NULL;
	s->will_due = 0;
	will_publish(sw->b, will);
}

static void
sweep_cb(struct session *s, void *arg)
{
	struct sweep *sw = arg;
	struct broker *b = sw->b;
	struct msg *will;
	long long due;

	if (s->client != NULL || s->offline_ms == 0)
		return;
	if (s->will != NULL)
		sweep_will(sw, s);
	due = s->offline_ms + expire_after(b, s);
	if (due > sw->now) {
		if (due < sw->next) {
			sw->next = due;
			sw->next_after = expire_after(b, s);
		}
		return;
	}
	b->stats.sessions_expired++;
	if (log_ratelimited(&b->guard_log, 10, 10000))
		log_info("client %s: persistent session expired after %llu ms "
		    "offline (%s): dropping it and its %zu queued messages",
		    s->client_id,
		    (unsigned long long)(sw->now - s->offline_ms),
		    expire_after(b, s) < (long long)b->cfg->session_expiry_ms ?
		    "its session expiry interval" : "limits.session_expiry",
		    s->qlen + s->ninflight);
	/* The session ends: a will still waiting goes now. */
	will = s->will;
	s->will = NULL;
	outbound_drop_session(b, s);
	will_publish(b, will);
	sw->dropped++;
}

/* Drops the sessions past their expiry; rearms for the next one. */
static void
expire_sweep(struct broker *b)
{
	struct sweep sw = { b, clock_wall_ms(), LLONG_MAX, 0, 0 };

	if (b->intake_stopped)
		return;
	session_foreach(b->sessions, sweep_cb, &sw);
	if (sw.next != LLONG_MAX)
		expire_arm(b, sw.next, sw.next_after);
}

static void
expire_cb(struct ev_loop *loop, void *arg)
{
	(void)loop;
	expire_sweep(arg);
}

/*
 * After loading sessions at start: those without a recorded offline time
 * count from now; then expired ones are dropped and the timer armed.
 */
static void
load_mark_cb(struct session *s, void *arg)
{
	struct sweep *sw = arg;

	if (s->client == NULL && s->offline_ms == 0)
		s->offline_ms = sw->now;
}

void
expire_loaded(struct broker *b)
{
	struct sweep sw = { b, clock_wall_ms(), LLONG_MAX, 0, 0 };

	session_foreach(b->sessions, load_mark_cb, &sw);
	expire_sweep(b);
}

void
expire_session_set(struct broker *b, struct session *s, uint32_t expiry)
{
	if (s->expiry_s == expiry)
		return;
	s->expiry_s = expiry;
	persist_session_save(b, s);
}

void
expire_will_arm(struct broker *b, long long due)
{
	expire_arm(b, due, 0);
}
