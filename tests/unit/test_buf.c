/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the core helpers: struct buf (growth, limits, lazy
 * compaction), the counting allocator and its fault injection, and the
 * refcounted struct msg.
 */
#include <string.h>

#include <CUnit/Basic.h>

#include "broker/msg.h"
#include "buf.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "oomtest.h"

static void
test_append_consume(void)
{
	struct buf b = BUF_INIT;
	size_t base = gw_mem_used();
	int i;

	CU_ASSERT_EQUAL(buf_used(&b), 0);
	for (i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(buf_append(&b, "abcd", 4), 0);
	CU_ASSERT_EQUAL(buf_used(&b), 4000);
	CU_ASSERT(memcmp(buf_head(&b), "abcdabcd", 8) == 0);
	buf_consume(&b, 2);
	CU_ASSERT(memcmp(buf_head(&b), "cdab", 4) == 0);
	CU_ASSERT_EQUAL(buf_used(&b), 3998);
	buf_consume(&b, 3998);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	CU_ASSERT_EQUAL(b.off, 0);
	buf_free(&b);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static void
test_reserve_limit_and_compaction(void)
{
	struct buf b = BUF_INIT;
	uint8_t *data;

	CU_ASSERT_EQUAL(buf_reserve(&b, 100, 64), GW_ETOOBIG);
	CU_ASSERT_EQUAL(buf_reserve(&b, 64, 64), 0);
	memset(buf_tail(&b), 'x', 64);
	buf_commit(&b, 64);
	CU_ASSERT_EQUAL(buf_reserve(&b, 1, 64), GW_ETOOBIG);
	/* Consuming from the front frees room without growing. */
	buf_consume(&b, 60);
	data = b.data;
	CU_ASSERT_EQUAL(buf_reserve(&b, b.cap - 4, 0), 0);
	CU_ASSERT_PTR_EQUAL(b.data, data);
	CU_ASSERT_EQUAL(b.off, 0);
	CU_ASSERT_EQUAL(buf_used(&b), 4);
	buf_reset(&b);
	buf_shrink(&b, 0);
	CU_ASSERT_PTR_NULL(b.data);
	buf_free(&b);
}

static int
oom_append(void *ctx)
{
	return buf_append(ctx, "x", 1);
}

static void
oom_append_check(void *ctx)
{
	struct buf *b = ctx;

	CU_ASSERT_PTR_NULL(b->data);
	CU_ASSERT_EQUAL(b->len, 0);
}

static void
test_fault_injection(void)
{
	struct buf b = BUF_INIT;
	void *p;

	gw_mem_fail_after(1);
	p = gw_malloc(10);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_PTR_NULL(gw_malloc(10));
	CU_ASSERT_PTR_NULL(gw_malloc(10));	/* stays failing */
	gw_mem_fail_after(-1);
	gw_free(p);
	(void)oomtest_run(oom_append, oom_append_check, &b, 1);
	CU_ASSERT(b.len == 1 && b.data[0] == 'x');
	buf_free(&b);
	gw_free(NULL);
}

static void
test_realloc_accounting(void)
{
	size_t base = gw_mem_used();
	char *p = gw_malloc(10), *q;

	CU_ASSERT_EQUAL(gw_mem_used(), base + 10);
	q = gw_realloc(p, 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(gw_mem_used(), base + 1000);
	q = gw_realloc(q, 5);
	CU_ASSERT_EQUAL(gw_mem_used(), base + 5);
	gw_free(q);
	p = gw_strndup("hello world", 5);
	CU_ASSERT_STRING_EQUAL(p, "hello");
	gw_free(p);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

/* msg_new and msg_new_source for oomtest_run(): ctx is a struct msg **. */
static int
oom_msg_new(void *ctx)
{
	struct msg **m = ctx;

	*m = msg_new("t", 1, "c", 1, NULL, 0, "x", 1, 0, 0, 0);
	return *m != NULL ? 0 : GW_ENOMEM;
}

static int
oom_msg_source(void *ctx)
{
	struct msg **m = ctx;

	*m = msg_new_source("t", 1, "c", 1, "x", 1, 0, 0, 0, "s", "h:1");
	return *m != NULL ? 0 : GW_ENOMEM;
}

static void
test_msg_refcount(void)
{
	size_t base = gw_mem_used();
	struct msg *m, *r;

	m = msg_new("a/b", 3, "dev1", 4, NULL, 0, "\x00\x01\xff", 3, 1, 0,
	    1234);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->topic, "a/b");
	CU_ASSERT_STRING_EQUAL(m->client_id, "dev1");
	CU_ASSERT_PTR_NULL(m->username);
	CU_ASSERT_EQUAL(m->payload_len, 3);
	CU_ASSERT(memcmp(m->payload, "\x00\x01\xff", 3) == 0);
	CU_ASSERT_EQUAL(m->received_ms, 1234);
	r = msg_ref(m);
	msg_unref(&m);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_STRING_EQUAL(r->topic, "a/b");
	msg_unref(&r);
	msg_unref(&r);		/* NULL is fine */
	CU_ASSERT_EQUAL(gw_mem_used(), base);

	m = msg_new("t", 1, "", 0, "user", 4, "", 0, 0, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->username, "user");
	CU_ASSERT_STRING_EQUAL(m->client_id, "");
	CU_ASSERT_EQUAL(m->payload_len, 0);
	msg_unref(&m);

	(void)oomtest_run(oom_msg_new, NULL, &m, 1);
	CU_ASSERT_PTR_NOT_NULL(m);
	msg_unref(&m);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static void
test_msg_source(void)
{
	size_t base = gw_mem_used();
	struct msg *m;

	m = msg_new("t", 1, "dev", 3, NULL, 0, "x", 1, 1, 0, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_PTR_NULL(m->source);
	CU_ASSERT_FALSE(msg_from_broker(m, "127.0.0.1", 1883));
	msg_unref(&m);

	m = msg_new_source("a/b", 3, "gw", 2, "\x00p", 2, 2, 1, 77, "site",
	    "[::1]:1884");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->topic, "a/b");
	CU_ASSERT_STRING_EQUAL(m->client_id, "gw");
	CU_ASSERT_PTR_NULL(m->username);
	CU_ASSERT_EQUAL(m->payload_len, 2);
	CU_ASSERT(memcmp(m->payload, "\x00p", 2) == 0);
	CU_ASSERT_EQUAL(m->qos, 2);
	CU_ASSERT_EQUAL(m->retain, 1);
	CU_ASSERT_EQUAL(m->received_ms, 77);
	CU_ASSERT_STRING_EQUAL(m->source, "site");
	CU_ASSERT_EQUAL(m->source_len, 4);
	CU_ASSERT_STRING_EQUAL(m->origin, "[::1]:1884");
	CU_ASSERT_TRUE(msg_from_broker(m, "::1", 1884));
	CU_ASSERT_FALSE(msg_from_broker(m, "::1", 1883));
	CU_ASSERT_FALSE(msg_from_broker(m, "127.0.0.1", 1884));
	msg_unref(&m);
	CU_ASSERT_EQUAL(gw_mem_used(), base);

	(void)oomtest_run(oom_msg_source, NULL, &m, 1);
	CU_ASSERT_PTR_NOT_NULL(m);
	msg_unref(&m);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	s = CU_add_suite("buf, mem, msg", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "append and consume", test_append_consume) == NULL ||
	    CU_add_test(s, "reserve limit and compaction",
	    test_reserve_limit_and_compaction) == NULL ||
	    CU_add_test(s, "allocation fault injection",
	    test_fault_injection) == NULL ||
	    CU_add_test(s, "realloc accounting",
	    test_realloc_accounting) == NULL ||
	    CU_add_test(s, "msg refcount", test_msg_refcount) == NULL ||
	    CU_add_test(s, "msg from a source", test_msg_source) == NULL)
		return cutest_setup_failed();
	return cutest_run();
}
