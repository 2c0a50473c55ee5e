# SPDX-License-Identifier: Apache-2.0
"""The systemd notification protocol, with the test standing in for systemd:
a datagram socket named by NOTIFY_SOCKET (a path, then an abstract name)
receives READY=1 once the listener accepts, RELOADING=1 with MONOTONIC_USEC
then READY=1 around a SIGHUP, WATCHDOG=1 at about half of WATCHDOG_USEC
(never when WATCHDOG_PID names another process), and STOPPING=1 on SIGTERM.
Without NOTIFY_SOCKET the daemon runs as before."""

import os
import signal
import socket
import time
import unittest

from mqlite_harness import E2ETestCase, mqlite_only, wait_until


class Manager:
    """The service manager's end: a bound AF_UNIX datagram socket."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages = []

    def drain(self, seconds=0.3):
        """Collects what arrives within seconds (bounded even while the
        watchdog keeps sending)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            self.messages.append(data.decode())

    def wait_for(self, line, timeout=15.0):
        """The first message (from the start) holding line, within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if line in m.split("\n"):
                    return m
            if time.monotonic() > deadline:
                raise AssertionError("no %r in %r" % (line, self.messages))
            self.drain()

    def count(self, line):
        return sum(1 for m in self.messages if line in m.split("\n"))

    def close(self):
        self.sock.close()


@mqlite_only("sd_notify")
class TestNotify(E2ETestCase):
    auto_start = False

    def manager(self, address):
        m = Manager(address)
        self.addCleanup(m.close)
        return m

    def start_with(self, env):
        return self.start_broker(env=env)

    def test_ready_reload_stop_path(self):
        path = os.path.join(self.workdir, "notify.sock")
        m = self.manager(path)
        br = self.start_with({"NOTIFY_SOCKET": path})
        ready = m.wait_for("READY=1")
        self.assertIn("STATUS=ready", ready.split("\n"))
        # READY=1 is sent after the listener is up: the harness connected.
        self.assertEqual(m.count("READY=1"), 1)
        self.assertEqual(m.count("WATCHDOG=1"), 0)

        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        m.messages.clear()
        os.kill(br.pid, signal.SIGHUP)
        rel = m.wait_for("RELOADING=1")
        after = time.clock_gettime(time.CLOCK_MONOTONIC)
        usec = [ln for ln in rel.split("\n")
                if ln.startswith("MONOTONIC_USEC=")]
        self.assertEqual(len(usec), 1, rel)
        t = int(usec[0].split("=", 1)[1]) / 1e6
        self.assertTrue(before <= t <= after,
                        "MONOTONIC_USEC %f not within [%f, %f]"
                        % (t, before, after))
        m.wait_for("READY=1")
        self.assertLess(m.messages.index(rel),
                        m.messages.index(m.wait_for("READY=1")))
        self.assert_serving(br)

        m.messages.clear()
        self.assertEqual(br.stop(), 0)
        m.wait_for("STOPPING=1", timeout=2)

    def test_abstract_socket_and_watchdog(self):
        name = "mqlite-e2e-notify-%d" % os.getpid()
        m = self.manager("\0" + name)
        br = self.start_with({"NOTIFY_SOCKET": "@" + name,
                              "WATCHDOG_USEC": "200000"})
        m.wait_for("READY=1")
        # Half of 200 ms: several pings in a few seconds, however loaded
        # the machine is; only "at least three" is asserted.
        self.assertTrue(
            wait_until(lambda: (m.drain(), m.count("WATCHDOG=1") >= 3)[1],
                       timeout=20),
            "fewer than 3 WATCHDOG=1 in 20 s: %r" % m.messages)
        self.assertEqual(br.stop(), 0)
        m.wait_for("STOPPING=1", timeout=2)
        n = m.count("WATCHDOG=1")
        m.drain()
        self.assertEqual(m.count("WATCHDOG=1"), n,
                         "watchdog pings after STOPPING=1")

    def test_watchdog_for_another_pid(self):
        path = os.path.join(self.workdir, "notify.sock")
        m = self.manager(path)
        self.start_with({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000",
                         "WATCHDOG_PID": "1"})
        m.wait_for("READY=1")
        time.sleep(1.0)
        m.drain()
        self.assertEqual(m.count("WATCHDOG=1"), 0, m.messages)

    def test_without_socket(self):
        env = {k: "" for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        br = self.start_with(env)
        self.assert_serving(br)


if __name__ == "__main__":
    unittest.main()
