# SPDX-License-Identifier: Apache-2.0
"""README "Querying" is true: every SQL recipe and shell command in that
section, taken from README.md itself, runs through the sqlite3 shell
against the database of a real gateway fed by a real client, and gives the
answer the recipe promises: the latest value per device, hourly
min/avg/max, json_extract with non-JSON payloads around, local time (with
TZ set), rejected rows, dead letters of a webhook route (a real HTTP
receiver answering 400), replaying them (delivered after a restart), a
consistent backup of the live database with VACUUM INTO, and
moving the database to another folder (the gateway keeps its rows and its
retained messages there)."""

import datetime
import json
import os
import re
import subprocess

from mqlite_harness import (HOST, Broker, E2ETestCase, mqlite_only,
                            wait_until)
from test_webhook import Receiver

SRCDIR = os.environ.get("top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")


def readme_section():
    """(sql blocks by their first comment line, list of sh blocks)."""
    with open(os.path.join(SRCDIR, "README.md")) as f:
        text = f.read()
    sec = text[text.index("\n## Querying\n"):]
    sec = sec[:sec.index("\n## ", 5)]
    sql, sh = {}, []
    for lang, body in re.findall(r"```(sql|sh)\n(.*?)```", sec, re.S):
        if lang == "sql":
            first = body.splitlines()[0]
            assert first.startswith("-- "), first
            sql[first[3:]] = body
        else:
            sh.append(body)
    return sql, sh


