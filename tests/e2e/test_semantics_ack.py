# SPDX-License-Identifier: Apache-2.0
"""The "Precise semantics" of acknowledgement, end to end against the real
daemon and the real database file:

- a PUBACK leaves only when the rows of every earlier publish of the same
  connection, QoS 0 included, are committed (read back right after it);
- while a user holds the database's write lock (BEGIN IMMEDIATE through the
  SQLite library), acknowledgements wait; a publish that produces nothing is
  acknowledged as soon as its predecessors are, at once without any;
- SUBACK and UNSUBACK of a persistent session wait for the commit of the
  subscription list and survive kill -9 right after they arrive;
- inbound QoS 2 after kill -9: the client resends only PUBREL, gets PUBCOMP,
  the message is stored and fanned out exactly once, its (client_id,
  packet_id) record is gone when PUBCOMP arrives; outbound, a PUBREL still
  owed to a subscriber is sent again after kill -9, not the PUBLISH, and
  unacknowledged messages are resent with their original packet ids;
- sqlite3 shell users (short writes, .backup, a write lock held longer than
  the busy timeout) during sustained QoS 1 ingest: nothing dropped, no
  connection closed, every PUBACKed message stored, the backup valid;
  SIGTERM while the lock is held commits once it is released, exits 0;
- max_packet_bytes by default: a packet of exactly 1,048,576 bytes (fixed
  header included) is accepted, one byte more closes the connection;
- -p replaces the port of the first listener only; both listeners serve;
- keepalive does not expire a connection that mqlite itself paused, and
  bytes buffered while paused are parsed on resume;
- durability "normal" loses nothing on kill -9; a new database's meta data;
  a relative database.path resolves against the config file's folder.

Every wait is bounded; the write lock is always released."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unittest

from mqlite_harness import (HOST, MOSQUITTO, PUBACK, PUBCOMP,
                            PUBREC, PUBREL, SUBACK, UNSUBACK, Broker, Client,
                            Closed, E2ETestCase, ack_pkt, free_port,
                            mqlite_only, publish_pkt, subscribe_pkt,
                            unsubscribe_pkt, wait_until)

MB = 1048576


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    return path


class WriteLock:
    """A user's write transaction on the live database (the SQLite library,
    as the sqlite3 shell uses it): BEGIN IMMEDIATE takes the write lock, so
    the store thread cannot commit until release(). Always released by the
    test's cleanup."""

    def __init__(self, db_path):
        self.db = sqlite3.connect(db_path, timeout=20,
                                  isolation_level=None)
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("CREATE TABLE IF NOT EXISTS user_notes (note)")
        self.db.execute("INSERT INTO user_notes VALUES ('held')")
        self.held = True

    def release(self):
        if self.held:
            self.held = False
            self.db.execute("COMMIT")
            self.db.close()


class AckCase(E2ETestCase):
    needs_db = True

    def setUp(self):
        self.locks = []
        super().setUp()

    def tearDown(self):
        # Before the brokers stop: a daemon cannot commit (nor exit) while
        # a user holds the write lock.
        for lk in self.locks:
            lk.release()
        super().tearDown()

    def lock(self, br=None):
        lk = WriteLock((br or self.broker).db_path)
        self.locks.append(lk)
        return lk

    def assert_nothing(self, c, timeout=1.0, what="packet"):
        p = c.quiet(timeout)
        self.assertIsNone(p, "%s arrived while the store could not "
                          "commit: %r" % (what, p))


# ---------------------------------------------------------------------------

