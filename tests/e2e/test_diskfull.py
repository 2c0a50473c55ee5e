# SPDX-License-Identifier: Apache-2.0
"""
A full disk: the database lives on a small tmpfs that the test fills. When a
commit fails for lack of space the daemon keeps running, holds the PUBACKs of
what it could not commit, keeps serving other clients, and once space is
freed commits the held messages and releases their acknowledgements.
Nothing acknowledged is lost and nothing unacknowledged is acknowledged.
"""

import os
import subprocess
import tempfile
import unittest

from mqlite_harness import (E2ETestCase, Broker, PUBACK, publish_pkt,
                            mqlite_only)


@mqlite_only("database on a filled tmpfs")
class TestDiskFull(E2ETestCase):
    auto_start = False
    needs_db = True

    def setUp(self):
        super().setUp()
        self.mnt = tempfile.mkdtemp(prefix="mqlite-tmpfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m",
                            "tmpfs", self.mnt], capture_output=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.mnt = None
            self.fail("cannot mount a tmpfs for the disk-full test (it "
                      "needs root): %s" % r.stderr.decode().strip())

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if self.mnt:
                subprocess.run(["umount", "-l", self.mnt])
                os.rmdir(self.mnt)

    def fill(self, leave):
        """Writes a filler file leaving about leave bytes free."""
        st = os.statvfs(self.mnt)
        free = st.f_bavail * st.f_frsize
        path = os.path.join(self.mnt, "filler")
        with open(path, "wb") as f:
            f.write(b"\0" * max(0, free - leave))
        return path

    def test_full_disk_holds_acks_and_recovers(self):
        db = os.path.join(self.mnt, "t.db")
        br = Broker(self.workdir, database={"path": db})
        br.db_path = db
        self.brokers.append(br)
        br.start()
        filler = self.fill(192 * 1024)

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
