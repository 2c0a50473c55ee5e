/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sqlite action; see sqlite.h. SQL text is built once per rule at
 * prepare time with a checked builder: identifiers were validated by the
 * rules loader ([A-Za-z_][A-Za-z0-9_]*) and are double-quoted here anyway;
 * no value ever becomes SQL text, every value is bound.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "broker/msg.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "rules/rules.h"
#include "sink/sqlite.h"

struct sink_sqlite {
	sqlite3			*db;
	struct rule_set		*set;		/* referenced */
	sqlite3_stmt		**ins;		/* per rule id, NULL if none */
	size_t			 nrules;
	sqlite3_stmt		*rejected;	/* insert into rejected */
	struct rule_value	*vals;		/* scratch, max columns */
	size_t			 nvals;
	struct log_limit	 rejlog;
};

/* Appends a NUL-terminated string; sets *bad on failure. */
static void
sql_add(struct buf *b, const char *s, int *bad)
{
	if (buf_append(b, s, strlen(s)) != 0)
		*bad = 1;
}

/* Appends "ident" quoted. */
static void
sql_ident(struct buf *b, const char *id, int *bad)
{
	sql_add(b, "\"", bad);
	sql_add(b, id, bad);
	sql_add(b, "\"", bad);
}

/* Terminates the builder's text; returns it or NULL. */
static const char *
sql_text(struct buf *b, int *bad)
{
	if (buf_append(b, "", 1) != 0)
		*bad = 1;
	return *bad ? NULL : (const char *)buf_head(b);
}

