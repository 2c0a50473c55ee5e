# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 messages end to end: the forwardable PUBLISH properties reach a
5.0 subscriber (python3-paho-mqtt in MQTTv5 mode, mosquitto_pub -V 5 -D)
and never a 3.1.1 one (raw socket, which would read them as payload);
inbound topic aliases and their refusals (raw 5.0 packets: DISCONNECT 0x94
and 0x82); Message Expiry for a message queued for an offline persistent
session and for a retained one, also across a restart, with the rows read
back from SQLite; an expired retained message on a topic nobody
subscribes to swept from memory and the retained table (read with the
sqlite3 shell), counted, its slot of limits.max_retained and
limits.retained_bytes free again, also after a restart and for 1,000 at
once; a message larger than a subscriber's Maximum Packet Size
dropped for it and counted; the rule fields {content_type},
{response_topic}, {correlation_data}, {user_properties.NAME} and the
Payload Format Indicator deciding {payload_raw}, read back with sqlite3.
The standard parts also run against Mosquitto (E2E_TARGET=mosquitto)."""

import json
import os
import queue
import subprocess
import time
import unittest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqlite_harness import (CONNACK, HOST, MOSQUITTO, PUBLISH, E2ETestCase,
                            mqlite_only, wait_until)
from mqtt5_util import (DISCONNECT, P5, P_CONTENT_TYPE, P_MESSAGE_EXPIRY,
                        P_TOPIC_ALIAS, P_TOPIC_ALIAS_MAXIMUM,
                        P_USER_PROPERTY, connect5, props, publish5,
                        subscribe5)
from test_webhook import WebhookCase


class Paho5:
    """A python3-paho-mqtt client in MQTT 5.0 mode with a message queue."""

    def __init__(self, port, client_id, connect_props=None, clean=True):
        self.q = queue.Queue()
        self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.on_message = lambda c, u, m: self.q.put(m)
        self.connected = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc, p=None: \
            self.connected.put(rc)
        self.c.connect(HOST, port, keepalive=30, clean_start=clean,
                       properties=connect_props)
        self.c.loop_start()
        rc = self.connected.get(timeout=10)
        if rc != 0:
            raise AssertionError("paho CONNACK %s" % rc)

    def subscribe(self, topic, qos=1):
        done = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, codes, p=None: done.put(mid)
        self.c.subscribe(topic, qos=qos)
        done.get(timeout=10)

    def publish(self, topic, payload, qos=1, retain=False, props=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain,
                              properties=props)
        info.wait_for_publish(timeout=10)

    def get(self, timeout=5.0):
        return self.q.get(timeout=timeout)

    def none(self, timeout=0.5):
        try:
            m = self.q.get(timeout=timeout)
        except queue.Empty:
            return None
        return m

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def pub_props(**kw):
    p = Properties(PacketTypes.PUBLISH)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class Mqtt5Case(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.pahos = []

    def tearDown(self):
        for p in self.pahos:
            p.close()
        super().tearDown()

    def paho(self, client_id, broker=None, **kw):
        p = Paho5((broker or self.broker).port, client_id, **kw)
        self.pahos.append(p)
        return p

    def raw5(self, client_id, *prop):
        """A raw 5.0 connection with CONNECT properties prop ((id, value)
        pairs); returns (client, CONNACK properties)."""
        c = self.client(connect=False)
        c.send(connect5(client_id, prop=props(*prop)))
        ack = P5(c.expect(CONNACK))
        self.assertEqual(ack.reason, 0, "CONNACK reason")
        return c, ack.props

    def expect_disconnect(self, c, reason, mosquitto=None):
        """mosquitto: the reason Mosquitto 2.0 sends instead, where it
        differs (it calls a Topic Alias of 0 malformed, 0x81)."""
        p = c.expect(DISCONNECT, timeout=5)
        self.assertGreaterEqual(len(p.body), 1)
        want = mosquitto if MOSQUITTO and mosquitto is not None else reason
        self.assertEqual(p.body[0], want,
                         "DISCONNECT reason 0x%02x" % p.body[0])
        self.assert_closed(c)


class TestProperties(Mqtt5Case):

    def test_properties_to_v5_subscriber_not_v311(self):
        sub5 = self.paho("pr-sub5")
        sub5.subscribe("pr/t", qos=1)
        sub3 = self.client(client_id="pr-sub3")
        sub3.subscribe([("pr/t", 1)])
        pub = self.paho("pr-pub")
        pp = pub_props(PayloadFormatIndicator=1, MessageExpiryInterval=60,
                       ContentType="application/json",
                       ResponseTopic="pr/reply",
                       CorrelationData=b"\x00\x01corr\xff",
                       UserProperty=[("site", "a1"), ("unit", "C"),
                                     ("site", "a2")])
        pub.publish("pr/t", b'{"t":21.5}', qos=1, props=pp)
        m = sub5.get()
        self.assertEqual(m.topic, "pr/t")
        self.assertEqual(m.payload, b'{"t":21.5}')
        p = m.properties
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertTrue(50 <= p.MessageExpiryInterval <= 60,
                        p.MessageExpiryInterval)
        self.assertEqual(p.ContentType, "application/json")
        self.assertEqual(p.ResponseTopic, "pr/reply")
        self.assertEqual(p.CorrelationData, b"\x00\x01corr\xff")
        # User properties keep their order, repeated names included.
        self.assertEqual(p.UserProperty,
                         [("site", "a1"), ("unit", "C"), ("site", "a2")])
        self.assertFalse(hasattr(p, "TopicAlias"))
        self.assertFalse(hasattr(p, "SubscriptionIdentifier"))
        # The 3.1.1 subscriber gets the plain message: properties on the
        # wire would show up in its payload.
        r = sub3.recv_publish()
        self.assertEqual((r.topic, r.payload), ("pr/t", b'{"t":21.5}'))

    def test_mosquitto_pub_user_property(self):
        sub5 = self.paho("mp-sub5")
        sub5.subscribe("mp/t", qos=1)
        subprocess.run(["mosquitto_pub", "-h", HOST,
                        "-p", str(self.broker.port), "-V", "5", "-q", "1",
                        "-t", "mp/t", "-m", "hello",
                        "-D", "PUBLISH", "user-property", "origin", "cli",
                        "-D", "PUBLISH", "content-type", "text/plain",
                        "-D", "PUBLISH", "message-expiry-interval", "120"],
                       check=True, timeout=20, capture_output=True)
        m = sub5.get()
        self.assertEqual(m.payload, b"hello")
        self.assertEqual(m.properties.UserProperty, [("origin", "cli")])
        self.assertEqual(m.properties.ContentType, "text/plain")
        self.assertTrue(100 <= m.properties.MessageExpiryInterval <= 120)

    def test_will_keeps_its_properties(self):
        sub5 = self.paho("wl-sub5")
        sub5.subscribe("wl/t", qos=1)
        c = self.client(connect=False)
        c.send(connect5("wl-pub", will=("wl/t", b"gone", 1, False),
                        will_prop=props((P_CONTENT_TYPE, "text/plain"),
                                        (P_MESSAGE_EXPIRY, 600),
                                        (P_USER_PROPERTY, ("why", "lost")))))
        self.assertEqual(c.expect(CONNACK).body[1], 0)
        c.abort()
        m = sub5.get()
        self.assertEqual(m.payload, b"gone")
        self.assertEqual(m.properties.ContentType, "text/plain")
        self.assertEqual(m.properties.UserProperty, [("why", "lost")])
        self.assertTrue(580 <= m.properties.MessageExpiryInterval <= 600,
                        m.properties.MessageExpiryInterval)

    def test_v5_plain_message_has_no_properties(self):
        sub5 = self.paho("pl-sub5")
        sub5.subscribe("pl/t", qos=0)
        pub = self.client(client_id="pl-pub3")
        pub.publish("pl/t", b"v311", qos=1)
        m = sub5.get()
        self.assertEqual(m.payload, b"v311")
        for name in ("PayloadFormatIndicator", "MessageExpiryInterval",
                     "ContentType", "UserProperty"):
            self.assertFalse(hasattr(m.properties, name), name)


class TestTopicAlias(Mqtt5Case):

    def test_alias_set_then_used(self):
        sub = self.client(client_id="ta-sub")
        sub.subscribe([("ta/#", 1)])
        c, cp = self.raw5("ta-pub")
        self.assertIn(P_TOPIC_ALIAS_MAXIMUM, cp, "broker advertises aliases")
        amax = cp[P_TOPIC_ALIAS_MAXIMUM]
        self.assertGreaterEqual(amax, 1)
        c.send(publish5("ta/one", b"1", prop=props((P_TOPIC_ALIAS, 1))))
        c.send(publish5("", b"2", prop=props((P_TOPIC_ALIAS, 1))))
        c.send(publish5("ta/two", b"3", prop=props((P_TOPIC_ALIAS, amax))))
        c.send(publish5("", b"4", prop=props((P_TOPIC_ALIAS, amax))))
        c.send(publish5("ta/re", b"5", prop=props((P_TOPIC_ALIAS, 1))))
        c.send(publish5("", b"6", prop=props((P_TOPIC_ALIAS, 1))))
        got = [(p.topic, p.payload) for p in sub.collect(6)]
        self.assertEqual(got, [("ta/one", b"1"), ("ta/one", b"2"),
                               ("ta/two", b"3"), ("ta/two", b"4"),
                               ("ta/re", b"5"), ("ta/re", b"6")])
        if not MOSQUITTO:
            # Stored under the topic the alias stands for (QoS 0 rows
            # commit lazily, hence the wait).
            self.assertEqual(self.broker.wait_count(6, "topic like 'ta/%'"),
                             6)
            self.assertEqual(self.broker.count("topic='ta/one'"), 2)
            self.assertEqual(self.broker.count("topic=''"), 0)

    def test_alias_zero_refused(self):
        c, _ = self.raw5("ta-zero")
        c.send(publish5("ta/z", b"x", prop=props((P_TOPIC_ALIAS, 0))))
        self.expect_disconnect(c, 0x94, mosquitto=0x81)

    def test_alias_above_maximum_refused(self):
        c, cp = self.raw5("ta-big")
        amax = cp.get(P_TOPIC_ALIAS_MAXIMUM, 0)
        c.send(publish5("ta/b", b"x", prop=props((P_TOPIC_ALIAS, amax + 1))))
        self.expect_disconnect(c, 0x94)

    def test_unknown_alias_empty_topic_refused(self):
        c, _ = self.raw5("ta-unk")
        c.send(publish5("", b"x", qos=1, prop=props((P_TOPIC_ALIAS, 1))))
        self.expect_disconnect(c, 0x82)
        self.assert_serving(store_check=True)

    def test_alias_does_not_leak_to_subscribers(self):
        sub5 = self.paho("ta-sub5")
        sub5.subscribe("tl/#", qos=0)
        c, _ = self.raw5("ta-leak")
        c.send(publish5("tl/a", b"x", prop=props((P_TOPIC_ALIAS, 1))))
        m = sub5.get()
        self.assertEqual(m.topic, "tl/a")
        self.assertFalse(hasattr(m.properties, "TopicAlias"))


@mqlite_only("Mosquitto 2.0 sends no topic aliases")
class TestTopicAliasOut(Mqtt5Case):
    limits = {"topic_alias_maximum": 5}

    def test_first_topics_get_aliases(self):
        c, _ = self.raw5("tao-sub", (P_TOPIC_ALIAS_MAXIMUM, 2))
        c.send(subscribe5(1, [("oa/#", 0)]))
        c.expect(9)                                 # SUBACK
        pub = self.client(client_id="tao-pub")
        sent = ["oa/a", "oa/a", "oa/b", "oa/c", "oa/c", "oa/b", "oa/a"]
        for i, t in enumerate(sent):
            pub.publish(t, b"%d" % i, qos=1)
        got = []
        for _ in sent:
            p = P5(c.expect(PUBLISH))
            got.append((p.topic, p.props.get(P_TOPIC_ALIAS), p.payload))
        self.assertEqual(got, [("oa/a", 1, b"0"), ("", 1, b"1"),
                               ("oa/b", 2, b"2"), ("oa/c", None, b"3"),
                               ("oa/c", None, b"4"), ("", 2, b"5"),
                               ("", 1, b"6")])

    def test_no_aliases_without_client_maximum(self):
        c, _ = self.raw5("tao-none")
        c.send(subscribe5(1, [("ob/#", 0)]))
        c.expect(9)
        pub = self.client(client_id="tao-pub2")
        for i in range(2):
            pub.publish("ob/t", b"x", qos=1)
        for _ in range(2):
            p = P5(c.expect(PUBLISH))
            self.assertEqual(p.topic, "ob/t")
            self.assertNotIn(P_TOPIC_ALIAS, p.props)


class TestExpiry(Mqtt5Case):

    def offline_subscriber(self, cid, topic):
        s = self.client(client_id=cid, clean=False)
        s.subscribe([(topic, 1)])
        s.disconnect()

    def publish_three(self, topic, short=1):
        pub = self.paho(topic.replace("/", "-") + "-pub")
        pub.publish(topic, b"short", qos=1,
                    props=pub_props(MessageExpiryInterval=short))
        pub.publish(topic, b"long", qos=1,
                    props=pub_props(MessageExpiryInterval=3600))
        pub.publish(topic, b"never", qos=1)
        pub.close()
        self.pahos.remove(pub)

    def test_queued_message_expires(self):
        self.offline_subscriber("ex-q", "exq/t")
        self.publish_three("exq/t")
        if not MOSQUITTO:
            self.assertEqual(self.broker.scalar(
                "select count(*) from session_msgs where client_id='ex-q'"),
                3)
            self.assertEqual(self.broker.scalar(
                "select count(*) from session_msgs where props is not null"
                " and client_id='ex-q'"), 2)
        time.sleep(2.2)
        s = self.client(client_id="ex-q", clean=False)
        got = [p.payload for p in s.collect(2)]
        self.assertEqual(got, [b"long", b"never"])
        self.assertIsNone(s.quiet(0.5))
        if not MOSQUITTO:
            self.assertTrue(wait_until(lambda: self.broker.scalar(
                "select count(*) from session_msgs where client_id='ex-q'")
                == 0))

    def test_v5_subscriber_gets_remaining_interval(self):
        sub = self.paho("ex-rem", clean=False, connect_props=self.session())
        sub.subscribe("exr/t", qos=1)
        sub.close()
        self.pahos.remove(sub)
        pub = self.paho("exr-pub")
        pub.publish("exr/t", b"x", qos=1,
                    props=pub_props(MessageExpiryInterval=30))
        time.sleep(2.1)
        sub = self.paho("ex-rem", clean=False, connect_props=self.session())
        m = sub.get()
        self.assertEqual(m.payload, b"x")
        self.assertTrue(10 <= m.properties.MessageExpiryInterval <= 28,
                        m.properties.MessageExpiryInterval)

    @staticmethod
    def session():
        p = Properties(PacketTypes.CONNECT)
        p.SessionExpiryInterval = 3600
        return p

    def test_retained_message_expires(self):
        pub = self.paho("exret-pub")
        pub.publish("exret/t", b"old", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=3))
        t0 = time.monotonic()
        pub.publish("exret/keep", b"kept", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=3600))
        s1 = self.paho("exret-s1")
        s1.subscribe("exret/t", qos=1)
        m = s1.get()
        self.assertEqual(m.payload, b"old")
        self.assertTrue(m.retain)
        self.assertLessEqual(m.properties.MessageExpiryInterval, 3)
        self.assertGreaterEqual(m.properties.MessageExpiryInterval, 1)
        time.sleep(max(0.0, t0 + 3.5 - time.monotonic()))
        s2 = self.paho("exret-s2")
        s2.subscribe("exret/#", qos=1)
        m = s2.get()
        self.assertEqual(m.payload, b"kept")
        self.assertIsNone(s2.none(0.7))
        if not MOSQUITTO:
            self.assertTrue(wait_until(lambda: self.broker.scalar(
                "select group_concat(topic) from retained") ==
                "exret/keep"))

    @mqlite_only("expiry across a restart needs persistence")
    def test_expiry_across_restart(self):
        self.offline_subscriber("exr-q", "exs/t")
        self.publish_three("exs/t", short=2)
        pub = self.paho("exs-ret")
        pub.publish("exs/r1", b"gone", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=2))
        pub.publish("exs/r2", b"stays", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=3600,
                                    UserProperty=[("k", "v")]))
        pub.close()
        self.pahos.remove(pub)
        self.assertEqual(self.broker.scalar(
            "select count(*) from retained where topic like 'exs/%'"), 2)
        self.assertEqual(self.broker.stop(), 0)
        time.sleep(2.3)     # the short intervals end while stopped
        self.broker.start()
        self.assertEqual(self.broker.scalar(
            "select count(*) from retained where topic like 'exs/%'"), 1)
        self.assertEqual(self.broker.scalar(
            "select count(*) from session_msgs where client_id='exr-q'"), 2)
        s = self.client(client_id="exr-q", clean=False)
        self.assertEqual([p.payload for p in s.collect(2)],
                         [b"long", b"never"])
        s5 = self.paho("exs-s5")
        s5.subscribe("exs/#", qos=1)
        m = s5.get()
        self.assertEqual((m.topic, m.payload), ("exs/r2", b"stays"))
        self.assertEqual(m.properties.UserProperty, [("k", "v")])
        self.assertTrue(3590 <= m.properties.MessageExpiryInterval <= 3600)
        self.assertIsNone(s5.none(0.5))


class TestPacketTooLarge(Mqtt5Case):

    def test_too_large_dropped_for_that_subscriber(self):
        cp = Properties(PacketTypes.CONNECT)
        cp.MaximumPacketSize = 200
        small = self.paho("big-small", connect_props=cp)
        small.subscribe("big/t", qos=1)
        large = self.paho("big-large")
        large.subscribe("big/t", qos=1)
        pub = self.paho("big-pub")
        pub.publish("big/t", b"x" * 500, qos=1)
        pub.publish("big/t", b"small", qos=1)
        self.assertEqual(large.get().payload, b"x" * 500)
        self.assertEqual(large.get().payload, b"small")
        self.assertEqual(small.get().payload, b"small")
        self.assertIsNone(small.none(0.3))


@mqlite_only("metrics and the rules engine")
class TestMqliteOnly(Mqtt5Case):
    auto_start = False
    needs_db = True

    def test_packet_too_large_counted(self):
        from mqlite_harness import free_port
        mport = free_port()
        br = self.start_broker()
        br.stop()
        br.update_config(metrics={"bind": HOST, "port": mport})
        br.start()
        self.broker = br
        cp = Properties(PacketTypes.CONNECT)
        cp.MaximumPacketSize = 100
        sub = self.paho("cnt-sub", connect_props=cp)
        sub.subscribe("cnt/#", qos=0)
        pub = self.paho("cnt-pub")
        for i in range(3):
            pub.publish("cnt/t", b"y" * 300, qos=1)
        pub.publish("cnt/t", b"ok", qos=1)
        self.assertEqual(sub.get().payload, b"ok")

        def value():
            import urllib.request
            url = "http://%s:%d/metrics" % (HOST, mport)
            with urllib.request.urlopen(url, timeout=10) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith(
                            "mqlite_packet_too_large_dropped_total "):
                        return int(float(line.split()[1]))
            return None
        self.assertEqual(value(), 3)
        self.assertIn("larger than its Maximum Packet Size", br.log_text())

    def test_rule_fields(self):
        rules = {"rules": [{
            "name": "v5",
            "topic": "rf/{dev}",
            "sqlite": {"table": "v5rows", "columns": {
                "dev": "{dev}",
                "ct": "{content_type}",
                "rt": "{response_topic}",
                "cd": "{correlation_data}",
                "unit": "{user_properties.unit}",
                "odd": "{user_properties.x y.z}",
                "raw": "{payload_raw}",
                "mixed": "u={user_properties.unit};c={content_type}"}}}]}
        path = os.path.join(self.workdir, "rules.json")
        with open(path, "w") as f:
            json.dump(rules, f)
        self.broker = self.start_broker(extra_args=["-r", path])
        pub = self.paho("rf-pub")
        pub.publish("rf/a", b"21.5", qos=1, props=pub_props(
            PayloadFormatIndicator=0, ContentType="text/plain",
            ResponseTopic="rf/reply", CorrelationData=b"\xff\x00\x01",
            UserProperty=[("unit", "C"), ("x y.z", "odd"),
                          ("unit", "F")]))
        pub.publish("rf/b", b"\xff\xfe", qos=1, props=pub_props(
            PayloadFormatIndicator=1, CorrelationData=b"req-7"))
        c3 = self.client(client_id="rf-311")
        c3.publish("rf/c", b"plain", qos=1)
        rows = self.broker.rows(
            "select dev, ct, rt, hex(cd), typeof(cd), unit, odd,"
            " typeof(raw), hex(raw), mixed from v5rows order by dev")
        self.assertEqual(rows, [
            ["a", "text/plain", "rf/reply", "FF0001", "blob", "C", "odd",
             "blob", "32312E35", "u=C;c=text/plain"],
            ["b", "", "", "7265712D37", "text", "", "", "text", "FFFE",
             "u=;c="],
            ["c", "", "", "", "null", "", "", "text", "706C61696E",
             "u=;c="]])
        self.assertEqual(self.broker.rows(
            "select typeof(ct), typeof(unit) from v5rows where dev='c'"),
            [["null", "null"]])


@mqlite_only("webhooks")
class TestWebhookEnvelope(WebhookCase):

    def test_envelope_carries_properties(self):
        r = self.receiver()
        self.daemon([self.hook("h", "wh/#",
                               "http://%s:%d/in" % (HOST, r.port))])
        pub = Paho5(self.broker.port, "wh-pub")
        try:
            pub.publish("wh/a", b'{"v":1}', qos=1, props=pub_props(
                PayloadFormatIndicator=1, MessageExpiryInterval=90,
                ContentType="application/json", ResponseTopic="wh/r",
                CorrelationData=b"\xff\x00",
                UserProperty=[("k", "1"), ("k", "2")]))
        finally:
            pub.close()
        c3 = self.client(client_id="wh-311")
        c3.publish("wh/b", b"plain", qos=1)
        recs = r.wait_requests(2, "/in")
        self.assertEqual(len(recs), 2)
        bodies = {json.loads(x["body"])["topic"]: json.loads(x["body"])
                  for x in recs}
        self.assertEqual(bodies["wh/a"]["payload"], {"v": 1})
        self.assertEqual(bodies["wh/a"]["properties"], {
            "payload_format_indicator": 1, "message_expiry_interval": 90,
            "content_type": "application/json", "response_topic": "wh/r",
            "correlation_data": "/wA=",
            "correlation_data_encoding": "base64",
            "user_properties": [["k", "1"], ["k", "2"]]})
        self.assertNotIn("properties", bodies["wh/b"])


def metric(port, name):
    """The value of the unlabelled metric name at /metrics on port."""
    import urllib.request
    url = "http://%s:%d/metrics" % (HOST, port)
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    return None


class TestRetainedSweep(Mqtt5Case):
    """Expired retained messages leave memory and the retained table
    without any subscription (the sweep), free their slot of the retained
    limits, and leave alone what has no expiry or was replaced."""
    auto_start = False

    def sweep_broker(self, limits=None):
        from mqlite_harness import Broker, free_port
        br = Broker(self.workdir, limits=limits)
        self.brokers.append(br)
        self.mport = None
        if not MOSQUITTO:
            self.mport = free_port()
            br.update_config(metrics={"bind": HOST, "port": self.mport})
        br.start()
        self.broker = br
        return br

    def metric(self, name):
        return metric(self.mport, name)

    def retained_topics(self, like):
        """The topics of the retained table under like, read back with the
        sqlite3 shell."""
        return self.broker.rows(
            "select topic from retained where topic like '%s'"
            " order by topic" % like)

    def gone(self, like, t0, short):
        """Waits (bounded) until the retained rows under like are gone;
        against Mosquitto (no table) until the expiry has passed."""
        if MOSQUITTO:
            time.sleep(max(0.0, t0 + short + 0.5 - time.monotonic()))
            return True
        return wait_until(lambda: self.retained_topics(like) == [],
                          timeout=15.0, interval=0.1)

    def test_unsubscribed_expired_retained_removed(self):
        self.sweep_broker()
        pub = self.paho("sw-pub")
        pub.publish("sw/gone", b"short", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=1))
        t0 = time.monotonic()
        pub.publish("sw/long", b"long", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=3600))
        pub.publish("sw/plain", b"plain", qos=1, retain=True)
        # Replaced before it expires by a message without expiry: stays.
        pub.publish("sw/repl", b"old", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=1))
        pub.publish("sw/repl", b"new", qos=1, retain=True)
        c3 = self.client(client_id="sw-311")
        c3.publish("sw/v311", b"v311", qos=1, retain=True)
        if not MOSQUITTO:
            self.assertEqual(self.retained_topics("sw/%"), [
                ["sw/gone"], ["sw/long"], ["sw/plain"], ["sw/repl"],
                ["sw/v311"]])
            self.assertEqual(self.metric("mqlite_retained"), 5)
            self.assertEqual(self.metric("mqlite_retained_expired_total"),
                             0)
        # Nobody subscribes: only the sweep can remove it.
        self.assertTrue(self.gone("sw/gone", t0, 1),
                        "expired retained row still in the table")
        if not MOSQUITTO:
            self.assertEqual(self.retained_topics("sw/%"), [
                ["sw/long"], ["sw/plain"], ["sw/repl"], ["sw/v311"]])
            self.assertEqual(self.metric("mqlite_retained_expired_total"),
                             1)
            self.assertEqual(self.metric("mqlite_messages_expired_total"),
                             1)
            self.assertEqual(self.metric("mqlite_retained"), 4)
            self.assertEqual(self.metric("mqlite_retained_bytes"),
                             len(b"long" b"plain" b"new" b"v311"))
        s = self.paho("sw-late")
        s.subscribe("sw/gone", qos=1)
        self.assertIsNone(s.none(0.7))
        s.subscribe("sw/#", qos=1)
        got = {}
        for _ in range(4):
            m = s.get()
            got[m.topic] = m.payload
        self.assertEqual(got, {"sw/long": b"long", "sw/plain": b"plain",
                               "sw/repl": b"new", "sw/v311": b"v311"})
        self.assertIsNone(s.none(0.5))

    @mqlite_only("limits.max_retained and the retained table")
    def test_count_limit_freed_by_expiry(self):
        self.sweep_broker(limits={"max_retained": 3})
        pub = self.paho("swl-pub")
        for i in range(3):
            pub.publish("swl/%d" % i, b"x", qos=1, retain=True,
                        props=pub_props(MessageExpiryInterval=1))
        t0 = time.monotonic()
        pub.publish("swl/over", b"refused", qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 1)
        self.assertEqual(self.metric("mqlite_retained"), 3)
        self.assertTrue(self.gone("swl/%", t0, 1))
        self.assertEqual(self.metric("mqlite_retained"), 0)
        self.assertEqual(self.metric("mqlite_retained_expired_total"), 3)
        for i in range(3):
            pub.publish("swl/new%d" % i, b"y", qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 1)
        self.assertEqual(self.retained_topics("swl/%"),
                         [["swl/new0"], ["swl/new1"], ["swl/new2"]])
        s = self.paho("swl-sub")
        s.subscribe("swl/#", qos=1)
        self.assertEqual(sorted(s.get().topic for _ in range(3)),
                         ["swl/new0", "swl/new1", "swl/new2"])
        self.assertIsNone(s.none(0.5))

    @mqlite_only("limits.retained_bytes and the retained table")
    def test_bytes_limit_freed_by_expiry(self):
        self.sweep_broker(limits={"retained_bytes": 1000})
        pub = self.paho("swb-pub")
        pub.publish("swb/big", b"b" * 900, qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=1))
        t0 = time.monotonic()
        pub.publish("swb/more", b"m" * 200, qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 1)
        self.assertTrue(self.gone("swb/big", t0, 1))
        self.assertEqual(self.metric("mqlite_retained_bytes"), 0)
        pub.publish("swb/more", b"m" * 990, qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 1)
        self.assertEqual(self.retained_topics("swb/%"), [["swb/more"]])
        self.assertEqual(self.metric("mqlite_retained_bytes"), 990)

    @mqlite_only("the retained table and metrics")
    def test_many_swept_in_bounded_runs(self):
        # More than one run's worth (256) expiring at once: every one
        # goes, the later ones in the runs that follow.
        n = 1000
        self.sweep_broker()
        c, _ = self.raw5("swm-pub")
        t0 = time.monotonic()
        c.send(b"".join(publish5("swm/%d" % i, b"v", retain=True,
                                 prop=props((P_MESSAGE_EXPIRY, 1)))
                        for i in range(n)), timeout=30)
        c.ping(timeout=30)
        # QoS 0: the rows may not be committed yet, so the count first.
        self.assertTrue(wait_until(lambda: self.metric(
            "mqlite_retained_expired_total") == n, timeout=15.0,
            interval=0.1))
        self.assertEqual(self.metric("mqlite_retained"), 0)
        self.assertTrue(self.gone("swm/%", t0, 1))
        self.assert_serving()

    @mqlite_only("persistence across a restart")
    def test_swept_after_restart(self):
        br = self.sweep_broker()
        pub = self.paho("swr-pub")
        pub.publish("swr/t", b"short", qos=1, retain=True,
                    props=pub_props(MessageExpiryInterval=3))
        t0 = time.monotonic()
        pub.close()
        self.pahos.remove(pub)
        self.assertEqual(br.stop(), 0)
        br.start()
        # Loaded before its expiry, then swept by the restarted daemon.
        self.assertEqual(self.retained_topics("swr/%"), [["swr/t"]])
        self.assertLess(time.monotonic() - t0, 3.0,
                        "restart too slow for this check")
        self.assertTrue(self.gone("swr/%", t0, 3))
        self.assertEqual(self.metric("mqlite_retained_expired_total"), 1)


if __name__ == "__main__":
    unittest.main()
