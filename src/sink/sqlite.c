/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sqlite action; see sqlite.h. SQL text is built once per rule at
 * prepare time with a checked builder: identifiers were validated by the
 * rules loader ([A-Za-z_][A-Za-z0-9_]*) and are double-quoted here anyway;
 * no value ever becomes SQL text, every value is bound.
 *
 * DESIGN (multi-row inserts)
 *
 * One statement per row costs a VDBE run, a reset and a B-tree descent per
 * row; one statement for several rows shares them. Each rule with a sqlite
 * action gets a row buffer (rowbuf.c, made on its first row) and INSERTs
 * of SINK_SIZES rows: the one-row INSERT is prepared with the sink (so a
 * bad rule fails at load), the larger ones on first use, each once. A
 * flush inserts the buffer with the largest sizes that fit (32, 8, then
 * single rows). Sizes stay under the connection's variable limit.
 *
 * A multi-row statement that fails on a row's fault (constraint, type,
 * size) is undone by SQLite as a whole (statement journal) and the chunk
 * is inserted again row by row, so exactly the bad row goes to `rejected`.
 *
 * Order: rows of one rule keep their order. Rules writing into the same
 * table share a group (its first rule's id); before a rule buffers a row,
 * the group's previous writer, if another rule, is flushed, so the table's
 * ids follow the order of the writes. Every buffer is flushed before the
 * store commits, so the rows of a publish are in its transaction; after a
 * rollback sink_sqlite_discard() empties them.
 */
#include <stdint.h>
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
#include "sink/rowbuf.h"
#include "sink/sql.h"
#include "sink/sqlite.h"

#define SINK_NSIZES		3
#define SINK_ROWBUF_BYTES	(256 * 1024)	/* arena bytes per flush */
#define SINK_NONE		SIZE_MAX

/* Rows per INSERT statement, ascending; [0] must be 1. */
static const size_t sink_sizes[SINK_NSIZES] = { 1, 8, 32 };

struct sink_rule {
	sqlite3_stmt		*ins[SINK_NSIZES]; /* [0] at prepare, others
						 * on first use */
	size_t			 nsizes;	/* usable (variable limit) */
	struct rowbuf		*buf;		/* NULL until the first row */
	size_t			 group;		/* first rule of its table */
	size_t			 last;		/* group's last writer (on the
						 * group's first rule) */
	int			 listed;	/* in dirty[] */
	int			 noprep;	/* a multi-row prepare failed */
};

struct sink_sqlite {
	sqlite3			*db;
	struct rule_set		*set;		/* referenced */
	struct sink_rule	*rules;		/* per rule id */
	size_t			 nrules;
	size_t			*dirty;		/* rule ids with rows, nrules */
	size_t			 ndirty;
	int			 inserted;	/* rows since the last flush */
	sqlite3_stmt		*rejected;	/* insert into rejected */
	struct rule_value	*vals;		/* scratch, max columns */
	size_t			 nvals;
	struct log_limit	 rejlog;
};

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
		sql_coldef(&b, q->cols[i].name, rule_column_decl_type(r, i),
		    &bad);
	}
	sql_add(&b, ")", &bad);
	if (sql_text(&b, &bad) == NULL) {
		buf_free(&b);
		return GW_ENOMEM;
	}
	if ((rc = sql_exec(db, (const char *)buf_head(&b), err, path)) != 0)
		goto out;
	for (i = 0; i < q->ncols && rc == 0; i++) {
		have = sql_column_type(db, q->table, q->cols[i].name, type,
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
		sql_coldef(&b, q->cols[i].name, rule_column_decl_type(r, i),
		    &bad);
		if (sql_text(&b, &bad) == NULL) {
			rc = GW_ENOMEM;
			break;
		}
		rc = sql_exec(db, (const char *)buf_head(&b), err, path);
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
		rc = sql_exec(db, (const char *)buf_head(&b), err, path);
	}
out:
	buf_free(&b);
	return rc;
}

