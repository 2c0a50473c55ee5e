# SPDX-License-Identifier: Apache-2.0
"""Gentle on flash: QoS 0 work waits up to database.qos0_commit_ms for
company, so a power cut (kill -9 stands in for it) may cost that window of
QoS 0 messages and never an acknowledged QoS 1 one; SIGTERM commits
everything; a QoS 1 ack never waits for the QoS 0 window; the storage
counters and the status line report what was written."""

import json
import os
import re
import subprocess
import time

from mqlite_harness import (PUBACK, PUBCOMP, PUBREL, E2ETestCase, ack_pkt,
                            daemon_path, mqlite_only, publish_pkt)
from test_metrics import MetricsCase


@mqlite_only("database.qos0_commit_ms")
class TestQos0Window(E2ETestCase):
    needs_db = True
    auto_start = False

    def start(self, **database):
        return self.start_broker(database=database)

    def qos0(self, c, tag, n):
        """n QoS 0 publishes; a PINGRESP after them means the broker took
        them all (one connection is read in order)."""
        c.send(b"".join(publish_pkt("flash/%s/%d" % (tag, i), b"%s-%d" %
                                    (tag.encode(), i), 0) for i in range(n)))
        c.ping(timeout=10)

    def test_kill9_loses_at_most_the_qos0_window_never_qos1(self):
        br = self.start(qos0_commit_ms="60s")
        c0 = self.client(br, client_id="flash-q0")
        c1 = self.client(br, client_id="flash-q1")
        self.qos0(c0, "early", 50)
        # QoS 1 behind the waiting QoS 0 work: acked at once, not after
        # the 60 s window (the bound is generous, the window is not).
        t0 = time.monotonic()
        for i in range(20):
            c1.send(publish_pkt("flash/q1/%d" % i, b"q1-%d" % i, 1,
                                pid=i + 1))
            self.assertEqual(c1.expect(PUBACK, timeout=20).pid, i + 1)
        self.assertLess(time.monotonic() - t0, 30)
        # Their commit took the QoS 0 work queued before them along.
        self.assertEqual(br.count("topic like 'flash/early/%'"), 50)
        self.qos0(c0, "late", 40)
        br.kill()
        self.assertEqual(br.count("topic like 'flash/q1/%'"), 20)
        # The late QoS 0 messages were inside their window: lost to the
        # power cut, and only they.
        self.assertEqual(br.count("topic like 'flash/late/%'"), 0)
        self.assertEqual(br.count(), 70)

    def test_ack_behind_own_qos0_does_not_wait_for_the_window(self):
        # A PUBCOMP for a packet id the broker does not hold writes nothing
        # and is held until the client's last store item commits: here
        # its own QoS 0 publish. The broker has the store commit at once
        # instead of waiting out the 60 s window.
        br = self.start(qos0_commit_ms="60s")
        c = self.client(br, client_id="flash-own")
        for i in range(3):
            c.send(publish_pkt("flash/own/%d" % i, b"own-%d" % i, 0) +
                   ack_pkt(PUBREL, 100 + i))
            t0 = time.monotonic()
            self.assertEqual(c.expect(PUBCOMP, timeout=20).pid, 100 + i)
            self.assertLess(time.monotonic() - t0, 20)
            self.assertEqual(br.count("topic like 'flash/own/%'"), i + 1)

    def test_window_commits_without_help(self):
        br = self.start(qos0_commit_ms="300ms")
        c0 = self.client(br, client_id="flash-q0")
        self.qos0(c0, "alone", 30)
        # Nothing else arrives: the window ends and the batch commits.
        self.assertEqual(br.wait_count(30, "topic like 'flash/alone/%'",
                                       timeout=20), 30)
        br.kill()
        self.assertEqual(br.count("topic like 'flash/alone/%'"), 30)

    def test_sigterm_commits_the_window(self):
        br = self.start(qos0_commit_ms="60s")
        c0 = self.client(br, client_id="flash-q0")
        self.qos0(c0, "term", 64)
        self.assertEqual(br.count("topic like 'flash/term/%'"), 0)
        br.stop()
        self.assertEqual(br.count("topic like 'flash/term/%'"), 64)

    def test_window_zero_commits_at_once(self):
        br = self.start(qos0_commit_ms=0)
        c0 = self.client(br, client_id="flash-q0")
        self.qos0(c0, "now", 10)
        self.assertEqual(br.wait_count(10, "topic like 'flash/now/%'",
                                       timeout=20), 10)

    def test_bad_values_refused(self):
        for key, value in (("qos0_commit_ms", "2min"),
                           ("ack_window_ms", "2s"),
                           ("ack_window_ms", -1),
                           ("page_size", 1000),
                           ("page_size", "128KB"),
                           ("page_size", 256)):
            path = os.path.join(self.workdir, "bad.json")
            with open(path, "w") as f:
                json.dump({"database": {key: value}}, f)
            r = subprocess.run([daemon_path(), "-c", path, "--check"],
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 1, (key, value))
            self.assertIn(b"database." + key.encode(), r.stderr)

    def test_page_size_of_a_new_database(self):
        br = self.start(page_size="1KB")
        self.assertEqual(br.scalar("pragma page_size"), 1024)
        c1 = self.client(br, client_id="flash-page")
        for i in range(30):
            c1.send(publish_pkt("flash/page/%d" % i, b"p-%d" % i, 1,
                                pid=i + 1))
            self.assertEqual(c1.expect(PUBACK, timeout=20).pid, i + 1)
        # Acknowledged means committed: readable before the stop.
        self.assertEqual(br.count("topic like 'flash/page/%'"), 30)
        br.stop()
        self.assertEqual(br.scalar("pragma integrity_check"), "ok")


