# SPDX-License-Identifier: Apache-2.0
"""The bridge's window covers a row from its send until the store has
committed its delete, so a kill -9 while a backlog drains into a real
Mosquitto resends at most max_in_flight rows. The window is small (8) so
the bound is sharp: rows acknowledged upstream whose delete was still on
its way to the store would add to the 8 if they left the window early.
Those commits of results alone skip their own fsync (durability full):
under strace, the drain of a backlog makes far fewer WAL syncs than it
needs commits, and a QoS 1 publish right after such commits is still
acknowledged only after a sync of its own. Every wait is bounded."""

import json
import os
import re
import time
import unittest

from mqlite_harness import Client, wait_until
from mosquitto_util import upstream_for
from test_bridge import LSAN_SUPP, BridgeCase, Counter
from test_fsync_order import TracedBroker, strace_works

WINDOW = 8


class TestBridgeWindow(BridgeCase):
    def tearDown(self):
        # A traced daemon is stopped through strace's child.
        for br in self.brokers:
            if isinstance(br, TracedBroker) and br.running():
                br.stop_traced()
        BridgeCase.tearDown(self)

    def test_kill9_mid_drain_resends_at_most_the_window(self):
        n = 3000
        up = upstream_for(self, start=False)
        got = self.counter_session(up)
        br = self.mqlite(up.port, extra={"max_in_flight": WINDOW})
        self.publish(br, n)
        self.assertEqual(self.outbox_rows(br), n)
        up.start()
        counter = Counter(up.port, "up/#", got=got)
        counter.connect()
        self.addCleanup(counter.close)
        self.assertTrue(wait_until(lambda: counter.count() >= n // 4, 60),
                        "the drain did not start: %d arrived"
                        % counter.count())
        br.kill()
        left_at_kill = self.outbox_rows(br)
        # What was written to the socket before the kill arrives.
        time.sleep(1.0)
        at_kill = counter.count()
        self.assertGreater(left_at_kill, 0, "the drain was over at the "
                           "kill: nothing was tested")
        br.start()
        self.assertTrue(wait_until(lambda: self.outbox_rows(br) == 0, 120),
                        "outbox not drained: %d" % self.outbox_rows(br))
        self.assertTrue(wait_until(lambda: len(set(counter.got)) >= n, 30),
                        "only %d distinct of %d arrived"
                        % (len(set(counter.got)), n))
        # A resent row that was already there is a duplicate; give late
        # copies a moment to arrive before counting.
        time.sleep(1.0)
        missing, disorder, dups = counter.verdict(n)
        print("bridge window %d: killed with %d rows left, %d arrived; "
              "%d duplicate(s)" % (WINDOW, left_at_kill, at_kill, dups))
        self.assertEqual(missing, [])
        self.assertEqual(disorder, 0)
        self.assertLessEqual(dups, WINDOW)

    def test_drain_commits_results_without_their_own_fsync(self):
        why = strace_works()
        if why:
            self.fail("this test needs strace with ptrace allowed: %s" % why)
        n = 1000
        up = upstream_for(self, start=False)
        rules = os.path.join(self.workdir, "rules.json")
        with open(rules, "w") as f:
            json.dump({"rules": [{"name": "up", "topic": "dev/#", "mqtt": {
                "url": "tcp://127.0.0.1:%d" % up.port, "topic": "up/{topic}",
                "qos": 1, "max_in_flight": WINDOW}}]}, f)
        trace = os.path.join(self.workdir, "strace.txt")
        br = TracedBroker(self.workdir, trace, name="broker",
                          extra_args=["-r", rules],
                          env={"ASAN_OPTIONS": "detect_leaks=0",
                               "LSAN_OPTIONS": "suppressions=" + LSAN_SUPP})
        br.command = lambda: ["strace", "-f", "-e", "trace=fsync,fdatasync",
                              "-o", trace] + super(
                                  TracedBroker, br).command()
        self.brokers.append(br)
        br.start(wait=False)
        br.wait_ready(tries=600, interval=0.05)
        self.publish(br, n)
        self.assertEqual(self.outbox_rows(br), n)

        def syncs():
            with open(trace) as f:
                return len(re.findall(r"\b(?:fsync|fdatasync)\(", f.read()))
        before = syncs()
        up.start()
        self.assertTrue(wait_until(lambda: self.outbox_rows(br) == 0, 120),
                        "outbox not drained: %d" % self.outbox_rows(br))
        during = syncs() - before
        # Each commit frees at most WINDOW slots: n / WINDOW commits at
        # least. Checkpoints sync too, a few times.
        print("bridge drain of %d rows, window %d: %d WAL/database "
              "syncs" % (n, WINDOW, during))
        self.assertLess(during, n // WINDOW // 3)
        self.assertGreater(before, 0, "no fsync seen at all: is strace "
                           "tracing the daemon?")

        # The drain left synchronous relaxed; each publish now routed to
        # the bridge commits with a sync before its PUBACK (strace writes
        # the fsync line before the daemon goes on to send the ack), and
        # its delivery result commits relaxed again behind it.
        c = Client(br.port)
        c.connect("after-drain")
        unsynced = []
        for i in range(20):
            mark = syncs()
            c.publish("dev/after/%d" % i, b"x", qos=1, timeout=30)
            if syncs() == mark:
                unsynced.append(i)
        c.disconnect()
        self.assertTrue(wait_until(lambda: self.outbox_rows(br) == 0, 60),
                        "outbox not drained: %d" % self.outbox_rows(br))
        self.assertEqual(unsynced, [], "PUBACKs sent with no fsync since "
                         "their publish")


if __name__ == "__main__":
    unittest.main()
