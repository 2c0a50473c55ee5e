# SPDX-License-Identifier: Apache-2.0
"""The metrics endpoint end to end: a daemon with "metrics" in its config
serves the Prometheus text format at /metrics on its own loopback port.
After N QoS 1 publishes the publish and row counters equal N exactly; rule
counters count matched, filtered (where) and written rows per rule, with
the rule name escaped as a label value; a webhook route whose receiver is
down shows its depth; other paths are 404, other methods 405, a request
over 4 KB is refused with 431; a client that sends nothing is closed at
the 5 s deadline while other requests are served, connections beyond 16
are closed at once; and the MQTT port keeps working throughout. Every
wait is bounded."""

import json
import os
import re
import socket
import time
import unittest
import urllib.error
import urllib.request

from mqlite_harness import (HOST, Broker, E2ETestCase, free_port,
                            mqlite_only, publish_pkt, wait_until, PUBACK)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*)'
                    r'="((?:[^"\\\n]|\\\\|\\"|\\n)*)"\})? (\S+)$')


def unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\":
            out.append({"\\": "\\", '"': '"', "n": "\n"}[v[i + 1]])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def parse(text, test):
    """{(name, label value or None): float}, checking the format: every
    sample's family has # HELP and # TYPE first, families are contiguous,
    counters end in _total, names start with mqlite_ (or process_, the
    standard process families), a histogram's samples are its _bucket,
    _sum and _count."""
    values, types, done, current = {}, {}, set(), None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            test.assertNotIn(name, done, "family %s split" % name)
            if current is not None:
                done.add(current)
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            test.assertEqual(name, current, line)
            types[name] = typ
            if typ == "counter":
                test.assertTrue(name.endswith("_total"), name)
            continue
        m = SAMPLE.match(line)
        test.assertIsNotNone(m, "bad sample line %r" % line)
        name = m.group(1)
        if types.get(current) == "histogram":
            test.assertIn(name, [current + "_bucket", current + "_sum",
                                 current + "_count"], line)
        else:
            test.assertEqual(name, current, "sample outside its family")
        test.assertIn(current, types)
        test.assertTrue(name.startswith(("mqlite_", "process_")), name)
        key = (name, unescape(m.group(4)) if m.group(2) else None)
        test.assertNotIn(key, values, "duplicate sample")
        values[key] = float(m.group(5))
    return values


