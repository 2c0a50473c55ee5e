# SPDX-License-Identifier: Apache-2.0
"""
The load generator's MQTT 5.0 mode (contrib/bench/mqbench -V 5) speaks
5.0: byte-exact against a scripted raw-socket broker in this file (the
CONNECT and PUBLISH it sends, every ack form it must accept, the reason
codes it must report), and end to end against the target broker.
"""

import json
import os
import select
import socket
import subprocess
import threading
import time
import unittest

from mqlite_harness import E2ETestCase, HOST, MOSQUITTO, build_dir, varint


def mqbench_path():
    return os.path.join(build_dir(), "contrib", "bench", "mqbench")


def prop_str(pid, s):
    return bytes([pid]) + len(s).to_bytes(2, "big") + s


class ScriptedBroker(threading.Thread):
    """Accepts one connection and answers each packet with what
    respond(self, first_byte, body) returns (bytes, possibly empty). Every
    packet received is kept in self.packets. Acks to QoS > 0 PUBLISHes may
    be held: respond returns None for a PUBLISH, and hold() answers all held
    ones once the client has been silent for 0.1 s (so a client that keeps
    more in flight than allowed is seen doing so)."""

    def __init__(self, respond, publish_ack=None):
        super().__init__(daemon=True)
        self.respond = respond
        self.publish_ack = publish_ack
        self.packets = []
        self.held = []
        self.max_held = 0
        self.error = None
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(1)
        self.lsock.settimeout(20)
        self.port = self.lsock.getsockname()[1]
        self.acks_sent = 0

    def _read(self, sock, n, deadline):
        data = b""
        while len(data) < n:
            if time.monotonic() > deadline:
                raise TimeoutError("no data")
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _packet(self, sock, deadline):
        first = self._read(sock, 1, deadline)[0]
        rem, mult = 0, 1
        for _ in range(4):
            b = self._read(sock, 1, deadline)[0]
            rem += (b & 0x7f) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first, self._read(sock, rem, deadline)

    def run(self):
        try:
            conn, _ = self.lsock.accept()
        except OSError as e:
            self.error = "accept: %s" % e
            return
        conn.settimeout(5)
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([conn], [], [], 0.1)
                if not r:
                    if self.held:
                        conn.sendall(b"".join(self.publish_ack(self, pid)
                                              for pid in self.held))
                        self.held = []
                    continue
                first, body = self._packet(conn, deadline)
                self.packets.append((first, body))
                if first >> 4 == 3 and self.publish_ack is not None and \
                        (first >> 1) & 3:
                    tl = int.from_bytes(body[:2], "big")
                    self.held.append(int.from_bytes(body[2 + tl:4 + tl],
                                                    "big"))
                    self.max_held = max(self.max_held, len(self.held))
                    continue
                out = self.respond(self, first, body)
                if out:
                    conn.sendall(out)
                if first == 0xe0:
                    break
        except (EOFError, OSError, TimeoutError) as e:
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()
            self.lsock.close()


def connack5(props=b""):
    body = b"\x00\x00" + varint(len(props)) + props
    return b"\x20" + varint(len(body)) + body


def ack(ptype, pid, tail=b""):
    body = pid.to_bytes(2, "big") + tail
    return bytes([ptype << 4 | (2 if ptype == 6 else 0)]) + \
        varint(len(body)) + body


# The 5.0 forms of an ack in turn: packet id only; with a reason code
# (0x10 No matching subscribers is a success); reason and an empty property
# block; reason and a Reason String.
FORMS = [b"", b"\x10", b"\x00\x00",
         b"\x00" + varint(5) + prop_str(0x1f, b"ok")]


def puback_forms(broker, pid):
    form = FORMS[broker.acks_sent % len(FORMS)]
    broker.acks_sent += 1
    return ack(4, pid, form)


