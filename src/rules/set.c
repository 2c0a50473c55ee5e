/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rule sets as a whole: reading a rules file or JSON text, the top-level
 * keys ("rules", "unmatched"), the built-in default set and the reference
 * count. One rule's keys are load.c's concern.
 *
 * DESIGN
 *
 * A rules file is {"unmatched": "drop" | "messages", "rules": [...]} or a
 * bare array of rules. "unmatched" says what becomes of a publish that no
 * rule's topic pattern matched: dropped (counted and logged by the broker,
 * the default) or stored in `messages` as the built-in default rule would.
 * A set remembers whether the key was given so that the config's own
 * "unmatched" can fill it in for inline rules (rule_set_default_unmatched)
 * before the set is shared; after that a set never changes.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/subs.h"
#include "jsonfile.h"
#include "mem.h"
#include "rules/rules_int.h"

static const char default_rules[] =
    "{\"rules\": [{\"name\": \"default\", \"topic\": \"#\", \"sqlite\": {"
    "\"table\": \"messages\", \"columns\": {"
    "\"received_ms\": \"{received_ms}\", \"topic\": \"{topic}\", "
    "\"client_id\": \"{client_id}\", \"qos\": \"{qos}\", "
    "\"retain\": \"{retain}\", \"payload\": \"{payload_raw}\"}}}]}";

static void
report_syntax(struct loader *ld, const char *text, size_t len,
    const char *end)
{
	int	 line, col;

	if (jsonfile_position(text, len, end, &line, &col) != 0)
		load_err(ld, "", "JSON syntax error");
	else
		load_err(ld, "", "JSON syntax error at line %d, column %d",
		    line, col);
}

/* The top-level "unmatched" key, if given. */
static void
load_unmatched(struct loader *ld, const cJSON *root)
{
	const cJSON	*it = load_item(root, "unmatched");
	int		 mode;

	if (it == NULL)
		return;
	if (cJSON_IsString(it) &&
	    (mode = rules_unmatched_parse(it->valuestring)) >= 0) {
		ld->set->unmatched = mode;
		return;
	}
	load_err(ld, "unmatched", "expected \"drop\" or \"messages\"");
}

static struct rule_set *
load_text(struct loader *ld, const char *text, size_t len, int *rc)
{
	static const char *const keys[] = { "unmatched", "rules", NULL };
	const cJSON	*arr = NULL, *it;
	const char	*end = NULL;
	cJSON		*root;
	char		 p[PATH_LEN];
	size_t		 n, i = 0;

	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL)
		report_syntax(ld, text, len, end);
	else if (cJSON_IsArray(root))
		arr = root;
	else if (!cJSON_IsObject(root))
		load_err(ld, "", "expected {\"rules\": [...]} or an array of "
		    "rules, got %s", jsonfile_type_name(root));
	else if (load_keys(ld, root, "", keys)) {
		load_unmatched(ld, root);
		if ((arr = load_item(root, "rules")) == NULL)
			load_err(ld, "", "missing \"rules\"");
		else if (!cJSON_IsArray(arr)) {
			load_err(ld, "rules", "expected an array, got %s",
			    jsonfile_type_name(arr));
			arr = NULL;
		}
	}
	n = arr != NULL ? (size_t)cJSON_GetArraySize(arr) : 0;
	if (n > RULES_MAX_RULES) {
		load_err(ld, "rules", "more than %d rules", RULES_MAX_RULES);
		n = 0;
		arr = NULL;
	}
	if (n > 0 && (ld->set->rules = gw_calloc(n,
	    sizeof *ld->set->rules)) == NULL)
		load_oom(ld, "rules");
	else if (arr != NULL) {
		cJSON_ArrayForEach(it, arr) {
			load_pathf(p, "rules[%zu]", i);
			load_rule(ld, it, p, i);
			i++;
			if (ld->oom)
				break;
		}
	}
	cJSON_Delete(root);
	if (ld->nerrors == 0 && match_build(ld->set) != 0)
		load_oom(ld, "");
	if (ld->nerrors == 0)
		return ld->set;
	if (rc != NULL)
		*rc = ld->oom ? GW_ENOMEM : GW_ECONFIG;
	load_set_free(ld->set);
	return NULL;
}