@mqlite_only("the metrics endpoint")
class MetricsCase(E2ETestCase):
    auto_start = False

    def start_metrics(self, rules=None, name="broker"):
        args = []
        if rules is not None:
            path = os.path.join(self.workdir, name + "-rules.json")
            with open(path, "w") as f:
                json.dump({"rules": rules}, f)
            args = ["-r", path]
        br = Broker(self.workdir, name=name, extra_args=args)
        self.mport = free_port()
        br.update_config(metrics={"bind": HOST, "port": self.mport})
        self.brokers.append(br)
        self.broker = br
        br.start()
        self.assertTrue(wait_until(lambda: "metrics on http://%s:%d/metrics"
                                   % (HOST, self.mport) in br.log_text(),
                                   timeout=10))
        return br

    def get(self, path="/metrics", method="GET"):
        req = urllib.request.Request("http://%s:%d%s" % (HOST, self.mport,
                                                         path),
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            return e.code, dict(e.headers), body

    def metrics(self):
        status, headers, body = self.get()
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith(
            "text/plain; version=0.0.4"), headers)
        self.assertEqual(int(headers["Content-Length"]), len(body))
        self.assertEqual(headers["Connection"], "close")
        return parse(body.decode("utf-8"), self)

    def wait_value(self, key, want, timeout=15.0):
        last = [None]

        def check():
            last[0] = self.metrics().get(key)
            return last[0] == want
        wait_until(check, timeout=timeout, interval=0.2)
        self.assertEqual(last[0], want, key)

    def raw(self, data, timeout=10.0):
        """Sends data on a fresh connection; returns all bytes read until
        the server closes."""
        s = socket.create_connection((HOST, self.mport), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        finally:
            s.close()


class TestCounters(MetricsCase):

    def test_publish_and_row_counters_equal_n(self):
        br = self.start_metrics()
        v = self.metrics()
        self.assertEqual(v[("mqlite_publish_received_total", None)], 0)
        self.assertEqual(v[("mqlite_store_rows_total", None)], 0)
        self.assertEqual([x for k, x in v.items()
                          if k[0] == "mqlite_build_info"], [1])
        self.assertGreater(v[("mqlite_memory_bytes", None)], 0)
        n = 137
        c = self.client(client_id="counter")
        c.send(b"".join(publish_pkt("m/%d" % i, b"v%d" % i, qos=1, pid=i + 1)
                        for i in range(n)))
        for i in range(n):
            self.assertEqual(c.expect(PUBACK).pid, i + 1)
        self.assertEqual(br.count(), n)
        v = self.metrics()
        self.assertEqual(v[("mqlite_publish_received_total", None)], n)
        self.assertEqual(v[("mqlite_store_rows_total", None)], n)
        self.assertEqual(v[("mqlite_connections", None)], 1)
        self.assertGreaterEqual(v[("mqlite_store_commits_total", None)], 1)
        self.assertEqual(v[("mqlite_store_commit_failures_total", None)], 0)
        self.assertEqual(v[("mqlite_protocol_errors_total", None)], 0)
        c.disconnect()
        self.wait_value(("mqlite_connections", None), 0)
        # No rules file: no per-rule or per-route families.
        self.assertFalse([k for k in v if k[0].startswith(
            ("mqlite_rule_", "mqlite_webhook_"))])
        self.assert_serving()


class TestRuleCounters(MetricsCase):

    def test_matched_filtered_written_per_rule(self):
        weird = 'hot "x" \\ y'
        self.start_metrics(rules=[
            {"name": weird, "topic": "t/{dev}",
             "where": {"value": "{payload.temp}", "op": ">", "to": 30},
             "sqlite": {"table": "hot", "columns": {"t": "{payload.temp}"}}},
            {"name": "all", "topic": "t/#",
             "sqlite": {"table": "allt", "columns": {"t": "{payload.temp}"}}},
            {"name": "none", "topic": "other/#",
             "sqlite": {"table": "other", "columns": {"v": "{payload}"}}},
        ])
        c = self.client(client_id="rules")
        temps = list(range(0, 50, 5))            # 35, 40, 45 are > 30
        for i, t in enumerate(temps):
            c.publish("t/d%d" % i, json.dumps({"temp": t}).encode(), qos=1)
        v = self.metrics()
        exp = {weird: (10, 7, 3), "all": (10, 0, 10), "none": (0, 0, 0)}
        for rule, (matched, filtered, written) in exp.items():
            self.assertEqual(v[("mqlite_rule_matched_total", rule)],
                             matched, rule)
            self.assertEqual(v[("mqlite_rule_filtered_total", rule)],
                             filtered, rule)
            self.assertEqual(v[("mqlite_rule_written_total", rule)],
                             written, rule)
            self.assertEqual(v[("mqlite_rule_rejected_total", rule)], 0)
        self.assertEqual(v[("mqlite_publish_received_total", None)], 10)
        status, _, body = self.get()
        self.assertIn(b'rule="hot \\"x\\" \\\\ y"', body)


class TestWebhookRoutes(MetricsCase):

    def test_route_depth_with_receiver_down(self):
        hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hold.bind((HOST, 0))            # bound, never listening: refused
        self.addCleanup(hold.close)
        url = "http://%s:%d/in" % (HOST, hold.getsockname()[1])
        self.start_metrics(rules=[
            {"name": "hook", "topic": "w/#",
             "webhook": {"url": url,
                         "retry": {"base_ms": 60000, "cap_ms": 60000}}}])
        n = 7
        c = self.client(client_id="hook")
        for i in range(n):
            c.publish("w/%d" % i, b"x", qos=1)
        route = "hook/webhook"
        # The depth gauge is refreshed every few seconds.
        self.wait_value(("mqlite_webhook_depth", route), n, timeout=20)
        v = self.metrics()
        self.assertEqual(v[("mqlite_webhook_delivered_total", route)], 0)
        self.assertEqual(v[("mqlite_webhook_dead_total", route)], 0)
        self.assertEqual(v[("mqlite_webhook_dropped_total", route)], 0)
        self.assertGreaterEqual(v[("mqlite_webhook_retried_total", route)],
                                1)
        self.assertGreater(v[("mqlite_webhook_oldest_age_seconds", route)],
                           0)
        self.assertIn(("mqlite_webhook_in_flight", route), v)


class TestHttp(MetricsCase):

    def test_paths_methods_and_oversize(self):
        self.start_metrics()
        self.assertEqual(self.get("/nope")[0], 404)
        self.assertEqual(self.get("/metricsx")[0], 404)
        self.assertEqual(self.get("/metrics?x=1")[0], 200)
        status, headers, _ = self.get(method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET")
        self.assertEqual(self.get(method="DELETE")[0], 405)
        out = self.raw(b"garbage\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out[:40])
        # Over the 4 KB bound: refused, the connection closed.
        big = (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " +
               b"a" * 8000 + b"\r\n\r\n")
        out = self.raw(big)
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:40])
        self.assertIn(b"Connection: close", out)
        # Just under the bound still works.
        pad = 4096 - len(b"GET /metrics HTTP/1.1\r\nX-Pad: \r\n\r\n")
        out = self.raw(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * pad +
                       b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "), out[:40])
        self.assertIn(b"mqlite_store_rows_total 0", out)
        self.assert_serving()

    def test_silent_clients_deadline_and_connection_bound(self):
        self.start_metrics()
        t0 = time.monotonic()
        silent = [socket.create_connection((HOST, self.mport), timeout=10)]
        time.sleep(0.2)
        # A silent client does not stop others from being served.
        self.assertIn(("mqlite_connections", None), self.metrics())
        self.assert_serving(store_check=False)
        # 16 at once; the 17th is closed at once.
        for _ in range(15):
            silent.append(socket.create_connection((HOST, self.mport),
                                                   timeout=10))
        time.sleep(0.2)
        extra = socket.create_connection((HOST, self.mport), timeout=3)
        try:
            self.assertEqual(extra.recv(1), b"")
        except ConnectionResetError:
            pass
        extra.close()
        # Each is closed by the 5 s deadline.
        for s in silent:
            try:
                self.assertEqual(s.recv(1), b"")
            except ConnectionResetError:
                pass
            s.close()
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 4.0)
        self.assertLess(elapsed, 9.0)
        self.metrics()
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
