/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite contributors */

/*
 * paho_pub: a small publisher built on Eclipse Paho C (MQTTAsync) for the
 * end-to-end tests. It connects to HOST:PORT with a clean session, publishes
 * COUNT messages "<prefix>-<n>" (n from 0) to TOPIC at QOS, keeping at most
 * WINDOW publishes unacknowledged, and exits 0 only when every publish was
 * acknowledged (for QoS 0: handed to the socket) and the client disconnected
 * cleanly. Any failure, or no progress for 30 s, exits 1. With SIZE, every
 * payload is instead SIZE printable bytes "abc...zab..." (the payload of
 * contrib/bench/mqbench -s SIZE), so the benchmark compares like with like.
 *
 * usage: paho_pub HOST PORT TOPIC COUNT QOS [PREFIX [WINDOW [SIZE]]]
 *
 * Paho calls the callbacks on its own thread; they only update counters under
 * the mutex and signal the main thread.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#define PAHO_PUB_STALL_S	30

struct pub_state {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 connected;	/* 1 ok, -1 failed */
	int		 disconnected;	/* 1 when the disconnect completed */
	long		 acked;		/* publishes confirmed by onSuccess */
	long		 failed;	/* publishes reported by onFailure */
	int		 lost;		/* connection lost */
};

static void	 on_connect(void *, MQTTAsync_successData *);
static void	 on_connect_failure(void *, MQTTAsync_failureData *);
static void	 on_sent(void *, MQTTAsync_successData *);
static void	 on_send_failure(void *, MQTTAsync_failureData *);
static void	 on_disconnect(void *, MQTTAsync_successData *);
static void	 on_lost(void *, char *);
static int	 on_message(void *, char *, int, MQTTAsync_message *);
static int	 wait_for(struct pub_state *, long, int);
static long	 parse_long(const char *, const char *, long, long);