static bool
loader_init(struct loader *ld, const char *origin, rules_report_fn report,
    void *ctx)
{
	memset(ld, 0, sizeof *ld);
	ld->file = origin;
	ld->report = report;
	ld->ctx = ctx;
	if ((ld->set = gw_calloc(1, sizeof *ld->set)) == NULL ||
	    (ld->set->origin = gw_strdup(origin)) == NULL) {
		gw_free(ld->set);
		load_oom(ld, "");
		return false;
	}
	atomic_init(&ld->set->refs, 1);
	return true;
}

/* See rules.h. */
struct rule_set *
rules_load_json(const char *text, size_t len, const char *origin,
    const char *base_dir, rules_report_fn report, void *ctx, int *rc)
{
	struct loader	ld;

	if (rc != NULL)
		*rc = 0;
	if (!loader_init(&ld, origin, report, ctx)) {
		if (rc != NULL)
			*rc = GW_ENOMEM;
		return NULL;
	}
	ld.dir = base_dir;
	return load_text(&ld, text, len, rc);
}

/* See rules.h. */
struct rule_set *
rules_load_file(const char *path, rules_report_fn report, void *ctx, int *rc)
{
	struct loader	 ld;
	struct rule_set	*set = NULL;
	const char	*slash;
	char		*text, *dir = NULL, err[256];
	size_t		 n;
	int		 oom;

	if (rc != NULL)
		*rc = GW_ECONFIG;
	if (!loader_init(&ld, path, report, ctx)) {
		if (rc != NULL)
			*rc = GW_ENOMEM;
		return NULL;
	}
	text = jsonfile_read(path, RULES_MAX_FILE, &n, err, sizeof err, &oom);
	if (text == NULL && oom)
		load_oom(&ld, "");
	else if (text == NULL)
		load_err(&ld, "", "%s", err);
	else if ((slash = strrchr(path, '/')) != NULL &&
	    (dir = gw_strndup(path, (size_t)(slash - path))) == NULL)
		load_oom(&ld, "");
	else {
		ld.dir = dir != NULL ? dir : NULL;
		if (dir != NULL && dir[0] == '\0')
			ld.dir = "/";
		if (rc != NULL)
			*rc = 0;
		set = load_text(&ld, text, n, rc);
		ld.set = NULL;
	}
	if (ld.set != NULL) {
		if (rc != NULL)
			*rc = ld.oom ? GW_ENOMEM : GW_ECONFIG;
		load_set_free(ld.set);
	}
	gw_free(text);
	gw_free(dir);
	return set;
}

/* See rules.h. */
struct rule_set *
rules_default(void)
{
	return rules_load_json(default_rules, sizeof default_rules - 1,
	    "<default>", NULL, NULL, NULL, NULL);
}

/* See rules.h. */
struct rule_set *
rule_set_ref(struct rule_set *set)
{
	atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
	return set;
}

/* See rules.h. */
void
rule_set_unref(struct rule_set **setp)
{
	struct rule_set	*set;

	if (setp == NULL || (set = *setp) == NULL)
		return;
	*setp = NULL;
	if (atomic_fetch_sub_explicit(&set->refs, 1,
	    memory_order_acq_rel) == 1)
		load_set_free(set);
}

/* See rules.h. */
int
rules_unmatched_parse(const char *s)
{
	if (strcmp(s, "drop") == 0)
		return RULES_UNMATCHED_DROP;
	if (strcmp(s, "messages") == 0)
		return RULES_UNMATCHED_MESSAGES;
	return -1;
}

/* See rules.h. */
enum rules_unmatched
rule_set_unmatched(const struct rule_set *set)
{
	if (set == NULL || set->unmatched == RULES_UNMATCHED_UNSET)
		return RULES_UNMATCHED_DROP;
	return set->unmatched;
}

/* See rules.h. */
void
rule_set_default_unmatched(struct rule_set *set, enum rules_unmatched mode)
{
	if (set != NULL && set->unmatched == RULES_UNMATCHED_UNSET)
		set->unmatched = mode;
}
