# SPDX-License-Identifier: Apache-2.0
"""Rollups end to end, read back with the sqlite3 shell: exact aggregate
values and storage classes (avg, min, max, sum, count(*), count(col),
first, last) per group_by value and window, empty windows writing nothing;
windows computed live as they close; a 3-hour gap caught up after a
restart, with the windows rolled up before the gap left alone; kill -9
while catching up loses and doubles no window; --check reports every bad
rollup key with its path; the example file loads and the JSON Schema
agrees with the loader."""

import json
import os
import random
import signal
import subprocess
import time
import unittest
import urllib.request

from mqlite_harness import (Broker, E2ETestCase, daemon_path, free_port,
                            wait_until)

SRCDIR = os.environ.get("top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")

AGGS = {"temp_avg": "avg(temp)", "temp_min": "min(temp)",
        "temp_max": "max(temp)", "temp_sum": "sum(temp)", "n": "count(*)",
        "n_temp": "count(temp)", "temp_first": "first(temp)",
        "temp_last": "last(temp)"}


def rules(rollup=None, retention=True):
    sq = {"table": "readings",
          "columns": {"ts": "{payload.ts}", "site": "{site}",
                      "device": "{device}", "temp": "{payload.temp}"}}
    if retention:
        sq["retention"] = {"max_age": "3650d", "time_column": "ts"}
    if rollup is not None:
        sq["rollups"] = rollup
    return {"rules": [{"name": "readings",
                       "topic": "site/{site}/dev/{device}",
                       "sqlite": sq}]}


class RollupCase(E2ETestCase):
    needs_db = True
    auto_start = False

    def write_rules(self, doc, name="rules.json"):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def start_rules(self, doc, broker=None):
        path = self.write_rules(doc)
        if broker is not None:
            broker.extra_args = ["-r", path]
            broker.start()
            return broker
        return self.start_broker(extra_args=["-r", path])

    def state(self, br, table):
        v = br.query("select last_end_ms from mqlite_rollup_state "
                     "where rollup = '%s'" % table)
        return int(v) if v else None

    def fill_raw(self, br, start_ms, end_ms, step_ms, devices):
        """Rows straight into readings (the daemon stopped): every step_ms
        from start_ms for each device, temp = a value derived from ts."""
        br.query(
            "with recursive t(ts) as (select %d union all select ts + %d "
            "from t where ts + %d < %d) "
            "insert into readings (ts, site, device, temp) "
            "select ts, 's', d.column1, (ts / %d) %% 97 + d.column2 "
            "from t, (values %s) as d"
            % (start_ms, step_ms, step_ms, end_ms, step_ms,
               ", ".join("('%s', %d)" % (d, i)
                         for i, d in enumerate(devices))))

    def assert_exact(self, br, table, every_ms, upto_ms):
        """Every (window, device) of the raw rows before upto_ms appears
        exactly once in table with the right count and sum, and nothing
        else does."""
        raw = ("select (ts / %d) * %d, device, count(*), sum(temp) "
               "from readings where ts < %d group by 1, 2"
               % (every_ms, every_ms, upto_ms))
        got = ("select window_start, device, n, temp_sum from %s "
               "where window_start < %d" % (table, upto_ms))
        self.assertEqual(br.query("select count(*) from (%s except %s)"
                                  % (raw, got)), "0", "missing windows")
        self.assertEqual(br.query("select count(*) from (%s except %s)"
                                  % (got, raw)), "0", "wrong windows")
        self.assertEqual(br.query(
            "select count(*) - count(distinct window_start || '/' || device)"
            " from %s" % table), "0", "a window written twice")


