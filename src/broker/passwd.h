/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Password files in mosquitto_passwd's format, one "user:hash" line per
 * user, so a site migrates by pointing at its existing file:
 *
 *	user:$7$ITERATIONS$SALT$HASH	PBKDF2-HMAC-SHA512 (what we write)
 *	user:$6$SALT$HASH		one SHA-512 of password then salt
 *
 * SALT and HASH are standard base64 (HASH decodes to 64 bytes). Empty
 * lines and lines starting with '#' are skipped. Loading is strict: any
 * other line is an error naming the line, and the caller keeps the file
 * it had (fail closed). Verifying runs the hash (a tenth of a second at
 * 210,000 iterations): never call it on the event loop.
 */
#ifndef GW_PASSWD_H
#define GW_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PASSWD_HASH_LEN		64	/* SHA-512 output */
#define PASSWD_SALT_MAX		64	/* salt bytes accepted */
#define PASSWD_SALT_LEN		12	/* bytes of salt we write */
#define PASSWD_ITERATIONS	210000	/* PBKDF2 rounds we write */
#define PASSWD_MAX_ITERATIONS	10000000 /* more is refused */
#define PASSWD_LINE_MAX		4096

/* One user's stored hash (no pointers: copied to the hashing worker). */
struct passwd_entry {
	uint8_t		kind;		/* 7 PBKDF2-SHA512, 6 SHA-512 */
	uint32_t	iterations;	/* kind 7 only */
	uint8_t		salt[PASSWD_SALT_MAX];
	size_t		salt_len;
	uint8_t		hash[PASSWD_HASH_LEN];
};

struct passwd_db;

/*
 * Reads the password file at path. Returns a new database, or NULL with
 * err filled (err->path "FILE:LINE" for a bad line, err->msg the reason).
 */
struct passwd_db *passwd_load(const char *path, struct gw_error *err);

/*
 * Parses a password file's text buf[0..len) (path names it in errors),
 * like passwd_load(). For tests and fuzzing.
 */
struct passwd_db *passwd_parse(const char *buf, size_t len,
		    const char *path, struct gw_error *err);

/* Frees db. NULL ok. */
void		 passwd_free(struct passwd_db *db);

/* Number of users in db. */
size_t		 passwd_count(const struct passwd_db *db);

/* Returns user's entry (borrowed from db) or NULL when unknown. */
const struct passwd_entry *passwd_find(const struct passwd_db *db,
		    const char *user, size_t len);

/*
 * An entry no password matches, costing what the most expensive line of db
 * costs to check ($7$ with the most iterations; $6$ when every line is
 * $6$; $7$ at PASSWD_ITERATIONS for an empty file): unknown users are
 * hashed against it. Borrowed from db.
 */
const struct passwd_entry *passwd_dummy(const struct passwd_db *db);

/* Relative CPU cost of checking a password against e. */
uint64_t	 passwd_cost(const struct passwd_entry *e);

/*
 * Whether a check against e (a line of db) must be followed by a check
 * against *pad so that it costs what the dummy costs: in a file mixing
 * $6$ and $7$ lines, or $7$ lines of different iteration counts, every
 * known user then takes as long as an unknown one. Fills *pad (an entry
 * nothing matches; the result of checking it is to be ignored) when true.
 */
bool		 passwd_pad(const struct passwd_db *db,
		    const struct passwd_entry *e, struct passwd_entry *pad);

/*
 * Parses the hash part of a line ("$7$..." / "$6$...", without "user:").
 * 0, or GW_EMALFORMED with a reason in *why (a static string).
 */
int		 passwd_parse_hash(const char *s, size_t len,
		    struct passwd_entry *e, const char **why);

/*
 * Does pw match e? Runs the hash (slow by design), compares in constant
 * time. False as well when libcrypto is unavailable. Any thread.
 */
bool		 passwd_verify(const struct passwd_entry *e, const char *pw,
		    size_t pwlen);

/*
 * Formats a new "user:$7$..." line (no newline) for pw with a random salt
 * and iterations rounds into out (outlen bytes). 0, or GW_EIO when
 * libcrypto fails, GW_ETOOBIG when out is too small.
 */
int		 passwd_make_line(const char *user, const char *pw,
		    size_t pwlen, uint32_t iterations, char *out,
		    size_t outlen);

#endif
