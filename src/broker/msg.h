/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An accepted PUBLISH as one immutable, reference-counted block: the struct,
 * topic, client id, username and payload share a single allocation, so the
 * payload is copied exactly once (from the socket buffer into the message)
 * and every subscriber queue, retained slot and store item holds a reference.
 * The count is atomic because messages cross to the store thread.
 *
 * A PUBLISH from an MQTT 5.0 client may carry properties the broker must
 * forward (3.3.2.3): Payload Format Indicator, Message Expiry Interval,
 * Content Type, Response Topic, Correlation Data and User Properties (in
 * their order). They sit in the same block as one encoded property block
 * (length varint first, as on the wire), which is also what the store
 * persists; Topic Alias and Subscription Identifier are never kept. A
 * message without them (every 3.1.1 one) has props NULL and expire_ms 0.
 */
#ifndef GW_MSG_H
#define GW_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct props;

struct msg {
	atomic_uint	 refs;		/* owners; freed when it drops to 0 */
	uint8_t		 qos;		/* QoS the publisher used (0..2) */
	uint8_t		 retain;	/* retain flag as published */
	uint16_t	 topic_len;	/* bytes in topic, without NUL */
	uint16_t	 client_id_len;	/* bytes in client_id, without NUL */
	uint16_t	 username_len;	/* bytes in username, 0 if none */
	uint32_t	 payload_len;	/* bytes in payload */
	uint16_t	 source_len;	/* bytes in source, 0 if local */
	uint32_t	 props_len;	/* bytes in props, 0 if none */
	long long	 received_ms;	/* wall-clock ms when accepted */
	long long	 expire_ms;	/* wall-clock ms its Message Expiry
					 * Interval ends, 0 = never */
	uint8_t		*props;		/* forwardable 5.0 property block
					 * (with its length), or NULL */
	char		*topic;		/* NUL-terminated, inside the block */
	char		*client_id;	/* NUL-terminated, inside the block */
	char		*username;	/* NUL-terminated or NULL */
	uint8_t		*payload;	/* payload bytes, inside the block */
	/*
	 * The name of the source (config "sources") the message came from,
	 * NUL-terminated inside the block; NULL for a local publish. An mqtt
	 * action uses it with origin to never send a message back to the
	 * broker it was received from.
	 */
	char		*source;
	char		*origin;	/* that source's "host:port" ("[v6]:port"),
					 * or NULL; see msg_from_broker() */
};

/*
 * Returns a new message with one reference, copying topic, client id,
 * username (may be NULL) and payload into one block; NULL on ENOMEM.
 */
struct msg	*msg_new(const char *topic, size_t topic_len,
		    const char *client_id, size_t client_id_len,
		    const char *username, size_t username_len,
		    const void *payload, size_t payload_len,
		    uint8_t qos, uint8_t retain, long long received_ms);

/*
 * As msg_new(), with the forwardable properties of a decoded 5.0 PUBLISH
 * (or of a block read back from the store) copied into the block; pp may
 * be NULL (none). The Message Expiry Interval, when present, sets
 * expire_ms from received_ms. Returns a new message, NULL on ENOMEM or
 * a field too long.
 */
struct msg	*msg_new5(const char *topic, size_t topic_len,
		    const char *client_id, size_t client_id_len,
		    const char *username, size_t username_len,
		    const void *payload, size_t payload_len,
		    uint8_t qos, uint8_t retain, long long received_ms,
		    const struct props *pp);

/*
 * Decodes m's property block into *out (strings borrow from m); false
 * when m has none. The Message Expiry Interval is the one published.
 */
bool		 msg_props(const struct msg *m, struct props *out);

/*
 * True when m has a Message Expiry Interval that ended by now_ms (wall
 * clock): such a message is no longer delivered (3.3.2.3.3).
 */
bool		 msg_expired(const struct msg *m, long long now_ms);

/*
 * Seconds left of m's Message Expiry Interval at now_ms, rounded up (the
 * value sent on, 3.3.2.3.3); 0 once it has passed.
 */
uint32_t	 msg_expiry_left(const struct msg *m, long long now_ms);

/*
 * Returns a new message received from a source (no username) carrying the
 * source's name and "host:port" (both NUL-terminated, borrowed), in one
 * block like msg_new(); NULL on ENOMEM or a field too long.
 */
struct msg	*msg_new_source(const char *topic, size_t topic_len,
		    const char *client_id, size_t client_id_len,
		    const void *payload, size_t payload_len, uint8_t qos,
		    uint8_t retain, long long received_ms, const char *source,
		    const char *origin);

/*
 * True when m came from a source on the broker at host:port (host as
 * written in a config, IPv6 without brackets): an upstream action calls it
 * to never send a message back to the broker it was received from.
 */
bool		 msg_from_broker(const struct msg *m, const char *host,
		    int port);

/*
 * Sets m's received_ms to now_ms, moving its expiry deadline with it: a
 * will is stamped when it is published, not at CONNECT. Only while m has
 * a single owner.
 */
void		 msg_restamp(struct msg *m, long long now_ms);

/* Takes another reference; returns m. */
struct msg	*msg_ref(struct msg *m);

/* Drops the reference held in *mp and sets *mp to NULL; accepts NULL. */
void		 msg_unref(struct msg **mp);

#endif
