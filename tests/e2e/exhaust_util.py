# SPDX-License-Identifier: Apache-2.0
"""Helpers of the exhaustion tests (test_exhaust_*.py): a broker started
with the default limits (the config names only the listener, the database
and, for mqlite, the metrics port), a reader of its /metrics counters, and
hostile senders that never read their socket. Every loop is bounded."""

import re
import select
import socket
import struct
import time
import urllib.request

from mqlite_harness import (HOST, MOSQUITTO, Broker, Client, E2ETestCase,
                            PUBLISH, free_port, varint, wait_until)

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
