/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One row per array element: an action's "foreach" names an array in the
 * payload ("{payload.readings}", or "{payload}" for a payload that is an
 * array), and the action runs once per element, with {item...} reading
 * the element and {item_index} its position from 0. The placeholders of
 * the publish itself stay available.
 *
 * Nothing is copied to iterate: the payload is parsed once into the tape
 * of extract.c, the array's first element is a node of that tape and the
 * next one is that node's "next", so the loop is a walk along the tape.
 * The current element lives in struct rule_payload (item, item_index),
 * which is what the templates read; rule_items_end() takes it away again
 * so the other actions of the rule see no element.
 *
 * At load, {item...} compiles only inside an action that has a foreach:
 * struct rule_caps carries an "items" flag the loader sets while it reads
 * such an action, and the template compiler refuses {item...} otherwise.
 * A where may test {item...} when every action of its rule has a foreach;
 * it is then evaluated per element (rule_item_filter) instead of once per
 * publish (rule_filter lets such a publish through).
 *
 * The loop itself runs on the store thread (src/store/actions.c), inside
 * the transaction of the publish, so a publish's rows are committed
 * together or not at all.
 */
#include <stdio.h>
#include <string.h>

#include "rules/rules_int.h"

/* True when each action object of rule j has a "foreach" key. */
bool
foreach_all(const cJSON *j)
{
	static const char *const acts[] = { "sqlite", "webhook", "mqtt" };
	const cJSON	*a;
	size_t		 i, n = 0;

	for (i = 0; i < sizeof acts / sizeof acts[0]; i++) {
		if ((a = load_item(j, acts[i])) == NULL)
			continue;
		if (!cJSON_IsObject(a) || load_item(a, "foreach") == NULL)
			return false;
		n++;
	}
	return n > 0;
}

/* True when t reads {item...} or {item_index}. */
bool
foreach_tmpl_item(const struct rule_tmpl *t)
{
	size_t	i;

	for (i = 0; t != NULL && i < t->nsegs; i++) {
		if (t->segs[i].kind == SEG_PH &&
		    (t->segs[i].ph.kind == PH_ITEM ||
		    t->segs[i].ph.kind == PH_ITEM_INDEX))
			return true;
	}
	return false;
}

/* True when a template of where tree w reads the element. */
bool
foreach_where_item(const struct rule_where *w)
{
	size_t	i;

	if (w == NULL)
		return false;
	if (foreach_tmpl_item(w->value))
		return true;
	for (i = 0; i < w->nkids; i++) {
		if (foreach_where_item(w->kids[i]))
			return true;
	}
	return false;
}

/*
 * Reads "foreach" and "max_items" of action object j (action is enum
 * rule_action) into r, and allows {item...} in the templates the caller
 * compiles next (r->caps.items; the caller clears it after the action).
 */
void
foreach_load(struct loader *ld, struct rule *r, int action, const cJSON *j,
    const char *path)
{
	struct rule_foreach	*fe;
	struct rule_tmpl	*t;
	const cJSON		*it;
	char			 p[PATH_LEN];
	size_t			 i;
	unsigned		 max = RULES_MAX_ITEMS_DEFAULT;
	uint8_t			 kind;

	if (!cJSON_IsObject(j))
		return;
	if ((it = load_item(j, "foreach")) == NULL) {
		if (load_item(j, "max_items") != NULL) {
			load_path(p, path, "max_items");
			load_err(ld, p, "max_items needs \"foreach\"");
		}
		return;
	}
	load_path(p, path, "foreach");
	for (i = 0; i < r->caps.n; i++) {
		if (strcmp(r->caps.names[i], "item") == 0 ||
		    strcmp(r->caps.names[i], "item_index") == 0)
			load_err(ld, p, "the topic capture {%s} hides the "
			    "element; rename the capture",
			    r->caps.names[i]);
	}
	t = load_tmpl(ld, it, p, &r->caps);
	r->caps.items = true;	/* also after a bad foreach: one error */
	load_uint(ld, j, "max_items", path, 1, RULES_MAX_ITEMS_LIMIT, &max);
	if (t == NULL)
		return;
	kind = t->nsegs == 1 && t->segs[0].kind == SEG_PH ?
	    t->segs[0].ph.kind : PH_TOPIC;
	if (kind != PH_PAYLOAD && kind != PH_PAYLOAD_PATH) {
		load_err(ld, p, "expected one payload placeholder naming an "
		    "array, such as \"{payload.readings}\" or \"{payload}\"");
		tmpl_free(t);
		return;
	}
	if ((fe = gw_calloc(1, sizeof *fe)) == NULL) {
		tmpl_free(t);
		load_oom(ld, p);
		return;
	}
	fe->path = t;
	fe->max_items = max;
	r->foreach[action] = fe;
}

