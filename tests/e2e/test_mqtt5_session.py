# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 sessions: Session Expiry Interval instead of clean session
(kept in SQLite, expired on schedule across restarts, changed by
DISCONNECT), Clean Start, Will Delay Interval, DISCONNECT with reason 0x04,
and the subscription options No Local, Retain As Published and Retain
Handling, persisted with the session. Raw sockets, byte-exact."""

import time

from mqlite_harness import (MOSQUITTO, PINGREQ_PKT, PINGRESP, PUBACK, PUBLISH,
                            SUBACK, E2ETestCase, mqlite_only, wait_until)
from mqtt5_util import (DISCONNECT, P_SESSION_EXPIRY, P_WILL_DELAY, PUBCOMP,
                        PUBREC, PUBREL, ack5, closing_packets, connect_v5,
                        disconnect5, expect5, opts, props, publish5, read5,
                        skipped5, subscribe5)


def expiry(n):
    return props((P_SESSION_EXPIRY, n))


class Session5Case(E2ETestCase):

    def v5(self, cid, **kw):
        c = self.client(connect=False)
        ca = connect_v5(c, cid, **kw)
        self.assertEqual(ca.reason, 0, ca)
        return c, ca

    def sub(self, cid, flt, opt=1, **kw):
        c, ca = self.v5(cid, **kw)
        c.send(subscribe5(1, [(flt, opt)]))
        s = expect5(c, SUBACK)
        self.assertLess(s.codes[0], 0x80)
        return c, ca

    def sessions(self, cid):
        """Rows of client id cid in the sessions table."""
        return int(self.broker.scalar("select count(*) from sessions where "
                                      "client_id = '%s'" % cid))

    def ping(self, c):
        c.send(PINGREQ_PKT)
        while True:
            p = read5(c)
            if p.type == PINGRESP:
                return

    def no_publish(self, c, timeout=0.6):
        """Asserts nothing arrives on c within timeout (a PINGRESP ends
        the wait early: what was sent before it would have come first)."""
        for p in skipped5(c):
            self.assertNotEqual(p.type, PUBLISH, p)
        deadline = time.monotonic() + timeout
        c.send(PINGREQ_PKT)
        while time.monotonic() < deadline:
            try:
                p = read5(c, max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return
            self.assertNotEqual(p.type, PUBLISH, p)
            if p.type == PINGRESP:
                return


class TestSessionExpiry(Session5Case):

    def test_expiry_zero_ends_at_disconnect(self):
        c, _ = self.sub("se-zero", "se/zero/#", clean=False)
        c.send(disconnect5())
        closing_packets(c)
        c, ca = self.v5("se-zero", clean=False)
        self.assertFalse(ca.session_present)

    def test_kept_and_resumed_with_queued_message(self):
        c, _ = self.sub("se-keep", "se/keep/#", clean=True,
                        prop=expiry(3600))
        c.send(disconnect5())
        closing_packets(c)
        p, _ = self.v5("se-keep-pub")
        p.send(publish5("se/keep/a", b"queued", qos=1, pid=1))
        expect5(p, PUBACK)
        c, ca = self.v5("se-keep", clean=False, prop=expiry(3600))
        self.assertTrue(ca.session_present)
        m = expect5(c, PUBLISH)
        self.assertEqual((m.topic, m.payload, m.qos),
                         ("se/keep/a", b"queued", 1))
        c.send(ack5(PUBACK, m.pid))

    def test_clean_start_discards(self):
        c, _ = self.sub("se-cs", "se/cs/#", prop=expiry(3600))
        c.close()
        c, ca = self.v5("se-cs", clean=True, prop=expiry(3600))
        self.assertFalse(ca.session_present)

    @mqlite_only("reads the sessions table")
    def test_row_and_restart(self):
        c, _ = self.sub("se-row", "se/row/#", opt=opts(1, no_local=True),
                        prop=expiry(3600))
        c.send(disconnect5())
        closing_packets(c)
        wait_until(lambda: self.sessions("se-row") == 1, 10)
        row = self.broker.rows("select protocol, expiry_s, subs from "
                               "sessions where client_id = 'se-row'")
        self.assertEqual(row[0][:2], ["5", "3600"])
        self.assertIn('"opts":4', row[0][2])
        self.broker.restart()
        c, ca = self.v5("se-row", clean=False, prop=expiry(3600))
        self.assertTrue(ca.session_present)
        # No Local survived the restart: its own publish is not echoed,
        # another client's is delivered.
        c.send(publish5("se/row/own", b"own", qos=1, pid=5))
        expect5(c, PUBACK)
        self.no_publish(c)
        o, _ = self.v5("se-row-other")
        o.send(publish5("se/row/other", b"other", qos=1, pid=1))
        expect5(o, PUBACK)
        m = expect5(c, PUBLISH)
        self.assertEqual(m.payload, b"other")

    def test_short_expiry_drops_session(self):
        c, _ = self.sub("se-short", "se/short/#", prop=expiry(1))
        c.send(disconnect5())
        closing_packets(c)
        if not MOSQUITTO:
            wait_until(lambda: self.sessions("se-short") == 0,
                       15)
        else:
            time.sleep(3)
        c, ca = self.v5("se-short", clean=False, prop=expiry(1))
        self.assertFalse(ca.session_present)

    @mqlite_only("restart keeps the database")
    def test_expiry_runs_across_restart(self):
        c, _ = self.sub("se-rs", "se/rs/#", prop=expiry(2))
        k, _ = self.sub("se-rs-long", "se/rs/#", prop=expiry(3600))
        c.send(disconnect5())
        k.send(disconnect5())
        closing_packets(c)
        closing_packets(k)
        wait_until(lambda: self.sessions("se-rs") == 1, 10)
        self.broker.stop()
        time.sleep(3)
        self.broker.start()
        c, ca = self.v5("se-rs", clean=False, prop=expiry(2))
        self.assertFalse(ca.session_present)
        k, ca = self.v5("se-rs-long", clean=False, prop=expiry(3600))
        self.assertTrue(ca.session_present)

    def test_disconnect_may_not_add_expiry(self):
        c, _ = self.v5("se-dx")
        c.send(disconnect5(0, expiry(60)))
        pk = closing_packets(c)
        if not MOSQUITTO:
            self.assertEqual([(p.type, p.reason) for p in pk],
                             [(DISCONNECT, 0x82)])
        self.assert_serving()

    def test_disconnect_sets_expiry_zero(self):
        c, _ = self.sub("se-d0", "se/d0/#", prop=expiry(3600))
        c.send(disconnect5(0, expiry(0)))
        self.assertEqual(closing_packets(c), [])
        c, ca = self.v5("se-d0", clean=False, prop=expiry(3600))
        self.assertFalse(ca.session_present)


class TestWill5(Session5Case):

    def will_conn(self, cid, delay=None, sess=3600):
        wp = props((P_WILL_DELAY, delay)) if delay is not None else props()
        c, _ = self.v5(cid, prop=expiry(sess), will=("will/" + cid, b"gone",
                                                      1, False),
                       will_prop=wp)
        return c

    def test_disconnect_0x04_publishes_will(self):
        w, _ = self.sub("will-w4", "will/#")
        c = self.will_conn("will-c4")
        c.send(disconnect5(0x04))
        closing_packets(c)
        m = expect5(w, PUBLISH)
        self.assertEqual((m.topic, m.payload), ("will/will-c4", b"gone"))

    def test_normal_disconnect_no_will(self):
        w, _ = self.sub("will-w0", "will/#")
        c = self.will_conn("will-c0")
        c.send(disconnect5(0x00))
        closing_packets(c)
        self.no_publish(w, 1.0)

    def test_delay_then_published(self):
        w, _ = self.sub("will-wd", "will/#")
        c = self.will_conn("will-cd", delay=2)
        t0 = time.monotonic()
        c.abort()
        m = expect5(w, PUBLISH, timeout=10)
        self.assertEqual(m.topic, "will/will-cd")
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)

    def test_reconnect_within_delay_cancels(self):
        w, _ = self.sub("will-wr", "will/#")
        c = self.will_conn("will-cr", delay=3)
        c.abort()
        time.sleep(0.3)
        c2, ca = self.v5("will-cr", clean=False, prop=expiry(3600))
        self.assertTrue(ca.session_present)
        self.no_publish(w, 5.0)

    @mqlite_only("Mosquitto 2.0 waits for the delay all the same")
    def test_session_end_publishes_before_delay(self):
        # Session expiry 0: the session ends at the close, so the will
        # goes at once although its delay is long.
        w, _ = self.sub("will-we", "will/#")
        c = self.will_conn("will-ce", delay=600, sess=0)
        c.abort()
        m = expect5(w, PUBLISH, timeout=5)
        self.assertEqual(m.topic, "will/will-ce")


class TestSubOptions(Session5Case):

    def test_no_local(self):
        c, _ = self.sub("so-nl", "so/nl/#", opts(1, no_local=True))
        c.send(publish5("so/nl/a", b"mine", qos=1, pid=3))
        expect5(c, PUBACK)
        self.no_publish(c)
        # Without No Local the own publish comes back.
        d, _ = self.sub("so-l", "so/l/#", opts(1))
        d.send(publish5("so/l/a", b"mine", qos=1, pid=3))
        m = expect5(d, PUBLISH)
        self.assertEqual(m.payload, b"mine")

    def test_retain_as_published(self):
        rap, _ = self.sub("so-rap", "so/rap/#", opts(0, rap=True))
        plain, _ = self.sub("so-norap", "so/rap/#", opts(0))
        p, _ = self.v5("so-rap-pub")
        p.send(publish5("so/rap/x", b"r", retain=True))
        self.assertTrue(expect5(rap, PUBLISH).retain)
        self.assertFalse(expect5(plain, PUBLISH).retain)

    def test_retain_handling(self):
        p, _ = self.v5("so-rh-pub")
        p.send(publish5("so/rh/x", b"kept", qos=1, pid=1, retain=True))
        expect5(p, PUBACK)
        for rh, first, again in ((0, True, True), (1, True, False),
                                 (2, False, False)):
            with self.subTest(rh=rh):
                c, _ = self.v5("so-rh-%d" % rh)
                for want in (first, again):
                    c.send(subscribe5(2, [("so/rh/#", opts(0, rh=rh))]))
                    expect5(c, SUBACK)
                    if want:
                        m = expect5(c, PUBLISH)
                        self.assertTrue(m.retain)
                        self.assertEqual(m.payload, b"kept")
                    else:
                        self.no_publish(c)


class TestResumeWindow(Session5Case):
    """A session resumed with a smaller Receive Maximum than it had in
    flight gets its unacknowledged messages again only as fast as the new
    window allows (MQTT 5.0 section 4.9), oldest first, same packet ids."""

    @mqlite_only("Mosquitto 2.0.11 resends everything in flight at once")
    def test_resend_bounded_by_new_receive_maximum(self):
        rm = 0x21       # Receive Maximum
        c, _ = self.sub("rw-sub", "rw/#", clean=True,
                        prop=props((P_SESSION_EXPIRY, 3600), (rm, 10)))
        p, _ = self.v5("rw-pub")
        for i in range(5):
            p.send(publish5("rw/t", b"%d" % i, qos=1, pid=i + 1))
            expect5(p, PUBACK)
        first = []
        for _ in range(5):
            m = expect5(c, PUBLISH)
            first.append((m.pid, m.payload))
        c.close()               # none acknowledged
        c, ca = self.v5("rw-sub", clean=False,
                        prop=props((P_SESSION_EXPIRY, 3600), (rm, 2)))
        self.assertTrue(ca.session_present)
        again = [expect5(c, PUBLISH) for _ in range(2)]
        self.assertEqual([(m.pid, m.payload) for m in again], first[:2])
        self.assertTrue(all(m.dup for m in again))
        self.no_publish(c)
        for m in again:
            c.send(ack5(PUBACK, m.pid))
        rest = [expect5(c, PUBLISH) for _ in range(2)]
        self.assertEqual([(m.pid, m.payload) for m in rest], first[2:4])
        self.no_publish(c)
        c.send(ack5(PUBACK, rest[0].pid))
        last = expect5(c, PUBLISH)
        self.assertEqual((last.pid, last.payload), first[4])
        for m in rest[1:] + [last]:
            c.send(ack5(PUBACK, m.pid))
        self.no_publish(c)


class TestMixedFleet(Session5Case):

    def test_311_pub_to_5_sub(self):
        s, _ = self.sub("mix-s5", "mix/a/#", opts(1))
        p = self.client(client_id="mix-p3")
        p.publish("mix/a/ret", b"old", qos=2, retain=True)
        m = expect5(s, PUBLISH)
        # QoS 2 downgraded to the granted 1; a live message is not retained.
        self.assertEqual((m.topic, m.payload, m.qos, m.retain),
                         ("mix/a/ret", b"old", 1, False))
        s.send(ack5(PUBACK, m.pid))
        late, _ = self.sub("mix-s5-late", "mix/a/#", opts(2))
        m = expect5(late, PUBLISH)
        self.assertEqual((m.payload, m.qos, m.retain), (b"old", 2, True))

    def test_5_pub_to_311_sub(self):
        s = self.client(client_id="mix-s3")
        self.assertEqual(s.subscribe([("mix/b/#", 1)]), [1])
        p, _ = self.v5("mix-p5")
        p.send(publish5("mix/b/x", b"five", qos=2, pid=9, retain=True))
        expect5(p, PUBREC)
        p.send(ack5(PUBREL, 9))
        expect5(p, PUBCOMP)
        m = s.recv_publish()
        # The 3.1.1 subscriber gets the 3.1.1 form: no property byte.
        self.assertEqual((m.topic, m.payload, m.qos), ("mix/b/x", b"five", 1))
        s2 = self.client(client_id="mix-s3-late")
        s2.subscribe([("mix/b/#", 0)])
        m = s2.recv_publish()
        self.assertEqual((m.payload, m.qos, m.retain), (b"five", 0, True))
        if not MOSQUITTO:
            self.broker.wait_count(1, "topic = 'mix/b/x'")
