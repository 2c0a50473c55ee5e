/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inbound MQTT 5.0 topic aliases (3.3.2.3.4): per connection, a table of
 * limits.topic_alias_maximum slots mapping an alias (1..maximum) to a
 * topic name. A PUBLISH with a Topic Alias and a topic sets the slot; one
 * with an alias and an empty topic uses it. The table is allocated at the
 * first alias the client sends (most clients never send one) and its slots
 * hold copies of topic names, which the packet size already bounds, so a
 * client can make us hold at most maximum topics of at most
 * max_packet_bytes each. Loop thread only; freed with the connection.
 *
 * Refusals carry the reason code the standard names: an alias of 0 or
 * above the maximum we advertised is Topic Alias invalid (0x94), an alias
 * never set used with an empty topic a Protocol Error (0x82).
 *
 * Outbound aliases, toward a 5.0 client that announced a Topic Alias
 * Maximum: the first topics sent on the connection get aliases 1, 2, ...
 * up to the smaller of its maximum and ours, and keep them for the
 * connection's life (no replacement, so an alias never changes meaning
 * while a PUBLISH using it may be in flight); later topics go out in full.
 * A topic is found by a keyed hash in an open-addressing index of twice
 * the aliases' count (never deleted from, so linear probing stays simple).
 * An alias is recorded only once the PUBLISH that announces it is in the
 * output buffer (alias_out_add()).
 */
#include <string.h>

#include "broker/alias.h"
#include "err.h"
#include "keyhash.h"
#include "mem.h"
#include "mqtt/reason.h"

struct alias_slot {
	char		*topic;		/* owned, or NULL: unset */
	uint16_t	 len;
};

struct alias_table {
	uint16_t		 max;	/* slots */
	struct alias_slot	 slot[];	/* alias n is slot[n - 1] */
};

/*
 * Resolves the alias of a PUBLISH. *topic is the PUBLISH's topic
 * (borrowed); on success it is the topic the message goes to, borrowed
 * from the packet or the table (valid until the next call or
 * alias_free()). Returns 0, GW_EPROTO with *reason set (0x94 or 0x82), or
 * GW_ENOMEM.
 */
int
alias_resolve(struct alias_table **tp, uint16_t max, uint16_t alias,
    struct codec_str *topic, uint8_t *reason)
{
	struct alias_table *t = *tp;
	struct alias_slot *sl;
	char *copy;

	if (alias == 0 || alias > max) {
		*reason = REASON_TOPIC_ALIAS_INVALID;
		return GW_EPROTO;
	}
	if (t != NULL && t->max < alias) {
		/* The maximum cannot change on a live connection. */
		*reason = REASON_TOPIC_ALIAS_INVALID;
		return GW_EPROTO;
	}
	if (t == NULL) {
		if (topic->len == 0) {
			*reason = REASON_PROTOCOL_ERROR;
			return GW_EPROTO;
		}
		t = gw_calloc(1, sizeof *t + (size_t)max * sizeof t->slot[0]);
		if (t == NULL)
			return GW_ENOMEM;
		t->max = max;
		*tp = t;
	}
	sl = &t->slot[alias - 1];
	if (topic->len == 0) {
		if (sl->topic == NULL) {
			*reason = REASON_PROTOCOL_ERROR;
			return GW_EPROTO;
		}
		topic->ptr = sl->topic;
		topic->len = sl->len;
		return 0;
	}
	if (sl->topic == NULL || sl->len != topic->len ||
	    memcmp(sl->topic, topic->ptr, topic->len) != 0) {
		if ((copy = gw_malloc(topic->len)) == NULL)
			return GW_ENOMEM;
		memcpy(copy, topic->ptr, topic->len);
		gw_free(sl->topic);
		sl->topic = copy;
		sl->len = topic->len;
	}
	return 0;
}

/*
 * Frees the table in *tp (NULL is fine) and sets *tp to NULL.
 */
void
alias_free(struct alias_table **tp)
{
	struct alias_table *t = *tp;
	uint16_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->max; i++)
		gw_free(t->slot[i].topic);
	gw_free(t);
	*tp = NULL;
}

struct alias_out {
	uint16_t		 max;	/* aliases it may hold */
	uint16_t		 n;	/* aliases given: 1..n */
	size_t			 mask;	/* index slots - 1 */
	uint16_t		*idx;	/* alias at each slot, 0 empty */
	struct alias_slot	 slot[];	/* alias n is slot[n - 1] */
};

/* The index slot where topic is, or the empty one where it would go. */
static size_t
alias_out_slot(const struct alias_out *t, const char *topic, uint16_t len)
{
	const struct alias_slot *sl;
	size_t i = (size_t)keyhash(topic, len) & t->mask;

	while (t->idx[i] != 0) {
		sl = &t->slot[t->idx[i] - 1];
		if (sl->len == len && memcmp(sl->topic, topic, len) == 0)
			break;
		i = (i + 1) & t->mask;
	}
	return i;
}

/*
 * The alias topic goes out with to a client taking max aliases (the
 * table in *tp is made on first use): sets *known when the client has it
 * already (send an empty topic), else returns the alias a PUBLISH with
 * the full topic would announce, to be recorded with alias_out_add()
 * once sent. 0: send the topic without an alias (none left, max 0 or no
 * memory).
 */
uint16_t
alias_out_find(struct alias_out **tp, uint16_t max, const char *topic,
    uint16_t len, bool *known)
{
	struct alias_out *t = *tp;
	size_t cap = 4, i;

	*known = false;
	if (max == 0 || len == 0)
		return 0;
	if (t == NULL) {
		while (cap < 2 * (size_t)max)
			cap *= 2;
		if ((t = gw_calloc(1, sizeof *t + (size_t)max *
		    sizeof t->slot[0])) == NULL)
			return 0;
		if ((t->idx = gw_calloc(cap, sizeof *t->idx)) == NULL) {
			gw_free(t);
			return 0;
		}
		t->max = max;
		t->mask = cap - 1;
		*tp = t;
	}
	i = alias_out_slot(t, topic, len);
	if (t->idx[i] != 0) {
		*known = true;
		return t->idx[i];
	}
	return t->n < t->max ? (uint16_t)(t->n + 1) : 0;
}

/*
 * Records that alias (from alias_out_find(), not known) now stands for
 * topic on this connection. Returns 0 or GW_ENOMEM (then the client knows
 * an alias we do not use again: harmless).
 */
int
alias_out_add(struct alias_out *t, uint16_t alias, const char *topic,
    uint16_t len)
{
	struct alias_slot *sl;
	size_t i;

	if (t == NULL || alias != t->n + 1 || alias > t->max)
		return GW_EMALFORMED;
	sl = &t->slot[alias - 1];
	if ((sl->topic = gw_malloc(len)) == NULL)
		return GW_ENOMEM;
	memcpy(sl->topic, topic, len);
	sl->len = len;
	i = alias_out_slot(t, topic, len);
	t->idx[i] = alias;
	t->n++;
	return 0;
}

/*
 * Frees the outbound table in *tp (NULL is fine) and sets *tp to NULL.
 */
void
alias_out_free(struct alias_out **tp)
{
	struct alias_out *t = *tp;
	uint16_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		gw_free(t->slot[i].topic);
	gw_free(t->idx);
	gw_free(t);
	*tp = NULL;
}
