/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic matching for a rule set. Every rule's pattern, with its {name}
 * capture levels turned into '+', goes into one subscription trie
 * (broker/subs.h) whose owners are the rules, so a publish costs one walk
 * over its topic levels whatever the number of rules: 1,000 rules on
 * distinct topics cost about what a few do. The trie already follows the
 * MQTT '$' rule (a pattern starting with '+', '#' or a capture does not
 * match "$SYS/..."), which is the rules engine's rule too.
 *
 * The matches come out in trie order and are sorted back into file order
 * (the ids are usually a handful; insertion sort, qsort past 16). Built
 * once at load; rules_match() allocates nothing and runs on the loop
 * thread.
 *
 * Devices publish on the same few topics again and again, and the walk
 * hashes every level (keyed, so several hundred instructions a level). A
 * direct-mapped cache of MATCH_SLOTS recent topics (up to MATCH_TOPIC
 * bytes) and their ids (up to MATCH_IDS), made with the trie, answers a
 * repeated topic with one cheap hash and a compare. The set is otherwise
 * immutable; the cache is written by rules_match() only, and that runs on
 * the loop thread only.
 *
 * Also here: the read-only accessors of a set and its rules, and the
 * per-rule counters (relaxed atomics: written by the store thread, read by
 * metrics).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/subs.h"
#include "mem.h"
#include "rules/rules_int.h"

#define MATCH_SLOTS	256	/* power of two */
#define MATCH_TOPIC	62	/* longest topic cached */
#define MATCH_IDS	4	/* most ids cached */

struct match_slot {
	uint8_t		 len;			/* topic bytes, 0: empty */
	uint8_t		 n;			/* ids */
	char		 topic[MATCH_TOPIC];
	uint32_t	 ids[MATCH_IDS];
};

struct match_out {
	uint32_t	*ids;
	size_t		 cap;
	size_t		 n;
};

/* Builds set->trie from the compiled rules. 0 or GW_ENOMEM. */
int
match_build(struct rule_set *set)
{
	struct rule	*r;
	size_t		 i;
	int		 rc;

	if ((set->trie = subs_new()) == NULL ||
	    (set->mcache = gw_calloc(MATCH_SLOTS, sizeof *set->mcache)) ==
	    NULL)
		return GW_ENOMEM;
	for (i = 0; i < set->nrules; i++) {
		r = set->rules[i];
		rc = subs_add(set->trie, r->filter, strlen(r->filter), r, 0,
		    NULL);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void
match_cb(void *owner, uint8_t qos, void *ctx)
{
	struct match_out	*o = ctx;
	const struct rule	*r = owner;

	(void)qos;
	if (o->n < o->cap)
		o->ids[o->n] = (uint32_t)r->id;
	o->n++;
}

static int
id_cmp(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The cache slot of topic: FNV-1a, folded. */
static struct match_slot *
match_slot(const struct rule_set *set, const char *topic, size_t len)
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)topic[i]) * 16777619u;
	return &set->mcache[(h ^ (h >> 16)) & (MATCH_SLOTS - 1)];
}

/* See rules.h. Loop thread; no allocation. */
size_t
rules_match(const struct rule_set *set, const char *topic, size_t len,
    uint32_t *ids, size_t cap)
{
	struct match_out	o = { ids, cap, 0 };
	struct match_slot	*c = NULL;
	size_t			i, j, n;
	uint32_t		v;

	if (set == NULL || set->trie == NULL || len == 0)
		return 0;
	if (set->mcache != NULL && len <= MATCH_TOPIC) {
		c = match_slot(set, topic, len);
		if (c->len == len && c->n <= cap &&
		    memcmp(c->topic, topic, len) == 0) {
			if (c->n > 0)
				memcpy(ids, c->ids, c->n * sizeof *ids);
			return c->n;
		}
	}
	subs_match(set->trie, topic, len, match_cb, &o);
	n = o.n < cap ? o.n : cap;
	if (n > 16)
		qsort(ids, n, sizeof *ids, id_cmp);
	else {
		for (i = 1; i < n; i++) {
			v = ids[i];
			for (j = i; j > 0 && ids[j - 1] > v; j--)
				ids[j] = ids[j - 1];
			ids[j] = v;
		}
	}
	if (c != NULL && o.n <= cap && o.n <= MATCH_IDS) {
		memcpy(c->topic, topic, len);
		c->len = (uint8_t)len;
		if (o.n > 0)
			memcpy(c->ids, ids, o.n * sizeof *ids);
		c->n = (uint8_t)o.n;
	}
	return o.n;
}

/*
 * ---- Accessors. Contracts in rules.h; all read-only on an immutable set
 * (any thread), except the counters, which are relaxed atomics. ----
 */

size_t
rule_set_count(const struct rule_set *set)
{
	return set->nrules;
}

const struct rule *
rule_set_rule(const struct rule_set *set, size_t i)
{
	return i < set->nrules ? set->rules[i] : NULL;
}

const char *
rule_set_origin(const struct rule_set *set)
{
	return set->origin;
}

const char *
rule_name(const struct rule *r)
{
	return r->name;
}

size_t
rule_id(const struct rule *r)
{
	return r->id;
}

const char *
rule_topic(const struct rule *r)
{
	return r->topic;
}

size_t
rule_ncaptures(const struct rule *r)
{
	return r->caps.n;
}

const char *
rule_capture_name(const struct rule *r, size_t k)
{
	return k < r->caps.n ? r->caps.names[k] : NULL;
}

bool
rule_has_where(const struct rule *r)
{
	return r->where != NULL;
}

void
rule_count(const struct rule *r, enum rule_counter c, uint64_t n)
{
	struct rule	*w = (struct rule *)r;

	atomic_fetch_add_explicit(&w->counters[c], n, memory_order_relaxed);
}

uint64_t
rule_counter(const struct rule *r, enum rule_counter c)
{
	struct rule	*w = (struct rule *)r;

	return atomic_load_explicit(&w->counters[c], memory_order_relaxed);
}

const struct rule_sqlite *
rule_sqlite(const struct rule *r)
{
	return r->sqlite;
}

const struct rule_webhook *
rule_webhook(const struct rule *r)
{
	return r->webhook;
}

const struct rule_mqtt *
rule_mqtt(const struct rule *r)
{
	return r->mqtt;
}

const char *
rule_column_decl_type(const struct rule *r, size_t i)
{
	if (r->sqlite == NULL || i >= r->sqlite->ncols)
		return NULL;
	return r->sqlite->cols[i].decl;
}

/* See rules.h. Store thread. */
int
rule_sqlite_values(const struct rule *r, const struct msg *m,
    struct rule_payload *pc, struct rule_value *out)
{
	struct rule_ctx	c = { r, m, pc };
	size_t		i;
	int		rc;

	if (r->sqlite == NULL)
		return GW_ENOTFOUND;
	for (i = 0; i < r->sqlite->ncols; i++) {
		out[i].type = RULE_VNULL;
		out[i].owned = 0;
	}
	for (i = 0; i < r->sqlite->ncols; i++) {
		if ((rc = tmpl_eval(r->sqlite->cols[i].tmpl, &c, &out[i])) != 0)
			return rc;
	}
	return 0;
}
