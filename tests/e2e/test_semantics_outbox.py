# SPDX-License-Identifier: Apache-2.0
"""The "Precise semantics" of the outbox and of every drop README promises
to count and log, end to end against the real daemon, the real HTTP
receiver (tests/helpers/http_stub.py) and the /metrics endpoint:

- outbox overflow "reject" parks the publish and every later item of its
  connection (QoS 0, other topics, topics without a webhook): none is
  stored or acknowledged before it; other connections are served; when the
  receiver drains the outbox everything is stored and acknowledged in the
  order it arrived;
- a webhook request in flight at kill -9 (the receiver slowed down) is sent
  again after the restart with the same Idempotency-Key;
- a header value with CR, LF or NUL dead-letters, the route goes on; rows
  of a route a reload removed stay unsent and are reported at each reload;
  "ordered": false keeps up to max_in_flight requests open, ordered one;
  retry.max_age dead-letters unsent; rate_limit_per_s spreads requests;
- QoS 0 to a subscriber that does not read, max_queued overflow and outbox
  drop_oldest: each drop is counted in /metrics (exactly: received + dropped
  = published) and logged; so are rows deleted by retention max_age and
  rows the database refuses (to `rejected`).

Every wait is bounded."""

import json
import os
import re
import signal
import time
import unittest
import urllib.request

from mqlite_harness import (HOST, PUBACK, free_port, mqlite_only,
                            publish_pkt, wait_until)
from test_webhook import WebhookCase, key_of, seq_of

METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[a-z_]+="([^"]*)"\})?'
                    r' (\S+)$')


def metrics_on(br, port):
    """Adds a metrics listener on port to br's config (before start)."""
    with open(br.conf_path) as f:
        cfg = json.load(f)
    cfg["metrics"] = {"bind": HOST, "port": port}
    with open(br.conf_path, "w") as f:
        json.dump(cfg, f)


