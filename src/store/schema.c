/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema migrations; see schema.h.
 *
 * The version of a database is PRAGMA user_version: the leading number of
 * the last schema/NNN_*.sql file applied. schema_apply() runs every embedded
 * file with a greater number, in order, each in its own BEGIN IMMEDIATE
 * transaction that also sets user_version, so a crash leaves the database at
 * a whole version. A database from a newer mqlite (user_version above every
 * file we carry) is refused rather than guessed at.
 *
 * A new database (user_version 0 and no tables) first gets
 * auto_vacuum=INCREMENTAL, which only takes effect before the first table
 * exists; if the file was already initialised (e.g. switched to WAL, which
 * writes page 1) the setting is made effective with a VACUUM of the empty
 * file. Every database that lacks one gets a random 128-bit instance_id in
 * mqlite_meta (hex), used in webhook Idempotency-Keys.
 */
#include <sys/random.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "store/schema.h"

#define SCHEMA_ID_BYTES	16

static int	schema_int(sqlite3 *, const char *, long long *,
		    struct gw_error *);
static int	schema_exec(sqlite3 *, const char *, const char *,
		    struct gw_error *);
static long	schema_version_of(const char *);
static int	schema_auto_vacuum(sqlite3 *, struct gw_error *);
static int	schema_random(unsigned char *, size_t);
static int	schema_instance_id(sqlite3 *, struct gw_error *);

/* Runs a single-value query and stores the integer in *out. */
static int
schema_int(sqlite3 *db, const char *sql, long long *out,
    struct gw_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		gw_error_set(err, "schema", "%s: %s", sql, sqlite3_errmsg(db));
		return GW_EIO;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		gw_error_set(err, "schema", "%s: %s", sql, sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return GW_EIO;
	}
	*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Executes sql; what names the statement in the error message. */
static int
schema_exec(sqlite3 *db, const char *sql, const char *what,
    struct gw_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		gw_error_set(err, "schema", "%s: %s", what,
		    msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return GW_EIO;
	}
	return 0;
}

/* Returns the leading number of a file name like "001_init.sql", or -1. */
static long
schema_version_of(const char *name)
{
	char *end;
	long v;

	if (name[0] < '0' || name[0] > '9')
		return -1;
	errno = 0;
	v = strtol(name, &end, 10);
	if (errno != 0 || v <= 0 || v > 0x7fffffffL || *end != '_')
		return -1;
	return v;
}

/* Makes a new, empty database use incremental auto-vacuum. */
static int
schema_auto_vacuum(sqlite3 *db, struct gw_error *err)
{
	long long mode;

	if (schema_exec(db, "PRAGMA auto_vacuum = INCREMENTAL",
	    "auto_vacuum", err) != 0)
		return GW_EIO;
	if (schema_int(db, "PRAGMA auto_vacuum", &mode, err) != 0)
		return GW_EIO;
	if (mode == 2)
		return 0;
	/* Page 1 exists already: only VACUUM changes the mode now. */
	if (schema_exec(db, "VACUUM", "auto_vacuum", err) != 0)
		return GW_EIO;
	if (schema_int(db, "PRAGMA auto_vacuum", &mode, err) != 0)
		return GW_EIO;
	if (mode != 2)
		log_warn("schema: could not enable incremental auto_vacuum");
	return 0;
}

/* Fills buf with len random bytes from the kernel. 0 or GW_EIO. */
static int
schema_random(unsigned char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int fd;

	while (got < len) {
		n = getrandom(buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == len)
		return 0;
	/* Old kernel without getrandom(2): fall back to the device. */
	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) == -1)
		return GW_EIO;
	while (got < len) {
		n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return got == len ? 0 : GW_EIO;
}

/* Stores a random instance_id in mqlite_meta unless one is there. */
static int
schema_instance_id(sqlite3 *db, struct gw_error *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[SCHEMA_ID_BYTES];
	char id[SCHEMA_ID_BYTES * 2 + 1];
	sqlite3_stmt *st;
	long long have;
	size_t i;
	int rc;

	if (schema_int(db, "SELECT count(*) FROM mqlite_meta"
	    " WHERE key = 'instance_id'", &have, err) != 0)
		return GW_EIO;
	if (have != 0)
		return 0;
	if (schema_random(raw, sizeof raw) != 0) {
		gw_error_set(err, "schema", "no random bytes for instance_id");
		return GW_EIO;
	}
	for (i = 0; i < sizeof raw; i++) {
		id[2 * i] = hex[raw[i] >> 4];
		id[2 * i + 1] = hex[raw[i] & 0xf];
	}
	id[sizeof id - 1] = '\0';
	if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO mqlite_meta"
	    " (key, value) VALUES ('instance_id', ?1)", -1, &st,
	    NULL) != SQLITE_OK) {
		gw_error_set(err, "schema", "instance_id: %s",
		    sqlite3_errmsg(db));
		return GW_EIO;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		gw_error_set(err, "schema", "instance_id: %s",
		    sqlite3_errmsg(db));
		return GW_EIO;
	}
	log_info("schema: new instance_id %s", id);
	return 0;
}

/*
 * Applies every embedded migration newer than the database's user_version,
 * then makes sure an instance_id exists. Borrows db, which must not be in a
 * transaction. Returns 0, or GW_EIO with err filled (the failed migration
 * is rolled back; earlier ones stay applied). Caller's thread.
 */
int
schema_apply(struct sqlite3 *db, struct gw_error *err)
{
	const struct schema_file *f;
	long long version, tables;
	long v, last = 0;
	char pragma[64];

	if (schema_int(db, "PRAGMA user_version", &version, err) != 0)
		return GW_EIO;
	if (schema_int(db, "SELECT count(*) FROM sqlite_schema", &tables,
	    err) != 0)
		return GW_EIO;
	for (f = schema_files; f->name != NULL; f++) {
		if ((v = schema_version_of(f->name)) <= last) {
			gw_error_set(err, "schema", "%s: bad or out of order "
			    "version number", f->name);
			return GW_EIO;
		}
		last = v;
	}
	if (version > last) {
		gw_error_set(err, "schema", "database schema version %lld is "
		    "newer than this mqlite knows (%ld)", version, last);
		return GW_EIO;
	}
	if (version == 0 && tables == 0 && schema_auto_vacuum(db, err) != 0)
		return GW_EIO;

	for (f = schema_files; f->name != NULL; f++) {
		v = schema_version_of(f->name);
		if (v <= version)
			continue;
		if (schema_exec(db, "BEGIN IMMEDIATE", f->name, err) != 0)
			return GW_EIO;
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %ld", v);
		if (schema_exec(db, f->sql, f->name, err) != 0 ||
		    schema_exec(db, pragma, f->name, err) != 0 ||
		    schema_exec(db, "COMMIT", f->name, err) != 0) {
			if (!sqlite3_get_autocommit(db))
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return GW_EIO;
		}
		log_info("schema: applied %s", f->name);
		version = v;
	}
	return schema_instance_id(db, err);
}
