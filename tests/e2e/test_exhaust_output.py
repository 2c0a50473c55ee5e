# SPDX-License-Identifier: Apache-2.0
"""limits.output_bytes and limits.stall_timeout end to end, with the
default limits. A client that floods requests (PINGREQ, PUBREL, SUBSCRIBE)
and never reads the answers must not make the broker grow: once its pending
output passes output_bytes (256 KB) the broker stops reading it, so the
flooder's own socket fills and blocks; the broker's RSS stays flat, the
pause is counted in /metrics and logged, and a normal client is served
throughout. Mosquitto behaves the same (it stops reading such a peer), so
the flood tests also run against it. Such a connection is closed after
stall_timeout: 30 s by default (one test waits for it), shorter when
configured."""

import time
import unittest

from exhaust_util import ExhaustCase, is_closed, send_until_blocked
from mqlite_harness import (MOSQUITTO, PINGREQ_PKT, PUBREL, ack_pkt,
                            mqlite_only, subscribe_pkt)

FLOOD_BYTES = 64 * 1024 * 1024      # what the flooder tries to push
RSS_GROWTH_KB = 24 * 1024            # allowed growth (ASan build)


class TestOutputBound(ExhaustCase):

    def flood(self, chunk, what):
        br = self.start()
        c = self.hostile("flooder-" + what)
        time.sleep(0.2)
        rss0 = br.rss_kb()
        sent, blocked = send_until_blocked(c.sock, chunk, FLOOD_BYTES)
        rss1 = br.rss_kb()
        print("\n  %s flood: sent %.1f MB before the broker stopped "
              "reading; RSS %d -> %d KB" % (what, sent / 1048576.0, rss0,
                                           rss1))
        # mqlite stops reading such a client; Mosquitto 2.0 may read it all
        # and drop what it cannot send: for both, memory stays bounded.
        if not MOSQUITTO:
            self.assertTrue(blocked, "the broker read all %d bytes of %s "
                            "from a client that reads nothing" % (sent, what))
        self.assertLess(rss1 - rss0, RSS_GROWTH_KB)
        if not MOSQUITTO:
            self.assertGreaterEqual(self.metric("mqlite_output_pauses_total"),
                                    1)
            self.assertIn("limits.output_bytes", br.log_text())
        self.assert_serving()
        # Still bounded after serving someone else.
        self.assertLess(br.rss_kb() - rss0, RSS_GROWTH_KB)
        return c

    def test_pingreq_flood(self):
        self.flood(PINGREQ_PKT * 32768, "PINGREQ")

    def test_pubrel_flood(self):
        self.flood(b"".join(ack_pkt(PUBREL, i % 65535 + 1)
                            for i in range(16384)), "PUBREL")

    @mqlite_only("Mosquitto 2.0 grows without bound here (8 MB -> 83 MB "
                 "RSS for 35 MB of SUBSCRIBEs from a client that never reads)")
    def test_subscribe_flood(self):
        # The same filter again and again: one subscription, many SUBACKs.
        self.flood(b"".join(subscribe_pkt(i % 65535 + 1, [("flood/#", 1)])
                            for i in range(4096)), "SUBSCRIBE")


@mqlite_only("limits.stall_timeout")
class TestStallTimeout(ExhaustCase):

    def test_configured_stall_timeout_closes_flooder(self):
        br = self.start(limits={"stall_timeout": "1s"})
        c = self.hostile("stuck")
        _, blocked = send_until_blocked(c.sock, PINGREQ_PKT * 32768,
                                        FLOOD_BYTES)
        self.assertTrue(blocked)
        self.wait_metric("mqlite_stall_closed_total", 1, timeout=15)
        self.assertIn("limits.stall_timeout", br.log_text())
        self.assertTrue(is_closed(c.sock, timeout=5))
        self.assert_serving()

    def test_default_stall_timeout_holds(self):
        """Defaults: a flooder that never reads and a client that sends
        half a packet with keepalive 0 are both closed after about 30 s,
        not before; a normal client is served meanwhile."""
        br = self.start()
        t0 = time.monotonic()
        flooder = self.hostile("stuck-out")
        _, blocked = send_until_blocked(flooder.sock, PINGREQ_PKT * 32768,
                                        FLOOD_BYTES)
        self.assertTrue(blocked)
        half = self.hostile("stuck-in", keepalive=0)
        half.sock.setblocking(True)
        half.sock.sendall(b"\x30\x64\x00\x05topic")   # 100 bytes announced
        time.sleep(max(0, 15 - (time.monotonic() - t0)))
        self.assertEqual(self.metric("mqlite_stall_closed_total"), 0,
                         "closed before the 30 s default")
        self.assert_serving()
        self.wait_metric("mqlite_stall_closed_total", 2, timeout=45)
        print("\n  both stalled connections closed %.1f s after the flood "
              "began" % (time.monotonic() - t0))
        self.assertTrue(is_closed(half.sock, timeout=5))
        self.assertIn("limits.stall_timeout", br.log_text())
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
