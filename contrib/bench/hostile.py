#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2024 The mqlite authors.
"""hostile.py PORT SECONDS [READY_FILE]: runs the hostile mix of
tests/e2e/exhaust_util.py, the one test_exhaust_goal.py runs (100 clients:
PINGREQ, PUBREL and SUBSCRIBE floods that never read, half-sent 1 MB
packets, one-byte stalls, new retained topics, persistent sessions left on
'#') against 127.0.0.1:PORT for SECONDS, in a process of its own so that
the client measured beside it (contrib/bench/mqbench) shares no interpreter
with it. READY_FILE is created once every hostile client is connected.
bench.sh runs it."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "e2e"))

from exhaust_util import pump_hostile, start_hostile  # noqa: E402


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    ready = sys.argv[3] if len(sys.argv) > 3 else None
    hostile = start_hostile(port)
    if ready:
        with open(ready, "w") as f:
            f.write("%d\n" % len(hostile))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pump_hostile(hostile)
    for h in hostile:
        h.close()


if __name__ == "__main__":
    main()
