# SPDX-License-Identifier: Apache-2.0
"""Sessions: persistent vs clean sessions, queueing while offline, the
session-present flag, retransmission of unacknowledged outbound QoS 1/2 on
reconnect, wills, keepalive and takeover."""

import time
import unittest

from mqlite_harness import (MOSQUITTO, PUBACK, PUBCOMP, PUBREC, PUBREL,
                            E2ETestCase, ack_pkt, connect_pkt, mqlite_only,
                            publish_pkt)

SENTINEL = "zz/sentinel"


class TestPersistentSession(E2ETestCase):

    def test_session_present_flag(self):
        c = self.client(connect=False)
        self.assertFalse(c.connect("sp-1", clean=False).session_present)
        c.subscribe([("sp/t", 1)])
        c.disconnect()
        c = self.client(connect=False)
        self.assertTrue(c.connect("sp-1", clean=False).session_present)
        c.disconnect()
        # A clean session discards the stored one ...
        c = self.client(connect=False)
        self.assertFalse(c.connect("sp-1", clean=True).session_present)
        c.disconnect()
        # ... and is not kept after it ends.
        c = self.client(connect=False)
        self.assertFalse(c.connect("sp-1", clean=False).session_present)
        c.disconnect()

    def test_queued_while_offline(self):
        s = self.client(client_id="q-sub", clean=False)
        s.subscribe([("q/1", 1), ("q/2", 2), ("q/0", 0)])
        s.disconnect()
        pub = self.client(client_id="q-pub")
        for i in range(5):
            pub.publish("q/1", b"one-%d" % i, qos=1)
            pub.publish("q/2", b"two-%d" % i, qos=2)
        s = self.client(connect=False)
        self.assertTrue(s.connect("q-sub", clean=False).session_present)
        got = s.collect(10)
        ones = [p.payload for p in got if p.topic == "q/1"]
        twos = [p.payload for p in got if p.topic == "q/2"]
        self.assertEqual(ones, [b"one-%d" % i for i in range(5)])
        self.assertEqual(twos, [b"two-%d" % i for i in range(5)])
        self.assertTrue(all(p.qos == 1 for p in got if p.topic == "q/1"))
        self.assertTrue(all(p.qos == 2 for p in got if p.topic == "q/2"))
        # Subscriptions survived: a live publish still arrives.
        pub.publish("q/1", b"live", qos=1)
        self.assertEqual(s.recv_publish().payload, b"live")

    def test_offline_queue_bounded_in_order(self):
        # max_queued is 1000 by default; this broker uses 10.
        br = self.start_broker(name="smallq", limits={"max_queued": 10})
        s = self.client(br, client_id="ovf-sub", clean=False)
        s.subscribe([("ovf/t", 1)])
        s.disconnect()
        pub = self.client(br, client_id="ovf-pub")
        for i in range(30):
            pub.publish("ovf/t", b"%d" % i, qos=1)
        s = self.client(br, connect=False)
        s.connect("ovf-sub", clean=False)
        s.subscribe([(SENTINEL, 0)])
        pub.publish(SENTINEL, b"", qos=1)
        got = [int(p.payload) for p in s.collect_until(SENTINEL)]
        self.assertGreater(len(got), 0)
        self.assertLessEqual(len(got), 10, got)
        self.assertEqual(got, sorted(got))
        if not MOSQUITTO:
            self.assertEqual(br.count("topic='ovf/t'"), 30)

    def test_clean_session_not_queued(self):
        s = self.client(client_id="cs-sub", clean=True)
        s.subscribe([("cs/t", 1)])
        s.disconnect()
        pub = self.client(client_id="cs-pub")
        pub.publish("cs/t", b"lost", qos=1)
        s = self.client(client_id="cs-sub", clean=True)
        s.subscribe([(SENTINEL, 0)])
        pub.publish(SENTINEL, b"", qos=1)
        self.assertEqual(s.collect_until(SENTINEL), [])

    def test_retransmit_unacked_qos1_with_dup(self):
        s = self.client(client_id="rt1-sub", clean=False)
        s.subscribe([("rt1/t", 1)])
        pub = self.client(client_id="rt1-pub")
        pub.publish("rt1/t", b"again", qos=1)
        first = s.recv_publish(ack=False)
        self.assertFalse(first.dup)
        s.close()
        s = self.client(connect=False)
        self.assertTrue(s.connect("rt1-sub", clean=False).session_present)
        again = s.recv_publish(ack=False)
        self.assertEqual((again.topic, again.payload, again.qos),
                         ("rt1/t", b"again", 1))
        self.assertTrue(again.dup, "retransmission without DUP")
        self.assertEqual(again.pid, first.pid)
        s.send(ack_pkt(PUBACK, again.pid))
        s.ping()
        s.disconnect()
        # Acknowledged: not sent a third time.
        s = self.client(connect=False)
        s.connect("rt1-sub", clean=False)
        s.subscribe([(SENTINEL, 0)])
        pub.publish(SENTINEL, b"", qos=1)
        self.assertEqual(s.collect_until(SENTINEL), [])

    def test_retransmit_unacked_qos2_publish(self):
        s = self.client(client_id="rt2-sub", clean=False)
        s.subscribe([("rt2/t", 2)])
        pub = self.client(client_id="rt2-pub")
        pub.publish("rt2/t", b"q2", qos=2)
        first = s.recv_publish(ack=False)
        s.close()
        s = self.client(connect=False)
        s.connect("rt2-sub", clean=False)
        again = s.recv_publish(ack=False)
        self.assertEqual((again.payload, again.qos, again.pid),
                         (b"q2", 2, first.pid))
        self.assertTrue(again.dup)
        s.auto_pubcomp = False
        s.send(ack_pkt(PUBREC, again.pid))
        rel = s.expect(PUBREL)
        self.assertEqual(rel.pid, again.pid)
        s.send(ack_pkt(PUBCOMP, rel.pid))
        s.ping()

    def test_retransmit_pubrel(self):
        s = self.client(client_id="rr-sub", clean=False)
        s.auto_pubcomp = False
        s.subscribe([("rr/t", 2)])
        pub = self.client(client_id="rr-pub")
        pub.publish("rr/t", b"x", qos=2)
        p = s.recv_publish(ack=False)
        s.send(ack_pkt(PUBREC, p.pid))
        rel = s.expect(PUBREL)
        s.close()                       # PUBREL never completed
        s = self.client(connect=False)
        s.auto_pubcomp = False
        s.connect("rr-sub", clean=False)
        rel2 = s.expect(PUBREL)
        self.assertEqual(rel2.pid, rel.pid)
        s.send(ack_pkt(PUBCOMP, rel2.pid))
        s.ping()
        self.assertIsNone(s.quiet(0.3), "message delivered again")

    def test_inbound_qos2_resend_after_reconnect_one_delivery(self):
        sub = self.client(client_id="in2-sub")
        sub.subscribe([("in2/t", 2), (SENTINEL, 0)])
        pub = self.client(client_id="in2-pub", clean=False)
        pub.send(publish_pkt("in2/t", b"exactly", qos=2, pid=42))
        pub.expect(PUBREC)
        pub.close()                          # before PUBREL
        pub = self.client(connect=False)
        self.assertTrue(pub.connect("in2-pub", clean=False).session_present)
        pub.send(publish_pkt("in2/t", b"exactly", qos=2, pid=42, dup=True))
        self.assertEqual(pub.expect(PUBREC).pid, 42)
        pub.send(ack_pkt(PUBREL, 42))
        self.assertEqual(pub.expect(PUBCOMP).pid, 42)
        pub.publish(SENTINEL, b"", qos=1)
        got = sub.collect_until(SENTINEL)
        self.assertEqual([p.payload for p in got], [b"exactly"])
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='in2/t'"), 1)


