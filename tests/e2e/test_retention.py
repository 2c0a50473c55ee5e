# SPDX-License-Identifier: Apache-2.0
"""Retention end to end: database.max_bytes keeps the database file (and its
WAL) under the bound while two Paho C clients publish 60,000 QoS 1 messages
of about 200 bytes, the newest rows stay, the oldest go and the log counts
every deleted row; database.retention.max_age deletes old rows of messages
by received_ms; a rule table's retention {max_age, time_column} deletes its
old rows while a table without retention keeps everything."""

import json
import os
import re
import subprocess
import threading
import time
import unittest

from mqlite_harness import E2ETestCase, HOST, helper_path, wait_until

MAX_BYTES = 2 * 1024 * 1024


def disk_bytes(path):
    """Size of the database file plus its WAL on disk (0 when missing)."""
    total = 0
    for p in (path, path + "-wal"):
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    return total


class TestSizeBound(E2ETestCase):
    needs_db = True
    database = {"max_bytes": "2MB"}

    def test_sustained_publish_stays_under_max_bytes(self):
        exe = helper_path("paho_pub")
        self.assertTrue(os.access(exe, os.X_OK),
                        "%s not built (make check builds it)" % exe)
        db = self.broker.db_path
        per_client = 30000
        prefix = "p" * 190          # payload "<prefix>-<n>", ~196 bytes
        procs = [subprocess.Popen(
            [exe, HOST, str(self.broker.port), "ret/%s" % name,
             str(per_client), "1", prefix, "50"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for name in ("a", "b")]

        peak = [0]
        peak_db = [0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], disk_bytes(db))
                try:
                    peak_db[0] = max(peak_db[0], os.path.getsize(db))
                except OSError:
                    pass
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            outs = []
            for p in procs:
                try:
                    out, _ = p.communicate(timeout=240)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, _ = p.communicate()
                outs.append((p.returncode, out.decode(errors="replace")))
        finally:
            done.set()
            watcher.join(5)
        for rc, out in outs:
            self.assertEqual(rc, 0, "paho_pub failed:\n" + out)

        # During the run: db + WAL never far above the bound (the WAL has
        # an allowance of max_bytes / 8 plus what one batch adds; about
        # 1.15 x max_bytes is typical).
        self.assertLessEqual(peak[0], int(MAX_BYTES * 1.5),
                             "db + WAL peaked at %d bytes" % peak[0])
        self.assertLessEqual(peak_db[0], int(MAX_BYTES * 1.25),
                             "db file peaked at %d bytes" % peak_db[0])

        # The newest messages are there, the oldest are gone.
        for t in ("ret/a", "ret/b"):
            self.assertEqual(self.broker.scalar(
                "select count(*) from messages where topic = '%s' and "
                "payload = '%s-%d'" % (t, prefix, per_client - 1)), 1)
            self.assertEqual(self.broker.scalar(
                "select count(*) from messages where topic = '%s' and "
                "payload = '%s-0'" % (t, prefix)), 0)
        kept = self.broker.count()
        self.assertGreater(kept, 1000)
        self.assertLess(kept, 2 * per_client)
        # What is kept is a contiguous run of the newest rows.
        self.assertEqual(self.broker.scalar(
            "select max(id) - min(id) + 1 from messages"), kept)

        # After a clean stop (final checkpoint) the file is under the bound.
        self.broker.stop()
        self.assertLessEqual(os.path.getsize(db), int(MAX_BYTES * 1.25))
        self.assertLessEqual(disk_bytes(db), int(MAX_BYTES * 1.25))

        # Never silent: the log counts every row deleted for max_bytes.
        log = self.broker.log_text()
        totals = re.findall(r"retention: deleted \d+ oldest rows to stay "
                            r"under max_bytes \d+ \([^)]*\); (\d+) in total",
                            log)
        self.assertTrue(totals, "no retention line in the log")
        self.assertEqual(int(totals[-1]), 2 * per_client - kept)


class TestAgeRetention(E2ETestCase):
    needs_db = True
    database = {"retention": {"max_age": "1h"}}

    def test_old_messages_deleted_new_kept(self):
        br = self.broker
        c = self.client()
        c.publish("age/new", b"fresh", qos=1)
        br.stop()
        now = int(time.time() * 1000)
        br.query("with recursive n(i) as (select 1 union all select i + 1 "
                 "from n where i < 2500) insert into messages (received_ms, "
                 "topic, qos, retain, payload) select %d - 7200000 + i, "
                 "'age/old', 0, 0, 'stale' from n" % now)
        br.query("insert into retained (topic, payload, qos, received_ms) "
                 "values ('age/retained', 'r', 0, 1)")
        self.assertEqual(br.count("topic = 'age/old'"), 2500)
        br.start()
        self.assertTrue(wait_until(
            lambda: br.count("topic = 'age/old'") == 0, timeout=15),
            "old rows still there: %d" % br.count("topic = 'age/old'"))
        self.assertEqual(br.count("topic = 'age/new'"), 1)
        self.assertEqual(br.scalar("select count(*) from retained"), 1)
        c = self.client()
        c.publish("age/new", b"fresh again", qos=1)
        self.assertEqual(br.count("topic = 'age/new'"), 2)
        br.stop()
        self.assertRegex(br.log_text(),
                         r"retention: deleted \d+ rows past max_age")


class TestRuleTableRetention(E2ETestCase):
    needs_db = True
    auto_start = False

    def test_rule_table_max_age(self):
        rules = {"rules": [
            {"name": "short", "topic": "dev/+/temp",
             "sqlite": {"table": "short_lived",
                        "columns": {"ts": "{received_ms}",
                                    "v": "{payload}"},
                        "indexes": ["ts"],
                        "retention": {"max_age": "2s",
                                      "time_column": "ts"}}},
            {"name": "all", "topic": "dev/+/temp",
             "sqlite": {"table": "kept_forever",
                        "columns": {"ts": "{received_ms}",
                                    "v": "{payload}"}}}]}
        path = os.path.join(self.workdir, "rules.json")
        with open(path, "w") as f:
            json.dump(rules, f)
        br = self.start_broker(extra_args=["-r", path])
        c = self.client(br)
        for i in range(20):
            c.publish("dev/1/temp", str(i).encode(), qos=1)
        self.assertEqual(br.scalar("select count(*) from short_lived"), 20)
        # Gone within max_age plus the 1 s check interval (and slack).
        self.assertTrue(wait_until(
            lambda: br.scalar("select count(*) from short_lived") == 0,
            timeout=10), "short_lived rows not pruned")
        self.assertEqual(br.scalar("select count(*) from kept_forever"), 20)
        c.publish("dev/1/temp", b"99", qos=1)
        self.assertEqual(br.scalar("select v from short_lived"), 99)
        self.assertEqual(br.scalar("select count(*) from kept_forever"), 21)


if __name__ == "__main__":
    unittest.main()
