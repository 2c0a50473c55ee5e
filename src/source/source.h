/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sources: mqlite as an MQTT 3.1.1 client of external brokers (config
 * "sources"), feeding what they deliver into the same rules as local
 * publishes. Each source keeps a persistent session on its broker (clean
 * session 0) and acknowledges a message only after the store committed
 * it: PUBACK for QoS 1, PUBREC for QoS 2 with the packet id recorded in
 * the same transaction (exactly once into SQLite), PUBCOMP after the
 * record's removal is committed. Loop thread only.
 */
#ifndef GW_SOURCE_H
#define GW_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct ev_loop;
struct gw_config;
struct store;
struct sources;

/* One source's counters, for /metrics. */
struct source_stats {
	const char	*name;		/* borrowed from the config */
	bool		 connected;	/* CONNACK accepted, not yet lost */
	uint64_t	 received;	/* PUBLISH packets received */
	uint64_t	 duplicates;	/* QoS 2 resends recognised */
	uint64_t	 connects;	/* successful connections */
	uint64_t	 reconnects;	/* connections lost or failed */
};

/*
 * Returns a new set of sources for cfg->sources (borrows loop, broker,
 * store and cfg, which must outlive it), NULL on ENOMEM. Loads each
 * source's QoS 2 packet ids from the store: call before store_start().
 * Nothing connects until sources_start().
 */
struct sources	*sources_new(struct ev_loop *loop, struct broker *b,
		    struct store *store, const struct gw_config *cfg);

/* Starts connecting every source (after the store thread started). */
void		 sources_start(struct sources *ss);

/*
 * Stops reading from the sources (the first step of a shutdown); the
 * connections stay so that sources_finish() can acknowledge.
 */
void		 sources_stop_intake(struct sources *ss);

/*
 * After the store committed everything: sends the acknowledgements still
 * held, a DISCONNECT (the session stays on the broker) and closes.
 */
void		 sources_finish(struct sources *ss);

/* Number of sources. */
size_t		 sources_count(const struct sources *ss);

/* Counters of source i (< sources_count()). */
void		 sources_get_stats(const struct sources *ss, size_t i,
		    struct source_stats *st);

/* Frees everything; NULL ok. */
void		 sources_free(struct sources *ss);

#endif
