/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema migrations: schema/NNN_name.sql files compiled into the daemon
 * (schema_sql.c, generated) and applied in order, each in a transaction,
 * tracked with PRAGMA user_version = NNN of the last one applied.
 */
#ifndef GW_SCHEMA_H
#define GW_SCHEMA_H

#include "err.h"

struct sqlite3;

struct schema_file {
	const char	*name;	/* "001_init.sql"; version = leading number */
	const char	*sql;
};

/* Terminated by { NULL, NULL }. */
extern const struct schema_file schema_files[];

/* Applies the missing migrations to db. 0 or GW_EIO with err filled. */
int	schema_apply(struct sqlite3 *db, struct gw_error *err);

#endif
