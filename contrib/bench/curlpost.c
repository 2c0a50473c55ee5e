/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * curlpost: the baseline for the webhook benchmark, a hand-written libcurl
 * loop that POSTs -n JSON bodies to one url, one body per request, one
 * request after the other.
 *
 * It is what a careful programmer would write without a queue or a
 * database in the way: one easy handle set up once and reused, so the
 * connection is kept alive; the same headers mqlite sends with a webhook
 * (Content-Type: application/json, an Idempotency-Key that differs per
 * request, no "Expect: 100-continue"); the response body read and thrown
 * away. A request that fails (transport error or a status outside 2xx)
 * ends the run with status "error". The run is bounded by -T seconds
 * (status "timeout", exit status 2).
 *
 * The report is the number of requests that succeeded, the elapsed time
 * from the first request to the last response, and their ratio; with -j
 * one line of JSON:
 *
 *   {"status":"ok","requests":N,"elapsed_s":S,"req_per_s":R,
 *    "connects":C,"error":""}
 *
 * "connects" is how many connections libcurl opened (1 with keep-alive).
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "benchclock.h"

static void	usage(void) __attribute__((noreturn));
static uint64_t	now_ns(void);
static size_t	discard(char *, size_t, size_t, void *);

static const char default_body[] =
    "{\"topic\":\"site/s1/dev/0/telemetry\",\"payload\":{\"temp\":21.5,"
    "\"hum\":40,\"status\":\"ok\"},\"received_ms\":1700000000000,"
    "\"client_id\":\"mqbench-1-0\",\"username\":null,\"qos\":1,"
    "\"retain\":false}";

static void
usage(void)
{
	fprintf(stderr,
	    "usage: curlpost [-j] -u url [-n requests] [-P body] "
	    "[-T timeout-s]\n"
	    "  -u url       where to POST (required)\n"
	    "  -n n         requests, one after the other (10000)\n"
	    "  -P text      request body (a JSON webhook envelope)\n"
	    "  -T s         abandon the run after s seconds (120)\n"
	    "  -j           one line of JSON instead of text\n");
	exit(1);
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int
main(int argc, char **argv)
{
	struct curl_slist *base = NULL, *hdrs;
	const char *url = NULL, *body = default_body, *status = "ok";
	char key[64], err[CURL_ERROR_SIZE], error[320];
	uint64_t total = 10000, done = 0, t0, t1, deadline;
	unsigned long long v;
	long code, timeout_s = 120, connects = 0, nc;
	double el, rate;
	bool json = false;
	CURLcode rc;
	CURL *e;
	char *end;
	int ch;

	while ((ch = getopt(argc, argv, "jn:P:T:u:")) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'n':
			v = strtoull(optarg, &end, 10);
			if (*end != '\0' || v == 0)
				usage();
			total = v;
			break;
		case 'P':
			body = optarg;
			break;
		case 'T':
			timeout_s = strtol(optarg, &end, 10);
			if (*end != '\0' || timeout_s < 1)
				usage();
			break;
		case 'u':
			url = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || url == NULL)
		usage();

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (e = curl_easy_init()) == NULL) {
		fprintf(stderr, "curlpost: cannot initialise libcurl\n");
		return 1;
	}
	base = curl_slist_append(base, "Content-Type: application/json");
	base = curl_slist_append(base, "Expect:");
	if (base == NULL) {
		fprintf(stderr, "curlpost: out of memory\n");
		return 1;
	}
	err[0] = '\0';
	error[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "curlpost");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(body));
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);

	t0 = now_ns();
	deadline = t0 + (uint64_t)timeout_s * 1000000000ULL;
	while (done < total) {
		if (now_ns() >= deadline) {
			status = "timeout";
			snprintf(error, sizeof error, "%ld s are up",
			    timeout_s);
			break;
		}
		/* A fresh Idempotency-Key per request, as mqlite sends. */
		snprintf(key, sizeof key, "Idempotency-Key: curlpost-%" PRIu64,
		    done);
		if ((hdrs = curl_slist_append(NULL, key)) == NULL) {
			status = "error";
			snprintf(error, sizeof error, "out of memory");
			break;
		}
		hdrs->next = base;
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
		rc = curl_easy_perform(e);
		hdrs->next = NULL;
		curl_slist_free_all(hdrs);
		if (rc != CURLE_OK) {
			status = "error";
			snprintf(error, sizeof error, "request %" PRIu64 ": %s",
			    done + 1, err[0] != '\0' ? err :
			    curl_easy_strerror(rc));
			break;
		}
		code = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		nc = 0;
		curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
		connects += nc;
		if (code < 200 || code > 299) {
			status = "error";
			snprintf(error, sizeof error, "request %" PRIu64
			    ": HTTP %ld", done + 1, code);
			break;
		}
		done++;
	}
	t1 = now_ns();
	el = (double)(t1 - t0) / 1e9;
	rate = el > 0 ? (double)done / el : 0;

	if (json) {
		printf("{\"status\":\"%s\",\"requests\":%" PRIu64
		    ",\"elapsed_s\":%.3f,\"req_per_s\":%.0f,\"connects\":%ld,"
		    "\"error\":\"", status, done, el, rate, connects);
		for (end = error; *end != '\0'; end++) {
			if (*end == '"' || *end == '\\')
				putchar('\\');
			putchar(*end);
		}
		printf("\"}\n");
	} else {
		printf("status          %s%s%s\n", status,
		    error[0] != '\0' ? ": " : "", error);
		printf("requests        %" PRIu64 " of %" PRIu64 " in %.3f s,"
		    " %.0f/s, %ld connection(s)\n", done, total, el, rate,
		    connects);
	}
	curl_easy_cleanup(e);
	curl_slist_free_all(base);
	curl_global_cleanup();
	if (strcmp(status, "timeout") == 0)
		return 2;
	return strcmp(status, "ok") == 0 ? 0 : 1;
}