/* Prepares the INSERT of nrows rows of r into *st. */
static int
prepare_insert(sqlite3 *db, const struct rule *r, size_t nrows,
    sqlite3_stmt **st, struct gw_error *err)
{
	const struct rule_sqlite *q = rule_sqlite(r);
	struct buf b = BUF_INIT;
	char num[32];
	size_t i, j;
	int bad = 0, rc = 0;

	sql_add(&b, "INSERT INTO ", &bad);
	sql_ident(&b, q->table, &bad);
	sql_add(&b, " (", &bad);
	for (i = 0; i < q->ncols; i++) {
		if (i > 0)
			sql_add(&b, ", ", &bad);
		sql_ident(&b, q->cols[i].name, &bad);
	}
	sql_add(&b, ") VALUES ", &bad);
	for (j = 0; j < nrows; j++) {
		sql_add(&b, j > 0 ? ", (" : "(", &bad);
		for (i = 0; i < q->ncols; i++) {
			snprintf(num, sizeof num, "%s?%zu", i > 0 ? ", " : "",
			    j * q->ncols + i + 1);
			sql_add(&b, num, &bad);
		}
		sql_add(&b, ")", &bad);
	}
	if (sql_text(&b, &bad) == NULL)
		rc = GW_ENOMEM;
	else if (sqlite3_prepare_v3(db, (const char *)buf_head(&b), -1,
	    SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		gw_error_set(err, rule_name(r), "%s", sqlite3_errmsg(db));
		rc = sqlite3_errcode(db) == SQLITE_NOMEM ? GW_ENOMEM : GW_EIO;
	}
	buf_free(&b);
	return rc;
}

/* Sets up rule i's state: its one-row INSERT, sizes and table group. */
static int
prepare_rule(struct sink_sqlite *k, size_t i, struct gw_error *err)
{
	const struct rule *r = rule_set_rule(k->set, i);
	const struct rule_sqlite *q = rule_sqlite(r);
	struct sink_rule *sr = &k->rules[i];
	size_t j, limit;

	limit = (size_t)sqlite3_limit(k->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
	sr->nsizes = 1;
	while (sr->nsizes < SINK_NSIZES &&
	    sink_sizes[sr->nsizes] * q->ncols <= limit)
		sr->nsizes++;
	sr->group = i;
	for (j = 0; j < i; j++) {
		if (k->rules[j].ins[0] != NULL && strcasecmp(rule_sqlite(
		    rule_set_rule(k->set, j))->table, q->table) == 0) {
			sr->group = j;
			break;
		}
	}
	return prepare_insert(k->db, r, 1, &sr->ins[0], err);
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
	    ((k->rules = gw_calloc(k->nrules, sizeof *k->rules)) == NULL ||
	    (k->dirty = gw_calloc(k->nrules, sizeof *k->dirty)) == NULL)) {
		gw_error_set(err, "rules", "out of memory");
		goto fail;
	}
	for (i = 0; i < k->nrules; i++)
		k->rules[i].last = SINK_NONE;
	if (sql_exec(db, "SAVEPOINT sink_prepare", err, "rules") != 0)
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
			rc = prepare_rule(k, i, err);
	}
	if (rc != 0) {
		sqlite3_exec(db, "ROLLBACK TO sink_prepare; "
		    "RELEASE sink_prepare", NULL, NULL, NULL);
		goto fail;
	}
	if (sql_exec(db, "RELEASE sink_prepare", err, "rules") != 0)
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

/*
 * Rule i's INSERT of sink_sizes[z] rows, prepared on first use. NULL when
 * it cannot be prepared (the caller uses single rows then).
 */
static sqlite3_stmt *
insert_stmt(struct sink_sqlite *k, size_t i, size_t z)
{
	struct sink_rule *sr = &k->rules[i];
	struct gw_error err;

	if (sr->ins[z] != NULL || z == 0 || sr->noprep)
		return sr->ins[z];
	memset(&err, 0, sizeof err);
	if (prepare_insert(k->db, rule_set_rule(k->set, i), sink_sizes[z],
	    &sr->ins[z], &err) != 0) {
		log_warn("rule %s: %zu-row insert: %s; inserting row by row",
		    rule_name(rule_set_rule(k->set, i)), sink_sizes[z],
		    err.msg);
		sr->ins[z] = NULL;
		sr->noprep = 1;
	}
	return sr->ins[z];
}

/*
 * Inserts rows [off, off + n) of rule i's buffer with statement st (n
 * rows). A row error of a one-row statement sends that row to `rejected`;
 * of a larger one (SQLite undid the whole statement), the rows are tried
 * one by one. 0, GW_EIO or GW_ENOMEM.
 */
static int
insert_rows(struct sink_sqlite *k, size_t i, sqlite3_stmt *st, size_t off,
    size_t n)
{
	const struct rule *r = rule_set_rule(k->set, i);
	struct sink_rule *sr = &k->rules[i];
	size_t ncols = rule_sqlite(r)->ncols, row, c;
	struct rule_value v;
	char reason[256];
	int rc, bad = SQLITE_OK, txn;

	txn = !sqlite3_get_autocommit(k->db);
	for (row = 0; row < n; row++) {
		for (c = 0; c < ncols; c++) {
			rowbuf_value(sr->buf, off + row, c, &v);
			bad |= bind_value(st, (int)(row * ncols + c) + 1, &v);
		}
	}
	rc = bad == SQLITE_OK ? sqlite3_step(st) : bad;
	if (rc != SQLITE_DONE && n == 1 && rowbuf_item(sr->buf, off) >= 0)
		snprintf(reason, sizeof reason, "item %lld: %s",
		    (long long)rowbuf_item(sr->buf, off),
		    sqlite3_errmsg(k->db));
	else if (rc != SQLITE_DONE)
		snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(k->db));
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		k->inserted += (int)n;
		rule_count(r, RULE_CWRITTEN, n);
		return 0;
	}
	if ((rc & 0xff) == SQLITE_NOMEM)
		return GW_ENOMEM;
	/* A conflict clause may have ended the transaction: not a row's. */
	if (!row_error(rc) || (txn && sqlite3_get_autocommit(k->db)))
		return GW_EIO;
	if (n == 1)
		return write_rejected(k, r, rowbuf_msg(sr->buf, off), reason);
	for (row = 0; row < n; row++)
		if ((rc = insert_rows(k, i, sr->ins[0], off + row, 1)) != 0)
			return rc;
	return 0;
}

