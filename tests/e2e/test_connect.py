# SPDX-License-Identifier: Apache-2.0
"""CONNECT handling: CONNACK return codes, protocol errors around CONNECT,
client-id takeover and the connect timeout."""

import time
import unittest

from mqlite_harness import (CONNACK, MOSQUITTO, E2ETestCase, PINGREQ_PKT, connect_pkt,
                            mqlite_only, publish_pkt, subscribe_pkt)


class TestConnack(E2ETestCase):

    def test_accept_clean_session(self):
        c = self.client(connect=False)
        p = c.connect("cid-1", clean=True)
        self.assertEqual(p.rc, 0)
        self.assertFalse(p.session_present)
        c.ping()

    def test_connack_packet_bytes(self):
        c = self.client(connect=False)
        c.send(connect_pkt("cid-bytes"))
        p = c.read_raw()
        self.assertEqual(p.type, CONNACK)
        self.assertEqual(p.flags, 0)
        self.assertEqual(p.body, b"\x00\x00")

    def test_bad_protocol_level(self):
        for level in (6, 3, 0):
            with self.subTest(level=level):
                c = self.client(connect=False)
                c.send(connect_pkt("cid-lvl", level=level))
                self.assert_closed(c)
                connacks = [p for p in c.backlog if p.type == CONNACK]
                self.assertEqual(len(connacks), 1, c.backlog)
                # A level newer than 5 gets the 5.0 CONNACK layout with
                # reason 0x84 (mqlite); Mosquitto answers 3.1.1's code 1.
                want = 0x84 if level == 6 and not MOSQUITTO else 1
                self.assertEqual(connacks[0].rc, want)
        self.assert_serving()

    def test_empty_client_id_persistent_rejected(self):
        c = self.client(connect=False)
        c.send(connect_pkt("", clean=False))
        self.assert_closed(c)
        connacks = [p for p in c.backlog if p.type == CONNACK]
        self.assertEqual([p.rc for p in connacks], [2])
        self.assert_serving()

    def test_empty_client_id_clean_accepted(self):
        c = self.client(connect=False)
        p = c.connect("", clean=True)
        self.assertEqual(p.rc, 0)
        self.assertFalse(p.session_present)
        c.publish("connect/empty-id", b"x", qos=1)
        c.ping()

    def test_two_empty_ids_coexist(self):
        a = self.client(connect=False)
        a.connect("", clean=True)
        b = self.client(connect=False)
        b.connect("", clean=True)
        a.ping()
        b.ping()

    def test_username_password_anonymous_allowed(self):
        c = self.client(connect=False)
        c.connect("cid-user", username="alice", password="secret")
        c.ping()

    def test_long_client_id(self):
        c = self.client(connect=False)
        c.connect("x" * 200)
        c.ping()


class TestConnectProtocolErrors(E2ETestCase):

    def test_first_packet_not_connect(self):
        for first in (PINGREQ_PKT, publish_pkt("a/b", b"x"),
                      subscribe_pkt(1, [("a/#", 0)])):
            with self.subTest(first=first):
                c = self.client(connect=False)
                c.send(first)
                self.assert_closed(c)
                self.assertFalse([p for p in c.backlog if p.type != CONNACK],
                                 c.backlog)
        self.assert_serving()

    def test_second_connect_closes(self):
        c = self.client(client_id="cid-twice")
        c.send(connect_pkt("cid-twice"))
        self.assert_closed(c)
        self.assert_serving()

    def test_bad_protocol_name(self):
        c = self.client(connect=False)
        c.send(connect_pkt("cid-name", proto_name="MQTX"))
        self.assert_closed(c)
        self.assertFalse([p for p in c.backlog
                          if p.type == CONNACK and p.rc == 0])
        self.assert_serving()

    def test_reserved_connect_flag(self):
        c = self.client(connect=False)
        c.send(connect_pkt("cid-flag", flags=0x03))
        self.assert_closed(c)
        self.assert_serving()

    def test_will_qos_without_will_flag(self):
        c = self.client(connect=False)
        c.send(connect_pkt("cid-wq", flags=0x02 | 0x08))
        self.assert_closed(c)
        self.assert_serving()

    def test_will_qos_3(self):
        c = self.client(connect=False)
        c.send(connect_pkt("cid-w3", will=("w/t", b"x", 3, False)))
        self.assert_closed(c)
        self.assert_serving()

    def test_password_without_username(self):
        c = self.client(connect=False)
        c.send(connect_pkt("cid-pw", password="secret"))
        self.assert_closed(c)
        self.assertFalse([p for p in c.backlog
                          if p.type == CONNACK and p.rc == 0])
        self.assert_serving()

    def test_invalid_utf8_client_id(self):
        c = self.client(connect=False)
        c.send(connect_pkt(b"bad\xff\xfeid"))
        self.assert_closed(c)
        self.assertFalse([p for p in c.backlog
                          if p.type == CONNACK and p.rc == 0])
        self.assert_serving()

    def test_connect_remaining_length_short(self):
        # The client id string claims more bytes than the packet holds.
        c = self.client(connect=False)
        pkt = bytearray(connect_pkt("abcdef"))
        pkt[-7] = 0x40          # client id length 0x0040 instead of 6
        c.send(bytes(pkt))
        self.assert_closed(c)
        self.assert_serving()


class TestTakeover(E2ETestCase):

    def test_same_client_id_takes_over(self):
        old = self.client(client_id="dup-id")
        new = self.client(client_id="dup-id")
        self.assert_closed(old, msg="old connection not closed on takeover")
        new.ping()
        new.publish("takeover/t", b"x", qos=1)

    def test_takeover_keeps_persistent_session(self):
        old = self.client(client_id="dup-p", clean=False)
        old.subscribe([("takeover/p", 1)])
        new = self.client(connect=False)
        ack = new.connect("dup-p", clean=False)
        self.assertTrue(ack.session_present)
        self.assert_closed(old)
        pub = self.client()
        pub.publish("takeover/p", b"still-subscribed", qos=1)
        p = new.recv_publish()
        self.assertEqual(p.payload, b"still-subscribed")


class TestConnectTimeout(E2ETestCase):
    limits = {"connect_timeout": "1s"}

    @mqlite_only("Mosquitto has no configurable connect timeout")
    def test_silent_socket_closed(self):
        c = self.client(connect=False)
        t0 = time.monotonic()
        self.assert_closed(c, timeout=5.0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.8)
        self.assert_serving()

    @mqlite_only("Mosquitto has no configurable connect timeout")
    def test_partial_connect_closed(self):
        c = self.client(connect=False)
        c.send(connect_pkt("slow")[:5])
        self.assert_closed(c, timeout=5.0)
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
