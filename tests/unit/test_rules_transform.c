/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/rules/transform.c, transform_run.c and devtime.c:
 * every transform with byte-exact results, bad inputs (wrong types, odd
 * hex, bad base64, offsets past the end, overflow, NaN and infinities)
 * giving NULL and counting, every device time form, max_time_skew and
 * {time_skew_ms}, the load-time type errors --check prints, inferred
 * column types, and allocation failures.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include "cutest.h"
#include "mem.h"
#include "rules/devtime.h"
#include "rules/rules.h"

#define RECEIVED	1700000000123LL

static char	last_err[512];

static void
report(const char *file, const struct gw_error *e, void *ctx)
{
	(void)file;
	(void)ctx;
	snprintf(last_err, sizeof last_err, "%s: %s", e->path, e->msg);
}

/* A set with one rule, column "v" = tmpl; skew: max_time_skew or NULL. */
static struct rule_set *
load1(const char *tmpl, const char *skew)
{
	struct rule_set	*set;
	cJSON		*a, *r, *sq, *cols;
	char		*text;

	a = cJSON_CreateArray();
	r = cJSON_CreateObject();
	cJSON_AddItemToArray(a, r);
	cJSON_AddStringToObject(r, "name", "r");
	cJSON_AddStringToObject(r, "topic", "t/{dev}");
	if (skew != NULL)
		cJSON_AddStringToObject(r, "max_time_skew", skew);
	sq = cJSON_AddObjectToObject(r, "sqlite");
	cJSON_AddStringToObject(sq, "table", "t");
	cols = cJSON_AddObjectToObject(sq, "columns");
	cJSON_AddStringToObject(cols, "v", tmpl);
	text = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
	last_err[0] = '\0';
	set = rules_load_json(text, strlen(text), "t", NULL, report, NULL,
	    NULL);
	free(text);
	return set;
}

/*
 * Evaluates tmpl for a publish of payload (plen bytes) on t/d1 into v;
 * *nulls gets the rule's transform_null count, *bad its
 * device_time_invalid count.
 */
static void
eval(const char *tmpl, const void *payload, size_t plen,
    struct rule_value *v, uint64_t *nulls, uint64_t *bad)
{
	struct rule_set		*set;
	const struct rule	*r;
	struct rule_payload	 pc;
	struct msg		*m;

	rule_value_clear(v);
	set = load1(tmpl, NULL);
	if (set == NULL)
		fprintf(stderr, "\n%s: %s\n", tmpl, last_err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	m = msg_new("t/d1", 4, "dev-1", 5, NULL, 0, payload, plen, 1, 0,
	    RECEIVED);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_sqlite_values(r, m, &pc, v), 0);
	/* Keep the value past the set and message: copy borrowed bytes. */
	if ((v->type == RULE_VTEXT || v->type == RULE_VBLOB) && !v->owned) {
		char *o = gw_malloc(v->u.s.len + 1);

		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		memcpy(o, v->u.s.p, v->u.s.len);
		rule_value_bytes(v, v->type, o, v->u.s.len, true);
	}
	if (nulls != NULL)
		*nulls = rule_counter(r, RULE_CXFORM_NULL);
	if (bad != NULL)
		*bad = rule_counter(r, RULE_CTIME_INVALID);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
}

static int
want_int(const char *tmpl, const char *payload, int64_t x)
{
	struct rule_value	v = RULE_VALUE_INIT;
	int			ok;

	eval(tmpl, payload, strlen(payload), &v, NULL, NULL);
	ok = v.type == RULE_VINTEGER && v.u.i == x;
	if (!ok)
		fprintf(stderr, "\n%s on %s: type %d %lld, want INTEGER %lld\n",
		    tmpl, payload, v.type, (long long)v.u.i, (long long)x);
	rule_value_clear(&v);
	return ok;
}

static int
want_real(const char *tmpl, const char *payload, double x)
{
	struct rule_value	v = RULE_VALUE_INIT;
	int			ok;

	eval(tmpl, payload, strlen(payload), &v, NULL, NULL);
	ok = v.type == RULE_VREAL && v.u.d == x;
	if (!ok)
		fprintf(stderr, "\n%s on %s: type %d %.17g, want REAL %.17g\n",
		    tmpl, payload, v.type, v.type == RULE_VREAL ? v.u.d : 0,
		    x);
	rule_value_clear(&v);
	return ok;
}

static int
want_bytes(const char *tmpl, const void *payload, size_t plen, int type,
    const void *x, size_t xlen)
{
	struct rule_value	v = RULE_VALUE_INIT;
	int			ok;

	eval(tmpl, payload, plen, &v, NULL, NULL);
	ok = v.type == type && v.u.s.len == xlen &&
	    memcmp(v.u.s.p, x, xlen) == 0;
	if (!ok)
		fprintf(stderr, "\n%s: type %d \"%.*s\", want %d \"%.*s\"\n",
		    tmpl, v.type, (v.type == RULE_VTEXT || v.type ==
		    RULE_VBLOB) ? (int)v.u.s.len : 0, v.type == RULE_VTEXT ?
		    v.u.s.p : "", type, (int)xlen, (const char *)x);
	rule_value_clear(&v);
	return ok;
}

static int
want_text(const char *tmpl, const char *payload, const char *x)
{
	return want_bytes(tmpl, payload, strlen(payload), RULE_VTEXT, x,
	    strlen(x));
}

