/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers of the SQLite-backed unit tests; see testdb.h.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "clock.h"
#include "queue.h"
#include "store/outbox.h"
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

size_t
testdb_apply_results(sqlite3 *db, struct outbox *ob, struct queue *q,
    int wait_ms, uint64_t *oks, testdb_committed_cb committed, void *ctx)
{
	struct outbox_result	res[64];
	size_t			n, i;

	if ((n = queue_pop(q, res, 64, wait_ms)) == 0)
		return 0;
	if (oks != NULL) {
		for (i = 0; i < n; i++)
			*oks += res[i].verdict == OUTBOX_OK;
	}
	CU_ASSERT_EQUAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(outbox_apply_results(ob, res, n, clock_wall_ms()), 0);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_committed(ob);
	if (committed != NULL)
		committed(ctx, res, n);
	outbox_results_free(res, n);
	return n;
}
