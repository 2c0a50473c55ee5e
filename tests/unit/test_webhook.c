/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of webhook.c and the delivery thread (loop.c) against a REAL HTTP
 * server on 127.0.0.1: tests/helpers/http_stub.py, started per test with
 * fork/exec, which logs every request it gets as a JSON line. The test
 * plays the store thread: it owns the writer connection, enqueues rows
 * with the outbox API in its own transactions, calls deliver_wake(), and
 * applies the results queue with outbox_apply_results(), exactly as the
 * store thread will. Timing checks are loose on purpose (CI is noisy);
 * every wait is bounded.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include "clock.h"
#include "cutest.h"
#include "deliver/loop.h"
#include "deliver/webhook.h"
#include "err.h"
#include "mem.h"
#include "testdb.h"
#include "queue.h"
#include "store/outbox.h"
#include "store/schema.h"

#define MAX_ARGS	24
#define MAX_ROUTES	4
#define SETTLE_MS	20000

static char	tmpdir[64];
static int	counter;
static char	stub_path[512];

struct stub {
	pid_t	pid;
	int	port;
	char	log[256];
};

/* One request as the stub logged it. */
struct rec {
	char	path[64];
	char	key[160];
	char	ctype[64];
	char	token[64];
	char	sig[160];
	char	*body;
	int	status;
	int	hmac_ok;	/* -1: not checked */
	double	t0, t1;
	int	peer;
};

struct world {
	char		 path[256];	/* database */
	sqlite3		*db;		/* the "store thread" connection */
	struct outbox	*ob;
	struct queue	*q;
	struct deliver	*d;
	struct stub	 stub;
	char		 inst[80];
};

/* ------------------------------------------------------------------ */
/* The stub server.                                                     */

