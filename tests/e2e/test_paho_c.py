# SPDX-License-Identifier: Apache-2.0
"""The Paho C client (tests/helpers/paho_pub, MQTTAsync) against the broker:
it exits 0 only when every publish was acknowledged; with mqlite every
acknowledged publish is a row."""

import os
import subprocess
import unittest

from mqlite_harness import HOST, MOSQUITTO, E2ETestCase, helper_path


class TestPahoC(E2ETestCase):

    def paho_pub(self, topic, count, qos, prefix="msg", window=20):
        exe = helper_path("paho_pub")
        self.assertTrue(os.access(exe, os.X_OK),
                        "%s not built (make check builds it)" % exe)
        r = subprocess.run([exe, HOST, str(self.broker.port), topic,
                            str(count), str(qos), prefix, str(window)],
                           capture_output=True, timeout=180)
        self.assertEqual(r.returncode, 0, "paho_pub failed:\n%s%s"
                         % (r.stdout.decode(), r.stderr.decode()))
        self.assertIn(b"%d of %d acknowledged" % (count, count), r.stdout)

    def rows(self, topic):
        return self.broker.query("select payload from messages where "
                                 "topic='%s' order by id" % topic)

    def test_2000_qos1_rows(self):
        self.paho_pub("paho/q1", 2000, 1)
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='paho/q1'"), 2000)
            self.assertEqual(self.rows("paho/q1").split("\n"),
                             ["msg-%d" % i for i in range(2000)])

    def test_500_qos2_rows(self):
        self.paho_pub("paho/q2", 500, 2, prefix="two", window=10)
        if not MOSQUITTO:
            self.assertEqual(self.broker.count("topic='paho/q2'"), 500)
            self.assertEqual(self.broker.scalar(
                "select count(distinct payload) from messages "
                "where topic='paho/q2' and qos=2"), 500)

    def test_1000_qos0_rows(self):
        self.paho_pub("paho/q0", 1000, 0, prefix="zero")
        if not MOSQUITTO:
            self.assertEqual(self.broker.wait_count(1000, "topic='paho/q0'"),
                             1000)

    def test_subscriber_sees_paho_publishes(self):
        s = self.client(client_id="paho-watch")
        s.subscribe([("paho/watch", 1)])
        self.paho_pub("paho/watch", 200, 1, prefix="w")
        got = s.collect(200, timeout=30)
        self.assertEqual([p.payload for p in got],
                         [b"w-%d" % i for i in range(200)])


if __name__ == "__main__":
    unittest.main()
