# SPDX-License-Identifier: Apache-2.0
"""The JSON rules engine end to end: topic patterns with captures become
typed rows (checked with typeof() in the sqlite3 shell), bare numeric and
binary payloads, payload paths, templates, every matching rule firing in
file order, '$' topics, where filters, table creation with declared and
inferred types and indexes, SIGHUP reload (ALTER TABLE ADD COLUMN, a broken
file keeps the old rules), rows the database refuses going to `rejected`,
`mqlite --check`, 1,000 rules, and QoS 1 acknowledged only after commit
(kill -9). Driven by raw-socket clients and mosquitto_pub."""

import json
import os
import signal
import subprocess
import time
import unittest

from mqlite_harness import (HOST, PUBACK, Broker, E2ETestCase, daemon_path,
                            publish_pkt, wait_until)

# Gateway tables that exist in every database (never created by a rule).
GATEWAY_TABLES = {"messages", "outbox", "outbox_dead", "rejected",
                  "retained", "sessions", "session_msgs", "qos2_inflight",
                  "mqlite_meta", "mqlite_rollup_state", "sqlite_sequence"}

SRCDIR = os.environ.get("top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    return path


def sql_str(s):
    """A SQL string literal (for test-controlled values only)."""
    return "'" + s.replace("'", "''") + "'"


class RulesCase(E2ETestCase):
    """Each test starts its own daemon with the rules it needs."""

    needs_db = True
    auto_start = False

    def rules_file(self, rules, name="rules.json"):
        obj = rules if isinstance(rules, dict) else {"rules": rules}
        return write_json(os.path.join(self.workdir, name), obj)

    def start_rules(self, rules, name="broker", **kw):
        """A daemon started with -r FILE holding rules; sets self.broker."""
        path = self.rules_file(rules, name + "-rules.json")
        br = self.start_broker(name=name, extra_args=["-r", path], **kw)
        br.rules_path = path
        self.broker = br
        return br

    def new_broker(self, name="broker", config_extra=None, **kw):
        """A Broker not yet started (its config may be extended)."""
        br = Broker(self.workdir, name=name, **kw)
        if config_extra:
            with open(br.conf_path) as f:
                cfg = json.load(f)
            cfg.update(config_extra)
            write_json(br.conf_path, cfg)
        self.brokers.append(br)
        return br

    def tables(self, br=None):
        br = br or self.broker
        out = br.query("select name from sqlite_master where type='table' "
                       "order by name")
        return set(out.split()) if out else set()

    def table_info(self, table, br=None):
        """[(name, declared type)] of table, in column order."""
        br = br or self.broker
        return [tuple(r) for r in br.rows(
            "select name, type from pragma_table_info(%s) order by cid"
            % sql_str(table))]

    def log_count(self, text, br=None):
        return (br or self.broker).log_text().count(text)

    def wait_log(self, text, n=1, br=None, timeout=10.0):
        """Waits (bounded) until text appears n times in the daemon log."""
        ok = wait_until(lambda: self.log_count(text, br) >= n,
                        timeout=timeout)
        self.assertTrue(ok, "log never said %r (%d times)" % (text, n))

    def sighup_reload(self, br=None, expect_ok=True):
        """SIGHUP and wait for the outcome in the log: the reloaded rules
        swapped in (expect_ok) or the reload refused."""
        br = br or self.broker
        ok_msg = "rules reloaded from"
        bad_msgs = ("rules not reloaded", "failed: keeping the current")
        n_ok = self.log_count(ok_msg, br)
        n_bad = sum(self.log_count(m, br) for m in bad_msgs)
        br.proc.send_signal(signal.SIGHUP)

        def outcome():
            if self.log_count(ok_msg, br) > n_ok:
                return "ok"
            if sum(self.log_count(m, br) for m in bad_msgs) > n_bad:
                return "refused"
            return None
        got = wait_until(outcome, timeout=10.0)
        self.assertEqual(got, "ok" if expect_ok else "refused",
                         "SIGHUP reload outcome")

    def mosquitto_pub(self, *args, br=None, stdin=None, timeout=30):
        br = br or self.broker
        cmd = ["mosquitto_pub", "-h", HOST, "-p", str(br.port),
               "-V", "mqttv311"] + list(args)
        r = subprocess.run(cmd, input=stdin, capture_output=True,
                           timeout=timeout)
        if r.returncode != 0:
            self.fail("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                               r.stderr.decode()))
        return r

    def check(self, *args, cwd=None):
        """mqlite --check ARGS: (exit status, stdout + stderr lines)."""
        r = subprocess.run([daemon_path(), "--check"] + list(args),
                           capture_output=True, timeout=30,
                           cwd=cwd or self.workdir)
        text = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.assertNotIn("AddressSanitizer", text)
        self.assertNotIn("runtime error:", text)
        return r.returncode, [ln for ln in text.splitlines() if ln.strip()]


# ---------------------------------------------------------------------------

READINGS_RULE = {
    "name": "readings",
    "topic": "site/{site}/dev/{device}/telemetry",
    "sqlite": {
        "table": "readings",
        "columns": {
            "ts": "{received_ms}", "qos": "{qos}", "retain": "{retain}",
            "site": "{site}", "device": "{device}", "topic": "{topic}",
            "client": "{client_id}",
            "temp": "{payload.temp}", "precise": "{payload.precise}",
            "tiny": "{payload.tiny}", "big": "{payload.big}",
            "neg": "{payload.neg}", "huge": "{payload.huge}",
            "expo": "{payload.expo}", "on_": "{payload.on}",
            "off_": "{payload.off}", "label": "{payload.label}",
            "obj": "{payload.obj}", "arr": "{payload.arr}",
            "nul": "{payload.nul}", "missing": "{payload.nope}",
            "deep": "{payload.obj.inner.v}",
        },
        "types": {"temp": "REAL"},
    },
}

READING = (b'{"temp": 20, "precise": 21.123456789, '
           b'"tiny": 0.30000000000000004, "big": 9007199254740993, '
           b'"neg": -9223372036854775808, "huge": 9223372036854775808, '
           b'"expo": 1e3, "on": true, "off": false, '
           b'"label": "a\\"b\\u00e9 \\ud83c\\udf21", '
           b'"obj": {"inner": {"v": 7}, '
           b'"list": [1, 2.50, "x", 9007199254740993]}, '
           b'"arr": [ 1 , [ ] , { } ], "nul": null}')


class TestValues(RulesCase):

    def test_captures_and_typed_values(self):
        br = self.start_rules([READINGS_RULE])
        before = int(time.time() * 1000)
        c = self.client(client_id="dev-7")
        c.publish("site/s1/dev/d7/telemetry", READING, qos=1, retain=True)
        after = int(time.time() * 1000)
        # Acknowledged means committed: the row is there now.
        cols = ["ts", "qos", "retain", "site", "device", "topic", "client",
                "temp", "precise", "tiny", "big", "neg", "huge", "expo",
                "on_", "off_", "label", "obj", "arr", "nul", "missing",
                "deep"]
        rows = br.rows("select %s from readings" % ", ".join(
            "typeof(%s)" % k for k in cols))
        self.assertEqual(len(rows), 1)
        self.assertEqual(dict(zip(cols, rows[0])), {
            "ts": "integer", "qos": "integer", "retain": "integer",
            "site": "text", "device": "text", "topic": "text",
            "client": "text", "temp": "real", "precise": "real",
            "tiny": "real", "big": "integer", "neg": "integer",
            "huge": "real", "expo": "real", "on_": "integer",
            "off_": "integer", "label": "text", "obj": "text",
            "arr": "text", "nul": "null", "missing": "null",
            "deep": "integer"})
        row = br.rows("select qos, retain, site, device, topic, client, "
                      "temp, on_, off_, hex(label), obj, arr, deep, "
                      "quote(nul), quote(missing) from readings")[0]
        self.assertEqual(row, [
            "1", "1", "s1", "d7", "site/s1/dev/d7/telemetry", "dev-7",
            "20.0", "1", "0", 'a"bé 🌡'.encode().hex().upper(),
            # Compact JSON text; numbers inside unchanged.
            '{"inner":{"v":7},"list":[1,2.50,"x",9007199254740993]}',
            '[1,[],{}]', "7",
            "NULL", "NULL"])
        ts = int(br.query("select ts from readings"))
        self.assertTrue(before - 1000 <= ts <= after + 1000,
                        "received_ms %d not near now" % ts)
        # Full double precision: printed value, quote(), exact equality.
        self.assertEqual(br.query(
            "select precise, quote(precise), precise = 21.123456789, "
            "tiny = 0.30000000000000004, tiny = 0.3 from readings"),
            "21.123456789|21.123456789|1|1|0")
        # 64-bit integers read from the token text, not through a double.
        self.assertEqual(br.query(
            "select big, quote(big), big = 9007199254740993, "
            "big = 9007199254740992, neg, huge = 9223372036854775808.0, "
            "expo from readings"),
            "9007199254740993|9007199254740993|1|0|-9223372036854775808|1"
            "|1000.0")

    def test_non_json_payload_gives_null_paths(self):
        br = self.start_rules([READINGS_RULE])
        c = self.client(client_id="dev-8")
        for payload in (b"not json", b'{"temp": 21.5', b"\xff\xfe{}",
                        b'{"temp": 21.5} trailing', b""):
            c.publish("site/s2/dev/d8/telemetry", payload, qos=1)
        self.assertEqual(br.rows(
            "select site, device, client, typeof(temp), typeof(precise), "
            "typeof(obj), typeof(deep) from readings order by id"),
            [["s2", "d8", "dev-8", "null", "null", "null", "null"]] * 5)

    def test_bare_numeric_text_and_binary_payloads(self):
        br = self.start_rules([{
            "name": "metrics", "topic": "home/{room}/{metric}",
            "sqlite": {"table": "metrics", "columns": {
                "room": "{room}", "metric": "{metric}",
                "value": "{payload}", "raw": "{payload_raw}"}}}])
        cases = [  # (metric, payload, typeof(value), value, typeof(raw))
            ("temp", b"21.5", "real", "21.5", "text"),
            ("count", b"3", "integer", "3", "text"),
            ("neg", b"-0.25", "real", "-0.25", "text"),
            ("big", b"9007199254740993", "integer", "9007199254740993",
             "text"),
            ("exp", b"1e2", "real", "100.0", "text"),
            ("word", b"hello", "text", "hello", "text"),
            ("jstr", b'"quoted \\u00e9"', "text", "quoted é", "text"),
            ("jobj", b'{ "a" : [1, 2] }', "text", '{"a":[1,2]}', "text"),
            ("jbool", b"true", "text", "true", "text"),
            ("jnull", b"null", "text", "null", "text"),
            ("jarr", b"[1, 2]", "text", "[1, 2]", "text"),
        ]
        c = self.client(client_id="home")
        for metric, payload, _, _, _ in cases:
            if metric in ("temp", "count"):     # a stock client too
                self.mosquitto_pub("-t", "home/kitchen/" + metric, "-m",
                                   payload.decode(), "-q", "1")
            else:
                c.publish("home/kitchen/" + metric, payload, qos=1)
        rows = br.rows("select metric, typeof(value), value, typeof(raw), "
                       "raw = cast(value as blob) or typeof(value) != "
                       "'text' from metrics where room='kitchen' "
                       "order by id")
        self.assertEqual([r[:4] for r in rows],
                         [[m, t, v, rt] for m, _, t, v, rt in cases])
        # {payload_raw} is the payload text exactly.
        for (metric, payload, _, _, _), r in zip(cases, rows):
            self.assertEqual(br.query(
                "select hex(raw) from metrics where metric=%s"
                % sql_str(metric)), payload.hex().upper(), metric)
        # Not UTF-8, or holding a NUL: a BLOB, byte-exact.
        for metric, payload in (("bin", b"\xff\xfe\x00\x80 raw"),
                                ("nul", b"ab\x00cd"),
                                ("trunc", b"ok\xe2\x82")):
            c.publish("home/garage/" + metric, payload, qos=1)
            self.assertEqual(br.rows(
                "select typeof(raw), hex(raw), typeof(value), hex(value) "
                "from metrics where room='garage' and metric=%s"
                % sql_str(metric)),
                [["blob", payload.hex().upper(), "blob",
                  payload.hex().upper()]], metric)

    def test_paths_quoted_keys_and_templates(self):
        br = self.start_rules([{
            "name": "paths", "topic": "p/{site}/{device}",
            "sqlite": {"table": "paths", "columns": {
                "dotted": '{payload["key.with.dots"]}',
                "quoted": '{payload["we\\"ird \\\\ key"]}',
                "hyphen": "{payload.x-y}",
                "a0": "{payload.a[0]}", "a1": "{payload.a[1]}",
                "a2b": "{payload.a[2].b}", "a9": "{payload.a[9]}",
                "nested": '{payload.n["k.1"][0]}',
                "label": "{site}-{device}",
                "braces": "{{{site}}}",
                "literal": "{{payload}} is not a placeholder",
                "mixed": "{device} at {site}: {payload.t} C, "
                         "{payload.nope};{payload.big};{qos};"
                         "{payload.on}",
                "constant": "v1"}}}])
        c = self.client(client_id="paths")
        c.publish("p/s1/d1", json.dumps({
            "key.with.dots": 42.5, 'we"ird \\ key': "w", "x-y": "hy",
            "a": [10, "eleven", {"b": True}], "n": {"k.1": ["deep"]},
            "t": 21.123456789, "big": 9007199254740993,
            "on": False, "key": "not this"}).encode(), qos=1)
        cols = ["dotted", "quoted", "hyphen", "a0", "a1", "a2b", "a9",
                "nested", "label", "braces", "literal", "mixed", "constant"]
        self.assertEqual(
            br.rows("select %s from paths" % ", ".join(
                "typeof(%s)" % k for k in cols)),
            [["real", "text", "text", "integer", "text", "integer", "null",
              "text", "text", "text", "text", "text", "text"]])
        self.assertEqual(br.rows("select %s from paths" % ", ".join(
            "quote(%s)" % k for k in cols))[0], [
            "42.5", "'w'", "'hy'", "10", "'eleven'", "1", "NULL",
            "'deep'", "'s1-d1'", "'{s1}'",
            "'{payload} is not a placeholder'",
            "'d1 at s1: 21.123456789 C, ;9007199254740993;1;0'", "'v1'"])
        # Mixed text columns are declared TEXT, payload paths untyped.
        info = dict(self.table_info("paths"))
        self.assertEqual((info["label"], info["braces"], info["mixed"],
                          info["dotted"], info["a1"]),
                         ("TEXT", "TEXT", "TEXT", "", ""))

    def test_env_username_nesting_and_mixed_blob(self):
        br = self.start_rules([{
            "name": "misc", "topic": "m/{site}/#",
            "sqlite": {"table": "misc", "columns": {
                "site": "{site}", "user": "{username}",
                "env": "${MQLITE_E2E_SITE}", "dollar": "$$5 {site}",
                "v": "{payload.v}", "d": "{payload.d}",
                "mixed": "r={payload_raw} v={payload.v} "
                         "o={payload.o} t={payload.t}"}}}],
            env={"MQLITE_E2E_SITE": "gw-7"})
        self.assertEqual(br.query("select type from pragma_table_info("
                                  "'misc') where name='user'"), "TEXT")
        anon = self.client(client_id="anon")
        anon.publish("m//x", b'{"v": 1, "o": {"k": [1, 2.50]}, '
                     b'"t": 0.30000000000000004}', qos=1)
        deep = b'{"v": 2, "d": ' + b"[" * 200 + b"]" * 200 + b"}"
        anon.publish("m/deep", deep, qos=1)
        anon.publish("m/bin", b"\xff\x00\x01", qos=1)
        named = self.client(client_id="named", username="alice",
                            password="pw")
        named.publish("m/s1", b'{"v": "x"}', qos=1)
        self.assertEqual(br.rows(
            "select quote(site), quote(user), env, dollar, quote(v), "
            "quote(d), mixed from misc order by id"), [
            # An empty level is captured as empty text.
            ["''", "NULL", "gw-7", "$5 ", "1", "NULL",
             'r={"v": 1, "o": {"k": [1, 2.50]}, "t": 0.30000000000000004}'
             ' v=1 o={"k":[1,2.50]} t=0.30000000000000004'],
            # JSON nested deeper than 128: every payload path is NULL.
            ["'deep'", "NULL", "gw-7", "$5 deep", "NULL", "NULL",
             "r=" + deep.decode() + " v= o= t="],
            # A BLOB interpolates as base64.
            ["'bin'", "NULL", "gw-7", "$5 bin", "NULL", "NULL",
             "r=/wAB v= o= t="],
            ["'s1'", "'alice'", "gw-7", "$5 s1", "'x'", "NULL",
             "r=" + '{"v": "x"}' + " v=x o= t="]])
        # The expanded environment value is not in the log.
        self.assertNotIn("gw-7", br.log_text())


class TestMatching(RulesCase):

    def test_every_matching_rule_fires_in_file_order(self):
        def rule(name, topic, table):
            return {"name": name, "topic": topic, "sqlite": {
                "table": table, "columns": {
                    "rule": name, "topic": "{topic}", "n": "{payload.n}"}}}
        br = self.start_rules([
            rule("first", "fan/#", "fan_all"),
            rule("second", "fan/{x}/b", "fan_b"),
            rule("third", "fan/+/+", "fan_all"),
            rule("fourth", "other/#", "fan_b"),
            rule("dollar", "$app/{x}", "dollar"),
            rule("all", "#", "everything"),
            rule("plus", "+/one", "plus_one"),
        ])
        c = self.client(client_id="fan")
        c.publish("fan/a/b", b'{"n": 1}', qos=1)
        c.publish("fan/a/c", b'{"n": 2}', qos=1)
        c.publish("fan/z", b'{"n": 3}', qos=0)
        c.publish("$app/one", b'{"n": 4}', qos=1)
        c.publish("$SYS/one", b'{"n": 5}', qos=1)
        c.publish("x/one", b'{"n": 6}', qos=1)
        # fan_all: first and third, in file order for each publish.
        self.assertEqual(br.rows("select rule, topic, n from fan_all "
                                 "order by id"), [
            ["first", "fan/a/b", "1"], ["third", "fan/a/b", "1"],
            ["first", "fan/a/c", "2"], ["third", "fan/a/c", "2"],
            ["first", "fan/z", "3"]])
        self.assertEqual(br.rows("select rule, topic, n from fan_b "
                                 "order by id"),
                         [["second", "fan/a/b", "1"]])
        # '$' topics only match rules whose pattern names them.
        self.assertEqual(br.rows("select rule, topic, n from dollar"),
                         [["dollar", "$app/one", "4"]])
        self.assertEqual(br.query("select group_concat(topic, ',') from "
                                  "(select topic from everything "
                                  "order by id)"),
                         "fan/a/b,fan/a/c,fan/z,x/one")
        self.assertEqual(br.rows("select topic from plus_one"),
                         [["x/one"]])
        # A rules file replaces the default rule.
        self.assertEqual(br.count(), 0)

    def test_empty_rules_store_nothing(self):
        br = self.start_rules({"rules": []})
        c = self.client(client_id="nothing")
        for i in range(5):
            c.publish("any/topic/%d" % i, b'{"temp": 1}', qos=1)
        c.publish("any/q2", b"x", qos=2)
        c.ping()
        self.assertEqual(br.count(), 0)
        self.assertEqual(br.scalar("select count(*) from rejected"), 0)
        self.assertEqual(self.tables() - GATEWAY_TABLES, set())

    def test_inline_rules_in_config(self):
        br = self.new_broker(config_extra={"rules": [{
            "name": "inline", "topic": "in/{k}",
            "sqlite": {"table": "inline_t", "columns": {
                "k": "{k}", "v": "{payload.v}"},
                "types": {"v": "INTEGER"}}}]})
        br.start()
        self.broker = br
        c = self.client(client_id="inline")
        c.publish("in/a", b'{"v": 5}', qos=1)
        c.publish("out/a", b'{"v": 6}', qos=1)
        self.assertEqual(br.rows("select k, v, typeof(v) from inline_t"),
                         [["a", "5", "integer"]])
        self.assertEqual(br.count(), 0)
        self.assertEqual(self.table_info("inline_t"),
                         [("id", "INTEGER"), ("k", "TEXT"),
                          ("v", "INTEGER")])

    def test_config_rules_path_relative_to_config(self):
        confdir = os.path.join(self.workdir, "etc")
        os.mkdir(confdir)
        rule = {"name": "rel", "topic": "rel/{k}", "sqlite": {
            "table": "rel", "columns": {"k": "{k}", "v": "{payload}"}}}
        write_json(os.path.join(confdir, "my-rules.json"), {"rules": [rule]})
        br = self.new_broker(config_extra={"rules": "my-rules.json"})
        with open(br.conf_path) as f:
            cfg = json.load(f)
        br.conf_path = os.path.join(confdir, "mqlite.json")
        write_json(br.conf_path, cfg)
        br.start()              # cwd is the work directory, not etc/
        self.broker = br
        c = self.client(client_id="rel")
        c.publish("rel/a", b"1", qos=1)
        rule["sqlite"]["columns"]["t"] = "{topic}"
        write_json(os.path.join(confdir, "my-rules.json"), {"rules": [rule]})
        self.sighup_reload()
        c.publish("rel/b", b"2", qos=1)
        self.assertEqual(br.rows("select k, v, quote(t) from rel "
                                 "order by id"),
                         [["a", "1", "NULL"], ["b", "2", "'rel/b'"]])

    def test_inline_bare_array_in_config_with_default_rule(self):
        with open(os.path.join(SRCDIR, "rules", "default.json")) as f:
            default = json.load(f)["rules"]
        br = self.new_broker(config_extra={"rules": default + [{
            "name": "extra", "topic": "x/#",
            "sqlite": {"table": "extra", "columns": {"t": "{topic}"}}}]})
        br.start()
        self.broker = br
        c = self.client(client_id="bare")
        c.publish("x/1", b"\xff\x00", qos=1)
        c.publish("y/1", b"text", qos=1)
        self.assertEqual(br.rows("select topic, client_id, qos, retain, "
                                 "typeof(payload), hex(payload) from "
                                 "messages order by id"),
                         [["x/1", "bare", "1", "0", "blob", "FF00"],
                          ["y/1", "bare", "1", "0", "text", "74657874"]])
        self.assertEqual(br.rows("select t from extra"), [["x/1"]])


class TestWhere(RulesCase):

    def test_where_filters(self):
        def rule(name, where):
            return {"name": name, "topic": "site/{site}/dev/{device}/t",
                    "where": where, "sqlite": {"table": name, "columns": {
                        "device": "{device}", "temp": "{payload.temp}"}}}
        br = self.start_rules([
            rule("hot", {"value": "{payload.temp}", "op": ">", "to": 30}),
            rule("mix", {"all": [
                {"value": "{site}", "op": "in", "to": ["a", "b"]},
                {"any": [{"value": "{payload.temp}", "op": ">=", "to": 40},
                         {"value": "{payload.alarm}", "op": "exists"}]}]}),
            rule("ne", {"value": "{payload.state}", "op": "!=",
                        "to": "ok"}),
            rule("notexists", {"not": {"value": "{payload.temp}",
                                       "op": "exists"}}),
            rule("eqbool", {"value": "{payload.flag}", "op": "=",
                            "to": True}),
            rule("texteq", {"value": "{device}", "op": "=", "to": "d10"}),
            # Exact between integers (as doubles both are 2^53).
            rule("exact", {"value": "{payload.temp}", "op": ">",
                           "to": 9007199254740992}),
            rule("numin", {"all": [
                {"value": "{payload.temp}", "op": "in", "to": [12, 30.5]},
                {"value": "{site}/{device}", "op": "<", "to": "a/d6"}]}),
        ])
        msgs = [  # (site, device, payload)
            ("a", "d1", {"temp": 30}),               # 30 > 30 is false
            ("a", "d2", {"temp": 30.5}),             # hot
            ("c", "d3", {"temp": 45}),               # hot; mix: site c
            ("b", "d4", {"temp": 40}),               # hot, mix
            ("b", "d5", {"temp": 12, "alarm": None}),  # alarm null: absent
            ("a", "d6", {"temp": 12, "alarm": "x", "state": "ok"}),  # mix
            ("a", "d7", {"state": "bad", "flag": True}),  # ne, notexists,
            ("a", "d8", {"temp": "31"}),             # text vs number
            ("a", "d9", "not json"),                 # notexists only
            ("a", "d10", {"temp": 9007199254740993, "flag": False}),
        ]
        c = self.client(client_id="where")
        for site, dev, p in msgs:
            payload = p.encode() if isinstance(p, str) else \
                json.dumps(p).encode()
            # Filtered publishes are still acknowledged (publish() asserts
            # the PUBACK).
            c.publish("site/%s/dev/%s/t" % (site, dev), payload, qos=1)

        def devices(table):
            out = br.query("select group_concat(device, ',') from "
                           "(select device from %s order by id)" % table)
            return out.split(",") if out else []
        # "31" (text) against 30 (number) compares as text: "31" > "30".
        self.assertEqual(devices("hot"), ["d2", "d3", "d4", "d8", "d10"])
        self.assertEqual(devices("mix"), ["d4", "d6", "d10"])
        self.assertEqual(devices("ne"), ["d7"])
        self.assertEqual(devices("notexists"), ["d7", "d9"])
        self.assertEqual(devices("eqbool"), ["d7"])
        self.assertEqual(devices("texteq"), ["d10"])
        self.assertEqual(devices("exact"), ["d10"])
        self.assertEqual(devices("numin"), ["d2"])
        self.assertEqual(br.query("select temp, typeof(temp) from hot "
                                  "where device='d10'"),
                         "9007199254740993|integer")
        self.assertEqual(br.scalar("select count(*) from rejected"), 0)

    def test_filtered_out_burst_acked_nothing_stored(self):
        br = self.start_rules([{
            "name": "hot", "topic": "s/{d}",
            "where": {"value": "{payload.temp}", "op": ">", "to": 30},
            "sqlite": {"table": "hot", "columns": {
                "d": "{d}", "temp": "{payload.temp}"}}}])
        c = self.client(client_id="burst")
        n = 300
        c.send(b"".join(publish_pkt("s/%d" % i, b'{"temp": %d}' % (i % 40),
                                    qos=1, pid=i + 1) for i in range(n)))
        pids = [c.expect(PUBACK, timeout=20).pid for _ in range(n)]
        self.assertEqual(pids, list(range(1, n + 1)))
        self.assertEqual(br.query("select group_concat(temp, ',') from "
                                  "(select temp from hot order by id)"),
                         ",".join(str(i % 40) for i in range(n)
                                  if i % 40 > 30))


class TestTables(RulesCase):

    def test_created_with_types_and_indexes(self):
        with open(os.path.join(SRCDIR, "rules", "examples",
                               "readings-with-captures.json")) as f:
            rules = json.load(f)
        br = self.start_rules(rules)
        self.assertEqual(self.table_info("readings"), [
            ("id", "INTEGER"), ("ts", "INTEGER"), ("site", "TEXT"),
            ("device", "TEXT"), ("temp", "REAL"), ("hum", "REAL"),
            ("battery_v", "REAL"), ("raw", "")])
        self.assertEqual(br.rows(
            "select name, sql from sqlite_master where type='index' and "
            "tbl_name='readings' order by name"), [
            ["readings_site_device_ts_idx",
             'CREATE INDEX "readings_site_device_ts_idx" ON "readings" '
             '("site", "device", "ts")'],
            ["readings_ts_idx",
             'CREATE INDEX "readings_ts_idx" ON "readings" ("ts")']])
        c = self.client(client_id="ex")
        c.publish("site/s1/dev/d1/telemetry",
                  b'{"temp": 21, "hum": 40, "battery": {"v": 3.7}}', qos=1)
        self.assertEqual(br.rows(
            "select site, device, temp, typeof(temp), hum, typeof(hum), "
            "battery_v, raw, typeof(raw) from readings"),
            [["s1", "d1", "21.0", "real", "40.0", "real", "3.7",
              '{"temp":21,"hum":40,"battery":{"v":3.7}}', "text"]])
        # The index is used by the sqlite3 shell.
        plan = br.query("explain query plan select * from readings where "
                        "site='s1' and device='d1' and ts > 0")
        self.assertIn("readings_site_device_ts_idx", plan)

    def test_reload_adds_column(self):
        rule = {"name": "r", "topic": "t/{dev}", "sqlite": {
            "table": "t", "columns": {"dev": "{dev}",
                                      "temp": "{payload.temp}"}}}
        br = self.start_rules([rule])
        c = self.client(client_id="reload")
        c.publish("t/a", b'{"temp": 1, "hum": 50}', qos=1)
        rule["sqlite"]["columns"]["hum"] = "{payload.hum}"
        rule["sqlite"]["columns"]["at"] = "{received_ms}"
        rule["sqlite"]["types"] = {"hum": "REAL"}
        rule["sqlite"]["indexes"] = ["hum"]
        self.rules_file([rule], "broker-rules.json")
        self.sighup_reload()
        self.assertIn("added column hum to table t", br.log_text())
        # The same connection goes on; new publishes use the new rules.
        c.publish("t/b", b'{"temp": 2, "hum": 51}', qos=1)
        self.assertEqual(self.table_info("t"), [
            ("id", "INTEGER"), ("dev", "TEXT"), ("temp", ""),
            ("hum", "REAL"), ("at", "INTEGER")])
        self.assertEqual(br.rows("select dev, temp, quote(hum), "
                                 "typeof(at) from t order by id"),
                         [["a", "1", "NULL", "null"],
                          ["b", "2", "51.0", "integer"]])
        self.assertEqual(br.scalar("select count(*) from sqlite_master "
                                   "where name='t_hum_idx'"), 1)
        # A restart with the reloaded file keeps the table as it is.
        br.restart()
        c = self.client(client_id="reload2")
        c.publish("t/c", b'{"temp": 3, "hum": 52.5}', qos=1)
        self.assertEqual(br.rows("select dev, hum from t order by id"),
                         [["a", ""], ["b", "51.0"], ["c", "52.5"]])

    def test_broken_reload_keeps_old_rules(self):
        rule = {"name": "r", "topic": "k/{dev}", "sqlite": {
            "table": "k", "columns": {"dev": "{dev}", "v": "{payload.v}"}}}
        br = self.start_rules([rule])
        c = self.client(client_id="broken")
        c.publish("k/a", b'{"v": 1}', qos=1)
        # 1: not JSON at all.
        with open(br.rules_path, "w") as f:
            f.write('{"rules": [ {"name": "r", ')
        self.sighup_reload(expect_ok=False)
        self.assertIn("JSON syntax error", br.log_text())
        c.publish("k/b", b'{"v": 2}', qos=1)
        # 2: an unknown placeholder; the log names file, path and reason.
        bad = json.loads(json.dumps(rule))
        bad["topic"] = "other/{dev}"
        bad["sqlite"]["columns"]["v"] = "{payloud.v}"
        self.rules_file([bad], "broker-rules.json")
        self.sighup_reload(expect_ok=False)
        self.assertIn("rules[0].sqlite.columns.v: unknown placeholder "
                      "{payloud.v}", br.log_text())
        c.publish("k/c", b'{"v": 3}', qos=1)
        c.publish("other/c", b'{"v": 30}', qos=1)
        # 3: the file is gone.
        os.unlink(br.rules_path)
        self.sighup_reload(expect_ok=False)
        c.publish("k/d", b'{"v": 4}', qos=1)
        self.assertEqual(br.rows("select dev, v from k order by id"),
                         [["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"]])
        self.assertTrue(br.running())
        # A good file after the broken ones is taken.
        rule["topic"] = "k2/{dev}"
        self.rules_file([rule], "broker-rules.json")
        self.sighup_reload()
        c.publish("k/e", b'{"v": 5}', qos=1)
        c.publish("k2/f", b'{"v": 6}', qos=1)
        self.assertEqual(br.rows("select dev, v from k where id > 4 "
                                 "order by id"), [["f", "6"]])
        self.assertEqual(br.query("select group_concat(dev) from k"),
                         "a,b,c,d,f")

    def test_reload_during_burst_is_atomic(self):
        rule = {"name": "r", "topic": "b/{dev}", "sqlite": {
            "table": "b", "columns": {"n": "{payload.n}"}}}
        br = self.start_rules([rule])
        c = self.client(client_id="burst")
        n = 2000
        c.send(b"".join(publish_pkt("b/d", b'{"n": %d}' % i, qos=1,
                                    pid=i + 1) for i in range(n)),
               timeout=30)
        for i in range(300):
            self.assertEqual(c.expect(PUBACK, timeout=10).pid, i + 1)
        rule["sqlite"]["columns"]["dev"] = "{dev}"
        self.rules_file([rule, {"name": "r2", "topic": "b/+", "sqlite": {
            "table": "b2", "columns": {"n": "{payload.n}"}}}],
            "broker-rules.json")
        br.proc.send_signal(signal.SIGHUP)
        for i in range(300, n):
            self.assertEqual(c.expect(PUBACK, timeout=10).pid, i + 1)
        self.wait_log("rules reloaded from")
        c.publish("b/last", b'{"n": %d}' % n, qos=1)
        rows = br.rows("select n, quote(dev) from b order by id")
        self.assertEqual([int(r[0]) for r in rows], list(range(n + 1)))
        # Each publish used one rule set: the old one, then the new one.
        new = [int(r[0]) for r in rows if r[1] != "NULL"]
        self.assertTrue(new and new == list(range(new[0], n + 1)), new[:5])
        self.assertEqual(br.query("select group_concat(n) from "
                                  "(select n from b2 order by id)"),
                         ",".join(map(str, new)))

    def test_declared_type_conflict_refused(self):
        # An existing table whose column type differs from the declared
        # one: the daemon refuses to start, saying why.
        br = self.start_rules({"rules": []})
        self.assertEqual(br.stop(), 0)
        br.query("create table conflict (id integer primary key, "
                 "dev text, temp TEXT)")
        rule = {"name": "c", "topic": "c/{dev}", "sqlite": {
            "table": "conflict", "columns": {"dev": "{dev}",
                                             "temp": "{payload.temp}"},
            "types": {"temp": "REAL"}}}
        br2 = self.new_broker(name="conflict", database={"path":
                                                         br.db_path},
                              extra_args=["-r", self.rules_file(
                                  [rule], "conflict-rules.json")])
        with self.assertRaises(RuntimeError):
            br2.start()
        self.assertEqual(wait_until(lambda: br2.proc.poll() is not None,
                                    timeout=10), True)
        self.assertNotEqual(br2.proc.returncode, 0)
        br2.proc = None
        self.assertIn("column temp has type 'TEXT' but the rule declares "
                      "REAL", br2.log_text())
        self.assertEqual(self.table_info("conflict", br), [
            ("id", "INTEGER"), ("dev", "TEXT"), ("temp", "TEXT")])
        # Same at reload: the old rules stay.
        br.extra_args = ["-r", self.rules_file([{
            "name": "c", "topic": "c/{dev}", "sqlite": {
                "table": "conflict", "columns": {"dev": "{dev}"}}}],
            "ok.json")]
        br.start()
        c = self.client(br, client_id="conflict")
        c.publish("c/a", b'{"temp": 1.5}', qos=1)
        self.rules_file([rule], "ok.json")
        self.sighup_reload(br, expect_ok=False)
        self.assertIn("column temp has type 'TEXT' but the rule declares "
                      "REAL", br.log_text())
        c.publish("c/b", b'{"temp": 2.5}', qos=1)
        self.assertEqual(br.rows("select dev, quote(temp) from conflict "
                                 "order by id"),
                         [["a", "NULL"], ["b", "NULL"]])


class TestRejected(RulesCase):

    def precreate(self, sql):
        br = self.start_rules({"rules": []})
        self.assertEqual(br.stop(), 0)
        br.query(sql)
        return br

    def test_constraint_violation_goes_to_rejected(self):
        br = self.precreate(
            "create table readings (id integer primary key, "
            "dev text not null, temp real check (temp < 100))")
        br.extra_args = ["-r", self.rules_file([{
            "name": "guarded", "topic": "g/{site}",
            "sqlite": {"table": "readings", "columns": {
                "dev": "{payload.dev}", "temp": "{payload.temp}"}}}],
            "guarded.json")]
        br.start()
        c = self.client(br, client_id="rej")
        c.publish("g/s1", b'{"dev": "d1", "temp": 21.5}', qos=1)
        hot = b'{"dev": "d2", "temp": 150}'
        c.publish("g/s1", hot, qos=1)           # PUBACK all the same
        c.publish("g/s2", b'{"temp": 1}', qos=2)
        c.publish("g/s3", b"\xff\xfe", qos=1)   # dev NULL: not JSON
        c.publish("g/s1", b'{"dev": "d3", "temp": 99.9}', qos=1)
        self.assertEqual(br.rows("select dev, temp from readings "
                                 "order by id"),
                         [["d1", "21.5"], ["d3", "99.9"]])
        rows = br.rows("select rule, topic, client_id, qos, hex(payload), "
                       "typeof(received_ms), typeof(rejected_ms), "
                       "rejected_ms >= received_ms from rejected "
                       "order by id")
        self.assertEqual(rows, [
            ["guarded", "g/s1", "rej", "1", hot.hex().upper(),
             "integer", "integer", "1"],
            ["guarded", "g/s2", "rej", "2",
             b'{"temp": 1}'.hex().upper(), "integer", "integer", "1"],
            ["guarded", "g/s3", "rej", "1", "FFFE", "integer", "integer",
             "1"]])
        reasons = br.query("select reason from rejected order by id")
        reasons = reasons.splitlines()
        self.assertIn("CHECK constraint failed", reasons[0])
        self.assertIn("NOT NULL constraint failed: readings.dev",
                      reasons[1])
        self.assertIn("NOT NULL constraint failed: readings.dev",
                      reasons[2])
        self.assertIn("rule guarded: row for g/s1 rejected", br.log_text())
        # Later valid messages still stored; the publisher never blocked.
        for i in range(20):
            c.publish("g/s9", b'{"dev": "late", "temp": %d}' % (i * 10),
                      qos=1)
        self.assertEqual(br.scalar("select count(*) from readings where "
                                   "dev='late'"), 10)
        self.assertEqual(br.scalar("select count(*) from rejected"), 13)

    def test_strict_type_conflict_goes_to_rejected(self):
        br = self.precreate("create table strict_t (id integer primary "
                            "key, v real) strict")
        br.extra_args = ["-r", self.rules_file([
            {"name": "strict", "topic": "st/#", "sqlite": {
                "table": "strict_t", "columns": {"v": "{payload.v}"}}},
            {"name": "after", "topic": "st/#", "sqlite": {
                "table": "after_t", "columns": {"t": "{topic}"}}}],
            "strict.json")]
        br.start()
        c = self.client(br, client_id="strict")
        c.publish("st/1", b'{"v": 1.5}', qos=1)
        c.publish("st/2", b'{"v": "abc"}', qos=1)
        c.publish("st/3", b'{"v": 2}', qos=1)
        self.assertEqual(br.rows("select v, typeof(v) from strict_t "
                                 "order by id"),
                         [["1.5", "real"], ["2.0", "real"]])
        self.assertEqual(br.rows("select rule, topic, payload from "
                                 "rejected"),
                         [["strict", "st/2", '{"v": "abc"}']])
        self.assertIn("cannot store TEXT value in REAL column",
                      br.query("select reason from rejected"))
        # The rejected row did not stop the next rule for that publish.
        self.assertEqual(br.query("select group_concat(t) from after_t"),
                         "st/1,st/2,st/3")


class TestCheck(RulesCase):

    def test_check_reports_every_error(self):
        path = self.rules_file([
            {"name": "a", "topic": "x/{dev}", "sqlite": {
                "table": "t1", "columns": {"temp": "{payloud.temp}"}}},
            {"name": "b", "topic": "y/#", "bogus": 1, "sqlite": {
                "table": "t2", "columns": {"v": "{payload}"}}},
            {"name": "c", "topic": "z/#", "sqlite": {
                "table": "bad-name", "columns": {"v": "{payload}"}}},
            {"name": "d", "topic": "w/#", "sqlite": {
                "table": "outbox", "columns": {"v": "{payload}"}}},
            {"name": "a", "topic": "v/#", "sqlite": {
                "table": "t3", "columns": {"ok": "{payload}"}}},
            {"name": "e", "topic": "u/#", "sqlite": {
                "table": "t4", "columns": {"ok": "{payload}"},
                "types": {"ok": "FLOAT"}}},
        ], "bad.json")
        db = os.path.join(self.workdir, "never.db")
        self.assertEqual(os.path.dirname(path), self.workdir)
        rc, lines = self.check("-r", "bad.json", "-d", db)
        self.assertEqual(rc, 1)
        for want in (
                "bad.json: rules[0].sqlite.columns.temp: unknown "
                "placeholder {payloud.temp}",
                "bad.json: rules[1].bogus: unknown key",
                "bad.json: rules[2].sqlite.table: bad-name is not a valid "
                "table name",
                "bad.json: rules[3].sqlite.table: table outbox is reserved",
                'bad.json: rules[4].name: duplicate rule name "a"',
                "bad.json: rules[5].sqlite.types.ok: "):
            self.assertEqual(len([ln for ln in lines if want in ln]), 1,
                             "%r not printed once in:\n%s"
                             % (want, "\n".join(lines)))
        for ln in lines:
            self.assertRegex(ln, r"^bad\.json: rules\[\d\]\.[a-z.]+\S*: \S")
        self.assertEqual(len(lines), 6, "\n".join(lines))
        self.assertFalse(os.path.exists(db), "--check created the database")

    def test_check_more_errors(self):
        path = self.rules_file([
            {"name": "f", "topic": "x/#", "sqlite": {
                "table": "t5", "columns": {"x": "{payload}"},
                "types": {"x": "INTEGER"}}},
            {"name": "g", "topic": "y/#", "sqlite": {
                "table": "T5", "columns": {"x": "{payload}"},
                "types": {"x": "TEXT"}}},
            {"name": "h", "topic": "y/#", "sqlite": {
                "table": "t6", "colums": {"foo": "{payload}"}}},
            {"name": "i", "topic": "y/#", "sqlite": {
                "table": "t7", "columns": {"foo": "{payload}"},
                "indexes": ["bar"]}},
            {"name": "j", "topic": "y/#",
             "where": {"value": "{payload}", "op": "like", "to": 1},
             "sqlite": {"table": "t8", "columns": {
                 "foo": "${MQLITE_E2E_SURELY_UNSET}"}}},
            {"name": "k", "topic": "y/#/z", "sqlite": {
                "table": "t9", "columns": {"foo": "{payload"}}},
            {"name": "l", "topic": "y/{topic}", "sqlite": {
                "table": "t10", "columns": {"foo": "{qos}"}}},
            {"name": "m", "topic": "y/#"},
        ], "more.json")
        self.assertNotIn("MQLITE_E2E_SURELY_UNSET", os.environ)
        self.assertEqual(os.path.dirname(path), self.workdir)
        rc, lines = self.check("-r", "more.json")   # cwd: the work dir
        self.assertEqual(rc, 1)
        prefixes = [
            "more.json: rules[1].sqlite.columns.x: ",
            "more.json: rules[2].sqlite.colums: unknown key",
            "more.json: rules[2].sqlite: missing \"columns\"",
            "more.json: rules[3].sqlite.indexes[0]: not a column",
            "more.json: rules[4].where.op: ",
            "more.json: rules[4].sqlite.columns.foo: environment variable "
            "MQLITE_E2E_SURELY_UNSET is not set",
            "more.json: rules[5].topic: ",
            "more.json: rules[5].sqlite.columns.foo: ",
            "more.json: rules[6].topic: ",
            "more.json: rules[7]",
        ]
        for want in prefixes:
            self.assertTrue(any(ln.startswith(want) for ln in lines),
                            "no line starting %r in:\n%s"
                            % (want, "\n".join(lines)))
        self.assertEqual(len(lines), len(prefixes), "\n".join(lines))

    def test_check_valid_files_exit_0(self):
        src = SRCDIR
        db = os.path.join(self.workdir, "never.db")
        for name in ("default.json", "examples/readings-with-captures.json",
                     "examples/per-metric-topics.json",
                     "examples/filtered-alarms.json"):
            rc, lines = self.check("-r", os.path.join(src, "rules", name),
                                   "-d", db)
            self.assertEqual((rc, [ln for ln in lines
                                   if "error" in ln.lower() or
                                   ": rules" in ln]), (0, []), name)
        # A config with the rules inline, and its database path.
        br = self.new_broker(name="chk", config_extra={"rules": [{
            "name": "ok", "topic": "a/{b}", "sqlite": {
                "table": "ok", "columns": {"b": "{b}"}}}]})
        rc, lines = self.check("-c", br.conf_path)
        self.assertEqual(rc, 0, "\n".join(lines))
        self.assertFalse(os.path.exists(br.db_path))
        self.assertFalse(os.path.exists(db))
        br2 = self.new_broker(name="chk2", config_extra={"rules": [{
            "name": "bad", "topic": "a/{b}", "sqlite": {
                "table": "ok", "columns": {"b": "{c}"}}}]})
        rc, lines = self.check("-c", br2.conf_path)
        self.assertEqual(rc, 1)
        self.assertTrue(any("rules[0].sqlite.columns.b: unknown "
                            "placeholder {c}" in ln for ln in lines),
                        "\n".join(lines))
        self.assertFalse(os.path.exists(br2.db_path))

    def test_daemon_refuses_invalid_rules(self):
        path = self.rules_file([{"name": "a", "topic": "x/#", "sqlite": {
            "table": "sessions", "columns": {"v": "{payload}"}}}], "r.json")
        db = os.path.join(self.workdir, "refused.db")
        r = subprocess.run([daemon_path(), "-p", "0", "-d", db, "-r", path],
                           capture_output=True, timeout=30,
                           cwd=self.workdir)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"rules[0].sqlite.table: table sessions is reserved",
                      r.stderr + r.stdout)


class TestScale(RulesCase):

    def test_1000_rules(self):
        n = 1000
        rules = [{"name": "dev%d" % i, "topic": "dev/%d/{metric}" % i,
                  "sqlite": {"table": "t%d" % (i % 10), "columns": {
                      "rule": "dev%d" % i, "metric": "{metric}",
                      "v": "{payload}"}}} for i in range(n)]
        t0 = time.monotonic()
        br = self.start_rules(rules)
        started = time.monotonic() - t0
        # A generous bound: sanitizer builds on a loaded CI machine.
        self.assertLess(started, 30.0, "start with 1,000 rules took %.1f s"
                        % started)
        self.assertIn("%d rules loaded" % n, br.log_text())
        self.assertEqual(len(self.tables() - GATEWAY_TABLES), 10)
        c = self.client(client_id="scale")
        t0 = time.monotonic()
        for i in (0, 1, 517, 998, 999, 1000, 5170):
            c.publish("dev/%d/temp" % i, b"%d.5" % i, qos=1)
        c.publish("dev/517/a/b", b"1", qos=1)   # two levels: no match
        c.publish("dev/517", b"1", qos=1)       # one level short
        self.assertLess(time.monotonic() - t0, 30.0)
        got = {}
        for k in range(10):
            for r in br.rows("select rule, metric, v, typeof(v) from t%d"
                             % k):
                got.setdefault(k, []).append(r)
        self.assertEqual(got, {
            0: [["dev0", "temp", "0.5", "real"]],
            1: [["dev1", "temp", "1.5", "real"]],
            7: [["dev517", "temp", "517.5", "real"]],
            8: [["dev998", "temp", "998.5", "real"]],
            9: [["dev999", "temp", "999.5", "real"]]})
        # A reload of the same 1,000 rules is quick too.
        t0 = time.monotonic()
        self.sighup_reload()
        self.assertLess(time.monotonic() - t0, 10.0)
        c.publish("dev/3/hum", b"7", qos=1)
        self.assertEqual(br.rows("select rule, v from t3"),
                         [["dev3", "7"]])


class TestDurability(RulesCase):

    def test_acked_qos1_survive_kill9(self):
        br = self.start_rules([{
            "name": "dur", "topic": "dur/{dev}",
            "sqlite": {"table": "dur", "columns": {
                "dev": "{dev}", "n": "{payload.n}", "v": "{payload.v}"},
                "types": {"v": "REAL"}}},
            {"name": "dur2", "topic": "dur/+",
             "sqlite": {"table": "dur2", "columns": {"n": "{payload.n}"}}}])
        c = self.client(client_id="dur")
        n = 3000
        c.send(b"".join(publish_pkt(
            "dur/d%d" % (i % 7), b'{"n": %d, "v": %d.25}' % (i, i),
            qos=1, pid=i % 65535 + 1) for i in range(n)), timeout=30)
        acked = 0
        deadline = time.monotonic() + 20
        while acked < 1000 and time.monotonic() < deadline:
            p = c.expect(PUBACK, timeout=10)
            self.assertEqual(p.pid, acked % 65535 + 1)
            acked += 1
        br.kill()
        self.assertGreaterEqual(acked, 1000)
        br.start()
        got = br.rows("select n, dev, v from dur order by id")
        self.assertGreaterEqual(len(got), acked)
        self.assertEqual(got[:acked],
                         [[str(i), "d%d" % (i % 7), "%d.25" % i]
                          for i in range(acked)])
        self.assertEqual(br.query("select count(*) from dur2 where n < %d"
                                  % acked), str(acked))
        # Nothing stored twice or out of order.
        self.assertEqual([int(r[0]) for r in got],
                         list(range(len(got))))
        self.assertEqual(br.query("pragma integrity_check"), "ok")


if __name__ == "__main__":
    unittest.main()