class TestAckOrder(AckCase):

    def test_puback_after_earlier_qos0_rows_committed(self):
        # Each round: N QoS 0 publishes then one QoS 1, in one write. The
        # moment its PUBACK arrives all N + 1 rows must be readable.
        c = self.client(client_id="order")
        sizes = (1, 7, 50, 200, 500, 1000)
        pad = b"z" * 300
        total = 0
        for r in range(36):
            n = sizes[r % len(sizes)]
            topic = "ord/%d" % r
            data = b"".join(publish_pkt(topic, b"%d-%s" % (i, pad))
                            for i in range(n))
            data += publish_pkt(topic, b"q1", qos=1, pid=r + 1)
            c.send(data, timeout=30)
            a = c.expect(PUBACK, timeout=20)
            self.assertEqual(a.pid, r + 1)
            got = self.broker.count("topic='%s'" % topic)
            self.assertEqual(got, n + 1, "round %d: PUBACK arrived with %d "
                             "of the %d earlier QoS 0 rows committed"
                             % (r, got - 1, n))
            total += n + 1
        self.assertEqual(self.broker.count("topic like 'ord/%'"), total)

    def test_acks_held_while_locked_then_released_in_order(self):
        c = self.client(client_id="held")
        lk = self.lock()
        data = b"".join(publish_pkt("held/q0", b"%d" % i) for i in range(5))
        data += b"".join(publish_pkt("held/q1", b"%d" % i, qos=1, pid=i + 1)
                         for i in range(3))
        c.send(data)
        self.assert_nothing(c, 1.5, "PUBACK")
        self.assertEqual(self.broker.count("topic like 'held/%'"), 0)
        lk.release()
        self.assertEqual([c.expect(PUBACK, 10).pid for _ in range(3)],
                         [1, 2, 3])
        self.assertEqual(self.broker.count("topic like 'held/%'"), 8)

    def test_noop_publish_acked_as_soon_as_predecessors(self):
        rules = write_json(os.path.join(self.workdir, "keep-rules.json"),
                           {"rules": [{"name": "keep", "topic": "keep/#",
                                       "sqlite": {"table": "kept",
                                                  "columns": {
                                                      "v": "{payload}"}}}]})
        self.broker.stop()
        self.broker.extra_args = ["-r", rules]
        self.broker.start()
        # A QoS 2 exchange left open (PUBREC, no PUBREL) for the duplicate.
        q2 = self.client(client_id="noop-q2")
        q2.send(publish_pkt("keep/q2", b"7", qos=2, pid=7))
        self.assertEqual(q2.expect(PUBREC).pid, 7)
        self.assertEqual(self.broker.query("select v from kept"), "7")
        lk = self.lock()
        # No predecessor on its connection: acked while nothing commits.
        a = self.client(client_id="noop-a")
        a.send(publish_pkt("none/x", b"1", qos=1, pid=1))
        self.assertEqual(a.expect(PUBACK, 3).pid, 1)
        q2.send(publish_pkt("keep/q2", b"7", qos=2, pid=7, dup=True))
        self.assertEqual(q2.expect(PUBREC, 3).pid, 7)
        # After a stored QoS 0: waits for that row.
        b_ = self.client(client_id="noop-b")
        b_.send(publish_pkt("keep/1", b"1") +
                publish_pkt("none/y", b"2", qos=1, pid=2))
        q2.send(publish_pkt("keep/2", b"2") +
                publish_pkt("keep/q2", b"7", qos=2, pid=7, dup=True))
        self.assert_nothing(b_, 1.5, "PUBACK")
        self.assert_nothing(q2, 0.2, "PUBREC")
        lk.release()
        self.assertEqual(b_.expect(PUBACK, 10).pid, 2)
        self.assertEqual(q2.expect(PUBREC, 10).pid, 7)
        self.assertEqual(self.broker.query(
            "select group_concat(v, ',') from (select v from kept "
            "order by rowid)"), "7,1,2")
        q2.send(ack_pkt(PUBREL, 7))
        self.assertEqual(q2.expect(PUBCOMP, 10).pid, 7)


