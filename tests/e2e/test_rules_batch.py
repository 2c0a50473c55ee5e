# SPDX-License-Identifier: Apache-2.0
"""Rule tables written several rows per INSERT statement, end to end. Bursts
of QoS 1 publishes (sent in one write, so the store takes them in large
batches) through typed rules: every row read back with the sqlite3 shell,
exact values and typeof(), in publish order; two rules writing one table
keep the order of the writes; one row the table refuses among thousands
goes to `rejected` alone; a kill -9 mid-burst keeps every acknowledged
row; a SIGHUP reload that changes the rule mid-stream switches from one
rule set to the next between two publishes; batches that fail on a full
disk and are rolled back and retried store each row once."""

import signal
import time
import unittest

import os

from mqlite_harness import PUBACK, publish_pkt
from test_rules import RulesCase
from tmpfs_util import TmpfsMixin

BURST = 3000


def burst(c, n, topic_fn, payload_fn, first_pid=1):
    """Sends n QoS 1 publishes in one write (packet ids from first_pid)."""
    c.send(b"".join(publish_pkt(topic_fn(i), payload_fn(i), qos=1,
                                pid=(first_pid - 1 + i) % 65535 + 1)
                    for i in range(n)), timeout=60)


def expect_acks(tc, c, n, first_pid=1, timeout=30.0):
    """Reads n PUBACKs in order; returns how many arrived in time."""
    got = 0
    deadline = time.monotonic() + timeout
    while got < n and time.monotonic() < deadline:
        p = c.expect(PUBACK, timeout=10)
        tc.assertEqual(p.pid, (first_pid - 1 + got) % 65535 + 1)
        got += 1
    return got


TYPED = {
    "name": "typed", "topic": "m/{dev}",
    "sqlite": {"table": "typed", "columns": {
        "dev": "{dev}", "n": "{payload.n}", "v": "{payload.v}",
        "s": "{payload.s}", "o": "{payload.o}", "z": "{payload.none}",
        "q": "{qos}", "mix": "n={payload.n}"},
        "types": {"v": "REAL", "n": "INTEGER"}},
}


def typed_payload(i):
    return (b'{"n": %d, "v": %d.5, "s": "t%d", "o": {"k": [%d]}}'
            % (i, i, i, i))


