# SPDX-License-Identifier: Apache-2.0
"""The mqtt action speaking MQTT 5.0 upstream ("mqtt_version": "5"): a real
Mosquitto on a free loopback port is the upstream broker, a python3-paho
MQTTv5 subscriber there sees what mqlite forwards, and a python3-paho
MQTTv5 client publishes into mqlite. The forwardable properties (Payload
Format Indicator, Content Type, Response Topic, Correlation Data, User
Properties, Message Expiry as the interval left) arrive intact; a message
queued while upstream is down survives a kill -9 of mqlite with them (read
back from the outbox's props column); a message whose expiry passes while
queued is dropped and counted, never sent; a 3.1.1 route next to it works
as before (no properties, nothing stored); a PUBACK 0x87 from upstream (a
Mosquitto ACL) is retried with backoff while later rows go on; --check
names a bad value. Every wait is bounded."""

import os
import time
import subprocess

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqlite_harness import (HOST, Broker, E2ETestCase, daemon_path,
                            free_port, labelled_metric, wait_until)
from mosquitto_util import Subscriber, upstream_for
from test_bridge import LSAN_SUPP, write_json


def pub_props(expiry=None):
    """The properties a 5.0 device publishes with."""
    p = Properties(PacketTypes.PUBLISH)
    p.PayloadFormatIndicator = 1
    p.ContentType = "application/json"
    p.ResponseTopic = "reply/dev1"
    p.CorrelationData = b"\x00\x01corr\xff"
    p.UserProperty = [("site", "north"), ("unit", "degC"),
                      ("site", "again")]
    if expiry is not None:
        p.MessageExpiryInterval = expiry
    return p


class Sub5(Subscriber):
    """An MQTTv5 subscriber on the upstream broker with a session that
    outlives its connection (and an upstream restart: Mosquitto persists
    it), recording (topic, payload, properties) in arrival order."""

    def __init__(self, port, topic="#"):
        super().__init__(port, topic, mqtt.Client(client_id="sub5",
                                                  protocol=mqtt.MQTTv5))

    def record(self, msg):
        return (msg.topic, msg.payload, msg.properties)

    def connect(self):
        p = Properties(PacketTypes.CONNECT)
        p.SessionExpiryInterval = 3600
        super().connect(clean_start=False, properties=p)

    def on(self, topic):
        with self.lock:
            return [g for g in self.got if g[0] == topic]


def publish5(port, topic, payload, props, qos=1):
    """One QoS 1 publish from a 5.0 client, acknowledged (so committed)."""
    c = mqtt.Client(client_id="dev5-%d" % time.monotonic_ns(),
                    protocol=mqtt.MQTTv5)
    c.connect(HOST, port, 30)
    c.loop_start()
    try:
        info = c.publish(topic, payload, qos=qos, properties=props)
        info.wait_for_publish(10)
        if not info.is_published():
            raise RuntimeError("publish not acknowledged")
    finally:
        c.disconnect()
        c.loop_stop()


