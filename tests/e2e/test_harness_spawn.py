# SPDX-License-Identifier: Apache-2.0
"""
The harness itself: a daemon started (or restarted) from a worker thread
keeps running after that thread has ended.

The harness asks the kernel to SIGKILL every daemon when its parent dies
(PR_SET_PDEATHSIG), so a test killed by the runner leaves nothing behind.
That "parent" is the thread that forked, not the process: a test that
restarted a broker from a publisher thread lost it, with whatever it still
had to forward, the moment the thread returned (the fleet test saw the last
rows of the restarted gateway stay in its outbox). Here a broker is
started by a thread that then ends, and must still serve a QoS 1 publish
afterwards.
"""

import shutil
import tempfile
import threading
import unittest

from mqlite_harness import Broker, Client, wait_until


class SpawnFromThreadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mqlite-spawn-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def _start_in_thread(self, fn):
        errors = []

        def run():
            try:
                fn()
            except BaseException as e:      # reported by the test
                errors.append(e)
        t = threading.Thread(target=run)
        t.start()
        t.join(60)
        self.assertFalse(t.is_alive(), "the starting thread hung")
        self.assertEqual(errors, [])

    def _assert_serving(self, b):
        # The kernel's signal follows the thread's exit within moments:
        # give it a bounded chance to arrive, then the broker must be up.
        wait_until(lambda: not b.running(), timeout=2.0, interval=0.05)
        self.assertTrue(b.running(), "%s died when the thread that started "
                        "it ended (exit %r)" % (b.name, b.proc and
                                                b.proc.returncode))
        c = Client(b.port)
        try:
            c.connect("spawn-check")
            c.publish("spawn/t", b"x", qos=1)
            c.disconnect()
        finally:
            c.abort()

    def test_started_by_a_thread(self):
        b = Broker(self.tmp, name="threaded")
        self.addCleanup(b.stop)
        self._start_in_thread(b.start)
        self._assert_serving(b)

    def test_restarted_by_a_thread(self):
        b = Broker(self.tmp, name="restarted")
        self.addCleanup(b.stop)
        b.start()
        self._start_in_thread(lambda: b.restart(kill=True))
        self.assertEqual(b.starts, 2)
        self._assert_serving(b)


if __name__ == "__main__":
    unittest.main()
