/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MQTT 5.0 property block of struct msg: only the forwardable
 * properties are kept, in the message's one allocation, in an order and
 * encoding the property decoder reads back; Topic Alias and Subscription
 * Identifier are dropped; the Message Expiry Interval becomes a deadline.
 */
#include <string.h>

#include "broker/msg.h"
#include "buf.h"
#include "err.h"
#include "mem.h"
#include "mqtt/props.h"
#include "cutest.h"
#include "oomtest.h"

/*
 * Decodes a hand-written PUBLISH property block: Payload Format 1, Message
 * Expiry 30, Content Type "text/plain", Response Topic "r/1", Correlation
 * Data 00 ff, Topic Alias 7, two user properties ("a"="1", "b"="2") and a
 * Subscription Identifier 5 (not valid from a client, but it must never
 * be kept whatever the decoder accepts).
 */
static const uint8_t wire[] = {
	0,				/* length, patched below */
	0x01, 1,
	0x02, 0, 0, 0, 30,
	0x03, 0, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n',
	0x26, 0, 1, 'a', 0, 1, '1',
	0x08, 0, 3, 'r', '/', '1',
	0x09, 0, 2, 0x00, 0xff,
	0x23, 0, 7,
	0x26, 0, 1, 'b', 0, 1, '2',
	0x0b, 5,
};

static int
decode_wire(struct props *pp, uint8_t *copy)
{
	size_t used;

	memcpy(copy, wire, sizeof wire);
	copy[0] = sizeof wire - 1;
	return props_decode(copy, sizeof wire, CODEC_PUBLISH, pp, &used,
	    NULL);
}

