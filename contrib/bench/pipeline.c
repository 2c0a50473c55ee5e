/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * pipeline: the hand-written alternative to an mqlite rule, for the bench.
 * It is what a user would otherwise build to get typed rows out of MQTT
 * into SQLite: Mosquitto as the broker, and this program as a QoS 1
 * subscriber (Eclipse Paho C, MQTTAsync) that parses each JSON payload with
 * cJSON and inserts one typed row per message into SQLite, in batched
 * transactions, WAL journal, synchronous=FULL.
 *
 * Paho calls on_message on its own thread. It parses the message there,
 * appends the row to a bounded queue (waiting while the queue is full, which
 * stops reading from the broker: back-pressure, not growth) and returns, at
 * which point Paho acknowledges the message to Mosquitto. The main thread
 * is the writer: it takes whatever the queue holds, up to -b rows, and
 * commits them in one transaction, then goes back for more; so, like
 * mqlite's group commit, one fsync carries every row that arrived while the
 * previous one ran. (Paho C cannot defer the PUBACK until the commit: a
 * crash loses the rows in the queue, which mqlite, acknowledging after the
 * commit, does not. The comparison is generous to the pipeline there.)
 *
 * The table is the bench rule's: readings(ts, site, device, temp REAL, hum
 * INTEGER, status TEXT, seq INTEGER), site and device from the topic
 * site/SITE/dev/DEVICE/telemetry, the rest from the payload's keys; a
 * payload that is not a JSON object is counted and skipped.
 *
 * The program exits once -n rows are committed (or after -T seconds, or on
 * SIGTERM/SIGINT) and prints one JSON line: rows, commits, the wall-clock
 * millisecond of the first message and of the commit that completed the
 * rows, its own CPU time and the bytes it caused to be written to storage
 * (write_bytes of /proc/self/io, the database closed). It creates the -R
 * file once its subscription is acknowledged.
 */

#include <sys/resource.h>
#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "benchclock.h"

#define PIPE_QUEUE	65536		/* rows waiting for the writer */
#define PIPE_TEXT	64		/* site, device and status bytes */

struct row {
	int64_t		 ts;		/* arrival, wall-clock ms */
	char		 site[PIPE_TEXT];
	char		 device[PIPE_TEXT];
	char		 status[PIPE_TEXT];
	double		 temp;
	int64_t		 hum;
	int64_t		 seq;
	bool		 has_temp;
	bool		 has_hum;
	bool		 has_status;
	bool		 has_seq;
};

struct pipe {
	MQTTAsync	 client;
	const char	*filter;	/* -t */
	pthread_mutex_t	 lock;
	pthread_cond_t	 not_empty;
	pthread_cond_t	 not_full;
	struct row	*queue;		/* ring of PIPE_QUEUE rows */
	size_t		 head;		/* next row to take */
	size_t		 used;		/* rows in the ring */
	int		 subscribed;	/* 1 ok, -1 failed */
	bool		 lost;		/* connection lost */
	bool		 stop;		/* writer done: drop the rest */
	uint64_t	 arrived;	/* messages handed to the queue */
	uint64_t	 bad;		/* payloads skipped */
	long long	 first_ms;	/* first message's arrival */
	char		 error[256];
};

static volatile sig_atomic_t	 pipe_signalled;

static void
on_signal(int sig)
{
	(void)sig;
	pipe_signalled = 1;
}

static void
pipe_set(struct pipe *p, int subscribed, const char *what, int code)
{
	pthread_mutex_lock(&p->lock);
	if (subscribed < 0 && p->error[0] == '\0')
		snprintf(p->error, sizeof p->error, "%s (code %d)", what,
		    code);
	p->subscribed = subscribed;
	pthread_cond_broadcast(&p->not_empty);
	pthread_mutex_unlock(&p->lock);
}

static void
on_subscribed(void *ctx, MQTTAsync_successData *resp)
{
	(void)resp;
	pipe_set(ctx, 1, "", 0);
}