/* NULL, and counted once as transform_null (time: device_time_invalid). */
static int
want_null(const char *tmpl, const void *payload, size_t plen, int counted,
    int time_counted)
{
	struct rule_value	v = RULE_VALUE_INIT;
	uint64_t		nulls, bad;
	int			ok;

	eval(tmpl, payload, plen, &v, &nulls, &bad);
	ok = v.type == RULE_VNULL && nulls == (uint64_t)counted &&
	    bad == (uint64_t)time_counted;
	if (!ok)
		fprintf(stderr, "\n%s: type %d, nulls %llu bad %llu\n", tmpl,
		    v.type, (unsigned long long)nulls,
		    (unsigned long long)bad);
	rule_value_clear(&v);
	return ok;
}

#define NUL(t, p)	want_null(t, p, strlen(p), 1, 0)
#define QUIET_NUL(t, p)	want_null(t, p, strlen(p), 0, 0)
#define BADTIME(p)	want_null("{payload.t|time}", p, strlen(p), 0, 1)

static void
test_arith(void)
{
	size_t	before = gw_mem_used();

	CU_ASSERT(want_real("{payload.x|mul:0.1|round:2}", "{\"x\":215}",
	    21.5));
	CU_ASSERT(want_int("{payload.x|mul:2}", "{\"x\":21}", 42));
	CU_ASSERT(want_int("{payload.x|add:-50}", "{\"x\":8}", -42));
	CU_ASSERT(want_real("{payload.x|add:-0.5}", "{\"x\":1}", 0.5));
	CU_ASSERT(want_real("{payload.x|mul:2}", "{\"x\":1.25}", 2.5));
	/* Integer overflow goes to REAL, as SQLite arithmetic does. */
	CU_ASSERT(want_real("{payload.x|mul:2}",
	    "{\"x\":9223372036854775807}", 18446744073709551614.0));
	CU_ASSERT(want_real("{payload.x|add:1}",
	    "{\"x\":9223372036854775807}", 9223372036854775808.0));
	CU_ASSERT(want_int("{payload.x|mul:-1}",
	    "{\"x\":-9223372036854775807}", 9223372036854775807LL));
	/* Infinity is no value: NULL and counted. */
	CU_ASSERT(NUL("{payload.x|mul:1e308}", "{\"x\":1e10}"));
	CU_ASSERT(NUL("{payload.x|add:1e308}", "{\"x\":1.7e308}"));
	/* Wrong type at run time: NULL, counted; NULL stays NULL quietly. */
	CU_ASSERT(NUL("{payload.x|mul:2}", "{\"x\":\"abc\"}"));
	CU_ASSERT(NUL("{payload.x|add:2}", "{\"x\":{\"a\":1}}"));
	CU_ASSERT(QUIET_NUL("{payload.x|mul:2}", "{\"y\":1}"));
	CU_ASSERT(QUIET_NUL("{payload.x|mul:2}", "not json"));
	CU_ASSERT(want_real("{payload.x|round:2}", "{\"x\":21.456}", 21.46));
	CU_ASSERT(want_real("{payload.x|round}", "{\"x\":-21.5001}", -22.0));
	CU_ASSERT(want_real("{payload.x|round:15}", "{\"x\":1e300}", 1e300));
	CU_ASSERT(want_int("{payload.x|round:1}", "{\"x\":7}", 7));
	/* Mixed text interpolates the transformed value. */
	CU_ASSERT(want_text("v={payload.x|mul:2}!", "{\"x\":21}", "v=42!"));
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_conversions(void)
{
	size_t	before = gw_mem_used();

	CU_ASSERT(want_int("{payload.x|int}", "{\"x\":21.9}", 21));
	CU_ASSERT(want_int("{payload.x|int}", "{\"x\":-21.9}", -21));
	CU_ASSERT(want_int("{payload.x|int}", "{\"x\":\"42\"}", 42));
	CU_ASSERT(want_int("{payload.x|int}", "{\"x\":\"-4.5e1\"}", -45));
	CU_ASSERT(want_int("{payload.x|int}", "{\"x\":true}", 1));
	CU_ASSERT(NUL("{payload.x|int}", "{\"x\":\"4x\"}"));
	CU_ASSERT(NUL("{payload.x|int}", "{\"x\":\" 4\"}"));
	CU_ASSERT(NUL("{payload.x|int}", "{\"x\":\"\"}"));
	CU_ASSERT(NUL("{payload.x|int}", "{\"x\":1e300}"));
	CU_ASSERT(NUL("{payload.x|int}", "{\"x\":9223372036854775808}"));
	CU_ASSERT(want_real("{payload.x|float}", "{\"x\":3}", 3.0));
	CU_ASSERT(want_real("{payload.x|float}", "{\"x\":\"2.5\"}", 2.5));
	CU_ASSERT(want_real("{payload.x|float}",
	    "{\"x\":\"9223372036854775808\"}", 9223372036854775808.0));
	CU_ASSERT(NUL("{payload.x|float}", "{\"x\":\"1e999\"}"));
	CU_ASSERT(NUL("{payload.x|float}", "{\"x\":\"NaN\"}"));
	CU_ASSERT(want_text("{payload.x|str}", "{\"x\":21.5}", "21.5"));
	CU_ASSERT(want_text("{payload.x|str}", "{\"x\":7}", "7"));
	CU_ASSERT(want_text("{payload.x|str}", "{\"x\":{\"a\": 1}}",
	    "{\"a\":1}"));
	CU_ASSERT(want_text("{payload.x|lower}", "{\"x\":\"AbC-\\u00c9\"}",
	    "abc-\xc3\x89"));
	CU_ASSERT(want_text("{payload.x|upper}", "{\"x\":\"AbC-\xc3\xa9\"}",
	    "ABC-\xc3\xa9"));
	CU_ASSERT(want_text("{dev|upper}", "", "D1"));
	CU_ASSERT(NUL("{payload.x|upper}", "{\"x\":5}"));
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_encodings(void)
{
	size_t	before = gw_mem_used();

	CU_ASSERT(want_text("{payload.x|hex}", "{\"x\":\"AB\\u0000\"}",
	    "414200"));
	CU_ASSERT(want_text("{payload_raw|hex}", "\x01\xff", "01ff"));
	CU_ASSERT(want_bytes("{payload.x|unhex}", "{\"x\":\"4142fF00\"}",
	    strlen("{\"x\":\"4142fF00\"}"), RULE_VBLOB, "AB\xff\x00", 4));
	CU_ASSERT(want_bytes("{payload.x|unhex}", "{\"x\":\"\"}",
	    strlen("{\"x\":\"\"}"), RULE_VBLOB, "", 0));
	CU_ASSERT(NUL("{payload.x|unhex}", "{\"x\":\"414\"}"));
	CU_ASSERT(NUL("{payload.x|unhex}", "{\"x\":\"4g\"}"));
	CU_ASSERT(NUL("{payload.x|unhex}", "{\"x\":\"0x41\"}"));
	CU_ASSERT(want_text("{payload.x|base64}", "{\"x\":\"hello\"}",
	    "aGVsbG8="));
	CU_ASSERT(want_bytes("{payload_raw|base64}", "\xff\xfe\xfd\x00", 4,
	    RULE_VTEXT, "//79AA==", 8));
	CU_ASSERT(want_bytes("{payload.x|unbase64}", "{\"x\":\"aGVsbG8=\"}",
	    strlen("{\"x\":\"aGVsbG8=\"}"), RULE_VBLOB, "hello", 5));
	CU_ASSERT(want_bytes("{payload.x|unbase64}", "{\"x\":\"aGVsbG8\"}",
	    strlen("{\"x\":\"aGVsbG8\"}"), RULE_VBLOB, "hello", 5));
	CU_ASSERT(want_bytes("{payload.x|unbase64}", "{\"x\":\"__79AA\"}",
	    strlen("{\"x\":\"__79AA\"}"), RULE_VBLOB, "\xff\xfe\xfd\x00", 4));
	CU_ASSERT(NUL("{payload.x|unbase64}", "{\"x\":\"aGVsbG8==\"}"));
	CU_ASSERT(NUL("{payload.x|unbase64}", "{\"x\":\"aGVsbG9=\"}"));
	CU_ASSERT(NUL("{payload.x|unbase64}", "{\"x\":\"a\"}"));
	CU_ASSERT(NUL("{payload.x|unbase64}", "{\"x\":\"aGV$\"}"));
	CU_ASSERT(NUL("{payload.x|unbase64}", "{\"x\":\"aG Vs\"}"));
	/* Round trips. */
	CU_ASSERT(want_text("{payload.x|unhex|base64}",
	    "{\"x\":\"fffefd00\"}", "//79AA=="));
	CU_ASSERT(want_text("{payload.x|unbase64|hex}",
	    "{\"x\":\"//79AA==\"}", "fffefd00"));
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_json_default(void)
{
	static const char	p[] = "{\"s\": \"{\\\"a\\\": {\\\"b\\\": [1, "
	    "2.5, \\\"x\\\"]}}\", \"q\": \"\\\"hi\\\"\", \"n\": \"nope\"}";
	size_t			before = gw_mem_used();

	CU_ASSERT(want_real("{payload.s|json:a.b[1]}", p, 2.5));
	CU_ASSERT(want_int("{payload.s|json:.a.b[0]}", p, 1));
	CU_ASSERT(want_text("{payload.s|json:[\"a\"].b[2]}", p, "x"));
	CU_ASSERT(want_text("{payload.s|json}", p,
	    "{\"a\":{\"b\":[1,2.5,\"x\"]}}"));
	CU_ASSERT(want_text("{payload.s|json:a|json:b}", p, "[1,2.5,\"x\"]"));
	/* A string decoded from an escaped (owned) one is copied. */
	CU_ASSERT(want_text("{payload.q|json|upper}", p, "HI"));
	CU_ASSERT(QUIET_NUL("{payload.s|json:a.zz}", p));
	CU_ASSERT(NUL("{payload.n|json}", p));
	CU_ASSERT(want_int("{payload_raw|json:a}", "{\"a\":5}", 5));
	CU_ASSERT(want_int("{payload.zz|default:0}", p, 0));
	CU_ASSERT(want_real("{payload.zz|default:-2.5}", p, -2.5));
	CU_ASSERT(want_text("{payload.zz|default:\"0\"}", p, "0"));
	CU_ASSERT(want_text("{payload.zz|default:n/a}", p, "n/a"));
	CU_ASSERT(want_text("{payload.zz|default:\"a\\\"b|c\"}", p,
	    "a\"b|c"));
	CU_ASSERT(want_text("{payload.n|default:x}", p, "nope"));
	/* A failed step then a default: the default, and the count. */
	CU_ASSERT(want_int("{payload.n|int|default:-1}", p, -1));
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_binary(void)
{
	static const unsigned char	pkt[] = { 0x01, 0x02, 0xff, 0xfe,
	    0x00, 0x00, 0x80, 0x3f, 0x40, 0x49, 0x0f, 0xdb, 0x7f, 0xc0, 0x00,
	    0x00, 0x7f, 0x80, 0x00, 0x00 };
	static const unsigned char	ones[8] = { 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff };
	static const unsigned char	dbl[8] = { 0x40, 0x09, 0x21, 0xfb,
	    0x54, 0x44, 0x2d, 0x18 };
	static const unsigned char	nan64[8] = { 0x7f, 0xf8, 0, 0, 0, 0, 0,
	    0 };
	struct rule_value		v = RULE_VALUE_INIT;
	size_t				before = gw_mem_used();
	static const struct {
		const char	*t;
		int64_t		 want;
	} ints[] = {
		{ "{payload_raw|u8}", 1 },
		{ "{payload_raw|u8:2}", 255 },
		{ "{payload_raw|i8:2}", -1 },
		{ "{payload_raw|u16be}", 0x0102 },
		{ "{payload_raw|u16le:0}", 0x0201 },
		{ "{payload_raw|i16be:2}", -2 },
		{ "{payload_raw|i16le:2}", -257 },
		{ "{payload_raw|u16be:2}", 0xfffe },
		{ "{payload_raw|u32be:0}", 0x0102fffe },
		{ "{payload_raw|u32le:0}", 0xfeff0201LL },
		{ "{payload_raw|i32le:0}", -16842239 },
		{ "{payload_raw|i32be:2}", -131072 },
		{ "{payload_raw|u64be:0}", 0x0102fffe0000803fLL },
		{ "{payload_raw|i64le:0}", 0x3f800000feff0201LL },
		{ "{payload_raw|u16be:0|mul:0.5|int}", 129 },
	};
	size_t	i;

	for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		eval(ints[i].t, pkt, sizeof pkt, &v, NULL, NULL);
		if (v.type != RULE_VINTEGER || v.u.i != ints[i].want)
			fprintf(stderr, "\n%s: %d %lld\n", ints[i].t, v.type,
			    (long long)v.u.i);
		CU_ASSERT(v.type == RULE_VINTEGER && v.u.i == ints[i].want);
		rule_value_clear(&v);
	}
	eval("{payload_raw|f32le:4}", pkt, sizeof pkt, &v, NULL, NULL);
	CU_ASSERT(v.type == RULE_VREAL && v.u.d == 1.0);
	eval("{payload_raw|f32be:8}", pkt, sizeof pkt, &v, NULL, NULL);
	CU_ASSERT(v.type == RULE_VREAL && v.u.d == (double)3.14159274f);
	eval("{payload_raw|f64be}", dbl, sizeof dbl, &v, NULL, NULL);
	CU_ASSERT(v.type == RULE_VREAL && v.u.d == 3.141592653589793);
	eval("{payload_raw|u64le}", ones, sizeof ones, &v, NULL, NULL);
	CU_ASSERT(v.type == RULE_VREAL && v.u.d == 18446744073709551615.0);
	eval("{payload_raw|i64be}", ones, sizeof ones, &v, NULL, NULL);
	CU_ASSERT(v.type == RULE_VINTEGER && v.u.i == -1);
	/* Hex text decoded then read (a LoRaWAN-style uplink). */
	CU_ASSERT(want_int("{payload.d|unhex|i16be:1|add:0}",
	    "{\"d\":\"00fc18\"}", -1000));
	CU_ASSERT(want_real("{payload.d|unbase64|u16le:0|mul:0.01}",
	    "{\"d\":\"CAo=\"}", 25.68));
	/* Past the end, NaN and infinities: NULL, counted. */
	CU_ASSERT(want_null("{payload_raw|u16be:19}", pkt, sizeof pkt, 1, 0));
	CU_ASSERT(want_null("{payload_raw|u8:20}", pkt, sizeof pkt, 1, 0));
	CU_ASSERT(want_null("{payload_raw|u32be:2147483647}", pkt,
	    sizeof pkt, 1, 0));
	CU_ASSERT(want_null("{payload_raw|f32be:12}", pkt, sizeof pkt, 1, 0));
	CU_ASSERT(want_null("{payload_raw|f32be:16}", pkt, sizeof pkt, 1, 0));
	CU_ASSERT(want_null("{payload_raw|f64be}", nan64, sizeof nan64, 1,
	    0));
	CU_ASSERT(want_null("{payload_raw|u8}", "", 0, 1, 0));
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_time_forms(void)
{
	static const struct {
		const char	*p;
		int64_t		 ms;
	} ok[] = {
		{ "{\"t\":1700000000}", 1700000000000LL },
		{ "{\"t\":1700000000123}", 1700000000123LL },
		{ "{\"t\":1700000000123456}", 1700000000123LL },
		{ "{\"t\":1700000000123456789}", 1700000000123LL },
		{ "{\"t\":1700000000.5}", 1700000000500LL },
		{ "{\"t\":1700000000123.4}", 1700000000123LL },
		{ "{\"t\":1.7000000001235e15}", 1700000000124LL },
		{ "{\"t\":99999999999}", 99999999999000LL },
		{ "{\"t\":100000000000}", 100000000000LL },
		{ "{\"t\":0}", 0 },
		{ "{\"t\":-1}", -1000 },
		{ "{\"t\":-1700000000123456}", -1700000000124LL },
		{ "{\"t\":\"1700000000\"}", 1700000000000LL },
		{ "{\"t\":\"1700000000.25\"}", 1700000000250LL },
		{ "{\"t\":\"2023-11-14T22:13:20Z\"}", 1700000000000LL },
		{ "{\"t\":\"2023-11-14T22:13:20.123Z\"}", 1700000000123LL },
		{ "{\"t\":\"2023-11-14T22:13:20.1239999Z\"}", 1700000000123LL },
		{ "{\"t\":\"2023-11-14T22:13:20,5Z\"}", 1700000000500LL },
		{ "{\"t\":\"2023-11-14T23:13:20.123456+01:00\"}",
		    1700000000123LL },
		{ "{\"t\":\"2023-11-14 17:13:20-0500\"}", 1700000000000LL },
		{ "{\"t\":\"2023-11-15T03:43:20+05:30\"}", 1700000000000LL },
		{ "{\"t\":\"2023-11-14T20:13:20-02\"}", 1700000000000LL },
		{ "{\"t\":\"2023-11-14t22:13:20z\"}", 1700000000000LL },
		{ "{\"t\":\"2023-11-14T22:13:20\"}", 1700000000000LL },
		{ "{\"t\":\"2023-11-14T22:13Z\"}", 1699999980000LL },
		{ "{\"t\":\"2023-11-14\"}", 1699920000000LL },
		{ "{\"t\":\"2024-02-29T00:00:00Z\"}", 1709164800000LL },
		{ "{\"t\":\"2000-02-29T00:00:00Z\"}", 951782400000LL },
		{ "{\"t\":\"1969-12-31T23:59:59.999Z\"}", -1 },
		{ "{\"t\":\"1900-03-01T00:00:00Z\"}", -2203891200000LL },
		{ "{\"t\":\"9999-12-31T23:59:59Z\"}", 253402300799000LL },
		{ "{\"t\":\"2016-12-31T23:59:60Z\"}", 1483228800000LL },
	};
	static const char *const bad[] = {
		"{\"t\":\"2023-02-29T00:00:00Z\"}",
		"{\"t\":\"1900-02-29\"}",
		"{\"t\":\"2023-13-01\"}",
		"{\"t\":\"2023-00-01\"}",
		"{\"t\":\"2023-11-31\"}",
		"{\"t\":\"2023-11-14T24:00:00Z\"}",
		"{\"t\":\"2023-11-14T22:60:00Z\"}",
		"{\"t\":\"2023-11-14T22:13:20+24:00\"}",
		"{\"t\":\"2023-11-14T22:13:20+01:60\"}",
		"{\"t\":\"2023-11-14T22:13:20.Z\"}",
		"{\"t\":\"2023-11-14T22:13:20Z \"}",
		"{\"t\":\"2023-11-14T22\"}",
		"{\"t\":\"23-11-14\"}",
		"{\"t\":\"2023/11/14\"}",
		"{\"t\":\"yesterday\"}",
		"{\"t\":\"\"}",
		"{\"t\":\"1e999\"}",
		"{\"t\":1e300}",
		"{\"t\":{\"a\":1}}",
		"{\"t\":\"\\u0000\"}",
	};
	size_t	i, before = gw_mem_used();

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
		CU_ASSERT(want_int("{payload.t|time}", ok[i].p, ok[i].ms));
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (!BADTIME(bad[i]))
			fprintf(stderr, " (bad time %s)\n", bad[i]);
		CU_ASSERT(BADTIME(bad[i]));
	}
	/* Missing is not unreadable: NULL, not counted. */
	CU_ASSERT(want_null("{payload.t|time}", "{}", 2, 0, 0));
	CU_ASSERT(want_int("{received_ms|time}", "", RECEIVED));
	CU_ASSERT(want_int("{payload|time}", "1700000000", 1700000000000LL));
	CU_ASSERT(want_int("{payload.t|time|add:1}", "{\"t\":1}", 1001));
	CU_ASSERT(want_int("{payload.t|default:0|time}", "{}", 0));
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_time_format(void)
{
	static const struct {
		const char	*tmpl;
		const char	*p;
		int64_t		 ms;
	} ok[] = {
		{ "{payload.t|time:%d/%m/%Y %H:%M:%S}",
		    "{\"t\":\"14/11/2023 22:13:20\"}", 1700000000000LL },
		{ "{payload.t|time:%b %e %Y %I:%M:%S %p}",
		    "{\"t\":\"Nov 14 2023 10:13:20 PM\"}", 1700000000000LL },
		{ "{payload.t|time:%A, %d %B %Y %T %Z}",
		    "{\"t\":\"tuesday, 14 NOVEMBER 2023 22:13:20 GMT\"}",
		    1700000000000LL },
		{ "{payload.t|time:%Y%m%d}", "{\"t\":20231114}",
		    1699920000000LL },
		{ "{payload.t|time:%F %T.%f %z}",
		    "{\"t\":\"2023-11-14 23:13:20.5 +0100\"}",
		    1700000000500LL },
		{ "{payload.t|time:%y-%j %R}", "{\"t\":\"23-318 22:13\"}",
		    1699999980000LL },
		{ "{payload.t|time:%D}", "{\"t\":\"11/14/23\"}",
		    1699920000000LL },
		{ "{payload.t|time:%s %z}", "{\"t\":\"1700000000 +0100\"}",
		    1700000000000LL },
		{ "{payload.t|time:%s.%f}", "{\"t\":\"1700000000.123\"}",
		    1700000000123LL },
		{ "{payload.t|time:%H%%%M}", "{\"t\":\"01%02\"}", 3720000LL },
		{ "{payload.t|time:%I %p}", "{\"t\":\"12 AM\"}", 0 },
	};
	static const struct {
		const char	*tmpl;
		const char	*p;
	} bad[] = {
		{ "{payload.t|time:%d/%m/%Y}", "{\"t\":\"31/02/2023\"}" },
		{ "{payload.t|time:%d/%m/%Y}", "{\"t\":\"14/11/2023x\"}" },
		{ "{payload.t|time:%d/%m/%Y}", "{\"t\":\"14-11-2023\"}" },
		{ "{payload.t|time:%b %d}", "{\"t\":\"Foo 14\"}" },
		{ "{payload.t|time:%I %p}", "{\"t\":\"13 PM\"}" },
		{ "{payload.t|time:%Y}", "{\"t\":2023.5}" },
	};
	struct rule_value	v = RULE_VALUE_INIT;
	uint64_t		nulls, badn;
	size_t			i, before = gw_mem_used();

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
		CU_ASSERT(want_int(ok[i].tmpl, ok[i].p, ok[i].ms));
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		eval(bad[i].tmpl, bad[i].p, strlen(bad[i].p), &v, &nulls,
		    &badn);
		CU_ASSERT(v.type == RULE_VNULL && nulls == 0 && badn == 1);
		rule_value_clear(&v);
	}
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_devtime_api(void)
{
	struct gw_error	e;
	int64_t		ms;

	CU_ASSERT(devtime_from_int(DEVTIME_S_LIMIT - 1, &ms) == 0 &&
	    ms == (DEVTIME_S_LIMIT - 1) * 1000);
	CU_ASSERT(devtime_from_int(DEVTIME_S_LIMIT, &ms) == 0 &&
	    ms == DEVTIME_S_LIMIT);
	CU_ASSERT(devtime_from_int(DEVTIME_MS_LIMIT, &ms) == 0 &&
	    ms == DEVTIME_MS_LIMIT / 1000);
	CU_ASSERT(devtime_from_int(DEVTIME_US_LIMIT, &ms) == 0 &&
	    ms == DEVTIME_US_LIMIT / 1000000);
	CU_ASSERT(devtime_from_int(INT64_MAX, &ms) == 0 &&
	    ms == INT64_MAX / 1000000);
	CU_ASSERT(devtime_from_int(INT64_MIN, &ms) == 0 &&
	    ms == INT64_MIN / 1000000 - 1);
	CU_ASSERT_EQUAL(devtime_from_real(NAN, &ms), GW_EMALFORMED);
	CU_ASSERT_EQUAL(devtime_from_real(INFINITY, &ms), GW_EMALFORMED);
	CU_ASSERT_EQUAL(devtime_from_real(-INFINITY, &ms), GW_EMALFORMED);
	CU_ASSERT_EQUAL(devtime_from_real(9.3e18, &ms), GW_EMALFORMED);
	CU_ASSERT(devtime_from_real(-0.0004, &ms) == 0 && ms == 0);
	CU_ASSERT_EQUAL(devtime_parse_iso("2023-11-14", 9, &ms),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(devtime_format_check("%Y-%m-%d", &e), 0);
	CU_ASSERT_EQUAL(devtime_format_check("%Q", &e), GW_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "%Q"));
	CU_ASSERT_EQUAL(devtime_format_check("%Y%", &e), GW_ECONFIG);
	CU_ASSERT_EQUAL(devtime_format_check("", &e), GW_ECONFIG);
	/* The start-up clock check. */
	CU_ASSERT(devtime_build_ms() > 1700000000000LL);
	CU_ASSERT(devtime_clock_behind(1000, devtime_build_ms()));
	CU_ASSERT_FALSE(devtime_clock_behind(devtime_build_ms() + 1,
	    devtime_build_ms()));
	CU_ASSERT_FALSE(devtime_clock_behind(1000, 0));
}

/* {time_skew_ms} and the skew counter for a device time of ts. */
static void
skew_case(const char *payload, const char *max, int64_t want, int flagged)
{
	struct rule_set		*set;
	const struct rule	*r;
	struct rule_payload	 pc;
	struct rule_value	 v = RULE_VALUE_INIT, w[2];
	struct msg		*m;
	char			 text[512];

	snprintf(text, sizeof text, "[{\"name\": \"r\", \"topic\": \"t/#\", "
	    "\"max_time_skew\": \"%s\", \"sqlite\": {\"table\": \"t\", "
	    "\"columns\": {\"ts\": \"{payload.ts|time}\", "
	    "\"skew\": \"{time_skew_ms}\"}}}]", max);
	set = rules_load_json(text, strlen(text), "t", NULL, NULL, NULL,
	    NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(r, 0), "INTEGER");
	CU_ASSERT_STRING_EQUAL(rule_column_decl_type(r, 1), "INTEGER");
	m = msg_new("t/x", 3, "c", 1, NULL, 0, payload, strlen(payload), 0,
	    0, RECEIVED);
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_filter(r, m, &pc), 1);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CTIME_SKEW), (uint64_t)flagged);
	memset(w, 0, sizeof w);
	CU_ASSERT_EQUAL(rule_sqlite_values(r, m, &pc, w), 0);
	v = w[1];
	if (want == INT64_MIN)
		CU_ASSERT_EQUAL(v.type, RULE_VNULL)
	else
		CU_ASSERT(v.type == RULE_VINTEGER && v.u.i == want);
	/* The skew does not count the device time twice. */
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CTIME_INVALID),
	    (uint64_t)(strstr(payload, "bad") != NULL));
	rule_value_clear(&w[0]);
	rule_value_clear(&w[1]);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
}