static void
test_plain_has_none(void)
{
	size_t base = gw_mem_used();
	struct props p;
	struct msg *m;

	m = msg_new("t", 1, "c", 1, NULL, 0, "x", 1, 1, 0, 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_PTR_NULL(m->props);
	CU_ASSERT_EQUAL(m->props_len, 0);
	CU_ASSERT_EQUAL(m->expire_ms, 0);
	CU_ASSERT_FALSE(msg_props(m, &p));
	CU_ASSERT_FALSE(msg_expired(m, 1LL << 60));
	msg_unref(&m);

	/* A 5.0 PUBLISH with only a Topic Alias forwards nothing. */
	memset(&p, 0, sizeof p);
	p.topic_alias = 3;
	props_set(&p, PROPS_TOPIC_ALIAS);
	m = msg_new5("t", 1, "c", 1, NULL, 0, "x", 1, 1, 0, 1000, &p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_PTR_NULL(m->props);
	msg_unref(&m);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static void
test_forwardable_kept(void)
{
	size_t base = gw_mem_used();
	uint8_t copy[sizeof wire];
	struct props in, out;
	struct codec_iter it;
	struct codec_str n, v;
	struct msg *m;
	uint32_t id;

	CU_ASSERT_EQUAL_FATAL(decode_wire(&in, copy), 0);
	m = msg_new5("a/b", 3, "dev", 3, "u", 1, "{}", 2, 1, 1, 5000, &in);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	/* The input may go: the message holds its own copy. */
	memset(copy, 0xee, sizeof copy);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m->props);
	CU_ASSERT_EQUAL(m->expire_ms, 5000 + 30 * 1000);
	CU_ASSERT_TRUE_FATAL(msg_props(m, &out));
	CU_ASSERT_TRUE(props_has(&out, PROPS_PAYLOAD_FORMAT));
	CU_ASSERT_EQUAL(out.payload_format, 1);
	CU_ASSERT_TRUE(props_has(&out, PROPS_MESSAGE_EXPIRY));
	CU_ASSERT_EQUAL(out.message_expiry, 30);
	CU_ASSERT_EQUAL(out.content_type.len, 10);
	CU_ASSERT(memcmp(out.content_type.ptr, "text/plain", 10) == 0);
	CU_ASSERT_EQUAL(out.response_topic.len, 3);
	CU_ASSERT(memcmp(out.response_topic.ptr, "r/1", 3) == 0);
	CU_ASSERT_EQUAL(out.correlation_data.len, 2);
	CU_ASSERT(memcmp(out.correlation_data.ptr, "\x00\xff", 2) == 0);
	CU_ASSERT_FALSE(props_has(&out, PROPS_TOPIC_ALIAS));
	CU_ASSERT_FALSE(props_has(&out, PROPS_SUBSCRIPTION_ID));
	CU_ASSERT_EQUAL(out.n_sub_id, 0);
	it = out.block;
	CU_ASSERT_EQUAL(props_next_sub_id(&it, &id), 0);
	/* User properties in their order. */
	CU_ASSERT_EQUAL(out.n_user, 2);
	it = out.block;
	CU_ASSERT_EQUAL_FATAL(props_next_user(&it, &n, &v), 1);
	CU_ASSERT(n.len == 1 && n.ptr[0] == 'a' && v.len == 1 &&
	    v.ptr[0] == '1');
	CU_ASSERT_EQUAL_FATAL(props_next_user(&it, &n, &v), 1);
	CU_ASSERT(n.len == 1 && n.ptr[0] == 'b' && v.len == 1 &&
	    v.ptr[0] == '2');
	CU_ASSERT_EQUAL(props_next_user(&it, &n, &v), 0);
	/* The other parts are intact. */
	CU_ASSERT_STRING_EQUAL(m->topic, "a/b");
	CU_ASSERT_STRING_EQUAL(m->client_id, "dev");
	CU_ASSERT_STRING_EQUAL(m->username, "u");
	CU_ASSERT(m->payload_len == 2 && memcmp(m->payload, "{}", 2) == 0);
	msg_unref(&m);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static void
test_roundtrip_block(void)
{
	size_t base = gw_mem_used(), used;
	uint8_t copy[sizeof wire];
	struct props in, again;
	struct msg *m, *m2;

	/* What the store persists (m->props) rebuilds the same message. */
	CU_ASSERT_EQUAL_FATAL(decode_wire(&in, copy), 0);
	m = msg_new5("t", 1, "c", 1, NULL, 0, "x", 1, 2, 0, 100, &in);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(props_decode(m->props, m->props_len,
	    CODEC_PUBLISH, &again, &used, NULL), 0);
	CU_ASSERT_EQUAL(used, m->props_len);
	m2 = msg_new5("t", 1, "c", 1, NULL, 0, "x", 1, 2, 0, 100, &again);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
	CU_ASSERT_EQUAL(m2->props_len, m->props_len);
	CU_ASSERT(memcmp(m2->props, m->props, m->props_len) == 0);
	CU_ASSERT_EQUAL(m2->expire_ms, m->expire_ms);
	msg_unref(&m);
	msg_unref(&m2);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static void
test_expiry(void)
{
	struct props p;
	struct msg *m;

	memset(&p, 0, sizeof p);
	p.message_expiry = 10;
	props_set(&p, PROPS_MESSAGE_EXPIRY);
	m = msg_new5("t", 1, "c", 1, NULL, 0, "x", 1, 1, 0, 1000, &p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->expire_ms, 11000);
	CU_ASSERT_FALSE(msg_expired(m, 1000));
	CU_ASSERT_FALSE(msg_expired(m, 10999));
	CU_ASSERT_TRUE(msg_expired(m, 11000));
	CU_ASSERT_EQUAL(msg_expiry_left(m, 1000), 10);
	CU_ASSERT_EQUAL(msg_expiry_left(m, 1001), 10);	/* rounded up */
	CU_ASSERT_EQUAL(msg_expiry_left(m, 5000), 6);
	CU_ASSERT_EQUAL(msg_expiry_left(m, 10999), 1);
	CU_ASSERT_EQUAL(msg_expiry_left(m, 11000), 0);
	msg_unref(&m);
}

/* msg_new5 with properties p for oomtest_run(). */
struct oom_new5 {
	const struct props	*p;
	struct msg		*m;	/* the message made, or NULL */
};

static int
oom_msg_new5(void *ctx)
{
	struct oom_new5 *o = ctx;

	o->m = msg_new5("t", 1, "c", 1, NULL, 0, "", 0, 0, 0, 1, o->p);
	return o->m != NULL ? 0 : GW_ENOMEM;
}

static void
test_user_array_and_oom(void)
{
	size_t base = gw_mem_used();
	struct oom_new5 o;
	struct props p, out;
	struct props_pair up[2];
	struct codec_iter it;
	struct codec_str n, v;
	struct msg *m;
	int i;

	memset(&p, 0, sizeof p);
	up[0].name = (struct codec_str){ "k", 1 };
	up[0].value = (struct codec_str){ "v1", 2 };
	up[1].name = (struct codec_str){ "k", 1 };
	up[1].value = (struct codec_str){ "v2", 2 };
	p.user = up;
	p.n_user = 2;
	m = msg_new5("t", 1, "c", 1, NULL, 0, "", 0, 0, 0, 1, &p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->expire_ms, 0);
	CU_ASSERT_TRUE_FATAL(msg_props(m, &out));
	CU_ASSERT_EQUAL(out.n_user, 2);
	it = out.block;
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(props_next_user(&it, &n, &v), 1);
		CU_ASSERT(v.len == 2 && v.ptr[1] == '1' + i);
	}
	msg_unref(&m);

	o.p = &p;
	(void)oomtest_run(oom_msg_new5, NULL, &o, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o.m);
	CU_ASSERT_TRUE(msg_props(o.m, &out) && out.n_user == 2);
	msg_unref(&o.m);
	CU_ASSERT_EQUAL(gw_mem_used(), base);
}

static const struct cutest_case tests[] = {
	{ "3.1.1 message has none", test_plain_has_none },
	{ "forwardable kept, alias and sub id dropped", test_forwardable_kept },
	{ "persisted block round trip", test_roundtrip_block },
	{ "expiry deadline and remaining interval", test_expiry },
	{ "user property array, allocation failure", test_user_array_and_oom },
};

int
main(void)
{
	return cutest_main("msg properties", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