@mqlite_only("waits for the commit of the mqlite session state")
class TestSessionAcks(AckCase):

    def test_suback_after_commit_survives_kill9(self):
        s = self.client(client_id="sa-sub", clean=False)
        lk = self.lock()
        s.send(subscribe_pkt(5, [("sa/+", 1), ("sb/#", 2)]))
        self.assert_nothing(s, 1.5, "SUBACK")
        lk.release()
        a = s.expect(SUBACK, 10)
        self.assertEqual((a.pid, a.codes), (5, [1, 2]))
        self.broker.kill()          # at once: the SUBACK meant durable
        self.broker.start()
        subs = json.loads(self.broker.query(
            "select subs from sessions where client_id='sa-sub'"))
        self.assertEqual(sorted((e["filter"], e["qos"]) for e in subs),
                         [("sa/+", 1), ("sb/#", 2)])
        s = self.client(connect=False)
        self.assertTrue(s.connect("sa-sub", clean=False).session_present)
        pub = self.client(client_id="sa-pub")
        pub.publish("sa/x", b"one", qos=2)
        pub.publish("sb/y/z", b"two", qos=2)
        got = s.collect(2)
        self.assertEqual([(p.topic, p.payload, p.qos) for p in got],
                         [("sa/x", b"one", 1), ("sb/y/z", b"two", 2)])

    def test_unsuback_after_commit_survives_kill9(self):
        s = self.client(client_id="ua-sub", clean=False)
        self.assertEqual(s.subscribe([("ua/gone", 1), ("ua/kept", 1)]),
                         [1, 1])
        lk = self.lock()
        s.send(unsubscribe_pkt(9, ["ua/gone"]))
        self.assert_nothing(s, 1.5, "UNSUBACK")
        lk.release()
        self.assertEqual(s.expect(UNSUBACK, 10).pid, 9)
        self.broker.kill()
        self.broker.start()
        subs = json.loads(self.broker.query(
            "select subs from sessions where client_id='ua-sub'"))
        self.assertEqual([e["filter"] for e in subs], ["ua/kept"])
        s = self.client(connect=False)
        self.assertTrue(s.connect("ua-sub", clean=False).session_present)
        pub = self.client(client_id="ua-pub")
        pub.publish("ua/gone", b"not-for-you", qos=1)
        pub.publish("ua/kept", b"for-you", qos=1)
        p = s.recv_publish()
        self.assertEqual((p.topic, p.payload), ("ua/kept", b"for-you"))
        self.assertIsNone(s.quiet(0.5))