class TestStorageCounters(MetricsCase):
    def test_counters_and_status_line(self):
        br = self.start_metrics()
        v0 = self.metrics()
        n = 40
        c = self.client(client_id="flash-counter")
        for i in range(n):
            c.send(publish_pkt("w/%d" % i, b"v%d" % i, qos=1, pid=i + 1))
            self.assertEqual(c.expect(PUBACK).pid, i + 1)
        v = self.metrics()
        commits = (v[("mqlite_store_commits_total", None)] -
                   v0[("mqlite_store_commits_total", None)])
        fsyncs = (v[("mqlite_storage_fsyncs_total", None)] -
                  v0[("mqlite_storage_fsyncs_total", None)])
        wrote = (v[("mqlite_storage_write_bytes_total", None)] -
                 v0[("mqlite_storage_write_bytes_total", None)])
        # One ack at a time: a commit each, and durability full syncs
        # the WAL at each commit.
        self.assertGreaterEqual(commits, n)
        self.assertGreaterEqual(fsyncs, commits)
        # Each commit wrote at least a WAL frame (page + 24-byte header).
        page = br.scalar("pragma page_size")
        with open("/proc/%d/io" % br.pid) as f:
            io = dict(line.split(": ") for line in f.read().splitlines())
        self.assertLessEqual(v[("mqlite_storage_write_bytes_total", None)],
                             int(io["write_bytes"]))
        self.assertGreaterEqual(wrote, n * (page + 24))
        c.disconnect()
        br.stop()
        m = re.search(r"database closed: (\d+) rows written in (\d+) "
                      r"commits; storage: (\d+) bytes written, (\d+) "
                      r"flushes; per row (\d+) bytes, ([0-9.]+) flushes",
                      br.log_text())
        self.assertIsNotNone(m, br.log_text()[-2000:])
        self.assertEqual(int(m.group(1)), n)
        self.assertGreaterEqual(int(m.group(3)), wrote)
        self.assertGreaterEqual(int(m.group(4)), fsyncs)
        self.assertLessEqual(abs(int(m.group(5)) - int(m.group(3)) / n), 1)


@mqlite_only("the WAL's checkpoints")
class TestWalStartsOver(MetricsCase):
    def test_wal_file_stops_growing_near_4_mb(self):
        # One QoS 1 publish at a time: a commit each, two 4 KB WAL frames
        # (the table's and the index's last leaves), so 2,000 of them
        # append some 16 MB to the WAL. Past 4 MB the checkpointer copies
        # it back and the WAL starts over: its file stays near 4 MB
        # instead of growing to the 16 MB where the store thread would
        # finish the checkpoint itself (while the file grows, each flush
        # also commits the filesystem's journal).
        br = self.start_metrics()
        self.assertEqual(br.scalar("pragma page_size"), 4096)
        wal = br.db_path + "-wal"
        v0 = self.metrics()
        c = self.client(client_id="flash-wal")
        n, biggest = 2000, 0
        for i in range(n):
            c.send(publish_pkt("flash/wal/%d" % i, b"w%d" % i, qos=1,
                               pid=i % 60000 + 1))
            self.assertEqual(c.expect(PUBACK, timeout=20).pid,
                             i % 60000 + 1)
            if i % 25 == 0 and os.path.exists(wal):
                biggest = max(biggest, os.path.getsize(wal))
        biggest = max(biggest, os.path.getsize(wal))
        v = self.metrics()
        commits = (v[("mqlite_store_commits_total", None)] -
                   v0[("mqlite_store_commits_total", None)])
        # The load did pass the checkpoint threshold, three times over.
        self.assertGreaterEqual(commits * 2 * (4096 + 24), 15 << 20)
        self.assertGreaterEqual(biggest, 4 << 20)
        self.assertLess(biggest, 12 << 20, "the WAL grew to %d bytes" %
                        biggest)
        self.assertGreaterEqual(
            v[("mqlite_store_checkpoints_total", None)] -
            v0[("mqlite_store_checkpoints_total", None)], 2)
        self.assertEqual(br.count("topic like 'flash/wal/%'"), n)
