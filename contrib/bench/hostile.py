#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2024 The mqlite authors.
"""hostile.py PORT SECONDS [READY_FILE]: runs the hostile mix of
tests/e2e/test_exhaust_goal.py (100 clients: PINGREQ, PUBREL and SUBSCRIBE
floods that never read, half-sent 1 MB packets, one-byte stalls, new
retained topics, persistent sessions left on '#') against 127.0.0.1:PORT
for SECONDS, in a process of its own so that the client measured beside it
(contrib/bench/mqbench) shares no interpreter with it. READY_FILE is
created once every hostile client is connected. bench.sh runs it."""

import os
import select
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "e2e"))

from mqlite_harness import subscribe_pkt  # noqa: E402
from test_exhaust_goal import Hostile  # noqa: E402

MIX = [("ping", 10), ("pubrel", 10), ("subscribe", 10), ("partial", 20),
       ("retain", 10), ("header", 35)]


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    ready = sys.argv[3] if len(sys.argv) > 3 else None
    hostile = []
    for kind, count in MIX:
        for n in range(count):
            hostile.append(Hostile(port, "%s-%d" % (kind, n), kind, n,
                                   keepalive=0 if kind in
                                   ("partial", "header") else 60))
    for n in range(5):
        h = Hostile(port, "left-%d" % n, "none", n, clean=False)
        h.sock.setblocking(True)
        h.sock.sendall(subscribe_pkt(1, [("#", 1)]))
        h.close()
    if ready:
        with open(ready, "w") as f:
            f.write("%d\n" % len(hostile))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        socks = [h.sock for h in hostile if not h.dead]
        if socks:
            select.select([], socks, [], 0.05)
        else:
            time.sleep(0.05)
        for h in hostile:
            h.pump()
    for h in hostile:
        h.close()


if __name__ == "__main__":
    main()
