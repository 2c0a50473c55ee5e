/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the Prometheus line writers of metrics.c: label value
 * escaping (\\, \", \n), # HELP / # TYPE lines with escaped help text,
 * samples with and without a label, integer and special float values,
 * names refused without appending anything, and allocation failure.
 */
#include <math.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "buf.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "metrics.h"

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
	    CU_add_test(s, "allocation failure", test_enomem) == NULL)
		return cutest_setup_failed();
	return cutest_run();
}
