# SPDX-License-Identifier: Apache-2.0
"""Retained message bounds with the default limits: limits.max_retained
(10,000 topics) and limits.retained_bytes (8 MB of payload). Beyond
either, a publish on a new topic with the retain flag is still stored and
delivered to current subscribers but not kept as retained (counted in
/metrics, logged); replacing or clearing an existing retained message
always works; the retained table holds exactly what is kept, also after a
restart with a lower bound."""

import time
import unittest

from exhaust_util import ExhaustCase
from mqlite_harness import mqlite_only, publish_pkt, wait_until


@mqlite_only("limits.max_retained and limits.retained_bytes")
class TestRetainedBounds(ExhaustCase):

    def fill(self, c, n, payload=b"v", prefix="ret"):
        """n retained QoS 0 publishes, then a ping to know they are in."""
        data = b"".join(publish_pkt("%s/%d" % (prefix, i), payload,
                                    retain=True) for i in range(n))
        c.send(data, timeout=60)
        c.ping(timeout=30)

    def retained_for(self, flt, n_expected_max, timeout=1.0):
        s = self.client(client_id="look-%d" % time.monotonic_ns())
        s.subscribe([(flt, 0)])
        got = []
        while len(got) <= n_expected_max:
            p = s.quiet(timeout)
            if p is None:
                break
            got.append(p)
        s.disconnect()
        return got

    def test_max_retained_topics(self):
        br = self.start()
        p = self.client(client_id="filler")
        self.fill(p, 10000)
        self.assertEqual(self.metric("mqlite_retained"), 10000)
        live = self.client(client_id="live")
        live.subscribe([("ret/extra", 0)])
        p.publish("ret/extra", b"new", qos=1, retain=True)
        # Delivered to the current subscriber and stored...
        self.assertEqual(live.recv_publish().payload, b"new")
        br.wait_count(1, "topic='ret/extra' and retain=1")
        # ...but not kept as retained.
        self.assertEqual(self.retained_for("ret/extra", 1), [])
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 1)
        self.assertIn("limits.max_retained reached", br.log_text())
        # Replacing an existing one works, clearing one makes room.
        p.publish("ret/5", b"replaced", qos=1, retain=True)
        got = self.retained_for("ret/5", 1)
        self.assertEqual([g.payload for g in got], [b"replaced"])
        p.publish("ret/6", b"", qos=1, retain=True)
        p.publish("ret/extra", b"fits", qos=1, retain=True)
        got = self.retained_for("ret/extra", 1)
        self.assertEqual([g.payload for g in got], [b"fits"])
        self.assertEqual(self.metric("mqlite_retained"), 10000)
        # The table follows: 10,000 rows, then a restart with a lower bound
        # trims table and memory alike.
        def rows():
            return br.scalar("select count(*) from retained")
        self.assertTrue(self.wait_rows(rows, 10000))
        br.stop()
        br.update_config(limits={"max_retained": 100})
        br.start()
        self.assertTrue(self.wait_rows(rows, 100))
        self.assertEqual(self.metric("mqlite_retained"), 100)
        self.assert_serving()

    def wait_rows(self, fn, n, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if fn() == n:
                return True
            time.sleep(0.2)
        return fn() == n


    def test_retained_bytes(self):
        br = self.start()
        p = self.client(client_id="big")
        payload = b"x" * 1000000
        for i in range(8):
            p.publish("big/%d" % i, payload, qos=1, retain=True, timeout=10)
        self.assertEqual(self.metric("mqlite_retained_bytes"), 8000000)
        p.publish("big/8", payload, qos=1, retain=True, timeout=10)
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 1)
        self.assertIn("limits.retained_bytes reached", br.log_text())
        self.assertEqual(self.metric("mqlite_retained"), 8)
        br.wait_count(9, "topic like 'big/%'")
        # A small new one still fits; replacing a big one always works.
        p.publish("big/small", b"s", qos=1, retain=True)
        p.publish("big/0", payload + b"y", qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained"), 9)
        self.assertEqual(br.scalar("select count(*) from retained"), 9)
        self.assert_serving()

    def test_replacements_past_the_byte_bound(self):
        """The exact rule: payload bytes are accounted exactly (a
        replacement counts its new size instead of the old one); a
        replacement or a clear is always kept, even when it takes the total
        past retained_bytes; while the total is past it, no new topic is
        kept, however small; once replacements or clears bring it back
        under, new topics fit again. After a restart the table and memory
        hold what fits in the bound."""
        br = self.start(limits={"retained_bytes": 10000})
        p = self.client(client_id="grow")
        for i in range(9):
            p.publish("g/%d" % i, b"a" * 1000, qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_bytes"), 9000)
        # A bigger replacement is kept and takes the total past the bound.
        p.publish("g/0", b"b" * 3000, qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_bytes"), 11000)
        got = self.retained_for("g/0", 1)
        self.assertEqual([g.payload for g in got], [b"b" * 3000])
        # Past the bound: a new topic of one byte is not kept...
        p.publish("g/new", b"x", qos=1, retain=True)
        self.assertEqual(self.retained_for("g/new", 1), [])
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 1)
        self.assertEqual(self.metric("mqlite_retained_bytes"), 11000)
        br.wait_count(1, "topic='g/new'")
        # ...nor one that would fit under the bound on its own count.
        p.publish("g/new", b"", qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained"), 9)
        # Shrinking replacements and a clear bring it under: new fits.
        p.publish("g/0", b"c" * 500, qos=1, retain=True)
        p.publish("g/1", b"", qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_bytes"), 7500)
        p.publish("g/new", b"n" * 2500, qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_bytes"), 10000)
        got = self.retained_for("g/new", 1)
        self.assertEqual([g.payload for g in got], [b"n" * 2500])
        p.publish("g/more", b"m", qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_refused_total"), 2)
        # Over again by a replacement, then a restart: memory and table
        # keep what fits in the bound, and agree.
        p.publish("g/2", b"d" * 1500, qos=1, retain=True)
        self.assertEqual(self.metric("mqlite_retained_bytes"), 10500)
        self.assertTrue(self.wait_rows(
            lambda: br.scalar("select count(*) from retained"), 9))
        br.stop()
        br.start()
        self.assertTrue(wait_until(
            lambda: br.log_text().count("/metrics") >= 2, timeout=10))
        kept = self.metric("mqlite_retained_bytes")
        self.assertLessEqual(kept, 10000)
        self.assertEqual(self.metric("mqlite_retained"),
                         br.scalar("select count(*) from retained"))
        self.assertEqual(kept, br.scalar(
            "select coalesce(sum(length(payload)), 0) from retained"))
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
