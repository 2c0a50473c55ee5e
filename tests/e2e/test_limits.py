# SPDX-License-Identifier: Apache-2.0
"""Configured bounds: max_packet_bytes, max_connections, max_inflight
(backpressure without loss) and max_queued (a subscriber that never reads
does not make the broker grow without bound)."""

import sys
import time
import unittest

from mqlite_harness import (MOSQUITTO, PUBACK, PUBCOMP, PUBREC, PUBREL,
                            Client, Closed, E2ETestCase, ack_pkt, mqlite_only,
                            publish_pkt, wait_until)


class TestMaxPacket(E2ETestCase):
    limits = {"max_packet_bytes": 1024}

    def test_under_limit_accepted(self):
        c = self.client(client_id="mp-ok")
        c.publish("mp/ok", b"x" * 900, qos=1)
        c.ping()
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='mp/ok'"), 1)

    def test_over_limit_closes(self):
        c = self.client(client_id="mp-big")
        try:
            c.send(publish_pkt("mp/big", b"x" * 2000, qos=1, pid=1))
        except OSError:
            pass
        self.assert_closed(c)
        self.assertFalse([p for p in c.backlog if p.type == PUBACK])
        self.assert_serving()
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='mp/big'"), 0)

    def test_over_limit_header_only_closes(self):
        # Only the fixed header announcing 1 MB: closed without waiting for
        # the body.
        c = self.client(client_id="mp-hdr")
        c.send(b"\x30\x80\x80\x40")
        self.assert_closed(c, timeout=3)
        self.assert_serving()

    def test_over_limit_connect_closes(self):
        c = self.client(connect=False)
        from mqlite_harness import connect_pkt
        c.send(connect_pkt("big-" + "x" * 3000))
        self.assert_closed(c)
        self.assert_serving()


class TestMaxConnections(E2ETestCase):
    limits = {"max_connections": 5}

    def try_connect(self, cid):
        """True when a connection gets CONNACK 0 and stays usable."""
        try:
            c = Client(self.broker.port, timeout=3)
        except OSError:
            return False
        self.clients.append(c)
        try:
            p = c.connect(cid, expect_rc=None)
            if p.rc != 0:
                return False
            c.ping(timeout=2)
            return c
        except (Closed, TimeoutError, OSError):
            return False

    def test_limit_enforced_and_recovers(self):
        held = [self.try_connect("mc-%d" % i) for i in range(5)]
        self.assertTrue(all(held), "the first 5 connections must work")
        extra = self.try_connect("mc-extra")
        self.assertFalse(extra, "a 6th connection was accepted")
        for c in held:
            c.ping()            # existing clients unaffected
        held[0].disconnect()
        held[1].abort()
        ok = wait_until(lambda: self.try_connect("mc-after"), timeout=5,
                        interval=0.1)
        self.assertTrue(ok, "no connection accepted after two closed")


class TestSlowSubscriber(E2ETestCase):
    limits = {"max_queued": 100, "max_inflight": 10}
    # A small store queue, so that its contents (bounded by item count,
    # not bytes) do not mask subscriber-queue growth.
    database = {"queue_items": 500}

    def start_broker(self, **kw):
        # A small ASan quarantine so freed messages do not count as growth.
        kw.setdefault("env", {"ASAN_OPTIONS": "detect_leaks=1:"
                              "abort_on_error=0:quarantine_size_mb=8"})
        return super().start_broker(**kw)

    def test_never_reading_subscriber_bounded(self):
        subs = []
        for i, q in enumerate((0, 1, 2)):
            s = self.client(client_id="slow-%d" % i, rcvbuf=4096)
            s.subscribe([("slow/t", q)])
            subs.append(s)
        probe = self.client(client_id="slow-probe")
        pub = self.client(client_id="slow-pub")
        payload = b"p" * 4000
        worst_ping = [0.0]

        def ping_probe():
            t0 = time.monotonic()
            probe.ping(timeout=10)
            worst_ping[0] = max(worst_ping[0], time.monotonic() - t0)

        # Phase 1: 20,000 QoS 0 publishes (80 MB): QoS 0 to a subscriber
        # whose output is full is dropped, so this must not accumulate.
        rss0 = self.broker.rss_kb()
        chunk = b"".join(publish_pkt("slow/t", payload) for _ in range(500))
        for i in range(40):
            pub.send(chunk, timeout=60)
            ping_probe()
        pub.ping(timeout=30)
        rss1 = self.broker.rss_kb()
        # Phase 2: 10,000 QoS 1 publishes (40 MB): the QoS 1/2 subscribers
        # hold at most max_inflight + max_queued of them.
        pid = 0
        for i in range(100):
            batch = []
            for _ in range(100):
                pid += 1
                batch.append(publish_pkt("slow/t", payload, qos=1, pid=pid))
            pub.send(b"".join(batch), timeout=60)
            for _ in range(100):
                pub.expect(PUBACK, 60)
            ping_probe()
        rss2 = self.broker.rss_kb()
        sys.stderr.write("rss: start %d kB, after QoS 0 %+d kB, after QoS 1 "
                         "%+d kB; worst ping %.3f s\n"
                         % (rss0, rss1 - rss0, rss2 - rss1, worst_ping[0]))
        self.assertLess(rss1 - rss0, 48 * 1024, "QoS 0 phase: RSS grew "
                        "from %d kB to %d kB" % (rss0, rss1))
        self.assertLess(rss2 - rss1, 24 * 1024, "QoS 1 phase: RSS grew "
                        "from %d kB to %d kB" % (rss1, rss2))
        self.assertLess(worst_ping[0], 5.0, "broker unresponsive")
        fresh = self.client(client_id="slow-fresh")
        fresh.publish("slow/other", b"still-serving", qos=1)
        fresh.ping()
        if not MOSQUITTO:
            self.assertEqual(self.broker.wait_count(30000, "topic='slow/t'",
                                                    timeout=60), 30000)


