# SPDX-License-Identifier: Apache-2.0
"""The mqtt action (upstream bridge) end to end: a real Mosquitto started by
the test on a free loopback port is the upstream broker; mqlite forwards to
it with Paho C. Upstream down -> 10,000 QoS 1 publishes -> kill -9 mqlite ->
restart -> upstream up: every acknowledged publish arrives, in order, with
no gap, duplicates counted; the outbox is empty at the end; the daemon does
not map Paho until an mqtt action exists; --check names bad settings by
their JSON path. Every wait is bounded."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest

import paho.mqtt.client as mqtt

from mqlite_harness import (HOST, E2ETestCase, daemon_path, free_port,
                            helper_path, wait_until)

MOSQUITTO = "/usr/sbin/mosquitto"


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    return path


class Upstream:
    """A Mosquitto process on its own port with a persistence file, so a
    subscriber's session and its queued messages survive a restart."""

    def __init__(self, workdir, tls=None):
        self.port = free_port()
        self.workdir = workdir
        self.conf = os.path.join(workdir, "upstream.conf")
        self.log = os.path.join(workdir, "upstream.log")
        lines = ["per_listener_settings false", "allow_anonymous true",
                 "persistence true", "persistence_location %s/" % workdir,
                 "autosave_interval 0", "max_queued_messages 0",
                 "max_inflight_messages 0", "log_dest stderr",
                 "log_type error", "log_type warning",
                 "listener %d %s" % (self.port, HOST)]
        if tls is not None:
            lines += ["cafile %s" % tls["ca"], "certfile %s" % tls["cert"],
                      "keyfile %s" % tls["key"],
                      "require_certificate true"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        log = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf],
                                     stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        import socket
        for _ in range(200):
            try:
                socket.create_connection((HOST, self.port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("upstream mosquitto did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


class Counter:
    """A persistent-session QoS 1 subscriber on the upstream broker that
    records every payload it receives, in arrival order."""

    def __init__(self, port, topic, tls=None):
        self.port = port
        self.topic = topic
        self.got = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="counter", clean_session=False)
        if tls is not None:
            self.c.tls_set(ca_certs=tls["ca"], certfile=tls["ccert"],
                           keyfile=tls["ckey"])
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.got.append(msg.payload.decode())

    def connect(self):
        self.c.connect(HOST, self.port, 60)
        self.c.loop_start()
        self.c.subscribe(self.topic, qos=1)
        if not self.subscribed.wait(10):
            raise RuntimeError("no SUBACK from upstream")

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def count(self):
        with self.lock:
            return len(self.got)

    def verdict(self, n, prefix="msg-"):
        """(missing, out_of_order, duplicates) of payloads prefix0..n-1."""
        with self.lock:
            seq = [int(p[len(prefix):]) for p in self.got]
        seen, dups, disorder, last = set(), 0, 0, -1
        for v in seq:
            if v in seen:
                dups += 1
                continue
            seen.add(v)
            if v < last:
                disorder += 1
            last = v
        missing = [v for v in range(n) if v not in seen]
        return missing, disorder, dups


class BridgeCase(E2ETestCase):
    needs_db = True
    auto_start = False

    def mqlite(self, upstream_port, extra=None, scheme="tcp", tls=None):
        mq = {"url": "%s://%s:%d" % (scheme, HOST, upstream_port),
              "topic": "up/{topic}", "qos": 1, "max_in_flight": 64,
              "client_id": "mqlite-bridge-test"}
        if tls is not None:
            mq["tls"] = tls
        mq.update(extra or {})
        rules = write_json(os.path.join(self.workdir, "rules.json"), {
            "rules": [{"name": "up", "topic": "dev/#", "mqtt": mq}]})
        br = self.start_broker(extra_args=["-r", rules])
        return br

    def publish(self, br, n, topic="dev/a"):
        r = subprocess.run([helper_path("paho_pub"), HOST, str(br.port),
                            topic, str(n), "1", "msg", "100"],
                           capture_output=True, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def outbox_rows(self, br):
        return br.scalar("SELECT count(*) FROM outbox")

    def run_outage(self, tls=None, mq_tls=None, scheme="tcp", n=10000):
        up = Upstream(self.workdir, tls=tls)
        self.addCleanup(up.stop)
        # The counter's session exists before the outage.
        up.start()
        counter = Counter(up.port, "up/#", tls=tls)
        counter.connect()
        counter.close()
        up.stop()
        br = self.mqlite(up.port, scheme=scheme, tls=mq_tls)
        self.publish(br, n)
        self.assertEqual(self.outbox_rows(br), n)
        br.kill()
        br.start()
        self.assertEqual(self.outbox_rows(br), n)
        up.start()
        counter = Counter(up.port, "up/#", tls=tls)
        counter.connect()
        self.addCleanup(counter.close)
        self.assertTrue(wait_until(lambda: counter.count() >= n, 120),
                        "only %d of %d arrived" % (counter.count(), n))
        missing, disorder, dups = counter.verdict(n)
        self.assertEqual(missing, [])
        self.assertEqual(disorder, 0)
        # Nothing was in flight at the kill (upstream was down).
        self.assertEqual(dups, 0)
        self.assertTrue(wait_until(lambda: self.outbox_rows(br) == 0, 60),
                        "outbox not drained: %d" % self.outbox_rows(br))
        self.assertIn("bridge: route up/mqtt: connected to", br.log_text())
        return br


class TestBridge(BridgeCase):
    def test_outage_kill9_restart_every_publish_once_in_order(self):
        self.run_outage()

    def test_paho_mapped_only_with_an_mqtt_action(self):
        plain = self.start_broker(name="plain")
        maps = open("/proc/%d/maps" % plain.pid).read()
        self.assertNotIn("paho", maps)
        br = self.mqlite(free_port())
        self.assertTrue(wait_until(lambda: "paho" in open(
            "/proc/%d/maps" % br.pid).read(), 10))
        out = subprocess.run(["ldd", daemon_path()], capture_output=True,
                             text=True).stdout
        self.assertNotIn("paho", out)

    def test_check_names_bad_settings(self):
        rules = write_json(os.path.join(self.workdir, "bad.json"), {
            "rules": [{"name": "a", "topic": "x/#", "mqtt": {
                "url": "http://h", "qos": 3, "keepalive": 1,
                "max_in_flight": 0, "urls": ["tcp://ok:1", 5],
                "tls": {"cert": "c.pem"}, "password": "p",
                "payload": "{nope}", "bogus": 1}}]})
        r = subprocess.run([daemon_path(), "-r", rules, "--check"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.json: rules[0].mqtt.bogus: unknown key",
                      r.stderr)
        rules = write_json(os.path.join(self.workdir, "bad2.json"), {
            "rules": [{"name": "a", "topic": "x/#", "mqtt": {
                "url": "http://h", "qos": 3, "keepalive": 1,
                "max_in_flight": 0, "urls": ["tcp://ok:1", 5],
                "tls": {"cert": "c.pem"}, "password": "p",
                "payload": "{nope}"}}]})
        r = subprocess.run([daemon_path(), "-r", rules, "--check"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        for path in ("rules[0].mqtt.url", "rules[0].mqtt.qos",
                     "rules[0].mqtt.keepalive", "rules[0].mqtt.max_in_flight",
                     "rules[0].mqtt.urls[1]", "rules[0].mqtt.tls",
                     "rules[0].mqtt.password", "rules[0].mqtt.payload"):
            self.assertIn("bad2.json: " + path + ": ", r.stderr)


if __name__ == "__main__":
    unittest.main()
