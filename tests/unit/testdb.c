/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers of the SQLite-backed unit tests; see testdb.h.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testdb.h"

int
testdb_tmpdir(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/mqlite-test-%s.XXXXXX", name);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

void
testdb_rmdir(const char *dir)
{
	struct dirent *de;
	char p[512];
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

long long
testdb_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

bool
testdb_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	const unsigned char *v;
	sqlite3_stmt *st;
	bool ok = false;

	out[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    (v = sqlite3_column_text(st, 0)) != NULL) {
		snprintf(out, outlen, "%s", (const char *)v);
		ok = true;
	}
	sqlite3_finalize(st);
	return ok;
}