static int
exec_sql(sqlite3 *db, const char *sql, struct gw_error *err, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	gw_error_set(err, what, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return GW_EIO;
}

/*
 * Finds column col of table in PRAGMA table_info: returns 1 and its
 * declared type in type (may be ""), 0 when absent, GW_EIO.
 */
static int
column_type(sqlite3 *db, const char *table, const char *col, char *type,
    size_t typelen)
{
	sqlite3_stmt *st;
	const char *name, *t;
	int rc, found = 0;

	if (sqlite3_prepare_v2(db, "SELECT name, type FROM"
	    " pragma_table_info(?1)", -1, &st, NULL) != SQLITE_OK)
		return GW_EIO;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		if (name != NULL && strcasecmp(name, col) == 0) {
			t = (const char *)sqlite3_column_text(st, 1);
			snprintf(type, typelen, "%s", t != NULL ? t : "");
			found = 1;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : GW_EIO;
}

/* Creates the table of r if missing, adds missing columns, indexes. */
static int
ensure_table(sqlite3 *db, const struct rule *r, struct gw_error *err)
{
	const struct rule_sqlite *q = rule_sqlite(r);
	struct buf b = BUF_INIT;
	char type[64], path[160];
	size_t i, j;
	int bad = 0, rc = 0, have;

	snprintf(path, sizeof path, "rule %s: table %s", rule_name(r),
	    q->table);
	sql_add(&b, "CREATE TABLE IF NOT EXISTS ", &bad);
	sql_ident(&b, q->table, &bad);
	sql_add(&b, " (id INTEGER PRIMARY KEY", &bad);
	for (i = 0; i < q->ncols; i++) {
		sql_add(&b, ", ", &bad);
		sql_ident(&b, q->cols[i].name, &bad);
		if (rule_column_decl_type(r, i)[0] != '\0') {
			sql_add(&b, " ", &bad);
			sql_add(&b, rule_column_decl_type(r, i), &bad);
		}
	}
	sql_add(&b, ")", &bad);
	if (sql_text(&b, &bad) == NULL) {
		buf_free(&b);
		return GW_ENOMEM;
	}
	if ((rc = exec_sql(db, (const char *)buf_head(&b), err, path)) != 0)
		goto out;
	for (i = 0; i < q->ncols && rc == 0; i++) {
		have = column_type(db, q->table, q->cols[i].name, type,
		    sizeof type);
		if (have < 0) {
			gw_error_set(err, path, "%s", sqlite3_errmsg(db));
			rc = GW_EIO;
			break;
		}
		if (have == 1) {
			if (q->cols[i].declared &&
			    strcasecmp(type, q->cols[i].decl) != 0) {
				gw_error_set(err, path, "column %s has type "
				    "'%s' but the rule declares %s",
				    q->cols[i].name, type, q->cols[i].decl);
				rc = GW_ECONFIG;
			}
			continue;
		}
		buf_reset(&b);
		sql_add(&b, "ALTER TABLE ", &bad);
		sql_ident(&b, q->table, &bad);
		sql_add(&b, " ADD COLUMN ", &bad);
		sql_ident(&b, q->cols[i].name, &bad);
		if (rule_column_decl_type(r, i)[0] != '\0') {
			sql_add(&b, " ", &bad);
			sql_add(&b, rule_column_decl_type(r, i), &bad);
		}
		if (sql_text(&b, &bad) == NULL) {
			rc = GW_ENOMEM;
			break;
		}
		rc = exec_sql(db, (const char *)buf_head(&b), err, path);
		if (rc == 0)
			log_info("rule %s: added column %s to table %s",
			    rule_name(r), q->cols[i].name, q->table);
	}
	for (i = 0; i < q->nidx && rc == 0; i++) {
		buf_reset(&b);
		sql_add(&b, "CREATE INDEX IF NOT EXISTS ", &bad);
		sql_ident(&b, q->idx[i].name, &bad);
		sql_add(&b, " ON ", &bad);
		sql_ident(&b, q->table, &bad);
		sql_add(&b, " (", &bad);
		for (j = 0; j < q->idx[i].ncols; j++) {
			if (j > 0)
				sql_add(&b, ", ", &bad);
			sql_ident(&b, q->idx[i].cols[j], &bad);
		}
		sql_add(&b, ")", &bad);
		if (sql_text(&b, &bad) == NULL) {
			rc = GW_ENOMEM;
			break;
		}
		rc = exec_sql(db, (const char *)buf_head(&b), err, path);
	}
out:
	buf_free(&b);
	return rc;
}

/* Prepares the INSERT of r into *st. */
static int
prepare_insert(sqlite3 *db, const struct rule *r, sqlite3_stmt **st,
    struct gw_error *err)
{
	const struct rule_sqlite *q = rule_sqlite(r);
	struct buf b = BUF_INIT;
	char num[32];
	size_t i;
	int bad = 0, rc = 0;

	sql_add(&b, "INSERT INTO ", &bad);
	sql_ident(&b, q->table, &bad);
	sql_add(&b, " (", &bad);
	for (i = 0; i < q->ncols; i++) {
		if (i > 0)
			sql_add(&b, ", ", &bad);
		sql_ident(&b, q->cols[i].name, &bad);
	}
	sql_add(&b, ") VALUES (", &bad);
	for (i = 0; i < q->ncols; i++) {
		snprintf(num, sizeof num, "%s?%zu", i > 0 ? ", " : "", i + 1);
		sql_add(&b, num, &bad);
	}
	sql_add(&b, ")", &bad);
	if (sql_text(&b, &bad) == NULL)
		rc = GW_ENOMEM;
	else if (sqlite3_prepare_v3(db, (const char *)buf_head(&b), -1,
	    SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		gw_error_set(err, rule_name(r), "%s", sqlite3_errmsg(db));
		rc = GW_EIO;
	}
	buf_free(&b);
	return rc;
}

struct sink_sqlite *
sink_sqlite_prepare(sqlite3 *db, struct rule_set *set, struct gw_error *err)
{
	struct sink_sqlite *k;
	const struct rule *r;
	size_t i, maxcols = 1;
	int rc = 0;

	if ((k = gw_calloc(1, sizeof *k)) == NULL) {
		gw_error_set(err, "rules", "out of memory");
		return NULL;
	}
	k->db = db;
	k->set = rule_set_ref(set);
	k->nrules = rule_set_count(set);
	if (k->nrules > 0 &&
	    (k->ins = gw_calloc(k->nrules, sizeof *k->ins)) == NULL) {
		gw_error_set(err, "rules", "out of memory");
		goto fail;
	}
	if (exec_sql(db, "SAVEPOINT sink_prepare", err, "rules") != 0)
		goto fail;
	for (i = 0; i < k->nrules && rc == 0; i++) {
		r = rule_set_rule(set, i);
		if (rule_sqlite(r) == NULL)
			continue;
		if (rule_sqlite(r)->ncols > maxcols)
			maxcols = rule_sqlite(r)->ncols;
		if (strcasecmp(rule_sqlite(r)->table, "messages") != 0)
			rc = ensure_table(db, r, err);
		if (rc == 0)
			rc = prepare_insert(db, r, &k->ins[i], err);
	}
	if (rc != 0) {
		sqlite3_exec(db, "ROLLBACK TO sink_prepare; "
		    "RELEASE sink_prepare", NULL, NULL, NULL);
		goto fail;
	}
	if (exec_sql(db, "RELEASE sink_prepare", err, "rules") != 0)
		goto fail;
	if (sqlite3_prepare_v3(db, "INSERT INTO rejected (received_ms,"
	    " rejected_ms, rule, topic, client_id, qos, reason, payload)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1,
	    SQLITE_PREPARE_PERSISTENT, &k->rejected, NULL) != SQLITE_OK) {
		gw_error_set(err, "rejected", "%s", sqlite3_errmsg(db));
		goto fail;
	}
	if ((k->vals = gw_calloc(maxcols, sizeof *k->vals)) == NULL) {
		gw_error_set(err, "rules", "out of memory");
		goto fail;
	}
	k->nvals = maxcols;
	return k;
fail:
	sink_sqlite_free(k);
	return NULL;
}

const struct rule_set *
sink_sqlite_set(const struct sink_sqlite *k)
{
	return k->set;
}

/* True for errors that are the row's fault, not the database's. */
static int
row_error(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		return 1;
	}
	return 0;
}

static int
bind_value(sqlite3_stmt *st, int i, const struct rule_value *v)
{
	switch (v->type) {
	case RULE_VINTEGER:
		return sqlite3_bind_int64(st, i, v->u.i);
	case RULE_VREAL:
		return sqlite3_bind_double(st, i, v->u.d);
	case RULE_VTEXT:
		return sqlite3_bind_text64(st, i, v->u.s.p, v->u.s.len,
		    SQLITE_STATIC, SQLITE_UTF8);
	case RULE_VBLOB:
		return sqlite3_bind_blob64(st, i, v->u.s.p, v->u.s.len,
		    SQLITE_STATIC);
	default:
		return sqlite3_bind_null(st, i);
	}
}

/* Records m in `rejected` with reason; 0 or GW_EIO. */
static int
write_rejected(struct sink_sqlite *k, const struct rule *r,
    const struct msg *m, const char *reason)
{
	sqlite3_stmt *st = k->rejected;
	int rc;

	sqlite3_bind_int64(st, 1, m->received_ms);
	sqlite3_bind_int64(st, 2, clock_wall_ms());
	sqlite3_bind_text(st, 3, rule_name(r), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->topic, m->topic_len, SQLITE_STATIC);
	if (m->client_id_len > 0)
		sqlite3_bind_text(st, 5, m->client_id, m->client_id_len,
		    SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int(st, 6, m->qos);
	sqlite3_bind_text(st, 7, reason, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 8, m->payload, (int)m->payload_len,
	    SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	rule_count(r, RULE_CREJECTED, 1);
	log_limited(&k->rejlog, 5, 60000, LOG_LVL_WARN,
	    "rule %s: row for %s rejected: %s", rule_name(r), m->topic,
	    reason);
	return rc == SQLITE_DONE ? 0 : GW_EIO;
}

int
sink_sqlite_write(struct sink_sqlite *k, size_t rule_id, const struct msg *m,
    struct rule_payload *pc)
{
	const struct rule *r;
	const struct rule_sqlite *q;
	sqlite3_stmt *st;
	char reason[256];
	size_t i;
	int rc, bad = SQLITE_OK;

	if (rule_id >= k->nrules || (st = k->ins[rule_id]) == NULL)
		return 0;
	r = rule_set_rule(k->set, rule_id);
	q = rule_sqlite(r);
	rc = rule_sqlite_values(r, m, pc, k->vals);
	for (i = 0; rc == 0 && i < q->ncols; i++)
		bad |= bind_value(st, (int)i + 1, &k->vals[i]);
	if (rc == 0 && bad == SQLITE_OK)
		rc = sqlite3_step(st);
	else if (rc == 0)
		rc = bad;
	else
		rc = SQLITE_NOMEM;
	if (rc != SQLITE_DONE && rule_payload_item_index(pc) >= 0)
		snprintf(reason, sizeof reason, "item %lld: %s",
		    (long long)rule_payload_item_index(pc),
		    sqlite3_errmsg(k->db));
	else if (rc != SQLITE_DONE)
		snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(k->db));
	sqlite3_reset(st);
	for (i = 0; i < q->ncols; i++)
		rule_value_clear(&k->vals[i]);
	if (rc == SQLITE_DONE) {
		rule_count(r, RULE_CWRITTEN, 1);
		return 1;
	}
	if (rc == SQLITE_NOMEM)
		return GW_ENOMEM;
	if (row_error(rc))
		return write_rejected(k, r, m, reason);
	return GW_EIO;
}

void
sink_sqlite_free(struct sink_sqlite *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->nrules && k->ins != NULL; i++)
		sqlite3_finalize(k->ins[i]);
	gw_free(k->ins);
	sqlite3_finalize(k->rejected);
	gw_free(k->vals);
	rule_set_unref(&k->set);
	gw_free(k);
}