class TestMqbenchWire(unittest.TestCase):
    """mqbench against a scripted broker: the bytes it sends, the forms it
    accepts, the errors it reports. Needs no daemon."""

    def run_bench(self, broker, *args):
        broker.start()
        p = subprocess.run(
            [mqbench_path(), "-j", "-h", HOST, "-p", str(broker.port),
             "-c", "1", "-T", "20", "-s", "5"] + list(args),
            capture_output=True, timeout=60)
        broker.join(30)
        self.assertFalse(broker.is_alive())
        out = p.stdout.decode()
        return p.returncode, json.loads(out.splitlines()[-1]), p

    def test_v5_bytes_and_ack_forms(self):
        def respond(br, first, body):
            if first == 0x10:
                # Receive Maximum 3 (below -w 20), a Maximum Packet Size,
                # a Topic Alias Maximum and a Reason String.
                return connack5(b"\x21\x00\x03" +
                                b"\x27\x00\x01\x00\x00" +
                                b"\x22\x00\x0a" + prop_str(0x1f, b"hi"))
            return b""
        br = ScriptedBroker(respond, puback_forms)
        rc, res, p = self.run_bench(br, "-V", "5", "-q", "1", "-n", "30",
                                    "-w", "20")
        self.assertEqual(rc, 0, p.stderr)
        self.assertEqual(res["status"], "ok")
        self.assertEqual(res["mqtt"], "5.0")
        self.assertEqual(res["acked"], 30)
        self.assertEqual(res["receive_max"], 3)
        self.assertEqual(res["unexpected_acks"], 0)
        pk = br.packets
        self.assertEqual(pk[0][0], 0x10)
        self.assertEqual(pk[0][1][6], 5)
        pubs = [x for x in pk if x[0] >> 4 == 3]
        self.assertEqual(len(pubs), 30)
        for first, body in pubs:
            self.assertEqual(first, 0x32)
            self.assertEqual(body[:9], b"\x00\x07bench/0")
            # Property length 0, then the payload.
            self.assertEqual(body[11:], b"\x00abcde")
        # The CONNACK's Receive Maximum, not -w, bounds the window.
        self.assertEqual(br.max_held, 3)
        self.assertEqual(br.acks_sent, 30)
        self.assertEqual(pk[-1], (0xe0, b""))

    def test_v311_unchanged(self):
        def respond(br, first, body):
            if first == 0x10:
                return b"\x20\x02\x00\x00"
            if first == 0x32:
                return ack(4, int.from_bytes(body[9:11], "big"))
            return b""
        br = ScriptedBroker(respond)
        rc, res, p = self.run_bench(br, "-q", "1", "-n", "5")
        self.assertEqual(rc, 0, p.stderr)
        self.assertEqual(res["mqtt"], "3.1.1")
        first, body = br.packets[0]
        self.assertEqual(body[:10], b"\x00\x04MQTT\x04\x02\x00\x00")
        self.assertTrue(body[12:].startswith(b"mqbench-"))
        for first, body in br.packets[1:-1]:
            self.assertEqual(first, 0x32)
            self.assertEqual(body[11:], b"abcde")   # no property length
        self.assertEqual(br.packets[-1], (0xe0, b""))

    def test_v5_connect_bytes(self):
        def respond(br, first, body):
            if first == 0x10:
                return connack5()
            return b""
        br = ScriptedBroker(respond)
        rc, res, p = self.run_bench(br, "-V", "5", "-q", "0", "-n", "3")
        self.assertEqual(rc, 0, p.stderr)
        first, body = br.packets[0]
        cid = body[13:]
        self.assertTrue(cid.startswith(b"mqbench-") and cid.endswith(b"-0"))
        # Level 5, Clean Start, keepalive 0, empty property block.
        self.assertEqual(body[:13], b"\x00\x04MQTT\x05\x02\x00\x00\x00" +
                         len(cid).to_bytes(2, "big"))
        self.assertEqual([x[0] for x in br.packets[1:4]], [0x30] * 3)
        for _, body in br.packets[1:4]:
            self.assertEqual(body, b"\x00\x07bench/0\x00abcde")
        self.assertEqual(br.packets[-1], (0xe0, b""))

    def test_v5_qos2_forms(self):
        sent = {"rec": 0, "comp": 0}

        def respond(br, first, body):
            if first == 0x10:
                return connack5()
            if first == 0x34:
                pid = int.from_bytes(body[9:11], "big")
                form = [b"", b"\x10", b"\x00\x00"][sent["rec"] % 3]
                sent["rec"] += 1
                return ack(5, pid, form)
            if first == 0x62:
                # PUBREL: the 2-byte Success form, flags 0x2.
                assert len(body) == 2, body
                form = [b"", b"\x00", FORMS[3]][sent["comp"] % 3]
                sent["comp"] += 1
                return ack(7, int.from_bytes(body, "big"), form)
            return b""
        br = ScriptedBroker(respond)
        rc, res, p = self.run_bench(br, "-V", "5", "-q", "2", "-n", "9")
        self.assertEqual(rc, 0, p.stderr)
        self.assertEqual(res["acked"], 9)
        self.assertEqual(res["unexpected_acks"], 0)
        self.assertEqual(sent, {"rec": 9, "comp": 9})
        self.assertEqual(sum(1 for f, b in br.packets if f == 0x62), 9)

    def test_v5_error_reason_is_reported(self):
        def respond(br, first, body):
            if first == 0x10:
                return connack5()
            if first == 0x32:
                br.acks_sent += 1
                pid = int.from_bytes(body[9:11], "big")
                if br.acks_sent == 3:
                    return ack(4, pid, b"\x87" + varint(9) +
                               prop_str(0x1f, b"no way"))
                return ack(4, pid)
            return b""
        br = ScriptedBroker(respond)
        rc, res, p = self.run_bench(br, "-V", "5", "-q", "1", "-n", "10",
                                    "-w", "1")
        self.assertEqual(rc, 1)
        self.assertEqual(res["status"], "error")
        self.assertIn("0x87", res["error"])
        self.assertIn("Not authorized", res["error"])
        self.assertIn("no way", res["error"])
        self.assertLess(res["acked"], 10)

    def test_v5_broker_disconnect_is_reported(self):
        def respond(br, first, body):
            if first == 0x10:
                return connack5()
            if first == 0x32:
                return b"\xe0\x01\x8b"
            return b""
        br = ScriptedBroker(respond)
        rc, res, p = self.run_bench(br, "-V", "5", "-q", "1", "-n", "10")
        self.assertEqual(rc, 1)
        self.assertIn("DISCONNECT", res["error"])
        self.assertIn("0x8b", res["error"])

    def test_v5_refused_by_a_311_broker(self):
        def respond(br, first, body):
            return b"\x20\x02\x00\x01" if first == 0x10 else b""
        br = ScriptedBroker(respond)
        rc, res, p = self.run_bench(br, "-V", "5", "-q", "1", "-n", "10")
        self.assertEqual(rc, 1)
        self.assertIn("does not speak MQTT 5.0", res["error"])


class TestMqbenchBroker(E2ETestCase):
    """mqbench -V 5 against the target broker, publishers and a QoS 1
    subscriber."""

    def test_v5_load(self):
        p = subprocess.run(
            [mqbench_path(), "-j", "-V", "5", "-h", HOST, "-p",
             str(self.broker.port), "-c", "2", "-q", "1", "-n", "1000",
             "-S", "-Q", "1", "-I", "3", "-T", "60"],
            capture_output=True, timeout=120)
        res = json.loads(p.stdout.decode().splitlines()[-1])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(res["mqtt"], "5.0")
        self.assertEqual(res["acked"], 1000)
        self.assertEqual(res["sub_received"], 1000)
        if MOSQUITTO:
            log = self.broker.log_text()
            for who in ("0", "1", "sub"):
                self.assertRegex(log, r"as mqbench-\d+-%s \(p5," % who)
        else:
            # Stored like 3.1.1 publishes: the 64-byte printable payload
            # as text, no property byte in it.
            text = "".join(chr(ord("a") + i % 26) for i in range(64))
            self.assertEqual(self.broker.count(
                "topic like 'bench/%%' and qos = 1 and retain = 0 and "
                "payload = '%s'" % text), 1000)


if __name__ == "__main__":
    unittest.main()
