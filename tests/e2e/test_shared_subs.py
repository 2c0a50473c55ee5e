# SPDX-License-Identifier: Apache-2.0
"""Shared subscriptions ($share/GROUP/FILTER) with MQTT 3.1.1 clients:
each message goes to exactly one member of each group, round robin, while
the members' normal subscriptions still get their copies; a member's
unacknowledged QoS 1 messages go to another member when it disconnects;
no retained messages on a shared subscribe; malformed share names refused;
unsubscribe removes one member; the ACL checks the FILTER part; limits
count shared subscriptions; a persistent session keeps its shared
subscription across a restart."""

import json
import os
import subprocess
import sys
import threading
import time
import unittest

from mqlite_harness import (HOST, Broker, E2ETestCase, mqlite_only,
                            wait_until)

sys.path.insert(0, "/usr/lib/python3/dist-packages")
import paho.mqtt.client as mqtt  # noqa: E402  (Debian's python3-paho-mqtt)


class PahoMember:
    """A python3-paho-mqtt 3.1.1 client recording what it receives."""

    def __init__(self, port, client_id, filters):
        self.got = []
        self.lock = threading.Lock()
        self.subacked = threading.Event()
        self.cl = mqtt.Client(client_id=client_id, clean_session=True,
                              protocol=mqtt.MQTTv311)
        self.cl.on_message = self._on_message
        self.cl.on_subscribe = self._on_subscribe
        self.granted = None
        self.cl.connect(HOST, port, keepalive=30)
        self.cl.loop_start()
        self.cl.subscribe(filters)
        if not self.subacked.wait(10):
            raise AssertionError("no SUBACK for %s" % client_id)

    def _on_subscribe(self, client, userdata, mid, granted):
        self.granted = list(granted)
        self.subacked.set()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.got.append((msg.topic, msg.payload, msg.qos))

    def count(self):
        with self.lock:
            return len(self.got)

    def payloads(self):
        with self.lock:
            return [p for _, p, _ in self.got]

    def stop(self):
        self.cl.disconnect()
        self.cl.loop_stop()


