# SPDX-License-Identifier: Apache-2.0
"""The mqtt action (upstream bridge) end to end: a real Mosquitto started by
the test on a free loopback port is the upstream broker; mqlite forwards to
it with Paho C. Upstream down -> 10,000 QoS 1 publishes -> kill -9 mqlite ->
restart -> upstream up: every acknowledged publish arrives, in order, with
no gap, duplicates counted; the same with kill -9 and an upstream restart
while a backlog drains; the outbox is empty at the end; the daemon does not
map Paho until an mqtt action exists; --check names bad settings by their
JSON path. test_bridge_tls.py does the outage through TLS with a client
certificate. Every wait is bounded."""

import json
import os
import subprocess
import threading
import time
import unittest

import paho.mqtt.client as mqtt

from mqlite_harness import (HOST, Broker, E2ETestCase, daemon_path,
                            free_port, helper_path, labelled_metric,
                            wait_until)
from mosquitto_util import Subscriber, upstream_for

# LeakSanitizer: ignore the blocks libpaho itself leaks (see the file).
LSAN_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "lsan_paho.supp")


def read_exact(s, n):
    """n bytes from socket s; EOFError when it closes first."""
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def read_packet(s):
    """One MQTT packet from socket s: (first byte, raw length bytes,
    body)."""
    first = read_exact(s, 1)
    mult, length, raw = 1, 0, b""
    while True:
        d = read_exact(s, 1)
        raw += d
        length += (d[0] & 127) * mult
        mult *= 128
        if d[0] < 128:
            break
    return first, raw, read_exact(s, length)


class LoopbackServer:
    """Listens on a free loopback port (self.port) and hands each
    accepted socket to self.accepted(sock) on its thread until close()."""

    def __init__(self):
        import socket
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(4)
        self.lsock.settimeout(0.5)
        self.port = self.lsock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def _run(self):
        import socket
        while not self.stop.is_set():
            try:
                s, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted(s)

    def accepted(self, sock):
        sock.close()

    def close(self):
        self.stop.set()
        self.lsock.close()
        self.thread.join(timeout=5)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    return path


class Counter(Subscriber):
    """A persistent-session QoS 1 subscriber on the upstream broker that
    records every payload it receives (as text), in arrival order."""

    def __init__(self, port, topic, tls=None, got=None):
        c = mqtt.Client(client_id="counter", clean_session=False)
        if tls is not None:
            c.tls_set(ca_certs=tls["ca"], certfile=tls["ccert"],
                      keyfile=tls["ckey"])
        super().__init__(port, topic, c, got)

    def record(self, msg):
        return msg.payload.decode()

    def count(self):
        with self.lock:
            return len(self.got)

    def verdict(self, n, prefix="msg-"):
        """(missing, out_of_order, duplicates) of payloads prefix0..n-1;
        missing as numbers."""
        missing, disorder, dups = self.verdict_of(
            ["%s%d" % (prefix, i) for i in range(n)])
        return [int(p[len(prefix):]) for p in missing], disorder, dups

    def verdict_of(self, order):
        """(missing, out_of_order, duplicates) of the payloads in order as
        received; what is not in order counts as out of order."""
        pos = {p: i for i, p in enumerate(order)}
        with self.lock:
            got = list(self.got)
        seen, dups, disorder, last = set(), 0, 0, -1
        for p in got:
            if p in seen:
                dups += 1
                continue
            seen.add(p)
            if pos.get(p, -1) < last:
                disorder += 1
            last = pos.get(p, -1)
        return [p for p in order if p not in seen], disorder, dups


