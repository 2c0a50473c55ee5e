/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A typed value produced by the rules engine: what a placeholder or a
 * template evaluates to, and what the SQLite sink binds to a column. The
 * types are SQLite's storage classes, so binding is one switch:
 * NULL -> sqlite3_bind_null, INTEGER -> bind_int64, REAL -> bind_double,
 * TEXT -> bind_text(p, len), BLOB -> bind_blob(p, len).
 *
 * TEXT and BLOB either own their bytes (allocated with gw_malloc, released
 * by rule_value_clear) or borrow them from the message, the rule set or the
 * payload cache; a borrowed value lives as long as the message, rule set and
 * struct rule_payload it came from. Values are plain structs used by one
 * thread at a time.
 */
#ifndef GW_RULES_VALUE_H
#define GW_RULES_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

enum rule_vtype {
	RULE_VNULL = 0,		/* missing, JSON null or not JSON */
	RULE_VINTEGER,		/* 64-bit signed integer (u.i) */
	RULE_VREAL,		/* double (u.d) */
	RULE_VTEXT,		/* UTF-8 text (u.s), may contain NUL */
	RULE_VBLOB,		/* raw bytes (u.s) */
};

struct rule_value {
	uint8_t		 type;		/* enum rule_vtype */
	uint8_t		 owned;		/* u.s.p is ours to gw_free */
	uint8_t		 json;		/* TEXT is a JSON object/array text */
	union {
		int64_t	 i;		/* RULE_VINTEGER */
		double	 d;		/* RULE_VREAL */
		struct {
			const char	*p;	/* bytes, not NUL-terminated */
			size_t		 len;	/* byte count */
		} s;			/* RULE_VTEXT, RULE_VBLOB */
	} u;
};

#define RULE_VALUE_INIT	{ RULE_VNULL, 0, 0, { 0 } }

/* Releases what v owns (if anything) and makes it NULL; accepts NULL. */
static inline void
rule_value_clear(struct rule_value *v)
{
	if (v == NULL)
		return;
	if (v->owned && (v->type == RULE_VTEXT || v->type == RULE_VBLOB))
		gw_free((void *)v->u.s.p);
	v->type = RULE_VNULL;
	v->owned = 0;
	v->json = 0;
	v->u.i = 0;
}

/* Sets v (which must hold nothing owned) to an INTEGER. */
static inline void
rule_value_int(struct rule_value *v, int64_t i)
{
	v->type = RULE_VINTEGER;
	v->owned = 0;
	v->json = 0;
	v->u.i = i;
}

/* Sets v to a REAL. */
static inline void
rule_value_real(struct rule_value *v, double d)
{
	v->type = RULE_VREAL;
	v->owned = 0;
	v->json = 0;
	v->u.d = d;
}

/*
 * Sets v to TEXT or BLOB bytes (type RULE_VTEXT or RULE_VBLOB); owned says
 * whether v takes ownership of p (gw_malloc'd) or borrows it.
 */
static inline void
rule_value_bytes(struct rule_value *v, uint8_t type, const char *p,
    size_t len, bool owned)
{
	v->type = type;
	v->owned = owned;
	v->json = 0;
	v->u.s.p = p;
	v->u.s.len = len;
}

/* True for INTEGER and REAL. */
static inline bool
rule_value_is_number(const struct rule_value *v)
{
	return v->type == RULE_VINTEGER || v->type == RULE_VREAL;
}

#endif
