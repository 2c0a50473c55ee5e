# SPDX-License-Identifier: Apache-2.0
"""limits.session_expiry (default "7d"; configured short here): a
persistent session whose client stays away that long is dropped with its
queued messages, in memory and in SQLite, also when it was loaded at
start; a session whose client comes back in time keeps everything."""

import time
import unittest

from exhaust_util import ExhaustCase
from mqlite_harness import mqlite_only

LIMITS = {"session_expiry": "2s"}


@mqlite_only("limits.session_expiry")
class TestSessionExpiry(ExhaustCase):

    def queue_for(self, cid, n):
        c = self.client(client_id=cid, clean=False)
        c.subscribe([("exp/%s" % cid, 1)])
        c.disconnect()
        p = self.client(client_id="pub-%s" % cid)
        for i in range(n):
            p.publish("exp/%s" % cid, b"q%d" % i, qos=1)
        p.disconnect()

    def test_offline_session_expires_with_its_messages(self):
        br = self.start(limits=LIMITS)
        self.queue_for("gone", 5)
        self.assertEqual(br.scalar("select count(*) from session_msgs "
                                   "where client_id='gone'"), 5)
        self.wait_metric("mqlite_sessions_expired_total", 1, timeout=10)
        self.assertIn("persistent session expired", br.log_text())
        self.assertEqual(br.scalar("select count(*) from sessions "
                                   "where client_id='gone'"), 0)
        self.assertEqual(br.scalar("select count(*) from session_msgs "
                                   "where client_id='gone'"), 0)
        c = self.client(connect=False)
        self.assertEqual(c.connect("gone", clean=False).session_present, 0)
        self.assertIsNone(c.quiet(0.5))
        c.disconnect()
        self.assert_serving()

    def test_client_back_in_time_keeps_session(self):
        br = self.start(limits={"session_expiry": "30s"})
        self.queue_for("back", 3)
        time.sleep(1)
        c = self.client(connect=False)
        self.assertEqual(c.connect("back", clean=False).session_present, 1)
        self.assertEqual([p.payload for p in c.collect(3)],
                         [b"q0", b"q1", b"q2"])
        self.assertEqual(self.metric("mqlite_sessions_expired_total"), 0)
        c.disconnect()

    def test_sessions_loaded_at_start_expire(self):
        br = self.start(limits={"session_expiry": "30s"})
        self.queue_for("old", 4)
        br.stop()
        # Age the row as if the client left three minutes ago; restart
        # with a 2 s expiry: it is dropped at start, rows included.
        br.query("update sessions set disconnected_ms = "
                 "disconnected_ms - 180000 where client_id='old'")
        br.update_config(limits=LIMITS)
        br.start()
        self.wait_metric("mqlite_sessions_expired_total", 1, timeout=10)
        self.assertTrue(self.wait_zero(br, "select count(*) from "
                                       "session_msgs where client_id='old'"))
        self.assertEqual(br.scalar("select count(*) from sessions "
                                   "where client_id='old'"), 0)
        c = self.client(connect=False)
        self.assertEqual(c.connect("old", clean=False).session_present, 0)
        c.disconnect()

    def wait_zero(self, br, sql, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if br.scalar(sql) == 0:
                return True
            time.sleep(0.2)
        return False



if __name__ == "__main__":
    unittest.main()
