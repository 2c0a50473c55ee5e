# SPDX-License-Identifier: Apache-2.0
"""Malformed and forbidden MQTT 5.0 packets against the real daemon: every
refused form of the codec fixtures (tests/fixtures/packets/gen_v5.py, 64
byte-exact forms) plus broker-level ones, each answered with the reason
code the standard names, in a CONNACK for a CONNECT and in a DISCONNECT
after it, then the connection closed; the broker keeps serving and its
RSS does not grow over many repetitions. The server DISCONNECT reasons
of the session layer (taken over, packet too large, receive maximum,
keepalive, shutdown) are here too."""

import importlib.util
import os
import socket
import struct
import sys
import time

from mqlite_harness import (CONNACK, HERE, HOST, MOSQUITTO, PUBLISH, SUBACK,
                            Client, E2ETestCase, mqlite_only, packet)
from mqtt5_util import (DISCONNECT, P_RECEIVE_MAXIMUM, PUBREC, closing_packets,
                        connect5, connect_v5, expect5, props, publish5, read5,
                        subscribe5, opts)

CONNECT_T, CONNACK_T, SUBACK_T, UNSUBACK_T = 1, 2, 9, 11


def load_fixtures():
    """(name, expected reason, bytes) of every refused 5.0 fixture."""
    path = os.path.join(HERE, "..", "fixtures", "packets", "gen_v5.py")
    spec = importlib.util.spec_from_file_location("gen_v5", path)
    mod = importlib.util.module_from_spec(spec)
    sys.dont_write_bytecode = True
    spec.loader.exec_module(mod)
    out = []
    for name, result, _what, data in mod.FIXTURES:
        if result == "OK":
            continue
        reason = int(result, 16)
        # Packets only a server sends: the type itself is the error.
        if data[0] >> 4 in (CONNACK_T, SUBACK_T, UNSUBACK_T):
            reason = 0x82
        out.append((name, reason, data))
    return out


# Broker-level forms: (name, expected reason, bytes sent after CONNECT).
EXTRA = [
    ("second_connect", 0x82, connect5("again")),
    ("publish_qos3", 0x81, packet(PUBLISH, 0x06, struct.pack("!H", 1) +
                                  b"a" + struct.pack("!H", 1) + props())),
    ("publish_dup_qos0", 0x81, packet(PUBLISH, 0x08, struct.pack("!H", 1) +
                                      b"a" + props())),
    ("subscribe_flags_0", 0x81, packet(8, 0, struct.pack("!H", 1) + props() +
                                       struct.pack("!H", 1) + b"a\x00")),
    ("pubrel_flags_0", 0x81, packet(6, 0, struct.pack("!H", 1))),
    ("reserved_type_0", 0x81, b"\x00\x00"),
    ("alias_never_set", 0x82, packet(PUBLISH, 0, struct.pack("!H", 0) +
                                        props((0x23, 1)) + b"x")),
    ("disconnect_adds_expiry", 0x82, packet(DISCONNECT, 0, b"\x00" +
                                            props((0x11, 60)))),
    ("auth_success", 0x82, b"\xf0\x00"),
    ("auth_continue", 0x82, packet(15, 0, b"\x18" + props((0x15, "SCRAM")))),
    ("too_large", 0x95, publish5("big", b"x" * 5000)),
    ("subscribe_empty_filter", 0x81, packet(8, 2, struct.pack("!H", 1) +
                                            props() + b"\x00\x00\x00")),
]


def refused(port, data, after_connect=None):
    """Sends data on a fresh connection (after a valid 5.0 CONNECT unless
    data is a CONNECT, or if after_connect); returns [(type, reason)] read
    until the close."""
    c = Client(port)
    if after_connect is None:
        after_connect = data[0] >> 4 != CONNECT_T
    try:
        if after_connect:
            ca = connect_v5(c, "mal-%d" % os.getpid())
            assert ca.reason == 0, ca
        c.send(data)
        return [(p.type, p.reason) for p in closing_packets(c, 10)]
    except AssertionError as e:
        return [("still open", str(e)[:120])]
    finally:
        c.close()


@mqlite_only("reason codes checked against the codec's fixtures")
class TestMalformed5(E2ETestCase):
    auto_start = False

    def setUp(self):
        E2ETestCase.setUp(self)
        # A small ASan quarantine, so RSS reflects what the daemon holds.
        self.broker = self.start_broker(
            limits={"max_packet_bytes": 4096},
            env={"ASAN_OPTIONS": "quarantine_size_mb=1:detect_leaks=1"})
        self.forms = [f + (None,) for f in load_fixtures()] + \
            [f + (True,) for f in EXTRA]

    def expected(self, reason, data, after):
        first = data[0] >> 4 == CONNECT_T and not after
        return [(CONNACK if first else DISCONNECT, reason)]

    def test_each_form_gets_its_reason(self):
        self.assertGreaterEqual(len(self.forms), 40)
        wrong = []
        for name, reason, data, after in self.forms:
            got = refused(self.broker.port, data, after)
            if got != self.expected(reason, data, after):
                wrong.append("%s: got %r, want 0x%02x" % (name, got,
                                                          reason))
        self.assertFalse(wrong, "\n".join(wrong))
        self.assert_serving()

    def test_repetitions_do_not_grow_rss(self):
        port = self.broker.port
        for _name, _reason, data, after in self.forms:       # warm up
            refused(port, data, after)
        base = self.broker.rss_kb()
        reps = 10
        for _ in range(reps):
            for _name, _reason, data, after in self.forms:
                refused(port, data, after)
        grown_mb = (self.broker.rss_kb() - base) / 1024.0
        sys.stderr.write("\nrss: %d kB after warm-up, %+.1f MB after %d "
                         "refused packets\n"
                         % (base, grown_mb, reps * len(self.forms)))
        self.assertLess(grown_mb, 8, "RSS grew by %.1f MB" % grown_mb)
        self.assert_serving()


