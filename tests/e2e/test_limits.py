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
        """The client when the connection gets CONNACK 0 and answers a
        PINGREQ; None when it is refused: the socket closed, or a CONNACK
        refusal followed by the close. Neither within 10 s (a hang) fails
        the test: a refusal must be prompt."""
        try:
            c = Client(self.broker.port, timeout=10)
        except ConnectionRefusedError:
            return None
        self.clients.append(c)
        try:
            p = c.connect(cid, expect_rc=None)
        except (Closed, ConnectionResetError, BrokenPipeError):
            return None
        except TimeoutError:
            self.fail("connection %s neither accepted nor refused in 10 s"
                      % cid)
        if p.rc != 0:
            self.assertTrue(c.wait_closed(10), "CONNACK refusal %d without "
                            "closing the connection" % p.rc)
            return None
        c.ping(timeout=10)
        return c

    def test_limit_enforced_and_recovers(self):
        held = [self.try_connect("mc-%d" % i) for i in range(5)]
        self.assertTrue(all(held), "the first 5 connections must work")
        for i in range(3):
            extra = self.try_connect("mc-extra-%d" % i)
            self.assertIsNone(extra, "a 6th connection was accepted")
        for c in held:
            c.ping()            # existing clients unaffected
        held[0].disconnect()
        held[1].abort()
        ok = wait_until(lambda: self.try_connect("mc-after"), timeout=10,
                        interval=0.1)
        self.assertTrue(ok, "no connection accepted after two closed")


class TestSlowSubscriber(E2ETestCase):
    limits = {"max_queued": 100, "max_inflight": 10}
    # A small store queue, so that its contents (bounded by item count,
    # not bytes) do not mask subscriber-queue growth.
    database = {"queue_items": 500}
    # After the warm-up every bounded buffer is full: the subscriber
    # queues (max_inflight + max_queued of 4 KB each), the store queue,
    # SQLite's page cache. Sending 80 MB of QoS 0 and then 40 MB of QoS 1
    # past three subscribers that never read may then grow the broker's
    # RSS by allocator slack only; a leak of a tenth of the messages, or
    # one subscriber queue without a bound, is more than this.
    GROWTH_KB = 8 * 1024

    def start_broker(self, **kw):
        # A 1 MB ASan quarantine: freed messages held back by ASan must
        # not look like growth, nor hide it.
        kw.setdefault("env", {"ASAN_OPTIONS": "detect_leaks=1:"
                              "abort_on_error=0:quarantine_size_mb=1"})
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
        pid = [0]

        def ping_probe():
            t0 = time.monotonic()
            probe.ping(timeout=10)
            worst_ping[0] = max(worst_ping[0], time.monotonic() - t0)

        def qos0(chunks):
            chunk = b"".join(publish_pkt("slow/t", payload)
                             for _ in range(500))
            for _ in range(chunks):
                pub.send(chunk, timeout=60)
                ping_probe()
            pub.ping(timeout=30)

        def qos1(batches):
            for _ in range(batches):
                batch = []
                for _ in range(100):
                    pid[0] += 1
                    batch.append(publish_pkt("slow/t", payload, qos=1,
                                             pid=pid[0] % 65535 + 1))
                pub.send(b"".join(batch), timeout=60)
                for _ in range(100):
                    pub.expect(PUBACK, 60)
                ping_probe()

        # Warm-up: 10,000 QoS 0 and 1,000 QoS 1 publishes fill every
        # bounded buffer and cache once.
        qos0(20)
        qos1(10)
        rss0 = self.broker.rss_kb()
        # Phase 1: 20,000 QoS 0 publishes (80 MB): QoS 0 to a subscriber
        # whose output is full is dropped, so this must not accumulate.
        qos0(40)
        rss1 = self.broker.rss_kb()
        # Phase 2: 10,000 QoS 1 publishes (40 MB): the QoS 1/2 subscribers
        # hold at most max_inflight + max_queued of them.
        qos1(100)
        rss2 = self.broker.rss_kb()
        sys.stderr.write("rss: after warm-up %d kB, after QoS 0 %+d kB, "
                         "after QoS 1 %+d kB; worst ping %.3f s\n"
                         % (rss0, rss1 - rss0, rss2 - rss1, worst_ping[0]))
        self.assertLess(rss1 - rss0, self.GROWTH_KB, "QoS 0 phase: RSS "
                        "grew from %d kB to %d kB" % (rss0, rss1))
        self.assertLess(rss2 - rss1, self.GROWTH_KB, "QoS 1 phase: RSS "
                        "grew from %d kB to %d kB" % (rss1, rss2))
        self.assertLess(worst_ping[0], 5.0, "broker unresponsive")
        fresh = self.client(client_id="slow-fresh")
        fresh.publish("slow/other", b"still-serving", qos=1)
        fresh.ping()
        if not MOSQUITTO:
            self.assertEqual(self.broker.wait_count(41000, "topic='slow/t'",
                                                    timeout=60), 41000)


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
