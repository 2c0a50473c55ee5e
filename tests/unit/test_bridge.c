/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * Tests of the bridge (bridge.c, bridge_link.c): its small pure parts
 * (reconnect delay, url spelling, route table checks) and its state
 * machine against a REAL Mosquitto (/usr/sbin/mosquitto) on a loopback
 * port the test picks, started and killed with fork/exec/kill. The test
 * plays the store thread: it enqueues outbox rows in its own transactions,
 * calls bridge_wake() and applies the results queue with
 * outbox_apply_results(). Every wait is bounded; nothing measures time.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sqlite3.h>

#include "clock.h"
#include "cutest.h"
#include "deliver/bridge.h"
#include "deliver/bridge_int.h"
#include "err.h"
#include "mem.h"
#include "queue.h"
#include "store/outbox.h"
#include "store/schema.h"
#include "testdb.h"

#define MOSQUITTO	"/usr/sbin/mosquitto"
#define WAIT_MS		30000

static char	tmpdir[64];

struct world {
	char		 path[256];
	sqlite3		*db;
	struct outbox	*ob;
	struct queue	*q;
	struct bridge	*b;
	pid_t		 up;		/* mosquitto, 0: not running */
	int		 port;
	uint64_t	 oks;		/* OK results applied */
};

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A loopback port nobody listens on now. */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	int fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		close(fd);
		return -1;
	}
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool
port_open(int port)
{
	struct sockaddr_in a;
	int fd;
	bool ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return false;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static bool
up_start(struct world *w)
{
	char conf[320];
	FILE *f;
	int i;

	snprintf(conf, sizeof conf, "%s/up.conf", tmpdir);
	if ((f = fopen(conf, "w")) == NULL)
		return false;
	fprintf(f, "allow_anonymous true\nuser root\npersistence false\n"
	    "log_dest none\nlistener %d 127.0.0.1\n", w->port);
	fclose(f);
	if ((w->up = fork()) < 0)
		return false;
	if (w->up == 0) {
		execl(MOSQUITTO, MOSQUITTO, "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		if (port_open(w->port))
			return true;
		nap_ms(25);
	}
	return false;
}

static void
up_kill(struct world *w)
{
	if (w->up <= 0)
		return;
	kill(w->up, SIGKILL);
	waitpid(w->up, NULL, 0);
	w->up = 0;
}

static bool
world_open(struct world *w)
{
	struct gw_error err;

	memset(w, 0, sizeof *w);
	memset(&err, 0, sizeof err);
	snprintf(w->path, sizeof w->path, "%s/b.db", tmpdir);
	if (sqlite3_open(w->path, &w->db) != SQLITE_OK)
		return false;
	sqlite3_busy_timeout(w->db, 5000);
	if (schema_apply(w->db, &err) != 0 ||
	    sqlite3_exec(w->db, "PRAGMA journal_mode = WAL", NULL, NULL,
	    NULL) != SQLITE_OK)
		return false;
	if ((w->ob = outbox_open(w->db)) == NULL ||
	    (w->q = queue_new(sizeof(struct outbox_result), 4096)) == NULL)
		return false;
	w->port = free_port();
	return w->port > 0;
}

static void
world_close(struct world *w)
{
	struct outbox_result r;

	bridge_stop(w->b, 0);
	up_kill(w);
	while (w->q != NULL && queue_pop(w->q, &r, 1, 0) == 1)
		outbox_results_free(&r, 1);
	queue_free(w->q);
	outbox_close(w->ob);
	sqlite3_close(w->db);
}

static void
enqueue(struct world *w, const char *route, int n)
{
	char body[32];
	int i;

	CU_ASSERT_EQUAL(sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	for (i = 0; i < n; i++) {
		snprintf(body, sizeof body, "m%d", i);
		CU_ASSERT_EQUAL(outbox_enqueue(w->ob, route, "bridge/t", NULL,
		    body, strlen(body), clock_wall_ms(), NULL), 0);
	}
	CU_ASSERT_EQUAL(sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	outbox_txn_committed(w->ob);
	if (w->b != NULL)
		bridge_wake(w->b);
}

/* The store thread's report of a commit, as setup.c wires it. */
static void
world_committed(void *ctx, const struct outbox_result *res, size_t n)
{
	struct world *w = ctx;

	if (w->b != NULL)
		bridge_results_committed(w->b, res, n);
}

/* Applies queued results as the store thread would. */
static void
world_apply(struct world *w, int wait_ms)
{
	testdb_apply_results(w->db, w->ob, w->q, wait_ms, &w->oks,
	    world_committed, w);
}

static void
stats_cb(const struct results_route_stats *st, void *ctx)
{
	*(struct results_route_stats *)ctx = *st;
}

static struct results_route_stats
stats(struct world *w)
{
	struct results_route_stats st;

	memset(&st, 0, sizeof st);
	bridge_stats(w->b, stats_cb, &st);
	st.route = NULL;
	return st;
}

/* Applies results until cond holds or WAIT_MS passed. */
#define UNTIL(w, cond) do {						\
	long long end_ = clock_mono_ms() + WAIT_MS;			\
	while (!(cond) && clock_mono_ms() < end_)			\
		world_apply((w), 50);					\
} while (0)

/* How many outbox ids the bridge holds; SIZE_MAX on ENOMEM. */
static size_t
held_count(struct world *w)
{
	int64_t *ids;
	size_t n;

	if (bridge_held_ids(w->b, &ids, &n) != 0)
		return SIZE_MAX;
	gw_free(ids);
	return n;
}

/* Waits without applying results until cond holds or ms passed. */
#define WAIT(cond, ms) do {						\
	long long end_ = clock_mono_ms() + (ms);			\
	while (!(cond) && clock_mono_ms() < end_)			\
		usleep(10000);						\
} while (0)

/* ------------------------------------------------------------------ */

static void
test_reconnect_delay(void)
{
	uint64_t rng = 42;
	int64_t d, max = 0, cap;
	uint32_t f;
	int i;

	for (f = 0; f < 20; f++) {
		cap = (int64_t)BRIDGE_BASE_MS << (f < 10 ? f : 10);
		if (cap > BRIDGE_CAP_MS)
			cap = BRIDGE_CAP_MS;
		for (i = 0; i < 50; i++) {
			d = bridge_reconnect_delay(&rng, f);
			CU_ASSERT(d >= 0 && d <= cap);
			if (f == 19 && d > max)
				max = d;
		}
	}
	/* Full jitter: spread over the range, capped at 60 s. */
	CU_ASSERT(max > BRIDGE_CAP_MS / 2);
	CU_ASSERT(max <= BRIDGE_CAP_MS);
}

static void
test_url_spelling(void)
{
	char *s;

	s = bridge_link_url("mqtt://h:1883");
	CU_ASSERT_STRING_EQUAL(s, "tcp://h:1883");
	gw_free(s);
	s = bridge_link_url("mqtts://h:8883");
	CU_ASSERT_STRING_EQUAL(s, "ssl://h:8883");
	gw_free(s);
	s = bridge_link_url("ssl://h:8883");
	CU_ASSERT_STRING_EQUAL(s, "ssl://h:8883");
	gw_free(s);
	CU_ASSERT_STRING_EQUAL(bridge_state_name(BRIDGE_UP), "up");
	CU_ASSERT_STRING_EQUAL(bridge_state_name(BRIDGE_DOWN), "down");
}

static void
test_route_table_checks(void)
{
	const char *urls[] = { "tcp://h:1" };
	struct bridge_route r[2], *out;

	memset(r, 0, sizeof r);
	r[0].name = "a/mqtt";
	r[0].urls = urls;
	r[0].nurls = 1;
	r[0].max_in_flight = 4;
	r[1] = r[0];
	CU_ASSERT_EQUAL(bridge_routes_copy(r, 2, &out), GW_ECONFIG);
	r[1].name = "";
	CU_ASSERT_EQUAL(bridge_routes_copy(r, 2, &out), GW_ECONFIG);
	r[1].name = "b/mqtt";
	r[1].max_in_flight = 0;
	CU_ASSERT_EQUAL(bridge_routes_copy(r, 2, &out), GW_ECONFIG);
	r[1].max_in_flight = 1;
	CU_ASSERT_EQUAL_FATAL(bridge_routes_copy(r, 2, &out), 0);
	CU_ASSERT_STRING_EQUAL(out[1].name, "b/mqtt");
	CU_ASSERT_PTR_NOT_EQUAL(out[1].urls[0], urls[0]);
	bridge_routes_free(out, 2);
}

/*
 * down (no broker) -> connecting -> up, rows acknowledged and deleted;
 * broker killed -> down, rows wait; broker back -> up, they go.
 */
static void
test_state_machine(void)
{
	struct results_route_stats st;
	struct bridge_route r;
	struct bridge_opts o;
	struct gw_error err;
	struct world w;
	char url[64];
	const char *urls[1] = { url };
	int64_t *ids;
	size_t nids;

	CU_ASSERT_TRUE_FATAL(world_open(&w));
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", w.port);
	memset(&r, 0, sizeof r);
	r.name = "up/mqtt";
	r.urls = urls;
	r.nurls = 1;
	r.client_id = "unit-bridge";
	r.qos = 1;
	r.keepalive = 5;
	r.max_in_flight = 8;
	enqueue(&w, "up/mqtt", 50);
	memset(&o, 0, sizeof o);
	memset(&err, 0, sizeof err);
	o.db_path = w.path;
	o.routes = &r;
	o.nroutes = 1;
	o.results = w.q;
	o.seed = 7;
	w.b = bridge_start(&o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w.b);

	/* No broker: never up, nothing acknowledged, rows held. */
	UNTIL(&w, stats(&w).state == BRIDGE_DOWN &&
	    testdb_int(w.db, "SELECT count(*) FROM outbox") == 50);
	world_apply(&w, 300);
	st = stats(&w);
	CU_ASSERT_NOT_EQUAL(st.state, BRIDGE_UP);
	CU_ASSERT_EQUAL(st.connects, 0);
	CU_ASSERT_EQUAL(w.oks, 0);

	/*
	 * The broker comes. While the store commits nothing, the window
	 * (8) fills with acknowledged rows and nothing more is sent.
	 */
	CU_ASSERT_TRUE_FATAL(up_start(&w));
	WAIT(stats(&w).delivered == 8, WAIT_MS);
	WAIT(false, 1000);
	st = stats(&w);
	CU_ASSERT_EQUAL(st.delivered, 8);
	CU_ASSERT_EQUAL(st.sent, 8);
	CU_ASSERT_EQUAL(st.in_flight, 0);
	/* The store commits: every row acknowledged and deleted. */
	UNTIL(&w, w.oks == 50);
	st = stats(&w);
	CU_ASSERT_EQUAL(st.state, BRIDGE_UP);
	CU_ASSERT_EQUAL(st.connects, 1);
	CU_ASSERT_EQUAL(st.delivered, 50);
	CU_ASSERT_EQUAL(st.in_flight, 0);
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT count(*) FROM outbox"), 0);
	/* The last commit reaches the bridge thread a moment later. */
	WAIT(held_count(&w) == 0, WAIT_MS);
	CU_ASSERT_EQUAL(bridge_held_ids(w.b, &ids, &nids), 0);
	CU_ASSERT_EQUAL(nids, 0);
	gw_free(ids);

	/* Broker gone: down; new rows wait in the outbox. */
	up_kill(&w);
	UNTIL(&w, stats(&w).state != BRIDGE_UP);
	CU_ASSERT_NOT_EQUAL(stats(&w).state, BRIDGE_UP);
	enqueue(&w, "up/mqtt", 10);
	world_apply(&w, 300);
	CU_ASSERT_EQUAL(w.oks, 50);
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT count(*) FROM outbox"), 10);

	/* Back: a second connection, the ten go. */
	CU_ASSERT_TRUE_FATAL(up_start(&w));
	UNTIL(&w, w.oks == 60);
	st = stats(&w);
	CU_ASSERT_EQUAL(st.state, BRIDGE_UP);
	CU_ASSERT_EQUAL(st.connects, 2);
	CU_ASSERT_EQUAL(st.delivered, 60);
	CU_ASSERT_EQUAL(testdb_int(w.db, "SELECT count(*) FROM outbox"), 0);
	world_close(&w);
}

int
main(void)
{
	CU_pSuite s;
	int status;

	if (testdb_tmpdir(tmpdir, sizeof tmpdir, "bridge") != 0)
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("bridge", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "reconnect delay", test_reconnect_delay) == NULL ||
	    CU_add_test(s, "url spelling", test_url_spelling) == NULL ||
	    CU_add_test(s, "route table checks", test_route_table_checks) ==
	    NULL ||
	    CU_add_test(s, "down, up, lost, up", test_state_machine) == NULL)
		return cutest_setup_failed();
	status = cutest_run();
	testdb_rmdir(tmpdir);
	return status;
}