static void
test_skew(void)
{
	size_t	before = gw_mem_used();

	/* Two hours behind, one allowed: flagged. */
	skew_case("{\"ts\": 1699992800123}", "1h", -7200000, 1);
	/* A 1970 device clock (seconds). */
	skew_case("{\"ts\": 5}", "1d", 5000 - RECEIVED, 1);
	/* Ahead by a minute, within 5 minutes: NULL, not counted. */
	skew_case("{\"ts\": \"2023-11-14T22:14:20.123Z\"}", "5m", INT64_MIN,
	    0);
	skew_case("{\"ts\": \"2023-11-14T22:14:20.123Z\"}", "60000",
	    INT64_MIN, 0);
	skew_case("{\"ts\": \"2023-11-14T22:14:20.124Z\"}", "60000", 60001, 1);
	/* No or an unreadable device time: nothing to flag. */
	skew_case("{}", "1s", INT64_MIN, 0);
	skew_case("{\"ts\": \"bad\"}", "1s", INT64_MIN, 0);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

/* Each template fails to load with a message containing want. */
static void
test_load_errors(void)
{
	static const struct {
		const char	*tmpl;
		const char	*skew;
		const char	*want;
	} cases[] = {
		{ "{topic|mul:2}", NULL, "|mul takes INTEGER or REAL, but "
		    "gets TEXT" },
		{ "{payload_raw|lower}", NULL, "|lower takes TEXT, but gets "
		    "the raw payload bytes" },
		{ "{payload.x|u16be:0}", NULL, "|u16be takes BLOB" },
		{ "{qos|unhex}", NULL, "|unhex takes TEXT" },
		{ "{received_ms|json}", NULL, "|json takes TEXT" },
		{ "{payload.x|int|upper}", NULL, "|upper takes TEXT, but gets "
		    "INTEGER" },
		{ "{payload_raw|unhex|lower}", NULL, "but gets BLOB" },
		{ "{payload.x|float|round:2|hex}", NULL, "|hex takes" },
		{ "{payload.x|nope}", NULL, "unknown transform |nope" },
		{ "{payload.x|}", NULL, "unknown transform |" },
		{ "{payload.x|mul}", NULL, "|mul needs an argument" },
		{ "{payload.x|mul:x}", NULL, "|mul:x: not a number" },
		{ "{payload.x|int:3}", NULL, "|int takes no argument" },
		{ "{payload.x|round:16}", NULL, "0 to 15 decimal places" },
		{ "{payload.x|round:-1}", NULL, "0 to 15 decimal places" },
		{ "{payload_raw|u8:-1}", NULL, "a byte offset" },
		{ "{payload_raw|u8:2147483648}", NULL, "a byte offset" },
		{ "{payload.x|default}", NULL, "|default needs an argument" },
		{ "{payload.x|time:%Q}", NULL, "unknown directive %Q" },
		{ "{payload.x|time:}", NULL, "an empty format" },
		{ "{payload.x|json:a..b}", NULL, "not a path" },
		{ "{nope|mul:2}", NULL, "unknown placeholder {nope|mul:2}" },
		{ "{time_skew_ms}", NULL, "needs \"max_time_skew\"" },
		{ "{payload.x}", "1h", "max_time_skew: the rule has no device "
		    "time" },
		{ "{payload.x|time}", "soon", "max_time_skew: expected a "
		    "duration" },
		{ "{payload.x|int|int|int|int|int|int|int|int|int|int|int|int"
		    "|int|int|int|int|int|int|int|int|int|int|int|int|int|int"
		    "|int|int|int|int|int|int|int}", NULL,
		    "more than 32 transforms" },
	};
	struct rule_set	*set;
	size_t		 i, before = gw_mem_used();

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		set = load1(cases[i].tmpl, cases[i].skew);
		CU_ASSERT_PTR_NULL(set);
		if (strstr(last_err, cases[i].want) == NULL)
			fprintf(stderr, "\n%s: got \"%s\", want \"%s\"\n",
			    cases[i].tmpl, last_err, cases[i].want);
		CU_ASSERT_PTR_NOT_NULL(strstr(last_err, cases[i].want));
		rule_set_unref(&set);
	}
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static void
test_decl_types(void)
{
	static const struct {
		const char	*tmpl;
		const char	*decl;
	} cases[] = {
		{ "{payload.t|time}", "INTEGER" },
		{ "{payload.x|mul:0.5}", "REAL" },
		{ "{payload.x|mul:2}", "" },
		{ "{payload.x|float|mul:2}", "REAL" },
		{ "{payload_raw|u16be}", "INTEGER" },
		{ "{payload_raw|u64be}", "" },
		{ "{payload_raw|f32le}", "REAL" },
		{ "{topic|upper}", "TEXT" },
		{ "{payload.x|hex}", "TEXT" },
		{ "{payload.x|unhex}", "" },
		{ "{payload.x|json}", "" },
		{ "{payload.x|int|default:0}", "INTEGER" },
		{ "{payload.x|int|default:n/a}", "" },
		{ "{qos|str}", "TEXT" },
		{ "{payload.x}", "" },
	};
	struct rule_set	*set;
	size_t		 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		set = load1(cases[i].tmpl, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(set);
		if (strcmp(rule_column_decl_type(rule_set_rule(set, 0), 0),
		    cases[i].decl) != 0)
			fprintf(stderr, "\n%s: %s\n", cases[i].tmpl,
			    rule_column_decl_type(rule_set_rule(set, 0), 0));
		CU_ASSERT_STRING_EQUAL(rule_column_decl_type(
		    rule_set_rule(set, 0), 0), cases[i].decl);
		rule_set_unref(&set);
	}
}

/* Webhook bodies, urls and where filters run transforms too. */
static void
test_webhook_and_where(void)
{
	static const char	 p[] = "{\"ts\": \"2023-11-14T22:13:20Z\", "
	    "\"x\": 21, \"n\": \"A b\", \"cfg\": \"{\\\"k\\\": [1]}\"}";
	static const char	 rules[] = "[{\"name\": \"w\", \"topic\": "
	    "\"t/{dev}\", \"max_time_skew\": \"1d\", "
	    "\"where\": {\"value\": \"{payload.x|mul:2}\", \"op\": \"=\", "
	    "\"to\": 42}, \"webhook\": {\"url\": "
	    "\"http://h/{payload.n|lower}\", \"body\": {\"t\": "
	    "\"{payload.ts|time}\", \"v\": \"{payload.x|mul:0.5}\", "
	    "\"k\": \"{payload.cfg|json}\", \"s\": \"{payload.cfg|json|str}\", "
	    "\"skew\": \"{time_skew_ms}\", "
	    "\"m\": \"{dev|upper}-{payload.x|hex}\"}}}]";
	struct rule_set		*set;
	struct rule_payload	 pc;
	struct rule_http	 h;
	struct msg		*m;
	const struct rule	*r;
	size_t			 before = gw_mem_used();

	set = rules_load_json(rules, strlen(rules), "t", NULL, report, NULL,
	    NULL);
	if (set == NULL)
		fprintf(stderr, "\n%s\n", last_err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	r = rule_set_rule(set, 0);
	m = msg_new("t/d1", 4, "c", 1, NULL, 0, p, strlen(p), 0, 0,
	    1700000000000LL + 86400001LL);
	rule_payload_init(&pc, m);
	CU_ASSERT_EQUAL(rule_filter(r, m, &pc), 1);
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CTIME_SKEW), 1);
	memset(&h, 0, sizeof h);
	CU_ASSERT_EQUAL(rule_render_webhook(r, m, &pc, &h), 0);
	CU_ASSERT_STRING_EQUAL(h.url.text, "http://h/a%20b");
	CU_ASSERT_STRING_EQUAL(h.body.text, "{\"t\":1700000000000,\"v\":10.5,"
	    "\"k\":{\"k\":[1]},\"s\":\"{\\\"k\\\":[1]}\",\"skew\":-86400001,"
	    "\"m\":\"D1-\"}");
	/* {payload.x|hex} of an INTEGER is NULL (nothing) and counted. */
	CU_ASSERT_EQUAL(rule_counter(r, RULE_CXFORM_NULL), 1);
	rule_http_free(&h);
	rule_payload_clear(&pc);
	msg_unref(&m);
	rule_set_unref(&set);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

/* Every allocation failure while loading and evaluating is clean. */
static void
test_out_of_memory(void)
{
	static const char	 p[] = "{\"s\": \"{\\\"a\\\": \\\"x\\\"}\", "
	    "\"h\": \"4142\", \"t\": \"2023-11-14T22:13:20Z\"}";
	static const char	 tmpl[] = "{payload.s|json:a|upper|hex|unhex|"
	    "base64|unbase64|hex} {payload.h|unhex|u16be:0} "
	    "{payload.t|time|default:\"x\"}";
	struct rule_set		*set = NULL;
	struct rule_payload	 pc;
	struct rule_value	 v = RULE_VALUE_INIT;
	struct msg		*m;
	size_t			 before = gw_mem_used();
	int			 n, rc;

	for (n = 0; n < 1000; n++) {
		gw_mem_fail_after(n);
		set = load1(tmpl, NULL);
		gw_mem_fail_after(-1);
		if (set != NULL)
			break;
		CU_ASSERT_EQUAL_FATAL(gw_mem_used(), before);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	m = msg_new("t/d", 3, "c", 1, NULL, 0, p, strlen(p), 0, 0, RECEIVED);
	for (n = 0; n < 1000; n++) {
		rule_payload_init(&pc, m);
		gw_mem_fail_after(n);
		rc = rule_sqlite_values(rule_set_rule(set, 0), m, &pc, &v);
		gw_mem_fail_after(-1);
		if (rc == 0)
			CU_ASSERT(v.type == RULE_VTEXT && v.u.s.len == 22 &&
			    memcmp(v.u.s.p, "58 16706 1700000000000", 22) == 0);
		rule_value_clear(&v);
		rule_payload_clear(&pc);
		if (rc == 0)
			break;
		CU_ASSERT_EQUAL(rc, GW_ENOMEM);
	}
	CU_ASSERT(n > 3 && n < 1000);
	msg_unref(&m);
	rule_set_unref(&set);
	CU_ASSERT_EQUAL(gw_mem_used(), before);
}

static const struct cutest_case tests[] = {
	{ "arithmetic", test_arith },
	{ "conversions", test_conversions },
	{ "encodings", test_encodings },
	{ "json and default", test_json_default },
	{ "binary", test_binary },
	{ "time forms", test_time_forms },
	{ "time formats", test_time_format },
	{ "devtime api", test_devtime_api },
	{ "skew", test_skew },
	{ "load errors", test_load_errors },
	{ "declared types", test_decl_types },
	{ "webhook and where", test_webhook_and_where },
	{ "out of memory", test_out_of_memory },
};

int
main(void)
{
	return cutest_main("rules_transform", NULL, NULL, tests,
	    CUTEST_COUNT(tests));
}
