# SPDX-License-Identifier: Apache-2.0
"""
A full disk: the database lives on a small tmpfs that the test fills. When a
commit fails for lack of space the daemon keeps running, holds the PUBACKs of
what it could not commit, keeps serving other clients, and once space is
freed commits the held messages and releases their acknowledgements.
Nothing acknowledged is lost and nothing unacknowledged is acknowledged.
"""

import os
import unittest

from mqlite_harness import (E2ETestCase, Broker, PUBACK, publish_pkt,
                            mqlite_only)
from tmpfs_util import TmpfsMixin


@mqlite_only("database on a filled tmpfs")
class TestDiskFull(TmpfsMixin, E2ETestCase):
    auto_start = False
    needs_db = True

    def test_full_disk_holds_acks_and_recovers(self):
        db = os.path.join(self.mnt, "t.db")
        br = Broker(self.workdir, database={"path": db})
        br.db_path = db
        self.brokers.append(br)
        br.start()
        filler = self.fill_tmpfs(192 * 1024)

        pub = self.client(br, client_id="diskfull-pub")
        payload = b"x" * 2000
        acked = 0
        stuck = None
        for i in range(3000):
            pid = pub.pid()
            pub.send(publish_pkt("full/t", payload + b"%d" % i, 1, pid=pid))
            try:
                a = pub.expect(PUBACK, timeout=3.0)
            except TimeoutError:
                stuck = pid
                break
            self.assertEqual(a.pid, pid)
            acked += 1
        self.assertIsNotNone(stuck, "the disk never filled")
        self.assertGreater(acked, 10)

        # The daemon is alive and serves others while the disk is full.
        other = self.client(br, client_id="diskfull-other")
        other.ping()
        self.assertTrue(br.running())
        self.assertIn("rolled back and retried", br.log_text())

        # Free the space: the held PUBACK arrives, then ingest goes on.
        os.unlink(filler)
        a = pub.expect(PUBACK, timeout=30.0)
        self.assertEqual(a.pid, stuck)
        pub.publish("full/t", b"after", qos=1, timeout=30.0)
        pub.disconnect()
        self.assertEqual(br.count("topic='full/t'"), acked + 2)
        self.assertEqual(br.count("topic='full/t' and payload='after'"), 1)


if __name__ == "__main__":
    unittest.main()
