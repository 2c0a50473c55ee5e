/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the where-filter (src/rules/where.c). The input up
 * to the first newline is a filter as JSON ({"value","op","to"} or
 * {"all"|"any"|"not": ...}), compiled with two topic captures; the rest is
 * the payload of the message it is evaluated for.
 *
 * Invariants: a filter that does not compile has at least one problem
 * reported, each with a reason; evaluation gives 0 or 1; and on every
 * comparison in the tree the complementary operator gives the opposite
 * answer (eq/ne, lt/ge, gt/le) when the value exists, and both are false
 * when it does not, while "in" with one constant agrees with "eq".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/msg.h"
#include "rules/rules_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static int	nreports;

static void
report(void *ctx, const char *path, const char *msg)
{
	(void)ctx;
	CHECK(path != NULL && msg != NULL && msg[0] != '\0');
	nreports++;
}

static int
complement(int op)
{
	switch (op) {
	case WOP_EQ:
		return WOP_NE;
	case WOP_NE:
		return WOP_EQ;
	case WOP_LT:
		return WOP_GE;
	case WOP_GE:
		return WOP_LT;
	case WOP_GT:
		return WOP_LE;
	case WOP_LE:
		return WOP_GT;
	default:
		return -1;
	}
}

/* Checks the operator laws on every comparison of w. */
static void
laws(struct rule_where *w, const struct rule_ctx *c)
{
	uint8_t	op = w->op;
	size_t	nto = w->nto;
	int	exists, r1, r2, comp;

	if (op == WOP_ALL || op == WOP_ANY || op == WOP_NOT) {
		for (r1 = 0; (size_t)r1 < w->nkids; r1++)
			laws(w->kids[r1], c);
		return;
	}
	w->op = WOP_EXISTS;
	exists = where_eval(w, c);
	w->op = op;
	CHECK(exists == 0 || exists == 1);
	if (nto == 0)
		return;
	/* Every operator on the first constant only. */
	w->nto = 1;
	if (op == WOP_IN)
		w->op = WOP_EQ;
	r1 = where_eval(w, c);
	CHECK(r1 == 0 || r1 == 1);
	if (op == WOP_IN) {
		w->op = WOP_IN;
		CHECK(where_eval(w, c) == r1);
	}
	if ((comp = complement(w->op)) >= 0) {
		w->op = (uint8_t)comp;
		r2 = where_eval(w, c);
		if (exists)
			CHECK(r2 == !r1);
		else
			CHECK(r1 == 0 && r2 == 0);
	}
	w->op = op;
	w->nto = nto;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rule_payload	 pc;
	struct rule_where	*w = NULL;
	struct rule_caps	 caps;
	struct rule_ctx		 c;
	struct msg		*m;
	const uint8_t		*nl;
	cJSON			*j;
	char			*names[2] = { "site", "dev" };
	uint32_t		 levels[2] = { 1, 3 };
	size_t			 jlen;
	int			 rc, r;

	if ((nl = memchr(data, '\n', size)) == NULL)
		nl = data + size;
	jlen = (size_t)(nl - data);
	if ((j = cJSON_ParseWithLength((const char *)data, jlen)) == NULL)
		return 0;
	memset(&caps, 0, sizeof caps);
	caps.items = true;	/* {item...} compiles (NULL outside foreach) */
	caps.names = names;
	caps.levels = levels;
	caps.n = 2;
	nreports = 0;
	rc = where_compile(j, &caps, "rules[0].where", 0, &w, report, NULL);
	CHECK(rc == 0 || rc == GW_ECONFIG);
	CHECK(rc == 0 ? w != NULL && nreports == 0 : w == NULL &&
	    nreports > 0);
	cJSON_Delete(j);
	if (w == NULL)
		return 0;
	m = msg_new("site/s1/dev/d9/x", 16, "cid", 3, NULL, 0,
	    nl < data + size ? nl + 1 : nl,
	    nl < data + size ? size - jlen - 1 : 0, 1, 0, 1767225600000LL);
	if (m != NULL) {
		rule_payload_init(&pc, m);
		c.r = NULL;
		c.m = m;
		c.pc = &pc;
		r = where_eval(w, &c);
		CHECK(r == 0 || r == 1);
		laws(w, &c);
		rule_payload_clear(&pc);
		msg_unref(&m);
	}
	where_free(w);
	return 0;
}
