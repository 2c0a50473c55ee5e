# SPDX-License-Identifier: Apache-2.0
"""limits.input_budget and the partial-packet stall end to end. Bytes of
packets not received whole yet are bounded over all connections together:
past the budget, connections holding a partial packet are no longer read
and the one that waited longest is closed, while a client sending small
complete packets goes on being served (its QoS 1 publishes acknowledged and
stored). A connection that sends part of a packet and stops is closed
after stall_timeout even with keepalive 0 (Mosquitto keeps such a
connection forever)."""

import socket
import time
import unittest

from exhaust_util import ExhaustCase, is_closed, partial_publish
from mqlite_harness import mqlite_only

PACKET = 1000 * 1000            # announced remaining length (< 1 MB)
PART = 900 * 1000               # bytes actually sent of it


@mqlite_only("limits.input_budget and limits.stall_timeout")
class TestInputBudget(ExhaustCase):

    def partial_senders(self, n, part=PART, keepalive=60):
        out = []
        for i in range(n):
            c = self.hostile("half-%d" % i, keepalive=keepalive)
            c.sock.setblocking(True)
            c.sock.settimeout(10)
            try:
                c.sock.sendall(partial_publish("half/%d" % i, PACKET, part))
            except OSError:
                pass        # closed by the broker while sending: fine
            out.append(c)
        return out

    def test_budget_spent_by_partial_packets(self):
        """input_budget 4 MB, 12 clients each 900 KB into a 1 MB publish:
        at most about 4 MB are held, the longest waiting are closed, and a
        QoS 1 publisher keeps being acknowledged and stored."""
        br = self.start(limits={"input_budget": "4MB"})
        good = self.client(client_id="good")
        rss0 = br.rss_kb()
        senders = self.partial_senders(12)
        for i in range(50):
            good.publish("good/t", b"m%d" % i, qos=1, timeout=5)
        self.wait_metric("mqlite_input_shed_total", 1)
        closed = sum(1 for c in senders if is_closed(c.sock, timeout=0.5))
        rss1 = br.rss_kb()
        print("\n  %d of 12 partial senders closed; RSS %d -> %d KB"
              % (closed, rss0, rss1))
        self.assertGreaterEqual(closed, 7)
        self.assertLess(rss1 - rss0, 16 * 1024)
        self.assertIn("limits.input_budget", br.log_text())
        br.wait_count(50, "topic='good/t'")
        self.assert_serving()

    def test_partial_packet_closed_after_stall_timeout_keepalive_0(self):
        br = self.start(limits={"stall_timeout": "1s"})
        c, = self.partial_senders(1, part=100, keepalive=0)
        t0 = time.monotonic()
        self.assertTrue(is_closed(c.sock, timeout=10))
        took = time.monotonic() - t0
        print("\n  partial packet (keepalive 0) closed after %.1f s" % took)
        self.assertGreaterEqual(took, 0.5)
        self.assertEqual(self.metric("mqlite_stall_closed_total"), 1)
        self.assertIn("limits.stall_timeout", br.log_text())
        self.assert_serving()

    def test_slow_but_moving_packet_is_not_closed(self):
        """A packet that keeps arriving, slower than stall_timeout per
        packet but never pausing that long, is received whole."""
        br = self.start(limits={"stall_timeout": "1s"})
        c = self.client(client_id="slow")
        data = partial_publish("slow/t", 3 + 6 + 2000, 3 + 6 + 2000)
        data = data[:-1] + b"y"
        for i in range(0, len(data), 400):
            c.send(data[i:i + 400])
            time.sleep(0.4)
        c.ping()
        br.wait_count(1, "topic='slow/t'")


if __name__ == "__main__":
    unittest.main()