class TestValues(RollupCase):

    def test_exact_aggregates_and_types(self):
        """Rows published before the rollup exists are rolled up when it
        appears (history included); values checked one by one."""
        br = self.start_rules(rules())
        c = self.client(br)
        now = int(time.time() * 1000)
        w0 = (now // 60000) * 60000 - 10 * 60000
        rows = [  # (device, offset in ms, temp as JSON text)
            ("d1", 1000, "20"), ("d1", 2000, "22.5"), ("d1", 30000, "null"),
            ("d1", 59999, "19"), ("d2", 5000, "7"), ("d2", 6000, "8"),
            # window w0 + 1 min empty; w0 + 2 min: d1 only, same ts twice
            ("d1", 120000, "3"), ("d1", 120000, "4"),
            ("d2", 200000, "\"text\"")]
        for i, (dev, off, temp) in enumerate(rows):
            c.publish("site/s/dev/" + dev, ('{"ts": %d, "temp": %s}'
                      % (w0 + off, temp)).encode(), qos=1)
        br.stop()
        ro = [{"table": "r_1m", "every": "1m", "group_by": ["device"],
               "columns": AGGS}]
        self.start_rules(rules(ro), br)
        self.assertTrue(wait_until(
            lambda: (self.state(br, "r_1m") or 0) > w0 + 200000,
            timeout=20), "rollup not computed")
        got = br.rows(
            "select window_start - %d, device, temp_avg, typeof(temp_avg), "
            "temp_min, typeof(temp_min), temp_max, typeof(temp_max), "
            "temp_sum, typeof(temp_sum), n, typeof(n), n_temp, "
            "temp_first, typeof(temp_first), temp_last, typeof(temp_last) "
            "from r_1m order by window_start, device" % w0)
        self.assertEqual(got, [
            ["0", "d1", "20.5", "real", "19", "integer", "22.5", "real",
             "61.5", "real", "4", "integer", "3", "20", "integer",
             "19", "integer"],
            ["0", "d2", "7.5", "real", "7", "integer", "8", "integer",
             "15", "integer", "2", "integer", "2", "7", "integer",
             "8", "integer"],
            # same ts: insertion order decides first and last
            ["120000", "d1", "3.5", "real", "3", "integer", "4", "integer",
             "7", "integer", "2", "integer", "2", "3", "integer",
             "4", "integer"],
            ["180000", "d2", "0.0", "real", "text", "text", "text", "text",
             "0.0", "real", "1", "integer", "1", "text", "text",
             "text", "text"]])
        # The empty window w0 + 1 min wrote nothing.
        self.assertEqual(br.scalar(
            "select count(*) from r_1m where window_start = %d"
            % (w0 + 60000)), 0)
        self.assertEqual(br.query(
            "select name, type from pragma_table_info('r_1m') "
            "order by cid").splitlines(), [
            "window_start|INTEGER", "device|TEXT", "temp_avg|REAL",
            "temp_min|", "temp_max|", "temp_sum|", "n|INTEGER",
            "n_temp|INTEGER", "temp_first|", "temp_last|"])
        self.assertEqual(br.query(
            "select source from mqlite_rollup_state where rollup='r_1m'"),
            "readings")

    def test_no_group_by_and_two_rollups(self):
        br = self.start_rules(rules())
        c = self.client(br)
        now = int(time.time() * 1000)
        w0 = (now // 3600000) * 3600000 - 3 * 3600000
        for i in range(6):
            c.publish("site/s/dev/d%d" % (i % 3), ('{"ts": %d, "temp": %d}'
                      % (w0 + i * 600000, i)).encode(), qos=1)
        br.stop()
        ro = [{"table": "all_1h", "every": "1h",
               "columns": {"n": "count(*)", "hi": "max(temp)",
                           "last_dev": "last(device)"}},
              {"table": "per_site_10m", "every": "10m",
               "group_by": ["site"], "columns": {"n": "count(*)"}}]
        self.start_rules(rules(ro), br)
        self.assertTrue(wait_until(
            lambda: self.state(br, "all_1h") is not None and
            self.state(br, "per_site_10m") is not None,
            timeout=20), "rollup not computed")
        self.assertEqual(br.rows(
            "select window_start - %d, n, hi, last_dev from all_1h" % w0),
            [["0", "6", "5", "d2"]])
        self.assertEqual(br.rows(
            "select (window_start - %d) / 60000, site, n from per_site_10m "
            "order by 1" % w0),
            [[str(m), "s", "1"] for m in range(0, 60, 10)])

    def test_sum_overflow_gives_one_window_up(self):
        """An aggregate SQLite refuses (integer overflow in sum) gives that
        window up, logged; the windows after it are computed."""
        br = self.start_rules(rules())
        mport = free_port()
        br.update_config(metrics={"bind": "127.0.0.1", "port": mport})
        c = self.client(br)
        now = int(time.time() * 1000)
        w0 = (now // 60000) * 60000 - 5 * 60000
        for off, temp in ((0, 9223372036854775807), (1000, 1), (60000, 5),
                          (61000, 6)):
            c.publish("site/s/dev/d", ('{"ts": %d, "temp": %d}'
                      % (w0 + off, temp)).encode(), qos=1)
        # Times in no window: far out of range, REAL, text, missing.
        for ts in ("-9223372036854775808", "-1e300", "1e300", '"abc"',
                   "null", "-4611686018427387905"):
            c.publish("site/s/dev/d", ('{"ts": %s, "temp": 1}' % ts)
                      .encode(), qos=1)
        br.stop()
        self.start_rules(rules([{"table": "ov_1m", "every": "1m",
                                 "columns": {"s": "sum(temp)"}}]), br)
        self.assertTrue(wait_until(
            lambda: (self.state(br, "ov_1m") or 0) >= w0 + 120000,
            timeout=20), "the window after the bad one was not computed")
        self.assertEqual(br.rows("select window_start - %d, s from ov_1m"
                                 % w0), [["60000", "11"]])
        self.assertRegex(br.log_text(), r"rollup ov_1m: window %d\.\.%d "
                         r"given up: integer overflow" % (w0, w0 + 60000))
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport,
                                    timeout=5) as r:
            text = r.read().decode()
        for name, v in (("mqlite_rollup_windows_total", 1),
                        ("mqlite_rollup_rows_total", 1),
                        ("mqlite_rollup_windows_given_up_total", 1)):
            self.assertIn("\n%s %d\n" % (name, v), text)


class TestMigration(RollupCase):

    def test_state_table_from_before_its_migration_is_kept(self):
        """A database from just before schema/004_rollup_state.sql
        (version 3, what 005 and 006 added undone), with the
        state table made by the rollup code itself, progress in
        it. The migration keeps table and rows: the windows before the
        stored progress stay unwritten, those after it are computed."""
        br = self.start_rules(rules())
        br.stop()
        self.assertGreaterEqual(br.scalar("pragma user_version"), 4)
        now = int(time.time() * 1000)
        w0 = (now // 60000) * 60000 - 30 * 60000
        done = w0 + 10 * 60000
        upto = w0 + 20 * 60000
        # What the daemon left before the migration existed, byte for
        # byte the statement it ran.
        br.query("drop table mqlite_rollup_state; "
                 "create table if not exists mqlite_rollup_state ("
                 " rollup TEXT PRIMARY KEY COLLATE NOCASE,"
                 " source TEXT NOT NULL,"
                 " last_end_ms INTEGER NOT NULL); "
                 "insert into mqlite_rollup_state values "
                 "('r_1m', 'readings', %d); "
                 "alter table outbox drop column props; "
                 "alter table outbox drop column expire_ms; "
                 "alter table outbox_dead drop column props; "
                 "alter table outbox_dead drop column expire_ms; "
                 "pragma user_version = 3" % done)
        self.fill_raw(br, w0, upto, 10000, ["a", "b"])
        ro = [{"table": "r_1m", "every": "1m", "group_by": ["device"],
               "columns": {"n": "count(*)", "temp_sum": "sum(temp)"}}]
        self.start_rules(rules(ro), br)
        self.assertTrue(wait_until(
            lambda: (self.state(br, "r_1m") or 0) >= upto, timeout=30),
            "the rollup did not resume: state %s" % self.state(br, "r_1m"))
        self.assertIn("schema: applied 004_rollup_state.sql",
                      br.log_text())
        self.assertGreaterEqual(br.scalar("pragma user_version"), 4)
        self.assertEqual(br.rows("select rollup, source from "
                                 "mqlite_rollup_state"),
                         [["r_1m", "readings"]])
        # Nothing before the stored progress, everything after it.
        self.assertEqual(br.scalar("select count(*) from r_1m where "
                                   "window_start < %d" % done), 0)
        self.assertEqual(br.rows(
            "select count(*), sum(n) from r_1m where window_start < %d"
            % upto), [["20", "120"]])
        self.assertEqual(br.query(
            "select count(*) from (select (ts / 60000) * 60000, device, "
            "count(*), sum(temp) from readings where ts >= %d and ts < %d "
            "group by 1, 2 except select window_start, device, n, temp_sum "
            "from r_1m)" % (done, upto)), "0")


class TestLive(RollupCase):

    def test_windows_close_while_publishing(self):
        """received_ms windows of 1 s, grace 3 s: each closes and is
        written once, nothing lost, while publishes go on."""
        ro = [{"table": "live_1s", "every": "1s", "grace": "3s",
               "group_by": ["device"], "columns": {
                   "n": "count(*)", "temp_sum": "sum(temp)"}}]
        doc = rules(ro)
        doc["rules"][0]["sqlite"]["columns"]["ts"] = "{received_ms}"
        br = self.start_rules(doc)
        c = self.client(br)
        t_end = time.time() + 4
        i = 0
        while time.time() < t_end and i < 2000:
            c.publish("site/s/dev/d%d" % (i % 2), ('{"temp": %d}' % i)
                      .encode(), qos=1)
            i += 1
            time.sleep(0.005)
        last = br.scalar("select max(ts) from readings")
        upto = (last // 1000 + 1) * 1000
        self.assertTrue(wait_until(
            lambda: (self.state(br, "live_1s") or 0) >= upto,
            timeout=30), "windows not closed")
        self.assertEqual(br.scalar("select count(*) from readings"), i)
        self.assert_exact(br, "live_1s", 1000, upto)
        self.assertEqual(br.scalar("select sum(n) from live_1s"), i)


class TestDowntime(RollupCase):

    def test_three_hour_gap_caught_up_after_restart(self):
        ro = [{"table": "r_1m", "every": "1m", "group_by": ["device"],
               "columns": AGGS}]
        br = self.start_rules(rules(ro))
        br.stop()
        now = int(time.time() * 1000)
        down = (now // 60000) * 60000 - 3 * 3600000
        # Rolled up before the gap: an hour of rows and their windows.
        self.fill_raw(br, down - 3600000, down, 10000, ["a", "b"])
        br.start()
        self.assertTrue(wait_until(
            lambda: (self.state(br, "r_1m") or 0) >= down, timeout=30))
        self.assertEqual(br.scalar("select count(*) from r_1m"), 120)
        br.stop()
        before = br.rows("select * from r_1m order by rowid")
        # Three hours of rows written during the "downtime" (as if a
        # second writer had gone on), then a restart.
        self.fill_raw(br, down, down + 3 * 3600000, 10000, ["a", "b"])
        br.start()
        upto = down + 3 * 3600000 - 60000     # a minute's grace at most
        self.assertTrue(wait_until(
            lambda: (self.state(br, "r_1m") or 0) >= upto, timeout=60),
            "the gap was not caught up")
        self.assertEqual(br.rows("select * from r_1m order by rowid "
                                 "limit %d" % len(before)), before)
        self.assert_exact(br, "r_1m", 60000, upto)
        self.assertGreaterEqual(br.scalar("select count(*) from r_1m"),
                                120 + 2 * 179)
        # Values of one window, checked by the shell's own aggregates.
        w = down + 90 * 60000
        self.assertEqual(
            br.query("select temp_avg, temp_min, temp_max, n, temp_first, "
                     "temp_last from r_1m where window_start = %d and "
                     "device = 'b'" % w),
            br.query("select avg(temp), min(temp), max(temp), count(*), "
                     "(select temp from readings where device = 'b' and "
                     "ts >= %d order by ts limit 1), (select temp from "
                     "readings where device = 'b' and ts < %d order by ts "
                     "desc limit 1) from readings where device = 'b' and "
                     "ts >= %d and ts < %d" % (w, w + 60000, w, w + 60000)))

    def test_kill9_while_catching_up(self):
        """Three hours of 1 s windows to catch up; kill -9 several times
        while it runs; in the end every window is there exactly once."""
        ro = [{"table": "r_1s", "every": "1s", "group_by": ["device"],
               "columns": {"n": "count(*)", "temp_sum": "sum(temp)"}}]
        br = self.start_rules(rules(ro))
        br.stop()
        now = int(time.time() * 1000)
        start = (now // 1000) * 1000 - 3 * 3600000
        self.fill_raw(br, start, start + 3 * 3600000, 500, ["a", "b"])
        upto = start + 3 * 3600000
        kills = 0
        rnd = random.Random(7)
        for _ in range(4):
            br.start()
            first = self.state(br, "r_1s") or start
            # Progress seen, then a kill at a random moment after it.
            wait_until(lambda: (self.state(br, "r_1s") or start) > first,
                       timeout=30, interval=0.01)
            time.sleep(rnd.uniform(0.0, 0.3))
            if (self.state(br, "r_1s") or 0) >= upto:
                br.stop()
                break
            br.kill()
            kills += 1
        self.assertGreaterEqual(kills, 1, "catch-up ended before a kill")
        if not br.running():
            br.start()
        self.assertTrue(wait_until(
            lambda: (self.state(br, "r_1s") or 0) >= upto, timeout=120),
            "not caught up after the kills")
        self.assertEqual(br.scalar("select count(*) from r_1s"),
                         2 * 3 * 3600)
        self.assert_exact(br, "r_1s", 1000, upto)
        self.assertEqual(br.scalar("select sum(n) from r_1s"),
                         br.scalar("select count(*) from readings"))


class TestReload(RollupCase):

    def test_rollup_added_by_sighup(self):
        """A rollup added to the rules and reloaded with SIGHUP gets its
        table at once and rolls up the rows already stored."""
        path = self.write_rules(rules())
        br = Broker(self.workdir)
        self.brokers.append(br)
        br.update_config(rules=path)
        br.start()
        c = self.client(br)
        now = int(time.time() * 1000)
        w0 = (now // 60000) * 60000 - 5 * 60000
        for i in range(4):
            c.publish("site/s/dev/d", ('{"ts": %d, "temp": %d}'
                      % (w0 + i * 20000, i)).encode(), qos=1)
        self.write_rules(rules([{"table": "hup_1m", "every": "1m",
                                 "columns": {"n": "count(*)",
                                             "s": "sum(temp)"}}]))
        br.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(
            lambda: (self.state(br, "hup_1m") or 0) >= w0 + 120000,
            timeout=20), "the reloaded rollup did not run")
        self.assertEqual(br.rows("select window_start - %d, n, s from "
                                 "hup_1m order by 1" % w0),
                         [["0", "3", "3"], ["60000", "1", "3"]])
        c.publish("site/s/dev/d", b'{"ts": 1, "temp": 1}', qos=1)
        self.assertEqual(br.scalar("select count(*) from readings"), 5)


class TestLoad(RollupCase):

    def check(self, path):
        r = subprocess.run([daemon_path(), "--check", "-r", path],
                           capture_output=True, timeout=30)
        return r.returncode, (r.stdout + r.stderr).decode().splitlines()

    def test_errors_with_paths(self):
        ro = [{"table": "mqlite_rollup_state", "every": "1m",
               "group_by": ["nope"],
               "columns": {"x": "median(temp)", "window_start": "avg(temp)",
                           "y": "avg(zz)", "z": "sum(*)", "w": "avg(temp",
                           "v": "avg(temp); drop table x"}},
              {"table": "readings", "every": "10ms",
               "columns": {"a": "count(*)"}},
              {"table": "ok", "every": "1m", "time_column": "site",
               "grace": "8d", "columns": {}, "retention": {"max": 1}},
              {"table": "OK", "every": "1m", "columns": {"a": "count(*)"}}]
        path = self.write_rules(rules(ro))
        rc, lines = self.check(path)
        self.assertEqual(rc, 1)
        p = path + ": rules[0].sqlite.rollups"
        for want in [
                p + "[0].table: table mqlite_rollup_state is reserved for "
                "the gateway",
                p + "[0].group_by[0]: not a column of this rule",
                p + "[0].columns.x: expected fn(column) with fn one of avg, "
                "min, max, sum, count, first, last",
                p + "[0].columns.window_start: duplicate column (names "
                "ignore case; window_start and the group_by columns are "
                "taken)",
                p + "[0].columns.y: zz is not a column of this rule",
                p + "[0].columns.z: only count takes *",
                p + "[0].columns.w: expected one column name and ')' after "
                "avg(",
                p + "[0].columns.v: expected one column name and ')' after "
                "avg(",
                p + "[1].table: table readings is the table of rule "
                "\"readings\"; a rollup needs a table of its own",
                p + "[1].every: expected a duration from 1s to 366d",
                p + "[2].grace: expected a duration up to 7d",
                p + "[2].time_column: site is a TEXT column; the time "
                "column holds Unix milliseconds (INTEGER, REAL or no type)",
                p + "[2].columns: expected a non-empty object of column "
                "name: \"fn(column)\"",
                p + "[2].retention.max: unknown key",
                p + "[3].table: table OK is already a rollup of rule "
                "\"readings\""]:
            self.assertIn(want, lines)
        no_ret = rules([{"table": "x", "every": "1m",
                         "columns": {"n": "count(*)"}}], retention=False)
        rc, lines = self.check(self.write_rules(no_ret, "b.json"))
        self.assertEqual(rc, 1)
        self.assertIn(self.workdir + "/b.json: rules[0].sqlite.rollups[0]: "
                      "missing \"time_column\" (the table's retention "
                      "names none)", lines)
        # A later rule writing into a rollup table.
        two = rules([{"table": "x_1m", "every": "1m",
                      "columns": {"n": "count(*)"}}])
        two["rules"].append({"name": "other", "topic": "o",
                             "sqlite": {"table": "X_1M",
                                        "columns": {"v": "{payload}"}}})
        rc, lines = self.check(self.write_rules(two, "c.json"))
        self.assertEqual(rc, 1)
        self.assertIn(self.workdir + "/c.json: rules[1].sqlite.table: table "
                      "X_1M is a rollup of rule \"readings\"", lines)

    def test_example_checks_loads_and_rolls_up(self):
        ex = os.path.join(SRCDIR, "rules", "examples", "rollups.json")
        rc, lines = self.check(ex)
        self.assertEqual(rc, 0, lines)
        with open(ex) as f:
            doc = json.load(f)
        br = self.start_rules(doc)
        c = self.client(br)
        for i in range(3):
            c.publish("site/north/dev/t1/telemetry",
                      ('{"temp": %d, "hum": 50}' % (20 + i)).encode(), qos=1)
        self.assertEqual(br.scalar("select count(*) from readings"), 3)
        names = br.query("select name from sqlite_master where type = "
                         "'table' and name like 'readings_%' order by name")
        self.assertEqual(names.splitlines(), ["readings_1h", "readings_1m"])
        # The raw table got an index on its time column for the windows.
        self.assertIn("readings_ts_idx", br.query(
            "select group_concat(name) from pragma_index_list('readings')"))

    def test_schema_agrees(self):
        import jsonschema
        with open(os.path.join(SRCDIR, "rules",
                               "mqlite-rules.schema.json")) as f:
            schema = json.load(f)
        with open(os.path.join(SRCDIR, "rules", "examples",
                               "rollups.json")) as f:
            jsonschema.validate(json.load(f), schema)
        jsonschema.validate(rules([{"table": "x", "every": "1m",
                                    "grace": "10s", "group_by": ["site"],
                                    "time_column": "ts",
                                    "columns": AGGS,
                                    "retention": {"max_age": "730d"}}]),
                            schema)
        for bad in ({"table": "x", "every": "1m", "columns": {}},
                    {"table": "x", "every": "1m",
                     "columns": {"a": "median(temp)"}},
                    {"table": "x", "columns": {"a": "count(*)"}},
                    {"table": "x", "every": "1m", "extra": 1,
                     "columns": {"a": "count(*)"}}):
            with self.assertRaises(jsonschema.ValidationError, msg=bad):
                jsonschema.validate(rules([bad]), schema)


if __name__ == "__main__":
    unittest.main()