static bool
stub_start(struct stub *s, const char *const *extra)
{
	const char *argv[MAX_ARGS];
	char buf[64];
	struct pollfd pfd;
	size_t n = 0, i;
	long long end;
	ssize_t r;
	int fd[2];

	memset(s, 0, sizeof s[0]);
	snprintf(s->log, sizeof s->log, "%s/stub%d.log", tmpdir, ++counter);
	argv[n++] = "/usr/bin/python3";
	argv[n++] = stub_path;
	argv[n++] = "--log";
	argv[n++] = s->log;
	argv[n++] = "--max-seconds";
	argv[n++] = "55";
	for (i = 0; extra != NULL && extra[i] != NULL && n < MAX_ARGS - 1; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (pipe(fd) != 0)
		return false;
	if ((s->pid = fork()) < 0)
		return false;
	if (s->pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	/* The first line is the port; wait for it at most 10 s. */
	n = 0;
	end = clock_mono_ms() + 10000;
	pfd.fd = fd[0];
	pfd.events = POLLIN;
	while (n < sizeof buf - 1 && memchr(buf, '\n', n) == NULL) {
		if (poll(&pfd, 1, (int)(end - clock_mono_ms())) <= 0)
			break;
		if ((r = read(fd[0], buf + n, sizeof buf - 1 - n)) <= 0)
			break;
		n += (size_t)r;
	}
	close(fd[0]);
	buf[n] = '\0';
	s->port = atoi(buf);
	if (s->port <= 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
		return false;
	}
	return true;
}

static void
stub_stop(struct stub *s)
{
	struct timespec ts = { 0, 10000000L };
	int i;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (i = 0; i < 300; i++) {
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return;
		}
		nanosleep(&ts, NULL);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
copy_str(char *dst, size_t len, const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	dst[0] = '\0';
	if (cJSON_IsString(v))
		snprintf(dst, len, "%s", v->valuestring);
}

/* Reads the stub's log; returns the count (*out: gw_malloc'd array). */
static size_t
stub_read(struct stub *s, struct rec **out)
{
	struct rec *recs = NULL, *p;
	char *line = NULL;
	size_t cap = 0, n = 0;
	cJSON *o, *h, *v;
	FILE *f;

	*out = NULL;
	if ((f = fopen(s->log, "r")) == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		if ((o = cJSON_Parse(line)) == NULL)
			continue;
		p = realloc(recs, (n + 1) * sizeof *recs);
		if (p == NULL) {
			cJSON_Delete(o);
			break;
		}
		recs = p;
		p = &recs[n++];
		memset(p, 0, sizeof *p);
		copy_str(p->path, sizeof p->path, o, "path");
		h = cJSON_GetObjectItemCaseSensitive(o, "headers");
		copy_str(p->key, sizeof p->key, h, "Idempotency-Key");
		copy_str(p->ctype, sizeof p->ctype, h, "Content-Type");
		copy_str(p->token, sizeof p->token, h, "X-Token");
		copy_str(p->sig, sizeof p->sig, h, "X-Mqlite-Signature");
		v = cJSON_GetObjectItemCaseSensitive(o, "body");
		p->body = strdup(cJSON_IsString(v) ? v->valuestring : "");
		v = cJSON_GetObjectItemCaseSensitive(o, "status");
		p->status = cJSON_IsNumber(v) ? v->valueint : 0;
		v = cJSON_GetObjectItemCaseSensitive(o, "hmac_ok");
		p->hmac_ok = cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
		v = cJSON_GetObjectItemCaseSensitive(o, "t_start");
		p->t0 = cJSON_IsNumber(v) ? v->valuedouble : 0;
		v = cJSON_GetObjectItemCaseSensitive(o, "t_end");
		p->t1 = cJSON_IsNumber(v) ? v->valuedouble : 0;
		v = cJSON_GetObjectItemCaseSensitive(o, "peer_port");
		p->peer = cJSON_IsNumber(v) ? v->valueint : 0;
		cJSON_Delete(o);
	}
	free(line);
	fclose(f);
	*out = recs;
	return n;
}

static void
recs_free(struct rec *recs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(recs[i].body);
	free(recs);
}

/* Most requests the stub was serving at the same moment. */
static int
max_overlap(const struct rec *recs, size_t n)
{
	int best = 0, cur;
	size_t i, j;

	for (i = 0; i < n; i++) {
		cur = 0;
		for (j = 0; j < n; j++)
			if (recs[j].t0 <= recs[i].t0 && recs[j].t1 > recs[i].t0)
				cur++;
		if (cur > best)
			best = cur;
	}
	return best;
}

/* ------------------------------------------------------------------ */
/* The world: database, outbox, results queue, delivery thread, stub.  */

static bool
world_open(struct world *w, const char *const *stub_args)
{
	struct gw_error err;

	memset(w, 0, sizeof *w);
	memset(&err, 0, sizeof err);
	snprintf(w->path, sizeof w->path, "%s/w%d.db", tmpdir, ++counter);
	if (sqlite3_open(w->path, &w->db) != SQLITE_OK)
		return false;
	sqlite3_busy_timeout(w->db, 5000);
	if (schema_apply(w->db, &err) != 0 ||
	    sqlite3_exec(w->db, "PRAGMA journal_mode = WAL", NULL, NULL,
	    NULL) != SQLITE_OK)
		return false;
	testdb_text(w->db, "SELECT value FROM mqlite_meta WHERE key ="
	    " 'instance_id'", w->inst, sizeof w->inst);
	if ((w->ob = outbox_open(w->db)) == NULL)
		return false;
	if ((w->q = queue_new(sizeof(struct outbox_result), 4096)) == NULL)
		return false;
	return stub_start(&w->stub, stub_args);
}

static void
route_init(struct deliver_route *r, const char *name)
{
	deliver_route_defaults(r);
	r->name = name;
	r->retry.base_ms = 20;
	r->retry.cap_ms = 200;
}

static bool
world_start(struct world *w, const struct deliver_route *routes, size_t n)
{
	struct deliver_opts o;
	struct gw_error err;

	memset(&o, 0, sizeof o);
	memset(&err, 0, sizeof err);
	o.db_path = w->path;
	o.routes = routes;
	o.nroutes = n;
	o.results = w->q;
	o.seed = 1234;
	o.gauge_ms = 100;
	w->d = deliver_start(&o, &err);
	if (w->d == NULL)
		fprintf(stderr, "deliver_start: %s\n", err.msg);
	return w->d != NULL;
}

/* Applies whatever results are queued, as the store thread would. */
static size_t
world_apply(struct world *w, int wait_ms)
{
	return testdb_apply_results(w->db, w->ob, w->q, wait_ms, NULL, NULL,
	    NULL);
}

/* Enqueues n rows in one transaction; returns the first id. */
static int64_t
world_put(struct world *w, const char *route, const char *path,
    const char *headers, const char *const *bodies, size_t n)
{
	char url[128];
	int64_t id, first = 0;
	size_t i;

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", w->stub.port,
	    path);
	CU_ASSERT_EQUAL(sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(outbox_enqueue(w->ob, route, url, headers,
		    bodies[i], strlen(bodies[i]), clock_wall_ms(), &id), 0);
		if (i == 0)
			first = id;
	}
	CU_ASSERT_EQUAL(sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_committed(w->ob);
	if (w->d != NULL)
		deliver_wake(w->d);
	return first;
}

static int64_t
world_put1(struct world *w, const char *route, const char *path,
    const char *headers, const char *body)
{
	return world_put(w, route, path, headers, &body, 1);
}

/* Applies results until the outbox and dead tables have these counts. */
static bool
world_settle(struct world *w, long long outbox_rows, long long dead_rows,
    int timeout_ms)
{
	long long end = clock_mono_ms() + timeout_ms;

	for (;;) {
		world_apply(w, 20);
		if (testdb_int(w->db, "SELECT count(*) FROM outbox") ==
		    outbox_rows && testdb_int(w->db, "SELECT count(*) FROM"
		    " outbox_dead") == dead_rows)
			return true;
		if (clock_mono_ms() > end)
			return false;
	}
}

/* Waits until the stub logged at least n requests. */
static bool
world_wait_requests(struct world *w, size_t n, int timeout_ms)
{
	long long end = clock_mono_ms() + timeout_ms;
	struct rec *recs;
	size_t got;

	for (;;) {
		world_apply(w, 20);
		got = stub_read(&w->stub, &recs);
		recs_free(recs, got);
		if (got >= n)
			return true;
		if (clock_mono_ms() > end)
			return false;
	}
}

static void
world_close(struct world *w)
{
	deliver_stop(w->d, 0);
	w->d = NULL;
	while (world_apply(w, 0) > 0)
		;
	stub_stop(&w->stub);
	queue_free(w->q);
	outbox_close(w->ob);
	sqlite3_close(w->db);
}

static void
key_of(const struct world *w, int64_t first, int64_t last, char *buf,
    size_t len)
{
	CU_ASSERT_EQUAL(webhook_idempotency_key(buf, len, w->inst, first,
	    last), 0);
}

struct stats_seen {
	const char	*route;
	struct results_route_stats st;
	bool		 found;
};

static void
stats_cb(const struct results_route_stats *st, void *ctx)
{
	struct stats_seen *s = ctx;

	if (strcmp(st->route, s->route) == 0) {
		s->st = *st;
		s->found = true;
	}
}

static struct results_route_stats
stats_of(struct world *w, const char *route)
{
	struct stats_seen s;

	memset(&s, 0, sizeof s);
	s.route = route;
	deliver_stats(w->d, stats_cb, &s);
	CU_ASSERT(s.found);
	return s.st;
}

/* ------------------------------------------------------------------ */
/* Pure parts.                                                          */

static void
test_classify(void)
{
	CU_ASSERT_EQUAL(webhook_classify(200, CURLE_OK), OUTBOX_OK);
	CU_ASSERT_EQUAL(webhook_classify(204, CURLE_OK), OUTBOX_OK);
	CU_ASSERT_EQUAL(webhook_classify(299, CURLE_OK), OUTBOX_OK);
	CU_ASSERT_EQUAL(webhook_classify(408, CURLE_OK), OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(429, CURLE_OK), OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(500, CURLE_OK), OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(503, CURLE_OK), OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(599, CURLE_OK), OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(400, CURLE_OK), OUTBOX_FAIL);
	CU_ASSERT_EQUAL(webhook_classify(401, CURLE_OK), OUTBOX_FAIL);
	CU_ASSERT_EQUAL(webhook_classify(404, CURLE_OK), OUTBOX_FAIL);
	CU_ASSERT_EQUAL(webhook_classify(301, CURLE_OK), OUTBOX_FAIL);
	CU_ASSERT_EQUAL(webhook_classify(302, CURLE_OK), OUTBOX_FAIL);
	CU_ASSERT_EQUAL(webhook_classify(0, CURLE_COULDNT_CONNECT),
	    OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(0, CURLE_OPERATION_TIMEDOUT),
	    OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(0, CURLE_PEER_FAILED_VERIFICATION),
	    OUTBOX_RETRY);
	CU_ASSERT_EQUAL(webhook_classify(0, CURLE_URL_MALFORMAT),
	    OUTBOX_FAIL);
	CU_ASSERT_EQUAL(webhook_classify(0, CURLE_UNSUPPORTED_PROTOCOL),
	    OUTBOX_FAIL);
}

static void
test_hmac_and_key(void)
{
	char hex[65], key[64];

	/* Checked with: printf '%s' '1700000000.{"a":1}' |
	 * openssl dgst -sha256 -hmac s3cret */
	CU_ASSERT_EQUAL(webhook_hmac_hex("s3cret", 1700000000, "{\"a\":1}", 7,
	    hex), 0);
	CU_ASSERT_STRING_EQUAL(hex, "1698a50bc74d1ff1db85c4e0a5297c2a"
	    "d9fdba245d5737cdb789e4cc6e098940");
	CU_ASSERT_EQUAL(webhook_hmac_hex("k", 42, NULL, 0, hex), 0);
	CU_ASSERT_STRING_EQUAL(hex, "8b39da342ea5ffdfeef76bb188bebc0f"
	    "1c6f8fb35a98281fd3f6370ec477b2a4");

	CU_ASSERT_EQUAL(webhook_idempotency_key(key, sizeof key, "abc", 7, 7),
	    0);
	CU_ASSERT_STRING_EQUAL(key, "abc-7");
	CU_ASSERT_EQUAL(webhook_idempotency_key(key, sizeof key, "abc", 7, 9),
	    0);
	CU_ASSERT_STRING_EQUAL(key, "abc-7-9");
	CU_ASSERT_EQUAL(webhook_idempotency_key(key, 6, "abc", 7, 9),
	    GW_ETOOBIG);
}

static void
test_prepare_rejects(void)
{
	struct webhook_conf conf;
	struct webhook_req *req;
	struct outbox_row row;
	char url[] = "http://127.0.0.1:9/x", body[] = "{}";

	memset(&conf, 0, sizeof conf);
	memset(&row, 0, sizeof row);
	row.id = 1;
	row.url = url;
	row.body = body;
	row.body_len = 2;
	CU_ASSERT_PTR_NOT_NULL_FATAL(req = webhook_req_new());

	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0), 0);
	CU_ASSERT_STRING_EQUAL(webhook_req_key(req), "i-1");

	row.headers = "{\"X-A\":\"a\\r\\nInjected: 1\"}";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0),
	    GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(webhook_req_error(req), "CR or LF"));
	row.headers = "{\"X-A\":\"a\\nb\"}";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0),
	    GW_EMALFORMED);
	row.headers = "{\"X-A\":\"a\\u0000b\"}";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0),
	    GW_EMALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(webhook_req_error(req), "NUL"));
	/* An escaped backslash before u0000 is just text. */
	row.headers = "{\"X-A\":\"a\\\\u0000b\"}";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0), 0);
	row.headers = "{\"Bad Name\":\"v\"}";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0),
	    GW_EMALFORMED);
	row.headers = "[1,2]";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0),
	    GW_EMALFORMED);
	row.headers = "{\"X-N\":{\"o\":1}}";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0),
	    GW_EMALFORMED);
	row.headers = "{\"X-N\":5,\"X-B\":true}";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0), 0);
	row.headers = NULL;
	conf.method = "GE T";
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 1, 0),
	    GW_EMALFORMED);
	conf.method = NULL;
	CU_ASSERT_EQUAL(webhook_req_prepare(req, &conf, "i", &row, 0, 0),
	    GW_EMALFORMED);
	webhook_req_free(req);
	webhook_req_free(NULL);
}

