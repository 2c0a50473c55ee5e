/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite contributors */

/*
 * mqtt_raw: sends bytes given in hex to a broker and reports what came back,
 * for shell-level end-to-end checks of byte-exact behaviour.
 *
 * usage: mqtt_raw HOST PORT HEX [TIMEOUT_MS]
 *
 * Connects to HOST:PORT (IPv4), writes the bytes, then reads until the peer
 * closes or TIMEOUT_MS (default 3000) passes without it. Everything received
 * is printed as one line of lowercase hex. Exit status: 0 when the peer
 * closed the connection, 3 when it was still open at the timeout, 1 on a
 * local error, 2 on a usage error.
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MQTT_RAW_MAX	65536

static int	hexval(int);
static long	now_ms(void);

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	static unsigned char	 out[MQTT_RAW_MAX], in[4096];
	const char		*hex;
	size_t			 n = 0, off;
	long			 timeout_ms = 3000, deadline;
	ssize_t			 r;
	int			 fd, hi, lo, closed = 0;
	char			*end;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: mqtt_raw HOST PORT HEX [TIMEOUT_MS]\n");
		return 2;
	}
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)strtoul(argv[2], &end, 10));
	if (*end != '\0' || inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1) {
		fprintf(stderr, "mqtt_raw: bad address %s:%s\n", argv[1],
		    argv[2]);
		return 2;
	}
	if (argc == 5)
		timeout_ms = strtol(argv[4], NULL, 10);
	for (hex = argv[3]; hex[0] != '\0'; hex += 2) {
		if (hex[1] == '\0' || (hi = hexval(hex[0])) < 0 ||
		    (lo = hexval(hex[1])) < 0 || n == sizeof out) {
			fprintf(stderr, "mqtt_raw: bad hex\n");
			return 2;
		}
		out[n++] = (unsigned char)(hi << 4 | lo);
	}

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		fprintf(stderr, "mqtt_raw: connect: %s\n", strerror(errno));
		return 1;
	}
	for (off = 0; off < n; off += (size_t)r) {
		if ((r = write(fd, out + off, n - off)) <= 0) {
			if (r == -1 && errno == EINTR) {
				r = 0;
				continue;
			}
			/* The peer may close before taking everything. */
			break;
		}
	}

	deadline = now_ms() + timeout_ms;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!closed && now_ms() < deadline) {
		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		r = read(fd, in, sizeof in);
		if (r == 0 || (r == -1 && errno != EINTR && errno != EAGAIN))
			closed = 1;
		else
			for (off = 0; off < (size_t)(r > 0 ? r : 0); off++)
				printf("%02x", in[off]);
	}
	printf("\n");
	close(fd);
	return closed ? 0 : 3;
}
