/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers the unit tests that use real SQLite files share: a private
 * temporary directory and one-value queries.
 */
#ifndef GW_TESTDB_H
#define GW_TESTDB_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

/* Makes /tmp/mqlite-test-NAME.XXXXXX into dir; 0, or -1 (perror'd). */
int		 testdb_tmpdir(char *dir, size_t len, const char *name);

/* Removes the files in dir, then dir. */
void		 testdb_rmdir(const char *dir);

/* First column of the first row as an integer; -1 when none or an error. */
long long	 testdb_int(sqlite3 *db, const char *sql);

/* First column of the first row as text into out; false when none. */
bool		 testdb_text(sqlite3 *db, const char *sql, char *out,
		    size_t outlen);

#endif