static void
on_subscribe_failure(void *ctx, MQTTAsync_failureData *resp)
{
	pipe_set(ctx, -1, "subscribe failed", resp != NULL ? resp->code : 0);
}

static void
on_connect_failure(void *ctx, MQTTAsync_failureData *resp)
{
	pipe_set(ctx, -1, "connect failed", resp != NULL ? resp->code : 0);
}

static void
on_lost(void *ctx, char *cause)
{
	struct pipe *p = ctx;

	(void)cause;
	pthread_mutex_lock(&p->lock);
	p->lost = true;
	pthread_cond_broadcast(&p->not_empty);
	pthread_cond_broadcast(&p->not_full);
	pthread_mutex_unlock(&p->lock);
}

/* Copies a string no longer than PIPE_TEXT - 1; false if it is longer. */
static bool
copy_text(char *dst, const char *src, size_t len)
{
	if (len >= PIPE_TEXT)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/* Fills r from site/SITE/dev/DEVICE/telemetry and the JSON payload. */
static bool
parse_row(struct row *r, const char *topic, size_t tlen, const char *payload,
    size_t plen)
{
	const char *lv[5], *end = topic + tlen, *s, *slash;
	size_t ll[5];
	cJSON *doc, *v;
	int n = 0;

	memset(r, 0, sizeof *r);
	r->ts = wall_ms();
	for (s = topic; n < 5; n++) {
		slash = memchr(s, '/', (size_t)(end - s));
		lv[n] = s;
		ll[n] = (size_t)((slash != NULL ? slash : end) - s);
		if (slash == NULL)
			break;
		s = slash + 1;
	}
	if (n != 4 || !copy_text(r->site, lv[1], ll[1]) ||
	    !copy_text(r->device, lv[3], ll[3]))
		return false;
	if ((doc = cJSON_ParseWithLength(payload, plen)) == NULL)
		return false;
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		return false;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(doc, "temp")) != NULL &&
	    cJSON_IsNumber(v)) {
		r->temp = v->valuedouble;
		r->has_temp = true;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(doc, "hum")) != NULL &&
	    cJSON_IsNumber(v)) {
		r->hum = (int64_t)v->valuedouble;
		r->has_hum = true;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(doc, "seq")) != NULL &&
	    cJSON_IsNumber(v)) {
		r->seq = (int64_t)v->valuedouble;
		r->has_seq = true;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(doc, "status")) != NULL &&
	    cJSON_IsString(v))
		r->has_status = copy_text(r->status, v->valuestring,
		    strlen(v->valuestring));
	cJSON_Delete(doc);
	return true;
}

/* Paho's thread: parse, queue (waiting while full), let Paho ack. */
static int
on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
	struct pipe *p = ctx;
	struct row r;
	bool ok;

	ok = parse_row(&r, topic, tlen > 0 ? (size_t)tlen : strlen(topic),
	    m->payload, (size_t)m->payloadlen);
	pthread_mutex_lock(&p->lock);
	if (p->first_ms == 0)
		p->first_ms = r.ts;
	if (!ok)
		p->bad++;
	while (ok && p->used == PIPE_QUEUE && !p->stop)
		pthread_cond_wait(&p->not_full, &p->lock);
	if (ok && !p->stop) {
		p->queue[(p->head + p->used) % PIPE_QUEUE] = r;
		p->used++;
		p->arrived++;
		pthread_cond_signal(&p->not_empty);
	}
	pthread_mutex_unlock(&p->lock);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void
on_connected(void *ctx, MQTTAsync_successData *resp)
{
	struct pipe *p = ctx;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	int rc;

	(void)resp;
	ro.onSuccess = on_subscribed;
	ro.onFailure = on_subscribe_failure;
	ro.context = p;
	rc = MQTTAsync_subscribe(p->client, p->filter, 1, &ro);
	if (rc != MQTTASYNC_SUCCESS)
		pipe_set(p, -1, "MQTTAsync_subscribe", rc);
}

