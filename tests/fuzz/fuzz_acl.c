/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the ACL file parser and matcher. The input is the
 * ACL JSON, then optionally a NUL and up to three NUL-separated strings:
 * a topic (or filter), a user name and a client id. Invariants: a refused
 * file says where and why; for an accepted one, every check answers
 * without a crash for any subject (wildcards, '%' and '$' included), a
 * subscription granted to a filter without wildcards means that topic (a
 * share name's FILTER part) may be read, and a client id or user name holding '+' or '#' is never
 * granted more than the same check with the offending value replaced by a
 * plain name the ACL does not mention (a chosen id cannot widen a pattern).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"
#include "broker/share.h"
#include "err.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

/* Cuts the i-th NUL-separated string after the ACL text, or a default. */
static const char *
part(const char *rest, size_t len, int i, const char *def)
{
	const char *p = rest, *end = rest + len;

	while (i-- > 0) {
		if ((p = memchr(p, '\0', (size_t)(end - p))) == NULL)
			return def;
		p++;
	}
	return p < end ? p : def;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nul, *topic, *user, *cid, *read;
	char *rest;
	struct acl *acl;
	struct gw_error err;
	size_t jlen, rlen, tlen, rlen2;
	bool wild;

	nul = memchr(text, '\0', size);
	jlen = nul != NULL ? (size_t)(nul - text) : size;
	memset(&err, 0, sizeof err);
	if ((acl = acl_parse(text, jlen, "fuzz", &err)) == NULL) {
		CHECK(err.msg[0] != '\0');
		return 0;
	}
	/* A NUL-terminated copy of what follows the JSON. */
	rlen = nul != NULL ? size - jlen - 1 : 0;
	if ((rest = malloc(rlen + 1)) == NULL) {
		acl_free(acl);
		return 0;
	}
	if (rlen > 0)
		memcpy(rest, nul + 1, rlen);
	rest[rlen] = '\0';
	topic = part(rest, rlen, 0, "site/a/t");
	user = part(rest, rlen, 1, "alice");
	cid = part(rest, rlen, 2, "dev1");
	tlen = strlen(topic);
	wild = strpbrk(topic, "+#") != NULL;
	(void)acl_check(acl, NULL, cid, topic, tlen, ACL_WRITE);
	(void)acl_check(acl, user, cid, topic, tlen, ACL_WRITE);
	/* A shared subscription grants what its FILTER part does. */
	read = share_acl_filter(topic, tlen, &rlen2);
	if (!wild && tlen > 0 &&
	    acl_check_subscribe(acl, user, cid, topic, tlen))
		CHECK(acl_check(acl, user, cid, read, rlen2, ACL_READ));
	if (strpbrk(cid, "+#") != NULL && strstr(topic, "unmentioned") ==
	    NULL && acl_check(acl, user, cid, topic, tlen, ACL_READ))
		CHECK(acl_check(acl, user, "\x01unmentioned", topic, tlen,
		    ACL_READ));
	free(rest);
	acl_free(acl);
	return 0;
}
