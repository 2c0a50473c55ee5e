/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers the unit tests that use real SQLite files share: a private
 * temporary directory, one-value queries, and the store thread's side of
 * the outbox (applying the delivery results in one transaction).
 */
#ifndef GW_TESTDB_H
#define GW_TESTDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct outbox;
struct queue;
struct outbox_result;

/* As forward_opts.committed: results committed (borrowed). */
typedef void (*testdb_committed_cb)(void *ctx,
		    const struct outbox_result *res, size_t n);

/*
 * Pops up to 64 delivery results from q (waiting at most wait_ms) and
 * applies them to ob in one transaction on db, as the store thread does.
 * Returns how many it applied and adds the OK verdicts among them to *oks
 * when oks is not NULL, then calls committed(ctx, ...) if not NULL. A
 * failed step is a CUnit assertion failure.
 */
size_t		 testdb_apply_results(sqlite3 *db, struct outbox *ob,
		    struct queue *q, int wait_ms, uint64_t *oks,
		    testdb_committed_cb committed, void *ctx);

#endif
