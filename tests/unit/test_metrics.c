/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the Prometheus line writers of metrics.c: label value
 * escaping (\\, \", \n), # HELP / # TYPE lines with escaped help text,
 * samples with and without a label, integer and special float values,
 * names refused without appending anything, and allocation failure;
 * the latency histogram (bucket edges, cumulative lines, _sum, _count);
 * request routing to /metrics, /, /healthz and /errors; the ring of recent
 * warnings (bounded, oldest first, escaped).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "buf.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "log_recent.h"
#include "metrics.h"
#include "metrics_hist.h"

/* True when b holds exactly s. */
static int
holds(const struct buf *b, const char *s)
{
	return buf_used(b) == strlen(s) &&
	    memcmp(buf_head(b), s, strlen(s)) == 0;
}

static void
test_escape_label(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(metrics_escape_label(&b, "plain"), 0);
	CU_ASSERT(holds(&b, "plain"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_escape_label(&b, "a\\b\"c\nd"), 0);
	CU_ASSERT(holds(&b, "a\\\\b\\\"c\\nd"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_escape_label(&b, "\\\\\"\n"), 0);
	CU_ASSERT(holds(&b, "\\\\\\\\\\\"\\n"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_escape_label(&b, ""), 0);
	CU_ASSERT_EQUAL(metrics_escape_label(&b, NULL), 0);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	/* Other bytes, tabs and UTF-8 included, pass unchanged. */
	CU_ASSERT_EQUAL(metrics_escape_label(&b, "r\xc3\xa9gle\t/x{y}"), 0);
	CU_ASSERT(holds(&b, "r\xc3\xa9gle\t/x{y}"));
	buf_free(&b);
}

static void
test_family(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(metrics_family(&b, "mqlite_x_total", "counter",
	    "Rows \"in\" C:\\db\nsecond line"), 0);
	/* Help escapes \ and newline only; quotes stay. */
	CU_ASSERT(holds(&b, "# HELP mqlite_x_total Rows \"in\" C:\\\\db\\n"
	    "second line\n# TYPE mqlite_x_total counter\n"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_family(&b, "bad name", "gauge", "h"),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(metrics_family(&b, "9lives", "gauge", "h"),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(metrics_family(&b, "", "gauge", "h"), GW_EMALFORMED);
	CU_ASSERT_EQUAL(metrics_family(&b, "ok", "gau ge", "h"),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	buf_free(&b);
}

static void
test_samples(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(metrics_sample_u64(&b, "mqlite_rows_total", NULL,
	    NULL, 18446744073709551615ULL), 0);
	CU_ASSERT(holds(&b, "mqlite_rows_total 18446744073709551615\n"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_sample_u64(&b, "mqlite_rule_written_total",
	    "rule", "we\"ird\\name\n", 7), 0);
	CU_ASSERT(holds(&b, "mqlite_rule_written_total{rule=\"we\\\"ird"
	    "\\\\name\\n\"} 7\n"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_sample_u64(&b, "ns:x", "route", "r/webhook",
	    0), 0);
	CU_ASSERT(holds(&b, "ns:x{route=\"r/webhook\"} 0\n"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_sample_double(&b, "age", "route", "a", 1.5),
	    0);
	CU_ASSERT(holds(&b, "age{route=\"a\"} 1.5\n"));
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_sample_double(&b, "a", NULL, NULL, NAN), 0);
	CU_ASSERT_EQUAL(metrics_sample_double(&b, "b", NULL, NULL,
	    INFINITY), 0);
	CU_ASSERT_EQUAL(metrics_sample_double(&b, "c", NULL, NULL,
	    -INFINITY), 0);
	CU_ASSERT(holds(&b, "a NaN\nb +Inf\nc -Inf\n"));
	buf_reset(&b);
	/* Label names take no colon; nothing is appended on refusal. */
	CU_ASSERT_EQUAL(metrics_sample_u64(&b, "m", "a:b", "v", 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(metrics_sample_u64(&b, "m", "", "v", 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(metrics_sample_u64(&b, "m-x", NULL, NULL, 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	buf_free(&b);
}

static void
test_enomem(void)
{
	struct buf b = BUF_INIT;
	size_t base = gw_mem_used();

	gw_mem_fail_after(0);
	CU_ASSERT_EQUAL(metrics_sample_u64(&b, "m", "l", "v", 1), GW_ENOMEM);
	CU_ASSERT_EQUAL(metrics_family(&b, "m", "gauge", "h"), GW_ENOMEM);
	CU_ASSERT_EQUAL(metrics_escape_label(&b, "a\"b"), GW_ENOMEM);
	gw_mem_fail_after(-1);
	buf_free(&b);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* The value of the line starting with prefix in b, or -1. */
static double
line_value(const struct buf *b, const char *prefix)
{
	const char *p = (const char *)buf_head(b), *end = p + buf_used(b);
	size_t n = strlen(prefix);

	while (p < end) {
		if ((size_t)(end - p) > n && memcmp(p, prefix, n) == 0)
			return atof(p + n);
		if ((p = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		p++;
	}
	return -1;
}

static void
test_histogram(void)
{
	struct metrics_hist h;
	struct buf b = BUF_INIT;

	memset(&h, 0, sizeof h);
	metrics_hist_observe(&h, 100);		/* on the 100 us edge */
	metrics_hist_observe(&h, 101);		/* next bucket */
	metrics_hist_observe(&h, -5);		/* counts as 0 */
	metrics_hist_observe(&h, 3000000);	/* 3 s */
	metrics_hist_observe(&h, 60000000);	/* past 10 s: +Inf only */
	CU_ASSERT_EQUAL(metrics_hist_render(&b, "lat_seconds", "help", &h),
	    0);
	CU_ASSERT_EQUAL(line_value(&b, "lat_seconds_bucket{le=\"0.0001\"} "),
	    2);
	CU_ASSERT_EQUAL(line_value(&b,
	    "lat_seconds_bucket{le=\"0.00025\"} "), 3);
	CU_ASSERT_EQUAL(line_value(&b, "lat_seconds_bucket{le=\"2.5\"} "),
	    3);
	CU_ASSERT_EQUAL(line_value(&b, "lat_seconds_bucket{le=\"5\"} "), 4);
	CU_ASSERT_EQUAL(line_value(&b, "lat_seconds_bucket{le=\"10\"} "),
	    4);
	CU_ASSERT_EQUAL(line_value(&b, "lat_seconds_bucket{le=\"+Inf\"} "),
	    5);
	CU_ASSERT_EQUAL(line_value(&b, "lat_seconds_count "), 5);
	CU_ASSERT_DOUBLE_EQUAL(line_value(&b, "lat_seconds_sum "), 63.000201,
	    1e-9);
	CU_ASSERT(memmem(buf_head(&b), buf_used(&b),
	    "# TYPE lat_seconds histogram\n", 29) != NULL);
	buf_reset(&b);
	CU_ASSERT_EQUAL(metrics_hist_render(&b, "bad name", "h", &h),
	    GW_EMALFORMED);
	buf_free(&b);
}

static void
test_routes(void)
{
	static const struct {
		const char	*req;
		int		 status;
		int		 path;
	} t[] = {
		{ "GET /metrics HTTP/1.1\r\n\r\n", 200, METRICS_PATH_METRICS },
		{ "GET /metrics?x=1 HTTP/1.0\r\n\r\n", 200,
		    METRICS_PATH_METRICS },
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200,
		    METRICS_PATH_STATUS },
		{ "GET /?r=1 HTTP/1.1\r\n\r\n", 200, METRICS_PATH_STATUS },
		{ "GET /healthz HTTP/1.1\r\n\r\n", 200, METRICS_PATH_HEALTH },
		{ "GET /errors HTTP/1.1\r\n\r\n", 200, METRICS_PATH_ERRORS },
		{ "GET /healthzz HTTP/1.1\r\n\r\n", 404, -1 },
		{ "GET //metrics HTTP/1.1\r\n\r\n", 404, -1 },
		{ "GET /error HTTP/1.1\r\n\r\n", 404, -1 },
		{ "POST / HTTP/1.1\r\n\r\n", 405, -1 },
		{ "GET / HTTP/2.0x\r\n\r\n", 400, -1 },
	};
	enum metrics_path p;
	size_t i;
	int st;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		p = (enum metrics_path)-1;
		st = metrics_request_status(t[i].req, strlen(t[i].req), &p);
		CU_ASSERT_EQUAL(st, t[i].status);
		if (t[i].path >= 0)
			CU_ASSERT_EQUAL((int)p, t[i].path);
	}
}

static void
test_recent(void)
{
	struct buf b = BUF_INIT;
	char text[32];
	const char *s;
	int i;

	for (i = 0; i < LOG_RECENT_MAX + 5; i++) {
		snprintf(text, sizeof text, "line %d", i);
		log_recent_add(i % 2 ? LOG_LVL_WARN : LOG_LVL_ERROR, text);
	}
	log_recent_add(LOG_LVL_WARN, "evil\nforged line\x1b[31m");
	CU_ASSERT_EQUAL(log_recent_render(&b), 0);
	CU_ASSERT_EQUAL(buf_append(&b, "", 1), 0);
	s = (const char *)buf_head(&b);
	/* The oldest six are gone; the rest are in order. */
	CU_ASSERT(strstr(s, "line 5\n") == NULL);
	CU_ASSERT(strstr(s, "error: line 6\n") != NULL);
	CU_ASSERT(strstr(s, "warn: line 19\n") != NULL);
	CU_ASSERT(strstr(s, "error: line 20\n") != NULL);
	CU_ASSERT(strstr(s, "line 6\n") < strstr(s, "line 20\n"));
	CU_ASSERT(strstr(s, "warn: evil\\x0aforged line\\x1b[31m\n") !=
	    NULL);
	for (i = 0; *s != '\0'; s++)
		i += *s == '\n';
	CU_ASSERT_EQUAL(i, LOG_RECENT_MAX);
	buf_free(&b);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("metrics line writers", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "label value escaping", test_escape_label) == NULL ||
	    CU_add_test(s, "help and type lines", test_family) == NULL ||
	    CU_add_test(s, "samples", test_samples) == NULL ||
	    CU_add_test(s, "allocation failure", test_enomem) == NULL ||
	    CU_add_test(s, "latency histogram", test_histogram) == NULL ||
	    CU_add_test(s, "request paths", test_routes) == NULL ||
	    CU_add_test(s, "recent warnings", test_recent) == NULL)
		return cutest_setup_failed();
	return cutest_run();
}