/* ------------------------------------------------------------------ */
/* End to end against http_stub.py.                                     */

static void
test_ok_deletes(void)
{
	static const char *const bodies[] = { "{\"n\":1}", "{\"n\":2}",
	    "{\"n\":3}" };
	struct deliver_route r;
	struct results_route_stats st;
	struct world w;
	struct rec *recs;
	char key[160];
	int64_t first;
	size_t n, i;

	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r, "ok/webhook");
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	first = world_put(&w, "ok/webhook", "/hook", "{\"X-Token\":\"t1\"}",
	    bodies, 3);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	for (i = 0; i < n; i++) {
		key_of(&w, first + (int64_t)i, first + (int64_t)i, key,
		    sizeof key);
		CU_ASSERT_STRING_EQUAL(recs[i].key, key);
		CU_ASSERT_STRING_EQUAL(recs[i].body, bodies[i]);
		CU_ASSERT_STRING_EQUAL(recs[i].path, "/hook");
		CU_ASSERT_STRING_EQUAL(recs[i].ctype, "application/json");
		CU_ASSERT_STRING_EQUAL(recs[i].token, "t1");
		CU_ASSERT_EQUAL(recs[i].sig[0], '\0');
	}
	/* One kept-alive connection served them all. */
	CU_ASSERT_EQUAL(recs[0].peer, recs[2].peer);
	recs_free(recs, n);
	st = stats_of(&w, "ok/webhook");
	CU_ASSERT_EQUAL(st.delivered, 3);
	CU_ASSERT_EQUAL(st.retried, 0);
	CU_ASSERT_EQUAL(st.dead, 0);
	world_close(&w);
}

