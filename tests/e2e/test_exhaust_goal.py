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
same hostile mix, start_hostile() of exhaust_util.py, from
contrib/bench/hostile.py in a process of its own)."""

import os
import threading
import time
import unittest

from exhaust_util import (HOSTILE_MIX, ExhaustCase, p99, pump_hostile,
                          start_hostile)
from mqlite_harness import mqlite_only

RSS_LIMIT_KB = 64 * 1024
ATTACK_S = float(os.environ.get("E2E_GOAL_SECONDS", "20"))
GOOD_MSGS = 400


@mqlite_only("the 64 MB goal of the limits")
class TestExhaustGoal(ExhaustCase):

    def test_hundred_hostile_clients(self):
        br = self.start()
        port = br.port
        mix = HOSTILE_MIX
        if os.environ.get("E2E_GOAL_MIX"):
            mix = [(k, int(v)) for k, v in
                   (x.split(":") for x in
                    os.environ["E2E_GOAL_MIX"].split(","))]
        hostile = start_hostile(port, mix)
        stop = threading.Event()
        peak = [0]

        def attack():
            end = time.monotonic() + ATTACK_S
            while not stop.is_set() and time.monotonic() < end:
                pump_hostile(hostile)
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
