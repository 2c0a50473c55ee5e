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
 *
 * Also here: which prepared sqlite sink serves a rule set (the recent
 * sets' sinks are kept; a reload prepares the new set's, and rows the
 * older sets buffered go in first), and the `rejected` insert for a
 * publish whose rules cannot be applied.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "broker/msg.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "rules/rules.h"
#include "sink/sqlite.h"
#include "store/actions.h"
#include "store/forward.h"
#include "store/rollup.h"
#include "store/store.h"
#include "store/store_int.h"

static int	store_sink(struct store *, struct rule_set *,
		    struct sink_sqlite **, uint64_t *, struct gw_error *);
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

/*
 * The prepared sink of set in *kp: found among the recent ones, or
 * prepared now (evicting the oldest) after the rows buffered by the others
 * went in (their rows come first; adds them to *rows, NULL ok). 0,
 * GW_ECONFIG when preparing fails (err filled, *kp NULL) or GW_EIO.
 */
static int
store_sink(struct store *s, struct rule_set *set, struct sink_sqlite **kp,
    uint64_t *rows, struct gw_error *err)
{
	struct sink_sqlite *k;
	size_t i;

	*kp = NULL;
	for (i = s->nsinks; i > 0; i--)
		if (sink_sqlite_set(s->sinks[i - 1]) == set) {
			*kp = s->sinks[i - 1];
			/* Across a reload, the older set's rows go first. */
			return sink_sqlite_flush_all(s->sinks, s->nsinks, *kp,
			    rows);
		}
	if (sink_sqlite_flush_all(s->sinks, s->nsinks, NULL, rows) != 0)
		return GW_EIO;
	if ((k = sink_sqlite_prepare(s->db, set, err)) == NULL)
		return GW_ECONFIG;
	if (rollup_prepare(s->db, set, err) != 0) {
		sink_sqlite_free(k);
		return GW_ECONFIG;
	}
	if (s->nsinks == STORE_MAX_SINKS) {
		sink_sqlite_free(s->sinks[0]);
		memmove(s->sinks, s->sinks + 1,
		    (STORE_MAX_SINKS - 1) * sizeof s->sinks[0]);
		s->nsinks--;
	}
	s->sinks[s->nsinks++] = k;
	*kp = k;
	return 0;
}

int
store_prepare_rules(struct store *s, struct rule_set *set,
    struct gw_error *err)
{
	struct sink_sqlite *k;

	return store_sink(s, set, &k, NULL, err) == 0 ? 0 : GW_ECONFIG;
}

int
store_rules_result(struct store *s, uint64_t seq)
{
	if (atomic_load(&s->rules_seq) != seq)
		return -1;
	return atomic_load(&s->rules_ok);
}

/* STORE_OP_RULES: prepares a reloaded set; the outcome is recorded. */
int
store_write_rules_op(struct store *s, const struct store_item *it,
    uint64_t *rows)
{
	struct sink_sqlite *k;
	struct gw_error err;
	int ok, rc = GW_ECONFIG;

	memset(&err, 0, sizeof err);
	if (it->rules != NULL &&
	    (rc = store_sink(s, it->rules, &k, rows, &err)) == GW_EIO)
		return rc;
	ok = rc == 0;
	if (!ok)
		log_error("rules reload: %s%s%s", err.path,
		    err.path[0] != '\0' ? ": " : "", err.msg);
	atomic_store(&s->rules_ok, ok);
	atomic_store(&s->rules_seq, it->seq);
	return 0;
}

/*
 * Keeps m in `rejected` with reason (the rule set cannot be used, a
 * foreach array cannot be iterated). 0 or GW_EIO.
 */
int
store_reject(struct store *s, const struct msg *m, const char *rule,
    const char *reason)
{
	sqlite3_stmt *st = s->st[ST_REJECTED_INSERT];
	int bad;

	bad = sqlite3_bind_int64(st, 1, m->received_ms);
	bad |= sqlite3_bind_int64(st, 2, clock_wall_ms());
	bad |= sqlite3_bind_text(st, 3, rule, -1, SQLITE_TRANSIENT);
	bad |= sqlite3_bind_text(st, 4, m->topic, m->topic_len,
	    SQLITE_STATIC);
	bad |= sqlite3_bind_text(st, 5, m->client_id, m->client_id_len,
	    SQLITE_STATIC);
	bad |= sqlite3_bind_int(st, 6, m->qos);
	bad |= sqlite3_bind_text(st, 7, reason, -1, SQLITE_TRANSIENT);
	bad |= sqlite3_bind_blob(st, 8, m->payload, (int)m->payload_len,
	    SQLITE_STATIC);
	return bad != SQLITE_OK ? GW_EIO : store_step(s, ST_REJECTED_INSERT);
}

/*
 * Runs the rules that matched a publish: each rule's filter once, then
 * its actions (actions.c: the table row, the webhook, the bridge, once or
 * per foreach element). The payload is parsed at most once for all of
 * them. Adds the rows written to *rows.
 */
int
store_write_rules(struct store *s, const struct store_item *it,
    uint64_t *rows)
{
	const uint32_t *ids = store_item_rule_ids(it);
	const struct rule *r;
	struct sink_sqlite *k;
	struct rule_payload pc;
	struct gw_error err;
	uint32_t i;
	int rc = 0, f;

	memset(&err, 0, sizeof err);
	if (store_sink(s, it->rules, &k, rows, &err) == GW_EIO)
		return GW_EIO;
	rule_payload_init(&pc, it->msg);
	for (i = 0; i < it->nrules && rc == 0; i++) {
		r = rule_set_rule(it->rules, ids[i]);
		if ((f = rule_filter(r, it->msg, &pc)) < 0) {
			rc = f;
			break;
		}
		if (f == 0)
			continue;
		rc = actions_run(s, k, r, ids[i], it->msg, &pc, err.msg);
	}
	rule_payload_clear(&pc);
	return rc;
}