static void
test_retry_in_order(void)
{
	static const char *const args[] = { "--statuses", "500,500,200",
	    NULL };
	static const char *const bodies[] = { "{\"n\":1}", "{\"n\":2}",
	    "{\"n\":3}" };
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	char k1[160], k2[160], k3[160];
	int64_t first;
	size_t n;

	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r, "flaky/webhook");
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	first = world_put(&w, "flaky/webhook", "/h", NULL, bodies, 3);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 5);
	key_of(&w, first, first, k1, sizeof k1);
	key_of(&w, first + 1, first + 1, k2, sizeof k2);
	key_of(&w, first + 2, first + 2, k3, sizeof k3);
	/* The same row, with the same key, until it went through. */
	CU_ASSERT_STRING_EQUAL(recs[0].key, k1);
	CU_ASSERT_STRING_EQUAL(recs[1].key, k1);
	CU_ASSERT_STRING_EQUAL(recs[2].key, k1);
	CU_ASSERT_STRING_EQUAL(recs[3].key, k2);
	CU_ASSERT_STRING_EQUAL(recs[4].key, k3);
	CU_ASSERT_EQUAL(recs[0].status, 500);
	CU_ASSERT_EQUAL(recs[1].status, 500);
	CU_ASSERT_EQUAL(recs[2].status, 200);
	CU_ASSERT_STRING_EQUAL(recs[2].body, bodies[0]);
	CU_ASSERT_STRING_EQUAL(recs[4].body, bodies[2]);
	recs_free(recs, n);
	CU_ASSERT_EQUAL(stats_of(&w, "flaky/webhook").retried, 2);
	CU_ASSERT_EQUAL(stats_of(&w, "flaky/webhook").delivered, 3);
	world_close(&w);
}

static void
test_4xx_3xx_dead(void)
{
	static const char *const args[] = { "--rule", "/bad=400",
	    "--rule", "/moved=301", "--body", NULL, NULL };
	const char *a[7];
	struct deliver_route r;
	struct world w;
	char text[1024], big[700];
	int64_t bad, good, moved;

	memset(big, 'e', 600);
	big[600] = '\0';
	memcpy(a, args, sizeof a);
	a[5] = big;
	CU_ASSERT_FATAL(world_open(&w, a));
	route_init(&r, "mixed/webhook");
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	bad = world_put1(&w, "mixed/webhook", "/bad", NULL, "{\"n\":1}");
	good = world_put1(&w, "mixed/webhook", "/good", NULL, "{\"n\":2}");
	moved = world_put1(&w, "mixed/webhook", "/moved", NULL, "{\"n\":3}");
	CU_ASSERT(world_settle(&w, 0, 2, SETTLE_MS));
	CU_ASSERT(good > bad && moved > good);

	snprintf(text, sizeof text, "SELECT status FROM outbox_dead"
	    " WHERE id = %lld", (long long)bad);
	CU_ASSERT_EQUAL(testdb_int(w.db, text), 400);
	snprintf(text, sizeof text, "SELECT status FROM outbox_dead"
	    " WHERE id = %lld", (long long)moved);
	CU_ASSERT_EQUAL(testdb_int(w.db, text), 301);
	snprintf(text, sizeof text, "SELECT length(response) FROM outbox_dead"
	    " WHERE id = %lld", (long long)bad);
	CU_ASSERT_EQUAL(testdb_int(w.db, text), OUTBOX_SNIPPET_MAX);
	CU_ASSERT(testdb_text(w.db, "SELECT last_error || '/' || attempts ||"
	    " '/' || body FROM outbox_dead ORDER BY id LIMIT 1", text,
	    sizeof text));
	CU_ASSERT_STRING_EQUAL(text, "HTTP 400/1/{\"n\":1}");
	CU_ASSERT_EQUAL(stats_of(&w, "mixed/webhook").dead, 2);
	CU_ASSERT_EQUAL(stats_of(&w, "mixed/webhook").delivered, 1);
	world_close(&w);
}

static void
test_timeout_max_attempts(void)
{
	static const char *const args[] = { "--delay-ms", "3000", NULL };
	struct deliver_route r;
	struct world w;
	char text[512];
	long long t0;

	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r, "slow/webhook");
	r.http.timeout_ms = 200;
	r.retry.max_attempts = 2;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	t0 = clock_mono_ms();
	world_put1(&w, "slow/webhook", "/slow", NULL, "{}");
	CU_ASSERT(world_settle(&w, 0, 1, SETTLE_MS));
	/* Two attempts of ~200 ms each, not two of 3 s (6 s). */
	CU_ASSERT(clock_mono_ms() - t0 < 4500);
	CU_ASSERT(testdb_text(w.db, "SELECT last_error FROM outbox_dead", text,
	    sizeof text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "max_attempts 2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "imed out"));
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT attempts FROM outbox_dead"),
	    2);
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT status IS NULL FROM"
	    " outbox_dead"), 1);
	CU_ASSERT_EQUAL(stats_of(&w, "slow/webhook").retried, 1);
	world_close(&w);
}

