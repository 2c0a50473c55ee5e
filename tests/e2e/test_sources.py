# SPDX-License-Identifier: Apache-2.0
"""
Sources: mqlite subscribes to an existing broker on the site (config
"sources") as an MQTT 3.1.1 client with a persistent session, and feeds what
it receives into the rules, with {source} naming where it came from.

- Against a real Mosquitto started here on a free loopback port: devices
  publish to Mosquitto, mqlite stores the rows; mqlite is killed with
  SIGKILL mid-stream and restarted, and every message Mosquitto accepted is
  in SQLite exactly once per QoS 2 message and at least once per QoS 1.
- Against a scripted broker (this test plays the site broker over a raw
  socket), the protocol details: the acknowledgement leaves only after the
  commit (a sqlite3 shell holds the write lock meanwhile), a QoS 2 resend
  after kill -9 is recognised and not stored twice, PUBCOMP follows PUBREL,
  a broker that lost the session makes mqlite forget the recorded ids.

Every wait is bounded; every process started here is stopped.
"""

import socket
import struct
import subprocess
import time
import urllib.request

import test_held_acks
from mqlite_harness import (CONNACK, CONNECT, PUBACK, PUBCOMP, PUBLISH,
                            PUBREC, PUBREL, SUBACK, SUBSCRIBE, Broker,
                            Client, E2ETestCase, HOST, ack_pkt, free_port,
                            mqlite_only, packet, publish_pkt, wait_until)
from mosquitto_util import Mosquitto


class SiteMosquitto(Mosquitto):
    """The site broker: a real Mosquitto on a free loopback port, with no
    limit on the messages it queues for an offline persistent session.
    With tls (a dict of PEM files: ca, cert, key, and require_cert), a
    second listener on tls_port speaks TLS; the devices keep the plain
    one. Started when made."""

    def __init__(self, workdir, port=None, tls=None, tls_port=None):
        super().__init__(workdir, "site", port)
        self.tls_port = tls_port or (free_port() if tls else None)
        lines = ["per_listener_settings false", "allow_anonymous true",
                 "user root", "persistence false", "max_queued_messages 0",
                 "log_dest stderr", "listener %d %s" % (self.port, HOST)]
        if tls:
            lines += ["listener %d %s" % (self.tls_port, HOST),
                      "cafile %s" % tls["ca"], "certfile %s" % tls["cert"],
                      "keyfile %s" % tls["key"], "require_certificate %s" %
                      ("true" if tls.get("require_cert") else "false")]
            self.ports.append(self.tls_port)
        self.configure(lines)
        self.start()


