# SPDX-License-Identifier: Apache-2.0
"""Subscription bounds with the default limits: limits.max_subscriptions
(1,000 per session; beyond it the filter gets SUBACK 0x80 and the session
keeps working), at most 200 topic levels in a filter, and repeated filters
in one SUBSCRIBE: one subscription (the last QoS wins) and one retained
walk, so a retained message is sent once, not once per repeat. A client
that resubscribes to '#' over thousands of retained topics without reading
is paused and its retained QoS 0 copies dropped (counted), while another
client's QoS 1 publishes are all acknowledged and stored."""

import unittest

from exhaust_util import ExhaustCase, send_until_blocked
from mqlite_harness import mqlite_only, publish_pkt, subscribe_pkt

FAIL = 0x80


class TestSubscriptionBounds(ExhaustCase):

    @mqlite_only("limits.max_subscriptions (Mosquitto has no such bound)")
    def test_max_subscriptions_per_session(self):
        br = self.start()
        c = self.client(client_id="many")
        for k in range(10):
            codes = c.subscribe([("s/%d/%d" % (k, i), 1) for i in range(100)])
            self.assertEqual(codes, [1] * 100)
        codes = c.subscribe([("s/over/1", 0), ("s/0/0", 0), ("s/over/2", 1)])
        self.assertEqual(codes, [FAIL, 0, FAIL])
        self.assertEqual(self.metric("mqlite_subscriptions_refused_total"),
                         2)
        self.assertIn("limits.max_subscriptions reached", br.log_text())
        # The subscriptions granted still deliver; unsubscribing frees room.
        p = self.client(client_id="pub")
        p.publish("s/9/99", b"hello", qos=1)
        self.assertEqual(c.recv_publish().payload, b"hello")
        c.unsubscribe(["s/0/1"])
        self.assertEqual(c.subscribe([("s/over/1", 1)]), [1])
        # Another session has its own 1,000.
        self.assertEqual(self.client(client_id="other").subscribe(
            [("s/0/0", 0)]), [0])
        self.assert_serving()

    @mqlite_only("topic level bound")
    def test_filter_levels(self):
        self.start()
        c = self.client(client_id="deep")
        ok = "/".join(["a"] * 199) + "/#"
        deep = "/".join(["+"] * 201)
        self.assertEqual(c.subscribe([(ok, 0), (deep, 0)]), [0, FAIL])
        self.assert_serving()

    @mqlite_only("Mosquitto 2 sends the retained messages once per "
                 "repeated filter")
    def test_repeated_filter_is_one_subscription_one_retained_walk(self):
        self.start()
        p = self.client(client_id="pub")
        p.publish("r/one", b"kept", qos=1, retain=True)
        c = self.client(client_id="rep")
        codes = c.subscribe([("r/#", 0), ("r/#", 1), ("r/#", 1)])
        self.assertEqual(codes, [0, 1, 1])
        first = c.recv_publish()
        self.assertEqual((first.topic, first.payload), ("r/one", b"kept"))
        self.assertEqual(first.qos, 1)
        self.assertIsNone(c.quiet(0.5), "retained message sent again")
        # One subscription: a new publish arrives once.
        p.publish("r/two", b"live", qos=1)
        self.assertEqual(c.recv_publish().payload, b"live")
        self.assertIsNone(c.quiet(0.5), "delivered twice")


    @mqlite_only("mqlite's output bound and its counters")
    def test_resubscribe_flood_over_retained(self):
        br = self.start()
        p = self.client(client_id="fill")
        p.send(b"".join(publish_pkt("ret/%d" % i, b"v" * 100, retain=True)
                        for i in range(3000)), timeout=60)
        p.ping(timeout=30)
        self.assertEqual(self.metric("mqlite_retained"), 3000)
        h = self.hostile("resub")
        flood = b"".join(subscribe_pkt(i + 1, [("#", 0)]) for i in range(64))
        sent, blocked = send_until_blocked(h.sock, flood, 64 << 20)
        self.assertTrue(blocked, "the flooder was never paused")
        good = self.client(client_id="good")
        for i in range(50):
            good.publish("good/t", b"g%d" % i, qos=1, timeout=20)
        br.wait_count(50, "topic='good/t'")
        self.assertGreaterEqual(self.metric("mqlite_qos0_dropped_total"),
                                3000)
        self.assertGreaterEqual(self.metric("mqlite_output_pauses_total"), 1)
        self.assertLess(br.rss_kb(), 64 * 1024)
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