static void
test_batch_array(void)
{
	const char *bodies[12];
	char bufs[12][16], key[160];
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	cJSON *arr, *it;
	int64_t first;
	size_t n, i;
	int j, expect;

	for (i = 0; i < 12; i++) {
		snprintf(bufs[i], sizeof bufs[i], "{\"n\":%zu}", i);
		bodies[i] = bufs[i];
	}
	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r, "batch/webhook");
	r.batch.max_messages = 5;
	r.batch.max_delay_ms = 300;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	first = world_put(&w, "batch/webhook", "/b", NULL, bodies, 12);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	expect = 0;
	for (i = 0; i < n; i++) {
		CU_ASSERT_STRING_EQUAL(recs[i].ctype, "application/json");
		arr = cJSON_Parse(recs[i].body);
		CU_ASSERT_FATAL(cJSON_IsArray(arr));
		CU_ASSERT_EQUAL(cJSON_GetArraySize(arr), i < 2 ? 5 : 2);
		j = 0;
		cJSON_ArrayForEach(it, arr) {
			CU_ASSERT_EQUAL(cJSON_GetObjectItem(it, "n")->valueint,
			    expect);
			expect++;
			j++;
		}
		key_of(&w, first + (int64_t)i * 5, first + (int64_t)i * 5 +
		    j - 1, key, sizeof key);
		CU_ASSERT_STRING_EQUAL(recs[i].key, key);
		cJSON_Delete(arr);
	}
	CU_ASSERT_EQUAL(expect, 12);
	recs_free(recs, n);
	CU_ASSERT_EQUAL(stats_of(&w, "batch/webhook").delivered, 12);
	world_close(&w);
}

static void
test_batch_retry_same_rows(void)
{
	static const char *const args[] = { "--statuses", "503,200", NULL };
	static const char *const bodies[] = { "1", "2", "3" };
	static const char *const more[] = { "4", "5" };
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	char key[160];
	int64_t first;
	size_t n;

	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r, "bretry/webhook");
	r.batch.max_messages = 3;
	r.retry.base_ms = 300;
	r.retry.cap_ms = 300;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	first = world_put(&w, "bretry/webhook", "/b", NULL, bodies, 3);
	/* Rows that arrive during the backoff do not join the retry. */
	CU_ASSERT(world_wait_requests(&w, 1, 5000));
	world_put(&w, "bretry/webhook", "/b", NULL, more, 2);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	key_of(&w, first, first + 2, key, sizeof key);
	CU_ASSERT_STRING_EQUAL(recs[0].key, key);
	CU_ASSERT_STRING_EQUAL(recs[1].key, key);
	CU_ASSERT_STRING_EQUAL(recs[0].body, "[1,2,3]");
	CU_ASSERT_STRING_EQUAL(recs[1].body, "[1,2,3]");
	CU_ASSERT_EQUAL(recs[0].status, 503);
	CU_ASSERT_EQUAL(recs[1].status, 200);
	CU_ASSERT_STRING_EQUAL(recs[2].body, "[4,5]");
	key_of(&w, first + 3, first + 4, key, sizeof key);
	CU_ASSERT_STRING_EQUAL(recs[2].key, key);
	recs_free(recs, n);
	world_close(&w);
}

static void
test_batch_ndjson_delay(void)
{
	static const char *const bodies[] = { "{\"n\":1}", "{\"n\":2}",
	    "{\"n\":3}" };
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	long long t0;
	size_t n;

	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r, "nd/webhook");
	r.batch.max_messages = 10;
	r.batch.max_delay_ms = 300;
	r.batch.format = WEBHOOK_FORMAT_NDJSON;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	t0 = clock_mono_ms();
	world_put(&w, "nd/webhook", "/nd", NULL, bodies, 2);
	world_put(&w, "nd/webhook", "/nd", NULL, bodies + 2, 1);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	/* Not full: it waited for max_delay_ms, then sent the three. */
	CU_ASSERT(clock_mono_ms() - t0 >= 250);
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(recs[0].body,
	    "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
	CU_ASSERT_STRING_EQUAL(recs[0].ctype, "application/x-ndjson");
	recs_free(recs, n);
	world_close(&w);
}

static void
test_hmac_verified(void)
{
	static const char *const args[] = { "--hmac-secret", "s3cret", NULL };
	struct deliver_route r[2];
	struct world w;
	struct rec *recs;
	size_t n, i, good = 0;

	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r[0], "signed/webhook");
	r[0].http.hmac_secret = "s3cret";
	route_init(&r[1], "wrong/webhook");
	r[1].http.hmac_secret = "not-it";
	CU_ASSERT_FATAL(world_start(&w, r, 2));
	world_put1(&w, "signed/webhook", "/s", NULL, "{\"a\":1}");
	world_put1(&w, "signed/webhook", "/s", NULL, "{\"a\":2}");
	world_put1(&w, "wrong/webhook", "/w", NULL, "{\"a\":3}");
	CU_ASSERT(world_settle(&w, 0, 1, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL(n, 3);
	for (i = 0; i < n; i++) {
		CU_ASSERT_PTR_NOT_NULL(strstr(recs[i].sig, ",sha256="));
		CU_ASSERT_EQUAL(strncmp(recs[i].sig, "t=", 2), 0);
		if (strcmp(recs[i].path, "/s") == 0) {
			CU_ASSERT_EQUAL(recs[i].hmac_ok, 1);
			CU_ASSERT_EQUAL(recs[i].status, 200);
			good++;
		} else
			CU_ASSERT_EQUAL(recs[i].hmac_ok, 0);
	}
	CU_ASSERT_EQUAL(good, 2);
	recs_free(recs, n);
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT status FROM outbox_dead"),
	    401);
	world_close(&w);
}

