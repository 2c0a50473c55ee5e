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
 */
#include <string.h>

#include "broker/alias.h"
#include "err.h"
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
