# SPDX-License-Identifier: Apache-2.0
"""
limits.max_sessions bounds the sessions the broker keeps: persistent
sessions outlive their connections, so without a bound a client cycling
through client ids could make it grow forever. A new persistent session
beyond the bound gets CONNACK 3; existing sessions keep working and clean
sessions are still accepted while there is room.
"""

import unittest

from mqlite_harness import E2ETestCase, mqlite_only


@mqlite_only("limits.max_sessions")
class TestSessionBound(E2ETestCase):
    limits = {"max_sessions": 3}

    def test_new_persistent_session_beyond_bound_refused(self):
        for i in range(3):
            c = self.client(client_id="keep-%d" % i, clean=False)
            c.disconnect()
        c = self.client(connect=False)
        c.connect("keep-3", clean=False, expect_rc=3)
        self.assert_closed(c)
        self.assertIn("max_sessions (3) reached", self.broker.log_text())
        # An existing persistent session is resumed as before.
        c = self.client(connect=False)
        p = c.connect("keep-1", clean=False)
        self.assertEqual(p.session_present, 1)
        c.disconnect()
        # Giving one up with a clean connect makes room again.
        c = self.client(client_id="keep-2", clean=True)
        c.disconnect()
        c = self.client(connect=False)
        p = c.connect("keep-3", clean=False)
        self.assertEqual(p.session_present, 0)
        c.disconnect()


if __name__ == "__main__":
    unittest.main()
