# SPDX-License-Identifier: Apache-2.0
"""A small filesystem of its own for the tests that fill the disk under the
daemon (test_diskfull.py, test_dbheal.py, test_sys.py). TmpfsMixin mounts a
tmpfs of tmpfs_size in setUp (self.mnt) and unmounts it in tearDown, after
the brokers of the test have stopped; fill_tmpfs() takes its free space.
Mounting needs root: without it the test fails with the reason, it is not
skipped."""

import os
import subprocess
import tempfile


class TmpfsMixin:
    """Put before the E2ETestCase class in the bases: class T(TmpfsMixin,
    E2ETestCase)."""
    tmpfs_size = "4m"

    def setUp(self):
        super().setUp()
        self.mnt = tempfile.mkdtemp(prefix="mqlite-tmpfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%s" % self.tmpfs_size, "tmpfs", self.mnt],
                           capture_output=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.mnt = None
            self.fail("cannot mount a tmpfs for %s (it needs root): %s"
                      % (self.id(), r.stderr.decode().strip()))

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if self.mnt:
                subprocess.run(["umount", "-l", self.mnt])
                os.rmdir(self.mnt)

    def fill_tmpfs(self, leave=0):
        """Writes the file 'filler' on the tmpfs leaving about leave bytes
        free (a write cut short by a full disk is fine) and returns its
        path."""
        st = os.statvfs(self.mnt)
        free = st.f_bavail * st.f_frsize
        path = os.path.join(self.mnt, "filler")
        with open(path, "wb") as f:
            try:
                f.write(b"\0" * max(0, free - leave))
            except OSError:
                pass
        return path
