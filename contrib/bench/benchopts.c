/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * mqbench's command line: the options, their defaults and their bounds
 * (mqbench.c describes the run they shape). A bad option prints the usage
 * or names the option and its bounds, and exits 1 before anything is
 * opened.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchclock.h"
#include "benchproto.h"
#include "benchreport.h"

static void	usage(void) __attribute__((noreturn));
static unsigned long long parse_num(const char *, const char *,
		    unsigned long long, unsigned long long);

static void
usage(void)
{
	fprintf(stderr,
	    "usage: mqbench [-jS] [-h host] [-p port] [-c connections] "
	    "[-n messages]\n"
	    "               [-V 3.1.1|5] [-q qos] [-s payload-size] "
	    "[-w window]\n"
	    "               [-t topic-prefix]"
	    " [-x topic-suffix] [-P payload] [-T timeout-s]\n"
	    "               [-I sub-idle-s]"
	    " [-Q sub-qos] [-F sub-filter] [-H hold-s] "
	    "[-R ready-file]\n"
	    "  -h host      broker address (127.0.0.1)\n"
	    "  -p port      broker port (1883)\n"
	    "  -c n         publisher connections (8)\n"
	    "  -n n         total messages over all publishers (100000)\n"
	    "  -V 3.1.1|5   MQTT version of every connection (3.1.1; 4 and "
	    "311 too)\n"
	    "  -q 0|1|2     publish QoS (0)\n"
	    "  -s bytes     payload size (64)\n"
	    "  -w n         QoS 1/2 unacknowledged PUBLISHes per connection "
	    "(20;\n"
	    "               at most the broker's 5.0 Receive Maximum)\n"
	    "  -t prefix    topic prefix; publisher i uses PREFIX/i (bench)\n"
	    "  -x suffix    publisher i uses PREFIX/i/SUFFIX\n"
	    "  -P text      this payload instead of -s printable bytes\n"
	    "  -S           also subscribe to PREFIX/# and count deliveries\n"
	    "  -I s         subscriber gives up after s idle seconds (3)\n"
	    "  -Q 0|1|2     subscription QoS (0)\n"
	    "  -F filter    subscribe to filter instead of PREFIX/#\n"
	    "  -H s         hold the connections idle up to s seconds first\n"
	    "  -R file      created when all are connected; remove it to end "
	    "-H\n"
	    "  -T s         abandon the run after s seconds (120)\n"
	    "  -j           one line of JSON instead of text\n");
	exit(1);
}

static unsigned long long
parse_num(const char *s, const char *what, unsigned long long lo,
    unsigned long long hi)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "mqbench: %s must be a number in %llu..%llu\n",
		    what, lo, hi);
		exit(1);
	}
	return v;
}

/* Fills b (zeroed first) from the command line; see benchreport.h. */
void
benchopts_parse(struct bench *b, int argc, char **argv)
{
	int ch;

	memset(b, 0, sizeof *b);
	b->version = BENCHPROTO_V311;
	b->host = "127.0.0.1";
	b->port = "1883";
	b->nconns = 8;
	b->total = 100000;
	b->size = 64;
	b->window = 20;
	b->prefix = "bench";
	b->timeout_s = 120;
	b->idle_s = 3;
	b->status = "ok";
	b->begin_ns = now_ns();

	while ((ch = getopt(argc, argv, "c:F:H:h:I:jn:P:p:Q:q:R:Ss:T:t:V:w:x:"))
	    != -1) {
		switch (ch) {
		case 'F':
			b->filter = optarg;
			break;
		case 'H':
			b->hold_s = parse_num(optarg, "-H", 1, 86400);
			break;
		case 'Q':
			b->sub_qos = parse_num(optarg, "-Q", 0, 2);
			break;
		case 'R':
			b->ready_file = optarg;
			break;
		case 'c':
			b->nconns = parse_num(optarg, "-c", 1, 100000);
			break;
		case 'h':
			b->host = optarg;
			break;
		case 'I':
			b->idle_s = parse_num(optarg, "-I", 1, 3600);
			break;
		case 'j':
			b->json = true;
			break;
		case 'n':
			b->total = parse_num(optarg, "-n", 0, UINT64_MAX / 2);
			break;
		case 'P':
			b->literal = optarg;
			break;
		case 'p':
			b->port = optarg;
			break;
		case 'q':
			b->qos = parse_num(optarg, "-q", 0, 2);
			break;
		case 'S':
			b->sub = true;
			break;
		case 's':
			b->size = parse_num(optarg, "-s", 0, 512 * 1024);
			break;
		case 'T':
			b->timeout_s = parse_num(optarg, "-T", 1, 86400);
			break;
		case 't':
			b->prefix = optarg;
			break;
		case 'V':
			if (strcmp(optarg, "5") == 0 ||
			    strcmp(optarg, "5.0") == 0)
				b->version = BENCHPROTO_V5;
			else if (strcmp(optarg, "3.1.1") == 0 ||
			    strcmp(optarg, "311") == 0 ||
			    strcmp(optarg, "4") == 0)
				b->version = BENCHPROTO_V311;
			else {
				fprintf(stderr, "mqbench: -V: 3.1.1 (or 311, "
				    "4) or 5 (or 5.0)\n");
				exit(1);
			}
			break;
		case 'w':
			b->window = parse_num(optarg, "-w", 1, 65535);
			break;
		case 'x':
			b->suffix = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (strlen(b->prefix) == 0 || strlen(b->prefix) > 200 ||
	    strpbrk(b->prefix, "+#") != NULL) {
		fprintf(stderr, "mqbench: -t: 1..200 bytes, no '+' or '#'\n");
		exit(1);
	}
	if (b->suffix != NULL && (strlen(b->suffix) == 0 ||
	    strlen(b->suffix) > 40 || strpbrk(b->suffix, "+#") != NULL)) {
		fprintf(stderr, "mqbench: -x: 1..40 bytes, no '+' or '#'\n");
		exit(1);
	}
	if (b->literal != NULL) {
		b->size = strlen(b->literal);
		if (b->size > 512 * 1024) {
			fprintf(stderr, "mqbench: -P: at most 512 KB\n");
			exit(1);
		}
	}
	if (b->filter != NULL && (strlen(b->filter) == 0 ||
	    strlen(b->filter) > 200)) {
		fprintf(stderr, "mqbench: -F: 1..200 bytes\n");
		exit(1);
	}
}
