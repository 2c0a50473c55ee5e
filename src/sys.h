/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The $SYS/broker/... topics: every sys_interval the daemon's numbers are
 * published as retained QoS 0 messages through broker_sys_publish(), under
 * the names Mosquitto uses where it has one. Loop thread only.
 */
#ifndef GW_SYS_H
#define GW_SYS_H

#include <stdint.h>

struct ev_loop;
struct metrics_sources;
struct sys;

/*
 * Publishes once now and then every interval_ms on loop, reading src
 * (borrowed; must outlive sys_stop()). Returns a new publisher, or NULL
 * on ENOMEM.
 */
struct sys	*sys_start(struct ev_loop *loop,
		    const struct metrics_sources *src, uint64_t interval_ms);

/* Publishes every value now (also called by the timer). */
void		 sys_publish_all(struct sys *sy);

/* Stops the timer and frees sy. NULL ok. */
void		 sys_stop(struct sys *sy);

#endif