@mqlite_only("kill -9 and restart keep state only in mqlite's database")
class TestQos2AcrossKill9(AckCase):

    def test_pubrel_only_after_kill9(self):
        off = self.client(client_id="q2-off", clean=False)
        off.subscribe([("q2/#", 2)])
        off.disconnect()
        on = self.client(client_id="q2-on")
        on.subscribe([("q2/#", 2)])
        pub = self.client(client_id="q2-pub", clean=False)
        pub.send(publish_pkt("q2/t", b"once", qos=2, pid=9))
        self.assertEqual(pub.expect(PUBREC).pid, 9)
        # Recorded with the message, in one transaction.
        self.assertEqual(self.broker.count("topic='q2/t'"), 1)
        self.assertEqual(self.broker.rows(
            "select client_id, packet_id from qos2_inflight"),
            [["q2-pub", "9"]])
        # Fan-out follows the commit: the online subscriber has it now.
        p = on.recv_publish()
        self.assertEqual((p.topic, p.payload, p.qos), ("q2/t", b"once", 2))
        self.assertEqual(on.expect(PUBREL).pid, p.pid)
        on.send(ack_pkt(PUBCOMP, p.pid))
        self.broker.kill()
        self.broker.start()
        pub = self.client(connect=False)
        self.assertTrue(pub.connect("q2-pub", clean=False).session_present)
        pub.send(ack_pkt(PUBREL, 9))            # only the PUBREL
        self.assertEqual(pub.expect(PUBCOMP).pid, 9)
        # Removed in a transaction committed before PUBCOMP.
        self.assertEqual(self.broker.scalar(
            "select count(*) from qos2_inflight"), 0)
        self.assertEqual(self.broker.count("topic='q2/t'"), 1)
        # The offline persistent subscriber gets it exactly once.
        off = self.client(connect=False)
        self.assertTrue(off.connect("q2-off", clean=False).session_present)
        got = off.recv_publish()
        self.assertEqual((got.topic, got.payload), ("q2/t", b"once"))
        self.assertIsNone(off.quiet(1.0))
        # The packet id is free again: the same id is a new message.
        pub.publish("q2/t", b"again", qos=2, pid=9)
        self.assertEqual(self.broker.rows(
            "select payload from messages where topic='q2/t' order by id"),
            [["once"], ["again"]])
        self.assertEqual(off.recv_publish().payload, b"again")

    def test_outbound_pubrel_resent_after_kill9(self):
        s = self.client(client_id="oq2-sub", clean=False)
        s.subscribe([("oq2/t", 2)])
        s.auto_pubcomp = False
        pub = self.client(client_id="oq2-pub")
        pub.publish("oq2/t", b"exactly-once", qos=2)
        p = s.recv_publish()            # answered with PUBREC
        self.assertEqual(p.payload, b"exactly-once")
        rel = s.expect(PUBREL)          # sent once its state committed
        self.assertEqual(rel.pid, p.pid)
        self.assertEqual(self.broker.rows(
            "select packet_id, state from session_msgs"),
            [[str(p.pid), "2"]])
        s.close()                       # no PUBCOMP
        self.broker.kill()
        self.broker.start()
        s = self.client(connect=False)
        s.auto_pubcomp = False
        self.assertTrue(s.connect("oq2-sub", clean=False).session_present)
        q = s.read_raw(5)
        self.assertEqual((q.type, q.pid), (PUBREL, p.pid),
                         "after PUBREC the message must not be sent again: "
                         "%r" % q)
        s.send(ack_pkt(PUBCOMP, q.pid))
        self.assertIsNone(s.quiet(1.0))
        self.assertEqual(self.broker.scalar(
            "select count(*) from session_msgs"), 0)

    def test_outbound_unacked_resent_with_same_ids_after_kill9(self):
        s = self.client(client_id="oid-sub", clean=False)
        s.subscribe([("oid/t", 2)])
        pub = self.client(client_id="oid-pub")
        for i in range(5):          # delivered and completed
            pub.publish("oid/t", b"done-%d" % i, qos=2)
            self.assertEqual(s.recv_publish().payload, b"done-%d" % i)
        pub.publish("oid/t", b"open-q2", qos=2)
        pub.publish("oid/t", b"open-q1", qos=1)
        first = s.collect(2, ack=False)
        self.assertEqual([(p.payload, p.qos) for p in first],
                         [(b"open-q2", 2), (b"open-q1", 1)])
        s.close()
        self.assertTrue(wait_until(lambda: self.broker.scalar(
            "select count(*) from session_msgs") == 2, timeout=5))
        self.broker.kill()
        self.broker.start()
        s = self.client(connect=False)
        self.assertTrue(s.connect("oid-sub", clean=False).session_present)
        again = s.collect(2)
        self.assertEqual([(p.payload, p.qos, p.pid) for p in again],
                         [(p.payload, p.qos, p.pid) for p in first],
                         "resent with other packet ids")
        self.assertIsNone(s.quiet(0.5))


# ---------------------------------------------------------------------------

class Publisher(threading.Thread):
    """Sustained QoS 1 ingest on one connection: windows of 20 pipelined
    publishes, each window's PUBACKs awaited (bounded), until stopped.
    Records every PUBACKed payload and how the connection ended."""

    def __init__(self, port, name):
        super().__init__(daemon=True)
        self.c = Client(port, timeout=30)
        self.c.connect(name)
        self.name_ = name
        self.acked = []
        self.error = None
        self.stop = threading.Event()

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                batch = [(n + i, b"%s-%d" % (self.name_.encode(), n + i))
                         for i in range(20)]
                self.c.send(b"".join(
                    publish_pkt("ingest/" + self.name_, pl, qos=1,
                                pid=k % 65535 + 1) for k, pl in batch),
                    timeout=60)
                for k, pl in batch:
                    a = self.c.expect(PUBACK, timeout=60)
                    if a.pid != k % 65535 + 1:
                        raise AssertionError("PUBACK %d for %d"
                                             % (a.pid, k % 65535 + 1))
                    self.acked.append(pl)
                n += 20
        except (Closed, OSError, TimeoutError, AssertionError) as e:
            self.error = "%s: %r" % (type(e).__name__, e)

    def finish(self, test):
        self.stop.set()
        self.join(90)
        test.assertFalse(self.is_alive(), "publisher %s hung" % self.name_)
        test.assertIsNone(self.error, "publisher %s" % self.name_)
        self.c.disconnect()


