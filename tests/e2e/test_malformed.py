# SPDX-License-Identifier: Apache-2.0
"""Malformed input: each form closes that one connection within a bounded
time, nothing of it is stored or delivered, and the broker still serves a
fresh client (connect, QoS 1 publish, ping; with mqlite the row is stored).
"""

import socket
import struct
import unittest

from mqlite_harness import (MOSQUITTO, E2ETestCase, connect_pkt,
                            mstr, packet, publish_pkt,
                            subscribe_pkt, unsubscribe_pkt, varint)

MAX_PACKET = 4096


def raw_publish(topic_bytes, payload=b"p", flags=0, pid=None):
    """A PUBLISH with an unchecked topic (bytes) and raw flags."""
    body = struct.pack("!H", len(topic_bytes)) + topic_bytes
    if pid is not None:
        body += struct.pack("!H", pid)
    return packet(3, flags, body + payload)


# name -> bytes sent after a valid CONNECT. The broker must close.
AFTER_CONNECT = {
    "varint_5_bytes": b"\x30\xff\xff\xff\xff\x01",
    "varint_over_limit": b"\x30" + varint(MAX_PACKET * 4) + b"\x00\x03a/b",
    "qos3": raw_publish(b"bad/q3", flags=0x06, pid=1),
    "qos1_pid0": raw_publish(b"bad/pid0", flags=0x02, pid=0),
    "qos2_pid0": raw_publish(b"bad/pid0", flags=0x04, pid=0),
    "topic_invalid_utf8": raw_publish(b"bad/\xff\xfe"),
    "topic_nul": raw_publish(b"bad/a\x00b"),
    "topic_surrogate": raw_publish(b"bad/\xed\xa0\x80"),
    "topic_overlong": raw_publish(b"bad/\xc0\xaf"),
    "topic_plus": raw_publish(b"bad/+/x"),
    "topic_hash": raw_publish(b"bad/#"),
    "topic_empty": raw_publish(b""),
    "topic_len_past_end": packet(3, 0, b"\x00\x40bad/short"),
    "subscribe_no_filter": packet(8, 2, b"\x00\x05"),
    "subscribe_flags_0": packet(8, 0, b"\x00\x05" + mstr("a/b") + b"\x00"),
    "subscribe_qos3": subscribe_pkt(5, [("a/b", 3)]),
    "subscribe_pid0": subscribe_pkt(0, [("a/b", 0)]),
    "subscribe_filter_nul": packet(8, 2, b"\x00\x05" + mstr(b"a\x00b") +
                                   b"\x00"),
    "subscribe_filter_bad_utf8": packet(8, 2, b"\x00\x05" +
                                        mstr(b"a/\xff") + b"\x00"),
    "unsubscribe_no_filter": packet(10, 2, b"\x00\x05"),
    "unsubscribe_flags_0": packet(10, 0, b"\x00\x05" + mstr("a/b")),
    "pubrel_flags_0": packet(6, 0, b"\x00\x01"),
    "second_connect": connect_pkt("again"),
    "reserved_type_0": b"\x00\x00",
    "reserved_type_15": b"\xf0\x00",
    "server_only_connack": b"\x20\x02\x00\x00",
    "server_only_suback": b"\x90\x03\x00\x01\x00",
    "pingreq_flags": b"\xc1\x00",
    "disconnect_flags": b"\xe1\x00",
    "pingreq_with_body": b"\xc0\x01\x00",
}

# Forms where Mosquitto 2.0 is lenient (it keeps the connection open or
# treats the packet otherwise); mqlite must close on all of them.
MOSQUITTO_LENIENT = {"pingreq_flags", "pingreq_with_body",
                     "server_only_suback"}


class TestMalformed(E2ETestCase):
    limits = {"max_packet_bytes": MAX_PACKET}

    def check_closes(self, name, data):
        watcher = self.client(client_id="mal-watch-" + name)
        watcher.subscribe([("#", 0)])
        c = self.client(client_id="mal-" + name)
        try:
            c.send(data)
        except OSError:
            pass                # already closed: fine
        self.assert_closed(c, timeout=5.0,
                           msg="%s: connection not closed" % name)
        # Nothing the bad client sent was delivered.
        p = watcher.quiet(0.2)
        self.assertTrue(p is None or p.topic.startswith("probe/"),
                        "%s: delivered %r" % (name, p))
        watcher.disconnect()
        self.assert_serving()
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic like 'bad/%'"), 0,
                             "%s: stored a row" % name)


def _make(name, data):
    def test(self):
        if MOSQUITTO and name in MOSQUITTO_LENIENT:
            self.skipTest("mqlite only: Mosquitto 2.0 does not close on "
                          + name)
        self.check_closes(name, data)
    test.__name__ = "test_" + name
    return test


for _name, _data in AFTER_CONNECT.items():
    setattr(TestMalformed, "test_" + _name, _make(_name, _data))


class TestMalformedStream(E2ETestCase):
    limits = {"max_packet_bytes": MAX_PACKET}

    def test_truncated_packet_then_close(self):
        c = self.client(client_id="trunc")
        full = publish_pkt("bad/trunc", b"x" * 100, qos=1, pid=3)
        c.send(full[:40])
        c.sock.shutdown(socket.SHUT_WR)
        self.assert_closed(c)
        self.assert_serving()
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='bad/trunc'"), 0)

    def test_truncated_connect_then_close(self):
        c = self.client(connect=False)
        c.send(connect_pkt("trunc-connect")[:9])
        c.sock.shutdown(socket.SHUT_WR)
        self.assert_closed(c)
        self.assert_serving()

    def test_garbage_first_bytes(self):
        c = self.client(connect=False)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assert_closed(c)
        self.assert_serving()

    def test_varint_5_bytes_before_connect(self):
        c = self.client(connect=False)
        c.send(b"\x10\x80\x80\x80\x80\x01")
        self.assert_closed(c)
        self.assert_serving()

    def test_valid_then_malformed_in_one_segment(self):
        # The valid publish before the bad packet is processed; the bad one
        # closes the connection.
        c = self.client(client_id="mixed")
        c.send(publish_pkt("ok/mixed", b"good", qos=1, pid=1) +
               raw_publish(b"bad/#"))
        self.assert_closed(c)
        self.assert_serving()
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='ok/mixed'"), 1)

    def test_many_bad_clients_in_parallel(self):
        bad = []
        for i in range(20):
            c = self.client(client_id="par-%d" % i)
            bad.append(c)
        for i, c in enumerate(bad):
            c.send(raw_publish(b"bad/+") if i % 2 else b"\xf0\x00")
        for c in bad:
            self.assert_closed(c)
        self.assert_serving()

    def test_unsubscribe_invalid_utf8(self):
        c = self.client(client_id="unsub-bad")
        c.send(unsubscribe_pkt(4, [b"a/\xff"]))
        self.assert_closed(c)
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
