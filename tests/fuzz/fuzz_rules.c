/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the rules loader (src/rules/load.c, action.c and
 * the compilers it calls). The input is a rules file's text, loaded with
 * rules_load_json() relative to a temporary folder (the loader only
 * resolves file names there; it opens nothing). ${FUZZ_A} is set.
 *
 * Invariants: a load either returns a set and reports nothing, or returns
 * NULL with GW_ECONFIG and at least one report naming the origin and a
 * reason; rule names are unique; and every loaded rule is then exercised as
 * the store thread would: a topic built from the rule's own pattern must
 * match that rule, and the filter, the sqlite values, the webhook request
 * and the bridge topic are evaluated for a message on that topic (JSON
 * payload) without error other than a bridge topic refused as invalid.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "mem.h"
#include "rules/rules.h"

#include "fuzz_tmpdir.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static char	 tmpdir[] = "/tmp/mqlite-fuzz-rules-XXXXXX";
static int	 nreports;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("FUZZ_A", "alpha", 1);
	fuzz_tmpdir_make(tmpdir);
	return 0;
}

static void
report(const char *file, const struct gw_error *e, void *ctx)
{
	(void)ctx;
	CHECK(file != NULL && strcmp(file, "rules.json") == 0);
	CHECK(e->msg[0] != '\0');
	nreports++;
}

/* A topic matching filter f ('+' -> "x", '#' -> "x/y"); new string. */
static char *
topic_for(const char *f)
{
	char	*t, *o;

	if ((t = malloc(strlen(f) * 3 + 2)) == NULL)
		return NULL;
	for (o = t; *f != '\0'; f++) {
		if (*f == '+')
			*o++ = 'x';
		else if (*f == '#') {
			memcpy(o, "x/y", 3);
			o += 3;
		} else
			*o++ = *f;
	}
	*o = '\0';
	return t;
}

static void
exercise(const struct rule_set *set, size_t id, uint32_t *ids, size_t cap)
{
	static const char payload[] = "{\"v\": 21.5, \"s\": \"x\", "
	    "\"a\": [1, {\"b\": true}]}";
	const struct rule	*r = rule_set_rule(set, id);
	const struct rule_sqlite *sq;
	struct rule_value	*vals;
	struct rule_payload	 pc;
	struct rule_rendered	 topic;
	struct rule_http	 http;
	struct msg		*m;
	char			*t;
	size_t			 n, i, tl;
	bool			 found = false;
	int			 rc;

	CHECK(rule_id(r) == id && rule_name(r) != NULL);
	for (i = 0; i < id; i++)
		CHECK(strcmp(rule_name(rule_set_rule(set, i)),
		    rule_name(r)) != 0);
	if ((t = topic_for(rule_topic(r))) == NULL)
		return;
	tl = strlen(t);
	/* A '$' pattern needs its own first level: still a match. */
	if (tl > 0 && tl <= 65535) {
		n = rules_match(set, t, tl, ids, cap);
		CHECK(n <= cap);
		for (i = 0; i < n; i++)
			if (ids[i] == id)
				found = true;
		CHECK(found);
	}
	m = msg_new(t, tl > 65535 ? 65535 : tl, "cid", 3, "user", 4,
	    payload, sizeof payload - 1, 1, 0, 1767225600000LL);
	free(t);
	if (m == NULL)
		return;
	rule_payload_init(&pc, m);
	rc = rule_filter(r, m, &pc);
	CHECK(rc == 0 || rc == 1);
	if ((sq = rule_sqlite(r)) != NULL) {
		CHECK(sq->ncols >= 1);
		if ((vals = gw_calloc(sq->ncols, sizeof *vals)) != NULL) {
			CHECK(rule_sqlite_values(r, m, &pc, vals) == 0);
			for (i = 0; i < sq->ncols; i++) {
				CHECK(rule_column_decl_type(r, i) != NULL);
				rule_value_clear(&vals[i]);
			}
			gw_free(vals);
		}
	}
	if (rule_webhook(r) != NULL) {
		memset(&http, 0, sizeof http);
		CHECK(rule_render_webhook(r, m, &pc, &http) == 0);
		CHECK(http.url.text != NULL && http.method != NULL);
		rule_http_free(&http);
	}
	if (rule_mqtt(r) != NULL) {
		memset(&topic, 0, sizeof topic);
		rc = rule_render_mqtt_topic(r, m, &pc, &topic);
		CHECK(rc == 0 || rc == GW_EMALFORMED);
		gw_free(topic.text);
	}
	rule_payload_clear(&pc);
	msg_unref(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rule_set	*set;
	uint32_t	*ids;
	size_t		 i, n;
	int		 rc = 0;

	nreports = 0;
	set = rules_load_json((const char *)data, size, "rules.json", tmpdir,
	    report, NULL, &rc);
	if (set == NULL) {
		CHECK(rc == GW_ECONFIG || rc == GW_ENOMEM);
		CHECK(rc != GW_ECONFIG || nreports > 0);
		return 0;
	}
	CHECK(nreports == 0);
	n = rule_set_count(set);
	CHECK(n <= RULES_MAX_RULES);
	if ((ids = calloc(n + 1, sizeof *ids)) != NULL) {
		for (i = 0; i < n && i < 64; i++)
			exercise(set, i, ids, n + 1);
		free(ids);
	}
	rule_set_unref(&set);
	return 0;
}