def scrape(port):
    """{(name, label value or None): float} from GET /metrics."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port),
                                timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = METRIC.match(line)
        if m:
            out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


class SemOutboxCase(WebhookCase):

    def metrics_daemon(self, rules, outbox=None):
        br = self.daemon(rules, outbox=outbox, start=False)
        self.mport = free_port()
        metrics_on(br, self.mport)
        br.start()
        self.assertTrue(wait_until(
            lambda: "metrics on http://%s:%d/metrics" % (HOST, self.mport)
            in br.log_text(), timeout=10))
        return br

    def metric(self, name, label=None):
        return scrape(self.mport).get((name, label))


# ---------------------------------------------------------------------------

class TestRejectParks(SemOutboxCase):

    def test_reject_parks_later_items_of_the_connection(self):
        hold = self.hold_port()
        br = self.daemon([
            self.hook("r", "t/+", "http://%s:%d/hook" % (HOST, hold.port),
                      retry={"base_ms": 50, "cap_ms": 200}),
            {"name": "all", "topic": "#",
             "sqlite": {"table": "seen",
                        "columns": {"cid": "{client_id}", "topic": "{topic}",
                                    "v": "{payload_raw}"}}}],
            outbox={"max_bytes": "16KB", "overflow": "reject"})
        pad = "p" * 900
        c = self.client(client_id="park")
        acked, held_pid = self.publish_until_held(c, "t/x", pad)
        # Later items of the same connection, none routed to a webhook
        # except the last.
        later = [("other/a", "q0-a", 0), ("other/b", "q1-b", 1),
                 ("other/c", "q0-c", 0), ("t/x", '{"seq": %d}' % (acked + 1),
                                          1)]
        pids = []
        for topic, pl, q in later:
            pid = c.pid() if q else None
            pids.append(pid)
            c.send(publish_pkt(topic, pl, qos=q, pid=pid))
        self.assertIsNone(c.quiet(1.5), "acknowledged past a parked publish")
        rows = br.rows("select topic from seen where cid='park'")
        self.assertEqual(len(rows), acked, "stored past a parked publish: "
                         "%r" % rows[-5:])
        # Other connections are not held.
        o = self.client(client_id="free")
        t0 = time.monotonic()
        o.publish("other/free", b"42", qos=1, timeout=3)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(br.query("select v from seen where cid='free'"),
                         "42")
        self.assertEqual(br.rows("select topic from seen where cid='park'"
                                 " and topic like 'other/%'"), [])
        # Room: everything, in arrival order.
        hold.release()
        recv = self.receiver(port=hold.port)
        got = [c.expect(PUBACK, timeout=20).pid for _ in range(3)]
        self.assertEqual(got, [held_pid, pids[1], pids[3]])
        tail = br.rows("select topic, v from seen where cid='park' "
                       "order by rowid")[acked:]
        self.assertEqual([r[0] for r in tail],
                         ["t/x", "other/a", "other/b", "other/c", "t/x"])
        self.assertEqual(json.loads(tail[0][1])["seq"], acked)
        self.assertEqual([r[1] for r in tail[1:4]],
                         ["q0-a", "q1-b", "q0-c"])
        recv.wait_requests(acked + 2, timeout=20)
        self.wait_drained()
        time.sleep(0.3)
        self.assertEqual([seq_of(r) for r in recv.requests()],
                         list(range(acked + 2)))


class TestInFlightAtKill9(SemOutboxCase):

    def test_in_flight_request_resent_with_same_key(self):
        conn_log = os.path.join(self.workdir, "conns.jsonl")
        recv = self.receiver(args=["--delay-ms", "3000",
                                   "--conn-log", conn_log])
        br = self.daemon([self.hook(
            "r", "k/+", "http://%s:%d/hook" % (HOST, recv.port),
            timeout_ms=20000, retry={"base_ms": 50, "cap_ms": 200})])
        inst = self.instance_id()
        c = self.client(client_id="inflight")
        self.publish_many(c, [("k/x", b'{"seq": 0}')])
        oid = br.scalar("select id from outbox")

        def accepted():
            try:
                with open(conn_log) as f:
                    return f.read().strip()
            except OSError:
                return ""
        self.assertTrue(wait_until(accepted, timeout=10),
                        "the request never reached the receiver")
        time.sleep(0.5)             # the request is read, its answer 2.5 s off
        t_kill = time.time()
        br.kill()
        recv.control(delay_ms=0)
        self.assertEqual(self.outbox_count(), 1, "the row in flight at "
                         "kill -9 must stay in the outbox")
        br.start()
        self.wait_drained(timeout=20)
        time.sleep(3.0)             # the first request's record lands
        # In the order they were read (the log is in answer order).
        reqs = sorted(recv.requests("/hook"), key=lambda r: r["t_start"])
        self.assertGreaterEqual(len(reqs), 2, reqs)
        self.assertLess(reqs[0]["t_start"], t_kill,
                        "the first request was not in flight at kill -9")
        self.assertTrue([r for r in reqs if r["t_start"] > t_kill],
                        "not sent again after the restart")
        self.assertEqual({key_of(r) for r in reqs}, {"%s-%d" % (inst, oid)})
        self.assertEqual({r["body"] for r in reqs}, {reqs[0]["body"]})
        self.assertEqual(self.instance_id(), inst)
        self.assertEqual(br.scalar("select count(*) from outbox_dead"), 0)


class TestRoutes(SemOutboxCase):

    def test_header_with_cr_lf_or_nul_dead_letters(self):
        recv = self.receiver()
        self.daemon([self.hook(
            "h", "hd/+", "http://%s:%d/hook" % (HOST, recv.port),
            headers={"X-Dev": "{payload.h}"})])
        c = self.client(client_id="hdr")
        self.publish_many(c, [
            ("hd/x", b'{"seq": 0, "h": "a\\r\\nInjected: 1"}'),
            ("hd/x", b'{"seq": 1, "h": "b\\nInjected: 2"}'),
            ("hd/x", b'{"seq": 2, "h": "c\\u0000Injected: 3"}'),
            ("hd/x", b'{"seq": 3, "h": "fine"}')])
        reqs = recv.wait_requests(1, timeout=10)
        self.wait_drained()
        time.sleep(0.3)
        reqs = recv.requests()
        self.assertEqual([(seq_of(r), r["hdr"]["x-dev"]) for r in reqs],
                         [(3, "fine")])
        self.assertFalse([r for r in reqs if "injected" in r["hdr"]])
        dead = self.dead_rows()
        self.assertEqual([json.loads(d["body"])["payload"]["seq"]
                          for d in dead], [0, 1, 2])
        for d in dead:
            self.assertIsNone(d["status"])
            self.assertRegex(d["last_error"], "CR|LF|NUL")

    def test_removed_route_rows_stay_unsent_and_reported(self):
        hold = self.hold_port()
        url = "http://%s:%d/hook" % (HOST, hold.port)
        br = self.daemon([self.hook("gone", "g/+", url),
                          self.hook("kept", "k/+", url + "/k")])
        c = self.client(client_id="gone")
        self.publish_many(c, [("g/x", b'{"seq": %d}' % i) for i in range(3)])
        rules = os.path.join(self.workdir, "broker-rules.json")
        with open(rules) as f:
            obj = json.load(f)
        obj["rules"] = [r for r in obj["rules"] if r["name"] != "gone"]
        with open(rules, "w") as f:
            json.dump(obj, f)
        line = ("deliver: route gone/webhook is not configured: its 3 "
                "row(s) stay in the outbox, unsent")
        for n in (1, 2):            # reported at each reload
            br.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(
                lambda: br.log_text().count(line) >= n, timeout=10),
                "reload %d not reported" % n)
        hold.release()
        recv = self.receiver(port=hold.port)
        self.publish_many(c, [("k/x", b'{"seq": 9}')])
        self.assertEqual([seq_of(r) for r in recv.wait_requests(1)], [9])
        self.wait_drained_route("kept/webhook")
        time.sleep(1.0)
        self.assertEqual([r["path"] for r in recv.requests()], ["/hook/k"])
        self.assertEqual(br.scalar("select count(*) from outbox where "
                                   "route='gone/webhook'"), 3)
        self.assertEqual(br.scalar("select count(*) from outbox_dead"), 0)

    def test_unordered_route_keeps_max_in_flight(self):
        # A receiver that takes 1 s per request: an unordered route with
        # max_in_flight 3 has exactly up to 3 requests open at once, an
        # ordered one (the default) 1.
        recv = self.receiver(args=["--delay-ms", "1000"])
        base = "http://%s:%d" % (HOST, recv.port)
        self.daemon([
            self.hook("par", "par/+", base + "/par", ordered=False,
                      max_in_flight=3),
            self.hook("seq", "seq/+", base + "/seq")])
        c = self.client(client_id="par")
        self.publish_many(c, [("par/x", b'{"seq": %d}' % i)
                              for i in range(9)] +
                          [("seq/x", b'{"seq": %d}' % i) for i in range(3)])
        self.wait_drained(timeout=30)
        time.sleep(0.3)
        for path, want in (("/par", 3), ("/seq", 1)):
            reqs = recv.requests(path)
            self.assertEqual(sorted(seq_of(r) for r in reqs),
                             list(range(9 if path == "/par" else 3)))
            most = max(sum(1 for o in reqs
                           if o["t_start"] <= r["t_start"] < o["t_end"])
                       for r in reqs)
            self.assertEqual(most, want, "requests open at once on " + path)
        self.assertEqual([seq_of(r) for r in recv.requests("/seq")],
                         [0, 1, 2])

    def test_retry_max_age_dead_letters_unsent(self):
        hold = self.hold_port()
        br = self.daemon([self.hook(
            "old", "old/+", "http://%s:%d/hook" % (HOST, hold.port),
            retry={"base_ms": 100, "cap_ms": 200, "max_age": "1s"})])
        c = self.client(client_id="old")
        self.publish_many(c, [("old/x", b'{"seq": 0}')])
        self.assertTrue(wait_until(lambda: br.scalar(
            "select count(*) from outbox_dead") == 1, timeout=10))
        d = self.dead_rows()[0]
        self.assertEqual(d["route"], "old/webhook")
        self.assertIn("max_age", d["last_error"])
        self.assertEqual(self.outbox_count(), 0)
        hold.release()
        recv = self.receiver(port=hold.port)
        time.sleep(1.0)
        self.assertEqual(recv.requests(), [])

    def test_rate_limit_spreads_requests(self):
        recv = self.receiver()
        self.daemon([self.hook(
            "slow", "rl/+", "http://%s:%d/hook" % (HOST, recv.port),
            rate_limit_per_s=5)])
        c = self.client(client_id="rl")
        self.publish_many(c, [("rl/x", b'{"seq": %d}' % i)
                              for i in range(11)])
        reqs = recv.wait_requests(11, timeout=20)
        self.assertEqual([seq_of(r) for r in reqs], list(range(11)))
        # 11 requests at 5 per second take 2 s at least (a burst of a
        # few at the start allowed): never under 1.2 s.
        spread = reqs[-1]["t_start"] - reqs[0]["t_start"]
        self.assertGreater(spread, 1.2, "11 requests in %.2f s" % spread)

    def wait_drained_route(self, route, timeout=15.0):
        self.assertTrue(wait_until(lambda: self.broker.scalar(
            "select count(*) from outbox where route='%s'" % route) == 0,
            timeout=timeout))


# ---------------------------------------------------------------------------

@mqlite_only("mqlite's /metrics counters")
class TestDropCounters(SemOutboxCase):
    """Drops and deletions README promises to count (and log)."""

    def test_qos0_to_a_subscriber_not_reading(self):
        br = self.metrics_daemon([{"name": "none", "topic": "nothing/#",
                                   "sqlite": {"table": "nothing",
                                              "columns": {"v": "{payload}"}}}])
        s = self.client(client_id="q0-slow", rcvbuf=4096)
        s.subscribe([("q0/t", 0)])
        pub = self.client(client_id="q0-pub")
        n, payload = 1000, b"d" * 8000      # 8 MB: over the output bound
        for i in range(0, n, 100):
            pub.send(b"".join(publish_pkt("q0/t", b"%06d" % k + payload)
                              for k in range(i, i + 100)), timeout=60)
        pub.ping(timeout=30)                # every publish handled
        dropped = self.metric("mqlite_qos0_dropped_total")
        self.assertGreater(dropped, 0)
        got = []
        while True:
            p = s.quiet(2.0)
            if p is None:
                break
            got.append(int(p.payload[:6]))
        self.assertEqual(got, sorted(got), "order kept")
        self.assertEqual(len(got) + dropped, n,
                         "received %d + dropped %d != published %d"
                         % (len(got), dropped, n))
        self.assertIn("client q0-slow: dropping QoS 0 (client not reading) "
                      "message on q0/t", br.log_text())
        self.assertEqual(self.metric("mqlite_qos0_dropped_total"), dropped)

    def test_max_queued_overflow(self):
        br = self.daemon([], start=False)
        self.mport = free_port()
        metrics_on(br, self.mport)
        with open(br.conf_path) as f:
            cfg = json.load(f)
        cfg["limits"] = {"max_queued": 10, "max_inflight": 5}
        with open(br.conf_path, "w") as f:
            json.dump(cfg, f)
        br.start()
        s = self.client(client_id="mq-sub", clean=False)
        s.subscribe([("mq/t", 1)])
        s.disconnect()
        pub = self.client(client_id="mq-pub")
        self.publish_many(pub, [("mq/t", b"%d" % i) for i in range(30)])
        self.assertEqual(self.metric("mqlite_queue_full_dropped_total"), 20)
        self.assertIn("client mq-sub: dropping queued (max_queued reached) "
                      "message on mq/t", br.log_text())
        self.assertTrue(wait_until(lambda: br.scalar(
            "select count(*) from session_msgs") == 10, timeout=5))
        s = self.client(connect=False)
        self.assertTrue(s.connect("mq-sub", clean=False).session_present)
        got = s.collect(10)
        self.assertEqual([p.payload for p in got],
                         [b"%d" % i for i in range(10)])
        self.assertIsNone(s.quiet(1.0))

    def test_outbox_drop_oldest(self):
        hold = self.hold_port()
        br = self.metrics_daemon([self.hook(
            "r", "t/+", "http://%s:%d/hook" % (HOST, hold.port),
            retry={"base_ms": 50, "cap_ms": 200})],
            outbox={"max_bytes": "32KB", "overflow": "drop_oldest"})
        n = 200
        c = self.client(client_id="drop")
        self.publish_many(c, [("t/x", b'{"seq": %d, "pad": "%s"}'
                               % (i, b"p" * 400)) for i in range(n)])
        left = br.scalar("select count(*) from outbox")
        self.assertLess(left, n)
        logged = sum(int(m) for m in re.findall(
            r"dropped the ([0-9]+) oldest row\(s\) of route r/webhook",
            br.log_text()))
        self.assertEqual(logged, n - left)
        self.assertEqual(self.metric("mqlite_webhook_dropped_total",
                                     "r/webhook"), n - left)


    def test_retention_max_age_deletions(self):
        br = self.daemon([], start=False)
        with open(br.conf_path) as f:
            cfg = json.load(f)
        cfg["database"]["retention"] = {"max_age": "1h"}
        with open(br.conf_path, "w") as f:
            json.dump(cfg, f)
        br.start()          # creates the database
        br.stop()
        now = int(time.time() * 1000)
        br.query("with recursive n(i) as (select 1 union all select i + 1 "
                 "from n where i < 1500) insert into messages (received_ms, "
                 "topic, qos, retain, payload) select %d - 7200000 + i, "
                 "'old/t', 0, 0, 'stale' from n" % now)
        self.mport = free_port()
        metrics_on(br, self.mport)
        br.start()
        self.assertTrue(wait_until(lambda: br.count() == 0, timeout=20))
        self.assertEqual(self.metric("mqlite_retention_pruned_rows_total",
                                     "max_age"), 1500)
        # Logged at most once per 10 s: the lines add up to every row.
        logged = [0]

        def total():
            logged[0] = sum(int(m) for m in re.findall(
                r"retention: deleted ([0-9]+) rows past max_age "
                r"\(messages [0-9]+\)", br.log_text()))
            return logged[0] >= 1500
        wait_until(total, timeout=15, interval=0.2)
        self.assertEqual(logged[0], 1500)

    def test_rows_the_database_refuses_counted(self):
        br = self.daemon([{"name": "strict", "topic": "st/#",
                           "sqlite": {"table": "strict",
                                      "columns": {"v": "{payload.v}"}}}],
                         start=False)
        br.query("create table strict (v integer check (v > 0))")
        self.mport = free_port()
        metrics_on(br, self.mport)
        br.start()
        c = self.client(client_id="strict")
        self.publish_many(c, [("st/x", b'{"v": %d}' % v)
                              for v in (5, -1, 7, -2, -3)])
        self.assertEqual(br.query("select group_concat(v) from strict"),
                         "5,7")
        self.assertEqual(br.scalar("select count(*) from rejected where "
                                   "rule='strict'"), 3)
        self.assertEqual(self.metric("mqlite_rule_rejected_total",
                                     "strict"), 3)
        self.assertEqual(self.metric("mqlite_rule_written_total",
                                     "strict"), 2)
        self.assertIn("rule strict: row for st/x rejected", br.log_text())


if __name__ == "__main__":
    unittest.main()
