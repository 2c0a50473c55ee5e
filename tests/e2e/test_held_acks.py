# SPDX-License-Identifier: Apache-2.0
"""
Acknowledgements held for the store's commit are bounded per connection by
limits.receive_maximum (count) and limits.held_bytes (bytes of the packets
behind them), not by the outbound window max_inflight: while a commit is
slow, a connection keeps being read until one of those bounds is reached,
then its reads pause; nothing is lost and every ack arrives after commit.

The commit is held up for real: a sqlite3 shell holds the database's write
lock (BEGIN IMMEDIATE) so the store thread waits and retries.
"""

import subprocess
import time
import unittest

from mqlite_harness import (PINGRESP, PUBACK, PINGREQ_PKT, E2ETestCase,
                            mqlite_only, publish_pkt, wait_until)


class WriteLock:
    """A sqlite3 shell holding the database's write lock until release()."""

    def __init__(self, db_path):
        self.proc = subprocess.Popen(
            ["sqlite3", db_path], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.proc.stdin.write(".timeout 5000\nBEGIN IMMEDIATE;\n"
                              "SELECT 'locked';\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        if line != "locked":
            raise AssertionError("sqlite3 could not take the lock: %r"
                                 % line)

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("COMMIT;\n.quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@mqlite_only("acks held for the store's commit")
class TestHeldAcks(E2ETestCase):
    auto_start = False

    def flood_while_locked(self, limits, count, payload):
        """Sends count QoS 1 publishes then a PINGREQ while the database is
        locked. Returns (pingresp_seen_while_locked, client)."""
        br = self.broker = self.start_broker(limits=limits)
        c = self.client(client_id="held")
        # The session and schema exist before the lock is taken.
        c.publish("held/warmup", b"w", qos=1)
        lock = WriteLock(br.db_path)
        try:
            data = b"".join(publish_pkt("held/t", payload + b"%05d" % i,
                                        qos=1, pid=i + 1)
                            for i in range(count))
            c.send(data + PINGREQ_PKT, timeout=30)
            early = []
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                p = c.quiet(0.1)
                if p is not None:
                    early.append(p)
            self.assertFalse([p for p in early if p.type == PUBACK],
                             "a PUBACK left before its commit")
            pinged = any(p.type == PINGRESP for p in early)
        finally:
            lock.release()
        acks = []
        deadline = time.monotonic() + 30
        while len(acks) < count and time.monotonic() < deadline:
            p = c.quiet(0.5)
            if p is None:
                continue
            if p.type == PUBACK:
                acks.append(p.pid)
        self.assertEqual(acks, list(range(1, count + 1)),
                         "PUBACKs missing or out of order after the commit")
        self.assertEqual(br.count("topic='held/t'"), count)
        return pinged, c

    def test_default_bound_keeps_reading_past_max_inflight(self):
        # 200 held acks is ten times max_inflight (20) and well under
        # receive_maximum (1024): the connection is still read, so its
        # PINGREQ is answered while every PUBACK waits for the commit.
        pinged, c = self.flood_while_locked({}, 200, b"x" * 20)
        self.assertTrue(pinged, "reads paused below receive_maximum")
        c.ping()
        self.assert_serving()

    def test_receive_maximum_pauses_reads(self):
        pinged, c = self.flood_while_locked({"receive_maximum": 10}, 50,
                                            b"x" * 20)
        self.assertFalse(pinged, "a connection with 10 held acks was "
                         "still read (receive_maximum 10)")
        c.ping()
        self.assert_serving()

    def test_held_bytes_pauses_reads(self):
        # 1,024 acks allowed, but 16 KB of 4 KB publishes: paused after 4.
        pinged, c = self.flood_while_locked({"held_bytes": "16KB"}, 30,
                                            b"y" * 4096)
        self.assertFalse(pinged, "a connection holding 120 KB of acked "
                         "packets was still read (held_bytes 16 KB)")
        c.ping()
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