class SharedCase(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.members = []

    def tearDown(self):
        for m in self.members:
            m.stop()
        super().tearDown()

    def paho(self, cid, filters):
        m = PahoMember(self.broker.port, cid, filters)
        self.members.append(m)
        return m


class TestDistribution(SharedCase):

    def publish_n(self, n, topic="work/%d"):
        pub = self.client(client_id="sh-pub")
        for i in range(n):
            pub.publish(topic % (i % 4), b"m-%d" % i, qos=1)
        return [b"m-%d" % i for i in range(n)]

    def test_each_message_once_per_group_balanced(self):
        n = 60
        # d is alone in group h: it gets every message.
        a = self.paho("sh-a", [("$share/g/work/#", 1)])
        b = self.paho("sh-b", [("$share/g/work/#", 1)])
        c = self.paho("sh-c", [("$share/g/work/#", 0)])
        d = self.paho("sh-d", [("$share/h/work/#", 1)])
        self.assertEqual(c.granted, [0])
        want = self.publish_n(n)
        self.assertTrue(wait_until(
            lambda: a.count() + b.count() + c.count() == n and
            d.count() == n, timeout=20),
            "got a=%d b=%d c=%d d=%d" % (a.count(), b.count(), c.count(),
                                         d.count()))
        time.sleep(0.3)         # nothing more arrives (no duplicates)
        self.assertEqual(a.count() + b.count() + c.count(), n)
        self.assertEqual(sorted(d.payloads()), sorted(want))
        self.assertEqual(sorted(a.payloads() + b.payloads() +
                                c.payloads()), sorted(want),
                         "each message exactly once among the group")
        for name, m in (("a", a), ("b", b), ("c", c)):
            self.assertTrue(n // 3 - 8 <= m.count() <= n // 3 + 8,
                            "member %s got %d of %d" % (name, m.count(), n))
        # c was granted QoS 0: its copies come at QoS 0.
        self.assertTrue(all(q == 0 for _, _, q in c.got))
        self.assertTrue(all(q == 1 for _, _, q in b.got))

    @mqlite_only("Mosquitto 2.0.11 sends a client one copy when its normal "
                 "and shared subscriptions both match")
    def test_normal_subscription_keeps_its_copies(self):
        # MQTT 5.0 section 4.8.2: a client gets a message for its normal
        # subscription, and may get a second copy as a group member.
        n = 30
        a = self.paho("nm-a", [("$share/g/work/#", 1), ("work/#", 1)])
        b = self.paho("nm-b", [("$share/g/work/#", 1)])
        self.assertEqual(a.granted, [1, 1])
        want = self.publish_n(n)
        self.assertTrue(wait_until(
            lambda: a.count() + b.count() == 2 * n, timeout=20),
            "got a=%d b=%d" % (a.count(), b.count()))
        time.sleep(0.3)
        self.assertEqual(a.count() + b.count(), 2 * n)
        pa, pb = a.payloads(), b.payloads()
        for p in want:
            self.assertIn(pa.count(p), (1, 2), p)
            self.assertEqual(pa.count(p) - 1 + pb.count(p), 1, p)
        self.assertEqual(len(pb), n // 2)

    def test_unsubscribe_removes_one_member(self):
        x = self.client(client_id="un-x")
        y = self.client(client_id="un-y")
        self.assertEqual(x.subscribe([("$share/g/un/t", 1)]), [1])
        self.assertEqual(y.subscribe([("$share/g/un/t", 1)]), [1])
        self.assertEqual(x.subscribe([("un/t", 1)]), [1])
        x.unsubscribe(["$share/g/un/t"])
        pub = self.client(client_id="un-pub")
        for i in range(6):
            pub.publish("un/t", b"u-%d" % i, qos=1)
        got_y = [p.payload for p in y.collect(6)]
        self.assertEqual(got_y, [b"u-%d" % i for i in range(6)])
        # x keeps its normal subscription, and only that.
        got_x = [p.payload for p in x.collect(6)]
        self.assertEqual(got_x, [b"u-%d" % i for i in range(6)])
        self.assertIsNone(x.quiet(0.3))
        self.assertIsNone(y.quiet(0.1))

    @mqlite_only("Mosquitto 2.0.11 sends retained messages on a shared "
                 "subscribe")
    def test_no_retained_on_shared_subscribe(self):
        pub = self.client(client_id="ret-pub")
        pub.publish("ret/a", b"old", qos=1, retain=True)
        # A normal subscription gets the retained message...
        n = self.client(client_id="ret-normal")
        self.assertEqual(n.subscribe([("ret/#", 1)]), [1])
        self.assertEqual(n.recv_publish().payload, b"old")
        # ... a shared one (mosquitto_sub) does not: the first message it
        # prints is the live one published after its SUBACK.
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", HOST,
               "-p", str(self.broker.port), "-V", "mqttv311", "-q", "1",
               "-d", "-C", "1", "-W", "20", "-i", "ret-shared",
               "-t", "$share/g/ret/#"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines = []
        try:
            while True:
                line = proc.stdout.readline()
                self.assertTrue(line, "mosquitto_sub ended: %r" % lines)
                lines.append(line.strip())
                if "received suback" in line.lower():
                    break
            pub.publish("ret/a", b"live", qos=1)
            out, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        lines += out.splitlines()
        self.assertEqual(proc.returncode, 0, lines)
        payloads = [ln for ln in lines if not ln.startswith("Client ") and
                    not ln.startswith("Subscribed")]
        self.assertEqual(payloads, ["live"], lines)


class TestRedelivery(SharedCase):
    """A member holding unacknowledged QoS 1 messages goes away: they are
    sent to another member (mqlite; Mosquitto 2.0 drops them), or kept
    with a persistent session when no other member is connected."""

    def run_case(self, persistent):
        x = self.client(client_id="rd-x", clean=not persistent)
        y = self.client(client_id="rd-y")
        self.assertEqual(x.subscribe([("$share/g/rd/#", 1)]), [1])
        self.assertEqual(y.subscribe([("$share/g/rd/#", 1)]), [1])
        pub = self.client(client_id="rd-pub")
        n = 10
        for i in range(n):
            pub.publish("rd/t", b"r-%d" % i, qos=1)
        # x never acknowledges; y does.
        held = [p.payload for p in x.collect(n // 2, ack=False)]
        first = [p.payload for p in y.collect(n // 2)]
        self.assertEqual(len(set(held) | set(first)), n)
        self.assertIsNone(y.quiet(0.3))
        x.close()
        moved = [p.payload for p in y.collect(len(held))]
        self.assertEqual(sorted(moved), sorted(held))
        self.assertIsNone(y.quiet(0.3))
        # Later messages all go to y, the only connected member.
        pub.publish("rd/t", b"after", qos=1)
        self.assertEqual(y.recv_publish().payload, b"after")
        return held

    @mqlite_only("hands a gone member's messages to another member")
    def test_clean_member_closes(self):
        self.run_case(persistent=False)

    @mqlite_only("hands a gone member's messages to another member")
    def test_persistent_member_closes(self):
        self.run_case(persistent=True)
        # The moved messages left x's session: it does not get them again.
        x = self.client(connect=False)
        self.assertTrue(x.connect("rd-x", clean=False).session_present)
        self.assertIsNone(x.quiet(0.5))

    def test_persistent_alone_keeps_until_reconnect(self):
        x = self.client(client_id="al-x", clean=False)
        self.assertEqual(x.subscribe([("$share/g/al/#", 1)]), [1])
        pub = self.client(client_id="al-pub")
        for i in range(3):
            pub.publish("al/t", b"k-%d" % i, qos=1)
        held = [p.payload for p in x.collect(3, ack=False)]
        x.close()
        # Nobody else to take them: they stay with x's session, and come
        # again (DUP) when it reconnects; a member joining later gets only
        # the later messages.
        y = self.client(client_id="al-y")
        self.assertEqual(y.subscribe([("$share/g/al/#", 1)]), [1])
        self.assertIsNone(y.quiet(0.3))
        x = self.client(connect=False)
        self.assertTrue(x.connect("al-x", clean=False).session_present)
        again = x.collect(3)
        self.assertEqual([p.payload for p in again], held)
        self.assertTrue(all(p.dup for p in again))


    @mqlite_only("hands a gone member's messages to another member")
    def test_ended_session_hands_over_to_offline_member(self):
        # x holds 3 unacknowledged messages and goes; y, the other member,
        # is offline too, so x's session keeps them. When x's session ends
        # (x comes back with a clean session) they go to y's session,
        # which gets them when it reconnects.
        y = self.client(client_id="ex-y", clean=False)
        self.assertEqual(y.subscribe([("$share/g/ex/#", 1)]), [1])
        y.disconnect()
        x = self.client(client_id="ex-x", clean=False)
        self.assertEqual(x.subscribe([("$share/g/ex/#", 1)]), [1])
        pub = self.client(client_id="ex-pub")
        for i in range(3):
            pub.publish("ex/t", b"e-%d" % i, qos=1)
        # x is the only member connected: it gets all three.
        held = [p.payload for p in x.collect(3, ack=False)]
        self.assertEqual(sorted(held), [b"e-%d" % i for i in range(3)])
        x.close()
        x = self.client(connect=False)
        self.assertFalse(x.connect("ex-x", clean=True).session_present)
        self.assertIsNone(x.quiet(0.3))
        y = self.client(connect=False)
        self.assertTrue(y.connect("ex-y", clean=False).session_present)
        got = [p.payload for p in y.collect(3)]
        self.assertEqual(sorted(got), sorted(held))
        self.assertIsNone(y.quiet(0.3))


class TestRefused(SharedCase):

    @mqlite_only("Mosquitto 2.0 closes the connection instead (3.1.1)")
    def test_malformed_share_names(self):
        c = self.client(client_id="bad-names")
        bad = ["$share/g", "$share//a", "$share/g+/a", "$share/#/a",
               "$share/g/a#", "$share/g/", "$share/"]
        codes = c.subscribe([(f, 1) for f in bad] + [("$share/g/ok", 1)])
        self.assertEqual(codes, [0x80] * len(bad) + [1])
        c.ping()
        self.assertIn("shared subscription with an empty group name",
                      self.broker.log_text())

    @mqlite_only("mqlite's limits.max_subscriptions")
    def test_limit_counts_shared(self):
        br = self.start_broker(name="lim", limits={"max_subscriptions": 2})
        c = self.client(br, client_id="lim-c")
        self.assertEqual(c.subscribe([("a", 1), ("$share/g/b", 1),
                                      ("$share/h/b", 1)]), [1, 1, 0x80])
        # Re-subscribing an existing one is no new subscription.
        self.assertEqual(c.subscribe([("$share/g/b", 0)]), [0])


@mqlite_only("mqlite's ACL file")
class TestAcl(SharedCase):
    auto_start = False

    def start_acl(self):
        acl = {"users": {"alice": [{"topic": "site/alice/#",
                                    "access": "readwrite"}],
                         "watcher": [{"topic": "site/#", "access": "read"},
                                     {"topic": "site/+/secret/#",
                                      "access": "deny"}],
                         "root": [{"topic": "#", "access": "readwrite"}]}}
        path = os.path.join(self.workdir, "rules.acl.json")
        with open(path, "w") as f:
            json.dump(acl, f)
        br = Broker(self.workdir, name="shacl")
        br.update_config(auth={"acl_file": path})
        self.brokers.append(br)
        br.start()
        self.broker = br

    def test_acl_checks_filter_part(self):
        self.start_acl()
        al = self.client(client_id="acl-alice", username="alice")
        codes = al.subscribe([("$share/g/site/alice/#", 1),
                              ("$share/g/site/bob/#", 1),
                              ("$share/site/alice/x", 1),
                              ("$share/site/bob/#", 1)])
        # The group is not part of the check: "site" as a group does not
        # make "alice/x" readable, and the group name "site" does not help
        # "bob/#" either.
        self.assertEqual(codes, [1, 0x80, 0x80, 0x80])
        root = self.client(client_id="acl-root", username="root")
        root.publish("site/alice/t", b"ok", qos=1)
        root.publish("site/bob/t", b"no", qos=1)
        p = al.recv_publish()
        self.assertEqual((p.topic, p.payload), ("site/alice/t", b"ok"))
        self.assertIsNone(al.quiet(0.3))

    def test_member_denied_a_topic_is_passed_over(self):
        # watcher may read site/# but not site/+/secret/#: the group's
        # secret messages all go to root, the others are shared.
        self.start_acl()
        w = self.client(client_id="acl-w", username="watcher")
        r = self.client(client_id="acl-r", username="root")
        self.assertEqual(w.subscribe([("$share/g/site/#", 1)]), [1])
        self.assertEqual(r.subscribe([("$share/g/site/#", 1)]), [1])
        pub = self.client(client_id="acl-pub", username="root")
        for i in range(4):
            pub.publish("site/a/secret/k", b"s-%d" % i, qos=1)
        for i in range(4):
            pub.publish("site/a/t", b"t-%d" % i, qos=1)
        got_r = [p.payload for p in r.collect(6)]
        got_w = [p.payload for p in w.collect(2)]
        self.assertEqual(sorted(got_r + got_w),
                         sorted([b"s-%d" % i for i in range(4)] +
                                [b"t-%d" % i for i in range(4)]))
        self.assertTrue(all(p.startswith(b"t-") for p in got_w), got_w)
        self.assertIsNone(w.quiet(0.3))
        self.assertIsNone(r.quiet(0.1))


@mqlite_only("restart with the database")
class TestRestart(SharedCase):

    def test_restart_keeps_shared_subscription(self):
        x = self.client(client_id="rs-x", clean=False)
        self.assertEqual(x.subscribe([("$share/g/rs/#", 1)]), [1])
        x.disconnect()
        subs = self.broker.scalar("select subs from sessions "
                                  "where client_id='rs-x'")
        self.assertIn("$share/g/rs/#", subs)
        self.broker.restart()
        pub = self.client(client_id="rs-pub")
        for i in range(3):
            pub.publish("rs/t", b"s-%d" % i, qos=1)
        # Queued for the only member, offline; delivered on reconnect.
        x = self.client(connect=False)
        self.assertTrue(x.connect("rs-x", clean=False).session_present)
        self.assertEqual([p.payload for p in x.collect(3)],
                         [b"s-%d" % i for i in range(3)])
        # It is a shared subscription still: with a second member the
        # messages are split, not copied.
        y = self.client(client_id="rs-y")
        self.assertEqual(y.subscribe([("$share/g/rs/#", 1)]), [1])
        for i in range(4):
            pub.publish("rs/t", b"t-%d" % i, qos=1)
        gx = [p.payload for p in x.collect(2)]
        gy = [p.payload for p in y.collect(2)]
        self.assertEqual(sorted(gx + gy), [b"t-%d" % i for i in range(4)])
        self.assertIsNone(x.quiet(0.2))
        self.assertIsNone(y.quiet(0.1))
        # Unsubscribing drops it from the saved session too.
        x.unsubscribe(["$share/g/rs/#"])
        subs = self.broker.scalar("select subs from sessions "
                                  "where client_id='rs-x'")
        self.assertNotIn("$share/g/rs/#", subs)


if __name__ == "__main__":
    unittest.main()
