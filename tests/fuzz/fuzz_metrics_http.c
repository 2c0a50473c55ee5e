/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the metrics endpoint's request parser
 * (metrics_request_status). The input is what a client sends; like the
 * server, the target looks for the blank line that ends the head within the
 * first METRICS_REQ_MAX bytes and hands exactly the head over, in a buffer
 * of its own size so that a read past it is caught by ASan. The answer is
 * checked against a second, independently written reading of the request
 * line: "METHOD SP TARGET SP HTTP/1.x CR", with 200 only for GET on
 * /metrics, /, /healthz or /errors (a query string allowed), 405 for
 * another method and 404 for another target.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

/* The expected status of the head req[0..len). */
static int
oracle(const char *req, size_t len)
{
	size_t	 i, m_end, t_start, t_end, v_start, eol, path_len;

	for (eol = 0; eol < len && req[eol] != '\r'; eol++)
		;
	if (eol == len)
		return 400;
	for (m_end = 0; m_end < eol && req[m_end] != ' '; m_end++)
		;
	if (m_end == eol || m_end == 0)
		return 400;
	t_start = m_end + 1;
	for (t_end = t_start; t_end < eol && req[t_end] != ' '; t_end++)
		;
	if (t_end == eol || t_end == t_start)
		return 400;
	v_start = t_end + 1;
	if (eol - v_start != 8 || strncmp(req + v_start, "HTTP/1.", 7) != 0)
		return 400;
	if (m_end != 3 || strncmp(req, "GET", 3) != 0)
		return 405;
	path_len = t_end - t_start;
	for (i = t_start; i < t_end; i++)
		if (req[i] == '?') {
			path_len = i - t_start;
			break;
		}
	if ((path_len == 8 && strncmp(req + t_start, "/metrics", 8) == 0) ||
	    (path_len == 1 && req[t_start] == '/') ||
	    (path_len == 8 && strncmp(req + t_start, "/healthz", 8) == 0) ||
	    (path_len == 7 && strncmp(req + t_start, "/errors", 7) == 0))
		return 200;
	return 404;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*end;
	char		*head;
	size_t		 hlen;
	int		 st;

	if (size > METRICS_REQ_MAX)
		size = METRICS_REQ_MAX;
	if ((end = memmem(data, size, "\r\n\r\n", 4)) == NULL)
		return 0;
	hlen = (size_t)(end - data) + 4;
	if ((head = malloc(hlen)) == NULL)
		return 0;
	memcpy(head, data, hlen);
	st = metrics_request_status(head, hlen, NULL);
	CHECK(st == 200 || st == 400 || st == 404 || st == 405);
	CHECK(st == oracle(head, hlen));
	free(head);
	return 0;
}
