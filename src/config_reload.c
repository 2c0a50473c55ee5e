/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reloading the config file on SIGHUP: read it again into a fresh
 * configuration (with the command line's overrides applied as at start),
 * then move over the settings that can change while running and report
 * every other changed key as needing a restart.
 *
 * DESIGN
 *
 * The option table (config_sections.c) drives the comparison, so a new
 * key is covered without a line here; what can change live is this
 * file's short list: the auth, log and limits sections (but for the two
 * limits that size per-connection structures when a client connects),
 * "unmatched" and the rules. Everything else (listeners, the database,
 * the outbox bounds, metrics, sources) is bound into threads and sockets
 * at start: a changed value is reported by key and the running one is
 * kept. The caller validates the files the new configuration names
 * (passwords, ACL, rules) before calling config_reload_apply(), so a
 * broken file changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "mem.h"

/* Keys (or "section." prefixes) that may change while running. */
static const char *const live_keys[] = {
	"auth.", "log.", "limits.", "unmatched", NULL
};

/* Limits bound into a connection's structures when it connects. */
static const char *const restart_limits[] = {
	"limits.max_inflight", "limits.output_bytes", NULL
};

static int
in_list(const char *const *list, const char *key)
{
	size_t	n;

	for (; *list != NULL; list++) {
		n = strlen(*list);
		if ((*list)[n - 1] == '.' ? strncmp(key, *list, n) == 0 :
		    strcmp(key, *list) == 0)
			return 1;
	}
	return 0;
}

static int
is_live(const char *key)
{
	return in_list(live_keys, key) && !in_list(restart_limits, key);
}

static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
is_string(const struct config_option *o)
{
	return o->type == OPT_STRING || o->type == OPT_PATH;
}

/* Whether option o differs between the structs at a and b. */
static int
differs(const struct config_option *o, const void *a, const void *b)
{
	const char	*pa = (const char *)a + o->offset;
	const char	*pb = (const char *)b + o->offset;

	if (is_string(o))
		return !same_str(*(char *const *)(const void *)pa,
		    *(char *const *)(const void *)pb);
	return memcmp(pa, pb, o->size) != 0;
}

/* Moves option o's value from next into cur (strings: swapped). */
static void
take(const struct config_option *o, void *cur, void *next)
{
	char	*pc = (char *)cur + o->offset, *pn = (char *)next + o->offset;
	char	*tmp;

	if (is_string(o)) {
		tmp = *(char **)(void *)pc;
		*(char **)(void *)pc = *(char **)(void *)pn;
		*(char **)(void *)pn = tmp;
	} else
		memcpy(pc, pn, o->size);
}

static int
listeners_differ(const struct gw_config *a, const struct gw_config *b,
    char *key, size_t len)
{
	size_t	i, j;

	if (a->nlisteners != b->nlisteners) {
		snprintf(key, len, "listeners");
		return 1;
	}
	for (i = 0; i < a->nlisteners; i++) {
		if (a->listeners[i].tls != b->listeners[i].tls) {
			snprintf(key, len, "listeners[%zu].tls", i);
			return 1;
		}
		for (j = 0; j < config_nlistener; j++) {
			if (differs(&config_listener_options[j],
			    &a->listeners[i], &b->listeners[i])) {
				snprintf(key, len, "listeners[%zu].%s", i,
				    config_listener_options[j].key);
				return 1;
			}
		}
	}
	return 0;
}

/* See config.h. */
int
config_reload_load(const struct gw_config *cur, struct gw_config *next,
    config_report_fn report, void *ctx)
{
	int	rc;

	if ((rc = config_init(next)) != 0)
		return rc;
	next->cli_port = cur->cli_port;
	next->verbose = cur->verbose;
	if ((cur->cli_db_path != NULL &&
	    (next->cli_db_path = gw_strdup(cur->cli_db_path)) == NULL) ||
	    (cur->cli_rules_path != NULL &&
	    (next->cli_rules_path = gw_strdup(cur->cli_rules_path)) == NULL))
		return GW_ENOMEM;
	if ((rc = config_load_file(next, cur->config_path, report, ctx)) != 0)
		return rc;
	config_apply_cli(next);
	return 0;
}

/* See config.h. */
int
config_reload_apply(struct gw_config *cur, struct gw_config *next,
    config_change_fn change, void *ctx)
{
	const struct config_option	*o;
	char				*tmp, key[CONFIG_PATH_MAX];
	size_t				 i;
	int				 changed = 0;

	for (i = 0; i < config_nroot; i++) {
		o = &config_root_options[i];
		if (o->type == OPT_SPECIAL || !differs(o, cur, next))
			continue;
		if (is_live(o->key)) {
			take(o, cur, next);
			changed++;
		}
		change(o->key, is_live(o->key), ctx);
	}
	if (listeners_differ(cur, next, key, sizeof key))
		change(key, 0, ctx);
	if (!same_str(cur->sources_json, next->sources_json))
		change("sources", 0, ctx);
	if (cur->metrics_enabled != next->metrics_enabled)
		change("metrics", 0, ctx);
	if (!same_str(cur->rules_path, next->rules_path) ||
	    !same_str(cur->rules_inline, next->rules_inline)) {
		tmp = cur->rules_path;
		cur->rules_path = next->rules_path;
		next->rules_path = tmp;
		tmp = cur->rules_inline;
		cur->rules_inline = next->rules_inline;
		next->rules_inline = tmp;
		change("rules", 1, ctx);
		changed++;
	}
	return changed;
}
