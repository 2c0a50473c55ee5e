# SPDX-License-Identifier: Apache-2.0
"""Value transforms and device time end to end: the real daemon, raw-socket
clients publishing QoS 1 (acknowledged after commit), and the sqlite3 shell
reading the exact values and typeof() back. Device times in every accepted
form, max_time_skew with {time_skew_ms} and its counter, a packed binary
payload (Modbus registers) and a LoRaWAN-style base64 uplink decoded, a
chain of transforms (in a where filter too), bad values stored as NULL and
counted while a NOT NULL column rejects its row, `mqlite --check` errors,
and the example file loaded and checked against the JSON Schema."""

import base64
import glob
import json
import os
import re
import struct
import time
import unittest
import urllib.request

from mqlite_harness import HOST, free_port, wait_until
from test_rules import SRCDIR, RulesCase

NOW_MS = None   # set per test from the wall clock


def metric_values(text):
    """{'name{rule="x"}': value} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


class TestTransforms(RulesCase):

    def start_with_metrics(self, rules):
        br = self.new_broker(name="xf")
        self.mport = free_port()
        br.update_config(metrics={"bind": HOST, "port": self.mport})
        br.extra_args = ["-r", self.rules_file(rules, "xf-rules.json")]
        br.start()
        self.broker = br
        self.assertTrue(wait_until(lambda: "metrics on http" in
                                   br.log_text(), timeout=10))
        return br

    def metric(self, name, rule):
        with urllib.request.urlopen("http://%s:%d/metrics" % (
                HOST, self.mport), timeout=10) as r:
            vals = metric_values(r.read().decode())
        return vals.get('%s{rule="%s"}' % (name, rule))

    def test_device_time_every_form(self):
        br = self.start_with_metrics([
            {"name": "dt", "topic": "dt/{dev}", "sqlite": {
                "table": "dt", "columns": {
                    "n": "{payload.n}", "ts": "{payload.t|time}"}}},
            {"name": "dtf", "topic": "dtf/{dev}", "sqlite": {
                "table": "dtf", "columns": {
                    "n": "{payload.n}",
                    "ts": "{payload.t|time:%d/%m/%Y %H:%M:%S %z}",
                    "ts2": "{payload.d|time:%Y%m%d}"}}}])
        forms = [   # (device time as JSON, Unix ms stored)
            (1700000000, 1700000000000),                 # seconds
            (1700000000.25, 1700000000250),              # seconds.frac
            (1700000000123, 1700000000123),              # milliseconds
            (1700000000123456, 1700000000123),           # microseconds
            (1700000000123456789, 1700000000123),        # nanoseconds
            ("1700000000", 1700000000000),               # as text
            ("2023-11-14T22:13:20Z", 1700000000000),
            ("2023-11-14T22:13:20.123Z", 1700000000123),
            ("2023-11-14T23:13:20.123456789+01:00", 1700000000123),
            ("2023-11-14 17:13:20-0500", 1700000000000),
            ("2023-11-15T03:43:20+05:30", 1700000000000),
            ("2023-11-14t22:13:20z", 1700000000000),
            ("2023-11-14T22:13:20", 1700000000000),      # no offset: UTC
            ("2023-11-14", 1699920000000),
            ("1969-12-31T23:59:59.999Z", -1),
            (-1, -1000),
        ]
        bad = ["2023-02-29T00:00:00Z", "2023-11-14T25:00:00Z", "soon",
               "", {"a": 1}, 1e300]
        c = self.client(client_id="dt")
        n = 0
        for t, _ in forms:
            c.publish("dt/a", json.dumps({"n": n, "t": t}).encode(), qos=1)
            n += 1
        for t in bad:
            c.publish("dt/a", json.dumps({"n": n, "t": t}).encode(), qos=1)
            n += 1
        c.publish("dt/a", b'{"n": 99}', qos=1)          # missing: no count
        rows = br.rows("select n, typeof(ts), ts from dt order by n")
        want = [[str(i), "integer", str(ms)]
                for i, (_, ms) in enumerate(forms)]
        want += [[str(len(forms) + i), "null", ""] for i in range(len(bad))]
        want += [["99", "null", ""]]
        self.assertEqual(rows, want)
        self.assertEqual(br.query("select type from pragma_table_info('dt') "
                                  "where name = 'ts'"), "INTEGER")
        c.publish("dtf/a", b'{"n": 0, "t": "14/11/2023 23:13:20 +0100", '
                  b'"d": 20231114}', qos=1)
        c.publish("dtf/a", b'{"n": 1, "t": "31/02/2023 00:00:00 +0000", '
                  b'"d": "2023-11-14"}', qos=1)
        self.assertEqual(br.rows("select n, typeof(ts), ts, typeof(ts2), "
                                 "ts2 from dtf order by n"),
                         [["0", "integer", "1700000000000", "integer",
                           "1699920000000"],
                          ["1", "null", "", "null", ""]])
        self.assertEqual(self.metric("mqlite_rule_device_time_invalid_total",
                                     "dt"), len(bad))
        self.assertEqual(self.metric("mqlite_rule_device_time_invalid_total",
                                     "dtf"), 2)
        self.assertEqual(self.metric("mqlite_rule_written_total", "dt"),
                         len(forms) + len(bad) + 1)

    def test_max_time_skew(self):
        br = self.start_with_metrics([
            {"name": "skew", "topic": "sk/{dev}", "max_time_skew": "1h",
             "sqlite": {"table": "sk", "columns": {
                 "n": "{payload.n}", "ts": "{payload.t|time}",
                 "skew": "{time_skew_ms}", "recv": "{received_ms}"}}}])
        c = self.client(client_id="sk")
        now = int(time.time() * 1000)
        cases = [now - 2 * 3600 * 1000,     # two hours behind: flagged
                 now - 60 * 1000,           # a minute: within
                 5,                         # a 1970 clock (seconds)
                 now + 3 * 3600 * 1000]     # three hours ahead: flagged
        for i, t in enumerate(cases):
            c.publish("sk/a", json.dumps({"n": i, "t": t}).encode(), qos=1)
        c.publish("sk/a", b'{"n": 4, "t": "never"}', qos=1)
        rows = br.rows("select n, ts, typeof(skew), skew, recv from sk "
                       "order by n")
        self.assertEqual(len(rows), 5)
        for i, t in enumerate(cases):
            n, ts, typ, skew, recv = rows[i]
            dev_ms = t * 1000 if t == 5 else t
            self.assertEqual(int(ts), dev_ms)
            d = dev_ms - int(recv)
            if abs(d) > 3600 * 1000:
                self.assertEqual((typ, int(skew)), ("integer", d), rows[i])
            else:
                self.assertEqual((typ, skew), ("null", ""), rows[i])
        self.assertEqual(rows[4][1:4], ["", "null", ""])
        self.assertEqual(self.metric("mqlite_rule_time_skew_total", "skew"),
                         3)
        self.assertEqual(self.metric("mqlite_rule_device_time_invalid_total",
                                     "skew"), 1)

    def test_clock_before_build_date_warns(self):
        """A box whose clock reads 2001 (libfaketime) is warned about at
        start, and stamps received_ms in 2001; a right clock is not."""
        lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
        self.assertTrue(os.path.exists(lib), "install faketime")
        asan = os.environ.get("ASAN_OPTIONS", "")
        br = self.new_broker(name="rtc", env={
            "LD_PRELOAD": lib, "FAKETIME": "@2001-01-01 00:00:00",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": (asan + ":" if asan else "") +
            "verify_asan_link_order=0"})
        br.extra_args = ["-r", self.rules_file([
            {"name": "r", "topic": "#", "sqlite": {"table": "r", "columns": {
                "recv": "{received_ms}"}}}], "rtc-rules.json")]
        br.start()
        warning = "the system clock is before this build's date"
        self.assertTrue(wait_until(lambda: warning in br.log_text(),
                                   timeout=10), br.log_text())
        c = self.client(br, client_id="rtc")
        c.publish("a", b"1", qos=1)
        recv = int(br.query("select recv from r"))
        self.assertTrue(978307200000 <= recv < 978307200000 + 3600000,
                        recv)
        ok = self.start_rules([{"name": "r", "topic": "#", "sqlite": {
            "table": "r", "columns": {"recv": "{received_ms}"}}}],
            name="ok")
        self.client(ok, client_id="ok").publish("a", b"1", qos=1)
        self.assertNotIn(warning, ok.log_text())

    def test_packed_binary_payloads(self):
        br = self.start_rules([
            {"name": "modbus", "topic": "mb/{meter}", "sqlite": {
                "table": "mb", "columns": {
                    "reg0": "{payload_raw|u16be:0}",
                    "reg1": "{payload_raw|i16be:2}",
                    "scaled": "{payload_raw|i16be:2|mul:0.1|round:1}",
                    "cnt": "{payload_raw|u32be:4}",
                    "temp": "{payload_raw|f32be:8}",
                    "st": "{payload_raw|u8:12}",
                    "le1": "{payload_raw|i16le:13}",
                    "le2": "{payload_raw|u16le:15}",
                    "pi": "{payload_raw|f64be:17}",
                    "big": "{payload_raw|i64le:17}",
                    "past": "{payload_raw|u32be:24}",
                    "frame": "{payload_raw|hex}"}}},
            {"name": "lora", "topic": "lora/{app}/up", "sqlite": {
                "table": "lora", "columns": {
                    "eui": "{payload.devEUI|lower}",
                    "batt": "{payload.data|unbase64|u8:0}",
                    "temp": "{payload.data|unbase64|i16be:1|mul:0.01}",
                    "hexd": "{payload.data|unbase64|hex}",
                    "frm": "{payload.frm|unhex|u16le:1}"}}}])
        frame = (struct.pack(">HhIfB", 1234, -567, 4000000000, 21.5, 0) +
                 struct.pack("<hH", -2, 65535) +
                 struct.pack(">d", 3.141592653589793))
        self.assertEqual(len(frame), 25)
        c = self.client(client_id="mb")
        c.publish("mb/m1", frame, qos=1)
        c.publish("mb/m2", frame[:5], qos=1)        # short: NULLs, stored
        rows = br.rows(
            "select typeof(reg0), reg0, typeof(reg1), reg1, typeof(scaled), "
            "scaled, cnt, typeof(temp), temp, st, le1, le2, typeof(pi), "
            "pi = 3.141592653589793, typeof(big), typeof(past), frame "
            "from mb order by id")
        big = struct.unpack("<q", frame[17:25])[0]
        self.assertEqual(rows[0], [
            "integer", "1234", "integer", "-567", "real", "-56.7",
            "4000000000", "real", "21.5", "0", "-2", "65535", "real", "1",
            "integer", "null", frame.hex()])
        self.assertEqual(br.query("select big from mb order by id limit 1"),
                         str(big))
        self.assertEqual(rows[1], [
            "integer", "1234", "integer", "-567", "real", "-56.7",
            "", "null", "", "", "", "", "null", "", "null", "null",
            frame[:5].hex()])
        up = {"devEUI": "70B3D57ED005A1B2", "fPort": 2,
              "data": base64.b64encode(bytes([100, 0x09, 0xf6])).decode(),
              "frm": "00e803"}
        c.publish("lora/farm/up", json.dumps(up).encode(), qos=1)
        c.publish("lora/farm/up", b'{"devEUI": "X", "data": "%%%", '
                  b'"frm": "0"}', qos=1)
        self.assertEqual(br.rows(
            "select eui, typeof(batt), batt, typeof(temp), temp, hexd, "
            "typeof(frm), frm from lora order by id"),
            [["70b3d57ed005a1b2", "integer", "100", "real", "25.5",
              "6409f6", "integer", "1000"],
             ["x", "null", "", "null", "", "", "null", ""]])

    def test_chain_where_and_not_null(self):
        br = self.start_rules({"rules": []}, name="nn")
        self.assertEqual(br.stop(), 0)
        br.query("create table strict_ts (id integer primary key, "
                 "dev text, ts integer not null)")
        br.extra_args = ["-r", self.rules_file([
            {"name": "chain", "topic": "ch/{dev}",
             "where": {"value": "{payload.v|float|mul:2}", "op": ">",
                       "to": 1},
             "sqlite": {"table": "chain", "columns": {
                 "dev": "{dev|upper}",
                 "f": "{payload.v|float|mul:1.8|add:32|round:1}",
                 "label": "{payload.label|default:\"none\"|upper}",
                 "idhex": "{payload.id|str|hex}",
                 "js": "{payload.inner|json:a[1]}",
                 "bad": "{payload.label|int}",
                 "mixed": "{dev|upper}={payload.v|int|mul:10}"}}},
            {"name": "strict", "topic": "ch/{dev}", "sqlite": {
                "table": "strict_ts", "columns": {
                    "dev": "{dev}", "ts": "{payload.t|time}"}}}],
            "nn-rules2.json")]
        br.start()
        c = self.client(br, client_id="ch")
        c.publish("ch/k1", b'{"v": "21.5", "label": "warm", "id": 255, '
                  b'"inner": "{\\"a\\": [0, 9007199254740993]}", '
                  b'"t": "2023-11-14T22:13:20Z"}', qos=1)
        c.publish("ch/k2", b'{"v": 0.25, "t": 1700000000}', qos=1)  # where
        c.publish("ch/k3", b'{"v": 3, "t": "whenever"}', qos=1)      # NULL ts
        self.assertEqual(br.rows(
            "select dev, typeof(f), f, label, idhex, typeof(js), js, "
            "typeof(bad), mixed from chain order by id"),
            [["K1", "real", "70.7", "WARM", "323535", "integer",
              "9007199254740993", "null", "K1=210"],
             ["K3", "real", "37.4", "NONE", "", "null", "", "null",
              "K3=30"]])
        self.assertEqual(br.rows("select dev, ts from strict_ts order by id"),
                         [["k1", "1700000000000"], ["k2", "1700000000000"]])
        rej = br.rows("select rule, topic, reason from rejected")
        self.assertEqual(len(rej), 1)
        self.assertEqual(rej[0][:2], ["strict", "ch/k3"])
        self.assertIn("NOT NULL constraint failed: strict_ts.ts", rej[0][2])

    def test_check_reports_type_errors(self):
        path = self.rules_file([
            {"name": "bad", "topic": "x/{dev}", "sqlite": {
                "table": "bad", "columns": {
                    "a": "{topic|mul:2}",
                    "b": "{payload_raw|lower}",
                    "c": "{payload.x|u16be:0}",
                    "d": "{payload.x|time:%Q}",
                    "e": "{payload.x|frob}",
                    "f": "{payload.x|round:20}",
                    "g": "{payload_raw|unhex|upper}",
                    "ok": "{payload.x|mul:2|round:1}"}}},
            {"name": "skew", "topic": "y", "sqlite": {
                "table": "skew", "columns": {"s": "{time_skew_ms}"}}},
            {"name": "skew2", "topic": "z", "max_time_skew": "5m",
             "sqlite": {"table": "skew2", "columns": {"v": "{payload}"}}}],
            "bad.json")
        db = os.path.join(self.workdir, "never.db")
        rc, lines = self.check("-r", path, "-d", db)
        self.assertEqual(rc, 1)
        want = [
            "rules[0].sqlite.columns.a: {topic|mul:2}: |mul takes INTEGER "
            "or REAL, but gets TEXT here",
            "rules[0].sqlite.columns.b: {payload_raw|lower}: |lower takes "
            "TEXT, but gets the raw payload bytes here",
            "rules[0].sqlite.columns.c: {payload.x|u16be:0}: |u16be takes "
            "BLOB or the raw payload bytes, but gets INTEGER, REAL or TEXT",
            "rules[0].sqlite.columns.d: |time: unknown directive %Q",
            "rules[0].sqlite.columns.e: {payload.x|frob}: unknown "
            "transform |frob",
            "rules[0].sqlite.columns.f: |round:20: expected 0 to 15 "
            "decimal places",
            "rules[0].sqlite.columns.g: {payload_raw|unhex|upper}: |upper "
            "takes TEXT, but gets BLOB here",
            "rules[1]: {time_skew_ms} needs \"max_time_skew\"",
            "rules[2].max_time_skew: the rule has no device time",
        ]
        text = "\n".join(lines)
        for w in want:
            self.assertTrue(any(ln.startswith(path + ": " + w)
                                for ln in lines), "%r not in\n%s" % (w, text))
        self.assertEqual(len([ln for ln in lines if ln.startswith(path)]),
                         len(want), text)
        self.assertFalse(os.path.exists(db))

    def test_example_file_loads_and_decodes(self):
        ex = os.path.join(SRCDIR, "rules", "examples",
                          "transforms-and-device-time.json")
        rc, lines = self.check("-r", ex)
        self.assertEqual(rc, 0, "\n".join(lines))
        with open(ex) as f:
            rules = json.load(f)
        br = self.start_rules(rules, name="ex")
        c = self.client(br, client_id="ex")
        now = int(time.time() * 1000)
        c.publish("site/s1/weather/ws7", json.dumps({
            "ts": "2026-12-06T10:15:00.250+01:00", "t_raw": 215,
            "cfg": "{\"fw\": \"1.4.2\"}"}).encode(), qos=1)
        c.publish("legacy/l1", b'{"when": "06/12/2026 10:15:00 +0100", '
                  b'"level": "12.34"}', qos=1)
        c.publish("plant/l1/meter/m9",
                  struct.pack(">HhIf", 2305, -1500, 123456, 36.6), qos=1)
        c.publish("lora/farm/up", b'{"devEUI": "70B3D57ED005A1B2", '
                  b'"fPort": 2, "data": "ZAn2", '
                  b'"time": "2026-12-06T09:15:00.123456Z"}', qos=1)
        row = br.rows("select ts, typeof(time_skew_ms), time_skew_ms, "
                      "received_ms, station, temp_c, temp_f, model, "
                      "firmware from weather")[0]
        self.assertEqual(row[0], "1796548500250")
        skew = 1796548500250 - int(row[3])
        if abs(skew) > 300000:
            self.assertEqual(row[1:3], ["integer", str(skew)])
        else:
            self.assertEqual(row[1:3], ["null", ""])
        self.assertEqual(row[4:], ["WS7", "21.5", "70.7", "unknown",
                                   "1.4.2"])
        self.assertTrue(abs(int(row[3]) - now) < 60000)
        self.assertEqual(br.rows("select logger, ts, level_cm from legacy"),
                         [["l1", "1796548500000", "12.3"]])
        self.assertEqual(br.rows("select meter, volts, amps, energy_wh, "
                                 "temp_c, frame from meters"),
                         [["m9", "230.5", "-1.5", "123456", "36.6",
                           struct.pack(">HhIf", 2305, -1500, 123456,
                                       36.6).hex()]])
        self.assertEqual(br.rows("select dev_eui, ts, battery, temp_c, "
                                 "raw_hex from lora_uplinks"),
                         [["70b3d57ed005a1b2", "1796548500123", "100",
                           "25.5", "6409f6"]])

    def test_examples_match_the_schema(self):
        import jsonschema
        with open(os.path.join(SRCDIR, "rules",
                               "mqlite-rules.schema.json")) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        v = cls(schema)
        files = sorted(glob.glob(os.path.join(SRCDIR, "rules", "examples",
                                              "*.json")))
        files.append(os.path.join(SRCDIR, "rules", "default.json"))
        self.assertGreaterEqual(len(files), 6)
        for name in files:
            with open(name) as f:
                doc = json.load(f)
            errs = [e.message for e in v.iter_errors(doc)]
            self.assertEqual(errs, [], name)
        # The schema knows the new keys: a misspelt one is refused.
        bad = {"rules": [{"name": "x", "topic": "t", "max_time_skwe": "1m",
                          "sqlite": {"table": "t", "columns": {"a": "{t}"}}}]}
        self.assertNotEqual([e for e in v.iter_errors(bad)], [])
        good = {"rules": [{"name": "x", "topic": "t",
                           "max_time_skew": "1m",
                           "sqlite": {"table": "t", "columns": {
                               "a": "{payload.t|time}",
                               "s": "{time_skew_ms}"}}}]}
        self.assertEqual([e.message for e in v.iter_errors(good)], [])


if __name__ == "__main__":
    unittest.main()