/* Inserts and empties rule i's buffer. 0, GW_EIO or GW_ENOMEM. */
static int
flush_rule(struct sink_sqlite *k, size_t i)
{
	struct sink_rule *sr = &k->rules[i];
	sqlite3_stmt *st;
	size_t n, off = 0, z;
	int rc = 0;

	if (sr->buf == NULL)
		return 0;
	n = rowbuf_len(sr->buf);
	while (rc == 0 && off < n) {
		z = sr->nsizes - 1;
		while (z > 0 && sink_sizes[z] > n - off)
			z--;
		if ((st = insert_stmt(k, i, z)) == NULL) {
			z = 0;
			st = sr->ins[0];
		}
		rc = insert_rows(k, i, st, off, sink_sizes[z]);
		off += sink_sizes[z];
	}
	rowbuf_clear(sr->buf);
	return rc;
}

int
sink_sqlite_write(struct sink_sqlite *k, size_t rule_id, const struct msg *m,
    struct rule_payload *pc)
{
	const struct rule *r;
	struct sink_rule *sr, *g;
	size_t i, ncols;
	int rc;

	if (rule_id >= k->nrules || k->rules[rule_id].ins[0] == NULL)
		return 0;
	r = rule_set_rule(k->set, rule_id);
	sr = &k->rules[rule_id];
	ncols = rule_sqlite(r)->ncols;
	/* Another rule of this table wrote last: its rows go first. */
	g = &k->rules[sr->group];
	if (g->last != rule_id && g->last != SINK_NONE &&
	    (rc = flush_rule(k, g->last)) != 0)
		return rc;
	g->last = rule_id;
	if (sr->buf == NULL && (sr->buf = rowbuf_new(ncols,
	    sink_sizes[sr->nsizes - 1], SINK_ROWBUF_BYTES)) == NULL)
		return GW_ENOMEM;
	rc = rule_sqlite_values(r, m, pc, k->vals);
	if (rc == 0)
		rc = rowbuf_add(sr->buf, k->vals, m,
		    rule_payload_item_index(pc));
	for (i = 0; i < ncols; i++)
		rule_value_clear(&k->vals[i]);
	if (rc != 0)
		return GW_ENOMEM;
	if (!sr->listed) {
		sr->listed = 1;
		k->dirty[k->ndirty++] = rule_id;
	}
	if (rowbuf_full(sr->buf) && (rc = flush_rule(k, rule_id)) != 0)
		return rc;
	return 1;
}

int
sink_sqlite_flush(struct sink_sqlite *k)
{
	struct sink_rule *sr;
	size_t i;
	int rc, n;

	for (i = 0; i < k->ndirty; i++) {
		sr = &k->rules[k->dirty[i]];
		if ((rc = flush_rule(k, k->dirty[i])) != 0)
			return rc;
		sr->listed = 0;
		k->rules[sr->group].last = SINK_NONE;
	}
	k->ndirty = 0;
	n = k->inserted;
	k->inserted = 0;
	return n;
}

int
sink_sqlite_flush_all(struct sink_sqlite *const *ks, size_t n,
    const struct sink_sqlite *except, uint64_t *rows)
{
	size_t i;
	int got;

	for (i = 0; i < n; i++) {
		if (ks[i] == except ||
		    (ks[i]->ndirty == 0 && ks[i]->inserted == 0))
			continue;
		if ((got = sink_sqlite_flush(ks[i])) < 0)
			return GW_EIO;
		if (rows != NULL)
			*rows += (uint64_t)got;
	}
	return 0;
}

void
sink_sqlite_discard(struct sink_sqlite *k)
{
	struct sink_rule *sr;
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->ndirty; i++) {
		sr = &k->rules[k->dirty[i]];
		if (sr->buf != NULL)
			rowbuf_clear(sr->buf);
		sr->listed = 0;
		k->rules[sr->group].last = SINK_NONE;
	}
	k->ndirty = 0;
	k->inserted = 0;
}

void
sink_sqlite_free(struct sink_sqlite *k)
{
	size_t i, z;

	if (k == NULL)
		return;
	for (i = 0; i < k->nrules && k->rules != NULL; i++) {
		for (z = 0; z < SINK_NSIZES; z++)
			sqlite3_finalize(k->rules[i].ins[z]);
		rowbuf_free(k->rules[i].buf);
	}
	gw_free(k->rules);
	gw_free(k->dirty);
	sqlite3_finalize(k->rejected);
	gw_free(k->vals);
	rule_set_unref(&k->set);
	gw_free(k);
}
