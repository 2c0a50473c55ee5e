/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DESIGN: sd_notify(3) by hand. The protocol is a newline-separated list
 * of VAR=VALUE lines sent as a single datagram to the AF_UNIX socket whose
 * path is in NOTIFY_SOCKET ("@name" is the abstract namespace). Writing it
 * here costs forty lines and spares the daemon a run-time dependency on
 * libsystemd, which a gateway started by hand or by another init does not
 * need. One socket is opened at start and kept, so that a notification
 * sent late in shutdown, or from a sandbox that later loses access to the
 * socket's folder, still goes out.
 *
 * The watchdog ping is a timer on the event loop, at half the interval
 * systemd asked for: a loop stuck in a callback stops pinging and systemd
 * restarts the service, which is the point. WATCHDOG_PID, when set, must
 * name this process, else the request was meant for another one.
 *
 * Failures to send are logged once and otherwise ignored: a gateway that
 * cannot tell systemd it is ready is killed by the start timeout, which
 * says more than anything the daemon could do about it.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "net/ev.h"
#include "notify.h"

struct notify {
	struct ev_loop		*loop;
	int			 fd;
	struct sockaddr_un	 sa;
	socklen_t		 salen;
	long long		 watchdog_ms;	/* 0: no watchdog */
	struct ev_timer		 watchdog;
	int			 warned;	/* a send failure was logged */
};

static void
notify_send(struct notify *n, const char *msg)
{
	if (n == NULL)
		return;
	if (sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&n->sa, n->salen) == -1 && !n->warned) {
		n->warned = 1;
		log_warn("systemd notification socket: %s", strerror(errno));
	}
}

static void
notify_watchdog_cb(struct ev_loop *loop, void *arg)
{
	struct notify *n = arg;

	notify_send(n, "WATCHDOG=1");
	ev_timer_set(loop, &n->watchdog, ev_now(loop) + n->watchdog_ms,
	    notify_watchdog_cb, n);
}

/* The watchdog interval systemd asked for, in ms; 0 for none. */
static long long
notify_watchdog_interval(void)
{
	const char *s;
	char *end;
	unsigned long long usec, pid;

	if ((s = getenv("WATCHDOG_PID")) != NULL && *s != '\0') {
		errno = 0;
		pid = strtoull(s, &end, 10);
		if (errno != 0 || *end != '\0' || pid != (unsigned long long)
		    getpid())
			return 0;
	}
	if ((s = getenv("WATCHDOG_USEC")) == NULL || *s == '\0')
		return 0;
	errno = 0;
	usec = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || usec == 0) {
		log_warn("WATCHDOG_USEC=%s is not a number of microseconds, "
		    "no watchdog", s);
		return 0;
	}
	if (usec / 2000 == 0)
		return 1;
	return (long long)(usec / 2000);
}

/* See notify.h. */
struct notify *
notify_new(struct ev_loop *loop)
{
	struct notify *n;
	const char *path;
	size_t len;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return NULL;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') ||
	    len >= sizeof n->sa.sun_path) {
		log_warn("NOTIFY_SOCKET=%s is not a socket path, systemd will "
		    "not be told when mqlite is ready", path);
		return NULL;
	}
	if ((n = gw_calloc(1, sizeof *n)) == NULL)
		return NULL;
	n->loop = loop;
	n->sa.sun_family = AF_UNIX;
	memcpy(n->sa.sun_path, path, len);
	if (path[0] == '@') {
		n->sa.sun_path[0] = '\0';
		n->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    len);
	} else
		n->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    len + 1);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd == -1) {
		log_warn("systemd notification socket: %s", strerror(errno));
		gw_free(n);
		return NULL;
	}
	n->watchdog_ms = notify_watchdog_interval();
	return n;
}

/* See notify.h. */
void
notify_ready(struct notify *n, const char *status)
{
	char msg[256];

	if (n == NULL)
		return;
	snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status);
	notify_send(n, msg);
	if (n->watchdog_ms > 0 && n->watchdog.heap_index == 0)
		notify_watchdog_cb(n->loop, n);
}

/* See notify.h. */
void
notify_reloading(struct notify *n)
{
	struct timespec ts;
	char msg[128];

	if (n == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof msg, "RELOADING=1\nSTATUS=reloading\n"
	    "MONOTONIC_USEC=%llu", (unsigned long long)ts.tv_sec * 1000000 +
	    (unsigned long long)ts.tv_nsec / 1000);
	notify_send(n, msg);
}

/* See notify.h. */
void
notify_stopping(struct notify *n)
{
	if (n == NULL)
		return;
	ev_timer_cancel(n->loop, &n->watchdog);
	notify_send(n, "STOPPING=1\nSTATUS=stopping");
}

/* See notify.h. */
void
notify_free(struct notify *n)
{
	if (n == NULL)
		return;
	ev_timer_cancel(n->loop, &n->watchdog);
	close(n->fd);
	gw_free(n);
}
