# SPDX-License-Identifier: Apache-2.0
"""Password logins: files written by `mqlite passwd` and by mosquitto_passwd
($7$ and $6$), right / wrong / unknown user, anonymous on and off, the
failed-login delay per address, the verified-login cache, logins hashed off
the event loop, SIGHUP reload and fail-closed starts, and a Mosquitto broker
accepting a file mqlite wrote."""

import json
import os
import signal
import stat
import subprocess
import time
import unittest
import urllib.request

from mqlite_harness import (CONNACK, HOST, Broker, E2ETestCase, Client,
                            connect_pkt, daemon_path, free_port, mqlite_only,
                            wait_until)
from mosquitto_util import Mosquitto

MOSQ_PASSWD = "/usr/bin/mosquitto_passwd"


def mqlite_passwd(*args, stdin=None):
    return subprocess.run([daemon_path(), "passwd"] + list(args),
                          input=stdin, capture_output=True, timeout=60)


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


@mqlite_only("mqlite's auth configuration and `mqlite passwd`")
class AuthCase(E2ETestCase):
    auto_start = False

    def start_auth(self, auth, metrics=False, wait=True):
        br = Broker(self.workdir, name="auth%d" % len(self.brokers))
        with open(br.conf_path) as f:
            cfg = json.load(f)
        cfg["auth"] = auth
        if metrics:
            br.metrics_port = free_port()
            cfg["metrics"] = {"bind": HOST, "port": br.metrics_port}
        with open(br.conf_path, "w") as f:
            json.dump(cfg, f)
        self.brokers.append(br)
        if wait:
            br.start()
        return br

    def metric(self, br, name):
        url = "http://%s:%d/metrics" % (HOST, br.metrics_port)
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        self.fail("metric %s missing" % name)

    def login(self, br, user=None, password=None, cid="c", timeout=90.0):
        """CONNACK return code of a CONNECT with these credentials."""
        c = Client(br.port, timeout=timeout)
        self.clients.append(c)
        c.send(connect_pkt(cid, username=user, password=password))
        return c.expect(CONNACK, timeout).rc, c

    def passwd_file(self):
        """alice (mqlite passwd), bob ($7$) and carol ($6$) by
        mosquitto_passwd."""
        path = os.path.join(self.workdir, "passwd")
        subprocess.run([MOSQ_PASSWD, "-c", "-b", path, "bob", "bobpw"],
                       check=True, timeout=30)
        subprocess.run([MOSQ_PASSWD, "-H", "sha512", "-b", path, "carol",
                        "carolpw"], check=True, timeout=30)
        r = mqlite_passwd("-b", path, "alice", "alicepw")
        self.assertEqual(r.returncode, 0, r.stderr)
        return path


class TestPasswdCommand(AuthCase):

    def test_create_add_update_delete(self):
        path = os.path.join(self.workdir, "pw")
        r = mqlite_passwd("-c", "-b", path, "alice", "one")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        (line,) = read_lines(path)
        user, h = line.split(":", 1)
        self.assertEqual(user, "alice")
        kind, iters, salt, digest = h.split("$")[1:]
        self.assertEqual(kind, "7")
        self.assertGreaterEqual(int(iters), 210000)
        self.assertEqual(len(salt), 16)         # 12 random bytes
        self.assertEqual(len(digest), 88)       # 64 bytes
        # Prompted twice without -b (stdin is not a terminal here).
        r = mqlite_passwd(path, "bob", stdin=b"two\ntwo\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Reenter password", r.stderr)
        lines = read_lines(path)
        self.assertEqual(lines[0], line)        # alice kept as she was
        self.assertTrue(lines[1].startswith("bob:$7$"))
        # Mismatch: refused, file unchanged.
        r = mqlite_passwd(path, "bob", stdin=b"three\nthree!\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"do not match", r.stderr)
        self.assertEqual(read_lines(path), lines)
        # Update alice: new salt, bob untouched, order kept.
        r = mqlite_passwd("-b", path, "alice", "one")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines2 = read_lines(path)
        self.assertNotEqual(lines2[0], line)
        self.assertTrue(lines2[0].startswith("alice:$7$"))
        self.assertEqual(lines2[1], lines[1])
        # Delete.
        r = mqlite_passwd("-D", path, "bob")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_lines(path), [lines2[0]])
        r = mqlite_passwd("-D", path, "nobody")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(read_lines(path), [lines2[0]])
        # -c starts over.
        r = mqlite_passwd("-c", "-b", path, "dave", "x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([l.split(":")[0] for l in read_lines(path)],
                         ["dave"])
        # No temporary file left behind.
        self.assertEqual(os.listdir(self.workdir), ["pw"])

    def test_keeps_mosquitto_lines(self):
        path = os.path.join(self.workdir, "pw")
        subprocess.run([MOSQ_PASSWD, "-c", "-b", path, "bob", "b"],
                       check=True, timeout=30)
        subprocess.run([MOSQ_PASSWD, "-H", "sha512", "-b", path, "carol",
                        "c"], check=True, timeout=30)
        before = read_lines(path)
        r = mqlite_passwd("-b", path, "alice", "a")
        self.assertEqual(r.returncode, 0, r.stderr)
        after = read_lines(path)
        self.assertEqual(after[:2], before)
        self.assertTrue(after[2].startswith("alice:$7$"))

    def test_usage_errors(self):
        path = os.path.join(self.workdir, "pw")
        for args in (["-b", path, "u"], [path], ["-D", "-c", path, "u"],
                     ["-x", path, "u"]):
            r = mqlite_passwd(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(b"Usage", r.stderr)
        r = mqlite_passwd("-b", path, "a:b", "pw")
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(path))


