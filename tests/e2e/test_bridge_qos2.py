# SPDX-License-Identifier: Apache-2.0
"""A QoS 2 mqtt route against a real Mosquitto started by the test: the
exchange is PUBLISH, PUBREC, PUBREL, PUBCOMP, and a row leaves the outbox
only after its PUBCOMP. A small proxy between mqlite and the upstream
(loopback, a port the test picks) passes every packet but can hold back
the broker's PUBCOMPs: while it does, the rows stay in the outbox however
long the test waits; once they pass, the rows go. Then the upstream
restarts mid-stream and every row still arrives, in order, with at most a
window of duplicates. Every wait is bounded."""

import socket
import threading
import time
import unittest

from mqlite_harness import HOST, free_port, wait_until
from mosquitto_util import upstream_for
from test_bridge import BridgeCase, Counter, LoopbackServer, read_packet

WINDOW = 16
PUBREC, PUBCOMP = 5, 7


class Proxy(LoopbackServer):
    """TCP proxy from a free port to an upstream port. It reads the
    broker-to-client stream packet by packet, counts packet types, and
    keeps PUBCOMPs back while hold is set (released by release())."""

    def __init__(self, upstream_port):
        LoopbackServer.__init__(self)
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.hold = False
        self.held = []          # (client socket, packet bytes)
        self.seen = {}          # packet type -> count, broker to client
        self.socks = []
        self.start()

    def accepted(self, c):
        try:
            u = socket.create_connection((HOST, self.upstream_port), 5)
        except OSError:
            c.close()
            return
        with self.lock:
            self.socks += [c, u]
        threading.Thread(target=self._up, args=(c, u), daemon=True).start()
        threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _up(self, c, u):
        """Client to broker: bytes as they come."""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                u.sendall(d)
        except OSError:
            pass
        self._close(c, u)

    def _down(self, u, c):
        """Broker to client: whole packets, PUBCOMP held when asked."""
        try:
            while True:
                head, raw, body = read_packet(u)
                pkt = head + raw + body
                kind = head[0] >> 4
                with self.lock:
                    self.seen[kind] = self.seen.get(kind, 0) + 1
                    if kind == PUBCOMP and self.hold:
                        self.held.append((c, pkt))
                        continue
                c.sendall(pkt)
        except (EOFError, OSError):
            pass
        self._close(c, u)

    def count(self, kind):
        with self.lock:
            return self.seen.get(kind, 0)

    def nheld(self):
        with self.lock:
            return len(self.held)

    def release(self):
        with self.lock:
            self.hold = False
            held, self.held = self.held, []
        for c, pkt in held:
            try:
                c.sendall(pkt)
            except OSError:
                pass

    def close(self):
        LoopbackServer.close(self)
        with self.lock:
            socks, self.socks = self.socks, []
        self._close(*socks)


class TestBridgeQoS2(BridgeCase):
    def test_rows_leave_after_pubcomp_and_survive_upstream_restart(self):
        n, first = 2000, 40
        up = upstream_for(self)
        proxy = Proxy(up.port)
        self.addCleanup(proxy.close)
        counter = Counter(up.port, "up/#")
        counter.connect()
        self.addCleanup(counter.close)
        proxy.hold = True
        mport = free_port()
        br = self.mqlite(proxy.port, extra={"qos": 2,
                                            "max_in_flight": WINDOW},
                         metrics_port=mport)
        self.publish(br, first, prefix="a")
        # The whole window was received (PUBREC) and released (PUBREL):
        # the upstream completed it, but no PUBCOMP reached mqlite.
        self.assertTrue(wait_until(lambda: proxy.nheld() >= WINDOW, 30),
                        "PUBCOMPs held: %d, PUBRECs seen: %d"
                        % (proxy.nheld(), proxy.count(PUBREC)))
        time.sleep(1.5)
        self.assertEqual(proxy.nheld(), WINDOW)
        self.assertEqual(proxy.count(PUBREC), WINDOW)
        self.assertEqual(self.outbox_rows(br), first)
        self.assertEqual(self.metric(mport, "mqlite_bridge_acked_total"), 0)
        self.assertEqual(self.metric(mport, "mqlite_bridge_in_flight"),
                         WINDOW)
        proxy.release()
        self.assertTrue(wait_until(lambda: self.outbox_rows(br) == 0, 30),
                        "outbox not drained: %d" % self.outbox_rows(br))
        self.assertEqual(proxy.count(PUBCOMP), first)
        # The rest, with the upstream restarted while it drains.
        counter.close()
        up.stop()
        self.publish(br, n - first, prefix="b")
        up.start()
        counter = Counter(up.port, "up/#", got=counter.got)
        counter.connect()
        self.addCleanup(counter.close)
        self.assertTrue(wait_until(lambda: counter.count() >= first + 300,
                                   60), "the drain did not start")
        counter.close()
        up.stop()
        left = self.outbox_rows(br)
        up.start()
        counter = Counter(up.port, "up/#", got=counter.got)
        counter.connect()
        self.addCleanup(counter.close)
        self.assertTrue(wait_until(lambda: self.outbox_rows(br) == 0, 120),
                        "outbox not drained: %d" % self.outbox_rows(br))
        self.assertTrue(wait_until(lambda: len(set(counter.got)) >= n, 30),
                        "only %d distinct of %d arrived"
                        % (len(set(counter.got)), n))
        missing, disorder, dups = counter.verdict_of(
            ["a-%d" % i for i in range(first)] +
            ["b-%d" % i for i in range(n - first)])
        print("bridge qos 2: upstream restarted with %d rows left; %d "
              "duplicate(s)" % (left, dups))
        self.assertGreater(left, 0, "the drain was over before the "
                           "upstream restart: nothing was tested")
        self.assertEqual(missing, [])
        self.assertEqual(disorder, 0)
        # Resent after the restart: at most mqlite's window, plus what
        # the counter's own session had in flight (Paho's 20).
        self.assertLessEqual(dups, WINDOW + 20)
        self.assertEqual(self.metric(mport, "mqlite_bridge_acked_total"), n)
        self.assertGreaterEqual(proxy.count(PUBCOMP), n)


if __name__ == "__main__":
    unittest.main()
