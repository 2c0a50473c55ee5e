/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small SQL text builder and two helpers around sqlite3_exec, shared by
 * the sqlite sink and the rollups. Text is built in a struct buf; every
 * append takes a sticky error flag (*bad) so a builder can append a whole
 * statement and check once. Identifiers must have been checked by the
 * rules loader ([A-Za-z_][A-Za-z0-9_]*); they are double-quoted anyway.
 * No value ever becomes SQL text.
 */
#ifndef GW_SINK_SQL_H
#define GW_SINK_SQL_H

#include <stddef.h>

#include <sqlite3.h>

struct buf;
struct gw_error;

/* Appends the NUL-terminated string s; sets *bad on failure. */
void		 sql_add(struct buf *b, const char *s, int *bad);

/* Appends identifier id double-quoted; sets *bad on failure. */
void		 sql_ident(struct buf *b, const char *id, int *bad);

/* Appends a column definition: "name" followed by " decl" if any. */
void		 sql_coldef(struct buf *b, const char *name, const char *decl,
		    int *bad);

/* Terminates b's text and returns it, or NULL when an append failed. */
const char	*sql_text(struct buf *b, int *bad);

/*
 * Runs sql on db: 0, or GW_EIO with the database's message in err under
 * the name what.
 */
int		 sql_exec(sqlite3 *db, const char *sql, struct gw_error *err,
		    const char *what);

/* Terminates b's text and runs it as sql_exec(); GW_ENOMEM when *bad. */
int		 sql_exec_buf(sqlite3 *db, struct buf *b, int *bad,
		    struct gw_error *err, const char *what);

/*
 * Looks column col of table up in PRAGMA table_info (names compared
 * without case): 1 when there, with its declared type (may be "") in type
 * unless type is NULL; 0 when absent; GW_EIO.
 */
int		 sql_column_type(sqlite3 *db, const char *table,
		    const char *col, char *type, size_t typelen);

#endif /* GW_SINK_SQL_H */
