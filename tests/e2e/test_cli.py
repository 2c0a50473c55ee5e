# SPDX-License-Identifier: Apache-2.0
"""The daemon's command line: -p and -d override the config file, --check
reports every config error with its key path and exits 1, --version and
--help exit 0, a port in use is a clean startup failure, SIGHUP reloads the
rules file without dropping connections."""

import json
import os
import signal
import socket
import subprocess
import unittest

from mqlite_harness import (HOST, E2ETestCase, daemon_path, free_port,
                            mqlite_only, wait_until)


@mqlite_only("the mqlite command line")
class TestCommandLine(E2ETestCase):
    auto_start = False

    def run_daemon(self, *args, timeout=30):
        return subprocess.run([daemon_path()] + list(args),
                              capture_output=True, timeout=timeout,
                              cwd=self.workdir)

    def write_config(self, cfg, name="c.json"):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def test_version_and_help(self):
        r = self.run_daemon("--version")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"mqlite", r.stdout + r.stderr)
        r = self.run_daemon("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"-c", r.stdout + r.stderr)

    def test_unknown_option_fails(self):
        r = self.run_daemon("--no-such-option")
        self.assertNotEqual(r.returncode, 0)

    def test_check_valid(self):
        path = self.write_config({
            "listeners": [{"port": free_port(), "bind": HOST}],
            "database": {"path": "x.db", "commit_max_items": 100,
                         "commit_max_ms": 5, "durability": "normal"},
            "limits": {"max_connections": 10, "max_packet_bytes": "64KB",
                       "max_inflight": 5, "max_queued": 50,
                       "connect_timeout": "2s"}})
        r = self.run_daemon("-c", path, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "x.db")),
                         "--check created the database")

    def test_check_reports_every_error_with_path(self):
        path = self.write_config({
            "listeners": [{"port": 1883, "bindx": HOST}],
            "limits": {"max_queued": "many"},
            "nonsense": 1})
        r = self.run_daemon("-c", path, "--check")
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode() + r.stdout.decode()
        for key in ("listeners[0].bindx", "limits.max_queued", "nonsense"):
            self.assertIn(key, err)

    def test_bad_config_refuses_to_start(self):
        path = self.write_config({"limits": {"max_packet_bytes": "huge"}})
        r = self.run_daemon("-c", path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"max_packet_bytes", r.stderr)

    def test_port_and_db_overrides(self):
        br = self.start_broker(extra_args=[])
        br.stop()
        port = free_port()
        db = os.path.join(self.workdir, "override.db")
        br.extra_args = ["-p", str(port), "-d", db]
        br.start(wait=False)
        br.port = port
        br.wait_ready()
        c = self.client(br, client_id="override")
        c.publish("cli/override", b"x", qos=1)
        br.db_path = db
        self.assertEqual(br.count("topic='cli/override'"), 1)

    def test_sighup_reloads_rules_and_keeps_serving(self):
        # The rules file routes cli/hup to table hup_a; rewritten to route
        # it to hup_b, SIGHUP must swap the rules in while the client
        # stays connected: its next publish lands in hup_b.
        def rules(table):
            return {"rules": [{"name": "hup", "topic": "cli/hup",
                               "sqlite": {"table": table,
                                          "columns": {"v": "{payload}"}}}]}
        path = self.write_config(rules("hup_a"), "hup-rules.json")
        br = self.start_broker(extra_args=["-r", path])
        c = self.client(br, client_id="hup")
        c.publish("cli/hup", b"before", qos=1)
        self.write_config(rules("hup_b"), "hup-rules.json")
        done = br.log_text().count("rules reloaded from")
        br.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: br.log_text().count(
            "rules reloaded from") > done, timeout=10),
            "no reload logged within 10 s of SIGHUP")
        c.publish("cli/hup", b"after", qos=1)
        c.ping()
        self.assertTrue(br.running())
        self.assertEqual(br.rows("select v from hup_a"), [["before"]])
        self.assertEqual(br.rows("select v from hup_b"), [["after"]])

    def test_port_in_use_fails_cleanly(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, 0))
        s.listen(1)
        self.addCleanup(s.close)
        path = self.write_config({
            "listeners": [{"port": s.getsockname()[1], "bind": HOST}],
            "database": {"path": "inuse.db"}})
        r = self.run_daemon("-c", path)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn(b"AddressSanitizer", r.stderr)


if __name__ == "__main__":
    unittest.main()
