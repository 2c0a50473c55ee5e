# SPDX-License-Identifier: Apache-2.0
"""Helpers of the exhaustion tests (test_exhaust_*.py): a broker started
with the default limits (the config names only the listener, the database
and, for mqlite, the metrics port), a reader of its /metrics counters,
hostile senders that never read their socket, and the mix of 100 hostile
clients that test_exhaust_goal.py and contrib/bench/hostile.py both run.
Every loop is bounded."""

import re
import select
import socket
import struct
import time
import urllib.request

from mqlite_harness import (HOST, MOSQUITTO, PINGREQ_PKT, PUBLISH, PUBREL,
                            Broker, Client, E2ETestCase, ack_pkt,
                            connect_pkt, free_port, publish_pkt,
                            subscribe_pkt, varint, wait_until)

SAMPLE = re.compile(r"^(mqlite_[a-z0-9_]+) (\S+)$")

# A small ASan quarantine, so RSS shows what the daemon holds, not what it
# freed recently.
ASAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
                            "quarantine_size_mb=0"}


class ExhaustCase(E2ETestCase):
    auto_start = False

    def start(self, limits=None, name="broker"):
        """Starts a broker with the default limits unless limits is given."""
        br = Broker(self.workdir, name=name, limits=limits, env=ASAN_ENV)
        self.mport = None
        if not MOSQUITTO:
            self.mport = free_port()
            br.update_config(metrics={"bind": HOST, "port": self.mport})
        self.brokers.append(br)
        self.broker = br
        br.start()
        if self.mport:
            self.assertTrue(wait_until(
                lambda: "/metrics" in br.log_text(), timeout=10))
        return br

    def metrics(self):
        """{name: value} of the unlabelled samples (mqlite only)."""
        url = "http://%s:%d/metrics" % (HOST, self.mport)
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = SAMPLE.match(line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def metric(self, name):
        return self.metrics().get(name, 0)

    def wait_metric(self, name, at_least, timeout=15.0):
        last = [None]

        def check():
            last[0] = self.metric(name)
            return last[0] >= at_least
        wait_until(check, timeout=timeout, interval=0.2)
        self.assertGreaterEqual(last[0], at_least, name)

    def hostile(self, client_id, keepalive=60, rcvbuf=4096):
        """A connected raw client with a tiny receive buffer that the test
        never reads again."""
        c = self.client(client_id=client_id, keepalive=keepalive,
                        rcvbuf=rcvbuf)
        c.sock.setblocking(False)
        return c


def send_until_blocked(sock, chunk, max_bytes, stall=1.5, max_time=30.0):
    """Writes chunk repeatedly on a non-blocking socket until max_bytes are
    sent, the peer takes nothing for stall seconds, or max_time passes.
    Returns (bytes sent, True if it ended blocked)."""
    sent = 0
    view = memoryview(chunk)
    off = 0
    end = time.monotonic() + max_time
    while sent < max_bytes and time.monotonic() < end:
        _, w, _ = select.select([], [sock], [], stall)
        if not w:
            return sent, True
        try:
            n = sock.send(view[off:])
        except BlockingIOError:
            continue
        except OSError:
            return sent, True
        sent += n
        off = (off + n) % len(chunk)
    return sent, False


def partial_publish(topic, total, sent):
    """The first sent bytes of a QoS 0 PUBLISH whose remaining length says
    total bytes follow the fixed header."""
    body = struct.pack("!H", len(topic)) + topic.encode()
    head = bytes([PUBLISH << 4]) + varint(total)
    return head + body + b"x" * (sent - len(body))


def p99(values):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * 0.99))]


def is_closed(sock, timeout=5.0):
    """True when the peer closed or reset sock within timeout (reads and
    drops whatever is still pending before the end)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            r, _, _ = select.select([sock], [], [], 0.2)
            if r and sock.recv(1 << 20, socket.MSG_DONTWAIT) == b"":
                return True
        except BlockingIOError:
            continue
        except OSError:
            return True
    return False


# The hostile mix: (kind, clients). With the five sessions left behind by
# start_hostile(), 100 hostile clients in all.
HOSTILE_MIX = [("ping", 10), ("pubrel", 10), ("subscribe", 10),
               ("partial", 20), ("retain", 10), ("header", 35)]
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


def start_hostile(port, mix=HOSTILE_MIX):
    """Connects the Hostile clients of mix to port and returns them; five
    more leave persistent sessions subscribed to '#' behind and close."""
    hostile = []
    for kind, count in mix:
        for n in range(count):
            hostile.append(Hostile(port, "%s-%d" % (kind, n), kind, n,
                                   keepalive=0 if kind in
                                   ("partial", "header") else 60))
    for n in range(5):
        h = Hostile(port, "left-%d" % n, "none", n, clean=False)
        h.sock.setblocking(True)
        h.sock.sendall(subscribe_pkt(1, [("#", 1)]))
        h.close()
    return hostile


def pump_hostile(hostile, wait=0.05):
    """One round of the attack: waits at most wait seconds for a writable
    socket, then lets every live client send what it can."""
    socks = [h.sock for h in hostile if not h.dead]
    if socks:
        select.select([], socks, [], wait)
    else:
        time.sleep(wait)
    for h in hostile:
        h.pump()
