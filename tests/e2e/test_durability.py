# SPDX-License-Identifier: Apache-2.0
"""Acknowledge = durable: after kill -9 and a restart on the same database,
every publish that was acknowledged (PUBACK for QoS 1, PUBREC for QoS 2) is
in the table; QoS 2 duplicates across a reconnect or a restart give one row;
persistent sessions and their queued messages survive a restart."""

import socket
import sys
import threading
import time
import unittest

from mqlite_harness import (HOST, PUBACK, PUBCOMP, PUBREC, PUBREL, Closed,
                            E2ETestCase, ack_pkt, publish_pkt)

sys.path.insert(0, "/usr/lib/python3/dist-packages")
import paho.mqtt.client as mqtt  # noqa: E402  (Debian's python3-paho-mqtt)


def payload_numbers(broker, topic):
    out = broker.query("select payload from messages where topic='%s'"
                       % topic)
    return [int(x.split("-")[1]) for x in out.split()] if out else []


class TestKill9(E2ETestCase):
    needs_db = True

    def test_paho_qos1_acked_survive_kill9(self):
        acked_mids = set()
        mid_to_n = {}
        lock = threading.Condition()

        def on_publish(client, userdata, mid):
            with lock:
                acked_mids.add(mid)
                lock.notify_all()

        cl = mqtt.Client(client_id="dur-paho", clean_session=True,
                         protocol=mqtt.MQTTv311)
        cl.on_publish = on_publish
        cl.max_inflight_messages_set(20)
        cl.connect(HOST, self.broker.port, keepalive=30)
        cl.loop_start()
        try:
            n = 0
            t0 = time.monotonic()
            killed = False
            while n < 20000 and time.monotonic() - t0 < 20:
                with lock:
                    # Keep at most 100 publishes outstanding.
                    lock.wait_for(lambda: n - len(acked_mids) < 100,
                                  timeout=5)
                    acked = len(acked_mids)
                if not killed and (acked >= 1500 or
                                   time.monotonic() - t0 > 8):
                    self.broker.kill()
                    killed = True
                    break
                info = cl.publish("dur/paho", "n-%d" % n, qos=1)
                with lock:
                    mid_to_n[info.mid] = n
                n += 1
            self.assertTrue(killed)
        finally:
            cl.disconnect()
            cl.loop_stop()
        with lock:
            acked = sorted(mid_to_n[m] for m in acked_mids if m in mid_to_n)
        self.assertGreaterEqual(len(acked), 100, "too few acks to judge")
        sys.stderr.write("kill -9 after %d sent, %d acked; " % (n, len(acked)))
        self.broker.start()
        stored = set(payload_numbers(self.broker, "dur/paho"))
        missing = [x for x in acked if x not in stored]
        self.assertEqual(missing, [], "%d acknowledged publishes lost "
                         "(of %d acked, %d sent)" % (len(missing),
                                                     len(acked), n))
        self.assertEqual(self.broker.query("pragma integrity_check"), "ok")

    def test_raw_qos2_pubrec_survives_kill9(self):
        c = self.client(client_id="dur-q2")
        recs = []
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                try:
                    p = c.read_raw(0.5)
                except TimeoutError:
                    continue
                except (Closed, OSError):
                    return
                if p.type == PUBREC:
                    recs.append(p.pid)
                    try:
                        c.send(ack_pkt(PUBREL, p.pid))
                    except OSError:
                        return

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        sent = 0
        t0 = time.monotonic()
        try:
            while sent < 3000 and time.monotonic() - t0 < 20:
                if sent - len(recs) >= 20:
                    time.sleep(0.001)
                    continue
                c.send(publish_pkt("dur/q2", b"n-%d" % sent, qos=2,
                                   pid=sent + 1))
                sent += 1
                if len(recs) >= 500:
                    break
        finally:
            self.broker.kill()
            stop.set()
            th.join(5)
        acked = [pid - 1 for pid in recs]
        self.assertGreaterEqual(len(acked), 100, "too few PUBRECs")
        self.broker.start()
        stored = payload_numbers(self.broker, "dur/q2")
        self.assertEqual(sorted(set(acked) - set(stored)), [])
        self.assertEqual(len(stored), len(set(stored)), "duplicate rows")

    def test_sigterm_under_qos1_load(self):
        c = self.client(client_id="dur-term")
        acks = []
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                try:
                    p = c.read_raw(0.5)
                except TimeoutError:
                    continue
                except (Closed, OSError):
                    return
                if p.type == PUBACK:
                    acks.append(p.pid)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        sent = 0
        try:
            while sent < 5000:
                if sent - len(acks) >= 50:
                    time.sleep(0.001)
                    continue
                if len(acks) >= 1000:
                    break
                c.send(publish_pkt("dur/term", b"n-%d" % sent, qos=1,
                                   pid=sent % 65535 + 1))
                sent += 1
            rc = self.broker.stop()
        finally:
            stop.set()
            th.join(5)
        self.assertEqual(rc, 0)
        stored = set(payload_numbers(self.broker, "dur/term"))
        acked = [pid - 1 for pid in acks]
        self.assertGreaterEqual(len(acked), 1000)
        self.assertEqual(sorted(set(acked) - stored), [])
        self.broker.start()

    def test_half_closed_publisher_gets_acks(self):
        c = self.client(client_id="dur-half")
        c.send(b"".join(publish_pkt("dur/half", b"%d" % i, qos=1, pid=i + 1)
                        for i in range(20)))
        c.sock.shutdown(socket.SHUT_WR)
        acks = []
        try:
            while True:
                p = c.read_raw(5)
                if p.type == PUBACK:
                    acks.append(p.pid)
        except (Closed, TimeoutError):
            pass
        self.assertEqual(acks, list(range(1, 21)))
        self.assertEqual(self.broker.count("topic='dur/half'"), 20)

    def test_qos2_resend_after_restart_one_row(self):
        for how in ("kill", "term"):
            with self.subTest(restart=how):
                topic = "dur/q2r/" + how
                c = self.client(client_id="q2r-" + how, clean=False)
                c.send(publish_pkt(topic, b"once", qos=2, pid=42))
                self.assertEqual(c.expect(PUBREC).pid, 42)
                if how == "kill":
                    self.broker.kill()
                    self.broker.start()
                else:
                    c.close()
                    self.assertEqual(self.broker.stop(), 0)
                    self.broker.start()
                c = self.client(connect=False)
                c.connect("q2r-" + how, clean=False)
                c.send(publish_pkt(topic, b"once", qos=2, pid=42, dup=True))
                self.assertEqual(c.expect(PUBREC).pid, 42)
                c.send(ack_pkt(PUBREL, 42))
                self.assertEqual(c.expect(PUBCOMP).pid, 42)
                # The id is free again: a new publish with it is new.
                c.publish(topic, b"twice", qos=2, pid=42)
                self.assertEqual(self.broker.rows(
                    "select payload from messages where topic='%s' "
                    "order by id" % topic), [["once"], ["twice"]])
                c.disconnect()

    def test_persistent_session_survives_kill9(self):
        s = self.client(client_id="dur-sess", clean=False)
        s.subscribe([("dur/sess/+", 1)])
        s.disconnect()
        pub = self.client(client_id="dur-sess-pub")
        for i in range(3):
            pub.publish("dur/sess/a", b"queued-%d" % i, qos=1)
        self.broker.kill()
        self.broker.start()
        s = self.client(connect=False)
        self.assertTrue(s.connect("dur-sess", clean=False).session_present)
        got = s.collect(3)
        self.assertEqual([p.payload for p in got],
                         [b"queued-%d" % i for i in range(3)])
        # The subscription itself survived too.
        pub = self.client(client_id="dur-sess-pub2")
        pub.publish("dur/sess/b", b"live", qos=1)
        self.assertEqual(s.recv_publish().payload, b"live")

    def test_subscription_survives_sigterm(self):
        s = self.client(client_id="dur-sub2", clean=False)
        s.subscribe([("dur/sub2", 2)])
        s.disconnect()
        self.assertEqual(self.broker.stop(), 0)
        self.broker.start()
        pub = self.client(client_id="dur-sub2-pub")
        pub.publish("dur/sub2", b"after-restart", qos=2)
        s = self.client(connect=False)
        self.assertTrue(s.connect("dur-sub2", clean=False).session_present)
        p = s.recv_publish()
        self.assertEqual((p.payload, p.qos), (b"after-restart", 2))

    def test_unacked_outbound_resent_after_restart(self):
        s = self.client(client_id="dur-out", clean=False)
        s.subscribe([("dur/out", 1)])
        pub = self.client(client_id="dur-out-pub")
        pub.publish("dur/out", b"unacked", qos=1)
        first = s.recv_publish(ack=False)
        self.assertEqual(first.payload, b"unacked")
        s.close()
        self.broker.kill()
        self.broker.start()
        s = self.client(connect=False)
        s.connect("dur-out", clean=False)
        p = s.recv_publish()
        self.assertEqual((p.payload, p.qos), (b"unacked", 1))

    def test_clean_session_not_persisted(self):
        s = self.client(client_id="dur-clean", clean=True)
        s.subscribe([("dur/clean", 1)])
        s.disconnect()
        self.assertEqual(self.broker.stop(), 0)
        self.broker.start()
        s = self.client(connect=False)
        self.assertFalse(s.connect("dur-clean", clean=False).session_present)

    def test_repeated_kill9_database_stays_consistent(self):
        total = 0
        for round_ in range(3):
            c = self.client(client_id="rk-%d" % round_)
            for i in range(50):
                c.publish("dur/rk", b"r%d-%d" % (round_, i), qos=1)
            total += 50
            c.send(b"".join(publish_pkt("dur/rk0", b"x") for _ in range(200)))
            self.broker.kill()
            self.broker.start()
            self.assertGreaterEqual(self.broker.count("topic='dur/rk'"),
                                    total)
        self.assertEqual(self.broker.count("topic='dur/rk'"), total)
        self.assertEqual(self.broker.query("pragma integrity_check"), "ok")
        # Still in WAL mode after the kills: the file header's read and
        # write versions are 2 (1 in rollback mode), as SQLite reports.
        with open(self.broker.db_path, "rb") as f:
            self.assertEqual(f.read(20)[18:20], b"\x02\x02")
        self.assertEqual(self.broker.query("pragma journal_mode"), "wal")


if __name__ == "__main__":
    unittest.main()
