# SPDX-License-Identifier: Apache-2.0
"""SIGHUP reloads the config file: a live setting (limits.max_connections,
log.level, inline rules, "unmatched") takes effect without a restart or a
dropped connection; a setting only a restart can change (a listener port,
database.commit_max_ms) is logged as needing a restart with its key and the
running value is kept; a broken config file (syntax error, wrong type)
keeps everything as it was and the log says FILE: JSON.PATH: REASON.

"unmatched": a publish no rule matches is dropped by default, counted in
mqlite_unmatched_total and its topic logged (rate-limited);
"unmatched": "messages" at the top of a rules file or beside inline rules
in the config stores it in messages; a bad value is a --check error."""

import json
import os
import signal
import subprocess
import urllib.request

from mqlite_harness import (Broker, Client, Closed, E2ETestCase, daemon_path,
                            free_port, mqlite_only, wait_until)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


RULE_A = {"name": "a", "topic": "a/#",
          "sqlite": {"table": "a_rows", "columns": {"topic": "{topic}"}}}


@mqlite_only("config reload on SIGHUP")
class ReloadCase(E2ETestCase):
    auto_start = False

    def hup(self, br, marker):
        """SIGHUP, then wait until the log holds one more `marker`."""
        n = br.log_text().count(marker)
        br.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(
            lambda: br.log_text().count(marker) > n, timeout=15),
            "log never said %r after SIGHUP" % marker)

    def connects(self, br):
        """True when a new client gets CONNACK 0, False when refused."""
        c = Client(br.port)
        self.clients.append(c)
        try:
            c.connect("probe-%d" % len(self.clients))
            c.ping(timeout=3)
            return True
        except (Closed, OSError, AssertionError):
            return False

    def test_live_limit_restart_key_and_broken_file(self):
        br = self.start_broker(limits={"max_connections": 100})
        held = self.client(br, client_id="held")
        self.assertTrue(self.connects(br))
        # Live: max_connections drops to 2 (held + one more).
        br.update_config(limits={"max_connections": 2},
                         database={"path": br.db_path,
                                   "commit_max_ms": 50},
                         listeners=[{"port": free_port(),
                                     "bind": "127.0.0.1"}])
        self.hup(br, "reloaded")
        log = br.log_text()
        self.assertIn("database.commit_max_ms changed: needs a restart",
                      log)
        self.assertIn("listeners[0].port changed: needs a restart", log)
        self.assertIn("limits.max_connections changed: applied", log)
        self.assertNotIn("limits.max_connections changed: needs", log)
        # The old port still serves, the new limit holds.
        for c in self.clients[1:]:
            c.close()
        self.assertTrue(wait_until(lambda: self.connects(br), timeout=5))
        self.assertFalse(self.connects(br), "3rd client admitted")
        held.ping()
        # Broken files keep everything: a syntax error, then a wrong type.
        with open(br.conf_path, "w") as f:
            f.write('{"limits": {"max_connections": 50}\n')
        self.hup(br, "not reloaded, keeping the current configuration")
        self.assertRegex(br.log_text(), r"%s: JSON syntax error at line 2" %
                         br.conf_path)
        br._write_config()
        br.update_config(limits={"max_connections": "many"})
        self.hup(br, "not reloaded, keeping the current configuration")
        self.assertIn("%s: limits.max_connections: " % br.conf_path,
                      br.log_text())
        for c in self.clients[1:]:
            c.close()
        self.assertTrue(wait_until(lambda: self.connects(br), timeout=5))
        self.assertFalse(self.connects(br), "limit lost on a broken file")
        held.ping()
        # Back to a generous limit: live again.
        br._write_config()
        br.update_config(limits={"max_connections": 100})
        self.hup(br, "reloaded")
        self.assertTrue(self.connects(br) and self.connects(br))
        held.ping()

    def test_inline_rules_and_unmatched(self):
        br = self.start_broker()
        c = self.client(br, client_id="pub")
        c.publish("a/1", b"x", qos=1)
        self.assertEqual(br.count("topic='a/1'"), 1)
        br.update_config(rules=[RULE_A])
        self.hup(br, "rules reloaded from")
        c.publish("a/2", b"y", qos=1)
        c.publish("b/2", b"z", qos=1)
        self.assertEqual(br.scalar("select count(*) from a_rows"), 1)
        self.assertEqual(br.count("topic='b/2'"), 0)
        # Inline rules and "unmatched": "messages" beside them.
        br.update_config(unmatched="messages")
        self.hup(br, "rules reloaded from")
        c.publish("b/3", b"w", qos=1)
        self.assertEqual(br.count("topic='b/3'"), 1)
        c.ping()


