# SPDX-License-Identifier: Apache-2.0
"""The goal of the limits, measured with the default settings: 100 hostile
clients run every attack of the other test_exhaust_* files at once (10
floods each of PINGREQ, PUBREL and SUBSCRIBE without reading, 20 half-sent
1 MB packets, 35 connections that send one byte of a packet and stop, all
with keepalive 0, 10 publishers of new retained topics until the retained
bounds refuse them, 5 persistent sessions left behind with '#'
subscriptions) while one well-behaved QoS 1
client publishes. The daemon stays under 64 MB RSS, every one of the good
client's publishes is acknowledged and stored, and its publish->PUBACK p99
is measured and printed. The goal is a p99 of 50 ms on a quiet machine;
the assertion (5 s) only has to hold for a sanitizer build on a loaded,
shared 2-core runner, so it cannot flake there; the release figure is
measured by 'make bench-hostile' (contrib/bench/hostile.sh, which runs the
Hostile mix below from contrib/bench/hostile.py, in a process of its own)."""

import os
import select
import socket
import threading
import time
import unittest

from exhaust_util import ExhaustCase, p99, partial_publish
from mqlite_harness import (PINGREQ_PKT, PUBREL, ack_pkt, connect_pkt,
                            mqlite_only, publish_pkt, subscribe_pkt, HOST)

RSS_LIMIT_KB = 64 * 1024
ATTACK_S = float(os.environ.get("E2E_GOAL_SECONDS", "20"))
GOOD_MSGS = 400
ONE_SHOT = ("partial", "header", "none")


class Hostile:
    """One raw connection that sends what next_chunk() gives and never
    reads (tiny receive buffer)."""

    def __init__(self, port, cid, kind, n, keepalive=60, clean=True):
        self.kind = kind
        self.n = n
        self.i = 0
        self.pending = b""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((HOST, port))
        self.sock.sendall(connect_pkt(cid, clean=clean, keepalive=keepalive))
        self.sock.setblocking(False)
        self.dead = False
        n_chunks = 1 if kind in ONE_SHOT else 40
        self.chunks = [self.make_chunk(j) for j in range(n_chunks)]

    def make_chunk(self, i):
        k, n = self.kind, self.n
        if k == "ping":
            return PINGREQ_PKT * 8192
        if k == "pubrel":
            return b"".join(ack_pkt(PUBREL, (i * 512 + j) % 65535 + 1)
                            for j in range(512))
        if k == "subscribe":
            return b"".join(subscribe_pkt((i * 64 + j) % 65535 + 1,
                                          [("h/%d/%d/%d" % (n, i, j), 1)])
                            for j in range(64))
        if k == "partial":
            return partial_publish("p/%d" % n, 1000000, 990000)
        if k == "header":
            return b"\x30"
        if k == "retain":
            return b"".join(publish_pkt("r/%d/%d/%d" % (n, i, j),
                                        b"R" * 2048, retain=True)
                            for j in range(32))
        return b""

    def next_chunk(self):
        """Chunks are made before the attack starts, so the test's own CPU
        goes to sending, not to building packets (the good client's thread
        shares the interpreter). One-shot kinds send their chunk once."""
        if self.kind in ONE_SHOT:
            if self.i:
                return b""
            self.i = 1
            return self.chunks[0]
        c = self.chunks[self.i % len(self.chunks)]
        self.i += 1
        return c

    def pump(self):
        if self.dead:
            return
        if not self.pending:
            self.pending = self.next_chunk()
            if not self.pending:
                return
        try:
            sent = self.sock.send(self.pending)
            self.pending = self.pending[sent:]
        except BlockingIOError:
            pass
        except OSError:
            self.dead = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@mqlite_only("the 64 MB goal of the limits")
class TestExhaustGoal(ExhaustCase):

    def test_hundred_hostile_clients(self):
        br = self.start()
        port = br.port
        mix = [("ping", 10), ("pubrel", 10), ("subscribe", 10),
               ("partial", 20), ("retain", 10), ("header", 35)]
        if os.environ.get("E2E_GOAL_MIX"):
            mix = [(k, int(v)) for k, v in
                   (x.split(":") for x in
                    os.environ["E2E_GOAL_MIX"].split(","))]
        hostile = []
        for kind, count in mix:
            for n in range(count):
                hostile.append(Hostile(port, "%s-%d" % (kind, n), kind, n,
                                       keepalive=0 if kind in
                                       ("partial", "header") else 60))
        # Five more leave persistent sessions subscribed to '#' behind:
        # 100 hostile clients in all.
        for n in range(5):
            h = Hostile(port, "left-%d" % n, "none", n, clean=False)
            h.sock.setblocking(True)
            h.sock.sendall(subscribe_pkt(1, [("#", 1)]))
            h.close()
        stop = threading.Event()
        peak = [0]

        def attack():
            end = time.monotonic() + ATTACK_S
            while not stop.is_set() and time.monotonic() < end:
                socks = [h.sock for h in hostile if not h.dead]
                select.select([], socks, [], 0.05)
                for h in hostile:
                    h.pump()
                peak[0] = max(peak[0], br.rss_kb())

        t = threading.Thread(target=attack)
        t.start()
        good = self.client(client_id="good")
        lat = []
        try:
            time.sleep(min(3.0, ATTACK_S / 4))
            for i in range(GOOD_MSGS):
                t0 = time.monotonic()
                good.publish("good/t", b"g%d" % i, qos=1, timeout=10)
                lat.append(time.monotonic() - t0)
                peak[0] = max(peak[0], br.rss_kb())
            t.join(ATTACK_S + 30)
        finally:
            stop.set()
            t.join(30)
        peak[0] = max(peak[0], br.rss_kb())
        m = self.metrics()
        print("\n  100 hostile clients for %.0f s: peak RSS %.1f MB; good "
              "client %d QoS 1 publishes, p50 %.1f ms, p99 %.1f ms, max "
              "%.1f ms" % (ATTACK_S, peak[0] / 1024.0, len(lat),
                           sorted(lat)[len(lat) // 2] * 1000,
                           p99(lat) * 1000, max(lat) * 1000))
        for k in ("output_pauses", "input_pauses", "input_shed",
                  "stall_closed", "subscriptions_refused",
                  "retained_refused", "store_share_pauses", "qos0_dropped",
                  "queue_full_dropped"):
            key = "mqlite_%s_total" % k
            print("  %s %d" % (key, m.get(key, 0)))
        print("  mqlite_retained %d, mqlite_retained_bytes %d"
              % (m["mqlite_retained"], m["mqlite_retained_bytes"]))
        self.assertLess(peak[0], RSS_LIMIT_KB)
        self.assertLess(p99(lat), 5.0)
        self.assertGreaterEqual(m["mqlite_output_pauses_total"], 1)
        self.assertGreaterEqual(m["mqlite_input_shed_total"], 1)
        self.assertGreaterEqual(m["mqlite_subscriptions_refused_total"], 1)
        br.wait_count(GOOD_MSGS, "topic='good/t'")
        for h in hostile:
            h.close()
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