static void
test_bad_header_not_sent(void)
{
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	char text[256];
	size_t n;

	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r, "hdr/webhook");
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	world_put1(&w, "hdr/webhook", "/x", "{\"X-A\":\"a\\r\\nX-Evil: 1\"}",
	    "{}");
	world_put1(&w, "hdr/webhook", "/x", "{\"X-A\":\"a\\u0000b\"}", "{}");
	world_put1(&w, "hdr/webhook", "/ok", "{\"X-Token\":\"fine\","
	    "\"Idempotency-Key\":\"forged\",\"Content-Length\":\"999\"}",
	    "{}");
	CU_ASSERT(world_settle(&w, 0, 2, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(recs[0].path, "/ok");
	CU_ASSERT_STRING_EQUAL(recs[0].token, "fine");
	CU_ASSERT_STRING_EQUAL(recs[0].body, "{}");
	CU_ASSERT_PTR_NULL(strstr(recs[0].key, "forged"));
	CU_ASSERT(strlen(recs[0].key) > strlen(w.inst));
	recs_free(recs, n);
	CU_ASSERT(testdb_text(w.db, "SELECT last_error FROM outbox_dead"
	    " ORDER BY id LIMIT 1", text, sizeof text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "CR or LF"));
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT max(attempts) FROM"
	    " outbox_dead"), 0);
	world_close(&w);
}

static void
test_ordered_one_in_flight(void)
{
	static const char *const args[] = { "--delay-ms", "60", NULL };
	static const char *const bodies[] = { "1", "2", "3", "4", "5", "6",
	    "7", "8" };
	struct deliver_route r[2];
	struct world w;
	struct rec *recs, *ord, *un;
	size_t n, i, nord = 0, nun = 0;

	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r[0], "ord/webhook");
	route_init(&r[1], "un/webhook");
	r[1].ordered = false;
	r[1].max_in_flight = 4;
	CU_ASSERT_FATAL(world_start(&w, r, 2));
	world_put(&w, "ord/webhook", "/ord", NULL, bodies, 6);
	world_put(&w, "un/webhook", "/un", NULL, bodies, 8);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 14);
	ord = calloc(n, sizeof *ord);
	un = calloc(n, sizeof *un);
	CU_ASSERT_FATAL(ord != NULL && un != NULL);
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].path, "/ord") == 0)
			ord[nord++] = recs[i];
		else
			un[nun++] = recs[i];
	}
	CU_ASSERT_EQUAL(nord, 6);
	CU_ASSERT_EQUAL(max_overlap(ord, nord), 1);
	/* In id order, too. */
	for (i = 0; i < nord; i++) {
		char want[2] = { (char)('1' + i), '\0' };

		CU_ASSERT_STRING_EQUAL(ord[i].body, want);
	}
	/* The unordered route overlaps, within its bound. Routes overlap. */
	CU_ASSERT(max_overlap(un, nun) >= 2);
	CU_ASSERT(max_overlap(un, nun) <= 4);
	CU_ASSERT(max_overlap(recs, n) >= 2);
	free(ord);
	free(un);
	recs_free(recs, n);
	world_close(&w);
}

static void
test_rate_limit(void)
{
	const char *bodies[20];
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	double span;
	size_t n, i;

	for (i = 0; i < 20; i++)
		bodies[i] = "{}";
	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r, "rate/webhook");
	r.ordered = false;
	r.rate_limit_per_s = 20;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	world_put(&w, "rate/webhook", "/r", NULL, bodies, 20);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 20);
	span = recs[n - 1].t0 - recs[0].t0;
	for (i = 1; i < n; i++)
		if (recs[i].t0 - recs[0].t0 > span)
			span = recs[i].t0 - recs[0].t0;
	/* 20 requests at 20/s (burst 2): about 0.9 s; loose bounds. */
	CU_ASSERT(span >= 0.6);
	CU_ASSERT(span < 10);
	recs_free(recs, n);
	world_close(&w);
}

static void
test_retry_after(void)
{
	static const char *const args[] = { "--statuses", "503",
	    "--retry-after", "1", NULL };
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	size_t n;

	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r, "ra/webhook");
	r.retry.base_ms = 5;
	r.retry.cap_ms = 60000;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	world_put1(&w, "ra/webhook", "/ra", NULL, "{}");
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	/* base 5 ms would retry at once; the server asked for 1 s. */
	CU_ASSERT(recs[1].t0 - recs[0].t1 >= 0.85);
	CU_ASSERT_STRING_EQUAL(recs[0].key, recs[1].key);
	recs_free(recs, n);
	world_close(&w);
}

static void
test_scheduled_row_waits(void)
{
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	long long t0;
	int64_t id;
	size_t n;

	/* A row rescheduled before a "restart" waits for its next_ms. */
	CU_ASSERT_FATAL(world_open(&w, NULL));
	id = world_put1(&w, "later/webhook", "/l", NULL, "{\"n\":1}");
	world_put1(&w, "later/webhook", "/l", NULL, "{\"n\":2}");
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(outbox_reschedule(w.ob, id, clock_wall_ms() + 700,
	    "HTTP 503"), 0);
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_committed(w.ob);
	route_init(&r, "later/webhook");
	t0 = clock_mono_ms();
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	CU_ASSERT(clock_mono_ms() - t0 >= 550);
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	/* Ordered: the held row first, then the next one. */
	CU_ASSERT_STRING_EQUAL(recs[0].body, "{\"n\":1}");
	CU_ASSERT_STRING_EQUAL(recs[1].body, "{\"n\":2}");
	recs_free(recs, n);
	world_close(&w);
}

