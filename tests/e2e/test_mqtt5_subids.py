# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 Subscription Identifiers (3.8.2.1.2, 3.3.2.3.8): a SUBSCRIBE's
identifier is kept with each of its subscriptions and sent on the PUBLISH
packets they bring, several when several overlapping subscriptions match,
none to a 3.1.1 client; a re-subscribe replaces or clears it; retained
messages carry the new subscription's; it survives a restart with a
persistent session; 0 or two of them are a Protocol Error. Raw 5.0 sockets
byte-exact, and python3-paho-mqtt in MQTTv5 mode."""

import queue

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqlite_harness import (HOST, MOSQUITTO, PINGREQ_PKT, PINGRESP, PUBACK, PUBLISH,
                            SUBACK, E2ETestCase, mqlite_only, mstr,
                            wait_until)
from mqtt5_util import (DISCONNECT, P_RECEIVE_MAXIMUM, P_SESSION_EXPIRY,
                        P_SUB_ID_AVAILABLE,
                        P_SUBSCRIPTION_ID, ack5, closing_packets, connect_v5,
                        disconnect5, expect5, opts, props, publish5, read5,
                        skipped5, subscribe5)


class SubIdCase(E2ETestCase):

    def v5(self, cid, **kw):
        c = self.client(connect=False)
        ca = connect_v5(c, cid, **kw)
        self.assertEqual(ca.reason, 0, ca)
        return c

    def sub(self, c, filters, sid=None, pid=1):
        """SUBSCRIBE filters [(filter, options)] with identifier sid."""
        pr = props((P_SUBSCRIPTION_ID, sid)) if sid is not None else None
        c.send(subscribe5(pid, filters, pr))
        a = expect5(c, SUBACK)
        self.assertEqual(a.pid, pid)
        for code in a.codes:
            self.assertLess(code, 0x80, a)

    def pub(self, topic, payload, qos=1, retain=False):
        p = self.v5("%s-pub" % self._testMethodName[:30])
        p.send(publish5(topic, payload, qos=qos, pid=1, retain=retain))
        if qos:
            expect5(p, PUBACK)
        p.close()

    def ids(self, m):
        return m.props.get(P_SUBSCRIPTION_ID, [])

    def publishes(self, c):
        """Every PUBLISH that arrives on c before a PINGRESP (acked)."""
        out = [p for p in skipped5(c) if p.type == PUBLISH]
        c.send(PINGREQ_PKT)
        for _ in range(100):
            p = read5(c)
            if p.type == PINGRESP:
                return out
            if p.type == PUBLISH:
                out.append(p)
                if p.qos == 1:
                    c.send(ack5(PUBACK, p.pid))
        raise AssertionError("no PINGRESP")


class TestSubIds(SubIdCase):

    def test_connack_announces_available(self):
        c = self.client(connect=False)
        ca = connect_v5(c, "si-connack")
        # Absent means available too (Mosquitto does not send it).
        self.assertEqual(ca.props.get(P_SUB_ID_AVAILABLE, 1), 1)

    def test_one_id(self):
        c = self.v5("si-one")
        self.sub(c, [("si/one/#", opts(1))], sid=7)
        self.pub("si/one/a", b"x")
        m = expect5(c, PUBLISH)
        self.assertEqual((m.topic, m.payload), ("si/one/a", b"x"))
        self.assertEqual(self.ids(m), [7])
        c.send(ack5(PUBACK, m.pid))

    def test_big_id_and_no_id(self):
        c = self.v5("si-big")
        self.sub(c, [("si/big/a", opts(0))], sid=268435455)
        self.sub(c, [("si/big/b", opts(0))], pid=2)
        self.pub("si/big/a", b"a", qos=0)
        self.pub("si/big/b", b"b", qos=0)
        got = {m.topic: m for m in self.publishes(c)}
        self.assertEqual(self.ids(got["si/big/a"]), [268435455])
        self.assertNotIn(P_SUBSCRIPTION_ID, got["si/big/b"].props)

    def test_overlapping_subscriptions_give_each_id(self):
        c = self.v5("si-ov")
        self.sub(c, [("si/ov/#", opts(1))], sid=1)
        self.sub(c, [("si/ov/+", opts(1))], sid=2, pid=2)
        self.sub(c, [("si/+/x", opts(1))], pid=3)
        self.pub("si/ov/x", b"both")
        got = self.publishes(c)
        if MOSQUITTO:
            # 3.3.4 allows a PUBLISH per matching subscription, each with
            # its own identifier: Mosquitto sends three.
            self.assertEqual(sorted(i for m in got for i in self.ids(m)),
                             [1, 2])
            return
        # mqlite sends one, with both identifiers.
        self.assertEqual(len(got), 1, got)
        self.assertEqual(sorted(self.ids(got[0])), [1, 2])
        # Only the "#" one matches a deeper topic.
        self.pub("si/ov/x/y", b"one")
        got = self.publishes(c)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(self.ids(got[0]), [1])

    def test_one_packet_gives_its_id_to_each_filter(self):
        c = self.v5("si-pkt")
        self.sub(c, [("si/pkt/a", opts(0)), ("si/pkt/b", opts(0))], sid=33)
        self.pub("si/pkt/a", b"a", qos=0)
        self.pub("si/pkt/b", b"b", qos=0)
        got = self.publishes(c)
        self.assertEqual(sorted(m.topic for m in got),
                         ["si/pkt/a", "si/pkt/b"])
        for m in got:
            self.assertEqual(self.ids(m), [33], m)

    def test_resubscribe_changes_then_clears(self):
        c = self.v5("si-re")
        self.sub(c, [("si/re/t", opts(1))], sid=5)
        self.sub(c, [("si/re/t", opts(1))], sid=9, pid=2)
        self.pub("si/re/t", b"changed")
        got = self.publishes(c)
        self.assertEqual([self.ids(m) for m in got], [[9]])
        self.sub(c, [("si/re/t", opts(1))], pid=3)
        self.pub("si/re/t", b"cleared")
        got = self.publishes(c)
        self.assertEqual(len(got), 1, got)
        self.assertNotIn(P_SUBSCRIPTION_ID, got[0].props)

    def test_v311_subscriber_gets_none(self):
        c5 = self.v5("si-mixed5")
        self.sub(c5, [("si/mix/t", opts(0))], sid=4)
        c3 = self.client(client_id="si-mixed3")
        c3.subscribe([("si/mix/t", 0)])
        self.pub("si/mix/t", b"hello", qos=0)
        m3 = c3.recv_publish()
        # A 3.1.1 PUBLISH has no properties: topic then payload, exactly.
        self.assertEqual(m3.body, mstr("si/mix/t") + b"hello")
        m5 = expect5(c5, PUBLISH)
        self.assertEqual(self.ids(m5), [4])

    def test_retained_carries_the_new_subscriptions_id(self):
        self.pub("si/ret/a", b"kept", retain=True)
        c = self.v5("si-ret")
        self.sub(c, [("si/ret/#", opts(1))], sid=3)
        m = expect5(c, PUBLISH)
        self.assertTrue(m.retain)
        self.assertEqual(self.ids(m), [3])
        c.send(ack5(PUBACK, m.pid))
        # A second, overlapping subscription: its retained copy carries
        # its own id only.
        self.sub(c, [("si/ret/+", opts(1))], sid=4, pid=2)
        m = expect5(c, PUBLISH)
        self.assertTrue(m.retain)
        self.assertEqual(self.ids(m), [4])
        c.send(ack5(PUBACK, m.pid))

    def test_shared_subscription_id(self):
        c = self.v5("si-sh")
        self.sub(c, [("$share/g/si/sh/#", opts(1))], sid=8)
        self.pub("si/sh/a", b"s")
        got = self.publishes(c)
        self.assertEqual([self.ids(m) for m in got], [[8]])

    @mqlite_only("identifiers of a queued message taken when it is sent")
    def test_queued_message_takes_ids_at_delivery(self):
        # Receive Maximum 1: the second message waits in the queue while
        # the first is unacknowledged; the subscription changes meanwhile.
        c = self.v5("si-q", prop=props((P_RECEIVE_MAXIMUM, 1)))
        self.sub(c, [("si/q/t", opts(1))], sid=5)
        self.pub("si/q/t", b"first")
        self.pub("si/q/t", b"second")
        m1 = expect5(c, PUBLISH)
        self.assertEqual((m1.payload, self.ids(m1)), (b"first", [5]))
        self.sub(c, [("si/q/t", opts(1))], sid=6, pid=2)
        c.send(ack5(PUBACK, m1.pid))
        m2 = expect5(c, PUBLISH)
        self.assertEqual((m2.payload, self.ids(m2)), (b"second", [6]))
        c.send(ack5(PUBACK, m2.pid))

    def test_id_zero_refused(self):
        c = self.v5("si-zero")
        c.send(subscribe5(1, [("si/zero", 0)], props((P_SUBSCRIPTION_ID, 0))))
        got = [(p.type, p.reason) for p in closing_packets(c)]
        # 3.3.2.3.8: a Protocol Error. Mosquitto 2.0 calls it malformed.
        self.assertEqual(got, [(DISCONNECT, 0x81 if MOSQUITTO else 0x82)])

    def test_paho_subscription_identifier(self):
        q = queue.Queue()
        done = queue.Queue()
        cl = mqtt.Client(client_id="si-paho", protocol=mqtt.MQTTv5)
        cl.on_message = lambda c, u, m: q.put(m)
        cl.on_subscribe = lambda c, u, mid, codes, p=None: done.put(codes)
        cl.on_connect = lambda c, u, f, rc, p=None: done.put(rc)
        cl.connect(HOST, self.broker.port, keepalive=30)
        cl.loop_start()
        try:
            self.assertEqual(done.get(timeout=10), 0)
            sp = Properties(PacketTypes.SUBSCRIBE)
            sp.SubscriptionIdentifier = 42
            cl.subscribe("si/paho/#", options=SubscribeOptions(qos=1),
                         properties=sp)
            codes = done.get(timeout=10)
            self.assertEqual([int(getattr(x, "value", x)) for x in codes],
                             [1])
            sp = Properties(PacketTypes.SUBSCRIBE)
            sp.SubscriptionIdentifier = 43
            cl.subscribe("si/paho/+", options=SubscribeOptions(qos=1),
                         properties=sp)
            done.get(timeout=10)
            self.pub("si/paho/t", b"p")
            m = q.get(timeout=10)
            self.assertEqual(m.payload, b"p")
            ids = list(m.properties.SubscriptionIdentifier)
            if MOSQUITTO:
                # One message per subscription there (see above).
                ids += q.get(timeout=10).properties.SubscriptionIdentifier
            self.assertEqual(sorted(ids), [42, 43])
            self.assertTrue(q.empty() or MOSQUITTO)
        finally:
            cl.disconnect()
            cl.loop_stop()


class TestSubIdsPersisted(SubIdCase):

    @mqlite_only("reads the sessions table and restarts the daemon")
    def test_kept_across_restart(self):
        ex = props((P_SESSION_EXPIRY, 3600))
        c = self.v5("si-keep", clean=False, prop=ex)
        self.sub(c, [("si/keep/#", opts(1))], sid=11)
        self.sub(c, [("si/keep/+", opts(1))], pid=2)
        c.send(disconnect5())
        closing_packets(c)
        wait_until(lambda: self.broker.rows(
            "select subs from sessions where client_id = 'si-keep'"), 10)
        row = self.broker.rows("select subs from sessions where "
                               "client_id = 'si-keep'")
        self.assertIn('"id":11', row[0][0])
        self.assertEqual(row[0][0].count('"id"'), 1, row)
        # Queued while offline, delivered after the restart.
        self.pub("si/keep/q", b"queued")
        self.broker.restart()
        c = self.v5("si-keep", clean=False, prop=ex)
        m = expect5(c, PUBLISH)
        self.assertEqual(m.payload, b"queued")
        self.assertEqual(self.ids(m), [11])
        c.send(ack5(PUBACK, m.pid))
        self.pub("si/keep/live", b"live")
        got = self.publishes(c)
        self.assertEqual([(m.payload, self.ids(m)) for m in got],
                         [(b"live", [11])])

    @mqlite_only("writes a sessions row of the old form")
    def test_old_row_without_id_loads(self):
        ex = props((P_SESSION_EXPIRY, 3600))
        c = self.v5("si-old", clean=False, prop=ex)
        self.sub(c, [("si/old/#", opts(1))])
        c.send(disconnect5())
        closing_packets(c)
        wait_until(lambda: self.broker.rows(
            "select subs from sessions where client_id = 'si-old'"), 10)
        row = self.broker.rows("select subs from sessions where "
                               "client_id = 'si-old'")
        self.assertEqual(row[0][0], '[{"filter":"si/old/#","qos":1}]')
        self.broker.restart()
        c = self.v5("si-old", clean=False, prop=ex)
        self.pub("si/old/t", b"o")
        got = self.publishes(c)
        self.assertEqual(len(got), 1, got)
        self.assertNotIn(P_SUBSCRIPTION_ID, got[0].props)


if __name__ == "__main__":
    import unittest
    unittest.main()

