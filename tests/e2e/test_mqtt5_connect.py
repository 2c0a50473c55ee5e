# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 on the broker's listeners beside 3.1.1: CONNECT and CONNACK
(properties, refusals with reason codes), the 5.0 forms of the acks, and
publishes stored like 3.1.1 ones. Raw sockets (byte-exact), paho-mqtt in
5.0 mode and mosquitto_pub/sub -V 5."""

import json
import os
import subprocess
import threading

from mqlite_harness import (CONNACK, HOST, Broker, daemon_path, MOSQUITTO, PINGREQ_PKT, PINGRESP,
                            PUBACK, PUBCOMP, PUBREC, SUBACK, UNSUBACK,
                            E2ETestCase, mqlite_only)
from mqtt5_util import (P_ASSIGNED_ID, P_AUTH_METHOD, P_MAXIMUM_PACKET_SIZE,
                        P_RECEIVE_MAXIMUM, P_REQUEST_PROBLEM,
                        P_REASON_STRING, P_RETAIN_AVAILABLE,
                        P_SERVER_KEEPALIVE, P_SESSION_EXPIRY,
                        P_SHARED_AVAILABLE, P_SUB_ID_AVAILABLE,
                        P_TOPIC_ALIAS_MAXIMUM, P_WILDCARD_AVAILABLE, PUBREL,
                        ack5, closing_packets, connect5, connect_v5, expect5,
                        opts, props, publish5, read5, subscribe5,
                        unsubscribe5)

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
except ImportError:     # pragma: no cover
    mqtt = None


def paho_client(client_id):
    """A paho-mqtt client in 5.0 mode (1.6 or 2.x API)."""
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                           client_id=client_id, protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


class TestConnack5(E2ETestCase):

    @mqlite_only("the properties mqlite advertises")
    def test_connack_properties(self):
        c = self.client(connect=False)
        ca = connect_v5(c, "v5-props")
        self.assertEqual(ca.reason, 0)
        self.assertFalse(ca.session_present)
        p = ca.props
        self.assertEqual(p[P_RECEIVE_MAXIMUM], 1024)
        self.assertEqual(p[P_MAXIMUM_PACKET_SIZE], 1024 * 1024)
        self.assertEqual(p[P_TOPIC_ALIAS_MAXIMUM], 10)
        self.assertEqual(p[P_RETAIN_AVAILABLE], 1)
        self.assertEqual(p[P_WILDCARD_AVAILABLE], 1)
        self.assertEqual(p[P_SUB_ID_AVAILABLE], 1)
        self.assertEqual(p[P_SHARED_AVAILABLE], 1)
        self.assertNotIn(P_ASSIGNED_ID, p)
        self.assertNotIn(P_SERVER_KEEPALIVE, p)
        c.send(PINGREQ_PKT)
        self.assertEqual(read5(c).type, PINGRESP)

    def test_assigned_client_id(self):
        for clean in (True, False):
            with self.subTest(clean=clean):
                c = self.client(connect=False)
                ca = connect_v5(c, "", clean=clean)
                self.assertEqual(ca.reason, 0)
                self.assertIn(P_ASSIGNED_ID, ca.props)
                self.assertGreater(len(ca.props[P_ASSIGNED_ID]), 0)
                c.send(PINGREQ_PKT)
                self.assertEqual(read5(c).type, PINGRESP)

    def test_auth_method_refused(self):
        c = self.client(connect=False)
        c.send(connect5("v5-auth", prop=props((P_AUTH_METHOD, "SCRAM"))))
        pk = closing_packets(c)
        self.assertEqual([p.type for p in pk], [CONNACK])
        self.assertEqual(pk[0].reason, 0x8C)
        self.assert_serving()

    def test_auth_packet_is_protocol_error(self):
        c = self.client(connect=False)
        connect_v5(c, "v5-authpkt")
        c.send(b"\xf0\x00")             # AUTH, Success, no properties
        pk = closing_packets(c)
        if not MOSQUITTO:
            self.assertEqual([(p.type, p.reason) for p in pk],
                             [(14, 0x82)])
        self.assert_serving()

    def test_unknown_level_gets_0x84(self):
        c = self.client(connect=False)
        c.send(connect5("v5-lvl", level=6))
        pk = closing_packets(c)
        self.assertEqual(len(pk), 1)
        self.assertEqual(pk[0].type, CONNACK)
        if not MOSQUITTO:
            self.assertEqual(pk[0].reason, 0x84)


class TestKeepaliveCap(E2ETestCase):
    limits = {"max_keepalive": "30s", "topic_alias_maximum": 0,
              "receive_maximum": 7}

    @mqlite_only("limits.max_keepalive")
    def test_server_keepalive(self):
        for asked, want in ((60, 30), (0, 30), (20, None)):
            with self.subTest(asked=asked):
                c = self.client(connect=False)
                ca = connect_v5(c, "v5-ka-%d" % asked, keepalive=asked)
                self.assertEqual(ca.props.get(P_SERVER_KEEPALIVE), want)
                self.assertNotIn(P_TOPIC_ALIAS_MAXIMUM, ca.props)
                self.assertEqual(ca.props[P_RECEIVE_MAXIMUM], 7)
                c.close()


class TestAcks5(E2ETestCase):

    def test_qos_flows_and_rows(self):
        """A 5.0 publish without properties is stored like a 3.1.1 one."""
        c = self.client(connect=False)
        connect_v5(c, "v5-acks")
        c.send(publish5("v5/q1", b"one", qos=1, pid=7))
        a = expect5(c, PUBACK)
        if MOSQUITTO:   # 0x10 No matching subscribers is also standard
            self.assertIn(a.reason, (0, 0x10))
        else:
            self.assertEqual((a.pid, a.reason, a.body), (7, 0, b"\x00\x07"))
        c.send(publish5("v5/q2", b"two", qos=2, pid=8))
        r = expect5(c, PUBREC)
        self.assertEqual((r.pid, r.reason), (8, 0))
        c.send(ack5(PUBREL, 8))
        p = expect5(c, PUBCOMP)
        self.assertEqual((p.pid, p.reason), (8, 0))
        # PUBREL for an id not in use: PUBCOMP 0x92.
        c.send(ack5(PUBREL, 99))
        p = expect5(c, PUBCOMP)
        self.assertEqual(p.pid, 99)
        if not MOSQUITTO:       # Mosquitto answers Success
            self.assertEqual(p.reason, 0x92)
        c.send(publish5("v5/q0", b"zero"))
        c.send(PINGREQ_PKT)
        self.assertEqual(read5(c).type, PINGRESP)
        if not MOSQUITTO:
            self.broker.wait_count(3, "topic like 'v5/%'")
            rows = self.broker.rows("select topic, payload, qos from "
                                    "messages order by id")
            self.assertEqual(rows, [["v5/q1", "one", "1"],
                                    ["v5/q2", "two", "2"],
                                    ["v5/q0", "zero", "0"]])

    def test_suback_unsuback_codes(self):
        c = self.client(connect=False)
        connect_v5(c, "v5-sub")
        c.send(subscribe5(3, [("a/#", opts(2)), ("b/+", opts(1)),
                              ("c", opts(0))]))
        s = expect5(c, SUBACK)
        self.assertEqual(s.pid, 3)
        self.assertEqual(s.codes, [2, 1, 0])
        c.send(unsubscribe5(4, ["a/#", "nope"]))
        u = expect5(c, UNSUBACK)
        self.assertEqual((u.pid, u.codes), (4, [0x00, 0x11]))

    def test_delivery_in_5_form(self):
        sub = self.client(connect=False)
        connect_v5(sub, "v5-rx")
        sub.send(subscribe5(1, [("rx/#", opts(2))]))
        expect5(sub, SUBACK)
        pub = self.client(connect=False)
        connect_v5(pub, "v5-tx")
        pub.send(publish5("rx/a", b"hello", qos=1, pid=1))
        expect5(pub, PUBACK)
        m = expect5(sub, 3)
        self.assertEqual((m.topic, m.payload, m.qos), ("rx/a", b"hello", 1))
        self.assertEqual(m.props, {})
        sub.send(ack5(PUBACK, m.pid))
        pub.send(publish5("rx/b", b"two", qos=2, pid=2))
        expect5(pub, PUBREC)
        pub.send(ack5(PUBREL, 2))
        expect5(pub, PUBCOMP)
        m = expect5(sub, 3)
        self.assertEqual((m.topic, m.qos), ("rx/b", 2))
        sub.send(ack5(PUBREC, m.pid))
        rel = expect5(sub, PUBREL)
        self.assertEqual((rel.pid, rel.reason), (m.pid, 0))
        sub.send(ack5(PUBCOMP, m.pid))
        sub.send(PINGREQ_PKT)
        self.assertEqual(read5(sub).type, PINGRESP)


    @mqlite_only("Mosquitto closes the connection for an invalid filter")
    def test_suback_invalid_filter(self):
        c = self.client(connect=False)
        connect_v5(c, "v5-badsub")
        c.send(subscribe5(5, [("ok/#", opts(1)), ("bad/#/x", opts(1))]))
        s = expect5(c, SUBACK)
        self.assertEqual((s.pid, s.codes), (5, [1, 0x8F]))
        c.send(PINGREQ_PKT)
        self.assertEqual(read5(c).type, PINGRESP)


class TestClients5(E2ETestCase):

    def test_paho_v5_roundtrip(self):
        if mqtt is None:
            self.skipTest("python3-paho-mqtt missing")
        got = []
        done = threading.Event()
        subscribed = threading.Event()

        def on_message(cl, ud, msg):
            got.append((msg.topic, msg.payload, msg.qos))
            if len(got) == 3:
                done.set()

        sub = paho_client("paho5-sub")
        sub.on_message = on_message
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.connect(HOST, self.broker.port)
        sub.loop_start()
        try:
            r = sub.subscribe("paho5/#", qos=2)
            self.assertEqual(r[0], 0)
            # Publishing before the SUBACK races the subscription.
            self.assertTrue(subscribed.wait(10), "no SUBACK")
            pub = paho_client("paho5-pub")
            pub.connect(HOST, self.broker.port)
            pub.loop_start()
            try:
                infos = [pub.publish("paho5/%d" % q, b"p%d" % q, qos=q)
                         for q in (0, 1, 2)]
                for i in infos:
                    i.wait_for_publish(5)
                self.assertTrue(done.wait(10), got)
            finally:
                pub.disconnect()
                pub.loop_stop()
        finally:
            sub.disconnect()
            sub.loop_stop()
        self.assertEqual(sorted(got), [("paho5/0", b"p0", 0),
                                       ("paho5/1", b"p1", 1),
                                       ("paho5/2", b"p2", 2)])
        if not MOSQUITTO:
            self.broker.wait_count(3, "topic like 'paho5/%'")

    def test_mosquitto_clients_v5(self):
        """mosquitto_pub -V 5 publishes retained (so the order against the
        subscriber's start does not matter); mosquitto_sub -V 5 gets them."""
        port = str(self.broker.port)
        for q in ("1", "2"):
            subprocess.run(["mosquitto_pub", "-V", "5", "-h", HOST, "-p",
                            port, "-t", "mc5/" + q, "-m", "m" + q, "-q", q,
                            "-r"], check=True, timeout=10)
        out = subprocess.run(["mosquitto_sub", "-V", "5", "-h", HOST, "-p",
                              port, "-t", "mc5/#", "-q", "2", "-C", "2",
                              "-W", "10", "-v"], check=True, timeout=15,
                             stdout=subprocess.PIPE, text=True).stdout
        self.assertEqual(sorted(out.split("\n")[:2]),
                         ["mc5/1 m1", "mc5/2 m2"])
        if not MOSQUITTO:
            self.broker.wait_count(2, "topic like 'mc5/%'")


@mqlite_only("mqlite's ACL file")
class TestAcl5(E2ETestCase):
    auto_start = False

    def setUp(self):
        E2ETestCase.setUp(self)
        acl = os.path.join(self.workdir, "acl.json")
        with open(acl, "w") as f:
            json.dump({"anonymous": [{"topic": "ok/#",
                                      "access": "readwrite"}]}, f)
        br = Broker(self.workdir, name="acl5")
        br.update_config(auth={"acl_file": acl})
        self.brokers.append(br)
        br.start()
        self.broker = br

    def test_refusals_carry_0x87(self):
        c = self.client(connect=False)
        connect_v5(c, "acl5")
        c.send(publish5("no/pub", b"x", qos=1, pid=1))
        a = expect5(c, PUBACK)
        self.assertEqual((a.pid, a.reason), (1, 0x87))
        c.send(publish5("no/pub2", b"x", qos=2, pid=2))
        r = expect5(c, PUBREC)
        self.assertEqual((r.pid, r.reason), (2, 0x87))
        c.send(publish5("ok/pub", b"y", qos=1, pid=3))
        a = expect5(c, PUBACK)
        self.assertEqual((a.pid, a.reason), (3, 0))
        c.send(subscribe5(4, [("ok/#", opts(1)), ("no/#", opts(1))]))
        s = expect5(c, SUBACK)
        self.assertEqual((s.pid, s.codes), (4, [1, 0x87]))
        self.broker.wait_count(1, "topic = 'ok/pub'")
        self.assertEqual(self.broker.count("topic like 'no/%'"), 0)
        # A 3.1.1 client keeps its 3.1.1 answers (PUBACK, SUBACK 0x80).
        old = self.client(client_id="acl311")
        old.publish("no/old", b"z", qos=1)
        self.assertEqual(old.subscribe([("no/#", 1)]), [0x80])


@mqlite_only("mqlite's password file")
class TestLogin5(E2ETestCase):
    auto_start = False

    def setUp(self):
        E2ETestCase.setUp(self)
        pw = os.path.join(self.workdir, "passwd")
        subprocess.run([daemon_path(), "passwd", "-c", "-b", pw, "alice",
                        "secret"], check=True, capture_output=True,
                       timeout=30)
        br = Broker(self.workdir, name="login5")
        br.update_config(auth={"password_file": pw})
        self.brokers.append(br)
        br.start()
        self.broker = br

    def refused(self, **kw):
        c = self.client(connect=False)
        c.send(connect5("login5", **kw))
        pk = closing_packets(c, 15)
        self.assertEqual([p.type for p in pk], [CONNACK])
        return pk[0].reason

    def test_reason_codes(self):
        self.assertEqual(self.refused(), 0x87)
        self.assertEqual(self.refused(username="alice", password="wrong"),
                         0x86)
        self.assertEqual(self.refused(username="nobody", password="x"),
                         0x86)
        c = self.client(connect=False)
        ca = connect_v5(c, "login5", username="alice", password="secret")
        self.assertEqual(ca.reason, 0)
        # 3.1.1 keeps return code 5 for both.
        old = self.client(connect=False)
        self.assertEqual(old.connect("old", expect_rc=None,
                                     username="alice",
                                     password="wrong").rc, 5)