class TestWill(E2ETestCase):

    def watcher(self):
        w = self.client(client_id="will-watch")
        w.subscribe([("will/#", 1), (SENTINEL, 0)])
        return w

    def test_will_on_abnormal_close(self):
        w = self.watcher()
        c = self.client(client_id="will-a",
                        will=("will/a", b"gone", 1, False))
        c.ping()
        c.abort()
        p = w.recv_publish(timeout=5)
        self.assertEqual((p.topic, p.payload, p.qos), ("will/a", b"gone", 1))

    def test_will_on_eof_without_disconnect(self):
        w = self.watcher()
        c = self.client(client_id="will-e",
                        will=("will/e", b"eof", 0, False))
        c.close()
        p = w.recv_publish(timeout=5)
        self.assertEqual((p.topic, p.payload), ("will/e", b"eof"))

    def test_no_will_after_disconnect(self):
        w = self.watcher()
        c = self.client(client_id="will-d",
                        will=("will/d", b"should-not", 1, False))
        c.disconnect()
        time.sleep(0.2)
        pub = self.client(client_id="will-pub")
        pub.publish(SENTINEL, b"", qos=1)
        self.assertEqual(w.collect_until(SENTINEL), [])

    def test_will_on_protocol_error(self):
        w = self.watcher()
        c = self.client(client_id="will-p",
                        will=("will/p", b"proto", 0, False))
        c.send(b"\x36\x05\x00\x01a\x00\x01")    # PUBLISH with QoS 3
        self.assert_closed(c)
        p = w.recv_publish(timeout=5)
        self.assertEqual(p.payload, b"proto")

    @mqlite_only("Mosquitto 2.0 drops the will on a second CONNECT")
    def test_will_on_second_connect(self):
        w = self.watcher()
        c = self.client(client_id="will-2",
                        will=("will/2", b"second", 0, False))
        c.send(connect_pkt("will-2"))
        self.assert_closed(c)
        p = w.recv_publish(timeout=5)
        self.assertEqual(p.payload, b"second")

    def test_will_retained(self):
        c = self.client(client_id="will-r",
                        will=("will/r", b"ret", 1, True))
        c.abort()
        time.sleep(0.3)
        w = self.client(client_id="will-late")
        w.subscribe([("will/r", 1)])
        p = w.recv_publish(timeout=5)
        self.assertEqual((p.payload, p.retain), (b"ret", True))

    def test_will_on_takeover(self):
        # 3.1.1: the old connection is closed as by a network failure, so its
        # will is published.
        w = self.watcher()
        self.client(client_id="will-t", will=("will/t", b"taken", 0, False))
        self.client(client_id="will-t")
        p = w.recv_publish(timeout=5)
        self.assertEqual(p.payload, b"taken")