class TestBridgeV5(E2ETestCase):
    needs_db = True
    auto_start = False

    def start_mqlite(self, up_port, metrics_port, payload=None):
        """mqlite with two routes to up_port: "up5" speaks 5.0 (with
        payload as its payload template if given), "up4" 3.1.1 (no
        mqtt_version: the default)."""
        url = "tcp://%s:%d" % (HOST, up_port)
        mq5 = {"url": url, "topic": "v5/{topic}", "qos": 1,
               "mqtt_version": "5", "client_id": "mqlite-v5"}
        if payload is not None:
            mq5["payload"] = payload
        rules = write_json(os.path.join(self.workdir, "rules.json"), {
            "rules": [
                {"name": "up5", "topic": "dev/#", "mqtt": mq5},
                {"name": "up4", "topic": "dev/#", "mqtt": {
                    "url": url, "topic": "v4/{topic}", "qos": 1,
                    "client_id": "mqlite-v4"}}]})
        br = Broker(self.workdir, name="broker", extra_args=["-r", rules],
                    env={"LSAN_OPTIONS": "suppressions=" + LSAN_SUPP})
        self.brokers.append(br)
        br.update_config(metrics={"bind": HOST, "port": metrics_port})
        return br.start()

    def upstream(self, extra=()):
        up = upstream_for(self, extra=extra)
        sub = Sub5(up.port)
        sub.connect()
        return up, sub

    def metric(self, port, name, route="up5/mqtt"):
        return labelled_metric(port, name, "route", route)

    def assert_props(self, p, expiry_max=None):
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertEqual(p.ContentType, "application/json")
        self.assertEqual(p.ResponseTopic, "reply/dev1")
        self.assertEqual(p.CorrelationData, b"\x00\x01corr\xff")
        self.assertEqual(p.UserProperty, [("site", "north"),
                                          ("unit", "degC"),
                                          ("site", "again")])
        if expiry_max is None:
            self.assertFalse(hasattr(p, "MessageExpiryInterval"))
        else:
            self.assertGreaterEqual(p.MessageExpiryInterval, 1)
            self.assertLessEqual(p.MessageExpiryInterval, expiry_max)

    def test_properties_arrive_and_311_route_unchanged(self):
        up, sub = self.upstream()
        self.addCleanup(sub.close)
        mport = free_port()
        br = self.start_mqlite(up.port, mport)
        self.assertTrue(wait_until(
            lambda: self.metric(mport, "mqlite_bridge_up") == 1 and
            self.metric(mport, "mqlite_bridge_up", "up4/mqtt") == 1, 30))
        publish5(br.port, "dev/t1", b'{"t": 21.5}', pub_props())
        publish5(br.port, "dev/t2", b"x", pub_props(expiry=600))
        self.assertTrue(wait_until(
            lambda: len(sub.on("v5/dev/t2")) == 1 and
            len(sub.on("v4/dev/t2")) == 1, 30), repr(sub.got))
        (_, payload, p), = sub.on("v5/dev/t1")
        self.assertEqual(payload, b'{"t": 21.5}')
        self.assert_props(p)
        (_, payload, p), = sub.on("v5/dev/t2")
        self.assertEqual(payload, b"x")
        self.assert_props(p, expiry_max=600)
        # The 3.1.1 route: the payload, no property at all.
        for t in ("v4/dev/t1", "v4/dev/t2"):
            (_, payload, p), = sub.on(t)
            self.assertIn(payload, (b'{"t": 21.5}', b"x"))
            self.assertFalse(hasattr(p, "UserProperty"))
            self.assertFalse(hasattr(p, "ContentType"))
            self.assertFalse(hasattr(p, "MessageExpiryInterval"))
        self.assertTrue(wait_until(
            lambda: br.scalar("SELECT count(*) FROM outbox") == 0, 30))
        self.assertEqual(self.metric(mport, "mqlite_bridge_acked_total"), 2)
        self.assertEqual(self.metric(mport, "mqlite_bridge_expired_total"),
                         0)

    def test_queued_across_restart_keeps_properties_expiry_drops(self):
        up, sub = self.upstream()
        sub.close()
        up.stop()
        mport = free_port()
        br = self.start_mqlite(up.port, mport)
        publish5(br.port, "dev/keep", b"kept", pub_props(expiry=3600))
        t_pub = time.monotonic()
        publish5(br.port, "dev/short", b"short", pub_props(expiry=2))
        publish5(br.port, "dev/none", b"none", pub_props())
        # Queued: a 5.0 row keeps its block and its deadline, a 3.1.1 row
        # none.
        rows = br.rows("SELECT route, props IS NOT NULL, expire_ms IS NOT "
                       "NULL, instr(props, CAST('application/json' AS "
                       "BLOB)) > 0 FROM outbox ORDER BY id")
        self.assertEqual(sorted(tuple(r) for r in rows), sorted([
            ("up5/mqtt", "1", "1", "1"), ("up5/mqtt", "1", "1", "1"),
            ("up5/mqtt", "1", "0", "1"), ("up4/mqtt", "0", "0", ""),
            ("up4/mqtt", "0", "0", ""), ("up4/mqtt", "0", "0", "")]))
        br.kill()
        br.start()
        self.assertEqual(br.scalar("SELECT count(*) FROM outbox "
                                   "WHERE props IS NOT NULL"), 3)
        # The 2 s expiry passes while upstream is still down.
        time.sleep(3.5)
        # Nothing can be sent before upstream is up: at least this much
        # of the expiry is gone at send time.
        waited = int(time.monotonic() - t_pub)
        up.start()
        sub = Sub5(up.port)
        sub.connect()
        self.addCleanup(sub.close)
        self.assertTrue(wait_until(
            lambda: len(sub.on("v5/dev/none")) == 1 and
            len(sub.on("v4/dev/none")) == 1, 90), repr(sub.got))
        self.assertTrue(wait_until(
            lambda: br.scalar("SELECT count(*) FROM outbox") == 0, 30))
        (_, payload, p), = sub.on("v5/dev/keep")
        self.assertEqual(payload, b"kept")
        # The interval left at send time, not the one published.
        self.assert_props(p, expiry_max=3600 - waited + 1)
        (_, payload, p), = sub.on("v5/dev/none")
        self.assert_props(p)
        self.assertEqual(sub.on("v5/dev/short"), [])
        # The 3.1.1 route knows nothing of expiry: all three arrive.
        self.assertEqual(len(sub.on("v4/dev/short")), 1)
        self.assertEqual(self.metric(mport, "mqlite_bridge_expired_total"),
                         1)
        self.assertEqual(self.metric(mport, "mqlite_bridge_expired_total",
                                     "up4/mqtt"), 0)
        self.assertEqual(br.scalar("SELECT count(*) FROM outbox_dead"), 0)
        self.assertIn("expired before it could be sent", br.log_text())

    def test_refused_upstream_is_retried_with_backoff(self):
        """Mosquitto's ACL refuses v5/dev/denied: a 5.0 client gets PUBACK
        0x87 (Not authorized). The row stays, is sent again after a
        backoff (retried counted), the log names the code, and the rows
        after it still go out."""
        acl = os.path.join(self.workdir, "acl")
        with open(acl, "w") as f:
            f.write("topic read #\ntopic write v5/dev/ok/#\n"
                    "topic write v4/#\n")
        up, sub = self.upstream(extra=["acl_file %s" % acl])
        self.addCleanup(sub.close)
        mport = free_port()
        br = self.start_mqlite(up.port, mport)
        publish5(br.port, "dev/denied", b"no", pub_props())
        publish5(br.port, "dev/ok/1", b"yes", pub_props())
        self.assertTrue(wait_until(lambda: len(sub.on("v5/dev/ok/1")) == 1,
                                   30), repr(sub.got))
        self.assertTrue(wait_until(
            lambda: (self.metric(mport, "mqlite_bridge_retried_total") or
                     0) >= 2, 30))
        self.assertIn("bridge: route up5/mqtt: row ", br.log_text())
        self.assertIn("refused upstream: Not authorized (0x87); sent again "
                      "in ", br.log_text())
        self.assertEqual(sub.on("v5/dev/denied"), [])
        self.assertEqual(br.scalar("SELECT count(*) FROM outbox WHERE "
                                   "route = 'up5/mqtt'"), 1)
        self.assertEqual(br.scalar("SELECT count(*) FROM outbox_dead"), 0)
        self.assertEqual(self.metric(mport, "mqlite_bridge_acked_total"), 1)
        # Still retried with backoff, not in a busy loop.
        sent = self.metric(mport, "mqlite_bridge_sent_total")
        time.sleep(2)
        self.assertLess(self.metric(mport, "mqlite_bridge_sent_total") -
                        sent, 10)

    def test_check_names_bad_version(self):
        rules = write_json(os.path.join(self.workdir, "bad.json"), {
            "rules": [{"name": "a", "topic": "x/#", "mqtt": {
                "url": "tcp://h:1", "mqtt_version": 4}}]})
        r = subprocess.run([daemon_path(), "-r", rules, "--check"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.json: rules[0].mqtt.mqtt_version: expected "
                      "\"3.1.1\" or \"5\"", r.stderr)
        rules = write_json(os.path.join(self.workdir, "ok.json"), {
            "rules": [{"name": "a", "topic": "x/#", "mqtt": {
                "url": "tcp://h:1", "mqtt_version": "3.1.1"}},
                {"name": "b", "topic": "x/#", "mqtt": {
                    "url": "tcp://h:1", "mqtt_version": "5"}}]})
        r = subprocess.run([daemon_path(), "-r", rules, "--check"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)



class TestBridgeV5DeadLetters(E2ETestCase):
    """A 5.0 message dead-lettered keeps its properties: the upstream topic
    of route up5 is rendered from the payload ("v5/{payload.room}"), so a
    room holding '+' or '#' makes a topic name that can never be published
    and the row goes to outbox_dead in the publish's own transaction. Its
    property block and expiry are read back with the sqlite3 shell; the
    README's replay recipe (taken from README.md), after the topic is
    corrected, sends it upstream to a real Mosquitto with every property,
    the expiry as what is left; a replayed one whose expiry passed
    meanwhile is dropped and counted, never sent. These dead letters count
    toward outbox.dead_max_bytes with their property block."""
    needs_db = True
    auto_start = False

    assert_props = TestBridgeV5.assert_props
    metric = TestBridgeV5.metric

    def start_gateway(self, up_port, metrics_port, **cfg):
        rules = write_json(os.path.join(self.workdir, "rules.json"), {
            "rules": [{"name": "up5", "topic": "dev/#", "mqtt": {
                "url": "tcp://%s:%d" % (HOST, up_port),
                "topic": "v5/{payload.room}", "qos": 1,
                "mqtt_version": "5", "client_id": "mqlite-v5-dead"}}]})
        br = Broker(self.workdir, name="broker", extra_args=["-r", rules],
                    env={"LSAN_OPTIONS": "suppressions=" + LSAN_SUPP})
        self.brokers.append(br)
        br.update_config(metrics={"bind": HOST, "port": metrics_port}, **cfg)
        br.start()
        return br

    def test_dead_letter_keeps_properties_and_replay_sends_them(self):
        from test_querying import readme_section, run_sqlite
        replay = readme_section()[0][
            "replay the dead letters of one route (with mqlite stopped)"]
        self.assertIn("'alarms/webhook'", replay)
        replay = replay.replace("'alarms/webhook'", "'up5/mqtt'")

        up = upstream_for(self)
        sub = Sub5(up.port)
        sub.connect()
        self.addCleanup(sub.close)
        mport = free_port()
        br = self.start_gateway(up.port, mport)
        self.assertTrue(wait_until(
            lambda: self.metric(mport, "mqlite_bridge_up") == 1, 30))
        publish5(br.port, "dev/a", b'{"room": "hall+1"}',
                 pub_props(expiry=3600))
        publish5(br.port, "dev/b", b'{"room": "attic#"}',
                 pub_props(expiry=2))
        t_short = time.monotonic()
        publish5(br.port, "dev/c", b'{"room": "kitchen"}', pub_props())
        self.assertTrue(wait_until(lambda: len(sub.on("v5/kitchen")) == 1,
                                   30), repr(sub.got))
        self.assert_props(sub.on("v5/kitchen")[0][2])

        # Dead-lettered with the block as published and the deadline.
        self.assertEqual(br.scalar("SELECT count(*) FROM outbox"), 0)
        dead = br.rows("SELECT url, hex(props), expire_ms - created_ms, "
                       "last_error FROM outbox_dead ORDER BY id")
        self.assertEqual([(d[0], d[3]) for d in dead], [
            ("v5/hall+1", "not a valid topic name"),
            ("v5/attic#", "not a valid topic name")])
        for d, expiry in zip(dead, (3600, 2)):
            block = bytes.fromhex(d[1])
            for part in (b"application/json", b"reply/dev1",
                         b"\x00\x01corr\xff", b"\x00\x04site\x00\x05north",
                         b"\x00\x04unit\x00\x04degC",
                         b"\x00\x04site\x00\x05again"):
                self.assertIn(part, block, d)
            # The deadline: the publish's time plus its interval.
            self.assertGreaterEqual(int(d[2]), expiry * 1000 - 1000)
            self.assertLessEqual(int(d[2]), expiry * 1000 + 1000)

        # Replayed with mqlite stopped, the topic corrected first.
        self.assertEqual(br.stop(), 0)
        br.query("UPDATE outbox_dead SET url = 'v5/hall_1' WHERE url = "
                 "'v5/hall+1'; UPDATE outbox_dead SET url = 'v5/attic_1' "
                 "WHERE url = 'v5/attic#'")
        run_sqlite(br.db_path, replay)
        self.assertEqual(br.scalar("SELECT count(*) FROM outbox_dead"), 0)
        self.assertEqual(br.rows(
            "SELECT url, hex(props), bytes = length(url) + length(body) + "
            "length(props) FROM outbox ORDER BY id"),
            [["v5/hall_1", dead[0][1], "1"], ["v5/attic_1", dead[1][1], "1"]])
        # The 2 s expiry of the attic message passes before the restart.
        time.sleep(max(0.0, 2.5 - (time.monotonic() - t_short)))
        br.start()
        self.assertTrue(wait_until(lambda: len(sub.on("v5/hall_1")) == 1,
                                   30), repr(sub.got))
        self.assertTrue(wait_until(
            lambda: br.scalar("SELECT count(*) FROM outbox") == 0, 30))
        (_, payload, p), = sub.on("v5/hall_1")
        self.assertEqual(payload, b'{"room": "hall+1"}')
        self.assert_props(p, expiry_max=3600)
        self.assertEqual(sub.on("v5/attic_1"), [])
        self.assertEqual(self.metric(mport, "mqlite_bridge_expired_total"),
                         1)
        self.assertEqual(self.metric(mport, "mqlite_bridge_acked_total"), 1)


    def test_dead_letters_with_properties_count_toward_the_bound(self):
        """Twenty dead letters of ~650 bytes each, nearly all of it a
        User Property: with a 4 KB bound the oldest go, so the bytes the
        sqlite3 shell measures (props included) stay under it."""
        import urllib.request
        mport = free_port()
        # No upstream at all: these rows never leave the store.
        br = self.start_gateway(free_port(), mport,
                                outbox={"dead_max_bytes": "4KB"})
        p = pub_props()
        p.UserProperty = [("pad", "z" * 600)]
        n = 20
        for i in range(n):
            publish5(br.port, "dev/x", b'{"room": "r+%d"}' % i, p)
        with_props = ("coalesce(length(CAST(url AS BLOB)), 0) + "
                      "coalesce(length(CAST(headers AS BLOB)), 0) + "
                      "coalesce(length(CAST(body AS BLOB)), 0) + "
                      "coalesce(length(CAST(response AS BLOB)), 0) + "
                      "coalesce(length(props), 0)")

        def pruned():
            url = "http://%s:%d/metrics" % (HOST, mport)
            with urllib.request.urlopen(url, timeout=10) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("mqlite_outbox_dead_pruned_total "):
                        return int(float(line.split()[1]))
            return None
        self.assertTrue(wait_until(
            lambda: br.scalar("SELECT count(*) FROM outbox_dead") +
            (pruned() or 0) == n, 20))
        kept = br.rows("SELECT body FROM outbox_dead ORDER BY id")
        self.assertGreater(len(kept), 1)
        self.assertLess(len(kept), 8)
        # The newest are kept, each with its block.
        self.assertEqual([r[0] for r in kept],
                         ['{"room": "r+%d"}' % i
                          for i in range(n - len(kept), n)])
        self.assertEqual(br.scalar("SELECT count(*) FROM outbox_dead "
                                   "WHERE instr(props, CAST('zzzz' AS "
                                   "BLOB)) > 0"), len(kept))
        self.assertLessEqual(float(br.scalar(
            "SELECT total(%s) FROM outbox_dead" % with_props)), 4096)


if __name__ == "__main__":
    import unittest
    unittest.main()