def run_sqlite(db, sql, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    # On stdin, as when pasted into the shell.
    r = subprocess.run(["sqlite3", "-bail", "-json", "-cmd", ".timeout 5000",
                        db], input=sql.encode(), capture_output=True,
                       timeout=60, env=e, cwd=cwd)
    if r.returncode != 0:
        raise AssertionError("sqlite3 failed on %r: %s" %
                             (sql, r.stderr.decode()))
    out = r.stdout.decode().strip()
    return json.loads(out) if out else []


@mqlite_only("the database the README queries")
class QueryingCase(E2ETestCase):
    auto_start = False

    def setUp(self):
        super().setUp()
        self.sql, self.sh = readme_section()
        self.recv = Receiver(self.workdir, "recv", self.free_port(),
                             ["--statuses", "400,400"]).start()

    def tearDown(self):
        self.recv.stop()
        super().tearDown()

    @staticmethod
    def free_port():
        from mqlite_harness import free_port
        return free_port()

    def start_gateway(self):
        rules = {"unmatched": "messages", "rules": [
            {"name": "alarms", "topic": "site/+/alarm/#",
             "webhook": {"url": "http://%s:%d/hook" % (HOST,
                                                         self.recv.port)}},
            {"name": "strict", "topic": "strict/#",
             "sqlite": {"table": "strict_t",
                        "columns": {"v": "{payload.v}"}}}]}
        path = os.path.join(self.workdir, "rules.json")
        with open(path, "w") as f:
            json.dump(rules, f)
        br = Broker(self.workdir, name="telemetry")
        br.update_config(rules=path)
        # A constraint of the user's own: rows without v are refused.
        run_sqlite(br.db_path, "CREATE TABLE strict_t (v INTEGER NOT NULL)")
        self.brokers.append(br)
        br.start()
        return br

    def q(self, br, name, **kw):
        self.assertIn(name, self.sql, "README lost the recipe %r" % name)
        return run_sqlite(br.db_path, self.sql[name], **kw)

    def feed(self, br):
        c = self.client(br, client_id="dev")
        for dev, temps in (("d1", (20, 25, 31)), ("d2", (18, 35))):
            for t in temps:
                c.publish("site/s1/dev/%s/telemetry" % dev,
                          b'{"temp": %d, "hum": 40}' % t, qos=1)
        c.publish("site/s1/dev/d3/telemetry", b"not json", qos=1)
        c.publish("site/s1/alarm/fire", b'{"on": 1}', qos=1)
        c.publish("site/s1/alarm/flood", b'{"on": 2}', qos=1)
        c.publish("strict/x", b'{"w": 1}', qos=1)
        c.publish("state/s1", b"kept", qos=1, retain=True)
        c.disconnect()

    def test_every_recipe(self):
        br = self.start_gateway()
        self.feed(br)
        t1, t2 = "site/s1/dev/d1/telemetry", "site/s1/dev/d2/telemetry"

        rows = self.q(br, "latest value per device")
        self.assertEqual([(r["topic"], r["temp"]) for r in rows],
                         [(t1, 31), (t2, 35)])

        rows = self.q(br, "hourly min/avg/max per device, last 24 hours")
        per = {}
        for r in rows:
            self.assertLessEqual(r["min_temp"], r["avg_temp"])
            self.assertLessEqual(r["avg_temp"], r["max_temp"])
            per.setdefault(r["topic"], []).append(r)
        self.assertEqual(sorted(per), [t1, t2])
        self.assertEqual(sum(r["n"] for r in per[t1]), 3)
        self.assertEqual(min(r["min_temp"] for r in per[t1]), 20)
        self.assertEqual(max(r["max_temp"] for r in per[t2]), 35)
        if len(per[t1]) == 1:           # not across an hour boundary
            self.assertEqual(per[t1][0]["avg_temp"], 25.33)

        rows = self.q(br, "messages whose JSON payload has temp above 30")
        self.assertEqual([(r["topic"], r["temp"]) for r in rows],
                         [(t1, 31), (t2, 35)])

        tz = "IST-5:30"     # POSIX form: UTC+05:30 without tzdata
        rows = self.q(br, "today's messages in local time", env={"TZ": tz})
        all_rows = run_sqlite(br.db_path, "SELECT id, received_ms, topic "
                              "FROM messages ORDER BY id")
        off = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        midnight = datetime.datetime.now(off).replace(
            hour=0, minute=0, second=0, microsecond=0)
        want = [r for r in all_rows
                if r["received_ms"] >= midnight.timestamp() * 1000]
        self.assertEqual(len(rows), len(want))
        self.assertGreaterEqual(len(rows), 6)
        for r, w in zip(rows, want):
            local = datetime.datetime.fromtimestamp(w["received_ms"] / 1000,
                                                    off)
            self.assertEqual(r["local_time"],
                             local.strftime("%Y-%m-%d %H:%M:%S.") +
                             "%03d" % (w["received_ms"] % 1000))
            self.assertEqual(r["topic"], w["topic"])

        rows = self.q(br, "rows the database refused, newest first")
        self.assertEqual([(r["rule"], r["topic"]) for r in rows],
                         [("strict", "strict/x")])
        self.assertIn("NOT NULL", rows[0]["reason"])

        self.assertTrue(wait_until(lambda: run_sqlite(
            br.db_path, "SELECT count(*) AS n FROM outbox_dead")[0]["n"] == 2,
            timeout=20))
        rows = self.q(br, "dead letters per route and reason")
        self.assertEqual([(r["route"], r["status"], r["n"]) for r in rows],
                         [("alarms/webhook", 400, 2)])
        dead = run_sqlite(br.db_path, "SELECT body FROM outbox_dead "
                          "ORDER BY id")

        # Backups of the live database, then the replay with it stopped.
        for cmd in self.sh[0].strip().splitlines():
            subprocess.run(cmd, shell=True, check=True, cwd=self.workdir,
                           timeout=60)
        for copy in ("telemetry-backup.db",):
            p = os.path.join(self.workdir, copy)
            self.assertEqual(run_sqlite(p, "PRAGMA integrity_check"),
                             [{"integrity_check": "ok"}])
            self.assertEqual(run_sqlite(
                p, "SELECT count(*) AS n FROM messages")[0]["n"], 7)
            self.assertEqual(run_sqlite(
                p, "SELECT count(*) AS n FROM outbox_dead")[0]["n"], 2)

        self.assertEqual(br.stop(), 0)
        self.q(br, "replay the dead letters of one route (with mqlite "
               "stopped)")
        br.start()
        reqs = self.recv.wait_requests(4)
        self.assertEqual([r["status"] for r in reqs], [400, 400, 200, 200])
        self.assertEqual([r["body"] for r in reqs[2:]],
                         [d["body"] for d in dead])
        self.assertTrue(wait_until(lambda: run_sqlite(
            br.db_path, "SELECT (SELECT count(*) FROM outbox) + "
            "(SELECT count(*) FROM outbox_dead) AS n")[0]["n"] == 0,
            timeout=20))

        # Moving the database: the README's commands with this test's
        # paths, the systemctl lines done by the harness.
        self.assertEqual(br.stop(), 0)
        new_dir = os.path.join(self.workdir, "ssd")
        for cmd in self.sh[1].strip().splitlines():
            cmd = cmd.replace("/var/lib/mqlite/telemetry.db", br.db_path)
            cmd = cmd.replace("/mnt/ssd/mqlite", new_dir)
            if cmd.startswith(("sqlite3 ", "mkdir ")):
                subprocess.run(cmd, shell=True, check=True, timeout=60)
        self.assertTrue(any("VACUUM INTO" in c for c in self.sh[1]
                            .splitlines()))
        br.db_path = os.path.join(new_dir, "telemetry.db")
        with open(br.conf_path) as f:
            cfg = json.load(f)
        cfg["database"]["path"] = br.db_path
        br.update_config(database=cfg["database"])
        br.start()
        self.assertEqual(br.count(), 7)
        s = self.client(br, client_id="reader")
        s.subscribe([("state/#", 1)])
        p = s.recv_publish(timeout=5)
        self.assertEqual((p.topic, p.payload), ("state/s1", b"kept"))
        self.assert_serving(br)