class ScriptedSite:
    """A listening socket; accept() returns a raw Client on the connection
    mqlite opened, so the test speaks the broker's side by hand."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]

    def accept(self, timeout=15.0):
        self.lsock.settimeout(timeout)
        s, _ = self.lsock.accept()
        c = Client.__new__(Client)
        c.sock = s
        c.buf = b""
        c.backlog = []
        c.timeout = 5.0
        c.next_pid = 1
        c.auto_pubcomp = False
        return c

    def session(self, present, timeout=15.0):
        """Accepts mqlite, checks its CONNECT, answers CONNACK and SUBACK.
        Returns (client, connect flags byte, client id)."""
        c = self.accept(timeout)
        p = c.expect(CONNECT)
        flags = p.body[7]
        n = struct.unpack("!H", p.body[10:12])[0]
        cid = p.body[12:12 + n].decode()
        c.send(packet(CONNACK, 0, bytes([1 if present else 0, 0])))
        s = c.expect(SUBSCRIBE)
        pid = struct.unpack("!H", s.body[:2])[0]
        c.send(packet(SUBACK, 0, struct.pack("!H", pid) + b"\x02"))
        return c, flags, cid

    def close(self):
        self.lsock.close()


class SourceCase(E2ETestCase):
    """What the source tests share: mqlite with one source, the log and
    metrics, the kill -9 run. No test of its own."""
    auto_start = False
    needs_db = True

    def setUp(self):
        super().setUp()
        self.sites = []
        self.scripted = []

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            for s in self.sites:
                s.stop()
            for s in self.scripted:
                s.close()

    def mqlite(self, port, topics, rules=None, metrics=False, scheme="tcp",
               start=True, **src):
        br = Broker(self.workdir, name="gw")
        self.brokers.append(br)
        source = {"name": "site",
                  "url": "%s://%s:%d" % (scheme, HOST, port),
                  "topics": topics,
                  "reconnect": {"min": "100ms", "max": "500ms"}}
        source.update(src)
        extra = {"sources": [source]}
        if rules is not None:
            extra["rules"] = rules
        if metrics:
            self.metrics_port = free_port()
            extra["metrics"] = {"bind": HOST, "port": self.metrics_port}
        br.update_config(**extra)
        if start:
            br.start()
        return br

    def wait_log(self, br, text, timeout=15.0):
        ok = wait_until(lambda: text in br.log_text(), timeout=timeout,
                        interval=0.05)
        self.assertTrue(ok, "log never said %r" % text)

    def metrics(self):
        url = "http://%s:%d/metrics" % (HOST, self.metrics_port)
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def kill9_midstream(self, site, n=2000, port=None, **src):
        """Devices publish n QoS 1 and n QoS 2 messages to the site's
        plain listener; mqlite subscribes through port (the site's by
        default), is killed with SIGKILL mid-stream and restarted: every
        QoS 2 message is stored exactly once, every QoS 1 at least once."""
        br = self.mqlite(port or site.port, [{"topic": "q1/#", "qos": 1},
                                             {"topic": "q2/#", "qos": 2}],
                         **src)
        self.wait_log(br, "subscribed")
        pubs = []
        for qos in (1, 2):
            lines = "".join("%d\n" % i for i in range(n)).encode()
            p = subprocess.Popen(["mosquitto_pub", "-h", HOST, "-p",
                                  str(site.port), "-i", "device-q%d" % qos,
                                  "-t", "q%d/seq" % qos, "-q", str(qos),
                                  "-l"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            p.stdin.write(lines)
            p.stdin.close()
            pubs.append(p)
        # Mid-stream: some rows are in, the devices are still publishing.
        got = br.wait_count(n // 10, timeout=60)
        self.assertGreaterEqual(got, n // 10)
        br.kill()
        killed_at = br.count()
        time.sleep(0.3)
        br.start()
        for p in pubs:
            try:
                rc = p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = "timeout"
            self.assertEqual(rc, 0, p.stderr.read())
            p.stderr.close()
        self.wait_log(br, "connected as mqlite-site (session resumed)")

        def complete():
            return br.scalar("select count(distinct payload) from messages "
                             "where topic='q1/seq'") >= n and \
                br.scalar("select count(distinct payload) from messages "
                          "where topic='q2/seq'") >= n
        self.assertTrue(wait_until(complete, timeout=120, interval=0.2),
                        "missing rows after the restart")
        want = set(str(i) for i in range(n))
        q2 = [r[0] for r in br.rows("select payload from messages "
                                    "where topic='q2/seq'")]
        self.assertEqual(len(q2), n, "QoS 2 stored more than once")
        self.assertEqual(set(q2), want)
        q1 = [r[0] for r in br.rows("select payload from messages "
                                    "where topic='q1/seq'")]
        self.assertEqual(set(q1), want)
        self.assertGreaterEqual(len(q1), n)
        # Every PUBREL arrived: no packet id left recorded.
        self.assertTrue(wait_until(lambda: br.scalar(
            "select count(*) from qos2_inflight") == 0, timeout=20),
            "QoS 2 records left in qos2_inflight")
        self.assertGreater(killed_at, 0)
        self.assertEqual(br.rows("select distinct client_id from messages"),
                         [["mqlite-site"]])
        return br


@mqlite_only("mqlite sources")
class TestSources(SourceCase):

    # -- against a real Mosquitto -------------------------------------------

    def test_rows_source_placeholder_and_metrics(self):
        site = SiteMosquitto(self.workdir)
        self.sites.append(site)
        rules = [{"name": "all", "topic": "#",
                  "sqlite": {"table": "seen",
                             "columns": {"topic": "{topic}",
                                         "src": "{source}",
                                         "qos": "{qos}",
                                         "v": "{payload.v}"}}}]
        br = self.mqlite(site.port, ["dev/#", {"topic": "alarm/#",
                                               "qos": 2}],
                         rules=rules, metrics=True)
        self.wait_log(br, "source site (127.0.0.1:%d): subscribed"
                      % site.port)
        for topic, qos in (("dev/a", 1), ("alarm/b", 2), ("dev/c", 0)):
            subprocess.run(["mosquitto_pub", "-h", HOST, "-p",
                            str(site.port), "-t", topic, "-q", str(qos),
                            "-m", '{"v": %d}' % qos], check=True,
                           timeout=30)
        # A local publish to mqlite itself: {source} is NULL.
        c = self.client(br, client_id="local")
        c.publish("dev/local", b'{"v": 7}', qos=1)
        wait_until(lambda: br.scalar("select count(*) from seen") >= 4,
                   timeout=15)
        rows = br.rows("select topic, ifnull(src, 'NULL'), qos, v "
                       "from seen order by topic")
        self.assertEqual(rows, [["alarm/b", "site", "2", "2"],
                                ["dev/a", "site", "1", "1"],
                                ["dev/c", "site", "0", "0"],
                                ["dev/local", "NULL", "1", "7"]])
        m = self.metrics()
        self.assertIn('mqlite_source_connected{source="site"} 1', m)
        self.assertIn('mqlite_source_received_total{source="site"} 3', m)
        # The site broker goes away: reconnects with backoff, then resumes.
        site.stop()
        self.wait_log(br, "source site (127.0.0.1:%d): disconnected"
                      % site.port)
        wait_until(lambda: 'mqlite_source_connected{source="site"} 0'
                   in self.metrics(), timeout=10)
        self.assertIn('mqlite_source_connected{source="site"} 0',
                      self.metrics())

        def reconnects():
            for line in self.metrics().splitlines():
                if line.startswith("mqlite_source_reconnects_total"):
                    return int(line.split()[-1])
            return 0
        # Retried with backoff while the broker is away (bounded: 100 ms
        # to 500 ms apart here), and mqlite keeps serving meanwhile.
        self.assertTrue(wait_until(lambda: reconnects() >= 3, timeout=15))
        self.assert_serving(br, store_check=False)
        site2 = SiteMosquitto(self.workdir, port=site.port)
        self.sites.append(site2)
        self.assertTrue(wait_until(
            lambda: 'mqlite_source_connects_total{source="site"} 2'
            in self.metrics(), timeout=15), self.metrics())
        self.wait_log(br, "subscribed to 2 topic filters")
        subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(site.port),
                        "-t", "dev/back", "-q", "1", "-m", '{"v": 9}'],
                       check=True, timeout=30)
        self.assertTrue(wait_until(lambda: br.scalar(
            "select count(*) from seen where topic='dev/back' and "
            "src='site' and v=9") == 1, timeout=15))

    def test_kill9_midstream_exactly_once_qos2_at_least_once_qos1(self):
        site = SiteMosquitto(self.workdir)
        self.sites.append(site)
        self.kill9_midstream(site)

    # -- against a scripted broker ------------------------------------------

    def test_acks_follow_commit_and_qos2_resend_after_kill(self):
        site = ScriptedSite()
        self.scripted.append(site)
        br = self.mqlite(site.port, [{"topic": "t/#", "qos": 2}],
                         client_id="gw-1")
        c, flags, cid = site.session(present=False)
        self.assertEqual(cid, "gw-1")
        self.assertEqual(flags & 0x02, 0, "clean session must be 0")
        # Warm up: the table exists before the lock is taken.
        c.send(publish_pkt("t/warm", b"w", qos=1, pid=1))
        self.assertEqual(c.expect(PUBACK).pid, 1)

        # The commit is held up: no PUBACK / PUBREC meanwhile.
        lock = test_held_acks.WriteLock(br.db_path)
        try:
            c.send(publish_pkt("t/q1", b"one", qos=1, pid=2))
            c.send(publish_pkt("t/q2", b"two", qos=2, pid=3))
            with self.assertRaises(TimeoutError):
                p = c.read_raw(timeout=1.5)
                self.fail("acknowledged before the commit: %r" % p)
        finally:
            lock.release()
        self.assertEqual(c.expect(PUBACK, timeout=15).pid, 2)
        self.assertEqual(c.expect(PUBREC, timeout=15).pid, 3)
        self.assertEqual(br.count("payload='one'"), 1)
        self.assertEqual(br.count("payload='two'"), 1)
        self.assertEqual(br.rows("select client_id, packet_id from "
                                 "qos2_inflight"), [["$source/site", "3"]])

        # kill -9 before PUBREL; the broker resends the PUBLISH (DUP).
        br.kill()
        c.close()
        br.start()
        c, _, _ = site.session(present=True)
        c.send(publish_pkt("t/q2", b"two", qos=2, dup=True, pid=3))
        self.assertEqual(c.expect(PUBREC).pid, 3)
        self.assertEqual(br.count("payload='two'"), 1,
                         "QoS 2 resend stored twice")
        c.send(ack_pkt(PUBREL, 3))
        self.assertEqual(c.expect(PUBCOMP).pid, 3)
        self.assertEqual(br.scalar("select count(*) from qos2_inflight"), 0)
        # The packet id is free again: a new message with it is stored.
        c.send(publish_pkt("t/q2", b"three", qos=2, pid=3))
        self.assertEqual(c.expect(PUBREC).pid, 3)
        self.assertEqual(br.count("payload='three'"), 1)

        # The broker lost the session (CONNACK session present 0): the id
        # recorded for "three" means nothing now and a new message reusing
        # it must be stored.
        c.close()
        c, _, _ = site.session(present=False)
        c.send(publish_pkt("t/q2", b"four", qos=2, pid=3))
        self.assertEqual(c.expect(PUBREC).pid, 3)
        self.assertEqual(br.count("payload='four'"), 1)
        self.wait_log(br, "forgetting 1 QoS 2 packet ids")
        c.send(ack_pkt(PUBREL, 3))
        self.assertEqual(c.expect(PUBCOMP).pid, 3)
        # A PUBLISH the codec refuses drops the connection, and mqlite
        # comes back.
        c.send(packet(PUBLISH, 2, b"\x00\x00\x00\x05"))
        c2, _, _ = site.session(present=True)
        c2.send(publish_pkt("t/ok", b"five", qos=1, pid=9))
        self.assertEqual(c2.expect(PUBACK).pid, 9)
        c.close()
        self.assertEqual(br.count("payload='five'"), 1)
        self.wait_log(br, "disconnected: ")
        c2.close()


if __name__ == "__main__":
    import unittest
    unittest.main()


@mqlite_only("mqlite sources and the mqtt action")
class TestSourceLoop(E2ETestCase):
    """A two-way setup with one site broker: mqlite subscribes to dev/# on
    it and forwards every publish (local or from the source) with an mqtt
    action to the same broker under up/. A message that came from the site
    must not go back there; a local publish must."""
    auto_start = False
    needs_db = True

    def test_source_message_never_bridged_back(self):
        site = SiteMosquitto(self.workdir)
        self.addCleanup(site.stop)
        watcher = Client(site.port)
        watcher.connect("watcher")
        watcher.subscribe([("up/#", 1)])
        br = Broker(self.workdir, name="gw")
        self.brokers.append(br)
        url = "tcp://%s:%d" % (HOST, site.port)
        br.update_config(
            sources=[{"name": "site", "url": url,
                      "topics": [{"topic": "dev/#", "qos": 1}],
                      "reconnect": {"min": "100ms", "max": "500ms"}}],
            rules=[{"name": "store", "topic": "#", "sqlite": {
                        "table": "messages", "columns": {
                            "received_ms": "{received_ms}",
                            "topic": "{topic}", "client_id": "{client_id}",
                            "qos": "{qos}", "retain": "{retain}",
                            "payload": "{payload_raw}"}}},
                   {"name": "up", "topic": "#",
                    "mqtt": {"url": url, "topic": "up/{topic}", "qos": 1,
                             "client_id": "gw-up"}}])
        br.start()
        self.assertTrue(wait_until(lambda: "subscribed" in br.log_text(),
                                   timeout=20), br.log_text()[-2000:])
        dev = Client(site.port)
        dev.connect("device")
        dev.publish("dev/a", b"from-site", qos=1)
        dev.disconnect()
        self.assertEqual(br.wait_count(1, "payload = 'from-site'"), 1)
        local = Client(br.port)
        local.connect("local")
        local.publish("dev/b", b"from-local", qos=1)
        local.disconnect()
        # The local publish goes up; the site's must not come back.
        p = watcher.recv_publish(timeout=20)
        self.assertEqual((p.topic, p.payload), ("up/dev/b", b"from-local"))
        extra = watcher.quiet(timeout=2.0)
        self.assertIsNone(extra, "a message went back to its source: %r"
                          % (extra,))
        self.assertTrue(wait_until(
            lambda: "not forwarding dev/a back to" in br.log_text(),
            timeout=5), br.log_text()[-2000:])