class TestLogins(AuthCase):

    def test_right_wrong_unknown_anonymous(self):
        br = self.start_auth({"password_file": self.passwd_file()})
        for user, pw, rc in (("alice", "alicepw", 0), ("bob", "bobpw", 0),
                             ("carol", "carolpw", 0),
                             ("alice", "bobpw", 5), ("bob", "", 5),
                             ("carol", "carolpw!", 5),
                             ("mallory", "alicepw", 5),
                             ("alice", None, 5), (None, None, 5)):
            with self.subTest(user=user, pw=pw):
                got, c = self.login(br, user, pw, cid="c-%s" % user)
                self.assertEqual(got, rc)
                if rc == 0:
                    c.publish("auth/%s" % user, b"hi", qos=1)
                else:
                    self.assert_closed(c)
        self.assertEqual(br.count("topic='auth/alice'"), 1)
        self.assertEqual(br.count("topic='auth/carol'"), 1)
        log = br.log_text()
        self.assertIn("login refused from 127.0.0.1", log)
        self.assertIn('user "mallory"', log)
        self.assertNotIn("alicepw", log)

    def test_anonymous_allowed_beside_passwords(self):
        br = self.start_auth({"password_file": self.passwd_file(),
                              "allow_anonymous": True})
        self.assertEqual(self.login(br)[0], 0)
        self.assertEqual(self.login(br, "alice", "wrong")[0], 5)
        self.assertEqual(self.login(br, "alice", "alicepw")[0], 0)

    def test_anonymous_off_without_password_file(self):
        br = self.start_auth({"allow_anonymous": False})
        self.assertEqual(self.login(br)[0], 5)
        self.assertEqual(self.login(br, "anyone", "x")[0], 0)

    def test_failed_login_delay(self):
        br = self.start_auth({"password_file": self.passwd_file(),
                              "allow_anonymous": True})
        times = []
        for i in range(10):
            t0 = time.monotonic()
            rc, c = self.login(br, "bob", "guess%d" % i, cid="g%d" % i)
            times.append(time.monotonic() - t0)
            self.assertEqual(rc, 5)
            c.close()
        # 6th to 10th wait 250, 500, 1000, 2000, 4000 ms at least (lower
        # bounds only: the broker cannot answer early).
        self.assertGreaterEqual(times[9], 3.95, times)
        self.assertGreaterEqual(times[8], 1.95, times)
        self.assertGreaterEqual(times[7], 0.95, times)
        self.assertGreaterEqual(times[6] + times[5], 0.7, times)
        # A success is not delayed (it would wait 5 s) and clears the count
        # (bob's hash is cheap: 101 rounds, as mosquitto_passwd writes).
        t0 = time.monotonic()
        self.assertEqual(self.login(br, "bob", "bobpw", cid="ok")[0], 0)
        ok_time = time.monotonic() - t0
        t0 = time.monotonic()
        self.assertEqual(self.login(br, "bob", "again", cid="g9")[0], 5)
        after = time.monotonic() - t0
        self.assertLess(ok_time, 4.0, times)
        self.assertLess(after, 4.0, times)
        self.assertIn("answer delayed", br.log_text())
        # Anonymous clients were served all along.
        self.assert_serving(br)

    def test_hashing_off_the_loop_and_cache(self):
        br = self.start_auth({"password_file": self.passwd_file(),
                              "allow_anonymous": True}, metrics=True)
        # Many logins needing PBKDF2 at once (several seconds of CPU) ...
        pending = []
        for i in range(8):
            c = Client(br.port, timeout=120)
            self.clients.append(c)
            c.send(connect_pkt("h%d" % i, username="alice",
                               password="alicepw" if i % 2 else "no"))
            pending.append((c, 0 if i % 2 else 5))
        # ... while an anonymous client's publish and ping are answered:
        # the loop is not busy hashing.
        probe = Client(br.port, timeout=30)
        self.clients.append(probe)
        probe.connect("probe")
        probe.publish("auth/probe", b"x", qos=1)
        probe.ping()
        still_waiting = sum(1 for c, _ in pending
                            if c.quiet(timeout=0.001) is None)
        for c, rc in pending:
            p = c.backlog.pop(0) if c.backlog else c.expect(CONNACK, 120)
            self.assertEqual(p.type, CONNACK)
            self.assertEqual(p.rc, rc)
        self.assertGreater(still_waiting, 0)
        # A reconnect storm of a known device costs no hashing.
        self.assertEqual(self.login(br, "bob", "bobpw", cid="storm")[0], 0)
        hits = self.metric(br, "mqlite_login_cache_hits_total")
        for i in range(30):
            rc, c = self.login(br, "bob", "bobpw", cid="storm")
            self.assertEqual(rc, 0)
            c.disconnect()
        self.assertGreaterEqual(
            self.metric(br, "mqlite_login_cache_hits_total") - hits, 30)
        self.assertGreaterEqual(self.metric(br, "mqlite_logins_failed_total"),
                                4)


