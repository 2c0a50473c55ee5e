#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Database bytes per device per day, raw rows against 1-minute rollups.

Starts the built daemon on a loopback port with a temporary database and a
rule shaped like rules/examples/rollups.json (ts, site, device, temp, hum;
index (site, device, ts) plus the time index rollups add), publishes one
simulated day of readings per device (one every INTERVAL seconds, device
time in the payload, QoS 0 then one QoS 1 publish as a barrier), restarts
it with the rollup added, waits until the store thread has rolled the whole
day up, and reads the pages each table
and its indexes use from SQLite's dbstat table (what the file holds, page
slack included). Prints bytes per device per day for each, and what a
gateway keeps with raw retention of 7 days and rollups kept 730 days.

    contrib/bench/rollup_size.py [DEVICES [INTERVAL_S]]   (default 10, 10)

Run from the build tree (it uses src/mqlite and tests/e2e's harness).
"""

import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))

from mqlite_harness import Broker, Client, wait_until  # noqa: E402

DAY_MS = 86400 * 1000


def rules(rollups=True):
    doc = {"rules": [{
        "name": "readings", "topic": "site/{site}/dev/{device}/telemetry",
        "sqlite": {
            "table": "readings",
            "columns": {"ts": "{payload.ts}", "site": "{site}",
                        "device": "{device}", "temp": "{payload.temp}",
                        "hum": "{payload.hum}"},
            "types": {"ts": "INTEGER", "temp": "REAL", "hum": "REAL"},
            "indexes": [["site", "device", "ts"]],
            "retention": {"max_age": "7d", "time_column": "ts"},
            "rollups": [{
                "table": "readings_1m", "every": "1m",
                "group_by": ["site", "device"],
                "columns": {"temp_avg": "avg(temp)", "temp_min": "min(temp)",
                            "temp_max": "max(temp)", "hum_last": "last(hum)",
                            "n": "count(*)"},
                "retention": {"max_age": "730d"}}]}}]}
    if not rollups:
        del doc["rules"][0]["sqlite"]["rollups"]
    return doc


def table_bytes(br, table):
    """Pages of table and of its indexes, in bytes (dbstat)."""
    return int(br.query(
        "select coalesce(sum(pgsize), 0) from dbstat where name = '%s' or "
        "name in (select name from sqlite_master where type = 'index' and "
        "tbl_name = '%s')" % (table, table)))


def main():
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    interval_s = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    work = tempfile.mkdtemp(prefix="mqlite-rollup-size-")
    try:
        path = os.path.join(work, "rules.json")
        with open(path, "w") as f:
            json.dump(rules(False), f)
        br = Broker(work, extra_args=["-r", path])
        br.start()
        c = Client(br.port, timeout=30)
        c.connect("rollup-size")
        # One day ending two minutes ago, aligned to the minute.
        end = (int(time.time() * 1000) // 60000) * 60000 - 120000
        start = end - DAY_MS
        n = 0
        for ts in range(start, end, interval_s * 1000):
            for d in range(devices):
                temp = 15 + (ts // 60000 + d) % 100 / 10.0
                hum = 40 + (ts // 600000 + d) % 30 + 0.5
                c.publish("site/s1/dev/dev%03d/telemetry" % d, json.dumps(
                    {"ts": ts, "temp": temp, "hum": hum}).encode())
                n += 1
        # Acks leave in order: once this one is back, all rows are in.
        c.publish("barrier", b"", qos=1)
        c.close()
        # Rows that arrive after their window closed are not rolled up, so
        # the past day is rolled up by a rollup that appears now.
        br.stop()
        with open(path, "w") as f:
            json.dump(rules(), f)
        br.start()
        if not wait_until(lambda: br.query(
                "select last_end_ms from mqlite_rollup_state") == str(end),
                timeout=600, interval=0.5):
            sys.exit("rollups did not catch up")
        raw = table_bytes(br, "readings")
        roll = table_bytes(br, "readings_1m")
        rows = int(br.query("select count(*) from readings"))
        rrows = int(br.query("select count(*) from readings_1m"))
        br.stop()
        print("%d devices, one reading every %d s: %d raw rows, %d rollup "
              "rows for one day" % (devices, interval_s, rows, rrows))
        print("raw rows:          %8.0f bytes per device per day "
              "(%.1f per row)" % (raw / devices, raw / max(rows, 1)))
        print("1-minute rollups:  %8.0f bytes per device per day "
              "(%.1f per row)" % (roll / devices, roll / max(rrows, 1)))
        print("kept per device: raw 7 d %.1f MB + rollups 730 d %.1f MB"
              % (raw / devices * 7 / 1e6, roll / devices * 730 / 1e6))
        sys.exit(0 if n == rows else 1)
    finally:
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