class TestBatchedRows(RulesCase):

    def test_burst_rows_exact_typed_in_order(self):
        br = self.start_rules([TYPED, {
            # A second rule into the same table, after the first.
            "name": "same", "topic": "m/+",
            "sqlite": {"table": "typed", "columns": {
                "dev": "second", "n": "{payload.n}"},
                "types": {"n": "INTEGER"}}}])
        c = self.client(client_id="burst")
        burst(c, BURST, lambda i: "m/d%d" % (i % 5), typed_payload)
        self.assertEqual(expect_acks(self, c, BURST), BURST)
        # Every publish: its typed row, then the second rule's row.
        rows = br.rows("select dev, n, typeof(n), v, typeof(v), s, "
                       "typeof(s), o, typeof(o), typeof(z), q, typeof(q), "
                       "mix from typed order by id")
        self.assertEqual(len(rows), 2 * BURST)
        want = []
        for i in range(BURST):
            want.append(["d%d" % (i % 5), str(i), "integer", "%d.5" % i,
                         "real", "t%d" % i, "text", '{"k":[%d]}' % i,
                         "text", "null", "1", "integer", "n=%d" % i])
            want.append(["second", str(i), "integer", "", "null", "",
                         "null", "", "null", "null", "", "null", ""])
        self.assertEqual(rows, want)
        self.assertEqual(br.scalar("select count(*) from rejected"), 0)

    def test_one_bad_row_among_many_goes_to_rejected(self):
        br = self.precreate(
            "create table guarded (id integer primary key, "
            "n integer check (n <> 1234), dev text)")
        br.extra_args = ["-r", self.rules_file([{
            "name": "guarded", "topic": "g/{dev}",
            "sqlite": {"table": "guarded", "columns": {
                "n": "{payload.n}", "dev": "{dev}"}}}], "guarded.json")]
        br.start()
        c = self.client(br, client_id="guard")
        burst(c, BURST, lambda i: "g/d%d" % (i % 3),
              lambda i: b'{"n": %d}' % i)
        self.assertEqual(expect_acks(self, c, BURST), BURST)
        got = br.rows("select n, dev from guarded order by id")
        self.assertEqual(got, [[str(i), "d%d" % (i % 3)]
                               for i in range(BURST) if i != 1234])
        self.assertEqual(br.rows(
            "select rule, topic, client_id, qos, cast(payload as text) "
            "from rejected"),
            [["guarded", "g/d1", "guard", "1", '{"n": 1234}']])
        self.assertIn("CHECK constraint failed",
                      br.query("select reason from rejected"))
        # Later rows still stored.
        c.publish("g/late", b'{"n": 99999}', qos=1)
        self.assertEqual(br.scalar("select count(*) from guarded"), BURST)

    def precreate(self, sql):
        br = self.start_rules({"rules": []})
        self.assertEqual(br.stop(), 0)
        br.query(sql)
        return br

    def test_kill9_keeps_acknowledged_rows(self):
        br = self.start_rules([TYPED, {
            "name": "count", "topic": "m/#",
            "sqlite": {"table": "counted", "columns": {
                "n": "{payload.n}"}}}])
        c = self.client(client_id="k9")
        n = 8000
        burst(c, n, lambda i: "m/d%d" % (i % 5), typed_payload)
        acked = expect_acks(self, c, 2000)
        br.kill()
        self.assertEqual(acked, 2000)
        br.start()
        got = br.rows("select n from typed order by id")
        self.assertGreaterEqual(len(got), acked)
        # In order, none twice, none missing before the last one stored.
        self.assertEqual([int(r[0]) for r in got], list(range(len(got))))
        counted = br.rows("select n from counted order by id")
        self.assertEqual([int(r[0]) for r in counted],
                         list(range(len(counted))))
        # One publish, one transaction: both tables hold the same ones.
        self.assertEqual(len(counted), len(got))
        self.assertEqual(br.query("pragma integrity_check"), "ok")
        # Every row acknowledged just before a kill -9 is there (37 rows:
        # not a whole number of multi-row statements).
        base = len(got)
        c = self.client(client_id="k9b")
        burst(c, 37, lambda i: "m/e", lambda i: typed_payload(base + i))
        self.assertEqual(expect_acks(self, c, 37), 37)
        br.kill()
        br.start()
        self.assertEqual([int(r[0]) for r in br.rows(
            "select n from typed order by id")], list(range(base + 37)))
        self.assertEqual(br.scalar("select count(*) from counted"),
                         base + 37)

    def test_reload_changes_rule_mid_stream(self):
        rule = {"name": "r", "topic": "b/{dev}", "sqlite": {
            "table": "b", "columns": {"n": "{payload.n}"}}}
        br = self.start_rules([rule])
        c = self.client(client_id="reload")
        # One long burst: the reload lands inside it, where rows of both
        # rule sets share a batch (the loop below if it came too late).
        n, step = 8000, 500
        burst(c, n, lambda i: "b/d%d" % (i % 4), lambda i: b'{"n": %d}' % i)
        self.assertEqual(expect_acks(self, c, 300), 300)
        # The same table gets a new column and a second writer.
        rule["sqlite"]["columns"]["dev"] = "{dev}"
        self.rules_file([rule, {"name": "r2", "topic": "b/+", "sqlite": {
            "table": "b", "columns": {"n": "{payload.n}",
                                      "dev": "second"}}}],
            "broker-rules.json")
        br.proc.send_signal(signal.SIGHUP)
        self.assertEqual(expect_acks(self, c, n - 300, first_pid=301),
                         n - 300)
        # Keep publishing until the new rules are in, then once more.
        reloaded = False
        for _ in range(40):
            if br.scalar("select count(*) from b where dev is not null"):
                break
            reloaded = self.log_count("rules reloaded from") > 0
            burst(c, step, lambda i, n=n: "b/d%d" % ((n + i) % 4),
                  lambda i, n=n: b'{"n": %d}' % (n + i), first_pid=n + 1)
            self.assertEqual(expect_acks(self, c, step, first_pid=n + 1),
                             step)
            n += step
            if reloaded:
                break
        rows = br.rows("select n, quote(dev) from b order by id")
        old = [r for r in rows if r[1] == "NULL"]
        # The old set's rows: a prefix 0..k-1, one row each, in order.
        k = len(old)
        self.assertEqual(rows[:k], [[str(i), "NULL"] for i in range(k)])
        # Then the new set's: per publish the first rule, then the second.
        want = []
        for i in range(k, n):
            want += [[str(i), "'d%d'" % (i % 4)], [str(i), "'second'"]]
        self.assertEqual(rows[k:], want)
        self.assertGreater(k, 300)
        self.assertLess(k, n)


class TestBatchedRowsDiskFull(TmpfsMixin, RulesCase):
    """The database on a small tmpfs that the test fills."""
    tmpfs_size = "16m"

    def test_failed_batches_store_each_row_once(self):
        db = os.path.join(self.mnt, "t.db")
        br = self.new_broker(database={"path": db})
        br.db_path = db
        br.extra_args = ["-r", self.rules_file([{
            "name": "pad", "topic": "p/{dev}",
            "sqlite": {"table": "pad", "columns": {
                "n": "{payload.n}", "pad": "{payload.pad}"}}}, {
            "name": "cnt", "topic": "p/+",
            "sqlite": {"table": "cnt", "columns": {
                "n": "{payload.n}"}}}], "pad.json")]
        br.start()
        filler = self.fill_tmpfs(2 * 1024 * 1024)
        c = self.client(br, client_id="full")
        # Batches of several MB: they fail on the full disk and are
        # rolled back and retried until the filler goes.
        pad = "x" * 6000
        n, acked = 800, 0
        burst(c, n, lambda i: "p/d%d" % (i % 3),
              lambda i: b'{"n": %d, "pad": "%s"}' % (i, pad.encode()))
        try:
            while acked < n:
                p = c.expect(PUBACK, timeout=5.0)
                self.assertEqual(p.pid, acked % 65535 + 1)
                acked += 1
        except TimeoutError:
            pass
        self.assertLess(acked, n, "the disk never filled")
        self.assertIn("rolled back and retried", br.log_text())
        os.unlink(filler)
        self.assertEqual(expect_acks(self, c, n - acked,
                                     first_pid=acked + 1, timeout=60),
                         n - acked)
        # Every row once, in order, in both tables.
        self.assertEqual([int(r[0]) for r in br.rows(
            "select n from pad order by id")], list(range(n)))
        self.assertEqual([int(r[0]) for r in br.rows(
            "select n from cnt order by id")], list(range(n)))
        self.assertEqual(br.scalar("select count(*) from pad where "
                                   "length(pad) <> 6000"), 0)

if __name__ == "__main__":
    unittest.main()