class BridgeCase(E2ETestCase):
    needs_db = True
    auto_start = False

    def mqlite(self, upstream_port, extra=None, scheme="tcp", tls=None,
               metrics_port=None):
        mq = {"url": "%s://%s:%d" % (scheme, HOST, upstream_port),
              "topic": "up/{topic}", "qos": 1, "max_in_flight": 64,
              "client_id": "mqlite-bridge-test"}
        if tls is not None:
            mq["tls"] = tls
        mq.update(extra or {})
        rules = write_json(os.path.join(self.workdir, "rules.json"), {
            "rules": [{"name": "up", "topic": "dev/#", "mqtt": mq}]})
        br = Broker(self.workdir, name="broker", extra_args=["-r", rules],
                    env={"LSAN_OPTIONS": "suppressions=" + LSAN_SUPP})
        self.brokers.append(br)
        if metrics_port is not None:
            br.update_config(metrics={"bind": HOST, "port": metrics_port})
        return br.start()

    def publish(self, br, n, topic="dev/a", prefix="msg"):
        r = subprocess.run([helper_path("paho_pub"), HOST, str(br.port),
                            topic, str(n), "1", prefix, "100"],
                           capture_output=True, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def counter_session(self, up, topic="up/#"):
        """Starts up, gives the counter its persistent session there and
        stops up again (an outage); returns the list its copies fill."""
        up.start()
        counter = Counter(up.port, topic)
        counter.connect()
        counter.close()
        up.stop()
        return counter.got

    def outbox_rows(self, br):
        return br.scalar("SELECT count(*) FROM outbox")

    def run_outage(self, tls=None, mq_tls=None, scheme="tcp", n=10000):
        up = upstream_for(self, tls=tls, start=False)
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
        mport = free_port()
        br.update_config(metrics={"bind": HOST, "port": mport})
        br.start()
        self.assertEqual(self.outbox_rows(br), n)
        self.assertEqual(self.metric(mport, "mqlite_bridge_up"), 0)
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
        self.assertEqual(self.metric(mport, "mqlite_bridge_up"), 1)
        self.assertEqual(self.metric(mport, "mqlite_bridge_acked_total"), n)
        self.assertEqual(self.metric(mport, "mqlite_bridge_in_flight"), 0)
        return br

    def metric(self, port, name, route="up/mqtt"):
        """The value of name{route="..."} at /metrics, or None."""
        return labelled_metric(port, name, "route", route)


class TestBridge(BridgeCase):
    def test_kill9_mid_drain_and_upstream_restart(self):
        """Both ends fail while a backlog drains: every acknowledged
        publish arrives, first copies in order; the duplicates (counted)
        are bounded by what can be in flight at the two failures: the
        window at each (test_bridge_window.py makes the first bound
        sharp)."""
        n, window = 5000, 64
        up = upstream_for(self, start=False)
        got = self.counter_session(up)
        br = self.mqlite(up.port)
        self.publish(br, n)
        up.start()
        counter = Counter(up.port, "up/#", got=got)
        counter.connect()
        self.assertTrue(wait_until(lambda: counter.count() >= 1000, 60))
        left_at_kill = self.outbox_rows(br)
        br.kill()
        time.sleep(0.5)
        at_kill = counter.count()
        # Arrived upstream but not deleted yet (the store applies
        # acknowledgements in batches): sent again after the restart.
        undeleted = max(0, at_kill - (n - left_at_kill))
        br.start()
        self.assertTrue(wait_until(lambda: counter.count() >= at_kill +
                                   1500, 60))
        at_stop = counter.count()
        counter.close()
        up.stop()
        up.start()
        counter = Counter(up.port, "up/#", got=counter.got)
        counter.connect()
        self.addCleanup(counter.close)
        self.assertTrue(wait_until(lambda: self.outbox_rows(br) == 0, 120),
                        "outbox not drained: %d" % self.outbox_rows(br))
        self.assertTrue(wait_until(lambda: len(set(counter.got)) >= n, 30))
        missing, disorder, dups = counter.verdict(n)
        print("bridge: killed at %d (outbox %d, %d arrived and not "
              "deleted), upstream restarted at %d of %d; %d duplicate(s) "
              "(window %d)" % (at_kill, left_at_kill, undeleted, at_stop, n,
                               dups, window))
        self.assertEqual(missing, [])
        self.assertEqual(disorder, 0)
        self.assertLess(at_stop, n, "the drain was over before the "
                        "upstream restart: nothing was tested")
        # Resent after the kill: the window (it holds a row until its
        # delete is committed); at the upstream restart: mqlite's window
        # and the counter's own (Paho's default of 20).
        self.assertLessEqual(dups, 2 * window + 20)
        self.assertIn("connection lost", br.log_text())

    def test_outage_kill9_restart_every_publish_once_in_order(self):
        self.run_outage()

    def test_paho_mapped_only_with_an_mqtt_action(self):
        plain = self.start_broker(name="plain")
        def maps(pid):
            with open("/proc/%d/maps" % pid) as f:
                return f.read()
        self.assertNotIn("paho", maps(plain.pid))
        br = self.mqlite(free_port())
        self.assertTrue(wait_until(lambda: "paho" in maps(br.pid), 10))
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


class SilentUpstream(LoopbackServer):
    """An upstream that accepts the connection and answers PINGREQ but
    acknowledges no PUBLISH on its first connection (a broker that stopped
    serving it); from the second connection on it acknowledges."""

    def __init__(self):
        LoopbackServer.__init__(self)
        self.connections = 0
        self.acked = []         # payloads acknowledged, in order
        self.start()

    def accepted(self, s):
        self.connections += 1
        threading.Thread(target=self._serve, args=(s, self.connections > 1),
                         daemon=True).start()

    def _serve(self, s, ack):
        s.settimeout(60)
        try:
            while not self.stop.is_set():
                first, _, body = read_packet(s)
                kind = first[0] >> 4
                if kind == 1:           # CONNECT -> CONNACK accepted
                    s.sendall(b"\x20\x02\x00\x00")
                elif kind == 12:        # PINGREQ -> PINGRESP
                    s.sendall(b"\xd0\x00")
                elif kind == 3 and ack:  # PUBLISH QoS 1 -> PUBACK
                    n = (body[0] << 8) | body[1]
                    pid = body[2 + n:4 + n]
                    self.acked.append(body[4 + n:])
                    s.sendall(b"\x40\x02" + pid)
        except (EOFError, OSError):
            pass
        finally:
            s.close()



class TestBridgeSilentUpstream(BridgeCase):
    def test_no_acknowledgement_reconnects_and_resends(self):
        up = SilentUpstream()
        self.addCleanup(up.close)
        br = self.mqlite(up.port, extra={"keepalive": 5,
                                         "max_in_flight": 4})
        self.publish(br, 3, topic="dev/silent")
        # Nothing is acknowledged on the first connection; after the
        # acknowledgement timeout (10 s at least) a new connection sends
        # the window again and the rows leave the outbox.
        ok = wait_until(lambda: self.outbox_rows(br) == 0, timeout=40,
                        interval=0.5)
        self.assertTrue(ok, "rows still in the outbox; log:\n%s"
                        % br.log_text()[-3000:])
        self.assertGreaterEqual(up.connections, 2)
        self.assertEqual(len(up.acked), 3, up.acked)
        self.assertIn("no acknowledgement for", br.log_text())
