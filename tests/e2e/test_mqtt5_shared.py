# SPDX-License-Identifier: Apache-2.0
"""Shared subscriptions seen by MQTT 5.0 clients (raw sockets): the
CONNACK announces them, a malformed share name gets SUBACK 0x8F, No Local
on a share is a protocol error, and the members of a group share the
messages in the 5.0 form."""

from mqlite_harness import (CONNACK, PINGREQ_PKT, PINGRESP, PUBACK, SUBACK,
                            E2ETestCase, mqlite_only)
from mqtt5_util import (P_SHARED_AVAILABLE, ack5, closing_packets,
                        connect_v5, expect5, opts, publish5, read5,
                        subscribe5)

PUBLISH = 3


class TestShared5(E2ETestCase):

    def test_connack_announces_shared_subscriptions(self):
        c = self.client(connect=False)
        ca = connect_v5(c, "sh5-ann")
        self.assertEqual(ca.type, CONNACK)
        # Absent means available too (3.2.2.3.13).
        self.assertEqual(ca.props.get(P_SHARED_AVAILABLE, 1), 1)

    def test_members_share_the_messages(self):
        members = []
        for i in range(2):
            m = self.client(connect=False)
            connect_v5(m, "sh5-m%d" % i)
            m.send(subscribe5(1, [("$share/g/sh5/#", opts(1))]))
            self.assertEqual(expect5(m, SUBACK).codes, [1])
            members.append(m)
        pub = self.client(connect=False)
        connect_v5(pub, "sh5-pub")
        n = 10
        for i in range(n):
            pub.send(publish5("sh5/t", b"%d" % i, qos=1, pid=i + 1))
            expect5(pub, PUBACK)
        got = []
        for m in members:
            while True:
                try:
                    p = read5(m, 2.0)
                except TimeoutError:
                    break
                self.assertEqual((p.type, p.topic, p.qos),
                                 (PUBLISH, "sh5/t", 1))
                got.append(int(p.payload))
                m.send(ack5(PUBACK, p.pid))
        self.assertEqual(sorted(got), list(range(n)))

    @mqlite_only("Mosquitto closes the connection for a malformed share name")
    def test_malformed_share_name_gets_0x8f(self):
        c = self.client(connect=False)
        connect_v5(c, "sh5-bad")
        c.send(subscribe5(2, [("$share//a", opts(1)), ("$share/g", opts(1)),
                              ("$share/g/ok", opts(1))]))
        s = expect5(c, SUBACK)
        self.assertEqual((s.pid, s.codes), (2, [0x8F, 0x8F, 1]))
        c.send(PINGREQ_PKT)
        self.assertEqual(read5(c).type, PINGRESP)

    @mqlite_only("Mosquitto 2.0.11 accepts No Local on a shared subscription")
    def test_no_local_on_a_share_is_a_protocol_error(self):
        c = self.client(connect=False)
        connect_v5(c, "sh5-nolocal")
        c.send(subscribe5(3, [("$share/g/x", opts(1, no_local=True))]))
        pk = closing_packets(c)
        self.assertEqual([(p.type, p.reason) for p in pk], [(14, 0x82)])
        self.assert_serving()


if __name__ == "__main__":
    import unittest
    unittest.main()
