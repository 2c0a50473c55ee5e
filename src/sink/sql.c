/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQL text builder and exec helpers; see sql.h.
 *
 * DESIGN
 *
 * The sink and the rollups both create and alter tables from rule
 * definitions, so the pieces they share live here: appending text and
 * quoted identifiers to a struct buf with a sticky error flag, running a
 * statement with the database's message turned into a gw_error, and
 * reading a column's declared type from PRAGMA table_info. Nothing here
 * keeps state; every function works on what the caller passes.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "buf.h"
#include "err.h"
#include "sink/sql.h"

/* Appends a NUL-terminated string; sets *bad on failure. */
void
sql_add(struct buf *b, const char *s, int *bad)
{
	if (buf_append(b, s, strlen(s)) != 0)
		*bad = 1;
}

/* Appends "id" quoted. */
void
sql_ident(struct buf *b, const char *id, int *bad)
{
	sql_add(b, "\"", bad);
	sql_add(b, id, bad);
	sql_add(b, "\"", bad);
}

/* Appends "name" and, when decl is not empty, " decl". */
void
sql_coldef(struct buf *b, const char *name, const char *decl, int *bad)
{
	sql_ident(b, name, bad);
	if (decl != NULL && decl[0] != '\0') {
		sql_add(b, " ", bad);
		sql_add(b, decl, bad);
	}
}

/* Terminates the builder's text; returns it or NULL. */
const char *
sql_text(struct buf *b, int *bad)
{
	if (buf_append(b, "", 1) != 0)
		*bad = 1;
	return *bad ? NULL : (const char *)buf_head(b);
}

/* Runs one or more statements; GW_EIO with the message in err. */
int
sql_exec(sqlite3 *db, const char *sql, struct gw_error *err,
    const char *what)
{
	char	*msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	gw_error_set(err, what, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return GW_EIO;
}

/* Runs the builder's text; GW_ENOMEM when building it failed. */
int
sql_exec_buf(sqlite3 *db, struct buf *b, int *bad, struct gw_error *err,
    const char *what)
{
	const char	*sql;

	if ((sql = sql_text(b, bad)) == NULL)
		return GW_ENOMEM;
	return sql_exec(db, sql, err, what);
}

/* Finds col among table's columns; 1 (type filled), 0, or GW_EIO. */
int
sql_column_type(sqlite3 *db, const char *table, const char *col, char *type,
    size_t typelen)
{
	sqlite3_stmt	*st;
	const char	*name, *t;
	int		 rc, found = 0;

	if (sqlite3_prepare_v2(db, "SELECT name, type FROM"
	    " pragma_table_info(?1)", -1, &st, NULL) != SQLITE_OK)
		return GW_EIO;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		if (name != NULL && strcasecmp(name, col) == 0) {
			t = (const char *)sqlite3_column_text(st, 1);
			if (type != NULL)
				snprintf(type, typelen, "%s",
				    t != NULL ? t : "");
			found = 1;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : GW_EIO;
}
