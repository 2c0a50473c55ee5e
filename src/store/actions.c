/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The actions of a matched rule, run by store_write_rules() for each rule
 * that fired: sqlite, then webhook, then mqtt, as the rule orders them.
 *
 * An action with a "foreach" runs once per element of its array: the
 * rules layer iterates (rule_items_begin/next/end keep the current
 * element in the payload cache, where {item...} reads it) and the loop
 * here calls the same single-row functions the plain action uses, so a
 * sink that buffers rows sees nothing new. Each element may be filtered
 * by a where that tests {item...}. A row the database refuses goes to
 * `rejected` alone (the sink names the element in the reason); the other
 * elements are stored. An array that cannot be iterated (not an array, or
 * more elements than max_items) keeps the whole publish in `rejected`
 * with the reason, once per action, and produces nothing else for that
 * action: the data is kept, never half stored. All of it happens in the
 * batch transaction of the publish.
 */
#include <stdbool.h>
#include <stdint.h>

#include "broker/msg.h"
#include "err.h"
#include "log.h"
#include "rules/rules.h"
#include "sink/sqlite.h"
#include "store/actions.h"
#include "store/forward.h"
#include "store/store.h"
#include "store/store_int.h"

static int	action_one(struct store *, struct sink_sqlite *,
		    const struct rule *, uint32_t, enum rule_action,
		    const struct msg *, struct rule_payload *);
static int	action_each(struct store *, struct sink_sqlite *,
		    const struct rule *, uint32_t, enum rule_action,
		    const struct msg *, struct rule_payload *);

/* Store thread only: foreach arrays that could not be iterated. */
static struct log_limit foreach_log;

/* Runs action a once for the current element (or the publish). */
static int
action_one(struct store *s, struct sink_sqlite *k, const struct rule *r,
    uint32_t id, enum rule_action a, const struct msg *m,
    struct rule_payload *pc)
{
	int rc;

	switch (a) {
	case RULE_ASQLITE:
		/* Rows are counted when inserted (sink_sqlite_flush). */
		if ((rc = sink_sqlite_write(k, id, m, pc)) > 0)
			rc = 0;
		return rc;
	case RULE_AWEBHOOK:
		return forward_webhook(s->fw, r, m, pc);
	default:
		return forward_mqtt(s->fw, r, m, pc);
	}
}

/* Runs action a once per element of its foreach array. */
static int
action_each(struct store *s, struct sink_sqlite *k, const struct rule *r,
    uint32_t id, enum rule_action a, const struct msg *m,
    struct rule_payload *pc)
{
	static const char *const names[] = { "sqlite", "webhook", "mqtt" };
	struct rule_items it;
	char why[256];
	int rc = 0, n;

	n = rule_items_begin(r, a, pc, &it, why, sizeof why);
	if (n == GW_EMALFORMED || n == GW_ETOOBIG) {
		log_limited(&foreach_log, 5, 60000, LOG_LVL_WARN,
		    "rule %s: %s action for %s kept in rejected: %s",
		    rule_name(r), names[a], m->topic, why);
		rule_count(r, RULE_CREJECTED, 1);
		return store_reject(s, m, rule_name(r), why);
	}
	if (n == GW_ENOTFOUND)
		return 0;
	if (n < 0)
		return n;
	while (rc == 0 && rule_items_next(&it, pc)) {
		if ((rc = rule_item_filter(r, m, pc)) == 1)
			rc = action_one(s, k, r, id, a, m, pc);
		else if (rc == 0)
			continue;
	}
	rule_items_end(&it, pc);
	return rc;
}

/* See actions.h. */
int
actions_run(struct store *s, struct sink_sqlite *k, const struct rule *r,
    uint32_t id, const struct msg *m, struct rule_payload *pc,
    const char *sink_err)
{
	enum rule_action a;
	bool present;
	int rc = 0;

	for (a = RULE_ASQLITE; a < RULE_NACTIONS && rc == 0; a++) {
		present = a == RULE_ASQLITE ? rule_sqlite(r) != NULL :
		    a == RULE_AWEBHOOK ? rule_webhook(r) != NULL :
		    rule_mqtt(r) != NULL;
		if (!present)
			continue;
		if (a == RULE_ASQLITE && k == NULL)
			rc = store_reject(s, m, rule_name(r), sink_err);
		else if (rule_has_foreach(r, a))
			rc = action_each(s, k, r, id, a, m, pc);
		else
			rc = action_one(s, k, r, id, a, m, pc);
	}
	return rc;
}