class TestInflight(E2ETestCase):
    limits = {"max_inflight": 5}

    def test_pipelined_qos1_beyond_window_no_loss(self):
        sub = self.client(client_id="if-sub")
        sub.subscribe([("if/t", 1)])
        pub = self.client(client_id="if-pub")
        n = 500
        pub.send(b"".join(publish_pkt("if/t", b"%d" % i, qos=1, pid=i + 1)
                          for i in range(n)))
        acks = [pub.expect(PUBACK, 30).pid for _ in range(n)]
        self.assertEqual(acks, list(range(1, n + 1)))
        got = sub.collect(n, timeout=60)
        self.assertEqual([p.payload for p in got],
                         [b"%d" % i for i in range(n)])
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='if/t'"), n)

    @mqlite_only("Mosquitto drops deliveries of QoS 2 pipelined past its "
                 "inflight limit")
    def test_pipelined_qos2_beyond_window_no_loss(self):
        sub = self.client(client_id="if2-sub")
        sub.subscribe([("if2/t", 2)])
        pub = self.client(client_id="if2-pub")
        n = 300
        pub.send(b"".join(publish_pkt("if2/t", b"%d" % i, qos=2, pid=i + 1)
                          for i in range(n)))
        recs = []
        for _ in range(n):
            r = pub.expect(PUBREC, 30)
            recs.append(r.pid)
            pub.send(ack_pkt(PUBREL, r.pid))
        for _ in range(n):
            pub.expect(PUBCOMP, 30)
        self.assertEqual(recs, list(range(1, n + 1)))
        got = sub.collect(n, timeout=60)
        self.assertEqual([p.payload for p in got],
                         [b"%d" % i for i in range(n)])
        self.assertEqual(self.broker.count("topic='if2/t'"), n)

    def test_outbound_window_respected(self):
        # A QoS 1 subscriber that does not ack sees at most max_inflight
        # unacknowledged publishes; acking releases the rest, in order.
        sub = self.client(client_id="ow-sub")
        sub.subscribe([("ow/t", 1)])
        pub = self.client(client_id="ow-pub")
        for i in range(30):
            pub.publish("ow/t", b"%d" % i, qos=1)
        first = []
        while True:
            p = sub.quiet(0.5)
            if p is None:
                break
            first.append(p)
        self.assertEqual(len(first), 5, "outbound window not 5: %r"
                         % first[:8])
        got = list(first)
        for p in first:
            sub.send(ack_pkt(PUBACK, p.pid))
        got += sub.collect(25, timeout=20)
        self.assertEqual([p.payload for p in got],
                         [b"%d" % i for i in range(30)])


class TestManyClients(E2ETestCase):

    def test_200_concurrent_clients(self):
        cs = [self.client(client_id="many-%d" % i) for i in range(200)]
        for i, c in enumerate(cs):
            c.send(publish_pkt("many/%d" % i, b"x", qos=1, pid=1))
        for c in cs:
            self.assertEqual(c.expect(PUBACK, 20).pid, 1)
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic like 'many/%'"), 200)


if __name__ == "__main__":
    unittest.main()