static int
db_open(const char *path, sqlite3 **db, sqlite3_stmt **ins)
{
	static const char *setup =
	    "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=FULL;"
	    "CREATE TABLE IF NOT EXISTS readings (ts INTEGER NOT NULL, "
	    "site TEXT, device TEXT, temp REAL, hum INTEGER, status TEXT, "
	    "seq INTEGER);";
	char *msg = NULL;

	if (sqlite3_open(path, db) != SQLITE_OK ||
	    sqlite3_exec(*db, setup, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_prepare_v2(*db, "INSERT INTO readings (ts, site, device, "
	    "temp, hum, status, seq) VALUES (?, ?, ?, ?, ?, ?, ?)", -1, ins,
	    NULL) != SQLITE_OK) {
		fprintf(stderr, "pipeline: %s: %s\n", path,
		    msg != NULL ? msg : sqlite3_errmsg(*db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* One transaction for n rows. */
static int
db_commit(sqlite3 *db, sqlite3_stmt *ins, const struct row *rows, size_t n)
{
	const struct row *r;
	size_t i;

	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (i = 0; i < n; i++) {
		r = &rows[i];
		sqlite3_bind_int64(ins, 1, r->ts);
		sqlite3_bind_text(ins, 2, r->site, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, r->device, -1, SQLITE_STATIC);
		if (r->has_temp)
			sqlite3_bind_double(ins, 4, r->temp);
		else
			sqlite3_bind_null(ins, 4);
		if (r->has_hum)
			sqlite3_bind_int64(ins, 5, r->hum);
		else
			sqlite3_bind_null(ins, 5);
		if (r->has_status)
			sqlite3_bind_text(ins, 6, r->status, -1,
			    SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 6);
		if (r->has_seq)
			sqlite3_bind_int64(ins, 7, r->seq);
		else
			sqlite3_bind_null(ins, 7);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			sqlite3_reset(ins);
			goto fail;
		}
		sqlite3_reset(ins);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "pipeline: insert: %s\n", sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Bytes this process caused to be written to storage, or -1. */
static long long
write_bytes(void)
{
	char line[128];
	long long v = -1;
	FILE *f;

	if ((f = fopen("/proc/self/io", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "write_bytes: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static long
parse_long(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "pipeline: %s must be a number in %ld..%ld\n",
		    what, lo, hi);
		exit(1);
	}
	return v;
}

static void
usage(void)
{
	fprintf(stderr, "usage: pipeline -d database [-h host] [-p port] "
	    "[-t filter] [-n rows]\n"
	    "                [-b batch] [-T timeout-s] [-R ready-file]\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	struct pipe ps, *p = &ps;
	struct row *batch;
	struct rusage ru;
	struct timespec until;
	const char *host = "127.0.0.1", *port = "1883", *dbpath = NULL;
	const char *filter = "site/+/dev/+/telemetry", *ready = NULL;
	const char *status = "ok";
	char uri[300], id[64];
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	long want = 100000, maxb = 1000, timeout = 120;
	long long deadline, last_ms = 0;
	uint64_t rows = 0, commits = 0;
	size_t k, i;
	FILE *f;
	int ch, rc;

	while ((ch = getopt(argc, argv, "b:d:h:n:p:R:T:t:")) != -1) {
		switch (ch) {
		case 'b':
			maxb = parse_long(optarg, "-b", 1, PIPE_QUEUE);
			break;
		case 'd':
			dbpath = optarg;
			break;
		case 'h':
			host = optarg;
			break;
		case 'n':
			want = parse_long(optarg, "-n", 1, 1000000000L);
			break;
		case 'p':
			port = optarg;
			break;
		case 'R':
			ready = optarg;
			break;
		case 'T':
			timeout = parse_long(optarg, "-T", 1, 86400);
			break;
		case 't':
			filter = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || dbpath == NULL)
		usage();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	memset(p, 0, sizeof *p);
	p->filter = filter;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->not_empty, NULL);
	pthread_cond_init(&p->not_full, NULL);
	p->queue = calloc(PIPE_QUEUE, sizeof *p->queue);
	batch = calloc((size_t)maxb, sizeof *batch);
	if (p->queue == NULL || batch == NULL) {
		fprintf(stderr, "pipeline: out of memory\n");
		return 1;
	}
	if (db_open(dbpath, &db, &ins) != 0)
		return 1;

	snprintf(uri, sizeof uri, "tcp://%s:%s", host, port);
	snprintf(id, sizeof id, "pipeline-%ld", (long)getpid());
	if ((rc = MQTTAsync_create(&p->client, uri, id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL)) != MQTTASYNC_SUCCESS ||
	    (rc = MQTTAsync_setCallbacks(p->client, p, on_lost, on_message,
	    NULL)) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "pipeline: MQTTAsync_create: %d\n", rc);
		return 1;
	}
	co.keepAliveInterval = 60;
	co.cleansession = 1;
	co.onSuccess = on_connected;
	co.onFailure = on_connect_failure;
	co.context = p;
	if ((rc = MQTTAsync_connect(p->client, &co)) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "pipeline: MQTTAsync_connect: %d\n", rc);
		return 1;
	}

	deadline = wall_ms() + timeout * 1000;
	pthread_mutex_lock(&p->lock);
	while (p->subscribed == 0 && !p->lost && !pipe_signalled &&
	    wall_ms() < deadline) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&p->not_empty, &p->lock, &until);
	}
	if (p->subscribed != 1) {
		status = "error";
		if (p->error[0] == '\0')
			snprintf(p->error, sizeof p->error, "not subscribed");
	}
	pthread_mutex_unlock(&p->lock);
	if (ready != NULL && p->subscribed == 1) {
		if ((f = fopen(ready, "w")) != NULL)
			fclose(f);
	}

	while (strcmp(status, "ok") == 0 && rows < (uint64_t)want) {
		pthread_mutex_lock(&p->lock);
		while (p->used == 0 && !p->lost && !pipe_signalled &&
		    wall_ms() < deadline) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&p->not_empty, &p->lock,
			    &until);
		}
		k = p->used < (size_t)maxb ? p->used : (size_t)maxb;
		for (i = 0; i < k; i++)
			batch[i] = p->queue[(p->head + i) % PIPE_QUEUE];
		p->head = (p->head + k) % PIPE_QUEUE;
		p->used -= k;
		if (k > 0)
			pthread_cond_broadcast(&p->not_full);
		if (k == 0 && p->lost) {
			snprintf(p->error, sizeof p->error, "connection lost");
			status = "error";
		}
		pthread_mutex_unlock(&p->lock);
		if (k > 0) {
			if (db_commit(db, ins, batch, k) != 0) {
				status = "error";
				snprintf(p->error, sizeof p->error,
				    "insert failed");
				break;
			}
			rows += k;
			commits++;
			last_ms = wall_ms();
			continue;
		}
		if (pipe_signalled) {
			status = "error";
			snprintf(p->error, sizeof p->error, "signalled");
		} else if (wall_ms() >= deadline) {
			status = "timeout";
			snprintf(p->error, sizeof p->error, "timed out after "
			    "%ld s with %llu of %ld rows", timeout,
			    (unsigned long long)rows, want);
		}
	}

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->not_full);
	pthread_mutex_unlock(&p->lock);
	MQTTAsync_disconnect(p->client, NULL);
	MQTTAsync_destroy(&p->client);
	sqlite3_finalize(ins);
	sqlite3_close(db);
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"status\":\"%s\",\"rows\":%llu,\"commits\":%llu,"
	    "\"bad\":%llu,\"first_ms\":%lld,\"last_ms\":%lld,"
	    "\"cpu_us\":%lld,\"write_bytes\":%lld,\"error\":\"%s\"}\n",
	    status, (unsigned long long)rows, (unsigned long long)commits,
	    (unsigned long long)p->bad, p->first_ms, last_ms,
	    (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec, write_bytes(),
	    p->error);
	fflush(stdout);
	free(batch);
	free(p->queue);
	return strcmp(status, "ok") == 0 ? 0 : 1;
}