static void
test_held_ids_and_cap(void)
{
	static const char *const args[] = { "--delay-ms", "700", NULL };
	static const char *const bodies[] = { "{}", "{}", "{}" };
	struct deliver_route r;
	struct world w;
	int64_t *held = NULL, first;
	uint64_t dropped = 99;
	long long end;
	size_t nheld = 0;

	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r, "held/webhook");
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	first = world_put(&w, "held/webhook", "/h", NULL, bodies, 3);
	end = clock_mono_ms() + 5000;
	while (clock_mono_ms() < end) {
		gw_free(held);
		CU_ASSERT_EQUAL(deliver_held_ids(w.d, &held, &nheld), 0);
		if (nheld == 3)
			break;
		world_apply(&w, 10);
	}
	CU_ASSERT_EQUAL_FATAL(nheld, 3);
	/* Gauges refresh every 100 ms here: depth 3, oldest set. */
	end = clock_mono_ms() + 3000;
	while (stats_of(&w, "held/webhook").depth != 3 &&
	    clock_mono_ms() < end)
		world_apply(&w, 20);
	CU_ASSERT_EQUAL(stats_of(&w, "held/webhook").depth, 3);
	CU_ASSERT(stats_of(&w, "held/webhook").oldest_ms > 0);
	CU_ASSERT_EQUAL(stats_of(&w, "held/webhook").in_flight, 1);
	CU_ASSERT_EQUAL(held[0], first);
	CU_ASSERT_EQUAL(held[2], first + 2);
	/* The cap leaves the held rows alone even when far over. */
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(outbox_enforce_cap(w.ob, 1, held, nheld, &dropped),
	    0);
	CU_ASSERT_EQUAL(dropped, 0);
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_rolled_back(w.ob);
	gw_free(held);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	CU_ASSERT_EQUAL(deliver_held_ids(w.d, &held, &nheld), 0);
	CU_ASSERT_EQUAL(nheld, 0);
	CU_ASSERT_PTR_NULL(held);
	deliver_count_dropped(w.d, "held/webhook", 4);
	CU_ASSERT_EQUAL(stats_of(&w, "held/webhook").dropped, 4);
	world_close(&w);
}

static void
test_reload_and_gauges(void)
{
	struct deliver_route r[2];
	struct results_route_stats st;
	struct world w;
	long long end;

	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r[0], "a/webhook");
	route_init(&r[1], "b/webhook");
	/* Duplicate names are refused. */
	{
		struct deliver_route dup[2];
		struct deliver_opts o;

		dup[0] = r[0];
		dup[1] = r[0];
		memset(&o, 0, sizeof o);
		o.db_path = w.path;
		o.routes = dup;
		o.nroutes = 2;
		o.results = w.q;
		CU_ASSERT_PTR_NULL(deliver_start(&o, NULL));
	}
	CU_ASSERT_FATAL(world_start(&w, r, 1));
	world_put1(&w, "b/webhook", "/b", NULL, "{\"b\":1}");
	world_put1(&w, "a/webhook", "/a", NULL, "{\"a\":1}");
	CU_ASSERT(world_settle(&w, 1, 0, SETTLE_MS));
	/* b is not configured: its row stays, counted in no route. */
	CU_ASSERT(world_wait_requests(&w, 1, 1000));
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT count(*) FROM outbox"
	    " WHERE route = 'b/webhook'"), 1);
	CU_ASSERT_EQUAL(deliver_update_routes(w.d, r, 2), 0);
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	CU_ASSERT_EQUAL(stats_of(&w, "b/webhook").delivered, 1);

	/* Gauges: depth of a held-back route shows up. */
	CU_ASSERT_EQUAL(deliver_update_routes(w.d, r, 1), 0);
	world_put1(&w, "b/webhook", "/b", NULL, "{\"b\":2}");
	end = clock_mono_ms() + 5000;
	CU_ASSERT_EQUAL(deliver_update_routes(w.d, r, 2), 0);
	do {
		world_apply(&w, 20);
		st = stats_of(&w, "b/webhook");
	} while (st.delivered < 2 && clock_mono_ms() < end);
	CU_ASSERT_EQUAL(st.delivered, 2);
	CU_ASSERT_EQUAL(deliver_update_routes(w.d, r, 0), 0);
	world_close(&w);
}

static void
test_unreachable_retries(void)
{
	struct deliver_route r;
	struct world w;
	char text[256];

	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r, "down/webhook");
	r.retry.max_attempts = 3;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	/* Port 1 on loopback: connection refused, a network error. */
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(outbox_enqueue(w.ob, "down/webhook",
	    "http://127.0.0.1:1/x", NULL, "{}", 2, clock_wall_ms(), NULL), 0);
	CU_ASSERT_EQUAL(outbox_enqueue(w.ob, "down/webhook",
	    "ftp://127.0.0.1/x", NULL, "{}", 2, clock_wall_ms(), NULL), 0);
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_committed(w.ob);
	deliver_wake(w.d);
	CU_ASSERT(world_settle(&w, 0, 2, SETTLE_MS));
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT attempts FROM outbox_dead"
	    " ORDER BY id LIMIT 1"), 3);
	CU_ASSERT(testdb_text(w.db, "SELECT last_error FROM outbox_dead"
	    " ORDER BY id LIMIT 1", text, sizeof text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "max_attempts 3"));
	CU_ASSERT_EQUAL(stats_of(&w, "down/webhook").retried, 2);
	CU_ASSERT_EQUAL(stats_of(&w, "down/webhook").dead, 2);
	world_close(&w);
}

static void
test_max_age(void)
{
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	char text[256];
	size_t n;

	CU_ASSERT_FATAL(world_open(&w, NULL));
	route_init(&r, "age/webhook");
	r.retry.max_age_ms = 5000;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	snprintf(text, sizeof text, "http://127.0.0.1:%d/old", w.stub.port);
	CU_ASSERT_EQUAL(outbox_enqueue(w.ob, "age/webhook", text, NULL,
	    "{}", 2, clock_wall_ms() - 60000, NULL), 0);
	snprintf(text, sizeof text, "http://127.0.0.1:%d/new", w.stub.port);
	CU_ASSERT_EQUAL(outbox_enqueue(w.ob, "age/webhook", text, NULL,
	    "{}", 2, clock_wall_ms(), NULL), 0);
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_committed(w.ob);
	deliver_wake(w.d);
	CU_ASSERT(world_settle(&w, 0, 1, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(recs[0].path, "/new");
	recs_free(recs, n);
	CU_ASSERT(testdb_text(w.db, "SELECT last_error FROM outbox_dead", text,
	    sizeof text));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "max_age"));
	world_close(&w);
}