@mqlite_only("the unmatched setting and mqlite_unmatched_total")
class UnmatchedCase(E2ETestCase):
    auto_start = False

    def start_with(self, rules_obj, **cfg):
        path = write_json(os.path.join(self.workdir, "rules.json"),
                          rules_obj)
        br = Broker(self.workdir)
        self.brokers.append(br)
        self.mport = free_port()
        br.update_config(rules=path, metrics={"bind": "127.0.0.1",
                                              "port": self.mport}, **cfg)
        br.start()
        return br

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                                    self.mport, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        self.fail("no %s in /metrics" % name)

    def test_drop_counts_and_logs(self):
        br = self.start_with({"rules": [RULE_A]})
        self.assertIn('is dropped ("unmatched": "drop")', br.log_text())
        c = self.client(br)
        c.publish("a/1", b"1", qos=1)
        for i in range(20):
            c.publish("b/%d" % i, b"2", qos=1)
        self.assertEqual(br.scalar("select count(*) from a_rows"), 1)
        self.assertEqual(br.count(), 0)
        self.assertEqual(self.metric("mqlite_unmatched_total"), 20)
        log = br.log_text()
        self.assertIn("no rule matches topic b/0: not stored", log)
        # Rate-limited: the first five, then one summary line with the
        # count when the 10 s window ends, with no further publish.
        self.assertNotIn("no rule matches topic b/19", log)
        self.assertTrue(wait_until(
            lambda: "(repeated 15 times)" in br.log_text(), timeout=25),
            "no summary line")
        log = br.log_text()
        self.assertRegex(log, r"info: no rule matches topic b/5: not stored"
                         r".* \.\.\. \(repeated 15 times\)")
        self.assertEqual(log.count("no rule matches topic"), 6)

    def test_messages_in_rules_file(self):
        br = self.start_with({"unmatched": "messages", "rules": [RULE_A]})
        c = self.client(br)
        c.publish("a/1", b"1", qos=1)
        c.publish("b/1", b"2", qos=1)
        self.assertEqual(br.scalar("select count(*) from a_rows"), 1)
        self.assertEqual(br.rows("select topic, payload from messages"),
                         [["b/1", "2"]])
        self.assertEqual(self.metric("mqlite_unmatched_total"), 1)
        self.assertNotIn("no rule matches topic", br.log_text())

    def test_config_key_is_the_fallback(self):
        br = self.start_with({"rules": [RULE_A]}, unmatched="messages")
        c = self.client(br)
        c.publish("b/1", b"2", qos=1)
        self.assertEqual(br.count("topic='b/1'"), 1)

    def test_bad_value_is_a_check_error(self):
        path = write_json(os.path.join(self.workdir, "r.json"),
                          {"unmatched": "keep", "rules": [RULE_A]})
        r = subprocess.run([daemon_path(), "--check", "-r", path],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn('%s: unmatched: expected "drop" or "messages"' % path,
                      r.stderr.decode())
        conf = write_json(os.path.join(self.workdir, "c.json"),
                          {"unmatched": "all"})
        r = subprocess.run([daemon_path(), "--check", "-c", conf],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s: unmatched:" % conf, r.stderr.decode())