# Mosquitto checks keepalives coarsely (a 1 s keepalive expires after up to
# ~6 s), so its bound is looser; mqlite closes at 1.5 x keepalive.
KEEPALIVE_LATEST = 8.0 if MOSQUITTO else 3.0


class TestKeepalive(E2ETestCase):

    def test_closed_after_one_and_a_half_keepalive(self):
        c = self.client(client_id="ka-1", keepalive=1)
        t0 = time.monotonic()
        self.assert_closed(c, timeout=KEEPALIVE_LATEST + 1)
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, 1.4, "closed too early (%.2f s)" % dt)
        self.assertLessEqual(dt, KEEPALIVE_LATEST,
                             "closed too late (%.2f s)" % dt)

    def test_pings_keep_alive(self):
        c = self.client(client_id="ka-2", keepalive=1)
        for _ in range(5):
            time.sleep(0.5)
            c.ping()
        self.assertFalse(c.wait_closed(0.1))

    def test_publishes_keep_alive(self):
        c = self.client(client_id="ka-3", keepalive=1)
        for i in range(5):
            time.sleep(0.5)
            c.publish("ka/t", b"%d" % i, qos=0)
        c.ping()

    def test_keepalive_expiry_publishes_will(self):
        w = self.client(client_id="ka-watch")
        w.subscribe([("kaw/t", 0)])
        self.client(client_id="ka-4", keepalive=1,
                    will=("kaw/t", b"timeout", 0, False))
        p = w.recv_publish(timeout=KEEPALIVE_LATEST + 1)
        self.assertEqual(p.payload, b"timeout")


if __name__ == "__main__":
    unittest.main()