static void
test_unordered_goes_around(void)
{
	static const char *const bodies[] = { "{\"n\":1}", "{\"n\":2}",
	    "{\"n\":3}" };
	struct deliver_route r;
	struct world w;
	struct rec *recs;
	int64_t id;
	size_t n;

	/* Unordered: a row scheduled later does not hold back the rest. */
	CU_ASSERT_FATAL(world_open(&w, NULL));
	id = world_put(&w, "around/webhook", "/a", NULL, bodies, 3);
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(outbox_reschedule(w.ob, id, clock_wall_ms() + 700,
	    "HTTP 503"), 0);
	CU_ASSERT_EQUAL(sqlite3_exec(w.db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_committed(w.ob);
	route_init(&r, "around/webhook");
	r.ordered = false;
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	CU_ASSERT(world_settle(&w, 0, 0, SETTLE_MS));
	n = stub_read(&w.stub, &recs);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(recs[2].body, "{\"n\":1}");
	CU_ASSERT(recs[2].t0 - recs[0].t0 >= 0.4);
	recs_free(recs, n);
	world_close(&w);
}

static void
test_stop_grace(void)
{
	static const char *const args[] = { "--delay-ms", "300", NULL };
	struct deliver_route r;
	struct world w;
	int64_t *held = NULL;
	long long end;
	size_t nheld = 0;

	/* In flight at stop, with grace: its result still comes back. */
	CU_ASSERT_FATAL(world_open(&w, args));
	route_init(&r, "grace/webhook");
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	world_put1(&w, "grace/webhook", "/g", NULL, "{}");
	end = clock_mono_ms() + 3000;
	while (nheld == 0 && clock_mono_ms() < end) {
		CU_ASSERT_EQUAL(deliver_held_ids(w.d, &held, &nheld), 0);
		gw_free(held);
		nap_ms(5);
	}
	CU_ASSERT_EQUAL(nheld, 1);
	deliver_stop(w.d, 5000);
	w.d = NULL;
	while (world_apply(&w, 0) > 0)
		;
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT count(*) FROM outbox"), 0);

	/* Without grace it is abandoned: the row stays for next time. */
	CU_ASSERT_FATAL(world_start(&w, &r, 1));
	world_put1(&w, "grace/webhook", "/g", NULL, "{}");
	nheld = 0;
	end = clock_mono_ms() + 3000;
	while (nheld == 0 && clock_mono_ms() < end) {
		CU_ASSERT_EQUAL(deliver_held_ids(w.d, &held, &nheld), 0);
		gw_free(held);
		nap_ms(5);
	}
	deliver_stop(w.d, 0);
	w.d = NULL;
	CU_ASSERT_EQUAL(world_apply(&w, 0), 0);
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT count(*) FROM outbox"), 1);
	world_close(&w);
}

/* tests/helpers/http_stub.py from $top_srcdir, else next to this file. */
static void
find_stub(void)
{
	const char *top = getenv("top_srcdir");
	char here[512];

	if (top != NULL && *top != '\0') {
		snprintf(stub_path, sizeof stub_path,
		    "%s/tests/helpers/http_stub.py", top);
		if (access(stub_path, R_OK) == 0)
			return;
	}
	snprintf(here, sizeof here, "%s", __FILE__);
	snprintf(stub_path, sizeof stub_path, "%s/../helpers/http_stub.py",
	    dirname(here));
}

int
main(void)
{
	CU_pSuite s;
	int status;

	/* Loopback only, never through a proxy from the environment. */
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	signal(SIGPIPE, SIG_IGN);
	find_stub();
	if (testdb_tmpdir(tmpdir, sizeof tmpdir, "webhook") != 0)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("webhook", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "classify", test_classify) == NULL ||
	    CU_add_test(s, "hmac and key", test_hmac_and_key) == NULL ||
	    CU_add_test(s, "prepare rejects", test_prepare_rejects) == NULL ||
	    CU_add_test(s, "200 deletes", test_ok_deletes) == NULL ||
	    CU_add_test(s, "500,500,200 in order", test_retry_in_order) ==
	    NULL ||
	    CU_add_test(s, "400 and 301 dead", test_4xx_3xx_dead) == NULL ||
	    CU_add_test(s, "timeout, max_attempts",
	    test_timeout_max_attempts) == NULL ||
	    CU_add_test(s, "batch array", test_batch_array) == NULL ||
	    CU_add_test(s, "batch retry: same rows, same key",
	    test_batch_retry_same_rows) == NULL ||
	    CU_add_test(s, "batch ndjson, max_delay",
	    test_batch_ndjson_delay) == NULL ||
	    CU_add_test(s, "hmac verified", test_hmac_verified) == NULL ||
	    CU_add_test(s, "bad header not sent",
	    test_bad_header_not_sent) == NULL ||
	    CU_add_test(s, "ordered: one in flight",
	    test_ordered_one_in_flight) == NULL ||
	    CU_add_test(s, "rate limit", test_rate_limit) == NULL ||
	    CU_add_test(s, "Retry-After", test_retry_after) == NULL ||
	    CU_add_test(s, "scheduled row waits",
	    test_scheduled_row_waits) == NULL ||
	    CU_add_test(s, "held ids and cap", test_held_ids_and_cap) ==
	    NULL ||
	    CU_add_test(s, "reload and gauges", test_reload_and_gauges) ==
	    NULL ||
	    CU_add_test(s, "unreachable, bad scheme",
	    test_unreachable_retries) == NULL ||
	    CU_add_test(s, "max_age", test_max_age) == NULL ||
	    CU_add_test(s, "unordered goes around a held row",
	    test_unordered_goes_around) == NULL ||
	    CU_add_test(s, "stop: grace and abandon", test_stop_grace) ==
	    NULL) {
		return cutest_setup_failed();
	}
	status = cutest_run();
	curl_global_cleanup();
	testdb_rmdir(tmpdir);
	return status;
}
