/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * mqbench's latency histogram and report. Latencies go into log-linear
 * buckets: exact below 128 microseconds, then 64 buckets per power of two,
 * so a percentile read back is within about 1.6% of the true value. The
 * report is one line of JSON for the bench script (-j) or a few lines of
 * text for a person.
 */

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "benchreport.h"

static uint64_t	hist_value(unsigned);
static uint64_t	hist_pct(const struct bench *, double);
static uint64_t	report_now_ns(void);

static uint64_t
report_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Adds one latency; log-linear buckets, exact below 2 * HIST_SUB. */
void
benchreport_add_latency(struct bench *b, uint64_t v)
{
	unsigned msb, shift, i;

	if (v > b->lat_max)
		b->lat_max = v;
	if (v < 2 * HIST_SUB)
		i = (unsigned)v;
	else {
		msb = 63 - (unsigned)__builtin_clzll(v);
		shift = msb - 6;
		i = HIST_SUB * (shift + 1) + (unsigned)((v >> shift) - HIST_SUB);
		if (i >= HIST_BUCKETS)
			i = HIST_BUCKETS - 1;
	}
	b->hist[i]++;
	b->hist_n++;
}

/* Middle of the value range that bucket i covers. */
static uint64_t
hist_value(unsigned i)
{
	unsigned shift;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	return (((uint64_t)(i % HIST_SUB + HIST_SUB)) << shift) +
	    ((1ULL << shift) >> 1);
}

static uint64_t
hist_pct(const struct bench *b, double pct)
{
	uint64_t want, seen = 0;
	unsigned i;

	if (b->hist_n == 0)
		return 0;
	want = (uint64_t)(pct / 100.0 * (double)b->hist_n + 0.5);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += b->hist[i];
		if (seen >= want) {
			if (hist_value(i) > b->lat_max)
				return b->lat_max;
			return hist_value(i);
		}
	}
	return b->lat_max;
}

/* Prints the figures of the run; see benchreport.h. */
void
benchreport_print(struct bench *b)
{
	uint64_t sent = 0, acked = 0, end, rx = 0;
	double el = 0, rate = 0, sel = 0, srate = 0, dr = 0;
	unsigned i;

	for (i = 0; i < b->nconns; i++) {
		sent += b->conns[i].sent;
		acked += b->conns[i].acked;
	}
	if (b->start_ns != 0) {
		end = b->pub_end_ns != 0 ? b->pub_end_ns : report_now_ns();
		el = (double)(end - b->start_ns) / 1e9;
		if (el > 0)
			rate = (double)(b->qos == 0 ? sent : acked) / el;
	}
	if (b->closed_ns > b->start_ns && b->start_ns != 0)
		dr = (double)(b->closed_ns - b->start_ns) / 1e9;
	if (b->subc != NULL) {
		rx = b->subc->received;
		if (rx > 0 && b->last_rx_ns > b->start_ns) {
			sel = (double)(b->last_rx_ns - b->start_ns) / 1e9;
			srate = (double)rx / sel;
		}
	}
	if (b->json) {
		printf("{\"status\":\"%s\",\"mqtt\":\"%s\",\"qos\":%d,"
		    "\"connections\":%u,\"payload\":%zu,\"window\":%u,"
		    "\"receive_max\":%u,\"messages\":%" PRIu64
		    ",\"sent\":%" PRIu64 ",\"acked\":%" PRIu64
		    ",\"elapsed_s\":%.3f,\"msgs_per_s\":%.0f",
		    b->status, b->version == 5 ? "5.0" : "3.1.1", b->qos,
		    b->nconns, b->size, b->window, b->receive_max, b->total,
		    sent, acked, el, rate);
		if (b->qos > 0)
			printf(",\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64
			    ",\"max_us\":%" PRIu64 ",\"unexpected_acks\":%"
			    PRIu64, hist_pct(b, 50), hist_pct(b, 99),
			    b->lat_max, b->unexpected);
		if (b->subc != NULL)
			printf(",\"sub_received\":%" PRIu64
			    ",\"sub_elapsed_s\":%.3f,\"sub_msgs_per_s\":%.0f",
			    rx, sel, srate);
		printf(",\"drain_s\":%.3f", dr);
		printf(",\"start_ms\":%lld,\"end_ms\":%lld,\"error\":\"",
		    b->start_wall_ms, b->pub_end_wall_ms);
		for (i = 0; b->error[i] != '\0'; i++) {
			if (b->error[i] == '"' || b->error[i] == '\\')
				putchar('\\');
			putchar(b->error[i]);
		}
		printf("\"}\n");
	} else {
		printf("status          %s%s%s\n", b->status,
		    b->error[0] != '\0' ? ": " : "", b->error);
		printf("publishers      %u x MQTT %s QoS %d, payload %zu "
		    "bytes", b->nconns, b->version == 5 ? "5.0" : "3.1.1",
		    b->qos, b->size);
		if (b->qos > 0)
			printf(", window %u", b->window);
		if (b->qos > 0 && b->receive_max != 0)
			printf(" (Receive Maximum %u)", b->receive_max);
		printf("\n");
		printf("messages        %" PRIu64 " sent", sent);
		if (b->qos > 0)
			printf(", %" PRIu64 " acknowledged", acked);
		printf(" of %" PRIu64 "\n", b->total);
		printf("elapsed         %.3f s\n", el);
		printf("publish rate    %.0f msgs/s\n", rate);
		printf("broker drained  %.3f s (last publisher closed)\n", dr);
		if (b->qos > 0) {
			printf("%s latency %sp50 %" PRIu64 " us, p99 %"
			    PRIu64 " us, max %" PRIu64 " us\n",
			    b->qos == 1 ? "PUBACK" : "PUBCOMP",
			    b->qos == 1 ? " " : "",
			    hist_pct(b, 50), hist_pct(b, 99), b->lat_max);
			if (b->unexpected != 0)
				printf("unexpected      %" PRIu64
				    " acks for ids not in flight\n",
				    b->unexpected);
		}
		if (b->subc != NULL)
			printf("subscriber      %" PRIu64 " received (%.2f%%) "
			    "in %.3f s, %.0f msgs/s\n", rx, b->total == 0 ?
			    100.0 : 100.0 * (double)rx / (double)b->total,
			    sel, srate);
	}
	fflush(stdout);
}