@mqlite_only("sqlite3 shell users of mqlite's database")
class TestShellUsers(AckCase):

    def start_publishers(self, n=2):
        pubs = [Publisher(self.broker.port, "p%d" % i) for i in range(n)]
        for p in pubs:
            p.start()
        return pubs

    def acked(self, pubs):
        return sum(len(p.acked) for p in pubs)

    def wait_progress(self, pubs, more, timeout=30.0):
        base = self.acked(pubs)
        ok = wait_until(lambda: self.acked(pubs) >= base + more,
                        timeout=timeout, interval=0.02)
        self.assertTrue(ok, "ingest stalled: %d acks in %.0f s"
                        % (self.acked(pubs) - base, timeout))

    def shell(self, *args):
        r = subprocess.run(["sqlite3", "-batch", "-cmd", ".timeout 10000",
                            self.broker.db_path] + list(args),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode()

    def check_stored(self, pubs):
        for p in pubs:
            stored = set(self.broker.query(
                "select payload from messages where topic='ingest/%s'"
                % p.name_).split())
            missing = [x for x in p.acked if x.decode() not in stored]
            self.assertEqual(missing[:5], [], "%d PUBACKed messages of %s "
                             "missing" % (len(missing), p.name_))

    def test_short_writes_and_backup_during_qos1_ingest(self):
        pubs = self.start_publishers()
        backups = []
        try:
            self.wait_progress(pubs, 500)
            for i in range(6):
                # A short write: some 100 ms holding the write lock.
                self.shell("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS "
                           "user_notes (n, t); INSERT INTO user_notes "
                           "VALUES (%d, (SELECT count(*) FROM messages)); "
                           "CREATE TABLE IF NOT EXISTS user_bulk (i); "
                           "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL "
                           "SELECT i + 1 FROM r WHERE i < 100000) "
                           "INSERT INTO user_bulk SELECT i FROM r; "
                           "COMMIT;" % i)
                self.wait_progress(pubs, 100)
                if i % 2 == 0:
                    path = os.path.join(self.workdir, "backup%d.db" % i)
                    # The live backup README recommends: one snapshot
                    # (.backup restarts at every commit in between and
                    # may never finish under steady ingest).
                    self.shell("VACUUM INTO '%s'" % path)
                    backups.append(path)
                    self.wait_progress(pubs, 100)
        finally:
            for p in pubs:
                p.finish(self)
        self.check_stored(pubs)
        self.assertEqual(self.broker.scalar(
            "select count(*) from user_notes"), 6)
        self.assertEqual(self.broker.scalar(
            "select count(*) from user_bulk"), 600000)
        for path in backups:
            r = subprocess.run(["sqlite3", "-batch", path,
                                "pragma integrity_check; select count(*) "
                                "from messages; pragma journal_mode"],
                               capture_output=True, timeout=60)
            out = r.stdout.decode().split()
            self.assertEqual(out[0], "ok", "backup %s: %r" % (path, r))
            self.assertGreater(int(out[1]), 0)
        self.assertNotRegex(self.broker.log_text(),
                            r"client p[0-9] fd [0-9]+: .*clos")
        self.assert_serving()

    def test_write_lock_longer_than_busy_timeout(self):
        # The store's busy_timeout is 5 s: a lock held for 7 s makes its
        # COMMIT fail and the batch be retried. Publishers wait, nothing
        # is lost, no connection is closed.
        pubs = self.start_publishers()
        try:
            self.wait_progress(pubs, 300)
            lk = self.lock()
            t0 = time.monotonic()
            time.sleep(0.5)
            frozen = self.acked(pubs)
            while time.monotonic() - t0 < 7.0:
                time.sleep(0.2)
            during = self.acked(pubs) - frozen
            lk.release()
            self.wait_progress(pubs, 300, timeout=40)
        finally:
            for p in pubs:
                p.finish(self)
        self.assertEqual(during, 0, "PUBACKs sent while nothing could "
                         "commit")
        self.check_stored(pubs)
        self.assert_serving()

    def test_sigterm_while_locked_commits_once_released(self):
        # SIGTERM commits everything accepted: with the write lock held
        # it waits (retrying), and once released commits, sends the
        # PUBACK that commit released and exits 0.
        c = self.client(client_id="term-locked")
        lk = self.lock()
        c.send(publish_pkt("tl/t", b"accepted", qos=1, pid=3))
        self.assert_nothing(c, 0.5, "PUBACK")
        self.broker.proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        self.assertTrue(self.broker.running(), "exited without committing")
        lk.release()
        self.assertEqual(c.expect(PUBACK, 15).pid, 3)
        self.assertEqual(self.broker.stop(timeout=30), 0)
        self.assertEqual(self.broker.count("topic='tl/t'"), 1)


# ---------------------------------------------------------------------------

def exact_publish(total, topic="mp/exact", pid=1):
    """A QoS 1 PUBLISH of exactly total bytes, fixed header included."""
    head = len(topic) + 2 + 2
    for hl in (2, 3, 4, 5):
        remaining = total - hl
        n, k = remaining, 1
        while n >= 128:
            n //= 128
            k += 1
        if k == hl - 1:
            pkt = publish_pkt(topic, b"x" * (remaining - head), qos=1,
                              pid=pid)
            assert len(pkt) == total, (len(pkt), total)
            return pkt
    raise ValueError(total)


class TestDefaultPacketLimit(E2ETestCase):
    # The harness writes no "limits" key: the built-in default applies.

    def test_exactly_1mb_accepted(self):
        c = self.client(client_id="mp-exact")
        pkt = exact_publish(MB)
        c.send(pkt, timeout=30)
        self.assertEqual(c.expect(PUBACK, 20).pid, 1)
        c.ping()
        if not MOSQUITTO:
            self.assertEqual(self.broker.scalar(
                "select length(payload) from messages "
                "where topic='mp/exact'"), MB - 4 - (2 + 8 + 2))

    @mqlite_only("Mosquitto has no packet limit by default")
    def test_one_byte_over_closes_nothing_stored(self):
        c = self.client(client_id="mp-over")
        c.publish("mp/before", b"ok", qos=1)
        try:
            c.send(exact_publish(MB + 1, "mp/exact"), timeout=30)
        except OSError:
            pass
        self.assert_closed(c, timeout=10)
        self.assertFalse([p for p in c.backlog if p.type == PUBACK])
        self.assertEqual(self.broker.count("topic='mp/exact'"), 0)
        self.assertEqual(self.broker.count("topic='mp/before'"), 1)
        self.assertIn("packet larger than max_packet_bytes",
                      self.broker.log_text())
        self.assert_serving()


@mqlite_only("the mqlite command line")
class TestPortOption(E2ETestCase):
    auto_start = False

    def test_p_replaces_first_listener_only(self):
        first, second, cli = free_port(), free_port(), free_port()
        br = Broker(self.workdir, port=cli, extra_args=["-p", str(cli)])
        with open(br.conf_path) as f:
            cfg = json.load(f)
        cfg["listeners"] = [{"port": first, "bind": HOST},
                            {"port": second, "bind": HOST}]
        write_json(br.conf_path, cfg)
        self.brokers.append(br)
        self.broker = br
        br.start()
        for port, who in ((cli, "via-p"), (second, "second")):
            c = Client(port)
            self.clients.append(c)
            c.connect("lst-" + who)
            c.publish("lst/" + who, b"x", qos=1)
            c.disconnect()
        self.assertEqual(br.count("topic in ('lst/via-p', 'lst/second')"),
                         2)
        s = socket.socket()
        s.settimeout(2)
        try:
            with self.assertRaises(ConnectionRefusedError):
                s.connect((HOST, first))
        finally:
            s.close()


# ---------------------------------------------------------------------------

@mqlite_only("pauses driven by mqlite's store")
class TestPausedKeepalive(AckCase):
    limits = {"receive_maximum": 10}

    def test_keepalive_does_not_expire_a_paused_connection(self):
        # keepalive 2 s expires a silent client after 3 s. Here the client
        # is silent because mqlite stopped reading it (receive_maximum held
        # acks while the store cannot commit) for 7.5 s, over twice that.
        c = self.client(client_id="ka-paused", keepalive=2)
        lk = self.lock()
        c.send(b"".join(publish_pkt("ka/p", b"%d" % i, qos=1, pid=i + 1)
                        for i in range(40)))
        self.assertFalse(c.wait_closed(7.5), "closed while paused")
        self.assertEqual([p for p in c.backlog if p.type == PUBACK], [])
        lk.release()
        self.assertEqual([c.expect(PUBACK, 10).pid for _ in range(40)],
                         list(range(1, 41)))
        c.ping()
        self.assertEqual(self.broker.count("topic='ka/p'"), 40)
        self.assertNotIn("keepalive timeout", self.broker.log_text())


@mqlite_only("mqlite's database")
class TestDatabase(AckCase):
    database = {"durability": "normal"}

    def test_durability_normal_survives_kill9(self):
        # 3,000 pipelined QoS 1 publishes; kill -9 in the middle of the
        # PUBACK stream: every one acknowledged is there after restart.
        c = self.client(client_id="dn")
        n = 3000
        c.send(b"".join(publish_pkt("dn/t", b"%d" % i, qos=1, pid=i + 1)
                        for i in range(n)), timeout=60)
        acked = []
        while len(acked) < 1000:
            acked.append(c.expect(PUBACK, 20).pid - 1)
        self.broker.kill()
        self.broker.start()
        stored = {int(x) for x in self.broker.query(
            "select payload from messages where topic='dn/t'").split()}
        self.assertEqual([i for i in acked if i not in stored], [])
        self.assertEqual(self.broker.query("pragma integrity_check"), "ok")

    def test_new_database_meta(self):
        br = self.broker
        self.assertEqual(br.scalar("pragma auto_vacuum"), 2)
        self.assertGreaterEqual(br.scalar("pragma user_version"), 1)
        self.assertEqual(br.query("pragma journal_mode"), "wal")
        inst = br.query("select value from mqlite_meta "
                        "where key='instance_id'")
        self.assertRegex(inst, r"^[0-9a-f]{32}$")
        br.kill()
        br.start()
        self.assertEqual(br.query("select value from mqlite_meta where "
                                  "key='instance_id'"), inst)
        other = self.start_broker(name="other")
        self.assertNotEqual(other.query("select value from mqlite_meta "
                                        "where key='instance_id'"), inst)


@mqlite_only("the mqlite config file")
class TestConfigPaths(E2ETestCase):
    auto_start = False

    def test_relative_database_path_resolves_against_config_folder(self):
        confdir = os.path.join(self.workdir, "etc")
        os.mkdir(confdir)
        br = Broker(self.workdir, name="rel")
        br.conf_path = os.path.join(confdir, "rel.json")
        write_json(br.conf_path, {
            "listeners": [{"port": br.port, "bind": HOST}],
            "database": {"path": "data.db"}})
        br.db_path = os.path.join(confdir, "data.db")
        self.brokers.append(br)
        self.broker = br
        br.start()              # the daemon's working directory: workdir
        c = self.client(client_id="rel")
        c.publish("rel/t", b"x", qos=1)
        self.assertEqual(br.count("topic='rel/t'"), 1)
        self.assertFalse(os.path.exists(os.path.join(self.workdir,
                                                     "data.db")))


if __name__ == "__main__":
    unittest.main()