class TestServerDisconnect(E2ETestCase):
    limits = {"receive_maximum": 2, "max_packet_bytes": 4096}

    @mqlite_only("Mosquitto 2.0.11 closes without a DISCONNECT")
    def test_session_taken_over(self):
        a = self.client(connect=False)
        connect_v5(a, "dup-id")
        b = self.client(connect=False)
        self.assertEqual(connect_v5(b, "dup-id").reason, 0)
        self.assertEqual([(p.type, p.reason) for p in closing_packets(a)],
                         [(DISCONNECT, 0x8E)])

    @mqlite_only("limits.max_packet_bytes")
    def test_packet_too_large(self):
        c = self.client(connect=False)
        ca = connect_v5(c, "big")
        self.assertEqual(ca.props[0x27], 4096)
        c.send(publish5("big", b"x" * 5000, qos=1, pid=1))
        self.assertEqual([(p.type, p.reason) for p in closing_packets(c)],
                         [(DISCONNECT, 0x95)])
        self.assert_serving()

    @mqlite_only("limits.receive_maximum")
    def test_receive_maximum_exceeded(self):
        c = self.client(connect=False)
        ca = connect_v5(c, "rmax")
        self.assertEqual(ca.props[P_RECEIVE_MAXIMUM], 2)
        # Two QoS 2 publishes never released: the third is one too many.
        for pid in (1, 2):
            c.send(publish5("rmax/%d" % pid, b"x", qos=2, pid=pid))
            self.assertEqual(expect5(c, PUBREC).pid, pid)
        c.send(publish5("rmax/3", b"x", qos=2, pid=3))
        self.assertEqual([(p.type, p.reason) for p in closing_packets(c)],
                         [(DISCONNECT, 0x93)])
        self.assert_serving()

    def test_keepalive_timeout(self):
        c = self.client(connect=False)
        connect_v5(c, "ka", keepalive=1)
        t0 = time.monotonic()
        pk = closing_packets(c, 10)
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        if not MOSQUITTO:
            self.assertEqual([(p.type, p.reason) for p in pk],
                             [(DISCONNECT, 0x8D)])

    @mqlite_only("SIGTERM drain of mqlite")
    def test_shutdown(self):
        c = self.client(connect=False)
        connect_v5(c, "bye")
        c.send(publish5("bye/t", b"x", qos=1, pid=4))
        self.assertEqual(expect5(c, 4).pid, 4)
        old = self.client(client_id="bye-311")
        self.assertEqual(self.broker.stop(), 0)
        self.assertEqual([(p.type, p.reason) for p in closing_packets(c)],
                         [(DISCONNECT, 0x8B)])
        # A 3.1.1 client is closed without a DISCONNECT (3.1.1 has none).
        self.assertTrue(old.wait_closed())
        self.assertEqual(old.backlog, [])

    @mqlite_only("Mosquitto 2.0.11 closes without a DISCONNECT")
    def test_reason_string_follows_request_problem_info(self):
        for rpi, want in ((None, True), (1, True), (0, False)):
            with self.subTest(rpi=rpi):
                c = self.client(connect=False)
                pr = props() if rpi is None else props((0x17, rpi))
                connect_v5(c, "rpi-%s" % rpi, prop=pr)
                c.send(b"\xf0\x00")
                pk = closing_packets(c)
                self.assertEqual([p.type for p in pk], [DISCONNECT])
                self.assertEqual(0x1F in pk[0].props, want, pk)


@mqlite_only("limits.input_budget")
class TestQuotaDisconnect(E2ETestCase):
    limits = {"input_budget": "256KB"}

    def test_input_budget_shed_gets_0x97(self):
        """Four 5.0 clients each send 100 KB of a 200 KB publish: past the
        256 KB budget the ones waiting longest are closed, each told 0x97
        first; a client sending whole packets is still served."""
        from mqlite_harness import varint
        senders = []
        for i in range(4):
            c = self.client(connect=False)
            connect_v5(c, "shed-%d" % i)
            body_len = 200 * 1000
            c.send(bytes([PUBLISH << 4]) + varint(body_len) +
                   struct.pack("!H", 1) + b"s" + b"\0" * (100 * 1000))
            senders.append(c)
            time.sleep(0.05)
        got = []
        for c in senders:
            try:
                got.append([(p.type, p.reason)
                            for p in closing_packets(c, 2)])
            except AssertionError:
                pass            # still open: not shed
        self.assertGreaterEqual(len(got), 1)
        for pk in got:
            self.assertEqual(pk, [(DISCONNECT, 0x97)])
        self.assert_serving()
