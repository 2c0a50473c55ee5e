# SPDX-License-Identifier: Apache-2.0
"""
Backpressure, not loss: a publisher that sends large payloads faster than
the database takes them is paused by the store queue's byte bound
(database.queue_bytes), so the daemon's memory stays bounded, and every
message it accepted still becomes a row.
"""

import os
import socket
import sys
import threading
import time
import unittest

from mqlite_harness import (E2ETestCase, Client, HOST, connect_pkt,
                            publish_pkt, mqlite_only, wait_until)

COUNT = 6000
SIZE = 16 * 1024


@mqlite_only("store queue byte bound")
class TestStoreBackpressure(E2ETestCase):
    auto_start = False
    needs_db = True

    def test_large_payload_flood_is_paused_not_dropped(self):
        # A small ASan quarantine, so RSS reflects what the daemon holds.
        br = self.start_broker(
            database={"queue_bytes": "1MB", "durability": "full"},
            env={"ASAN_OPTIONS": "quarantine_size_mb=1:detect_leaks=1"})
        base = br.rss_kb()
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], br.rss_kb())
                except OSError:
                    return
                time.sleep(0.02)

        t = threading.Thread(target=sample)
        t.start()
        s = socket.create_connection((HOST, br.port), timeout=60)
        try:
            s.sendall(connect_pkt("flood"))
            payload = b"z" * SIZE
            chunk = b"".join(publish_pkt("flood/t", payload, 0)
                             for _ in range(100))
            deadline = time.monotonic() + 120
            for _ in range(COUNT // 100):
                self.assertLess(time.monotonic(), deadline)
                s.sendall(chunk)
            s.sendall(b"\xe0\x00")      # DISCONNECT
            self.assertTrue(wait_until(
                lambda: br.count("topic='flood/t'") == COUNT, timeout=120),
                "only %d of %d rows" % (br.count("topic='flood/t'"), COUNT))
        finally:
            done.set()
            t.join()
            s.close()
        grown_mb = (peak[0] - base) / 1024.0
        sys.stderr.write("rss: %d kB at start, peak %+.1f MB\n"
                         % (base, grown_mb))
        # ~94 MB were sent; without the bound the queue alone could hold
        # them all. With a 1 MB bound the daemon grows by that, SQLite's
        # page cache (2 MB), the WAL index, one read buffer and the 1 MB
        # ASan quarantine: about 7 MB, bounded here at 16 MB.
        self.assertLess(grown_mb, 16, "RSS grew by %.1f MB" % grown_mb)
        self.assertEqual(br.count("topic='flood/t' and length(payload)=%d"
                                  % SIZE), COUNT)


if __name__ == "__main__":
    unittest.main()