class TestReloadAndFailClosed(AuthCase):

    def test_sighup_reload_keeps_connections(self):
        path = self.passwd_file()
        br = self.start_auth({"password_file": path})
        rc, alice = self.login(br, "alice", "alicepw", cid="alice")
        self.assertEqual(rc, 0)
        self.assertEqual(self.login(br, "dave", "davepw")[0], 5)
        r = mqlite_passwd("-b", path, "dave", "davepw")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = mqlite_passwd("-D", path, "bob")
        self.assertEqual(r.returncode, 0, r.stderr)
        os.kill(br.pid, signal.SIGHUP)
        self.assertTrue(wait_until(
            lambda: "SIGHUP: reloaded" in br.log_text()))
        self.assertEqual(self.login(br, "dave", "davepw")[0], 0)
        self.assertEqual(self.login(br, "bob", "bobpw")[0], 5)
        alice.ping()            # still connected
        # A broken file: the old one stays, the log names the line.
        with open(path, "a") as f:
            f.write("eve:plaintext\n")
        os.kill(br.pid, signal.SIGHUP)
        self.assertTrue(wait_until(
            lambda: "password file and ACL not reloaded" in br.log_text()))
        n = len(read_lines(path))
        self.assertIn("%s:%d: unsupported password hash" % (path, n),
                      br.log_text())
        self.assertEqual(self.login(br, "dave", "davepw")[0], 0)
        alice.ping()

    def test_broken_file_at_start_fails_closed(self):
        path = os.path.join(self.workdir, "passwd")
        with open(path, "w") as f:
            f.write("# ok\nalice:$7$x$abc$def\n")
        for args in (["--check"], []):
            br = self.start_auth({"password_file": path}, wait=False)
            r = subprocess.run(br.command()[:-1] + args, capture_output=True,
                               timeout=30, cwd=self.workdir)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(("%s:2: iterations" % path).encode(), r.stderr)
            self.assertFalse(os.path.exists(br.db_path))
        missing = os.path.join(self.workdir, "nope")
        br = self.start_auth({"password_file": missing}, wait=False)
        r = subprocess.run(br.command()[:-1], capture_output=True,
                           timeout=30, cwd=self.workdir)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cannot open", r.stderr)


class TestMosquittoInterop(AuthCase):

    def test_mosquitto_accepts_a_file_mqlite_wrote(self):
        path = os.path.join(self.workdir, "pw")
        r = mqlite_passwd("-c", "-b", path, "alice", "alicepw")
        self.assertEqual(r.returncode, 0, r.stderr)
        mosq = Mosquitto(self.workdir, "mosq")
        mosq.configure(["user root", "listener %d %s" % (mosq.port, HOST),
                        "allow_anonymous false", "password_file %s" % path,
                        "persistence false"])
        self.addCleanup(mosq.stop)
        mosq.start()
        self.assertEqual(self.login(mosq, "alice", "alicepw")[0], 0)
        self.assertEqual(self.login(mosq, "alice", "nope")[0], 5)

if __name__ == "__main__":
    unittest.main()