/* Frees r's foreach settings. */
void
foreach_free(struct rule *r)
{
	size_t	a;

	for (a = 0; a < RULE_NACTIONS; a++) {
		if (r->foreach[a] != NULL)
			tmpl_free(r->foreach[a]->path);
		gw_free(r->foreach[a]);
		r->foreach[a] = NULL;
	}
}

/* See rules.h. */
bool
rule_has_foreach(const struct rule *r, enum rule_action a)
{
	return (unsigned)a < RULE_NACTIONS && r->foreach[a] != NULL;
}

/* See rules.h. Store thread. */
int
rule_items_begin(const struct rule *r, enum rule_action a,
    struct rule_payload *pc, struct rule_items *it, char *why,
    size_t whylen)
{
	const struct rule_foreach	*fe;
	const char			*what = "";
	uint32_t			 first, count;
	int				 rc;

	memset(it, 0, sizeof *it);
	pc->item = -1;
	if (!rule_has_foreach(r, a))
		return GW_ENOTFOUND;
	fe = r->foreach[a];
	rc = extract_array(pc, &fe->path->segs[0].ph, &first, &count,
	    &what);
	if (rc == GW_EMALFORMED)
		snprintf(why, whylen, "foreach %s: not an array (%s)",
		    fe->path->text, what);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		rule_count(r, RULE_CITEMS_MISSING, 1);
		return GW_ENOTFOUND;
	}
	if (count > fe->max_items) {
		rule_count(r, RULE_CITEMS_OVER, 1);
		snprintf(why, whylen, "foreach %s: %u elements, more than "
		    "max_items %u", fe->path->text, count, fe->max_items);
		return GW_ETOOBIG;
	}
	it->node = first;
	it->left = count;
	return (int)count;
}

/* See rules.h. */
bool
rule_items_next(struct rule_items *it, struct rule_payload *pc)
{
	if (it->left == 0) {
		pc->item = -1;
		return false;
	}
	pc->item = it->node;
	pc->item_index = it->index;
	it->node = extract_next(pc, it->node);
	it->left--;
	it->index++;
	return true;
}

/* See rules.h. */
void
rule_items_end(struct rule_items *it, struct rule_payload *pc)
{
	it->left = 0;
	pc->item = -1;
	pc->item_index = 0;
}

/* See rules.h. */
int64_t
rule_payload_item_index(const struct rule_payload *pc)
{
	return pc->item >= 0 ? (int64_t)pc->item_index : -1;
}

/*
 * Adds "item" (the element as JSON) and "item_index" to a default
 * webhook envelope o when there is a current element. 0 or GW_ENOMEM.
 */
int
foreach_envelope(cJSON *o, struct rule_payload *pc)
{
	struct buf	 b = BUF_INIT;
	int		 rc;

	if (pc->item < 0)
		return 0;
	if ((rc = extract_item_json(pc, &b)) == 0 &&
	    (rc = buf_append(&b, "", 1)) == 0 &&
	    (cJSON_AddRawToObject(o, "item", (char *)buf_head(&b)) == NULL ||
	    cJSON_AddNumberToObject(o, "item_index", pc->item_index) == NULL))
		rc = GW_ENOMEM;
	buf_free(&b);
	return rc;
}

/*
 * The default mqtt payload of a foreach action: the element as compact
 * JSON, into out (a new string). 0 or GW_ENOMEM.
 */
int
foreach_render_item(struct rule_payload *pc, struct rule_rendered *out)
{
	struct buf	b = BUF_INIT;
	int		rc;

	memset(out, 0, sizeof *out);
	if ((rc = extract_item_json(pc, &b)) != 0) {
		buf_free(&b);
		return rc;
	}
	return buf_take_string(&b, &out->text, &out->len);
}