static void
signal_state(struct pub_state *st)
{
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

static void
on_connect(void *ctx, MQTTAsync_successData *resp)
{
	struct pub_state	*st = ctx;

	(void)resp;
	pthread_mutex_lock(&st->lock);
	st->connected = 1;
	signal_state(st);
}

static void
on_connect_failure(void *ctx, MQTTAsync_failureData *resp)
{
	struct pub_state	*st = ctx;

	fprintf(stderr, "paho_pub: connect failed: code %d %s\n",
	    resp ? resp->code : 0,
	    resp && resp->message ? resp->message : "");
	pthread_mutex_lock(&st->lock);
	st->connected = -1;
	signal_state(st);
}

static void
on_sent(void *ctx, MQTTAsync_successData *resp)
{
	struct pub_state	*st = ctx;

	(void)resp;
	pthread_mutex_lock(&st->lock);
	st->acked++;
	signal_state(st);
}

static void
on_send_failure(void *ctx, MQTTAsync_failureData *resp)
{
	struct pub_state	*st = ctx;

	fprintf(stderr, "paho_pub: publish failed: code %d\n",
	    resp ? resp->code : 0);
	pthread_mutex_lock(&st->lock);
	st->failed++;
	signal_state(st);
}

static void
on_disconnect(void *ctx, MQTTAsync_successData *resp)
{
	struct pub_state	*st = ctx;

	(void)resp;
	pthread_mutex_lock(&st->lock);
	st->disconnected = 1;
	signal_state(st);
}

static void
on_lost(void *ctx, char *cause)
{
	struct pub_state	*st = ctx;

	fprintf(stderr, "paho_pub: connection lost: %s\n",
	    cause ? cause : "(no cause)");
	pthread_mutex_lock(&st->lock);
	st->lost = 1;
	signal_state(st);
}

static int
on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	(void)ctx;
	(void)topic_len;
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/*
 * Waits (lock held) until fewer than limit publishes are outstanding, out of
 * sent. Returns 0, or -1 on failure, lost connection or a stall.
 */
static int
wait_for(struct pub_state *st, long sent, int limit)
{
	struct timespec	 deadline;
	long		 last = st->acked;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += PAHO_PUB_STALL_S;
	while (sent - st->acked >= limit) {
		if (st->failed || st->lost)
			return -1;
		if (pthread_cond_timedwait(&st->cond, &st->lock,
		    &deadline) == ETIMEDOUT) {
			if (st->acked == last) {
				fprintf(stderr, "paho_pub: no ack for %d s "
				    "(%ld of %ld acked)\n", PAHO_PUB_STALL_S,
				    st->acked, sent);
				return -1;
			}
			last = st->acked;
			clock_gettime(CLOCK_REALTIME, &deadline);
			deadline.tv_sec += PAHO_PUB_STALL_S;
		}
	}
	return st->failed || st->lost ? -1 : 0;
}

static long
parse_long(const char *what, const char *s, long min, long max)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "paho_pub: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	MQTTAsync			 client;
	MQTTAsync_connectOptions	 copts = MQTTAsync_connectOptions_initializer;
	MQTTAsync_disconnectOptions	 dopts =
	    MQTTAsync_disconnectOptions_initializer;
	struct pub_state		 st;
	char				 uri[300], client_id[64], payload[4096];
	const char			*prefix;
	long				 count, i;
	int				 port, qos, window, rc, status = 1;
	int				 size, j;

	if (argc < 6 || argc > 9) {
		fprintf(stderr, "usage: paho_pub HOST PORT TOPIC COUNT QOS "
		    "[PREFIX [WINDOW [SIZE]]]\n");
		return 2;
	}
	port = (int)parse_long("port", argv[2], 1, 65535);
	count = parse_long("count", argv[4], 0, 100000000);
	qos = (int)parse_long("qos", argv[5], 0, 2);
	prefix = argc > 6 ? argv[6] : "msg";
	window = argc > 7 ? (int)parse_long("window", argv[7], 1, 65535) : 20;
	size = argc > 8 ? (int)parse_long("size", argv[8], 1,
	    (long)sizeof payload) : 0;
	for (j = 0; j < size; j++)
		payload[j] = (char)('a' + j % 26);

	memset(&st, 0, sizeof st);
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.cond, NULL);

	snprintf(uri, sizeof uri, "tcp://%s:%d", argv[1], port);
	snprintf(client_id, sizeof client_id, "paho-pub-%ld", (long)getpid());
	if ((rc = MQTTAsync_create(&client, uri, client_id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL)) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "paho_pub: create failed: %d\n", rc);
		return 1;
	}
	MQTTAsync_setCallbacks(client, &st, on_lost, on_message, NULL);

	copts.keepAliveInterval = 30;
	copts.cleansession = 1;
	copts.MQTTVersion = MQTTVERSION_3_1_1;
	copts.maxInflight = window;
	copts.connectTimeout = 10;
	copts.onSuccess = on_connect;
	copts.onFailure = on_connect_failure;
	copts.context = &st;
	if ((rc = MQTTAsync_connect(client, &copts)) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "paho_pub: connect failed: %d\n", rc);
		goto out;
	}

	pthread_mutex_lock(&st.lock);
	{
		struct timespec	deadline;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += PAHO_PUB_STALL_S;
		while (st.connected == 0)
			if (pthread_cond_timedwait(&st.cond, &st.lock,
			    &deadline) == ETIMEDOUT)
				break;
	}
	if (st.connected != 1) {
		pthread_mutex_unlock(&st.lock);
		fprintf(stderr, "paho_pub: not connected\n");
		goto out;
	}

	for (i = 0; i < count; i++) {
		MQTTAsync_responseOptions	 ropts =
		    MQTTAsync_responseOptions_initializer;
		int				 len;

		if (wait_for(&st, i, window) != 0) {
			pthread_mutex_unlock(&st.lock);
			goto out;
		}
		pthread_mutex_unlock(&st.lock);

		if (size > 0)
			len = size;
		else
			len = snprintf(payload, sizeof payload, "%s-%ld",
			    prefix, i);
		ropts.onSuccess = on_sent;
		ropts.onFailure = on_send_failure;
		ropts.context = &st;
		rc = MQTTAsync_send(client, argv[3], len, payload, qos, 0,
		    &ropts);
		pthread_mutex_lock(&st.lock);
		if (rc != MQTTASYNC_SUCCESS) {
			pthread_mutex_unlock(&st.lock);
			fprintf(stderr, "paho_pub: send %ld failed: %d\n", i,
			    rc);
			goto out;
		}
	}
	if (wait_for(&st, count, 1) != 0) {
		pthread_mutex_unlock(&st.lock);
		goto out;
	}
	pthread_mutex_unlock(&st.lock);

	dopts.timeout = 5000;
	dopts.onSuccess = on_disconnect;
	dopts.context = &st;
	if (MQTTAsync_disconnect(client, &dopts) == MQTTASYNC_SUCCESS) {
		struct timespec	deadline;

		pthread_mutex_lock(&st.lock);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 10;
		while (!st.disconnected)
			if (pthread_cond_timedwait(&st.cond, &st.lock,
			    &deadline) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&st.lock);
	}
	printf("paho_pub: %ld of %ld acknowledged\n", st.acked, count);
	status = st.acked == count && st.failed == 0 ? 0 : 1;
out:
	MQTTAsync_destroy(&client);
	return status;
}
