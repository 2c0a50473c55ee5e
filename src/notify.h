/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The systemd notification protocol (sd_notify(3)) without libsystemd:
 * state lines sent as one datagram to the AF_UNIX socket named by
 * NOTIFY_SOCKET, and a watchdog keep-alive on the event loop when the
 * service manager asked for one (WATCHDOG_USEC). Without NOTIFY_SOCKET
 * every call is a no-op, so the daemon runs the same by hand.
 */
#ifndef GW_NOTIFY_H
#define GW_NOTIFY_H

struct ev_loop;
struct notify;

/*
 * Reads NOTIFY_SOCKET and WATCHDOG_USEC from the environment. Returns the
 * notifier, or NULL when there is no service manager to tell (or no
 * memory); NULL is accepted by every function below.
 */
struct notify	*notify_new(struct ev_loop *loop);
/* Startup or a reload is complete: READY=1 and the status text. */
void		 notify_ready(struct notify *n, const char *status);
/* A reload starts: RELOADING=1 with MONOTONIC_USEC. */
void		 notify_reloading(struct notify *n);
/* Shutdown starts: STOPPING=1; the watchdog stops. */
void		 notify_stopping(struct notify *n);
/* Cancels the watchdog timer and frees n. NULL ok. */
void		 notify_free(struct notify *n);

#endif
